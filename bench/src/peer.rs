//! The peer: cargo-lambda's `watch` emulator serving the test kit's `fx-lr-echo` (the same echo on
//! `lambda_runtime` that coldstart serves in the `lambda_runtime` rows), measured with the same
//! client in the same run.
//!
//! Apart from `process` because cargo-lambda is optional (the bench skips it, saying why, when
//! `cargo lambda` is missing), prints no banner to wait for (readiness is a successful invoke), and
//! runs each function instance in a process group of its own, which killing its group misses.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use coldstart_protocol::invoke;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::runtime::Runtime;

use crate::client::{self, Exchange, Target};
use crate::process::{Banner, Read, Server, free_port};

/// The function `cargo lambda watch` serves: the binary's name.
pub const FUNCTION: &str = "fx-lr-echo";
/// The package holding [`FUNCTION`].
const PACKAGE: &str = "coldstart-testkit";
/// The repository root, where `cargo lambda watch` finds the workspace (and shares `target/`).
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// How long `cargo lambda watch` may take to answer its first invoke: it compiles the function
/// (release) first. Default: 120 seconds.
const READY_LIMIT: Duration = Duration::from_secs(120);
/// The pause between two readiness attempts (a refused connection fails at once).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// What `lambda_runtime` prints on stderr when cargo-lambda sets `AWS_LAMBDA_MAX_CONCURRENCY`
/// (every instance, every run): not worth a note.
const CONCURRENCY_NOTICE: &str = "AWS_LAMBDA_MAX_CONCURRENCY is set to";

/// An installed `cargo lambda`.
#[derive(Debug, Clone)]
pub struct CargoLambda {
    /// What `cargo lambda --version` printed, e.g. `cargo-lambda 1.9.2`.
    pub version: String,
}

impl CargoLambda {
    /// Runs `cargo lambda --version`; the error says why there is no peer.
    pub fn detect() -> Result<Self, String> {
        let out = Command::new("cargo")
            .args(["lambda", "--version"])
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("could not run `cargo lambda --version`: {err}"))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said.lines().next().unwrap_or_default().trim();
            return Err(format!("`cargo lambda --version` {}: {said}", out.status));
        }
        let version = String::from_utf8_lossy(&out.stdout);
        // `cargo-lambda 1.9.2 (2026-11-21Z)`: the build date adds nothing.
        let version = version
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Self { version })
    }
}

/// The peer's figures, or why there are none.
#[derive(Debug)]
pub enum Peer<T> {
    /// cargo-lambda was measured.
    Measured(T),
    /// cargo-lambda was not measured: the reason.
    Skipped(String),
}

/// A running `cargo lambda watch`. Dropping it stops it and its function instances.
#[derive(Debug)]
pub struct Watch {
    /// `None` once stopped.
    server: Option<Server>,
    /// The Invoke API's address.
    pub addr: SocketAddr,
}

impl Watch {
    /// Starts `cargo lambda watch --release --ignore-changes -p coldstart-testkit --bin
    /// fx-lr-echo -A 127.0.0.1 -P PORT [--concurrency N]` in the repository root and waits until
    /// an invoke succeeds (a retry bounded by [`READY_LIMIT`]: it compiles first, and prints no
    /// line that says it serves). Cargo's messages are off (`-q`) and `RUST_LOG=warn`; the
    /// function's stdout is discarded.
    pub fn start(
        rt: &Runtime,
        payload: &Bytes,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Self> {
        // cargo-lambda takes a port number, not a listener.
        let port = free_port()?;
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "-q", "--release", "--ignore-changes"])
            .args(["-p", PACKAGE, "--bin", FUNCTION, "-A", "127.0.0.1", "-P"])
            .arg(port.to_string());
        if let Some(n) = concurrency {
            command.arg("--concurrency").arg(n.to_string());
        }
        command
            .current_dir(WORKSPACE)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let (server, _) = Server::spawn(command, NoBanner)?;
        let mut watch = Self {
            server: Some(server),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        watch.await_ready(rt, payload)?;
        Ok(watch)
    }

    /// Where invokes go.
    pub fn target(&self) -> Target {
        Target {
            addr: self.addr,
            path: invoke::invoke_path(FUNCTION),
            exchange: Exchange::Echo,
        }
    }

    /// Invokes until one answer is right, within [`READY_LIMIT`]; fails early if cargo-lambda
    /// exits.
    fn await_ready(&mut self, rt: &Runtime, payload: &Bytes) -> anyhow::Result<()> {
        let target = self.target();
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let attempt = rt.block_on(client::first_answer(&target, payload));
            let Err(err) = attempt else { return Ok(()) };
            let server = self
                .server
                .as_mut()
                .context("cargo lambda watch was stopped")?;
            if server.exited() {
                bail!(
                    "cargo lambda watch exited before answering; its stderr:\n{}",
                    server.said()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "cargo lambda watch did not answer an invoke within {READY_LIMIT:?} (last: \
                     {err:#})"
                );
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }

    /// Stops cargo-lambda and its function instances; returns what they printed on stderr
    /// (warnings and errors).
    pub fn stop(mut self) -> anyhow::Result<Vec<String>> {
        let server = self
            .server
            .take()
            .context("cargo lambda watch was stopped")?;
        let lines = shut_down(server)?;
        Ok(lines
            .into_iter()
            .filter(|line| !line.contains(CONCURRENCY_NOTICE))
            .collect())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = shut_down(server);
        }
    }
}

/// SIGTERM first (cargo-lambda then stops its instances; the SIGKILL after the grace period
/// would not reach them), then SIGKILL for any instance group that outlived it. The instances are
/// cargo-lambda's children, not ours: once it is gone they are reparented and reaped by init.
fn shut_down(server: Server) -> anyhow::Result<Vec<String>> {
    let instances = server.pid().map(descendants).unwrap_or_default();
    let stopped = server.stop();
    for pid in instances {
        // Only a process that is still there and still leads its own group.
        if process_group(pid) == Some(pid) {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    stopped
}

/// Every descendant of `pid`, from `/proc/PID/task/TID/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    // Bounded: a process tree has no cycles, and no more than a few hundred entries here.
    while let Some(parent) = next.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                next.push(child);
            }
        }
    }
    found
}

/// The process group of `pid` (field 5 of `/proc/PID/stat`), if it still runs.
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: skip past it.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" {
        return None;
    }
    fields.nth(1)?.parse().ok()
}

/// cargo-lambda prints no line that says it serves: every stderr line is kept.
#[derive(Debug)]
struct NoBanner;

impl Banner for NoBanner {
    type Found = ();

    fn read(&mut self, _line: &str, _at: Instant) -> Read<()> {
        Read::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_group_reads_our_own() {
        let pid = std::process::id();
        let group = nix::unistd::getpgrp().as_raw() as u32;
        assert_eq!(process_group(pid), Some(group));
    }

    #[test]
    fn descendants_lists_a_child() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
    }
}

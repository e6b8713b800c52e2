//! The peer: cargo-lambda's `watch` emulator serving the test kit's `fx-lr-echo` (the same
//! `lambda_runtime` echo coldstart serves in the `lambda_runtime` rows), when `cargo lambda` is
//! installed. It prints no line that says it serves, so it is ready once an invoke comes back
//! right; it runs each instance in a process group of its own, which stopping it collects.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use coldstart_protocol::invoke;
use tokio::runtime::Runtime;

use crate::core::http::{self, Target};
use crate::core::process::{self, NoBanner, Server};
use crate::core::stack::repository;

/// The function `cargo lambda watch` serves: the binary's name.
const FUNCTION: &str = "fx-lr-echo";
/// How long it may take to answer its first invoke (it compiles first when `target/` is cold).
const READY_LIMIT: Duration = Duration::from_secs(120);
/// The pause between two readiness attempts (a refused connection fails at once).
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// The row label of the peer.
pub const LABEL: &str = "cargo-lambda watch + lambda_runtime echo";

/// What `cargo lambda --version` says (`cargo-lambda 1.9.2`), or why it is missing.
pub fn detect() -> Result<String, String> {
    let out = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("could not run `cargo lambda --version`: {err}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().next().unwrap_or_default().trim().to_owned();
        return Err(format!("`cargo lambda --version` {}: {said}", out.status));
    }
    let version = String::from_utf8_lossy(&out.stdout);
    Ok(version
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// A running `cargo lambda watch` (stopped, with its instances, on drop).
#[derive(Debug)]
pub struct Watch {
    pub server: Server,
    pub addr: SocketAddr,
}

impl Watch {
    /// `cargo lambda watch -q --release --ignore-changes -p coldstart-testkit --bin fx-lr-echo
    /// -A 127.0.0.1 -P PORT [--concurrency N]` in the repository root, `RUST_LOG=warn`; ready
    /// once an invoke succeeds, within [`READY_LIMIT`], failing early if it exits.
    pub fn start(
        rt: &Runtime,
        payload: &Bytes,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Self> {
        // cargo-lambda takes a port number, not a listener.
        let [addr] = process::free_ports()?;
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "watch", "-q", "--release", "--ignore-changes"])
            .args([
                "-p",
                "coldstart-testkit",
                "--bin",
                FUNCTION,
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(addr.port().to_string())
            .current_dir(repository())
            .env("RUST_LOG", "warn");
        if let Some(n) = concurrency {
            command.args(["--concurrency", &n.to_string()]);
        }
        // lambda_runtime says this on every start under cargo-lambda: not worth a note.
        let output = NoBanner(&["AWS_LAMBDA_MAX_CONCURRENCY is set to"]);
        let (server, _) = Server::spawn("cargo lambda watch", command, output)?;
        let mut watch = Self { server, addr };
        let target = watch.target();
        let deadline = Instant::now() + READY_LIMIT;
        // Bounded by READY_LIMIT; each attempt by the client's request limit.
        loop {
            let Err(err) = rt.block_on(http::first_answer(&target, payload)) else {
                return Ok(watch);
            };
            if watch.server.exited() {
                bail!(
                    "it exited before answering; it said:\n{}",
                    watch.server.said()
                );
            }
            if Instant::now() >= deadline {
                bail!("it did not answer within {READY_LIMIT:?} (last: {err:#})");
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }

    /// Invokes of `fx-lr-echo`.
    pub fn target(&self) -> Target {
        Target::echo(LABEL, self.addr, invoke::invoke_path(FUNCTION))
    }
}

//! The web app started directly, outside any emulator: the "straight to the app" side of the
//! adapter bench.
//!
//! examples/web takes its port from `PORT` (no listener can be handed to it), so the bench finds a
//! free loopback port by binding `127.0.0.1:0` and releasing it. The app says it serves with one
//! line on stdout, `web: listening on http://ADDR`; that line, read from a pipe, is the readiness
//! signal.

use std::io::{BufRead, BufReader, PipeReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::process::Process;

/// How long the app may take to print that it listens. Default: 10 seconds.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long to wait for the app's last output lines once it has exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// The start of the line the app prints once it listens.
const LISTENING: &str = "web: listening on http://";

/// The web app on `127.0.0.1:PORT`, in a process group of its own (killed on drop).
#[derive(Debug)]
pub struct DirectApp {
    process: Process,
    pub addr: SocketAddr,
    /// Everything it printed besides the `listening` line. The drain thread holds the other
    /// reference.
    output: Arc<Mutex<Vec<String>>>,
    /// Disconnects when the drain thread reaches the end of the output (the app has exited).
    drained: mpsc::Receiver<()>,
}

impl DirectApp {
    /// Starts `web` with `PORT` set to a free port and waits up to [`READY_LIMIT`] for its
    /// `listening` line.
    pub fn start(web: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        // stdout and stderr share one pipe: the banner and any complaint arrive in order.
        let (reader, writer) = std::io::pipe().context("creating the web app's output pipe")?;
        let mut command = Command::new(web);
        command
            .env("PORT", port.to_string())
            .env_remove("AWS_LWA_PORT")
            .stdin(Stdio::null())
            .stderr(writer.try_clone().context("sharing the output pipe")?)
            .stdout(writer);
        // `spawn` consumes the command, and with it this process's ends of the pipe's write side:
        // the reader sees the end of the output once the app has exited.
        let process = Process::spawn(command)?;

        let output = Arc::new(Mutex::new(Vec::new()));
        let (listening_tx, listening) = mpsc::channel();
        // The drain thread holds `drained_tx`: dropping it at the end of the output tells
        // `said` that every line is in.
        let (drained_tx, drained) = mpsc::channel::<()>();
        let sink = Arc::clone(&output);
        thread::spawn(move || {
            let _drained_tx = drained_tx;
            drain(reader, &listening_tx, &sink);
        });
        let mut app = Self {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            output,
            drained,
        };
        // A closed channel means the output ended before the line: the app exited.
        match listening.recv_timeout(READY_LIMIT) {
            Ok(addr) => app.addr = addr,
            Err(err) => bail!(
                "{} did not start listening on port {port} ({err}); its output:\n{}",
                web.display(),
                app.said()
            ),
        }
        Ok(app)
    }

    /// The app's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.process.id().context("the web app was already reaped")
    }

    /// Everything the app printed besides the `listening` line so far; waits up to
    /// [`DRAIN_LIMIT`] for the end of its output (meant for an app that has exited).
    fn said(&self) -> String {
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        self.output.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Stops the app (SIGTERM: it shuts down gracefully) and returns what it printed besides the
    /// `listening` line, and its exit status if it was not a success.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        let status = self.process.stop().context("stopping the web app")?;
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        let mut lines = self.output.lock().map(|l| l.clone()).unwrap_or_default();
        if !status.success() {
            lines.push(format!("the web app exited with {status} after SIGTERM"));
        }
        Ok(lines)
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Reads the app's output to its end: the `listening` line's address goes to `listening`, every
/// other line to `lines`. Reading on keeps the pipe from filling up and blocking the app.
fn drain(reader: PipeReader, listening: &mpsc::Sender<SocketAddr>, lines: &Mutex<Vec<String>>) {
    let mut found = false;
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if !found && let Some(addr) = listening_addr(&line) {
            found = true;
            let _ = listening.send(addr);
            continue;
        }
        if let Ok(mut lines) = lines.lock() {
            lines.push(line);
        }
    }
}

/// The address in `web: listening on http://ADDR`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.strip_prefix(LISTENING)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            listening_addr("web: listening on http://127.0.0.1:8080"),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(listening_addr("web: cannot listen on 127.0.0.1:8080"), None);
    }
}

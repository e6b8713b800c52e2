//! The web app started directly, outside any emulator: the "straight to the app" side of the
//! adapter bench.
//!
//! examples/web takes its port from `PORT` (no listener can be handed to it), so the bench finds a
//! free loopback port by binding `127.0.0.1:0` and releasing it. The app says it serves with one
//! line on stdout, `web: listening on http://ADDR`; that line, read from a pipe it shares with
//! stderr, is the readiness signal.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::bail;

use crate::process::{Line, Server, free_port};

/// How long the app may take to print that it listens. Default: 10 seconds.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// The start of the line the app prints once it listens.
const LISTENING: &str = "web: listening on http://";

/// The web app on `127.0.0.1:PORT`, in a process group of its own (killed on drop).
#[derive(Debug)]
pub struct DirectApp {
    /// Keeps everything it printed besides the `listening` line.
    server: Server,
    pub addr: SocketAddr,
}

impl DirectApp {
    /// Starts `web` with `PORT` set to a free port and waits up to [`READY_LIMIT`] for its
    /// `listening` line.
    pub fn start(web: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut command = Command::new(web);
        command
            .env("PORT", port.to_string())
            .env_remove("AWS_LWA_PORT")
            .stdin(Stdio::null());
        // stdout and stderr share one pipe: the banner and any complaint arrive in order.
        let (server, listening) = Server::spawn_merged(command, Line(listening_addr))?;
        let server = server.named("the web app");
        // A closed channel means the output ended before the line: the app exited.
        match listening.recv_timeout(READY_LIMIT) {
            Ok(addr) => Ok(Self { server, addr }),
            Err(err) => bail!(
                "{} did not start listening on port {port} ({err}); its output:\n{}",
                web.display(),
                server.said()
            ),
        }
    }

    /// The app's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.server.pid()
    }

    /// Stops the app (SIGTERM: it shuts down gracefully) and returns what it printed besides the
    /// `listening` line, and its exit status if it was not a success.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.server.stop()
    }
}

/// The address in the app's one-line banner, `web: listening on http://ADDR`.
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

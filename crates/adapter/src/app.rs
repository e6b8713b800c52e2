//! Wrapper mode's child: the web app the adapter starts (`coldstart-adapter -- APP [ARGS]...`).
//!
//! The app inherits the adapter's environment, working directory, stdout and stderr (so its
//! log lines reach Lambda's log as they would from a bootstrap), and its process group: Lambda
//! (and the emulator) freeze, thaw and kill a sandbox by its process group, and the app must be
//! frozen and killed with the adapter. Signals sent to the adapter alone (SIGTERM, SIGINT) are
//! forwarded to the app; the adapter exits when the app does, with its status.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::error::Error;

/// How long a stopped app has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// The running app.
#[derive(Debug)]
pub struct App {
    child: Child,
}

impl App {
    /// Starts `command` (the executable first).
    pub fn spawn(command: &[OsString]) -> Result<Self, Error> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| Error::Usage("no app command after --".into()))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            })?;
        Ok(Self { child })
    }

    /// The app's process id (`None` once it has been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the app to exit. Cancel-safe: a `select!` may drop it and call it again.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Sends `signal` to the app, if it still runs.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            // It may have exited since `pid` was read; then there is nobody to tell.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// Stops the app: SIGTERM, then SIGKILL after [`STOP_GRACE`], and reaps it.
    pub async fn stop(&mut self) {
        self.signal(Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// The exit code that reports `status` the way a shell does: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_codes_are_shell_like() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}

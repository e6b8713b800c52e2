//! Every log line of a stack's functions, kept for assertions, with a way to wait for one.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use coldstart_emulator::LogSink;

/// The log lines of every function, in order, as `(function, line)`.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    lines: Mutex<Vec<(String, String)>>,
    /// Woken at every new line; [`Logs::wait_for`] waits on it.
    added: Notify,
}

impl LogSink for Logs {
    fn line(&self, function: &str, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push((function.to_owned(), line.to_owned()));
        }
        self.added.notify_waiters();
    }
}

impl Logs {
    /// Every line so far.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits at most `patience` for a line of `function` for which `pred` holds.
    pub(crate) async fn wait_for(
        &self,
        function: &str,
        patience: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let found = tokio::time::timeout(patience, async {
            loop {
                let notified = self.added.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let hit = self
                    .all()
                    .into_iter()
                    .find(|(f, line)| f == function && pred(line))
                    .map(|(_, line)| line);
                if let Some(line) = hit {
                    return line;
                }
                notified.await;
            }
        });
        found.await.ok()
    }
}

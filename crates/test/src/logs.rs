//! Every log line of a stack's functions, kept for assertions, with a way to wait for one.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use coldstart_emulator::LogSink;
use coldstart_emulator::notes::StreamEvent;

/// The log lines of every function, in order, as `(function, line)`, and their platform event
/// streams' events.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    lines: Mutex<Vec<(String, String)>>,
    records: Mutex<Vec<(String, serde_json::Value)>>,
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

    fn wants_records(&self) -> bool {
        true
    }

    fn record(&self, function: &str, event: &StreamEvent) {
        if let Ok(mut records) = self.records.lock() {
            records.push((function.to_owned(), event.to_value()));
        }
        self.added.notify_waiters();
    }
}

impl Logs {
    /// Every line so far.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every platform event so far, as `(function, event)`.
    pub(crate) fn records(&self) -> Vec<(String, serde_json::Value)> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits at most `patience` for an event for which `pred` holds.
    pub(crate) async fn wait_for_record(
        &self,
        patience: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let found = tokio::time::timeout(patience, async {
            loop {
                let notified = self.added.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some((_, event)) = self.records().into_iter().find(|(_, e)| pred(e)) {
                    return event;
                }
                notified.await;
            }
        });
        found.await.ok()
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

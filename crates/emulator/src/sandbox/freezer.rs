//! Idle periods: a parked sandbox is frozen (SIGSTOP) shortly after, as Lambda freezes an idle
//! environment, and its owner hears when it has been idle for the function's idle timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Fact, Sandbox};

/// How long a sandbox stays idle before it is frozen. Lambda freezes at once; a short grace
/// spares back-to-back invocations a SIGSTOP/SIGCONT pair each, while an idle sandbox still
/// stops using CPU almost at once.
pub(crate) const FREEZE_AFTER: Duration = Duration::from_millis(20);

impl Sandbox {
    /// Its owner parked the sandbox idle: the freezer counts from now.
    pub(crate) fn park(&self) {
        if self.lock().park(Instant::now()) {
            self.parked.notify_one();
        }
    }

    /// Watches idle periods: freezes the sandbox once it has been idle for [`FREEZE_AFTER`]
    /// (when freezing is on) and tells the owner once it has been idle for the function's idle
    /// timeout. Woken by [`Self::park`], it sleeps until the next deadline; a newer idle period
    /// (after an invocation) starts the count again.
    pub(super) async fn idler(self: Arc<Self>) {
        let config = &self.spec.config;
        loop {
            tokio::select! {
                () = self.gone.cancelled() => return,
                () = self.parked.notified() => {}
            }
            loop {
                let Some((since, frozen)) = self.lock().idle_since() else {
                    break;
                };
                let due = if config.freeze && !frozen {
                    since + FREEZE_AFTER.min(config.idle_timeout)
                } else {
                    since + config.idle_timeout
                };
                if Instant::now() >= due {
                    if since.elapsed() >= config.idle_timeout {
                        // The owner stops it, unless it granted it to an invocation meanwhile:
                        // either way, the next idle period starts the count again.
                        self.tell(Fact::IdleExpired);
                        break;
                    }
                    if config.freeze && !frozen && !self.telemetry.is_quiet() {
                        // Telemetry is on its way to a listener inside the sandbox, which could
                        // not take it frozen: freeze once it is delivered (or given up on).
                        tokio::select! {
                            () = self.gone.cancelled() => return,
                            () = self.telemetry.quieted() => {}
                            () = tokio::time::sleep_until((since + config.idle_timeout).into()) => {}
                        }
                        continue;
                    }
                    // Only an idle runtime blocked in `next`, still in this idle period, is
                    // stopped; otherwise this idle period is over.
                    if !self.lock().freeze(since) {
                        break;
                    }
                    self.signal_all(Signal::SIGSTOP);
                    continue;
                }
                tokio::select! {
                    () = self.gone.cancelled() => return,
                    () = tokio::time::sleep_until(due.into()) => {}
                }
            }
        }
    }
}

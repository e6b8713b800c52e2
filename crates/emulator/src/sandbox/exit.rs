//! How a sandbox ends: its processes reaped (a crash, an extension's crash, the last one gone),
//! a failed or abandoned init, a deadline, and a stop as Lambda stops an environment.

use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use coldstart_protocol::ErrorBody;
use coldstart_protocol::extension::{Event, ShutdownReason};
use coldstart_protocol::logs;
use coldstart_protocol::telemetry::Status;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::reports::ReportStatus;
use super::state::{Phase, Vacated};
use super::{Fact, InitFailure, Sandbox};
use crate::clock::{epoch_ms, iso_millis};
use crate::invocation::Outcome;
use crate::process::{describe_exit, describe_status, signal_group};
use crate::telemetry::FINAL_FLUSH_LIMIT;

/// How long a sandbox with external extensions takes to shut down at most, as in Lambda: the
/// runtime's SIGTERM and the extensions' `SHUTDOWN` share it; laggards are killed.
pub(crate) const EXTENSIONS_SHUTDOWN_LIMIT: Duration = Duration::from_millis(2000);

/// The runtime's share of [`EXTENSIONS_SHUTDOWN_LIMIT`] before the extensions get `SHUTDOWN`.
pub(crate) const RUNTIME_SHUTDOWN_SHARE: Duration = Duration::from_millis(300);

impl Sandbox {
    /// Sends `signal` to every process of the sandbox.
    pub(super) fn signal_all(&self, signal: Signal) {
        self.signal_runtime(signal);
        if let Some(group) = self.extension_group {
            signal_group(group, signal);
        }
    }

    /// Sends `signal` to the bootstrap's process group. An in-process runtime's task is aborted
    /// for SIGTERM and SIGKILL and left alone otherwise (a task cannot be frozen).
    fn signal_runtime(&self, signal: Signal) {
        let pid = self.pid.load(Ordering::Acquire);
        if pid != 0 {
            signal_group(Pid::from_raw(pid as i32), signal);
        } else if let Some(task) = self.task.get()
            && matches!(signal, Signal::SIGTERM | Signal::SIGKILL)
        {
            task.abort();
        }
    }

    /// Whether a reset keeps the extensions until the last events are delivered: some of them
    /// subscribed to telemetry.
    fn resets_with_subscribers(&self) -> bool {
        self.extension_group.is_some() && self.telemetry.has_subscribers()
    }

    /// Kills the sandbox for a reset: with `subscribers`, the runtime first, and the extensions
    /// once the last events reached them (or [`FINAL_FLUSH_LIMIT`] passed), as Lambda resets an
    /// environment; otherwise everything at once.
    fn kill_for_reset(self: &Arc<Self>, subscribers: bool) {
        if !subscribers {
            self.signal_all(Signal::SIGKILL);
            return;
        }
        self.signal_runtime(Signal::SIGKILL);
        let sandbox = self.clone();
        tokio::spawn(async move {
            // A runtime that never started is never reaped: its share of the time bounds that.
            let _ = tokio::time::timeout(RUNTIME_SHUTDOWN_SHARE, sandbox.runtime_gone.cancelled())
                .await;
            sandbox.logs.drain();
            sandbox.telemetry.shutdown(FINAL_FLUSH_LIMIT).await;
            if let Some(group) = sandbox.extension_group {
                signal_group(group, Signal::SIGKILL);
            }
        });
    }

    /// Fails init with `error_type` and `body` (the document the caller gets) and kills the
    /// sandbox; false when init was already over.
    pub(super) fn fail_init(self: &Arc<Self>, error_type: String, body: Bytes) -> bool {
        let reset = self.resets_with_subscribers();
        let Some((started, ready)) = self.lock().fail_init(reset) else {
            return false;
        };
        self.log_init_report(started.elapsed(), Status::Error, Some(&error_type));
        self.kill_for_reset(reset);
        self.tell(Fact::Dead(Vacated::Other));
        if let Some(ready) = ready {
            let _ = ready.send(Err(InitFailure::Reported { error_type, body }));
        }
        true
    }

    /// Kills a sandbox that has not finished init, keeping its concurrency slot for the caller's
    /// next attempt when `keep_slot` is set.
    pub(crate) fn abandon_init(self: &Arc<Self>, keep_slot: bool) {
        let Some(started) = self.lock().abandon_init() else {
            return;
        };
        self.log_init_report(started.elapsed(), Status::Timeout, None);
        self.signal_all(Signal::SIGKILL);
        if !keep_slot {
            self.tell(Fact::Dead(Vacated::Other));
        }
    }

    /// The deadline of invocation `request_id` passed: kill the sandbox and answer
    /// `Sandbox.Timedout`. Does nothing when the invocation was answered meanwhile.
    pub(crate) fn time_out(self: &Arc<Self>, request_id: &str) {
        if self.is_concurrent() {
            return self.time_out_one(request_id);
        }
        let reset = self.resets_with_subscribers();
        let Some(running) = self.lock().time_out(request_id, reset) else {
            return;
        };
        self.refresh_peak(None);
        // The extensions' end waits for the events published below.
        self.kill_for_reset(reset);
        self.tell(Fact::Dead(Vacated::Other));
        self.answer_timed_out(running);
    }

    /// Answers `running` with `Sandbox.Timedout`, with its platform line, events and report.
    pub(super) fn answer_timed_out(&self, running: super::state::Running) {
        let request_id = running.invocation.request_id.as_str();
        let seconds = format!("{:.2}", self.spec.config.timeout.as_secs_f64());
        let cause = format!("Task timed out after {seconds} seconds");
        self.logs.drain();
        self.logs.platform_line(&format!(
            "{} {request_id} {cause}",
            iso_millis(SystemTime::now())
        ));
        let outcome = Outcome::platform_error("Sandbox.Timedout", request_id, &cause);
        self.publish_runtime_done(
            &running,
            Status::Timeout,
            Some("Sandbox.Timedout"),
            None,
            None,
        );
        if let Some(report) = self.finish(running, outcome, Some(ReportStatus::Timeout)) {
            self.write_report(report);
        }
    }

    /// Answers `running` with the runtime's crash (`error_type`, `cause`).
    fn answer_crashed(&self, running: super::state::Running, error_type: &str, cause: &str) {
        let request_id = running.invocation.request_id.clone();
        self.logs.drain();
        self.logs
            .platform_line(&format!("RequestId: {request_id} Error: {cause}"));
        self.logs.platform_line(error_type);
        let outcome = Outcome::platform_error(error_type, &request_id, cause);
        self.telemetry.publish_logs(|| {
            logs::Record::Fault(format!(
                "RequestId: {request_id} Process exited before completing request"
            ))
        });
        self.publish_runtime_done(&running, Status::Error, Some(error_type), None, None);
        let status = Some(ReportStatus::Error(error_type.to_owned()));
        if let Some(report) = self.finish(running, outcome, status) {
            self.write_report(report);
        }
    }

    /// The runtime answered while extensions still work on the invocation: the function's
    /// deadline bounds them too. One still at work then gets the sandbox reset, as in Lambda.
    pub(super) fn bound_extensions(
        self: &Arc<Self>,
        request_id: &str,
        deadline: Instant,
        finished: oneshot::Receiver<()>,
    ) {
        let sandbox = self.clone();
        let request_id = request_id.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                // Every extension called `next` (the guard was dropped with the phase), or the
                // sandbox is gone.
                _ = finished => return,
                () = sandbox.gone.cancelled() => return,
            }
            if !sandbox.lock().overrun(&request_id) {
                return;
            }
            sandbox.logs.platform_line(&format!(
                "RequestId: {request_id} Error: an extension did not finish the invocation before the function's timeout"
            ));
            sandbox.signal_all(Signal::SIGKILL);
            sandbox.tell(Fact::Dead(Vacated::Finishing));
        });
    }

    /// The bootstrap exited (it was reaped).
    pub(super) fn on_exit(self: &Arc<Self>, status: Option<ExitStatus>) {
        let exited = self.lock().runtime_exited(self.resets_with_subscribers());
        self.runtime_gone.cancel();
        // Whatever the bootstrap left behind in its group goes with it; after a crash, the
        // extensions too: the whole environment is reset. On a graceful stop, or a reset with
        // subscribers, the extensions outlive the runtime to get their last events.
        self.signal_runtime(Signal::SIGKILL);
        if !exited.keep_extensions
            && let Some(group) = self.extension_group
        {
            signal_group(group, Signal::SIGKILL);
        }
        let (error_type, cause) = exited
            .failure
            .unwrap_or_else(|| ("Runtime.ExitError".to_owned(), describe_exit(status)));
        let vacated = exited.previous.vacated();
        match exited.previous {
            Phase::Exited => {}
            Phase::Initializing { started, ready, .. } => {
                self.log_init_report(started.elapsed(), Status::Error, Some(&error_type));
                self.tell(Fact::Dead(vacated));
                if let Some(ready) = ready {
                    let failure = if error_type == "Runtime.ExitError" {
                        InitFailure::Exited(cause)
                    } else {
                        let body = Bytes::from(ErrorBody::new(&error_type, cause).to_json());
                        InitFailure::Reported { error_type, body }
                    };
                    let _ = ready.send(Err(failure));
                }
            }
            Phase::Busy(running) => {
                self.tell(Fact::Dead(vacated));
                self.answer_crashed(running, &error_type, &cause);
            }
            // Every invocation in flight fails with the crash; the waiting workers go with it.
            Phase::Serving(mut slots) => {
                self.tell(Fact::Dead(vacated));
                for running in slots.drain() {
                    self.answer_crashed(running, &error_type, &cause);
                }
            }
            Phase::Idle { .. } | Phase::Frozen { .. } | Phase::Finishing { .. } => {
                self.tell(Fact::Dead(vacated));
                if !exited.expected {
                    tracing::warn!(
                        function = &*self.spec.name,
                        sandbox = self.id,
                        "runtime exited between invocations: {cause}"
                    );
                }
            }
        }
        if exited.resets {
            // Once the crash's events above are out.
            self.kill_for_reset(true);
        }
        self.process_reaped();
    }

    /// External extension `name` exited. Unless the sandbox is stopping, that is a crash: the
    /// sandbox fails with `Extension.Crash` (or the error type the extension reported on
    /// `exit/error`) and is reset.
    pub(super) fn on_extension_exit(self: &Arc<Self>, name: &str, status: Option<ExitStatus>) {
        let how = status.map_or_else(|| "exit status unknown".to_owned(), describe_status);
        let cause = format!("Extension {name} exited: {how}");
        let crash = self.lock().extension_exited(name, &cause);
        if let Some(crash) = crash {
            tracing::warn!(function = &*self.spec.name, sandbox = self.id, "{cause}");
            if crash.after_init {
                // The bootstrap's exit answers for the sandbox, with this failure.
                self.signal_all(Signal::SIGKILL);
            } else {
                let body = Bytes::from(ErrorBody::new(&crash.error_type, cause).to_json());
                self.fail_init(crash.error_type, body);
            }
        }
        self.process_reaped();
    }

    /// One more process of the sandbox was reaped; after the last, the sandbox is gone.
    pub(super) fn process_reaped(self: &Arc<Self>) {
        if !self.lock().reaped() {
            return;
        }
        // Their group ids may name other groups from now on: the watchdog forgets them (an
        // extension that exited on SHUTDOWN was never killed, so never forgotten).
        if let Some(group) = self.extension_group {
            crate::watchdog::forget_group(group.as_raw() as u32);
        }
        // Every writer is gone: whatever is left in the pipe are the sandbox's last lines.
        self.logs.drain();
        if let Some(extension_logs) = &self.extension_logs {
            extension_logs.drain();
        }
        // Every listener is gone too: delivery ends (the tasks stop with `gone`).
        drop(self.telemetry.close());
        self.tell(Fact::Gone);
        self.gone.cancel();
    }

    /// Stops the sandbox and returns once every process is reaped. Without extensions: SIGTERM,
    /// then SIGKILL after `grace`. With extensions, as Lambda: the runtime gets SIGTERM and
    /// [`RUNTIME_SHUTDOWN_SHARE`], then the extensions that subscribed get `SHUTDOWN` and the
    /// rest of [`EXTENSIONS_SHUTDOWN_LIMIT`]; the others are killed at once.
    pub(crate) async fn stop(&self, grace: Duration) {
        let began = Instant::now();
        if self.lock().stop() {
            // A stopped process only sees SIGTERM once it runs again.
            self.signal_all(Signal::SIGCONT);
        }
        if self.extension_group.is_none() {
            // A subscriber can only be inside the runtime here (an internal extension): it gets
            // the last events before its SIGTERM.
            self.logs.drain();
            self.telemetry.shutdown(FINAL_FLUSH_LIMIT).await;
            if !self.gone.is_cancelled() {
                self.signal_all(Signal::SIGTERM);
            }
            if tokio::time::timeout(grace, self.gone.cancelled())
                .await
                .is_err()
            {
                self.signal_all(Signal::SIGKILL);
                self.gone.cancelled().await;
            }
            return;
        }
        if self.gone.is_cancelled() {
            // Every process is reaped: their pids may belong to others by now.
            return;
        }
        let started = self.pid.load(Ordering::Acquire) != 0 || self.task.get().is_some();
        if started && !self.runtime_gone.is_cancelled() {
            self.signal_runtime(Signal::SIGTERM);
            if tokio::time::timeout(RUNTIME_SHUTDOWN_SHARE, self.runtime_gone.cancelled())
                .await
                .is_err()
            {
                self.signal_runtime(Signal::SIGKILL);
            }
        }
        let deadline = began + EXTENSIONS_SHUTDOWN_LIMIT;
        // The runtime is gone: its last lines and events go to the subscribers (the extensions'
        // listeners) before their SHUTDOWN, within the shutdown's time.
        self.logs.drain();
        let flush = FINAL_FLUSH_LIMIT.min(deadline.saturating_duration_since(Instant::now()));
        self.telemetry.shutdown(flush).await;
        let event = Event::Shutdown {
            shutdown_reason: ShutdownReason::Spindown,
            deadline_ms: epoch_ms(
                SystemTime::now() + deadline.saturating_duration_since(Instant::now()),
            ),
        };
        let unsubscribed = self.lock().extensions().shutdown(&event);
        for (name, pid) in &self.extension_pids {
            if unsubscribed.contains(name) {
                let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
        }
        if tokio::time::timeout_at(deadline.into(), self.gone.cancelled())
            .await
            .is_err()
        {
            self.signal_all(Signal::SIGKILL);
            self.gone.cancelled().await;
        }
    }
}

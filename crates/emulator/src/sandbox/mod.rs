//! One execution environment: a bootstrap process in its own process group, its external
//! extensions (in a group of their own), its log pipe, and the [`state`] machine that ties an
//! invocation to the runtime's and extensions' calls.
//!
//! With extensions, the sandbox follows Lambda's order: the extensions start first, the
//! bootstrap once every one of them has registered; init (and each invocation) completes when
//! the runtime and every extension wait in `next`; shutdown sends the runtime SIGTERM first, then
//! `SHUTDOWN` events to the extensions that asked for them.
//!
//! A sandbox knows nothing of the function or the pool that own it: it is started from a plain
//! [`Spec`], and tells its [`Owner`] the [`Fact`]s that change who may use it. The Runtime API
//! serves it from outside (`runtime_api`), calling the methods here.
//!
//! Layout: `state` (phases and transitions, no processes), `slots` (the in-flight set of a
//! multi-concurrent environment), `concurrent` (what such a sandbox does differently), `spawn`
//! (starting the processes),
//! `exit` (reaping, crashes, timeouts, stopping), `freezer` (idle periods), `streaming`
//! (streamed answers), `reports` (answers, `END`/`REPORT`, platform events).

mod concurrent;
mod exit;
mod freezer;
mod handoff;
mod reports;
mod slots;
mod spawn;
mod state;
mod streaming;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use coldstart_protocol::extension::EventType;
use nix::unistd::Pid;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::epoch_ms;
use crate::extensions::{ExtensionNext, ExtensionRefusal};
use crate::invocation::{Invocation, InvokeResponse, Outcome};
use crate::logs::LogCapture;
use crate::process::StatusFile;
use crate::telemetry::Telemetry;

pub(crate) use reports::{Report, ResponseTiming};
pub(crate) use spawn::Spec;
pub(crate) use state::Vacated;
pub(crate) use state::{Delivery, InitFailure, InitResult, NextAction, Refusal};
use state::{Machine, Step};

/// A lifecycle fact a sandbox tells its owner, in the order they happen. They are told at once
/// (never under the sandbox's lock), so that the owner's counts change in the same instant as
/// the sandbox's state: an invocation arriving in between sees both or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fact {
    /// Its processes started (told before anything can reap them).
    Started,
    /// It answered its invocation and will call `next` soon.
    Responded,
    /// The runtime and every extension are back in `next`: it can take an invocation. The
    /// owner parks it ([`Sandbox::park`]), hands it on, or retires it.
    Ready,
    /// It can take no more invocations; it left the phase `Vacated`.
    Dead(Vacated),
    /// It has been parked idle for the function's idle timeout: the owner may stop it.
    IdleExpired,
    /// Every process is reaped.
    Gone,
    /// A multi-concurrent sandbox finished init: it takes this many invocations more at once
    /// (besides the one it was started for). Each answer then frees its slot with `Responded`
    /// and `Ready` at once.
    Opened(usize),
}

/// Whoever owns sandboxes (a function and its pool) hears their [`Fact`]s.
pub(crate) trait Owner: Send + Sync {
    fn tell(&self, sandbox: &Arc<Sandbox>, fact: Fact);
}

/// One execution environment.
pub(crate) struct Sandbox {
    pub(crate) id: u64,
    /// What it runs.
    pub(crate) spec: Arc<Spec>,
    /// Who hears its facts; gone owners hear nothing.
    owner: Weak<dyn Owner>,
    /// The code generation of its owner it runs.
    pub(crate) generation: u64,
    /// The bootstrap's pid, which leads its process group; 0 until it is started.
    pid: AtomicU32,
    /// The process group of the external extensions, when there are any.
    extension_group: Option<Pid>,
    /// The external extensions' executable file names and pids.
    extension_pids: Vec<(String, u32)>,
    /// `AWS_LAMBDA_RUNTIME_API` of this sandbox.
    runtime_api: String,
    /// The sandbox's own port (`PORT`, `AWS_LWA_PORT`), when the function asks for one.
    port: Option<u16>,
    pub(crate) logs: Arc<LogCapture>,
    /// The external extensions' output, captured apart from the function's.
    extension_logs: Option<Arc<LogCapture>>,
    /// The sandbox's platform event stream: every lifecycle fact and log line, for the
    /// Telemetry API's subscribers.
    pub(crate) telemetry: Arc<Telemetry>,
    state: Mutex<Machine>,
    /// The bootstrap's `/proc` status, for its peak memory; set when it starts.
    status: OnceLock<StatusFile>,
    /// An in-process runtime's task (instead of a bootstrap process), set when it starts.
    task: OnceLock<tokio::task::AbortHandle>,
    /// Last peak RSS read, for reports written after the process is gone.
    peak_mb: AtomicU64,
    /// Cancelled once every process of the sandbox has been reaped; the Runtime API server and
    /// the freezer stop with it.
    pub(crate) gone: CancellationToken,
    /// Cancelled once the bootstrap has been reaped.
    runtime_gone: CancellationToken,
    /// Wakes the freezer task when the sandbox is parked idle.
    parked: Notify,
    /// An in-process runtime's way into the Runtime API without TCP.
    connector: Option<crate::in_process::Connector>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("function", &&*self.spec.name)
            .field("id", &self.id)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Tells the owner `fact`.
    fn tell(self: &Arc<Self>, fact: Fact) {
        if let Some(owner) = self.owner.upgrade() {
            owner.tell(self, fact);
        }
    }

    /// Carries out what a `next` left to do.
    fn after_next(self: &Arc<Self>, step: Step) {
        match step {
            Step::Stay => {}
            Step::InitDone(done) => {
                self.publish_init_ready(&done);
                if self.is_concurrent() {
                    self.tell(Fact::Opened(self.spec.config.max_concurrency - 1));
                }
                // The spawner dispatches next; if it gave up, the sandbox is killed anyway.
                if let Some(ready) = done.ready {
                    let _ = ready.send(Ok(()));
                }
            }
            Step::Ready => self.tell(Fact::Ready),
        }
    }

    /// Extension `name` registered for `events`: returns its identifier, and starts the
    /// bootstrap when it was the last one expected.
    pub(crate) fn register_extension(
        self: &Arc<Self>,
        name: &str,
        events: &[EventType],
    ) -> Result<String, ExtensionRefusal> {
        let (id, start) = self.lock().register_extension(name, events)?;
        if let Some(pipe) = start {
            // What the extensions printed while registering comes before the runtime's lines.
            if let Some(extension_logs) = &self.extension_logs {
                extension_logs.drain();
            }
            self.start_deferred_bootstrap(pipe);
        }
        Ok(id)
    }

    /// Extension `id` called `event/next`.
    pub(crate) fn extension_next(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<ExtensionNext, ExtensionRefusal> {
        let (next, step) = self.lock().extension_next(id, Instant::now())?;
        self.after_next(step);
        Ok(next)
    }

    /// Extension `id` reported `init/error`: init fails with `error_type`.
    pub(crate) fn extension_init_error(
        self: &Arc<Self>,
        id: &str,
        error_type: String,
        body: Bytes,
    ) -> Result<(), ExtensionRefusal> {
        let mut st = self.lock();
        st.extensions().check(id)?;
        if !matches!(st.phase(), state::Phase::Initializing { .. }) {
            return Err(ExtensionRefusal::new(
                "Extension.InvalidExtensionState",
                "init/error is only allowed during init",
            ));
        }
        drop(st);
        self.fail_init(error_type, body);
        Ok(())
    }

    /// The name extension `id` registered with.
    pub(crate) fn extension_name(&self, id: &str) -> Result<String, ExtensionRefusal> {
        self.lock().extensions().name_of(id)
    }

    /// Extension `id` reported `exit/error`; its exit will carry `error_type`.
    pub(crate) fn extension_exit_error(
        &self,
        id: &str,
        error_type: String,
    ) -> Result<(), ExtensionRefusal> {
        self.lock().extensions().exit_error(id, error_type)
    }

    /// Assigns an invocation to this idle sandbox and returns where its answer will arrive, or
    /// gives the invocation back when the sandbox is no longer idle (it died meanwhile).
    pub(crate) fn dispatch(
        &self,
        invocation: Arc<Invocation>,
    ) -> Result<oneshot::Receiver<InvokeResponse>, Arc<Invocation>> {
        let (reply, answer) = oneshot::channel();
        let mut st = self.lock();
        if !st.can_dispatch() {
            return Err(invocation);
        }
        let timeout = self.spec.config.timeout;
        let deadline_ms = epoch_ms(SystemTime::now() + timeout);
        // START is written before the runtime can see the event, so the function's own lines
        // always follow it.
        self.logs
            .begin_invocation(&invocation.request_id, invocation.log_tail);
        self.publish_start(&invocation);
        let now = (Instant::now(), SystemTime::now());
        let thaw = st.dispatch(invocation, deadline_ms, timeout, now, reply)?;
        if thaw {
            self.signal_all(nix::sys::signal::Signal::SIGCONT);
        }
        Ok(answer)
    }

    /// The runtime called `next`.
    pub(crate) fn next(self: &Arc<Self>) -> NextAction {
        let (action, step) = self.lock().next(Instant::now());
        self.after_next(step);
        action
    }

    /// May the runtime answer invocation `request_id` now?
    pub(crate) fn check_answer(self: &Arc<Self>, request_id: &str) -> Result<(), Refusal> {
        let checked = self.lock().answerable(request_id);
        if let Err(refusal) = &checked {
            self.late_answer(request_id, refusal);
        }
        checked
    }

    /// The runtime answered invocation `request_id` (`/response` or `/error`).
    pub(crate) fn answer(
        self: &Arc<Self>,
        request_id: &str,
        outcome: Outcome,
    ) -> Result<Option<Report>, Refusal> {
        self.answer_timed(request_id, outcome, None)
    }

    /// [`Self::answer`], with when the runtime's answer began and ended arriving (the spans of
    /// `platform.runtimeDone`).
    pub(crate) fn answer_timed(
        self: &Arc<Self>,
        request_id: &str,
        outcome: Outcome,
        timing: Option<ResponseTiming>,
    ) -> Result<Option<Report>, Refusal> {
        let answered = self.lock().answer(request_id)?;
        let running = answered.running;
        if let Some(finished) = answered.extensions_busy {
            self.bound_extensions(request_id, running.deadline, finished);
        }
        self.tell(Fact::Responded);
        self.slot_freed();
        let (done, produced) = match &outcome {
            Outcome::Response { body, .. } => (
                coldstart_protocol::telemetry::Status::Success,
                Some(body.len() as u64),
            ),
            _ => (coldstart_protocol::telemetry::Status::Error, None),
        };
        let status = outcome
            .error_type()
            .map(|t| reports::ReportStatus::Error(t.to_owned()));
        // A buffered answer without Tail goes to the caller before its runtimeDone is
        // serialised and handed to subscribers (and before END/REPORT, as ever): the record is
        // built now, with the duration as of the answer, and published right after.
        let deferred =
            matches!(running.answer, state::Answer::Pending(_)) && !running.invocation.log_tail;
        if !deferred {
            self.publish_runtime_done(&running, done, outcome.error_type(), produced, timing);
            return Ok(self.finish(running, outcome, status));
        }
        let record = self.runtime_done_wanted().then(|| {
            reports::runtime_done_record(&running, done, outcome.error_type(), produced, timing)
        });
        let report = self.finish(running, outcome, status);
        if let Some(record) = record {
            self.publish_runtime_done_record(move || record);
        }
        Ok(report)
    }

    /// [`Self::answer`], writing `END`/`REPORT` at once.
    pub(crate) fn answer_now(
        self: &Arc<Self>,
        request_id: &str,
        outcome: Outcome,
    ) -> Result<(), Refusal> {
        if let Some(report) = self.answer(request_id, outcome)? {
            self.write_report(report);
        }
        Ok(())
    }

    /// The runtime posted `/runtime/init/error`: fail init, stop the sandbox.
    pub(crate) fn init_error(
        self: &Arc<Self>,
        error_type: String,
        body: Bytes,
    ) -> Result<(), Refusal> {
        let from = self.lock().phase().name();
        if self.fail_init(error_type, body) {
            Ok(())
        } else {
            Err(Refusal::InvalidStateTransition {
                from,
                to: "InitError",
            })
        }
    }

    /// The bootstrap's process id (its process group id too), or the extensions' group before
    /// the bootstrap starts.
    pub(crate) fn pid(&self) -> u32 {
        match self.pid.load(Ordering::Acquire) {
            0 => self.extension_group.map_or(0, |g| g.as_raw() as u32),
            pid => pid,
        }
    }

    /// What it is doing now, for [`crate::Emulator::sandboxes`].
    pub(crate) fn view(&self) -> crate::snapshot::SandboxView {
        use crate::snapshot::SandboxPhase;
        let phase = match self.lock().phase() {
            state::Phase::Initializing { .. } => SandboxPhase::Init,
            state::Phase::Idle { .. } => SandboxPhase::Ready,
            state::Phase::Frozen { .. } => SandboxPhase::Frozen,
            state::Phase::Busy(_) | state::Phase::Finishing { .. } => SandboxPhase::Busy,
            state::Phase::Exited => SandboxPhase::Dead,
            state::Phase::Serving(slots) if slots.busy() == 0 => SandboxPhase::Ready,
            state::Phase::Serving(_) => SandboxPhase::Busy,
        };
        crate::snapshot::SandboxView {
            id: self.id,
            pid: self.pid(),
            phase,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

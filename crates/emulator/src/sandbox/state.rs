//! A sandbox's lifecycle as a value: its phases and the transitions between them, and nothing
//! else. No process, socket or clock lives here (times come in as arguments), so every
//! transition is unit-tested on its own; the sandbox around it holds it under one lock and
//! carries out what a transition hands back: signals, telemetry, facts for its owner.
//!
//! ```text
//!   Initializing ──runtime and extensions in `next`──▶ Idle ◀──park──▶ Idle (parked) ──▶ Frozen
//!        │                                              │  ▲                                │
//!        │ init error, crash, abandoned        dispatch │  │ runtime and extensions         │ dispatch
//!        ▼                                              ▼  │ back in `next`                 │ (thawed)
//!      Exited ◀──────── timeout, crash, reset ────────  Busy ──answer──▶ Finishing ◀─────────┘
//! ```
//!
//! Beside the phase, [`Ending`] says why the processes will exit (a stop, a reset, a failed
//! extension), so that an exit can be told from a crash.
//!
//! Every invocation's reply sender lives inside [`Phase::Busy`]: whichever transition moves the
//! machine out of `Busy` hands it back, once, so each invocation gets exactly one answer.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use coldstart_protocol::extension::{Event, EventType, Tracing};
use tokio::sync::oneshot;

pub(crate) use super::handoff::{Answer, Delivery, NextAction, Refusal, Running};
use super::slots::Slots;
use crate::extensions::{ExtensionNext, ExtensionRefusal, Extensions};
use crate::invocation::{Invocation, InvokeResponse, StreamItem};

/// Why a sandbox never became ready.
#[derive(Debug)]
pub(crate) enum InitFailure {
    /// The bootstrap exited before calling `next`; the description is rapid's wording.
    Exited(String),
    /// The runtime posted `/runtime/init/error`.
    Reported {
        /// `Lambda-Runtime-Function-Error-Type`, or `Runtime.Unknown`.
        error_type: String,
        /// The error document, forwarded to the caller unchanged.
        body: Bytes,
    },
}

/// What the runtime's first `next` (or its death) tells the one who spawned the sandbox.
pub(crate) type InitResult = Result<(), InitFailure>;

/// The phase of a sandbox: what its runtime is doing.
pub(crate) enum Phase {
    /// The extensions register and the bootstrap starts; the runtime has not called `next` yet.
    Initializing {
        started: Instant,
        /// The spawner waits on the other end; taken when init ends.
        ready: Option<oneshot::Sender<InitResult>>,
        /// The log pipe's write end, kept for a bootstrap that starts once every external
        /// extension registered; dropped with the phase.
        log_pipe: Option<io::PipeWriter>,
        /// A multi-concurrent runtime's workers that called `next` before the last one (which
        /// is in `next_waiter`); dropping them answers their `next` with an error.
        workers: Vec<oneshot::Sender<Delivery>>,
    },
    /// The runtime waits in `next` with no work; `parked`: since when the owner keeps it idle
    /// (the freezer and the idle timeout count from then).
    Idle { parked: Option<Instant> },
    /// Idle, and its processes are stopped (SIGSTOP) since the idle period that began at
    /// `parked`.
    Frozen { parked: Instant },
    /// An invocation is assigned; waiting for `/response` or `/error`.
    Busy(Running),
    /// The invocation was answered; waiting for the runtime (and the extensions) to call
    /// `next` again.
    Finishing {
        /// The task bounding extensions still at work waits on the other end; dropping it (the
        /// phase ends) stops that task.
        _extensions_deadline: Option<oneshot::Sender<()>>,
    },
    /// The runtime exited or is being killed; nothing more happens here.
    Exited,
    /// A multi-concurrent environment past init: it runs up to `max_concurrency` invocations
    /// at once, never frozen; the in-flight set lives in [`Slots`].
    Serving(Slots),
}

impl Phase {
    /// rapid's name of the state, for refusals.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Phase::Initializing { .. } => "Started",
            Phase::Idle { .. } | Phase::Frozen { .. } => "Ready",
            Phase::Busy(_) => "Running",
            Phase::Finishing { .. } => "RuntimeResponseSentState",
            Phase::Exited => "Exited",
            Phase::Serving(_) => "Running",
        }
    }

    /// What a sandbox leaving this phase for good leaves in its owner's counts.
    pub(crate) fn vacated(&self) -> Vacated {
        match self {
            Phase::Idle { .. } | Phase::Frozen { .. } => Vacated::Idle,
            Phase::Finishing { .. } => Vacated::Finishing,
            Phase::Serving(_) => Vacated::Serving,
            _ => Vacated::Other,
        }
    }
}

/// The phase a dead sandbox left, so that its owner can fix its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vacated {
    /// It was idle (in the idle list).
    Idle,
    /// It had answered and was about to call `next`.
    Finishing,
    /// Starting or busy.
    Other,
    /// A multi-concurrent environment past init: its free slots were in the idle list.
    Serving,
}

/// Why the sandbox's processes will exit, beside the phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Nobody asked: an exit is a crash.
    Live,
    /// Its owner stops it: the exit is expected, and the extensions get `SHUTDOWN`.
    Stopping,
    /// The runtime was killed at its deadline while extensions subscribe to telemetry: they
    /// outlive it until the invocation's last events are delivered.
    Resetting,
    /// An extension crashed: the bootstrap's exit reports this instead of its own.
    Failed { error_type: String, cause: String },
}

/// Init is over: what to publish, and whom to tell.
pub(crate) struct InitDone {
    pub(crate) duration: Duration,
    /// The spawner's channel, when it still waits.
    pub(crate) ready: Option<oneshot::Sender<InitResult>>,
    /// Every extension's name and events, for `platform.extension`.
    pub(crate) extensions: Vec<(String, Vec<String>)>,
}

/// What the sandbox does after a `next` (the runtime's or an extension's).
pub(crate) enum Step {
    /// Nothing more.
    Stay,
    /// Init is complete.
    InitDone(InitDone),
    /// The invocation is over for the runtime and every extension: the sandbox can take another.
    Ready,
}

/// An answered invocation, out of [`Phase::Busy`].
pub(crate) struct Answered {
    pub(crate) running: Running,
    /// When extensions still work on the invocation: dropped (the receiver wakes) once they
    /// all called `next`.
    pub(crate) extensions_busy: Option<oneshot::Receiver<()>>,
}

/// A streamed answer begun.
pub(crate) struct StreamStarted {
    /// The caller's channel, to answer with the stream at once.
    pub(crate) reply: oneshot::Sender<InvokeResponse>,
    /// A forced end (deadline, runtime's death) arrives here.
    pub(crate) forced_end: oneshot::Receiver<StreamItem>,
    /// Wakes when the stream ended first; the deadline task waits on it.
    pub(crate) ended: oneshot::Receiver<()>,
    pub(crate) deadline: Instant,
}

/// The runtime's exit as the machine saw it.
pub(crate) struct RuntimeExited {
    /// The phase it ended.
    pub(crate) previous: Phase,
    /// The sandbox was being stopped.
    pub(crate) expected: bool,
    /// The extensions outlive the runtime (a stop or a reset).
    pub(crate) keep_extensions: bool,
    /// This exit began a reset: the extensions are to be ended once the last events are out.
    pub(crate) resets: bool,
    /// Why, when an extension's crash ended it: `(errorType, message)`.
    pub(crate) failure: Option<(String, String)>,
}

/// An external extension crashed.
pub(crate) struct ExtensionCrash {
    pub(crate) error_type: String,
    /// Every extension had registered: the bootstrap runs, and its exit answers for the crash.
    /// Otherwise init fails at once.
    pub(crate) after_init: bool,
}

/// The state of one sandbox: its phase and what lives beside it.
pub(crate) struct Machine {
    phase: Phase,
    ending: Ending,
    /// The Runtime API's `next` handler waits on the other end while the runtime has no work;
    /// dropping it answers that `next` with an error.
    next_waiter: Option<oneshot::Sender<Delivery>>,
    /// The last invocation answered or timed out, to tell a second answer from a wrong id.
    last_request_id: Option<String>,
    /// How long init took; reported on the first invocation's `REPORT`.
    init_duration: Option<Duration>,
    /// The extensions registered with the Extensions API.
    extensions: Extensions,
    /// Processes of the sandbox not reaped yet (bootstrap and extensions).
    alive: usize,
    /// How many invocations it runs at once; above 1, init leads to [`Phase::Serving`].
    max_concurrency: usize,
}

impl Machine {
    /// A sandbox starting at `started`, with `alive` processes already running, expecting the
    /// external extensions `extensions` to register.
    pub(crate) fn new(
        started: Instant,
        ready: oneshot::Sender<InitResult>,
        log_pipe: Option<io::PipeWriter>,
        extensions: Vec<String>,
        alive: usize,
    ) -> Self {
        Self {
            phase: Phase::Initializing {
                started,
                ready: Some(ready),
                log_pipe,
                workers: Vec::new(),
            },
            ending: Ending::Live,
            next_waiter: None,
            last_request_id: None,
            init_duration: None,
            extensions: Extensions::expecting(extensions),
            alive,
            max_concurrency: 1,
        }
    }

    /// The same sandbox running up to `max` invocations at once (1: one at a time).
    pub(crate) fn concurrent(mut self, max: usize) -> Self {
        self.max_concurrency = max.max(1);
        self
    }

    /// Whether it runs several invocations at once.
    pub(crate) fn is_concurrent(&self) -> bool {
        self.max_concurrency > 1
    }

    pub(crate) fn phase(&self) -> &Phase {
        &self.phase
    }

    #[cfg(test)]
    pub(crate) fn ending(&self) -> &Ending {
        &self.ending
    }

    pub(crate) fn extensions(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The bootstrap must not run: init was abandoned, an extension failed or a stop began.
    pub(crate) fn doomed(&self) -> bool {
        matches!(self.phase, Phase::Exited) || self.ending != Ending::Live
    }

    // ---- init ----

    /// Extension `name` registered for `events`: its identifier, and whether the bootstrap
    /// starts now (it completed the set), with the log pipe to write to.
    pub(crate) fn register_extension(
        &mut self,
        name: &str,
        events: &[EventType],
    ) -> Result<(String, Option<Option<io::PipeWriter>>), ExtensionRefusal> {
        if !matches!(self.phase, Phase::Initializing { .. }) {
            return Err(ExtensionRefusal::new(
                "Extension.RegistrationClosed",
                "Extension registration closed already",
            ));
        }
        // The bootstrap starts with the registration that completes the set (at once, at
        // spawn, when there are no external extensions).
        let completes = !self.extensions.all_registered();
        let id = self.extensions.register(name, events)?;
        if !(completes && self.extensions.all_registered()) {
            return Ok((id, None));
        }
        self.alive += 1;
        let pipe = match &mut self.phase {
            Phase::Initializing { log_pipe, .. } => log_pipe.take(),
            _ => None,
        };
        Ok((id, Some(pipe)))
    }

    /// Init is complete once the bootstrap runs, the runtime waits in `next` and every
    /// extension waits in `event/next`: the sandbox becomes idle.
    fn complete_init(&mut self, now: Instant) -> Step {
        if !self.extensions.all_registered()
            || self.next_waiter.is_none()
            || !self.extensions.all_ready()
        {
            return Step::Stay;
        }
        let Phase::Initializing { started, ready, .. } = &mut self.phase else {
            return Step::Stay;
        };
        let ready = ready.take();
        let duration = now.saturating_duration_since(*started);
        self.init_duration = Some(duration);
        self.phase = if self.is_concurrent() {
            let Phase::Initializing { workers, .. } = &mut self.phase else {
                return Step::Stay;
            };
            let workers = std::mem::take(workers);
            Phase::Serving(Slots::new(
                self.max_concurrency,
                workers.into_iter().chain(self.next_waiter.take()),
            ))
        } else {
            Phase::Idle { parked: None }
        };
        Step::InitDone(InitDone {
            duration,
            ready,
            extensions: self.extensions.states(),
        })
    }

    /// The runtime reported an init error, or an extension did, or one crashed during init:
    /// init fails (`reset_extensions`: the extensions outlive the runtime for the last events).
    /// Hands back when it began and the spawner's channel; `None` when init was over already.
    pub(crate) fn fail_init(
        &mut self,
        reset_extensions: bool,
    ) -> Option<(Instant, Option<oneshot::Sender<InitResult>>)> {
        if !matches!(self.phase, Phase::Initializing { .. }) {
            return None;
        }
        self.reset(reset_extensions);
        match std::mem::replace(&mut self.phase, Phase::Exited) {
            Phase::Initializing { started, ready, .. } => Some((started, ready)),
            _ => None,
        }
    }

    /// The spawner gave up on init (it took too long): when it began, or `None` when it was over.
    pub(crate) fn abandon_init(&mut self) -> Option<Instant> {
        self.fail_init(false).map(|(started, _)| started)
    }

    /// The environment is reset: with `reset_extensions`, its extensions outlive the runtime
    /// until the last events are delivered (unless it is ending for another reason already).
    fn reset(&mut self, reset_extensions: bool) {
        if reset_extensions && self.ending == Ending::Live {
            self.ending = Ending::Resetting;
        }
    }

    // ---- the runtime's and extensions' `next` ----

    /// The runtime called `next`.
    pub(crate) fn next(&mut self, now: Instant) -> (NextAction, Step) {
        match &mut self.phase {
            Phase::Initializing { workers, .. } => {
                // A multi-concurrent runtime's workers all wait; the last one's sender is in
                // `next_waiter`, where init completion looks.
                if self.max_concurrency > 1
                    && let Some(earlier) = self.next_waiter.take()
                    && workers.len() + 1 < self.max_concurrency
                {
                    workers.push(earlier);
                }
                let rx = self.wait_next();
                (NextAction::Wait(rx), self.complete_init(now))
            }
            Phase::Serving(slots) => (slots.next(), Step::Stay),
            Phase::Finishing { .. } => {
                let rx = self.wait_next();
                // With extensions still at work on the invocation, the last of them to call
                // `next` makes the sandbox idle.
                (NextAction::Wait(rx), self.leave_finishing())
            }
            // A second `next` replaces the first (whose connection is gone or will be answered
            // with an error when its waiter is dropped).
            Phase::Idle { .. } | Phase::Frozen { .. } => {
                (NextAction::Wait(self.wait_next()), Step::Stay)
            }
            Phase::Busy(running) if !running.delivered => {
                running.delivered = true;
                let delivery = Delivery {
                    invocation: running.invocation.clone(),
                    deadline_ms: running.deadline_ms,
                };
                (NextAction::Deliver(delivery), Step::Stay)
            }
            Phase::Busy(_) => (
                NextAction::Refuse(Refusal::InvalidStateTransition {
                    from: "Running",
                    to: "Ready",
                }),
                Step::Stay,
            ),
            Phase::Exited => (NextAction::Refuse(Refusal::Gone), Step::Stay),
        }
    }

    fn wait_next(&mut self) -> oneshot::Receiver<Delivery> {
        let (tx, rx) = oneshot::channel();
        self.next_waiter = Some(tx);
        rx
    }

    /// Extension `id` called `event/next`.
    pub(crate) fn extension_next(
        &mut self,
        id: &str,
        now: Instant,
    ) -> Result<(ExtensionNext, Step), ExtensionRefusal> {
        let next = self.extensions.next(id)?;
        let step = match (&next, &self.phase) {
            (ExtensionNext::Wait(_), Phase::Initializing { .. }) => self.complete_init(now),
            (ExtensionNext::Wait(_), Phase::Finishing { .. }) if self.next_waiter.is_some() => {
                self.leave_finishing()
            }
            _ => Step::Stay,
        };
        Ok((next, step))
    }

    /// Once the runtime and every extension wait in `next`, the invocation is over.
    fn leave_finishing(&mut self) -> Step {
        if !matches!(self.phase, Phase::Finishing { .. }) || !self.extensions.all_ready() {
            return Step::Stay;
        }
        self.phase = Phase::Idle { parked: None };
        Step::Ready
    }

    // ---- invocations ----

    /// Whether an invocation can be dispatched (the sandbox is idle or frozen).
    pub(crate) fn can_dispatch(&self) -> bool {
        match &self.phase {
            Phase::Idle { .. } | Phase::Frozen { .. } => true,
            Phase::Serving(slots) => slots.has_room(),
            _ => false,
        }
    }

    /// Assigns `invocation` (the caller waits on `reply`), handing it to a waiting `next` and to
    /// the extensions that subscribed to `INVOKE`. Returns whether the sandbox was frozen (it
    /// must be thawed), or the invocation when the sandbox cannot take it.
    pub(crate) fn dispatch(
        &mut self,
        invocation: Arc<Invocation>,
        deadline_ms: u64,
        timeout: Duration,
        now: (Instant, SystemTime),
        reply: oneshot::Sender<InvokeResponse>,
    ) -> Result<bool, Arc<Invocation>> {
        if !self.can_dispatch() {
            return Err(invocation);
        }
        if let Phase::Serving(slots) = &mut self.phase {
            // Extensions get no INVOKE events here: the invocations overlap.
            let running = Running {
                invocation,
                deadline_ms,
                deadline: now.0 + timeout,
                delivered: false,
                started: now.0,
                started_at: now.1,
                init: self.init_duration.take(),
                answer: Answer::Pending(reply),
            };
            return slots
                .dispatch(running)
                .map(|()| false)
                .map_err(|back| back.invocation);
        }
        let thaw = matches!(self.phase, Phase::Frozen { .. });
        let delivered = match self.next_waiter.take() {
            Some(waiter) => waiter
                .send(Delivery {
                    invocation: invocation.clone(),
                    deadline_ms,
                })
                .is_ok(),
            None => false,
        };
        if !self.extensions.is_empty() {
            self.extensions.invoke(&Event::Invoke {
                deadline_ms,
                request_id: invocation.request_id.clone(),
                invoked_function_arn: invocation.invoked_arn.clone(),
                tracing: Some(Tracing {
                    kind: "X-Amzn-Trace-Id".into(),
                    value: invocation.trace_id.clone(),
                })
                .filter(|t| !t.value.is_empty()),
            });
        }
        self.phase = Phase::Busy(Running {
            invocation,
            deadline_ms,
            deadline: now.0 + timeout,
            delivered,
            started: now.0,
            started_at: now.1,
            init: self.init_duration.take(),
            answer: Answer::Pending(reply),
        });
        Ok(thaw)
    }

    /// May the runtime answer invocation `request_id` now?
    pub(crate) fn answerable(&self, request_id: &str) -> Result<(), Refusal> {
        let last = self.last_request_id.as_deref() == Some(request_id);
        match &self.phase {
            Phase::Serving(slots) => slots.answerable(request_id),
            Phase::Busy(r) if r.invocation.request_id == request_id && r.delivered => Ok(()),
            Phase::Exited if last => Err(Refusal::InvokeTimeout),
            _ if last => Err(Refusal::InvalidStateTransition {
                from: "RuntimeResponseSentState",
                to: "InvocationResponse",
            }),
            _ => Err(Refusal::InvalidRequestId),
        }
    }

    /// The runtime answered invocation `request_id` (`/response`, `/error`): the sandbox is
    /// finishing.
    pub(crate) fn answer(&mut self, request_id: &str) -> Result<Answered, Refusal> {
        self.answerable(request_id)?;
        self.take_running(request_id)
    }

    /// A worker answered invocation `request_id` after its timeout: true when that frees the
    /// worker's slot (a multi-concurrent environment only; the one-at-a-time one was reset).
    pub(crate) fn release_overdue(&mut self, request_id: &str) -> bool {
        match &mut self.phase {
            Phase::Serving(slots) => slots.release_overdue(request_id),
            _ => false,
        }
    }

    fn take_running(&mut self, request_id: &str) -> Result<Answered, Refusal> {
        if let Phase::Serving(slots) = &mut self.phase {
            let running = slots.take(request_id).ok_or(Refusal::InvalidRequestId)?;
            return Ok(Answered {
                running,
                extensions_busy: None,
            });
        }
        let (guard, extensions_busy) = if self.extensions.all_ready() {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        };
        let finishing = Phase::Finishing {
            _extensions_deadline: guard,
        };
        let Phase::Busy(running) = std::mem::replace(&mut self.phase, finishing) else {
            return Err(Refusal::InvalidRequestId);
        };
        self.last_request_id = Some(request_id.to_owned());
        Ok(Answered {
            running,
            extensions_busy,
        })
    }

    /// The runtime began a streamed `/response` to `request_id`: the caller's channel is handed
    /// back to be answered with the stream, and the invocation keeps running until the stream
    /// ends.
    pub(crate) fn start_stream(&mut self, request_id: &str) -> Result<StreamStarted, Refusal> {
        self.answerable(request_id)?;
        let running = match &mut self.phase {
            Phase::Busy(running) => running,
            Phase::Serving(slots) => slots.delivered_mut(request_id)?,
            _ => return Err(Refusal::InvalidRequestId),
        };
        if !matches!(running.answer, Answer::Pending(_)) {
            return Err(Refusal::InvalidStateTransition {
                from: "Running",
                to: "InvocationResponse",
            });
        }
        let (abort, forced_end) = oneshot::channel();
        let (deadline_guard, ended) = oneshot::channel::<()>();
        let streaming = Answer::Streaming {
            abort,
            _deadline: deadline_guard,
        };
        let Answer::Pending(reply) = std::mem::replace(&mut running.answer, streaming) else {
            return Err(Refusal::InvalidRequestId);
        };
        Ok(StreamStarted {
            reply,
            forced_end,
            ended,
            deadline: running.deadline,
        })
    }

    /// The streamed answer to `request_id` ended; 410 when the sandbox ended it first.
    pub(crate) fn finish_stream(&mut self, request_id: &str) -> Result<Answered, Refusal> {
        let streaming = match &mut self.phase {
            Phase::Busy(r) => {
                r.invocation.request_id == request_id
                    && matches!(r.answer, Answer::Streaming { .. })
            }
            Phase::Serving(slots) => slots
                .delivered_mut(request_id)
                .is_ok_and(|r| matches!(r.answer, Answer::Streaming { .. })),
            _ => false,
        };
        if !streaming {
            return Err(Refusal::InvokeTimeout);
        }
        self.take_running(request_id)
    }

    /// The deadline of `request_id` passed in a multi-concurrent environment: only that
    /// invocation is taken out, to be answered with the timeout; the environment and the other
    /// invocations go on, as in Lambda Managed Instances. The flag says whether its slot is
    /// free at once (otherwise the worker keeps it until it answers late).
    pub(crate) fn time_out_one(&mut self, request_id: &str) -> Option<(Running, bool)> {
        match &mut self.phase {
            Phase::Serving(slots) => slots.time_out(request_id),
            _ => None,
        }
    }

    /// The deadline of `request_id` passed: the sandbox is reset (`reset_extensions`: its
    /// extensions outlive the runtime for the last events). `None` when it was answered.
    pub(crate) fn time_out(&mut self, request_id: &str, reset_extensions: bool) -> Option<Running> {
        if !matches!(&self.phase, Phase::Busy(r) if r.invocation.request_id == request_id) {
            return None;
        }
        let Phase::Busy(running) = std::mem::replace(&mut self.phase, Phase::Exited) else {
            return None;
        };
        self.last_request_id = Some(request_id.to_owned());
        self.next_waiter = None;
        self.reset(reset_extensions);
        Some(running)
    }

    /// The function's deadline passed while extensions still worked on `request_id` after the
    /// runtime answered: true when the sandbox is to be reset for it.
    pub(crate) fn overrun(&mut self, request_id: &str) -> bool {
        let overran = matches!(self.phase, Phase::Finishing { .. })
            && self.last_request_id.as_deref() == Some(request_id)
            && !self.extensions.all_ready();
        if overran {
            self.phase = Phase::Exited;
            self.next_waiter = None;
        }
        overran
    }

    // ---- idle ----

    /// The owner parked the sandbox idle at `now`; true when the freezer is to be woken.
    pub(crate) fn park(&mut self, now: Instant) -> bool {
        match &mut self.phase {
            Phase::Idle { parked } => {
                *parked = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Since when the sandbox is parked idle, and whether it is frozen; `None` once it is
    /// ending.
    pub(crate) fn idle_since(&self) -> Option<(Instant, bool)> {
        if self.ending != Ending::Live {
            return None;
        }
        match self.phase {
            Phase::Idle { parked } => parked.map(|since| (since, false)),
            Phase::Frozen { parked } => Some((parked, true)),
            _ => None,
        }
    }

    /// Freezes the sandbox if it is still in the idle period that began at `since` and nobody
    /// is ending it; true when its processes are to be stopped.
    pub(crate) fn freeze(&mut self, since: Instant) -> bool {
        let due = matches!(self.phase, Phase::Idle { parked: Some(p) } if p == since)
            && self.ending == Ending::Live;
        if due {
            self.phase = Phase::Frozen { parked: since };
        }
        due
    }

    // ---- the end ----

    /// The owner stops the sandbox; true when it was frozen (a stopped process only sees
    /// SIGTERM once it runs again).
    pub(crate) fn stop(&mut self) -> bool {
        if !matches!(self.ending, Ending::Failed { .. }) {
            self.ending = Ending::Stopping;
        }
        match self.phase {
            Phase::Frozen { .. } => {
                self.phase = Phase::Idle { parked: None };
                true
            }
            Phase::Idle { .. } => {
                self.phase = Phase::Idle { parked: None };
                false
            }
            _ => false,
        }
    }

    /// The bootstrap exited; unless the sandbox was ending already, that is a crash, and the
    /// environment is reset (`reset_extensions`: its extensions outlive the runtime for the
    /// last events).
    pub(crate) fn runtime_exited(&mut self, reset_extensions: bool) -> RuntimeExited {
        let previous = std::mem::replace(&mut self.phase, Phase::Exited);
        let resets = reset_extensions && self.ending == Ending::Live;
        self.reset(reset_extensions);
        let expected = self.ending == Ending::Stopping;
        // On a graceful stop, a `next` held by another process (an extension serving as the
        // runtime client, like the web adapter) stays open: that process gets its SHUTDOWN or
        // is stopped, rather than an error to log. It is closed with the sandbox.
        if !expected {
            self.next_waiter = None;
        }
        let failure = match &self.ending {
            Ending::Failed { error_type, cause } => Some((error_type.clone(), cause.clone())),
            _ => None,
        };
        RuntimeExited {
            previous,
            expected,
            keep_extensions: matches!(self.ending, Ending::Stopping | Ending::Resetting),
            resets,
            failure,
        }
    }

    /// External extension `name` exited with `cause`: a crash unless the sandbox is stopping or
    /// over already. After init, the sandbox fails with the crash's error type once the
    /// bootstrap (killed by the caller) exits.
    pub(crate) fn extension_exited(&mut self, name: &str, cause: &str) -> Option<ExtensionCrash> {
        if self.ending == Ending::Stopping || matches!(self.phase, Phase::Exited) {
            return None;
        }
        let error_type = self
            .extensions
            .exit_error_of(name)
            .unwrap_or_else(|| "Extension.Crash".to_owned());
        let after_init = self.extensions.all_registered();
        if after_init {
            self.ending = Ending::Failed {
                error_type: error_type.clone(),
                cause: cause.to_owned(),
            };
        }
        Some(ExtensionCrash {
            error_type,
            after_init,
        })
    }

    /// One more process was reaped; true after the last: every waiter is let go.
    pub(crate) fn reaped(&mut self) -> bool {
        self.alive = self.alive.saturating_sub(1);
        if self.alive > 0 {
            return false;
        }
        self.extensions.close();
        self.next_waiter = None;
        if let Phase::Initializing { log_pipe, .. } = &mut self.phase {
            *log_pipe = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(id: &str) -> Arc<Invocation> {
        Arc::new(Invocation {
            request_id: id.into(),
            payload: Bytes::from_static(b"{}"),
            content_type: None,
            invoked_arn: "arn".into(),
            trace_id: String::new(),
            client_context: None,
            tenant_id: None,
            log_tail: false,
        })
    }

    fn machine(extensions: &[&str]) -> (Machine, oneshot::Receiver<InitResult>) {
        let (tx, rx) = oneshot::channel();
        let names = extensions.iter().map(|n| (*n).to_owned()).collect();
        let alive = if extensions.is_empty() {
            1
        } else {
            extensions.len()
        };
        (Machine::new(Instant::now(), tx, None, names, alive), rx)
    }

    /// A machine past init, idle.
    fn ready() -> Machine {
        let (mut m, _rx) = machine(&[]);
        let (_, step) = m.next(Instant::now());
        assert!(matches!(step, Step::InitDone(_)));
        m
    }

    /// A machine running `id`, delivered to the runtime; the caller's end of the answer.
    fn busy(id: &str) -> (Machine, oneshot::Receiver<InvokeResponse>) {
        let mut m = ready();
        let (reply, answer) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        assert_eq!(
            m.dispatch(invocation(id), 0, Duration::from_secs(3), now, reply)
                .ok(),
            Some(false)
        );
        (m, answer)
    }

    /// A multi-concurrent machine (`max` at once) past init, with `workers` waiting in `next`.
    fn serving(max: usize, workers: usize) -> (Machine, Vec<oneshot::Receiver<Delivery>>) {
        let (tx, _rx) = oneshot::channel();
        let mut m = Machine::new(Instant::now(), tx, None, Vec::new(), 1).concurrent(max);
        let mut waiting = Vec::new();
        for n in 0..workers {
            let (action, step) = m.next(Instant::now());
            let NextAction::Wait(rx) = action else {
                panic!("worker {n} waits");
            };
            // Init ends with the first worker in `next`, as in Lambda Managed Instances.
            assert_eq!(n == 0, matches!(step, Step::InitDone(_)));
            waiting.push(rx);
        }
        (m, waiting)
    }

    fn dispatch_to(m: &mut Machine, id: &str) -> Result<oneshot::Receiver<InvokeResponse>, ()> {
        let (reply, answer) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        m.dispatch(invocation(id), 0, Duration::from_secs(3), now, reply)
            .map(|_| answer)
            .map_err(|_| ())
    }

    #[test]
    fn a_concurrent_sandbox_hands_each_invocation_to_its_own_waiting_worker() {
        let (mut m, mut workers) = serving(3, 3);
        for id in ["a", "b", "c"] {
            assert!(dispatch_to(&mut m, id).is_ok());
        }
        let ids: Vec<String> = workers
            .iter_mut()
            .map(|rx| rx.try_recv().map(|d| d.invocation.request_id.clone()))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(!m.can_dispatch(), "three at once at most");
        assert!(dispatch_to(&mut m, "d").is_err());
        // Answers go by request id; the others stay in flight.
        assert!(m.answer("b").is_ok());
        assert_eq!(m.answerable("b"), Err(Refusal::InvalidRequestId));
        assert!(m.answerable("a").is_ok() && m.answerable("c").is_ok());
        assert!(m.can_dispatch(), "the answer freed a slot");
        assert_eq!(m.phase().name(), "Running");
    }

    #[test]
    fn a_concurrent_invocation_waits_for_a_worker_and_no_worker_gets_two() {
        let (mut m, _workers) = serving(2, 1);
        assert!(dispatch_to(&mut m, "a").is_ok());
        assert!(dispatch_to(&mut m, "b").is_ok());
        let (action, _) = m.next(Instant::now());
        assert!(matches!(action, NextAction::Deliver(d) if d.invocation.request_id == "b"));
        // Both workers are busy: a third `next` is refused.
        let (action, _) = m.next(Instant::now());
        assert!(matches!(action, NextAction::Refuse(_)));
    }

    #[test]
    fn a_concurrent_timeout_fails_one_invocation_and_keeps_the_environment() {
        let (mut m, _workers) = serving(2, 2);
        let _a = dispatch_to(&mut m, "a");
        let _b = dispatch_to(&mut m, "b");
        let Some((running, free)) = m.time_out_one("a") else {
            panic!("a times out");
        };
        assert_eq!(running.invocation.request_id, "a");
        assert!(!free, "its worker still runs it");
        assert!(m.time_out_one("a").is_none(), "once");
        assert!(matches!(m.phase(), Phase::Serving(_)));
        assert!(m.answerable("b").is_ok(), "the other goes on");
        assert!(!m.can_dispatch(), "the overdue worker keeps its slot");
        assert_eq!(m.answerable("a"), Err(Refusal::InvokeTimeout));
        assert!(m.release_overdue("a"));
        assert!(!m.release_overdue("a"));
        assert!(m.can_dispatch());
        assert_eq!(m.ending(), &Ending::Live);
    }

    #[test]
    fn a_concurrent_timeout_before_delivery_frees_the_slot_at_once() {
        let (mut m, _workers) = serving(2, 1);
        let _a = dispatch_to(&mut m, "a");
        let _b = dispatch_to(&mut m, "b");
        assert!(matches!(m.time_out_one("b"), Some((_, true))));
        assert!(m.can_dispatch());
        let (action, _) = m.next(Instant::now());
        assert!(
            matches!(action, NextAction::Wait(_)),
            "nothing left to deliver"
        );
    }

    #[test]
    fn a_concurrent_crash_hands_back_every_invocation_in_flight() {
        let (mut m, _workers) = serving(3, 3);
        let _a = dispatch_to(&mut m, "a");
        let _b = dispatch_to(&mut m, "b");
        let exit = m.runtime_exited(false);
        let Phase::Serving(mut slots) = exit.previous else {
            panic!("it was serving");
        };
        assert_eq!(exit_vacated(&slots), Vacated::Serving);
        let mut ids: Vec<String> = slots
            .drain()
            .into_iter()
            .map(|r| r.invocation.request_id.clone())
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
    }

    fn exit_vacated(slots: &Slots) -> Vacated {
        let _ = slots;
        Phase::Serving(Slots::new(1, Vec::new())).vacated()
    }

    #[test]
    fn a_concurrent_stream_is_answered_by_its_own_id() {
        let (mut m, _workers) = serving(2, 2);
        let _a = dispatch_to(&mut m, "a");
        let _b = dispatch_to(&mut m, "b");
        assert!(m.start_stream("a").is_ok());
        assert!(m.finish_stream("b").is_err(), "b is not streaming");
        assert!(m.finish_stream("a").is_ok());
        assert!(m.answer("b").is_ok());
        assert!(m.can_dispatch());
    }

    #[test]
    fn init_ends_when_the_runtime_calls_next() {
        let (mut m, _rx) = machine(&[]);
        assert_eq!(m.phase().name(), "Started");
        let (action, step) = m.next(Instant::now());
        assert!(matches!(action, NextAction::Wait(_)));
        let Step::InitDone(done) = step else {
            panic!("init is done");
        };
        assert!(done.ready.is_some());
        assert!(matches!(m.phase(), Phase::Idle { parked: None }));
    }

    #[test]
    fn with_extensions_init_waits_for_every_one_of_them() {
        let (mut m, _rx) = machine(&["ext"]);
        let Ok((id, start)) = m.register_extension("ext", &[EventType::Invoke]) else {
            panic!("registers");
        };
        // The last registration starts the bootstrap.
        assert!(start.is_some());
        let (_, step) = m.next(Instant::now());
        assert!(
            matches!(step, Step::Stay),
            "the extension is not in next yet"
        );
        let Ok((ExtensionNext::Wait(_), step)) = m.extension_next(&id, Instant::now()) else {
            panic!("the extension waits");
        };
        assert!(matches!(step, Step::InitDone(_)));
        assert!(
            m.register_extension("after", &[]).is_err(),
            "registration closed"
        );
    }

    #[test]
    fn dispatch_hands_the_invocation_to_a_waiting_next() {
        let mut m = ready();
        // The runtime's `next` still waits (its end is held).
        let (_next, _) = m.next(Instant::now());
        let (reply, _answer) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        assert!(
            m.dispatch(invocation("a"), 7, Duration::from_secs(1), now, reply)
                .is_ok()
        );
        let Phase::Busy(running) = m.phase() else {
            panic!("busy");
        };
        assert!(running.delivered);
        assert!(running.init.is_some(), "the first invocation reports init");
    }

    #[test]
    fn an_undelivered_invocation_goes_to_the_next_next_and_only_once() {
        let (mut m, _answer) = busy("a");
        let (action, _) = m.next(Instant::now());
        assert!(matches!(action, NextAction::Deliver(d) if d.invocation.request_id == "a"));
        let (action, _) = m.next(Instant::now());
        assert!(matches!(
            action,
            NextAction::Refuse(Refusal::InvalidStateTransition {
                from: "Running",
                ..
            })
        ));
    }

    #[test]
    fn a_busy_sandbox_takes_no_second_invocation() {
        let (mut m, _answer) = busy("a");
        let (reply, _) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        assert!(
            m.dispatch(invocation("b"), 0, Duration::ZERO, now, reply)
                .is_err()
        );
    }

    #[test]
    fn answering_hands_back_the_reply_once_then_next_makes_it_ready() {
        let (mut m, _answer) = busy("a");
        let _ = m.next(Instant::now());
        assert_eq!(m.answerable("b"), Err(Refusal::InvalidRequestId));
        let Ok(answered) = m.answer("a") else {
            panic!("answerable");
        };
        assert!(matches!(answered.running.answer, Answer::Pending(_)));
        assert!(answered.extensions_busy.is_none());
        assert!(m.answer("a").is_err(), "a second answer is refused");
        assert_eq!(m.phase().vacated(), Vacated::Finishing);
        let (_, step) = m.next(Instant::now());
        assert!(matches!(step, Step::Ready));
        assert!(m.can_dispatch());
    }

    #[test]
    fn an_invocation_not_yet_delivered_cannot_be_answered() {
        let (m, _answer) = busy("a");
        assert_eq!(m.answerable("a"), Err(Refusal::InvalidRequestId));
    }

    #[test]
    fn extensions_at_work_keep_the_sandbox_finishing() {
        let (mut m, _rx) = machine(&["ext"]);
        let Ok((id, _)) = m.register_extension("ext", &[EventType::Invoke]) else {
            panic!("registers");
        };
        let _init = m.next(Instant::now());
        let _ext = m.extension_next(&id, Instant::now());
        // The runtime's `next` still waits (its end is held).
        let _next = m.next(Instant::now());
        let (reply, _answer) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        assert!(
            m.dispatch(invocation("a"), 0, Duration::from_secs(1), now, reply)
                .is_ok()
        );
        let Ok(answered) = m.answer("a") else {
            panic!("answerable");
        };
        assert!(answered.extensions_busy.is_some());
        let (_, step) = m.next(Instant::now());
        assert!(matches!(step, Step::Stay), "the extension still works");
        let Ok((_, step)) = m.extension_next(&id, Instant::now()) else {
            panic!("next");
        };
        assert!(matches!(step, Step::Ready));
    }

    #[test]
    fn an_extension_past_the_deadline_resets_the_sandbox() {
        let (mut m, _rx) = machine(&["ext"]);
        let Ok((id, _)) = m.register_extension("ext", &[EventType::Invoke]) else {
            panic!("registers");
        };
        let _init = m.next(Instant::now());
        let _ext = m.extension_next(&id, Instant::now());
        // The runtime's `next` still waits (its end is held).
        let _next = m.next(Instant::now());
        let (reply, _answer) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        let _ = m.dispatch(invocation("a"), 0, Duration::from_secs(1), now, reply);
        let _ = m.answer("a");
        assert!(!m.overrun("b"));
        assert!(m.overrun("a"));
        assert!(matches!(m.phase(), Phase::Exited));
    }

    #[test]
    fn a_timeout_takes_the_invocation_and_a_late_answer_gets_410() {
        let (mut m, _answer) = busy("a");
        let _ = m.next(Instant::now());
        assert!(m.time_out("b", false).is_none());
        assert!(m.time_out("a", true).is_some());
        assert!(m.time_out("a", true).is_none(), "once");
        assert_eq!(m.ending(), &Ending::Resetting);
        assert_eq!(m.answerable("a"), Err(Refusal::InvokeTimeout));
        let exit = m.runtime_exited(false);
        assert!(matches!(exit.previous, Phase::Exited));
        assert!(exit.keep_extensions);
    }

    #[test]
    fn a_crash_mid_invocation_hands_back_the_running_invocation() {
        let (mut m, _answer) = busy("a");
        let exit = m.runtime_exited(false);
        assert!(!exit.expected);
        assert!(matches!(exit.previous, Phase::Busy(_)));
        assert_eq!(exit.previous.vacated(), Vacated::Other);
        let (action, _) = m.next(Instant::now());
        assert!(matches!(action, NextAction::Refuse(Refusal::Gone)));
    }

    #[test]
    fn a_crash_with_subscribed_extensions_resets_and_keeps_them_for_the_last_events() {
        let (mut m, _answer) = busy("a");
        let exit = m.runtime_exited(true);
        assert!(exit.resets && exit.keep_extensions);
        assert_eq!(m.ending(), &Ending::Resetting);
        // A stop is no crash: nothing to reset.
        let mut m = ready();
        m.stop();
        let exit = m.runtime_exited(true);
        assert!(!exit.resets && exit.expected);
    }

    #[test]
    fn a_failed_init_with_subscribed_extensions_resets() {
        let (mut m, _rx) = machine(&["ext"]);
        assert!(m.fail_init(true).is_some());
        assert_eq!(m.ending(), &Ending::Resetting);
        let exit = m.runtime_exited(true);
        assert!(!exit.resets, "reset once");
        assert!(exit.keep_extensions);
    }

    #[test]
    fn a_crash_during_init_hands_back_the_spawner_channel() {
        let (mut m, _rx) = machine(&[]);
        let exit = m.runtime_exited(false);
        assert!(matches!(
            exit.previous,
            Phase::Initializing { ready: Some(_), .. }
        ));
    }

    #[test]
    fn init_fails_once_and_only_during_init() {
        let (mut m, _rx) = machine(&[]);
        assert!(matches!(m.fail_init(false), Some((_, Some(_)))));
        assert!(m.fail_init(false).is_none());
        let mut m = ready();
        assert!(m.fail_init(false).is_none());
        assert!(m.abandon_init().is_none());
    }

    #[test]
    fn idle_parks_then_freezes_and_dispatch_thaws() {
        let mut m = ready();
        assert!(m.idle_since().is_none());
        let since = Instant::now();
        assert!(m.park(since));
        assert_eq!(m.idle_since(), Some((since, false)));
        assert!(
            !m.freeze(since + Duration::from_millis(1)),
            "another idle period"
        );
        assert!(m.freeze(since));
        assert_eq!(m.idle_since(), Some((since, true)));
        assert_eq!(m.phase().vacated(), Vacated::Idle);
        let (reply, _) = oneshot::channel();
        let now = (Instant::now(), SystemTime::now());
        assert_eq!(
            m.dispatch(invocation("a"), 0, Duration::ZERO, now, reply)
                .ok(),
            Some(true),
            "a frozen sandbox is thawed"
        );
        assert!(m.idle_since().is_none());
    }

    #[test]
    fn stopping_thaws_and_is_never_frozen_again_and_its_exit_is_expected() {
        let mut m = ready();
        let since = Instant::now();
        m.park(since);
        m.freeze(since);
        assert!(m.stop());
        assert!(!m.freeze(since));
        assert!(m.idle_since().is_none(), "the freezer lets go of it");
        assert!(m.doomed());
        let exit = m.runtime_exited(false);
        assert!(exit.expected);
        assert!(exit.keep_extensions);
    }

    #[test]
    fn an_extension_crash_after_init_is_what_the_runtime_exit_reports() {
        let (mut m, _rx) = machine(&["ext"]);
        let _ = m.register_extension("ext", &[]);
        let _ = m.next(Instant::now());
        let Some(crash) = m.extension_exited("ext", "Extension ext exited: exit status 1") else {
            panic!("a crash");
        };
        assert!(crash.after_init);
        assert_eq!(crash.error_type, "Extension.Crash");
        let exit = m.runtime_exited(false);
        assert_eq!(
            exit.failure.map(|f| f.0).as_deref(),
            Some("Extension.Crash")
        );
        assert!(!exit.keep_extensions);
    }

    #[test]
    fn an_extension_crash_before_registration_fails_init() {
        let (mut m, _rx) = machine(&["ext"]);
        let Some(crash) = m.extension_exited("ext", "gone") else {
            panic!("a crash");
        };
        assert!(!crash.after_init);
        assert!(m.fail_init(false).is_some());
    }

    #[test]
    fn an_extension_exit_while_stopping_is_no_crash() {
        let mut m = ready();
        m.stop();
        assert!(m.extension_exited("ext", "bye").is_none());
    }

    #[test]
    fn the_last_reaped_process_lets_every_waiter_go() {
        let (mut m, _rx) = machine(&["a", "b"]);
        assert!(!m.reaped());
        assert!(m.reaped());
    }

    #[test]
    fn streaming_keeps_the_invocation_busy_until_it_ends() {
        let (mut m, answer) = busy("a");
        let _ = m.next(Instant::now());
        let Ok(started) = m.start_stream("a") else {
            panic!("stream starts");
        };
        drop(started.reply);
        drop(answer);
        assert!(m.start_stream("a").is_err(), "one stream");
        assert!(matches!(m.phase(), Phase::Busy(_)));
        assert!(m.finish_stream("b").is_err());
        assert!(m.finish_stream("a").is_ok());
        assert_eq!(m.finish_stream("a").err(), Some(Refusal::InvokeTimeout));
    }
}

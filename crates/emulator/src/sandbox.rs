//! One execution environment: a bootstrap process in its own process group, its external
//! extensions (in a group of their own), its Runtime and Extensions API listener, its log pipe,
//! and the state machine that ties an invocation to the runtime's and extensions' calls.
//!
//! With extensions, the sandbox follows Lambda's order: the extensions start first, the
//! bootstrap once every one of them has registered; init (and each invocation) completes when
//! the runtime and every extension wait in `next`; shutdown sends the runtime SIGTERM first, then
//! `SHUTDOWN` events to the extensions that asked for them.
//!
//! Every transition happens under the sandbox's one lock, and every invocation's reply channel
//! lives inside [`Phase::Busy`]: whoever moves the sandbox out of `Busy` (a `/response`, an
//! `/error`, the deadline, the process's death) is the only one who can answer, so each
//! invocation gets exactly one answer.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use coldstart_protocol::ErrorBody;
use coldstart_protocol::extension::{Event, EventType, ShutdownReason, Tracing};
use coldstart_protocol::telemetry::{
    self as tm, Category, InitPhase, InitType, Record, Status, TraceContext,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::{epoch_ms, iso_millis, ms2};
use crate::extensions::{ExtensionNext, ExtensionRefusal, Extensions};
use crate::function::Function;
use crate::invocation::{
    Invocation, InvokeResponse, Outcome, ResponseStream, StreamError, StreamItem,
};
use crate::logs::LogCapture;
use crate::pool::Vacated;
use crate::process::{StatusFile, describe_exit, describe_status, signal_group};
use crate::runtime_api;
use crate::telemetry::{FINAL_FLUSH_LIMIT, Telemetry};

/// How long a sandbox stays idle before it is frozen. Lambda freezes at once; a short grace
/// spares back-to-back invocations a SIGSTOP/SIGCONT pair each, while an idle sandbox still
/// stops using CPU almost at once.
pub(crate) const FREEZE_AFTER: Duration = Duration::from_millis(20);

/// How long a sandbox with external extensions takes to shut down at most, as in Lambda: the
/// runtime's SIGTERM and the extensions' `SHUTDOWN` share it; laggards are killed.
pub(crate) const EXTENSIONS_SHUTDOWN_LIMIT: Duration = Duration::from_millis(2000);

/// The runtime's share of [`EXTENSIONS_SHUTDOWN_LIMIT`] before the extensions get `SHUTDOWN`.
pub(crate) const RUNTIME_SHUTDOWN_SHARE: Duration = Duration::from_millis(300);

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

/// An invocation handed to a waiting `next`, with its deadline.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) invocation: Arc<Invocation>,
    pub(crate) deadline_ms: u64,
}

/// What the Runtime API should do with a `next` call.
pub(crate) enum NextAction {
    /// Hold the request open until an invocation arrives (or the sandbox dies: `Err`).
    Wait(oneshot::Receiver<Delivery>),
    /// Answer at once: an invocation was assigned while no `next` was waiting.
    Deliver(Delivery),
    /// Refuse: the runtime called `next` in a state that forbids it.
    Refuse(Refusal),
}

/// A Runtime API call that the sandbox's state forbids, answered as rapid answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 400 `InvalidRequestID`: the id is not the current invocation's.
    InvalidRequestId,
    /// 403 `InvalidStateTransition`.
    InvalidStateTransition {
        from: &'static str,
        to: &'static str,
    },
    /// 410 `InvokeTimeout`: the invocation already timed out.
    InvokeTimeout,
    /// 500: the sandbox is gone.
    Gone,
}

/// The lifecycle of a sandbox.
enum Phase {
    /// The bootstrap is starting; the runtime has not called `next` yet.
    Initializing {
        started: Instant,
        /// The spawner waits on the other end; dropped once used.
        ready: Option<oneshot::Sender<InitResult>>,
    },
    /// The runtime waits in `next` with no work (frozen when freezing is on).
    Idle,
    /// An invocation is assigned; waiting for `/response` or `/error`.
    Busy(Running),
    /// The invocation was answered; waiting for the runtime to call `next` again.
    Finishing,
    /// The process exited or is being killed; nothing more happens here.
    Exited,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Initializing { .. } => "Started",
            Phase::Idle => "Ready",
            Phase::Busy(_) => "Running",
            Phase::Finishing => "RuntimeResponseSentState",
            Phase::Exited => "Exited",
        }
    }

    fn vacated(&self) -> Vacated {
        match self {
            Phase::Idle => Vacated::Idle,
            Phase::Finishing => Vacated::Finishing,
            _ => Vacated::Other,
        }
    }
}

/// The invocation a sandbox is running.
struct Running {
    invocation: Arc<Invocation>,
    deadline_ms: u64,
    /// When the deadline passes, for a streamed answer (the sandbox then keeps the time).
    deadline: Instant,
    /// The runtime has received it from `next`.
    delivered: bool,
    started: Instant,
    /// `started` on the wall clock, for the spans of `platform.runtimeDone`.
    started_at: SystemTime,
    /// Init duration to report, on a cold start.
    init: Option<Duration>,
    /// Where the answer goes.
    answer: Answer,
}

/// Where an invocation's answer goes.
enum Answer {
    /// The caller waits on the other end for the whole answer; dropping it unanswered is a bug.
    Pending(oneshot::Sender<InvokeResponse>),
    /// The answer is being streamed to the caller by the Runtime API handler, which waits on
    /// the other end of `abort` for an end forced by the deadline or the runtime's death.
    Streaming {
        abort: oneshot::Sender<StreamItem>,
        /// The stream's deadline task waits on the other end; dropping this stops it.
        _deadline: oneshot::Sender<()>,
    },
}

struct State {
    phase: Phase,
    /// The process group is stopped (SIGSTOP).
    frozen: bool,
    /// The Runtime API's `next` handler waits on the other end while the runtime is idle.
    next_waiter: Option<oneshot::Sender<Delivery>>,
    /// The last invocation answered or timed out, to tell a second answer from a wrong id.
    last_request_id: Option<String>,
    /// How long init took; reported on the first invocation's `REPORT`.
    init_duration: Option<Duration>,
    /// The emulator asked the sandbox to stop: its exit is expected.
    stopping: bool,
    /// When the sandbox was last parked idle; the freezer stops it [`FREEZE_AFTER`] later.
    idle_since: Option<Instant>,
    /// The extensions registered with the Extensions API.
    extensions: Extensions,
    /// The log pipe's write end, kept for a bootstrap not started yet.
    log_pipe: Option<io::PipeWriter>,
    /// Processes of the sandbox not reaped yet (bootstrap and extensions); at zero the sandbox
    /// is gone.
    alive: usize,
    /// The deadline task of extensions still at work on the last invocation waits on the other
    /// end; dropping this (once they all called `next`) ends that task.
    extensions_deadline: Option<oneshot::Sender<()>>,
    /// Why the sandbox failed, when an extension ended it: `(errorType, message)`, reported
    /// instead of the bootstrap's own exit.
    failure: Option<(String, String)>,
    /// The runtime was killed at its deadline while extensions subscribe to telemetry: they
    /// outlive it until the invocation's last events are delivered, then are killed too.
    resetting: bool,
}

/// One execution environment.
pub(crate) struct Sandbox {
    pub(crate) id: u64,
    pub(crate) function: Arc<Function>,
    /// The function's code generation this sandbox runs.
    generation: u64,
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
    state: Mutex<State>,
    /// The bootstrap's `/proc` status, for its peak memory; set when it starts.
    status: OnceLock<StatusFile>,
    /// Last peak RSS read, for reports written after the process is gone.
    peak_mb: AtomicU64,
    /// Cancelled once every process of the sandbox has been reaped; the Runtime API server and
    /// the freezer stop with it.
    pub(crate) gone: CancellationToken,
    /// Cancelled once the bootstrap has been reaped.
    runtime_gone: CancellationToken,
    /// Wakes the freezer task when the sandbox is parked idle.
    parked: Notify,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("function", &&*self.function.name)
            .field("id", &self.id)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a new sandbox: its extensions, or its bootstrap when it has none. The receiver
    /// reports the end of init.
    pub(crate) fn spawn(
        function: &Arc<Function>,
    ) -> io::Result<(Arc<Sandbox>, oneshot::Receiver<InitResult>)> {
        let id = function.next_sandbox_id();
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let runtime_api = listener.local_addr()?.to_string();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let port = if function.config.sandbox_port {
            Some(free_port()?)
        } else {
            None
        };

        let (log_read, log_write) = io::pipe()?;
        let extension_pipe = if function.extensions().is_empty() {
            None
        } else {
            Some(io::pipe()?)
        };
        let gone = CancellationToken::new();
        let telemetry = Arc::new(Telemetry::new(gone.clone()));
        telemetry.publish(Category::Platform, || {
            Record::InitStart(tm::InitStart {
                initialization_type: InitType::OnDemand,
                phase: InitPhase::Init,
                function_name: function.name.to_string(),
                function_version: "$LATEST".into(),
                runtime_version: None,
                runtime_version_arn: None,
            })
        });
        let started = Instant::now();
        let mut extension_children = Vec::new();
        let mut extension_group: Option<Pid> = None;
        for path in function.extensions() {
            let Some((_, ext_write)) = &extension_pipe else {
                break;
            };
            let mut command = function.extension_command(path, &runtime_api, port);
            command
                .stdin(Stdio::null())
                .stdout(ext_write.try_clone()?)
                .stderr(ext_write.try_clone()?)
                .process_group(extension_group.map_or(0, Pid::as_raw));
            let child = match command.spawn() {
                Ok(child) => child,
                Err(err) => {
                    if let Some(group) = extension_group {
                        signal_group(group, Signal::SIGKILL);
                    }
                    return Err(io::Error::new(
                        err.kind(),
                        format!("starting extension {}: {err}", path.display()),
                    ));
                }
            };
            let pid = child.id().unwrap_or(0);
            extension_group.get_or_insert(Pid::from_raw(pid as i32));
            extension_children.push((file_name(path), child));
        }
        let (bootstrap, log_pipe) = if extension_children.is_empty() {
            (
                Some(start_bootstrap(function, &runtime_api, port, log_write)?),
                None,
            )
        } else {
            (None, Some(log_write))
        };
        let pid = bootstrap.as_ref().and_then(|c| c.id()).unwrap_or(0);
        let logs = Arc::new(LogCapture::new(
            function.name.clone(),
            function.sink.clone(),
            OwnedFd::from(log_read),
            telemetry.clone(),
            Category::Function,
        )?);
        // Our write end is dropped here: the pipe ends when the extensions are gone.
        let extension_logs = match extension_pipe {
            Some((ext_read, _)) => Some(Arc::new(LogCapture::new(
                function.name.clone(),
                function.sink.clone(),
                OwnedFd::from(ext_read),
                telemetry.clone(),
                Category::Extension,
            )?)),
            None => None,
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let names: Vec<String> = extension_children.iter().map(|(n, _)| n.clone()).collect();
        let sandbox = Arc::new(Sandbox {
            id,
            function: function.clone(),
            generation: function.generation(),
            pid: AtomicU32::new(pid),
            extension_group,
            extension_pids: extension_children
                .iter()
                .map(|(n, c)| (n.clone(), c.id().unwrap_or(0)))
                .collect(),
            runtime_api,
            port,
            logs: logs.clone(),
            extension_logs: extension_logs.clone(),
            telemetry,
            state: Mutex::new(State {
                phase: Phase::Initializing {
                    started,
                    ready: Some(ready_tx),
                },
                frozen: false,
                next_waiter: None,
                last_request_id: None,
                init_duration: None,
                stopping: false,
                idle_since: None,
                extensions: Extensions::expecting(names),
                log_pipe,
                alive: extension_children.len() + usize::from(bootstrap.is_some()),
                extensions_deadline: None,
                failure: None,
                resetting: false,
            }),
            status: OnceLock::new(),
            peak_mb: AtomicU64::new(0),
            gone,
            runtime_gone: CancellationToken::new(),
            parked: Notify::new(),
        });
        function.register(&sandbox);
        tracing::debug!(function = &*function.name, sandbox = id, pid, runtime_api = %sandbox.runtime_api, ?port, "sandbox started");

        tokio::spawn(logs.run());
        if let Some(extension_logs) = extension_logs {
            tokio::spawn(extension_logs.run());
        }
        tokio::spawn(runtime_api::serve(listener, sandbox.clone()));
        tokio::spawn(sandbox.clone().idler());
        for (name, mut child) in extension_children {
            let watcher = sandbox.clone();
            tokio::spawn(async move {
                let status = child.wait().await.ok();
                watcher.on_extension_exit(&name, status);
            });
        }
        if let Some(child) = bootstrap {
            sandbox.watch_bootstrap(child);
        }
        Ok((sandbox, ready_rx))
    }

    /// Records the bootstrap's pid and reaps it when it exits.
    fn watch_bootstrap(self: &Arc<Self>, mut child: tokio::process::Child) {
        let pid = child.id().unwrap_or(0);
        self.pid.store(pid, Ordering::Release);
        let _ = self.status.set(StatusFile::open(pid));
        let watcher = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            watcher.on_exit(status);
        });
    }

    /// Every external extension registered: start the bootstrap.
    fn start_deferred_bootstrap(self: &Arc<Self>, pipe: Option<io::PipeWriter>) {
        let started = pipe
            .ok_or_else(|| io::Error::other("the log pipe is gone"))
            .and_then(|pipe| start_bootstrap(&self.function, &self.runtime_api, self.port, pipe));
        match started {
            Ok(child) => {
                self.watch_bootstrap(child);
                let st = self.lock();
                // Init was abandoned, an extension failed or a stop began while it started:
                // those saw no bootstrap to signal.
                let doomed =
                    matches!(st.phase, Phase::Exited) || st.failure.is_some() || st.stopping;
                drop(st);
                if doomed {
                    self.signal_all(Signal::SIGKILL);
                }
            }
            Err(err) => {
                let message = format!("Couldn't start the bootstrap: {err}");
                let body =
                    Bytes::from(ErrorBody::new("Runtime.InvalidEntrypoint", &message).to_json());
                self.fail_init("Runtime.InvalidEntrypoint".into(), body);
                self.process_reaped();
            }
        }
    }

    /// Sends `signal` to every process of the sandbox.
    fn signal_all(&self, signal: Signal) {
        let pid = self.pid.load(Ordering::Acquire);
        if pid != 0 {
            signal_group(Pid::from_raw(pid as i32), signal);
        }
        if let Some(group) = self.extension_group {
            signal_group(group, signal);
        }
    }

    /// Extension `name` registered for `events`: returns its identifier, and starts the
    /// bootstrap when it was the last one expected.
    pub(crate) fn register_extension(
        self: &Arc<Self>,
        name: &str,
        events: &[EventType],
    ) -> Result<String, ExtensionRefusal> {
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Initializing { .. }) {
            return Err(ExtensionRefusal::new(
                "Extension.RegistrationClosed",
                "Extension registration closed already",
            ));
        }
        // The bootstrap starts with the registration that completes the set (at once, in
        // `spawn`, when there are no external extensions).
        let completes = !st.extensions.all_registered();
        let id = st.extensions.register(name, events)?;
        if completes && st.extensions.all_registered() {
            st.alive += 1;
            let pipe = st.log_pipe.take();
            drop(st);
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
        let mut st = self.lock();
        let next = st.extensions.next(id)?;
        if matches!(next, ExtensionNext::Wait(_)) {
            match st.phase {
                Phase::Initializing { .. } => {
                    if let Some(ready) = self.complete_init(&mut st) {
                        drop(st);
                        let _ = ready.send(Ok(()));
                    }
                }
                Phase::Finishing if st.next_waiter.is_some() && st.extensions.all_ready() => {
                    self.leave_finishing(st);
                }
                _ => {}
            }
        }
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
        st.extensions.check(id)?;
        if !matches!(st.phase, Phase::Initializing { .. }) {
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
        self.lock().extensions.name_of(id)
    }

    /// Extension `id` reported `exit/error`; its exit will carry `error_type`.
    pub(crate) fn extension_exit_error(
        &self,
        id: &str,
        error_type: String,
    ) -> Result<(), ExtensionRefusal> {
        self.lock().extensions.exit_error(id, error_type)
    }

    /// Init is complete when the bootstrap runs, the runtime waits in `next` and every extension
    /// waits in `event/next`: the sandbox becomes idle and the spawner's channel is returned.
    fn complete_init(&self, st: &mut State) -> Option<oneshot::Sender<InitResult>> {
        if !st.extensions.all_registered() || st.next_waiter.is_none() || !st.extensions.all_ready()
        {
            return None;
        }
        let Phase::Initializing { started, ready } = &mut st.phase else {
            return None;
        };
        let ready = ready.take();
        let duration = started.elapsed();
        st.init_duration = Some(duration);
        st.phase = Phase::Idle;
        for (name, events) in st.extensions.states() {
            self.telemetry.publish(Category::Platform, || {
                Record::Extension(tm::ExtensionState {
                    name,
                    state: "Ready".into(),
                    events,
                })
            });
        }
        self.publish_init_done(duration, Status::Success, None);
        ready
    }

    /// Publishes the end of init (`platform.initRuntimeDone`, `platform.initReport`); events are
    /// no longer kept for later subscribers.
    fn publish_init_done(&self, duration: Duration, status: Status, error_type: Option<&str>) {
        self.telemetry.publish(Category::Platform, || {
            Record::InitRuntimeDone(tm::InitRuntimeDone {
                initialization_type: InitType::OnDemand,
                phase: InitPhase::Init,
                status,
                error_type: error_type.map(str::to_owned),
                spans: Vec::new(),
            })
        });
        self.telemetry.publish(Category::Platform, || {
            Record::InitReport(tm::InitReport {
                initialization_type: InitType::OnDemand,
                phase: InitPhase::Init,
                status,
                error_type: error_type.map(str::to_owned),
                metrics: tm::InitReportMetrics {
                    duration_ms: millis(duration),
                },
                spans: Vec::new(),
            })
        });
        self.telemetry.end_init();
    }

    /// Publishes `platform.start` of `invocation`.
    fn publish_start(&self, invocation: &Invocation) {
        self.telemetry.publish(Category::Platform, || {
            Record::Start(tm::Start {
                request_id: invocation.request_id.clone(),
                version: Some("$LATEST".into()),
                tracing: trace_context(&invocation.trace_id),
            })
        });
    }

    /// Publishes `platform.runtimeDone` of `running`.
    fn publish_runtime_done(
        &self,
        running: &Running,
        status: Status,
        error_type: Option<&str>,
        produced_bytes: Option<u64>,
        timing: Option<ResponseTiming>,
    ) {
        if self.telemetry.wants(Category::Function) {
            // The lines the function printed before answering belong before its runtimeDone.
            self.logs.drain();
        }
        self.telemetry.publish(Category::Platform, || {
            let spans = timing.map_or_else(Vec::new, |t| t.spans(running));
            Record::RuntimeDone(tm::RuntimeDone {
                request_id: running.invocation.request_id.clone(),
                status,
                error_type: error_type.map(str::to_owned),
                metrics: Some(tm::RuntimeDoneMetrics {
                    duration_ms: millis(running.started.elapsed()),
                    produced_bytes,
                }),
                spans,
                tracing: trace_context(&running.invocation.trace_id),
            })
        });
    }

    /// Assigns an invocation to this idle sandbox and returns where its answer will arrive, or
    /// gives the invocation back when the sandbox is no longer idle (it died meanwhile).
    pub(crate) fn dispatch(
        &self,
        invocation: Arc<Invocation>,
    ) -> Result<oneshot::Receiver<InvokeResponse>, Arc<Invocation>> {
        let (reply, answer) = oneshot::channel();
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Idle) {
            return Err(invocation);
        }
        if st.frozen {
            self.signal_all(Signal::SIGCONT);
            st.frozen = false;
        }
        st.idle_since = None;
        let deadline_ms = epoch_ms(SystemTime::now() + self.function.config.timeout);
        // START is written before the runtime can see the event, so the function's own lines
        // always follow it.
        self.logs
            .begin_invocation(&invocation.request_id, invocation.log_tail);
        self.publish_start(&invocation);
        let delivered = match st.next_waiter.take() {
            Some(waiter) => waiter
                .send(Delivery {
                    invocation: invocation.clone(),
                    deadline_ms,
                })
                .is_ok(),
            None => false,
        };
        if !st.extensions.is_empty() {
            st.extensions.invoke(&Event::Invoke {
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
        let init = st.init_duration.take();
        st.phase = Phase::Busy(Running {
            invocation,
            deadline_ms,
            deadline: Instant::now() + self.function.config.timeout,
            delivered,
            started: Instant::now(),
            started_at: SystemTime::now(),
            init,
            answer: Answer::Pending(reply),
        });
        Ok(answer)
    }

    /// The runtime called `next`.
    pub(crate) fn next(self: &Arc<Self>) -> NextAction {
        let mut st = self.lock();
        match &mut st.phase {
            Phase::Initializing { .. } => {
                let (tx, rx) = oneshot::channel();
                st.next_waiter = Some(tx);
                if let Some(ready) = self.complete_init(&mut st) {
                    drop(st);
                    // The spawner dispatches next; if it gave up, the sandbox is killed anyway.
                    let _ = ready.send(Ok(()));
                }
                NextAction::Wait(rx)
            }
            Phase::Finishing => {
                let (tx, rx) = oneshot::channel();
                st.next_waiter = Some(tx);
                // With extensions still at work on the invocation, the last of them to call
                // `next` makes the sandbox idle.
                if st.extensions.all_ready() {
                    self.leave_finishing(st);
                }
                NextAction::Wait(rx)
            }
            Phase::Idle => {
                // A second `next` replaces the first (whose connection is gone or will be
                // answered with an error when its waiter is dropped).
                let (tx, rx) = oneshot::channel();
                st.next_waiter = Some(tx);
                NextAction::Wait(rx)
            }
            Phase::Busy(running) if !running.delivered => {
                running.delivered = true;
                NextAction::Deliver(Delivery {
                    invocation: running.invocation.clone(),
                    deadline_ms: running.deadline_ms,
                })
            }
            Phase::Busy(_) => NextAction::Refuse(Refusal::InvalidStateTransition {
                from: "Running",
                to: "Ready",
            }),
            Phase::Exited => NextAction::Refuse(Refusal::Gone),
        }
    }

    /// The invocation is over for the runtime and every extension: the sandbox is idle again
    /// (or retired, when its code was replaced meanwhile).
    fn leave_finishing(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        st.phase = Phase::Idle;
        st.extensions_deadline = None;
        drop(st);
        if self.generation != self.function.generation() {
            // Its code was replaced while it ran: stop it instead of reusing it.
            self.function.pool.on_retired();
            let retired = self.clone();
            tokio::spawn(async move { retired.stop(crate::emulator::SHUTDOWN_GRACE).await });
        } else if self.function.pool.on_ready(self.clone()) {
            self.park();
        }
    }

    /// May the runtime answer invocation `request_id` now?
    pub(crate) fn check_answer(&self, request_id: &str) -> Result<(), Refusal> {
        let st = self.lock();
        Self::answerable(&st, request_id)
    }

    fn answerable(st: &State, request_id: &str) -> Result<(), Refusal> {
        match &st.phase {
            Phase::Busy(r) if r.invocation.request_id == request_id && r.delivered => Ok(()),
            Phase::Exited if st.last_request_id.as_deref() == Some(request_id) => {
                Err(Refusal::InvokeTimeout)
            }
            _ if st.last_request_id.as_deref() == Some(request_id) => {
                Err(Refusal::InvalidStateTransition {
                    from: "RuntimeResponseSentState",
                    to: "InvocationResponse",
                })
            }
            _ => Err(Refusal::InvalidRequestId),
        }
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
        let mut st = self.lock();
        Self::answerable(&st, request_id)?;
        let Phase::Busy(running) = std::mem::replace(&mut st.phase, Phase::Finishing) else {
            return Err(Refusal::InvalidRequestId);
        };
        st.last_request_id = Some(request_id.to_owned());
        let extensions_busy = !st.extensions.all_ready();
        drop(st);
        if extensions_busy {
            self.bound_extensions(request_id, running.deadline);
        }
        self.function.pool.on_responded();
        let (done, produced) = match &outcome {
            Outcome::Response { body, .. } => (Status::Success, Some(body.len() as u64)),
            _ => (Status::Error, None),
        };
        self.publish_runtime_done(&running, done, outcome.error_type(), produced, timing);
        let status = outcome
            .error_type()
            .map(|t| ReportStatus::Error(t.to_owned()));
        Ok(self.finish(running, outcome, status))
    }

    /// The runtime answered while extensions still work on the invocation: the function's
    /// deadline bounds them too. One still at work then gets the sandbox reset, as in Lambda.
    fn bound_extensions(self: &Arc<Self>, request_id: &str, deadline: Instant) {
        let (guard, finished) = oneshot::channel::<()>();
        self.lock().extensions_deadline = Some(guard);
        let sandbox = self.clone();
        let request_id = request_id.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                // Every extension called `next` (the guard was dropped), or the sandbox is gone.
                _ = finished => return,
                () = sandbox.gone.cancelled() => return,
            }
            let mut st = sandbox.lock();
            let overran = matches!(st.phase, Phase::Finishing)
                && st.last_request_id.as_deref() == Some(request_id.as_str())
                && !st.extensions.all_ready();
            if !overran {
                return;
            }
            st.phase = Phase::Exited;
            st.next_waiter = None;
            drop(st);
            sandbox.logs.platform_line(&format!(
                "RequestId: {request_id} Error: an extension did not finish the invocation before the function's timeout"
            ));
            sandbox.signal_all(Signal::SIGKILL);
            sandbox.function.pool.on_dead(&sandbox, Vacated::Finishing);
        });
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
        let from = self.lock().phase.name();
        if self.fail_init(error_type, body) {
            Ok(())
        } else {
            Err(Refusal::InvalidStateTransition {
                from,
                to: "InitError",
            })
        }
    }

    /// Fails init with `error_type` and `body` (the document the caller gets) and kills the
    /// sandbox; false when init was already over.
    fn fail_init(self: &Arc<Self>, error_type: String, body: Bytes) -> bool {
        let mut st = self.lock();
        if !matches!(st.phase, Phase::Initializing { .. }) {
            return false;
        }
        let Phase::Initializing { started, ready } =
            std::mem::replace(&mut st.phase, Phase::Exited)
        else {
            return false;
        };
        st.log_pipe = None;
        drop(st);
        self.log_init_report(started.elapsed(), "error", Some(&error_type));
        self.signal_all(Signal::SIGKILL);
        self.function.pool.on_dead(self, Vacated::Other);
        if let Some(ready) = ready {
            let _ = ready.send(Err(InitFailure::Reported { error_type, body }));
        }
        true
    }

    /// The deadline of invocation `request_id` passed: kill the sandbox and answer
    /// `Sandbox.Timedout`. Does nothing when the invocation was answered meanwhile.
    pub(crate) fn time_out(self: &Arc<Self>, request_id: &str) {
        let mut st = self.lock();
        if !matches!(&st.phase, Phase::Busy(r) if r.invocation.request_id == request_id) {
            return;
        }
        let Phase::Busy(running) = std::mem::replace(&mut st.phase, Phase::Exited) else {
            return;
        };
        st.last_request_id = Some(request_id.to_owned());
        st.next_waiter = None;
        // As Lambda resets an environment, the runtime goes first; subscribed extensions get the
        // invocation's last events before they follow.
        st.resetting = self.extension_group.is_some() && self.telemetry.has_subscribers();
        let resetting = st.resetting;
        drop(st);
        self.refresh_peak();
        if resetting {
            let pid = self.pid.load(Ordering::Acquire);
            signal_group(Pid::from_raw(pid as i32), Signal::SIGKILL);
        } else {
            self.signal_all(Signal::SIGKILL);
        }
        self.function.pool.on_dead(self, Vacated::Other);
        let seconds = format!("{:.2}", self.function.config.timeout.as_secs_f64());
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
        if resetting {
            let sandbox = self.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(RUNTIME_SHUTDOWN_SHARE, sandbox.runtime_gone.cancelled())
                        .await;
                sandbox.logs.drain();
                sandbox.telemetry.shutdown(FINAL_FLUSH_LIMIT).await;
                if let Some(group) = sandbox.extension_group {
                    signal_group(group, Signal::SIGKILL);
                }
            });
        }
    }

    /// Kills a sandbox that has not finished init, keeping its concurrency slot for the caller's
    /// next attempt when `keep_slot` is set.
    pub(crate) fn abandon_init(self: &Arc<Self>, keep_slot: bool) {
        let mut st = self.lock();
        let Phase::Initializing { started, .. } = std::mem::replace(&mut st.phase, Phase::Exited)
        else {
            return;
        };
        st.log_pipe = None;
        drop(st);
        self.log_init_report(started.elapsed(), "timeout", None);
        self.signal_all(Signal::SIGKILL);
        if !keep_slot {
            self.function.pool.on_dead(self, Vacated::Other);
        }
    }

    /// The bootstrap exited (it was reaped).
    fn on_exit(self: &Arc<Self>, status: Option<ExitStatus>) {
        let mut st = self.lock();
        let previous = std::mem::replace(&mut st.phase, Phase::Exited);
        let expected = st.stopping;
        // On a graceful stop, a `next` held by another process (an extension serving as the
        // runtime client, like the web adapter) stays open: that process gets its SHUTDOWN or
        // is stopped, rather than an error to log. It is closed with the sandbox.
        if !expected {
            st.next_waiter = None;
        }
        st.frozen = false;
        let failure = st.failure.take();
        // On a graceful stop the extensions outlive the runtime to get their SHUTDOWN event.
        let keep_extensions = (expected || st.resetting) && self.extension_group.is_some();
        drop(st);
        self.runtime_gone.cancel();
        // Whatever the bootstrap left behind in its group goes with it; after a crash, the
        // extensions too: the whole environment is reset.
        let pid = self.pid.load(Ordering::Acquire);
        signal_group(Pid::from_raw(pid as i32), Signal::SIGKILL);
        if !keep_extensions && let Some(group) = self.extension_group {
            signal_group(group, Signal::SIGKILL);
        }
        let (error_type, cause) =
            failure.unwrap_or_else(|| ("Runtime.ExitError".to_owned(), describe_exit(status)));
        let vacated = previous.vacated();
        match previous {
            Phase::Exited => {}
            Phase::Initializing { started, ready } => {
                self.log_init_report(started.elapsed(), "error", Some(&error_type));
                self.function.pool.on_dead(self, vacated);
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
                self.function.pool.on_dead(self, vacated);
                let request_id = running.invocation.request_id.clone();
                self.logs.drain();
                self.logs
                    .platform_line(&format!("RequestId: {request_id} Error: {cause}"));
                self.logs.platform_line(&error_type);
                let outcome = Outcome::platform_error(&error_type, &request_id, &cause);
                self.publish_runtime_done(&running, Status::Error, Some(&error_type), None, None);
                let status = Some(ReportStatus::Error(error_type));
                if let Some(report) = self.finish(running, outcome, status) {
                    self.write_report(report);
                }
            }
            Phase::Idle | Phase::Finishing => {
                self.function.pool.on_dead(self, vacated);
                if !expected {
                    tracing::warn!(
                        function = &*self.function.name,
                        sandbox = self.id,
                        "runtime exited between invocations: {cause}"
                    );
                }
            }
        }
        self.process_reaped();
    }

    /// External extension `name` exited. Unless the sandbox is stopping, that is a crash: the
    /// sandbox fails with `Extension.Crash` (or the error type the extension reported on
    /// `exit/error`) and is reset.
    fn on_extension_exit(self: &Arc<Self>, name: &str, status: Option<ExitStatus>) {
        let mut st = self.lock();
        let crashed = !st.stopping && !matches!(st.phase, Phase::Exited);
        if crashed {
            let error_type = st
                .extensions
                .exit_error_of(name)
                .unwrap_or_else(|| "Extension.Crash".to_owned());
            let how = status.map_or_else(|| "exit status unknown".to_owned(), describe_status);
            let cause = format!("Extension {name} exited: {how}");
            tracing::warn!(
                function = &*self.function.name,
                sandbox = self.id,
                "{cause}"
            );
            if st.extensions.all_registered() {
                // The bootstrap's exit answers for the sandbox, with this failure.
                st.failure = Some((error_type, cause));
                drop(st);
                self.signal_all(Signal::SIGKILL);
            } else {
                drop(st);
                let body = Bytes::from(ErrorBody::new(&error_type, cause).to_json());
                self.fail_init(error_type, body);
            }
        } else {
            drop(st);
        }
        self.process_reaped();
    }

    /// One more process of the sandbox was reaped; after the last, the sandbox is gone.
    fn process_reaped(&self) {
        let mut st = self.lock();
        st.alive = st.alive.saturating_sub(1);
        if st.alive > 0 {
            return;
        }
        st.extensions.close();
        st.next_waiter = None;
        st.log_pipe = None;
        drop(st);
        // Every writer is gone: whatever is left in the pipe are the sandbox's last lines.
        self.logs.drain();
        if let Some(extension_logs) = &self.extension_logs {
            extension_logs.drain();
        }
        // Every listener is gone too: delivery ends (the tasks stop with `gone`).
        drop(self.telemetry.close());
        self.function.forget(self.id);
        self.gone.cancel();
    }

    /// Stops the sandbox and returns once every process is reaped. Without extensions: SIGTERM,
    /// then SIGKILL after `grace`. With extensions, as Lambda: the runtime gets SIGTERM and
    /// [`RUNTIME_SHUTDOWN_SHARE`], then the extensions that subscribed get `SHUTDOWN` and the
    /// rest of [`EXTENSIONS_SHUTDOWN_LIMIT`]; the others are killed at once.
    pub(crate) async fn stop(&self, grace: Duration) {
        let began = Instant::now();
        {
            let mut st = self.lock();
            st.stopping = true;
            if st.frozen {
                // A stopped process only sees SIGTERM once it runs again.
                self.signal_all(Signal::SIGCONT);
                st.frozen = false;
            }
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
        let pid = self.pid.load(Ordering::Acquire);
        if pid != 0 && !self.runtime_gone.is_cancelled() {
            let group = Pid::from_raw(pid as i32);
            signal_group(group, Signal::SIGTERM);
            if tokio::time::timeout(RUNTIME_SHUTDOWN_SHARE, self.runtime_gone.cancelled())
                .await
                .is_err()
            {
                signal_group(group, Signal::SIGKILL);
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
        let unsubscribed = self.lock().extensions.shutdown(&event);
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

    /// Answers an invocation whose sandbox never became ready, with the platform's log lines.
    pub(crate) fn fail_start(
        &self,
        invocation: &Invocation,
        outcome: Outcome,
        timed_out: bool,
    ) -> InvokeResponse {
        let request_id = &invocation.request_id;
        self.logs.begin_invocation(request_id, invocation.log_tail);
        self.publish_start(invocation);
        let status = if timed_out {
            ReportStatus::Timeout
        } else {
            ReportStatus::Error(outcome.error_type().unwrap_or("Runtime.Unknown").to_owned())
        };
        self.logs.drain();
        self.write_end_report(request_id, Duration::ZERO, None, Some(status));
        InvokeResponse {
            request_id: request_id.clone(),
            outcome,
            log_tail: self.logs.end_invocation(),
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

    /// Notes that the sandbox was parked idle, for the idler.
    fn park(&self) {
        let mut st = self.lock();
        if matches!(st.phase, Phase::Idle) {
            st.idle_since = Some(Instant::now());
            drop(st);
            self.parked.notify_one();
        }
    }

    /// Watches idle periods: freezes the sandbox once it has been idle for [`FREEZE_AFTER`]
    /// (when freezing is on) and stops it once it has been idle for the function's idle timeout.
    /// Woken by [`Self::park`], it sleeps until the next deadline; a newer idle period (after an
    /// invocation) starts the count again.
    async fn idler(self: Arc<Self>) {
        let config = &self.function.config;
        loop {
            tokio::select! {
                () = self.gone.cancelled() => return,
                () = self.parked.notified() => {}
            }
            loop {
                let (since, frozen) = {
                    let st = self.lock();
                    let since = st.idle_since.filter(|_| matches!(st.phase, Phase::Idle));
                    (since, st.frozen)
                };
                let Some(since) = since else { break };
                let due = if config.freeze && !frozen {
                    since + FREEZE_AFTER.min(config.idle_timeout)
                } else {
                    since + config.idle_timeout
                };
                if Instant::now() >= due {
                    if since.elapsed() >= config.idle_timeout {
                        if self.function.pool.take_idle(&self) {
                            tracing::debug!(
                                function = &*self.function.name,
                                sandbox = self.id,
                                "idle sandbox stopped"
                            );
                            self.stop(crate::emulator::SHUTDOWN_GRACE).await;
                            return;
                        }
                        // Granted to an invocation meanwhile: wait for its next idle period.
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
                    self.freeze_if_idle_since(since);
                    continue;
                }
                tokio::select! {
                    () = self.gone.cancelled() => return,
                    () = tokio::time::sleep_until(due.into()) => {}
                }
            }
        }
    }

    /// Freezes the sandbox if it is still in the idle period that began at `since`: only an idle
    /// runtime blocked in `next` is stopped.
    fn freeze_if_idle_since(&self, since: Instant) {
        let mut st = self.lock();
        if matches!(st.phase, Phase::Idle) && !st.frozen && st.idle_since == Some(since) {
            self.signal_all(Signal::SIGSTOP);
            st.frozen = true;
        }
    }

    /// Answers the caller and writes `END` and `REPORT`. With Tail the log is completed before
    /// the answer so that it carries `REPORT`; without, the caller is answered first. A streamed
    /// answer is ended with `outcome`'s error.
    #[must_use = "the END and REPORT lines of a returned report are still to be written"]
    fn finish(
        &self,
        running: Running,
        outcome: Outcome,
        status: Option<ReportStatus>,
    ) -> Option<Report> {
        let duration = running.started.elapsed();
        let request_id = running.invocation.request_id.clone();
        let reply = match running.answer {
            Answer::Pending(reply) => reply,
            Answer::Streaming { abort, .. } => {
                self.logs.drain();
                self.write_end_report(&request_id, duration, running.init, status);
                let log_tail = self.logs.end_invocation();
                let error = match outcome {
                    Outcome::FunctionError { error_type, body } => {
                        Some(StreamError { error_type, body })
                    }
                    _ => None,
                };
                let _ = abort.send(StreamItem::End { error, log_tail });
                return None;
            }
        };
        if running.invocation.log_tail {
            self.logs.drain();
            self.write_end_report(&request_id, duration, running.init, status);
            let log_tail = self.logs.end_invocation();
            let _ = reply.send(InvokeResponse {
                request_id,
                outcome,
                log_tail,
            });
            None
        } else {
            // The caller may be gone; the invocation still ran and is still logged.
            let _ = reply.send(InvokeResponse {
                request_id: request_id.clone(),
                outcome,
                log_tail: None,
            });
            Some(Report {
                request_id,
                duration,
                init: running.init,
                status,
            })
        }
    }

    /// Writes an answered invocation's `END` and `REPORT` (after whatever it printed).
    pub(crate) fn write_report(&self, report: Report) {
        self.logs.drain();
        self.write_end_report(
            &report.request_id,
            report.duration,
            report.init,
            report.status,
        );
        self.logs.end_invocation();
    }

    /// The runtime began a streamed `/response`: answers the caller with the stream at once and
    /// returns its sender, and where a forced end (deadline, runtime's death) will arrive. The
    /// deadline keeps running while the stream does.
    pub(crate) fn start_stream(
        self: &Arc<Self>,
        request_id: &str,
        content_type: Option<String>,
    ) -> Result<(mpsc::Sender<StreamItem>, oneshot::Receiver<StreamItem>), Refusal> {
        let mut st = self.lock();
        Self::answerable(&st, request_id)?;
        let Phase::Busy(running) = &mut st.phase else {
            return Err(Refusal::InvalidRequestId);
        };
        if !matches!(running.answer, Answer::Pending(_)) {
            return Err(Refusal::InvalidStateTransition {
                from: "Running",
                to: "InvocationResponse",
            });
        }
        let (abort, forced_end) = oneshot::channel();
        let (deadline_guard, deadline_dropped) = oneshot::channel::<()>();
        let Answer::Pending(reply) = std::mem::replace(
            &mut running.answer,
            Answer::Streaming {
                abort,
                _deadline: deadline_guard,
            },
        ) else {
            return Err(Refusal::InvalidRequestId);
        };
        let deadline = running.deadline;
        drop(st);
        let (tx, stream) = ResponseStream::channel();
        let _ = reply.send(InvokeResponse {
            request_id: request_id.to_owned(),
            outcome: Outcome::Stream {
                content_type,
                stream,
            },
            log_tail: None,
        });
        let sandbox = self.clone();
        let id = request_id.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => sandbox.time_out(&id),
                // The stream ended first.
                _ = deadline_dropped => {}
            }
        });
        Ok((tx, forced_end))
    }

    /// The runtime's streamed `/response` ended (`error` from its trailers, a cut, or the size
    /// cap). Writes `END`/`REPORT` and returns the log tail for the stream's end.
    pub(crate) fn finish_stream(
        self: &Arc<Self>,
        request_id: &str,
        error: Option<&StreamError>,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        let mut st = self.lock();
        let streaming = matches!(&st.phase, Phase::Busy(r)
            if r.invocation.request_id == request_id && matches!(r.answer, Answer::Streaming { .. }));
        if !streaming {
            return Err(Refusal::InvokeTimeout);
        }
        let Phase::Busy(running) = std::mem::replace(&mut st.phase, Phase::Finishing) else {
            return Err(Refusal::InvalidRequestId);
        };
        st.last_request_id = Some(request_id.to_owned());
        let extensions_busy = !st.extensions.all_ready();
        drop(st);
        if extensions_busy {
            self.bound_extensions(request_id, running.deadline);
        }
        self.function.pool.on_responded();
        let done = if error.is_some() {
            Status::Error
        } else {
            Status::Success
        };
        self.publish_runtime_done(
            &running,
            done,
            error.map(|e| e.error_type.as_str()),
            None,
            None,
        );
        let status = error.map(|e| ReportStatus::Error(e.error_type.clone()));
        self.logs.drain();
        self.write_end_report(request_id, running.started.elapsed(), running.init, status);
        Ok(self.logs.end_invocation())
    }

    fn write_end_report(
        &self,
        request_id: &str,
        duration: Duration,
        init: Option<Duration>,
        status: Option<ReportStatus>,
    ) {
        let config = &self.function.config;
        let billed = (duration + init.unwrap_or_default()).as_secs_f64() * 1000.0;
        let billed = billed.ceil().max(1.0) as u64;
        let peak = self.refresh_peak();
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {peak} MB\t",
            ms2(duration),
            config.memory_mb,
        );
        self.telemetry.publish(Category::Platform, || {
            let (status, error_type) = match &status {
                None => (Status::Success, None),
                Some(ReportStatus::Timeout) => (Status::Timeout, Some("Sandbox.Timedout".into())),
                Some(ReportStatus::Error(t)) => (Status::Error, Some(t.clone())),
            };
            Record::Report(tm::Report {
                request_id: request_id.to_owned(),
                status,
                error_type,
                metrics: tm::ReportMetrics {
                    duration_ms: millis(duration),
                    billed_duration_ms: billed,
                    memory_size_mb: u64::from(config.memory_mb),
                    max_memory_used_mb: peak,
                    init_duration_ms: init.map(millis),
                },
                spans: Vec::new(),
                tracing: None,
            })
        });
        if let Some(init) = init {
            report.push_str(&format!("Init Duration: {} ms\t", ms2(init)));
        }
        match status {
            None => {}
            Some(ReportStatus::Timeout) => report.push_str("Status: timeout\t"),
            Some(ReportStatus::Error(t)) => {
                report.push_str(&format!("Status: error\tError Type: {t}\t"));
            }
        }
        self.logs
            .platform_line(&format!("END RequestId: {request_id}"));
        self.logs.platform_line(&report);
    }

    /// Writes an `INIT_REPORT` line for an init that failed or timed out.
    fn log_init_report(&self, duration: Duration, status: &str, error_type: Option<&str>) {
        let mut line = format!(
            "INIT_REPORT Init Duration: {} ms\tPhase: init\tStatus: {status}",
            ms2(duration)
        );
        if let Some(t) = error_type {
            line.push_str(&format!("\tError Type: {t}"));
        }
        self.logs.drain();
        self.logs.platform_line(&line);
        let status = if status == "timeout" {
            Status::Timeout
        } else {
            Status::Error
        };
        self.publish_init_done(duration, status, error_type);
    }

    fn refresh_peak(&self) -> u64 {
        match self.status.get().and_then(StatusFile::peak_rss_mb) {
            Some(mb) => {
                self.peak_mb.store(mb, Ordering::Relaxed);
                mb
            }
            None => self.peak_mb.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `END` and `REPORT` lines of an answered invocation, still to be written: the Runtime API
/// writes them once the caller's answer is on its way.
pub(crate) struct Report {
    request_id: String,
    duration: Duration,
    init: Option<Duration>,
    status: Option<ReportStatus>,
}

/// When the runtime's buffered answer began and finished arriving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseTiming {
    pub(crate) began: Instant,
    pub(crate) ended: Instant,
}

impl ResponseTiming {
    /// `responseLatency` (the invocation's start to the answer's start) and `responseDuration`
    /// (the answer's start to its end).
    fn spans(self, running: &Running) -> Vec<tm::Span> {
        let began_at = running.started_at + self.began.saturating_duration_since(running.started);
        vec![
            tm::Span {
                name: tm::RESPONSE_LATENCY.into(),
                start: iso_millis(running.started_at),
                duration_ms: millis(self.began.saturating_duration_since(running.started)),
            },
            tm::Span {
                name: tm::RESPONSE_DURATION.into(),
                start: iso_millis(began_at),
                duration_ms: millis(self.ended.saturating_duration_since(self.began)),
            },
        ]
    }
}

/// Milliseconds with microsecond precision, as Lambda's metrics.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// The Telemetry API's trace context of an invocation's trace header, if it has one.
fn trace_context(trace_id: &str) -> Option<TraceContext> {
    (!trace_id.is_empty()).then(|| TraceContext {
        span_id: None,
        kind: "X-Amzn-Trace-Id".into(),
        value: trace_id.to_owned(),
    })
}

/// The `Status` of a `REPORT` line.
enum ReportStatus {
    Timeout,
    Error(String),
}

/// Starts a sandbox's bootstrap in a process group of its own, writing to the log pipe.
fn start_bootstrap(
    function: &Function,
    runtime_api: &str,
    port: Option<u16>,
    log_pipe: io::PipeWriter,
) -> io::Result<tokio::process::Child> {
    let log_pipe_err = log_pipe.try_clone()?;
    let mut command = function.command(runtime_api, port);
    command
        .stdin(Stdio::null())
        .stdout(log_pipe)
        .stderr(log_pipe_err)
        .process_group(0);
    command.spawn()
    // The command, dropped here, held our copies of the pipe's write end: the pipe reaches end
    // of file once the sandbox's processes are gone.
}

/// A free loopback port for a sandbox's web app.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// An extension's name: its executable's file name.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The bootstrap's argv and environment, for [`Function::command`].
pub(crate) fn command_for(
    argv: &[OsString],
    env: &[(String, String)],
    task_root: &std::path::Path,
    runtime_api: &str,
    log_stream: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&argv[0]);
    command.args(&argv[1..]).current_dir(task_root);
    // A trace id leaking from the host would look like the first invocation's.
    command.env_remove(coldstart_protocol::env::TRACE_ID);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.env(coldstart_protocol::env::RUNTIME_API, runtime_api);
    command.env(coldstart_protocol::env::LOG_STREAM_NAME, log_stream);
    command
}

//! One function as the emulator runs it: its settings resolved once, its pool of sandboxes, and
//! the path of one invocation through them (warm, cold, init failures, deadline).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::{FunctionConfig, Settings};
use crate::error::{Error, InvokeError};
use crate::in_process::IN_PROCESS;
use crate::invocation::{Invocation, InvokeResponse, Outcome};
use crate::logs::LogSink;
use crate::opt::OptMount;
use crate::pool::{Acquire, Fallback, Grant, Pool, Urgency};
use crate::process::{SHUTDOWN_GRACE, describe_exit};
use crate::runtime_api;
use crate::sandbox::{Fact, InitFailure, InitResult, Owner, Sandbox, Spec};
use coldstart_protocol::env;

/// How many times an invocation is offered to a new sandbox when the one it got died before it
/// could take it.
const DISPATCH_ATTEMPTS: usize = 3;

/// A function and its sandboxes; the owner of every sandbox it starts.
pub(crate) struct Function {
    pub(crate) name: Arc<str>,
    /// What its sandboxes run.
    spec: Arc<Spec>,
    pub(crate) pool: Pool,
    next_id: AtomicU64,
    /// Bumped when the function's code is replaced; sandboxes of an older generation are
    /// stopped instead of reused.
    generation: AtomicU64,
    /// Every live sandbox, for shutdown; entries leave when their processes are all reaped.
    sandboxes: Mutex<HashMap<u64, Arc<Sandbox>>>,
    /// [`State`] as a number: invocations of a function that is not `Active` are refused.
    state: AtomicU8,
}

/// Whether a function can be invoked, as Lambda's function `State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Invocable (the default).
    Active,
    /// Not yet: its code is being built. Invocations get 409 `ResourceConflictException`.
    Pending,
    /// Its build failed. Invocations get 409 `ResourceConflictException`.
    Failed,
}

impl State {
    /// The state's name, as Lambda spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Pending => "Pending",
            Self::Failed => "Failed",
        }
    }

    fn from_u8(n: u8) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Failed,
            _ => Self::Active,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Active => 0,
            Self::Pending => 1,
            Self::Failed => 2,
        }
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &&*self.name)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Resolves a function's paths and environment.
    pub(crate) fn new(
        config: FunctionConfig,
        settings: &Settings,
        sink: Arc<dyn LogSink>,
    ) -> Result<Arc<Self>, Error> {
        config.validate()?;
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            what: "reading the current directory",
            source,
        })?;
        let mut argv = config.command.clone();
        if argv.is_empty() {
            // An in-process runtime (`validate` allows no command only then): a name for messages.
            argv.push(IN_PROCESS.into());
        }
        let program = PathBuf::from(&argv[0]);
        let is_path = program.components().count() > 1;
        if is_path && program.is_relative() {
            argv[0] = cwd.join(&program).into_os_string();
        }
        let task_root = match &config.task_root {
            Some(root) => cwd.join(root),
            None if is_path => Path::new(&argv[0])
                .parent()
                .map_or_else(|| cwd.clone(), Path::to_path_buf),
            None => cwd.clone(),
        };
        let name = config.name.clone();
        let mut env: Vec<(String, String)> = config
            .environment
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let task_root_text = task_root.to_string_lossy().into_owned();
        let reserved = [
            (env::FUNCTION_NAME, name.clone()),
            (env::FUNCTION_VERSION, "$LATEST".into()),
            (env::FUNCTION_MEMORY_SIZE, config.memory_mb.to_string()),
            (env::LOG_GROUP_NAME, format!("/aws/lambda/{name}")),
            (env::INITIALIZATION_TYPE, "on-demand".into()),
            (env::REGION, settings.region.clone()),
            (env::DEFAULT_REGION, settings.region.clone()),
            (env::TASK_ROOT, task_root_text.clone()),
            (env::RUNTIME_DIR, task_root_text),
            (env::TZ, ":UTC".into()),
        ];
        env.extend(reserved.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if let Some(handler) = &config.handler {
            env.push((env::HANDLER.to_owned(), handler.clone()));
        }
        if let Some((application, _)) = config.log_levels() {
            env.push((env::LOG_FORMAT.to_owned(), "JSON".into()));
            env.push((env::LOG_LEVEL.to_owned(), application.as_str().into()));
        }
        let extensions = config.extensions.iter().map(|p| cwd.join(p)).collect();
        let opt =
            match &config.opt {
                Some(folder) => Some(OptMount::new(&cwd.join(folder)).map_err(|err| {
                    Error::InvalidFunction {
                        function: name.clone(),
                        reason: format!("cannot mount {} at /opt: {err}", folder.display()),
                    }
                })?),
                None => None,
            };
        let name: Arc<str> = name.into();
        Ok(Arc::new(Self {
            pool: Pool::new(config.concurrency, config.throttle_after)
                .per_sandbox(config.max_concurrency),
            spec: Arc::new(Spec {
                name: name.clone(),
                config,
                account_id: settings.account_id.clone(),
                sink,
                argv,
                extensions,
                opt,
                task_root,
                env,
            }),
            name,
            next_id: AtomicU64::new(1),
            generation: AtomicU64::new(0),
            sandboxes: Mutex::new(HashMap::new()),
            state: AtomicU8::new(State::Active.to_u8()),
        }))
    }

    /// The function's settings.
    pub(crate) fn config(&self) -> &FunctionConfig {
        &self.spec.config
    }

    /// Whether the function can be invoked.
    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Sets the function's state (see [`State`]).
    pub(crate) fn set_state(&self, state: State) {
        self.state.store(state.to_u8(), Ordering::Release);
    }

    /// The current code generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The function's code changed: idle sandboxes stop now, busy ones after their invocation;
    /// new invocations get new sandboxes.
    pub(crate) fn replace_sandboxes(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for sandbox in self.pool.take_all_idle() {
            tokio::spawn(async move { sandbox.stop(SHUTDOWN_GRACE).await });
        }
    }

    /// Process ids of the live sandboxes' bootstraps.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let sandboxes = self
            .sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An in-process runtime has no process (0): there is nothing to signal.
        sandboxes
            .values()
            .map(|s| s.pid())
            .filter(|&pid| pid != 0)
            .collect()
    }

    /// Every live sandbox's view, by id.
    pub(crate) fn sandbox_views(&self) -> Vec<crate::snapshot::SandboxView> {
        let sandboxes: Vec<Arc<Sandbox>> = self
            .sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        // Each view takes its sandbox's lock: not while holding the map's.
        let mut views: Vec<_> = sandboxes.iter().map(|s| s.view()).collect();
        views.sort_by_key(|v| v.id);
        views
    }

    /// Runs one invocation to its one answer.
    pub(crate) async fn run(
        self: &Arc<Self>,
        invocation: Invocation,
        urgency: Urgency,
    ) -> Result<InvokeResponse, InvokeError> {
        self.run_or_give_up(invocation, urgency, None)
            .await?
            .ok_or_else(shutting_down)
    }

    /// Runs an `Event` invocation to its one answer, unless `stopping` is given and cancelled
    /// before a sandbox takes it (while it waits in the queue for capacity): then `None`, and
    /// the invocation has not run.
    pub(crate) async fn run_unless_stopping(
        self: &Arc<Self>,
        invocation: Invocation,
        stopping: Option<&CancellationToken>,
    ) -> Result<Option<InvokeResponse>, InvokeError> {
        self.run_or_give_up(invocation, Urgency::Async, stopping)
            .await
    }

    async fn run_or_give_up(
        self: &Arc<Self>,
        invocation: Invocation,
        urgency: Urgency,
        give_up: Option<&CancellationToken>,
    ) -> Result<Option<InvokeResponse>, InvokeError> {
        let mut invocation = Arc::new(invocation);
        // The common case: a warm sandbox at once, dispatched without an await in between.
        if let Some(sandbox) = self.pool.take_warm() {
            match sandbox.dispatch(invocation.clone()) {
                Ok(answer) => {
                    let answered = self.await_answer(&sandbox, answer, &invocation.request_id);
                    return Ok(Some(answered.await));
                }
                // It died between being idle and being given the work: the slow way.
                Err(back) => invocation = back,
            }
        }
        // Waiting for a grant or a cold start can take a while, and the caller may leave (its
        // future dropped) meanwhile: a grant sent at that moment, or a sandbox started for it,
        // would be stranded with its slot taken, the sandbox waiting in `next` for ever. So that
        // part runs as a task of its own, and the invocation goes on without its caller, as
        // Lambda's does.
        let function = self.clone();
        let give_up = give_up.cloned();
        let dispatching = tokio::spawn(async move {
            function
                .dispatch_somewhere(invocation, urgency, give_up.as_ref())
                .await
        });
        let dispatched = dispatching
            .await
            .map_err(|e| InvokeError::Service(format!("dispatching failed: {e}")))??;
        match dispatched {
            Ok((sandbox, answer, invocation)) => Ok(Some(
                self.await_answer(&sandbox, answer, &invocation.request_id)
                    .await,
            )),
            Err(early) => Ok(early),
        }
    }

    /// Finds a sandbox for `invocation` (waiting for one, or starting one) and gives it the
    /// work: the sandbox, its answer's receiver and the invocation; or, without a dispatch, the
    /// answer of a failed start, or `None` when `give_up` was cancelled first.
    async fn dispatch_somewhere(
        self: &Arc<Self>,
        mut invocation: Arc<Invocation>,
        urgency: Urgency,
        give_up: Option<&CancellationToken>,
    ) -> Result<Result<Dispatched, Option<InvokeResponse>>, InvokeError> {
        let mut patient = true;
        let mut attempts = 0;
        while attempts < DISPATCH_ATTEMPTS {
            if give_up.is_some_and(CancellationToken::is_cancelled) {
                return Ok(Err(None));
            }
            let grant = match self.pool.acquire(urgency, patient) {
                Acquire::Now(grant) => grant,
                Acquire::Wait { mut grant, then } => {
                    let waited = match (then.patience(), give_up) {
                        (None, Some(give_up)) => tokio::select! {
                            // A grant that came with the stop is used: the slot is taken.
                            biased;
                            granted = &mut grant => Some(granted),
                            () = give_up.cancelled() => {
                                // Closing first means a grant sent at this very moment is
                                // received here rather than lost with the channel.
                                grant.close();
                                match grant.try_recv() {
                                    Ok(granted) => Some(Ok(granted)),
                                    Err(_) => return Ok(Err(None)),
                                }
                            }
                        },
                        (None, None) => Some((&mut grant).await),
                        (Some(patience), _) => {
                            tokio::time::timeout(patience, &mut grant).await.ok()
                        }
                    };
                    match waited {
                        Some(granted) => granted.map_err(|_| shutting_down())?,
                        None => {
                            // Closing first means a grant sent at this very moment is received
                            // here rather than lost with the channel.
                            grant.close();
                            match grant.try_recv() {
                                Ok(granted) => granted,
                                Err(_) if matches!(then, Fallback::ThrottleAfter(_)) => {
                                    return Err(InvokeError::Throttled);
                                }
                                Err(_) => {
                                    patient = false;
                                    continue;
                                }
                            }
                        }
                    }
                }
                Acquire::Throttled => return Err(InvokeError::Throttled),
                Acquire::Closed => return Err(shutting_down()),
            };
            attempts += 1;
            let sandbox = match grant {
                Grant::Warm(sandbox) => sandbox,
                Grant::Cold => match self.start(&invocation).await {
                    Ok(sandbox) => sandbox,
                    Err(failed) => return Ok(Err(Some(failed))),
                },
            };
            match sandbox.dispatch(invocation.clone()) {
                Ok(answer) => return Ok(Ok((sandbox, answer, invocation))),
                // It died between being granted and being given the work: try another.
                Err(back) => invocation = back,
            }
        }
        Err(InvokeError::Service(
            "no execution environment could take the invocation".into(),
        ))
    }

    async fn await_answer(
        &self,
        sandbox: &Arc<Sandbox>,
        mut answer: oneshot::Receiver<InvokeResponse>,
        request_id: &str,
    ) -> InvokeResponse {
        let deadline = tokio::time::Instant::now() + self.spec.config.timeout;
        // If the caller leaves (this future is dropped), the deadline still holds: a function
        // that never answers must not keep its sandbox, and its slot, for ever.
        let mut guard = DeadlineGuard {
            sandbox: Some(sandbox.clone()),
            request_id: request_id.to_owned(),
            deadline,
        };
        let response = tokio::select! {
            // The answer wins a tie with the deadline.
            biased;
            response = &mut answer => response.unwrap_or_else(|_| lost()),
            () = tokio::time::sleep_until(deadline) => {
                sandbox.time_out(request_id);
                answer.await.unwrap_or_else(|_| lost())
            }
        };
        guard.sandbox = None;
        response
    }

    /// Starts a sandbox with a reserved slot and waits for its init. On failure, answers the
    /// invocation with the failure.
    async fn start(
        self: &Arc<Self>,
        invocation: &Invocation,
    ) -> Result<Arc<Sandbox>, InvokeResponse> {
        let (sandbox, ready) = self.spawn_or_answer(invocation)?;
        if invocation.log_tail {
            sandbox.logs.keep_tail();
        }
        let failure = match tokio::time::timeout(self.spec.config.init_timeout, ready).await {
            Ok(Ok(Ok(()))) => return Ok(sandbox),
            Ok(Ok(Err(failure))) => failure,
            Ok(Err(_)) => InitFailure::Exited(describe_exit(None)),
            Err(_elapsed) => {
                // Lambda retries a timed-out init inside the invocation ("suppressed init"),
                // bounded by the function's timeout. The new sandbox inherits the slot.
                sandbox.abandon_init(true);
                let (retry, ready) = self.spawn_or_answer(invocation)?;
                if invocation.log_tail {
                    retry.logs.keep_tail();
                }
                match tokio::time::timeout(self.spec.config.timeout, ready).await {
                    Ok(Ok(Ok(()))) => return Ok(retry),
                    Ok(Ok(Err(failure))) => {
                        return Err(retry.fail_start(
                            invocation,
                            failure.into_outcome(&invocation.request_id),
                            false,
                        ));
                    }
                    Ok(Err(_)) => {
                        return Err(retry.fail_start(
                            invocation,
                            InitFailure::Exited(describe_exit(None))
                                .into_outcome(&invocation.request_id),
                            false,
                        ));
                    }
                    Err(_elapsed) => {
                        retry.abandon_init(false);
                        let cause = format!(
                            "Task timed out after {:.2} seconds",
                            self.spec.config.timeout.as_secs_f64()
                        );
                        let outcome = Outcome::platform_error(
                            "Sandbox.Timedout",
                            &invocation.request_id,
                            &cause,
                        );
                        return Err(retry.fail_start(invocation, outcome, true));
                    }
                }
            }
        };
        Err(sandbox.fail_start(
            invocation,
            failure.into_outcome(&invocation.request_id),
            false,
        ))
    }

    fn spawn_or_answer(
        self: &Arc<Self>,
        invocation: &Invocation,
    ) -> Result<(Arc<Sandbox>, oneshot::Receiver<InitResult>), InvokeResponse> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let owner: Weak<dyn Owner> = Arc::downgrade(self) as Weak<dyn Owner>;
        let spawned = Sandbox::spawn(&self.spec, owner, id, self.generation());
        let spawned = spawned.map_err(|err| {
            self.pool.release_slot();
            let program = Path::new(&self.spec.argv[0]).display().to_string();
            let cause = match err.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("Couldn't find valid bootstrap(s): [{program}]")
                }
                std::io::ErrorKind::PermissionDenied => {
                    format!("fork/exec {program}: permission denied")
                }
                _ => format!("fork/exec {program}: {err}"),
            };
            tracing::error!(function = &*self.name, "{cause}");
            InvokeResponse {
                request_id: invocation.request_id.clone(),
                outcome: Outcome::platform_error(
                    "Runtime.InvalidEntrypoint",
                    &invocation.request_id,
                    &cause,
                ),
                log_tail: None,
            }
        })?;
        // The Runtime API serves the sandbox until its processes are gone.
        tokio::spawn(runtime_api::serve(
            spawned.listener,
            spawned.sandbox.clone(),
            spawned.in_memory,
        ));
        Ok((spawned.sandbox, spawned.ready))
    }

    /// Stops every sandbox: SIGTERM, then SIGKILL after `grace`.
    pub(crate) async fn stop_all(&self, grace: Duration) {
        self.pool.close();
        let sandboxes: Vec<Arc<Sandbox>> = self
            .sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut stops = tokio::task::JoinSet::new();
        for sandbox in sandboxes {
            stops.spawn(async move { sandbox.stop(grace).await });
        }
        while stops.join_next().await.is_some() {}
    }
}

impl Owner for Function {
    fn tell(&self, sandbox: &Arc<Sandbox>, fact: Fact) {
        match fact {
            Fact::Started => {
                self.sandboxes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(sandbox.id, sandbox.clone());
            }
            Fact::Responded => self.pool.on_responded(),
            Fact::Ready if sandbox.generation != self.generation() => {
                // Its code was replaced while it ran: stop it instead of reusing it.
                self.pool.on_retired();
                let retired = sandbox.clone();
                tokio::spawn(async move { retired.stop(SHUTDOWN_GRACE).await });
            }
            Fact::Ready => {
                if self.pool.on_ready(sandbox.clone()) {
                    sandbox.park();
                }
            }
            Fact::Dead(vacated) => self.pool.on_dead(sandbox, vacated),
            Fact::Opened(more) => self.pool.open(sandbox, more),
            Fact::IdleExpired => {
                // Unless it was granted to an invocation meanwhile.
                if self.pool.take_idle(sandbox) {
                    tracing::debug!(
                        function = &*self.name,
                        sandbox = sandbox.id,
                        "idle sandbox stopped"
                    );
                    let idle = sandbox.clone();
                    tokio::spawn(async move { idle.stop(SHUTDOWN_GRACE).await });
                }
            }
            Fact::Gone => {
                self.sandboxes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&sandbox.id);
            }
        }
    }
}

/// Times invocation `request_id` out at `deadline` when dropped armed (with its sandbox): its
/// caller left before the answer or the deadline came.
struct DeadlineGuard {
    sandbox: Option<Arc<Sandbox>>,
    request_id: String,
    deadline: tokio::time::Instant,
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        let Some(sandbox) = self.sandbox.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request_id = std::mem::take(&mut self.request_id);
        let deadline = self.deadline;
        // Does nothing when the invocation was answered meanwhile.
        runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            sandbox.time_out(&request_id);
        });
    }
}

/// An invocation handed to a sandbox: the sandbox, its answer's receiver, the invocation.
type Dispatched = (
    Arc<Sandbox>,
    oneshot::Receiver<InvokeResponse>,
    Arc<Invocation>,
);

fn shutting_down() -> InvokeError {
    InvokeError::Service("the emulator is shutting down".into())
}

/// An answer channel closed without an answer: a bug, but the caller still gets one answer.
fn lost() -> InvokeResponse {
    InvokeResponse {
        request_id: String::new(),
        outcome: Outcome::error("Sandbox.Failure", "the execution environment failed".into()),
        log_tail: None,
    }
}

impl InitFailure {
    /// The caller's answer to an invocation whose sandbox failed to start.
    pub(crate) fn into_outcome(self, request_id: &str) -> Outcome {
        match self {
            InitFailure::Exited(cause) => {
                Outcome::platform_error("Runtime.ExitError", request_id, &cause)
            }
            InitFailure::Reported { error_type, body } => {
                Outcome::FunctionError { error_type, body }
            }
        }
    }
}

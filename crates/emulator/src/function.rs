//! One function as the emulator runs it: its settings resolved once, its pool of sandboxes, and
//! the path of one invocation through them (warm, cold, init failures, deadline).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::clock::log_stream_name;
use crate::config::{FunctionConfig, Settings};
use crate::error::{Error, InvokeError};
use crate::invocation::{Invocation, InvokeResponse, Outcome};
use crate::logs::LogSink;
use crate::opt::OptMount;
use crate::pool::{Acquire, Fallback, Grant, Pool, Urgency};
use crate::sandbox::{InitFailure, Sandbox, command_for};
use coldstart_protocol::env;

/// How many times an invocation is offered to a new sandbox when the one it got died before it
/// could take it.
const DISPATCH_ATTEMPTS: usize = 3;

/// A function and its sandboxes.
pub(crate) struct Function {
    pub(crate) name: Arc<str>,
    pub(crate) config: FunctionConfig,
    pub(crate) pool: Pool,
    pub(crate) sink: Arc<dyn LogSink>,
    argv: Vec<OsString>,
    /// External extensions' executables, absolute.
    extensions: Vec<PathBuf>,
    /// The folder bound at `/opt` in each sandbox, if any.
    opt: Option<OptMount>,
    /// The account the emulator presents.
    account_id: String,
    task_root: PathBuf,
    /// The Lambda environment shared by every sandbox of the function.
    env: Vec<(String, String)>,
    next_id: AtomicU64,
    /// Bumped when the function's code is replaced; sandboxes of an older generation are
    /// stopped instead of reused.
    generation: AtomicU64,
    /// Every live sandbox, for shutdown; entries leave when their process is reaped.
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
        Ok(Arc::new(Self {
            extensions,
            opt,
            account_id: settings.account_id.clone(),
            name: name.into(),
            pool: Pool::new(config.concurrency, config.throttle_after),
            config,
            sink,
            argv,
            task_root,
            env,
            next_id: AtomicU64::new(1),
            generation: AtomicU64::new(0),
            sandboxes: Mutex::new(HashMap::new()),
            state: AtomicU8::new(State::Active.to_u8()),
        }))
    }

    /// The command that starts one sandbox's bootstrap; `port` is the sandbox's own port.
    pub(crate) fn command(&self, runtime_api: &str, port: Option<u16>) -> tokio::process::Command {
        let mut command = command_for(
            &self.argv,
            &self.env,
            &self.task_root,
            runtime_api,
            &log_stream_name(),
        );
        self.give_port(&mut command, port);
        if let Some(opt) = &self.opt {
            opt.apply(&mut command);
        }
        command
    }

    /// The account id the emulator presents.
    pub(crate) fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The external extensions' executables, resolved.
    pub(crate) fn extensions(&self) -> &[PathBuf] {
        &self.extensions
    }

    /// The command that starts one of a sandbox's external extensions: the function's
    /// environment without the runtime-only variables, as in Lambda.
    pub(crate) fn extension_command(
        &self,
        path: &Path,
        runtime_api: &str,
        port: Option<u16>,
    ) -> tokio::process::Command {
        // Under a mounted `/opt`, an extension from the folder starts from its `/opt/...` path.
        let program = match &self.opt {
            Some(opt) => match path.strip_prefix(opt.folder()) {
                Ok(rel) => Path::new(crate::opt::OPT).join(rel),
                Err(_) => path.to_path_buf(),
            },
            None => path.to_path_buf(),
        };
        let mut command = tokio::process::Command::new(program);
        command.current_dir(&self.task_root);
        command.env_remove(env::TRACE_ID);
        for name in env::RUNTIME_ONLY {
            command.env_remove(name);
        }
        command.envs(
            self.env
                .iter()
                .filter(|(k, _)| !env::RUNTIME_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k, v)),
        );
        command.env(env::RUNTIME_API, runtime_api);
        self.give_port(&mut command, port);
        if let Some(opt) = &self.opt {
            opt.apply(&mut command);
        }
        command
    }

    /// Puts the sandbox's own port in `PORT` and `AWS_LWA_PORT`, and in
    /// `AWS_LWA_READINESS_CHECK_PORT` when that named the configured port.
    fn give_port(&self, command: &mut tokio::process::Command, port: Option<u16>) {
        let Some(port) = port else { return };
        let port = port.to_string();
        let configured = self
            .config
            .environment
            .get(env::LWA_PORT)
            .or_else(|| self.config.environment.get(env::PORT));
        if let Some(check) = self.config.environment.get(env::LWA_READINESS_CHECK_PORT)
            && Some(check) == configured
        {
            command.env(env::LWA_READINESS_CHECK_PORT, &port);
        }
        command.env(env::PORT, &port).env(env::LWA_PORT, &port);
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
            tokio::spawn(async move { sandbox.stop(crate::emulator::SHUTDOWN_GRACE).await });
        }
    }

    pub(crate) fn next_sandbox_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(&self, sandbox: &Arc<Sandbox>) {
        self.sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sandbox.id, sandbox.clone());
    }

    pub(crate) fn forget(&self, id: u64) {
        self.sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Process ids of the live sandboxes' bootstraps.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let sandboxes = self
            .sandboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sandboxes.values().map(|s| s.pid()).collect()
    }

    /// Runs one invocation to its one answer.
    pub(crate) async fn run(
        self: &Arc<Self>,
        invocation: Invocation,
        urgency: Urgency,
    ) -> Result<InvokeResponse, InvokeError> {
        let mut invocation = Arc::new(invocation);
        let mut patient = true;
        let mut attempts = 0;
        while attempts < DISPATCH_ATTEMPTS {
            let grant = match self.pool.acquire(urgency, patient) {
                Acquire::Now(grant) => grant,
                Acquire::Wait { mut grant, then } => {
                    let waited = match then.patience() {
                        None => Some((&mut grant).await),
                        Some(patience) => tokio::time::timeout(patience, &mut grant).await.ok(),
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
                    Err(failed) => return Ok(failed),
                },
            };
            match sandbox.dispatch(invocation.clone()) {
                Ok(answer) => {
                    return Ok(self
                        .await_answer(&sandbox, answer, &invocation.request_id)
                        .await);
                }
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
        tokio::select! {
            // The answer wins a tie with the deadline.
            biased;
            response = &mut answer => response.unwrap_or_else(|_| lost()),
            () = tokio::time::sleep(self.config.timeout) => {
                sandbox.time_out(request_id);
                answer.await.unwrap_or_else(|_| lost())
            }
        }
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
        let failure = match tokio::time::timeout(self.config.init_timeout, ready).await {
            Ok(Ok(Ok(()))) => return Ok(sandbox),
            Ok(Ok(Err(failure))) => failure,
            Ok(Err(_)) => InitFailure::Exited(crate::process::describe_exit(None)),
            Err(_elapsed) => {
                // Lambda retries a timed-out init inside the invocation ("suppressed init"),
                // bounded by the function's timeout. The new sandbox inherits the slot.
                sandbox.abandon_init(true);
                let (retry, ready) = self.spawn_or_answer(invocation)?;
                if invocation.log_tail {
                    retry.logs.keep_tail();
                }
                match tokio::time::timeout(self.config.timeout, ready).await {
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
                            InitFailure::Exited(crate::process::describe_exit(None))
                                .into_outcome(&invocation.request_id),
                            false,
                        ));
                    }
                    Err(_elapsed) => {
                        retry.abandon_init(false);
                        let cause = format!(
                            "Task timed out after {:.2} seconds",
                            self.config.timeout.as_secs_f64()
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
    ) -> Result<(Arc<Sandbox>, oneshot::Receiver<crate::sandbox::InitResult>), InvokeResponse> {
        Sandbox::spawn(self).map_err(|err| {
            self.pool.release_slot();
            let program = Path::new(&self.argv[0]).display().to_string();
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
        })
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

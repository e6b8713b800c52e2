//! One function under test and what runs it: a handler in the test's own process
//! ([`Function::handler`]), a bootstrap file ([`Function::binary`]), or a binary of the package
//! under test ([`Function::cargo_bin`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coldstart_emulator::{FunctionConfig, InProcess, TaskEnv};
use coldstart_runtime::{Config, Context, Diagnostic, ResponseStream, Runtime};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::stack::{Builder, FUNCTION, Stack};

/// One function to serve: made by [`Function::handler`], [`Function::binary`] or
/// [`Function::cargo_bin`], given Lambda settings, then started alone ([`Function::start`]) or put
/// in place of a template's function ([`Builder::function`]).
///
/// ```no_run
/// use coldstart_runtime::{Context, Error};
/// use coldstart_test::Function;
///
/// # async fn example() -> Result<(), coldstart_test::Error> {
/// let stack = Function::handler(|name: String, _ctx: Context| async move {
///     coldstart_runtime::info!("greeting {name}");
///     Ok::<_, Error>(format!("hello, {name}"))
/// })
/// .start()
/// .await?;
/// let answer = stack.invoke("function", r#""world""#).await?;
/// assert_eq!(answer.text(), r#""hello, world""#);
/// assert!(answer.logs.iter().any(|line| line.ends_with("greeting world")));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a function does nothing until started"]
pub struct Function {
    pub(crate) config: FunctionConfig,
}

impl Function {
    /// A JSON handler built on `coldstart-runtime`, run inside the test's own process (no child
    /// process, nothing to build): each sandbox runs the runtime's loop, with a clone of
    /// `handler`, as a task against the emulator's real Runtime API, so the invocation goes
    /// through everything a bootstrap's would (deadlines, error shapes, `START`/`END`/`REPORT`,
    /// platform events).
    ///
    /// What differs from a process: lines written with `coldstart_runtime`'s `info!` family are
    /// the function's log, but its `println!`s go to the test's output; `_X_AMZN_TRACE_ID` is not
    /// exported (read [`Context::xray_trace_id`]); the sandbox is never frozen and its memory is
    /// reported as 0 MB; a timeout ends the handler at its next `.await` (blocking code runs on).
    pub fn handler<F, Fut, E, R, Err>(handler: F) -> Self
    where
        F: FnMut(E, Context) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Err>> + Send + 'static,
        E: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        Err: Into<Diagnostic> + Send + 'static,
    {
        Self::in_process(move |runtime| {
            let handler = handler.clone();
            async move { runtime.run(handler).await }
        })
    }

    /// A streaming handler ([`Runtime::run_streaming`]) run inside the test's own process, as
    /// [`Function::handler`] runs a buffered one: invoke it with
    /// [`Stack::invoke_stream`](crate::Stack::invoke_stream) or through a Function URL in
    /// `RESPONSE_STREAM` mode.
    pub fn streaming_handler<F, Fut, E, Err>(handler: F) -> Self
    where
        F: FnMut(E, Context, ResponseStream) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Err>> + Send + 'static,
        E: DeserializeOwned + Send + 'static,
        Err: Into<Diagnostic> + Send + 'static,
    {
        Self::in_process(move |runtime| {
            let handler = handler.clone();
            async move { runtime.run_streaming(handler).await }
        })
    }

    /// A function whose sandboxes run `serve` with a runtime connected to their Runtime API.
    fn in_process<S, Fut>(serve: S) -> Self
    where
        S: Fn(Runtime) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), coldstart_runtime::Error>> + Send + 'static,
    {
        let serve = std::sync::Arc::new(serve);
        let runtime = InProcess::new(move |task: TaskEnv| {
            let serve = serve.clone();
            Box::pin(async move {
                let TaskEnv {
                    runtime_api,
                    environment,
                    log,
                    connector,
                } = task;
                let lookup = |name: &str| {
                    environment
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let config = Config::from_lookup(lookup);
                coldstart_runtime::log::to_writer(log, lookup, async move {
                    let runtime =
                        Runtime::connect_with(&runtime_api, move || connector.connect(), config)
                            .await?;
                    serve(runtime).await
                })
                .await
                .map_err(|e| coldstart_protocol::error::chain(&e))
            })
        });
        let mut config = FunctionConfig::new(FUNCTION, Vec::new());
        config.in_process = Some(runtime);
        // A task cannot be stopped (SIGSTOP); an idle one costs nothing anyway.
        config.freeze = false;
        Self { config }
    }

    /// A bootstrap: any executable that speaks the Runtime API (a binary, a script), run from
    /// its folder as `coldstart run` runs one.
    pub fn binary(path: impl Into<PathBuf>) -> Self {
        let path: PathBuf = path.into();
        let mut config = FunctionConfig::new(FUNCTION, vec![path.into_os_string()]);
        config.sandbox_port = coldstart_stack::config::wants_sandbox_port(&config);
        Self { config }
    }

    /// The binary `name` of the package under test, as cargo built it for this test (an
    /// integration test's binaries are built before it runs): looked up beside the test's own
    /// executable (`target/<profile>/name`). A missing binary makes [`Function::start`] fail,
    /// naming the path.
    pub fn cargo_bin(name: &str) -> Self {
        Self::binary(cargo_bin(name))
    }

    /// Names the function (default: `function`, as `coldstart run` names its one function).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// The function's timeout (default: 3 s, Lambda's).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The function's memory size in MB (default: 128).
    pub fn memory_mb(mut self, memory_mb: u32) -> Self {
        self.config.memory_mb = memory_mb;
        self
    }

    /// Most sandboxes at once (default: 10); invocations past it are throttled (429).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency;
        self
    }

    /// An environment variable of the function.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.environment.insert(key.into(), value.into());
        self
    }

    /// The settings the emulator gets for this function, to change what the methods above do
    /// not reach (log format, extensions, ...).
    pub fn config_mut(&mut self) -> &mut FunctionConfig {
        &mut self.config
    }

    /// A stack of this one function, to start.
    pub fn stack(self) -> Builder {
        Builder::of_function(self)
    }

    /// Starts a stack of this one function on free ports.
    pub async fn start(self) -> Result<Stack, Error> {
        self.stack().start().await
    }

    /// Whether it runs in the test's process.
    pub(crate) fn is_in_process(&self) -> bool {
        self.config.in_process.is_some()
    }

    /// The bootstrap's file, if it has one.
    pub(crate) fn bootstrap(&self) -> Option<&Path> {
        self.config.command.first().map(Path::new)
    }
}

/// Where cargo puts binary `name` for the test that is running: `CARGO_BIN_EXE_<name>` when set,
/// else beside the test executable's folder (`target/debug/deps/t-…` → `target/debug/name`). A
/// binary of another package of the workspace is there once that package is built (`cargo test
/// --workspace` builds every package's binaries before running tests).
pub fn cargo_bin(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

//! Runtimes that run inside the emulator's own process, as tasks: a test harness serves a
//! handler without building and starting a bootstrap.
//!
//! An [`InProcess`] runtime is started once per sandbox, in place of the bootstrap, with the
//! sandbox's Runtime API address, the function's Lambda environment and the write end of the
//! sandbox's log pipe ([`TaskEnv`]). Everything else about the sandbox stays as it is: its
//! Runtime API, its state machine, its deadlines, `START`/`END`/`REPORT` and its platform events.
//! Where a process would get a signal, the task is aborted (SIGTERM and SIGKILL) or left alone
//! (SIGSTOP and SIGCONT: an idle task costs nothing). Its end is read as a process's exit: a
//! runtime loop that returns is exit status 0, one that fails exit status 1, a panic exit status
//! 101 (Rust's), an abort `signal: killed`.
//!
//! What a task cannot be: frozen, measured (its memory is the host's, so reports say 0 MB), or
//! stopped in the middle of blocking code (an abort lands at the handler's next `.await`). Its
//! stdout and stderr are the host's; only what it writes to [`TaskEnv::log`] is its log.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// What messages call an in-process runtime where they would name a bootstrap.
pub(crate) const IN_PROCESS: &str = "(in-process runtime)";

/// What an in-process runtime is started with, once per sandbox.
#[derive(Debug)]
pub struct TaskEnv {
    /// `AWS_LAMBDA_RUNTIME_API` of the sandbox: `127.0.0.1:PORT`.
    pub runtime_api: String,
    /// The variables a bootstrap of the function would find in its environment
    /// (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, the function's own, ...),
    /// `AWS_LAMBDA_RUNTIME_API` included.
    pub environment: Vec<(String, String)>,
    /// The sandbox's log: each line written here is one of the function's log lines (the
    /// invocation's tail, the terminal, `function` platform events). The log reaches its end
    /// once this and every clone of it are dropped.
    pub log: std::io::PipeWriter,
    /// Opens connections to the sandbox's Runtime API in memory: the same server as
    /// `runtime_api`, without the kernel's loopback in between (two fewer trips through the TCP
    /// stack and the scheduler per invocation).
    pub connector: Connector,
}

impl TaskEnv {
    /// The value of variable `name`, as the runtime's environment would hold it.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.environment
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How much an in-memory connection buffers each way before a writer waits for its reader.
const DUPLEX_BUFFER: usize = 256 * 1024;

/// Opens in-memory connections to one sandbox's Runtime API ([`TaskEnv::connector`]).
#[derive(Debug, Clone)]
pub struct Connector(mpsc::UnboundedSender<DuplexStream>);

impl Connector {
    /// A connector, and where the sandbox's Runtime API receives the connections it opens.
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<DuplexStream>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// A new connection to the sandbox's Runtime API, speaking HTTP/1.1 as over TCP; refused
    /// (`ConnectionRefused`) once the sandbox is gone.
    pub fn connect(&self) -> std::io::Result<DuplexStream> {
        let (ours, theirs) = tokio::io::duplex(DUPLEX_BUFFER);
        self.0.send(theirs).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the execution environment is gone",
            )
        })?;
        Ok(ours)
    }
}

/// The future an in-process runtime runs as: `Ok` when its loop returned, `Err(cause)` when it
/// failed (the cause is written to the sandbox's log).
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Start = dyn Fn(TaskEnv) -> TaskFuture + Send + Sync;

/// A runtime started as a task of the emulator's process for each sandbox of a function
/// ([`crate::FunctionConfig::in_process`]).
#[derive(Clone)]
pub struct InProcess(Arc<Start>);

impl InProcess {
    /// A runtime that `start` makes for each sandbox.
    pub fn new(start: impl Fn(TaskEnv) -> TaskFuture + Send + Sync + 'static) -> Self {
        Self(Arc::new(start))
    }

    /// The task's future for one sandbox.
    pub(crate) fn start(&self, env: TaskEnv) -> TaskFuture {
        (self.0)(env)
    }
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InProcess(..)")
    }
}

/// Two are equal when they are the same runtime (clones of one another).
impl PartialEq for InProcess {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for InProcess {}

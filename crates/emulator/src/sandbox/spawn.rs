//! Starting a sandbox's processes: the bootstrap and the external extensions, each group with
//! its environment, its log pipe and its own process group. Every process of the emulator is
//! spawned here.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use coldstart_protocol::ErrorBody;
use coldstart_protocol::env;
use coldstart_protocol::telemetry::{self as tm, Category, InitPhase, InitType, Record};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::DuplexStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::reports::platform_record;
use super::state::Machine;
use super::{Fact, InitResult, Owner, Sandbox};
use crate::clock::log_stream_name;
use crate::config::FunctionConfig;
use crate::in_process::Connector;
use crate::logs::{LogCapture, LogSink};
use crate::opt::OptMount;
use crate::process::{StatusFile, signal_group};
use crate::telemetry::Telemetry;

/// What a sandbox runs: one function's settings, resolved once by its owner.
pub(crate) struct Spec {
    pub(crate) name: Arc<str>,
    pub(crate) config: FunctionConfig,
    /// The account the emulator presents.
    pub(crate) account_id: String,
    pub(crate) sink: Arc<dyn LogSink>,
    /// The bootstrap's argv, its program absolute when it is a path.
    pub(crate) argv: Vec<OsString>,
    /// External extensions' executables, absolute.
    pub(crate) extensions: Vec<PathBuf>,
    /// The folder bound at `/opt` in each process of a sandbox, if any.
    pub(crate) opt: Option<OptMount>,
    pub(crate) task_root: PathBuf,
    /// The Lambda environment shared by every sandbox of the function.
    pub(crate) env: Vec<(String, String)>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("name", &&*self.name)
            .finish_non_exhaustive()
    }
}

/// A sandbox just started.
pub(crate) struct Spawned {
    pub(crate) sandbox: Arc<Sandbox>,
    /// Reports the end of init.
    pub(crate) ready: oneshot::Receiver<InitResult>,
    /// The sandbox's Runtime API listener (at `AWS_LAMBDA_RUNTIME_API`), for its owner to serve.
    pub(crate) listener: tokio::net::TcpListener,
    /// An in-process runtime's in-memory connections to the same Runtime API.
    pub(crate) in_memory: Option<mpsc::UnboundedReceiver<DuplexStream>>,
}

impl Sandbox {
    /// Starts sandbox `id` of `spec`: its extensions, or its bootstrap when it has none.
    pub(crate) fn spawn(
        spec: &Arc<Spec>,
        owner: Weak<dyn Owner>,
        id: u64,
        generation: u64,
    ) -> io::Result<Spawned> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let runtime_api = listener.local_addr()?.to_string();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let port = if spec.config.sandbox_port {
            Some(free_port()?)
        } else {
            None
        };

        let (connector, in_memory) = match spec.config.in_process {
            Some(_) => {
                let (connector, in_memory) = Connector::new();
                (Some(connector), Some(in_memory))
            }
            None => (None, None),
        };
        let (log_read, log_write) = io::pipe()?;
        let extension_pipe = if spec.extensions.is_empty() {
            None
        } else {
            Some(io::pipe()?)
        };
        let gone = CancellationToken::new();
        let telemetry = Arc::new(if spec.sink.wants_records() {
            let sink = spec.sink.clone();
            Telemetry::observed(
                gone.clone(),
                crate::telemetry::Observer {
                    function: Arc::from(&*spec.name),
                    log_records: spec.sink.wants_log_records(),
                    deliver: Arc::new(move |function, event| sink.record(function, event)),
                },
            )
        } else {
            Telemetry::new(gone.clone())
        });
        let started = Instant::now();
        let mut extension_children = Vec::new();
        let mut extension_group: Option<Pid> = None;
        for path in &spec.extensions {
            let Some((_, ext_write)) = &extension_pipe else {
                break;
            };
            let mut command = spec.extension_command(path, &runtime_api, port);
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
            if extension_group.is_none() {
                crate::watchdog::watch_group(pid);
            }
            extension_group.get_or_insert(Pid::from_raw(pid as i32));
            extension_children.push((file_name(path), child));
        }
        let (bootstrap, log_pipe) = if extension_children.is_empty() {
            (
                Some(start_bootstrap(
                    spec,
                    &runtime_api,
                    port,
                    log_write,
                    connector.as_ref(),
                )?),
                None,
            )
        } else {
            (None, Some(log_write))
        };
        let pid = bootstrap.as_ref().map_or(0, Bootstrap::pid);
        let levels = spec.config.log_levels();
        let logs = Arc::new(LogCapture::new(
            spec.name.clone(),
            spec.sink.clone(),
            OwnedFd::from(log_read),
            telemetry.clone(),
            Category::Function,
            levels,
        )?);
        platform_record(&telemetry, &logs, || {
            Record::InitStart(tm::InitStart {
                initialization_type: InitType::OnDemand,
                phase: InitPhase::Init,
                function_name: spec.name.to_string(),
                function_version: "$LATEST".into(),
                runtime_version: None,
                runtime_version_arn: None,
            })
        });
        // Our write end is dropped here: the pipe ends when the extensions are gone.
        let extension_logs = match extension_pipe {
            Some((ext_read, _)) => Some(Arc::new(LogCapture::new(
                spec.name.clone(),
                spec.sink.clone(),
                OwnedFd::from(ext_read),
                telemetry.clone(),
                Category::Extension,
                levels,
            )?)),
            None => None,
        };
        let (ready_tx, ready) = oneshot::channel();
        let names: Vec<String> = extension_children.iter().map(|(n, _)| n.clone()).collect();
        let alive = extension_children.len() + usize::from(bootstrap.is_some());
        let sandbox = Arc::new(Sandbox {
            id,
            spec: spec.clone(),
            owner,
            generation,
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
            state: Mutex::new(
                Machine::new(started, ready_tx, log_pipe, names, alive)
                    .concurrent(spec.config.max_concurrency),
            ),
            status: OnceLock::new(),
            task: OnceLock::new(),
            peak_mb: AtomicU64::new(0),
            gone,
            runtime_gone: CancellationToken::new(),
            parked: Notify::new(),
            connector,
        });
        tracing::debug!(function = &*spec.name, sandbox = id, pid, runtime_api = %sandbox.runtime_api, ?port, "sandbox started");
        // Before anything can reap a process, so that the owner hears `Gone` after this.
        sandbox.tell(Fact::Started);

        tokio::spawn(logs.run());
        if let Some(extension_logs) = extension_logs {
            tokio::spawn(extension_logs.run());
        }
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
        Ok(Spawned {
            sandbox,
            ready,
            listener,
            in_memory,
        })
    }

    /// Records the bootstrap's pid (or task) and reaps it when it exits.
    fn watch_bootstrap(self: &Arc<Self>, bootstrap: Bootstrap) {
        let watcher = self.clone();
        match bootstrap {
            Bootstrap::Process(mut child) => {
                let pid = child.id().unwrap_or(0);
                self.pid.store(pid, Ordering::Release);
                let _ = self.status.set(StatusFile::open(pid));
                tokio::spawn(async move {
                    let status = child.wait().await.ok();
                    watcher.on_exit(status);
                });
            }
            Bootstrap::Task { task, mut log } => {
                let _ = self.task.set(task.abort_handle());
                tokio::spawn(async move {
                    use std::io::Write as _;
                    use std::os::unix::process::ExitStatusExt as _;
                    // As a process's exit: 0, 1 with its error on stderr, 101 for a panic (as a
                    // Rust program's), SIGKILL for an abort.
                    let status = match task.await {
                        Ok(Ok(())) => 0,
                        Ok(Err(cause)) => {
                            let _ = writeln!(log, "Error: {cause}");
                            1 << 8
                        }
                        Err(err) if err.is_panic() => 101 << 8,
                        Err(_) => libc::SIGKILL,
                    };
                    drop(log);
                    watcher.on_exit(Some(std::process::ExitStatus::from_raw(status)));
                });
            }
        }
    }

    /// Every external extension registered: start the bootstrap.
    pub(super) fn start_deferred_bootstrap(self: &Arc<Self>, pipe: Option<io::PipeWriter>) {
        let started = pipe
            .ok_or_else(|| io::Error::other("the log pipe is gone"))
            .and_then(|pipe| {
                start_bootstrap(
                    &self.spec,
                    &self.runtime_api,
                    self.port,
                    pipe,
                    self.connector.as_ref(),
                )
            });
        match started {
            Ok(bootstrap) => {
                self.watch_bootstrap(bootstrap);
                // Init was abandoned, an extension failed or a stop began while it started:
                // those saw no bootstrap to signal.
                if self.lock().doomed() {
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
}

impl Spec {
    /// The command that starts one sandbox's bootstrap; `port` is the sandbox's own port.
    fn bootstrap_command(&self, runtime_api: &str, port: Option<u16>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command.args(&self.argv[1..]).current_dir(&self.task_root);
        // A trace id leaking from the host would look like the first invocation's.
        command.env_remove(env::TRACE_ID);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.env(env::RUNTIME_API, runtime_api);
        command.env(env::LOG_STREAM_NAME, log_stream_name());
        if self.config.max_concurrency > 1 {
            command.env(
                env::MAX_CONCURRENCY,
                self.config.max_concurrency.to_string(),
            );
        }
        crate::process::die_with_emulator(&mut command);
        self.give_port(&mut command, port);
        if let Some(opt) = &self.opt {
            opt.apply(&mut command);
        }
        command
    }

    /// The command that starts one of a sandbox's external extensions: the function's
    /// environment without the runtime-only variables, as in Lambda.
    fn extension_command(
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
        crate::process::die_with_emulator(&mut command);
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
}

/// A sandbox's runtime, just started.
pub(super) enum Bootstrap {
    /// A bootstrap process, leading its own process group.
    Process(tokio::process::Child),
    /// An in-process runtime's task, and a copy of the log pipe for its last words.
    Task {
        task: tokio::task::JoinHandle<Result<(), String>>,
        log: io::PipeWriter,
    },
}

impl Bootstrap {
    /// The process's id; 0 for a task.
    fn pid(&self) -> u32 {
        match self {
            Self::Process(child) => child.id().unwrap_or(0),
            Self::Task { .. } => 0,
        }
    }
}

/// Starts a sandbox's bootstrap in a process group of its own (or its in-process runtime as a
/// task), writing to the log pipe.
fn start_bootstrap(
    spec: &Spec,
    runtime_api: &str,
    port: Option<u16>,
    log_pipe: io::PipeWriter,
    connector: Option<&Connector>,
) -> io::Result<Bootstrap> {
    if let (Some(runtime), Some(connector)) = (&spec.config.in_process, connector) {
        let mut environment = spec.env.clone();
        environment.push((env::RUNTIME_API.to_owned(), runtime_api.to_owned()));
        environment.push((env::LOG_STREAM_NAME.to_owned(), log_stream_name()));
        let log = log_pipe.try_clone()?;
        let task = tokio::spawn(runtime.start(crate::in_process::TaskEnv {
            runtime_api: runtime_api.to_owned(),
            environment,
            log: log_pipe,
            connector: connector.clone(),
        }));
        return Ok(Bootstrap::Task { task, log });
    }
    let log_pipe_err = log_pipe.try_clone()?;
    let mut command = spec.bootstrap_command(runtime_api, port);
    command
        .stdin(Stdio::null())
        .stdout(log_pipe)
        .stderr(log_pipe_err)
        .process_group(0);
    let child = command.spawn()?;
    if let Some(pid) = child.id() {
        crate::watchdog::watch_group(pid);
    }
    // The command, dropped on return, held our copies of the pipe's write end: the pipe reaches
    // end of file once the sandbox's processes are gone.
    Ok(Bootstrap::Process(child))
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

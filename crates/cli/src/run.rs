//! `coldstart run`: one bootstrap served as the function `function`, a drop-in for the Runtime
//! Interface Emulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{Emulator, FunctionConfig, Settings, serve_invoke_api};

use crate::Failure;
use crate::args::RunArgs;
use crate::output::StdoutSink;

/// The function name the Runtime Interface Emulator serves.
const FUNCTION_NAME: &str = "function";

/// `up`'s default `--port-base`: `run`'s dashboard defaults to the port below it, as `up`'s.
const DEFAULT_PORT_BASE: u16 = 3000;

pub(crate) async fn run(mut args: RunArgs) -> Result<(), Failure> {
    let managed = match (&args.runtime, &args.code, &args.handler) {
        (Some(runtime), Some(code), Some(handler)) => {
            Some(managed_function(runtime, code, handler).await?)
        }
        _ => None,
    };
    if let Some(managed) = &managed {
        args.command = managed.argv.iter().map(Into::into).collect();
    }
    let mut config = function_config(&args)?;
    if let (Some(managed), Some(code)) = (&managed, &args.code) {
        config.task_root = Some(code.clone());
        config
            .environment
            .extend(managed.environment.iter().cloned());
    }
    check_bootstrap(Path::new(&config.command[0])).map_err(Failure::usage)?;
    let sink = Arc::new(StdoutSink::new(args.ready_json));
    let mut settings = settings();
    settings.async_retry_delay = args.async_retry_delay;
    let shutdown = CancellationToken::new();
    let dashboard = match args.dashboard {
        Some(addr) => {
            let addr = addr.unwrap_or_else(|| crate::dashboard::default_addr(DEFAULT_PORT_BASE));
            Some(crate::dashboard::start(addr, sink.clone(), shutdown.clone()).await?)
        }
        None => None,
    };
    let logs: Arc<dyn coldstart_emulator::LogSink> = match &dashboard {
        Some(served) => served.dashboard.sink(),
        None => sink.clone(),
    };
    let emulator = Emulator::new(vec![config.clone()], settings, logs)
        .map_err(|e| Failure::usage(e.into()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    eprintln!(
        "coldstart: serving `{}` at http://{addr}/2015-03-31/functions/{FUNCTION_NAME}/invocations",
        args.command[0].to_string_lossy()
    );

    let signals = tokio::spawn(wait_for_signal(shutdown.clone()));
    let server = tokio::spawn(serve_invoke_api(
        emulator.clone(),
        listener,
        shutdown.clone(),
    ));
    let mut endpoints = vec![coldstart_stack::Endpoint::invoke_api(
        addr,
        &[FUNCTION_NAME.to_owned()],
    )];
    if let Some(served) = &dashboard {
        served
            .dashboard
            .attach(emulator.clone(), vec![config], endpoints.clone());
        endpoints.push(served.endpoint.clone());
    }
    if args.ready_json {
        coldstart_stack::answering(&endpoints.iter().collect::<Vec<_>>())
            .await
            .map_err(|e| Failure::runtime(e.into()))?;
        crate::output::ready_line(&endpoints);
    }
    // Returns once `shutdown` is cancelled and the requests in flight are done.
    let _ = server.await;
    if let Some(served) = dashboard {
        let _ = served.task.await;
    }
    emulator.shutdown(emulator.longest_timeout()).await;
    sink.close();
    signals.abort();
    tracing::info!("stopped");
    Ok(())
}

/// `--runtime python3.N|nodejsN.x --handler H DIR`: the function on the machine's Python or
/// Node.js, its runtime client and packages installed first (once: later runs find them in the
/// cache).
async fn managed_function(
    runtime: &str,
    code: &Path,
    handler: &str,
) -> Result<coldstart_stack::managed::ManagedFunction, Failure> {
    use coldstart_stack::managed::{self, Managed};
    let Some(kind) = Managed::parse(runtime) else {
        return Err(Failure::usage(anyhow!(
            "--runtime {runtime}: coldstart runs {} without a bootstrap",
            managed::MANAGED_RUNTIMES
        )));
    };
    let (function, lines) = managed::managed_function(&kind, code, handler, None)
        .map_err(|line| Failure::usage(anyhow!("--runtime {line}")))?;
    for line in lines {
        eprintln!("coldstart: {line}");
    }
    eprintln!(
        "coldstart: preparing {runtime}: {}",
        coldstart_stack::build::describe(&function.build)
    );
    let report = coldstart_stack::Reporter::new(|line| eprintln!("coldstart: {line}"));
    coldstart_stack::build::run_reporting(&function.build, &report)
        .await
        .map_err(|e| Failure::runtime(anyhow!("preparing {runtime}: {e}")))?;
    Ok(function)
}

fn function_config(args: &RunArgs) -> Result<FunctionConfig, Failure> {
    let mut config = FunctionConfig::new(FUNCTION_NAME, args.command.clone());
    config.timeout = Duration::from_secs(args.timeout);
    config.memory_mb = args.memory;
    config.concurrency = args.concurrency;
    config.max_concurrency = usize::from(args.max_concurrency);
    config.handler = args.handler.clone();
    config.task_root = args.task_root.clone();
    config.environment = args.env.iter().cloned().collect();
    config.freeze = !args.no_freeze;
    config.extensions = args.extensions.clone();
    if let Some(dir) = &args.extensions_dir {
        config
            .extensions
            .extend(extensions_in(dir).map_err(Failure::usage)?);
    }
    for extension in &config.extensions {
        check_bootstrap(extension).map_err(Failure::usage)?;
    }
    config.sandbox_port = coldstart_stack::config::wants_sandbox_port(&config);
    config.validate().map_err(|e| Failure::usage(e.into()))?;
    Ok(config)
}

/// Every file of an extensions folder (not its folders), in name order, as Lambda runs
/// `/opt/extensions`.
fn extensions_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("cannot read the extensions folder {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The Lambda account settings, with the region from `AWS_REGION` when set.
pub(crate) fn settings() -> Settings {
    let mut settings = Settings::default();
    if let Ok(region) = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        && !region.is_empty()
    {
        settings.region = region;
    }
    settings
}

/// A bootstrap given as a path must exist and be executable; a bare name is looked up in `PATH`
/// when the sandbox starts.
pub(crate) fn check_bootstrap(program: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if program.components().count() < 2 {
        return Ok(());
    }
    let meta =
        std::fs::metadata(program).map_err(|e| anyhow!("bootstrap {}: {e}", program.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(anyhow!(
            "bootstrap {} is not an executable file",
            program.display()
        ));
    }
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled: a signal that comes before a spawned task first runs
/// (right after `up` prints its table) stops the server gracefully instead of killing it.
pub(crate) fn wait_for_signal(
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            tracing::error!("could not install signal handlers");
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        shutdown.cancel();
    }
}

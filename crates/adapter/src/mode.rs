//! The adapter's two ways of running, and what they share: wait for the app, then serve as the
//! function's runtime client.
//!
//! - **Extension mode** (`coldstart-adapter`, no arguments): the adapter is an external
//!   extension; the function's bootstrap is the web app, started by Lambda once the adapter has
//!   registered. The adapter registers, keeps `event/next` waiting, waits for the app, and takes
//!   invocations from the Runtime API.
//! - **Wrapper mode** (`coldstart-adapter -- APP [ARGS]...`): the adapter is the bootstrap and
//!   starts the app as its child (see [`crate::app`]).
//!
//! Either way, an invalid setting, or an app that exits before it is ready, is reported to
//! `/runtime/init/error` (so the caller sees why) before the adapter exits non-zero.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use coldstart_runtime::{Context, Diagnostic, ResponseStream, Runtime};
use nix::sys::signal::Signal;
use serde_json::value::RawValue;
use tokio::signal::unix::{SignalKind, signal};

use crate::app::{self, App};
use crate::config::{ASYNC_INIT_BUDGET, Config, InvokeMode};
use crate::error::{APP_EXITED_TYPE, ConfigError, Error, INVALID_CONFIG_TYPE};
use crate::extension::Extension;
use crate::forward::Forwarder;
use crate::readiness;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No arguments: run as an external extension beside the app.
    Extension,
    /// `-- APP [ARGS]...`: start the app and run as its bootstrap.
    Wrapper {
        /// The app's argv, the executable first.
        command: Vec<OsString>,
    },
    /// `-h` / `--help`.
    Help,
    /// `-V` / `--version`.
    Version,
}

/// The usage text.
pub const USAGE: &str = "\
usage: coldstart-adapter [-- APP [ARGS]...]

Runs an HTTP web app as an AWS Lambda function (AWS_LWA_* settings, as the Lambda Web Adapter).
Without arguments it runs as an external extension (/opt/extensions/); with `-- APP [ARGS]...`
it starts APP itself and is the function's bootstrap.";

impl Mode {
    /// Reads the arguments after the program name.
    pub fn from_args(args: impl IntoIterator<Item = OsString>) -> Result<Self, Error> {
        let mut args = args.into_iter();
        let Some(first) = args.next() else {
            return Ok(Mode::Extension);
        };
        match first.to_str() {
            Some("--") => {
                let command: Vec<OsString> = args.collect();
                if command.is_empty() {
                    return Err(Error::Usage(format!("no app command after --\n\n{USAGE}")));
                }
                Ok(Mode::Wrapper { command })
            }
            Some("-h" | "--help") => Ok(Mode::Help),
            Some("-V" | "--version") => Ok(Mode::Version),
            _ => Err(Error::Usage(format!(
                "unexpected argument {first:?} (the app's command goes after --)\n\n{USAGE}"
            ))),
        }
    }
}

/// Runs the adapter in `mode`; `name` is the extension name of extension mode. Returns the exit
/// code: the app's in wrapper mode, 0 in extension mode after SHUTDOWN or SIGTERM.
pub async fn run(mode: Mode, name: &str) -> Result<u8, Error> {
    let started = Instant::now();
    let config = Config::from_env();
    match mode {
        Mode::Extension => extension(config, name, started).await,
        Mode::Wrapper { command } => wrapper(config, &command, started).await,
        Mode::Help | Mode::Version => Ok(0),
    }
}

/// Extension mode.
async fn extension(
    config: Result<Config, ConfigError>,
    name: &str,
    started: Instant,
) -> Result<u8, Error> {
    let runtime_api = std::env::var(coldstart_protocol::env::RUNTIME_API)
        .map_err(|_| Error::Runtime(coldstart_runtime::Error::MissingRuntimeApi))?;
    // First, so Lambda starts the app while the adapter reads its settings.
    let extension = Extension::register(&runtime_api, name).await?;
    let config = match config {
        Ok(config) => config,
        Err(error) => return Err(init_error(INVALID_CONFIG_TYPE, error.into()).await),
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Io)?;
    let initialised = AtomicBool::new(false);
    tokio::select! {
        // Ends only when the Runtime API fails.
        served = serve(config, started, &initialised) => served.map(|()| 1),
        // Waits in `event/next` for the whole life of the sandbox: that is what tells Lambda
        // the extension is idle.
        shutdown = extension.shutdown() => shutdown.map(|_| 0),
        // The platform stopping the sandbox without a SHUTDOWN event (the adapter asked for none).
        _ = terminate.recv() => Ok(0),
    }
}

/// Wrapper mode.
async fn wrapper(
    config: Result<Config, ConfigError>,
    command: &[OsString],
    started: Instant,
) -> Result<u8, Error> {
    let config = match config {
        Ok(config) => config,
        Err(error) => return Err(init_error(INVALID_CONFIG_TYPE, error.into()).await),
    };
    let mut app = match App::spawn(command) {
        Ok(app) => app,
        Err(error) => return Err(init_error(APP_EXITED_TYPE, error).await),
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Io)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Io)?;
    // Set once the runtime loop starts: from then on, an exiting app is no init failure.
    let initialised = AtomicBool::new(false);
    let mut serving = std::pin::pin!(serve(config, started, &initialised));
    // Set once a signal asked the app to stop: its exit is then expected.
    let mut stopping = false;
    loop {
        tokio::select! {
            status = app.wait() => {
                let status = status.map_err(Error::Io)?;
                if !stopping && !initialised.load(Ordering::Relaxed) {
                    let error = Error::AppExitedEarly { status };
                    return Err(init_error(APP_EXITED_TYPE, error).await);
                }
                return Ok(app::exit_code(status));
            }
            _ = terminate.recv() => {
                stopping = true;
                app.signal(Signal::SIGTERM);
            }
            _ = interrupt.recv() => {
                stopping = true;
                app.signal(Signal::SIGINT);
            }
            served = &mut serving => {
                // The Runtime API is gone: so is the function; the app goes with it.
                app.stop().await;
                return served.map(|()| 1);
            }
        }
    }
}

/// Waits for the app (under `AWS_LWA_ASYNC_INIT`, at most until [`ASYNC_INIT_BUDGET`] after
/// `started`), then runs the invocation loop. Returns only when the Runtime API fails.
async fn serve(config: Config, started: Instant, initialised: &AtomicBool) -> Result<(), Error> {
    let ready = if config.async_init {
        let budget = ASYNC_INIT_BUDGET.saturating_sub(started.elapsed());
        let waited = tokio::time::timeout(budget, readiness::wait(&config.readiness)).await;
        if waited.is_err() {
            eprintln!(
                "coldstart-adapter: the app is not ready yet ({}); taking invocations anyway (AWS_LWA_ASYNC_INIT)",
                readiness::describe(&config.readiness)
            );
        }
        waited.is_ok()
    } else {
        readiness::wait(&config.readiness).await;
        true
    };
    let runtime = Runtime::from_env().await?;
    initialised.store(true, Ordering::Relaxed);
    let mode = config.invoke_mode;
    let forwarder = Arc::new(Forwarder::new(config, ready));
    match mode {
        InvokeMode::Buffered => {
            runtime
                .run_bytes(move |event: Bytes, context: Context| {
                    let forwarder = forwarder.clone();
                    async move { forwarder.buffered(event, context).await }
                })
                .await?
        }
        InvokeMode::ResponseStream => {
            runtime
                .run_streaming(
                    move |event: Box<RawValue>, context: Context, stream: ResponseStream| {
                        let forwarder = forwarder.clone();
                        async move { forwarder.streaming(event, context, stream).await }
                    },
                )
                .await?
        }
    }
    Ok(())
}

/// Reports an init failure to `/runtime/init/error` (and to the log), then returns `error` for
/// the process to exit with.
async fn init_error(error_type: &str, error: Error) -> Error {
    let message = crate::client::chain(&error);
    eprintln!("coldstart-adapter: {message}");
    match Runtime::from_env().await {
        Ok(runtime) => {
            runtime
                .init_error(Diagnostic::new(error_type, message))
                .await;
        }
        Err(report) => eprintln!(
            "coldstart-adapter: cannot report the init error: {}",
            crate::client::chain(&report)
        ),
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments_choose_the_mode() {
        assert_eq!(
            Mode::from_args(args(&[])).unwrap_or(Mode::Help),
            Mode::Extension
        );
        assert_eq!(
            Mode::from_args(args(&["--", "python3", "app.py"])).unwrap_or(Mode::Help),
            Mode::Wrapper {
                command: args(&["python3", "app.py"])
            }
        );
        assert_eq!(
            Mode::from_args(args(&["--help"])).unwrap_or(Mode::Extension),
            Mode::Help
        );
        for bad in [&["--"][..], &["app"], &["--port", "80"]] {
            let error = Mode::from_args(args(bad)).err();
            assert!(matches!(error, Some(Error::Usage(_))), "{bad:?}: {error:?}");
        }
    }
}

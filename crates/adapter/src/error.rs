//! Why the adapter stops, and the error types it reports to Lambda.
//!
//! Two kinds of failure live here. [`Error`] ends the adapter: bad usage, a bad setting, an app
//! that died or never got ready, a Runtime or Extensions API that went away; `main` prints it and
//! exits with [`Error::exit_code`]. The `*_TYPE` constants are the `errorType`s the adapter posts
//! to Lambda, for a failed init or a failed invocation, so callers can tell the adapter's
//! verdicts from their app's.

use std::process::ExitStatus;

/// `errorType` of an init error for an invalid `AWS_LWA_*` setting.
pub const INVALID_CONFIG_TYPE: &str = "Adapter.InvalidConfig";
/// `errorType` of an init error when the app (wrapper mode) exits before it is ready, or cannot
/// be started.
pub const APP_EXITED_TYPE: &str = "Adapter.AppExited";
/// `errorType` of an invocation whose request could not reach the app or whose response broke
/// off.
pub const APP_UNREACHABLE_TYPE: &str = "Adapter.AppUnreachable";
/// `errorType` of an invocation the app answered with one of `AWS_LWA_ERROR_STATUS_CODES`.
pub const ERROR_STATUS_TYPE: &str = "Adapter.ErrorStatusCode";

/// An invalid `AWS_LWA_*` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {variable}={value:?}: expected {expected}{}",
    reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
    /// Why the value is invalid, when there is more to say than `expected`.
    pub reason: Option<String>,
}

/// Why the adapter stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line is not `coldstart-adapter [-- APP [ARGS]...]`.
    #[error("{0}")]
    Usage(String),

    /// A setting is invalid (reported to Lambda as an init error first).
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The app could not be started (wrapper mode).
    #[error("cannot start the app {program:?}")]
    Spawn {
        /// The app's executable.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The app exited before it was ready (wrapper mode; reported as an init error first).
    #[error("the app exited before it was ready ({status})")]
    AppExitedEarly {
        /// How it exited.
        status: ExitStatus,
    },

    /// Registering with the Extensions API failed (extension mode).
    #[error("cannot register with the extensions api: {0}")]
    Register(String),

    /// The Extensions API failed while the adapter waited for its events (extension mode).
    #[error("the extensions api failed: {0}")]
    Extension(String),

    /// Installing a signal handler or waiting for the app failed.
    #[error("a system call failed")]
    Io(#[source] std::io::Error),

    /// The Runtime API failed: the invocation loop is over.
    #[error("the runtime api failed")]
    Runtime(#[from] coldstart_runtime::Error),
}

impl Error {
    /// The process exit code: 2 for bad usage or a bad setting, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            _ => 1,
        }
    }
}

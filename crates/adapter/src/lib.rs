//! coldstart-adapter: runs an ordinary HTTP web app as an AWS Lambda function, compatible with the
//! Lambda Web Adapter's `AWS_LWA_*` settings.
//!
//! The entry point is [`run`], which the `coldstart-adapter` binary calls with the [`Mode`] its
//! command line asks for. The adapter waits until the app answers its readiness check, then takes
//! invocations from the Runtime API: each API Gateway (REST or HTTP API), ALB or Function URL
//! event becomes an HTTP request to the app on `127.0.0.1:$AWS_LWA_PORT`, and the app's response
//! goes back in the shape the event's source expects, buffered or streamed; any other event is
//! posted as it is to `AWS_LWA_PASS_THROUGH_PATH`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), coldstart_adapter::Error> {
//! use coldstart_adapter::Mode;
//!
//! // `coldstart-adapter -- python3 app.py`: start the app and be its bootstrap.
//! let mode = Mode::from_args(["--".into(), "python3".into(), "app.py".into()])?;
//! let exit_code = coldstart_adapter::run(mode, "coldstart-adapter").await?;
//! # let _ = exit_code;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `mode`: [`Mode`] (extension or wrapper) from the command line, and [`run`]: register or start
//!   the app, wait for readiness, serve, report init failures.
//! - [`config`]: [`Config`] from the `AWS_LWA_*` variables, with defaults and validation.
//! - [`readiness`]: the readiness check (HTTP GET or TCP connect, every 10 ms).
//! - [`extension`]: the Extensions API client (register, `event/next`).
//! - [`app`]: wrapper mode's child process: start, forward signals, exit status.
//! - [`event`]: event source detection and the request each event stands for.
//! - [`response`]: app responses in each source's shape, and the streaming prelude.
//! - [`compression`]: gzip of buffered responses.
//! - [`forward`]: one invocation, event to app and back, buffered or streamed.
//! - `client`: the keep-alive HTTP/1.1 connection to the app, and one-off exchanges.
//! - [`error`]: [`Error`], why the adapter stops, and the error types it reports.

pub mod app;
mod client;
pub mod compression;
pub mod config;
pub mod error;
pub mod event;
pub mod extension;
pub mod forward;
mod mode;
pub mod readiness;
pub mod response;

pub use config::Config;
pub use error::Error;
pub use mode::{Mode, USAGE, run};

/// Formats an error with its causes on one line: `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    client::chain(error)
}

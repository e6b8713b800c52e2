//! The wire vocabulary of AWS Lambda, written down once.
//!
//! Every path, header name, limit and error body that the runtime library and the emulator exchange
//! lives here as a named item, so neither side spells a protocol string by hand.
//!
//! ```
//! use coldstart_protocol::runtime;
//!
//! assert_eq!(runtime::NEXT_PATH, "/2018-06-01/runtime/invocation/next");
//! assert_eq!(
//!     runtime::response_path("8476a536"),
//!     "/2018-06-01/runtime/invocation/8476a536/response"
//! );
//! ```
//!
//! # Layout
//! - [`runtime`]: the Runtime API (`2018-06-01`): paths, `next` headers, response-mode and error headers.
//! - [`extension`]: the Extensions API (`2020-01-01`): paths, headers, register and event bodies.
//! - [`invoke`]: the Invoke API (`2015-03-31`): path, request and response headers, invocation types.
//! - [`error`]: the JSON error bodies of the Runtime API and of the Invoke API.
//! - [`telemetry`]: the Telemetry API (`2022-07-01`): subscription, buffering limits, event records.
//! - [`logs`]: the older Logs API (`2020-08-15`): its subscription and record shapes.
//! - [`level`]: the log levels of `LoggingConfig` and how a log line's level is read.
//! - [`env`]: the environment variable names of the execution environment.
//! - [`limits`]: payload size limits.

pub mod env;
pub mod error;
pub mod extension;
pub mod invoke;
pub mod level;
pub mod limits;
pub mod logs;
pub mod runtime;
pub mod telemetry;

pub use error::{ApiErrorBody, ErrorBody};
pub use invoke::InvocationType;

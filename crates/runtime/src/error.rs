//! The errors that end the runtime loop.
//!
//! A failing handler is not one of them: its error becomes a [`Diagnostic`] posted to the Runtime
//! API and the loop goes on. An [`Error`] means the runtime itself cannot go on (no Runtime API to
//! talk to, a non-recoverable answer from it, or a reported init failure), and `main` should return
//! it so the process exits non-zero and Lambda resets the environment.

use std::fmt;

use coldstart_protocol::env;
use http::StatusCode;

use crate::Diagnostic;

/// Why the runtime stopped.
///
/// `Debug` prints the whole cause chain on one line, so `main` returning `Result<(), Error>`
/// reports something readable.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `AWS_LAMBDA_RUNTIME_API` is not set (or empty): the process is not running under Lambda or
    /// an emulator.
    #[error(
        "environment variable {} is not set: run this function under AWS Lambda or an emulator such as `coldstart run`",
        env::RUNTIME_API
    )]
    MissingRuntimeApi,

    /// `AWS_LAMBDA_RUNTIME_API` is not a `host:port` pair.
    #[error(
        "environment variable {} is {value:?}, expected host:port",
        env::RUNTIME_API
    )]
    InvalidRuntimeApi {
        /// The value found in the environment.
        value: String,
    },

    /// The TCP connection to the Runtime API could not be opened.
    #[error("cannot connect to the runtime api at {addr}")]
    Connect {
        /// The `host:port` dialled.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },

    /// An HTTP exchange with the Runtime API failed (connection reset, malformed answer).
    #[error("http exchange with the runtime api failed")]
    Http(#[source] hyper::Error),

    /// The Runtime API answered with a status the runtime cannot recover from (any 5xx, or a
    /// non-200 answer to `next`). Lambda's rule: the runtime exits.
    #[error("runtime api answered {status}: {body}")]
    RuntimeApi {
        /// The HTTP status.
        status: StatusCode,
        /// The answer's body, lossily decoded as UTF-8.
        body: String,
    },

    /// `next` answered without a request id that can be used in a path, so the invocation cannot be
    /// answered.
    #[error("runtime api sent an invocation without a usable request id ({value:?})")]
    InvalidRequestId {
        /// The header value, lossily decoded; empty when the header was missing.
        value: String,
    },

    /// A poller of the concurrent mode ([`crate::run_concurrent`]) ended abnormally (its task
    /// was cancelled or panicked outside any invocation).
    #[error("a concurrent poller ended abnormally: {0}")]
    Poller(String),

    /// [`ResponseStream::set_content_type`](crate::ResponseStream::set_content_type) or
    /// [`ResponseStream::http`](crate::ResponseStream::http) came after the first write.
    #[error(
        "the response stream has already started: set its content type or http prelude before the first write"
    )]
    StreamStarted,

    /// A [`ResponseStream`](crate::ResponseStream) write found the stream closed: the Runtime API
    /// stopped reading the response, or the invocation is already over.
    #[error("the response stream is closed")]
    StreamClosed,

    /// The value given to
    /// [`ResponseStream::set_content_type`](crate::ResponseStream::set_content_type) cannot be an
    /// HTTP header value.
    #[error("{value:?} is not a valid content type")]
    InvalidContentType {
        /// The rejected value.
        value: String,
    },

    /// Initialisation failed; the diagnostic has been reported to `/runtime/init/error`.
    #[error("initialisation failed: {}: {}", .0.error_type, .0.error_message)]
    Init(Diagnostic),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_the_cause_chain() {
        let err = Error::Connect {
            addr: "127.0.0.1:9001".into(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        };
        assert_eq!(
            format!("{err:?}"),
            "cannot connect to the runtime api at 127.0.0.1:9001: refused"
        );
    }

    #[test]
    fn missing_runtime_api_names_the_variable() {
        assert!(
            Error::MissingRuntimeApi
                .to_string()
                .contains("AWS_LAMBDA_RUNTIME_API")
        );
    }

    #[test]
    fn error_is_usable_as_a_handler_error() {
        let diagnostic = Diagnostic::from(Error::Init(Diagnostic::new("Runtime.Boom", "boom")));
        assert_eq!(diagnostic.error_type, "Error");
        assert_eq!(
            diagnostic.error_message,
            "initialisation failed: Runtime.Boom: boom"
        );
    }
}

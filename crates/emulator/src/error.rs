//! Errors of the emulator: set-up failures ([`Error`]) and the Invoke API's refusals
//! ([`InvokeError`]), each mapped to the status and exception name AWS uses.

use std::io;
use std::net::SocketAddr;

use coldstart_protocol::ApiErrorBody;
use coldstart_protocol::invoke::exception;
use http::StatusCode;

/// A failure to set up or run the emulator itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A function's settings break Lambda's limits.
    #[error("invalid function {function}: {reason}")]
    InvalidFunction {
        /// The function's name.
        function: String,
        /// What is wrong.
        reason: String,
    },
    /// Two functions share a name.
    #[error("function {0} is defined twice")]
    DuplicateFunction(String),
    /// A listener could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An operating system call failed.
    #[error("{what} failed")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Why the Invoke API refused an invocation before it reached the function.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// 404 `ResourceNotFoundException`.
    #[error("Function not found: {arn}")]
    NotFound {
        /// The ARN that was asked for.
        arn: String,
    },
    /// 400 `InvalidRequestContentException`: the payload or client context is malformed.
    #[error("{0}")]
    InvalidContent(String),
    /// 400 `InvalidParameterValueException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// 413 `RequestTooLargeException`.
    #[error("{0}")]
    TooLarge(String),
    /// 429 `TooManyRequestsException`: every sandbox is busy at the concurrency limit.
    #[error("Rate Exceeded.")]
    Throttled,
    /// 500 `ServiceException`: the emulator is shutting down or failed.
    #[error("{0}")]
    Service(String),
    /// 409 `ResourceConflictException`: the function is not `Active` yet (its code is still
    /// being built), or its build failed.
    #[error(
        "The operation cannot be performed at this time. The function is currently in the following state: {state}"
    )]
    NotActive {
        /// `Pending` or `Failed`.
        state: &'static str,
    },
}

impl InvokeError {
    /// The HTTP status AWS answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::InvalidContent(_) | Self::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Self::Service(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotActive { .. } => StatusCode::CONFLICT,
        }
    }

    /// The exception name, sent as `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => exception::RESOURCE_NOT_FOUND,
            Self::InvalidContent(_) => exception::INVALID_REQUEST_CONTENT,
            Self::InvalidParameter(_) => exception::INVALID_PARAMETER_VALUE,
            Self::TooLarge(_) => exception::REQUEST_TOO_LARGE,
            Self::Throttled => exception::TOO_MANY_REQUESTS,
            Self::Service(_) => exception::SERVICE,
            Self::NotActive { .. } => exception::RESOURCE_CONFLICT,
        }
    }

    /// The JSON body AWS sends with this error.
    pub fn body(&self) -> ApiErrorBody {
        ApiErrorBody {
            kind: if matches!(self, Self::Service(_)) {
                "Service"
            } else {
                "User"
            }
            .into(),
            message: self.to_string(),
            reason: matches!(self, Self::Throttled)
                .then(|| "ReservedFunctionConcurrentInvocationLimitExceeded".into()),
        }
    }
}

/// Why the Telemetry API or the Logs API refused a subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SubscribeError {
    /// 400 `ValidationError`: the body is malformed or breaks a limit.
    #[error("{0}")]
    Validation(String),
}

impl SubscribeError {
    /// The HTTP status Lambda answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The `errorType` of the answer's body.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Self::Validation(_) => coldstart_protocol::telemetry::VALIDATION_ERROR,
        }
    }
}

//! Errors: a WebSocket API that cannot be served as configured ([`Error`]), and the refusals of
//! the `@connections` API, each mapped to the status and exception name AWS answers with.

use http::StatusCode;

use crate::wire::{MAX_POST, exception};

/// Why a [`WebSocketApi`](crate::WebSocketApi) cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The route selection expression cannot be parsed.
    #[error("invalid route selection expression {expression:?}: {reason}")]
    RouteSelection {
        /// The expression as configured.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A route names a function the emulator does not serve.
    #[error("route {route:?} names function {function:?}, which is not defined")]
    UnknownFunction {
        /// The route key.
        route: String,
        /// The function's name.
        function: String,
    },
    /// A route key is empty or a `$` key that API Gateway does not reserve.
    #[error(
        "invalid route key {0:?}: keys starting with `$` must be $connect, $disconnect or $default"
    )]
    RouteKey(String),
    /// The stage name is empty or has characters other than letters, digits, `-` and `_`.
    #[error("invalid stage name {0:?}: use letters, digits, `-` and `_`")]
    Stage(String),
    /// A limit is zero, or the frame limit is above the message limit.
    #[error("invalid limit: {0}")]
    Limit(String),
}

/// Why the `@connections` API refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectionsError {
    /// 410: no open connection has this id.
    #[error("Connection {0} is gone")]
    Gone(String),
    /// 413: the posted data is too large.
    #[error("Payload size exceeds the limit of {MAX_POST} bytes")]
    PayloadTooLarge,
    /// 429: the connection's send queue is full.
    #[error("The client's send queue is full")]
    LimitExceeded,
    /// 403: no such operation (a method other than POST, GET and DELETE, or no id).
    #[error("Forbidden")]
    Forbidden,
    /// 400: the request cannot be read (the id is not valid percent-encoding, the body broke off).
    #[error("{0}")]
    BadRequest(&'static str),
}

impl ConnectionsError {
    /// The HTTP status AWS answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Gone(_) => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The exception name, sent as `x-amzn-ErrorType`.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Self::Gone(_) => exception::GONE,
            Self::PayloadTooLarge => exception::PAYLOAD_TOO_LARGE,
            Self::LimitExceeded => exception::LIMIT_EXCEEDED,
            Self::Forbidden => exception::FORBIDDEN,
            Self::BadRequest(_) => exception::BAD_REQUEST,
        }
    }

    /// The JSON body: [`message_body`] of the error text.
    pub(crate) fn body(&self) -> String {
        message_body(&self.to_string())
    }
}

/// API Gateway's JSON error body, `{"message":"…"}` (compact, `message` JSON-escaped).
pub(crate) fn message_body(message: &str) -> String {
    serde_json::json!({ "message": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_errors_have_aws_statuses_and_names() {
        let gone = ConnectionsError::Gone("abc=".into());
        assert_eq!(gone.status(), 410);
        assert_eq!(gone.error_type(), "GoneException");
        assert_eq!(gone.body(), r#"{"message":"Connection abc= is gone"}"#);
        assert_eq!(ConnectionsError::PayloadTooLarge.status(), 413);
        assert_eq!(
            ConnectionsError::PayloadTooLarge.error_type(),
            "PayloadTooLargeException"
        );
        assert_eq!(ConnectionsError::LimitExceeded.status(), 429);
        assert_eq!(ConnectionsError::Forbidden.status(), 403);
        assert_eq!(ConnectionsError::BadRequest("x").status(), 400);
    }
}

//! The Extensions API (`/2020-01-01`): what an external extension calls and what it receives.
//!
//! It sits beside the Runtime API at the root of `AWS_LAMBDA_RUNTIME_API`. An extension
//! registers (before the runtime starts), then calls `event/next` for `INVOKE` and `SHUTDOWN`
//! events; init (and each invocation) is complete only when every extension waits in `next`.

use http::HeaderName;
use serde::{Deserialize, Serialize};

/// API version prefix of the Extensions API.
pub const VERSION: &str = "2020-01-01";

/// `POST /2020-01-01/extension/register`: header [`NAME`], body [`RegisterRequest`].
pub const REGISTER_PATH: &str = "/2020-01-01/extension/register";
/// `GET /2020-01-01/extension/event/next`: blocks until the next [`Event`].
pub const NEXT_PATH: &str = "/2020-01-01/extension/event/next";
/// `POST /2020-01-01/extension/init/error`: the extension failed to initialise.
pub const INIT_ERROR_PATH: &str = "/2020-01-01/extension/init/error";
/// `POST /2020-01-01/extension/exit/error`: the extension is about to exit with an error.
pub const EXIT_ERROR_PATH: &str = "/2020-01-01/extension/exit/error";

/// `PUT /2022-07-01/telemetry`: the Telemetry API subscription (see [`crate::telemetry`]).
pub const TELEMETRY_PATH: &str = crate::telemetry::SUBSCRIBE_PATH;
/// `PUT /2020-08-15/logs`: the older Logs API subscription (see [`crate::logs`]).
pub const LOGS_PATH: &str = crate::logs::SUBSCRIBE_PATH;

/// A parsed Extensions API request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /2020-01-01/extension/register`
    Register,
    /// `GET /2020-01-01/extension/event/next`
    Next,
    /// `POST /2020-01-01/extension/init/error`
    InitError,
    /// `POST /2020-01-01/extension/exit/error`
    ExitError,
}

impl Route {
    /// Recognises an Extensions API path; `None` for anything else.
    pub fn parse(path: &str) -> Option<Self> {
        match path {
            REGISTER_PATH => Some(Route::Register),
            NEXT_PATH => Some(Route::Next),
            INIT_ERROR_PATH => Some(Route::InitError),
            EXIT_ERROR_PATH => Some(Route::ExitError),
            _ => None,
        }
    }
}

/// `Lambda-Extension-Name`: on register, the file name of an external extension's executable.
pub const NAME: HeaderName = HeaderName::from_static("lambda-extension-name");
/// `Lambda-Extension-Identifier`: the id register hands out; every later call carries it.
pub const IDENTIFIER: HeaderName = HeaderName::from_static("lambda-extension-identifier");
/// `Lambda-Extension-Event-Identifier`: a fresh id on each `event/next` answer.
pub const EVENT_IDENTIFIER: HeaderName =
    HeaderName::from_static("lambda-extension-event-identifier");
/// `Lambda-Extension-Function-Error-Type`: the error category on `init/error` and `exit/error`.
pub const FUNCTION_ERROR_TYPE: HeaderName =
    HeaderName::from_static("lambda-extension-function-error-type");
/// `Lambda-Extension-Accept-Feature`: optional features asked for on register (`accountId`).
pub const ACCEPT_FEATURE: HeaderName = HeaderName::from_static("lambda-extension-accept-feature");

/// Most extensions a function may have.
pub const MAX_EXTENSIONS: usize = 10;

/// What an extension can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// Each invocation.
    Invoke,
    /// The sandbox is about to stop.
    Shutdown,
}

/// The body of `register`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The events to receive. Default: none.
    #[serde(default)]
    pub events: Vec<EventType>,
}

/// The answer to `register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: String,
    /// `_HANDLER`.
    pub handler: String,
    /// The account id, when asked for with [`ACCEPT_FEATURE`]` = accountId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The X-Ray tracing header of an invocation, as INVOKE events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracing {
    /// Always `X-Amzn-Trace-Id`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The header's value.
    pub value: String,
}

/// Why a sandbox shuts down (sent lowercase, as Lambda's own emulator does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownReason {
    /// The environment is no longer needed.
    Spindown,
    /// The function timed out.
    Timeout,
    /// The runtime or an extension failed.
    Failure,
}

/// An answer of `event/next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", rename_all = "UPPERCASE")]
pub enum Event {
    /// An invocation started.
    Invoke {
        /// Epoch milliseconds at which the invocation times out.
        #[serde(rename = "deadlineMs")]
        deadline_ms: u64,
        /// The invocation's request id.
        #[serde(rename = "requestId")]
        request_id: String,
        /// The invoked function's ARN.
        #[serde(rename = "invokedFunctionArn")]
        invoked_function_arn: String,
        /// The invocation's trace header, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracing: Option<Tracing>,
    },
    /// The sandbox shuts down; the extension has until `deadline_ms` to exit.
    Shutdown {
        /// Why.
        #[serde(rename = "shutdownReason")]
        shutdown_reason: ShutdownReason,
        /// Epoch milliseconds by which the extension must have exited.
        #[serde(rename = "deadlineMs")]
        deadline_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_wire_shape() {
        let invoke = Event::Invoke {
            deadline_ms: 1_676_051_230_051,
            request_id: "3da1f2dc".into(),
            invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            tracing: None,
        };
        assert_eq!(
            serde_json::to_value(&invoke).unwrap_or_default(),
            serde_json::json!({"eventType":"INVOKE","deadlineMs":1_676_051_230_051_u64,"requestId":"3da1f2dc",
                "invokedFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f"})
        );
        let shutdown = Event::Shutdown {
            shutdown_reason: ShutdownReason::Spindown,
            deadline_ms: 5,
        };
        assert_eq!(
            serde_json::to_string(&shutdown).unwrap_or_default(),
            r#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":5}"#
        );
    }

    #[test]
    fn register_accepts_no_events() {
        let empty: RegisterRequest = serde_json::from_str("{}").unwrap_or_default();
        assert!(empty.events.is_empty());
        let both: RegisterRequest =
            serde_json::from_str(r#"{"events":["INVOKE","SHUTDOWN"]}"#).unwrap_or_default();
        assert_eq!(both.events, [EventType::Invoke, EventType::Shutdown]);
        assert!(serde_json::from_str::<RegisterRequest>(r#"{"events":["LOGS"]}"#).is_err());
    }

    #[test]
    fn routes_parse() {
        assert_eq!(Route::parse(REGISTER_PATH), Some(Route::Register));
        assert_eq!(Route::parse(NEXT_PATH), Some(Route::Next));
        assert_eq!(Route::parse("/2020-01-01/extension/other"), None);
    }
}

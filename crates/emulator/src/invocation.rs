//! One invocation as it travels from a front door to a sandbox and back.
//!
//! Front doors (the Invoke API today; Function URLs, API routes and WebSockets later) turn their
//! protocol into an [`InvokeRequest`]; the emulator answers with exactly one [`InvokeResponse`].

use bytes::Bytes;
use coldstart_protocol::{ErrorBody, InvocationType};

/// What a caller asks of a function.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    /// The event, JSON bytes. An empty payload is delivered as `{}`.
    pub payload: Bytes,
    /// Synchronous, asynchronous or dry run.
    pub invocation_type: InvocationType,
    /// Return the last 4 KB of the invocation's log (`X-Amz-Log-Type: Tail`).
    pub log_tail: bool,
    /// The client context as JSON text (already base64-decoded).
    pub client_context: Option<String>,
    /// The tenant id of a tenant-isolated invocation.
    pub tenant_id: Option<String>,
    /// The caller's X-Ray trace header; a fresh one is made when absent.
    pub trace_id: Option<String>,
    /// `Content-Type` of the payload. Default: `application/json`.
    pub content_type: Option<String>,
    /// The version or alias asked for; only `$LATEST` exists. Default: none.
    pub qualifier: Option<String>,
    /// The request id to use, when the front door already gave one to its caller (Function URLs
    /// put it in the event). Default: a fresh one.
    pub request_id: Option<String>,
}

/// The one answer to an invocation.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    /// The invocation's request id.
    pub request_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// The last 4 KB of the invocation's log, when the caller asked for it.
    pub log_tail: Option<Vec<u8>>,
}

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function answered: its bytes and their content type.
    Response {
        /// The body the runtime posted.
        body: Bytes,
        /// The runtime's `Content-Type`, if it sent one.
        content_type: Option<String>,
    },
    /// The function failed: it reported an error, crashed, timed out or answered too much.
    /// Callers see `X-Amz-Function-Error: Unhandled` and `body`.
    FunctionError {
        /// The error category, e.g. `Runtime.ExitError` or the runtime's own error type.
        error_type: String,
        /// The error document returned to the caller.
        body: Bytes,
    },
    /// An `Event` invocation was queued.
    Accepted,
    /// A `DryRun` was validated.
    DryRun,
}

impl Outcome {
    /// A function error whose body is `{"errorType","errorMessage"}`.
    pub(crate) fn error(error_type: &str, message: String) -> Self {
        Outcome::FunctionError {
            error_type: error_type.to_owned(),
            body: Bytes::from(ErrorBody::new(error_type, message).to_json()),
        }
    }

    /// A platform failure of invocation `request_id`, worded as rapid words it:
    /// `RequestId: <id> Error: <cause>`.
    pub(crate) fn platform_error(error_type: &str, request_id: &str, cause: &str) -> Self {
        Self::error(
            error_type,
            format!("RequestId: {request_id} Error: {cause}"),
        )
    }

    /// The error type, for a failed invocation.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Outcome::FunctionError { error_type, .. } => Some(error_type),
            _ => None,
        }
    }
}

/// An invocation as the sandbox hands it to the runtime's `next`.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) content_type: Option<String>,
    pub(crate) invoked_arn: String,
    pub(crate) trace_id: String,
    pub(crate) client_context: Option<String>,
    pub(crate) tenant_id: Option<String>,
    pub(crate) log_tail: bool,
}

//! The Invoke API (`/2015-03-31`): how callers (AWS SDKs, the CLI, curl) invoke a function.

use http::HeaderName;

/// Prefix of the Invoke API's function paths: `/2015-03-31/functions/{FunctionName}/invocations`.
pub const FUNCTIONS_PREFIX: &str = "/2015-03-31/functions/";
/// Suffix of the Invoke API path after the function name.
pub const INVOCATIONS_SUFFIX: &str = "/invocations";

/// Prefix of InvokeWithResponseStream:
/// `/2021-11-15/functions/{FunctionName}/response-streaming-invocations`.
pub const STREAM_FUNCTIONS_PREFIX: &str = "/2021-11-15/functions/";
/// Suffix of the InvokeWithResponseStream path after the function name.
pub const STREAM_INVOCATIONS_SUFFIX: &str = "/response-streaming-invocations";

/// `POST /2021-11-15/functions/{name}/response-streaming-invocations`.
pub fn stream_invoke_path(function: &str) -> String {
    format!("{STREAM_FUNCTIONS_PREFIX}{function}{STREAM_INVOCATIONS_SUFFIX}")
}

/// Content type of an InvokeWithResponseStream answer.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// Event of InvokeWithResponseStream carrying one chunk of the function's response.
pub const EVENT_PAYLOAD_CHUNK: &str = "PayloadChunk";
/// Last event of InvokeWithResponseStream: `{"ErrorCode","ErrorDetails","LogResult"}`.
pub const EVENT_INVOKE_COMPLETE: &str = "InvokeComplete";

/// `POST /2015-03-31/functions/{name}/invocations`.
pub fn invoke_path(function: &str) -> String {
    format!("{FUNCTIONS_PREFIX}{function}{INVOCATIONS_SUFFIX}")
}

/// `X-Amz-Invocation-Type`: `RequestResponse` (default), `Event` or `DryRun`.
pub const INVOCATION_TYPE: HeaderName = HeaderName::from_static("x-amz-invocation-type");
/// `X-Amz-Log-Type`: `None` (default) or `Tail`.
pub const LOG_TYPE: HeaderName = HeaderName::from_static("x-amz-log-type");
/// `X-Amz-Client-Context`: base64 JSON passed to the function on synchronous invokes.
pub const CLIENT_CONTEXT: HeaderName = HeaderName::from_static("x-amz-client-context");
/// `X-Amz-Tenant-Id`: tenant of a tenant-isolated function.
pub const TENANT_ID: HeaderName = HeaderName::from_static("x-amz-tenant-id");
/// `X-Amz-Executed-Version`: the version that ran (`$LATEST`).
pub const EXECUTED_VERSION: HeaderName = HeaderName::from_static("x-amz-executed-version");
/// `X-Amz-Function-Error`: present (`Unhandled`) when the function failed.
pub const FUNCTION_ERROR: HeaderName = HeaderName::from_static("x-amz-function-error");
/// `X-Amz-Log-Result`: base64 of the last 4 KB of the invocation's log, with `Tail`.
pub const LOG_RESULT: HeaderName = HeaderName::from_static("x-amz-log-result");
/// `x-amzn-RequestId`: the request id of the call (the invocation's request id).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// `x-amzn-ErrorType`: the exception name of an API error.
pub const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
/// `X-Amzn-Trace-Id`: X-Ray trace header, read from callers and returned to them.
pub const TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
/// `Retry-After`: seconds before retrying a throttled call.
pub const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// Value of [`FUNCTION_ERROR`] for every function error.
pub const FUNCTION_ERROR_UNHANDLED: &str = "Unhandled";
/// Value of [`LOG_TYPE`] that asks for the log tail.
pub const LOG_TYPE_TAIL: &str = "Tail";
/// The only version coldstart runs.
pub const LATEST: &str = "$LATEST";

/// How the caller wants the function invoked (`X-Amz-Invocation-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvocationType {
    /// Synchronous: wait for the function's answer.
    #[default]
    RequestResponse,
    /// Asynchronous: queue the event and answer 202 at once.
    Event,
    /// Validate the request without running the function: 204.
    DryRun,
}

impl InvocationType {
    /// Parses the header value; `None` for an unknown type.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "RequestResponse" => Some(Self::RequestResponse),
            "Event" => Some(Self::Event),
            "DryRun" => Some(Self::DryRun),
            _ => None,
        }
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestResponse => "RequestResponse",
            Self::Event => "Event",
            Self::DryRun => "DryRun",
        }
    }
}

/// Names of the Invoke API's exceptions (`x-amzn-ErrorType`).
pub mod exception {
    /// 404: the function or qualifier does not exist.
    pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
    /// 400: the payload is not JSON, or the client context is not base64 JSON.
    pub const INVALID_REQUEST_CONTENT: &str = "InvalidRequestContentException";
    /// 400: a parameter (invocation type, log type) has a bad value.
    pub const INVALID_PARAMETER_VALUE: &str = "InvalidParameterValueException";
    /// 413: the payload is over the limit.
    pub const REQUEST_TOO_LARGE: &str = "RequestTooLargeException";
    /// 429: no execution environment is free at the concurrency limit.
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequestsException";
    /// 500: the service failed.
    pub const SERVICE: &str = "ServiceException";
    /// 409: the function is not `Active` (still `Pending`, or `Failed`).
    pub const RESOURCE_CONFLICT: &str = "ResourceConflictException";
    /// 502: the function's environment could not be set up.
    pub const RESOURCE_NOT_READY: &str = "ResourceNotReadyException";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocation_type_round_trips_and_rejects_unknown() {
        for t in [
            InvocationType::RequestResponse,
            InvocationType::Event,
            InvocationType::DryRun,
        ] {
            assert_eq!(InvocationType::parse(t.as_str()), Some(t));
        }
        assert_eq!(InvocationType::parse("event"), None);
    }
}

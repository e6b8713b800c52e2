//! One answer of the Invoke API, with the log lines of its invocation.

use bytes::Bytes;

/// What one invocation answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The answer's bytes.
    pub payload: Bytes,
    /// `Unhandled` or `Handled` when the function failed (`X-Amz-Function-Error`).
    pub function_error: Option<String>,
    /// The invocation's log lines, `START` to `REPORT` (the last 4 KB, as Lambda's `Tail`).
    pub logs: Vec<String>,
    /// The executed version.
    pub version: Option<String>,
}

impl Invocation {
    /// The answer as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }

    /// The answer as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// Whether the function failed.
    pub fn failed(&self) -> bool {
        self.function_error.is_some()
    }

    /// The request id, from the `START` line.
    pub fn request_id(&self) -> Option<&str> {
        self.logs.iter().find_map(|line| {
            line.strip_prefix("START RequestId: ")
                .and_then(|rest| rest.split_whitespace().next())
        })
    }
}

/// What one `InvokeWithResponseStream` answered.
#[derive(Debug, Clone, Default)]
pub struct StreamedInvocation {
    /// The chunks, as they arrived.
    pub chunks: Vec<Bytes>,
    /// Whether the stream ended with `InvokeComplete`.
    pub complete: bool,
    /// `InvokeComplete`'s `ErrorCode` when the function failed mid-stream.
    pub error_code: Option<String>,
    /// `InvokeComplete`'s `ErrorDetails`.
    pub error_details: Option<String>,
    /// `InvokeComplete`'s `LogResult` lines, when present.
    pub logs: Vec<String>,
}

impl StreamedInvocation {
    /// Every chunk, joined.
    pub fn body(&self) -> Bytes {
        self.chunks.concat().into()
    }
}

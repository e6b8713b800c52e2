//! One invocation as it travels from a front door to a sandbox and back.
//!
//! Front doors (the Invoke API today; Function URLs, API routes and WebSockets later) turn their
//! protocol into an [`InvokeRequest`]; the emulator answers with exactly one [`InvokeResponse`].

use bytes::{Bytes, BytesMut};
use coldstart_protocol::{ErrorBody, InvocationType};
use tokio::sync::mpsc;

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
    /// The payload is JSON coldstart serialised itself (a front door's or an event source's
    /// event): it is not parsed again to check it. Default: false, it is checked.
    pub serialized: bool,
    /// For an `Event` invocation caused by the stop itself (a WebSocket API's `$disconnect` as
    /// its connections close): a graceful stop runs it if it is still queued, rather than keep
    /// it for the next start. Default: false.
    pub run_before_stop: bool,
}

/// The one answer to an invocation.
#[derive(Debug)]
pub struct InvokeResponse {
    /// The invocation's request id.
    pub request_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// The last 4 KB of the invocation's log, when the caller asked for it.
    pub log_tail: Option<Vec<u8>>,
}

/// How an invocation ended (or, for a stream, began).
#[derive(Debug)]
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
    /// The runtime streams its answer (`Lambda-Runtime-Function-Response-Mode: streaming`):
    /// chunks arrive as the function writes them; the stream's end says how it ended.
    Stream {
        /// The runtime's `Content-Type`, if it sent one.
        content_type: Option<String>,
        /// The chunks and the end.
        stream: ResponseStream,
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

/// A response the runtime is streaming. Dropping it mid-way is fine: the function still runs to
/// its end and its sandbox is freed (as in Lambda, a client going away cancels nothing).
#[derive(Debug)]
pub struct ResponseStream {
    /// The sandbox's Runtime API handler holds the sender; a closed channel without
    /// [`StreamItem::End`] means the sandbox vanished.
    rx: mpsc::Receiver<StreamItem>,
}

/// One step of a streamed response.
#[derive(Debug)]
pub enum StreamItem {
    /// The next bytes the function wrote.
    Chunk(Bytes),
    /// The stream is over. `error` is set when it failed: an error trailer from the runtime,
    /// the deadline, the runtime's death, a response over the limit.
    End {
        /// Why it failed, if it did.
        error: Option<StreamError>,
        /// The last 4 KB of the invocation's log, when the caller asked for it.
        log_tail: Option<Vec<u8>>,
    },
}

/// Why a streamed response failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// E.g. `Runtime.StreamError`, `Sandbox.Timedout`, `Runtime.ExitError`.
    pub error_type: String,
    /// The error document (JSON).
    pub body: Bytes,
}

impl ResponseStream {
    /// A stream and the sender that feeds it; a few chunks of buffer keep memory bounded.
    pub(crate) fn channel() -> (mpsc::Sender<StreamItem>, Self) {
        let (tx, rx) = mpsc::channel(4);
        (tx, Self { rx })
    }

    /// The next step; after [`StreamItem::End`] (or if the stream was cut) `None`.
    pub async fn next(&mut self) -> Option<StreamItem> {
        self.rx.recv().await
    }

    /// Reads the whole stream, as a buffered caller sees it: the body (at most `limit` bytes,
    /// else `Function.ResponseSizeTooLarge`) or the stream's error, and the log tail.
    pub async fn collect(mut self, limit: usize) -> (Outcome, Option<Vec<u8>>) {
        let mut body = BytesMut::new();
        while let Some(item) = self.next().await {
            match item {
                StreamItem::Chunk(chunk) => {
                    if body.len() + chunk.len() > limit {
                        let message = format!(
                            "Response payload size exceeded maximum allowed payload size ({limit} bytes)."
                        );
                        return (
                            Outcome::error("Function.ResponseSizeTooLarge", message),
                            None,
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                StreamItem::End {
                    error: None,
                    log_tail,
                } => {
                    let outcome = Outcome::Response {
                        body: body.freeze(),
                        content_type: None,
                    };
                    return (outcome, log_tail);
                }
                StreamItem::End {
                    error: Some(error),
                    log_tail,
                } => {
                    let outcome = Outcome::FunctionError {
                        error_type: error.error_type,
                        body: error.body,
                    };
                    return (outcome, log_tail);
                }
            }
        }
        (
            Outcome::error("Sandbox.Failure", "the response stream was cut".into()),
            None,
        )
    }
}

impl InvokeResponse {
    /// The answer as a buffered caller sees it: a streamed response is read whole (up to
    /// `limit` bytes), keeping the runtime's content type.
    pub async fn buffered(self, limit: usize) -> InvokeResponse {
        match self.outcome {
            Outcome::Stream {
                content_type,
                stream,
            } => {
                let (outcome, log_tail) = stream.collect(limit).await;
                let outcome = match outcome {
                    Outcome::Response { body, .. } => Outcome::Response { body, content_type },
                    other => other,
                };
                InvokeResponse {
                    request_id: self.request_id,
                    outcome,
                    log_tail,
                }
            }
            _ => self,
        }
    }
}

/// An invocation as the sandbox hands it to the runtime's `next`.
#[derive(Debug, Clone)]
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

//! The Runtime API server of one sandbox, at the root of its `AWS_LAMBDA_RUNTIME_API` address.
//!
//! `next` is held open until the sandbox has work — never answered early to be polled again.
//! `/response`, `/error` and `/runtime/init/error` move the sandbox's state machine; misuse is
//! answered with rapid's status codes and `{"errorMessage","errorType"}` bodies.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::io::DuplexStream;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use coldstart_protocol::extension as ext;
use coldstart_protocol::runtime::{self as rt, Route};
use coldstart_protocol::{ErrorBody, limits};

use crate::body::{Body, ReadError, read_limited};
use http_body_util::BodyExt;

use crate::answers::{accepted, rapid_error};
use crate::extension_api;
use crate::invocation::{Outcome, StreamError, StreamItem};
use crate::sandbox::{Delivery, NextAction, Refusal, Report, ResponseTiming, Sandbox};
use crate::server;
use crate::telemetry_api;

/// Where the Extensions API's paths begin.
const EXTENSION_API: &str = "/2020-01-01/";

/// Serves the Runtime and Extensions APIs of `sandbox` until its processes are gone: on
/// `listener`, and on each in-memory connection `in_memory` brings (an in-process runtime's).
pub(crate) async fn serve(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
    in_memory: Option<mpsc::UnboundedReceiver<DuplexStream>>,
) {
    let gone = sandbox.gone.clone();
    if let Some(connections) = in_memory {
        tokio::spawn(serve_in_memory(connections, sandbox.clone()));
    }
    let handler = move |req: Request<Incoming>, _| handle(sandbox.clone(), req);
    server::serve(listener, handler, gone, Duration::ZERO).await;
}

async fn serve_in_memory(
    mut connections: mpsc::UnboundedReceiver<DuplexStream>,
    sandbox: Arc<Sandbox>,
) {
    let gone = sandbox.gone.clone();
    loop {
        let io = tokio::select! {
            () = gone.cancelled() => break,
            io = connections.recv() => match io {
                Some(io) => io,
                None => break,
            },
        };
        let sandbox = sandbox.clone();
        let handler = move |req| handle(sandbox.clone(), req);
        tokio::spawn(server::serve_io(io, handler, gone.clone()));
    }
}

async fn handle(sandbox: Arc<Sandbox>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == ext::TELEMETRY_PATH {
        return telemetry_api::handle(&sandbox, req).await;
    }
    if path == ext::LOGS_PATH {
        return telemetry_api::handle_logs(&sandbox, req).await;
    }
    if path.starts_with(EXTENSION_API) {
        if let Some(response) = extension_api::handle(&sandbox, req).await {
            return response;
        }
        return plain(StatusCode::NOT_FOUND, "404 page not found");
    }
    match (req.method(), Route::parse(path)) {
        (&Method::GET, Some(Route::Next)) => next(&sandbox).await,
        (&Method::POST, Some(Route::Response(id))) => {
            let id = id.to_owned();
            response(&sandbox, &id, req).await
        }
        (&Method::POST, Some(Route::Error(id))) => {
            let id = id.to_owned();
            error(&sandbox, &id, req).await
        }
        (&Method::POST, Some(Route::InitError)) => init_error(&sandbox, req).await,
        (_, Some(_)) => plain(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed"),
        (_, None) => plain(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

async fn next(sandbox: &Arc<Sandbox>) -> Response<Body> {
    match sandbox.next() {
        NextAction::Deliver(delivery) => deliver(delivery),
        // The request stays open until the sandbox has work; if the sandbox dies instead, the
        // waiter is dropped and the runtime is told to exit.
        NextAction::Wait(rx) => match rx.await {
            Ok(delivery) => deliver(delivery),
            Err(_) => refuse(Refusal::Gone),
        },
        NextAction::Refuse(refusal) => refuse(refusal),
    }
}

fn deliver(delivery: Delivery) -> Response<Body> {
    let inv = &delivery.invocation;
    let mut response = Response::new(Body::full(inv.payload.clone()));
    let headers = response.headers_mut();
    put(headers, rt::REQUEST_ID, &inv.request_id);
    headers.insert(rt::DEADLINE_MS, HeaderValue::from(delivery.deadline_ms));
    put(headers, rt::INVOKED_FUNCTION_ARN, &inv.invoked_arn);
    put(headers, rt::TRACE_ID, &inv.trace_id);
    if let Some(context) = &inv.client_context {
        put(headers, rt::CLIENT_CONTEXT, context);
    }
    if let Some(tenant) = &inv.tenant_id {
        put(headers, rt::TENANT_ID, tenant);
    }
    put(
        headers,
        CONTENT_TYPE,
        inv.content_type.as_deref().unwrap_or("application/json"),
    );
    response
}

/// Sets a header, omitting it when the value is empty or cannot be a header value (Lambda omits
/// empty headers rather than sending them empty).
fn put(headers: &mut HeaderMap, name: http::HeaderName, value: &str) {
    if value.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

async fn response(sandbox: &Arc<Sandbox>, id: &str, req: Request<Incoming>) -> Response<Body> {
    if let Err(refusal) = sandbox.check_answer(id) {
        return refuse(refusal);
    }
    let began = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    match parts.headers.get(rt::RESPONSE_MODE) {
        None => {}
        Some(mode) if mode == rt::RESPONSE_MODE_STREAMING => {
            return stream(sandbox, id, &parts.headers, body).await;
        }
        Some(_) => {
            let outcome = Outcome::platform_error(
                "Runtime.InvalidResponseModeHeader",
                id,
                "Invalid function response mode",
            );
            let _ = sandbox.answer_now(id, outcome);
            return rapid_error(
                StatusCode::BAD_REQUEST,
                "InvalidFunctionResponseMode",
                "Invalid function response mode",
            );
        }
    }
    let read = match read_limited(&parts.headers, body, limits::MAX_RUNTIME_RESPONSE).await {
        Ok(read) => read,
        Err(ReadError::TooLarge) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({} bytes).",
                limits::MAX_RUNTIME_RESPONSE
            );
            let outcome = Outcome::error("Function.ResponseSizeTooLarge", message);
            return too_large(sandbox, id, outcome, limits::MAX_RUNTIME_RESPONSE);
        }
        Err(ReadError::Truncated) => return truncated(sandbox, id),
    };
    let outcome = match read.trailers.as_ref().and_then(trailer_error) {
        Some(StreamError { error_type, body }) => Outcome::FunctionError { error_type, body },
        None => Outcome::Response {
            body: read.bytes,
            content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        },
    };
    let timing = ResponseTiming {
        began,
        ended: std::time::Instant::now(),
    };
    answered(sandbox, sandbox.answer_timed(id, outcome, Some(timing))).await
}

/// The runtime's answer to an accepted `/response` or `/error`. On the emulator's one thread the
/// caller's task is woken but has not run yet: yielding first lets it write the caller's answer
/// before this task writes the runtime's 202 and the invocation's `END`/`REPORT`.
async fn answered(
    sandbox: &Arc<Sandbox>,
    result: Result<Option<Report>, Refusal>,
) -> Response<Body> {
    match result {
        Ok(report) => {
            if let Some(report) = report {
                tokio::task::yield_now().await;
                sandbox.write_report(report);
            }
            accepted()
        }
        Err(refusal) => refuse(refusal),
    }
}

/// A body over `limit`: the invocation fails with `outcome`, the runtime gets 413.
fn too_large(sandbox: &Arc<Sandbox>, id: &str, outcome: Outcome, limit: usize) -> Response<Body> {
    let _ = sandbox.answer_now(id, outcome);
    rapid_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("Exceeded maximum allowed payload size ({limit} bytes)."),
    )
}

/// A body cut short: the invocation fails with `Runtime.TruncatedResponse`, the runtime gets 400.
fn truncated(sandbox: &Arc<Sandbox>, id: &str) -> Response<Body> {
    let outcome = Outcome::platform_error(
        "Runtime.TruncatedResponse",
        id,
        "HTTP request detected as truncated",
    );
    let _ = sandbox.answer_now(id, outcome);
    rapid_error(
        StatusCode::BAD_REQUEST,
        "TruncatedHTTPRequest",
        "HTTP request detected as truncated",
    )
}

/// Forwards a streamed `/response` to the caller chunk by chunk. Memory stays bounded: each
/// chunk waits for room in the caller's small buffer. A caller that goes away stops nothing: the
/// rest is read and dropped so the function finishes and its sandbox is freed.
async fn stream(
    sandbox: &Arc<Sandbox>,
    id: &str,
    headers: &HeaderMap,
    mut body: Incoming,
) -> Response<Body> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (tx, mut forced_end) = match sandbox.start_stream(id, content_type) {
        Ok(started) => started,
        Err(refusal) => return refuse(refusal),
    };
    let mut caller = Some(tx);
    let mut total = 0usize;
    // The stream's first bytes, for the log sink's preview, kept only when it reads previews:
    // one byte over the limit, so that the preview knows it was cut.
    let preview_room = crate::notes::PREVIEW_LIMIT + 1;
    let mut head = sandbox
        .wants_previews()
        .then(|| Vec::with_capacity(preview_room));
    let ended: Result<Option<StreamError>, (StreamError, Response<Body>)> = loop {
        let frame = tokio::select! {
            // The deadline passed or the runtime died: the sandbox ended the invocation.
            forced = &mut forced_end => return forward_forced_end(forced.ok(), caller).await,
            frame = body.frame() => frame,
        };
        let frame = match frame {
            None => break Ok(None),
            Some(Err(_)) => break Err(cut(id)),
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => match frame.into_trailers().ok().as_ref().and_then(trailer_error) {
                Some(error) => break Ok(Some(error)),
                None => continue,
            },
        };
        total += data.len();
        if let Some(head) = &mut head {
            let room = preview_room.saturating_sub(head.len());
            head.extend_from_slice(&data[..room.min(data.len())]);
        }
        if total > limits::MAX_STREAMED_RESPONSE {
            break Err(oversized(limits::MAX_STREAMED_RESPONSE));
        }
        if let Some(tx) = &caller {
            let sent = tokio::select! {
                sent = tx.send(StreamItem::Chunk(data)) => sent.is_ok(),
                forced = &mut forced_end => return forward_forced_end(forced.ok(), caller).await,
            };
            if !sent {
                caller = None;
            }
        }
    };
    let (error, to_runtime) = match ended {
        Ok(error) => (error, accepted()),
        Err((error, response)) => (Some(error), response),
    };
    if let Some(head) = &head {
        let error_type = error.as_ref().map(|e| e.error_type.as_str());
        sandbox.publish_stream_preview(id, head, error_type);
    }
    match sandbox.finish_stream(id, error.as_ref()) {
        Ok(log_tail) => {
            if let Some(tx) = caller {
                let _ = tx.send(StreamItem::End { error, log_tail }).await;
            }
            to_runtime
        }
        // The sandbox ended the invocation first (the runtime died: its cut body and its exit
        // race): its verdict is on the way, or already waiting, in `forced_end`.
        Err(refusal) => {
            if let (Ok(end), Some(tx)) = (forced_end.await, caller) {
                let _ = tx.send(end).await;
            }
            refuse(refusal)
        }
    }
}

/// Puts the sandbox's forced end (deadline, death) at the end of the caller's stream.
async fn forward_forced_end(
    end: Option<StreamItem>,
    caller: Option<tokio::sync::mpsc::Sender<StreamItem>>,
) -> Response<Body> {
    if let (Some(end), Some(tx)) = (end, caller) {
        let _ = tx.send(end).await;
    }
    refuse(Refusal::InvokeTimeout)
}

/// A streamed body cut short: `Runtime.TruncatedResponse`, and 400 to the runtime.
fn cut(id: &str) -> (StreamError, Response<Body>) {
    let error = StreamError {
        error_type: "Runtime.TruncatedResponse".into(),
        body: Bytes::from(
            ErrorBody::new(
                "Runtime.TruncatedResponse",
                format!("RequestId: {id} Error: HTTP request detected as truncated"),
            )
            .to_json(),
        ),
    };
    let response = rapid_error(
        StatusCode::BAD_REQUEST,
        "TruncatedHTTPRequest",
        "HTTP request detected as truncated",
    );
    (error, response)
}

/// A streamed body over `limit`: `Function.ResponseSizeTooLarge`, and 413 to the runtime.
fn oversized(limit: usize) -> (StreamError, Response<Body>) {
    let error = StreamError {
        error_type: "Function.ResponseSizeTooLarge".into(),
        body: Bytes::from(
            ErrorBody::new(
                "Function.ResponseSizeTooLarge",
                format!(
                    "Response payload size exceeded maximum allowed payload size ({limit} bytes)."
                ),
            )
            .to_json(),
        ),
    };
    let response = rapid_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("Exceeded maximum allowed payload size ({limit} bytes)."),
    );
    (error, response)
}

/// An error reported mid-stream in `Lambda-Runtime-Function-Error-Type` /
/// `Lambda-Runtime-Function-Error-Body` trailers (the body is base64 of the error JSON; invalid
/// base64 keeps the type, as rapid does).
fn trailer_error(trailers: &HeaderMap) -> Option<StreamError> {
    let error_type = trailers
        .get(rt::FUNCTION_ERROR_TYPE)?
        .to_str()
        .ok()?
        .to_owned();
    let body = trailers
        .get(rt::FUNCTION_ERROR_BODY)
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .map(Bytes::from)
        .unwrap_or_else(|| Bytes::from(ErrorBody::new(&error_type, "").to_json()));
    Some(StreamError { error_type, body })
}

async fn error(sandbox: &Arc<Sandbox>, id: &str, req: Request<Incoming>) -> Response<Body> {
    if let Err(refusal) = sandbox.check_answer(id) {
        return refuse(refusal);
    }
    let (parts, body) = req.into_parts();
    let error_type = error_type(&parts.headers);
    let body = match read_limited(&parts.headers, body, limits::MAX_ERROR_BODY).await {
        Ok(read) => read.bytes,
        Err(ReadError::TooLarge) => {
            let outcome = Outcome::platform_error(&error_type, id, "error body too large");
            return too_large(sandbox, id, outcome, limits::MAX_ERROR_BODY);
        }
        Err(ReadError::Truncated) => return truncated(sandbox, id),
    };
    let body = strip_error_cause(&parts.headers, body);
    answered(
        sandbox,
        sandbox.answer(id, Outcome::FunctionError { error_type, body }),
    )
    .await
}

async fn init_error(sandbox: &Arc<Sandbox>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let error_type = error_type(&parts.headers);
    let body = match read_limited(&parts.headers, body, limits::MAX_ERROR_BODY).await {
        Ok(read) => read.bytes,
        Err(_) => Bytes::from(ErrorBody::new(&error_type, "").to_json()),
    };
    let body = strip_error_cause(&parts.headers, body);
    match sandbox.init_error(error_type, body) {
        Ok(()) => accepted(),
        Err(refusal) => refuse(refusal),
    }
}

/// `Lambda-Runtime-Function-Error-Type`, or `Unhandled` when absent.
fn error_type(headers: &HeaderMap) -> String {
    headers
        .get(rt::FUNCTION_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("Unhandled")
        .to_owned()
}

/// With the error-cause content type, rapid forwards the error without its X-Ray `errorCause`,
/// and `"Invalid error body"` when it is not JSON.
fn strip_error_cause(headers: &HeaderMap, body: Bytes) -> Bytes {
    let is_cause = headers.get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(rt::ERROR_CAUSE_CONTENT_TYPE.as_bytes())
    });
    if !is_cause {
        return body;
    }
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body) {
        Ok(mut map) => {
            map.remove("errorCause");
            Bytes::from(serde_json::to_vec(&map).unwrap_or_default())
        }
        Err(_) => Bytes::from_static(br#""Invalid error body""#),
    }
}

fn refuse(refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::InvalidRequestId => rapid_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        ),
        Refusal::InvalidStateTransition { from, to } => rapid_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            &format!(
                "State transition from {from} to {to} failed for runtime. Error: State transition is not allowed"
            ),
        ),
        Refusal::InvokeTimeout => rapid_error(StatusCode::GONE, "InvokeTimeout", "Invoke timeout"),
        Refusal::Gone => rapid_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal Server Error",
        ),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_cause_is_stripped_or_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(rt::ERROR_CAUSE_CONTENT_TYPE),
        );
        let body =
            Bytes::from_static(br#"{"errorMessage":"m","errorType":"T","errorCause":{"x":1}}"#);
        let out = strip_error_cause(&headers, body);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({"errorMessage":"m","errorType":"T"})
        );
        assert_eq!(
            strip_error_cause(&headers, Bytes::from_static(b"nope")),
            Bytes::from_static(br#""Invalid error body""#)
        );
        // Any other content type is forwarded unchanged.
        let plain = Bytes::from_static(b"whatever");
        assert_eq!(strip_error_cause(&HeaderMap::new(), plain.clone()), plain);
    }

    #[test]
    fn trailer_error_decodes_base64_body_and_keeps_type_when_invalid() {
        let mut trailers = HeaderMap::new();
        trailers.insert(
            rt::FUNCTION_ERROR_TYPE,
            HeaderValue::from_static("Runtime.StreamError"),
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(br#"{"errorType":"E"}"#);
        trailers.insert(
            rt::FUNCTION_ERROR_BODY,
            HeaderValue::from_str(&encoded).unwrap_or(HeaderValue::from_static("")),
        );
        let Some(StreamError { error_type, body }) = trailer_error(&trailers) else {
            panic!("a trailer error is a function error");
        };
        assert_eq!(error_type, "Runtime.StreamError");
        assert_eq!(body, Bytes::from_static(br#"{"errorType":"E"}"#));
        trailers.insert(rt::FUNCTION_ERROR_BODY, HeaderValue::from_static("%%%"));
        assert_eq!(
            trailer_error(&trailers).map(|e| e.error_type),
            Some("Runtime.StreamError".to_owned())
        );
    }

    proptest::proptest! {
        #[test]
        fn any_error_headers_and_body_are_read_without_a_panic(
            type_header in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
            error_body in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..80)),
            cause in proptest::bool::ANY,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let mut headers = HeaderMap::new();
            if let Some(v) = type_header.and_then(|t| HeaderValue::from_bytes(&t).ok()) {
                headers.insert(rt::FUNCTION_ERROR_TYPE, v);
            }
            if let Some(v) = error_body.and_then(|t| HeaderValue::from_bytes(&t).ok()) {
                headers.insert(rt::FUNCTION_ERROR_BODY, v);
            }
            if cause {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(rt::ERROR_CAUSE_CONTENT_TYPE));
            }
            // Whatever came in, the type is never empty and a cause body is always JSON.
            proptest::prop_assert!(!error_type(&headers).is_empty());
            let out = strip_error_cause(&headers, Bytes::from(body));
            if cause {
                proptest::prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
            }
            // A trailer error is reported whenever its type header is readable text.
            let readable = headers.get(rt::FUNCTION_ERROR_TYPE).is_some_and(|v| v.to_str().is_ok());
            proptest::prop_assert_eq!(trailer_error(&headers).is_some(), readable);
        }
    }
}

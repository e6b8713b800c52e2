//! The Invoke API front door (`POST /2015-03-31/functions/{name}/invocations`), as AWS SDKs, the
//! AWS CLI and the Runtime Interface Emulator's users call it.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use coldstart_protocol::invoke::{self, InvocationType};
use coldstart_protocol::{ApiErrorBody, limits};

use http_body::Frame;
use tokio::sync::mpsc;

use crate::body::{Aborted, Body, ReadError, read_limited};
use crate::clock;
use crate::emulator::Emulator;
use crate::error::InvokeError;
use crate::eventstream::{self, InvokeComplete};
use crate::invocation::{InvokeRequest, InvokeResponse, Outcome, StreamItem};
use crate::server;

/// Serves the Invoke API for every function of `emulator` on `listener` until `shutdown` is
/// cancelled; invocations in flight then get up to the longest function timeout to finish.
pub async fn serve_invoke_api(
    emulator: Emulator,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let drain = emulator.longest_timeout() + Duration::from_secs(1);
    let handler = move |req: Request<Incoming>, _| handle(emulator.clone(), req);
    server::serve(listener, handler, shutdown, drain).await;
}

async fn handle(emulator: Emulator, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let target = function_in(path, invoke::FUNCTIONS_PREFIX, invoke::INVOCATIONS_SUFFIX)
        .map(|name| (name, false))
        .or_else(|| {
            function_in(
                path,
                invoke::STREAM_FUNCTIONS_PREFIX,
                invoke::STREAM_INVOCATIONS_SUFFIX,
            )
            .map(|name| (name, true))
        });
    let Some((name, streaming)) = target else {
        return api_error_response(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            &ApiErrorBody {
                kind: "User".into(),
                message: "Unknown operation".into(),
                reason: None,
            },
        );
    };
    if req.method() != Method::POST {
        return api_error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            &ApiErrorBody {
                kind: "User".into(),
                message: format!("Unknown operation {} {}", req.method(), req.uri().path()),
                reason: None,
            },
        );
    }
    let request = match parse(req).await {
        Ok(request) => request,
        Err(err) => return error_response(&err),
    };
    let invocation_type = request.invocation_type;
    if streaming && invocation_type == InvocationType::Event {
        return error_response(&InvokeError::InvalidParameter(
            "InvokeWithResponseStream supports the RequestResponse and DryRun invocation types"
                .into(),
        ));
    }
    match emulator.invoke(&name, request).await {
        Ok(response) if streaming => respond_stream(response),
        Ok(response) => {
            let response = response.buffered(limits::MAX_RUNTIME_RESPONSE).await;
            respond(invocation_type, response)
        }
        Err(err) => error_response(&err),
    }
}

/// The function name in `path` between `prefix` and `suffix`, percent-decoded.
fn function_in(path: &str, prefix: &str, suffix: &str) -> Option<String> {
    path.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(|name| {
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// InvokeWithResponseStream's answer: 200 and an event stream of `PayloadChunk`s as the
/// function writes them, then `InvokeComplete` (with the error, if any: once the 200 is out,
/// every failure travels inside the stream).
fn respond_stream(response: InvokeResponse) -> Response<Body> {
    let request_id = HeaderValue::from_str(&response.request_id).ok();
    let mut http = if matches!(response.outcome, Outcome::DryRun) {
        let mut http = Response::new(Body::empty());
        *http.status_mut() = StatusCode::NO_CONTENT;
        http
    } else {
        let (frames, body) = Body::channel();
        tokio::spawn(forward_events(response, frames));
        let mut http = Response::new(body);
        let headers = http.headers_mut();
        headers.insert(
            invoke::EXECUTED_VERSION,
            HeaderValue::from_static(invoke::LATEST),
        );
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(invoke::EVENT_STREAM_CONTENT_TYPE),
        );
        http
    };
    if let Some(id) = request_id {
        http.headers_mut().insert(invoke::REQUEST_ID, id);
    }
    http
}

/// Turns the function's answer into event-stream frames on `frames`. A client that goes away
/// drops the receiver: forwarding stops, and the dropped stream lets the function finish.
async fn forward_events(
    response: InvokeResponse,
    frames: mpsc::Sender<Result<Frame<Bytes>, Aborted>>,
) {
    let encode =
        |tail: Option<Vec<u8>>| tail.map(|t| base64::engine::general_purpose::STANDARD.encode(t));
    let mut complete = InvokeComplete::default();
    match response.outcome {
        Outcome::Stream { mut stream, .. } => loop {
            match stream.next().await {
                Some(StreamItem::Chunk(chunk)) => {
                    let frame = Ok(Frame::data(eventstream::payload_chunk(chunk)));
                    if frames.send(frame).await.is_err() {
                        return;
                    }
                }
                Some(StreamItem::End { error, log_tail }) => {
                    if let Some(error) = error {
                        complete.error_code = Some(error.error_type);
                        complete.error_details =
                            Some(String::from_utf8_lossy(&error.body).into_owned());
                    }
                    complete.log_result = encode(log_tail);
                    break;
                }
                None => {
                    complete.error_code = Some("Sandbox.Failure".into());
                    break;
                }
            }
        },
        Outcome::Response { body, .. } => {
            if !body.is_empty() {
                let frame = Ok(Frame::data(eventstream::payload_chunk(body)));
                if frames.send(frame).await.is_err() {
                    return;
                }
            }
            complete.log_result = encode(response.log_tail);
        }
        Outcome::FunctionError { error_type, body } => {
            complete.error_code = Some(error_type);
            complete.error_details = Some(String::from_utf8_lossy(&body).into_owned());
            complete.log_result = encode(response.log_tail);
        }
        Outcome::Accepted | Outcome::DryRun => {}
    }
    let _ = frames
        .send(Ok(Frame::data(eventstream::invoke_complete(&complete))))
        .await;
}

/// Turns the HTTP request into an [`InvokeRequest`], refusing bad headers as AWS does.
async fn parse(req: Request<Incoming>) -> Result<InvokeRequest, InvokeError> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let invocation_type = match header(headers, &invoke::INVOCATION_TYPE) {
        None => InvocationType::RequestResponse,
        Some(value) => InvocationType::parse(value).ok_or_else(|| {
            InvokeError::InvalidParameter(format!(
                "1 validation error detected: Value '{value}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            ))
        })?,
    };
    let log_tail = match header(headers, &invoke::LOG_TYPE) {
        None | Some("None") => false,
        Some(invoke::LOG_TYPE_TAIL) => true,
        Some(value) => {
            return Err(InvokeError::InvalidParameter(format!(
                "1 validation error detected: Value '{value}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"
            )));
        }
    };
    let client_context = header(headers, &invoke::CLIENT_CONTEXT)
        .map(decode_client_context)
        .transpose()?;
    let qualifier = parts.uri.query().and_then(|query| {
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "Qualifier").then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    });
    let tenant_id = header(headers, &invoke::TENANT_ID).map(str::to_owned);
    let trace_id = header(headers, &invoke::TRACE_ID).map(str::to_owned);
    let payload = match read_limited(headers, body, limits::MAX_SYNC_REQUEST).await {
        Ok(read) => read.bytes,
        Err(ReadError::TooLarge) => {
            return Err(InvokeError::TooLarge(format!(
                "Request must be smaller than {} bytes for the InvokeFunction operation",
                limits::MAX_SYNC_REQUEST
            )));
        }
        Err(ReadError::Truncated) => {
            return Err(InvokeError::InvalidContent(
                "the request body was cut short".into(),
            ));
        }
    };
    Ok(InvokeRequest {
        payload,
        invocation_type,
        log_tail,
        client_context,
        tenant_id,
        trace_id,
        // Not the caller's: SDKs send the payload as `application/octet-stream` (or nothing),
        // and Lambda hands every invoke's event to the runtime as JSON (the Python and Node.js
        // runtime clients decode only `application/json`).
        content_type: None,
        qualifier,
        request_id: None,
        run_before_stop: false,
        // The caller's bytes: checked.
        serialized: false,
    })
}

/// `X-Amz-Client-Context` is base64 JSON; the runtime gets it decoded and compact.
fn decode_client_context(value: &str) -> Result<String, InvokeError> {
    let invalid = || {
        InvokeError::InvalidContent(
            "Client context must be a valid Base64-encoded JSON object.".into(),
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| invalid())?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if !json.is_object() {
        return Err(invalid());
    }
    Ok(json.to_string())
}

fn header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn respond(invocation_type: InvocationType, response: InvokeResponse) -> Response<Body> {
    let mut http = Response::new(Body::empty());
    let headers = http.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&response.request_id) {
        headers.insert(invoke::REQUEST_ID, id);
    }
    match response.outcome {
        Outcome::Accepted => *http.status_mut() = StatusCode::ACCEPTED,
        Outcome::DryRun => *http.status_mut() = StatusCode::NO_CONTENT,
        Outcome::Response { body, content_type } => {
            headers.insert(
                invoke::EXECUTED_VERSION,
                HeaderValue::from_static(invoke::LATEST),
            );
            let content_type = content_type
                .and_then(|c| HeaderValue::from_str(&c).ok())
                .unwrap_or(HeaderValue::from_static("application/json"));
            headers.insert(CONTENT_TYPE, content_type);
            *http.body_mut() = Body::full(body);
        }
        Outcome::Stream { .. } => {
            // `buffered` read every stream whole before this point.
            return error_response(&InvokeError::Service("unread response stream".into()));
        }
        Outcome::FunctionError { body, .. } => {
            headers.insert(
                invoke::EXECUTED_VERSION,
                HeaderValue::from_static(invoke::LATEST),
            );
            headers.insert(
                invoke::FUNCTION_ERROR,
                HeaderValue::from_static(invoke::FUNCTION_ERROR_UNHANDLED),
            );
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *http.body_mut() = Body::full(body);
        }
    }
    if invocation_type == InvocationType::RequestResponse
        && let Some(tail) = response.log_tail
    {
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            http.headers_mut().insert(invoke::LOG_RESULT, value);
        }
    }
    http
}

fn error_response(err: &InvokeError) -> Response<Body> {
    let mut response = api_error_response(err.status(), err.error_type(), &err.body());
    if matches!(err, InvokeError::Throttled) {
        response
            .headers_mut()
            .insert(invoke::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn api_error_response(status: StatusCode, error_type: &str, body: &ApiErrorBody) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(body.to_json())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(t) = HeaderValue::from_str(error_type) {
        headers.insert(invoke::ERROR_TYPE, t);
    }
    if let Ok(id) = HeaderValue::from_str(&clock::request_id()) {
        headers.insert(invoke::REQUEST_ID, id);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_context_must_be_base64_json_object() {
        let ok = base64::engine::general_purpose::STANDARD.encode(br#"{ "custom": {"a": "b"} }"#);
        assert_eq!(
            decode_client_context(&ok).ok().as_deref(),
            Some(r#"{"custom":{"a":"b"}}"#)
        );
        assert!(decode_client_context("%%%").is_err());
        let not_object = base64::engine::general_purpose::STANDARD.encode(b"[1]");
        assert!(decode_client_context(&not_object).is_err());
    }
}

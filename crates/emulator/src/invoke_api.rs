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

use crate::body::{Body, ReadError, read_limited};
use crate::clock;
use crate::emulator::Emulator;
use crate::error::InvokeError;
use crate::invocation::{InvokeRequest, InvokeResponse, Outcome};
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
    let name = req
        .uri()
        .path()
        .strip_prefix(invoke::FUNCTIONS_PREFIX)
        .and_then(|rest| rest.strip_suffix(invoke::INVOCATIONS_SUFFIX))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(|name| {
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned()
        });
    let Some(name) = name else {
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
    match parse(req).await {
        Ok(request) => {
            let invocation_type = request.invocation_type;
            match emulator.invoke(&name, request).await {
                Ok(response) => {
                    let response = response.buffered(limits::MAX_RUNTIME_RESPONSE).await;
                    respond(invocation_type, response)
                }
                Err(err) => error_response(&err),
            }
        }
        Err(err) => error_response(&err),
    }
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
    let content_type = header(headers, &CONTENT_TYPE).map(str::to_owned);
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
        content_type,
        qualifier,
        request_id: None,
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

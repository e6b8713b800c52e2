//! Function URLs in `RESPONSE_STREAM` mode: the function's streamed answer becomes the HTTP
//! response as it is written. With the HTTP-integration content type, the JSON prelude before
//! the 8 NUL bytes gives the status, headers and cookies; the rest is the body, chunk by chunk.
//! A failure after the status line has gone out aborts the connection, as AWS does.

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use serde::Deserialize;
use std::collections::HashMap;
use tokio::sync::mpsc;

use crate::body::{Aborted, Body};
use crate::invocation::{Outcome, ResponseStream, StreamItem};

use super::answer;

/// Content type of a streamed answer that starts with an HTTP prelude.
pub(crate) const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// The prelude and the body are separated by 8 NUL bytes.
const DELIMITER: [u8; 8] = [0; 8];
/// The prelude must come within the first 16 KB of the stream.
const MAX_PRELUDE: usize = 16 * 1024;

/// The prelude of an HTTP-integration stream.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prelude {
    status_code: Option<u16>,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    multi_value_headers: HashMap<String, Vec<String>>,
    #[serde(default)]
    cookies: Vec<String>,
}

/// The response of a `RESPONSE_STREAM` Function URL.
pub(crate) async fn respond(outcome: Outcome) -> Response<Body> {
    match outcome {
        Outcome::Stream {
            content_type,
            stream,
        } => {
            if content_type.as_deref() == Some(HTTP_INTEGRATION) {
                with_prelude(stream).await
            } else {
                let content_type =
                    content_type.unwrap_or_else(|| "application/octet-stream".into());
                streamed(
                    StatusCode::OK,
                    &[(header::CONTENT_TYPE.as_str(), content_type)],
                    &[],
                    Bytes::new(),
                    stream,
                )
            }
        }
        // A function that answers in one piece: its bytes as they are, not reinterpreted.
        Outcome::Response { body, content_type } => {
            let mut response = Response::new(Body::full(body));
            let content_type = content_type.unwrap_or_else(|| "application/json".into());
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        _ => answer::plain(StatusCode::BAD_GATEWAY, "Internal Server Error"),
    }
}

/// Reads the prelude, then streams the rest.
async fn with_prelude(mut stream: ResponseStream) -> Response<Body> {
    let mut head = BytesMut::new();
    let (prelude, rest) = loop {
        match stream.next().await {
            Some(StreamItem::Chunk(chunk)) => {
                head.extend_from_slice(&chunk);
                if let Some(at) = head.windows(DELIMITER.len()).position(|w| w == DELIMITER) {
                    let rest = head.split_off(at + DELIMITER.len()).freeze();
                    head.truncate(at);
                    break (head.freeze(), rest);
                }
                if head.len() > MAX_PRELUDE {
                    return answer::plain(StatusCode::BAD_GATEWAY, "Internal Server Error");
                }
            }
            // Ended (or failed) before the prelude was complete: nothing went out yet.
            _ => return answer::plain(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        }
    };
    let Ok(prelude) = serde_json::from_slice::<Prelude>(&prelude) else {
        return answer::plain(StatusCode::BAD_GATEWAY, "Internal Server Error");
    };
    let status = prelude
        .status_code
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers: Vec<(&str, String)> = prelude
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    for (name, values) in &prelude.multi_value_headers {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.extend(values.iter().map(|v| (name.as_str(), v.clone())));
    }
    streamed(status, &headers, &prelude.cookies, rest, stream)
}

/// The response head now, the body as the function writes it.
fn streamed(
    status: StatusCode,
    headers: &[(&str, String)],
    cookies: &[String],
    first: Bytes,
    stream: ResponseStream,
) -> Response<Body> {
    let (frames, body) = Body::channel();
    tokio::spawn(forward(first, stream, frames));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.append(name, value);
        }
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            out.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Copies the stream into the body. A client that goes away stops the copy (the dropped stream
/// lets the function finish); a failed stream aborts the body.
async fn forward(
    first: Bytes,
    mut stream: ResponseStream,
    frames: mpsc::Sender<Result<Frame<Bytes>, Aborted>>,
) {
    if !first.is_empty() && frames.send(Ok(Frame::data(first))).await.is_err() {
        return;
    }
    loop {
        let frame = match stream.next().await {
            Some(StreamItem::Chunk(chunk)) => Ok(Frame::data(chunk)),
            Some(StreamItem::End { error: None, .. }) => return,
            Some(StreamItem::End { error: Some(_), .. }) | None => Err(Aborted),
        };
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

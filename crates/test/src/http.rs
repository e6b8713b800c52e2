//! A small HTTP client for a stack's Function URLs and APIs: one request, one connection, the
//! whole answer read.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use crate::error::Error;

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` to `base` (`http://127.0.0.1:PORT/stage/`): the request's path and query
/// are appended to it.
pub(crate) async fn send(base: &str, request: http::Request<Bytes>) -> Result<Response, Error> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let failed = |message: String| Error::Request {
        url: url.clone(),
        message,
    };
    let uri: http::Uri = url.parse().map_err(|e| failed(format!("{e}")))?;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| failed("no host".into()))?;
    parts.uri = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .parse()
        .map_err(|e| failed(format!("{e}")))?;
    if !parts.headers.contains_key(http::header::HOST) {
        let host = http::HeaderValue::from_str(&authority).map_err(|e| failed(e.to_string()))?;
        parts.headers.insert(http::header::HOST, host);
    }
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    // The connection task ends when the answer is read and the sender dropped.
    tokio::spawn(connection);
    let response = sender
        .send_request(http::Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?
        .to_bytes();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

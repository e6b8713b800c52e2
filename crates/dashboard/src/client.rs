//! A one-request HTTP/1 client for the WebSocket APIs' own `@connections` endpoints: the
//! dashboard sends and disconnects through the same emulation a function's SDK uses.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Method;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// How long one `@connections` call may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends one request to `addr` and returns the status and body, or why it failed.
pub(crate) async fn request(
    method: Method,
    addr: SocketAddr,
    path: &str,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let call = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        // Drives the connection until the exchange is over; dropped with it.
        let driver = tokio::spawn(connection);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.to_string())
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    };
    tokio::time::timeout(PATIENCE, call)
        .await
        .map_err(|_| format!("{addr} did not answer within {PATIENCE:?}"))?
}

//! The adapter's HTTP/1.1 client side: one keep-alive connection to the app, and one-off
//! exchanges (the readiness check, the Extensions API).
//!
//! Kept apart from the forwarding logic because connection handling has its own rules: the app
//! may close an idle keep-alive connection at any time, and a request that provably never left
//! is re-sent once on a fresh connection, while one that may have reached the app is not (it
//! may not be idempotent). Every socket sets `TCP_NODELAY`: requests are written as head and
//! body, and Nagle's algorithm would hold the body back for a delayed ACK.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The request body type of every exchange: the adapter always has the whole body at hand.
pub(crate) type Body = Full<Bytes>;

/// A keep-alive connection to the app on 127.0.0.1, opened on first use and again whenever the
/// app closed it.
#[derive(Debug)]
pub(crate) struct AppClient {
    addr: SocketAddr,
    /// `Host` of requests that came without one.
    host: HeaderValue,
    /// The open connection, if any. Its connection task (spawned by [`open`]) owns the socket
    /// and ends when this sender is dropped or the app closes the connection.
    sender: Option<SendRequest<Body>>,
}

impl AppClient {
    /// A client of the app listening on `127.0.0.1:port`; nothing is opened yet.
    pub(crate) fn new(port: u16) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let host = HeaderValue::try_from(addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        Self {
            addr,
            host,
            sender: None,
        }
    }

    /// Sends `request` and returns the response head; the body streams from the app as it is
    /// read. The next `send` waits until that body was read to its end, or opens a new
    /// connection if it was dropped before.
    pub(crate) async fn send(
        &mut self,
        mut request: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, self.host.clone());
        }
        // At most two attempts: the second only for a request the first provably never sent.
        let mut retried = false;
        loop {
            let reusable = match self.sender.take() {
                Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
                None => None,
            };
            let mut sender = match reusable {
                Some(sender) => sender,
                // Never opened, closed by the app, or poisoned by a body dropped half-read.
                None => open(self.addr).await.map_err(SendError::Connect)?,
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.sender = Some(sender);
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if !retried => {
                        retried = true;
                        request = unsent;
                    }
                    _ => return Err(SendError::Http(error.into_error())),
                },
            }
        }
    }
}

/// Why a request did not get a response from the app.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be opened.
    #[error("cannot connect to the app")]
    Connect(#[source] io::Error),
    /// The exchange failed (the app closed the connection, or answered something that is not
    /// HTTP/1.1).
    #[error("http exchange with the app failed")]
    Http(#[source] hyper::Error),
}

/// Opens an HTTP/1.1 connection to `addr` and spawns the task that drives it.
pub(crate) async fn open(addr: SocketAddr) -> io::Result<SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    // Drives the socket; ends when the sender is dropped or the peer closes. Its error (a reset
    // connection) shows up on the sender's next request, which is where it is handled.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request on a fresh connection to `addr` and reads the whole answer.
pub(crate) async fn exchange(
    addr: SocketAddr,
    request: Request<Body>,
) -> Result<(StatusCode, HeaderMap, Bytes), SendError> {
    let mut sender = open(addr).await.map_err(SendError::Connect)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(SendError::Http)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(SendError::Http)?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

pub(crate) use coldstart_protocol::error::chain;

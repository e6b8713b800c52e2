//! The HTTP/1.1 connection to the Runtime API.
//!
//! One keep-alive connection, opened at start-up and reused for every `next`, `/response` and
//! `/error`; if the Runtime API closed it, the next exchange reconnects once before failing. What the
//! answers mean is decided by the caller ([`crate::Runtime`]); this module only moves bytes. There
//! is deliberately no timeout: `next` blocks for as long as the environment is idle or frozen.
//!
//! Request bodies are one [`Body`] type for both shapes of `/response`: complete in memory (every
//! call but a streamed response; no boxing, hyper sends a `Content-Length`) or a
//! [`StreamBody`] (chunked, fed by a [`crate::ResponseStream`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use coldstart_protocol::runtime;
use http::header::{HOST, USER_AGENT};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::Error;
use crate::stream::StreamBody;

/// A request body.
#[derive(Debug)]
pub(crate) enum Body {
    /// Complete in memory, so hyper sends a `Content-Length`.
    Full(Full<Bytes>),
    /// A streamed response: size unknown, so hyper sends it chunked.
    Stream(StreamBody),
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::Full(Full::new(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        // Both variants are `Unpin`, so no pin projection is needed.
        match self.get_mut() {
            Self::Full(full) => Pin::new(full).poll_frame(cx),
            Self::Stream(stream) => stream.poll_next_frame(cx).map(|frame| frame.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(full) => full.is_end_stream(),
            Self::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(full) => full.size_hint(),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

/// `User-Agent` of every request; Lambda records its first token as the runtime's release.
const USER_AGENT_VALUE: HeaderValue =
    HeaderValue::from_static(concat!("coldstart-runtime/", env!("CARGO_PKG_VERSION")));

/// Path of `next`, validated at compile time.
const NEXT: PathAndQuery = PathAndQuery::from_static(runtime::NEXT_PATH);

/// A connection to the Runtime API other than a TCP socket (an in-memory one, say): what a
/// host that runs the runtime inside its own process dials with [`crate::Runtime::connect_with`].
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// Opens a new [`Connection`].
pub(crate) type Dial = Arc<dyn Fn() -> std::io::Result<Box<dyn Connection>> + Send + Sync>;

/// A client of one Runtime API endpoint.
pub(crate) struct Client {
    /// `host:port` dialled on (re)connect.
    addr: String,
    /// `Host` header of every request, built once.
    host: HeaderValue,
    /// The open connection's request half; `None` before the first connect and after a failure.
    /// Its connection task ends when this is dropped.
    sender: Option<SendRequest<Body>>,
    /// How to connect instead of TCP to `addr`, when the host gave a way.
    dial: Option<Dial>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("dial", &self.dial.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `runtime_api` (`host:port`, as in `AWS_LAMBDA_RUNTIME_API`); does not connect.
    pub(crate) fn new(runtime_api: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidRuntimeApi {
            value: runtime_api.to_owned(),
        };
        let authority: Authority = runtime_api.parse().map_err(|_| invalid())?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(invalid());
        }
        if authority.port_u16().is_none() {
            return Err(invalid());
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| invalid())?;
        Ok(Self {
            addr: authority.as_str().to_owned(),
            host,
            sender: None,
            dial: None,
        })
    }

    /// Connects with `dial` instead of TCP; `addr` stays the `Host` header and the name in errors.
    pub(crate) fn with_dial(mut self, dial: Dial) -> Self {
        self.dial = Some(dial);
        self
    }

    /// A client of the same endpoint (dialled the same way), not connected yet.
    pub(crate) fn same_endpoint(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            host: self.host.clone(),
            sender: None,
            dial: self.dial.clone(),
        }
    }

    /// Opens a new connection, replacing any previous one.
    pub(crate) async fn connect(&mut self) -> Result<(), Error> {
        let sender = self.open().await?;
        self.sender = Some(sender);
        Ok(())
    }

    async fn open(&self) -> Result<SendRequest<Body>, Error> {
        let connect_error = |source| Error::Connect {
            addr: self.addr.clone(),
            source,
        };
        if let Some(dial) = &self.dial {
            return handshake(dial().map_err(connect_error)?).await;
        }
        let stream = TcpStream::connect(self.addr.as_str())
            .await
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        handshake(stream).await
    }

    /// A request with the headers every Runtime API call carries.
    pub(crate) fn request(&self, method: Method, uri: Uri, body: impl Into<Body>) -> Request<Body> {
        let mut request = Request::new(body.into());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(5);
        headers.insert(HOST, self.host.clone());
        headers.insert(USER_AGENT, USER_AGENT_VALUE);
        request
    }

    /// `GET next`: waits for the next invocation and returns its status, headers and event.
    pub(crate) async fn next(&mut self) -> Result<(StatusCode, HeaderMap, Bytes), Error> {
        let request = self.request(Method::GET, Uri::from(NEXT), Bytes::new());
        self.exchange(request).await
    }

    /// Sends `request` and reads the whole answer.
    pub(crate) async fn exchange(
        &mut self,
        request: Request<Body>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Error> {
        let response = self.send(request).await?;
        let (parts, body) = response.into_parts();
        let body = read_body(body).await.map_err(|e| {
            self.sender = None;
            Error::Http(e)
        })?;
        Ok((parts.status, parts.headers, body))
    }

    /// Sends `request` on the open connection, reconnecting once when that connection turns out
    /// to be closed before the request was written.
    async fn send(&mut self, mut request: Request<Body>) -> Result<Response<Incoming>, Error> {
        let mut reconnected = false;
        loop {
            let mut sender = match self.sender.take() {
                Some(sender) if !sender.is_closed() => sender,
                _ => {
                    reconnected = true;
                    self.open().await?
                }
            };
            let error = match sender.ready().await {
                Err(error) => error,
                Ok(()) => match sender.try_send_request(request).await {
                    Ok(response) => {
                        self.sender = Some(sender);
                        return Ok(response);
                    }
                    Err(mut failed) => match failed.take_message() {
                        // Never written: safe to send again on a new connection.
                        Some(unsent) => {
                            request = unsent;
                            failed.into_error()
                        }
                        None => return Err(Error::Http(failed.into_error())),
                    },
                },
            };
            // `sender` is dropped here, so the next turn opens a fresh connection.
            if reconnected {
                return Err(Error::Http(error));
            }
        }
    }
}

/// Reads a whole body; a single-chunk body (the usual case) is returned without copying.
async fn read_body(mut body: Incoming) -> Result<Bytes, hyper::Error> {
    let capacity = body.size_hint().exact().unwrap_or(0);
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue; // trailers: none expected from the Runtime API
        };
        match joined.as_mut() {
            Some(buffer) => buffer.extend_from_slice(&chunk),
            None if first.is_empty() => first = chunk,
            None => {
                let capacity = usize::try_from(capacity).unwrap_or(0);
                let mut buffer = BytesMut::with_capacity(capacity.max(first.len() + chunk.len()));
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&chunk);
                joined = Some(buffer);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// The HTTP/1.1 handshake on a fresh connection; its task lives as long as the returned sender.
async fn handshake<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    io: T,
) -> Result<SendRequest<Body>, Error> {
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(Error::Http)?;
    // The connection task lives as long as `sender`. Its error is deliberately dropped: a
    // failure that matters also fails the request in flight, which reports it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_and_port() {
        for ok in ["127.0.0.1:9001", "localhost:9001", "[::1]:9001"] {
            let client = Client::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(client.addr, ok);
            assert_eq!(client.host, ok);
        }
    }

    #[test]
    fn rejects_anything_but_host_and_port() {
        for bad in [
            "127.0.0.1",
            "http://127.0.0.1:9001",
            "127.0.0.1:9001/path",
            "user@127.0.0.1:9001",
            ":9001",
            "127.0.0.1:port",
            "has space:1",
        ] {
            assert!(
                matches!(Client::new(bad), Err(Error::InvalidRuntimeApi { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn requests_carry_host_and_user_agent() {
        let client = Client::new("127.0.0.1:9001").unwrap_or_else(|e| panic!("{e}"));
        let request = client.request(Method::GET, Uri::from(NEXT), Bytes::new());
        assert_eq!(request.uri(), runtime::NEXT_PATH);
        assert_eq!(request.headers()[HOST], "127.0.0.1:9001");
        let user_agent = request.headers()[USER_AGENT].to_str().unwrap_or_default();
        assert!(user_agent.starts_with("coldstart-runtime/"), "{user_agent}");
    }
}

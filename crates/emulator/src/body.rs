//! Bodies: reading request bodies with a size cap (shared by the Runtime API and every front
//! door), and the response body type, which is either whole or fed chunk by chunk from a
//! channel (streamed responses).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::sync::mpsc;

/// Every response body the emulator sends.
#[derive(Debug)]
pub(crate) enum Body {
    /// All bytes at once, with a `Content-Length`.
    Full(Full<Bytes>),
    /// Frames as a producer sends them (chunked); the body ends when the producer drops its
    /// sender, and is aborted (the connection closes without the final chunk) when it sends
    /// [`Aborted`].
    Channel(mpsc::Receiver<Result<Frame<Bytes>, Aborted>>),
}

/// Ends a streamed body abruptly: the client sees the connection close mid-body, as AWS
/// signals a failure after the status line has gone out.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the response stream failed")]
pub(crate) struct Aborted;

impl Body {
    /// A whole body.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Full::new(bytes.into()))
    }

    /// An empty body.
    pub(crate) fn empty() -> Self {
        Body::Full(Full::default())
    }

    /// A streamed body and the sender that feeds it. A small buffer keeps memory bounded
    /// whatever the length: the producer waits while the client is slow.
    pub(crate) fn channel() -> (mpsc::Sender<Result<Frame<Bytes>, Aborted>>, Self) {
        let (tx, rx) = mpsc::channel(4);
        (tx, Body::Channel(rx))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never: Infallible| match never {}))),
            Body::Channel(rx) => rx.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            Body::Channel(_) => http_body::SizeHint::default(),
        }
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It is longer than the cap.
    TooLarge,
    /// The connection broke before its end.
    Truncated,
}

/// A body read whole, with its trailers.
pub(crate) struct Read {
    pub(crate) bytes: Bytes,
    pub(crate) trailers: Option<HeaderMap>,
}

/// Reads a whole body of at most `limit` bytes; a `Content-Length` over the cap fails at once.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Read, ReadError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            Ok(Read {
                bytes: collected.to_bytes(),
                trailers,
            })
        }
        Err(err) if err.is::<LengthLimitError>() => Err(ReadError::TooLarge),
        Err(_) => Err(ReadError::Truncated),
    }
}

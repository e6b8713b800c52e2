//! Reading request bodies with a size cap, shared by the Runtime API and the Invoke API.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;

/// Every response body the emulator sends.
pub(crate) type Body = Full<Bytes>;

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

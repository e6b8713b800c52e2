//! Response streaming: the [`ResponseStream`] a streaming handler writes to, and the request body
//! its chunks travel through.
//!
//! Kept apart from the loop because it is the one piece of the runtime shared by two tasks'
//! worth of code: the handler writes into a capacity-1 channel, hyper's connection task drains it
//! as the chunked body of `POST /response`, and the loop sits between them, starting the request
//! on the first write and ending the body (with error trailers when the handler failed) once the
//! handler is done. The wire shapes of Lambda's streaming protocol (the HTTP-integration prelude,
//! the `Trailer` declaration, the base64 error body) live here too.

use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use coldstart_protocol::runtime;
use http::{HeaderMap, HeaderValue};
use hyper::body::Frame;
use serde::ser::{Serialize, SerializeMap, Serializer};
use tokio::sync::{mpsc, oneshot};

use crate::{Diagnostic, Error};

/// `Content-Type` of a plain stream that did not set one.
pub(crate) const DEFAULT_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("application/octet-stream");

/// `Content-Type` announcing the HTTP-integration prelude (Function URLs, API Gateway streaming).
/// Not in the protocol crate: only a runtime ever sends it.
pub(crate) const HTTP_INTEGRATION_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("application/vnd.awslambda.http-integration-response");

/// Value of the `Trailer` request header: the two error trailers a stream may end with. hyper only
/// sends trailers declared here, so it must name exactly [`runtime::FUNCTION_ERROR_TYPE`] and
/// [`runtime::FUNCTION_ERROR_BODY`] (checked by a test).
pub(crate) const TRAILER_VALUE: HeaderValue = HeaderValue::from_static(
    "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
);

/// `Lambda-Runtime-Function-Response-Mode` value of a streamed response.
pub(crate) const STREAMING: HeaderValue =
    HeaderValue::from_static(runtime::RESPONSE_MODE_STREAMING);

/// What separates the prelude's JSON from the body: eight NUL bytes.
const PRELUDE_DELIMITER: [u8; 8] = [0; 8];

/// The response of one streaming invocation. Nothing is sent until the first write (or
/// [`http`](Self::http)); each [`write`](Self::write) then goes out as one HTTP chunk, before the
/// next write proceeds.
///
/// The response ends when the handler returns (and this stream has been dropped): with `Ok`, as a
/// complete response; with `Err` or a panic after the first write, with error trailers Lambda
/// reports as a function error; with `Err` before any write, as an ordinary error. A handler that
/// returns `Ok` without writing sends an empty streamed response.
#[derive(Debug)]
pub struct ResponseStream {
    /// `Content-Type` sent with the request head. Default: `application/octet-stream`.
    content_type: HeaderValue,
    /// The loop holds the receiver. Taken (and sent `written: true`) by the first write, which is
    /// what makes the loop start the request; sent `written: false` on drop when nothing was
    /// written. `None` once the stream has started.
    head: Option<oneshot::Sender<Head>>,
    /// The request body's frames. Hyper's connection task holds the receiver (inside the body)
    /// and the loop a clone for the error trailers; the body ends when every sender is dropped,
    /// and a send fails once hyper dropped the body (the request failed or ended).
    frames: mpsc::Sender<Frame<Bytes>>,
}

/// What a [`ResponseStream`] tells the loop before its first frame.
#[derive(Debug)]
pub(crate) struct Head {
    /// The request's `Content-Type`.
    pub(crate) content_type: HeaderValue,
    /// Whether the handler wrote (the request must start now) or dropped the stream unwritten.
    pub(crate) written: bool,
}

/// The loop's ends of one invocation's [`ResponseStream`].
#[derive(Debug)]
pub(crate) struct Ends {
    /// Resolves on the stream's first write or its drop; errs if the stream was leaked and
    /// dropped after the loop stopped listening.
    pub(crate) head: oneshot::Receiver<Head>,
    /// For the error trailers. Dropping it (with the stream) ends the body.
    pub(crate) frames: mpsc::Sender<Frame<Bytes>>,
    /// The request body fed by the stream.
    pub(crate) body: StreamBody,
}

impl ResponseStream {
    /// A stream and the loop's ends of it.
    pub(crate) fn new() -> (Self, Ends) {
        // Capacity 1: a write waits until hyper took the previous frame, which bounds memory to
        // one chunk and lets `write` promise the chunk has left.
        let (frames, receiver) = mpsc::channel(1);
        let (head, head_receiver) = oneshot::channel();
        let stream = Self {
            content_type: DEFAULT_CONTENT_TYPE,
            head: Some(head),
            frames: frames.clone(),
        };
        let ends = Ends {
            head: head_receiver,
            frames,
            body: StreamBody(Some(receiver)),
        };
        (stream, ends)
    }

    /// Sets the `Content-Type` of a plain stream (default `application/octet-stream`). Must come
    /// before the first write; fails with [`Error::StreamStarted`] after it, or
    /// [`Error::InvalidContentType`] for a value that cannot be a header.
    pub fn set_content_type(&mut self, content_type: &str) -> Result<(), Error> {
        if self.head.is_none() {
            return Err(Error::StreamStarted);
        }
        self.content_type =
            HeaderValue::from_str(content_type).map_err(|_| Error::InvalidContentType {
                value: content_type.to_owned(),
            })?;
        Ok(())
    }

    /// Switches to HTTP-integration mode (Function URLs and API Gateway response streaming) and
    /// sends the prelude: `{"statusCode":…,"headers":{…},"cookies":[…]}` and eight NUL bytes, as
    /// the first chunk, with `Content-Type: application/vnd.awslambda.http-integration-response`.
    /// The body follows with [`write`](Self::write). Must come before any write
    /// ([`Error::StreamStarted`] otherwise).
    pub async fn http(&mut self, prelude: HttpPrelude) -> Result<(), Error> {
        self.http_with(prelude, Bytes::new()).await
    }

    /// [`http`](Self::http) with the body's first bytes in the same chunk: when they are at
    /// hand already, the prelude and they leave in one write instead of two (the platform reads
    /// the prelude up to its delimiter, not by chunks).
    pub async fn http_with(
        &mut self,
        prelude: HttpPrelude,
        first: impl Into<Bytes>,
    ) -> Result<(), Error> {
        if self.head.is_none() {
            return Err(Error::StreamStarted);
        }
        self.content_type = HTTP_INTEGRATION_CONTENT_TYPE;
        let first = first.into();
        let prelude = prelude.to_bytes();
        if first.is_empty() {
            return self.write(prelude).await;
        }
        let mut chunk = BytesMut::with_capacity(prelude.len() + first.len());
        chunk.extend_from_slice(&prelude);
        chunk.extend_from_slice(&first);
        self.write(chunk.freeze()).await
    }

    /// Sends the last chunk and ends the stream, without waiting for hyper to take the chunk:
    /// it and the stream's end can leave in one write. Fails as [`write`](Self::write) does.
    pub async fn finish(mut self, last: impl Into<Bytes>) -> Result<(), Error> {
        let last = last.into();
        self.start()?;
        if last.is_empty() {
            return Ok(());
        }
        self.frames
            .send(Frame::data(last))
            .await
            .map_err(|_| Error::StreamClosed)
    }

    /// Sends one chunk now: when this returns, hyper has taken it and is writing it to the
    /// socket. Fails with [`Error::StreamClosed`] when the Runtime API stopped reading the
    /// response (or the invocation is over).
    pub async fn write(&mut self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        let chunk = chunk.into();
        self.start()?;
        if chunk.is_empty() {
            // hyper would discard it; an empty first write still starts the stream.
            return Ok(());
        }
        self.frames
            .send(Frame::data(chunk))
            .await
            .map_err(|_| Error::StreamClosed)?;
        // Capacity comes back only when the body handed the frame to hyper; the permit is
        // dropped at once, it is only the signal.
        let permit = self.frames.reserve().await;
        permit.map(drop).map_err(|_| Error::StreamClosed)
    }

    /// Tells the loop, once, that the stream was written and its content type.
    fn start(&mut self) -> Result<(), Error> {
        match self.head.take() {
            Some(head) => head
                .send(Head {
                    content_type: self.content_type.clone(),
                    written: true,
                })
                .map_err(|_| Error::StreamClosed),
            None => Ok(()),
        }
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if let Some(head) = self.head.take() {
            // Never written: tells the loop the content type of an empty response. The loop may
            // have stopped listening (a leaked stream); then there is nobody to tell.
            let _ = head.send(Head {
                content_type: std::mem::replace(&mut self.content_type, DEFAULT_CONTENT_TYPE),
                written: false,
            });
        }
    }
}

/// The status line, headers and cookies of an HTTP-integration stream (see
/// [`ResponseStream::http`]).
///
/// ```
/// use coldstart_runtime::HttpPrelude;
///
/// let prelude = HttpPrelude::new(200)
///     .header("content-type", "text/html")
///     .cookie("session=abc; Path=/; HttpOnly");
/// assert_eq!(prelude.status, 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPrelude {
    /// HTTP status code. Default: 200.
    pub status: u16,
    /// Response headers, one entry per name; a `Set-Cookie` entry is sent in `cookies` instead.
    /// Default: none (Lambda then answers `application/json`).
    pub headers: Vec<(String, String)>,
    /// `Set-Cookie` values, each sent as its own header. Default: none.
    pub cookies: Vec<String>,
}

impl HttpPrelude {
    /// A prelude with `status`, no headers and no cookies.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            cookies: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a `Set-Cookie` value.
    #[must_use]
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookies.push(cookie.into());
        self
    }

    /// The prelude's JSON and the delimiter: the first chunk of the stream.
    pub(crate) fn to_bytes(&self) -> Bytes {
        let mut buffer = BytesMut::with_capacity(128).writer();
        // Serialising a number and strings into memory cannot fail; an empty prelude would still
        // be followed by the delimiter, which the platform rejects visibly.
        let _ = serde_json::to_writer(&mut buffer, self);
        let mut buffer = buffer.into_inner();
        buffer.extend_from_slice(&PRELUDE_DELIMITER);
        buffer.freeze()
    }
}

impl Default for HttpPrelude {
    fn default() -> Self {
        Self::new(200)
    }
}

impl Serialize for HttpPrelude {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let is_cookie = |name: &str| name.eq_ignore_ascii_case("set-cookie");
        let headers = self.headers.iter().filter(|(name, _)| !is_cookie(name));
        let cookies = self.cookies.iter().map(String::as_str).chain(
            self.headers
                .iter()
                .filter(|(name, _)| is_cookie(name))
                .map(|(_, value)| value.as_str()),
        );
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("statusCode", &self.status)?;
        map.serialize_entry("headers", &Headers(headers))?;
        map.serialize_entry("cookies", &Seq(cookies))?;
        map.end()
    }
}

/// Serialises `(name, value)` pairs as a JSON object, in order.
struct Headers<I>(I);

impl<'a, I: Iterator<Item = &'a (String, String)> + Clone> Serialize for Headers<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.clone().map(|(name, value)| (name, value)))
    }
}

/// Serialises strings as a JSON array.
struct Seq<I>(I);

impl<'a, I: Iterator<Item = &'a str> + Clone> Serialize for Seq<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}

/// The trailers that end a stream whose handler failed: the error type and the base64 of the
/// error's JSON body.
pub(crate) fn error_trailers(diagnostic: &Diagnostic, error_type: HeaderValue) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(2);
    trailers.insert(runtime::FUNCTION_ERROR_TYPE, error_type);
    // Base64 is always a valid header value; the check is only the constructor's.
    if let Ok(body) = HeaderValue::from_maybe_shared(base64(&diagnostic.to_json())) {
        trailers.insert(runtime::FUNCTION_ERROR_BODY, body);
    }
    trailers
}

/// Base64 with the standard alphabet and padding, as Lambda decodes the error-body trailer.
fn base64(input: &[u8]) -> Bytes {
    use base64::Engine;
    Bytes::from(base64::engine::general_purpose::STANDARD.encode(input))
}

/// The body of a streamed `/response`: the frames a [`ResponseStream`] writes, then the loop's
/// trailers if any. Sent through [`crate::client::Body::Stream`].
#[derive(Debug)]
pub(crate) struct StreamBody(
    /// `None` for a stream that ends before it starts (an `Ok` handler that wrote nothing).
    Option<mpsc::Receiver<Frame<Bytes>>>,
);

impl StreamBody {
    /// A body with no frames: an empty chunked body.
    pub(crate) fn empty() -> Self {
        Self(None)
    }

    /// The next frame; `None` once every sender is gone.
    pub(crate) fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        match self.0.as_mut() {
            Some(frames) => frames.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::{Pin, pin};
    use std::task::Waker;

    use http::HeaderName;

    use super::*;

    fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), encoded, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xfe]), "+//+");
    }

    #[test]
    fn error_trailers_carry_the_type_and_the_base64_body() {
        let diagnostic = Diagnostic::new("Function.Broken", "went wrong");
        let trailers = error_trailers(&diagnostic, HeaderValue::from_static("Function.Broken"));
        assert_eq!(trailers[&runtime::FUNCTION_ERROR_TYPE], "Function.Broken");
        // base64 of {"errorType":"Function.Broken","errorMessage":"went wrong"}
        assert_eq!(
            trailers[&runtime::FUNCTION_ERROR_BODY],
            "eyJlcnJvclR5cGUiOiJGdW5jdGlvbi5Ccm9rZW4iLCJlcnJvck1lc3NhZ2UiOiJ3ZW50IHdyb25nIn0="
        );
    }

    #[test]
    fn trailer_header_declares_exactly_the_error_trailers() {
        let declared: Vec<HeaderName> = TRAILER_VALUE
            .to_str()
            .unwrap_or_default()
            .split(',')
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        assert_eq!(
            declared,
            [runtime::FUNCTION_ERROR_TYPE, runtime::FUNCTION_ERROR_BODY]
        );
    }

    #[test]
    fn prelude_is_json_then_eight_nul_bytes() {
        let prelude = HttpPrelude::new(201)
            .header("content-type", "text/plain")
            .header("Set-Cookie", "b=2")
            .header("x-multi", "\"quoted\"")
            .cookie("a=1; Path=/");
        let mut expected = br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-multi":"\"quoted\""},"cookies":["a=1; Path=/","b=2"]}"#.to_vec();
        expected.extend_from_slice(&[0; 8]);
        assert_eq!(prelude.to_bytes(), expected);

        let mut empty = br#"{"statusCode":200,"headers":{},"cookies":[]}"#.to_vec();
        empty.extend_from_slice(&[0; 8]);
        assert_eq!(HttpPrelude::default().to_bytes(), empty);
    }

    #[test]
    fn write_returns_only_once_the_body_took_the_chunk() {
        let (mut stream, mut ends) = ResponseStream::new();
        {
            let mut write = pin!(stream.write("one"));
            assert!(poll_once(write.as_mut()).is_pending());
            let head = ends.head.try_recv().unwrap_or_else(|e| panic!("{e}"));
            assert!(head.written);
            assert_eq!(head.content_type, DEFAULT_CONTENT_TYPE);
            // Still pending: the chunk sits in the channel, hyper has not taken it.
            assert!(poll_once(write.as_mut()).is_pending());
            let frame = ends
                .body
                .poll_next_frame(&mut Context::from_waker(Waker::noop()));
            let Poll::Ready(Some(frame)) = frame else {
                panic!("no frame: {frame:?}");
            };
            assert_eq!(frame.into_data().ok().as_deref(), Some(&b"one"[..]));
            assert!(matches!(poll_once(write.as_mut()), Poll::Ready(Ok(()))));
        }
        assert!(matches!(
            stream.set_content_type("text/plain"),
            Err(Error::StreamStarted)
        ));
        let mut prelude = pin!(stream.http(HttpPrelude::new(200)));
        assert!(matches!(
            poll_once(prelude.as_mut()),
            Poll::Ready(Err(Error::StreamStarted))
        ));
    }

    #[test]
    fn write_fails_once_the_body_is_gone() {
        let (mut stream, ends) = ResponseStream::new();
        drop(ends.body);
        let mut write = pin!(stream.write("lost"));
        assert!(matches!(
            poll_once(write.as_mut()),
            Poll::Ready(Err(Error::StreamClosed))
        ));
    }

    #[test]
    fn dropping_an_unwritten_stream_reports_its_content_type() {
        let (mut stream, mut ends) = ResponseStream::new();
        assert!(matches!(
            stream.set_content_type("bad\nvalue"),
            Err(Error::InvalidContentType { .. })
        ));
        stream
            .set_content_type("text/csv")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(stream);
        let head = ends.head.try_recv().unwrap_or_else(|e| panic!("{e}"));
        assert!(!head.written);
        assert_eq!(head.content_type, "text/csv");
    }
}

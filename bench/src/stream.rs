//! Response streaming as a caller sees it, through both doors of a streaming function:
//! InvokeWithResponseStream (an `application/vnd.amazon.eventstream` body of event-stream
//! messages) and a `RESPONSE_STREAM` Function URL (a plain chunked body).
//!
//! Apart from `client` because these answers are read chunk by chunk as they arrive, never
//! collected: time to first byte needs the instant the first chunk is decoded, and throughput
//! counts a 100 MiB answer it must not hold in memory.
//!
//! The function is the test kit's `fx-stream`: `ttfb` writes one chunk holding the Unix-epoch
//! nanoseconds at which it wrote it; `bytes` writes [`STREAM_BYTES`] in 64 KiB chunks.

use std::net::SocketAddr;
use std::pin::pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::{Bytes, BytesMut};
use coldstart_protocol::invoke;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use crate::client::{self, REQUEST_LIMIT};

/// What `fx-stream`'s `bytes` op sends by default: 100 MiB.
pub const STREAM_BYTES: u64 = 100 << 20;
/// The longest one 100 MiB transfer may take before the run is declared broken.
const TRANSFER_LIMIT: Duration = Duration::from_secs(60);
/// The event-stream header naming an event (`PayloadChunk`, `InvokeComplete`).
const EVENT_TYPE: &str = ":event-type";
/// The event-stream header naming an exception, in messages whose `:message-type` is `exception`.
const EXCEPTION_TYPE: &str = ":exception-type";

/// Which door a streamed request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamDoor {
    /// InvokeWithResponseStream: `POST /2021-11-15/functions/NAME/response-streaming-invocations`
    /// with the event as JSON.
    InvokeApi,
    /// `GET /?op=OP` on a `RESPONSE_STREAM` Function URL (the event's `queryStringParameters`).
    FunctionUrl,
}

/// Where streamed requests go.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    /// The Invoke API's or the Function URL's address.
    pub addr: SocketAddr,
    pub door: StreamDoor,
    /// The function's name (used by the Invoke API's path).
    pub function: String,
}

/// What `fx-stream` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// One chunk: the epoch nanoseconds at which it was written.
    Ttfb,
    /// [`STREAM_BYTES`] in 64 KiB chunks (the fixture's defaults; a Function URL's query values
    /// are strings, which the fixture does not read as numbers, so no door sets them).
    Bytes,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Ttfb => "ttfb",
            Self::Bytes => "bytes",
        }
    }
}

/// For each target, the time from `fx-stream`'s write of its one chunk to the moment this client
/// decoded it: `warmup` unmeasured requests, then `runs` measured, interleaved (see
/// [`interleaved`]).
pub async fn time_to_first_byte(
    targets: &[StreamTarget],
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    interleaved(targets, warmup, runs, first_byte).await
}

/// For each target, the duration of [`STREAM_BYTES`] streamed answers (from sending the request
/// to the end of the answer): `warmup` unmeasured, then `runs` measured, interleaved (see
/// [`interleaved`]). An answer of any other length is an error.
pub async fn transfers(
    targets: &[StreamTarget],
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    interleaved(targets, warmup, runs, transfer).await
}

/// Sequential requests to every target, each over its own keep-alive connection: `warmup` each
/// first, then `runs` rounds that send one request to every target, the order rotated by one
/// every round. `once` sends one request and measures it; its samples are returned per target.
async fn interleaved<T>(
    targets: &[StreamTarget],
    warmup: usize,
    runs: usize,
    once: impl AsyncFn(&mut SendRequest<Full<Bytes>>, &StreamTarget) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<Vec<T>>> {
    let mut senders = Vec::with_capacity(targets.len());
    let mut connections = Vec::with_capacity(targets.len());
    for target in targets {
        let (sender, connection) = client::connect(target.addr).await?;
        senders.push(sender);
        connections.push(connection);
    }
    let requests = async move {
        for (target, sender) in targets.iter().zip(&mut senders) {
            for _ in 0..warmup {
                once(sender, target).await?;
            }
        }
        let mut samples: Vec<Vec<T>> = targets.iter().map(|_| Vec::with_capacity(runs)).collect();
        for run in 0..runs {
            for step in 0..targets.len() {
                let i = (run + step) % targets.len();
                samples[i].push(once(&mut senders[i], &targets[i]).await?);
            }
        }
        // Dropping the senders lets the connections close, so `drive_all` below ends.
        drop(senders);
        anyhow::Ok(samples)
    };
    // As in `client::interleaved`: the connections are driven in the requests' own task.
    let mut connections = pin!(client::drive_all(connections));
    let samples = tokio::select! {
        // Polled in this order, so reading goes on as soon as a chunk is in.
        biased;
        // The requests end first in every good run; an error there ends the measurement without
        // waiting for the other connections.
        samples = requests => samples?,
        ended = &mut connections => {
            ended.context("a connection failed")?;
            bail!("a server closed its connection during the run");
        }
    };
    connections.await.context("a connection failed")?;
    Ok(samples)
}

/// One `ttfb` request: the time from the epoch nanoseconds in the first chunk to the moment it
/// was decoded here (both read from the same clock, `SystemTime`).
async fn first_byte(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &StreamTarget,
) -> anyhow::Result<Duration> {
    let exchange = async {
        let mut chunks = Chunks::open(sender, target, Op::Ttfb).await?;
        let first = chunks.next().await?.context("the answer had no chunk")?;
        let arrived = SystemTime::now();
        // A Function URL's first data frame might hold only part of the number: the rest is read
        // before parsing, the arrival time is the first part's.
        let mut written = first.to_vec();
        while let Some(more) = chunks.next().await? {
            written.extend_from_slice(&more);
        }
        let written: u128 = std::str::from_utf8(&written)
            .ok()
            .and_then(|digits| digits.parse().ok())
            .with_context(|| {
                format!(
                    "the chunk is not epoch nanoseconds: {:?}",
                    String::from_utf8_lossy(&written)
                )
            })?;
        let arrived = arrived.duration_since(UNIX_EPOCH)?.as_nanos();
        let ns = arrived
            .checked_sub(written)
            .context("the chunk arrived before it was written: the clock was set back")?;
        anyhow::Ok(Duration::from_nanos(u64::try_from(ns)?))
    };
    tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .with_context(|| format!("no whole answer within {REQUEST_LIMIT:?}"))?
}

/// One `bytes` request: from sending it to the end of the answer, which must hold exactly
/// [`STREAM_BYTES`] bytes of payload.
async fn transfer(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &StreamTarget,
) -> anyhow::Result<Duration> {
    let exchange = async {
        let started = Instant::now();
        let mut chunks = Chunks::open(sender, target, Op::Bytes).await?;
        let mut bytes = 0;
        while let Some(chunk) = chunks.next().await? {
            bytes += chunk.len() as u64;
        }
        let elapsed = started.elapsed();
        if bytes != STREAM_BYTES {
            bail!("the answer held {bytes} bytes, not {STREAM_BYTES}");
        }
        anyhow::Ok(elapsed)
    };
    tokio::time::timeout(TRANSFER_LIMIT, exchange)
        .await
        .with_context(|| format!("no whole answer within {TRANSFER_LIMIT:?}"))?
}

/// A streamed answer's payload, chunk by chunk, whatever the door.
struct Chunks {
    body: Incoming,
    /// For InvokeWithResponseStream, the event stream read so far; `None` for a Function URL,
    /// whose body is the payload itself.
    events: Option<Events>,
}

/// The state of an event-stream answer.
struct Events {
    decoder: MessageFrameDecoder,
    /// Bytes of the body not decoded yet.
    buffer: BytesMut,
    /// An `InvokeComplete` without `ErrorCode` was decoded: the body must end now.
    complete: bool,
}

impl Chunks {
    /// Sends the request for `op` and checks the answer's head: 200, and for
    /// InvokeWithResponseStream the event-stream content type.
    async fn open(
        sender: &mut SendRequest<Full<Bytes>>,
        target: &StreamTarget,
        op: Op,
    ) -> anyhow::Result<Self> {
        let request = request(target, op)?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.into_body().collect().await?.to_bytes();
            bail!("answered {status}: {}", String::from_utf8_lossy(&body));
        }
        let events = match target.door {
            StreamDoor::FunctionUrl => None,
            StreamDoor::InvokeApi => {
                let content_type = response.headers().get(header::CONTENT_TYPE);
                if content_type.is_none_or(|v| v != invoke::EVENT_STREAM_CONTENT_TYPE) {
                    bail!("the answer's content type is {content_type:?}, not an event stream");
                }
                Some(Events {
                    decoder: MessageFrameDecoder::new(),
                    buffer: BytesMut::new(),
                    complete: false,
                })
            }
        };
        Ok(Self {
            body: response.into_body(),
            events,
        })
    }

    /// The next chunk of the function's response; `None` once the answer has ended well. For
    /// InvokeWithResponseStream, that is an `InvokeComplete` without `ErrorCode` followed by the
    /// end of the body; an error code, another event or a body ending before `InvokeComplete`
    /// is an error.
    async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        let Self { body, events } = self;
        let Some(events) = events else {
            while let Some(frame) = body.frame().await {
                // Trailers carry no payload.
                if let Ok(data) = frame?.into_data()
                    && !data.is_empty()
                {
                    return Ok(Some(data));
                }
            }
            return Ok(None);
        };
        loop {
            if !events.complete {
                match events.decoder.decode_frame(&mut events.buffer) {
                    Ok(DecodedFrame::Complete(message)) => match event_type(&message).as_str() {
                        invoke::EVENT_PAYLOAD_CHUNK => return Ok(Some(message.payload().clone())),
                        invoke::EVENT_INVOKE_COMPLETE => {
                            invoke_complete(message.payload())?;
                            events.complete = true;
                        }
                        other => bail!("unexpected event `{other}` in the stream"),
                    },
                    Ok(DecodedFrame::Incomplete) => {}
                    Err(err) => bail!("bad event stream: {err}"),
                }
                if events.complete && !events.buffer.is_empty() {
                    bail!("the stream went on after InvokeComplete");
                }
            }
            match body.frame().await {
                Some(frame) => {
                    let Ok(data) = frame?.into_data() else {
                        continue;
                    };
                    if events.complete && !data.is_empty() {
                        bail!("the stream went on after InvokeComplete");
                    }
                    events.buffer.extend_from_slice(&data);
                }
                None if events.complete => return Ok(None),
                None => bail!("the stream ended without InvokeComplete"),
            }
        }
    }
}

/// The request that asks `fx-stream` for `op` through `target`'s door.
fn request(target: &StreamTarget, op: Op) -> anyhow::Result<Request<Full<Bytes>>> {
    let builder = Request::builder().header(header::HOST, target.addr.to_string());
    Ok(match target.door {
        StreamDoor::InvokeApi => builder
            .method(Method::POST)
            .uri(invoke::stream_invoke_path(&target.function))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(format!(
                r#"{{"op":"{}"}}"#,
                op.name()
            ))))?,
        StreamDoor::FunctionUrl => builder
            .method(Method::GET)
            .uri(format!("/?op={}", op.name()))
            .body(Full::new(Bytes::new()))?,
    })
}

/// A message's `:event-type`, or for an exception its `:exception-type`; empty when it has
/// neither.
fn event_type(message: &Message) -> String {
    message
        .headers()
        .iter()
        .find(|h| matches!(h.name().as_str(), EVENT_TYPE | EXCEPTION_TYPE))
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// Checks the `InvokeComplete` payload (`{"ErrorCode","ErrorDetails","LogResult"}`): an
/// `ErrorCode` means the function failed.
fn invoke_complete(payload: &[u8]) -> anyhow::Result<()> {
    let verdict: serde_json::Value =
        serde_json::from_slice(payload).context("InvokeComplete is not JSON")?;
    if let Some(code) = verdict.get("ErrorCode").and_then(serde_json::Value::as_str) {
        let details = verdict["ErrorDetails"].as_str().unwrap_or_default();
        bail!("InvokeComplete reports {code}: {details}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_smithy_types::event_stream::{Header, HeaderValue};

    use super::*;

    #[test]
    fn invoke_complete_fails_on_an_error_code() {
        assert!(invoke_complete(b"{}").is_ok());
        let failed = invoke_complete(br#"{"ErrorCode":"Unhandled","ErrorDetails":"boom"}"#);
        assert!(format!("{:#}", failed.expect_err("an error")).contains("Unhandled: boom"));
        assert!(invoke_complete(b"not json").is_err());
    }

    #[test]
    fn event_type_names_events_and_exceptions() {
        let message = |name: &'static str, value: &'static str| {
            Message::new(Bytes::new())
                .add_header(Header::new(
                    ":message-type",
                    HeaderValue::String("event".into()),
                ))
                .add_header(Header::new(name, HeaderValue::String(value.into())))
        };
        assert_eq!(
            event_type(&message(EVENT_TYPE, "PayloadChunk")),
            "PayloadChunk"
        );
        assert_eq!(
            event_type(&message(EXCEPTION_TYPE, "ServiceException")),
            "ServiceException"
        );
        assert_eq!(event_type(&Message::new(Bytes::new())), "");
    }
}

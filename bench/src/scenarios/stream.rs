//! `stream`: response streaming through both doors of the test kit's `fx-stream` under one
//! `coldstart up`: InvokeWithResponseStream (an event-stream body) and a `RESPONSE_STREAM`
//! Function URL (a chunked body). Time to first byte (`ttfb` writes one chunk holding the epoch
//! nanoseconds at which it wrote it), 100 MiB transfers (`bytes`, 64 KiB chunks), and
//! coldstart's peak memory during them. Answers are read chunk by chunk, never collected.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::http::{Method, Request, StatusCode, header};
use anyhow::{Context as _, bail};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::{Bytes, BytesMut};
use coldstart_protocol::invoke;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::core::http::{self, REQUEST_LIMIT, Rounds, Sender};
use crate::core::process;
use crate::core::report::{Report, Table, mb};
use crate::core::stack::{Coldstart, ConfigDir, binary, toml_path};
use crate::core::stats::{Summary, micros};
use crate::scenarios::Context;

/// What `fx-stream`'s `bytes` op sends: 100 MiB.
const STREAM_BYTES: u64 = 100 << 20;
/// The longest one 100 MiB transfer may take.
const TRANSFER_LIMIT: Duration = Duration::from_secs(60);
/// The event-stream headers naming an event, and an exception.
const EVENT_TYPE: &str = ":event-type";
const EXCEPTION_TYPE: &str = ":exception-type";
/// The function served.
const FUNCTION: &str = "stream";
/// Goals: time to first byte p50, MB/s median, peak RSS rise in MB.
const TTFB_GOAL: Duration = Duration::from_millis(1);
const RATE_GOAL: f64 = 1_000.0;
const PEAK_GOAL: f64 = 10.0;

/// The two doors: InvokeWithResponseStream (POST the op as JSON), then the Function URL
/// (`GET /?op=OP`).
const DOORS: [&str; 2] = ["InvokeWithResponseStream", "Function URL (stream)"];

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("stream", cx.quick);
    let coldstart = binary("coldstart")?;
    // A 60 s timeout: a 100 MiB stream must never hit the default 3 s.
    let toml = format!(
        "[functions.{FUNCTION}]\nbootstrap = {}\ntimeout = 60\n\
         url = {{ port = 0, invoke_mode = \"RESPONSE_STREAM\" }}\n",
        toml_path(&binary("fx-stream")?)?
    );
    let config = ConfigDir::write("stream", &toml)?;
    report.setup.push((
        "up",
        "coldstart up: fx-stream (coldstart-runtime) with a RESPONSE_STREAM Function URL".into(),
    ));
    eprintln!("stream: time to first byte and 100 MiB, both doors");
    let up = Coldstart::up(&coldstart, &[], &config.config)?;
    let measured = measure(cx, &up);
    report.note("coldstart up", up.stop()?);
    let (ttfb, transfers, memory) = measured.with_context(|| format!("{:?}", report.notes))?;
    report.tables.extend([ttfb, transfers, memory]);
    Ok(report)
}

fn measure(cx: &Context, up: &Coldstart) -> anyhow::Result<(Table, Table, Table)> {
    let addrs = [up.invoke_api()?, up.endpoint(FUNCTION, "url")?.addr];
    let (warmup, runs) = (cx.cut(20), cx.cut(200));
    let rounds = Rounds {
        warmup,
        rounds: runs,
        block: 0,
    };
    let ttfb = cx
        .rt
        .block_on(http::interleave(&addrs, rounds, async |sender, door| {
            first_byte(sender, addrs[door], door).await
        }))
        .context("time to first byte")?;
    let mut ttfb_table = Table::new("Time to first byte: from the function's write of one chunk to this client decoding it (us)", &["p50", "p99", "mean", "max"])
        .about(format!("{warmup} warm-up then {runs} requests per door, alternating, one keep-alive connection per door; both clocks are this machine's."));
    for (door, samples) in DOORS.iter().zip(ttfb) {
        let s = Summary::of(samples).context("no requests")?;
        ttfb_table.row(
            *door,
            vec![micros(s.p50), micros(s.p99), micros(s.mean), micros(s.max)],
        );
        ttfb_table.goal(
            &format!("{door} p50"),
            micros(s.p50),
            "<= 1000 us",
            s.p50 <= TTFB_GOAL,
        );
    }

    let pid = up.pid()?;
    let before = process::resident_bytes(pid, "VmRSS")?;
    // Without the reset, `VmHWM` would be the peak since start-up, which may hide the transfers'.
    let reset = process::reset_peak_resident(pid);
    let runs = if cx.quick { 1 } else { 5 };
    let rounds = Rounds {
        warmup: 1,
        rounds: runs,
        block: 0,
    };
    let transfers = cx
        .rt
        .block_on(http::interleave(&addrs, rounds, async |sender, door| {
            transfer(sender, addrs[door], door).await
        }))
        .context("100 MiB transfers")?;
    let peak = process::resident_bytes(pid, "VmHWM")?;
    let mut rate_table = Table::new(format!("A {STREAM_BYTES}-byte (100 MiB) stream in 64 KiB chunks: 1 warm-up then {runs} per door, alternating (MB/s, 10^6 bytes)"), &["median", "slowest"])
        .about("from sending the request to the end of the answer (event stream decoded, payload counted)");
    for (door, samples) in DOORS.iter().zip(transfers) {
        let s = Summary::of(samples).context("no transfers")?;
        let rate = |d: Duration| STREAM_BYTES as f64 / 1e6 / d.as_secs_f64();
        rate_table.row(
            *door,
            vec![format!("{:.0}", rate(s.p50)), format!("{:.0}", rate(s.max))],
        );
        rate_table.goal(
            &format!("{door} median"),
            format!("{:.0}", rate(s.p50)),
            ">= 1000 MB/s",
            rate(s.p50) >= RATE_GOAL,
        );
    }
    let since = if reset.is_ok() {
        "during the transfers"
    } else {
        "since start-up (the reset was refused)"
    };
    let mut memory = Table::new(
        "coldstart's memory around the transfers (its own process, MB)",
        &["MB"],
    );
    memory.row(
        "VmRSS before the transfers",
        vec![format!("{:.1}", mb(before))],
    );
    memory.row(
        format!("peak (VmHWM) {since}"),
        vec![format!("{:.1}", mb(peak))],
    );
    let rise = mb(peak) - mb(before);
    memory.goal(
        "peak - VmRSS before",
        format!("{rise:.1} MB"),
        "<= 10 MB",
        rise <= PEAK_GOAL,
    );
    Ok((ttfb_table, rate_table, memory))
}

/// One `ttfb` request: the time from the epoch nanoseconds in the first chunk to the moment it
/// was decoded here (both read from the same clock, `SystemTime`).
async fn first_byte(
    sender: &mut Sender,
    addr: SocketAddr,
    door: usize,
) -> anyhow::Result<Duration> {
    let exchange = async {
        let mut chunks = Chunks::open(sender, addr, door, "ttfb").await?;
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
async fn transfer(sender: &mut Sender, addr: SocketAddr, door: usize) -> anyhow::Result<Duration> {
    let exchange = async {
        let started = Instant::now();
        let mut chunks = Chunks::open(sender, addr, door, "bytes").await?;
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
        sender: &mut Sender,
        addr: SocketAddr,
        door: usize,
        op: &str,
    ) -> anyhow::Result<Self> {
        let request = request(addr, door, op)?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.into_body().collect().await?.to_bytes();
            bail!("answered {status}: {}", String::from_utf8_lossy(&body));
        }
        let events = match door {
            1 => None,
            _ => {
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

/// The request that asks `fx-stream` for `op` through door 0 (InvokeWithResponseStream) or 1.
fn request(addr: SocketAddr, door: usize, op: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    let builder = Request::builder().header(header::HOST, addr.to_string());
    Ok(match door {
        0 => builder
            .method(Method::POST)
            .uri(invoke::stream_invoke_path(FUNCTION))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(format!(r#"{{"op":"{op}"}}"#))))?,
        _ => builder
            .method(Method::GET)
            .uri(format!("/?op={op}"))
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

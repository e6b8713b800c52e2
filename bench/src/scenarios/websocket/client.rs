//! The WebSocket clients: connections (TCP_NODELAY, opened many at a time with a bound on the
//! handshakes in flight), sequential round trips on one connection, and idle connections that
//! drain every frame and report when each arrived. HTTP POSTs go through the core's client.
//!
//! Every wait is bounded ([`ANSWER_LIMIT`], [`CLOSE_LIMIT`]) and every socket is closed: a
//! [`Crowd`] closes its connections politely on [`Crowd::close`], and aborts (drops) them if it is
//! dropped instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

/// A client's WebSocket connection.
pub type Ws = WebSocketStream<TcpStream>;

/// The longest any one answer (a handshake, an echo, an HTTP response) may take.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);
/// How long a client waits for the server's close frame after sending its own.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// Each client's read buffer, in bytes.
const CLIENT_READ_BUFFER: usize = 4 * 1024;
/// Size of every round-trip message and `@connections` body, in bytes.
pub const MESSAGE_LEN: usize = 100;

/// A text message of exactly [`MESSAGE_LEN`] bytes, unique to `tag` and `seq`: a JSON object
/// without `action`, so the chat routes it to `$default` and echoes it byte for byte.
pub fn message(tag: &str, seq: usize) -> String {
    let head = format!(r#"{{"message":"{tag}-{seq}-"#);
    let tail = r#""}"#;
    let fill = MESSAGE_LEN.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(fill))
}

/// Opens a WebSocket connection to `ws://ADDR{path}` (path and query).
pub async fn open(addr: SocketAddr, path: &str) -> anyhow::Result<Ws> {
    let opening = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        // tungstenite's default 128 KiB read buffer is zero-filled on the first read: 10,000
        // clients would hold 1.3 GB for 100-byte messages.
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let url = format!("ws://{addr}{path}");
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        anyhow::Ok(ws)
    };
    match timeout(ANSWER_LIMIT, opening).await {
        Ok(opened) => opened,
        Err(_) => bail!("the handshake took more than {ANSWER_LIMIT:?}"),
    }
}

/// The next text frame on `ws`, skipping control frames; fails after [`ANSWER_LIMIT`], on a
/// close or on a broken connection.
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<Utf8Bytes> {
    let reading = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text),
                Some(Ok(Message::Close(frame))) => bail!("the server closed: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => bail!("the connection ended"),
            }
        }
    };
    match timeout(ANSWER_LIMIT, reading).await {
        Ok(read) => read,
        Err(_) => bail!("no answer within {ANSWER_LIMIT:?}"),
    }
}

/// Sends `count` messages on `ws`, one at a time, each after the echo of the one before: the
/// latency of each, and how many echoes were not the message sent. `tag` makes them unique.
pub async fn round_trips(
    ws: &mut Ws,
    tag: &str,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let (mut latencies, mut mismatches) = (Vec::with_capacity(count), 0);
    for seq in 0..count {
        let sent = message(tag, seq);
        let started = Instant::now();
        ws.send(Message::text(sent.clone()))
            .await
            .context("sending a message")?;
        let echo = next_text(ws)
            .await
            .with_context(|| format!("waiting for the echo of message {seq}"))?;
        latencies.push(started.elapsed());
        mismatches += usize::from(echo.as_str() != sent);
    }
    Ok((latencies, mismatches))
}

/// A data frame one of a [`Crowd`]'s connections received.
#[derive(Debug)]
pub struct Arrival {
    /// The connection's number in the crowd.
    pub client: usize,
    /// When its task read the frame.
    pub at: Instant,
    /// The frame's payload, text or binary (serverless-offline sends what is POSTed to
    /// `@connections` as a binary frame; API Gateway and coldstart send text).
    pub data: Bytes,
}

/// How one of a crowd's connections ended.
#[derive(Debug)]
enum Ended {
    /// We closed it and the server answered our close frame.
    Closed,
    /// The server closed it (or the stream ended) before we asked.
    ByServer,
    /// It broke, or our close went unanswered for [`CLOSE_LIMIT`].
    Broken(String),
}

/// Idle connections that read every frame they are sent (so no buffer fills up) and report each
/// data frame to [`Crowd::arrivals`].
#[derive(Debug)]
pub struct Crowd {
    /// One task per connection. Dropping the set aborts them, dropping (resetting) the sockets.
    tasks: JoinSet<Ended>,
    /// Cancelled by [`Crowd::close`]: every task then closes its connection.
    stop: CancellationToken,
    /// The tasks hold clones of the sender; the receiver reads what they got.
    arrivals_tx: mpsc::UnboundedSender<Arrival>,
    pub arrivals: mpsc::UnboundedReceiver<Arrival>,
    /// How many connections the crowd has.
    pub len: usize,
}

impl Default for Crowd {
    fn default() -> Self {
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
        Self {
            tasks: JoinSet::new(),
            stop: CancellationToken::new(),
            arrivals_tx,
            arrivals,
            len: 0,
        }
    }
}

/// What [`Crowd::close`] found.
#[derive(Debug, Default)]
pub struct Closing {
    /// Connections the server had closed before we asked.
    pub by_server: usize,
    /// Connections that broke or whose close went unanswered; the last reason.
    pub broken: usize,
    pub broken_reason: Option<String>,
}

impl Crowd {
    /// Adds `ws` as connection number `client`.
    pub fn add(&mut self, client: usize, ws: Ws) {
        self.len += 1;
        let arrivals = self.arrivals_tx.clone();
        let stop = self.stop.clone();
        self.tasks.spawn(listen(client, ws, arrivals, stop));
    }

    /// Opens `count` connections, numbered `0..count`, to `ws://ADDR{path(n)}` with at most
    /// `in_flight` handshakes at once, and adds those that open; stops starting new ones after
    /// `limit`.
    pub async fn open_many(
        &mut self,
        addr: SocketAddr,
        path: impl Fn(usize) -> String,
        count: usize,
        in_flight: usize,
        limit: Duration,
    ) -> Opened {
        let started = Instant::now();
        let mut opened = Opened::default();
        let mut opening = JoinSet::new();
        let mut next = 0;
        loop {
            while next < count && opening.len() < in_flight.max(1) && started.elapsed() < limit {
                let path = path(next);
                opening.spawn(async move { (next, open(addr, &path).await) });
                next += 1;
            }
            let Some(done) = opening.join_next().await else {
                break;
            };
            match done {
                Ok((client, Ok(ws))) => {
                    opened.ok += 1;
                    self.add(client, ws);
                }
                Ok((_, Err(err))) => opened.fail(format!("{err:#}")),
                Err(err) => opened.fail(err.to_string()),
            }
        }
        opened.not_tried = count - next;
        opened.elapsed = started.elapsed();
        opened
    }

    /// Waits for `count` arrivals whose text is `text` (others are skipped), for at most `limit`;
    /// returns when each came, by client, and how many of them there were (fewer than `count`
    /// when `limit` passed).
    pub async fn await_text(
        &mut self,
        text: &str,
        count: usize,
        limit: Duration,
    ) -> HashMap<usize, Instant> {
        let mut got = HashMap::with_capacity(count);
        let waiting = async {
            while got.len() < count {
                let Some(arrival) = self.arrivals.recv().await else {
                    break;
                };
                if arrival.data == text.as_bytes() {
                    got.entry(arrival.client).or_insert(arrival.at);
                }
            }
        };
        let _ = timeout(limit, waiting).await;
        got
    }

    /// Closes every connection politely (close frame, then the server's, bounded by
    /// [`CLOSE_LIMIT`]) and waits for all of them.
    pub async fn close(mut self) -> Closing {
        self.stop.cancel();
        let mut closing = Closing::default();
        while let Some(ended) = self.tasks.join_next().await {
            match ended {
                Ok(Ended::Closed) => {}
                Ok(Ended::ByServer) => closing.by_server += 1,
                Ok(Ended::Broken(why)) => {
                    closing.broken += 1;
                    closing.broken_reason = Some(why);
                }
                Err(err) => {
                    closing.broken += 1;
                    closing.broken_reason = Some(err.to_string());
                }
            }
        }
        closing
    }
}

/// What [`Crowd::open_many`] did.
#[derive(Debug, Default)]
pub struct Opened {
    pub ok: usize,
    pub failed: usize,
    /// Never started: the time limit passed first.
    pub not_tried: usize,
    /// Why the last failure failed.
    pub last_error: Option<String>,
    /// From the first handshake started to the last one finished.
    pub elapsed: Duration,
}

impl Opened {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.last_error = Some(why);
    }

    /// Connections opened per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One connection of a crowd: reads until told to stop, then closes.
async fn listen(
    client: usize,
    mut ws: Ws,
    arrivals: mpsc::UnboundedSender<Arrival>,
    stop: CancellationToken,
) -> Ended {
    loop {
        // Either the bench is done with the connection, or a frame comes.
        tokio::select! {
            () = stop.cancelled() => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    // The receiver is gone only when the crowd is being dropped.
                    let _ = arrivals.send(Arrival { client, at: Instant::now(), data: text.into() });
                }
                Some(Ok(Message::Binary(data))) => {
                    let _ = arrivals.send(Arrival { client, at: Instant::now(), data });
                }
                Some(Ok(Message::Close(_))) | None => return Ended::ByServer,
                Some(Ok(_)) => {}
                Some(Err(err)) => return Ended::Broken(err.to_string()),
            },
        }
    }
    let closing = async {
        ws.close(None).await?;
        // Until the server's close frame; tungstenite then ends the stream.
        while let Some(frame) = ws.next().await {
            frame?;
        }
        anyhow::Ok(())
    };
    match timeout(CLOSE_LIMIT, closing).await {
        Ok(Ok(())) => Ended::Closed,
        Ok(Err(err)) => Ended::Broken(format!("closing: {err:#}")),
        Err(_) => Ended::Broken(format!("no close frame within {CLOSE_LIMIT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_same_length_and_route_to_default() {
        for (tag, seq) in [("a", 0), ("rt-8-3", 12_345)] {
            let m = message(tag, seq);
            assert_eq!(m.len(), MESSAGE_LEN);
            let value: serde_json::Value = serde_json::from_str(&m).expect("JSON");
            assert!(value.get("action").is_none());
        }
        assert_ne!(message("a", 1), message("a", 2));
    }
}

//! The WebSocket measurements, one function each, and the [`Plan`] of how much each does: message
//! round trips, `@connections` POST throughput, connections held, and fan-out through the chat's
//! `broadcast` function.
//!
//! Round trips and POSTs take a [`Target`], so the same code measures `coldstart up` and the peer;
//! connections held and fan-out need the chat's `broadcast` and are measured on coldstart only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::{Method, StatusCode};
use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::client::{self as ws_client, Closing, Crowd, MESSAGE_LEN, Opened, Ws};
use super::{Chat, STAGE};
use crate::core::http::{self, Http, Load};
use crate::core::stack::Coldstart;
use crate::core::stats::Summary;

/// Every byte but RFC 3986's unreserved ones is percent-encoded in a connection id.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How much each measurement does (`--quick` cuts the counts by 10).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Round trips on one connection: warm-up and measured. Default: 300, 4,000.
    pub rt_warmup: usize,
    pub rt_count: usize,
    /// Parallel round trips: connections, and each one's warm-up and measured. Default: 8, 100, 500.
    pub rt_parallel: usize,
    pub rt_parallel_warmup: usize,
    pub rt_parallel_count: usize,
    /// Idle clients the POSTs go to, the keep-alive connections that send them, warm-up POSTs,
    /// measured POSTs and their time limit. Default: 64, 16, 5,000, 200,000, 30 s.
    pub post_clients: usize,
    pub post_connections: usize,
    pub post_warmup: usize,
    pub post_total: usize,
    pub post_limit: Duration,
    /// Connections to open and hold. Default: 10,000.
    pub held: usize,
    /// Handshakes in flight at once: below the chat's concurrency (10), so that no `$connect`
    /// waits past coldstart's throttle delay and is refused with 429. Default: 8.
    pub connect_in_flight: usize,
    /// How long opening the connections may take. Default: 300 s.
    pub connect_limit: Duration,
    /// Fan-out: connections, measured broadcasts (after one warm-up), and how long one may take.
    /// Default: 1,000, 11, 30 s.
    pub fanout_clients: usize,
    pub fanout_runs: usize,
    pub broadcast_limit: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        let cut = |n: usize| if quick { n / 10 } else { n };
        Self {
            rt_warmup: cut(300),
            rt_count: cut(4_000),
            rt_parallel: 8,
            rt_parallel_warmup: cut(100),
            rt_parallel_count: cut(500),
            post_clients: 64,
            post_connections: 16,
            post_warmup: cut(5_000),
            post_total: cut(200_000),
            post_limit: Duration::from_secs(30),
            held: cut(10_000),
            connect_in_flight: 8,
            connect_limit: Duration::from_secs(300),
            fanout_clients: cut(1_000),
            fanout_runs: if quick { 3 } else { 11 },
            broadcast_limit: Duration::from_secs(30),
        }
    }
}

/// How a WebSocket API's connection ids are found for `@connections`.
#[derive(Debug, Clone, Copy)]
pub enum Ids<'a> {
    /// The chat's SQLite table: each client connects on a channel of its own.
    Sqlite(&'a Chat),
    /// The peer's handler answers `{"action":"whoami"}` with the connection's id.
    Whoami,
}

/// A WebSocket API to measure: coldstart's or the peer's.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The WebSocket and `@connections` port.
    pub addr: SocketAddr,
    /// The path clients connect to (`/staging`, or `/` for the peer).
    pub ws_path: &'a str,
    /// What comes before `/@connections/{id}` (`/staging`, or nothing for the peer).
    pub connections_prefix: &'a str,
    pub ids: Ids<'a>,
}

impl<'a> Target<'a> {
    /// `coldstart up` serving `chat`.
    pub fn coldstart(chat: &'a Chat) -> Self {
        Self {
            addr: chat.ws,
            ws_path: "/staging",
            connections_prefix: "/staging",
            ids: Ids::Sqlite(chat),
        }
    }

    fn ws_path(&self, channel: &str) -> String {
        format!("{}?channel={channel}", self.ws_path)
    }

    /// `…/@connections/{id}`, the id percent-encoded (API Gateway's ids end in `=`).
    fn connections_path(&self, id: &str) -> String {
        let encoded = percent_encoding::utf8_percent_encode(id, UNRESERVED);
        format!("{}/@connections/{encoded}", self.connections_prefix)
    }
}

/// Sequential round trips on one or more connections at once.
#[derive(Debug)]
pub struct RoundTrip {
    pub connections: usize,
    /// Warm-up round trips per connection.
    pub warmup: usize,
    pub summary: Summary,
    /// Echoes that were not the message sent, warm-up included.
    pub mismatches: usize,
    /// Measured round trips per second, all connections together (from the first measured send
    /// to the last measured echo).
    pub rate: f64,
    /// CPU time the whole measurement took (warm-up, connections and all) of coldstart, its
    /// sandboxes and the bench, in ns, when known.
    pub cpu: Option<[u64; 3]>,
}

impl RoundTrip {
    /// Every message sent, warm-up included.
    pub fn messages(&self) -> usize {
        self.summary.count + self.connections * self.warmup
    }
}

/// Opens `connections` connections to `target`, and on each at once sends `warmup` then `each`
/// messages one at a time, each after the echo of the one before.
pub async fn round_trip(
    target: &Target<'_>,
    connections: usize,
    warmup: usize,
    each: usize,
) -> anyhow::Result<RoundTrip> {
    let mut clients = Vec::with_capacity(connections);
    for n in 0..connections {
        let ws = ws_client::open(target.addr, &target.ws_path(&format!("rt-{n}")))
            .await
            .with_context(|| format!("opening connection {n} of {connections}"))?;
        clients.push(ws);
    }
    // Every connection starts its measured round trips once all have warmed up.
    let warm = Arc::new(Barrier::new(connections));
    let mut tasks = JoinSet::new();
    for (n, mut ws) in clients.into_iter().enumerate() {
        let warm = warm.clone();
        tasks.spawn(async move {
            let warmed = ws_client::round_trips(&mut ws, &format!("w{n}"), warmup).await;
            // Waited for even after a failure, so that the others go on (and end).
            warm.wait().await;
            let started = Instant::now();
            let measured = match warmed {
                Ok((_, wrong)) => ws_client::round_trips(&mut ws, &format!("m{n}"), each)
                    .await
                    .map(|(latencies, more)| (latencies, wrong + more)),
                Err(err) => Err(err),
            };
            let ended = Instant::now();
            close(ws).await;
            measured.map(|(latencies, wrong)| (latencies, wrong, started, ended))
        });
    }
    let mut latencies = Vec::with_capacity(connections * each);
    let mut mismatches = 0;
    let mut span: Option<(Instant, Instant)> = None;
    while let Some(done) = tasks.join_next().await {
        let (measured, wrong, started, ended) = done??;
        latencies.extend(measured);
        mismatches += wrong;
        span = Some(match span {
            None => (started, ended),
            Some((a, b)) => (a.min(started), b.max(ended)),
        });
    }
    let count = latencies.len();
    let summary = Summary::of(latencies).context("no round trip was measured")?;
    let rate = span.map_or(0.0, |(a, b)| {
        count as f64 / b.duration_since(a).as_secs_f64().max(1e-9)
    });
    Ok(RoundTrip {
        connections,
        warmup,
        summary,
        mismatches,
        rate,
        cpu: None,
    })
}

/// Closes `ws` politely, waiting (bounded) for the server's close frame.
async fn close(mut ws: Ws) {
    let closing = async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = timeout(ws_client::ANSWER_LIMIT, closing).await;
}

/// `@connections` POSTs to idle connections.
#[derive(Debug, Default)]
pub struct Posts {
    pub warmup: Load,
    pub load: Load,
    /// Frames the clients received of the measured POSTs answered 2xx; should equal `load.right`.
    pub received: usize,
}

/// Opens `plan.post_clients` idle connections to `target`, finds their ids, then POSTs a
/// [`MESSAGE_LEN`]-byte body to them in turn from `plan.post_connections` keep-alive HTTP/1.1
/// connections, each sending its next POST when the last is answered: `plan.post_warmup` POSTs,
/// then `plan.post_total` or as many as `plan.post_limit` allows. Every frame is read by the
/// clients and counted.
pub async fn posts(target: &Target<'_>, plan: &Plan) -> anyhow::Result<Posts> {
    let mut crowd = Crowd::default();
    let mut ids = Vec::with_capacity(plan.post_clients);
    for n in 0..plan.post_clients {
        let channel = format!("post-{n}");
        let mut ws = ws_client::open(target.addr, &target.ws_path(&channel))
            .await
            .with_context(|| format!("opening client {n}"))?;
        if let Ids::Whoami = target.ids {
            ids.push(whoami(&mut ws).await?);
        }
        crowd.add(n, ws);
    }
    if let Ids::Sqlite(config) = target.ids {
        for n in 0..plan.post_clients {
            let channel = format!("post-{n}");
            match config.connection_ids(&channel)?.as_slice() {
                [id] => ids.push(id.clone()),
                other => bail!("channel {channel} has {} connections, not 1", other.len()),
            }
        }
    }
    let targets: Vec<http::Target> = ids
        .iter()
        .map(|id| http::Target::post("@connections", target.addr, target.connections_path(id)))
        .collect();
    let body = Bytes::from(ws_client::message("post", 0));
    debug_assert_eq!(body.len(), MESSAGE_LEN);
    let run = |total| {
        http::load(
            &targets,
            &body,
            plan.post_connections,
            total,
            plan.post_limit,
        )
    };
    let warmup = run(plan.post_warmup).await;
    let warm_frames = count_frames(&mut crowd, warmup.right).await;
    if warm_frames != warmup.right {
        bail!(
            "the clients received {warm_frames} frames of the {} warm-up POSTs answered 2xx",
            warmup.right
        );
    }
    let load = run(plan.post_total).await;
    let received = count_frames(&mut crowd, load.right).await;
    let closing = crowd.close().await;
    report_broken("posts", &closing);
    Ok(Posts {
        warmup,
        load,
        received,
    })
}

/// How long the last frames of a POST run may take to arrive after the last answer.
const FRAMES_LIMIT: Duration = Duration::from_secs(10);

/// Counts `expected` text frames arriving at `crowd` (fewer if [`FRAMES_LIMIT`] passes first).
async fn count_frames(crowd: &mut Crowd, expected: usize) -> usize {
    let mut got = 0;
    let counting = async {
        while got < expected {
            if crowd.arrivals.recv().await.is_none() {
                break;
            }
            got += 1;
        }
    };
    let _ = timeout(FRAMES_LIMIT, counting).await;
    got
}

/// Sends `{"action":"whoami"}` and reads the `connectionId` of the answer.
async fn whoami(ws: &mut Ws) -> anyhow::Result<String> {
    ws.send(Message::text(r#"{"action":"whoami"}"#)).await?;
    let answer = ws_client::next_text(ws)
        .await
        .context("waiting for whoami")?;
    let value: serde_json::Value =
        serde_json::from_str(answer.as_str()).context("whoami's answer is not JSON")?;
    value["connectionId"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("whoami answered {answer}"))
}

/// Connections opened and held on one `coldstart up`.
#[derive(Debug)]
pub struct Held {
    pub attempted: usize,
    pub opened: Opened,
    /// `coldstart up`'s VmRSS with no connection, and with every connection open.
    pub rss_before: u64,
    pub rss_after: u64,
    /// The broadcast to every held connection that shows they are all alive.
    pub check: Broadcast,
    pub closing: Closing,
    /// From asking every client to close until `up` exited after SIGTERM.
    pub teardown: Duration,
    /// `$disconnect` invocations `up` reported throttled (every sandbox busy) while closing.
    pub disconnects_throttled: usize,
    /// What `up` printed on stderr besides its table.
    pub notes: Vec<String>,
}

/// One broadcast through `POST /broadcast?channel=…`.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// The answer's status and body (`{"sent":N,"gone":M,"failed":K}`).
    pub status: Option<StatusCode>,
    pub body: String,
    /// From sending the POST until its answer, and until the last client got the message.
    pub answered: Duration,
    pub to_last: Duration,
    /// Clients that got the message.
    pub received: usize,
}

/// Opens `plan.held` connections on one channel, `plan.connect_in_flight` handshakes at a time,
/// reads `up`'s memory before and after, then broadcasts one message to all of them.
pub async fn held(up: Coldstart, config: &Chat, plan: &Plan) -> anyhow::Result<Held> {
    let rss = || crate::core::process::resident_bytes(up.pid()?, "VmRSS");
    let rss_before = rss()?;
    let (mut crowd, opened) = crowd_on(config, "held", plan.held, plan).await;
    let rss_after = rss()?;
    let mut http = Http::connect(config.http).await?;
    let check = broadcast(&mut http, &mut crowd, "held", "held-check", plan).await;
    drop(http);
    let started = Instant::now();
    let closing = crowd.close().await;
    let notes = up.stop_within(super::STOP_GRACE)?;
    let teardown = started.elapsed();
    let disconnects_throttled = notes
        .iter()
        .filter(|n| n.contains("$disconnect failed") && n.contains("Throttled"))
        .count();
    Ok(Held {
        disconnects_throttled,
        attempted: plan.held,
        opened,
        rss_before,
        rss_after,
        check,
        closing,
        teardown,
        notes,
    })
}

/// Opens `count` connections on `channel` of the chat's WebSocket API, `plan.connect_in_flight`
/// handshakes at a time.
async fn crowd_on(config: &Chat, channel: &str, count: usize, plan: &Plan) -> (Crowd, Opened) {
    let mut crowd = Crowd::default();
    let path = format!("/{STAGE}?channel={channel}");
    let opened = crowd
        .open_many(
            config.ws,
            |_| path.clone(),
            count,
            plan.connect_in_flight,
            plan.connect_limit,
        )
        .await;
    (crowd, opened)
}

/// POSTs `text` to `/broadcast?channel=CHANNEL` and waits until every connection of `crowd` has
/// received it (or `plan.broadcast_limit` passed).
async fn broadcast(
    http: &mut Http,
    crowd: &mut Crowd,
    channel: &str,
    text: &str,
    plan: &Plan,
) -> Broadcast {
    let limit = plan.broadcast_limit;
    let everyone = crowd.len;
    let path = format!("/broadcast?channel={channel}");
    let started = Instant::now();
    let posting = async {
        let answer = http
            .send(Method::POST, &path, Bytes::from(text.to_owned()))
            .await;
        (answer, started.elapsed())
    };
    let ((answer, answered), got) = tokio::join!(posting, crowd.await_text(text, everyone, limit));
    let to_last = got
        .values()
        .max()
        .map_or(limit, |last| last.duration_since(started));
    let (status, body) = match answer {
        Ok((status, _, body)) => (Some(status), String::from_utf8_lossy(&body).into_owned()),
        Err(err) => (None, format!("{err:#}")),
    };
    Broadcast {
        status,
        body,
        answered,
        to_last,
        received: got.len(),
    }
}

/// Broadcasts to one channel of many connections.
#[derive(Debug)]
pub struct FanOut {
    pub opened: Opened,
    /// The first broadcast (it starts the `broadcast` function's sandbox), not in `runs`.
    pub warmup: Broadcast,
    pub runs: Vec<Broadcast>,
    pub closing: Closing,
}

impl FanOut {
    /// The median time to the last client, over the runs where every client got the message.
    pub fn median(&self) -> Option<Duration> {
        let all = self.opened.ok;
        let times: Vec<Duration> = self
            .runs
            .iter()
            .filter(|run| run.received == all)
            .map(|run| run.to_last)
            .collect();
        Summary::of(times).map(|s| s.p50)
    }
}

/// Opens `plan.fanout_clients` connections on one channel, then broadcasts to them one warm-up
/// and `plan.fanout_runs` measured times, each after the last reached everyone.
pub async fn fan_out(config: &Chat, plan: &Plan) -> anyhow::Result<FanOut> {
    let (mut crowd, opened) = crowd_on(config, "fan", plan.fanout_clients, plan).await;
    if opened.ok == 0 {
        bail!("no connection opened: {:?}", opened.last_error);
    }
    let mut http = Http::connect(config.http).await?;
    let warmup = broadcast(&mut http, &mut crowd, "fan", "fan-warmup", plan).await;
    let mut runs = Vec::with_capacity(plan.fanout_runs);
    for run in 0..plan.fanout_runs {
        let text = format!("fan-{run}");
        runs.push(broadcast(&mut http, &mut crowd, "fan", &text, plan).await);
    }
    drop(http);
    let closing = crowd.close().await;
    report_broken("fan-out", &closing);
    Ok(FanOut {
        opened,
        warmup,
        runs,
        closing,
    })
}

/// Says on stderr that connections broke while closing (the table reports the counts).
fn report_broken(what: &str, closing: &Closing) {
    if let Some(why) = &closing.broken_reason {
        eprintln!(
            "{what}: {} connection(s) did not close cleanly; last: {why}",
            closing.broken
        );
    }
}

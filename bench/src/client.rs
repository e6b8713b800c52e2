//! The load generator: HTTP/1.1 requests over keep-alive hyper connections, one request at a time
//! per connection.
//!
//! Every HTTP measurement (the floor, both runtimes, `coldstart up`'s endpoints) goes through this
//! one client, so the figures differ only by the server they hit.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::stats::Summary;

/// Size of the JSON payload of every request.
pub const PAYLOAD_LEN: usize = 100;
/// The longest one request may take before the run is declared broken.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// The clients' runtime: one thread that drives every socket itself, so that a request pays no
/// cross-thread wake-up and the figures of every server measured carry the same client costs.
pub fn runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the client's runtime")
}

/// A JSON object of exactly [`PAYLOAD_LEN`] bytes that an echo function returns byte for byte
/// (one key, no whitespace: serde_json writes it back unchanged).
pub fn payload() -> Bytes {
    const HEAD: &str = r#"{"message":""#;
    const TAIL: &str = r#""}"#;
    let filler = "x".repeat(PAYLOAD_LEN - HEAD.len() - TAIL.len());
    Bytes::from(format!("{HEAD}{filler}{TAIL}"))
}

/// Where the requests go: a server's address, the request path and what is exchanged.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub exchange: Exchange,
}

/// What a request sends and what counts as the right answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// POST the payload as JSON; the answer must be 200 with the payload as its body.
    Echo,
    /// GET without a body; any 200 is right (a Function URL answers with the whole event, which
    /// differs per request).
    Get,
}

/// What one request got back.
enum Outcome {
    /// 200 with the expected body.
    Echoed,
    /// 200 with another body.
    Mismatch,
    /// 429 (TooManyRequestsException): every sandbox was busy.
    Throttled,
    /// Any other status.
    Other(StatusCode),
}

/// The results of sequential requests on one connection.
#[derive(Debug, Default)]
pub struct Sequential {
    /// Latency of each measured request, whatever its outcome.
    pub latencies: Vec<Duration>,
    /// Latency of the first request of each block, left out of `latencies` (see [`interleaved`]).
    pub firsts: Vec<Duration>,
    /// Requests after the warm-up (the first of each block too) answered 200 with a body other
    /// than the expected one.
    pub mismatches: usize,
    /// Requests after the warm-up answered with a status other than 200.
    pub failures: usize,
    /// The status of the last such answer.
    pub failure_status: Option<StatusCode>,
}

impl Sequential {
    fn tally(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Echoed => {}
            Outcome::Mismatch => self.mismatches += 1,
            Outcome::Throttled => {
                self.failures += 1;
                self.failure_status = Some(StatusCode::TOO_MANY_REQUESTS);
            }
            Outcome::Other(status) => {
                self.failures += 1;
                self.failure_status = Some(status);
            }
        }
    }
}

/// The figures of one target's [`Sequential`] requests, as the tables show them.
#[derive(Debug)]
pub struct Latency {
    pub label: String,
    /// The measured requests.
    pub summary: Summary,
    /// The first request of each block, left out of `summary`: it may thaw a frozen sandbox.
    pub firsts: Summary,
    /// 200s whose body was not the expected one.
    pub mismatches: usize,
    /// Answers other than 200, and the status of the last one.
    pub failures: usize,
    pub failure_status: Option<StatusCode>,
}

impl Latency {
    /// Summarises `result`; an error if it measured nothing.
    pub fn of(label: impl Into<String>, result: Sequential) -> anyhow::Result<Self> {
        Ok(Self {
            label: label.into(),
            summary: Summary::of(result.latencies).context("no requests measured")?,
            firsts: Summary::of(result.firsts).context("no rounds")?,
            mismatches: result.mismatches,
            failures: result.failures,
            failure_status: result.failure_status,
        })
    }
}

/// How [`interleaved`] sends its requests.
#[derive(Debug, Clone, Copy)]
pub struct Rounds {
    /// Unmeasured requests per target before the first round.
    pub warmup: usize,
    /// Rounds; each sends one block to every target.
    pub rounds: usize,
    /// Measured requests per block, after its first request.
    pub block: usize,
}

impl Rounds {
    /// `warmup` requests per target, then `rounds` rounds of blocks of 1 + `block`; `quick` cuts
    /// the warm-up and the rounds by 10x, but not the block: it sets how long each target pauses.
    pub fn new(warmup: usize, rounds: usize, block: usize, quick: bool) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            warmup: warmup / scale,
            rounds: rounds / scale,
            block,
        }
    }
}

/// Sequential requests to several servers, each over its own keep-alive connection, measured in
/// interleaved rounds so that drift in the machine's speed spreads evenly over the targets.
///
/// Every target gets `warmup` requests first. Then each round sends a block of `1 + block`
/// requests to every target, one after the other; the order of the targets rotates by one every
/// round. The first request of a block follows a pause of the other targets' blocks: long enough
/// for coldstart to freeze an idle sandbox, which that request then thaws. It is timed apart, in
/// [`Sequential::firsts`]; the other `block` go into [`Sequential::latencies`]. Latency runs from
/// sending the request to the end of the response body.
pub async fn interleaved(
    targets: &[Target],
    payload: &Bytes,
    rounds: Rounds,
) -> anyhow::Result<Vec<Sequential>> {
    let mut senders = Vec::with_capacity(targets.len());
    let mut connections = Vec::with_capacity(targets.len());
    for target in targets {
        let (sender, connection) = connect(target.addr).await?;
        senders.push(sender);
        connections.push(connection);
    }
    let requests = async move {
        let mut results: Vec<Sequential> = targets
            .iter()
            .map(|_| Sequential {
                latencies: Vec::with_capacity(rounds.rounds * rounds.block),
                firsts: Vec::with_capacity(rounds.rounds),
                ..Sequential::default()
            })
            .collect();
        for (target, sender) in targets.iter().zip(&mut senders) {
            for _ in 0..rounds.warmup {
                send(sender, request(target, payload)?, target.exchange, payload).await?;
            }
        }
        for round in 0..rounds.rounds {
            for step in 0..targets.len() {
                let i = (round + step) % targets.len();
                let (target, sender, result) = (&targets[i], &mut senders[i], &mut results[i]);
                for n in 0..=rounds.block {
                    let request = request(target, payload)?;
                    let started = Instant::now();
                    let outcome = send(sender, request, target.exchange, payload).await?;
                    let elapsed = started.elapsed();
                    result.tally(outcome);
                    if n == 0 {
                        result.firsts.push(elapsed);
                    } else {
                        result.latencies.push(elapsed);
                    }
                }
            }
        }
        // Dropping the senders lets the connections close, so `drive_all` below ends.
        drop(senders);
        anyhow::Ok(results)
    };
    // The connections are driven in the same task as the requests: no cross-thread wake-up per
    // request, the same for every server measured.
    let mut connections = pin!(drive_all(connections));
    let results = tokio::select! {
        // Polled in this order, so the requests go on as soon as their answer is in.
        biased;
        // The requests end first in every good run; an error there (a timeout, a broken
        // connection) ends the measurement without waiting for the other connections.
        results = requests => results?,
        ended = &mut connections => {
            ended.context("a connection failed")?;
            bail!("a server closed its connection during the run");
        }
    };
    connections.await.context("a connection failed")?;
    Ok(results)
}

/// Sends one request to `target` on a new connection and returns its latency (from sending the
/// request to the end of the response body; the connection is set up before). Anything but the
/// right answer is an error.
pub async fn first_answer(target: &Target, payload: &Bytes) -> anyhow::Result<Duration> {
    let (mut sender, connection) = connect(target.addr).await?;
    let request = request(target, payload)?;
    let exchange = async move {
        let started = Instant::now();
        let outcome = send(&mut sender, request, target.exchange, payload).await?;
        let elapsed = started.elapsed();
        // Dropping the sender lets the connection close, so the `select!` below ends.
        drop(sender);
        match outcome {
            Outcome::Echoed => Ok(elapsed),
            Outcome::Mismatch => bail!("200 with an unexpected body"),
            Outcome::Throttled => bail!("429: every sandbox was busy"),
            Outcome::Other(status) => bail!("answered {status}"),
        }
    };
    let mut connection = pin!(connection);
    let elapsed = tokio::select! {
        // The answer is polled first; the connection ends before it only when it broke.
        biased;
        elapsed = exchange => elapsed?,
        ended = &mut connection => {
            ended.context("the connection failed")?;
            bail!("the server closed the connection before answering");
        }
    };
    connection.await.context("the connection failed")?;
    Ok(elapsed)
}

/// Drives every connection in the calling task; ends when all have closed or one has failed.
pub async fn drive_all<F>(connections: Vec<F>) -> Result<(), hyper::Error>
where
    F: Future<Output = Result<(), hyper::Error>>,
{
    let mut open: Vec<Pin<Box<F>>> = connections.into_iter().map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        let mut failed = None;
        open.retain_mut(|connection| match connection.as_mut().poll(cx) {
            Poll::Pending => true,
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(err)) => {
                failed = Some(err);
                false
            }
        });
        match failed {
            Some(err) => Poll::Ready(Err(err)),
            None if open.is_empty() => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    })
    .await
}

/// The results of a closed-loop load run with several connections.
#[derive(Debug, Default, Clone)]
pub struct Load {
    /// 200s with the payload as the body: the only answers counted in the rate.
    pub echoed: usize,
    /// 200s with another body.
    pub mismatches: usize,
    /// 429s.
    pub throttled: usize,
    /// Other statuses.
    pub failures: usize,
    /// The status of the last such answer.
    pub failure_status: Option<StatusCode>,
    /// Connections that broke (connect, I/O or timeout errors); each ended its client.
    pub broken: usize,
    /// Why the last of them broke.
    pub broken_reason: Option<String>,
    /// From the start until the last client finished.
    pub elapsed: Duration,
}

impl Load {
    /// Successful (echoed) invokes per second.
    pub fn rate(&self) -> f64 {
        self.echoed as f64 / self.elapsed.as_secs_f64()
    }

    fn add(&mut self, other: Load) {
        self.echoed += other.echoed;
        self.mismatches += other.mismatches;
        self.throttled += other.throttled;
        self.failures += other.failures;
        self.failure_status = other.failure_status.or(self.failure_status);
        self.broken += other.broken;
        self.broken_reason = other.broken_reason.or(self.broken_reason.take());
    }
}

/// Runs `clients` connections, each sending requests back to back, until `total` requests were
/// sent between them or `limit` has passed. 429s are counted, not retried.
pub async fn load(
    target: &Target,
    payload: &Bytes,
    clients: usize,
    total: usize,
    limit: Duration,
) -> Load {
    // Each request takes a ticket first; no more than `total` are handed out.
    let tickets = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (target, payload, tickets) = (target.clone(), payload.clone(), Arc::clone(&tickets));
        tasks.spawn(async move {
            match client(&target, &payload, &tickets, total, deadline).await {
                (tally, None) => tally,
                (tally, Some(err)) => Load {
                    broken: 1,
                    broken_reason: Some(format!("{err:#}")),
                    ..tally
                },
            }
        });
    }
    let mut sum = Load::default();
    while let Some(tally) = tasks.join_next().await {
        // A panicked client counts as a broken connection.
        sum.add(tally.unwrap_or_else(|err| Load {
            broken: 1,
            broken_reason: Some(format!("a client task failed: {err}")),
            ..Load::default()
        }));
    }
    sum.elapsed = started.elapsed();
    sum
}

/// One closed-loop client of [`load`]: its tally, and why its connection broke if it did.
async fn client(
    target: &Target,
    payload: &Bytes,
    tickets: &AtomicUsize,
    total: usize,
    deadline: Instant,
) -> (Load, Option<anyhow::Error>) {
    let mut tally = Load::default();
    let (mut sender, connection) = match connect(target.addr).await {
        Ok(connected) => connected,
        Err(err) => return (tally, Some(err)),
    };
    let requests = async {
        while tickets.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
            let request = request(target, payload)?;
            match send(&mut sender, request, target.exchange, payload).await? {
                Outcome::Echoed => tally.echoed += 1,
                Outcome::Mismatch => tally.mismatches += 1,
                Outcome::Throttled => tally.throttled += 1,
                Outcome::Other(status) => {
                    tally.failures += 1;
                    tally.failure_status = Some(status);
                }
            }
        }
        // Dropping the sender lets the connection close, so the `join!` below ends.
        drop(sender);
        anyhow::Ok(())
    };
    let (connection, requests) = tokio::join!(connection, requests);
    let error = requests
        .err()
        .or_else(|| connection.err().map(anyhow::Error::from));
    (tally, error)
}

/// Opens a keep-alive HTTP/1.1 connection with TCP_NODELAY; the caller drives the returned
/// connection future.
pub async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<(
    SendRequest<Full<Bytes>>,
    http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("could not connect to {addr}"))?;
    stream.set_nodelay(true)?;
    http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")
}

fn request(target: &Target, payload: &Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
    let builder = Request::builder()
        .uri(target.path.as_str())
        .header(header::HOST, target.addr.to_string());
    Ok(match target.exchange {
        Exchange::Echo => builder
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload.clone()))?,
        Exchange::Get => builder.method(Method::GET).body(Full::new(Bytes::new()))?,
    })
}

/// Sends one request and reads the whole answer, within [`REQUEST_LIMIT`]; `exchange` says
/// which answer is right.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    exchange: Exchange,
    payload: &Bytes,
) -> anyhow::Result<Outcome> {
    let answer = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    let (status, body) = tokio::time::timeout(REQUEST_LIMIT, answer)
        .await
        .with_context(|| format!("no answer within {REQUEST_LIMIT:?}"))??;
    Ok(match status {
        StatusCode::OK if exchange == Exchange::Get || body == *payload => Outcome::Echoed,
        StatusCode::OK => Outcome::Mismatch,
        StatusCode::TOO_MANY_REQUESTS => Outcome::Throttled,
        other => Outcome::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_100_bytes_of_json() {
        let payload = payload();
        assert_eq!(payload.len(), PAYLOAD_LEN);
        assert!(payload.starts_with(b"{\"") && payload.ends_with(b"\"}"));
    }
}

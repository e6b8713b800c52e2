//! The one HTTP/1.1 client every scenario measures with (hyper, keep-alive, TCP_NODELAY, one
//! request at a time per connection, on a single-thread runtime), the ways it sends: interleaved
//! rounds of sequential requests, a closed-loop load of several clients, one request on a new
//! connection; and the loopback floor, a bare hyper echo server, the fastest answer this client
//! can get.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::core::stats::Summary;

/// Size of the JSON payload of every invoke.
pub const PAYLOAD_LEN: usize = 100;
/// The longest one request may take before the run is declared broken.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(10);
/// A client connection's request half.
pub type Sender = SendRequest<Full<Bytes>>;

/// The clients' runtime: one thread that drives every socket itself, so that a request pays no
/// cross-thread wake-up and every server measured carries the same client costs.
pub fn runtime() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the client's runtime")
}

/// A JSON object of exactly [`PAYLOAD_LEN`] bytes that an echo function returns byte for byte.
pub fn payload() -> Bytes {
    const HEAD: &str = r#"{"message":""#;
    const TAIL: &str = r#""}"#;
    let filler = "x".repeat(PAYLOAD_LEN - HEAD.len() - TAIL.len());
    Bytes::from(format!("{HEAD}{filler}{TAIL}"))
}

/// Where requests go and what is right.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub addr: SocketAddr,
    pub path: String,
    /// POST (with the payload as a JSON body) or GET.
    pub method: Method,
    /// The payload must come back (an echo); otherwise any 2xx is right.
    pub echo: bool,
}

impl Target {
    fn new(
        label: impl Into<String>,
        addr: SocketAddr,
        path: impl Into<String>,
        method: Method,
        echo: bool,
    ) -> Self {
        let (label, path) = (label.into(), path.into());
        Self {
            label,
            addr,
            path,
            method,
            echo,
        }
    }

    /// POSTs of the payload to `path`, which must come back.
    pub fn echo(label: impl Into<String>, addr: SocketAddr, path: impl Into<String>) -> Self {
        Self::new(label, addr, path, Method::POST, true)
    }

    /// POSTs of the payload to `path`; any 2xx is right.
    pub fn post(label: impl Into<String>, addr: SocketAddr, path: impl Into<String>) -> Self {
        Self::new(label, addr, path, Method::POST, false)
    }

    /// GETs of `path`; any 2xx is right.
    pub fn get(label: impl Into<String>, addr: SocketAddr, path: impl Into<String>) -> Self {
        Self::new(label, addr, path, Method::GET, false)
    }

    fn request(&self, payload: &Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
        let builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(header::HOST, self.addr.to_string());
        Ok(if self.method == Method::POST {
            builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(payload.clone()))?
        } else {
            builder.body(Full::new(Bytes::new()))?
        })
    }
}

/// What one request got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx (for an echo, 200 with the payload as the body).
    Right,
    /// 200 with another body than an echo's.
    Mismatch,
    /// Any other status (429: every sandbox was busy).
    Status(StatusCode),
}

/// The figures of one target's sequential requests.
#[derive(Debug)]
pub struct Latency {
    pub label: String,
    /// The measured requests.
    pub summary: Summary,
    /// The first request of each block, left out of `summary`: it may thaw a frozen sandbox.
    pub firsts: Summary,
    /// 200s with the wrong body, and other answers with the last status; discarded ones too.
    pub mismatches: usize,
    pub failures: usize,
    pub failure_status: Option<StatusCode>,
}

/// How interleaved rounds send their requests.
#[derive(Debug, Clone, Copy)]
pub struct Rounds {
    /// Unmeasured requests per target before the first round.
    pub warmup: usize,
    /// Rounds; each sends one block to every target, the order rotated by one every round.
    pub rounds: usize,
    /// Requests per block after its first (0: one request per target per round, none discarded).
    pub block: usize,
}

/// Sequential requests to several servers, each on its own keep-alive connection, in
/// interleaved rounds so that drift in the machine's speed spreads evenly over the targets:
/// `warmup` each, then every round sends `1 + block` requests to every target in turn. `once`
/// sends one request to target `i` and measures it; the samples after the warm-up come back per
/// target, in order. The connections are driven in the requests' own task: no cross-thread
/// wake-up per request.
pub async fn interleave<T>(
    addrs: &[SocketAddr],
    rounds: Rounds,
    once: impl AsyncFn(&mut Sender, usize) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<Vec<T>>> {
    let mut senders = Vec::with_capacity(addrs.len());
    let mut connections = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let (sender, connection) = connect(addr).await?;
        senders.push(sender);
        connections.push(connection);
    }
    let requests = async move {
        for (i, sender) in senders.iter_mut().enumerate() {
            for _ in 0..rounds.warmup {
                once(sender, i).await?;
            }
        }
        let mut samples: Vec<Vec<T>> = addrs.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds.rounds {
            for step in 0..addrs.len() {
                let i = (round + step) % addrs.len();
                for _ in 0..=rounds.block {
                    samples[i].push(once(&mut senders[i], i).await?);
                }
            }
        }
        // Dropping the senders lets the connections close, so `drive_all` below ends.
        drop(senders);
        anyhow::Ok(samples)
    };
    let mut connections = pin!(drive_all(connections));
    let samples = tokio::select! {
        // Polled first, so the requests go on as soon as their answer is in.
        biased;
        // The requests end first in every good run; a failed one ends the measurement.
        samples = requests => samples?,
        ended = &mut connections => {
            ended.context("a connection failed")?;
            bail!("a server closed its connection during the run");
        }
    };
    connections.await.context("a connection failed")?;
    Ok(samples)
}

/// [`interleave`] of plain requests to `targets`, each timed from sending to the end of the
/// body; the first of each block is summarised apart.
pub async fn sequential(
    targets: &[Target],
    payload: &Bytes,
    rounds: Rounds,
) -> anyhow::Result<Vec<Latency>> {
    let addrs: Vec<SocketAddr> = targets.iter().map(|t| t.addr).collect();
    let samples = interleave(&addrs, rounds, async |sender, i| {
        let started = Instant::now();
        let outcome = send(sender, targets[i].request(payload)?, &targets[i], payload).await?;
        Ok((started.elapsed(), outcome))
    })
    .await?;
    targets
        .iter()
        .zip(samples)
        .map(|(target, samples)| {
            let (mut latencies, mut firsts) = (Vec::new(), Vec::new());
            let mut latency = Latency {
                label: target.label.clone(),
                summary: Summary::ZERO,
                firsts: Summary::ZERO,
                mismatches: 0,
                failures: 0,
                failure_status: None,
            };
            for (n, (took, outcome)) in samples.into_iter().enumerate() {
                if n % (rounds.block + 1) == 0 && rounds.block > 0 {
                    firsts.push(took);
                } else {
                    latencies.push(took);
                }
                match outcome {
                    Outcome::Right => {}
                    Outcome::Mismatch => latency.mismatches += 1,
                    Outcome::Status(status) => {
                        latency.failures += 1;
                        latency.failure_status = Some(status);
                    }
                }
            }
            latency.summary = Summary::of(latencies).context("no requests measured")?;
            latency.firsts = Summary::of(firsts).unwrap_or(Summary::ZERO);
            Ok(latency)
        })
        .collect()
}

/// One request to `target` on a new connection, timed from sending it to the end of the body
/// (the connection is open before); anything but the right answer is an error.
pub async fn first_answer(target: &Target, payload: &Bytes) -> anyhow::Result<Duration> {
    let mut http = Http::connect(target.addr).await?;
    let started = Instant::now();
    let outcome = send(&mut http.sender, target.request(payload)?, target, payload).await?;
    let took = started.elapsed();
    match outcome {
        Outcome::Right => Ok(took),
        Outcome::Mismatch => bail!("{}: 200 with an unexpected body", target.label),
        Outcome::Status(status) => bail!("{}: answered {status}", target.label),
    }
}

/// Drives every connection in the calling task; ends when all have closed or one has failed.
async fn drive_all<F>(connections: Vec<F>) -> Result<(), hyper::Error>
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

/// What a closed-loop load run got.
#[derive(Debug, Default, Clone)]
pub struct Load {
    /// Right answers: the only ones counted in the rate.
    pub right: usize,
    pub mismatches: usize,
    /// 429s (every sandbox busy), counted, not retried.
    pub throttled: usize,
    /// Other statuses, and the last one.
    pub failures: usize,
    pub failure_status: Option<StatusCode>,
    /// Connections that broke (each ended its client), and why the last did.
    pub broken: usize,
    pub broken_reason: Option<String>,
    /// From the start until the last client finished.
    pub elapsed: Duration,
}

impl Load {
    /// Requests sent.
    pub fn sent(&self) -> usize {
        self.right + self.mismatches + self.throttled + self.failures
    }

    /// Right answers per second.
    pub fn rate(&self) -> f64 {
        self.right as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn tally(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Right => self.right += 1,
            Outcome::Mismatch => self.mismatches += 1,
            Outcome::Status(StatusCode::TOO_MANY_REQUESTS) => self.throttled += 1,
            Outcome::Status(status) => {
                self.failures += 1;
                self.failure_status = Some(status);
            }
        }
    }

    fn add(&mut self, other: Load) {
        self.right += other.right;
        self.mismatches += other.mismatches;
        self.throttled += other.throttled;
        self.failures += other.failures;
        self.failure_status = other.failure_status.or(self.failure_status);
        self.broken += other.broken;
        self.broken_reason = other.broken_reason.or(self.broken_reason.take());
    }
}

/// `clients` connections to the server of `targets` (one server, several paths), each sending
/// back to back, until `total` requests were sent between them or `limit` has passed; the n-th
/// request goes to `targets[n % len]`.
pub async fn load(
    targets: &[Target],
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
        let (targets, payload, tickets) = (targets.to_vec(), payload.clone(), tickets.clone());
        tasks.spawn(async move {
            let mut tally = Load::default();
            let run = async {
                let mut http = Http::connect(targets[0].addr).await?;
                loop {
                    let n = tickets.fetch_add(1, Ordering::Relaxed);
                    if n >= total || Instant::now() >= deadline {
                        break;
                    }
                    let target = &targets[n % targets.len()];
                    let request = target.request(&payload)?;
                    tally.tally(send(&mut http.sender, request, target, &payload).await?);
                }
                anyhow::Ok(())
            };
            if let Err(err) = run.await {
                tally.broken = 1;
                tally.broken_reason = Some(format!("{err:#}"));
            }
            tally
        });
    }
    let mut sum = Load::default();
    while let Some(tally) = tasks.join_next().await {
        sum.add(tally.unwrap_or_else(|err| Load {
            broken: 1,
            broken_reason: Some(format!("a client task failed: {err}")),
            ..Load::default()
        }));
    }
    sum.elapsed = started.elapsed();
    sum
}

/// Opens a keep-alive HTTP/1.1 connection with TCP_NODELAY; the caller drives the connection.
pub async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<(Sender, http1::Connection<TokioIo<TcpStream>, Full<Bytes>>)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("could not connect to {addr}"))?;
    stream.set_nodelay(true)?;
    http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")
}

/// Sends one request and reads the whole answer within [`REQUEST_LIMIT`].
async fn send(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
    target: &Target,
    payload: &Bytes,
) -> anyhow::Result<Outcome> {
    let (status, body) = exchange(sender, request).await?;
    Ok(match status {
        status if status.is_success() && (!target.echo || body == *payload) => Outcome::Right,
        StatusCode::OK => Outcome::Mismatch,
        other => Outcome::Status(other),
    })
}

/// Sends `request` and reads the status and the whole body, within [`REQUEST_LIMIT`].
pub async fn exchange(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let answer = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(REQUEST_LIMIT, answer)
        .await
        .with_context(|| format!("no answer within {REQUEST_LIMIT:?}"))?
}

/// A keep-alive connection whose connection half runs as a task of its own (ends when this is
/// dropped), for requests sent from several tasks.
#[derive(Debug)]
pub struct Http {
    pub addr: SocketAddr,
    pub sender: Sender,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let (sender, connection) = connect(addr).await?;
        // Ends when `sender` is dropped or the server closes.
        tokio::spawn(connection);
        Ok(Self { addr, sender })
    }

    /// `method path` with `body` (as `text/plain` when there is one); the status, the headers and
    /// the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, http::HeaderMap, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "text/plain");
        }
        let request = request.body(Full::new(body))?;
        let answer = async {
            self.sender.ready().await?;
            let (parts, body) = self.sender.send_request(request).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            anyhow::Ok((parts.status, parts.headers, body))
        };
        tokio::time::timeout(REQUEST_LIMIT, answer)
            .await
            .with_context(|| format!("no answer within {REQUEST_LIMIT:?}"))?
    }
}

/// The loopback floor: a bare hyper HTTP/1.1 server answering every request with its body, on a
/// thread of its own with a two-worker runtime (so that, like coldstart, it does not share the
/// client's scheduler). Dropping it stops it.
#[derive(Debug)]
pub struct Floor {
    pub addr: SocketAddr,
    /// The accept loop holds the receiver; dropping this stops it.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Floor {
    /// The row label of the floor.
    pub const LABEL: &'static str = "loopback floor (bare hyper echo)";

    pub fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the floor")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let serve = async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            loop {
                // A new connection, or the order to stop (a send or a dropped sender).
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => return,
                    },
                    _ = &mut stopped => return,
                };
                let _ = stream.set_nodelay(true);
                let service = service_fn(|request: Request<Incoming>| async move {
                    let body = request.into_body().collect().await?.to_bytes();
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, hyper::Error>(response)
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(connection);
            }
        };
        let thread = thread::Builder::new()
            .name("floor".into())
            .spawn(move || runtime.block_on(serve))?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_echoes_in_interleaved_rounds_and_under_load() {
        let floor = Floor::start().expect("the floor");
        let rt = runtime().expect("a runtime");
        let payload = payload();
        assert_eq!(payload.len(), PAYLOAD_LEN);
        let targets = [
            Target::echo("a", floor.addr, "/"),
            Target::get("b", floor.addr, "/"),
        ];
        let rounds = Rounds {
            warmup: 2,
            rounds: 3,
            block: 4,
        };
        let rows = rt
            .block_on(sequential(&targets, &payload, rounds))
            .expect("measured");
        assert_eq!((rows[0].summary.count, rows[0].firsts.count), (12, 3));
        assert_eq!(rows[1].mismatches + rows[1].failures, 0);
        let load = rt.block_on(load(
            &targets[..1],
            &payload,
            2,
            50,
            Duration::from_secs(10),
        ));
        assert_eq!((load.right, load.broken), (50, 0));
    }
}

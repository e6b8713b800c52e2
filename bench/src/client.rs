//! The load generator: HTTP/1.1 POSTs over keep-alive hyper connections, one request at a time
//! per connection.
//!
//! Every measurement of the invoke path (the floor and both runtimes) goes through this one
//! client, so the figures differ only by the server they hit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Size of the JSON payload of every request.
pub const PAYLOAD_LEN: usize = 100;
/// The longest one request may take before the run is declared broken.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// A JSON object of exactly [`PAYLOAD_LEN`] bytes that an echo function returns byte for byte
/// (one key, no whitespace: serde_json writes it back unchanged).
pub fn payload() -> Bytes {
    const HEAD: &str = r#"{"message":""#;
    const TAIL: &str = r#""}"#;
    let filler = "x".repeat(PAYLOAD_LEN - HEAD.len() - TAIL.len());
    Bytes::from(format!("{HEAD}{filler}{TAIL}"))
}

/// Where the requests go: a server's address and the request path.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
}

/// What one request got back.
enum Outcome {
    /// 200 with the payload as the body.
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
    /// Latency of each measured request (warm-up excluded), whatever its outcome.
    pub latencies: Vec<Duration>,
    /// Measured requests answered 200 with a body other than the payload.
    pub mismatches: usize,
    /// Measured requests answered with a status other than 200.
    pub failures: usize,
    /// The status of the last such answer.
    pub failure_status: Option<StatusCode>,
}

/// Sends `warmup` then `count` requests one after the other on one keep-alive connection and
/// times the measured ones, from sending the request to the end of the response body.
pub async fn sequential(
    target: &Target,
    payload: &Bytes,
    warmup: usize,
    count: usize,
) -> anyhow::Result<Sequential> {
    let (mut sender, connection) = connect(target.addr).await?;
    let requests = async move {
        let mut result = Sequential {
            latencies: Vec::with_capacity(count),
            ..Sequential::default()
        };
        for i in 0..warmup + count {
            let request = request(target, payload)?;
            let started = Instant::now();
            let outcome = send(&mut sender, request, payload).await?;
            let elapsed = started.elapsed();
            if i < warmup {
                continue;
            }
            result.latencies.push(elapsed);
            match outcome {
                Outcome::Echoed => {}
                Outcome::Mismatch => result.mismatches += 1,
                Outcome::Throttled => {
                    result.failures += 1;
                    result.failure_status = Some(StatusCode::TOO_MANY_REQUESTS);
                }
                Outcome::Other(status) => {
                    result.failures += 1;
                    result.failure_status = Some(status);
                }
            }
        }
        // Dropping the sender lets the connection close, so the `join!` below ends.
        drop(sender);
        anyhow::Ok(result)
    };
    // The connection is driven in the same task as the requests: no cross-thread wake-up per
    // request, the same for every server measured.
    let (connection, result) = tokio::join!(connection, requests);
    let result = result?;
    connection.context("the connection failed")?;
    Ok(result)
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
            match send(&mut sender, request(target, payload)?, payload).await? {
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
async fn connect(
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
    Ok(Request::post(target.path.as_str())
        .header(header::HOST, target.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(payload.clone()))?)
}

/// Sends one request and reads the whole answer, within [`REQUEST_LIMIT`].
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    payload: &Bytes,
) -> anyhow::Result<Outcome> {
    let exchange = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    let (status, body) = tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .with_context(|| format!("no answer within {REQUEST_LIMIT:?}"))??;
    Ok(match status {
        StatusCode::OK if body == *payload => Outcome::Echoed,
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

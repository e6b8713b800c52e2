//! Waiting for the app to be ready: an HTTP `GET` of the readiness path until it answers a healthy
//! status, or a TCP connect, retried every 10 ms as the Lambda Web Adapter does — after a first
//! millisecond-spaced burst, since most apps listen within a few milliseconds of starting.
//!
//! This is the one place the adapter polls: an app gives no signal when it starts listening, and a
//! refused connection costs microseconds on loopback. Until the check passes the adapter does not
//! ask Lambda for work, so an app that starts listening late sees no failed first request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, header};
use tokio::net::TcpStream;

use crate::client::{self, Body};
use crate::config::{Protocol, Readiness};

/// Pause between two readiness checks, once the app has had [`EAGER`] to start.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// Pause between two readiness checks at first: a 10 ms pause after the first refused check
/// made the cold start of a typical app (listening ~1 ms after exec) 14 ms instead of ~3 ms.
const EAGER_INTERVAL: Duration = Duration::from_millis(1);

/// How long the checks come every [`EAGER_INTERVAL`].
const EAGER: Duration = Duration::from_millis(20);

/// The first "not ready yet" message comes after this long; each later one after twice as long.
const FIRST_COMPLAINT: Duration = Duration::from_secs(2);

/// Returns once the app passes the readiness check. Never gives up: the caller bounds it (Lambda's
/// init limit, the app's exit, `AWS_LWA_ASYNC_INIT`'s budget).
pub async fn wait(readiness: &Readiness) {
    let started = Instant::now();
    let mut complain_at = FIRST_COMPLAINT;
    loop {
        if check(readiness).await {
            return;
        }
        let waited = started.elapsed();
        if waited >= complain_at {
            eprintln!(
                "coldstart-adapter: the app is not ready after {} ms ({})",
                waited.as_millis(),
                describe(readiness)
            );
            complain_at *= 2;
        }
        let pause = if waited < EAGER {
            EAGER_INTERVAL
        } else {
            INTERVAL
        };
        tokio::time::sleep(pause).await;
    }
}

/// One readiness check.
pub async fn check(readiness: &Readiness) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], readiness.port));
    match readiness.protocol {
        Protocol::Tcp => TcpStream::connect(addr).await.is_ok(),
        Protocol::Http => {
            let request = Request::builder()
                .method(Method::GET)
                .uri(readiness.path.as_str())
                .header(header::HOST, addr.to_string())
                .body(Body::new(Bytes::new()));
            let Ok(request) = request else {
                return false;
            };
            match client::exchange(addr, request).await {
                Ok((status, _, _)) => readiness.healthy.contains(status.as_u16()),
                Err(_) => false,
            }
        }
    }
}

/// What is checked, for messages.
pub fn describe(readiness: &Readiness) -> String {
    match readiness.protocol {
        Protocol::Http => format!("GET http://127.0.0.1:{}{}", readiness.port, readiness.path),
        Protocol::Tcp => format!("TCP connect to 127.0.0.1:{}", readiness.port),
    }
}

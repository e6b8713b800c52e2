//! Spawn → first `next`: how long a function binary takes from `spawn()` until its runtime asks
//! the Runtime API for work. This is the runtime library's share of a cold start.
//!
//! A stub Runtime API server (hyper, `127.0.0.1:0`) records when
//! `GET /2018-06-01/runtime/invocation/next` arrives and then holds the request open, as Lambda
//! does while there is no work, until the process is killed.

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use coldstart_protocol::{env, invoke, runtime};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use crate::core::process::{NoBanner, Server};

/// The longest a function may take to call `next`.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// Spawns `program` as a Lambda runtime against a fresh stub Runtime API and returns the time from
/// just before `spawn()` to the arrival of its first `next`. The process is killed before this
/// returns.
pub async fn time_to_first_next(program: &Path) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the stub Runtime API")?;
    let addr = listener.local_addr()?;
    // The stub holds the sender; it sends the arrival instant of each `next`.
    let (next_tx, mut next_rx) = mpsc::unbounded_channel();
    // Dropping the handle aborts the accept loop, which drops (aborts) every connection it serves.
    let _stub = AbortOnDropHandle::new(tokio::spawn(serve(listener, next_tx)));

    let mut command = Command::new(program);
    command
        .env_clear()
        .env(env::RUNTIME_API, addr.to_string())
        .env(env::FUNCTION_NAME, "bench")
        .env(env::FUNCTION_MEMORY_SIZE, "128")
        .env(env::FUNCTION_VERSION, invoke::LATEST);
    let started = Instant::now();
    let (process, _) = Server::spawn("the function", command, NoBanner(&[]))?;
    let arrived = tokio::time::timeout(STARTUP_LIMIT, next_rx.recv()).await;
    drop(process);
    match arrived {
        Ok(Some(arrived)) => Ok(arrived.duration_since(started)),
        Ok(None) => anyhow::bail!("the stub Runtime API stopped"),
        Err(_) => anyhow::bail!(
            "{} did not call next within {STARTUP_LIMIT:?}",
            program.display()
        ),
    }
}

/// Serves every connection of `listener` until aborted.
async fn serve(listener: TcpListener, next: mpsc::UnboundedSender<Instant>) {
    // Owned here so that aborting this task drops, and so aborts, every connection.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let next = next.clone();
        let service = service_fn(move |request| arrive(request, next.clone()));
        connections.spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

/// Records a `next` and never answers it; anything else is 404.
async fn arrive(
    request: Request<Incoming>,
    next: mpsc::UnboundedSender<Instant>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    if request.method() == Method::GET && request.uri().path() == runtime::NEXT_PATH {
        // The receiver is gone only when the measurement is over.
        let _ = next.send(arrived);
        return Ok(std::future::pending().await);
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NOT_FOUND;
    Ok(response)
}

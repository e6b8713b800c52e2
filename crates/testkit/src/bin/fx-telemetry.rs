//! A fixture external extension that subscribes to the Telemetry API as vendors' extensions do:
//! it starts an HTTP listener, registers for `INVOKE` and `SHUTDOWN`, subscribes the listener
//! (`http://sandbox.localdomain:PORT/telemetry`, every stream, 25 ms batches) and prints each
//! event it receives as one line, `TELEMETRY {json}`; it exits on `SHUTDOWN`.
//!
//! Its own printed lines come back to it as `extension` records; those starting with
//! `TELEMETRY ` are not printed again, so nothing loops. `TELEMETRY_DEAD=1` makes the listener
//! accept connections and never answer (a subscriber that hangs). `TELEMETRY_API=logs` subscribes
//! through the older Logs API (`PUT /2020-08-15/logs`, schema `2021-03-18`) instead;
//! `TELEMETRY_PROTOCOL=TCP` subscribes a TCP listener (`tcp://sandbox.localdomain:PORT`), which
//! reads newline-delimited JSON. With `TELEMETRY_READY_FIFO=PATH`
//! it opens that FIFO for writing once subscribed and closes it, which wakes a reader waiting to
//! fail on cue. `TELEMETRY_QUIET=1` prints (and parses) nothing it receives, and `TELEMETRY_EVENTS=SHUTDOWN`
//! registers for `SHUTDOWN` only, so that it costs an invocation nothing but its subscription
//! (the benchmark's subscriber).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use coldstart_protocol::extension as ext;
use coldstart_protocol::telemetry as tm;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Sends one request on a fresh connection; returns the status, headers and body.
async fn call(
    api: SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, http::HeaderMap, Bytes), Failure> {
    let stream = tokio::net::TcpStream::connect(api).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status.as_u16(), parts.headers, body))
}

/// `TELEMETRY_QUIET=1`: what arrives is read and not even parsed.
fn quiet() -> bool {
    static QUIET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *QUIET.get_or_init(|| std::env::var("TELEMETRY_QUIET").is_ok_and(|v| v == "1"))
}

/// Prints `event`, unless it is the echo of its own printing.
fn print(event: &Value) {
    let echo = event["type"] == "extension"
        && event["record"]
            .as_str()
            .is_some_and(|r| r.starts_with("TELEMETRY "));
    if !echo {
        println!("TELEMETRY {event}");
    }
}

/// Prints every event of a batch.
async fn receive(req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !quiet() {
        let events: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        events.iter().for_each(print);
    }
    Ok(http::Response::new(Full::new(Bytes::new())))
}

/// Prints every event that arrives over TCP, one JSON document a line.
async fn receive_lines(stream: tokio::net::TcpStream) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if quiet() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(event) => print(&event),
            Err(err) => println!("TELEMETRY-BAD-LINE {err}: {line}"),
        }
    }
}

async fn listen(listener: tokio::net::TcpListener, dead: bool, tcp: bool) {
    while let Ok((stream, _)) = listener.accept().await {
        if tcp {
            tokio::spawn(receive_lines(stream));
            continue;
        }
        if dead {
            // Hold the connection open and never answer.
            tokio::spawn(async move {
                let _held = stream;
                std::future::pending::<()>().await;
            });
            continue;
        }
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(receive)),
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let api: SocketAddr = std::env::var("AWS_LAMBDA_RUNTIME_API")?.parse()?;
    let name = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let dead = std::env::var("TELEMETRY_DEAD").is_ok_and(|v| v == "1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let tcp = std::env::var("TELEMETRY_PROTOCOL").is_ok_and(|v| v == "TCP");
    tokio::spawn(listen(listener, dead, tcp));

    let host = api.to_string();
    let register = http::Request::post(ext::REGISTER_PATH)
        .header(http::header::HOST, &host)
        .header(ext::NAME, &name)
        .body(Full::new(Bytes::from_static(
            if std::env::var("TELEMETRY_EVENTS").is_ok_and(|v| v == "SHUTDOWN") {
                br#"{"events":["SHUTDOWN"]}"#
            } else {
                br#"{"events":["INVOKE","SHUTDOWN"]}"#
            },
        )))?;
    let (_, headers, _) = call(api, register).await?;
    let id = headers
        .get(ext::IDENTIFIER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();

    let logs_api = std::env::var("TELEMETRY_API").is_ok_and(|v| v == "logs");
    let (path, schema) = if logs_api {
        (ext::LOGS_PATH, "2021-03-18")
    } else {
        (tm::SUBSCRIBE_PATH, "2022-12-13")
    };
    let subscription = serde_json::json!({
        "schemaVersion": schema,
        "destination": if tcp {
            serde_json::json!({"protocol": "TCP", "URI": format!("tcp://{}:{port}", tm::SANDBOX_HOST)})
        } else {
            serde_json::json!({"protocol": "HTTP", "URI": format!("http://{}:{port}/telemetry", tm::SANDBOX_HOST)})
        },
        "types": ["platform", "function", "extension"],
        "buffering": {"maxItems": 1000, "maxBytes": 262_144, "timeoutMs": 25},
    });
    let subscribe = http::Request::put(path)
        .header(http::header::HOST, &host)
        .header(ext::IDENTIFIER, &id)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(subscription.to_string())))?;
    let (status, _, body) = call(api, subscribe).await?;
    println!(
        "TELEMETRY-SUBSCRIBED {status} {}",
        String::from_utf8_lossy(&body)
    );
    if let Ok(fifo) = std::env::var("TELEMETRY_READY_FIFO") {
        // Opening a FIFO to write blocks until its reader opens it: off the listener's thread.
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().write(true).open(fifo).map(drop)
        })
        .await??;
    }

    loop {
        let next = http::Request::get(ext::NEXT_PATH)
            .header(http::header::HOST, &host)
            .header(ext::IDENTIFIER, &id)
            .body(Full::new(Bytes::new()))?;
        let (_, _, event) = call(api, next).await?;
        let event: Value = serde_json::from_slice(&event)?;
        if event["eventType"] == "SHUTDOWN" {
            return Ok(());
        }
    }
}

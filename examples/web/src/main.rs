//! An ordinary axum web app that knows nothing about Lambda: `coldstart-adapter` (an extension
//! layer on AWS, an `extensions` entry under `coldstart up`) turns invocations into requests to it.
//!
//! It listens on `127.0.0.1:$AWS_LWA_PORT` (or `$PORT`; default 8080) and serves:
//! - `GET /` — what is here, as text;
//! - `GET /health` — `ok` (the adapter's readiness check);
//! - `GET /hello/{name}` — a JSON greeting;
//! - `GET /bytes/{n}` — `n` bytes counting 0..=255 over and over, `application/octet-stream`;
//! - `GET /stream?n=5` — `n` lines, one every 100 ms, each sent as it is written;
//! - `GET /cookies` — two `Set-Cookie` headers.
//!
//! Locally: `coldstart up`, then `curl -N 'http://127.0.0.1:9003/stream?n=10'` shows the lines
//! arriving one by one through a `RESPONSE_STREAM` Function URL. Deployed with `template.yaml`,
//! the same binary is the function's bootstrap and the adapter comes as a layer.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// The port when neither `PORT` nor `AWS_LWA_PORT` is set.
const DEFAULT_PORT: u16 = 8080;
/// Time between two lines of `/stream`.
const LINE_INTERVAL: Duration = Duration::from_millis(100);
/// Most lines `/stream` sends.
const MAX_LINES: u32 = 1_000;
/// Most bytes `/bytes/{n}` sends.
const MAX_BYTES: usize = 5 * 1024 * 1024;

/// The app's routes.
fn app() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/health", get(|| async { "ok" }))
        .route("/hello/{name}", get(hello))
        .route("/bytes/{n}", get(bytes))
        .route("/stream", get(stream))
        .route("/cookies", get(cookies))
}

async fn index() -> &'static str {
    "coldstart web example: /hello/{name}, /bytes/{n}, /stream?n=5, /cookies, /health\n"
}

#[derive(Debug, Serialize)]
struct Greeting {
    message: String,
    name: String,
}

async fn hello(Path(name): Path<String>) -> axum::Json<Greeting> {
    axum::Json(Greeting {
        message: format!("Hello, {name}!"),
        name,
    })
}

async fn bytes(Path(n): Path<usize>) -> Response {
    if n > MAX_BYTES {
        return (
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_BYTES} bytes\n"),
        )
            .into_response();
    }
    let body: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

#[derive(Debug, Deserialize)]
struct StreamParams {
    /// How many lines. Default: 5.
    n: Option<u32>,
}

async fn stream(Query(params): Query<StreamParams>) -> Response {
    let lines = params.n.unwrap_or(5).min(MAX_LINES);
    let chunks = futures_util::stream::unfold(1, move |line| async move {
        if line > lines {
            return None;
        }
        if line > 1 {
            tokio::time::sleep(LINE_INTERVAL).await;
        }
        let chunk = Bytes::from(format!("line {line} of {lines}\n"));
        Some((Ok::<_, std::convert::Infallible>(chunk), line + 1))
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

async fn cookies() -> impl IntoResponse {
    // Appended, not inserted: a header array would keep only the last cookie.
    (
        AppendHeaders([
            (header::SET_COOKIE, "visited=yes; Path=/"),
            (header::SET_COOKIE, "theme=dark; Path=/; Max-Age=3600"),
        ]),
        "two cookies set\n",
    )
}

/// The port to listen on: `AWS_LWA_PORT`, else `PORT`, else 8080 (the adapter's order).
fn port() -> Result<u16, String> {
    for name in ["AWS_LWA_PORT", "PORT"] {
        if let Ok(value) = std::env::var(name) {
            return value
                .trim()
                .parse()
                .map_err(|_| format!("{name}={value:?} is not a port number"));
        }
    }
    Ok(DEFAULT_PORT)
}

/// Resolves on SIGTERM (Lambda, `coldstart`) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port = match port() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("web: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("web: cannot listen on {addr}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("web: listening on http://{addr}");
    match axum::serve(listener, app())
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("web: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A response read off the wire: status, header lines (names lower-cased), body.
    struct Wire {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Wire {
        fn all(&self, name: &str) -> Vec<&str> {
            self.headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        }
    }

    /// Serves the app on `127.0.0.1:0` and sends one `GET path` with `Connection: close`.
    async fn get(path: &str) -> Wire {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move { axum::serve(listener, app()).await });
        let mut socket = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        socket
            .write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut raw = Vec::new();
        socket
            .read_to_end(&mut raw)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        parse(&raw)
    }

    fn parse(raw: &[u8]) -> Wire {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end"));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
        {
            body = dechunk(&body);
        }
        Wire {
            status,
            headers,
            body,
        }
    }

    fn dechunk(mut raw: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = raw
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or_else(|| panic!("bad chunk"));
            let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16)
                .unwrap_or_else(|e| panic!("{e}"));
            if size == 0 {
                return body;
            }
            let start = line_end + 2;
            body.extend_from_slice(&raw[start..start + size]);
            raw = &raw[start + size + 2..];
        }
    }

    #[tokio::test]
    async fn hello_answers_json() {
        let r = get("/hello/lambda").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.all("content-type"), ["application/json"]);
        let json: serde_json::Value =
            serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json,
            serde_json::json!({"message": "Hello, lambda!", "name": "lambda"})
        );
    }

    #[tokio::test]
    async fn bytes_count_and_wrap() {
        let r = get("/bytes/600").await;
        assert_eq!(r.all("content-type"), ["application/octet-stream"]);
        let expected: Vec<u8> = (0..600).map(|i| (i % 256) as u8).collect();
        assert_eq!(r.body, expected);
        assert_eq!(get("/bytes/99999999").await.status, 400);
    }

    #[tokio::test]
    async fn stream_sends_n_lines_chunked() {
        let r = get("/stream?n=3").await;
        assert_eq!(r.all("transfer-encoding"), ["chunked"]);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "line 1 of 3\nline 2 of 3\nline 3 of 3\n"
        );
    }

    #[tokio::test]
    async fn cookies_and_health() {
        let r = get("/cookies").await;
        assert_eq!(
            r.all("set-cookie"),
            ["visited=yes; Path=/", "theme=dark; Path=/; Max-Age=3600"]
        );
        let health = get("/health").await;
        assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));
    }
}

//! The harness: an emulator in this process running the adapter as a real sandbox process, a web
//! app in this process for the adapter to forward to, and HTTP helpers for the Function URL front
//! door.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use bytes::Bytes;
use coldstart_emulator::{
    Emulator, FunctionConfig, InvokeMode, InvokeRequest, LogSink, Outcome, Settings,
    serve_function_url,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The longest a test waits for anything it expects to happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The function's name in every test.
pub const FUNCTION: &str = "web";

/// The adapter binary under test.
pub fn adapter() -> OsString {
    env!("CARGO_BIN_EXE_coldstart-adapter").into()
}

/// A file under `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A fixture event, parsed.
pub fn event(name: &str) -> Value {
    let path = fixture(&format!("events/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A port nobody listens on right now (for an app the adapter starts itself).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port()
}

/// Collects every log line of the sandboxes and lets tests wait for one.
#[derive(Default)]
pub struct Logs {
    lines: Mutex<Vec<String>>,
    added: Notify,
}

impl LogSink for Logs {
    fn line(&self, function: &str, line: &str) {
        // Shown with the test's output when it fails.
        eprintln!("[{function}] {line}");
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line.to_owned());
        }
        self.added.notify_waiters();
    }
}

impl Logs {
    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (at most [`PATIENCE`]) for a line containing `needle`, and returns it.
    pub async fn wait_for(&self, needle: &str) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.added.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(line) = self.all().into_iter().find(|l| l.contains(needle)) {
                    return line;
                }
                notified.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no log line with {needle:?}; got:\n{:#?}", self.all()))
    }
}

/// A function running the adapter: in wrapper mode around `app`, with `env`.
pub fn function(app: &[&str], env: &[(&str, &str)]) -> FunctionConfig {
    let mut command = vec![adapter(), "--".into()];
    command.extend(app.iter().map(OsString::from));
    let mut config = FunctionConfig::new(FUNCTION, command);
    config.timeout = Duration::from_secs(10);
    config.environment = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<BTreeMap<_, _>>();
    config
}

/// A function forwarding to the in-process app on `port`: the adapter wraps a placeholder app
/// (`sleep`), since the real one runs in the test.
pub fn forwarding_to(port: u16, env: &[(&str, &str)]) -> FunctionConfig {
    let mut config = function(&["sleep", "1000"], env);
    config
        .environment
        .insert("AWS_LWA_PORT".into(), port.to_string());
    config
}

/// An emulator serving one function. Dropping it kills every sandbox it started.
pub struct Harness {
    pub emulator: Emulator,
    pub logs: Arc<Logs>,
    shutdown: CancellationToken,
}

impl Harness {
    pub fn start(function: FunctionConfig) -> Harness {
        let logs = Arc::new(Logs::default());
        let emulator = Emulator::new(vec![function], Settings::default(), logs.clone())
            .unwrap_or_else(|e| panic!("emulator: {e}"));
        Harness {
            emulator,
            logs,
            shutdown: CancellationToken::new(),
        }
    }

    /// Invokes the function with `event` and returns its answer, read whole.
    pub async fn invoke(&self, event: &Value) -> Outcome {
        let request = InvokeRequest {
            payload: Bytes::from(event.to_string()),
            ..InvokeRequest::default()
        };
        let response = tokio::time::timeout(PATIENCE, self.emulator.invoke(FUNCTION, request))
            .await
            .unwrap_or_else(|_| panic!("invoke timed out; logs:\n{:#?}", self.logs.all()))
            .unwrap_or_else(|e| panic!("invoke refused: {e}"));
        response.buffered(usize::MAX).await.outcome
    }

    /// Invokes with `event` and returns the function's JSON answer; panics on a function error.
    pub async fn invoke_json(&self, event: &Value) -> Value {
        match self.invoke(event).await {
            Outcome::Response { body, .. } => serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body))),
            other => panic!("not a response: {other:?}"),
        }
    }

    /// Serves the function as a Function URL on a loopback port and returns its address.
    pub async fn function_url(&self, mode: InvokeMode) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(serve_function_url(
            self.emulator.clone(),
            FUNCTION.into(),
            coldstart_emulator::UrlSettings {
                invoke_mode: mode,
                ..Default::default()
            },
            listener,
            self.shutdown.clone(),
        ));
        addr
    }

    /// Stops the front doors and the emulator gracefully.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.emulator.shutdown(Duration::from_secs(5)).await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // A failed test must not leave processes behind.
        for pid in self.emulator.sandbox_pids(FUNCTION) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    /// Every header line, repeats kept, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpAnswer {
    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends a request to `addr` on a fresh connection; returns the response head with its body
/// still streaming.
pub async fn request_streaming(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> hyper::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(body.into()))
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .unwrap_or_else(|_| panic!("no answer from {addr}{path}"))
        .unwrap_or_else(|e| panic!("request: {e}"))
}

/// Sends a request to `addr` and reads the whole answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> HttpAnswer {
    let response = request_streaming(addr, method, path, headers, body).await;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .unwrap_or_else(|_| panic!("body of {path} never ended"))
        .unwrap_or_else(|e| panic!("body: {e}"))
        .to_bytes();
    HttpAnswer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    }
}

/// Base64 (standard alphabet).
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64, panicking on bad input.
pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

/// `n` bytes counting 0..=255 over and over.
pub fn counting(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 256) as u8).collect()
}

/// A web app in the test process, on `127.0.0.1:0`:
/// - any unmatched request: echoes it as JSON (`method`, `uri`, `headers` with repeats,
///   `body_base64`);
/// - `GET /bytes/{n}`: `n` bytes 0..=255 repeated, `application/octet-stream`;
/// - `POST /mirror`: the request body back, with the request's content type;
/// - `GET /cookies`: two `Set-Cookie` and a repeated `x-multi` header;
/// - `GET /status/{code}`: that status;
/// - `GET /text`: a long compressible text;
/// - `GET /stream`: `first\n`, then (once the test opens [`TestApp::gate`]) `second\n`.
pub struct TestApp {
    pub port: u16,
    /// Lets `/stream` send its second chunk.
    pub gate: Arc<Notify>,
    shutdown: CancellationToken,
}

impl TestApp {
    pub async fn start() -> TestApp {
        let gate = Arc::new(Notify::new());
        let router = Router::new()
            .route("/bytes/{n}", get(bytes_route))
            .route("/mirror", any(mirror_route))
            .route("/cookies", get(cookies_route))
            .route("/status/{code}", get(status_route))
            .route("/text", get(text_route))
            .route("/stream", get(stream_route))
            .fallback(echo_route)
            .with_state(gate.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        TestApp {
            port,
            gate,
            shutdown,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn echo_route(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &headers {
        map.entry(name.to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    axum::Json(json!({
        "method": method.as_str(),
        "uri": uri.to_string(),
        "headers": map,
        "body_base64": b64(&body),
    }))
    .into_response()
}

async fn bytes_route(Path(n): Path<usize>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        counting(n),
    )
        .into_response()
}

async fn mirror_route(headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(header::HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn cookies_route() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::SET_COOKIE, "session=abc; Path=/; HttpOnly")
        .header(header::SET_COOKIE, "theme=dark; Max-Age=60")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body(AxumBody::from("two cookies"))
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn status_route(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, format!("status {code}")).into_response()
}

async fn text_route() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "compress me please; ".repeat(100),
    )
        .into_response()
}

async fn stream_route(State(gate): State<Arc<Notify>>) -> Response {
    let chunks = futures_util::stream::unfold(0, move |step| {
        let gate = gate.clone();
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from("first\n")), 1)),
                1 => {
                    gate.notified().await;
                    Some((Ok(Bytes::from("second\n")), 2))
                }
                _ => None,
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::SET_COOKIE, "streamed=yes")
        .body(AxumBody::from_stream(chunks))
        .unwrap_or_else(|e| panic!("{e}"))
}

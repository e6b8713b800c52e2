//! A dashboard over an emulator serving the test kit's shell echo, on free loopback ports, and
//! a small HTTP client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use coldstart_dashboard::Dashboard;
use coldstart_emulator::{
    Emulator, FunctionConfig, HttpApi, PayloadVersion, RouteKey, Router, Settings, TracingSink,
    UrlSettings,
};
use coldstart_stack::expression::ScheduleExpression;
use coldstart_stack::{Endpoint, EndpointKind, ScheduleKind, ScheduleSpec, Schedules};

/// How long any one step of a test may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A served dashboard; [`Served::stop`] stops it and the sandboxes.
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    /// The WebSocket API `chat`, stage `staging`.
    pub(crate) ws_addr: SocketAddr,
    pub(crate) emulator: Emulator,
    /// The Invoke API.
    pub(crate) invoke_addr: SocketAddr,
    /// `echo`'s Function URL.
    pub(crate) url_addr: SocketAddr,
    /// The HTTP API `shop` (`GET /items` → `echo`).
    pub(crate) http_addr: SocketAddr,
    /// The REST API `legacy` (`GET /orders` → `echo`).
    pub(crate) rest_addr: SocketAddr,
    /// The FIFO `stream` waits on between its two chunks: a line written to it lets it go on.
    pub(crate) gate: PathBuf,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    ws: tokio::task::JoinHandle<Result<(), coldstart_websocket::Error>>,
    doors: Vec<tokio::task::JoinHandle<()>>,
}

/// A loopback listener on a free port.
async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    (listener, addr)
}

/// An endpoint as the stack lists it.
fn endpoint(name: &str, kind: EndpointKind, addr: SocketAddr, routes: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        name: name.into(),
        kind,
        url: format!("http://{addr}/"),
        addr,
        routes: routes
            .iter()
            .map(|(f, r)| ((*f).to_owned(), format!("{r} http://{addr}/")))
            .collect(),
        streaming: false,
    }
}

/// An HTTP (or REST, with payload 1.0) API named `name` with one route to `echo`.
fn api(name: &str, route: &str, rest: bool) -> HttpApi {
    let key = RouteKey::parse(route).unwrap_or_else(|e| panic!("{e}"));
    let version = if rest {
        PayloadVersion::V1
    } else {
        PayloadVersion::V2
    };
    let mut api = HttpApi::new(name, version, Router::new(vec![(key, "echo".into())]));
    api.rest = rest;
    api
}

/// The schedule `nightly` (`rate(1 day)`, invoking `echo`), listed with its next time; it never
/// fires by itself here (nothing runs its timers).
fn nightly(emulator: &Emulator, sink: Arc<dyn coldstart_emulator::LogSink>) -> Schedules {
    let spec = ScheduleSpec {
        name: "nightly".into(),
        function: "echo".into(),
        expression: ScheduleExpression::parse("rate(1 day)", false)
            .unwrap_or_else(|e| panic!("{e}")),
        timezone: chrono_tz::UTC,
        input: Some(r#"{"job":"nightly"}"#.into()),
        enabled: true,
        kind: ScheduleKind::Scheduler,
        aws_name: "nightly".into(),
        description: Some("the nightly report".into()),
        transform: None,
    };
    Schedules::new(vec![spec], emulator.clone(), sink, chrono::Utc::now(), true)
}

/// `echo`, the shell echo of the test kit, with a secret and a plain variable, behind a Function
/// URL, an HTTP API and a REST API, with a schedule; `stream`, which streams two chunks with
/// [`Served::gate`] between them; a WebSocket API.
pub(crate) async fn start() -> Served {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dashboard = Dashboard::new(Arc::new(TracingSink));
    let mut echo = FunctionConfig::new(
        "echo",
        vec![repo("crates/testkit/fixtures/event-echo.sh").into()],
    );
    echo.environment
        .insert("API_TOKEN".into(), "hunter2".into());
    echo.environment
        .insert("TABLE_NAME".into(), "orders".into());
    let gate = std::env::temp_dir().join(format!(
        "coldstart-dashboard-gate-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&gate);
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::S_IRWXU).unwrap_or_else(|e| panic!("{e}"));
    let mut stream = FunctionConfig::new(
        "stream",
        vec![repo("crates/testkit/fixtures/stream-echo.sh").into()],
    );
    stream
        .environment
        .insert("GATE".into(), gate.display().to_string());
    let emulator = Emulator::new(
        vec![echo.clone(), stream.clone()],
        Settings::default(),
        dashboard.sink(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let shutdown = CancellationToken::new();
    // A WebSocket API with no routes: every connection is accepted, and only `@connections`
    // (the dashboard's send box) talks to its clients.
    let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ws_addr = ws_listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let ws = tokio::spawn(coldstart_websocket::serve_websocket_api(
        emulator.clone(),
        coldstart_websocket::WebSocketApi::new("chat", "staging"),
        ws_listener,
        shutdown.clone(),
    ));
    let ws_endpoint = Endpoint {
        name: "chat".into(),
        kind: EndpointKind::WebSocket,
        url: format!("ws://{ws_addr}/staging"),
        addr: ws_addr,
        routes: Vec::new(),
        streaming: false,
    };
    let (invoke, invoke_addr) = listener().await;
    let (url, url_addr) = listener().await;
    let (http, http_addr) = listener().await;
    let (rest, rest_addr) = listener().await;
    let doors = vec![
        tokio::spawn(coldstart_emulator::serve_invoke_api(
            emulator.clone(),
            invoke,
            shutdown.clone(),
        )),
        tokio::spawn(coldstart_emulator::serve_function_url(
            emulator.clone(),
            "echo".into(),
            UrlSettings::default(),
            url,
            shutdown.clone(),
        )),
        tokio::spawn(coldstart_emulator::serve_http_api(
            emulator.clone(),
            api("shop", "GET /items", false),
            http,
            shutdown.clone(),
        )),
        tokio::spawn(coldstart_emulator::serve_http_api(
            emulator.clone(),
            api("legacy", "GET /orders", true),
            rest,
            shutdown.clone(),
        )),
    ];
    let endpoints = vec![
        endpoint("echo", EndpointKind::Url, url_addr, &[("echo", "")]),
        endpoint(
            "shop",
            EndpointKind::HttpApi,
            http_addr,
            &[("echo", "GET /items")],
        ),
        endpoint(
            "legacy",
            EndpointKind::RestApi,
            rest_addr,
            &[("echo", "GET /orders")],
        ),
        ws_endpoint,
    ];
    dashboard.attach(emulator.clone(), vec![echo, stream], endpoints);
    dashboard.attach_schedules(nightly(&emulator, dashboard.sink()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let server = tokio::spawn(coldstart_dashboard::serve(
        dashboard,
        listener,
        shutdown.clone(),
    ));
    Served {
        addr,
        ws_addr,
        emulator,
        invoke_addr,
        url_addr,
        http_addr,
        rest_addr,
        gate,
        shutdown,
        server,
        ws,
        doors,
    }
}

impl Served {
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(PATIENCE, self.server).await;
        let _ = tokio::time::timeout(PATIENCE, self.ws).await;
        for door in self.doors {
            let _ = tokio::time::timeout(PATIENCE, door).await;
        }
        self.emulator.shutdown(Duration::from_secs(2)).await;
        let _ = std::fs::remove_file(&self.gate);
    }

    /// The invocation `id` once its report is in (a bounded retry: the report follows the
    /// answer, and an `Event` invocation runs in the background).
    pub(crate) async fn reported(&self, id: &str) -> serde_json::Value {
        for _ in 0..300 {
            let (status, found) = self
                .call("GET", &format!("/api/invocations/{id}"), &[], "")
                .await;
            if status == 200 && found["status"] != "running" {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id} was never reported");
    }

    /// Lets `stream` write its second chunk: a line into [`Served::gate`] (opening the FIFO
    /// for writing waits for the function to open it for reading).
    pub(crate) async fn open_gate(&self) {
        let gate = self.gate.clone();
        let opened = tokio::task::spawn_blocking(move || std::fs::write(gate, "go\n"));
        tokio::time::timeout(PATIENCE, opened)
            .await
            .unwrap_or_else(|_| panic!("stream never waited at its gate"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `method path` with `body` and the dashboard's own `Host`, plus `headers`.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, serde_json::Value) {
        call(self.addr, method, path, headers, body).await
    }
}

/// Serves `dashboard` on a free loopback port until the token is cancelled.
pub(crate) async fn serve(
    dashboard: Dashboard,
) -> (
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (listener, addr) = listener().await;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(coldstart_dashboard::serve(
        dashboard,
        listener,
        shutdown.clone(),
    ));
    (addr, shutdown, server)
}

/// `method path` with `body` to `addr`, naming it in `Host`, plus `headers`: the status and
/// the JSON body (`null` when it is not JSON).
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = tokio::time::timeout(PATIENCE, send(addr, request))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} took too long"));
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Sends `request` on a new connection to `addr`.
pub(crate) async fn send(
    addr: SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> http::Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

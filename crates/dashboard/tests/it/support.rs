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
use coldstart_emulator::{Emulator, FunctionConfig, Settings, TracingSink};
use coldstart_stack::{Endpoint, EndpointKind};

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
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    ws: tokio::task::JoinHandle<Result<(), coldstart_websocket::Error>>,
}

/// `echo`, the shell echo of the test kit, with a secret and a plain variable.
pub(crate) async fn start() -> Served {
    let dashboard = Dashboard::new(Arc::new(TracingSink));
    let mut echo = FunctionConfig::new(
        "echo",
        vec![repo("crates/testkit/fixtures/event-echo.sh").into()],
    );
    echo.environment
        .insert("API_TOKEN".into(), "hunter2".into());
    echo.environment
        .insert("TABLE_NAME".into(), "orders".into());
    let emulator = Emulator::new(vec![echo.clone()], Settings::default(), dashboard.sink())
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
    dashboard.attach(emulator.clone(), vec![echo], vec![ws_endpoint]);
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
        shutdown,
        server,
        ws,
    }
}

impl Served {
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(PATIENCE, self.server).await;
        let _ = tokio::time::timeout(PATIENCE, self.ws).await;
        self.emulator.shutdown(Duration::from_secs(2)).await;
    }

    /// `method path` with `body` and the dashboard's own `Host`, plus `headers`.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap_or_else(|e| panic!("{e}"));
        let response = tokio::time::timeout(PATIENCE, send(self.addr, request))
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

//! Response streaming through the emulator, with the test playing the runtime (so it decides
//! exactly when each chunk leaves) and `aws-sdk-lambda`'s InvokeWithResponseStream as the caller.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as Event;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use coldstart_protocol::runtime as rt;

use crate::support::{Harness, RawResponse, function, repo_file, send};

/// A request body the test feeds frame by frame.
struct Feed(mpsc::Receiver<Frame<Bytes>>);

impl http_body::Body for Feed {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut().0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// The hand-held runtime's side of one invocation.
struct Runtime {
    api: SocketAddr,
}

impl Runtime {
    async fn start(h: &Harness) -> Runtime {
        let line = h
            .logs
            .wait_for(|l| l.starts_with("hand: RUNTIME_API="))
            .await;
        let api = line
            .trim_start_matches("hand: RUNTIME_API=")
            .parse()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        Runtime { api }
    }

    /// `GET next`: the invocation's request id.
    async fn next(&self) -> String {
        let request = http::Request::get(rt::NEXT_PATH)
            .header(http::header::HOST, self.api.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|e| panic!("{e}"));
        let next = send(self.api, request).await;
        next.header("lambda-runtime-aws-request-id")
            .unwrap_or_else(|| panic!("no request id: {next:?}"))
            .to_owned()
    }

    /// Starts a streamed `/response`; frames go through the returned sender, and the handle
    /// gives the Runtime API's answer once the body has ended.
    async fn stream(
        &self,
        id: &str,
        content_type: &str,
    ) -> (mpsc::Sender<Frame<Bytes>>, tokio::task::JoinHandle<u16>) {
        let (tx, rx) = mpsc::channel(1);
        let request = http::Request::post(rt::response_path(id))
            .header(http::header::HOST, self.api.to_string())
            .header(rt::RESPONSE_MODE, rt::RESPONSE_MODE_STREAMING)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(
                http::header::TRAILER,
                "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
            )
            .body(Feed(rx))
            .unwrap_or_else(|e| panic!("{e}"));
        let stream = tokio::net::TcpStream::connect(self.api)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(conn);
        let answer = tokio::spawn(async move {
            sender
                .send_request(request)
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
        (tx, answer)
    }
}

async fn handheld() -> Arc<Harness> {
    Arc::new(Harness::start(vec![function("hand", repo_file("fixtures/handheld.sh"))]).await)
}

/// The SDK's events, forwarded as they arrive.
fn stream_events(h: &Harness, payload: &'static str) -> mpsc::UnboundedReceiver<Event> {
    let client = h.sdk();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut out = client
            .invoke_with_response_stream()
            .function_name("hand")
            .payload(Blob::new(payload))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        while let Ok(Some(event)) = out.event_stream.recv().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}

/// Every payload byte until `InvokeComplete`, which must carry no error.
async fn rest_of(events: &mut mpsc::UnboundedReceiver<Event>) -> Vec<u8> {
    let mut text = Vec::new();
    loop {
        match events.recv().await {
            Some(Event::PayloadChunk(update)) => {
                text.extend_from_slice(update.payload().map(|p| p.as_ref()).unwrap_or_default());
            }
            Some(Event::InvokeComplete(done)) => {
                assert_eq!(done.error_code(), None, "{done:?}");
                return text;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn chunk_of(event: Option<Event>) -> Bytes {
    match event {
        Some(Event::PayloadChunk(update)) => update
            .payload()
            .map(|b| Bytes::copy_from_slice(b.as_ref()))
            .unwrap_or_default(),
        other => panic!("expected a PayloadChunk, got {other:?}"),
    }
}

#[tokio::test]
async fn invoke_with_response_stream_delivers_each_chunk_as_it_is_written() {
    let h = handheld().await;
    let mut events = stream_events(&h, r#"{"k":1}"#);
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, answer) = runtime.stream(&id, "text/plain").await;
    let _ = body.send(Frame::data(Bytes::from_static(b"first "))).await;
    // The caller has the first chunk while the function has not written the second.
    assert_eq!(chunk_of(events.recv().await), Bytes::from_static(b"first "));
    let _ = body.send(Frame::data(Bytes::from_static(b"second"))).await;
    assert_eq!(chunk_of(events.recv().await), Bytes::from_static(b"second"));
    drop(body);
    match events.recv().await {
        Some(Event::InvokeComplete(done)) => {
            assert_eq!(done.error_code(), None, "{done:?}");
        }
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    assert_eq!(answer.await.unwrap_or(0), 202);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn an_error_trailer_ends_the_stream_with_its_error_code() {
    use base64::Engine;
    let h = handheld().await;
    let mut events = stream_events(&h, "{}");
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, answer) = runtime.stream(&id, "application/octet-stream").await;
    let _ = body.send(Frame::data(Bytes::from_static(b"partial"))).await;
    assert_eq!(
        chunk_of(events.recv().await),
        Bytes::from_static(b"partial")
    );
    let mut trailers = http::HeaderMap::new();
    trailers.insert(
        rt::FUNCTION_ERROR_TYPE,
        http::HeaderValue::from_static("Runtime.StreamError"),
    );
    let details = r#"{"errorType":"Runtime.StreamError","errorMessage":"disk on fire"}"#;
    let encoded = base64::engine::general_purpose::STANDARD.encode(details);
    trailers.insert(
        rt::FUNCTION_ERROR_BODY,
        http::HeaderValue::from_str(&encoded).unwrap_or(http::HeaderValue::from_static("")),
    );
    let _ = body.send(Frame::trailers(trailers)).await;
    drop(body);
    match events.recv().await {
        Some(Event::InvokeComplete(done)) => {
            assert_eq!(done.error_code(), Some("Runtime.StreamError"));
            assert_eq!(done.error_details(), Some(details));
        }
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    assert_eq!(answer.await.unwrap_or(0), 202);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn a_buffered_invoke_of_a_streamed_answer_gets_it_whole() {
    let h = handheld().await;
    let caller = {
        let h = h.clone();
        tokio::spawn(async move { h.invoke_raw("hand", &[], "{}").await })
    };
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, answer) = runtime.stream(&id, "text/plain").await;
    for part in ["a", "b", "c"] {
        let _ = body.send(Frame::data(Bytes::from(part))).await;
    }
    drop(body);
    let r: RawResponse = caller.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, Bytes::from_static(b"abc"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(answer.await.unwrap_or(0), 202);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn a_caller_that_leaves_mid_stream_frees_the_sandbox() {
    let h = handheld().await;
    let addr = h.addr;
    let caller = tokio::spawn(async move {
        // A raw InvokeWithResponseStream that reads the head and goes away.
        let request = http::Request::post(coldstart_protocol::invoke::stream_invoke_path("hand"))
            .header(http::header::HOST, addr.to_string())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let conn = tokio::spawn(conn);
        let head = sender
            .send_request(request)
            .await
            .map(|r| r.status().as_u16());
        conn.abort();
        head
    });
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, answer) = runtime.stream(&id, "text/plain").await;
    let _ = body.send(Frame::data(Bytes::from_static(b"hello"))).await;
    assert_eq!(caller.await.ok().and_then(Result::ok), Some(200));
    // The function goes on writing to nobody and finishes normally.
    for _ in 0..100 {
        let _ = body
            .send(Frame::data(Bytes::from(vec![b'y'; 16 * 1024])))
            .await;
    }
    drop(body);
    assert_eq!(answer.await.unwrap_or(0), 202);
    // The sandbox takes the next invocation.
    let next = {
        let h = h.clone();
        tokio::spawn(async move { h.invoke_raw("hand", &[], r#"{"again":true}"#).await })
    };
    let id = runtime.next().await;
    let request = http::Request::post(rt::response_path(&id))
        .header(http::header::HOST, runtime.api.to_string())
        .body(Full::new(Bytes::from_static(b"\"ok\"")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(send(runtime.api, request).await.status, 202);
    assert_eq!(
        next.await.map(|r| r.body).ok(),
        Some(Bytes::from_static(b"\"ok\""))
    );
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn the_deadline_mid_stream_ends_it_with_sandbox_timedout() {
    let mut hand = function("hand", repo_file("fixtures/handheld.sh"));
    hand.timeout = std::time::Duration::from_secs(1);
    let h = Arc::new(Harness::start(vec![hand]).await);
    let mut events = stream_events(&h, "{}");
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, _answer) = runtime.stream(&id, "text/plain").await;
    let _ = body.send(Frame::data(Bytes::from_static(b"started"))).await;
    assert_eq!(
        chunk_of(events.recv().await),
        Bytes::from_static(b"started")
    );
    // The function writes nothing more; the deadline ends the stream.
    match events.recv().await {
        Some(Event::InvokeComplete(done)) => {
            assert_eq!(done.error_code(), Some("Sandbox.Timedout"));
            assert!(
                done.error_details()
                    .is_some_and(|d| d.contains("Task timed out after 1.00 seconds")),
                "{done:?}"
            );
        }
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    drop(body);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

/// A hand-held function behind a `RESPONSE_STREAM` Function URL; returns the URL's address.
async fn streaming_url(h: &Harness) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(coldstart_emulator::serve_function_url(
        h.emulator.clone(),
        "hand".into(),
        coldstart_emulator::UrlSettings {
            invoke_mode: coldstart_emulator::InvokeMode::ResponseStream,
            ..Default::default()
        },
        listener,
        tokio_util::sync::CancellationToken::new(),
    ));
    addr
}

/// Sends a GET to `addr` and returns the response with its body unread.
async fn get_streaming(addr: SocketAddr) -> http::Response<hyper::body::Incoming> {
    get_streaming_path(addr, "/report").await
}

async fn get_streaming_path(addr: SocketAddr, path: &str) -> http::Response<hyper::body::Incoming> {
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn next_data(body: &mut hyper::body::Incoming) -> Option<Result<Bytes, String>> {
    use http_body_util::BodyExt;
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                Err(_) => continue,
            },
            Err(e) => return Some(Err(e.to_string())),
        }
    }
}

#[tokio::test]
async fn a_streaming_function_url_sends_the_prelude_as_the_head_then_each_chunk() {
    let h = handheld().await;
    let url = streaming_url(&h).await;
    let client = tokio::spawn(get_streaming(url));
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, answer) = runtime
        .stream(&id, "application/vnd.awslambda.http-integration-response")
        .await;
    // The prelude, split across chunks, the delimiter split too.
    let prelude = br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-a":"1"},"multiValueHeaders":{"x-multi":["one","two"]},"cookies":["a=1; Path=/","b=2"]}"#;
    let _ = body
        .send(Frame::data(Bytes::from_static(&prelude[..20])))
        .await;
    let _ = body
        .send(Frame::data(Bytes::from_static(&prelude[20..])))
        .await;
    let _ = body.send(Frame::data(Bytes::from_static(&[0, 0, 0]))).await;
    let _ = body
        .send(Frame::data(Bytes::from_static(b"\0\0\0\0\0line 1\n")))
        .await;
    let response = client.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["x-a"], "1");
    let multi: Vec<_> = response.headers().get_all("x-multi").iter().collect();
    assert_eq!(multi, ["one", "two"]);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    let mut client_body = response.into_body();
    assert_eq!(
        next_data(&mut client_body).await,
        Some(Ok(Bytes::from_static(b"line 1\n")))
    );
    // The client has line 1 before the function writes line 2.
    let _ = body
        .send(Frame::data(Bytes::from_static(b"line 2\n")))
        .await;
    assert_eq!(
        next_data(&mut client_body).await,
        Some(Ok(Bytes::from_static(b"line 2\n")))
    );
    drop(body);
    assert_eq!(next_data(&mut client_body).await, None);
    assert_eq!(answer.await.unwrap_or(0), 202);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn a_streaming_function_url_aborts_the_connection_on_a_mid_stream_error() {
    let h = handheld().await;
    let url = streaming_url(&h).await;
    let client = tokio::spawn(get_streaming(url));
    let runtime = Runtime::start(&h).await;
    let id = runtime.next().await;
    let (body, answer) = runtime.stream(&id, "text/plain").await;
    let _ = body.send(Frame::data(Bytes::from_static(b"partial"))).await;
    let response = client.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let mut client_body = response.into_body();
    assert_eq!(
        next_data(&mut client_body).await,
        Some(Ok(Bytes::from_static(b"partial")))
    );
    let mut trailers = http::HeaderMap::new();
    trailers.insert(
        rt::FUNCTION_ERROR_TYPE,
        http::HeaderValue::from_static("Runtime.StreamError"),
    );
    let _ = body.send(Frame::trailers(trailers)).await;
    drop(body);
    assert!(
        matches!(next_data(&mut client_body).await, Some(Err(_))),
        "the body must end in an error, not cleanly"
    );
    assert_eq!(answer.await.unwrap_or(0), 202);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

/// A FIFO in a fresh folder: the streaming fixture waits on it after its first chunk.
pub(crate) struct Gate {
    dir: std::path::PathBuf,
}

impl Gate {
    pub(crate) fn new(name: &str) -> Gate {
        let dir =
            std::env::temp_dir().join(format!("coldstart-gate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        nix::unistd::mkfifo(&dir.join("gate"), nix::sys::stat::Mode::S_IRWXU)
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        Gate { dir }
    }

    pub(crate) fn path(&self) -> String {
        self.dir.join("gate").display().to_string()
    }

    /// Lets the function go on (opening the FIFO for writing waits for its reader).
    pub(crate) async fn open(&self) {
        let path = self.dir.join("gate");
        let _ = tokio::task::spawn_blocking(move || std::fs::write(path, b"go")).await;
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn events_of(
    h: &Harness,
    function: &'static str,
    payload: String,
) -> mpsc::UnboundedReceiver<Event> {
    let client = h.sdk();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut out = client
            .invoke_with_response_stream()
            .function_name(function)
            .payload(Blob::new(payload))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        while let Ok(Some(event)) = out.event_stream.recv().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test]
async fn coldstart_runtime_streams_to_the_sdk_while_the_function_still_writes() {
    let h = Harness::start(vec![function(
        "stream",
        crate::support::fixture("fx-stream"),
    )])
    .await;
    let gate = Gate::new("sdk");
    let payload = serde_json::json!({"op": "lines", "n": 3, "gate": gate.path()}).to_string();
    let mut events = events_of(&h, "stream", payload);
    // Line 1 arrives while the function is held at the gate, before it writes line 2.
    assert_eq!(
        chunk_of(events.recv().await),
        Bytes::from_static(b"line 1\n")
    );
    gate.open().await;
    let rest = rest_of(&mut events).await;
    assert_eq!(rest, b"line 2\nline 3\n");
    h.stop().await;
}

#[tokio::test]
async fn coldstart_runtime_errors_mid_stream_reach_invoke_complete() {
    let h = Harness::start(vec![function(
        "stream",
        crate::support::fixture("fx-stream"),
    )])
    .await;
    let mut events = events_of(&h, "stream", r#"{"op":"fail_mid"}"#.into());
    assert_eq!(
        chunk_of(events.recv().await),
        Bytes::from_static(b"partial")
    );
    match events.recv().await {
        Some(Event::InvokeComplete(done)) => {
            assert_eq!(done.error_code(), Some("StreamFailed"), "{done:?}");
            let details: serde_json::Value =
                serde_json::from_str(done.error_details().unwrap_or_default()).unwrap_or_default();
            assert_eq!(details["errorMessage"], "the report generator broke");
        }
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    h.stop().await;
}

#[tokio::test]
async fn coldstart_runtime_http_prelude_drives_a_streaming_function_url() {
    let h = Harness::start(vec![function("hand", crate::support::fixture("fx-stream"))]).await;
    let url = streaming_url(&h).await;
    let response = get_streaming_path(url, "/report?op=http").await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["x-report"], "monthly");
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["session=abc; Path=/", "theme=dark"]);
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = next_data(&mut body).await {
        text.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("{e}")));
    }
    assert_eq!(text, b"header line\nbody line\n");
    // Without the prelude, the runtime's own content type and status 200.
    let plain = get_streaming_path(url, "/report").await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["content-type"], "text/plain");
    h.stop().await;
}

#[tokio::test]
async fn official_lambda_runtime_streaming_runs_unmodified() {
    let h = Harness::start(vec![function(
        "lr",
        crate::support::fixture("fx-lr-stream"),
    )])
    .await;
    let mut events = events_of(&h, "lr", r#"{"n":4}"#.into());
    let text = rest_of(&mut events).await;
    // lambda_runtime always sends an HTTP-integration prelude; InvokeWithResponseStream passes
    // it through verbatim (callers that are not Function URLs see it, as on AWS).
    let delimiter = text.windows(8).position(|w| w == [0u8; 8]);
    let Some(at) = delimiter else {
        panic!(
            "no prelude delimiter in {:?}",
            String::from_utf8_lossy(&text)
        );
    };
    assert!(text.starts_with(br#"{"statusCode":200"#));
    assert_eq!(&text[at + 8..], b"line 1\nline 2\nline 3\nline 4\n");
    h.stop().await;
}

#[tokio::test]
async fn a_crash_mid_stream_ends_it_with_an_error_and_the_next_invoke_works() {
    let h = Harness::start(vec![function(
        "stream",
        crate::support::fixture("fx-stream"),
    )])
    .await;
    let mut events = events_of(&h, "stream", r#"{"op":"crash_mid"}"#.into());
    assert_eq!(
        chunk_of(events.recv().await),
        Bytes::from_static(b"partial")
    );
    match events.recv().await {
        Some(Event::InvokeComplete(done)) => {
            // The runtime's death cut its streamed request: either verdict names the failure.
            let code = done.error_code().unwrap_or_default();
            assert!(
                code == "Runtime.ExitError" || code == "Runtime.TruncatedResponse",
                "{done:?}"
            );
        }
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    let mut again = events_of(&h, "stream", r#"{"op":"lines","n":1}"#.into());
    assert_eq!(
        chunk_of(again.recv().await),
        Bytes::from_static(b"line 1\n")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_buffered_function_answers_invoke_with_response_stream_too() {
    let h = Harness::start(vec![function(
        "faults",
        crate::support::fixture("fx-faults"),
    )])
    .await;
    let mut events = events_of(&h, "faults", r#"{"op":"echo","n":1}"#.into());
    let echoed: serde_json::Value =
        serde_json::from_slice(&chunk_of(events.recv().await)).unwrap_or_default();
    assert_eq!(echoed, serde_json::json!({"op": "echo", "n": 1}));
    match events.recv().await {
        Some(Event::InvokeComplete(done)) => assert_eq!(done.error_code(), None),
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    let mut failing = events_of(&h, "faults", r#"{"op":"error","message":"nope"}"#.into());
    match failing.recv().await {
        Some(Event::InvokeComplete(done)) => {
            assert_eq!(done.error_code(), Some("FixtureError"));
            assert!(
                done.error_details().is_some_and(|d| d.contains("nope")),
                "{done:?}"
            );
        }
        other => panic!("expected InvokeComplete, got {other:?}"),
    }
    h.stop().await;
}

#[tokio::test]
async fn a_streaming_function_url_passes_a_buffered_answer_through_as_is() {
    let h = Harness::start(vec![function("hand", crate::support::fixture("fx-faults"))]).await;
    let url = streaming_url(&h).await;
    let response = get_streaming(url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = next_data(&mut body).await {
        text.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("{e}")));
    }
    // fx-faults echoes the Function URL event: in RESPONSE_STREAM mode it is not reinterpreted.
    let event: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
    assert_eq!(event["rawPath"], "/report");
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
    h.stop().await;
}

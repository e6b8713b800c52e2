//! Hostile input for every listener: the Invoke API, a Function URL, an HTTP API, a WebSocket
//! API, and a sandbox's Runtime and Extensions APIs each get a TLS hello, a 200 KB URL, 2,000
//! headers, requests that stop half-way, bodies that are not JSON, unknown ids and wrong methods.
//! Each gets its error status (or, where no HTTP answer is possible, a closed connection), and
//! the listener serves the next good request.

use std::net::SocketAddr;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use coldstart_stack::{Endpoint, EndpointKind, Running};

use crate::soak::TEMPLATE;
use crate::support::{Logs, PATIENCE, TemplateProject};

/// The start of a TLS 1.2 ClientHello, as a client that expected HTTPS sends it.
const TLS_HELLO: &[u8] = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x5f\x1a\x2b\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\xc0\x2b\xc0\x2f\x00\x9e\x00\x9c\x01\x00";

/// Writes `bytes` to `addr` and reads what comes back until the server closes the connection
/// (or [`PATIENCE`] passes); the answer's status, `None` when the server closed without one.
async fn probe(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    // The server may answer and close before it has read everything; a failed write is fine.
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if head_complete(&answer) {
                        break;
                    }
                }
            }
        }
    })
    .await;
    if read.is_err() {
        panic!(
            "{addr} neither answered nor closed: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn head_complete(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"\r\n\r\n")
}

/// A request line and headers for `method path` with `extra` header lines and `body`.
fn raw(method: &str, path: &str, addr: SocketAddr, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn many_headers(n: usize) -> String {
    (0..n).map(|i| format!("x-h{i}: {i}\r\n")).collect()
}

/// Opens `n` connections that send half a request and then say nothing more; they stay open
/// until the returned streams are dropped.
async fn half_sent(addr: SocketAddr, path: &str, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        let head =
            format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 1000\r\n\r\n{{\"half");
        stream
            .write_all(head.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        held.push(stream);
    }
    held
}

/// A request that stops half-way and then closes its sending side: the server must not wait
/// for the rest.
async fn cut_short(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 1000\r\n\r\n{{\"cut");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "{addr} kept a cut-short request open");
    String::from_utf8_lossy(&answer)
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

struct Stack {
    running: Running,
    logs: std::sync::Arc<Logs>,
    _project: TemplateProject,
}

async fn stack(name: &str) -> Stack {
    let project = TemplateProject::new(name, TEMPLATE, &[("chaos", "fx-chaos")]);
    let (running, logs) = project.serve().await;
    Stack {
        running,
        logs,
        _project: project,
    }
}

impl Stack {
    fn addr(&self, name: &str, kind: EndpointKind) -> SocketAddr {
        self.running
            .endpoint(name, kind)
            .unwrap_or_else(|| panic!("no {name}"))
            .addr
    }
}

/// A request that must be refused, and how.
struct Refused {
    what: &'static str,
    request: Vec<u8>,
    status: u16,
    /// Text the answer must contain (an error type, a message).
    says: &'static str,
}

fn refused(what: &'static str, request: Vec<u8>, status: u16, says: &'static str) -> Refused {
    Refused {
        what,
        request,
        status,
        says,
    }
}

/// Sends every request of `cases` to `addr` and checks its answer.
async fn all_refused(addr: SocketAddr, cases: Vec<Refused>) {
    for case in cases {
        let answer = answer_to(addr, &case.request).await;
        let head = format!("HTTP/1.1 {} ", case.status);
        assert!(
            answer.starts_with(&head) && answer.contains(case.says),
            "{addr} {}: wanted {} with {:?}, got {answer:?}",
            case.what,
            case.status,
            case.says
        );
    }
}

/// The whole answer to `bytes` (its first kilobyte), read until the server closes.
async fn answer_to(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "{addr} kept the connection open");
    String::from_utf8_lossy(&answer[..answer.len().min(1024)]).into_owned()
}

/// What every HTTP listener must do with malformed HTTP: a TLS hello and text that is not HTTP
/// are 400, a 200 KB URL 414, 2,000 headers 431, a request cut short gets `cut_short` (its
/// body never completes); 300 requests left half-sent do not stop `good` from being answered
/// `good_status`.
async fn malformed_http(
    addr: SocketAddr,
    path: &str,
    cut_short_status: u16,
    good: Vec<u8>,
    good_status: u16,
) {
    let long_path = format!("{path}?q={}", "a".repeat(200 * 1024));
    let cases = [
        ("a TLS hello", probe(addr, TLS_HELLO).await, 400),
        (
            "text that is not HTTP",
            probe(addr, b"hello there\r\n\r\n").await,
            400,
        ),
        (
            "a 200 KB URL",
            probe(addr, &raw("POST", &long_path, addr, "", b"{}")).await,
            414,
        ),
        (
            "2,000 headers",
            probe(addr, &raw("POST", path, addr, &many_headers(2000), b"{}")).await,
            431,
        ),
        (
            "a request cut short",
            cut_short(addr, path).await,
            cut_short_status,
        ),
    ];
    for (what, got, want) in cases {
        assert_eq!(got, Some(want), "{addr} {path}: {what}");
    }
    let held = half_sent(addr, path, 300).await;
    assert_eq!(
        probe(addr, &good).await,
        Some(good_status),
        "{addr}: a good request while 300 half-sent ones wait"
    );
    drop(held);
    assert_eq!(
        probe(addr, &good).await,
        Some(good_status),
        "{addr}: a good request after"
    );
}

const UPGRADE: &str = "upgrade: websocket\r\nconnection: upgrade\r\n";
const KEY: &str = "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[tokio::test]
async fn every_listener_refuses_hostile_input_with_its_error_and_keeps_serving() {
    let s = stack("hostile").await;
    let invoke = s.addr(Endpoint::INVOKE_API, EndpointKind::Invoke);
    let url = s.addr("Chaos", EndpointKind::Url);
    let http = s.addr("Http", EndpointKind::HttpApi);
    let ws = s.addr("Socket", EndpointKind::WebSocket);
    let invoke_path = coldstart_protocol::invoke::invoke_path("Chaos");
    let good_invoke = raw("POST", &invoke_path, invoke, "", b"{}");
    assert_eq!(probe(invoke, &good_invoke).await, Some(200));
    // The sandbox that answered is waiting in `next`: its Runtime and Extensions API.
    let line = s.logs.wait_for(|l| l.contains("CHAOS API ")).await;
    let api: SocketAddr = line
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"));
    let big = vec![b'x'; 7 * 1024 * 1024];
    let handshake =
        |path: &str, extra: &str| raw("GET", path, ws, &format!("{UPGRADE}{extra}"), b"");

    malformed_http(invoke, &invoke_path, 400, good_invoke.clone(), 200).await;
    all_refused(
        invoke,
        vec![
            refused(
                "a body that is not JSON",
                raw("POST", &invoke_path, invoke, "", b"not json"),
                400,
                "InvalidRequestContentException",
            ),
            refused(
                "an unknown function",
                raw(
                    "POST",
                    &coldstart_protocol::invoke::invoke_path("Nope"),
                    invoke,
                    "",
                    b"{}",
                ),
                404,
                "ResourceNotFoundException",
            ),
            refused(
                "a GET",
                raw("GET", &invoke_path, invoke, "", b""),
                405,
                "UnknownOperationException",
            ),
            refused(
                "7 MB",
                raw("POST", &invoke_path, invoke, "", &big),
                413,
                "RequestTooLargeException",
            ),
        ],
    )
    .await;

    malformed_http(url, "/", 400, raw("POST", "/", url, "", b"not json"), 200).await;
    all_refused(
        url,
        vec![refused(
            "7 MB",
            raw("POST", "/", url, "", &big),
            413,
            "Request must be smaller than 6291456 bytes",
        )],
    )
    .await;

    malformed_http(
        http,
        "/chaos",
        400,
        raw("POST", "/chaos", http, "", b"not json"),
        200,
    )
    .await;
    all_refused(
        http,
        vec![
            refused(
                "an unknown route",
                raw("GET", "/nope", http, "", b""),
                404,
                r#"{"message":"Not Found"}"#,
            ),
            refused(
                "11 MB",
                raw("POST", "/chaos", http, "", &vec![b'x'; 11 * 1024 * 1024]),
                413,
                "HTTP content length exceeded 10485760 bytes.",
            ),
        ],
    )
    .await;

    // A POST is no upgrade: 426 for the cut-short one, and the good request is a handshake.
    let good_handshake = handshake("/chaos", &format!("sec-websocket-version: 13\r\n{KEY}"));
    malformed_http(ws, "/chaos", 426, good_handshake, 101).await;
    all_refused(
        ws,
        vec![
            refused(
                "an upgrade without a key",
                handshake("/chaos", "sec-websocket-version: 13\r\n"),
                400,
                "Bad Request",
            ),
            refused(
                "an upgrade of version 8",
                handshake("/chaos", &format!("sec-websocket-version: 8\r\n{KEY}")),
                400,
                "Bad Request",
            ),
            refused(
                "another stage",
                handshake("/other", &format!("sec-websocket-version: 13\r\n{KEY}")),
                403,
                "Forbidden",
            ),
        ],
    )
    .await;

    let response = "/2018-06-01/runtime/invocation/nope/response";
    malformed_http(
        api,
        response,
        400,
        raw("GET", "/2018-06-01/runtime/nope", api, "", b""),
        404,
    )
    .await;
    all_refused(
        api,
        vec![
            refused(
                "an unknown request id",
                raw("POST", response, api, "", b"{}"),
                400,
                "InvalidRequestID",
            ),
            refused(
                "7 MB for an unknown request id",
                raw("POST", response, api, "", &big),
                400,
                "InvalidRequestID",
            ),
            refused(
                "a DELETE of next",
                raw(
                    "DELETE",
                    "/2018-06-01/runtime/invocation/next",
                    api,
                    "",
                    b"",
                ),
                405,
                "",
            ),
            refused(
                "an init error after init",
                raw(
                    "POST",
                    "/2018-06-01/runtime/init/error",
                    api,
                    "",
                    b"not json",
                ),
                403,
                "InvalidStateTransition",
            ),
        ],
    )
    .await;

    let register = "/2020-01-01/extension/register";
    let named = "lambda-extension-name: x\r\n";
    malformed_http(api, register, 403, raw("PUT", register, api, "", b""), 405).await;
    all_refused(
        api,
        vec![
            refused(
                "a registration that is not JSON",
                raw("POST", register, api, named, b"not json"),
                403,
                "InvalidRequestFormat",
            ),
            refused(
                "a 7 MB registration",
                raw("POST", register, api, named, &big),
                403,
                "InvalidRequestFormat",
            ),
            refused(
                "an unknown identifier",
                raw(
                    "GET",
                    "/2020-01-01/extension/event/next",
                    api,
                    "lambda-extension-identifier: 01234567-89ab-4def-8123-456789abcdef\r\n",
                    b"",
                ),
                403,
                "Extension.UnknownExtensionIdentifier",
            ),
            refused(
                "an identifier that is no UUID",
                raw(
                    "GET",
                    "/2020-01-01/extension/event/next",
                    api,
                    "lambda-extension-identifier: nope\r\n",
                    b"",
                ),
                403,
                "Extension.InvalidExtensionIdentifier",
            ),
            refused(
                "a PUT",
                raw("PUT", register, api, "", b""),
                405,
                "Extension.InvalidRequest",
            ),
        ],
    )
    .await;

    // The sandbox took all of it and still answers.
    assert_eq!(probe(invoke, &good_invoke).await, Some(200));
    s.running.stop().await;
}

#[tokio::test]
async fn a_websocket_api_closes_on_oversized_or_garbage_frames_and_keeps_serving() {
    let s = stack("hostile-frames").await;
    let ws = s.addr("Socket", EndpointKind::WebSocket);
    let url = format!("ws://{ws}/chaos");
    let connect = || async {
        tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url.clone()))
            .await
            .unwrap_or_else(|_| panic!("handshake hung"))
            .unwrap_or_else(|e| panic!("handshake: {e}"))
            .0
    };

    // A 64 KB frame (API Gateway takes 32 KB): closed with 1009, message too big.
    let mut big = connect().await;
    big.send(Message::text("x".repeat(64 * 1024)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let close = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(frame)) = big.next().await {
            if let Message::Close(close) = frame {
                return close.map(|c| u16::from(c.code));
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("an oversized frame left the connection open"));
    assert_eq!(close, Some(1009));

    // Bytes that are no WebSocket frame (an unmasked frame with reserved bits and opcode 0xB,
    // then noise) after a good handshake: the connection ends.
    let mut raw_socket = TcpStream::connect(ws)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let handshake = raw(
        "GET",
        "/chaos",
        ws,
        &format!("{UPGRADE}sec-websocket-version: 13\r\n{KEY}"),
        b"",
    );
    raw_socket
        .write_all(&handshake)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = vec![0u8; 4096];
    let n = raw_socket
        .read(&mut head)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        head[..n].starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    let _ = raw_socket
        .write_all(b"\xfb\x7f\xff\xff\xff\xffgarbage garbage garbage")
        .await;
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(PATIENCE, raw_socket.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "a garbage frame left the connection open");

    // A new client is served: connected, and its message answered.
    let mut good = connect().await;
    let message = serde_json::json!({"action": "x", "chaos": {"op": "ok", "token": "still here"}});
    good.send(Message::text(message.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = tokio::time::timeout(PATIENCE, good.next())
        .await
        .unwrap_or_else(|_| panic!("no answer after the garbage"));
    assert!(
        matches!(&answer, Some(Ok(Message::Text(t))) if t.as_str() == "still here"),
        "{answer:?}"
    );
    let _ = good.close(None).await;
    s.running.stop().await;
}

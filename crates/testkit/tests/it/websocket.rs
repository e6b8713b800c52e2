//! API Gateway WebSocket APIs in front of a real function (`fx-ws`), called with a WebSocket
//! client (tokio-tungstenite) and, for `@connections`, with aws-sdk-apigatewaymanagement and a
//! plain HTTP client.
//!
//! Every event the function gets shows up as a log line `ws: fx-ws {eventType} {connectionId}
//! {event}`; tests wait on those lines, on frames and on closes, never on fixed sleeps.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use bytes::Bytes;
use coldstart_emulator::InvokeRequest;
use coldstart_websocket::{RouteTarget, WebSocketApi, serve_websocket_api};
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::support::{Harness, PATIENCE, RawResponse, fixture, function, send};

const STAGE: &str = "test";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Every route, all to `fx-ws` (as `ws`).
fn full_api() -> WebSocketApi {
    WebSocketApi::new("chat", STAGE)
        .route("$connect", RouteTarget::new("ws"))
        .route("$disconnect", RouteTarget::new("ws"))
        .route("$default", RouteTarget::two_way("ws"))
        .route("echo", RouteTarget::two_way("ws"))
        .route("fail", RouteTarget::two_way("ws"))
        .route("quiet", RouteTarget::new("ws"))
}

/// A harness with `fx-ws` as `ws` and a WebSocket API serving it on loopback.
struct Api {
    h: Harness,
    addr: SocketAddr,
    stop: CancellationToken,
    server: Option<JoinHandle<Result<(), coldstart_websocket::Error>>>,
}

/// An open connection and its id.
struct Conn {
    ws: Socket,
    id: String,
}

async fn serve(api: WebSocketApi) -> Api {
    let h = Harness::start(vec![function("ws", fixture("fx-ws"))]).await;
    api.validate(&h.emulator)
        .unwrap_or_else(|e| panic!("invalid api: {e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve_websocket_api(
        h.emulator.clone(),
        api,
        listener,
        stop.clone(),
    ));
    Api {
        h,
        addr,
        stop,
        server: Some(server),
    }
}

/// A tag unique in this process, to find one connection's `$connect` line.
fn tag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Api {
    fn url(&self, query: &str) -> String {
        format!("ws://{}/{STAGE}{query}", self.addr)
    }

    /// Connects (the API must have a `$connect` route) and learns the connection's id from
    /// the `$connect` event; `query` is more of the query string (`&a=b`).
    async fn open(&self, query: &str) -> Conn {
        let tag = tag();
        let (ws, _) = self.handshake(&format!("?tag={tag}{query}"), &[]).await;
        let event = self
            .event(|l| l.contains("fx-ws CONNECT ") && l.contains(&format!(r#""tag":"{tag}""#)))
            .await;
        let id = event["requestContext"]["connectionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Conn { ws, id }
    }

    /// Connects with `query` and extra `headers`; panics if the handshake fails.
    async fn handshake(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> (Socket, http::Response<Option<Vec<u8>>>) {
        match self.try_handshake(query, headers).await {
            Ok(ok) => ok,
            Err(err) => panic!("handshake failed: {err}"),
        }
    }

    async fn try_handshake(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Socket, http::Response<Option<Vec<u8>>>), WsError> {
        let mut request = self
            .url(query)
            .into_client_request()
            .unwrap_or_else(|e| panic!("{e}"));
        for (k, v) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                http::HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("handshake hung"))
    }

    /// The HTTP status of a handshake that must fail.
    async fn refused(&self, query: &str) -> u16 {
        match self.try_handshake(query, &[]).await {
            Err(WsError::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("{query} was accepted"),
        }
    }

    /// The event of the first log line matching `pred`.
    async fn event(&self, pred: impl Fn(&str) -> bool) -> Value {
        let line = self.h.logs.wait_for(pred).await;
        let json = line
            .find('{')
            .map(|i| &line[i..])
            .unwrap_or_else(|| panic!("no event in {line}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// Waits for `id`'s `$disconnect`; checks it came exactly once; returns its code and
    /// reason.
    async fn disconnected(&self, id: &str) -> (u64, String) {
        let prefix = format!("fx-ws DISCONNECT {id} ");
        let event = self.event(|l| l.contains(&prefix)).await;
        // A barrier: an invocation that starts after the `$disconnect` ended. A second
        // `$disconnect` would have been invoked by then.
        let barrier = tag();
        let payload = json!({"requestContext": {"eventType": "BARRIER", "connectionId": barrier}});
        let request = InvokeRequest {
            payload: Bytes::from(payload.to_string()),
            ..InvokeRequest::default()
        };
        let _ = self.h.emulator.invoke("ws", request).await;
        self.h
            .logs
            .wait_for(|l| l.contains(&format!("fx-ws BARRIER {barrier} ")))
            .await;
        let count = self
            .h
            .logs
            .all()
            .iter()
            .filter(|l| l.contains(&prefix))
            .count();
        assert_eq!(count, 1, "{id} got {count} $disconnect events");
        let ctx = &event["requestContext"];
        assert_eq!(ctx["routeKey"], "$disconnect");
        (
            ctx["disconnectStatusCode"].as_u64().unwrap_or_default(),
            ctx["disconnectReason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// An aws-sdk-apigatewaymanagement client for this API's `@connections`, without retries.
    fn sdk(&self) -> aws_sdk_apigatewaymanagement::Client {
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "coldstart-tests",
            ))
            .endpoint_url(format!("http://{}/{STAGE}", self.addr))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// A plain HTTP request to this API's port.
    async fn http(&self, method: &str, path: &str, body: impl Into<Bytes>) -> RawResponse {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.addr.to_string())
            .body(Full::new(body.into()))
            .unwrap_or_else(|e| panic!("{e}"));
        send(self.addr, request).await
    }

    /// Stops the server: it must close every connection and return.
    async fn shut_down(&mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(PATIENCE, server)
                .await
                .unwrap_or_else(|_| panic!("the server did not stop"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(result.is_ok(), "{result:?}");
        }
    }

    async fn finish(mut self) {
        self.shut_down().await;
        self.h.stop().await;
    }
}

impl Conn {
    async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// The next data or close frame (pings and pongs skipped).
    async fn next(&mut self) -> Message {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame from the server"));
            match message {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return message,
                Some(Err(err)) => panic!("read: {err}"),
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    async fn text(&mut self) -> String {
        match self.next().await {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("not a text frame: {other:?}"),
        }
    }

    async fn json(&mut self) -> Value {
        let text = self.text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Waits for the server's close frame; returns its code.
    async fn closed(&mut self) -> u16 {
        match self.next().await {
            Message::Close(Some(frame)) => u16::from(frame.code),
            other => panic!("not a close frame: {other:?}"),
        }
    }

    /// Sends `text` as one message in frames of at most `chunk` bytes.
    async fn send_fragmented(&mut self, text: &str, chunk: usize) {
        let parts: Vec<&[u8]> = text.as_bytes().chunks(chunk).collect();
        for (i, part) in parts.iter().enumerate() {
            let opcode = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let frame = Frame::message(Bytes::copy_from_slice(part), opcode, i + 1 == parts.len());
            // The server may close before the last fragments: sends may then fail.
            if self.ws.send(Message::Frame(frame)).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test]
async fn connect_event_carries_the_upgrade_request() {
    let api = serve(full_api()).await;
    let tag = tag();
    let (mut ws, _) = api
        .handshake(
            &format!("?tag={tag}&name=a&name=b%20c"),
            &[("user-agent", "ws-test/1"), ("x-custom", "yes")],
        )
        .await;
    let e = api
        .event(|l| l.contains("fx-ws CONNECT ") && l.contains(&tag))
        .await;
    let host = api.addr.to_string();
    assert_eq!(e["headers"]["Host"], host.as_str());
    assert_eq!(e["headers"]["X-Custom"], "yes");
    assert_eq!(e["headers"]["Sec-WebSocket-Version"], "13");
    assert!(e["headers"]["Sec-WebSocket-Key"].is_string());
    assert_eq!(e["multiValueHeaders"]["X-Custom"], json!(["yes"]));
    assert_eq!(
        e["queryStringParameters"],
        json!({"tag": tag, "name": "b c"})
    );
    assert_eq!(
        e["multiValueQueryStringParameters"]["name"],
        json!(["a", "b c"])
    );
    assert_eq!(e["isBase64Encoded"], false);
    let ctx = &e["requestContext"];
    assert_eq!(ctx["routeKey"], "$connect");
    assert_eq!(ctx["eventType"], "CONNECT");
    assert_eq!(ctx["messageDirection"], "IN");
    assert_eq!(ctx["stage"], STAGE);
    assert_eq!(ctx["domainName"], host.as_str());
    assert_eq!(ctx["apiId"], "chat000000");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["userAgent"], "ws-test/1");
    assert_eq!(ctx["requestId"], ctx["extendedRequestId"]);
    assert!(
        ctx["requestTime"]
            .as_str()
            .is_some_and(|t| t.ends_with(" +0000"))
    );
    assert!(
        ctx["connectedAt"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000)
    );
    assert!(ctx["requestTimeEpoch"].as_u64() >= ctx["connectedAt"].as_u64());
    let id = ctx["connectionId"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.ends_with('='), "{id}");

    // A message event: its body and ids, no headers.
    ws.send(Message::text(r#"{"action":"echo","n":1}"#))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let m = api
        .event(|l| l.contains(&format!("fx-ws MESSAGE {id} ")))
        .await;
    assert_eq!(m["body"], r#"{"action":"echo","n":1}"#);
    assert_eq!(m["isBase64Encoded"], false);
    assert!(m.get("headers").is_none());
    assert_eq!(m["requestContext"]["routeKey"], "echo");
    assert_eq!(m["requestContext"]["eventType"], "MESSAGE");
    assert_eq!(m["requestContext"]["connectionId"], id.as_str());
    assert!(
        m["requestContext"]["messageId"]
            .as_str()
            .is_some_and(|s| s.len() == 16)
    );
    assert_ne!(m["requestContext"]["requestId"], ctx["requestId"]);
    api.finish().await;
}

#[tokio::test]
async fn connect_answers_accept_or_reject_the_upgrade() {
    let api = serve(full_api()).await;
    assert_eq!(api.refused("?reject=403").await, 403);
    assert_eq!(api.refused("?reject=401").await, 401);
    // The function failed: 502.
    assert_eq!(api.refused("?fail=1").await, 502);
    // Headers of the answer go on the 101.
    let (_ws, response) = api
        .handshake("?protocol=chat", &[("sec-websocket-protocol", "chat")])
        .await;
    assert_eq!(response.status(), 101);
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("chat")
    );
    // An answer without statusCode accepts.
    let mut bare = api.open("&bare=1").await;
    bare.send_text(r#"{"action":"echo"}"#).await;
    assert_eq!(bare.json().await["connectionId"], bare.id.as_str());
    // Other paths are API Gateway's 403; plain GETs of the stage need an upgrade.
    assert_eq!(api.refused_path("/other").await, 403);
    let plain = api.http("GET", &format!("/{STAGE}"), "").await;
    assert_eq!(plain.status, 426);
    let other = api.http("GET", "/elsewhere", "").await;
    assert_eq!(other.status, 403);
    assert_eq!(other.json(), json!({"message": "Forbidden"}));
    api.finish().await;
}

impl Api {
    /// The HTTP status of a WebSocket handshake to `path` (not the stage).
    async fn refused_path(&self, path: &str) -> u16 {
        let url = format!("ws://{}{path}", self.addr);
        match tokio_tungstenite::connect_async(url).await {
            Err(WsError::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("{path} was accepted"),
        }
    }
}

#[tokio::test]
async fn messages_route_by_action_and_fall_back_to_default() {
    let api = serve(full_api()).await;
    let mut c = api.open("").await;
    c.send_text(r#"{"action":"echo","x":1}"#).await;
    let echo = c.json().await;
    assert_eq!(echo["route"], "echo");
    assert_eq!(echo["body"], r#"{"action":"echo","x":1}"#);
    assert_eq!(echo["connectionId"], c.id.as_str());
    // No such route, or not JSON: `$default`, whose answer is a bare JSON string.
    c.send_text(r#"{"action":"nope"}"#).await;
    assert_eq!(c.text().await, r#"default: {"action":"nope"}"#);
    c.send_text("not json").await;
    assert_eq!(c.text().await, "default: not json");
    // A failing function: API Gateway's error message.
    c.send_text(r#"{"action":"fail"}"#).await;
    let failed = c.json().await;
    assert_eq!(failed["message"], "Internal server error");
    assert_eq!(failed["connectionId"], c.id.as_str());
    assert!(failed["requestId"].is_string());
    // A one-way route sends nothing back: the next frame is the next two-way answer.
    c.send_text(r#"{"action":"quiet","n":7}"#).await;
    api.event(|l| l.contains(&format!("fx-ws MESSAGE {}", c.id)) && l.contains(r#"\"n\":7"#))
        .await;
    c.send_text(r#"{"action":"echo","n":8}"#).await;
    assert_eq!(c.json().await["body"], r#"{"action":"echo","n":8}"#);
    api.finish().await;
}

#[tokio::test]
async fn binary_frames_reach_default_base64_encoded() {
    let api = serve(full_api()).await;
    let mut c = api.open("").await;
    c.ws.send(Message::Binary(Bytes::from_static(&[0, 1, 2, 255])))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.text().await, "default: AAEC/w==");
    let e = api
        .event(|l| l.contains(&format!("fx-ws MESSAGE {}", c.id)))
        .await;
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["body"], "AAEC/w==");
    assert_eq!(e["requestContext"]["routeKey"], "$default");
    api.finish().await;
}

#[tokio::test]
async fn without_default_unrouted_messages_are_forbidden() {
    // No `$connect` (every connection is accepted), no `$default`, a template selection.
    let mut api_config = WebSocketApi::new("bare", STAGE)
        .route("chat/send", RouteTarget::two_way("ws"))
        .route("$disconnect", RouteTarget::new("ws"));
    api_config.route_selection = "${request.body.service}/${request.body.op}".into();
    let api = serve(api_config).await;
    let (ws, _) = api.handshake("", &[]).await;
    let mut c = Conn {
        ws,
        id: String::new(),
    };
    c.send_text(r#"{"action":"echo"}"#).await;
    let forbidden = c.json().await;
    assert_eq!(forbidden["message"], "Forbidden");
    assert!(forbidden["requestId"].is_string());
    let id = forbidden["connectionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(id.len(), 16);
    c.send_text(r#"{"service":"chat","op":"send"}"#).await;
    let routed = c.json().await;
    assert_eq!(routed["route"], "chat/send");
    assert_eq!(routed["connectionId"], id.as_str());
    c.ws.close(None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api.disconnected(&id).await.0, 1005);
    api.finish().await;
}

#[tokio::test]
async fn disconnect_comes_once_after_a_client_close() {
    let api = serve(full_api()).await;
    let mut c = api.open("").await;
    c.ws.close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: "bye".into(),
    }))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The server answers the close.
    assert_eq!(c.closed().await, 4001);
    assert_eq!(api.disconnected(&c.id).await, (4001, "bye".to_owned()));

    let mut plain = api.open("").await;
    plain.ws.close(None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        api.disconnected(&plain.id).await,
        (1005, "Client-side close frame status not set".to_owned())
    );
    api.finish().await;
}

#[tokio::test]
async fn disconnect_comes_once_after_a_dropped_connection() {
    let api = serve(full_api()).await;
    let c = api.open("").await;
    let id = c.id.clone();
    // The socket closes without a close frame.
    drop(c);
    assert_eq!(api.disconnected(&id).await.0, 1006);
    let gone = api.sdk().get_connection().connection_id(&id).send().await;
    assert!(
        gone.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_gone_exception()),
        "{gone:?}"
    );
    api.finish().await;
}

#[tokio::test]
async fn connections_api_posts_describes_and_deletes_through_the_sdk() {
    let api = serve(full_api()).await;
    let sdk = api.sdk();
    let mut c = api.open("").await;
    sdk.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("hello"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("post: {e:?}"));
    assert_eq!(c.text().await, "hello");
    // Data that is not UTF-8 arrives as a binary frame.
    sdk.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new(vec![0xff, 0xfe, 0]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("post: {e:?}"));
    assert_eq!(
        c.next().await,
        Message::Binary(Bytes::from_static(&[0xff, 0xfe, 0]))
    );
    // The most a post may carry arrives; one byte more is PayloadTooLargeException.
    let max = "x".repeat(131_072);
    sdk.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new(max.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("post: {e:?}"));
    assert_eq!(c.text().await.len(), max.len());
    let too_large = sdk
        .post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new(vec![b'x'; 131_073]))
        .send()
        .await;
    assert!(
        too_large
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{too_large:?}"
    );

    let info = sdk
        .get_connection()
        .connection_id(&c.id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get: {e:?}"));
    let identity = info.identity().unwrap_or_else(|| panic!("no identity"));
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    let connected = info.connected_at().map(|t| t.secs()).unwrap_or_default();
    let active = info.last_active_at().map(|t| t.secs()).unwrap_or_default();
    assert!(connected > 1_600_000_000 && active >= connected, "{info:?}");

    sdk.delete_connection()
        .connection_id(&c.id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete: {e:?}"));
    assert_eq!(c.closed().await, 1000);
    assert_eq!(
        api.disconnected(&c.id).await,
        (1000, "Connection deleted".to_owned())
    );

    // The connection is gone for every operation.
    let post = sdk
        .post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("late"))
        .send()
        .await;
    assert!(
        post.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_gone_exception()),
        "{post:?}"
    );
    let get = sdk.get_connection().connection_id(&c.id).send().await;
    assert!(
        get.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_gone_exception()),
        "{get:?}"
    );
    let delete = sdk.delete_connection().connection_id(&c.id).send().await;
    assert!(
        delete
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_gone_exception()),
        "{delete:?}"
    );
    api.finish().await;
}

#[tokio::test]
async fn connections_api_answers_plain_http_in_aws_shape() {
    let api = serve(full_api()).await;
    let mut c = api.open("").await;
    let encoded = c.id.replace('=', "%3D");
    // `%40connections`, as some SDKs send it.
    let posted = api
        .http("POST", &format!("/{STAGE}/%40connections/{encoded}"), "raw")
        .await;
    assert_eq!(posted.status, 200, "{posted:?}");
    assert!(posted.body.is_empty());
    assert_eq!(c.text().await, "raw");
    let got = api
        .http("GET", &format!("/{STAGE}/@connections/{encoded}"), "")
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/json"));
    let info = got.json();
    let iso = |v: &Value| {
        v.as_str()
            .is_some_and(|t| t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T')
    };
    assert!(
        iso(&info["connectedAt"]) && iso(&info["lastActiveAt"]),
        "{info}"
    );
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert!(info["identity"]["userAgent"].is_null());
    let forbidden = api
        .http("PUT", &format!("/{STAGE}/@connections/{encoded}"), "")
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.header("x-amzn-errortype"),
        Some("ForbiddenException")
    );
    let gone = api
        .http(
            "POST",
            &format!("/{STAGE}/@connections/AAAAAAAAAAAAAAA%3D"),
            "x",
        )
        .await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.header("x-amzn-errortype"), Some("GoneException"));
    assert!(gone.json()["message"].is_string());
    assert!(gone.header("x-amzn-requestid").is_some());
    api.finish().await;
}

#[tokio::test]
async fn idle_and_old_connections_are_closed_with_1001() {
    let mut config = full_api();
    config.idle_timeout = Duration::from_millis(300);
    let api = serve(config).await;
    let mut c = api.open("").await;
    assert_eq!(c.closed().await, 1001);
    assert_eq!(api.disconnected(&c.id).await.0, 1001);
    api.finish().await;

    let mut config = full_api();
    config.max_duration = Duration::from_millis(500);
    let api = serve(config).await;
    let mut c = api.open("").await;
    assert_eq!(c.closed().await, 1001);
    let (code, reason) = api.disconnected(&c.id).await;
    assert_eq!(code, 1001);
    assert!(reason.contains("duration"), "{reason}");
    api.finish().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_waits_for_its_disconnect() {
    let mut api = serve(full_api()).await;
    let mut a = api.open("").await;
    let mut b = api.open("").await;
    let reader = tokio::spawn(async move {
        let code = b.closed().await;
        (b.id, code)
    });
    api.shut_down().await;
    // The server returned: both `$disconnect`s ran already.
    assert_eq!(a.closed().await, 1001);
    let (b_id, b_code) = reader.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b_code, 1001);
    for id in [&a.id, &b_id] {
        assert_eq!(api.disconnected(id).await, (1001, "Going away".to_owned()));
    }
    // Nothing listens any more.
    assert!(TcpStream::connect(api.addr).await.is_err());
    api.finish().await;
}

#[tokio::test]
async fn messages_over_128_kb_or_frames_over_32_kb_close_with_1009() {
    let api = serve(full_api()).await;
    // 100 KB in 25 KB frames is fine.
    let mut c = api.open("").await;
    let message = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(100 * 1024));
    c.send_fragmented(&message, 25 * 1024).await;
    assert_eq!(c.json().await["length"], message.len());

    // 129 KB in 25 KB frames is too much.
    let big = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(129 * 1024));
    c.send_fragmented(&big, 25 * 1024).await;
    assert_eq!(c.closed().await, 1009);
    assert_eq!(api.disconnected(&c.id).await.0, 1009);

    // One 33 KB frame is too much too.
    let mut d = api.open("").await;
    d.ws.send(Message::text("y".repeat(33 * 1024)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.closed().await, 1009);
    assert_eq!(api.disconnected(&d.id).await.0, 1009);
    api.finish().await;
}

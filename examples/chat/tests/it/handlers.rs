//! Both functions' handlers, end to end below the Lambda runtime: real events (API Gateway's
//! shapes), the SQLite store on a temporary file, and a fake `@connections` API over HTTP.

use std::collections::BTreeSet;

use chat::{
    App, ConnectionStore, Connections, Delivery, Handled, SqliteStore, Store, handle_broadcast,
    handle_websocket,
};
use coldstart_runtime::events::apigw::{ApiGatewayV2httpRequest, ApiGatewayWebsocketProxyRequest};
use coldstart_runtime::events::encodings::Body;
use serde_json::{Value, json};

use crate::support::{FakeConnections, TempDir, sdk_config};

struct Harness {
    app: App,
    fake: FakeConnections,
    _dir: TempDir,
}

async fn harness() -> Harness {
    let dir = TempDir::new("handlers");
    let store = SqliteStore::open(dir.path().join("connections.sqlite3"))
        .await
        .expect("open the store");
    let fake = FakeConnections::start().await;
    let app = App {
        store: Store::Sqlite(store),
        connections: Connections::with_endpoint(&sdk_config().await, fake.url()),
    };
    Harness {
        app,
        fake,
        _dir: dir,
    }
}

/// A WebSocket event as API Gateway sends it (see the spec, section 10.2).
fn websocket_event(
    route_key: &str,
    connection_id: &str,
    extra: Value,
) -> ApiGatewayWebsocketProxyRequest {
    let event_type = match route_key {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut event = json!({
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": "LkGc1Gv9IAMFZ0Q=",
            "requestTime": "19/Jan/2023:21:13:26 +0000",
            "messageDirection": "IN",
            "stage": "staging",
            "connectedAt": 1_674_162_806_344_i64,
            "requestTimeEpoch": 1_674_162_806_345_i64,
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "wscat"},
            "requestId": "LkGc1Gv9IAMFZ0Q=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    serde_json::from_value(event).expect("a websocket event")
}

fn message(route_key: &str, connection_id: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut event = websocket_event(route_key, connection_id, json!({ "body": body }));
    event.request_context.message_id = Some("LkGc2eRfoAMCJ9Q=".into());
    event
}

/// An HTTP API payload 2.0 event for `POST /broadcast`.
fn broadcast_request(query: &str, body: &str, base64: bool) -> ApiGatewayV2httpRequest {
    let parameters: serde_json::Map<String, Value> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    serde_json::from_value(json!({
        "version": "2.0",
        "routeKey": "POST /broadcast",
        "rawPath": "/broadcast",
        "rawQueryString": query,
        "headers": {"content-type": "text/plain", "host": "127.0.0.1:9100"},
        "queryStringParameters": parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "127.0.0.1:9100",
            "domainPrefix": "127",
            "http": {"method": "POST", "path": "/broadcast", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "curl/8.5.0"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "POST /broadcast",
            "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1_583_348_638_390_i64
        },
        "body": body,
        "isBase64Encoded": base64
    }))
    .expect("an http api event")
}

async fn connect(harness: &Harness, connection_id: &str, channel: Option<&str>) {
    let query = channel.map_or(json!({}), |channel| {
        json!({"queryStringParameters": {"channel": channel},
               "multiValueQueryStringParameters": {"channel": [channel]}})
    });
    let event = websocket_event("$connect", connection_id, query);
    let (response, _) = handle_websocket(&harness.app, event)
        .await
        .expect("connect");
    assert_eq!(
        serde_json::to_value(&response).ok(),
        Some(json!({"statusCode": 200}))
    );
}

async fn channel(harness: &Harness, channel: &str) -> BTreeSet<String> {
    harness
        .app
        .store
        .list(channel)
        .await
        .expect("list")
        .into_iter()
        .collect()
}

fn posts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(id, text)| ((*id).to_owned(), (*text).to_owned()))
        .collect()
}

#[tokio::test]
async fn connect_records_the_channel_of_the_query() {
    let harness = harness().await;
    connect(&harness, "Room0000000000A=", Some("room")).await;
    assert_eq!(
        channel(&harness, "room").await,
        BTreeSet::from(["Room0000000000A=".into()])
    );
    assert!(channel(&harness, "test").await.is_empty());
}

#[tokio::test]
async fn connect_without_a_channel_joins_test() {
    let harness = harness().await;
    connect(&harness, "NoChannel00000A=", None).await;
    connect(&harness, "EmptyChannel00A=", Some("")).await;
    assert_eq!(
        channel(&harness, "test").await,
        BTreeSet::from(["NoChannel00000A=".into(), "EmptyChannel00A=".into()])
    );
}

#[tokio::test]
async fn disconnect_forgets_the_connection() {
    let harness = harness().await;
    connect(&harness, "Leaving0000000A=", None).await;
    let event = websocket_event(
        "$disconnect",
        "Leaving0000000A=",
        json!({"requestContext": {"routeKey": "$disconnect", "eventType": "DISCONNECT",
              "connectionId": "Leaving0000000A=", "connectedAt": 1, "requestTimeEpoch": 2,
              "disconnectStatusCode": 1001, "disconnectReason": "Going away"}}),
    );
    let (response, handled) = handle_websocket(&harness.app, event)
        .await
        .expect("disconnect");
    assert_eq!(response.status_code, 200);
    assert!(matches!(handled, Handled::Disconnected));
    assert!(channel(&harness, "test").await.is_empty());
}

#[tokio::test]
async fn default_echoes_the_message_to_its_sender() {
    let harness = harness().await;
    connect(&harness, "Sender00000000A=", None).await;
    connect(&harness, "Bystander00000A=", None).await;
    let (response, handled) = handle_websocket(
        &harness.app,
        message("$default", "Sender00000000A=", "hello"),
    )
    .await
    .expect("message");
    assert_eq!(
        serde_json::to_value(&response).ok(),
        Some(json!({"statusCode": 200}))
    );
    assert!(matches!(handled, Handled::Echoed(Delivery::Sent)));
    assert_eq!(
        harness.fake.posts(),
        posts(&[("Sender00000000A=", "hello")])
    );
}

#[tokio::test]
async fn an_echo_to_a_gone_sender_forgets_it() {
    let harness = harness().await;
    connect(&harness, "Vanished000000A=", None).await;
    harness.fake.mark_gone("Vanished000000A=");
    let (response, handled) = handle_websocket(
        &harness.app,
        message("$default", "Vanished000000A=", "hello"),
    )
    .await
    .expect("message");
    assert_eq!(response.status_code, 200);
    assert!(matches!(handled, Handled::Echoed(Delivery::Gone)));
    assert!(channel(&harness, "test").await.is_empty());
}

#[tokio::test]
async fn an_echo_that_fails_otherwise_fails_the_invocation() {
    let harness = harness().await;
    connect(&harness, "Forbidden00000A=", None).await;
    harness.fake.mark_forbidden("Forbidden00000A=");
    let error = handle_websocket(
        &harness.app,
        message("$default", "Forbidden00000A=", "hello"),
    )
    .await
    .expect_err("a 403 is an error");
    assert_eq!(error.to_diagnostic().error_type, "Chat.Connections");
    assert!(
        error.chain().contains("ForbiddenException"),
        "{}",
        error.chain()
    );
    // Not gone: the record stays.
    assert_eq!(channel(&harness, "test").await.len(), 1);
}

#[tokio::test]
async fn the_broadcast_route_sends_to_the_senders_channel() {
    let harness = harness().await;
    connect(&harness, "Alice000000000A=", Some("room")).await;
    connect(&harness, "Bob00000000000A=", Some("room")).await;
    connect(&harness, "Elsewhere00000A=", Some("other")).await;
    let frame = r#"{"action":"broadcast","message":"hi all"}"#;
    let (response, handled) = handle_websocket(
        &harness.app,
        message("broadcast", "Alice000000000A=", frame),
    )
    .await
    .expect("broadcast");
    assert_eq!(response.status_code, 200);
    let Handled::Broadcast { channel, outcome } = handled else {
        panic!("not a broadcast: {handled:?}");
    };
    assert_eq!(channel, "room");
    assert_eq!(
        (outcome.sent, outcome.gone, outcome.failed.len()),
        (2, 0, 0)
    );
    assert_eq!(
        harness.fake.posts(),
        posts(&[
            ("Alice000000000A=", "hi all"),
            ("Bob00000000000A=", "hi all")
        ])
    );
}

#[tokio::test]
async fn a_websocket_event_without_a_connection_id_is_invalid() {
    let harness = harness().await;
    let event = websocket_event("$default", "", json!({}));
    let error = handle_websocket(&harness.app, event)
        .await
        .expect_err("invalid");
    assert_eq!(error.to_diagnostic().error_type, "Chat.InvalidEvent");
}

#[tokio::test]
async fn broadcast_sends_to_the_channel_and_forgets_gone_connections() {
    let harness = harness().await;
    for id in [
        "Live1000000000A=",
        "Live2000000000A=",
        "Gone0000000000A=",
        "Denied00000000A=",
    ] {
        connect(&harness, id, Some("news")).await;
    }
    connect(&harness, "OtherRoom00000A=", Some("sports")).await;
    harness.fake.mark_gone("Gone0000000000A=");
    harness.fake.mark_forbidden("Denied00000000A=");

    let (response, failures) = handle_broadcast(
        &harness.app,
        broadcast_request("channel=news", "extra!", false),
    )
    .await
    .expect("broadcast");
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response.body,
        Some(Body::Text(r#"{"sent":2,"gone":1,"failed":1}"#.into()))
    );
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].chain().contains("Denied00000000A="),
        "{}",
        failures[0].chain()
    );
    assert_eq!(
        harness.fake.posts(),
        posts(&[
            ("Live1000000000A=", "extra!"),
            ("Live2000000000A=", "extra!")
        ])
    );
    assert_eq!(
        channel(&harness, "news").await,
        BTreeSet::from([
            "Live1000000000A=".into(),
            "Live2000000000A=".into(),
            "Denied00000000A=".into()
        ])
    );
    assert_eq!(channel(&harness, "sports").await.len(), 1);
}

#[tokio::test]
async fn broadcast_defaults_to_channel_test_and_decodes_base64() {
    let harness = harness().await;
    connect(&harness, "Tester00000000A=", None).await;
    // `curl -d message` sends a form content type, which HTTP APIs pass on base64-encoded.
    let (response, _) = handle_broadcast(&harness.app, broadcast_request("", "bWVzc2FnZQ==", true))
        .await
        .expect("broadcast");
    assert_eq!(
        response.body,
        Some(Body::Text(r#"{"sent":1,"gone":0,"failed":0}"#.into()))
    );
    assert_eq!(
        harness.fake.posts(),
        posts(&[("Tester00000000A=", "message")])
    );
}

#[tokio::test]
async fn broadcast_of_an_empty_body_is_a_bad_request() {
    let harness = harness().await;
    connect(&harness, "Tester00000000A=", None).await;
    let (response, _) = handle_broadcast(&harness.app, broadcast_request("", "", false))
        .await
        .expect("broadcast");
    assert_eq!(response.status_code, 400);
    assert!(harness.fake.posts().is_empty());
}

#[tokio::test]
async fn a_broadcast_answer_is_an_http_api_response() {
    let harness = harness().await;
    let (response, _) = handle_broadcast(
        &harness.app,
        broadcast_request("channel=nobody", "x", false),
    )
    .await
    .expect("broadcast");
    let json = serde_json::to_value(&response).expect("serialise");
    assert_eq!(json["statusCode"], 200);
    assert_eq!(json["headers"]["content-type"], "application/json");
    assert_eq!(json["body"], r#"{"sent":0,"gone":0,"failed":0}"#);
}

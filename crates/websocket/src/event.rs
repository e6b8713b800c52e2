//! The events a WebSocket API sends its functions (Lambda proxy integration): `CONNECT` with the
//! upgrade request's headers and query, `MESSAGE` with the frame's body, `DISCONNECT` with the
//! close code and reason.
//!
//! The shapes follow what API Gateway sends, field for field and in its order, with nothing
//! present that it omits (no `null`s); they parse as `aws_lambda_events`'
//! `ApiGatewayWebsocketProxyRequest`. That type is not used to build them because it would
//! serialise two dozen `null` fields API Gateway never sends. Header names arrive lower-cased
//! from the HTTP parser and are sent in their usual capitalisation (`Sec-WebSocket-Key`), as
//! clients write them and API Gateway passes them on.

use std::time::SystemTime;

use base64::Engine;
use http::HeaderMap;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::api::Plan;
use crate::registry::Connection;
use crate::wire;
use coldstart_emulator::apigw::{clf, epoch_ms, query_pairs};

/// The body of a client's message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame: sent base64-encoded with `isBase64Encoded: true`.
    Binary(&'a [u8]),
}

/// The `$connect` event.
pub(crate) fn connect(
    conn: &Connection,
    plan: &Plan,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    request_id: &str,
) -> Vec<u8> {
    let (single, multi) = header_maps(headers);
    let query = raw_query.map(query_pairs).unwrap_or_default();
    let (single_query, multi_query) = if query.is_empty() {
        (None, None)
    } else {
        let (s, m) = group(query);
        (Some(s), Some(m))
    };
    let event = Event {
        headers: Some(single),
        multi_value_headers: Some(multi),
        query_string_parameters: single_query,
        multi_value_query_string_parameters: multi_query,
        request_context: context(conn, plan, wire::CONNECT, wire::EVENT_CONNECT, request_id),
        body: None,
        is_base64_encoded: false,
    };
    to_json(&event)
}

/// The event of a message routed to `route_key`.
pub(crate) fn message(
    conn: &Connection,
    plan: &Plan,
    route_key: &str,
    body: Body<'_>,
    message_id: &str,
    request_id: &str,
) -> Vec<u8> {
    let mut context = context(conn, plan, route_key, wire::EVENT_MESSAGE, request_id);
    context.message_id = Some(message_id);
    let (body, is_base64_encoded) = match body {
        Body::Text(text) => (text.to_owned(), false),
        Body::Binary(bytes) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            true,
        ),
    };
    let event = Event {
        headers: None,
        multi_value_headers: None,
        query_string_parameters: None,
        multi_value_query_string_parameters: None,
        request_context: context,
        body: Some(body),
        is_base64_encoded,
    };
    to_json(&event)
}

/// The `$disconnect` event of a connection that ended with close `code` and `reason`.
pub(crate) fn disconnect(
    conn: &Connection,
    plan: &Plan,
    code: u16,
    reason: &str,
    request_id: &str,
) -> Vec<u8> {
    let mut context = context(
        conn,
        plan,
        wire::DISCONNECT,
        wire::EVENT_DISCONNECT,
        request_id,
    );
    context.disconnect_status_code = Some(code);
    context.disconnect_reason = Some(reason);
    // API Gateway sends a few headers of its own with `$disconnect`.
    let headers = vec![
        ("Host".to_owned(), conn.domain_name.clone()),
        ("x-api-key".to_owned(), String::new()),
        ("X-Forwarded-For".to_owned(), String::new()),
        ("x-restapi".to_owned(), String::new()),
    ];
    let multi = headers
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.clone()]))
        .collect();
    let event = Event {
        headers: Some(Ordered(headers)),
        multi_value_headers: Some(Ordered(multi)),
        query_string_parameters: None,
        multi_value_query_string_parameters: None,
        request_context: context,
        body: None,
        is_base64_encoded: false,
    };
    to_json(&event)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Ordered<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_headers: Option<Ordered<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Ordered<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_query_string_parameters: Option<Ordered<Vec<String>>>,
    request_context: Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    route_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_status_code: Option<u16>,
    event_type: &'a str,
    extended_request_id: &'a str,
    request_time: String,
    message_direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason: Option<&'a str>,
    stage: &'a str,
    connected_at: u64,
    request_time_epoch: u64,
    identity: Identity<'a>,
    request_id: &'a str,
    domain_name: &'a str,
    connection_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    source_ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

fn context<'a>(
    conn: &'a Connection,
    plan: &'a Plan,
    route_key: &'a str,
    event_type: &'a str,
    request_id: &'a str,
) -> Context<'a> {
    let now = SystemTime::now();
    Context {
        route_key,
        message_id: None,
        disconnect_status_code: None,
        event_type,
        extended_request_id: request_id,
        request_time: clf(now),
        message_direction: "IN",
        disconnect_reason: None,
        stage: &plan.api.stage,
        connected_at: conn.connected_at,
        request_time_epoch: epoch_ms(now),
        identity: Identity {
            source_ip: &conn.source_ip,
            user_agent: conn.user_agent.as_deref(),
        },
        request_id,
        domain_name: &conn.domain_name,
        connection_id: &conn.id,
        api_id: &plan.api_id,
        authorizer: conn.authorizer.get(),
    }
}

fn to_json(event: &Event<'_>) -> Vec<u8> {
    // Serialising strings, numbers and maps of strings cannot fail.
    serde_json::to_vec(event).unwrap_or_default()
}

/// A JSON object whose keys keep their order.
struct Ordered<V>(Vec<(String, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `headers` (the last value of each name) and `multiValueHeaders` (all of them), names in
/// their usual capitalisation, in the order they came.
fn header_maps(headers: &HeaderMap) -> (Ordered<String>, Ordered<Vec<String>>) {
    let pairs = headers.iter().map(|(name, value)| {
        (
            capitalise(name.as_str()),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )
    });
    group(pairs.collect())
}

/// Groups repeated keys: the last value of each, and all values of each, in first-seen order.
fn group(pairs: Vec<(String, String)>) -> (Ordered<String>, Ordered<Vec<String>>) {
    let mut multi: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match multi.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v),
            None => multi.push((k, vec![v])),
        }
    }
    let single = multi
        .iter()
        .filter_map(|(k, vs)| Some((k.clone(), vs.last()?.clone())))
        .collect();
    (Ordered(single), Ordered(multi))
}

/// `sec-websocket-key` → `Sec-WebSocket-Key`.
fn capitalise(name: &str) -> String {
    name.split('-')
        .map(|word| {
            if word.eq_ignore_ascii_case("websocket") {
                return "WebSocket".to_owned();
            }
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `%XX` escapes decoded; `None` when an escape is malformed.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    use http::HeaderValue;
    use serde_json::{Value, json};

    use super::*;
    use crate::api::{RouteTarget, WebSocketApi};

    fn plan() -> Plan {
        WebSocketApi::new("chat", "prod")
            .route("$connect", RouteTarget::new("f"))
            .plan(&["f".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn conn() -> Connection {
        Connection::new(
            "L0SM9cOFvHcCIhw=".into(),
            "192.0.2.1".into(),
            Some("wscat".into()),
            "127.0.0.1:9200".into(),
        )
    }

    /// Parses `bytes`, checks that it reads as `aws_lambda_events`' WebSocket event and that
    /// that re-serialises and parses to an equal value, and returns it.
    fn parsed(bytes: &[u8]) -> Value {
        let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("not a WebSocket event ({e}): {value}"));
        let again = serde_json::to_value(&typed).unwrap_or(Value::Null);
        let reparsed: Result<ApiGatewayWebsocketProxyRequest, _> = serde_json::from_value(again);
        assert_eq!(reparsed.ok(), Some(typed));
        value
    }

    #[test]
    fn connect_event_has_api_gateways_shape() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("host", "127.0.0.1:9200"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("user-agent", "wscat"),
        ] {
            headers.append(
                http::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        let c = conn();
        let raw = connect(
            &c,
            &plan(),
            &headers,
            Some("token=x&name=a%20b&name=c"),
            "req=",
        );
        // Keys come in API Gateway's order.
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with(r#"{"headers":{"Host":"#), "{text}");
        assert!(text.contains(r#""requestContext":{"routeKey":"$connect","eventType""#));
        let e = parsed(&raw);
        assert_eq!(e["headers"]["Host"], "127.0.0.1:9200");
        assert_eq!(
            e["headers"]["Sec-WebSocket-Key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(e["headers"]["X-Multi"], "b");
        assert_eq!(e["multiValueHeaders"]["X-Multi"], json!(["a", "b"]));
        assert_eq!(
            e["queryStringParameters"],
            json!({"token": "x", "name": "c"})
        );
        assert_eq!(
            e["multiValueQueryStringParameters"],
            json!({"token": ["x"], "name": ["a b", "c"]})
        );
        assert_eq!(e["isBase64Encoded"], false);
        assert!(e.get("body").is_none());
        let ctx = &e["requestContext"];
        assert_eq!(ctx["routeKey"], "$connect");
        assert_eq!(ctx["eventType"], "CONNECT");
        assert_eq!(ctx["messageDirection"], "IN");
        assert_eq!(ctx["stage"], "prod");
        assert_eq!(ctx["requestId"], "req=");
        assert_eq!(ctx["extendedRequestId"], "req=");
        assert_eq!(ctx["connectionId"], "L0SM9cOFvHcCIhw=");
        assert_eq!(ctx["domainName"], "127.0.0.1:9200");
        assert_eq!(ctx["apiId"], "chat000000");
        assert_eq!(
            ctx["identity"],
            json!({"sourceIp": "192.0.2.1", "userAgent": "wscat"})
        );
        assert_eq!(ctx["connectedAt"], c.connected_at);
        assert!(ctx["requestTimeEpoch"].as_u64() >= Some(c.connected_at));
        assert!(
            ctx["requestTime"]
                .as_str()
                .is_some_and(|t| t.ends_with(" +0000"))
        );
        assert!(ctx.get("messageId").is_none() && ctx.get("disconnectStatusCode").is_none());
        // No query string: no query maps.
        let bare = parsed(&connect(&c, &plan(), &headers, None, "r"));
        assert!(bare.get("queryStringParameters").is_none());
        assert!(bare.get("multiValueQueryStringParameters").is_none());
    }

    #[test]
    fn message_events_carry_the_body_and_no_headers() {
        let c = conn();
        let e = parsed(&message(
            &c,
            &plan(),
            "join",
            Body::Text(r#"{"action":"join"}"#),
            "msg=",
            "req=",
        ));
        assert_eq!(e["body"], r#"{"action":"join"}"#);
        assert_eq!(e["isBase64Encoded"], false);
        assert!(e.get("headers").is_none() && e.get("multiValueHeaders").is_none());
        assert_eq!(e["requestContext"]["routeKey"], "join");
        assert_eq!(e["requestContext"]["eventType"], "MESSAGE");
        assert_eq!(e["requestContext"]["messageId"], "msg=");
        let b = parsed(&message(
            &c,
            &plan(),
            "$default",
            Body::Binary(&[0, 159, 146, 150]),
            "m",
            "r",
        ));
        assert_eq!(b["body"], "AJ+Slg==");
        assert_eq!(b["isBase64Encoded"], true);
    }

    #[test]
    fn disconnect_events_carry_the_close_code_and_reason() {
        let e = parsed(&disconnect(
            &conn(),
            &plan(),
            1005,
            "Client-side close frame status not set",
            "req=",
        ));
        let ctx = &e["requestContext"];
        assert_eq!(ctx["routeKey"], "$disconnect");
        assert_eq!(ctx["eventType"], "DISCONNECT");
        assert_eq!(ctx["disconnectStatusCode"], 1005);
        assert_eq!(
            ctx["disconnectReason"],
            "Client-side close frame status not set"
        );
        assert_eq!(e["headers"]["Host"], "127.0.0.1:9200");
        assert!(e.get("body").is_none());
    }

    #[test]
    fn header_names_are_capitalised_as_clients_write_them() {
        assert_eq!(
            capitalise("sec-websocket-extensions"),
            "Sec-WebSocket-Extensions"
        );
        assert_eq!(capitalise("x-amzn-trace-id"), "X-Amzn-Trace-Id");
        assert_eq!(capitalise("host"), "Host");
    }

    #[test]
    fn percent_decoding_refuses_malformed_escapes() {
        assert_eq!(percent_decode("a%3Db%40").as_deref(), Some(&b"a=b@"[..]));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
    }
}

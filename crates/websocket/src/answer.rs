//! Function answers read back the way API Gateway reads them: the `$connect` answer decides the
//! handshake (a non-2xx `statusCode` rejects the upgrade with that status; `headers` go on the
//! response), a two-way route's answer becomes the frame sent back, and failures become the
//! error messages API Gateway sends to clients.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::backend::Answer;
use crate::error::message_body;

/// What the `$connect` answer decides.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Upgrade, adding these headers to the 101 (e.g. `Sec-WebSocket-Protocol`).
    Accept(Vec<(HeaderName, HeaderValue)>),
    /// Answer the upgrade request with this status, headers and body instead.
    Reject {
        status: StatusCode,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    },
}

/// Headers a function may not set on the handshake response: the handshake's own and framing.
const RESERVED: [HeaderName; 5] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_ACCEPT,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
];

/// Reads the `$connect` route's answer. An answer without a numeric `statusCode` (any other
/// JSON, or none) accepts; a failed function rejects with 502, a throttled one with 429.
pub(crate) fn handshake(answer: &Answer) -> Handshake {
    let body = match answer {
        Answer::Response(body) => body,
        Answer::Throttled => return reject(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        Answer::Failed(_) | Answer::Refused(_) => {
            return reject(StatusCode::BAD_GATEWAY, "Internal server error");
        }
    };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Handshake::Accept(Vec::new());
    };
    let Some(code) = map.get("statusCode").and_then(Value::as_u64) else {
        return Handshake::Accept(Vec::new());
    };
    let headers = headers(&map);
    match u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(status) if status.is_success() => Handshake::Accept(headers),
        Some(status) if status.as_u16() >= 300 => Handshake::Reject {
            status,
            headers,
            body: body_of(&map).unwrap_or_default(),
        },
        // 1xx, or not a status at all.
        _ => reject(StatusCode::BAD_GATEWAY, "Internal server error"),
    }
}

/// The frame a two-way route sends back for the function's answer `body`, if any: the `body`
/// of a proxy response object, a JSON string's text, any other JSON as it is. `null`, an empty
/// answer and a response object without `body` send nothing.
pub(crate) fn route_response(body: &Bytes) -> Option<Message> {
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(body) {
        Err(_) => Some(frame_of(body.clone())),
        Ok(Value::Null) => None,
        Ok(Value::String(text)) => Some(Message::text(text)),
        Ok(Value::Object(map)) if map.get("statusCode").is_some_and(Value::is_number) => {
            body_of(&map).filter(|b| !b.is_empty()).map(frame_of)
        }
        Ok(_) => Some(frame_of(body.clone())),
    }
}

/// The frame for `data` (sent through `@connections` or as a route's answer): a text frame
/// when it is UTF-8, else a binary one. No copy either way.
pub(crate) fn frame_of(data: Bytes) -> Message {
    match Utf8Bytes::try_from(data.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(data),
    }
}

/// The text frame API Gateway sends a client when its message could not be handled:
/// `{"message": "Forbidden", "connectionId":"…", "requestId":"…"}` (spacing as AWS's).
pub(crate) fn error_message(message: &str, connection_id: &str, request_id: &str) -> Message {
    // The ids are base64 letters and digits: nothing to escape.
    Message::text(format!(
        r#"{{"message": "{message}", "connectionId":"{connection_id}", "requestId":"{request_id}"}}"#
    ))
}

/// `Forbidden`: no route matched and there is no `$default`.
pub(crate) const FORBIDDEN: &str = "Forbidden";
/// `Internal server error`: the route's function failed.
pub(crate) const INTERNAL_ERROR: &str = "Internal server error";

fn reject(status: StatusCode, message: &str) -> Handshake {
    Handshake::Reject {
        status,
        headers: vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body: Bytes::from(message_body(message)),
    }
}

/// `headers` and `multiValueHeaders` of a response object, minus [`RESERVED`] ones.
fn headers(map: &serde_json::Map<String, Value>) -> Vec<(HeaderName, HeaderValue)> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let mut out = Vec::new();
    let single = map.get("headers").and_then(Value::as_object).into_iter();
    let multi = map
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .into_iter();
    let pairs = single
        .flat_map(|m| m.iter().filter_map(|(k, v)| Some((k, text(v)?))))
        .chain(multi.flat_map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k, v.as_array()?)))
                .flat_map(|(k, vs)| vs.iter().filter_map(move |v| Some((k, text(v)?))))
        }));
    for (name, value) in pairs {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        if !RESERVED.contains(&name) {
            out.push((name, value));
        }
    }
    out
}

/// The `body` of a response object, base64-decoded when `isBase64Encoded`.
fn body_of(map: &serde_json::Map<String, Value>) -> Option<Bytes> {
    let body = map.get("body")?;
    let text = match body {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    if map.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .ok()
            .map(Bytes::from)
    } else {
        Some(Bytes::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(json: &str) -> Answer {
        Answer::Response(Bytes::from(json.to_owned()))
    }

    #[test]
    fn connect_answers_accept_or_reject_the_upgrade() {
        assert_eq!(
            handshake(&response(r#"{"statusCode":200}"#)),
            Handshake::Accept(vec![])
        );
        assert_eq!(handshake(&response("null")), Handshake::Accept(vec![]));
        assert_eq!(handshake(&response(r#""ok""#)), Handshake::Accept(vec![]));
        assert_eq!(
            handshake(&Answer::Response(Bytes::new())),
            Handshake::Accept(vec![])
        );
        let Handshake::Accept(headers) = handshake(&response(
            r#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat","Connection":"close"},"multiValueHeaders":{"x-a":["1","2"]}}"#,
        )) else {
            panic!("not accepted");
        };
        let names: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or_default()))
            .collect();
        assert_eq!(names, ["sec-websocket-protocol=chat", "x-a=1", "x-a=2"]);
        match handshake(&response(r#"{"statusCode":403,"body":"no"}"#)) {
            Handshake::Reject { status, body, .. } => {
                assert_eq!(status, 403);
                assert_eq!(body, "no");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failed_connects_reject_as_api_gateway_does() {
        let status = |a: &Answer| match handshake(a) {
            Handshake::Reject { status, .. } => status.as_u16(),
            Handshake::Accept(_) => 101,
        };
        assert_eq!(status(&Answer::Failed("Unhandled".into())), 502);
        assert_eq!(status(&Answer::Refused("down".into())), 502);
        assert_eq!(status(&Answer::Throttled), 429);
        assert_eq!(status(&response(r#"{"statusCode":101}"#)), 502);
        assert_eq!(status(&response(r#"{"statusCode":7000}"#)), 502);
    }

    #[test]
    fn two_way_answers_become_frames() {
        let reply = |json: &str| route_response(&Bytes::from(json.to_owned()));
        assert_eq!(
            reply(r#"{"statusCode":200,"body":"hi"}"#),
            Some(Message::text("hi"))
        );
        assert_eq!(reply(r#""hello""#), Some(Message::text("hello")));
        assert_eq!(reply(r#"{"a":1}"#), Some(Message::text(r#"{"a":1}"#)));
        assert_eq!(reply("[1, 2]"), Some(Message::text("[1, 2]")));
        assert_eq!(reply(r#"{"statusCode":200}"#), None);
        assert_eq!(reply("null"), None);
        assert_eq!(reply(""), None);
        assert_eq!(
            reply(r#"{"statusCode":200,"body":"AP8=","isBase64Encoded":true}"#),
            Some(Message::Binary(Bytes::from_static(&[0, 255])))
        );
    }

    #[test]
    fn error_messages_have_aws_shape() {
        let m = error_message(FORBIDDEN, "abc=", "def=");
        assert_eq!(
            m,
            Message::text(r#"{"message": "Forbidden", "connectionId":"abc=", "requestId":"def="}"#)
        );
        let parsed: Value =
            serde_json::from_str(m.to_text().unwrap_or_default()).unwrap_or(Value::Null);
        assert_eq!(parsed["message"], "Forbidden");
    }
}

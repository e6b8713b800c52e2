//! App responses out, in the shape the event's source reads: the buffered JSON documents of API
//! Gateway (payload 1.0 and 2.0, Function URLs) and ALB, the raw answer to a pass-through event,
//! and the HTTP-integration prelude of a streamed response.
//!
//! Which bodies travel as text and which as base64 follows `lambda_http`: text when the content
//! type is textual (see [`is_text`]) and the bytes are UTF-8, base64 otherwise, so binary bodies
//! reach the client byte for byte.

use base64::Engine;
use bytes::Bytes;
use coldstart_runtime::HttpPrelude;
use http::{HeaderMap, HeaderName, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::event::Source;

/// An app's answer, read whole.
#[derive(Debug, Clone)]
pub struct AppResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers, repeats kept.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Hop-by-hop headers: they describe the app's connection to the adapter, not the response.
const HOP_BY_HOP: [HeaderName; 3] = [
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
];

/// Whether a body with these headers is text. Textual content types are `text/*`,
/// `application/json`, `application/javascript`, `application/xml`, `application/yaml`, any type
/// ending in `+json`, `+xml` or `+yaml`, and any type with a `charset`. An encoded body
/// (`Content-Encoding`) is never text. Without a content type, `None`: the bytes decide.
pub fn is_text(headers: &HeaderMap) -> Option<bool> {
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return Some(false);
    }
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(is_textual(content_type))
}

/// Whether `content_type` names text (see [`is_text`]).
pub fn is_textual(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let has_charset = parts.any(|p| {
        p.trim()
            .split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
    });
    has_charset
        || media.starts_with("text/")
        || matches!(
            media.as_str(),
            "application/json" | "application/javascript" | "application/xml" | "application/yaml"
        )
        || ["+json", "+xml", "+yaml"]
            .iter()
            .any(|suffix| media.ends_with(suffix))
}

/// The body as the JSON document carries it: `(text, is_base64_encoded)`.
fn encode_body(headers: &HeaderMap, body: &Bytes) -> (String, bool) {
    if is_text(headers) != Some(false)
        && let Ok(text) = std::str::from_utf8(body)
    {
        return (text.to_owned(), false);
    }
    (base64::engine::general_purpose::STANDARD.encode(body), true)
}

/// A header value as text (lossily, for the rare non-UTF-8 value).
fn text(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// Names and all their values, in first-seen order, hop-by-hop headers left out.
fn grouped(headers: &HeaderMap) -> Vec<(&HeaderName, Vec<String>)> {
    headers
        .keys()
        .filter(|name| !HOP_BY_HOP.contains(name))
        .map(|name| (name, headers.get_all(name).iter().map(text).collect()))
        .collect()
}

/// The buffered answer to Lambda for `response`, in `source`'s shape.
pub fn buffered(source: Source, response: &AppResponse) -> Vec<u8> {
    let status = response.status.as_u16();
    let document = match source {
        Source::PassThrough => {
            // The app's JSON as the function's result; anything else as a JSON string.
            if response.body.is_empty() {
                Value::Null
            } else if let Ok(value) = serde_json::from_slice::<Value>(&response.body) {
                value
            } else {
                Value::String(String::from_utf8_lossy(&response.body).into_owned())
            }
        }
        Source::RestApi => {
            let (body, base64) = encode_body(&response.headers, &response.body);
            let mut single = Map::new();
            let mut multi = Map::new();
            for (name, values) in grouped(&response.headers) {
                // API Gateway merges both maps, the multi-value one winning: every value is in
                // `multiValueHeaders`, the last one also in `headers` for readers of that map.
                if let Some(last) = values.last() {
                    single.insert(name.to_string(), json!(last));
                }
                multi.insert(name.to_string(), json!(values));
            }
            json!({
                "statusCode": status,
                "headers": single,
                "multiValueHeaders": multi,
                "body": body,
                "isBase64Encoded": base64,
            })
        }
        Source::HttpApiV2 => {
            let (body, base64) = encode_body(&response.headers, &response.body);
            let mut headers = Map::new();
            let mut cookies = Vec::new();
            for (name, values) in grouped(&response.headers) {
                if name == header::SET_COOKIE {
                    cookies = values;
                } else {
                    headers.insert(name.to_string(), json!(values.join(", ")));
                }
            }
            json!({
                "statusCode": status,
                "headers": headers,
                "cookies": cookies,
                "body": body,
                "isBase64Encoded": base64,
            })
        }
        Source::Alb { multi_value } => {
            let (body, base64) = encode_body(&response.headers, &response.body);
            let description = match response.status.canonical_reason() {
                Some(reason) => format!("{status} {reason}"),
                None => status.to_string(),
            };
            let mut headers = Map::new();
            for (name, values) in grouped(&response.headers) {
                let value = if multi_value {
                    json!(values)
                } else if name == header::SET_COOKIE {
                    // One value per name: cookies cannot be joined, the last one stays.
                    json!(values.last())
                } else {
                    json!(values.join(", "))
                };
                headers.insert(name.to_string(), value);
            }
            let headers_key = if multi_value {
                "multiValueHeaders"
            } else {
                "headers"
            };
            json!({
                "statusCode": status,
                "statusDescription": description,
                headers_key: headers,
                "body": body,
                "isBase64Encoded": base64,
            })
        }
    };
    document.to_string().into_bytes()
}

/// The HTTP-integration prelude of a streamed response: status, headers (repeats joined), and
/// each `Set-Cookie` as a cookie. `Content-Length` is left out: the body goes chunked.
pub fn prelude(status: StatusCode, headers: &HeaderMap) -> HttpPrelude {
    let mut prelude = HttpPrelude::new(status.as_u16());
    for (name, values) in grouped(headers) {
        if name == header::SET_COOKIE {
            prelude.cookies.extend(values);
        } else if name != header::CONTENT_LENGTH {
            prelude.headers.push((name.to_string(), values.join(", ")));
        }
    }
    prelude
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> AppResponse {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        AppResponse {
            status: StatusCode::from_u16(status).unwrap_or_else(|e| panic!("{e}")),
            headers: map,
            body: Bytes::copy_from_slice(body),
        }
    }

    fn document(source: Source, response: &AppResponse) -> Value {
        serde_json::from_slice(&buffered(source, response)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn text_content_types_follow_lambda_http() {
        for text in [
            "text/html",
            "text/plain; charset=utf-8",
            "application/json",
            "Application/JSON",
            "application/javascript",
            "application/xml",
            "application/yaml",
            "application/problem+json",
            "image/svg+xml",
            "application/x-custom+yaml",
            "application/octet-stream; charset=latin1",
        ] {
            assert!(is_textual(text), "{text}");
        }
        for binary in [
            "application/octet-stream",
            "image/png",
            "application/pdf",
            "application/jsonp",
        ] {
            assert!(!is_textual(binary), "{binary}");
        }
        let gzipped = response(
            200,
            &[("content-type", "text/plain"), ("content-encoding", "gzip")],
            b"",
        );
        assert_eq!(is_text(&gzipped.headers), Some(false));
        assert_eq!(is_text(&HeaderMap::new()), None);
    }

    #[test]
    fn v2_answers_split_cookies_and_join_repeats() {
        let r = response(
            201,
            &[
                ("content-type", "application/json"),
                ("set-cookie", "a=1; Path=/"),
                ("set-cookie", "b=2"),
                ("x-repeat", "1"),
                ("x-repeat", "2"),
                ("transfer-encoding", "chunked"),
            ],
            br#"{"ok":true}"#,
        );
        assert_eq!(
            document(Source::HttpApiV2, &r),
            json!({"statusCode":201,"headers":{"content-type":"application/json","x-repeat":"1, 2"},
                "cookies":["a=1; Path=/","b=2"],"body":"{\"ok\":true}","isBase64Encoded":false})
        );
    }

    #[test]
    fn binary_bodies_are_base64() {
        let bytes: Vec<u8> = (0..=255).collect();
        let r = response(200, &[("content-type", "application/octet-stream")], &bytes);
        let doc = document(Source::HttpApiV2, &r);
        assert_eq!(doc["isBase64Encoded"], true);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(doc["body"].as_str().unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(decoded, bytes);
        // Declared text but not UTF-8: still base64, still exact.
        let latin = response(200, &[("content-type", "text/plain")], &[0xe9]);
        assert_eq!(document(Source::RestApi, &latin)["isBase64Encoded"], true);
        // No content type: the bytes decide.
        let plain = response(200, &[], b"hi");
        assert_eq!(document(Source::RestApi, &plain)["body"], "hi");
    }

    #[test]
    fn rest_answers_carry_both_header_maps() {
        let r = response(
            404,
            &[("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-one", "1")],
            b"",
        );
        assert_eq!(
            document(Source::RestApi, &r),
            json!({"statusCode":404,"headers":{"set-cookie":"b=2","x-one":"1"},
                "multiValueHeaders":{"set-cookie":["a=1","b=2"],"x-one":["1"]},
                "body":"","isBase64Encoded":false})
        );
    }

    #[test]
    fn alb_answers_follow_the_requests_header_mode() {
        let r = response(
            200,
            &[
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("x-r", "1"),
                ("x-r", "2"),
            ],
            b"ok",
        );
        assert_eq!(
            document(Source::Alb { multi_value: false }, &r),
            json!({"statusCode":200,"statusDescription":"200 OK",
                "headers":{"set-cookie":"b=2","x-r":"1, 2"},"body":"ok","isBase64Encoded":false})
        );
        assert_eq!(
            document(Source::Alb { multi_value: true }, &r),
            json!({"statusCode":200,"statusDescription":"200 OK",
                "multiValueHeaders":{"set-cookie":["a=1","b=2"],"x-r":["1","2"]},"body":"ok",
                "isBase64Encoded":false})
        );
        let teapot = response(418, &[], b"");
        assert_eq!(
            document(Source::Alb { multi_value: false }, &teapot)["statusDescription"],
            "418 I'm a teapot"
        );
    }

    #[test]
    fn pass_through_answers_are_the_apps_json() {
        let json_body = response(200, &[("content-type", "application/json")], br#"{"n":1}"#);
        assert_eq!(document(Source::PassThrough, &json_body), json!({"n":1}));
        let text_body = response(200, &[], b"plain words");
        assert_eq!(
            document(Source::PassThrough, &text_body),
            json!("plain words")
        );
        let empty = response(204, &[], b"");
        assert_eq!(document(Source::PassThrough, &empty), Value::Null);
    }

    #[test]
    fn preludes_move_cookies_and_drop_framing() {
        let r = response(
            200,
            &[
                ("content-type", "text/event-stream"),
                ("content-length", "5"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("transfer-encoding", "chunked"),
            ],
            b"",
        );
        let prelude = prelude(r.status, &r.headers);
        assert_eq!(prelude.status, 200);
        assert_eq!(
            prelude.headers,
            [("content-type".to_owned(), "text/event-stream".to_owned())]
        );
        assert_eq!(prelude.cookies, ["a=1", "b=2"]);
    }
}

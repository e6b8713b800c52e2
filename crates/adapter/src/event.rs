//! Events in, app requests out: which service sent an event, and the HTTP request it stands for.
//!
//! Detection follows the order that tells the shapes apart (spec §6): `requestContext.elb` is an
//! ALB target event; `version: "2.0"` an HTTP API payload 2.0 or Function URL event; `httpMethod`
//! with `resource` a REST API (or HTTP API payload 1.0) event; anything else is a pass-through
//! event, posted as it is to `AWS_LWA_PASS_THROUGH_PATH`. The events are read as plain JSON
//! rather than typed structs: every field is optional in practice, and a missing one should cost
//! a default, not the request.

use std::fmt::Write as _;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::config::Config;

/// Which service sent an event; it decides the response's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// API Gateway REST API, or HTTP API with payload 1.0.
    RestApi,
    /// API Gateway HTTP API with payload 2.0, or a Function URL.
    HttpApiV2,
    /// An Application Load Balancer target group.
    Alb {
        /// The target group has multi-value headers on: the request came with
        /// `multiValueHeaders`, and the response must use them too.
        multi_value: bool,
    },
    /// Anything else (SQS, S3, EventBridge, a direct invoke...): posted as it is.
    PassThrough,
}

impl Source {
    /// Tells the event shapes apart.
    pub fn detect(event: &Value) -> Self {
        let context = event.get("requestContext");
        if context
            .and_then(|c| c.get("elb"))
            .is_some_and(|e| !e.is_null())
        {
            let multi_value = event
                .get("multiValueHeaders")
                .is_some_and(|h| h.is_object());
            return Source::Alb { multi_value };
        }
        if event.get("version").and_then(Value::as_str) == Some("2.0") {
            return Source::HttpApiV2;
        }
        let is_string = |key: &str| event.get(key).is_some_and(Value::is_string);
        if is_string("httpMethod") && event.get("resource").is_some() {
            return Source::RestApi;
        }
        Source::PassThrough
    }
}

/// The request the app gets for one event.
#[derive(Debug, Clone)]
pub struct AppRequest {
    /// Where the event came from.
    pub source: Source,
    /// The HTTP method.
    pub method: Method,
    /// The path (base path removed) and query, encoded for a request line.
    pub path_and_query: String,
    /// The request's headers (without framing headers: the body's length is the adapter's).
    pub headers: HeaderMap,
    /// The body, base64-decoded if the event said so.
    pub body: Bytes,
    /// The event's `requestContext`, as JSON text, for `x-amzn-request-context`.
    pub request_context: Option<String>,
}

/// Characters escaped in a path or a raw query: those a request line cannot carry. `%` is not
/// among them, so an already-encoded path stays as it is.
const RAW: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
/// [`RAW`] and `?`, which would end a path.
const PATH: &AsciiSet = &RAW.add(b'?');
/// Characters escaped in a decoded query key or value: everything but RFC 3986's unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Headers that describe how the event's request was framed, not what it says; the forwarded
/// request is framed anew.
const FRAMING: [HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
];

impl AppRequest {
    /// The app request for `raw`, an event's JSON bytes. Fails only for an HTTP event whose body
    /// claims to be base64 and is not.
    pub fn from_event(raw: &Bytes, config: &Config) -> Result<Self, String> {
        let mut event: Value = match serde_json::from_slice(raw) {
            Ok(event) => event,
            Err(_) => return Ok(Self::pass_through(raw, config)),
        };
        let source = Source::detect(&event);
        let (method, path, query, mut headers) = match source {
            Source::PassThrough => return Ok(Self::pass_through(raw, config)),
            Source::HttpApiV2 => {
                let http = event.pointer("/requestContext/http");
                let method = str_at(http, "method").unwrap_or("GET");
                let path = str_at(Some(&event), "rawPath")
                    .or_else(|| str_at(http, "path"))
                    .unwrap_or("/");
                let query = str_at(Some(&event), "rawQueryString").unwrap_or("");
                let query = utf8_percent_encode(query, RAW).to_string();
                let mut headers = single_headers(event.get("headers"));
                add_cookies(&mut headers, event.get("cookies"));
                (method, path, query, headers)
            }
            Source::RestApi | Source::Alb { .. } => {
                let method = str_at(Some(&event), "httpMethod").unwrap_or("GET");
                let path = str_at(Some(&event), "path").unwrap_or("/");
                // API Gateway decodes query values; an ALB passes them as the client sent them.
                let set = match source {
                    Source::RestApi => COMPONENT,
                    _ => RAW,
                };
                let query = query_string(
                    event.get("multiValueQueryStringParameters"),
                    event.get("queryStringParameters"),
                    set,
                );
                let mut headers = multi_headers(event.get("multiValueHeaders"));
                for (name, value) in &single_headers(event.get("headers")) {
                    if !headers.contains_key(name) {
                        headers.insert(name, value.clone());
                    }
                }
                (method, path, query, headers)
            }
        };

        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let path = remove_base_path(path, config.remove_base_path.as_deref());
        let mut path_and_query = utf8_percent_encode(path, PATH).to_string();
        if !path_and_query.starts_with('/') {
            path_and_query.insert(0, '/');
        }
        if !query.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(&query);
        }

        for name in &FRAMING {
            headers.remove(name);
        }
        if let Some(source_header) = &config.authorization_source
            && let Some(value) = headers.get(source_header).cloned()
        {
            headers.insert(header::AUTHORIZATION, value);
        }

        let request_context = event.get("requestContext").map(Value::to_string);
        let base64 = is_true(event.get("isBase64Encoded"));
        // The body is read last and taken out of the event, so it is not copied.
        let body = match event.get_mut("body").map(Value::take) {
            Some(Value::String(body)) if base64 => Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .map_err(|e| format!("the event's body is not valid base64: {e}"))?,
            ),
            Some(Value::String(body)) => Bytes::from(body),
            _ => Bytes::new(),
        };

        Ok(Self {
            source,
            method,
            path_and_query,
            headers,
            body,
            request_context,
        })
    }

    /// `POST` of the event itself to the pass-through path.
    fn pass_through(raw: &Bytes, config: &Config) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            source: Source::PassThrough,
            method: Method::POST,
            path_and_query: config.pass_through_path.clone(),
            headers,
            body: raw.clone(),
            request_context: None,
        }
    }
}

/// `path` without `base`, when it starts with it at a segment boundary.
fn remove_base_path<'a>(path: &'a str, base: Option<&str>) -> &'a str {
    let Some(base) = base else {
        return path;
    };
    match path.strip_prefix(base) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

fn str_at<'v>(object: Option<&'v Value>, key: &str) -> Option<&'v str> {
    object?.get(key)?.as_str()
}

fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A `{"name": "value"}` header map; invalid names or values are left out.
fn single_headers(map: Option<&Value>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in map.and_then(Value::as_object).into_iter().flatten() {
        if let (Some(name), Some(value)) =
            (header_name(name), value.as_str().and_then(header_value))
        {
            headers.insert(name, value);
        }
    }
    headers
}

/// A `{"name": ["value", ...]}` header map, each value its own header line.
fn multi_headers(map: Option<&Value>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, values) in map.and_then(Value::as_object).into_iter().flatten() {
        let Some(name) = header_name(name) else {
            continue;
        };
        for value in values.as_array().into_iter().flatten() {
            if let Some(value) = value.as_str().and_then(header_value) {
                headers.append(name.clone(), value);
            }
        }
    }
    headers
}

fn header_name(name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).ok()
}

fn header_value(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(value).ok()
}

/// Payload 2.0 moves `Cookie` headers into `cookies`; they go back as one `cookie` header.
fn add_cookies(headers: &mut HeaderMap, cookies: Option<&Value>) {
    let cookies: Vec<&str> = cookies
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if cookies.is_empty() {
        return;
    }
    let mut joined = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(|existing| vec![existing])
        .unwrap_or_default();
    joined.extend(cookies);
    if let Some(value) = header_value(&joined.join("; ")) {
        headers.insert(header::COOKIE, value);
    }
}

/// The query string of a payload 1.0 or ALB event: the multi-value map if present, else the
/// single-value one, each key and value escaped with `set`.
fn query_string(multi: Option<&Value>, single: Option<&Value>, set: &'static AsciiSet) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match multi.and_then(Value::as_object) {
        Some(multi) => {
            for (key, values) in multi {
                for value in values.as_array().into_iter().flatten() {
                    if let Some(value) = value.as_str() {
                        pairs.push((key, value));
                    }
                }
            }
        }
        None => {
            for (key, value) in single.and_then(Value::as_object).into_iter().flatten() {
                if let Some(value) = value.as_str() {
                    pairs.push((key, value));
                }
            }
        }
    }
    let mut query = String::new();
    for (key, value) in pairs {
        if !query.is_empty() {
            query.push('&');
        }
        // Writing to a String cannot fail.
        let _ = write!(
            query,
            "{}={}",
            utf8_percent_encode(key, set),
            utf8_percent_encode(value, set)
        );
    }
    query
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> Config {
        Config::from_lookup(|_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn request(event: Value, config: &Config) -> AppRequest {
        let raw = Bytes::from(event.to_string());
        AppRequest::from_event(&raw, config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    #[test]
    fn detection_follows_the_spec_order() {
        let alb = json!({"requestContext":{"elb":{"targetGroupArn":"arn"}},"httpMethod":"GET","path":"/","resource":"/"});
        assert_eq!(Source::detect(&alb), Source::Alb { multi_value: false });
        let alb_multi =
            json!({"requestContext":{"elb":{}},"httpMethod":"GET","multiValueHeaders":{}});
        assert_eq!(
            Source::detect(&alb_multi),
            Source::Alb { multi_value: true }
        );
        let v2 = json!({"version":"2.0","routeKey":"$default","rawPath":"/"});
        assert_eq!(Source::detect(&v2), Source::HttpApiV2);
        let v1 = json!({"version":"1.0","resource":"/{proxy+}","httpMethod":"GET","path":"/"});
        assert_eq!(Source::detect(&v1), Source::RestApi);
        let rest = json!({"resource":"/","httpMethod":"POST","path":"/"});
        assert_eq!(Source::detect(&rest), Source::RestApi);
        let websocket = json!({"requestContext":{"connectionId":"abc","eventType":"MESSAGE"}});
        assert_eq!(Source::detect(&websocket), Source::PassThrough);
        assert_eq!(Source::detect(&json!({"Records":[]})), Source::PassThrough);
        assert_eq!(Source::detect(&json!("text")), Source::PassThrough);
    }

    #[test]
    fn v2_events_keep_the_raw_path_and_query_and_rejoin_cookies() {
        let event = json!({
            "version": "2.0",
            "rawPath": "/prod/items/a%20b",
            "rawQueryString": "x=1&x=2&y=%2F",
            "cookies": ["a=1", "b=2"],
            "headers": {"Content-Type": "text/plain", "x-multi": "1,2", "content-length": "999"},
            "requestContext": {"http": {"method": "PUT", "path": "/prod/items/a b"}},
            "body": "aGVsbG8=",
            "isBase64Encoded": true
        });
        let mut config = config();
        config.remove_base_path = Some("/prod".into());
        let r = request(event, &config);
        assert_eq!(r.source, Source::HttpApiV2);
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.path_and_query, "/items/a%20b?x=1&x=2&y=%2F");
        assert_eq!(values(&r.headers, "cookie"), ["a=1; b=2"]);
        assert_eq!(values(&r.headers, "x-multi"), ["1,2"]);
        assert_eq!(values(&r.headers, "content-length"), Vec::<&str>::new());
        assert_eq!(r.body, "hello");
        assert_eq!(
            r.request_context.as_deref(),
            Some(r#"{"http":{"method":"PUT","path":"/prod/items/a b"}}"#)
        );
    }

    #[test]
    fn rest_events_merge_header_maps_and_encode_decoded_queries() {
        let event = json!({
            "resource": "/{proxy+}",
            "path": "/hello world",
            "httpMethod": "POST",
            "headers": {"Host": "example.com", "X-Single": "s", "X-Repeated": "last"},
            "multiValueHeaders": {"X-Repeated": ["first", "last"], "Accept": ["a/b"]},
            "queryStringParameters": {"q": "last"},
            "multiValueQueryStringParameters": {"q": ["a b", "c&d"], "empty": [""]},
            "requestContext": {"stage": "prod"},
            "body": "{\"k\":1}",
            "isBase64Encoded": false
        });
        let r = request(event, &config());
        assert_eq!(r.source, Source::RestApi);
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path_and_query, "/hello%20world?empty=&q=a%20b&q=c%26d");
        assert_eq!(values(&r.headers, "x-repeated"), ["first", "last"]);
        assert_eq!(values(&r.headers, "x-single"), ["s"]);
        assert_eq!(values(&r.headers, "host"), ["example.com"]);
        assert_eq!(r.body, "{\"k\":1}");
    }

    #[test]
    fn alb_query_values_stay_as_the_client_encoded_them() {
        let event = json!({
            "requestContext": {"elb": {"targetGroupArn": "arn"}},
            "httpMethod": "GET",
            "path": "/search",
            "queryStringParameters": {"q": "a%20b", "r": "x+y"},
            "headers": {"x-forwarded-for": "1.2.3.4"},
            "body": null,
            "isBase64Encoded": false
        });
        let r = request(event, &config());
        assert_eq!(r.source, Source::Alb { multi_value: false });
        assert_eq!(r.path_and_query, "/search?q=a%20b&r=x+y");
        assert!(r.body.is_empty());
    }

    #[test]
    fn other_events_are_posted_as_they_are_to_the_pass_through_path() {
        let raw = Bytes::from_static(br#"{"Records":[{"body":"x"}],  "z":1}"#);
        let r = AppRequest::from_event(&raw, &config()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.source, Source::PassThrough);
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path_and_query, "/events");
        assert_eq!(r.body, raw);
        assert_eq!(values(&r.headers, "content-type"), ["application/json"]);
        assert_eq!(r.request_context, None);
    }

    #[test]
    fn base_path_is_removed_only_at_a_segment_boundary() {
        assert_eq!(remove_base_path("/prod/a", Some("/prod")), "/a");
        assert_eq!(remove_base_path("/prod", Some("/prod")), "/");
        assert_eq!(
            remove_base_path("/production", Some("/prod")),
            "/production"
        );
        assert_eq!(remove_base_path("/a", None), "/a");
    }

    #[test]
    fn authorization_source_is_copied_and_bad_base64_is_an_error() {
        let mut config = config();
        config.authorization_source = Some(HeaderName::from_static("x-api-token"));
        let event = json!({"version":"2.0","rawPath":"/","headers":{"x-api-token":"Bearer t"},
            "requestContext":{"http":{"method":"GET"}}});
        let r = request(event, &config);
        assert_eq!(values(&r.headers, "authorization"), ["Bearer t"]);
        assert_eq!(values(&r.headers, "x-api-token"), ["Bearer t"]);

        let bad = json!({"version":"2.0","rawPath":"/","body":"!!!","isBase64Encoded":true,
            "requestContext":{"http":{"method":"POST"}}});
        let raw = Bytes::from(bad.to_string());
        assert!(AppRequest::from_event(&raw, &config).is_err());
    }
}

//! Events made from HTTP requests, as Function URLs and API Gateway send them: payload 2.0
//! (lower-cased headers with repeats joined by commas, `cookies` split out, `rawQueryString`)
//! and payload 1.0 (`headers` and `multiValueHeaders`, both query maps, `resource`).

use crate::apigw::{api_id, query_pairs};
use std::collections::HashMap;
use std::time::SystemTime;

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayV2httpRequest,
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
#[cfg(any(doc, test))]
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequestContext, LambdaFunctionUrlRequestContextAuthorizerDescription,
    LambdaFunctionUrlRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use http::{HeaderMap, HeaderValue, header};
use serde::Serialize;
use serde_json::Value;

use crate::clock::{clf, epoch_ms};
use crate::config::Settings;

use super::route::Matched;
use super::{Captured, HttpApi, PayloadVersion};

/// The Function URL event (payload 2.0, route `$default`); `authorizer` is the caller's IAM
/// identity when the URL checks signatures.
pub(crate) fn function_url(
    c: &Captured,
    request_id: &str,
    url_id: &str,
    settings: &Settings,
    authorizer: Option<LambdaFunctionUrlRequestContextAuthorizerDescription>,
) -> Vec<u8> {
    let now = SystemTime::now();
    let (body, is_base64_encoded) = encode_body(&c.headers, &c.body);
    let mut http = LambdaFunctionUrlRequestContextHttpDescription::default();
    http.method = Some(c.method.to_string());
    http.path = Some(c.path.clone());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some(c.source_ip.clone());
    http.user_agent = user_agent(&c.headers);
    let mut context = LambdaFunctionUrlRequestContext::default();
    context.account_id = Some(settings.account_id.clone());
    context.request_id = Some(request_id.to_owned());
    context.apiid = Some(url_id.to_owned());
    context.domain_name = Some(format!("{url_id}.lambda-url.{}.on.aws", settings.region));
    context.domain_prefix = Some(url_id.to_owned());
    context.time = Some(clf(now));
    context.time_epoch = epoch_ms(now) as i64;
    context.http = http;
    context.authorizer = authorizer;
    context.other.insert("routeKey".into(), "$default".into());
    context.other.insert("stage".into(), "$default".into());
    let event = UrlEvent {
        version: "2.0",
        route_key: "$default",
        raw_path: &c.path,
        raw_query_string: &c.raw_query,
        cookies: cookies(&c.headers),
        headers: Headers(joined_headers(&c.headers)),
        query_string_parameters: query_pairs(&c.raw_query).into_iter().fold(
            HashMap::new(),
            |mut map: HashMap<String, String>, (k, v)| {
                map.entry(k)
                    .and_modify(|joined| {
                        joined.push(',');
                        joined.push_str(&v);
                    })
                    .or_insert(v);
                map
            },
        ),
        request_context: context,
        body,
        is_base64_encoded,
    };
    serde_json::to_vec(&event).unwrap_or_default()
}

/// A Function URL's event ([`LambdaFunctionUrlRequest`]'s fields), written in one pass: what
/// is empty (`cookies`, `queryStringParameters`, `body`) is left out rather than sent empty, as
/// Function URLs do.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UrlEvent<'a> {
    version: &'static str,
    route_key: &'static str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookies: Option<Vec<String>>,
    headers: Headers,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    query_string_parameters: HashMap<String, String>,
    request_context: LambdaFunctionUrlRequestContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    is_base64_encoded: bool,
}

/// Headers as a JSON object of name to value (each name once: [`joined_headers`]).
struct Headers(HeaderMap);

impl Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name.as_str(), &String::from_utf8_lossy(value.as_bytes()))?;
        }
        map.end()
    }
}

/// The event of an HTTP API route in payload `version` (the API's own, or an authorizer's).
pub(crate) fn http_api(
    c: &Captured,
    matched: &Matched<'_>,
    api: &HttpApi,
    version: PayloadVersion,
    request_id: &str,
    settings: &Settings,
) -> Value {
    let now = SystemTime::now();
    let api_id = api_id(&api.name);
    let domain_name = format!("{api_id}.execute-api.{}.amazonaws.com", settings.region);
    let (body, is_base64_encoded) = encode_body(&c.headers, &c.body);
    let pairs = query_pairs(&c.raw_query);
    match version {
        PayloadVersion::V2 => {
            let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
            http.method = c.method.clone();
            http.path = Some(c.path.clone());
            http.protocol = Some("HTTP/1.1".into());
            http.source_ip = Some(c.source_ip.clone());
            http.user_agent = user_agent(&c.headers);
            let mut context = ApiGatewayV2httpRequestContext::default();
            context.route_key = Some(matched.route.key.clone());
            context.account_id = Some(settings.account_id.clone());
            context.stage = Some(api.stage.clone());
            context.request_id = Some(request_id.to_owned());
            context.apiid = Some(api_id.clone());
            context.domain_name = Some(domain_name);
            context.domain_prefix = Some(api_id);
            context.time = Some(clf(now));
            context.time_epoch = epoch_ms(now) as i64;
            context.http = http;
            let mut event = ApiGatewayV2httpRequest::default();
            event.version = Some("2.0".into());
            event.route_key = Some(matched.route.key.clone());
            event.raw_path = Some(c.path.clone());
            event.raw_query_string = Some(c.raw_query.clone());
            event.cookies = cookies(&c.headers);
            event.headers = joined_headers(&c.headers);
            event.query_string_parameters = QueryMap::from(group(pairs));
            event.path_parameters = matched.params.clone();
            event.request_context = context;
            event.body = body;
            event.is_base64_encoded = is_base64_encoded;
            event.stage_variables = stage_variables(api);
            // The typed request also covers authorizer events; an HTTP API's event has none of
            // their fields.
            let mut json = serde_json::to_value(&event).unwrap_or(Value::Null);
            if let Some(map) = json.as_object_mut() {
                // Payload 2.0 leaves out stage variables when the stage has none.
                if api.stage_variables.is_empty() {
                    map.remove("stageVariables");
                }
                for key in [
                    "type",
                    "methodArn",
                    "httpMethod",
                    "identitySource",
                    "authorizationToken",
                    "resource",
                ] {
                    map.remove(key);
                }
            }
            json
        }
        PayloadVersion::V1 => {
            let stage_path = if api.stage == "$default" {
                c.path.clone()
            } else {
                format!("/{}{}", api.stage, c.path)
            };
            let mut context = ApiGatewayProxyRequestContext::default();
            context.account_id = Some(settings.account_id.clone());
            context.resource_id = Some(api_id.chars().take(6).collect());
            context.stage = Some(api.stage.clone());
            context.domain_name = Some(domain_name);
            context.domain_prefix = Some(api_id.clone());
            context.request_id = Some(request_id.to_owned());
            context.protocol = Some("HTTP/1.1".into());
            context.identity.source_ip = Some(c.source_ip.clone());
            context.identity.user_agent = user_agent(&c.headers);
            context.resource_path = Some(matched.route.resource().to_owned());
            context.path = Some(stage_path);
            context.http_method = c.method.clone();
            context.request_time = Some(clf(now));
            context.request_time_epoch = epoch_ms(now) as i64;
            context.apiid = Some(api_id);
            context
                .other
                .insert("extendedRequestId".into(), request_id.into());
            let mut event = ApiGatewayProxyRequest::default();
            event.resource = Some(matched.route.resource().to_owned());
            event.path = Some(c.path.clone());
            event.http_method = c.method.clone();
            event.headers = last_values(&c.headers);
            event.multi_value_headers = c.headers.clone();
            let grouped = group(pairs);
            event.query_string_parameters = QueryMap::from(grouped.clone());
            event.multi_value_query_string_parameters = QueryMap::from(grouped);
            event.path_parameters = matched.params.clone();
            event.request_context = context;
            event.body = body;
            event.is_base64_encoded = is_base64_encoded;
            event.stage_variables = stage_variables(api);
            let mut json = serde_json::to_value(&event).unwrap_or(Value::Null);
            // Payload 1.0 sends `null` when the stage has no variables.
            if let Some(map) = json.as_object_mut()
                && api.stage_variables.is_empty()
            {
                map.insert("stageVariables".into(), Value::Null);
            }
            json
        }
    }
}

fn stage_variables(api: &HttpApi) -> HashMap<String, String> {
    api.stage_variables
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `{"Content-Type": …}` bodies API Gateway passes as text; everything else is base64.
pub(crate) fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || [
            "application/json",
            "application/javascript",
            "application/xml",
            "application/yaml",
        ]
        .contains(&ct.as_str())
        || ct.ends_with("+xml")
        || ct.ends_with("+yaml")
        || ct.ends_with("+json")
}

fn encode_body(headers: &HeaderMap, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match std::str::from_utf8(body) {
        Ok(text) if is_text(content_type) => (Some(text.to_owned()), false),
        _ => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    }
}

/// One value per header name, repeats joined with commas, `cookie` left out (it becomes
/// `cookies`).
fn joined_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if name == header::COOKIE {
            continue;
        }
        let values: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let joined = values.join(&b","[..]);
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            out.insert(name.clone(), value);
        }
    }
    out
}

/// The last value of each header, as REST APIs' single-value `headers`.
fn last_values(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if let Some(last) = headers.get_all(name).iter().next_back() {
            out.insert(name.clone(), last.clone());
        }
    }
    out
}

/// Each `name=value` of every `Cookie` header; `None` when there is none.
fn cookies(headers: &HeaderMap) -> Option<Vec<String>> {
    let cookies: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    (!cookies.is_empty()).then_some(cookies)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn group(pairs: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(headers: &[(&str, &str)], query: &str, body: &[u8]) -> Captured {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or(header::ACCEPT),
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        Captured {
            method: http::Method::POST,
            path: "/my/path".into(),
            sent_path: "/my/path".into(),
            raw_query: query.into(),
            headers: map,
            body: bytes::Bytes::copy_from_slice(body),
            source_ip: "127.0.0.1".into(),
        }
    }

    fn url_event(c: &Captured) -> Value {
        let bytes = function_url(c, "req-1", "abc", &Settings::default(), None);
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[test]
    fn function_url_event_follows_payload_2_rules() {
        let c = captured(
            &[
                ("x-multi", "a"),
                ("x-multi", "b"),
                ("cookie", "s=1; t=2"),
                ("content-type", "application/json"),
                ("user-agent", "curl/8"),
            ],
            "a=1&a=2&b=x%20y",
            br#"{"k":1}"#,
        );
        let e = url_event(&c);
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "$default");
        assert_eq!(e["rawPath"], "/my/path");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
        assert_eq!(e["cookies"], serde_json::json!(["s=1", "t=2"]));
        assert_eq!(e["headers"]["x-multi"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["queryStringParameters"]["a"], "1,2");
        assert_eq!(e["queryStringParameters"]["b"], "x y");
        assert_eq!(e["body"], r#"{"k":1}"#);
        assert_eq!(e["isBase64Encoded"], false);
        let ctx = &e["requestContext"];
        assert_eq!(ctx["requestId"], "req-1");
        assert_eq!(ctx["http"]["method"], "POST");
        assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(ctx["http"]["userAgent"], "curl/8");
        assert_eq!(ctx["domainName"], "abc.lambda-url.us-east-1.on.aws");
        assert!(ctx["timeEpoch"].as_i64().is_some_and(|t| t > 0));
        // The event parses back into the typed event.
        let typed: Result<LambdaFunctionUrlRequest, _> = serde_json::from_value(e);
        assert!(typed.is_ok());
    }

    #[test]
    fn binary_bodies_are_base64_and_empty_parts_are_omitted() {
        let c = captured(
            &[("content-type", "application/octet-stream")],
            "",
            &[0, 159, 146, 150],
        );
        let e = url_event(&c);
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], "AJ+Slg==");
        assert!(e.get("cookies").is_none() && e.get("queryStringParameters").is_none());
        let empty = url_event(&captured(&[], "", b""));
        assert!(empty.get("body").is_none());
    }

    #[test]
    fn text_content_types_follow_lambda_http() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "application/ld+json",
            "image/svg+xml",
        ] {
            assert!(is_text(Some(t)), "{t}");
        }
        for b in [
            "application/octet-stream",
            "image/png",
            "application/x-www-form-urlencoded",
        ] {
            assert!(!is_text(Some(b)), "{b}");
        }
        assert!(!is_text(None));
    }
}

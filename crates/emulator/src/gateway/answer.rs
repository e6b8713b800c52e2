//! Function answers read back the way AWS reads them: a proxy response object (`statusCode`,
//! `headers`, `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`), or — for payload 2.0
//! and Function URLs only — any other JSON as a 200 `application/json` body.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as AwsBody;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use crate::auth::Refusal;
use crate::body::Body;
use crate::error::InvokeError;
use crate::invocation::Outcome;

use super::{Door, PayloadVersion};

/// The response to the caller for how the invocation ended.
pub(crate) fn from_outcome(door: Door, outcome: Outcome) -> Response<Body> {
    let Outcome::Response { body, .. } = outcome else {
        return failed(door);
    };
    let read = match door {
        Door::HttpApi(PayloadVersion::V1) => read_v1(&body),
        Door::HttpApi(PayloadVersion::V2) | Door::FunctionUrl => read_v2(&body),
    };
    read.unwrap_or_else(|| failed(door))
}

/// The response to a refusal before the function ran (throttling, an event over 6 MB,
/// shutdown).
pub(crate) fn from_refusal(door: Door, err: &InvokeError) -> Response<Body> {
    match err {
        InvokeError::Throttled => json_message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        // A body under the door's limit whose event is over Lambda's 6 MB: Lambda's refusal.
        InvokeError::TooLarge(_) => match door {
            Door::FunctionUrl => request_too_large(door),
            Door::HttpApi(_) => event_too_large(),
        },
        _ => failed(door),
    }
}

/// No route matched: HTTP APIs answer 404, REST APIs 403.
pub(crate) fn no_route(door: Door) -> Response<Body> {
    match door {
        Door::HttpApi(PayloadVersion::V1) => {
            json_message(StatusCode::FORBIDDEN, "Missing Authentication Token")
        }
        _ => json_message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The answer to a request its route's authorizer refused, as REST APIs (`rest`) or HTTP APIs
/// word it.
pub(crate) fn refused(rest: bool, refusal: &Refusal) -> Response<Body> {
    let (status, error_type) = match refusal {
        Refusal::Unauthorized | Refusal::InvalidToken(_) => {
            (StatusCode::UNAUTHORIZED, "UnauthorizedException")
        }
        Refusal::Forbidden | Refusal::ExplicitDeny | Refusal::InsufficientScope(_) => {
            (StatusCode::FORBIDDEN, "AccessDeniedException")
        }
        Refusal::Failed(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "AuthorizerConfigurationException",
        ),
    };
    let mut response = if rest {
        let body = match refusal {
            Refusal::Forbidden | Refusal::InsufficientScope(_) => {
                serde_json::json!({"Message": "User is not authorized to access this resource"})
            }
            Refusal::ExplicitDeny => serde_json::json!({
                "Message": "User is not authorized to access this resource with an explicit deny"
            }),
            Refusal::Failed(_) => serde_json::json!({ "message": null }),
            Refusal::Unauthorized | Refusal::InvalidToken(_) => {
                serde_json::json!({"message": "Unauthorized"})
            }
        };
        let mut response = json_body(status, &body);
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
        response
    } else {
        let message = match status {
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            _ => "Internal Server Error",
        };
        json_message(status, message)
    };
    let challenge = match refusal {
        Refusal::InvalidToken(why) => Some(format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{}\"",
            why.replace('"', "'")
        )),
        Refusal::InsufficientScope(scopes) => Some(format!(
            "Bearer scope=\"{}\" error=\"insufficient_scope\" error_description=\"the token does not have any of the route's scopes\"",
            scopes.replace('"', "'")
        )),
        _ => None,
    };
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A request body over the door's limit: a Function URL's 6 MB (Lambda's words), an API's
/// 10 MB (API Gateway's plain-text answer).
pub(crate) fn request_too_large(door: Door) -> Response<Body> {
    let mut response = match door {
        Door::FunctionUrl => plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        ),
        Door::HttpApi(_) => plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "HTTP content length exceeded 10485760 bytes.",
        ),
    };
    if matches!(door, Door::HttpApi(_)) {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text; charset=utf-8"),
        );
    }
    response
}

/// An API request whose event is over Lambda's 6 MB: 413 `{"message": "Request Too Long"}`.
pub(crate) fn event_too_large() -> Response<Body> {
    let mut response = json_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("BadRequestException"),
    );
    response
}

/// The integration took longer than its timeout: REST APIs answer 504, HTTP APIs 503.
pub(crate) fn integration_timeout(rest: bool) -> Response<Body> {
    if rest {
        json_message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
    } else {
        json_message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    }
}

/// What the caller sees when the function failed or answered something unreadable.
fn failed(door: Door) -> Response<Body> {
    match door {
        Door::FunctionUrl => plain(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        Door::HttpApi(PayloadVersion::V2) => {
            json_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Door::HttpApi(PayloadVersion::V1) => {
            json_message(StatusCode::BAD_GATEWAY, "Internal server error")
        }
    }
}

/// What decides how a payload 2.0 answer is read, found in one pass without building it.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "statusCode", default)]
    status_code: Option<serde_json::Number>,
    #[serde(default)]
    cookies: Option<serde::de::IgnoredAny>,
}

fn read_v2(body: &Bytes) -> Option<Response<Body>> {
    let parsed: ApiGatewayV2httpResponse = match serde_json::from_slice::<Probe>(body) {
        // Not a response object: the JSON itself is the body.
        Ok(Probe {
            status_code: None, ..
        }) => return Some(json_as_body(body)),
        Ok(Probe {
            cookies: Some(_), ..
        }) => serde_json::from_slice(body).ok()?,
        // Without `cookies`, or not an object with a numeric `statusCode` (or not JSON).
        _ => {
            let value: Value = serde_json::from_slice(body).ok()?;
            if !value.get("statusCode").is_some_and(Value::is_number) {
                return Some(json_as_body(body));
            }
            serde_json::from_value(with_cookies(value)).ok()?
        }
    };
    build(
        parsed.status_code,
        &parsed.headers,
        &parsed.multi_value_headers,
        &parsed.cookies,
        parsed.body,
        parsed.is_base64_encoded,
    )
}

/// Any JSON that is not a response object, as a 200 `application/json` body.
fn json_as_body(body: &Bytes) -> Response<Body> {
    let mut response = Response::new(Body::full(body.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn read_v1(body: &Bytes) -> Option<Response<Body>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if !value.get("statusCode").is_some_and(Value::is_number) {
        return None;
    }
    let parsed: ApiGatewayProxyResponse = serde_json::from_value(value).ok()?;
    build(
        parsed.status_code,
        &parsed.headers,
        &parsed.multi_value_headers,
        &[],
        parsed.body,
        parsed.is_base64_encoded,
    )
}

/// `cookies` may be absent from a response object; the typed response wants a list.
fn with_cookies(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        let cookies = map.entry("cookies").or_insert(Value::Array(Vec::new()));
        if cookies.is_null() {
            *cookies = Value::Array(Vec::new());
        }
    }
    value
}

fn build(
    status: i64,
    headers: &HeaderMap,
    multi_value_headers: &HeaderMap,
    cookies: &[String],
    body: Option<AwsBody>,
    is_base64_encoded: bool,
) -> Option<Response<Body>> {
    let status = StatusCode::from_u16(u16::try_from(status).ok()?).ok()?;
    let bytes = match body {
        None | Some(AwsBody::Empty) => Bytes::new(),
        Some(AwsBody::Text(text)) if is_base64_encoded => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .ok()?,
        ),
        Some(AwsBody::Text(text)) => Bytes::from(text),
        Some(AwsBody::Binary(data)) => Bytes::from(data),
        Some(_) => Bytes::new(),
    };
    let mut response = Response::new(Body::full(bytes));
    *response.status_mut() = status;
    let out = response.headers_mut();
    for (name, value) in headers {
        out.insert(name.clone(), value.clone());
    }
    // Multi-value headers win over single ones of the same name.
    for name in multi_value_headers.keys() {
        out.remove(name);
        for value in multi_value_headers.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            out.append(header::SET_COOKIE, value);
        }
    }
    Some(response)
}

fn json_message(status: StatusCode, message: &str) -> Response<Body> {
    json_body(status, &serde_json::json!({ "message": message }))
}

fn json_body(status: StatusCode, body: &Value) -> Response<Body> {
    let body = body.to_string();
    let mut response = Response::new(Body::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain-text response.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn answer(door: Door, body: &str) -> Response<Body> {
        from_outcome(
            door,
            Outcome::Response {
                body: Bytes::from(body.to_owned()),
                content_type: None,
            },
        )
    }

    async fn body_of(r: Response<Body>) -> Bytes {
        r.into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn any_json_without_status_code_is_a_200_json_body() {
        let r = answer(Door::FunctionUrl, r#""Hello, world!""#);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body_of(r).await, Bytes::from_static(br#""Hello, world!""#));
        // An object without a numeric `statusCode` is a body too, whatever else it holds.
        for json in [
            r#"{"hello":"world","cookies":["a=1"]}"#,
            r#"{"statusCode":"201","body":"x"}"#,
            r#"[{"statusCode":201}]"#,
        ] {
            let r = answer(Door::FunctionUrl, json);
            assert_eq!(r.status(), 200, "{json}");
            assert!(r.headers().get(header::SET_COOKIE).is_none(), "{json}");
            assert_eq!(body_of(r).await, json.as_bytes(), "{json}");
        }
    }

    #[tokio::test]
    async fn a_response_object_sets_status_headers_cookies_and_base64_body() {
        let r = answer(
            Door::FunctionUrl,
            r#"{"statusCode":201,"headers":{"x-a":"1"},"cookies":["a=1","b=2"],"body":"AAEC","isBase64Encoded":true}"#,
        );
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        let cookies: Vec<_> = r.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(body_of(r).await, Bytes::from_static(&[0, 1, 2]));
        let no_cookies = answer(Door::HttpApi(PayloadVersion::V2), r#"{"statusCode":204}"#);
        assert_eq!(no_cookies.status(), 204);
        let null_cookies = answer(
            Door::FunctionUrl,
            r#"{"statusCode":202,"cookies":null,"body":"b"}"#,
        );
        assert_eq!(null_cookies.status(), 202);
        assert_eq!(body_of(null_cookies).await, Bytes::from_static(b"b"));
    }

    #[tokio::test]
    async fn rest_apis_need_a_response_object_and_merge_multi_value_headers() {
        let bad = answer(Door::HttpApi(PayloadVersion::V1), r#"{"hello":"world"}"#);
        assert_eq!(bad.status(), 502);
        assert_eq!(
            body_of(bad).await,
            Bytes::from_static(br#"{"message":"Internal server error"}"#)
        );
        let ok = answer(
            Door::HttpApi(PayloadVersion::V1),
            r#"{"statusCode":200,"headers":{"x-a":"1","x-b":"single"},"multiValueHeaders":{"x-b":["m1","m2"]},"body":"hi"}"#,
        );
        let b: Vec<_> = ok.headers().get_all("x-b").iter().collect();
        assert_eq!(b, ["m1", "m2"]);
        assert_eq!(ok.headers()["x-a"], "1");
    }

    #[tokio::test]
    async fn failures_answer_as_each_door_does() {
        let error = || Outcome::error("Unhandled", "boom".into());
        assert_eq!(from_outcome(Door::FunctionUrl, error()).status(), 502);
        assert_eq!(
            from_outcome(Door::HttpApi(PayloadVersion::V2), error()).status(),
            500
        );
        assert_eq!(
            from_outcome(Door::HttpApi(PayloadVersion::V1), error()).status(),
            502
        );
        assert_eq!(answer(Door::FunctionUrl, "not json").status(), 502);
        assert_eq!(
            from_refusal(Door::FunctionUrl, &InvokeError::Throttled).status(),
            429
        );
        assert_eq!(no_route(Door::HttpApi(PayloadVersion::V2)).status(), 404);
        let rest = integration_timeout(true);
        assert_eq!(rest.status(), 504);
        assert_eq!(
            body_of(rest).await,
            Bytes::from_static(br#"{"message":"Endpoint request timed out"}"#)
        );
        assert_eq!(integration_timeout(false).status(), 503);
        assert_eq!(no_route(Door::HttpApi(PayloadVersion::V1)).status(), 403);
    }
}

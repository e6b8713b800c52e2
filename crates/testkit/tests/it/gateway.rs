//! Function URLs and API Gateway HTTP/REST APIs in front of a real function, called with a
//! plain HTTP client.

use std::net::SocketAddr;

use bytes::Bytes;
use coldstart_emulator::{
    HttpApi, PayloadVersion, RouteKey, Router, UrlSettings, serve_function_url, serve_http_api,
};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{Harness, RawResponse, fixture, function, send};

/// A harness with `fx-http` as `web`, a Function URL for it, and an HTTP API of each payload
/// version routing to it.
struct Doors {
    h: Harness,
    url: SocketAddr,
    v2: SocketAddr,
    v1: SocketAddr,
    stop: CancellationToken,
}

async fn doors() -> Doors {
    let h = Harness::start(vec![function("web", fixture("fx-http"))]).await;
    let stop = CancellationToken::new();
    let bind = || async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let url_listener = bind().await;
    let url = url_listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(serve_function_url(
        h.emulator.clone(),
        "web".into(),
        UrlSettings::default(),
        url_listener,
        stop.clone(),
    ));
    let routes = |keys: &[&str]| {
        Router::new(
            keys.iter()
                .map(|k| {
                    (
                        RouteKey::parse(k).unwrap_or_else(|e| panic!("{e}")),
                        "web".to_owned(),
                    )
                })
                .collect(),
        )
    };
    let v2_listener = bind().await;
    let v2 = v2_listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let api = HttpApi::new(
        "api",
        PayloadVersion::V2,
        routes(&["GET /items/{id}", "ANY /files/{proxy+}", "POST /echo"]),
    );
    tokio::spawn(serve_http_api(
        h.emulator.clone(),
        api,
        v2_listener,
        stop.clone(),
    ));
    let v1_listener = bind().await;
    let v1 = v1_listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let rest = HttpApi {
        stage: "prod".into(),
        rest: true,
        ..HttpApi::new(
            "rest",
            PayloadVersion::V1,
            routes(&["GET /items/{id}", "POST /echo"]),
        )
    };
    tokio::spawn(serve_http_api(
        h.emulator.clone(),
        rest,
        v1_listener,
        stop.clone(),
    ));
    Doors {
        h,
        url,
        v2,
        v1,
        stop,
    }
}

impl Doors {
    async fn stop(self) {
        self.stop.cancel();
        self.h.stop().await;
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> RawResponse {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    send(
        addr,
        builder
            .body(Full::new(body.into()))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await
}

/// Asks the function (through its request body) to answer `respond`.
fn respond(value: Value) -> String {
    json!({ "respond": value }).to_string()
}

#[tokio::test]
async fn function_url_event_carries_the_request_as_payload_2() {
    let d = doors().await;
    let r = request(
        d.url,
        "PUT",
        "/some/path?a=1&a=2&b=x%20y",
        &[
            ("cookie", "s=1; t=2"),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("content-type", "application/octet-stream"),
        ],
        vec![0u8, 159, 146, 150],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let e = &r.json()["event"];
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["rawPath"], "/some/path");
    assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
    assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(e["headers"]["x-multi"], "one,two");
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["body"], "AJ+Slg==");
    assert_eq!(e["requestContext"]["http"]["method"], "PUT");
    assert_eq!(
        e["requestContext"]["requestId"],
        r.header("x-amzn-requestid").unwrap_or_default()
    );
    d.stop().await;
}

#[tokio::test]
async fn function_url_maps_responses_as_aws_does() {
    let d = doors().await;
    let json_header = [("content-type", "application/json")];
    // A bare JSON string is a 200 JSON body, quotes included.
    let r = request(
        d.url,
        "POST",
        "/",
        &json_header,
        respond(json!("Hello, world!")),
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_ref()),
        (200, br#""Hello, world!""#.as_ref())
    );
    // A response object: status, headers, one set-cookie per cookie, base64 body decoded.
    let r = request(
        d.url,
        "POST",
        "/",
        &json_header,
        respond(json!({"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["a=1; Path=/", "b=2"], "body": "AAEC", "isBase64Encoded": true})),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-a"), Some("1"));
    assert_eq!(r.body, Bytes::from_static(&[0, 1, 2]));
    let raw = request(
        d.url,
        "POST",
        "/",
        &json_header,
        respond(json!({"statusCode": 200, "cookies": ["a=1", "b=2"]})),
    )
    .await;
    assert_eq!(raw.all("set-cookie"), ["a=1", "b=2"]);
    // A function error is a 502.
    let r = request(
        d.url,
        "POST",
        "/",
        &json_header,
        json!({"fail": true}).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_ref()),
        (502, b"Internal Server Error".as_ref())
    );
    d.stop().await;
}

#[tokio::test]
async fn http_api_v2_routes_with_path_parameters_and_greedy_proxy() {
    let d = doors().await;
    let r = request(d.v2, "GET", "/items/42?tag=a&tag=b", &[], "").await;
    assert_eq!(r.status, 200, "{r:?}");
    let e = &r.json()["event"];
    assert_eq!(e["routeKey"], "GET /items/{id}");
    assert_eq!(e["pathParameters"], json!({"id": "42"}));
    assert_eq!(e["queryStringParameters"], json!({"tag": "a,b"}));
    assert_eq!(e["requestContext"]["routeKey"], "GET /items/{id}");
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert!(e.get("httpMethod").is_none() && e.get("body").is_none());
    // A stage without variables: payload 2.0 leaves `stageVariables` out.
    assert!(e.get("stageVariables").is_none());
    let r = request(d.v2, "DELETE", "/files/a/b/c.txt", &[], "").await;
    assert_eq!(
        r.json()["event"]["pathParameters"],
        json!({"proxy": "a/b/c.txt"})
    );
    // No route: API Gateway's 404.
    let r = request(d.v2, "GET", "/nowhere", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "Not Found"}));
    // A function error: 500.
    let r = request(
        d.v2,
        "POST",
        "/echo",
        &[("content-type", "application/json")],
        json!({"fail": 1}).to_string(),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json(), json!({"message": "Internal Server Error"}));
    d.stop().await;
}

#[tokio::test]
async fn rest_api_v1_event_has_multi_value_maps_and_stage() {
    let d = doors().await;
    let r = request(
        d.v1,
        "GET",
        "/prod/items/7?k=1&k=2",
        &[("x-h", "a"), ("x-h", "b")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let e = &r.json()["event"];
    assert_eq!(e["resource"], "/items/{id}");
    assert_eq!(e["path"], "/items/7");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["pathParameters"], json!({"id": "7"}));
    assert_eq!(e["multiValueHeaders"]["x-h"], json!(["a", "b"]));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"k": ["1", "2"]})
    );
    assert!(e["queryStringParameters"]["k"].is_string());
    // A stage without variables: payload 1.0 sends `null`.
    assert!(
        e.get("stageVariables")
            .is_some_and(serde_json::Value::is_null)
    );
    let ctx = &e["requestContext"];
    assert_eq!(ctx["stage"], "prod");
    assert_eq!(ctx["path"], "/prod/items/7");
    assert_eq!(ctx["resourcePath"], "/items/{id}");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    // A malformed answer (no statusCode) is REST's 502.
    let r = request(
        d.v1,
        "POST",
        "/prod/echo",
        &[("content-type", "application/json")],
        respond(json!({"hello": "world"})),
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json(), json!({"message": "Internal server error"}));
    // A proxy response with multi-value headers.
    let r = request(
        d.v1,
        "POST",
        "/prod/echo",
        &[("content-type", "application/json")],
        respond(json!({"statusCode": 200, "multiValueHeaders": {"x-m": ["1", "2"]}, "body": "ok"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.all("x-m"), ["1", "2"]);
    assert_eq!(r.body, Bytes::from_static(b"ok"));
    // Outside the stage or with no route: REST's 403.
    let r = request(d.v1, "GET", "/items/7", &[], "").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json(), json!({"message": "Missing Authentication Token"}));
    d.stop().await;
}

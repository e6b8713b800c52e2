//! Every event kind through the adapter (a real process under the emulator) to a real app in this
//! process, and the app's answers back in each source's shape.

use std::io::Read;

use bytes::Bytes;
use coldstart_emulator::{InvokeMode, InvokeRequest, Outcome};
use serde_json::{Value, json};

use crate::support::{
    FUNCTION, Harness, TestApp, counting, event, fixture, forwarding_to, request, unb64,
};

/// The app's echo of a request, from inside an answer's `body`.
fn echoed(answer: &Value) -> Value {
    let body = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A JSON header the app saw.
fn json_header(seen: &Value, name: &str) -> Value {
    let text = seen["headers"][name][0]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {seen}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"))
}

#[test]
fn fixture_events_parse_reserialise_and_parse_equal() {
    let dir = fixture("events");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let parsed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let again: Value =
            serde_json::from_str(&parsed.to_string()).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(parsed, again, "{path:?}");
        count += 1;
    }
    assert!(count >= 6, "{count} fixtures");
}

#[tokio::test]
async fn a_rest_api_event_reaches_the_app_and_answers_in_the_v1_shape() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(app.port, &[]));
    let event = event("apigw-v1");
    let answer = h.invoke_json(&event).await;

    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["isBase64Encoded"], false);
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert_eq!(
        answer["multiValueHeaders"]["content-type"],
        json!(["application/json"])
    );
    let seen = echoed(&answer);
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/echo/items?q=a&q=b&space=a%20b");
    assert_eq!(seen["headers"]["x-repeated"], json!(["one", "two"]));
    assert_eq!(
        seen["headers"]["host"],
        json!(["abc123.execute-api.us-east-1.amazonaws.com"])
    );
    assert_eq!(
        unb64(seen["body_base64"].as_str().unwrap_or_default()),
        b"hello from v1"
    );
    assert_eq!(
        json_header(&seen, "x-amzn-request-context"),
        event["requestContext"]
    );
    let lambda = json_header(&seen, "x-amzn-lambda-context");
    assert_eq!(lambda["env_config"]["function_name"], "web");
    assert_eq!(lambda["env_config"]["memory"], 128);
    assert_eq!(
        lambda["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:012345678912:function:web"
    );
    assert!(
        lambda["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{lambda}"
    );
    assert!(
        lambda["deadline"]
            .as_u64()
            .is_some_and(|d| d > 1_700_000_000_000)
    );
    assert!(
        seen["headers"]["x-amzn-trace-id"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("Root="))
    );
    h.stop().await;
}

#[tokio::test]
async fn an_http_api_v2_event_keeps_its_raw_path_cookies_and_binary_body() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(
        app.port,
        &[
            ("AWS_LWA_REMOVE_BASE_PATH", "/staging"),
            ("AWS_LWA_AUTHORIZATION_SOURCE", "X-Api-Token"),
        ],
    ));
    let event = event("apigw-v2");
    let answer = h.invoke_json(&event).await;

    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["cookies"], json!([]));
    assert_eq!(answer["headers"]["content-type"], "application/json");
    let seen = echoed(&answer);
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["uri"], "/echo/v2?a=1&a=2&b=%2F");
    assert_eq!(seen["headers"]["cookie"], json!(["c1=v1; c2=v2"]));
    assert_eq!(seen["headers"]["x-joined"], json!(["one,two"]));
    assert_eq!(seen["headers"]["authorization"], json!(["Bearer secret"]));
    assert_eq!(
        unb64(seen["body_base64"].as_str().unwrap_or_default()),
        [0, 1, 2, 255]
    );
    assert_eq!(
        json_header(&seen, "x-amzn-request-context"),
        event["requestContext"]
    );
    h.stop().await;
}

#[tokio::test]
async fn a_function_url_event_answers_each_cookie_and_joins_repeated_headers() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(app.port, &[]));
    let mut answer = h.invoke_json(&event("function-url")).await;
    // The app's clock.
    let date = answer["headers"]
        .as_object_mut()
        .and_then(|h| h.remove("date"));
    assert!(date.is_some(), "{answer}");
    assert_eq!(
        answer,
        json!({
            "statusCode": 200,
            "headers": {"content-type": "text/plain", "x-multi": "one, two", "content-length": "11"},
            "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark; Max-Age=60"],
            "body": "two cookies",
            "isBase64Encoded": false,
        })
    );

    let mut bytes = event("function-url");
    bytes["rawPath"] = json!("/bytes/300");
    let answer = h.invoke_json(&bytes).await;
    assert_eq!(answer["isBase64Encoded"], true);
    assert_eq!(
        unb64(answer["body"].as_str().unwrap_or_default()),
        counting(300)
    );
    h.stop().await;
}

#[tokio::test]
async fn alb_events_answer_with_a_status_description_in_the_requests_header_mode() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(app.port, &[]));

    let single = event("alb");
    let answer = h.invoke_json(&single).await;
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["statusDescription"], "200 OK");
    assert_eq!(answer["headers"]["set-cookie"], "theme=dark; Max-Age=60");
    assert_eq!(answer["headers"]["x-multi"], "one, two");
    assert_eq!(answer.get("multiValueHeaders"), None);
    assert_eq!(answer["body"], "two cookies");

    let mut echo = single.clone();
    echo["path"] = json!("/alb");
    let seen = echoed(&h.invoke_json(&echo).await);
    assert_eq!(seen["method"], "GET");
    // ALB does not decode query values: they reach the app as the client encoded them.
    assert_eq!(seen["uri"], "/alb?q=a%20b");

    let multi = event("alb-multi");
    let answer = h.invoke_json(&multi).await;
    assert_eq!(answer["statusDescription"], "200 OK");
    assert_eq!(
        answer["multiValueHeaders"]["set-cookie"],
        json!(["session=abc; Path=/; HttpOnly", "theme=dark; Max-Age=60"])
    );
    assert_eq!(
        answer["multiValueHeaders"]["x-multi"],
        json!(["one", "two"])
    );
    assert_eq!(answer.get("headers"), None);

    let mut echo = multi.clone();
    echo["path"] = json!("/alb");
    let seen = echoed(&h.invoke_json(&echo).await);
    assert_eq!(seen["uri"], "/alb?q=a%20b&q=c");
    assert_eq!(seen["headers"]["x-repeated"], json!(["one", "two"]));

    let mut teapot = single;
    teapot["path"] = json!("/status/418");
    let answer = h.invoke_json(&teapot).await;
    assert_eq!(answer["statusCode"], 418);
    assert_eq!(answer["statusDescription"], "418 I'm a teapot");
    h.stop().await;
}

#[tokio::test]
async fn other_events_are_posted_as_they_are_to_the_pass_through_path() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(app.port, &[]));
    let sqs = event("sqs");
    let seen = h.invoke_json(&sqs).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/events");
    assert_eq!(seen["headers"]["content-type"], json!(["application/json"]));
    assert_eq!(
        unb64(seen["body_base64"].as_str().unwrap_or_default()),
        sqs.to_string().as_bytes()
    );
    h.stop().await;

    let h = Harness::start(forwarding_to(
        app.port,
        &[("AWS_LWA_PASS_THROUGH_PATH", "/queue")],
    ));
    let seen = h.invoke_json(&json!({"detail-type": "tick"})).await;
    assert_eq!(seen["uri"], "/queue");
    h.stop().await;
}

#[tokio::test]
async fn configured_error_statuses_are_function_errors() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(
        app.port,
        &[("AWS_LWA_ERROR_STATUS_CODES", "500-599, 404")],
    ));
    let at = |path: &str| {
        let mut e = event("function-url");
        e["rawPath"] = json!(path);
        e
    };
    for path in ["/status/503", "/status/404"] {
        match h.invoke(&at(path)).await {
            Outcome::FunctionError { error_type, body } => {
                assert_eq!(error_type, "Adapter.ErrorStatusCode");
                let body = String::from_utf8_lossy(&body);
                assert!(body.contains(&path[8..]), "{body}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let answer = h.invoke_json(&at("/status/403")).await;
    assert_eq!(answer["statusCode"], 403);

    // Through a Function URL, the function error is a 502.
    let url = h.function_url(InvokeMode::Buffered).await;
    assert_eq!(
        request(url, "GET", "/status/500", &[], "").await.status,
        502
    );
    assert_eq!(
        request(url, "GET", "/status/201", &[], "").await.status,
        201
    );
    h.stop().await;
}

#[tokio::test]
async fn a_function_url_serves_bytes_cookies_statuses_and_requests_exactly() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(app.port, &[]));
    let url = h.function_url(InvokeMode::Buffered).await;

    let bytes = request(url, "GET", "/bytes/70000", &[], "").await;
    assert_eq!(bytes.status, 200);
    assert_eq!(
        bytes.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(bytes.body, counting(70_000));

    let sent = counting(5_000);
    let mirrored = request(
        url,
        "POST",
        "/mirror",
        &[("content-type", "application/octet-stream")],
        sent.clone(),
    )
    .await;
    assert_eq!(mirrored.body, sent);

    let cookies = request(url, "GET", "/cookies", &[], "").await;
    assert_eq!(
        cookies.all("set-cookie"),
        ["session=abc; Path=/; HttpOnly", "theme=dark; Max-Age=60"]
    );
    assert_eq!(cookies.all("x-multi"), ["one, two"]);
    assert_eq!(cookies.body, "two cookies");

    let teapot = request(url, "GET", "/status/418", &[], "").await;
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.body, "status 418");

    let echo = request(
        url,
        "DELETE",
        "/things/a%20b?x=1&x=2",
        &[("cookie", "a=1; b=2"), ("x-custom", "v")],
        "",
    )
    .await;
    let seen = echo.json();
    assert_eq!(seen["method"], "DELETE");
    assert_eq!(seen["uri"], "/things/a%20b?x=1&x=2");
    assert_eq!(seen["headers"]["cookie"], json!(["a=1; b=2"]));
    assert_eq!(seen["headers"]["x-custom"], json!(["v"]));
    h.stop().await;
}

#[tokio::test]
async fn buffered_responses_are_gzipped_when_the_client_accepts_it() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(
        app.port,
        &[("AWS_LWA_ENABLE_COMPRESSION", "true")],
    ));
    let url = h.function_url(InvokeMode::Buffered).await;
    let expected = "compress me please; ".repeat(100);

    let gzipped = request(url, "GET", "/text", &[("accept-encoding", "gzip, br")], "").await;
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(gzipped.body.len() < expected.len());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, expected);

    let plain = request(url, "GET", "/text", &[], "").await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, expected);

    // Binary bodies are not compressed.
    let bytes = request(
        url,
        "GET",
        "/bytes/1000",
        &[("accept-encoding", "gzip")],
        "",
    )
    .await;
    assert_eq!(bytes.header("content-encoding"), None);
    assert_eq!(bytes.body, counting(1000));
    h.stop().await;
}

#[tokio::test]
async fn the_tenant_id_and_trace_header_reach_the_app() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(app.port, &[]));
    let request = InvokeRequest {
        payload: Bytes::from(
            event("function-url")
                .to_string()
                .replace("/cookies", "/echo"),
        ),
        tenant_id: Some("tenant-a".into()),
        trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
        ..InvokeRequest::default()
    };
    let response = h
        .emulator
        .invoke(FUNCTION, request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request_id = response.request_id.clone();
    let Outcome::Response { body, .. } = response.buffered(usize::MAX).await.outcome else {
        panic!("not a response");
    };
    let answer: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
    let seen = echoed(&answer);
    assert_eq!(seen["uri"], "/echo");
    assert_eq!(seen["headers"]["x-amz-tenant-id"], json!(["tenant-a"]));
    assert_eq!(
        seen["headers"]["x-amzn-trace-id"],
        json!(["Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"])
    );
    let lambda = json_header(&seen, "x-amzn-lambda-context");
    assert_eq!(lambda["request_id"], request_id);
    assert_eq!(lambda["tenant_id"], "tenant-a");
    assert_eq!(
        lambda["xray_trace_id"],
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    );
    h.stop().await;
}

//! API Gateway's CORS, stage variables and per-route throttling, from a SAM template served as
//! `coldstart up` serves it, called as a browser would: preflights answered by the gateway
//! without invoking the function, the configured headers on real answers, `stageVariables` in
//! the events, and 429 beyond a route's burst.

use bytes::Bytes;
use serde_json::json;

use coldstart_stack::EndpointKind;

use crate::support::{RawResponse, TemplateProject, call_endpoint, invocations};

const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    CodeUri: http
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Items:
          Type: HttpApi
          Properties: { ApiId: !Ref Http, Path: /items, Method: post }
        Limited:
          Type: HttpApi
          Properties: { ApiId: !Ref Http, Path: /limited, Method: get }
        Slow:
          Type: HttpApi
          Properties: { ApiId: !Ref Http, Path: /slow, Method: post, TimeoutInMillis: 1000 }
        RestItems:
          Type: Api
          Properties: { RestApiId: !Ref Rest, Path: /items, Method: get }
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: [https://app.example.com]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-request-id]
        AllowCredentials: true
        MaxAge: 300
      StageVariables:
        table: items-dev
      RouteSettings:
        GET /limited:
          ThrottlingBurstLimit: 2
          ThrottlingRateLimit: 0.001
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Cors:
        AllowOrigin: "'https://app.example.com'"
        AllowHeaders: "'Content-Type'"
      Variables:
        table: items-prod
"#;

fn project(name: &str) -> TemplateProject {
    TemplateProject::new(
        &format!("api-settings-{name}"),
        TEMPLATE,
        &[("http", "fx-http")],
    )
}

fn cors_headers(r: &RawResponse) -> Vec<&(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.starts_with("access-control-"))
        .collect()
}

const BROWSER_PREFLIGHT: [(&str, &str); 3] = [
    ("origin", "https://app.example.com"),
    ("access-control-request-method", "POST"),
    ("access-control-request-headers", "content-type"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_answers_preflights_itself_and_puts_its_cors_headers_on_answers() {
    let project = project("cors");
    let (running, logs) = project.serve().await;
    let http = |method, path, headers, body| {
        call_endpoint(
            &running,
            "Http",
            EndpointKind::HttpApi,
            method,
            path,
            headers,
            body,
        )
    };

    // A browser's preflight: answered by the gateway, the function not invoked.
    let r = http("OPTIONS", "/items", &BROWSER_PREFLIGHT, "").await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("300"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        invocations(&logs, "Web"),
        0,
        "the preflight reached the function"
    );

    // An origin that is not allowed: still the gateway's 204, without any CORS header.
    let r = http(
        "OPTIONS",
        "/items",
        &[
            ("origin", "https://evil.example.com"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(cors_headers(&r).is_empty(), "{r:?}");
    assert_eq!(invocations(&logs, "Web"), 0);

    // The real request: the configured headers replace the function's own CORS headers.
    let respond = json!({"respond": {
        "statusCode": 200,
        "headers": {"access-control-allow-origin": "https://other.example.com", "x-request-id": "abc"},
        "body": "ok"
    }});
    let r = http(
        "POST",
        "/items",
        &[
            ("origin", "https://app.example.com"),
            ("content-type", "application/json"),
        ],
        &respond.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, Bytes::from_static(b"ok"));
    assert_eq!(
        r.all("access-control-allow-origin"),
        ["https://app.example.com"]
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(invocations(&logs, "Web"), 1);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_variables_reach_events_and_a_route_over_its_burst_gets_429() {
    let project = project("throttle");
    let (running, logs) = project.serve().await;
    let limited = || {
        call_endpoint(
            &running,
            "Http",
            EndpointKind::HttpApi,
            "GET",
            "/limited",
            &[],
            "",
        )
    };

    // Burst 2, a token per 1000 s: two requests pass and see the stage's variables...
    for _ in 0..2 {
        let r = limited().await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.json()["event"]["stageVariables"],
            json!({"table": "items-dev"})
        );
    }
    assert_eq!(invocations(&logs, "Web"), 2);
    // ...the third is API Gateway's 429, and the function never sees it.
    let r = limited().await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json(), json!({"message": "Too Many Requests"}));
    assert_eq!(invocations(&logs, "Web"), 2);
    // Other routes have buckets of their own (and none here).
    let r = call_endpoint(
        &running,
        "Http",
        EndpointKind::HttpApi,
        "POST",
        "/items",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The REST API's stage: its own variables, payload 1.0.
    let r = call_endpoint(
        &running,
        "Rest",
        EndpointKind::RestApi,
        "GET",
        "/prod/items",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["event"]["stageVariables"],
        json!({"table": "items-prod"})
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_answers_options_with_sams_mock() {
    let project = project("rest");
    let (running, logs) = project.serve().await;
    let rest = |method, path, headers| {
        call_endpoint(
            &running,
            "Rest",
            EndpointKind::RestApi,
            method,
            path,
            headers,
            "",
        )
    };
    let r = rest("OPTIONS", "/prod/items", &BROWSER_PREFLIGHT).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, Bytes::from_static(b"{}"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,OPTIONS")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type")
    );
    assert_eq!(
        invocations(&logs, "Web"),
        0,
        "the preflight reached the function"
    );
    // With Lambda proxy integrations the real answers' CORS headers are the function's: none.
    let r = rest(
        "GET",
        "/prod/items",
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(cors_headers(&r).is_empty(), "{r:?}");
    assert_eq!(invocations(&logs, "Web"), 1);
    // A path the API does not have: REST's 403, as before.
    let r = rest("OPTIONS", "/prod/nowhere", &BROWSER_PREFLIGHT).await;
    assert_eq!(r.status, 403);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_slower_than_its_integration_timeout_gets_503_and_the_function_finishes() {
    let project = project("timeout");
    let (running, logs) = project.serve().await;
    let post = |body: &'static str| {
        call_endpoint(
            &running,
            "Http",
            EndpointKind::HttpApi,
            "POST",
            "/slow",
            &[("content-type", "application/json")],
            body,
        )
    };
    // Warm first (a cold start is not what this measures), then within the 1 s: the answer.
    let warm = call_endpoint(
        &running,
        "Http",
        EndpointKind::HttpApi,
        "POST",
        "/items",
        &[],
        "{}",
    )
    .await;
    assert_eq!(warm.status, 200, "{warm:?}");
    let r = post(r#"{"respond":{"statusCode":200,"body":"quick"}}"#).await;
    assert_eq!((r.status, &r.body[..]), (200, &b"quick"[..]), "{r:?}");
    // Slower: the HTTP API's own 503, while the invocation runs on to its end.
    let r = post(r#"{"sleep_ms":2000,"respond":{"statusCode":200,"body":"late"}}"#).await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).ok(),
        Some(json!({"message": "Service Unavailable"}))
    );
    let id = r.header("x-amzn-requestid").unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "{r:?}");
    logs.wait_for(|l| l.starts_with("Web: REPORT") && l.contains(&id))
        .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_request_limits_answer_at_their_edges() {
    let project = project("limits");
    let (running, logs) = project.serve().await;
    let post = |body: String| {
        let running = &running;
        async move {
            call_endpoint(
                running,
                "Http",
                EndpointKind::HttpApi,
                "POST",
                "/items",
                &[("content-type", "text/plain")],
                &body,
            )
            .await
        }
    };
    // API Gateway's 10 MB: one byte over is its plain-text 413; the function never runs.
    let r = post("a".repeat(10 * 1024 * 1024 + 1)).await;
    assert_eq!(r.status, 413);
    assert_eq!(&r.body[..], b"HTTP content length exceeded 10485760 bytes.");
    // Exactly 10 MB passes the gateway, but its event is over Lambda's 6 MB.
    let r = post("a".repeat(10 * 1024 * 1024)).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).ok(),
        Some(json!({"message": "Request Too Long"}))
    );
    assert_eq!(r.header("x-amzn-errortype"), Some("BadRequestException"));
    assert_eq!(invocations(&logs, "Web"), 0);
    // 4 MB of text makes an event under 6 MB: the function gets it.
    let r = post("a".repeat(4 * 1024 * 1024)).await;
    assert_eq!(r.status, 200);
    assert_eq!(invocations(&logs, "Web"), 1);
    running.stop().await;
}

//! The JSON API and the live events, over real HTTP.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::support::{PATIENCE, send, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_from_the_api_is_listed_with_its_report_and_secrets_stay_hidden() {
    let served = start().await;
    let (status, answer) = served
        .call(
            "POST",
            "/api/invoke",
            &[("content-type", "application/json")],
            r#"{"function":"echo","payload":"{\"hello\":\"dashboard\"}"}"#,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["answer"], r#"{"hello":"dashboard"}"#, "{answer}");
    let id = answer["requestId"].as_str().unwrap_or_default().to_owned();
    let logs = answer["logs"].as_str().unwrap_or_default();
    assert!(logs.contains(&format!("REPORT RequestId: {id}")), "{logs}");

    let (_, list) = served
        .call("GET", "/api/invocations?function=echo", &[], "")
        .await;
    let first = &list["invocations"][0];
    assert_eq!(first["requestId"], id.as_str(), "{list}");
    assert_eq!(first["status"], "success");
    assert_eq!(first["payload"], r#"{"hello":"dashboard"}"#);
    assert_eq!(first["answer"], r#"{"hello":"dashboard"}"#);
    assert!(first["billedDurationMs"].as_f64().is_some(), "{first}");
    assert_eq!(first["memorySizeMb"], 128.0);
    assert!(
        first["initDurationMs"].as_f64().is_some(),
        "a cold start: {first}"
    );
    let kinds: Vec<&str> = first["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds.first(), Some(&"platform.initStart"), "{kinds:?}");
    assert!(kinds.contains(&"platform.report"), "{kinds:?}");
    let lines: Vec<&str> = first["logs"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect())
        .unwrap_or_default();
    assert!(
        lines[0].starts_with(&format!("START RequestId: {id}")),
        "{lines:?}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with(&format!("REPORT RequestId: {id}"))),
        "{lines:?}"
    );

    let (_, functions) = served.call("GET", "/api/functions", &[], "").await;
    let echo = &functions["functions"][0];
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["state"], "Active");
    assert_eq!(echo["environment"]["API_TOKEN"], "(hidden)");
    assert_eq!(echo["environment"]["TABLE_NAME"], "orders");
    assert!(
        !functions.to_string().contains("hunter2"),
        "a secret value leaked: {functions}"
    );
    assert_eq!(echo["stats"]["invocations"], 1);
    assert_eq!(echo["stats"]["coldStarts"], 1);
    let sandbox = &echo["sandboxes"][0];
    assert!(
        ["ready", "frozen", "busy"].contains(&sandbox["state"].as_str().unwrap_or_default()),
        "{echo}"
    );

    let (_, logs) = served
        .call("GET", "/api/logs?function=echo&q=PID%3D", &[], "")
        .await;
    assert_eq!(logs["lines"].as_array().map(Vec::len), Some(1), "{logs}");

    let (status, _) = served
        .call(
            "POST",
            "/api/invoke",
            &[("content-type", "application/json")],
            r#"{"function":"nope"}"#,
        )
        .await;
    assert_eq!(
        status, 404,
        "an unknown function is ResourceNotFound, as the Invoke API"
    );

    // An `Event` invocation is accepted at once and shows up once it has run.
    let (status, queued) = served
        .call(
            "POST",
            "/api/invoke",
            &[("content-type", "application/json")],
            r#"{"function":"echo","payload":"{\"later\":true}","mode":"Event"}"#,
        )
        .await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["statusCode"], 202, "{queued}");
    let id = queued["requestId"].as_str().unwrap_or_default().to_owned();
    // It runs in the background.
    let ran = served.reported(&id).await;
    assert_eq!(ran["status"], "success", "{ran}");
    assert_eq!(ran["payload"], r#"{"later":true}"#, "{ran}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_or_origin_is_refused() {
    let served = start().await;
    // DNS rebinding: a page on evil.example resolved to 127.0.0.1.
    let evil_host = http::Request::builder()
        .uri("/api/functions")
        .header("host", format!("evil.example:{}", served.addr.port()))
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(send(served.addr, evil_host).await.status(), 403);
    // A cross-site form or fetch.
    let (status, body) = served
        .call(
            "POST",
            "/api/invoke",
            &[
                ("origin", "http://evil.example"),
                ("content-type", "application/json"),
            ],
            r#"{"function":"echo"}"#,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(served.emulator.sandboxes("echo").is_empty(), "nothing ran");
    // The page's own origin passes.
    let own = format!("http://127.0.0.1:{}", served.addr.port());
    let (status, _) = served
        .call("GET", "/api/functions", &[("origin", own.as_str())], "")
        .await;
    assert_eq!(status, 200);
    let (status, _) = served.call("GET", "/", &[], "").await;
    assert_eq!(status, 200);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_bring_the_invocation_and_its_log_lines() {
    let served = start().await;
    let request = http::Request::builder()
        .uri("/api/events")
        .header("host", served.addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = send(served.addr, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        response.headers()
    );
    let mut body = response.into_body();
    let (_, answer) = served
        .call(
            "POST",
            "/api/invoke",
            &[("content-type", "application/json")],
            r#"{"function":"echo","payload":"{\"live\":1}"}"#,
        )
        .await;
    let id = answer["requestId"].as_str().unwrap_or_default().to_owned();
    let mut seen = String::new();
    let done = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen.push_str(&String::from_utf8_lossy(data));
            }
            if seen.contains(&format!("START RequestId: {id}"))
                && seen.contains(r#""status":"success""#)
            {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "events so far: {seen}");
    assert!(seen.contains("event: updates"), "{seen}");
    assert!(seen.contains(r#"{"kind":"invocation","data":"#), "{seen}");
    assert!(seen.contains(r#"{"kind":"log","data":"#), "{seen}");
    // The server stops even with a live stream open.
    served.stop().await;
}

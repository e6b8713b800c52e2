//! The Runtime API spoken by hand: the test plays the runtime, including the calls a runtime
//! must not make, and checks rapid's answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;

use coldstart_protocol::runtime as rt;

use crate::support::{Harness, RawResponse, function, repo_file, send};

/// A harness whose only function is the hand-held runtime, and that runtime's address.
pub(crate) async fn handheld() -> (Arc<Harness>, SocketAddr) {
    let h =
        Arc::new(Harness::start(vec![function("hand", repo_file("fixtures/handheld.sh"))]).await);
    (h, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Starts an invocation in the background; returns its eventual answer.
pub(crate) fn invoke(h: &Arc<Harness>, body: &'static str) -> tokio::task::JoinHandle<RawResponse> {
    let h = h.clone();
    tokio::spawn(async move { h.invoke_raw("hand", &[], body).await })
}

/// Holds a `next` open, then starts an invocation with `body`: the `next` answers with it.
/// Returns the invocation's request id and its caller's eventual answer.
async fn next_invocation(
    h: &Arc<Harness>,
    api: SocketAddr,
    body: &'static str,
) -> (String, tokio::task::JoinHandle<RawResponse>) {
    let held = tokio::spawn(async move { get(api, rt::NEXT_PATH).await });
    let caller = invoke(h, body);
    let next = held.await.unwrap_or_else(|e| panic!("{e}"));
    let id = next
        .header("lambda-runtime-aws-request-id")
        .unwrap_or_default()
        .to_owned();
    (id, caller)
}

pub(crate) async fn runtime_api(h: &Harness) -> SocketAddr {
    let line = h
        .logs
        .wait_for(|l| l.starts_with("hand: RUNTIME_API="))
        .await;
    line.trim_start_matches("hand: RUNTIME_API=")
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

pub(crate) async fn get(api: SocketAddr, path: &str) -> RawResponse {
    let request = http::Request::get(path)
        .header(http::header::HOST, api.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    send(api, request).await
}

pub(crate) async fn post(
    api: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> RawResponse {
    let mut request = http::Request::post(path).header(http::header::HOST, api.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send(
        api,
        request
            .body(Full::new(body.into()))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await
}

#[tokio::test]
async fn next_response_and_misuse_answered_as_rapid_answers() {
    let (h, _) = handheld().await;
    let caller = invoke(&h, r#"{"k":1}"#);
    let api = runtime_api(&h).await;

    // `next` delivers the event with Lambda's headers; optional ones are absent, never empty.
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let next = get(api, rt::NEXT_PATH).await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body, Bytes::from_static(br#"{"k":1}"#));
    let id = next
        .header("lambda-runtime-aws-request-id")
        .unwrap_or_default()
        .to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let deadline: u64 = next
        .header("lambda-runtime-deadline-ms")
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    assert!(
        deadline >= before + 2900 && deadline <= before + 4000,
        "{deadline} vs {before}"
    );
    assert_eq!(
        next.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:us-east-1:012345678912:function:hand")
    );
    assert!(
        next.header("lambda-runtime-trace-id")
            .is_some_and(|t| t.starts_with("Root=1-"))
    );
    assert_eq!(next.header("content-type"), Some("application/json"));
    for absent in [
        "lambda-runtime-client-context",
        "lambda-runtime-cognito-identity",
        "lambda-runtime-aws-tenant-id",
    ] {
        assert_eq!(next.header(absent), None, "{absent}");
    }

    // A wrong id is refused; init/error after the first next is a state error.
    let wrong = post(api, &rt::response_path("not-the-id"), &[], "x").await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json(),
        json!({"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"})
    );
    let late_init = post(api, rt::INIT_ERROR_PATH, &[], "{}").await;
    assert_eq!(late_init.status, 403);
    assert_eq!(late_init.json()["errorType"], "InvalidStateTransition");

    // The answer is accepted once and reaches the caller byte for byte.
    let ok = post(
        api,
        &rt::response_path(&id),
        &[("content-type", "text/plain")],
        "the answer\n",
    )
    .await;
    assert_eq!(ok.status, 202);
    assert_eq!(ok.body, Bytes::from_static(br#"{"status":"OK"}"#));
    let answer = caller.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, Bytes::from_static(b"the answer\n"));
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.header("x-amzn-requestid"), Some(id.as_str()));

    let twice = post(api, &rt::response_path(&id), &[], "again").await;
    assert_eq!(twice.status, 403);
    assert_eq!(
        twice.json(),
        json!({"errorType":"InvalidStateTransition","errorMessage":"State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State transition is not allowed"})
    );

    // `next` is held open until there is work, then carries exactly that invocation.
    let held = tokio::spawn(async move { get(api, rt::NEXT_PATH).await });
    let caller = invoke(&h, r#"{"k":2}"#);
    let next = held.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next.body, Bytes::from_static(br#"{"k":2}"#));
    let id = next
        .header("lambda-runtime-aws-request-id")
        .unwrap_or_default()
        .to_owned();

    // An error report: 202 to the runtime, the body verbatim to the caller, marked Unhandled.
    let body =
        r#"{"errorMessage":"bad input","errorType":"InvalidEventDataException","stackTrace":[]}"#;
    let err = post(
        api,
        &rt::error_path(&id),
        &[("lambda-runtime-function-error-type", "Foo")],
        body,
    )
    .await;
    assert_eq!(err.status, 202);
    let answer = caller.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(answer.body, Bytes::from(body));

    // Too large: 413 to the runtime, Function.ResponseSizeTooLarge to the caller.
    let (id, caller) = next_invocation(&h, api, r#"{"k":3}"#).await;
    let big = post(
        api,
        &rt::response_path(&id),
        &[],
        vec![b'x'; 6 * 1024 * 1024 + 101],
    )
    .await;
    assert_eq!(big.status, 413);
    assert_eq!(big.json()["errorType"], "RequestEntityTooLarge");
    let answer = caller.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(answer.json()["errorType"], "Function.ResponseSizeTooLarge");

    // A response mode other than `streaming` is refused.
    let (id, caller) = next_invocation(&h, api, r#"{"k":4}"#).await;
    let mode = post(
        api,
        &rt::response_path(&id),
        &[("lambda-runtime-function-response-mode", "foo")],
        "x",
    )
    .await;
    assert_eq!(mode.status, 400);
    assert_eq!(mode.json()["errorType"], "InvalidFunctionResponseMode");
    let answer = caller.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answer.json()["errorType"],
        "Runtime.InvalidResponseModeHeader"
    );

    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let (h, _) = handheld().await;
    let caller = invoke(&h, "{}");
    let api = runtime_api(&h).await;
    assert_eq!(get(api, "/2018-06-01/runtime/nothing").await.status, 404);
    let next = get(api, rt::NEXT_PATH).await;
    let id = next
        .header("lambda-runtime-aws-request-id")
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        post(api, &rt::response_path(&id), &[], "{}").await.status,
        202
    );
    assert_eq!(caller.await.map(|r| r.status).ok(), Some(200));
    if let Ok(h) = Arc::try_unwrap(h) {
        h.stop().await;
    }
}

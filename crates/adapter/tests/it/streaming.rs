//! `AWS_LWA_INVOKE_MODE=response_stream`: the app's response reaches the client chunk by chunk
//! through a `RESPONSE_STREAM` Function URL.

use coldstart_emulator::InvokeMode;
use http_body_util::BodyExt;

use crate::support::{
    Harness, PATIENCE, TestApp, counting, forwarding_to, request, request_streaming,
};

/// The next data chunk of `body`, waiting at most [`PATIENCE`].
async fn next_data(body: &mut hyper::body::Incoming) -> Option<bytes::Bytes> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no chunk within {PATIENCE:?}"))?;
        let frame = frame.unwrap_or_else(|e| panic!("body: {e}"));
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

#[tokio::test]
async fn the_first_chunk_reaches_the_client_before_the_app_finishes() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(
        app.port,
        &[("AWS_LWA_INVOKE_MODE", "RESPONSE_STREAM")],
    ));
    let url = h.function_url(InvokeMode::ResponseStream).await;

    let response = request_streaming(url, "GET", "/stream", &[], "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["set-cookie"], "streamed=yes");
    let mut body = response.into_body();
    // The app holds its second chunk until the gate opens, which happens only once the first
    // chunk arrived here: a buffering adapter never gets past this read.
    let mut first = Vec::new();
    while first.len() < b"first\n".len() {
        let chunk = next_data(&mut body)
            .await
            .unwrap_or_else(|| panic!("ended after {first:?}"));
        first.extend_from_slice(&chunk);
    }
    assert_eq!(first, b"first\n");
    app.gate.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = next_data(&mut body).await {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second\n");
    h.stop().await;
}

#[tokio::test]
async fn streamed_responses_keep_statuses_cookies_and_bytes() {
    let app = TestApp::start().await;
    let h = Harness::start(forwarding_to(
        app.port,
        &[
            ("AWS_LWA_INVOKE_MODE", "response_stream"),
            ("AWS_LWA_ERROR_STATUS_CODES", "503"),
        ],
    ));
    let url = h.function_url(InvokeMode::ResponseStream).await;

    let bytes = request(url, "GET", "/bytes/200000", &[], "").await;
    assert_eq!(bytes.status, 200);
    assert_eq!(
        bytes.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(bytes.body, counting(200_000));

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

    // A configured error status fails the invocation before any byte: the caller sees an error.
    let failed = request(url, "GET", "/status/503", &[], "").await;
    assert!(failed.status >= 500, "{failed:?}");
    assert_ne!(failed.body, "status 503");

    let sent = counting(3_000);
    let mirrored = request(
        url,
        "POST",
        "/mirror",
        &[("content-type", "application/octet-stream")],
        sent.clone(),
    )
    .await;
    assert_eq!(mirrored.body, sent);
    h.stop().await;
}

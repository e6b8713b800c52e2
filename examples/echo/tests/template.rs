//! The echo function as its template deploys it — Invoke API, Function URL, HTTP API route —
//! tested with `coldstart-test`: the way to test your own functions.

use coldstart_test::Stack;

/// The template, with the binary cargo built for this test as the function's bootstrap.
async fn stack() -> Stack {
    Stack::from_template(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .bootstrap("EchoFunction", env!("CARGO_BIN_EXE_echo"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers_with_its_event_through_every_door() {
    let stack = stack().await;

    let answer = stack
        .invoke("EchoFunction", r#"{"hello":"world"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.json(), serde_json::json!({"hello": "world"}));
    assert!(
        answer
            .logs
            .iter()
            .any(|l| l.starts_with("REPORT RequestId:"))
    );

    // The Function URL gets the payload 2.0 event of the request.
    let url = stack
        .get("EchoFunction", "/any/path?x=1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(url.status, 200);
    assert_eq!(url.json()["rawPath"], "/any/path");

    // The template's HttpApi event: GET /hello/{name} on SAM's implicit HTTP API.
    let route = stack
        .get("ServerlessHttpApi", "/hello/world")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(route.json()["routeKey"], "GET /hello/{name}");
    assert_eq!(route.json()["pathParameters"]["name"], "world");
    stack.stop().await;
}

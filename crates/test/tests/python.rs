//! A `Runtime: python3.13` function of a SAM template, run without Docker: the machine's Python
//! (the nearest installed) with AWS's `awslambdaric`, its `requirements.txt` installed by the
//! stack's build (once per machine, cached), invoked through the SDK and an HTTP API route.

use std::path::PathBuf;

use coldstart_test::Stack;
use serde_json::json;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testkit/fixtures/python/template.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_function_answers_fails_and_times_out_as_on_aws() {
    let stack = Stack::from_template(fixture())
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let answer = stack
        .invoke("PyFunction", r#"{"n":1}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!answer.failed(), "{}\n{:?}", answer.text(), answer.logs);
    let body = answer.json();
    assert_eq!(body["event"], json!({"n": 1}));
    assert_eq!(body["function"], "PyFunction");
    assert_eq!(body["memory"], "128");
    assert_eq!(body["six"], true, "requirements.txt was installed");
    let id = answer
        .request_id()
        .unwrap_or_else(|| panic!("{:?}", answer.logs));
    assert_eq!(body["request"], id);
    assert!(
        answer
            .logs
            .iter()
            .any(|l| l.contains("python got {'n': 1}")),
        "{:?}",
        answer.logs
    );

    // An exception: AWS's error document, with the exception's type and a stack trace.
    let failed = stack
        .invoke("PyFunction", r#"{"fail":true}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    let error = failed.json();
    assert_eq!(error["errorType"], "ValueError", "{error}");
    assert_eq!(error["errorMessage"], "the event asked for it");
    assert!(
        error["stackTrace"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{error}"
    );

    // Past its 1 s timeout: the sandbox is ended, as Lambda ends it.
    let slow = stack
        .invoke("PyFunction", r#"{"sleep":5}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        slow.json()["errorType"],
        "Sandbox.Timedout",
        "{}",
        slow.text()
    );

    // A handler whose module is not there: the init error Lambda reports for it.
    let broken = stack
        .invoke("BrokenFunction", "{}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(broken.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        broken.json()["errorType"],
        "Runtime.ImportModuleError",
        "{}",
        broken.text()
    );

    // Its HTTP API route, payload 2.0.
    let page = stack
        .get("ServerlessHttpApi", "/hello/python")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text(), "hello, python");
    stack.stop().await;
}

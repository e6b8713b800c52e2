//! `coldstart-test` as a user's tests use it: a template's stack, one bootstrap, stacks in
//! parallel, and no process left behind by a test that panics.

use std::path::PathBuf;
use std::time::Duration;

use coldstart_test::{EndpointKind, Stack};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The event echo of the test kit: answers every event with itself, prints `PID=…` at start.
fn echo() -> PathBuf {
    repo("crates/testkit/fixtures/event-echo.sh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_examples_template_runs_and_its_invocation_logs_come_back() {
    let stack = Stack::from_template(repo("examples/bash/template.yaml"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = stack
        .invoke("BashFunction", r#"{"payload":"hi from a test"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!answer.failed(), "{}", answer.text());
    // The seeds' shell function answers `Echoing request: '<event>'`.
    assert!(
        answer.text().contains(r#"{"payload":"hi from a test"}"#),
        "{}",
        answer.text()
    );
    let id = answer
        .request_id()
        .unwrap_or_else(|| panic!("{:?}", answer.logs));
    assert!(
        answer
            .logs
            .iter()
            .any(|l| l.starts_with(&format!("REPORT RequestId: {id}"))),
        "{:?}",
        answer.logs
    );
    assert!(
        stack
            .logs()
            .iter()
            .any(|(f, line)| f == "BashFunction" && line.contains("hi from a test")),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_stacks_run_side_by_side_on_free_ports() {
    let (a, b) = tokio::join!(
        Stack::function(echo()).start(),
        Stack::function(echo()).start()
    );
    let (a, b) = (
        a.unwrap_or_else(|e| panic!("{e}")),
        b.unwrap_or_else(|e| panic!("{e}")),
    );
    assert_ne!(a.url("*").ok(), b.url("*").ok());
    assert_eq!(a.endpoints()[0].kind, EndpointKind::Invoke);
    let (x, y) = tokio::join!(
        a.invoke("function", r#"{"n":1}"#),
        b.invoke("function", r#"{"n":2}"#)
    );
    assert_eq!(x.unwrap_or_else(|e| panic!("{e}")).json()["n"], 1);
    assert_eq!(y.unwrap_or_else(|e| panic!("{e}")).json()["n"], 2);
    // The SDK client is there for what `invoke` does not cover.
    let missing = a.sdk().invoke().function_name("nope").send().await;
    assert!(missing.is_err());
    a.stop().await;
    b.stop().await;
}

/// The state of process `pid` (`R`, `S`, `T`, `Z`…), or `None` once it is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

#[test]
fn a_test_that_panics_leaves_no_process_behind() {
    let (pids_tx, pids_rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async move {
            let stack = Stack::function(echo())
                .start()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            stack
                .invoke("function", "{}")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = pids_tx.send(stack.sandbox_pids("function"));
            panic!("the test fails with its stack running");
        });
    })
    .join();
    assert!(failed.is_err(), "the test body was meant to panic");
    let pids = pids_rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!pids.is_empty());
    for pid in pids {
        // Killed: gone, or a zombie until this process reaps it.
        assert!(
            matches!(state(pid), None | Some('Z')),
            "sandbox {pid} is still alive: {:?}",
            state(pid)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_reach_a_function_url() {
    let dir = std::env::temp_dir().join(format!("coldstart-test-url-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("code")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(echo(), dir.join("code/bootstrap")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("template.yaml"),
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Echo:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: code\n      Runtime: provided.al2023\n      Handler: h\n      FunctionUrlConfig:\n        AuthType: NONE\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::from_template(dir.join("template.yaml"))
        .env("GREETING", "hello")
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = stack
        .get("Echo", "/some/path?x=1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["rawPath"], "/some/path");
    assert_eq!(answer.json()["queryStringParameters"]["x"], "1");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

//! The user's tests, written with `coldstart-test` as its docs show.

use std::path::PathBuf;

use coldstart_test::{Function, Stack};

/// The repository this crate was made from (`COLDSTART_REPO`, set by the script).
fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("COLDSTART_REPO")).join(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_crates_function_answers_and_logs() {
    let stack = Stack::function(env!("CARGO_BIN_EXE_outside-hello"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = stack
        .invoke("function", r#"{"name":"outside"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!answer.failed(), "{}", answer.text());
    assert_eq!(answer.json()["greeting"], "hello, outside");
    assert!(
        answer.logs.iter().any(|l| l.contains("greeting outside")),
        "{:?}",
        answer.logs
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_answers_in_process_and_as_the_cargo_binary() {
    // In the test's process: no build, no child process.
    let in_process = Function::handler(outside_hello::greet)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The same handler behind the binary cargo built for this test.
    let binary = Function::cargo_bin("outside-hello")
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for stack in [&in_process, &binary] {
        let answer = stack
            .invoke("function", r#"{"name":"both"}"#)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.json()["greeting"], "hello, both", "{}", answer.text());
        assert!(
            answer.logs.iter().any(|l| l.ends_with("INFO\tgreeting both")),
            "{:?}",
            answer.logs
        );
    }
    assert!(in_process.sandbox_pids("function").is_empty());
    assert_eq!(binary.sandbox_pids("function").len(), 1);
    in_process.stop().await;
    binary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_examples_template_runs_as_it_is() {
    let stack = Stack::from_template(repo("examples/bash/template.yaml"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = stack
        .invoke("BashFunction", r#"{"from":"outside"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.text().contains(r#"{"from":"outside"}"#), "{}", answer.text());
    stack.stop().await;
}

/// Panics with its stack running: the script then checks that every process it started is
/// gone (their pids are written to `OUTSIDE_PIDS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "on purpose")]
async fn a_test_that_panics_leaves_no_process_behind() {
    let stack = Stack::function(env!("CARGO_BIN_EXE_outside-hello"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = stack.invoke("function", "{}").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.json()["greeting"], "hello, world");
    let pids: Vec<String> = stack
        .sandbox_pids("function")
        .iter()
        .map(u32::to_string)
        .collect();
    assert!(!pids.is_empty());
    if let Ok(file) = std::env::var("OUTSIDE_PIDS") {
        std::fs::write(file, pids.join("\n")).unwrap_or_else(|e| panic!("{e}"));
    }
    panic!("on purpose, with a sandbox running");
}

//! Real runtimes under the emulator: ours, the official `lambda_runtime` crate, and the seeds'
//! bash runtime.

use serde_json::{Value, json};

use crate::support::{Harness, fixture, function, repo_file};

async fn echo_three_times(name: &str, bootstrap: std::path::PathBuf) {
    let h = Harness::start(vec![function(name, bootstrap)]).await;
    for i in 0..3 {
        let payload = json!({"message": "hello", "i": i}).to_string();
        let r = h.invoke_raw(name, &[], payload.clone()).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-amz-function-error"), None, "{r:?}");
        assert_eq!(
            r.json(),
            serde_json::from_str::<Value>(&payload).unwrap_or_default()
        );
    }
    // Three invocations, one sandbox: the later ones were warm.
    assert_eq!(h.emulator.sandbox_pids(name).len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn coldstart_runtime_echo_answers_warm_invocations() {
    echo_three_times("echo", fixture("fx-echo")).await;
}

#[tokio::test]
async fn official_lambda_runtime_crate_runs_unmodified() {
    echo_three_times("lr-echo", fixture("fx-lr-echo")).await;
}

#[tokio::test]
async fn the_seeds_bash_runtime_runs_unmodified() {
    let mut bash = function("function", repo_file("../../examples/bash/bootstrap"));
    bash.handler = Some("function.handler".into());
    let h = Harness::start(vec![bash]).await;
    let r = h
        .invoke_raw("function", &[], r#"{"payload":"hello world!"}"#)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"Echoing request: '{"payload":"hello world!"}'"#
    );
    // The handler logs the event on stderr.
    h.logs
        .wait_for(|l| l == r#"function: {"payload":"hello world!"}"#)
        .await;
    h.stop().await;
}

//! Wrapper mode (`coldstart-adapter -- APP`): the adapter starts the app (a Python server from
//! `tests/fixtures/app.py`), waits for it, forwards signals to it, and reports an app that dies
//! early or a bad setting as an init error the caller sees.

use std::time::Duration;

use coldstart_emulator::{InvokeMode, Outcome};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::support::{Harness, PATIENCE, event, fixture, free_port, function, request};

/// The Python fixture app's command.
fn python_app() -> [String; 2] {
    [
        "python3".into(),
        fixture("app.py").to_string_lossy().into_owned(),
    ]
}

/// A function whose adapter starts the fixture app on a free port, with `env`.
fn python_function(env: &[(&str, &str)]) -> coldstart_emulator::FunctionConfig {
    let app = python_app();
    let port = free_port().to_string();
    let mut all: Vec<(&str, &str)> = vec![("AWS_LWA_PORT", &port)];
    all.extend_from_slice(env);
    function(&[&app[0], &app[1]], &all)
}

/// A Function URL event for `path`.
fn url_event(path: &str) -> Value {
    let mut e = event("function-url");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e
}

/// The app's JSON answer to `path`.
async fn app_json(h: &Harness, path: &str) -> Value {
    let answer = h.invoke_json(&url_event(path)).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body = answer["body"].as_str().unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits, with a bounded retry, until `pid` is gone.
async fn wait_gone(pid: u32) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !gone(pid) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "process {pid} still runs");
}

/// The parent pid of `pid`.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The error type and message of a failed invocation.
fn failure(outcome: Outcome) -> (String, String) {
    match outcome {
        Outcome::FunctionError { error_type, body } => {
            let body: Value = serde_json::from_slice(&body).unwrap_or_default();
            let message = body["errorMessage"].as_str().unwrap_or_default().to_owned();
            (error_type, message)
        }
        other => panic!("not a function error: {other:?}"),
    }
}

#[tokio::test]
async fn an_app_that_listens_late_and_is_unhealthy_at_first_gets_no_failed_first_request() {
    let h = Harness::start(python_function(&[
        ("APP_LISTEN_DELAY_MS", "400"),
        ("APP_UNHEALTHY_MS", "300"),
        ("AWS_LWA_READINESS_CHECK_PATH", "/health"),
        ("AWS_LWA_READINESS_CHECK_HEALTHY_STATUS", "200-299"),
    ]));
    // The very first invocation goes out while the app is still asleep.
    let seen = app_json(&h, "/pid").await;
    // The adapter checked until the app said it was healthy, then forwarded.
    h.logs.wait_for("app health check: not yet").await;
    h.logs.wait_for("app health check: ok").await;
    let pid = seen["pid"].as_u64().unwrap_or_default() as u32;
    let adapter = h.emulator.sandbox_pids(crate::support::FUNCTION);
    assert_eq!(adapter.len(), 1);
    assert_eq!(
        parent(pid),
        Some(adapter[0]),
        "the app is the adapter's child"
    );

    let echo = app_json(&h, "/hello").await;
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/hello");
    h.stop().await;
    wait_gone(pid).await;
}

#[tokio::test]
async fn a_tcp_readiness_check_only_waits_for_the_port() {
    let h = Harness::start(python_function(&[
        ("APP_UNHEALTHY_MS", "60000"),
        ("AWS_LWA_READINESS_CHECK_PATH", "/health"),
        ("AWS_LWA_READINESS_CHECK_PROTOCOL", "tcp"),
    ]));
    let seen = app_json(&h, "/pid").await;
    assert!(seen["pid"].as_u64().is_some(), "{seen}");
    assert!(
        !h.logs.all().iter().any(|l| l.contains("app health check")),
        "an HTTP check was made"
    );
    h.stop().await;
}

#[tokio::test]
async fn sigterm_to_the_adapter_reaches_the_app_and_the_adapter_exits_with_it() {
    let mut config = python_function(&[]);
    // A frozen sandbox would not see the signal until its next invocation.
    config.freeze = false;
    let h = Harness::start(config);
    let answer = app_json(&h, "/pid").await;
    let app_pid = answer["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid: {answer}")) as u32;
    let adapter_pid = h.emulator.sandbox_pids(crate::support::FUNCTION)[0];

    // To the adapter alone, not its process group: only forwarding can reach the app.
    kill(Pid::from_raw(adapter_pid as i32), Signal::SIGTERM).unwrap_or_else(|e| panic!("{e}"));
    h.logs.wait_for("app got SIGTERM").await;
    wait_gone(app_pid).await;
    wait_gone(adapter_pid).await;

    // The sandbox is gone; the next invocation starts a new one.
    let again = app_json(&h, "/pid").await;
    let again_pid = again["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid: {again}")) as u32;
    assert_ne!(again_pid, app_pid);
    h.stop().await;
}

#[tokio::test]
async fn an_app_that_exits_before_it_is_ready_is_an_init_error() {
    let h = Harness::start(python_function(&[("APP_EXIT_EARLY", "7")]));
    let (error_type, message) = failure(h.invoke(&url_event("/")).await);
    assert_eq!(error_type, "Adapter.AppExited");
    assert!(message.contains("exited before it was ready"), "{message}");
    assert!(message.contains("exit status: 7"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn an_app_that_cannot_start_is_an_init_error() {
    let h = Harness::start(function(&["/nonexistent/web-app"], &[]));
    let (error_type, message) = failure(h.invoke(&url_event("/")).await);
    assert_eq!(error_type, "Adapter.AppExited");
    assert!(message.contains("cannot start the app"), "{message}");
    assert!(message.contains("/nonexistent/web-app"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn invalid_settings_are_init_errors_the_caller_sees() {
    let h = Harness::start(function(
        &["sleep", "1000"],
        &[("AWS_LWA_INVOKE_MODE", "sideways")],
    ));
    let (error_type, message) = failure(h.invoke(&url_event("/")).await);
    assert_eq!(error_type, "Adapter.InvalidConfig");
    assert!(message.contains("AWS_LWA_INVOKE_MODE"), "{message}");
    assert!(message.contains("\"sideways\""), "{message}");
    assert!(message.contains("buffered or response_stream"), "{message}");
    h.logs.wait_for("invalid AWS_LWA_INVOKE_MODE").await;

    let url = h.function_url(InvokeMode::Buffered).await;
    assert_eq!(request(url, "GET", "/", &[], "").await.status, 502);
    h.stop().await;

    let h = Harness::start(function(
        &["sleep", "1000"],
        &[("AWS_LWA_ERROR_STATUS_CODES", "5xx")],
    ));
    let (error_type, message) = failure(h.invoke(&url_event("/")).await);
    assert_eq!(error_type, "Adapter.InvalidConfig");
    assert!(message.contains("AWS_LWA_ERROR_STATUS_CODES"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn an_app_that_closes_every_connection_is_still_served() {
    // HTTP/1.0: the app closes the connection after each response; the adapter reconnects.
    let h = Harness::start(python_function(&[("APP_HTTP_VERSION", "1.0")]));
    for path in ["/one", "/two", "/three"] {
        let echo = app_json(&h, path).await;
        assert_eq!(echo["path"], path);
    }
    h.stop().await;
}

//! Extension mode (`coldstart-adapter` in the function's `extensions`, as in `/opt/extensions/`):
//! the bootstrap is the web app itself, the adapter registers, waits for it and serves as the
//! runtime client; with per-sandbox ports, parallel invocations are served by separate sandboxes
//! of the same app.

use std::path::PathBuf;
use std::time::Duration;

use coldstart_emulator::{FunctionConfig, InvokeMode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::{FUNCTION, Harness, PATIENCE, adapter, event, fixture, free_port, request};

/// A function whose bootstrap is the Python fixture app and whose extension is the adapter.
fn app_with_adapter_extension(env: &[(&str, &str)]) -> FunctionConfig {
    let mut config = FunctionConfig::new(
        FUNCTION,
        vec!["python3".into(), fixture("app.py").into_os_string()],
    );
    config.extensions = vec![PathBuf::from(adapter())];
    config.timeout = Duration::from_secs(10);
    config.environment = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    config
}

/// A Function URL event for `path`.
fn url_event(path: &str) -> Value {
    let mut e = event("function-url");
    e["rawPath"] = json!(path);
    e
}

/// The app's JSON answer to `path`.
async fn app_json(h: &Harness, path: &str) -> Value {
    let answer = h.invoke_json(&url_event(path)).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body = answer["body"].as_str().unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn as_an_extension_the_adapter_serves_the_bootstrap_app() {
    let port = free_port().to_string();
    let h = Harness::start(app_with_adapter_extension(&[
        ("AWS_LWA_PORT", &port),
        ("APP_LISTEN_DELAY_MS", "200"),
        ("AWS_LWA_READINESS_CHECK_PATH", "/health"),
    ]));
    let seen = app_json(&h, "/pid").await;
    // The app is the bootstrap the emulator started, not a child of the adapter.
    let bootstrap = h.emulator.sandbox_pids(FUNCTION);
    assert_eq!(bootstrap, [seen["pid"].as_u64().unwrap_or_default() as u32]);
    let echo = app_json(&h, "/from/extension").await;
    assert_eq!(echo["path"], "/from/extension");

    let url = h.function_url(InvokeMode::Buffered).await;
    let answer = request(url, "POST", "/posted", &[], "body text").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["body"], "body text");
    h.stop().await;
}

#[tokio::test]
async fn as_an_extension_an_invalid_setting_is_an_init_error_the_caller_sees() {
    let port = free_port().to_string();
    let h = Harness::start(app_with_adapter_extension(&[
        ("AWS_LWA_PORT", &port),
        ("AWS_LWA_READINESS_CHECK_PROTOCOL", "udp"),
    ]));
    match h.invoke(&url_event("/")).await {
        coldstart_emulator::Outcome::FunctionError { error_type, body } => {
            assert_eq!(error_type, "Adapter.InvalidConfig");
            let body = String::from_utf8_lossy(&body);
            assert!(
                body.contains("AWS_LWA_READINESS_CHECK_PROTOCOL") && body.contains("http or tcp"),
                "{body}"
            );
        }
        other => panic!("not an init error: {other:?}"),
    }
    h.stop().await;
}

#[tokio::test]
async fn two_parallel_requests_are_served_by_two_sandboxes_of_the_same_web_app() {
    // Each `/hold` request connects here and waits for a byte: both are answered only once both
    // are in flight at the same time, which takes two sandboxes, each app on its own port.
    let barrier = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let barrier_port = barrier
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port()
        .to_string();
    let mut config = app_with_adapter_extension(&[("BARRIER_PORT", &barrier_port)]);
    config.sandbox_port = true;
    config.concurrency = 2;
    let h = Harness::start(config);

    let release = tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 2 {
            let (socket, _) = barrier.accept().await.unwrap_or_else(|e| panic!("{e}"));
            held.push(socket);
        }
        for socket in &mut held {
            socket
                .write_all(b"!")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let (a, b) = tokio::time::timeout(
        PATIENCE,
        futures_util::future::join(app_json(&h, "/hold"), app_json(&h, "/hold")),
    )
    .await
    .unwrap_or_else(|_| panic!("the two requests were not served at once"));
    release.await.unwrap_or_else(|e| panic!("{e}"));

    assert_ne!(a["pid"], b["pid"], "{a} {b}");
    assert_ne!(a["port"], b["port"], "{a} {b}");
    assert_eq!(h.emulator.sandbox_pids(FUNCTION).len(), 2);
    h.stop().await;
}

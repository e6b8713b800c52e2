//! The Extensions API: a real external extension (a shell script, as many are) beside real
//! runtimes, and the API spoken by hand for what an extension must not do.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use coldstart_protocol::extension as ext;
use coldstart_protocol::runtime as rt;

use crate::runtime_api::{handheld, invoke, post, runtime_api};
use crate::support::{Harness, RawResponse, fixture, function, repo_file, send};

async fn get_with(api: SocketAddr, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut request = http::Request::get(path).header(http::header::HOST, api.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send(
        api,
        request
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await
}

fn error_type(response: &RawResponse) -> String {
    response.json()["errorType"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A function whose sandboxes run `runtime` with the fixture extension.
fn with_extension(name: &str, runtime: std::path::PathBuf) -> coldstart_emulator::FunctionConfig {
    let mut f = function(name, runtime);
    f.handler = Some("function.handler".into());
    f.extensions = vec![repo_file("fixtures/extension.sh")];
    f
}

#[tokio::test]
async fn an_extension_registers_gets_every_invoke_and_shutdown_on_stop() {
    let h = Harness::start(vec![with_extension("fn", fixture("fx-echo"))]).await;
    let mut ids = Vec::new();
    for i in 0..2 {
        let answer = h.invoke_raw("fn", &[], format!(r#"{{"n":{i}}}"#)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["n"], i);
        ids.push(
            answer
                .header("x-amzn-requestid")
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let registered = h
        .logs
        .wait_for(|l| l.starts_with("fn: EXTENSION registered"))
        .await;
    let answer: Value =
        serde_json::from_str(registered.trim_start_matches("fn: EXTENSION registered "))
            .unwrap_or_else(|e| panic!("{registered}: {e}"));
    assert_eq!(answer["functionName"], "fn");
    assert_eq!(answer["functionVersion"], "$LATEST");
    assert_eq!(answer["handler"], "function.handler");
    // Runtime-only variables are not given to extensions; the function's are.
    h.logs
        .wait_for(|l| l == "fn: EXTENSION env handler=unset task_root=unset function=fn")
        .await;
    for id in &ids {
        let line = h
            .logs
            .wait_for(|l| l.starts_with("fn: EXTENSION event") && l.contains(id.as_str()))
            .await;
        let event: Value = serde_json::from_str(line.trim_start_matches("fn: EXTENSION event "))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(event["eventType"], "INVOKE");
        assert!(event["deadlineMs"].as_u64().unwrap_or_default() > 1_600_000_000_000);
        assert!(
            event["invokedFunctionArn"]
                .as_str()
                .is_some_and(|a| a.ends_with(":function:fn"))
        );
        assert_eq!(event["tracing"]["type"], "X-Amzn-Trace-Id");
    }
    let logs = h.logs.clone();
    let pids = h.emulator.sandbox_pids("fn");
    assert_eq!(pids.len(), 1, "both invocations ran in one sandbox");
    h.stop().await;
    let shutdown = logs
        .wait_for(|l| l.starts_with("fn: EXTENSION event") && l.contains("SHUTDOWN"))
        .await;
    let event: Value = serde_json::from_str(shutdown.trim_start_matches("fn: EXTENSION event "))
        .unwrap_or_else(|e| panic!("{shutdown}: {e}"));
    assert_eq!(event["shutdownReason"], "spindown");
    logs.wait_for(|l| l == "fn: EXTENSION exiting").await;
}

#[tokio::test]
async fn the_runtime_starts_only_after_every_extension_registered() {
    let mut f = with_extension("late", repo_file("fixtures/event-echo.sh"));
    f.environment
        .insert("EXT_REGISTER_DELAY".into(), "0.3".into());
    let h = Harness::start(vec![f]).await;
    let answer = h.invoke_raw("late", &[], r#"{"a":1}"#).await;
    assert_eq!(answer.status, 200);
    let lines = h.logs.all();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}; got:\n{}", lines.join("\n")))
    };
    assert!(
        at("late: EXTENSION registering") < at("late: PID="),
        "the bootstrap started before the extension registered:\n{}",
        lines.join("\n")
    );
    h.stop().await;
}

#[tokio::test]
async fn an_extension_that_crashes_in_init_fails_the_invocation_with_extension_crash() {
    let mut f = with_extension("crashy", fixture("fx-echo"));
    f.environment.insert("EXT_CRASH".into(), "init".into());
    let h = Harness::start(vec![f]).await;
    let answer = h.invoke_raw("crashy", &[], "{}").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(error_type(&answer), "Extension.Crash");
    assert!(
        answer.json()["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("extension.sh") && m.contains("exit status 3")),
        "{}",
        answer.json()
    );
    h.logs
        .wait_for(|l| l.contains("INIT_REPORT") && l.contains("Extension.Crash"))
        .await;
    h.stop().await;
}

#[tokio::test]
async fn an_extension_that_never_finishes_an_invocation_gets_its_sandbox_reset_at_the_deadline() {
    let mut f = with_extension("stuck", repo_file("fixtures/event-echo.sh"));
    f.environment.insert("EXT_HANG".into(), "invoke".into());
    f.timeout = std::time::Duration::from_secs(1);
    let h = Harness::start(vec![f]).await;
    // The runtime answers at once: the caller is not held by the extension.
    let first = h.invoke_raw("stuck", &[], r#"{"n":1}"#).await;
    assert_eq!((first.status, first.json()["n"].as_i64()), (200, Some(1)));
    h.logs.wait_for(|l| l == "stuck: EXTENSION hanging").await;
    h.logs
        .wait_for(|l| l.contains("an extension did not finish the invocation"))
        .await;
    // The next invocation gets a fresh sandbox.
    let second = h.invoke_raw("stuck", &[], r#"{"n":2}"#).await;
    assert_eq!((second.status, second.json()["n"].as_i64()), (200, Some(2)));
    h.logs
        .wait_for_nth(2, |l| l.starts_with("stuck: PID="))
        .await;
    h.stop().await;
}

#[tokio::test]
async fn an_internal_extension_gets_invokes_and_misuse_is_refused() {
    let (h, _) = handheld().await;
    let caller = invoke(&h, r#"{"hello":"extension"}"#);
    let api = runtime_api(&h).await;

    // During init, the runtime's process registers an internal extension.
    let registered = post(
        api,
        ext::REGISTER_PATH,
        &[("lambda-extension-name", "in-process")],
        r#"{"events":["INVOKE"]}"#,
    )
    .await;
    assert_eq!(registered.status, 200, "{:?}", registered.body);
    assert_eq!(registered.json()["functionName"], "hand");
    let id = registered
        .header("lambda-extension-identifier")
        .unwrap_or_default()
        .to_owned();
    assert!(uuid_like(&id), "{id}");
    let shutdown_refused = post(
        api,
        ext::REGISTER_PATH,
        &[("lambda-extension-name", "other")],
        r#"{"events":["SHUTDOWN"]}"#,
    )
    .await;
    assert_eq!(shutdown_refused.status, 403);
    assert_eq!(error_type(&shutdown_refused), "Extension.InvalidEventType");

    // Init completes only when the runtime and the extension both wait.
    let ext_next = {
        let id = id.clone();
        tokio::spawn(async move {
            get_with(api, ext::NEXT_PATH, &[("lambda-extension-identifier", &id)]).await
        })
    };
    let runtime_next = tokio::spawn(async move { get_with(api, rt::NEXT_PATH, &[]).await });
    let event = ext_next.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(event.status, 200);
    assert!(event.header("lambda-extension-event-identifier").is_some());
    assert_eq!(event.json()["eventType"], "INVOKE");
    let next = runtime_next.await.unwrap_or_else(|e| panic!("{e}"));
    let request_id = next
        .header("lambda-runtime-aws-request-id")
        .unwrap_or_default()
        .to_owned();
    assert_eq!(event.json()["requestId"], request_id.as_str());
    let posted = post(api, &rt::response_path(&request_id), &[], "\"done\"").await;
    assert_eq!(posted.status, 202);
    let answer = caller.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&answer.body[..], b"\"done\"");

    // After init, and for calls that do not identify a registered extension: 403.
    let late = post(
        api,
        ext::REGISTER_PATH,
        &[("lambda-extension-name", "late")],
        "{}",
    )
    .await;
    assert_eq!(late.status, 403);
    assert_eq!(error_type(&late), "Extension.RegistrationClosed");
    let missing = get_with(api, ext::NEXT_PATH, &[]).await;
    assert_eq!(
        (missing.status, error_type(&missing).as_str()),
        (403, "Extension.MissingExtensionIdentifier")
    );
    let invalid = get_with(
        api,
        ext::NEXT_PATH,
        &[("lambda-extension-identifier", "not-a-uuid")],
    )
    .await;
    assert_eq!(error_type(&invalid), "Extension.InvalidExtensionIdentifier");
    let unknown = get_with(
        api,
        ext::NEXT_PATH,
        &[(
            "lambda-extension-identifier",
            "3b1f7e1c-8d4e-4c1a-9a7e-2f5b6c7d8e9f",
        )],
    )
    .await;
    assert_eq!(error_type(&unknown), "Extension.UnknownExtensionIdentifier");
    let no_type = post(
        api,
        ext::EXIT_ERROR_PATH,
        &[("lambda-extension-identifier", &id)],
        "{}",
    )
    .await;
    assert_eq!(error_type(&no_type), "Extension.MissingHeader");

    // The Telemetry API and the older Logs API subscribe (see `telemetry.rs`); a subscription
    // in the wrong API's schema is a validation error.
    let telemetry = put(api, ext::TELEMETRY_PATH, &id, TELEMETRY_BODY).await;
    assert_eq!(telemetry.status, 200);
    assert_eq!(&telemetry.body[..], b"\"OK\"");
    let logs = put(api, ext::LOGS_PATH, &id, LOGS_BODY).await;
    assert_eq!(logs.status, 200);
    assert_eq!(&logs.body[..], b"\"OK\"");
    let wrong = put(api, ext::LOGS_PATH, &id, TELEMETRY_BODY).await;
    assert_eq!(
        (wrong.status, error_type(&wrong).as_str()),
        (400, "ValidationError")
    );
}

const TELEMETRY_BODY: &str = r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"},"types":["function"]}"#;
const LOGS_BODY: &str = r#"{"schemaVersion":"2021-03-18","destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080"},"types":["function"]}"#;

async fn put(api: SocketAddr, path: &str, id: &str, body: &'static str) -> RawResponse {
    let request = http::Request::put(path)
        .header(http::header::HOST, api.to_string())
        .header("lambda-extension-identifier", id)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap_or_else(|e| panic!("{e}"));
    send(api, request).await
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.bytes().filter(|&b| b == b'-').count() == 4
}

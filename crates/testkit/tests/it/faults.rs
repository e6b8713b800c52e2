//! Faults from fixture functions: crashes, init failures, timeouts, panics, throttling, freezing,
//! shutdown. Also what the runtime library gives a handler.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{Harness, PATIENCE, fixture, function, process_state, repo_file};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Waits (bounded) until `check` holds, re-checking after short pauses: for states of other
/// processes, which send no signal when they change.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn pid_of(h: &Harness, name: &str) -> u32 {
    let r = h.invoke_raw(name, &[], r#"{"op":"pid"}"#).await;
    r.json()["pid"].as_u64().unwrap_or_else(|| panic!("{r:?}")) as u32
}

#[tokio::test]
async fn a_crash_mid_invoke_is_exit_error_and_the_next_invoke_gets_a_fresh_sandbox() {
    let h = Harness::start(vec![function("faults", fixture("fx-faults"))]).await;
    let first = pid_of(&h, "faults").await;
    let r = h
        .invoke_raw("faults", &[], r#"{"op":"exit","code":1}"#)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let id = r.header("x-amzn-requestid").unwrap_or_default().to_owned();
    assert_eq!(
        r.json(),
        json!({"errorType":"Runtime.ExitError","errorMessage": format!("RequestId: {id} Error: Runtime exited with error: exit status 1")})
    );
    let second = pid_of(&h, "faults").await;
    assert_ne!(first, second);
    h.stop().await;
}

#[tokio::test]
async fn a_crash_on_start_answers_exit_error_quickly() {
    let h = Harness::start(vec![function("crash", fixture("fx-crash-on-start"))]).await;
    let r = h
        .invoke_raw("crash", &[("x-amz-log-type", "Tail")], "{}")
        .await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorType"], "Runtime.ExitError");
    let message = r.json()["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.ends_with("Runtime exited with error: exit status 3"),
        "{message}"
    );
    // The init output and the platform's verdict are in the invocation's log.
    let log = crate::support::decode_log(r.header("x-amz-log-result").unwrap_or_default());
    assert!(log.contains("crashing on start"), "{log}");
    assert!(log.contains("INIT_REPORT Init Duration:"), "{log}");
    assert!(
        log.contains("Status: error\tError Type: Runtime.ExitError"),
        "{log}"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_init_error_reaches_the_caller_as_the_function_error() {
    let h = Harness::start(vec![function("init", fixture("fx-init-error"))]).await;
    let r = h.invoke_raw("init", &[], "{}").await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        r.json(),
        json!({"errorType":"Runtime.ConfigInvalid","errorMessage":"DATABASE_URL is not set"})
    );
    h.stop().await;
}

#[tokio::test]
async fn an_init_past_the_limit_is_retried_within_the_invocation_then_times_out() {
    let mut slow = function("slow", fixture("fx-slow-init"));
    slow.init_timeout = Duration::from_millis(500);
    slow.timeout = Duration::from_secs(1);
    slow.environment
        .insert("SLOW_INIT_MS".into(), "60000".into());
    let h = Harness::start(vec![slow]).await;
    let r = h.invoke_raw("slow", &[], "{}").await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorType"], "Sandbox.Timedout");
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .is_some_and(|m| m.ends_with("Task timed out after 1.00 seconds")),
        "{r:?}"
    );
    h.logs
        .wait_for(|l| l.contains("INIT_REPORT") && l.contains("Status: timeout"))
        .await;
    // Both attempts' processes are gone.
    eventually("the slow sandboxes to be reaped", || {
        h.emulator.sandbox_pids("slow").is_empty()
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn an_init_past_the_limit_succeeds_when_the_retry_fits_the_timeout() {
    let mut slow = function("slow", fixture("fx-slow-init"));
    slow.init_timeout = Duration::from_millis(300);
    slow.timeout = Duration::from_secs(5);
    slow.environment.insert("SLOW_INIT_MS".into(), "600".into());
    let h = Harness::start(vec![slow]).await;
    let r = h.invoke_raw("slow", &[], r#"{"ok":true}"#).await;
    assert_eq!(r.header("x-amz-function-error"), None, "{r:?}");
    assert_eq!(r.json(), json!({"ok": true}));
    h.stop().await;
}

#[tokio::test]
async fn a_timeout_kills_the_sandbox_and_answers_sandbox_timedout() {
    let mut faults = function("faults", fixture("fx-faults"));
    faults.timeout = Duration::from_secs(1);
    let h = Harness::start(vec![faults]).await;
    let first = pid_of(&h, "faults").await;
    let r = h
        .invoke_raw("faults", &[], r#"{"op":"sleep","ms":30000}"#)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let id = r.header("x-amzn-requestid").unwrap_or_default().to_owned();
    assert_eq!(
        r.json(),
        json!({"errorType":"Sandbox.Timedout","errorMessage": format!("RequestId: {id} Error: Task timed out after 1.00 seconds")})
    );
    h.logs
        .wait_for(|l| l.contains(&format!("{id} Task timed out after 1.00 seconds")))
        .await;
    h.logs
        .wait_for(|l| {
            l.contains(&format!("REPORT RequestId: {id}")) && l.contains("Status: timeout")
        })
        .await;
    eventually("the timed-out process to be gone", || {
        process_state(first).is_none()
    })
    .await;
    let second = pid_of(&h, "faults").await;
    assert_ne!(first, second);
    h.stop().await;
}

#[tokio::test]
async fn a_panic_is_reported_and_the_runtime_loop_goes_on() {
    let h = Harness::start(vec![function("faults", fixture("fx-faults"))]).await;
    let before = pid_of(&h, "faults").await;
    let r = h.invoke_raw("faults", &[], r#"{"op":"panic"}"#).await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorType"], "Panic");
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("fixture panicked on purpose")),
        "{r:?}"
    );
    // Same process: the panic did not take the runtime down.
    assert_eq!(pid_of(&h, "faults").await, before);
    h.stop().await;
}

#[tokio::test]
async fn two_parallel_invokes_at_concurrency_1_throttle_one() {
    let mut faults = function("faults", fixture("fx-faults"));
    faults.concurrency = 1;
    let h = std::sync::Arc::new(Harness::start(vec![faults]).await);
    let busy = {
        let h = h.clone();
        tokio::spawn(async move {
            h.invoke_raw("faults", &[], r#"{"op":"sleep","ms":1000}"#)
                .await
        })
    };
    // The first invocation holds the only sandbox once it has started.
    h.logs.wait_for(|l| l.contains("START RequestId:")).await;
    let err = h
        .sdk()
        .invoke()
        .function_name("faults")
        .payload(aws_sdk_lambda::primitives::Blob::new("{}"))
        .send()
        .await
        .err()
        .map(|e| e.into_service_error());
    let Some(aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(throttled)) =
        err
    else {
        panic!("expected TooManyRequestsException, got {err:?}");
    };
    assert_eq!(
        throttled.reason().map(|r| r.as_str()),
        Some("ReservedFunctionConcurrentInvocationLimitExceeded")
    );
    let raw = h.invoke_raw("faults", &[], "{}").await;
    assert_eq!(raw.status, 429);
    assert_eq!(
        raw.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    assert_eq!(raw.header("retry-after"), Some("1"));
    let first = busy.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.json(), json!({"slept_ms": 1000}));
    // Sequential invocations at concurrency 1 are never throttled.
    for _ in 0..20 {
        assert_eq!(h.invoke_raw("faults", &[], "{}").await.status, 200);
    }
    if let Ok(h) = std::sync::Arc::try_unwrap(h) {
        h.stop().await;
    }
}

#[tokio::test]
async fn an_idle_sandbox_is_frozen_and_thawed_for_the_next_invocation() {
    let h = Harness::start(vec![function("faults", fixture("fx-faults"))]).await;
    let pid = pid_of(&h, "faults").await;
    eventually("the idle sandbox to be stopped (state T)", || {
        process_state(pid) == Some('T')
    })
    .await;
    assert_eq!(pid_of(&h, "faults").await, pid);
    h.stop().await;
}

#[tokio::test]
async fn without_freeze_an_idle_sandbox_keeps_running() {
    let mut thawed = function("thawed", fixture("fx-faults"));
    thawed.freeze = false;
    let frozen = function("frozen", fixture("fx-faults"));
    let h = Harness::start(vec![thawed, frozen]).await;
    let running = pid_of(&h, "thawed").await;
    let stopped = pid_of(&h, "frozen").await;
    // `frozen` went idle after `thawed`: once it is stopped, `thawed` has been idle for longer
    // than the freeze grace too.
    eventually("the sandbox with freezing on to stop", || {
        process_state(stopped) == Some('T')
    })
    .await;
    assert_eq!(process_state(running), Some('S'));
    h.stop().await;
}

/// Every live (not zombie) process whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_owned();
                    let mut fields = after.split_whitespace();
                    let state = fields.next()?;
                    let pgrp = fields.nth(1)?.parse::<u32>().ok()?;
                    (state != "Z").then_some(pgrp)
                })
                == Some(pgid)
        })
        .collect()
}

#[tokio::test]
async fn shutdown_leaves_no_process_of_any_sandbox() {
    let mut shell = function("shell", repo_file("fixtures/event-echo.sh"));
    shell.concurrency = 2;
    let h = std::sync::Arc::new(
        Harness::start(vec![
            shell,
            function("stubborn", fixture("fx-ignore-sigterm")),
        ])
        .await,
    );
    let r = h.invoke_raw("stubborn", &[], r#"{"a":1}"#).await;
    assert_eq!(r.json(), json!({"a":1}));
    let r = h.invoke_raw("shell", &[], r#"{"b":2}"#).await;
    assert_eq!(r.json(), json!({"b":2}));
    let mut groups = h.emulator.sandbox_pids("shell");
    groups.extend(h.emulator.sandbox_pids("stubborn"));
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| !group_members(*g).is_empty()));
    if let Ok(h) = std::sync::Arc::try_unwrap(h) {
        h.stop().await;
    }
    // Shutdown returns once each bootstrap is reaped and its group was sent SIGKILL; the
    // group's other members are gone as soon as the kernel delivers it.
    for g in groups {
        eventually(&format!("group {g} to be gone"), || {
            group_members(g).is_empty()
        })
        .await;
    }
}

#[tokio::test]
async fn the_handler_gets_every_context_field_and_the_lambda_environment() {
    let mut faults = function("faults", fixture("fx-faults"));
    faults.handler = Some("main.handle".into());
    faults
        .environment
        .insert("USER_SETTING".into(), "on".into());
    faults
        .environment
        .insert("_SECRET".into(), "dropped".into());
    faults
        .environment
        .insert("AWS_LAMBDA_FUNCTION_NAME".into(), "overridden?".into());
    let h = Harness::start(vec![faults]).await;
    let before = now_ms();
    let r = h
        .invoke_raw(
            "faults",
            &[(
                "x-amzn-trace-id",
                "Root=1-5e7d7595-212f8a6c3b9e4c4d8e2f1a0b;Parent=53995c3f42cd8ad8;Sampled=1",
            )],
            r#"{"op":"context"}"#,
        )
        .await;
    let after = now_ms();
    let c = r.json();
    assert_eq!(
        c["request_id"],
        r.header("x-amzn-requestid").unwrap_or_default()
    );
    let deadline = c["deadline_ms"].as_u64().unwrap_or_default();
    assert!(
        deadline >= before + 3000 && deadline <= after + 3000,
        "deadline {deadline} not within [{}, {}]",
        before + 3000,
        after + 3000
    );
    assert!(
        c["remaining_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 2000 && ms <= 3000)
    );
    assert_eq!(
        c["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:012345678912:function:faults"
    );
    let trace = "Root=1-5e7d7595-212f8a6c3b9e4c4d8e2f1a0b;Parent=53995c3f42cd8ad8;Sampled=1";
    assert_eq!(c["xray_trace_id"], trace);
    assert_eq!(c["env"]["_X_AMZN_TRACE_ID"], trace);
    assert_eq!(c["config"]["function_name"], "faults");
    assert_eq!(c["config"]["memory_mb"], 128);
    assert_eq!(c["config"]["version"], "$LATEST");
    assert_eq!(c["config"]["log_group"], "/aws/lambda/faults");
    assert!(
        c["config"]["log_stream"]
            .as_str()
            .is_some_and(|s| s.contains("/[$LATEST]"))
    );
    assert_eq!(c["client_context"], Value::Null);
    assert_eq!(c["tenant_id"], Value::Null);
    let env = &c["env"];
    assert_eq!(env["_HANDLER"], "main.handle");
    assert_eq!(env["USER_SETTING"], "on");
    assert_eq!(env["_SECRET"], Value::Null);
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
    assert_eq!(env["TZ"], ":UTC");
    let root = fixture("fx-faults")
        .parent()
        .map(|p| p.display().to_string());
    assert_eq!(env["LAMBDA_TASK_ROOT"].as_str(), root.as_deref());
    assert_eq!(env["cwd"].as_str(), root.as_deref());
    let api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap_or_default();
    assert!(api.starts_with("127.0.0.1:") && !api.contains('/'), "{api}");

    // Each invocation gets its own trace id, exported afresh.
    let again = h
        .invoke_raw("faults", &[], r#"{"op":"context"}"#)
        .await
        .json();
    let fresh = again["xray_trace_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(fresh.starts_with("Root=1-") && fresh != trace, "{fresh}");
    assert_eq!(again["env"]["_X_AMZN_TRACE_ID"], fresh);
    h.stop().await;
}

#[tokio::test]
async fn an_idle_sandbox_is_stopped_after_the_idle_timeout() {
    let mut faults = function("faults", fixture("fx-faults"));
    faults.idle_timeout = Duration::from_millis(300);
    let h = Harness::start(vec![faults]).await;
    let first = pid_of(&h, "faults").await;
    eventually("the idle sandbox to be stopped", || {
        h.emulator.sandbox_pids("faults").is_empty()
    })
    .await;
    eventually("its process to be gone", || process_state(first).is_none()).await;
    // The next invocation starts a new one.
    let second = pid_of(&h, "faults").await;
    assert_ne!(first, second);
    h.stop().await;
}

#[tokio::test]
async fn replaced_sandboxes_finish_their_invocation_then_make_way() {
    let h =
        std::sync::Arc::new(Harness::start(vec![function("faults", fixture("fx-faults"))]).await);
    let idle = pid_of(&h, "faults").await;
    let busy = {
        let h = h.clone();
        tokio::spawn(async move {
            h.invoke_raw("faults", &[], r#"{"op":"sleep","ms":300}"#)
                .await
        })
    };
    // The second invocation has started (on the only, warm, sandbox).
    h.logs
        .wait_for_nth(2, |l| l.contains("START RequestId:"))
        .await;
    assert_eq!(h.emulator.sandbox_pids("faults"), [idle]);
    assert!(h.emulator.replace_sandboxes("faults"));
    // The invocation in flight finishes on its old sandbox.
    let done = busy.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.json(), json!({"slept_ms": 300}));
    // Afterwards every invocation runs in a new sandbox, and the old ones are gone.
    let fresh = pid_of(&h, "faults").await;
    assert_ne!(fresh, idle);
    eventually("the replaced sandbox to be gone", || {
        process_state(idle).is_none()
    })
    .await;
    assert!(!h.emulator.replace_sandboxes("nope"));
    if let Ok(h) = std::sync::Arc::try_unwrap(h) {
        h.stop().await;
    }
}

//! The Telemetry API and the older Logs API: a real extension process (`fx-telemetry`) subscribes
//! its HTTP listener on `sandbox.localdomain` as vendors' extensions do, and prints what it
//! receives; the function is `fx-faults`, whose event chooses what it does. The JSON log format
//! writes the same platform records into the function's log.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Harness, Logs, fixture, function};

/// A function `name` on `fx-faults`, with the subscribing extension.
fn with_subscriber(name: &str) -> coldstart_emulator::FunctionConfig {
    let mut f = function(name, fixture("fx-faults"));
    f.extensions = vec![fixture("fx-telemetry")];
    f
}

/// Every event the extension received so far, in order.
fn received(logs: &Logs, name: &str) -> Vec<Value> {
    let prefix = format!("{name}: TELEMETRY ");
    logs.all()
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}")))
        .collect()
}

/// Waits for the event of `kind` about invocation `request_id`, and returns it.
async fn wait_event(h: &Harness, name: &str, kind: &str, request_id: &str) -> Value {
    let prefix = format!("{name}: TELEMETRY ");
    let line = h
        .logs
        .wait_for(|l| {
            l.starts_with(&prefix)
                && l.contains(&format!(r#""type":"{kind}""#))
                && l.contains(request_id)
        })
        .await;
    serde_json::from_str(line.trim_start_matches(&prefix)).unwrap_or_else(|e| panic!("{e}"))
}

/// The position of the first event matching `pred`, or a failure listing what arrived.
fn position(events: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    events.iter().position(pred).unwrap_or_else(|| {
        panic!(
            "no {what}; received:\n{}",
            events
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn of<'a>(kind: &'static str, request_id: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e: &Value| e["type"] == kind && e["record"]["requestId"] == request_id
}

/// `2022-10-12T00:00:15.064Z`: RFC 3339, milliseconds, UTC.
fn is_rfc3339_millis(time: &Value) -> bool {
    let t = time.as_str().unwrap_or_default();
    t.len() == 24 && t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == "."
}

async fn invoke(h: &Harness, name: &str, event: &str) -> (u16, String) {
    let answer = h.invoke_raw(name, &[], event.to_owned()).await;
    let id = answer
        .header("x-amzn-requestid")
        .unwrap_or_default()
        .to_owned();
    (answer.status, id)
}

#[tokio::test]
async fn a_subscriber_gets_init_the_invocation_its_report_and_the_functions_lines() {
    let h = Harness::start(vec![with_subscriber("tel")]).await;
    let (status, id) = invoke(&h, "tel", r#"{"op":"print","lines":["hello","world"]}"#).await;
    assert_eq!(status, 200);
    let report = wait_event(&h, "tel", "platform.report", &id).await;
    let events = received(&h.logs, "tel");
    assert!(
        events.iter().all(|e| is_rfc3339_millis(&e["time"])),
        "{events:?}"
    );

    // Init: what happened before the extension subscribed is delivered too.
    let init_start = position(&events, "initStart", |e| e["type"] == "platform.initStart");
    assert_eq!(events[init_start]["record"]["functionName"], "tel");
    assert_eq!(
        events[init_start]["record"]["initializationType"],
        "on-demand"
    );
    let subscribed = position(&events, "telemetrySubscription", |e| {
        e["type"] == "platform.telemetrySubscription"
    });
    assert_eq!(events[subscribed]["record"]["name"], "fx-telemetry");
    assert_eq!(events[subscribed]["record"]["state"], "Subscribed");
    let extension = position(&events, "platform.extension", |e| {
        e["type"] == "platform.extension"
    });
    assert_eq!(
        events[extension]["record"]["events"],
        serde_json::json!(["INVOKE", "SHUTDOWN"])
    );
    let runtime_done = position(&events, "initRuntimeDone", |e| {
        e["type"] == "platform.initRuntimeDone"
    });
    assert_eq!(events[runtime_done]["record"]["status"], "success");
    let init_report = position(&events, "initReport", |e| {
        e["type"] == "platform.initReport"
    });
    assert!(events[init_report]["record"]["metrics"]["durationMs"].is_f64());
    // The extension's own lines arrive as `extension` records.
    position(&events, "the extension's line", |e| {
        e["type"] == "extension"
            && e["record"]
                .as_str()
                .is_some_and(|r| r.starts_with("TELEMETRY-SUBSCRIBED 200"))
    });
    assert!(init_start < runtime_done && runtime_done < init_report);

    // The invocation: start, the function's lines, runtimeDone, report, in that order.
    let start = position(&events, "start", of("platform.start", &id));
    assert_eq!(events[start]["record"]["version"], "$LATEST");
    let hello = position(&events, "hello", |e| {
        e["type"] == "function" && e["record"] == "hello"
    });
    let world = position(&events, "world", |e| {
        e["type"] == "function" && e["record"] == "world"
    });
    let done = position(&events, "runtimeDone", of("platform.runtimeDone", &id));
    let reported = position(&events, "report", of("platform.report", &id));
    assert!(
        init_report < start && start < hello && hello < world && world < done && done < reported,
        "{events:?}"
    );
    let done = &events[done]["record"];
    assert_eq!(done["status"], "success");
    assert!(done.get("errorType").is_none());
    assert!(done["metrics"]["durationMs"].is_f64());
    assert_eq!(
        done["metrics"]["producedBytes"],
        r#"{"printed":true}"#.len()
    );
    let spans: Vec<&str> = done["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(spans, ["responseLatency", "responseDuration"]);

    let record = &report["record"];
    assert_eq!(record["status"], "success");
    let metrics = &record["metrics"];
    assert!(metrics["durationMs"].is_f64(), "{report}");
    assert!(metrics["billedDurationMs"].as_u64().unwrap_or_default() >= 1);
    assert_eq!(metrics["memorySizeMB"], 128);
    assert!(metrics["maxMemoryUsedMB"].as_u64().unwrap_or_default() >= 1);
    assert!(metrics["initDurationMs"].is_f64(), "a cold start: {report}");

    // A warm invocation: no init duration.
    let (status, warm) = invoke(&h, "tel", r#"{"op":"echo"}"#).await;
    assert_eq!(status, 200);
    let report = wait_event(&h, "tel", "platform.report", &warm).await;
    assert!(report["record"]["metrics"].get("initDurationMs").is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_handler_error_is_runtime_done_with_status_error() {
    let h = Harness::start(vec![with_subscriber("telerr")]).await;
    let (status, id) = invoke(&h, "telerr", r#"{"op":"error","message":"boom"}"#).await;
    assert_eq!(status, 200);
    let done = wait_event(&h, "telerr", "platform.runtimeDone", &id).await;
    assert_eq!(done["record"]["status"], "error");
    let error_type = done["record"]["errorType"].as_str().unwrap_or_default();
    assert!(!error_type.is_empty(), "{done}");
    let report = wait_event(&h, "telerr", "platform.report", &id).await;
    assert_eq!(report["record"]["status"], "error");
    assert_eq!(report["record"]["errorType"], error_type);
    h.stop().await;
}

#[tokio::test]
async fn a_timeout_is_runtime_done_with_status_timeout() {
    let mut f = with_subscriber("teltime");
    f.timeout = Duration::from_secs(1);
    let h = Harness::start(vec![f]).await;
    let (status, id) = invoke(&h, "teltime", r#"{"op":"sleep","ms":5000}"#).await;
    assert_eq!(status, 200);
    let done = wait_event(&h, "teltime", "platform.runtimeDone", &id).await;
    assert_eq!(done["record"]["status"], "timeout");
    assert_eq!(done["record"]["errorType"], "Sandbox.Timedout");
    let report = wait_event(&h, "teltime", "platform.report", &id).await;
    assert_eq!(report["record"]["status"], "timeout");
    // The environment was reset: the next invocation starts a new one, subscribed again.
    let (status, next) = invoke(&h, "teltime", r#"{"op":"echo"}"#).await;
    assert_eq!(status, 200);
    let report = wait_event(&h, "teltime", "platform.report", &next).await;
    assert!(report["record"]["metrics"]["initDurationMs"].is_f64());
    h.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_never_answers_delays_no_invocation() {
    // Symptom guarded against: publishing waits on a subscriber's delivery, so that once its
    // queue or connection is stuck, invocations stall or fail.
    let mut f = with_subscriber("teldead");
    f.environment.insert("TELEMETRY_DEAD".into(), "1".into());
    let h = Harness::start(vec![f]).await;
    let (status, _) = invoke(&h, "teldead", r#"{"op":"echo"}"#).await;
    assert_eq!(status, 200);
    h.logs
        .wait_for(|l| l == r#"teldead: TELEMETRY-SUBSCRIBED 200 "OK""#)
        .await;
    let began = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..300 {
        let one = Instant::now();
        let answer = h
            .invoke_raw("teldead", &[], format!(r#"{{"op":"echo","n":{i}}}"#))
            .await;
        slowest = slowest.max(one.elapsed());
        assert_eq!(answer.status, 200, "invocation {i}");
        assert_eq!(
            answer.header("x-amz-function-error"),
            None,
            "invocation {i}"
        );
        assert_eq!(answer.json()["n"], i, "invocation {i}");
    }
    // Figures for the record, not assertions: a loaded machine decides them.
    eprintln!(
        "300 invocations with a dead subscriber: {:?} in all, slowest {slowest:?}",
        began.elapsed()
    );
    h.stop().await;
}

#[tokio::test]
async fn a_crash_is_runtime_done_with_status_error_and_runtime_exit_error() {
    let h = Harness::start(vec![with_subscriber("telcrash")]).await;
    let (status, id) = invoke(&h, "telcrash", r#"{"op":"exit","code":1}"#).await;
    assert_eq!(status, 200);
    // The environment is reset, and the subscriber still gets the invocation's last events.
    let done = wait_event(&h, "telcrash", "platform.runtimeDone", &id).await;
    assert_eq!(done["record"]["status"], "error", "{done}");
    assert_eq!(done["record"]["errorType"], "Runtime.ExitError");
    let report = wait_event(&h, "telcrash", "platform.report", &id).await;
    assert_eq!(report["record"]["status"], "error", "{report}");
    assert_eq!(report["record"]["errorType"], "Runtime.ExitError");
    assert!(report["record"]["metrics"]["durationMs"].is_f64());
    // The next invocation starts a new environment, subscribed again.
    let (status, next) = invoke(&h, "telcrash", r#"{"op":"echo"}"#).await;
    assert_eq!(status, 200);
    let report = wait_event(&h, "telcrash", "platform.report", &next).await;
    assert_eq!(report["record"]["status"], "success");
    assert!(report["record"]["metrics"]["initDurationMs"].is_f64());
    h.stop().await;
}

/// A FIFO the subscriber opens once subscribed, and the function waits on before it fails its
/// init: the failure comes after the subscription, whatever the machine's load.
struct Cue(std::path::PathBuf);

impl Cue {
    fn new(name: &str) -> Cue {
        let path = std::env::temp_dir().join(format!("coldstart-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU)
            .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
        Cue(path)
    }
}

impl Drop for Cue {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A function `name` on `fx-init-error` that fails its init once the subscriber listens;
/// `crash`: by exiting rather than reporting.
fn failing_init(name: &str, cue: &Cue, crash: bool) -> coldstart_emulator::FunctionConfig {
    let mut f = function(name, fixture("fx-init-error"));
    f.extensions = vec![fixture("fx-telemetry")];
    let path = cue.0.to_string_lossy().into_owned();
    f.environment
        .insert("TELEMETRY_READY_FIFO".into(), path.clone());
    f.environment.insert("INIT_WAIT_FIFO".into(), path);
    if crash {
        f.environment.insert("INIT_EXIT".into(), "1".into());
    }
    f
}

/// Waits for the event of `kind` (about init, no request id).
async fn wait_init_event(h: &Harness, name: &str, kind: &str) -> Value {
    wait_event(h, name, kind, "").await
}

#[tokio::test]
async fn a_reported_init_failure_is_init_runtime_done_with_status_error() {
    let cue = Cue::new("telinit");
    let h = Harness::start(vec![failing_init("telinit", &cue, false)]).await;
    let answer = h.invoke_raw("telinit", &[], "{}".to_owned()).await;
    assert_eq!(answer.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(answer.json()["errorType"], "Runtime.ConfigInvalid");
    let done = wait_init_event(&h, "telinit", "platform.initRuntimeDone").await;
    assert_eq!(done["record"]["status"], "error", "{done}");
    assert_eq!(done["record"]["errorType"], "Runtime.ConfigInvalid");
    assert_eq!(done["record"]["phase"], "init");
    let report = wait_init_event(&h, "telinit", "platform.initReport").await;
    assert_eq!(report["record"]["status"], "error", "{report}");
    assert_eq!(report["record"]["errorType"], "Runtime.ConfigInvalid");
    assert!(report["record"]["metrics"]["durationMs"].is_f64());
    let events = received(&h.logs, "telinit");
    let start = position(&events, "initStart", |e| e["type"] == "platform.initStart");
    let done = position(&events, "initRuntimeDone", |e| {
        e["type"] == "platform.initRuntimeDone"
    });
    let report = position(&events, "initReport", |e| {
        e["type"] == "platform.initReport"
    });
    assert!(start < done && done < report, "{events:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_crash_during_init_is_init_runtime_done_with_runtime_exit_error() {
    let cue = Cue::new("telinitcrash");
    let h = Harness::start(vec![failing_init("telinitcrash", &cue, true)]).await;
    let answer = h.invoke_raw("telinitcrash", &[], "{}".to_owned()).await;
    assert_eq!(answer.json()["errorType"], "Runtime.ExitError");
    let done = wait_init_event(&h, "telinitcrash", "platform.initRuntimeDone").await;
    assert_eq!(done["record"]["status"], "error", "{done}");
    assert_eq!(done["record"]["errorType"], "Runtime.ExitError");
    let report = wait_init_event(&h, "telinitcrash", "platform.initReport").await;
    assert_eq!(report["record"]["status"], "error", "{report}");
    assert_eq!(report["record"]["errorType"], "Runtime.ExitError");
    h.stop().await;
}

/// A function `name` on `fx-faults`, with the extension subscribed through the Logs API.
fn with_logs_subscriber(name: &str) -> coldstart_emulator::FunctionConfig {
    let mut f = with_subscriber(name);
    f.environment.insert("TELEMETRY_API".into(), "logs".into());
    f
}

#[tokio::test]
async fn a_logs_api_subscriber_gets_the_older_shapes() {
    let h = Harness::start(vec![with_logs_subscriber("logsapi")]).await;
    let (status, id) = invoke(&h, "logsapi", r#"{"op":"print","lines":["hello"]}"#).await;
    assert_eq!(status, 200);
    let report = wait_event(&h, "logsapi", "platform.report", &id).await;
    let events = received(&h.logs, "logsapi");
    // None of the Telemetry API's own kinds.
    assert!(
        events.iter().all(|e| {
            let kind = e["type"].as_str().unwrap_or_default();
            !kind.starts_with("platform.init") && kind != "platform.telemetrySubscription"
        }),
        "{events:?}"
    );
    let subscribed = position(&events, "logsSubscription", |e| {
        e["type"] == "platform.logsSubscription"
    });
    assert_eq!(events[subscribed]["record"]["name"], "fx-telemetry");
    assert_eq!(events[subscribed]["record"]["state"], "Subscribed");
    let start = position(&events, "start", of("platform.start", &id));
    assert_eq!(
        events[start]["record"],
        serde_json::json!({"requestId": id, "version": "$LATEST"})
    );
    let hello = position(&events, "hello", |e| {
        e["type"] == "function" && e["record"] == "hello"
    });
    let done = position(&events, "runtimeDone", of("platform.runtimeDone", &id));
    assert_eq!(
        events[done]["record"],
        serde_json::json!({"requestId": id, "status": "success"})
    );
    let end = position(&events, "end", of("platform.end", &id));
    assert_eq!(events[end]["record"], serde_json::json!({"requestId": id}));
    let reported = position(&events, "report", of("platform.report", &id));
    assert!(
        start < hello && hello < done && done < end && end < reported,
        "{events:?}"
    );
    let record = &report["record"];
    assert!(record.get("status").is_none(), "{report}");
    let metrics = &record["metrics"];
    assert!(metrics["durationMs"].is_f64(), "{report}");
    assert!(metrics["billedDurationMs"].as_u64().unwrap_or_default() >= 1);
    assert_eq!(metrics["memorySizeMB"], 128);
    assert!(metrics["initDurationMs"].is_f64(), "a cold start: {report}");

    // A crash: platform.fault, and runtimeDone's status is failure.
    let (_, crashed) = invoke(&h, "logsapi", r#"{"op":"exit","code":1}"#).await;
    let fault = wait_event(&h, "logsapi", "platform.fault", &crashed).await;
    assert_eq!(
        fault["record"],
        format!("RequestId: {crashed} Process exited before completing request")
    );
    let done = wait_event(&h, "logsapi", "platform.runtimeDone", &crashed).await;
    assert_eq!(done["record"]["status"], "failure");
    h.stop().await;
}

#[tokio::test]
async fn a_tcp_subscriber_gets_newline_delimited_events_from_both_apis() {
    let mut over_tcp = with_subscriber("teltcp");
    over_tcp
        .environment
        .insert("TELEMETRY_PROTOCOL".into(), "TCP".into());
    let mut logs_over_tcp = with_logs_subscriber("logstcp");
    logs_over_tcp
        .environment
        .insert("TELEMETRY_PROTOCOL".into(), "TCP".into());
    // TCP delivery has no acknowledgement: what is written may still sit unread when the idle
    // sandbox is frozen, and its listener reads it at the next thaw, as in Lambda. Here the
    // listeners read at once.
    over_tcp.freeze = false;
    logs_over_tcp.freeze = false;
    let h = Harness::start(vec![over_tcp, logs_over_tcp]).await;
    for name in ["teltcp", "logstcp"] {
        let (status, id) = invoke(&h, name, r#"{"op":"print","lines":["over tcp"]}"#).await;
        assert_eq!(status, 200);
        let report = wait_event(&h, name, "platform.report", &id).await;
        assert!(
            report["record"]["metrics"]["durationMs"].is_f64(),
            "{report}"
        );
        let events = received(&h.logs, name);
        let start = position(&events, "start", of("platform.start", &id));
        let line = position(&events, "the line", |e| {
            e["type"] == "function" && e["record"] == "over tcp"
        });
        assert!(start < line, "{events:?}");
        assert!(
            !h.logs
                .all()
                .iter()
                .any(|l| l.contains("TELEMETRY-BAD-LINE")),
            "every line is one JSON document"
        );
    }
    let events = received(&h.logs, "logstcp");
    position(&events, "logsSubscription", |e| {
        e["type"] == "platform.logsSubscription"
    });
    h.stop().await;
}

/// The log lines of the function `prefix` names, once its JSON log has invocation `id`'s report.
async fn json_log(h: &Harness, prefix: &str, id: &str) -> Vec<String> {
    h.logs
        .wait_for(|l| {
            l.starts_with(prefix) && l.contains(r#""type":"platform.report""#) && l.contains(id)
        })
        .await;
    h.logs
        .all()
        .iter()
        .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn with_the_json_log_format_platform_lines_are_json_records() {
    let mut f = function("jsonlog", fixture("fx-faults"));
    f.log_format = coldstart_emulator::LogFormat::Json;
    // runtimeDone is a DEBUG record: kept only with SystemLogLevel DEBUG.
    f.system_log_level = Some(coldstart_emulator::LogLevel::Debug);
    let mut env = function("jsonenv", fixture("fx-env"));
    env.log_format = coldstart_emulator::LogFormat::Json;
    let h = Harness::start(vec![f, env]).await;
    let (status, id) = invoke(&h, "jsonlog", r#"{"op":"print","lines":["hello"]}"#).await;
    assert_eq!(status, 200);
    let prefix = "jsonlog: ";
    let lines = json_log(&h, prefix, &id).await;
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("START ") || l.starts_with("END ") || l.starts_with("REPORT ")),
        "{lines:?}"
    );
    let records: Vec<Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        records.iter().all(|r| is_rfc3339_millis(&r["time"])),
        "{records:?}"
    );
    let start = position(&records, "start", of("platform.start", &id));
    let done = position(&records, "runtimeDone", of("platform.runtimeDone", &id));
    let report = position(&records, "report", of("platform.report", &id));
    assert!(start < done && done < report, "{records:?}");
    position(&records, "initReport", |r| {
        r["type"] == "platform.initReport"
    });
    assert_eq!(records[done]["record"]["status"], "success");
    assert_eq!(records[report]["record"]["metrics"]["memorySizeMB"], 128);
    // The function's own line stays as it printed it, between start and runtimeDone.
    let hello = lines.iter().position(|l| l == "hello");
    let start_line = lines
        .iter()
        .position(|l| l.contains(r#""type":"platform.start""#));
    let done_line = lines
        .iter()
        .position(|l| l.contains(r#""type":"platform.runtimeDone""#));
    assert!(start_line < hello && hello < done_line, "{lines:?}");
    // The runtime is told.
    let answer = h.invoke_raw("jsonenv", &[], "{}".to_owned()).await;
    assert_eq!(answer.json()["env"]["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    assert_eq!(answer.json()["env"]["AWS_LAMBDA_LOG_LEVEL"], "INFO");
    h.stop().await;
}

#[tokio::test]
async fn log_levels_leave_lines_and_records_below_them_out_of_the_log() {
    let mut f = function("levels", fixture("fx-faults"));
    f.log_format = coldstart_emulator::LogFormat::Json;
    f.application_log_level = Some(coldstart_emulator::LogLevel::Warn);
    let mut env = function("levelenv", fixture("fx-env"));
    env.log_format = coldstart_emulator::LogFormat::Json;
    env.application_log_level = Some(coldstart_emulator::LogLevel::Error);
    let h = Harness::start(vec![f, env]).await;
    let lines = [
        r#"{"level":"DEBUG","message":"hidden-debug"}"#,
        r#"{"level":"info","message":"hidden-info"}"#,
        "hidden-plain",
        r#"{"level":"WARN","message":"shown-warn"}"#,
        r#"{"level":"error","message":"shown-error"}"#,
    ];
    let event = serde_json::json!({"op": "print", "lines": lines}).to_string();
    let (status, id) = invoke(&h, "levels", &event).await;
    assert_eq!(status, 200);
    let prefix = "levels: ";
    let logged = json_log(&h, prefix, &id).await;
    assert!(!logged.iter().any(|l| l.contains("hidden")), "{logged:?}");
    let warn = logged.iter().position(|l| l.contains("shown-warn"));
    let error = logged.iter().position(|l| l.contains("shown-error"));
    assert!(warn.is_some() && warn < error, "{logged:?}");
    let records: Vec<Value> = logged
        .iter()
        .filter(|l| l.starts_with(r#"{"time""#))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    // SystemLogLevel INFO (the default): the phases' ends are DEBUG and left out.
    position(&records, "start", of("platform.start", &id));
    position(&records, "report", of("platform.report", &id));
    position(&records, "initStart", |r| r["type"] == "platform.initStart");
    assert!(
        !records.iter().any(|r| r["type"] == "platform.runtimeDone"
            || r["type"] == "platform.initRuntimeDone"),
        "{records:?}"
    );
    let answer = h.invoke_raw("levelenv", &[], "{}".to_owned()).await;
    assert_eq!(answer.json()["env"]["AWS_LAMBDA_LOG_LEVEL"], "ERROR");

    // The runtime library writes JSON lines with the request id, and skips those below the level.
    let event = r#"{"op":"log","levels":["debug","info","warn","error"]}"#;
    let (status, id) = invoke(&h, "levels", event).await;
    assert_eq!(status, 200);
    let logged: Vec<Value> = json_log(&h, prefix, &id)
        .await
        .iter()
        .filter(|l| l.contains("logged at"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let levels: Vec<&str> = logged.iter().filter_map(|r| r["level"].as_str()).collect();
    assert_eq!(levels, ["WARN", "ERROR"], "{logged:?}");
    assert!(
        logged.iter().all(|r| r["requestId"] == id.as_str()),
        "{logged:?}"
    );
    assert_eq!(logged[1]["message"], "logged at error");
    assert!(is_rfc3339_millis(&logged[0]["timestamp"]), "{logged:?}");
    h.stop().await;
}

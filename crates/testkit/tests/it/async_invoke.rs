//! Asynchronous invocations as Lambda runs them, sent with the AWS SDK's `InvocationType::Event`:
//! retries after function errors and crashes, `MaximumRetryAttempts`, `MaximumEventAgeInSeconds`,
//! destination records delivered to a local function, and records for destinations that are not
//! emulated (an SQS queue, a dead-letter queue) in the records file.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use coldstart_emulator::{FunctionConfig, Settings};
use serde_json::{Value, json};

use crate::support::{Harness, PATIENCE, fixture, function};

const SINK_ARN: &str = "arn:aws:lambda:us-east-1:012345678912:function:sink";

/// A scratch file path for the flaky function's call count, unique per test.
fn state(test: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("coldstart-async-{}-{test}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// `flaky` (fx-faults, configured by `configure`) and `sink`, which prints every destination
/// record it gets; retries wait 20 ms instead of a minute.
async fn start(configure: impl FnOnce(&mut FunctionConfig), records: Option<PathBuf>) -> Harness {
    let mut flaky = function("flaky", fixture("fx-faults"));
    configure(&mut flaky);
    let sink = function("sink", fixture("fx-faults"));
    let settings = Settings {
        async_retry_delay: Duration::from_millis(20),
        async_records: records,
        ..Settings::default()
    };
    Harness::start_with(vec![flaky, sink], settings).await
}

/// Sends `event` to `flaky` as an `Event` invocation: accepted with 202 at once.
async fn send(harness: &Harness, event: Value) {
    let out = harness
        .sdk()
        .invoke()
        .function_name("flaky")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke: {e:?}"));
    assert_eq!(out.status_code(), 202);
}

/// The destination record the sink printed.
async fn record(harness: &Harness) -> Value {
    let line = harness
        .logs
        .wait_for(|l| l.starts_with("sink: DESTINATION "))
        .await;
    serde_json::from_str(line.trim_start_matches("sink: DESTINATION "))
        .unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn calls(harness: &Harness) -> usize {
    harness
        .logs
        .all()
        .iter()
        .filter(|l| l.starts_with("flaky: flaky call "))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_fails_twice_then_succeeds_runs_three_times_and_reaches_on_success() {
    let harness = start(|f| f.async_config.on_success = Some(SINK_ARN.into()), None).await;
    let state = state("thrice");
    send(
        &harness,
        json!({"op": "flaky", "state": state, "failures": 2}),
    )
    .await;
    let record = record(&harness).await;
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:012345678912:function:flaky:$LATEST"
    );
    assert_eq!(record["requestPayload"]["op"], "flaky");
    assert_eq!(record["responsePayload"]["calls"], 3);
    assert_eq!(record["responseContext"]["statusCode"], 200);
    assert!(record["responseContext"].get("functionError").is_none());
    assert_eq!(calls(&harness), 3);
    // Every attempt is an invocation of its own in the log, under the same request id.
    let id = record["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let starts = harness
        .logs
        .all()
        .iter()
        .filter(|l| l.starts_with(&format!("flaky: START RequestId: {id}")))
        .count();
    assert_eq!(starts, 3);
    let _ = std::fs::remove_file(state);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_retried_like_an_error() {
    let harness = start(|f| f.async_config.on_success = Some("sink".into()), None).await;
    let state = state("crash");
    send(
        &harness,
        json!({"op": "flaky", "state": state, "failures": 1, "crash": true}),
    )
    .await;
    let record = record(&harness).await;
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    let _ = std::fs::remove_file(state);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_retries_a_failure_goes_once_to_on_failure() {
    let harness = start(
        |f| {
            f.async_config.max_retry_attempts = 0;
            f.async_config.on_failure = Some(SINK_ARN.into());
            f.async_config.on_success = Some("arn:aws:sqs:us-east-1:012345678912:unused".into());
        },
        None,
    )
    .await;
    let state = state("once");
    send(
        &harness,
        json!({"op": "flaky", "state": state, "failures": 5}),
    )
    .await;
    let record = record(&harness).await;
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorMessage"], "failing call 1");
    assert_eq!(calls(&harness), 1);
    let _ = std::fs::remove_file(state);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_older_than_its_maximum_age_is_dropped_to_on_failure() {
    // 60 s on Lambda's clock is 20 ms here: the first retry, due after one minute, would
    // come too late.
    let harness = start(
        |f| {
            f.async_config.max_event_age = Duration::from_secs(60);
            f.async_config.on_failure = Some(SINK_ARN.into());
        },
        None,
    )
    .await;
    let state = state("age");
    send(
        &harness,
        json!({"op": "flaky", "state": state, "failures": 5}),
    )
    .await;
    let record = record(&harness).await;
    assert_eq!(record["requestContext"]["condition"], "EventAgeExceeded");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(calls(&harness), 1);
    let _ = std::fs::remove_file(state);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_queues_and_the_dead_letter_queue_go_to_the_records_file() {
    let records = state("records.jsonl");
    let harness = start(
        |f| {
            f.async_config.max_retry_attempts = 1;
            f.async_config.on_failure = Some("arn:aws:sqs:us-east-1:012345678912:failures".into());
            f.async_config.dead_letter = Some("arn:aws:sqs:us-east-1:012345678912:dlq".into());
        },
        Some(records.clone()),
    )
    .await;
    let state = state("dlq");
    send(
        &harness,
        json!({"op": "flaky", "state": state, "failures": 5}),
    )
    .await;
    // Both lines are written once the invocation is done; wait for them, within PATIENCE.
    let deadline = std::time::Instant::now() + PATIENCE;
    let lines: Vec<Value> = loop {
        let text = std::fs::read_to_string(&records).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "records so far: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        lines[0]["destination"],
        "arn:aws:sqs:us-east-1:012345678912:failures"
    );
    assert_eq!(
        lines[0]["record"]["requestContext"]["condition"],
        "RetriesExhausted"
    );
    assert_eq!(
        lines[0]["record"]["requestContext"]["approximateInvokeCount"],
        2
    );
    assert_eq!(
        lines[1]["deadLetterQueue"],
        "arn:aws:sqs:us-east-1:012345678912:dlq"
    );
    assert_eq!(
        lines[1]["messageAttributes"]["ErrorMessage"],
        "failing call 2"
    );
    let body: Value = serde_json::from_str(lines[1]["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body["failures"], 5);
    assert_eq!(calls(&harness), 2);
    let _ = std::fs::remove_file(state);
    let _ = std::fs::remove_file(records);
    harness.stop().await;
}

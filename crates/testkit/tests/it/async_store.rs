//! Nothing lost on stop: `Event` invocations still queued when a stack stops gracefully (waiting
//! for a retry, or for capacity behind a busy function) are kept in the stack's SQLite store and
//! taken up by the next start of the same stack, each run exactly once; their age keeps counting
//! while stopped; a store that cannot be read is moved aside and the stack serves anyway.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use coldstart_stack::{Reporter, Running, StartOptions, TemplateOptions};
use serde_json::{Value, json};

use crate::support::{Logs, TemplateProject};

/// `Flaky` (fx-faults, with `settings` as its EventInvokeConfig and other properties) and
/// `Sink`, which prints every destination record it gets.
fn project(name: &str, flaky: &str) -> TemplateProject {
    let template = format!(
        r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Flaky:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: flaky
      Runtime: provided.al2023
      Handler: bootstrap
{flaky}
  Sink:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: sink
      Runtime: provided.al2023
      Handler: bootstrap
"#
    );
    TemplateProject::new(
        &format!("async-store-{name}"),
        &template,
        &[("flaky", "fx-faults"), ("sink", "fx-faults")],
    )
}

/// One start of a project's stack, as `up` starts it: the store under `.coldstart/`.
struct Started {
    running: Running,
    logs: Arc<Logs>,
    /// What the stack said (`up` prints these as `coldstart: …`).
    said: Arc<Mutex<Vec<String>>>,
}

impl Started {
    /// Starts `project` with retries (and event ages) scaled to `retry_delay` per minute.
    async fn new(project: &TemplateProject, retry_delay: Duration) -> Started {
        Self::from_template(project, None, retry_delay).await
    }

    /// Starts `project`, reading `template` instead of its own when given.
    async fn from_template(
        project: &TemplateProject,
        template: Option<&str>,
        retry_delay: Duration,
    ) -> Started {
        let source = match template {
            Some(text) => {
                let path = project.0.join("other.yaml");
                std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
                coldstart_stack::Source::Template(path)
            }
            None => coldstart_stack::Source::find(&project.0).unwrap_or_else(|e| panic!("{e}")),
        };
        let options = TemplateOptions {
            port_base: 0,
            ..TemplateOptions::default()
        };
        let mut stack = source.load(&options).unwrap_or_else(|e| panic!("{e}"));
        stack.settings.async_retry_delay = retry_delay;
        let logs = Arc::new(Logs::default());
        let said = Arc::new(Mutex::new(Vec::new()));
        let mut start = StartOptions::new(logs.clone());
        start.listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        start.freeze = false;
        start.async_store = Some(store(project));
        let lines = said.clone();
        start.report = Reporter::new(move |line| {
            if let Ok(mut lines) = lines.lock() {
                lines.push(line.to_owned());
            }
        });
        let running = coldstart_stack::start(&stack, start)
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        Started {
            running,
            logs,
            said,
        }
    }

    /// Sends `event` to `Flaky` as an `Event` invocation: 202 at once. Returns its request id.
    async fn send(&self, event: Value) -> String {
        let out = coldstart_test::sdk_client(self.running.endpoints[0].addr)
            .invoke()
            .function_name("Flaky")
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke: {e:?}"));
        assert_eq!(out.status_code(), 202);
        use aws_sdk_lambda::operation::RequestId as _;
        out.request_id().unwrap_or_default().to_owned()
    }

    /// The `n`th destination record `Sink` printed.
    async fn record(&self, n: usize) -> Value {
        let line = self
            .logs
            .wait_for_nth(n, |l| l.starts_with("Sink: DESTINATION "))
            .await;
        serde_json::from_str(line.trim_start_matches("Sink: DESTINATION "))
            .unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Lines of the log starting with `prefix`.
    fn count(&self, prefix: &str) -> usize {
        self.logs
            .all()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// Stops the stack gracefully (as `up` on SIGTERM) and returns what it said.
    async fn stop(self) -> Vec<String> {
        let said = self.said.clone();
        self.running.stop().await;
        said.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn said(&self) -> Vec<String> {
        self.said.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn store(project: &TemplateProject) -> PathBuf {
    project.0.join(".coldstart").join("async-queue.sqlite")
}

/// Whether some line says `what`.
fn says(lines: &[String], what: &str) -> bool {
    lines.iter().any(|l| l.contains(what))
}

/// A scratch file for the flaky function's call count.
fn calls_file(project: &TemplateProject) -> PathBuf {
    project.0.join("calls")
}

fn calls(project: &TemplateProject) -> String {
    std::fs::read_to_string(calls_file(project)).unwrap_or_default()
}

const ON_SUCCESS_AND_FAILURE: &str = "      EventInvokeConfig:
        MaximumEventAgeInSeconds: 120
        DestinationConfig:
          OnSuccess:
            Type: Lambda
            Destination: !GetAtt Sink.Arn
          OnFailure:
            Type: Lambda
            Destination: !GetAtt Sink.Arn";

/// Lambda's own timing (a minute before the first retry): a failed event waits for its retry
/// far longer than any test runs.
const AWS_TIMING: Duration = Duration::from_secs(60);
/// Retries within milliseconds, ages likewise: 60 s of event age are 10 ms.
const FAST: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_waiting_for_its_retry_at_the_stop_runs_after_the_restart_and_reaches_on_success()
{
    // No maximum age: Lambda's six hours are 36 s on the second start's clock.
    let project = project(
        "retry",
        "      EventInvokeConfig:
        DestinationConfig:
          OnSuccess:
            Type: Lambda
            Destination: !GetAtt Sink.Arn",
    );
    let first = Started::new(&project, AWS_TIMING).await;
    let id = first
        .send(json!({"op": "flaky", "state": calls_file(&project), "failures": 1}))
        .await;
    // The first attempt failed: the event now waits a minute for its retry.
    first
        .logs
        .wait_for(|l| l.starts_with(&format!("Flaky: REPORT RequestId: {id}")))
        .await;
    let said = first.stop().await;
    assert!(
        says(&said, "kept 1 queued Event invocations in "),
        "{said:?}"
    );
    assert!(store(&project).exists());

    let second = Started::new(&project, Duration::from_millis(100)).await;
    assert!(
        says(&second.said(), "resumed 1 queued Event invocations from "),
        "{:?}",
        second.said()
    );
    let record = second.record(1).await;
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(record["responsePayload"]["calls"], 2);
    assert_eq!(calls(&project), "2");
    let said = second.stop().await;
    assert!(!says(&said, "kept"), "{said:?}");

    // Taken events left the store: a third start has nothing to resume.
    let third = Started::new(&project, FAST).await;
    let said = third.stop().await;
    assert!(!says(&said, "resumed"), "{said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_behind_a_busy_function_are_all_kept_and_each_runs_once_after_the_restart() {
    // One sandbox at most; its first event hangs until its 2 s timeout, and is not retried.
    let project = project(
        "busy",
        "      Timeout: 2
      ReservedConcurrentExecutions: 1
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig:
          OnSuccess:
            Type: Lambda
            Destination: !GetAtt Sink.Arn",
    );
    let first = Started::new(&project, AWS_TIMING).await;
    let blocker = first.send(json!({"op": "sleep", "ms": 600_000})).await;
    first
        .logs
        .wait_for(|l| l.starts_with(&format!("Flaky: START RequestId: {blocker}")))
        .await;
    let mut queued = Vec::new();
    for n in 0..3 {
        queued.push(first.send(json!({"op": "echo", "n": n})).await);
    }
    // The stop lets the hanging attempt run to its timeout; the three behind it are kept.
    let logs = first.logs.clone();
    let said = first.stop().await;
    assert!(
        says(&said, "kept 3 queued Event invocations in "),
        "{said:?}"
    );
    for id in &queued {
        let ran = logs.all().iter().any(|l| l.contains(id.as_str()));
        assert!(!ran, "{id} ran before the stop");
    }

    let second = Started::new(&project, FAST).await;
    assert!(
        says(&second.said(), "resumed 3 queued Event invocations from "),
        "{:?}",
        second.said()
    );
    let mut seen = Vec::new();
    for n in 1..=3 {
        let record = second.record(n).await;
        assert_eq!(record["requestContext"]["condition"], "Success");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
        seen.push(
            record["requestContext"]["requestId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    seen.sort();
    let mut expected = queued.clone();
    expected.sort();
    assert_eq!(seen, expected, "each kept event reached OnSuccess");
    for id in &queued {
        assert_eq!(
            second.count(&format!("Flaky: START RequestId: {id}")),
            1,
            "{id} runs exactly once"
        );
    }
    assert_eq!(second.count("Sink: DESTINATION "), 3);
    let said = second.stop().await;
    assert!(!says(&said, "kept"), "{said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_maximum_age_passed_while_stopped_goes_to_on_failure() {
    let project = project("age", ON_SUCCESS_AND_FAILURE);
    let first = Started::new(&project, AWS_TIMING).await;
    let id = first
        .send(json!({"op": "flaky", "state": calls_file(&project), "failures": 5}))
        .await;
    first
        .logs
        .wait_for(|l| l.starts_with(&format!("Flaky: REPORT RequestId: {id}")))
        .await;
    let said = first.stop().await;
    assert!(
        says(&said, "kept 1 queued Event invocations in "),
        "{said:?}"
    );
    // Its 120 s maximum age is 20 ms on the next start's clock: make sure that much has passed.
    tokio::time::sleep(FAST * 2 + Duration::from_millis(5)).await;

    let second = Started::new(&project, FAST).await;
    assert!(
        says(
            &second.said(),
            "1 past their maximum event age went to OnFailure"
        ),
        "{:?}",
        second.said()
    );
    let record = second.record(1).await;
    assert_eq!(record["requestContext"]["condition"], "EventAgeExceeded");
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorMessage"], "failing call 1");
    assert_eq!(calls(&project), "1", "not run again");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_event_of_a_function_removed_from_the_stack_goes_to_its_on_failure() {
    let project = project("removed", ON_SUCCESS_AND_FAILURE);
    let first = Started::new(&project, AWS_TIMING).await;
    let id = first
        .send(json!({"op": "flaky", "state": calls_file(&project), "failures": 5}))
        .await;
    first
        .logs
        .wait_for(|l| l.starts_with(&format!("Flaky: REPORT RequestId: {id}")))
        .await;
    first.stop().await;

    // The stack starts again without Flaky: its OnFailure (Sink's ARN) gets the event.
    let only_sink = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Sink:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: sink
      Runtime: provided.al2023
      Handler: bootstrap
"#;
    let second = Started::from_template(&project, Some(only_sink), FAST).await;
    assert!(
        says(&second.said(), "1 of functions no longer in the stack"),
        "{:?}",
        second.said()
    );
    let record = second.record(1).await;
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["requestPayload"]["failures"], 5);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_store_is_moved_aside_with_a_warning_and_the_stack_serves() {
    let project = project("corrupt", ON_SUCCESS_AND_FAILURE);
    let path = store(&project);
    std::fs::create_dir_all(path.parent().unwrap_or(&project.0)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &path,
        "not a database: a file some other tool wrote here, long enough",
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let started = Started::new(&project, FAST).await;
    let said = started.said();
    let warning = said
        .iter()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {said:?}"));
    assert!(
        warning.contains("async-queue.sqlite cannot be read or written")
            && warning.contains("moved it to ")
            && warning.contains("serving without"),
        "{warning}"
    );
    let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap_or(&project.0))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("async-queue.sqlite.unreadable-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the old file is kept to look at");

    // It serves: an event runs and reaches its destination.
    let id = started.send(json!({"op": "echo"})).await;
    let record = started.record(1).await;
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    started.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_record_due_during_the_stop_is_kept_for_the_destination_function() {
    // The event hangs until its 2 s timeout, which comes while the stack stops: its OnFailure
    // record can no longer be sent to Sink, so it is kept as an event of Sink's.
    let project = project(
        "destination",
        "      Timeout: 2
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig:
          OnFailure:
            Type: Lambda
            Destination: !GetAtt Sink.Arn",
    );
    let first = Started::new(&project, AWS_TIMING).await;
    let id = first.send(json!({"op": "sleep", "ms": 600_000})).await;
    first
        .logs
        .wait_for(|l| l.starts_with(&format!("Flaky: START RequestId: {id}")))
        .await;
    let logs = first.logs.clone();
    let said = first.stop().await;
    assert!(
        says(&said, "kept 1 queued Event invocations in "),
        "{said:?}"
    );
    assert!(!logs.all().iter().any(|l| l.starts_with("Sink: ")));

    let second = Started::new(&project, FAST).await;
    let record = second.record(1).await;
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["requestId"], id.as_str());
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    second.stop().await;
}

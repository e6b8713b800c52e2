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
    let project = Project::new(
        "url",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Echo:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: code\n      Runtime: provided.al2023\n      Handler: h\n      FunctionUrlConfig:\n        AuthType: NONE\n",
        echo(),
    );
    let stack = Stack::from_template(project.0.join("template.yaml"))
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
}

/// A project folder with `template` and `code/bootstrap` copied from `bootstrap`; removed on drop.
struct Project(PathBuf);

impl Project {
    fn new(name: &str, template: &str, bootstrap: PathBuf) -> Project {
        let dir =
            std::env::temp_dir().join(format!("coldstart-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("code")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(bootstrap, dir.join("code/bootstrap")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("template.yaml"), template).unwrap_or_else(|e| panic!("{e}"));
        Project(dir)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_arrives_in_chunks_with_its_end() {
    let stack = Stack::function(repo("crates/testkit/fixtures/stream-echo.sh"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = stack
        .endpoints()
        .iter()
        .find(|e| e.kind == EndpointKind::Invoke)
        .and_then(|e| e.routes.first().map(|(f, _)| f.clone()))
        .unwrap_or_else(|| panic!("{:?}", stack.endpoints()));
    let streamed = stack
        .invoke_stream(&name, "{}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(streamed.complete, "{streamed:?}");
    assert_eq!(streamed.error_code, None);
    assert_eq!(&streamed.body()[..], b"chunk 1\nchunk 2\n");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_reaches_the_apis_routes() {
    use futures_util::{SinkExt, StreamExt};
    let project = Project::new(
        "ws",
        "Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code, Runtime: provided.al2023, Handler: h}
  Socket:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: socket, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Socket
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations
  Default:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $default
      RouteResponseSelectionExpression: $default
      Target: !Sub integrations/${Integration}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Socket, StageName: dev}
",
        echo(),
    );
    let stack = Stack::from_template(project.0.join("template.yaml"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ws = stack
        .websocket("Socket", "room=1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ws.send(tokio_tungstenite::tungstenite::Message::text("hello"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The echo answers with its event: the route response is that JSON.
    let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .unwrap_or_else(|e| panic!("no answer: {e}"));
    let text = match frame {
        Some(Ok(message)) => message.into_text().unwrap_or_default().to_string(),
        other => panic!("{other:?}"),
    };
    let event: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(event["body"], "hello");
    assert_eq!(event["requestContext"]["routeKey"], "$default");
    assert!(stack.websocket("Nope", "").await.is_err());
    let _ = ws.close(None).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocations_platform_events_are_there_to_assert_on() {
    let stack = Stack::function(echo())
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name = stack
        .endpoints()
        .iter()
        .find(|e| e.kind == EndpointKind::Invoke)
        .and_then(|e| e.routes.first().map(|(f, _)| f.clone()))
        .unwrap_or_else(|| panic!("{:?}", stack.endpoints()));
    let answer = stack
        .invoke(&name, r#"{"n":1}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let id = answer
        .request_id()
        .unwrap_or_else(|| panic!("{:?}", answer.logs))
        .to_owned();
    let report = stack
        .wait_for_record(&id, "platform.report", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no report: {:?}", stack.records()));
    assert_eq!(report["record"]["status"], "success", "{report}");
    assert!(
        report["record"]["metrics"]["durationMs"].is_number(),
        "{report}"
    );
    let kinds: Vec<String> = stack
        .records_of(&id)
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .collect();
    let position = |kind: &str| kinds.iter().position(|k| k == kind);
    assert!(
        position("platform.start") < position("platform.runtimeDone")
            && position("platform.runtimeDone") < position("platform.report")
            && position("platform.start").is_some(),
        "{kinds:?}"
    );
    // The init phase's events are there too, under the function's name.
    assert!(
        stack
            .records()
            .iter()
            .any(|(f, e)| *f == name && e["type"] == "platform.initStart"),
        "{:?}",
        stack.records()
    );
    stack.stop().await;
}

/// A template whose function `Job` (the test kit's event logger) has a `rate(1 minute)`
/// schedule and a `ScheduleV2` in Tokyo time with an `Input`, in a scratch folder.
fn scheduled_template(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("coldstart-schedule-{}-{test}", std::process::id()));
    std::fs::create_dir_all(dir.join("job")).unwrap_or_else(|e| panic!("{e}"));
    let template = dir.join("template.yaml");
    std::fs::write(
        &template,
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Job:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: job
      Runtime: provided.al2023
      Handler: bootstrap
      Events:
        EveryMinute:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
        Tokyo:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 9 * * ? *)
            ScheduleExpressionTimezone: Asia/Tokyo
            Input: '{"at": "<aws.scheduler.scheduled-time>", "schedule": "<aws.scheduler.schedule-arn>"}'
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    template
}

/// The events the logger printed so far (`EVENT <json>` lines).
fn logged_events(stack: &Stack) -> Vec<serde_json::Value> {
    stack
        .logs()
        .iter()
        .filter_map(|(f, line)| (f == "Job").then_some(line)?.strip_prefix("EVENT "))
        .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_schedule_fired_now_delivers_eventbridges_scheduled_event() {
    let template = scheduled_template("rate");
    let stack = Stack::from_template(&template)
        .bootstrap("Job", repo("crates/testkit/fixtures/event-log.sh"))
        .build(false)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deliveries = stack
        .fire_schedule("JobEveryMinute")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let [delivery] = deliveries.as_slice() else {
        panic!("{deliveries:?}");
    };
    assert_eq!(delivery.function, "Job");
    // The Event invocation runs to its end: its report comes on the platform event stream,
    // beside the schedule's own event.
    stack
        .wait_for_record(
            &delivery.request_id,
            "platform.report",
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|| panic!("no report: {:?}", stack.records()));
    let schedule_event = stack
        .records_of(&delivery.request_id)
        .into_iter()
        .find(|e| e["type"] == "coldstart.schedule")
        .unwrap_or_else(|| panic!("{:?}", stack.records()));
    assert_eq!(schedule_event["record"]["schedule"], "JobEveryMinute");
    assert_eq!(schedule_event["record"]["outcome"], "accepted");
    // What the function got is what EventBridge sends, and the AWS types read it.
    let events = logged_events(&stack);
    let [event] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(event, &delivery.payload);
    let typed: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{e}: {event}"));
    assert_eq!(typed.detail_type, "Scheduled Event");
    assert_eq!(typed.source, "aws.events");
    assert_eq!(
        event["resources"],
        serde_json::json!(["arn:aws:events:us-east-1:123456789012:rule/JobEveryMinute"])
    );
    assert_eq!(event["detail"], serde_json::json!({}));
    assert_eq!(
        (&event["account"], &event["region"]),
        (&"123456789012".into(), &"us-east-1".into())
    );
    // The terminal shows the delivery with the schedule's name.
    assert!(
        stack.logs().iter().any(|(f, l)| f == "Job"
            && l == &format!(
                "SCHEDULE JobEveryMinute rate(1 minute) fired RequestId: {}",
                delivery.request_id
            )),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(template.parent().unwrap_or(&template));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_schedule_delivers_its_input_with_context_attributes() {
    let template = scheduled_template("v2");
    let stack = Stack::from_template(&template)
        .bootstrap("Job", repo("crates/testkit/fixtures/event-log.sh"))
        .build(false)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deliveries = stack
        .fire_schedule("JobTokyo")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request_id = deliveries
        .first()
        .map(|d| d.request_id.clone())
        .unwrap_or_default();
    stack
        .wait_for_record(&request_id, "platform.report", Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no report: {:?}", stack.records()));
    let events = logged_events(&stack);
    let [event] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(
        event["schedule"],
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/JobTokyo"
    );
    assert!(
        event["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
        "{event}"
    );
    // An unknown schedule is an error naming the ones there are.
    let e = match stack.fire_schedule("Nope").await {
        Ok(d) => panic!("fired {d:?}"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("JobEveryMinute, JobTokyo"), "{e}");
    // With timers off (the test crate's default) nothing fires by itself: only the one
    // delivery above happened.
    assert_eq!(logged_events(&stack).len(), 1);
    stack.stop().await;
    let _ = std::fs::remove_dir_all(template.parent().unwrap_or(&template));
}

/// moto's server (`scripts/test-tools.sh` installs it) on a free port of 127.0.0.1, killed on
/// drop.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("moto_server (run scripts/test-tools.sh): {e}"));
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Ready once it accepts a connection: bounded, 20 s at most.
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not listen on {port}");
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("test", "test", None, None, "test"))
                .endpoint_url(&self.url)
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .build(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Worker` consumes `Orders` (a batch of up to ten within one second, with
/// `ReportBatchItemFailures`; one sandbox, so one poller gathers the whole batch); `Orders` hides
/// a received message for 3 s (more than a batch takes, or it would be received twice) and sends
/// it to `OrdersDlq` after two receives.
const ORDERS_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 3
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDlq.Arn
        maxReceiveCount: 2
  OrdersDlq:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker
      Runtime: provided.al2023
      Handler: bootstrap
      ReservedConcurrentExecutions: 1
      Environment:
        Variables:
          QUEUE_URL: !Ref Orders
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
"#;

/// A fresh folder for `test` with `template` in it (and the empty `worker/` its `Worker` names as
/// code), served with the SQS shell fixture as `Worker`, its queues on `moto`.
async fn worker_stack(moto: &Moto, test: &str, template: &str) -> (Stack, PathBuf) {
    let dir = std::env::temp_dir().join(format!("coldstart-sqs-{}-{test}", std::process::id()));
    std::fs::create_dir_all(dir.join("worker")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("template.yaml"), template).unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::from_template(dir.join("template.yaml"))
        .bootstrap("Worker", repo("crates/testkit/fixtures/sqs-batch.sh"))
        .build(false)
        .sqs_endpoint(&moto.url)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (stack, dir)
}

/// The batches `Worker` got so far: the bodies of each.
fn batches(stack: &Stack) -> Vec<Vec<String>> {
    stack
        .logs()
        .iter()
        .filter_map(|(f, line)| (f == "Worker").then_some(line)?.strip_prefix("BATCH "))
        .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_message_of_ten_is_redelivered_then_dead_lettered_and_nine_are_deleted() {
    let moto = Moto::start().await;
    let (stack, dir) = worker_stack(&moto, "partial", ORDERS_TEMPLATE).await;
    let sqs = moto.sqs();
    let url = |name: &str| format!("{}/123456789012/{name}", moto.url);
    let queue = url("coldstart-Orders");
    let bodies: Vec<String> = (0..10)
        .map(|i| {
            if i == 6 {
                "order 6 fail".to_owned()
            } else {
                format!("order {i}")
            }
        })
        .collect();
    let entries: Vec<aws_sdk_sqs::types::SendMessageBatchRequestEntry> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(b)
                .build()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    sqs.send_message_batch()
        .queue_url(&queue)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)));

    // The failed message lands in the dead-letter queue once received twice.
    let dlq = url("coldstart-OrdersDlq");
    let mut dead = Vec::new();
    for _ in 0..10 {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(3)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)));
        dead.extend(
            got.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(dead, ["order 6 fail"], "batches: {:?}", batches(&stack));
    // Every other message reached the function once and was deleted; the failed one twice.
    let seen: Vec<String> = batches(&stack).into_iter().flatten().collect();
    for body in &bodies {
        let times = seen.iter().filter(|b| *b == body).count();
        let expected = if body.contains("fail") { 2 } else { 1 };
        assert_eq!(times, expected, "{body}: {seen:?} {:?}", stack.logs());
    }
    let left = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
        .attributes
        .unwrap_or_default();
    for key in [
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ] {
        assert_eq!(
            left.get(&key).map(String::as_str),
            Some("0"),
            "{key:?}: {left:?}"
        );
    }
    // The function's queue URL (`!Ref Orders`) and SDK endpoint are the local server's.
    let env = format!("QUEUE_URL={queue} AWS_ENDPOINT_URL_SQS={}", moto.url);
    assert!(
        stack.logs().iter().any(|(f, l)| f == "Worker" && *l == env),
        "{env}: {:?}",
        stack.logs()
    );
    // Each batch shows in the terminal with its queue and outcome.
    assert!(
        stack.logs().iter().any(|(f, l)| f == "Worker"
            && l.starts_with("SQS coldstart-Orders")
            && l.ends_with(": 1 of 10 failed")),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_function_loses_no_message() {
    let moto = Moto::start().await;
    // One sandbox at most, two pollers: while one batch runs (half a second), the other
    // poller's invocation is throttled and its message must come back.
    let template = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker
      Runtime: provided.al2023
      Handler: bootstrap
      ReservedConcurrentExecutions: 1
      Environment:
        Variables:
          SLEEP: "0.5"
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 2
"#;
    let (stack, dir) = worker_stack(&moto, "throttle", template).await;
    let sqs = moto.sqs();
    let queue = format!("{}/123456789012/coldstart-Jobs", moto.url);
    let bodies: Vec<String> = (0..6).map(|i| format!("job {i}")).collect();
    for body in &bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)));
    }
    // Every job reaches the function, throttles or not: at most 30 s.
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..600 {
        seen = batches(&stack).into_iter().flatten().collect();
        if bodies.iter().all(|b| seen.contains(b)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for body in &bodies {
        assert!(seen.contains(body), "{body} lost: {:?}", stack.logs());
    }
    assert!(
        stack.logs().iter().any(|(f, l)| f == "Worker"
            && l.starts_with("SQS coldstart-Jobs")
            && l.ends_with(": throttled")),
        "no throttle happened: {:?}",
        stack.logs()
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_no_filter_matches_are_deleted_without_an_invocation() {
    let moto = Moto::start().await;
    let template = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Events:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker
      Runtime: provided.al2023
      Handler: bootstrap
      ReservedConcurrentExecutions: 1
      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Events.Arn
            FilterCriteria:
              Filters:
                - Pattern: '{"body": {"kind": ["order"], "amount": [{"numeric": [">", 100]}]}}'
"#;
    let (stack, dir) = worker_stack(&moto, "filter", template).await;
    let sqs = moto.sqs();
    let queue = format!("{}/123456789012/coldstart-Events", moto.url);
    let big = r#"{"kind":"order","amount":150}"#;
    for body in [
        r#"{"kind":"refund","amount":150}"#,
        r#"{"kind":"order","amount":5}"#,
        "not json",
        big,
    ] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)));
    }
    // The matching one reaches the function; the queue ends empty (at most 30 s).
    let mut empty = false;
    for _ in 0..300 {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
            .attributes
            .unwrap_or_default();
        let count = |k| attributes.get(&k).map(String::as_str) == Some("0");
        empty = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            && count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            && !batches(&stack).is_empty();
        if empty {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(empty, "{:?}", stack.logs());
    let seen: Vec<String> = batches(&stack).into_iter().flatten().collect();
    assert_eq!(seen, [big], "{:?}", stack.logs());
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two FIFO queues, each drained by one poller (one sandbox) in batches of up to ten: `Careful`
/// stops at its first failure and reports the rest of the batch, as AWS advises FIFO functions;
/// `Naive` reports only the failed message.
const FIFO_TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: worker
    Runtime: provided.al2023
    Handler: bootstrap
    ReservedConcurrentExecutions: 1
Resources:
  CarefulJobs:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true, ContentBasedDeduplication: true, VisibilityTimeout: 1}
  NaiveJobs:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true, ContentBasedDeduplication: true, VisibilityTimeout: 1}
  Careful:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {Variables: {FIFO_STOP: "1"}}
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt CarefulJobs.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
  Naive:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt NaiveJobs.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
"#;

/// The bodies `function` reported as succeeded, batch after batch (the fixture's `OK` lines).
fn succeeded(stack: &Stack, function: &str) -> Vec<String> {
    stack
        .logs()
        .iter()
        .filter_map(|(f, line)| (f == function).then_some(line)?.strip_prefix("OK "))
        .flat_map(|json| {
            serde_json::from_str::<Vec<String>>(json).unwrap_or_else(|e| panic!("{e}: {json}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_queue_keeps_each_groups_order_when_the_function_stops_at_its_first_failure() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let dir = std::env::temp_dir().join(format!("coldstart-sqs-{}-fifo", std::process::id()));
    std::fs::create_dir_all(dir.join("worker")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("template.yaml"), FIFO_TEMPLATE).unwrap_or_else(|e| panic!("{e}"));
    // The queues exist with their messages before the stack starts (it keeps existing queues),
    // so each poller's first receive gets the whole batch. Careful's batch has one message of
    // each group after its failure: moto 5.2.1 returns two messages of one group that come back
    // together out of order (its pending-group bookkeeping), where SQS keeps their order.
    let sent = [
        ("coldstart-CarefulJobs.fifo", ["a1", "a2 flaky", "b1"]),
        ("coldstart-NaiveJobs.fifo", ["a1", "a2 flaky", "a3"]),
    ];
    for (queue, bodies) in sent {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = sqs
            .create_queue()
            .queue_name(queue)
            .attributes(A::VisibilityTimeout, "1")
            .attributes(A::FifoQueue, "true")
            .attributes(A::ContentBasedDeduplication, "true")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
            .queue_url
            .unwrap_or_default();
        let entries = bodies.iter().enumerate().map(|(i, body)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(*body)
                .message_group_id(&body[..1])
                .build()
                .unwrap_or_else(|e| panic!("{e}"))
        });
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)));
    }
    let stack = Stack::from_template(dir.join("template.yaml"))
        .bootstrap("Careful", repo("crates/testkit/fixtures/sqs-batch.sh"))
        .bootstrap("Naive", repo("crates/testkit/fixtures/sqs-batch.sh"))
        .build(false)
        .sqs_endpoint(&moto.url)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Every message succeeds once in each (the flaky one on its second receive): at most 30 s.
    for _ in 0..300 {
        let done = sent
            .iter()
            .zip(["Careful", "Naive"])
            .all(|((_, bodies), f)| {
                let ok = succeeded(&stack, f);
                bodies.iter().all(|b| ok.contains(&b.to_string()))
            });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stopping at the first failure: a1 is deleted, b1 waits with a2 and succeeds after it
    // (nothing is deleted out of order).
    assert_eq!(
        succeeded(&stack, "Careful"),
        ["a1", "a2 flaky", "b1"],
        "{:?}",
        stack.logs()
    );
    // Reporting only the failure: a3 is deleted before a2 succeeds, as on AWS, and coldstart
    // says why.
    assert_eq!(
        succeeded(&stack, "Naive"),
        ["a1", "a3", "a2 flaky"],
        "{:?}",
        stack.logs()
    );
    assert!(
        stack.logs().iter().any(|(f, l)| f == "Naive"
            && l.starts_with("SQS coldstart-NaiveJobs.fifo: message ")
            && l.contains("of group a succeeded after")),
        "{:?}",
        stack.logs()
    );
    assert!(
        !stack
            .logs()
            .iter()
            .any(|(f, l)| f == "Careful" && l.contains("order is lost")),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_input_transformer_shapes_what_the_function_gets() {
    let dir = std::env::temp_dir().join(format!(
        "coldstart-schedule-{}-transformer",
        std::process::id()
    ));
    std::fs::create_dir_all(dir.join("job")).unwrap_or_else(|e| panic!("{e}"));
    let template = dir.join("template.yaml");
    std::fs::write(
        &template,
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Job:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: job
      Runtime: provided.al2023
      Handler: bootstrap
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      Name: nightly
      ScheduleExpression: cron(0 3 * * ? *)
      Targets:
        - Id: job
          Arn: !GetAtt Job.Arn
          InputTransformer:
            InputPathsMap:
              time: $.time
              rule: $.resources[0]
            InputTemplate: '{"job": "cleanup", "at": <time>, "note": "fired by <aws.events.rule-name> at <time>", "rule": <rule>}'
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stack = Stack::from_template(&template)
        .bootstrap("Job", repo("crates/testkit/fixtures/event-log.sh"))
        .build(false)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deliveries = stack
        .fire_schedule("Nightly")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let [delivery] = deliveries.as_slice() else {
        panic!("{deliveries:?}");
    };
    stack
        .wait_for_record(
            &delivery.request_id,
            "platform.report",
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|| panic!("no report: {:?}", stack.records()));
    let events = logged_events(&stack);
    let [event] = events.as_slice() else {
        panic!("{events:?}");
    };
    let at = event["at"]
        .as_str()
        .unwrap_or_else(|| panic!("{event}"))
        .to_owned();
    assert!(at.ends_with('Z') && at.len() == 20, "{event}");
    assert_eq!(
        event,
        &serde_json::json!({
            "job": "cleanup",
            "at": at,
            "note": format!("fired by nightly at {at}"),
            "rule": "arn:aws:events:us-east-1:123456789012:rule/nightly",
        })
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

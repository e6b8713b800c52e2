//! Handlers run inside the test's own process ([`Function::handler`]) against the real emulator:
//! answers, logs, errors, timeouts, panics, streams, a template's function replaced by one, and
//! stacks side by side.

use std::path::PathBuf;
use std::time::Duration;

use coldstart_runtime::{Context, Error, ResponseStream};
use coldstart_test::{Function, Stack};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

async fn started(function: Function) -> Stack {
    function.start().await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_handler_answers_with_its_logs_and_platform_events() {
    let stack = started(Function::handler(|event: Value, ctx: Context| async move {
        coldstart_runtime::info!("got {event}");
        Ok::<_, Error>(json!({
            "event": event,
            "function": ctx.env_config.function_name,
            "memory": ctx.env_config.memory_mb,
            "request": ctx.request_id,
            "left_ms": ctx.remaining().as_millis() as u64,
        }))
    }))
    .await;
    let answer = stack
        .invoke("function", r#"{"n":1}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!answer.failed(), "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["event"], json!({"n": 1}));
    assert_eq!(body["function"], "function");
    assert_eq!(body["memory"], 128);
    let left = body["left_ms"].as_u64().unwrap_or(0);
    assert!(
        left > 0 && left <= 3000,
        "deadline from the function's 3 s: {left}"
    );
    let id = answer
        .request_id()
        .unwrap_or_else(|| panic!("{:?}", answer.logs));
    assert_eq!(body["request"], id);
    // The runtime's log lines are the function's, in its text format, with the request id.
    assert!(
        answer
            .logs
            .iter()
            .any(|l| l.contains(&format!("{id}\tINFO\tgot {{\"n\":1}}"))),
        "{:?}",
        answer.logs
    );
    assert!(
        answer.logs.iter().any(|l| l.starts_with("END RequestId")),
        "{:?}",
        answer.logs
    );
    let report = stack
        .wait_for_record(id, "platform.report", Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("{:?}", stack.records_of(id)));
    assert_eq!(report["record"]["status"], "success");
    // No process: nothing for a test (or a drop) to signal.
    assert!(stack.sandbox_pids("function").is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_panics_of_an_in_process_handler_are_the_functions_errors() {
    let stack = started(Function::handler(
        |event: Value, _ctx: Context| async move {
            match event["do"].as_str() {
                Some("fail") => Err("the event asked for it".to_owned()),
                Some("panic") => panic!("a handler panicked"),
                _ => Ok(event),
            }
        },
    ))
    .await;
    let failed = stack
        .invoke("function", r#"{"do":"fail"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        failed.json()["errorMessage"],
        "the event asked for it",
        "{}",
        failed.text()
    );
    let panicked = stack
        .invoke("function", r#"{"do":"panic"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(panicked.function_error.as_deref(), Some("Unhandled"));
    assert!(
        panicked.text().contains("a handler panicked"),
        "{}",
        panicked.text()
    );
    // The sandbox lives on: the next invocation is answered.
    let fine = stack
        .invoke("function", r#"{"do":"nothing"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fine.json()["do"], "nothing");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_handler_past_its_timeout_is_ended_as_lambda_ends_one() {
    let stack = started(
        Function::handler(|event: Value, _ctx: Context| async move {
            if event["sleep"].as_bool() == Some(true) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok::<_, Error>(event)
        })
        .named("slow")
        .timeout(Duration::from_secs(1)),
    )
    .await;
    let timed_out = stack
        .invoke("slow", r#"{"sleep":true}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(timed_out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        timed_out.json()["errorType"],
        "Sandbox.Timedout",
        "{}",
        timed_out.text()
    );
    assert!(
        timed_out
            .logs
            .iter()
            .any(|l| l.contains("Task timed out after 1.00 seconds")),
        "{:?}",
        timed_out.logs
    );
    // A new sandbox (a new task) takes the next one.
    let next = stack
        .invoke("slow", r#"{"sleep":false}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next.json()["sleep"], false);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_streaming_handler_streams() {
    let stack = started(Function::streaming_handler(
        |event: Value, _ctx: Context, mut stream: ResponseStream| async move {
            let n = event["chunks"].as_u64().unwrap_or(0);
            for i in 0..n {
                stream.write(format!("chunk {i};")).await?;
            }
            Ok::<_, Error>(())
        },
    ))
    .await;
    let streamed = stack
        .invoke_stream("function", r#"{"chunks":3}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(streamed.complete, "{streamed:?}");
    assert_eq!(streamed.error_code, None, "{streamed:?}");
    let text: String = streamed
        .chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(text, "chunk 0;chunk 1;chunk 2;");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_templates_function_served_by_an_in_process_handler_answers_its_routes() {
    let stack = Stack::from_template(repo("examples/echo/template.yaml"))
        .function(
            "EchoFunction",
            Function::handler(|event: Value, _ctx: Context| async move {
                let name = event["pathParameters"]["name"].clone();
                Ok::<_, Error>(json!({"statusCode": 200, "body": format!("hi {name}")}))
            }),
        )
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let response = stack
        .get("ServerlessHttpApi", "/hello/world")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), r#"hi "world""#);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_functions_of_parallel_stacks_keep_to_themselves() {
    let function = |tag: &'static str| {
        Function::handler(move |event: Value, ctx: Context| async move {
            Ok::<_, Error>(json!({
                "tag": tag,
                "event": event,
                "trace": ctx.xray_trace_id,
                // The process's environment is the test's: nothing is exported into it.
                "exported": std::env::var("_X_AMZN_TRACE_ID").ok(),
            }))
        })
        .env("TAG", tag)
    };
    let (a, b) = tokio::join!(started(function("a")), started(function("b")));
    let rounds = 20;
    let calls = (0..rounds).map(|i| {
        let (stack, tag) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        async move {
            let answer = stack
                .invoke("function", format!(r#"{{"i":{i}}}"#))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (i, tag, answer.json())
        }
    });
    for (i, tag, body) in futures_util::future::join_all(calls).await {
        assert_eq!(body["tag"], tag, "{body}");
        assert_eq!(body["event"]["i"], i, "{body}");
        assert_eq!(body["exported"], Value::Null, "{body}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cargo_bin_that_is_not_there_is_named_when_the_stack_starts() {
    let error = Function::cargo_bin("no-such-binary")
        .start()
        .await
        .err()
        .unwrap_or_else(|| panic!("a missing binary started"));
    let message = error.to_string();
    assert!(message.contains("no-such-binary"), "{message}");
}

//! `aws-sdk-lambda` as the caller: every Invoke API answer an SDK user can see.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use serde_json::{Value, json};

use crate::support::{Harness, decode_log, fixture, function};

/// The invocation's payload as JSON (`null` when it is not JSON).
fn json_of(out: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    serde_json::from_slice(out.payload().map(Blob::as_ref).unwrap_or_default()).unwrap_or_default()
}

async fn faults() -> Harness {
    Harness::start(vec![function("faults", fixture("fx-faults"))]).await
}

#[tokio::test]
async fn request_response_returns_the_functions_answer_with_aws_headers() {
    let h = faults().await;
    let out = h
        .sdk()
        .invoke()
        .function_name("faults")
        .payload(Blob::new(r#"{"op":"echo","n":1}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.executed_version(), Some("$LATEST"));
    assert_eq!(out.function_error(), None);
    let payload = json_of(&out);
    assert_eq!(payload, json!({"op":"echo","n":1}));
    h.stop().await;
}

#[tokio::test]
async fn a_full_arn_names_the_function_too() {
    let h = faults().await;
    let out = h
        .sdk()
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:012345678912:function:faults")
        .payload(Blob::new(r#"{"op":"context"}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let payload = json_of(&out);
    assert_eq!(
        payload["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:012345678912:function:faults"
    );
    h.stop().await;
}

#[tokio::test]
async fn event_is_accepted_at_once_and_still_runs() {
    let h = faults().await;
    let out = h
        .sdk()
        .invoke()
        .function_name("faults")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(r#"{"op":"print","lines":["event-ran-7f3a"]}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out.status_code(), 202);
    assert!(out.payload().is_none_or(|p| p.as_ref().is_empty()));
    h.logs.wait_for(|l| l.ends_with("event-ran-7f3a")).await;
    h.logs.wait_for(|l| l.contains("REPORT RequestId:")).await;
    h.stop().await;
}

#[tokio::test]
async fn dry_run_answers_204_without_starting_the_function() {
    let h = faults().await;
    let out = h
        .sdk()
        .invoke()
        .function_name("faults")
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out.status_code(), 204);
    assert!(h.emulator.sandbox_pids("faults").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn tail_returns_the_invocations_log_ending_with_report() {
    let h = faults().await;
    let out = h
        .sdk()
        .invoke()
        .function_name("faults")
        .log_type(LogType::Tail)
        .payload(Blob::new(
            r#"{"op":"print","lines":["hello from the function"]}"#,
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let log = decode_log(out.log_result().unwrap_or_default());
    assert!(log.len() <= 4096);
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("START RequestId: "));
    let own = lines.iter().position(|l| *l == "hello from the function");
    let end = lines.iter().position(|l| l.starts_with("END RequestId: "));
    assert!(start < own && own < end && start.is_some(), "{log}");
    let report = lines.last().copied().unwrap_or_default();
    assert!(report.starts_with("REPORT RequestId: "), "{log}");
    for field in [
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 128 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ] {
        assert!(report.contains(field), "{field} missing in {report}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_handler_error_is_unhandled_with_aws_error_shape() {
    let h = faults().await;
    let out = h
        .sdk()
        .invoke()
        .function_name("faults")
        .payload(Blob::new(r#"{"op":"error","message":"no such order"}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), Some("Unhandled"));
    let body = json_of(&out);
    assert_eq!(
        body,
        json!({"errorType":"FixtureError","errorMessage":"no such order"})
    );
    h.stop().await;
}

#[tokio::test]
async fn unknown_function_is_resource_not_found() {
    let h = faults().await;
    let err = h
        .sdk()
        .invoke()
        .function_name("nope")
        .send()
        .await
        .err()
        .map(|e| e.into_service_error());
    let err = err.unwrap_or_else(|| panic!("invoking a missing function must fail"));
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert!(
        format!("{err}")
            .contains("Function not found: arn:aws:lambda:us-east-1:012345678912:function:nope"),
        "{err}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_payload_that_is_not_json_is_invalid_request_content() {
    let h = faults().await;
    let err = h
        .sdk()
        .invoke()
        .function_name("faults")
        .payload(Blob::new("not json"))
        .send()
        .await
        .err()
        .map(|e| e.into_service_error());
    assert!(
        err.as_ref()
            .is_some_and(|e| e.is_invalid_request_content_exception()),
        "{err:?}"
    );
    assert!(h.emulator.sandbox_pids("faults").is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_payload_over_6_mb_is_request_too_large() {
    let h = faults().await;
    let mut big = vec![b' '; 6 * 1024 * 1024 + 1];
    big[0] = b'1';
    let err = h
        .sdk()
        .invoke()
        .function_name("faults")
        .payload(Blob::new(big))
        .send()
        .await
        .err()
        .map(|e| e.into_service_error());
    assert!(
        err.as_ref()
            .is_some_and(|e| e.is_request_too_large_exception()),
        "{err:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn client_context_and_tenant_reach_the_function() {
    use base64::Engine;
    let h = faults().await;
    let context = base64::engine::general_purpose::STANDARD
        .encode(r#"{"custom":{"plan":"pro"},"env":{"locale":"en"}}"#);
    let out = h
        .sdk()
        .invoke()
        .function_name("faults")
        .client_context(context)
        .tenant_id("tenant-42")
        .payload(Blob::new(r#"{"op":"context"}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let payload = json_of(&out);
    assert_eq!(payload["client_context"]["custom"], json!({"plan":"pro"}));
    assert_eq!(payload["client_context"]["env"], json!({"locale":"en"}));
    assert_eq!(payload["tenant_id"], "tenant-42");
    h.stop().await;
}

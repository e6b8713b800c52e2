//! An HTTP-event function: answers with the `respond` value of its request's JSON body (for
//! testing response mapping), or else with the event it got (for testing events), wrapped in a
//! proxy response for payload 1.0. A body with `sleep_ms` first sleeps that long.

use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(|event: Value, _ctx: coldstart_runtime::Context| async move {
        let body: Option<Value> = event
            .get("body")
            .and_then(Value::as_str)
            .filter(|_| event.get("isBase64Encoded") != Some(&Value::Bool(true)))
            .and_then(|b| serde_json::from_str(b).ok());
        if let Some(ms) = body.as_ref().and_then(|b| b["sleep_ms"].as_u64()) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if let Some(respond) = body.as_ref().and_then(|b| b.get("respond")) {
            return Ok::<_, String>(respond.clone());
        }
        if body.as_ref().is_some_and(|b| b.get("fail").is_some()) {
            return Err("asked to fail".to_owned());
        }
        let summary = json!({ "event": event });
        if event.get("multiValueHeaders").is_some() {
            // Payload 1.0 (REST) needs a proxy response object.
            return Ok(json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": summary.to_string()}));
        }
        Ok(summary)
    })
    .await
}

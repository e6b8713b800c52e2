//! A WebSocket-API function (API Gateway WebSocket events). It prints every event it gets as one
//! line, `fx-ws {eventType} {connectionId} {event JSON}` (bodies over 1 KB replaced by their
//! length), and answers:
//! - `$connect`: query `reject=NNN` → `{"statusCode": NNN, "body": "rejected"}`; `fail` → an
//!   error; `protocol=P` → accepted with header `Sec-WebSocket-Protocol: P`; `bare` → `null`
//!   (no `statusCode`); else `{"statusCode": 200}`.
//! - messages: `{"action":"fail"}` → an error; on route `$default` a bare JSON string
//!   `"default: {body}"`; on other routes `{"statusCode": 200, "body": "{…}"}` whose body is a
//!   JSON summary of the event (`route`, `body` or `length`, `isBase64Encoded`, `messageId`,
//!   `connectionId`).
//! - `$disconnect`: `{"statusCode": 200}`.

use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(
        |event: Value, _ctx: coldstart_runtime::Context| async move {
            let ctx = &event["requestContext"];
            let kind = ctx["eventType"].as_str().unwrap_or_default().to_owned();
            let route = ctx["routeKey"].as_str().unwrap_or_default().to_owned();
            let id = ctx["connectionId"].as_str().unwrap_or_default().to_owned();
            let body = event["body"].as_str().unwrap_or_default().to_owned();
            let mut printed = event.clone();
            if body.len() > 1024 {
                printed["body"] = json!(format!("<{} bytes>", body.len()));
            }
            println!("fx-ws {kind} {id} {printed}");
            match kind.as_str() {
                "CONNECT" => {
                    let query = &event["queryStringParameters"];
                    if let Some(status) = query["reject"].as_str() {
                        let status: u16 = status.parse().unwrap_or(400);
                        return Ok(json!({"statusCode": status, "body": "rejected"}));
                    }
                    if query.get("fail").is_some() {
                        return Err("asked to fail".to_owned());
                    }
                    if let Some(protocol) = query["protocol"].as_str() {
                        return Ok(json!({
                            "statusCode": 200,
                            "headers": {"Sec-WebSocket-Protocol": protocol},
                        }));
                    }
                    if query.get("bare").is_some() {
                        return Ok(Value::Null);
                    }
                    Ok(json!({"statusCode": 200}))
                }
                "MESSAGE" => {
                    let message: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    if message["action"] == "fail" {
                        return Err("asked to fail".to_owned());
                    }
                    if route == "$default" {
                        return Ok(json!(format!("default: {body}")));
                    }
                    let mut summary = json!({
                        "route": route,
                        "isBase64Encoded": event["isBase64Encoded"],
                        "messageId": ctx["messageId"],
                        "connectionId": id,
                    });
                    if body.len() > 1024 {
                        summary["length"] = json!(body.len());
                    } else {
                        summary["body"] = json!(body);
                    }
                    Ok(json!({"statusCode": 200, "body": summary.to_string()}))
                }
                _ => Ok(json!({"statusCode": 200})),
            }
        },
    )
    .await
}

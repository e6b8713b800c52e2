//! A Lambda authorizer for every API kind. The identity (a TOKEN's `authorizationToken`, the
//! first of `identitySource`, the `authorization` header or the `token` query parameter)
//! decides:
//!
//! - `allow`: an IAM policy allowing everything; `deny`: one denying everything explicitly;
//!   `elsewhere`: one allowing only another method;
//! - `yes` / `no`: a simple response (`isAuthorized`);
//! - `unauthorized`: fails with `Unauthorized`; `crash`: exits; `garbage`: answers a string.
//!
//! Every answer's `context` has `user` (the identity), `type` (the event's) and `calls`: how many
//! events this process has had, so a test sees whether its answer came from the cache.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

static CALLS: AtomicU64 = AtomicU64::new(0);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(|event: Value, _ctx: coldstart_runtime::Context| async move {
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let identity = event
            .get("authorizationToken")
            .and_then(Value::as_str)
            .or_else(|| match event.get("identitySource") {
                Some(Value::Array(items)) => items.first().and_then(Value::as_str),
                Some(Value::String(s)) => Some(s.as_str()),
                _ => None,
            })
            .or_else(|| event["headers"]["authorization"].as_str())
            .or_else(|| event["queryStringParameters"]["token"].as_str())
            .unwrap_or_default()
            .to_owned();
        let context = json!({"user": identity, "calls": calls, "type": event["type"]});
        let policy = |effect: &str, resource: &str| {
            json!({
                "principalId": format!("user-{identity}"),
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]
                },
                "context": context,
            })
        };
        match identity.as_str() {
            "allow" => Ok(policy("Allow", "*")),
            "deny" => Ok(policy("Deny", "*")),
            "elsewhere" => Ok(policy("Allow", "arn:aws:execute-api:*:*:*/*/DELETE/nowhere")),
            "yes" => Ok(json!({"isAuthorized": true, "context": context})),
            "no" => Ok(json!({"isAuthorized": false, "context": context})),
            "garbage" => Ok(json!("not a policy")),
            "crash" => std::process::exit(3),
            _ => Err("Unauthorized".to_owned()),
        }
    })
    .await
}

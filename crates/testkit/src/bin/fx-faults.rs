//! A function whose behaviour is chosen by its event's `op`:
//! `echo`, `context`, `error`, `panic`, `sleep` (`ms`), `exit` (`code`), `print` (`lines`),
//! `big` (`bytes`), `pid`, `flaky` (fails until it has been called more than `failures` times,
//! counted in the file `state`; a crash with `"crash": true`). An asynchronous invocation's
//! destination record (an event with `requestContext.condition`) is printed as one line,
//! `DESTINATION {json}`.

use std::time::Duration;

use serde_json::{Value, json};

/// A handler error with a type name of its own, to check how errors are reported.
#[derive(Debug)]
struct FixtureError(String);

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FixtureError {}

async fn handle(event: Value, ctx: coldstart_runtime::Context) -> Result<Value, FixtureError> {
    if event.pointer("/requestContext/condition").is_some() {
        println!("DESTINATION {event}");
        return Ok(event);
    }
    let op = event.get("op").and_then(Value::as_str).unwrap_or("echo");
    match op {
        "flaky" => {
            let state = event
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let failures = event.get("failures").and_then(Value::as_u64).unwrap_or(0);
            let calls = std::fs::read_to_string(state)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            std::fs::write(state, calls.to_string()).map_err(|e| FixtureError(e.to_string()))?;
            println!("flaky call {calls}");
            if calls > failures {
                Ok(json!({"calls": calls}))
            } else if event.get("crash").and_then(Value::as_bool) == Some(true) {
                std::process::exit(3)
            } else {
                Err(FixtureError(format!("failing call {calls}")))
            }
        }
        "echo" => Ok(event),
        "context" => {
            let env = |k: &str| std::env::var(k).ok();
            Ok(json!({
                "request_id": ctx.request_id,
                "deadline_ms": ctx.deadline_ms,
                "remaining_ms": ctx.remaining().as_millis() as u64,
                "invoked_function_arn": ctx.invoked_function_arn,
                "xray_trace_id": ctx.xray_trace_id,
                "client_context": ctx.client_context.as_ref().map(|c| json!({"custom": c.custom, "env": c.env})),
                "tenant_id": ctx.tenant_id,
                "config": {
                    "function_name": ctx.env_config.function_name,
                    "memory_mb": ctx.env_config.memory_mb,
                    "version": ctx.env_config.version,
                    "log_group": ctx.env_config.log_group,
                    "log_stream": ctx.env_config.log_stream,
                },
                "env": {
                    "_X_AMZN_TRACE_ID": env("_X_AMZN_TRACE_ID"),
                    "_HANDLER": env("_HANDLER"),
                    "LAMBDA_TASK_ROOT": env("LAMBDA_TASK_ROOT"),
                    "AWS_REGION": env("AWS_REGION"),
                    "AWS_LAMBDA_RUNTIME_API": env("AWS_LAMBDA_RUNTIME_API"),
                    "AWS_LAMBDA_INITIALIZATION_TYPE": env("AWS_LAMBDA_INITIALIZATION_TYPE"),
                    "TZ": env("TZ"),
                    "USER_SETTING": env("USER_SETTING"),
                    "_SECRET": env("_SECRET"),
                    "cwd": std::env::current_dir().ok().map(|d| d.display().to_string()),
                },
            }))
        }
        "error" => Err(FixtureError(
            event
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("it failed")
                .to_owned(),
        )),
        "panic" => panic!("fixture panicked on purpose"),
        "sleep" => {
            let ms = event.get("ms").and_then(Value::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms}))
        }
        "exit" => {
            let code = event.get("code").and_then(Value::as_i64).unwrap_or(1);
            eprintln!("exiting with {code}");
            std::process::exit(code as i32)
        }
        "print" => {
            for line in event
                .get("lines")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!("{}", line.as_str().unwrap_or_default());
            }
            Ok(json!({"printed": true}))
        }
        "log" => {
            // Through the runtime library's logging, at each level given.
            for level in event
                .get("levels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                match level {
                    "trace" => coldstart_runtime::trace!("logged at {level}"),
                    "debug" => coldstart_runtime::debug!("logged at {level}"),
                    "info" => coldstart_runtime::info!("logged at {level}"),
                    "warn" => coldstart_runtime::warn!("logged at {level}"),
                    "error" => coldstart_runtime::error!("logged at {level}"),
                    _ => coldstart_runtime::fatal!("logged at {level}"),
                }
            }
            Ok(json!({"logged": true}))
        }
        "big" => {
            let n = event.get("bytes").and_then(Value::as_u64).unwrap_or(0) as usize;
            Ok(Value::String("x".repeat(n)))
        }
        "pid" => Ok(json!({"pid": std::process::id()})),
        other => Err(FixtureError(format!("unknown op {other}"))),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(handle).await
}

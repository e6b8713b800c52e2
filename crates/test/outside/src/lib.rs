//! A user's function: `{"name": "..."}` → `{"greeting": "hello, ..."}`, with a log line. The
//! binary (`src/main.rs`) serves it under Lambda; the tests serve it in-process too.

use coldstart_runtime::Context;
use serde_json::{Value, json};

/// The handler.
pub async fn greet(event: Value, _ctx: Context) -> Result<Value, String> {
    let name = event["name"].as_str().unwrap_or("world").to_owned();
    coldstart_runtime::info!("greeting {name}");
    Ok(json!({ "greeting": format!("hello, {name}") }))
}

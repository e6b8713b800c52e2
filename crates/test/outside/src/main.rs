//! A user's function: `{"name": "..."}` → `{"greeting": "hello, ..."}`, with a log line.

use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(|event: Value, _ctx: coldstart_runtime::Context| async move {
        let name = event["name"].as_str().unwrap_or("world").to_owned();
        println!("greeting {name}");
        Ok::<_, String>(json!({ "greeting": format!("hello, {name}") }))
    })
    .await
}

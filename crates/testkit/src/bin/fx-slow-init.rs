//! Spends `SLOW_INIT_MS` milliseconds (default 30 000) in init, then echoes.

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    let ms = std::env::var("SLOW_INIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    println!("initialising for {ms} ms");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    coldstart_runtime::run(
        |event: serde_json::Value, _ctx: coldstart_runtime::Context| async move {
            Ok::<_, coldstart_runtime::Error>(event)
        },
    )
    .await
}

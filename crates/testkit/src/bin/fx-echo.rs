//! Echo on coldstart-runtime: answers every event with itself.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(
        |event: serde_json::Value, _ctx: coldstart_runtime::Context| async move {
            Ok::<_, coldstart_runtime::Error>(event)
        },
    )
    .await
}

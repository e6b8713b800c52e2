//! The seeds' echo function: answers every event with the event itself.
//!
//! Build it with `cargo build --release -p echo` and run it locally with
//! `coldstart run -- target/release/echo`; deployed as `bootstrap` it runs unchanged on
//! `provided.al2023`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(
        |event: serde_json::Value, _ctx: coldstart_runtime::Context| async move {
            Ok::<_, coldstart_runtime::Error>(event)
        },
    )
    .await
}

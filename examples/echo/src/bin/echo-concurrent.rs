//! The echo function in coldstart-runtime's concurrent mode: as many invocations at once as
//! `AWS_LAMBDA_MAX_CONCURRENCY` says (one when unset), for multi-concurrent execution
//! environments (`coldstart run --max-concurrency N -- target/release/echo-concurrent`).

#[tokio::main]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run_concurrent(
        |event: serde_json::Value, _ctx: coldstart_runtime::Context| async move {
            Ok::<_, coldstart_runtime::Error>(event)
        },
    )
    .await
}

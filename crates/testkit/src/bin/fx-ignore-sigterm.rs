//! Echo that ignores SIGTERM, so shutdown has to escalate to SIGKILL.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    // SAFETY: setting a signal disposition to "ignore" before any other thread uses signals.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    coldstart_runtime::run(
        |event: serde_json::Value, _ctx: coldstart_runtime::Context| async move {
            Ok::<_, coldstart_runtime::Error>(event)
        },
    )
    .await
}

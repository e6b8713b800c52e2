//! Fails its init: reports it to `/runtime/init/error` and exits.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    let runtime = coldstart_runtime::Runtime::from_env().await?;
    let diagnostic =
        coldstart_runtime::Diagnostic::new("Runtime.ConfigInvalid", "DATABASE_URL is not set");
    Err(runtime.init_error(diagnostic).await)
}

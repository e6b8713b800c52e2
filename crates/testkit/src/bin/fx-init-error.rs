//! Fails its init: reports it to `/runtime/init/error` and exits.
//!
//! With `INIT_WAIT_FIFO=PATH` it first waits until a writer opens that FIFO and closes it (a
//! subscriber saying it is listening); with `INIT_EXIT=1` it then exits with status 3 instead of
//! reporting (a crash during init).

use std::io::Read;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    if let Ok(fifo) = std::env::var("INIT_WAIT_FIFO") {
        // Opening a FIFO to read blocks until a writer opens it; reading ends when it closes.
        let mut signal = String::new();
        if let Ok(mut reader) = std::fs::File::open(&fifo) {
            let _ = reader.read_to_string(&mut signal);
        }
    }
    if std::env::var("INIT_EXIT").is_ok_and(|v| v == "1") {
        eprintln!("crashing in init");
        std::process::exit(3);
    }
    let runtime = coldstart_runtime::Runtime::from_env().await?;
    let diagnostic =
        coldstart_runtime::Diagnostic::new("Runtime.ConfigInvalid", "DATABASE_URL is not set");
    Err(runtime.init_error(diagnostic).await)
}

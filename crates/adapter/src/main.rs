//! `coldstart-adapter [-- APP [ARGS]...]`: runs an HTTP web app as an AWS Lambda function.
//!
//! Without arguments it is an external extension (`/opt/extensions/coldstart-adapter`) beside a
//! bootstrap that is the web app; with `-- APP [ARGS]...` it is the bootstrap and starts the app.
//! Everything else lives in the library; see `coldstart_adapter::run`.

use std::process::ExitCode;

use coldstart_adapter::{Mode, USAGE, error_chain, extension};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let name = extension::name_from_argv0(args.next().as_deref());
    let mode = match Mode::from_args(args) {
        Ok(Mode::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Mode::Version) => {
            println!("coldstart-adapter {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(mode) => mode,
        Err(error) => {
            eprintln!("coldstart-adapter: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    // One thread: the adapter forwards one invocation at a time, and a small RSS is part of the
    // function's memory.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("coldstart-adapter: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(coldstart_adapter::run(mode, &name)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("coldstart-adapter: {}", error_chain(&error));
            ExitCode::from(error.exit_code())
        }
    }
}

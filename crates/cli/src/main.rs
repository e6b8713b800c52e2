//! `coldstart`: build, run and test AWS Lambda custom runtimes locally.
//!
//! The binary is thin: it parses arguments, sets up logging, calls the emulator library and maps
//! the outcome to an exit code (0 success, 1 failure, 2 bad usage or configuration).

mod args;
mod dashboard;
mod event;
mod invoke;
mod output;
mod run;
mod up;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// Exit code for a failure while running.
const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage or configuration.
const EXIT_USAGE: u8 = 2;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// Bad usage or configuration: exit 2.
    pub(crate) fn usage(error: anyhow::Error) -> Self {
        Self {
            code: EXIT_USAGE,
            error,
        }
    }

    /// A failure while running: exit 1, with `message` printed.
    pub(crate) fn runtime(error: anyhow::Error) -> Self {
        Self {
            code: EXIT_FAILURE,
            error,
        }
    }

    /// Exit 1 with nothing more to print (the command already said why).
    pub(crate) fn silent() -> Self {
        Self {
            code: EXIT_FAILURE,
            error: anyhow::anyhow!(""),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::runtime(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_tracing();
    // One thread: an invocation hops between tasks (Invoke API, Runtime API, the sandbox's log
    // reader) several times, and on one thread a hop is a function call, not a futex wake-up.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("coldstart: could not start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Up(args) => up::up(args).await,
            Command::Invoke(args) => invoke::invoke(args).await,
            Command::Event(args) => event::event(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let message = format!("{:#}", failure.error);
            if !message.is_empty() {
                eprintln!("coldstart: {message}");
            }
            ExitCode::from(failure.code)
        }
    }
}

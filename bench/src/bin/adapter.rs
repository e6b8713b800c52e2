//! `bench-adapter [--quick]`: what coldstart-adapter adds to a warm request. The web app
//! (examples/web) is measured straight and through `coldstart up`'s Function URLs behind the
//! adapter (buffered and streamed), with the plain Rust echo function's Function URL for
//! context, all in one interleaved run; then the adapter's binary size and resident memory.
//! Prints the table and writes it to `bench/results/adapter.txt`.
//!
//! Run it through `bench/adapter.sh`, which builds the release binaries first. See
//! `bench/README.md` for what each figure means, and the crate's guide (`lib.rs`) for where the
//! code of each measurement is (the `adapter_*` modules).

use std::process::ExitCode;

use coldstart_bench::adapter_config::{self, Binaries};
use coldstart_bench::adapter_measure::{self, Plan};
use coldstart_bench::adapter_report::Results;
use coldstart_bench::cli::{Args, Command};
use coldstart_bench::table::Machine;
use coldstart_bench::{client, tree};

const COMMAND: Command = Command::new("bench-adapter", "adapter.txt");

fn main() -> ExitCode {
    COMMAND.main(run)
}

fn run(args: Args) -> anyhow::Result<Results> {
    // First, before any other thread exists (see there).
    tree::kill_children_on_interrupt(COMMAND.name(), || {
        let _ = std::fs::remove_dir_all(adapter_config::folder());
    })?;
    let plan = Plan::new(args.quick);
    let bins = Binaries::find()?;
    // The client: one thread that drives its own sockets.
    let rt = client::runtime()?;
    eprintln!(
        "adapter: the web app straight, behind the adapter (both doors) and echo, interleaved"
    );
    let measured = adapter_measure::run(&rt, &plan, &bins)?;
    Ok(Results {
        machine: Machine::detect(),
        plan,
        measured,
    })
}

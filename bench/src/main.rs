//! `coldstart-bench [--quick] <SCENARIO>`: see `bench/README.md`; `bench/run.sh` builds what the
//! scenarios run first.

use std::process::ExitCode;

use clap::Parser;
use coldstart_bench::Scenario;

/// Benchmarks of coldstart against the loopback floor and its peers.
#[derive(Debug, Parser)]
#[command(name = "coldstart-bench")]
struct Cli {
    /// Cut the counts (by 10, mostly): a smoke test, written to bench/results/quick/.
    #[arg(long, global = true)]
    quick: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match coldstart_bench::run(&[cli.scenario], cli.quick) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("coldstart-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

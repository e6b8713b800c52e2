//! `coldstart-bench [--quick]`: measures coldstart's invoke path against a bare hyper floor,
//! against the official `lambda_runtime` crate and against cargo-lambda's `watch` emulator (when
//! `cargo lambda` is installed), `coldstart up` from spawn to ready, and response streaming;
//! prints the table and writes it to `bench/results/invoke.txt`.
//!
//! Run it through `bench/run.sh`, which builds the release binaries first and adds the boto3
//! figures. See `bench/README.md` for what each figure means, and the crate's guide (`lib.rs`) for
//! where the code of each measurement is.

use std::process::ExitCode;

use coldstart_bench::cli::{Args, Command};
use coldstart_bench::client;
use coldstart_bench::measure::{self, Binaries, Plan};
use coldstart_bench::peer::{CargoLambda, Peer};
use coldstart_bench::report::Results;
use coldstart_bench::table::Machine;
use coldstart_bench::up::ConfigDir;

fn main() -> ExitCode {
    Command::new("coldstart-bench", "invoke.txt").main(run)
}

fn run(args: Args) -> anyhow::Result<Results> {
    let plan = Plan::new(args.quick);
    let bins = Binaries::find()?;
    // The client: one thread that drives its own sockets (see `measure`).
    let rt = client::runtime()?;
    let payload = client::payload();
    // Optional: without it the bench goes on, and the table says why the peer is missing.
    let cargo_lambda = match CargoLambda::detect() {
        Ok(found) => {
            eprintln!("peer: {}", found.version);
            Peer::Measured(found)
        }
        Err(why) => {
            eprintln!("peer skipped: cargo-lambda is not available ({why})");
            Peer::Skipped(format!("cargo-lambda is not available ({why})"))
        }
    };

    eprintln!("sequential warm invokes: floor, both runtimes and the peer, interleaved");
    let warm = measure::warm_invokes(&rt, &plan, &payload, &bins, &cargo_lambda)?;
    eprintln!("throughput");
    let load_ours = measure::throughput(&rt, &plan, &payload, &bins.coldstart, &bins.echo)?;
    let load_lr = measure::throughput(&rt, &plan, &payload, &bins.coldstart, &bins.lr_echo)?;
    let load_peer = measure::peer_throughput(&rt, &plan, &payload, &cargo_lambda)?;
    let sizes = vec![
        measure::binary_size(&bins.echo)?,
        measure::binary_size(&bins.lr_echo)?,
    ];
    eprintln!("spawn -> first next");
    let startup = measure::spawn_to_next(&rt, &plan, &[&bins.echo, &bins.lr_echo])?;
    let config = ConfigDir::echo(&bins.echo.path)?;
    eprintln!("coldstart up -> ready");
    let up = measure::up_to_ready(&rt, &plan, &bins.coldstart, &bins.echo, &config)?;
    eprintln!("warm Function URL: coldstart up and the floor, interleaved");
    let url = measure::warm_function_url(&rt, &plan, &bins.coldstart, &bins.echo, &config)?;
    drop(config);
    let config = ConfigDir::stream(&bins.stream.path)?;
    eprintln!("response streaming: time to first byte and 100 MiB, both doors");
    let stream = measure::streaming(&rt, &plan, &bins.coldstart, &bins.stream, &config)?;
    drop(config);

    Ok(Results {
        machine: Machine::detect(),
        plan,
        warm,
        load_ours,
        load_lr,
        load_peer,
        cargo_lambda,
        sizes,
        startup,
        up,
        url,
        stream,
    })
}

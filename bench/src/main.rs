//! `coldstart-bench [--quick]`: measures coldstart's invoke path against a bare hyper floor,
//! against the official `lambda_runtime` crate and against cargo-lambda's `watch` emulator (when
//! `cargo lambda` is installed), `coldstart up` from spawn to ready, and response streaming;
//! prints the table and writes it to `bench/results/invoke.txt`.
//!
//! Run it through `bench/run.sh`, which builds the release binaries first and adds the boto3
//! figures. See `bench/README.md` for what each figure means.
//!
//! # Layout
//! - `measure`: one function per measurement, and the plan of how much to do.
//! - `client`: the HTTP/1.1 load generator every invoke measurement shares.
//! - `floor`: the bare hyper echo server the invoke path is compared with.
//! - `startup`: the stub Runtime API that times spawn → first `next`.
//! - `process`: child processes killed by process group on drop; servers with a start-up banner;
//!   `coldstart run`.
//! - `peer`: `cargo lambda watch`, the optional peer, and why it was skipped.
//! - `up`: `coldstart up` with a config in a temporary folder, and its endpoint table.
//! - `stream`: streamed answers read chunk by chunk (event stream or chunked body).
//! - `stats`: percentiles and means.
//! - `report`: the results table.

mod client;
mod floor;
mod measure;
mod peer;
mod process;
mod report;
mod startup;
mod stats;
mod stream;
mod up;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::measure::{Binaries, Plan};
use crate::peer::{CargoLambda, Peer};
use crate::report::{Machine, Results};
use crate::up::ConfigDir;

/// Where the table is written.
const RESULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/invoke.txt");
const USAGE: &str = "usage: coldstart-bench [--quick]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("coldstart-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("{USAGE}\n  --quick  cut every count by 10x (a smoke test)");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let plan = Plan::new(quick);
    let bins = Binaries::find()?;
    // The client: one thread that drives its own sockets (see `measure`).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the client's runtime")?;
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

    let results = Results {
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
    };
    let table = results.to_string();
    print!("{table}");
    write_results(Path::new(RESULTS), &table)
}

fn write_results(path: &Path, table: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, table).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

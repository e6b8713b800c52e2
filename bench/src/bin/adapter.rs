//! `bench-adapter [--quick]`: what coldstart-adapter adds to a warm request. The web app
//! (examples/web) is measured straight and through `coldstart up`'s Function URLs behind the
//! adapter (buffered and streamed), with the plain Rust echo function's Function URL for
//! context, all in one interleaved run; then the adapter's binary size and resident memory.
//! Prints the table and writes it to `bench/results/adapter.txt`.
//!
//! Run it through `bench/adapter.sh`, which builds the release binaries first. See
//! `bench/README.md` for what each figure means.
//!
//! # Layout
//! - `adapter_measure`: the plan, and the run: start, check, measure, read memory, stop.
//! - `adapter_config`: the release binaries and the temporary `coldstart.toml`.
//! - `adapter_app`: the web app started straight on a free port.
//! - `adapter_up`: `coldstart up`, with every sandbox killed by group when it ends.
//! - `adapter_tree`: processes below a pid in `/proc`, and the interrupt guard.
//! - `adapter_report`: the results table.
//! - Shared with `coldstart-bench`: `client` (the load generator), `process` (process groups,
//!   banners, `/proc/PID/status`), `stats` (percentiles), `up` (`coldstart up` and its endpoint
//!   table).

// Shared with coldstart-bench, which uses all of them: this binary needs only a part.
#[allow(dead_code)]
#[path = "../client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../up.rs"]
mod up;

#[path = "../adapter_app.rs"]
mod adapter_app;
#[path = "../adapter_config.rs"]
mod adapter_config;
#[path = "../adapter_measure.rs"]
mod adapter_measure;
#[path = "../adapter_report.rs"]
mod adapter_report;
#[path = "../adapter_tree.rs"]
mod adapter_tree;
#[path = "../adapter_up.rs"]
mod adapter_up;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::adapter_config::{Binaries, ConfigDir};
use crate::adapter_measure::Plan;
use crate::adapter_report::{Machine, Results};

/// Where the table is written.
const RESULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/adapter.txt");
const USAGE: &str = "usage: bench-adapter [--quick]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-adapter: {err:#}");
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
    // First, before any other thread exists (see there).
    adapter_tree::kill_children_on_interrupt(|| {
        let _ = std::fs::remove_dir_all(ConfigDir::folder());
    })?;
    let plan = Plan::new(quick);
    let bins = Binaries::find()?;
    // The client: one thread that drives its own sockets.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the client's runtime")?;
    eprintln!(
        "adapter: the web app straight, behind the adapter (both doors) and echo, interleaved"
    );
    let measured = adapter_measure::run(&rt, &plan, &bins)?;
    let results = Results {
        machine: Machine::detect(),
        plan,
        measured,
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

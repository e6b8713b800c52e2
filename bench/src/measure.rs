//! One function per measurement of the table: the floor, sequential warm invokes, throughput,
//! binary size and spawn → first `next`.
//!
//! Each starts what it measures, measures it and stops it again before returning, so the
//! measurements never overlap. Async work runs on the caller's current-thread runtime (the
//! client: one thread, driving its sockets itself); starting and stopping processes happens
//! outside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use coldstart_protocol::invoke;
use http::StatusCode;
use tokio::runtime::Runtime;

use crate::client::{self, Load, Target};
use crate::floor::FloorServer;
use crate::process::Emulator;
use crate::startup;
use crate::stats::Summary;

/// The function name `coldstart run` serves (as the Runtime Interface Emulator does).
const FUNCTION_NAME: &str = "function";

/// How much of everything to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Quick mode: every count cut by 10×.
    pub quick: bool,
    /// Sequential requests before measuring. Default: 300.
    pub warmup: usize,
    /// Sequential requests measured. Default: 3,000.
    pub invokes: usize,
    /// Concurrent clients of the throughput run. Default: 8.
    pub clients: usize,
    /// Requests of the throughput warm-up, not counted. Default: 2,000.
    pub load_warmup: usize,
    /// Requests of the throughput run, all clients together. Default: 40,000.
    pub load_total: usize,
    /// Wall-time bound of the throughput run (and of its warm-up). Default: 30 seconds.
    pub load_limit: Duration,
    /// `--concurrency` of the emulator in the throughput run. Default: 2.
    pub load_concurrency: usize,
    /// Spawn → first `next` runs per function. Default: 50.
    pub startup_runs: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            quick,
            warmup: 300 / scale,
            invokes: 3_000 / scale,
            clients: 8,
            load_warmup: 2_000 / scale,
            load_total: 40_000 / scale,
            load_limit: Duration::from_secs(30),
            load_concurrency: 2,
            startup_runs: 50 / scale,
        }
    }
}

/// A function binary under test.
#[derive(Debug, Clone)]
pub struct Function {
    /// Its row label in the table.
    pub label: &'static str,
    pub path: PathBuf,
}

/// The release binaries the bench drives, next to its own executable.
#[derive(Debug)]
pub struct Binaries {
    pub coldstart: PathBuf,
    /// Echo on coldstart-runtime.
    pub echo: Function,
    /// The same echo on the official `lambda_runtime`.
    pub lr_echo: Function,
}

impl Binaries {
    /// Finds the binaries in the folder of this executable (`target/release`).
    pub fn find() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating coldstart-bench")?;
        let dir = exe.parent().context("coldstart-bench has no folder")?;
        let binary = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            if !path.is_file() {
                bail!(
                    "{} is missing; build it with `cargo build --release -p coldstart -p echo \
                     -p coldstart-testkit --bins` (or run bench/run.sh)",
                    path.display()
                );
            }
            Ok(path)
        };
        Ok(Self {
            coldstart: binary("coldstart")?,
            echo: Function {
                label: "coldstart-runtime echo",
                path: binary("echo")?,
            },
            lr_echo: Function {
                label: "lambda_runtime echo",
                path: binary("fx-lr-echo")?,
            },
        })
    }
}

/// Sequential latencies of one server.
#[derive(Debug)]
pub struct Latency {
    pub label: String,
    pub summary: Summary,
    /// 200s whose body was not the payload.
    pub mismatches: usize,
    /// Answers other than 200, and the status of the last one.
    pub failures: usize,
    pub failure_status: Option<StatusCode>,
    /// What the emulator printed on stderr (warnings, errors).
    pub notes: Vec<String>,
}

/// The throughput of one function behind the emulator.
#[derive(Debug)]
pub struct Throughput {
    pub label: String,
    pub load: Load,
    /// The warm-up run before it, not counted in the rate.
    pub warmup: Load,
    pub notes: Vec<String>,
}

/// The size of one binary on disk.
#[derive(Debug)]
pub struct Size {
    pub label: String,
    pub bytes: u64,
}

/// Spawn → first `next` of one function.
#[derive(Debug)]
pub struct Startup {
    pub label: String,
    pub summary: Summary,
}

/// The floor: the bench's client against a bare hyper echo server.
pub fn floor(rt: &Runtime, plan: &Plan, payload: &Bytes) -> anyhow::Result<Latency> {
    let server = FloorServer::start()?;
    let target = Target {
        addr: server.addr,
        path: invoke::invoke_path(FUNCTION_NAME),
    };
    let result = rt.block_on(client::sequential(
        &target,
        payload,
        plan.warmup,
        plan.invokes,
    ))?;
    drop(server);
    latency("floor (bare hyper echo)".into(), result, Vec::new())
}

/// Sequential warm invokes of `function` through `coldstart run`.
pub fn warm_invokes(
    rt: &Runtime,
    plan: &Plan,
    payload: &Bytes,
    coldstart: &Path,
    function: &Function,
) -> anyhow::Result<Latency> {
    let emulator = Emulator::start(coldstart, &function.path, None)?;
    let target = emulator_target(&emulator);
    let result = rt.block_on(client::sequential(
        &target,
        payload,
        plan.warmup,
        plan.invokes,
    ));
    // Stopped before `?`, so a failed run still reports what the emulator said.
    let notes = emulator.stop()?;
    let result = result.with_context(|| format!("{}: {}", function.label, notes.join("\n")))?;
    latency(format!("coldstart + {}", function.label), result, notes)
}

/// Throughput of `function` through `coldstart run --concurrency N` with several clients.
pub fn throughput(
    rt: &Runtime,
    plan: &Plan,
    payload: &Bytes,
    coldstart: &Path,
    function: &Function,
) -> anyhow::Result<Throughput> {
    let emulator = Emulator::start(coldstart, &function.path, Some(plan.load_concurrency))?;
    let target = emulator_target(&emulator);
    // The warm-up starts the sandboxes, so cold starts stay out of the measured run.
    let warmup = rt.block_on(client::load(
        &target,
        payload,
        plan.clients,
        plan.load_warmup,
        plan.load_limit,
    ));
    let load = rt.block_on(client::load(
        &target,
        payload,
        plan.clients,
        plan.load_total,
        plan.load_limit,
    ));
    let notes = emulator.stop()?;
    Ok(Throughput {
        label: format!("coldstart + {}", function.label),
        load,
        warmup,
        notes,
    })
}

/// The size of `function`'s binary.
pub fn binary_size(function: &Function) -> anyhow::Result<Size> {
    let meta = std::fs::metadata(&function.path)
        .with_context(|| format!("reading {}", function.path.display()))?;
    let file = function
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    Ok(Size {
        label: format!("{} ({file})", function.label),
        bytes: meta.len(),
    })
}

/// Spawn → first `next` of each function, runs interleaved (and the order alternated) so that
/// drift in the machine's state spreads evenly. One unmeasured run each first loads the binaries
/// into the page cache.
pub fn spawn_to_next(
    rt: &Runtime,
    plan: &Plan,
    functions: &[&Function],
) -> anyhow::Result<Vec<Startup>> {
    let mut samples = vec![Vec::with_capacity(plan.startup_runs); functions.len()];
    for function in functions {
        rt.block_on(startup::time_to_first_next(&function.path))?;
    }
    for run in 0..plan.startup_runs {
        for step in 0..functions.len() {
            let i = if run % 2 == 0 {
                step
            } else {
                functions.len() - 1 - step
            };
            samples[i].push(rt.block_on(startup::time_to_first_next(&functions[i].path))?);
        }
    }
    functions
        .iter()
        .zip(samples)
        .map(|(function, samples)| {
            Ok(Startup {
                label: function.label.into(),
                summary: Summary::of(samples).context("no spawn runs")?,
            })
        })
        .collect()
}

fn emulator_target(emulator: &Emulator) -> Target {
    Target {
        addr: emulator.addr,
        path: invoke::invoke_path(FUNCTION_NAME),
    }
}

fn latency(
    label: String,
    result: client::Sequential,
    notes: Vec<String>,
) -> anyhow::Result<Latency> {
    Ok(Latency {
        label,
        summary: Summary::of(result.latencies).context("no requests measured")?,
        mismatches: result.mismatches,
        failures: result.failures,
        failure_status: result.failure_status,
        notes,
    })
}

/// `ours / theirs` of two medians.
pub fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}

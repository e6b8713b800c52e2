//! One function per measurement of the table: sequential warm invokes (with the floor),
//! throughput, binary size, spawn → first `next`, `coldstart up` → ready, the warm Function URL
//! and response streaming.
//!
//! Each starts what it measures, measures it and stops it again before returning, so the
//! measurements never overlap; inside one, targets compared with each other run at once and are
//! measured in interleaved rounds. Async work runs on the caller's current-thread runtime (the
//! client: one thread, driving its sockets itself); starting and stopping processes happens
//! outside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use coldstart_protocol::invoke;
use tokio::runtime::Runtime;

use crate::client::{self, Exchange, Latency, Load, Rounds, Target};
use crate::floor::FloorServer;
use crate::peer::{CargoLambda, Peer, Watch};
use crate::process::{self, Emulator, Release};
use crate::startup;
use crate::stats::Summary;
use crate::stream::{self, StreamDoor, StreamTarget};
use crate::table::Size;
use crate::up::{self, ConfigDir, Door, Endpoint, Up};

/// The function name `coldstart run` serves (as the Runtime Interface Emulator does).
const FUNCTION_NAME: &str = "function";
/// The row label of the peer.
const PEER_LABEL: &str = "cargo-lambda watch + lambda_runtime echo";

/// How much of everything to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Quick mode: every count cut by 10×.
    pub quick: bool,
    /// The interleaved rounds of every sequential measurement. Default: 300 warm-up requests per
    /// target, then 30 rounds of blocks of 1 + 100.
    pub interleaved: Rounds,
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
    /// `coldstart up` → ready runs. Default: 20.
    pub up_runs: usize,
    /// Unmeasured time-to-first-byte requests per streaming door. Default: 20.
    pub ttfb_warmup: usize,
    /// Measured time-to-first-byte requests per streaming door. Default: 200.
    pub ttfb_runs: usize,
    /// Unmeasured 100 MiB transfers per streaming door. Not cut in quick mode. Default: 1.
    pub transfer_warmup: usize,
    /// Measured 100 MiB transfers per streaming door. Default: 5 (1 in quick mode).
    pub transfer_runs: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            quick,
            interleaved: Rounds::new(300, 30, 100, quick),
            clients: 8,
            load_warmup: 2_000 / scale,
            load_total: 40_000 / scale,
            load_limit: Duration::from_secs(30),
            load_concurrency: 2,
            startup_runs: 50 / scale,
            up_runs: 20 / scale,
            ttfb_warmup: 20 / scale,
            ttfb_runs: 200 / scale,
            transfer_warmup: 1,
            transfer_runs: if quick { 1 } else { 5 },
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
    /// The test kit's streaming function on coldstart-runtime (`ttfb` and `bytes` ops).
    pub stream: Function,
}

impl Binaries {
    /// Finds the binaries in the folder of this executable (`target/release`).
    pub fn find() -> anyhow::Result<Self> {
        let release = Release::find(
            "`cargo build --release -p coldstart -p echo -p coldstart-testkit --bins` (or run \
             bench/run.sh)",
        )?;
        Ok(Self {
            coldstart: release.binary("coldstart")?,
            echo: Function {
                label: "coldstart-runtime echo",
                path: release.binary("echo")?,
            },
            lr_echo: Function {
                label: "lambda_runtime echo",
                path: release.binary("fx-lr-echo")?,
            },
            stream: Function {
                label: "coldstart-runtime fx-stream",
                path: release.binary("fx-stream")?,
            },
        })
    }
}

/// The sequential latencies of a server the bench started, and what it printed on stderr
/// (warnings, errors).
#[derive(Debug)]
pub struct Served {
    pub latency: Latency,
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

/// Spawn → first `next` of one function.
#[derive(Debug)]
pub struct Startup {
    pub label: String,
    pub summary: Summary,
}

/// Sequential warm invokes, the three or four targets measured together.
#[derive(Debug)]
pub struct WarmInvokes {
    /// The bare hyper echo.
    pub floor: Latency,
    /// coldstart-runtime behind `coldstart run`.
    pub ours: Served,
    /// lambda_runtime behind `coldstart run`.
    pub lr: Served,
    /// lambda_runtime behind `cargo lambda watch`.
    pub peer: Peer<Served>,
}

/// `coldstart up` from spawn until every endpoint has answered, over several runs.
#[derive(Debug)]
pub struct UpToReady {
    /// The function served.
    pub label: String,
    /// Spawn → the `ready in` line read from `up`'s stderr.
    pub banner: Summary,
    /// The `ready in` figure coldstart printed.
    pub printed: Summary,
    /// Spawn → every endpoint answered one request.
    pub ready: Summary,
    /// The first Invoke API request's round trip: it spawns the sandbox.
    pub first_invoke: Summary,
    /// What `up` printed on stderr besides its banner, by run.
    pub notes: Vec<String>,
}

/// Sequential GETs to a Function URL of `coldstart up`, with the floor measured together.
#[derive(Debug)]
pub struct WarmFunctionUrl {
    /// The bare hyper echo, answering the same GETs.
    pub floor: Latency,
    pub url: Served,
}

/// Sequential warm invokes of the floor, of both functions through `coldstart run` and, when
/// `cargo_lambda` is there, of `fx-lr-echo` through `cargo lambda watch`: all served at once and
/// measured in interleaved rounds ([`client::interleaved`]).
pub fn warm_invokes(
    rt: &Runtime,
    plan: &Plan,
    payload: &Bytes,
    bins: &Binaries,
    cargo_lambda: &Peer<CargoLambda>,
) -> anyhow::Result<WarmInvokes> {
    // First, so that its compilation is over before anything else runs.
    let watch = start_peer(rt, payload, cargo_lambda, None);
    let floor = FloorServer::start()?;
    let ours = Emulator::start(&bins.coldstart, &bins.echo.path, None)?;
    let lr = Emulator::start(&bins.coldstart, &bins.lr_echo.path, None)?;
    let mut targets = vec![
        floor_target(&floor, Exchange::Echo, invoke::invoke_path(FUNCTION_NAME)),
        emulator_target(&ours),
        emulator_target(&lr),
    ];
    if let Peer::Measured(watch) = &watch {
        targets.push(watch.target());
    }
    let result = rt.block_on(client::interleaved(&targets, payload, plan.interleaved));
    // Stopped before `?`, so a failed run still reports what the emulators said.
    let notes_ours = ours.stop()?;
    let notes_lr = lr.stop()?;
    let watch = match watch {
        Peer::Measured(watch) => Peer::Measured(watch.stop()?),
        Peer::Skipped(why) => Peer::Skipped(why),
    };
    drop(floor);
    let result = result.with_context(|| {
        let mut said = notes_ours
            .iter()
            .chain(&notes_lr)
            .cloned()
            .collect::<Vec<_>>();
        if let Peer::Measured(notes) = &watch {
            said.extend(notes.iter().cloned());
        }
        format!("sequential warm invokes: {}", said.join("\n"))
    })?;
    let mut result = result.into_iter();
    let mut next = || result.next().context("the interleaved run lost a target");
    let (floor, ours, lr) = (next()?, next()?, next()?);
    let peer = match watch {
        Peer::Measured(notes) => Peer::Measured(served(PEER_LABEL.into(), next()?, notes)?),
        Peer::Skipped(why) => Peer::Skipped(why),
    };
    Ok(WarmInvokes {
        floor: Latency::of("floor (bare hyper echo)", floor)?,
        ours: served(format!("coldstart + {}", bins.echo.label), ours, notes_ours)?,
        lr: served(format!("coldstart + {}", bins.lr_echo.label), lr, notes_lr)?,
        peer,
    })
}

/// Starts `cargo lambda watch` if `cargo_lambda` is there; a failure to start skips the peer
/// (with its reason) rather than the bench.
fn start_peer(
    rt: &Runtime,
    payload: &Bytes,
    cargo_lambda: &Peer<CargoLambda>,
    concurrency: Option<usize>,
) -> Peer<Watch> {
    match cargo_lambda {
        Peer::Measured(_) => match Watch::start(rt, payload, concurrency) {
            Ok(watch) => Peer::Measured(watch),
            Err(err) => {
                let why = format!("cargo lambda watch did not start: {err:#}");
                eprintln!("  peer skipped: {why}");
                Peer::Skipped(why)
            }
        },
        Peer::Skipped(why) => Peer::Skipped(why.clone()),
    }
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
    let (warmup, load) = load_with_warmup(rt, plan, payload, &emulator_target(&emulator));
    let notes = emulator.stop()?;
    Ok(Throughput {
        label: format!("coldstart + {}", function.label),
        load,
        warmup,
        notes,
    })
}

/// Throughput of `fx-lr-echo` through `cargo lambda watch --concurrency N`, as [`throughput`]
/// measures coldstart's.
pub fn peer_throughput(
    rt: &Runtime,
    plan: &Plan,
    payload: &Bytes,
    cargo_lambda: &Peer<CargoLambda>,
) -> anyhow::Result<Peer<Throughput>> {
    let watch = match start_peer(rt, payload, cargo_lambda, Some(plan.load_concurrency)) {
        Peer::Measured(watch) => watch,
        Peer::Skipped(why) => return Ok(Peer::Skipped(why)),
    };
    let (warmup, load) = load_with_warmup(rt, plan, payload, &watch.target());
    let notes = watch.stop()?;
    Ok(Peer::Measured(Throughput {
        label: PEER_LABEL.into(),
        load,
        warmup,
        notes,
    }))
}

/// The warm-up load run, then the measured one.
fn load_with_warmup(rt: &Runtime, plan: &Plan, payload: &Bytes, target: &Target) -> (Load, Load) {
    // The warm-up starts the sandboxes, so cold starts stay out of the measured run.
    let warmup = rt.block_on(client::load(
        target,
        payload,
        plan.clients,
        plan.load_warmup,
        plan.load_limit,
    ));
    let load = rt.block_on(client::load(
        target,
        payload,
        plan.clients,
        plan.load_total,
        plan.load_limit,
    ));
    (warmup, load)
}

/// The size of `function`'s binary.
pub fn binary_size(function: &Function) -> anyhow::Result<Size> {
    let file = function
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    Size::of(format!("{} ({file})", function.label), &function.path)
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

/// `coldstart up` → ready: `plan.up_runs` runs, after one unmeasured run that loads the binaries
/// into the page cache. Each run spawns `up` with `config` and sends one request to every
/// endpoint of [`up::FUNCTION`], the Invoke API first (its round trip includes the sandbox's
/// spawn), then the Function URL and the HTTP API.
pub fn up_to_ready(
    rt: &Runtime,
    plan: &Plan,
    coldstart: &Path,
    function: &Function,
    config: &ConfigDir,
) -> anyhow::Result<UpToReady> {
    up_once(rt, coldstart, config).context("the unmeasured run of coldstart up")?;
    let mut runs = Vec::with_capacity(plan.up_runs);
    let mut notes = Vec::new();
    for n in 1..=plan.up_runs {
        let run =
            up_once(rt, coldstart, config).with_context(|| format!("run {n} of coldstart up"))?;
        notes.extend(run.notes.iter().map(|note| format!("run {n}: {note}")));
        runs.push(run);
    }
    let summary = |figure: fn(&UpRun) -> Duration| {
        Summary::of(runs.iter().map(figure).collect()).context("no runs of coldstart up")
    };
    Ok(UpToReady {
        label: function.label.into(),
        banner: summary(|run| run.banner)?,
        printed: summary(|run| run.printed)?,
        ready: summary(|run| run.ready)?,
        first_invoke: summary(|run| run.first_invoke)?,
        notes,
    })
}

/// One run of [`up_to_ready`].
#[derive(Debug)]
struct UpRun {
    banner: Duration,
    printed: Duration,
    ready: Duration,
    first_invoke: Duration,
    notes: Vec<String>,
}

fn up_once(rt: &Runtime, coldstart: &Path, config: &ConfigDir) -> anyhow::Result<UpRun> {
    let started = Instant::now();
    let up = Up::start(coldstart, &config.config)?;
    let answered = rt.block_on(answer_every_door(&up));
    let ready = started.elapsed();
    let (banner, printed) = (up.banner.at.duration_since(started), up.banner.ready);
    // Stopped before `?`, so a failed run still reports what `up` said.
    let notes = up.stop()?;
    let first_invoke = answered.with_context(|| notes.join("\n"))?;
    Ok(UpRun {
        banner,
        printed,
        ready,
        first_invoke,
        notes,
    })
}

/// One request to each endpoint of [`up::FUNCTION`], in turn: the Invoke API (POST `{}`, which
/// must come back), the Function URL and the HTTP API (GET `/`, any 200). Returns the Invoke API's
/// round trip.
async fn answer_every_door(up: &Up) -> anyhow::Result<Duration> {
    let object = Bytes::from_static(b"{}");
    let invoke = up.endpoint(up::FUNCTION, Door::InvokeApi)?;
    let first = client::first_answer(&endpoint_target(invoke, Exchange::Echo), &object)
        .await
        .context("the Invoke API")?;
    for door in [Door::FunctionUrl, Door::HttpApi] {
        let endpoint = up.endpoint(up::FUNCTION, door)?;
        client::first_answer(&endpoint_target(endpoint, Exchange::Get), &object)
            .await
            .with_context(|| format!("{door:?} {}{}", endpoint.addr, endpoint.path))?;
    }
    Ok(first)
}

/// Sequential GETs to the Function URL of [`up::FUNCTION`] under one `coldstart up`, and the same
/// GETs to the floor, measured in interleaved rounds ([`client::interleaved`]).
pub fn warm_function_url(
    rt: &Runtime,
    plan: &Plan,
    coldstart: &Path,
    function: &Function,
    config: &ConfigDir,
) -> anyhow::Result<WarmFunctionUrl> {
    let floor = FloorServer::start()?;
    let up = Up::start(coldstart, &config.config)?;
    let url = up.endpoint(up::FUNCTION, Door::FunctionUrl)?;
    let targets = [
        floor_target(&floor, Exchange::Get, url.path.clone()),
        endpoint_target(url, Exchange::Get),
    ];
    let result = rt.block_on(client::interleaved(
        &targets,
        &Bytes::new(),
        plan.interleaved,
    ));
    let notes = up.stop()?;
    drop(floor);
    let result = result.with_context(|| format!("warm Function URL: {}", notes.join("\n")))?;
    let [floor, url] = <[client::Sequential; 2]>::try_from(result)
        .map_err(|_| anyhow!("the interleaved run lost a target"))?;
    Ok(WarmFunctionUrl {
        floor: Latency::of("floor (bare hyper echo, GET)", floor)?,
        url: served(format!("Function URL, {}", function.label), url, notes)?,
    })
}

/// Response streaming through both doors of one `coldstart up`.
#[derive(Debug)]
pub struct Streaming {
    /// The function served.
    pub label: String,
    /// InvokeWithResponseStream, then the streaming Function URL.
    pub doors: Vec<StreamFigures>,
    /// coldstart's memory around the transfers.
    pub memory: Memory,
    /// What `up` printed on stderr besides its banner.
    pub notes: Vec<String>,
}

/// The resident memory of the `coldstart` process (not its sandboxes) around the transfers.
#[derive(Debug)]
pub struct Memory {
    /// `VmRSS` just before the transfers, in bytes.
    pub before: u64,
    /// `VmHWM` after the transfers, in bytes: the peak during them, or since coldstart started
    /// when `peak_since_start` is set.
    pub peak: u64,
    /// Why the peak could not be reset before the transfers, if it could not.
    pub peak_since_start: Option<String>,
}

/// The streaming figures of one door.
#[derive(Debug)]
pub struct StreamFigures {
    pub label: &'static str,
    /// The function's write of its one chunk → that chunk decoded by the client.
    pub ttfb: Summary,
    /// Request sent → end of a [`stream::STREAM_BYTES`] answer.
    pub transfer: Summary,
}

impl StreamFigures {
    /// Throughput of the median transfer, in MB/s (1 MB = 10^6 bytes). Every transfer has the
    /// same size, so this is also the median of the runs' rates.
    pub fn median_rate(&self) -> f64 {
        mb_per_s(self.transfer.p50)
    }

    /// Throughput of the slowest transfer, in MB/s.
    pub fn slowest_rate(&self) -> f64 {
        mb_per_s(self.transfer.max)
    }
}

fn mb_per_s(elapsed: Duration) -> f64 {
    stream::STREAM_BYTES as f64 / 1e6 / elapsed.as_secs_f64()
}

/// Response streaming through `coldstart up` serving `function` (the test kit's `fx-stream`) with
/// `config` ([`ConfigDir::stream`]): time to first byte through InvokeWithResponseStream and the
/// streaming Function URL, measured together, then 100 MiB transfers through both, and
/// coldstart's peak memory during the transfers.
pub fn streaming(
    rt: &Runtime,
    plan: &Plan,
    coldstart: &Path,
    function: &Function,
    config: &ConfigDir,
) -> anyhow::Result<Streaming> {
    let up = Up::start(coldstart, &config.config)?;
    let measured = stream_through(rt, plan, &up);
    // Stopped before `?`, so a failed run still reports what `up` said.
    let notes = up.stop()?;
    let (doors, memory) =
        measured.with_context(|| format!("response streaming: {}", notes.join("\n")))?;
    Ok(Streaming {
        label: function.label.into(),
        doors,
        memory,
        notes,
    })
}

/// The measurements of [`streaming`] on a running `up`.
fn stream_through(
    rt: &Runtime,
    plan: &Plan,
    up: &Up,
) -> anyhow::Result<(Vec<StreamFigures>, Memory)> {
    let door = |door, stream_door| -> anyhow::Result<StreamTarget> {
        Ok(StreamTarget {
            addr: up.endpoint(up::STREAM_FUNCTION, door)?.addr,
            door: stream_door,
            function: up::STREAM_FUNCTION.into(),
        })
    };
    let targets = [
        door(Door::InvokeApi, StreamDoor::InvokeApi)?,
        door(Door::StreamingFunctionUrl, StreamDoor::FunctionUrl)?,
    ];
    let ttfb = rt
        .block_on(stream::time_to_first_byte(
            &targets,
            plan.ttfb_warmup,
            plan.ttfb_runs,
        ))
        .context("time to first byte")?;

    let pid = up.pid()?;
    let before = process::resident_bytes(pid, "VmRSS")?;
    // Without the reset, `VmHWM` would be the peak since start-up, which may hide the transfers'.
    let peak_since_start = process::reset_peak_resident(pid)
        .err()
        .map(|err| format!("{err:#}"));
    let transfers = rt
        .block_on(stream::transfers(
            &targets,
            plan.transfer_warmup,
            plan.transfer_runs,
        ))
        .context("100 MiB transfers")?;
    let peak = process::resident_bytes(pid, "VmHWM")?;

    let labels = ["InvokeWithResponseStream", "Function URL (stream)"];
    let doors = labels
        .into_iter()
        .zip(ttfb)
        .zip(transfers)
        .map(|((label, ttfb), transfer)| {
            Ok(StreamFigures {
                label,
                ttfb: Summary::of(ttfb).context("no time-to-first-byte requests")?,
                transfer: Summary::of(transfer).context("no transfers")?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let memory = Memory {
        before,
        peak,
        peak_since_start,
    };
    Ok((doors, memory))
}

fn floor_target(floor: &FloorServer, exchange: Exchange, path: String) -> Target {
    Target {
        addr: floor.addr,
        path,
        exchange,
    }
}

fn endpoint_target(endpoint: &Endpoint, exchange: Exchange) -> Target {
    Target {
        addr: endpoint.addr,
        path: endpoint.path.clone(),
        exchange,
    }
}

fn emulator_target(emulator: &Emulator) -> Target {
    Target {
        addr: emulator.addr,
        path: invoke::invoke_path(FUNCTION_NAME),
        exchange: Exchange::Echo,
    }
}

fn served(label: String, result: client::Sequential, notes: Vec<String>) -> anyhow::Result<Served> {
    Ok(Served {
        latency: Latency::of(label, result)?,
        notes,
    })
}

/// `ours / theirs` of two medians.
pub fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}

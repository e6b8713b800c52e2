//! `invoke`: the Invoke API with an echo function. Sequential warm invokes and throughput of
//! `coldstart run` with our runtime and with `lambda_runtime`, beside the loopback floor and
//! cargo-lambda (when installed), measured together; binary sizes; spawn → first `next`; boto3.

mod cargo_lambda;
mod startup;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use coldstart_protocol::invoke;

use self::cargo_lambda::Watch;
use crate::core::http::{self, Floor, Latency, Load, PAYLOAD_LEN, Rounds, Target};
use crate::core::process::{Usage, descendants, exe};
use crate::core::report::{self, Report, Table, failures, ratio};
use crate::core::stack::{Coldstart, binary, repository};
use crate::core::stats::{Summary, millis};
use crate::scenarios::Context;

/// The function `coldstart run` serves (as the Runtime Interface Emulator does).
const FUNCTION: &str = "function";
/// Clients of the throughput run, and `--concurrency` of the emulators.
const CLIENTS: usize = 8;
const CONCURRENCY: usize = 2;
/// Wall-time bound of each throughput run.
const LOAD_LIMIT: Duration = Duration::from_secs(30);
/// Goals (issue 17, and the README's targets).
const FLOOR_GOAL: f64 = 2.0;
const FLOOR_RATE_GOAL: f64 = 0.32;
const RATE_GOAL: f64 = 17_500.0;
const BOTO3_P99_GOAL: Duration = Duration::from_millis(5);
/// Most a Telemetry API subscriber may add to a warm invoke at p50 (issue 13).
const SUBSCRIBER_GOAL: Duration = Duration::from_micros(20);
/// The echo with one extension subscribed to every Telemetry API stream over HTTP (registered
/// for `SHUTDOWN` only, so that only its subscription costs).
const SUBSCRIBED: &str = "coldstart-runtime echo + 1 Telemetry subscriber";

/// The interleaved rounds of the sequential scenarios: 300 warm-up requests per target, then 30
/// rounds of blocks of 1 + 100 (a tenth of the warm-up and rounds in quick mode).
pub fn rounds(cx: &Context) -> Rounds {
    Rounds {
        warmup: cx.cut(300),
        rounds: cx.cut(30),
        block: 100,
    }
}

/// How [`rounds`] sends, for the `about` lines of a table.
pub fn rounds_about(table: Table, rounds: Rounds) -> Table {
    table
        .about(format!(
            "{} warm-up requests each, then {} rounds of 1 + {} sequential requests to every \
             target in turn, the order rotated every round;",
            rounds.warmup, rounds.rounds, rounds.block
        ))
        .about(
            "a block's first request follows the other targets' blocks (coldstart froze the \
             sandbox after 20 ms idle): its p50 is `1st p50`, out of the rest.",
        )
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("invoke", cx.quick);
    let coldstart = binary("coldstart")?;
    let (echo, lr_echo) = (binary("echo")?, binary("fx-lr-echo")?);
    let payload = http::payload();
    let peer = cargo_lambda::detect();
    let peer_row = match &peer {
        Ok(version) => format!("{version} (cargo lambda watch)"),
        Err(why) => format!("skipped: {why}"),
    };
    report.setup.push(("peer", peer_row));
    report.setup.push((
        "payload",
        format!("{PAYLOAD_LEN}-byte JSON, HTTP/1.1 keep-alive, TCP_NODELAY, loopback"),
    ));
    let ours = "coldstart + coldstart-runtime echo";
    let lr = "coldstart + lambda_runtime echo";

    eprintln!("invoke: sequential warm invokes, interleaved");
    // First, so that its compilation is over before anything else runs.
    let watch = start_peer(cx, &payload, peer.is_ok(), None, &mut report);
    let floor = Floor::start()?;
    let path = invoke::invoke_path(FUNCTION);
    let subscriber = binary("fx-telemetry")?;
    let subscribed = [
        OsStr::new("--extension"),
        subscriber.as_os_str(),
        OsStr::new("--env"),
        OsStr::new("TELEMETRY_QUIET=1"),
        OsStr::new("--env"),
        OsStr::new("TELEMETRY_EVENTS=SHUTDOWN"),
    ];
    let servers = [
        Coldstart::run(&coldstart, &echo, None)?,
        Coldstart::run(&coldstart, &lr_echo, None)?,
        Coldstart::run_with(&coldstart, &echo, None, &subscribed)?,
    ];
    let mut targets = vec![
        Target::echo(Floor::LABEL, floor.addr, path.clone()),
        Target::echo(ours, servers[0].invoke_api()?, path.clone()),
        Target::echo(lr, servers[1].invoke_api()?, path.clone()),
        Target::echo(SUBSCRIBED, servers[2].invoke_api()?, path.clone()),
    ];
    targets.extend(watch.as_ref().map(Watch::target));
    let rounds = rounds(cx);
    // The CPU a subscriber costs, steadier than its latency: coldstart's own with and without
    // it, and the subscriber's (since it started, at the warm-up's first invocation).
    let pids = [servers[0].pid()?, servers[2].pid()?];
    let before = pids.map(Usage::of);
    let measured = cx.rt.block_on(http::sequential(&targets, &payload, rounds));
    let used = [0, 1].map(|i| Usage::of(pids[i]).since(before[i]).cpu_ns);
    let subscriber = descendants(pids[1])
        .into_iter()
        .find(|&pid| exe(pid).is_some_and(|e| e.ends_with("fx-telemetry")))
        .map(|pid| Usage::of(pid).cpu_ns);
    let per_invoke = |ns: u64| {
        let sent = rounds.warmup + rounds.rounds * (rounds.block + 1);
        ns as f64 / sent.max(1) as f64 / 1000.0
    };
    let cpu = SubscriberCpu {
        coldstart: per_invoke(used[0]),
        coldstart_subscribed: per_invoke(used[1]),
        subscriber: subscriber.map(per_invoke),
    };
    for (server, label) in servers.into_iter().zip([ours, lr, SUBSCRIBED]) {
        report.note(label, server.stop()?);
    }
    if let Some(watch) = watch {
        report.note(
            cargo_lambda::LABEL,
            watch.server.stop(Duration::from_secs(5))?,
        );
    }
    let rows = measured.with_context(|| format!("sequential warm invokes: {:?}", report.notes))?;
    report.tables.push(sequential_table(&rows, rounds, &cpu));

    eprintln!("invoke: throughput, {CLIENTS} clients");
    let mut loads = vec![load(
        cx,
        &payload,
        &Target::echo(Floor::LABEL, floor.addr, path.clone()),
    )];
    drop(floor);
    for (bootstrap, label) in [(&echo, ours), (&lr_echo, lr)] {
        let server = Coldstart::run(&coldstart, bootstrap, Some(CONCURRENCY))?;
        loads.push(load(
            cx,
            &payload,
            &Target::echo(label, server.invoke_api()?, path.clone()),
        ));
        report.note(label, server.stop()?);
    }
    if let Some(watch) = start_peer(cx, &payload, peer.is_ok(), Some(CONCURRENCY), &mut report) {
        loads.push(load(cx, &payload, &watch.target()));
        report.note(
            cargo_lambda::LABEL,
            watch.server.stop(Duration::from_secs(5))?,
        );
    }
    report
        .tables
        .push(throughput_table(cx, &loads, &mut report.notes));

    let sizes = [
        ("coldstart-runtime echo (echo)", echo.as_path()),
        ("lambda_runtime echo (fx-lr-echo)", lr_echo.as_path()),
    ];
    report.tables.push(report::sizes(&sizes)?);

    eprintln!("invoke: spawn -> first next");
    report.tables.push(spawn_to_next(cx, &sizes)?);

    eprintln!("invoke: boto3");
    let server = Coldstart::run(&coldstart, &echo, None)?;
    let watch = start_peer(cx, &payload, peer.is_ok(), None, &mut report);
    let boto3 = boto3(cx, server.invoke_api()?, watch.as_ref().map(|w| w.addr));
    report.note("boto3, coldstart", server.stop()?);
    if let Some(watch) = watch {
        report.note(
            "boto3, cargo-lambda",
            watch.server.stop(Duration::from_secs(5))?,
        );
    }
    match boto3 {
        Ok(table) => report.tables.push(table),
        Err(err) => report.notes.push(format!("boto3 skipped: {err:#}")),
    }
    Ok(report)
}

/// Starts `cargo lambda watch` when it is installed; a failure skips the peer with a note.
fn start_peer(
    cx: &Context,
    payload: &Bytes,
    installed: bool,
    concurrency: Option<usize>,
    report: &mut Report,
) -> Option<Watch> {
    if !installed {
        return None;
    }
    Watch::start(&cx.rt, payload, concurrency)
        .map_err(|err| {
            report
                .notes
                .push(format!("cargo lambda watch skipped: {err:#}"))
        })
        .ok()
}

/// CPU per invoke (us) over the sequential runs, warm-up included.
struct SubscriberCpu {
    /// coldstart's, without a subscriber.
    coldstart: f64,
    /// coldstart's, with one.
    coldstart_subscribed: f64,
    /// The subscriber's own (the fixture extension, quiet), when found.
    subscriber: Option<f64>,
}

fn sequential_table(rows: &[Latency], rounds: Rounds, cpu: &SubscriberCpu) -> Table {
    let refs: Vec<&Latency> = rows.iter().collect();
    let title =
        "Sequential warm invokes: every target up at once, one keep-alive connection each (us)";
    let mut table = rounds_about(Table::latency(title, &refs, Some(&rows[0])), rounds);
    let p50 = |i: usize| rows[i].summary.p50;
    let to_floor = ratio(p50(1), p50(0));
    table.goal(
        "coldstart-runtime p50 / floor p50",
        format!("{to_floor:.2}x"),
        &format!("<= {FLOOR_GOAL}x"),
        to_floor <= FLOOR_GOAL,
    );
    let to_lr = ratio(p50(1), p50(2));
    table.goal(
        "coldstart-runtime p50 / lambda_runtime p50",
        format!("{to_lr:.2}x"),
        "<= 1x",
        to_lr <= 1.0,
    );
    let added = p50(3).saturating_sub(p50(1));
    table.goal(
        "one Telemetry subscriber adds, p50",
        format!("{} us", added.as_micros()),
        &format!("<= {} us", SUBSCRIBER_GOAL.as_micros()),
        added <= SUBSCRIBER_GOAL,
    );
    table.line(format!(
        "  CPU per invoke: coldstart {:.1} us without a subscriber, {:.1} us with one; the \
         subscriber itself {}",
        cpu.coldstart,
        cpu.coldstart_subscribed,
        cpu.subscriber
            .map_or_else(|| "not found".to_owned(), |us| format!("{us:.1} us"))
    ));
    if rows.len() > 4 {
        table.line(format!(
            "coldstart-runtime p50 / cargo-lambda p50  {:.2}x",
            ratio(p50(1), p50(4))
        ));
    }
    table
}

/// A warm-up run (it starts the sandboxes), then the measured one: 2,000 and 40,000 requests
/// (a tenth in quick mode), each within [`LOAD_LIMIT`].
fn load(cx: &Context, payload: &Bytes, target: &Target) -> (String, Load, Load) {
    let run = |total| {
        cx.rt.block_on(http::load(
            std::slice::from_ref(target),
            payload,
            CLIENTS,
            total,
            LOAD_LIMIT,
        ))
    };
    let warmup = run(cx.cut(2_000));
    (target.label.clone(), warmup, run(cx.cut(40_000)))
}

fn throughput_table(
    cx: &Context,
    loads: &[(String, Load, Load)],
    notes: &mut Vec<String>,
) -> Table {
    let title = format!(
        "Throughput: {CLIENTS} clients back to back, emulators with concurrency {CONCURRENCY}, {} \
         requests or {} s after {} warm-up; only right answers count",
        cx.cut(40_000),
        LOAD_LIMIT.as_secs(),
        cx.cut(2_000)
    );
    let columns = [
        "invokes/s",
        "200",
        "429",
        "other",
        "mismatches",
        "broken",
        "seconds",
        "x floor",
    ];
    let mut table = Table::new(title, &columns)
        .about("429: every sandbox busy, as Lambda answers; cargo-lambda queues instead.");
    let floor = loads[0].2.rate();
    for (label, warmup, load) in loads {
        table.row(
            label.clone(),
            vec![
                format!("{:.0}", load.rate()),
                load.right.to_string(),
                load.throttled.to_string(),
                failures(load.failures, load.failure_status),
                load.mismatches.to_string(),
                load.broken.to_string(),
                format!("{:.2}", load.elapsed.as_secs_f64()),
                format!("{:.2}", load.rate() / floor),
            ],
        );
        for (what, run) in [("warm-up", warmup), ("run", load)] {
            if let Some(why) = &run.broken_reason {
                notes.push(format!("{label}, {what}: a connection broke: {why}"));
            }
        }
    }
    let ours = loads[1].2.rate();
    table.goal(
        "coldstart-runtime invokes/s / floor's",
        format!("{:.2}", ours / floor),
        &format!(">= {FLOOR_RATE_GOAL}"),
        ours / floor >= FLOOR_RATE_GOAL,
    );
    table.goal(
        "coldstart-runtime invokes/s",
        format!("{ours:.0}"),
        &format!(">= {RATE_GOAL:.0}"),
        ours >= RATE_GOAL,
    );
    if let Some((_, _, peer)) = loads.get(3) {
        let times = ours / peer.rate();
        table.goal(
            "coldstart-runtime / cargo-lambda invokes/s",
            format!("{times:.2}x"),
            ">= 5x",
            times >= 5.0,
        );
    }
    table
}

/// Spawn → first `next` of each function, 50 runs each (5 in quick mode) interleaved, after one
/// unmeasured run each that loads the binaries into the page cache.
fn spawn_to_next(cx: &Context, functions: &[(&str, &Path)]) -> anyhow::Result<Table> {
    let runs = cx.cut(50);
    let mut samples = vec![Vec::with_capacity(runs); functions.len()];
    for (_, path) in functions {
        cx.rt.block_on(startup::time_to_first_next(path))?;
    }
    for run in 0..runs {
        for step in 0..functions.len() {
            // The order alternates, so that drift spreads evenly.
            let i = if run % 2 == 0 {
                step
            } else {
                functions.len() - 1 - step
            };
            samples[i].push(
                cx.rt
                    .block_on(startup::time_to_first_next(functions[i].1))?,
            );
        }
    }
    let title =
        format!("Spawn -> first next: a stub Runtime API, {runs} runs each, interleaved (ms)");
    let mut table = Table::new(title, &["median", "p90"]);
    for ((label, _), samples) in functions.iter().zip(samples) {
        let s = Summary::of(samples).context("no spawn runs")?;
        table.row(*label, vec![millis(s.p50), millis(s.p90)]);
    }
    Ok(table)
}

/// `bench/boto3_invoke.py` against coldstart (and the peer): its latencies, summarised here.
fn boto3(
    cx: &Context,
    ours: std::net::SocketAddr,
    peer: Option<std::net::SocketAddr>,
) -> anyhow::Result<Table> {
    let mut command = Command::new("python3");
    command
        .arg(repository().join("bench/boto3_invoke.py"))
        .arg(format!("http://{ours}"));
    if let Some(peer) = peer {
        command.arg("--peer").arg(format!("http://{peer}"));
    }
    if cx.quick {
        command.arg("--quick");
    }
    let out = command.output().context("running python3")?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout
        .lines()
        .map(serde_json::from_str::<serde_json::Value>);
    let versions = lines.next().context("no output")??;
    let title = format!(
        "boto3 invoke: {} sequential calls after {} warm-up (python {}, boto3 {}; ms)",
        versions["calls"],
        versions["warmup"],
        versions["python"].as_str().unwrap_or("?"),
        versions["boto3"].as_str().unwrap_or("?")
    );
    let mut table = Table::new(title, &["p50", "p99", "max", ">5 ms", "errors", "mismatches"])
        .about("Python's http.client sends headers and body apart: a server without TCP_NODELAY stalls it ~40 ms.");
    let mut ours_p99 = None;
    for line in lines {
        let row = line?;
        let ms: Vec<Duration> = row["ms"]
            .as_array()
            .context("no latencies")?
            .iter()
            .filter_map(|v| Duration::try_from_secs_f64(v.as_f64()? / 1e3).ok())
            .collect();
        let slow = ms.iter().filter(|d| **d > BOTO3_P99_GOAL).count();
        let s = Summary::of(ms).context("no calls")?;
        ours_p99.get_or_insert(s.p99);
        table.row(
            row["label"].as_str().unwrap_or("?"),
            vec![
                millis(s.p50),
                millis(s.p99),
                millis(s.max),
                slow.to_string(),
                row["errors"].to_string(),
                row["mismatches"].to_string(),
            ],
        );
    }
    let p99 = ours_p99.context("no coldstart row")?;
    table.goal(
        "coldstart p99",
        millis(p99),
        "<= 5 ms",
        p99 <= BOTO3_P99_GOAL,
    );
    Ok(table)
}

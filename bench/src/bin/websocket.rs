//! `bench-websocket [--quick] [--peer DIR]`: measures coldstart's WebSocket APIs with the chat
//! example under `coldstart up`: message round trips, `@connections` POST throughput, connections
//! held and fan-out through the chat's `broadcast`; with `--peer`, the same round trips and POSTs
//! against serverless-offline serving the equivalent Node.js chat from DIR. Prints the table and
//! writes it to `bench/results/websocket.txt`.
//!
//! Run it through `bench/websocket.sh`, which builds the release binaries first, raises the open
//! files limit and installs the peer when asked. See `bench/README.md` for what each figure means.
//!
//! # Layout
//! - `ws_measure`: one function per measurement, and the plan of how much to do.
//! - `ws_client`: WebSocket clients (round trips, idle connections that drain) and the HTTP/1.1
//!   POST client.
//! - `ws_up`: `coldstart up` serving the chat with a config in a temporary folder.
//! - `ws_peer`: serverless-offline, the optional peer, and why it was skipped.
//! - `ws_report`: the results table.
//! - `stats`: percentiles and means (shared with `coldstart-bench`).

#[path = "../stats.rs"]
mod stats;
#[path = "../ws_client.rs"]
mod ws_client;
#[path = "../ws_measure.rs"]
mod ws_measure;
#[path = "../ws_peer.rs"]
mod ws_peer;
#[path = "../ws_report.rs"]
mod ws_report;
#[path = "../ws_up.rs"]
mod ws_up;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::ws_measure::{Plan, Target};
use crate::ws_report::{Machine, Peer, Results, collapse};
use crate::ws_up::{Chat, ChatConfig, Up};

/// Where the table is written.
const RESULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/websocket.txt");
const USAGE: &str = "usage: bench-websocket [--quick] [--peer DIR]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-websocket: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut quick = false;
    let mut peer_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--peer" => peer_dir = Some(args.next().context("--peer needs a folder")?.into()),
            "-h" | "--help" => {
                println!(
                    "{USAGE}\n  --quick     cut every count by 10x (a smoke test)\n  \
                     --peer DIR  also measure serverless-offline, installed in DIR \
                     (bench/peers/serverless-offline after `npm ci`)"
                );
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let machine = Machine::detect();
    let plan = Plan::new(quick);
    let chat = Chat::find()?;
    // The clients: one thread that drives every socket of the bench.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the client's runtime")?;
    let mut notes = Vec::new();

    eprintln!(
        "message round trips: 1 connection, then {}",
        plan.rt_parallel
    );
    let config = ChatConfig::write(&chat, "rt")?;
    let up = Up::start(&chat.coldstart, &config)?;
    let target = Target::coldstart(&config);
    // CPU time is read around each measurement: where a message's cost goes.
    let before = up.cpu()?;
    let mut one = rt.block_on(ws_measure::round_trip(
        &target,
        1,
        plan.rt_warmup,
        plan.rt_count,
    ))?;
    let between = up.cpu()?;
    let mut parallel = rt.block_on(ws_measure::round_trip(
        &target,
        plan.rt_parallel,
        plan.rt_parallel_warmup,
        plan.rt_parallel_count,
    ))?;
    one.cpu = Some(before.until(between));
    parallel.cpu = Some(between.until(up.cpu()?));
    notes.extend(
        collapse(&up.stop()?)
            .into_iter()
            .map(|n| format!("round trips: {n}")),
    );
    drop(config);

    eprintln!("@connections POST throughput");
    let config = ChatConfig::write(&chat, "posts")?;
    let up = Up::start(&chat.coldstart, &config)?;
    let posts = rt.block_on(ws_measure::posts(&Target::coldstart(&config), &plan))?;
    notes.extend(
        collapse(&up.stop()?)
            .into_iter()
            .map(|n| format!("posts: {n}")),
    );
    if let Some(why) = &posts.load.broken_reason {
        notes.push(format!("posts: a connection broke: {why}"));
    }
    drop(config);

    eprintln!("fan-out to {} connections", plan.fanout_clients);
    let config = ChatConfig::write(&chat, "fanout")?;
    let up = Up::start(&chat.coldstart, &config)?;
    let fan_out = rt.block_on(ws_measure::fan_out(&config, &plan))?;
    notes.extend(
        collapse(&up.stop()?)
            .into_iter()
            .map(|n| format!("fan-out: {n}")),
    );
    if let Some(why) = &fan_out.opened.last_error {
        notes.push(format!("fan-out: a connection failed to open: {why}"));
    }
    drop(config);

    eprintln!("{} connections held", plan.held);
    let config = ChatConfig::write(&chat, "held")?;
    let up = Up::start(&chat.coldstart, &config)?;
    let held = rt.block_on(ws_measure::held(up, &config, &plan))?;
    notes.extend(
        collapse(&held.notes)
            .into_iter()
            .map(|n| format!("connections held: {n}")),
    );
    if let Some(why) = &held.opened.last_error {
        notes.push(format!(
            "connections held: a connection failed to open: {why}"
        ));
    }
    if let Some(why) = &held.closing.broken_reason {
        notes.push(format!(
            "connections held: a connection broke while closing: {why}"
        ));
    }
    drop(config);

    let peer = match &peer_dir {
        Some(dir) => {
            eprintln!("the peer: serverless-offline in {}", dir.display());
            ws_peer::measure(&rt, dir, &plan)
        }
        None => Peer::Skipped(
            "not asked for (bench/websocket.sh --with-peer installs and measures it)".into(),
        ),
    };
    if let Peer::Skipped(why) = &peer {
        eprintln!("peer skipped: {why}");
    }

    let results = Results {
        machine,
        plan,
        one,
        parallel,
        posts,
        held,
        fan_out,
        peer,
        notes,
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

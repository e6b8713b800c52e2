//! `bench-websocket [--quick] [--peer DIR]`: measures coldstart's WebSocket APIs with the chat
//! example under `coldstart up`: message round trips, `@connections` POST throughput, connections
//! held and fan-out through the chat's `broadcast`; with `--peer`, the same round trips and POSTs
//! against serverless-offline serving the equivalent Node.js chat from DIR. Prints the table and
//! writes it to `bench/results/websocket.txt`.
//!
//! Run it through `bench/websocket.sh`, which builds the release binaries first, raises the open
//! files limit and installs the peer when asked. See `bench/README.md` for what each figure means,
//! and the crate's guide (`lib.rs`) for where the code of each measurement is (the `ws_*`
//! modules).

use std::process::ExitCode;

use coldstart_bench::cli::{Args, Command};
use coldstart_bench::table::Machine;
use coldstart_bench::ws_measure::{self, Plan, Target};
use coldstart_bench::ws_report::{self, Peer, Results, collapse};
use coldstart_bench::ws_up::{Chat, ChatConfig, ChatUp};
use coldstart_bench::{client, ws_peer};

fn main() -> ExitCode {
    Command::new("bench-websocket", "websocket.txt")
        .with_peer(
            "also measure serverless-offline, installed in DIR (bench/peers/serverless-offline \
             after `npm ci`)",
        )
        .main(run)
}

fn run(args: Args) -> anyhow::Result<Results> {
    let machine = Machine::detect();
    let open_files = ws_report::open_files();
    let plan = Plan::new(args.quick);
    let chat = Chat::find()?;
    // The clients: one thread that drives every socket of the bench.
    let rt = client::runtime()?;
    let mut notes = Vec::new();

    eprintln!(
        "message round trips: 1 connection, then {}",
        plan.rt_parallel
    );
    let (config, up) = fresh(&chat, "rt")?;
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
    note(&mut notes, "round trips", &up.stop()?, []);
    drop(config);

    eprintln!("@connections POST throughput");
    let (config, up) = fresh(&chat, "posts")?;
    let posts = rt.block_on(ws_measure::posts(&Target::coldstart(&config), &plan))?;
    let broke = failure("a connection broke", &posts.load.broken_reason);
    note(&mut notes, "posts", &up.stop()?, broke);
    drop(config);

    eprintln!("fan-out to {} connections", plan.fanout_clients);
    let (config, up) = fresh(&chat, "fanout")?;
    let fan_out = rt.block_on(ws_measure::fan_out(&config, &plan))?;
    let failed = failure("a connection failed to open", &fan_out.opened.last_error);
    note(&mut notes, "fan-out", &up.stop()?, failed);
    drop(config);

    eprintln!("{} connections held", plan.held);
    let (config, up) = fresh(&chat, "held")?;
    let held = rt.block_on(ws_measure::held(up, &config, &plan))?;
    let failures = [
        failure("a connection failed to open", &held.opened.last_error),
        failure(
            "a connection broke while closing",
            &held.closing.broken_reason,
        ),
    ];
    note(
        &mut notes,
        "connections held",
        &held.notes,
        failures.into_iter().flatten(),
    );
    drop(config);

    let peer = match &args.peer {
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

    Ok(Results {
        machine,
        open_files,
        plan,
        one,
        parallel,
        posts,
        held,
        fan_out,
        peer,
        notes,
    })
}

/// A fresh `coldstart up` for one section, on a config of its own (`name` in its folder's name).
fn fresh(chat: &Chat, name: &str) -> anyhow::Result<(ChatConfig, ChatUp)> {
    let config = ChatConfig::write(chat, name)?;
    let up = ChatUp::start(&chat.coldstart, &config)?;
    Ok((config, up))
}

/// `WHAT: WHY`, if there is a reason why.
fn failure(what: &str, why: &Option<String>) -> Option<String> {
    why.as_ref().map(|why| format!("{what}: {why}"))
}

/// Adds to `notes`, after the name of the section `what`: what `up` said meanwhile (repeated lines
/// counted once), then `failures` (connections that failed).
fn note(
    notes: &mut Vec<String>,
    what: &str,
    said: &[String],
    failures: impl IntoIterator<Item = String>,
) {
    let lines = collapse(said).into_iter().chain(failures);
    notes.extend(lines.map(|n| format!("{what}: {n}")));
}

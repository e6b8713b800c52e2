//! `websocket`: the chat example under `coldstart up --no-build` (a fresh `up` and SQLite file per
//! section): message round trips, `@connections` POST throughput, connections held and fan-out
//! through the chat's `broadcast`; round trips and POSTs also against serverless-offline when it
//! is installed in `bench/peers/serverless-offline` (`bench/run.sh --with-peer`).
//!
//! - [`client`]: WebSocket clients, single and in crowds.
//! - [`measure`]: one function per measurement, and the plan.
//! - [`offline`]: serverless-offline, the peer.

mod client;
mod measure;
mod offline;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use self::measure::{Broadcast, Plan, Posts, RoundTrip, Target};
use crate::core::process::{self, Usage};
use crate::core::report::{Report, Table, failures, mb, ratio};
use crate::core::stack::{Coldstart, ConfigDir, binary, repository, toml_path, toml_string};
use crate::core::stats::{micros, millis};
use crate::scenarios::Context;

/// The WebSocket API's stage (as in the repository's `coldstart.toml`).
pub const STAGE: &str = "staging";
/// How long `up` gets after SIGTERM: it closes every connection (1001) and runs each
/// `$disconnect`, seconds for 10,000 connections.
pub const STOP_GRACE: Duration = Duration::from_secs(120);
/// Goals: round trip p50 with 8 connections, POSTs/s, connections held, fan-out median.
const RT_GOAL: Duration = Duration::from_micros(500);
const POSTS_GOAL: f64 = 20_000.0;
const HELD_GOAL: usize = 10_000;
const FANOUT_GOAL: Duration = Duration::from_millis(250);
/// serverless-offline on this machine, by the issue's author: p50 ms with 1 and 8 connections,
/// POSTs/s.
const ISSUE_PEER: &str = "serverless-offline (issue's figures, not this run): p50 3.1 ms with 1 \
                          connection, 22.9 ms with 8; 860 posts/s";

/// The chat's config in a temporary folder, with its ports and SQLite file.
#[derive(Debug)]
pub struct Chat {
    dir: ConfigDir,
    db: PathBuf,
    /// The WebSocket API (`ws://ADDR/staging`, `http://ADDR/staging/@connections/…`).
    pub ws: SocketAddr,
    /// The HTTP API (`POST /broadcast`).
    pub http: SocketAddr,
}

impl Chat {
    /// The root `coldstart.toml`'s chat entries with absolute bootstraps, no `build` key, two free
    /// ports (`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` names the WebSocket port before `up`
    /// starts) and a SQLite file in the folder.
    fn write(name: &str) -> anyhow::Result<Self> {
        let [ws, http] = process::free_ports()?;
        let dir = ConfigDir::write(name, "")?;
        let db = dir.dir.join("connections.sqlite3");
        let environment = format!(
            "{{ AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI = {}, AWS_ACCESS_KEY_ID = \"local\", \
             AWS_SECRET_ACCESS_KEY = \"local\", CONNECTIONS_DB = {} }}",
            toml_string(&format!("http://{ws}/{STAGE}")),
            toml_path(&db)?
        );
        let toml = format!(
            "[functions.chat]\nbootstrap = {}\ntimeout = 10\nenvironment = {environment}\n\n\
             [functions.broadcast]\nbootstrap = {}\ntimeout = 29\nenvironment = {environment}\n\n\
             [http_apis.api]\nport = {}\npayload_version = \"2.0\"\n\
             routes = {{ \"POST /broadcast\" = \"broadcast\" }}\n\n\
             [websocket_apis.chat]\nport = {}\nstage = \"{STAGE}\"\n\
             route_selection = \"$request.body.action\"\nroutes = {{ \"$connect\" = \"chat\", \
             \"$disconnect\" = \"chat\", \"$default\" = \"chat\", \"broadcast\" = \"chat\" }}\n",
            toml_path(&binary("chat")?)?,
            toml_path(&binary("broadcast")?)?,
            http.port(),
            ws.port(),
        );
        std::fs::write(&dir.config, toml).context("writing the chat's config")?;
        Ok(Self { dir, db, ws, http })
    }

    /// The connection ids the chat recorded on `channel` (its `$connect` writes the row before
    /// `up` answers the upgrade).
    pub fn connection_ids(&self, channel: &str) -> anyhow::Result<Vec<String>> {
        let db = rusqlite::Connection::open(&self.db)
            .with_context(|| format!("opening {}", self.db.display()))?;
        db.busy_timeout(Duration::from_secs(5))?;
        let mut query = db.prepare("SELECT connection_id FROM connections WHERE channel = ?1")?;
        let ids = query.query_map([channel], |row| row.get(0))?;
        Ok(ids.collect::<Result<Vec<String>, _>>()?)
    }

    /// A fresh config and `coldstart up --no-build` for one section; the WebSocket API must be
    /// among its endpoints at [`Chat::ws`].
    fn up(name: &str) -> anyhow::Result<(Self, Coldstart)> {
        let chat = Self::write(name)?;
        let up = Coldstart::up(&binary("coldstart")?, &["--no-build"], &chat.dir.config)?;
        let listed = up
            .endpoints
            .iter()
            .any(|e| e.kind == "websocket" && e.addr == chat.ws);
        anyhow::ensure!(
            listed,
            "no websocket endpoint at {} in {:?}",
            chat.ws,
            up.endpoints
        );
        Ok((chat, up))
    }
}

/// CPU time (ns) of `up`, its sandboxes (those alive now) and this process.
fn cpu(up: &Coldstart) -> anyhow::Result<[u64; 3]> {
    let pid = up.pid()?;
    let sandboxes = process::descendants(pid)
        .into_iter()
        .map(|p| Usage::of(p).cpu_ns)
        .sum();
    Ok([
        Usage::of(pid).cpu_ns,
        sandboxes,
        Usage::of(std::process::id()).cpu_ns,
    ])
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("websocket", cx.quick);
    let plan = Plan::new(cx.quick);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let nofile = limits.lines().find_map(|l| {
        l.strip_prefix("Max open files")?
            .split_whitespace()
            .next()
            .map(str::to_owned)
    });
    report.setup.push((
        "nofile",
        format!(
            "{} (the bench's ulimit -n; coldstart inherits it)",
            nofile.unwrap_or_default()
        ),
    ));
    report.setup.push(("setup", "coldstart up --no-build serving examples/chat (concurrency 10, idle sandboxes frozen), a fresh up per\n\
        section; every client on one single-thread tokio runtime; loopback; TCP_NODELAY".into()));

    eprintln!(
        "websocket: round trips, 1 connection then {}",
        plan.rt_parallel
    );
    let (chat, up) = Chat::up("ws-rt")?;
    let target = Target::coldstart(&chat);
    let before = cpu(&up)?;
    let mut one = cx.rt.block_on(measure::round_trip(
        &target,
        1,
        plan.rt_warmup,
        plan.rt_count,
    ))?;
    let between = cpu(&up)?;
    let mut eight = cx.rt.block_on(measure::round_trip(
        &target,
        plan.rt_parallel,
        plan.rt_parallel_warmup,
        plan.rt_parallel_count,
    ))?;
    let after = cpu(&up)?;
    let since = |a: [u64; 3], b: [u64; 3]| [0, 1, 2].map(|i| b[i].saturating_sub(a[i]));
    one.cpu = Some(since(before, between));
    eight.cpu = Some(since(between, after));
    report.note("round trips", up.stop()?);
    drop(chat);

    eprintln!("websocket: @connections POSTs");
    let (chat, up) = Chat::up("ws-posts")?;
    let posts = cx
        .rt
        .block_on(measure::posts(&Target::coldstart(&chat), &plan));
    report.note("posts", up.stop()?);
    let posts = posts?;
    report.note(
        "posts",
        posts
            .load
            .broken_reason
            .iter()
            .map(|why| format!("a connection broke: {why}")),
    );
    drop(chat);

    eprintln!("websocket: fan-out to {} connections", plan.fanout_clients);
    let (chat, up) = Chat::up("ws-fanout")?;
    let fan_out = cx.rt.block_on(measure::fan_out(&chat, &plan));
    report.note("fan-out", up.stop()?);
    let fan_out = fan_out?;
    report.note(
        "fan-out",
        fan_out
            .opened
            .last_error
            .iter()
            .map(|why| format!("a connection failed to open: {why}")),
    );
    drop(chat);

    eprintln!("websocket: {} connections held", plan.held);
    let (chat, up) = Chat::up("ws-held")?;
    let held = cx.rt.block_on(measure::held(up, &chat, &plan))?;
    report.note("connections held", held.notes.iter().cloned());
    report.note(
        "connections held",
        held.opened
            .last_error
            .iter()
            .map(|why| format!("a connection failed to open: {why}")),
    );
    drop(chat);

    let dir = repository().join("bench/peers/serverless-offline");
    let peer = if dir.join("node_modules").is_dir() {
        eprintln!("websocket: the peer, serverless-offline");
        offline::measure(&cx.rt, &dir, &plan)
    } else {
        Err(anyhow::anyhow!(
            "not installed (bench/run.sh --with-peer websocket installs it)"
        ))
    };
    let peer = match peer {
        Ok(peer) => {
            report.setup.push(("peer", peer.version.clone()));
            report.note("serverless-offline", peer.notes.iter().cloned());
            Some(peer)
        }
        Err(why) => {
            report
                .setup
                .push(("peer", format!("serverless-offline skipped: {why:#}")));
            None
        }
    };

    report
        .tables
        .push(round_trip_table(&one, &eight, peer.as_ref()));
    report
        .tables
        .push(posts_table(&plan, &posts, peer.as_ref().map(|p| &p.posts)));
    report.tables.push(held_table(&held));
    report.tables.push(fan_out_table(&plan, &fan_out));
    Ok(report)
}

fn round_trip_table(one: &RoundTrip, eight: &RoundTrip, peer: Option<&offline::PeerRun>) -> Table {
    let title = "Message round trip (us): a 100-byte text frame -> $default -> chat -> @connections POST -> the same client";
    let columns = [
        "conns", "warm-up", "measured", "p50", "p99", "mean", "max", "msgs/s", "wrong",
    ];
    let mut table = Table::new(title, &columns)
        .about("each connection sends its next message once the echo of the last is back; the echo must equal the message");
    let mut rows = vec![("coldstart up + chat", one), ("coldstart up + chat", eight)];
    if let Some(peer) = peer {
        rows.extend([
            ("serverless-offline", &peer.one),
            ("serverless-offline", &peer.parallel),
        ]);
    }
    for (label, rt) in rows {
        let s = &rt.summary;
        table.row(
            label,
            vec![
                rt.connections.to_string(),
                (rt.warmup * rt.connections).to_string(),
                s.count.to_string(),
                micros(s.p50),
                micros(s.p99),
                micros(s.mean),
                micros(s.max),
                format!("{:.0}", rt.rate),
                rt.mismatches.to_string(),
            ],
        );
    }
    table.goal(
        "p50 with 8 connections",
        micros(eight.summary.p50),
        "<= 500 us",
        eight.summary.p50 <= RT_GOAL,
    );
    for rt in [one, eight] {
        if let Some([up, sandboxes, bench]) = rt.cpu {
            let per = |ns: u64| ns / 1_000 / rt.messages().max(1) as u64;
            table.line(format!(
                "CPU per message, {} connection(s), warm-up and all: coldstart up {} us, chat sandboxes {} us, the clients {} us",
                rt.connections, per(up), per(sandboxes), per(bench)
            ));
        }
    }
    if let Some(peer) = peer {
        table.line(format!(
            "serverless-offline p50 / coldstart p50: {:.1}x with 1 connection, {:.1}x with 8",
            ratio(peer.one.summary.p50, one.summary.p50),
            ratio(peer.parallel.summary.p50, eight.summary.p50)
        ));
    }
    table.line(ISSUE_PEER);
    table
}

fn posts_table(plan: &Plan, posts: &Posts, peer: Option<&Posts>) -> Table {
    let title = format!(
        "@connections POST throughput: {} idle clients, {} keep-alive connections POST 100 bytes to them in turn; \
         {} warm-up, then {} POSTs or {} s",
        plan.post_clients,
        plan.post_connections,
        plan.post_warmup,
        plan.post_total,
        plan.post_limit.as_secs()
    );
    let columns = [
        "posts/s", "sent", "2xx", "other", "broken", "received", "seconds",
    ];
    let mut table = Table::new(title, &columns).about(
        "every frame must reach its client; serverless-offline answers 204 and sends binary frames",
    );
    let mut rows = vec![("coldstart up", posts)];
    rows.extend(peer.map(|p| ("serverless-offline", p)));
    for (label, p) in &rows {
        let l = &p.load;
        table.row(
            *label,
            vec![
                format!("{:.0}", l.rate()),
                l.sent().to_string(),
                l.right.to_string(),
                failures(l.sent() - l.right, l.failure_status),
                l.broken.to_string(),
                p.received.to_string(),
                format!("{:.2}", l.elapsed.as_secs_f64()),
            ],
        );
    }
    for (label, p) in &rows {
        let w = &p.warmup;
        table.line(format!(
            "warm-up, {label}: {} x 2xx, {} other, {} broken",
            w.right,
            w.sent() - w.right,
            w.broken
        ));
    }
    table.goal(
        "posts/s",
        format!("{:.0}", posts.load.rate()),
        ">= 20000",
        posts.load.rate() >= POSTS_GOAL,
    );
    if let Some(peer) = peer {
        table.line(format!(
            "coldstart posts/s / serverless-offline posts/s: {:.1}x",
            posts.load.rate() / peer.load.rate()
        ));
    }
    table
}

fn broadcast_line(b: &Broadcast, everyone: usize) -> String {
    let status = b
        .status
        .map_or("no answer".into(), |s| s.as_u16().to_string());
    format!(
        "{status} {} in {} ms; received by {} of {everyone}, the last after {} ms",
        b.body,
        millis(b.answered),
        b.received,
        millis(b.to_last)
    )
}

fn held_table(held: &measure::Held) -> Table {
    let o = &held.opened;
    let title = format!(
        "Connections held: {} connections to one coldstart up, 8 handshakes in flight (each runs $connect: a SQLite insert)",
        held.attempted
    );
    let mut table = Table::new(title, &[]);
    table.line(format!(
        "opened {} of {} in {:.2} s: {:.0} connections/s; failed {}, not tried {}",
        o.ok,
        held.attempted,
        o.elapsed.as_secs_f64(),
        o.rate(),
        o.failed,
        o.not_tried
    ));
    let per = (held.rss_after.saturating_sub(held.rss_before)) as f64 / o.ok.max(1) as f64 / 1e3;
    table.line(format!(
        "coldstart up's VmRSS: {:.1} MB with none, {:.1} MB with {} open: {per:.1} KB per connection",
        mb(held.rss_before), mb(held.rss_after), o.ok
    ));
    table.line(format!(
        "all of them alive: one broadcast: {}",
        broadcast_line(&held.check, o.ok)
    ));
    table.line(format!(
        "closing every client, then SIGTERM until coldstart up exited: {:.2} s; {} $disconnect throttled; \
         {} closed by the server, {} broken",
        held.teardown.as_secs_f64(), held.disconnects_throttled, held.closing.by_server, held.closing.broken
    ));
    table.goal(
        "connections held",
        o.ok.to_string(),
        ">= 10000",
        o.ok >= HELD_GOAL,
    );
    table
}

fn fan_out_table(plan: &Plan, fan: &measure::FanOut) -> Table {
    let everyone = fan.opened.ok;
    let title = format!(
        "Fan-out: {everyone} connections on one channel; POST /broadcast -> broadcast -> one @connections POST each; \
         1 warm-up, then {} runs (ms)",
        plan.fanout_runs
    );
    let mut table = Table::new(title, &["median", "min", "max", "answer p50", "complete"])
        .about("from sending the POST until the last client has read the message")
        .about(format!(
            "warm-up: {}",
            broadcast_line(&fan.warmup, everyone)
        ));
    let complete = fan.runs.iter().filter(|r| r.received == everyone).count();
    let times = |f: fn(&Broadcast) -> Duration| {
        crate::core::stats::Summary::of(fan.runs.iter().map(f).collect())
    };
    if let (Some(last), Some(answer)) = (times(|b| b.to_last), times(|b| b.answered)) {
        let min = fan.runs.iter().map(|b| b.to_last).min().unwrap_or_default();
        table.row(
            format!("to the last of {everyone}"),
            vec![
                millis(fan.median().unwrap_or(last.p50)),
                millis(min),
                millis(last.max),
                millis(answer.p50),
                format!("{complete}/{}", fan.runs.len()),
            ],
        );
    }
    table.line(format!(
        "{everyone} of {} connections opened; at the end {} closed by the server, {} broken",
        plan.fanout_clients, fan.closing.by_server, fan.closing.broken
    ));
    let median = fan.median().unwrap_or(Duration::MAX);
    table.goal(
        &format!("median to the last of {everyone}"),
        millis(median),
        "<= 250 ms",
        median <= FANOUT_GOAL,
    );
    table
}

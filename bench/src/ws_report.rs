//! The WebSocket bench's results table: plain text with a stable layout, meant to be committed as
//! `bench/results/websocket.txt` and compared in diffs. Targets and the issue's peer figures are
//! printed beside what was measured.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::stats::{micros, millis};
use crate::table::{self, Machine, failures, mb, verdict};
use crate::ws_client::MESSAGE_LEN;
use crate::ws_measure::{Broadcast, FanOut, Held, Plan, Posts, RoundTrip};
use crate::ws_up::Cpu;

/// Round trip p50 with 8 connections: at most this.
const RT_TARGET: Duration = Duration::from_micros(500);
/// `@connections` POSTs per second: at least this.
const POSTS_TARGET: f64 = 20_000.0;
/// Connections held: at least this many.
const HELD_TARGET: usize = 10_000;
/// Fan-out to 1,000 connections, median: at most this.
const FANOUT_TARGET: Duration = Duration::from_millis(250);
/// serverless-offline on this machine, measured by the issue's author.
const ISSUE_PEER: &str = "serverless-offline (issue's figures, not this run)";
const ISSUE_RT_ONE_MS: f64 = 3.1;
const ISSUE_RT_EIGHT_MS: f64 = 22.9;
const ISSUE_POSTS: f64 = 860.0;
/// Width of the row labels.
const LABEL: usize = 34;

/// The bench's soft limit of open files (coldstart inherits it), from `/proc/self/limits`.
pub fn open_files() -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("unknown")
        .to_owned()
}

/// The peer's figures, or why there are none.
#[derive(Debug)]
pub enum Peer<T> {
    Measured(T),
    Skipped(String),
}

/// What was measured on the peer.
#[derive(Debug)]
pub struct PeerRun {
    /// `serverless-offline X (serverless Y, node Z)`.
    pub version: String,
    pub one: RoundTrip,
    pub parallel: RoundTrip,
    pub posts: Posts,
    /// What it printed that looked like an error.
    pub notes: Vec<String>,
}

/// Everything one run measured.
#[derive(Debug)]
pub struct Results {
    pub machine: Machine,
    /// The soft limit of open files ([`open_files`]).
    pub open_files: String,
    pub plan: Plan,
    pub one: RoundTrip,
    pub parallel: RoundTrip,
    pub posts: Posts,
    pub held: Held,
    pub fan_out: FanOut,
    pub peer: Peer<PeerRun>,
    /// `up`'s stderr (besides its table) and other oddities, by measurement.
    pub notes: Vec<String>,
}

impl fmt::Display for Results {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = "coldstart WebSocket benchmark";
        self.machine
            .header(f, title, self.plan.quick, &self.setup())?;
        self.round_trips(f)?;
        self.posts(f)?;
        self.held(f)?;
        self.fan_out(f)?;
        self.notes(f)
    }
}

impl Results {
    /// The header's rows of this bench: the open files limit, the peer, and how it ran.
    fn setup(&self) -> Vec<(&'static str, String)> {
        let nofile = format!(
            "{} (the bench's ulimit -n; coldstart inherits it)",
            self.open_files
        );
        let peer = match &self.peer {
            Peer::Measured(peer) => peer.version.clone(),
            Peer::Skipped(why) => format!("skipped: {why}"),
        };
        let setup = "coldstart up --no-build serving examples/chat (chat + broadcast, default \
                     concurrency 10 each, idle sandboxes frozen),";
        let clients = "a fresh up (and SQLite file) per section; every client on one single-thread \
                       tokio runtime; loopback; TCP_NODELAY";
        vec![
            ("nofile", nofile),
            ("peer", peer),
            ("setup", setup.to_owned()),
            ("", clients.to_owned()),
        ]
    }

    fn round_trips(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "Message round trip (us): a {MESSAGE_LEN}-byte text frame -> $default -> chat -> \
             @connections POST -> the same client"
        )?;
        writeln!(
            f,
            "  each connection sends its next message when the echo of the last has come back; \
             the echo must equal the message"
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
            "", "conns", "warm-up", "measured", "p50", "p99", "mean", "max", "msgs/s", "wrong"
        )?;
        let mut rows = vec![
            ("coldstart up + chat", &self.one),
            ("coldstart up + chat", &self.parallel),
        ];
        if let Peer::Measured(peer) = &self.peer {
            rows.push(("serverless-offline", &peer.one));
            rows.push(("serverless-offline", &peer.parallel));
        }
        for (label, rt) in rows {
            let s = &rt.summary;
            writeln!(
                f,
                "{label:<LABEL$} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8.0} {:>5}",
                rt.connections,
                rt.connections * rt.warmup,
                s.count,
                micros(s.p50),
                micros(s.p99),
                micros(s.mean),
                micros(s.max),
                rt.rate,
                rt.mismatches
            )?;
        }
        writeln!(
            f,
            "  p50 with {} connections  target <= {} us: {}",
            self.parallel.connections,
            RT_TARGET.as_micros(),
            verdict(self.parallel.summary.p50 <= RT_TARGET)
        )?;
        for rt in [&self.one, &self.parallel] {
            let Some(cpu) = rt.cpu else { continue };
            let per = |ticks: u64| {
                (Cpu::TICK * u32::try_from(ticks).unwrap_or(u32::MAX)).as_secs_f64() * 1e6
                    / rt.messages().max(1) as f64
            };
            writeln!(
                f,
                "  CPU per message, {} connection(s), warm-up and all: coldstart up {:.0} us, \
                 chat sandboxes {:.0} us, the clients {:.0} us",
                rt.connections,
                per(cpu.coldstart),
                per(cpu.sandboxes),
                per(cpu.bench)
            )?;
        }
        if let Peer::Measured(peer) = &self.peer {
            writeln!(
                f,
                "  serverless-offline p50 / coldstart p50: {:.1}x with 1 connection, {:.1}x with {}",
                ratio(peer.one.summary.p50, self.one.summary.p50),
                ratio(peer.parallel.summary.p50, self.parallel.summary.p50),
                self.parallel.connections
            )?;
        }
        writeln!(
            f,
            "  {ISSUE_PEER}: p50 {ISSUE_RT_ONE_MS} ms with 1 connection, {ISSUE_RT_EIGHT_MS} ms \
             with 8"
        )
    }

    fn posts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, plan) = (&self.posts, &self.plan);
        writeln!(f)?;
        writeln!(
            f,
            "@connections POST throughput: {} idle clients (reading every frame), {} keep-alive \
             HTTP/1.1 connections",
            p.clients, p.connections
        )?;
        writeln!(
            f,
            "  each POSTs a {MESSAGE_LEN}-byte body to the clients in turn, the next when the \
             last is answered; {} warm-up, then {} POSTs or {} s",
            plan.post_warmup,
            plan.post_total,
            plan.post_limit.as_secs()
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>8} {:>8} {:>8} {:>7} {:>6} {:>9} {:>7}",
            "", "posts/s", "sent", "2xx", "other", "broken", "received", "seconds"
        )?;
        let mut rows = vec![("coldstart up", p)];
        if let Peer::Measured(peer) = &self.peer {
            rows.push(("serverless-offline", &peer.posts));
        }
        for (label, posts) in rows {
            let load = &posts.load;
            writeln!(
                f,
                "{label:<LABEL$} {:>8.0} {:>8} {:>8} {:>7} {:>6} {:>9} {:>7.2}",
                load.rate(),
                load.sent,
                load.ok,
                failures(load.other, load.other_status),
                load.broken,
                posts.received,
                load.elapsed.as_secs_f64()
            )?;
        }
        warmup_line(f, "coldstart up", p)?;
        if let Peer::Measured(peer) = &self.peer {
            warmup_line(f, "serverless-offline", &peer.posts)?;
        }
        writeln!(
            f,
            "  posts/s  target >= {POSTS_TARGET:.0}: {}",
            verdict(p.load.rate() >= POSTS_TARGET && p.received == p.load.ok)
        )?;
        if let Peer::Measured(peer) = &self.peer
            && peer.posts.load.ok > 0
        {
            writeln!(
                f,
                "  coldstart posts/s / serverless-offline posts/s: {:.1}x",
                p.load.rate() / peer.posts.load.rate()
            )?;
        }
        writeln!(f, "  {ISSUE_PEER}: {ISSUE_POSTS:.0} posts/s")
    }

    fn held(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.held;
        let opened = &h.opened;
        writeln!(f)?;
        writeln!(
            f,
            "Connections held: {} connections to one coldstart up, {} handshakes in flight \
             (each runs $connect: chat records it in SQLite)",
            h.attempted, self.plan.connect_in_flight
        )?;
        writeln!(
            f,
            "  opened {} of {} in {:.2} s: {:.0} connections/s; failed {}, not tried {}",
            opened.ok,
            h.attempted,
            opened.elapsed.as_secs_f64(),
            opened.rate(),
            opened.failed,
            opened.not_tried
        )?;
        let (before, after) = (mb(h.rss_before), mb(h.rss_after));
        let per = (h.rss_after.saturating_sub(h.rss_before)) as f64 / opened.ok.max(1) as f64;
        writeln!(
            f,
            "  coldstart up's VmRSS: {before:.1} MB with none, {after:.1} MB with {} open: \
             {:.1} KB per connection (its own process, not the sandboxes)",
            opened.ok,
            per / 1e3
        )?;
        broadcast_line(f, "all of them alive: one broadcast", &h.check, opened.ok)?;
        writeln!(
            f,
            "  closing every client at once, then SIGTERM until coldstart up exited: {:.2} s; \
             {} $disconnect throttled; {} closed by the server, {} broken",
            h.teardown.as_secs_f64(),
            h.disconnects_throttled,
            h.closing.by_server,
            h.closing.broken
        )?;
        writeln!(
            f,
            "  connections held  target >= {HELD_TARGET}: {}",
            verdict(opened.ok >= HELD_TARGET && h.check.received == opened.ok)
        )
    }

    fn fan_out(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fan = &self.fan_out;
        writeln!(f)?;
        writeln!(
            f,
            "Fan-out: {} connections on one channel; POST /broadcast?channel=fan (HTTP API) -> \
             broadcast -> one @connections POST each",
            fan.opened.ok
        )?;
        writeln!(
            f,
            "  timed from sending the POST until the last client has read the message; 1 \
             warm-up (starts the sandbox), then {} runs (ms)",
            fan.runs.len()
        )?;
        let everyone = fan.opened.ok;
        broadcast_line(f, "warm-up", &fan.warmup, everyone)?;
        let complete: Vec<&Broadcast> =
            fan.runs.iter().filter(|r| r.received == everyone).collect();
        let mut to_last: Vec<Duration> = complete.iter().map(|r| r.to_last).collect();
        let mut answered: Vec<Duration> = complete.iter().map(|r| r.answered).collect();
        to_last.sort_unstable();
        answered.sort_unstable();
        let median = |v: &[Duration]| crate::stats::percentile(v, 50.0);
        writeln!(
            f,
            "{:<LABEL$} {:>8} {:>8} {:>8} {:>10} {:>8}",
            "", "median", "min", "max", "answer p50", "complete"
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>8} {:>8} {:>8} {:>10} {:>8}",
            format!("to the last of {everyone}"),
            opt_millis(median(&to_last)),
            opt_millis(to_last.first().copied()),
            opt_millis(to_last.last().copied()),
            opt_millis(median(&answered)),
            format!("{}/{}", complete.len(), fan.runs.len())
        )?;
        for run in fan.runs.iter().filter(|r| r.received != everyone) {
            broadcast_line(f, "incomplete run", run, everyone)?;
        }
        writeln!(
            f,
            "  {} of {} connections opened; at the end {} closed by the server, {} broken",
            fan.opened.ok,
            fan.opened.ok + fan.opened.failed + fan.opened.not_tried,
            fan.closing.by_server,
            fan.closing.broken
        )?;
        let met = fan.median().is_some_and(|m| m <= FANOUT_TARGET)
            && complete.len() == fan.runs.len()
            && everyone >= 1_000;
        writeln!(
            f,
            "  median to the last of 1000  target <= {} ms: {}",
            FANOUT_TARGET.as_millis(),
            verdict(met)
        )
    }

    fn notes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut notes = self.notes.clone();
        if let Peer::Measured(peer) = &self.peer {
            notes.extend(
                peer.notes
                    .iter()
                    .map(|n| format!("serverless-offline: {n}")),
            );
        }
        table::notes(f, "emulator stderr, failures", &notes)
    }
}

/// The warm-up POSTs of one row.
fn warmup_line(f: &mut fmt::Formatter<'_>, label: &str, posts: &Posts) -> fmt::Result {
    let warm = &posts.warmup;
    writeln!(
        f,
        "  warm-up, {label}: {} x 2xx, {} other, {} broken",
        warm.ok, warm.other, warm.broken
    )
}

/// One broadcast: its answer, and how long until the last of `everyone` had it.
fn broadcast_line(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    b: &Broadcast,
    everyone: usize,
) -> fmt::Result {
    let status = b
        .status
        .map_or_else(|| "no answer".into(), |s| s.as_u16().to_string());
    writeln!(
        f,
        "  {what}: {status} {} in {} ms; received by {} of {everyone}, the last after {} ms",
        b.body.trim(),
        millis(b.answered),
        b.received,
        millis(b.to_last)
    )
}

/// `lines` with those that differ only in their leading timestamp and their `connection_id=` or
/// `request_id=` fields counted once: `1082 x WARN $disconnect failed function=chat
/// answer=Throttled`. Order of first appearance.
pub fn collapse(lines: &[String]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in lines {
        let key = line
            .split_whitespace()
            .enumerate()
            .filter(|(i, word)| !(*i == 0 && is_timestamp(word)))
            .map(|(_, word)| word)
            .filter(|word| !word.starts_with("connection_id=") && !word.starts_with("request_id="))
            .collect::<Vec<_>>()
            .join(" ");
        let count = counts.entry(key.clone()).or_insert(0);
        if *count == 0 {
            order.push(key);
        }
        *count += 1;
    }
    order
        .into_iter()
        .map(|key| match counts.get(&key) {
            Some(&n) if n > 1 => format!("{n} x {key}"),
            _ => key,
        })
        .collect()
}

/// `2026-11-21T07:24:13.318746Z`, as tracing prints it.
fn is_timestamp(word: &str) -> bool {
    word.len() >= 20
        && word.starts_with(|c: char| c.is_ascii_digit())
        && word.contains('T')
        && word.ends_with('Z')
}

fn opt_millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), millis)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_are_counted_once() {
        let lines = [
            "2026-11-21T07:24:13.318746Z  WARN $disconnect failed connection_id=dn42m7MxJ5GuWPY= function=chat answer=Throttled",
            "something else",
            "2026-11-21T07:24:13.318749Z  WARN $disconnect failed connection_id=uuP2pU23A30BaTs= function=chat answer=Throttled",
        ]
        .map(String::from);
        assert_eq!(
            collapse(&lines),
            [
                "2 x WARN $disconnect failed function=chat answer=Throttled",
                "something else"
            ]
        );
    }
}

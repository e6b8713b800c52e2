//! The adapter bench's results table: plain text with a stable layout, meant to be committed as
//! `bench/results/adapter.txt` and compared in diffs.

use std::fmt;
use std::time::Duration;

use crate::adapter_config::{ECHO, WEB, WEB_STREAM};
use crate::adapter_measure::{CpuShare, GREETING, Measured, PATH, Plan, Timed};
use crate::table::{self, Machine, mib, verdict};
use crate::tree::Usage;

/// What the adapter path may add to a warm request's p50 over the same request straight to the
/// app (issue #5).
const ADDED_TARGET: Duration = Duration::from_micros(150);
/// Width of the row labels.
const LABEL: usize = 42;

/// The run and where it ran.
#[derive(Debug)]
pub struct Results {
    pub machine: Machine,
    pub plan: Plan,
    pub measured: Measured,
}

impl fmt::Display for Results {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = "coldstart adapter benchmark";
        self.machine.header(f, title, self.plan.quick, &setup())?;
        self.latency(f)?;
        self.added(f)?;
        self.cpu(f)?;
        table::sizes(f, LABEL, &self.measured.sizes)?;
        self.memory(f)?;
        self.notes(f)
    }
}

impl Results {
    fn latency(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = &self.plan.interleaved;
        let l = &self.measured.latencies;
        writeln!(f)?;
        writeln!(
            f,
            "Warm requests: the web app (examples/web) straight and behind coldstart-adapter, and \
             the echo function, all up at once (us)"
        )?;
        writeln!(
            f,
            "  One keep-alive connection each. {} warm-up requests each, then {} rounds; a round \
             sends a block of 1 + {}",
            plan.warmup, plan.rounds, plan.block
        )?;
        writeln!(
            f,
            "  sequential requests to every target in turn, the order rotated by one every round. \
             Within a block the"
        )?;
        writeln!(
            f,
            "  sandbox stays thawed (coldstart freezes it after 20 ms idle); the block's first \
             request thaws it and is"
        )?;
        writeln!(
            f,
            "  discarded (its p50 under `1st p50`). {} measured per target; every answer checked \
             once before and once",
            plan.rounds * plan.block
        )?;
        writeln!(
            f,
            "  after the rounds (the greeting, or for echo the event with rawPath {PATH}); \
             `1st req ms` is the very"
        )?;
        writeln!(
            f,
            "  first request, which starts the sandbox (one sample, in ms)."
        )?;
        let rows = [&l.direct, &l.buffered, &l.streaming, &l.echo].map(|row| {
            (
                &row.latency,
                format!("{:.2}", row.first_request.as_secs_f64() * 1e3),
            )
        });
        table::latencies(f, LABEL, "1st req ms", rows)
    }

    fn added(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.measured.latencies;
        let p50 = |row: &Timed| row.latency.summary.p50;
        let direct = p50(&l.direct);
        writeln!(f)?;
        writeln!(
            f,
            "Added latency: p50 through the Function URL and the adapter - p50 straight to the \
             app (us)"
        )?;
        for (door, row) in [("BUFFERED", &l.buffered), ("RESPONSE_STREAM", &l.streaming)] {
            let added = signed_micros(p50(row), direct);
            writeln!(
                f,
                "  {door:<16} {added:>8}  target <= {} us: {}",
                ADDED_TARGET.as_micros(),
                verdict(p50(row) <= direct + ADDED_TARGET)
            )?;
        }
        writeln!(
            f,
            "  The BUFFERED figure, split at the echo function's p50:"
        )?;
        writeln!(
            f,
            "  {:<62} {:>8}",
            "emulator: Function URL -> plain Rust function (echo - direct)",
            signed_micros(p50(&l.echo), direct)
        )?;
        writeln!(
            f,
            "  {:<62} {:>8}",
            "adapter: its hop to the app and back (BUFFERED - echo)",
            signed_micros(p50(&l.buffered), p50(&l.echo))
        )
    }

    fn cpu(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        let plan = &self.plan;
        writeln!(
            f,
            "CPU time per request, summed over each process's threads from \
             /proc/PID/task/*/schedstat (us)"
        )?;
        writeln!(
            f,
            "  After the rounds: {} rounds in which every target in turn gets one request that \
             thaws its sandbox, then",
            plan.cpu_rounds
        )?;
        writeln!(
            f,
            "  a block of {} counted sequential requests while the others idle, so each path's \
             processes are that path's;",
            plan.cpu_block
        )?;
        writeln!(
            f,
            "  {} per target. client: this bench; up: coldstart up. wall - CPU: time nobody on the \
             path ran (wake-ups),",
            plan.cpu_rounds * plan.cpu_block
        )?;
        writeln!(
            f,
            "  negative when two processes ran at once. switches: context switches per request, \
             every process together."
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
            "", "wall", "client", "up", "adapter", "app/fn", "CPU", "wall-CPU", "switches"
        )?;
        for row in &self.measured.cpu {
            cpu_row(f, row)?;
        }
        Ok(())
    }

    fn memory(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests = self.plan.requests_between_readings();
        writeln!(f)?;
        writeln!(
            f,
            "Resident memory after the rounds, from /proc/PID/status (MiB): VmRSS now, VmHWM the \
             peak since start,"
        )?;
        writeln!(
            f,
            "  RssAnon the process's own pages (VmRSS less the binary's and libraries' file \
             pages); growth: what RssAnon"
        )?;
        writeln!(
            f,
            "  gained from the first request to after the rounds, over the {requests} requests \
             between, in bytes per request"
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>8} {:>8} {:>8} {:>8}",
            "", "VmRSS", "VmHWM", "RssAnon", "growth"
        )?;
        for row in &self.measured.memory {
            let growth = (row.anon as f64 - row.anon_before as f64) / requests.max(1) as f64;
            writeln!(
                f,
                "{:<LABEL$} {:>8.2} {:>8.2} {:>8.2} {growth:>8.1}",
                row.label,
                mib(row.rss),
                mib(row.peak),
                mib(row.anon)
            )?;
        }
        Ok(())
    }

    /// What the processes printed on stderr, if anything.
    fn notes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = "coldstart up's and the web app's stderr, cleanup";
        table::notes(f, what, &self.measured.notes)
    }
}

/// The header's rows of this bench: the request, `up`, and the functions it serves.
fn setup() -> Vec<(&'static str, String)> {
    let request = format!(
        "GET {PATH} -> {}-byte JSON, HTTP/1.1 keep-alive, TCP_NODELAY, loopback",
        GREETING.len()
    );
    let up = "coldstart up --listen 127.0.0.1:0 --config TEMP (no build key: nothing builds; \
              freezing on, the default)";
    let functions = [
        (
            WEB,
            "web + coldstart-adapter (extension), AWS_LWA_INVOKE_MODE=buffered, BUFFERED URL",
        ),
        (
            WEB_STREAM,
            "web + coldstart-adapter (extension), AWS_LWA_INVOKE_MODE=response_stream, \
             RESPONSE_STREAM URL",
        ),
        (ECHO, "echo (coldstart-runtime), BUFFERED URL"),
    ];
    let mut rows = vec![("request", request), ("up", up.to_owned())];
    for (function, what) in functions {
        rows.push(("", format!("{function:<11} {what}; concurrency = 1")));
    }
    rows
}

/// One row of the CPU table: every figure per request.
fn cpu_row(f: &mut fmt::Formatter<'_>, row: &CpuShare) -> fmt::Result {
    let n = row.requests.max(1) as f64;
    let us = |ns: u64| ns as f64 / 1e3 / n;
    let used = [
        Some(row.client),
        Some(row.coldstart),
        row.adapter,
        Some(row.function),
    ];
    let cpu_ns: u64 = used.iter().flatten().map(|u: &Usage| u.cpu_ns).sum();
    let switches: u64 = used.iter().flatten().map(|u: &Usage| u.switches).sum();
    let wall = row.wall.as_secs_f64() * 1e6 / n;
    let adapter = row
        .adapter
        .map_or_else(|| "-".to_owned(), |u| format!("{:.1}", us(u.cpu_ns)));
    writeln!(
        f,
        "{:<LABEL$} {wall:>7.1} {:>7.1} {:>7.1} {adapter:>7} {:>7.1} {:>7.1} {:>8.1} {:>8.1}",
        row.label,
        us(row.client.cpu_ns),
        us(row.coldstart.cpu_ns),
        us(row.function.cpu_ns),
        us(cpu_ns),
        wall - us(cpu_ns),
        switches as f64 / n
    )
}

/// `a - b` in microseconds with one decimal and a sign.
fn signed_micros(a: Duration, b: Duration) -> String {
    format!("{:+.1}", (a.as_secs_f64() - b.as_secs_f64()) * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_carry_their_sign() {
        let us = Duration::from_micros;
        assert_eq!(signed_micros(us(250), us(100)), "+150.0");
        assert_eq!(signed_micros(us(100), us(250)), "-150.0");
    }
}

//! The adapter bench's results table: plain text with a stable layout, meant to be committed as
//! `bench/results/adapter.txt` and compared in diffs.

use std::fmt;
use std::process::Command;
use std::time::Duration;

use crate::adapter_config::{ECHO, WEB, WEB_STREAM};
use crate::adapter_measure::{CpuShare, GREETING, Latency, Measured, PATH, Plan};
use crate::adapter_tree::Usage;
use crate::stats::micros;

/// What the adapter path may add to a warm request's p50 over the same request straight to the
/// app (issue #5).
const ADDED_TARGET: Duration = Duration::from_micros(150);
/// Width of the row labels.
const LABEL: usize = 42;

/// Where and with what the figures were measured.
#[derive(Debug)]
pub struct Machine {
    date: String,
    nproc: String,
    cpu: String,
    rustc: String,
}

impl Machine {
    /// Reads the date, CPU count and model, and the `rustc` on `PATH` (the one that built us when
    /// run through `bench/adapter.sh`).
    pub fn detect() -> Self {
        Self {
            date: first_line(&["date", "-u", "+%Y-%m-%d %H:%M:%S UTC"]),
            nproc: std::thread::available_parallelism()
                .map_or_else(|_| "unknown".into(), |n| n.to_string()),
            cpu: cpu_model(),
            rustc: first_line(&["rustc", "--version"]),
        }
    }
}

/// The run and where it ran.
#[derive(Debug)]
pub struct Results {
    pub machine: Machine,
    pub plan: Plan,
    pub measured: Measured,
}

impl fmt::Display for Results {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.header(f)?;
        self.latency(f)?;
        self.added(f)?;
        self.cpu(f)?;
        self.sizes(f)?;
        self.memory(f)?;
        self.notes(f)
    }
}

impl Results {
    fn header(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(f, "coldstart adapter benchmark")?;
        writeln!(f, "===========================")?;
        writeln!(f, "date     {}", m.date)?;
        writeln!(f, "nproc    {}", m.nproc)?;
        writeln!(f, "cpu      {}", m.cpu)?;
        writeln!(f, "rustc    {}", m.rustc)?;
        let mode = if self.plan.quick {
            "--quick (every count cut by 10x: a smoke test, not a result)"
        } else {
            "full"
        };
        writeln!(f, "mode     {mode}")?;
        writeln!(
            f,
            "request  GET {PATH} -> {}-byte JSON, HTTP/1.1 keep-alive, TCP_NODELAY, loopback",
            GREETING.len()
        )?;
        writeln!(
            f,
            "up       coldstart up --listen 127.0.0.1:0 --config TEMP (no build key: nothing \
             builds; freezing on, the default)"
        )?;
        for (function, what) in [
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
        ] {
            writeln!(f, "         {function:<11} {what}; concurrency = 1")?;
        }
        Ok(())
    }

    fn latency(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = &self.plan;
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
        writeln!(
            f,
            "{:<LABEL$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
            "", "p50", "p99", "mean", "1st p50", "non-200", "1st req ms"
        )?;
        for row in [&l.direct, &l.buffered, &l.streaming, &l.echo] {
            writeln!(
                f,
                "{:<LABEL$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10.2}",
                row.label,
                micros(row.summary.p50),
                micros(row.summary.p99),
                micros(row.summary.mean),
                micros(row.firsts.p50),
                failures(row),
                row.first_request.as_secs_f64() * 1e3
            )?;
        }
        Ok(())
    }

    fn added(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.measured.latencies;
        writeln!(f)?;
        writeln!(
            f,
            "Added latency: p50 through the Function URL and the adapter - p50 straight to the \
             app (us)"
        )?;
        for (door, row) in [("BUFFERED", &l.buffered), ("RESPONSE_STREAM", &l.streaming)] {
            let added = signed_micros(row.summary.p50, l.direct.summary.p50);
            writeln!(
                f,
                "  {door:<16} {added:>8}  target <= {} us: {}",
                ADDED_TARGET.as_micros(),
                verdict(row.summary.p50 <= l.direct.summary.p50 + ADDED_TARGET)
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
            signed_micros(l.echo.summary.p50, l.direct.summary.p50)
        )?;
        writeln!(
            f,
            "  {:<62} {:>8}",
            "adapter: its hop to the app and back (BUFFERED - echo)",
            signed_micros(l.buffered.summary.p50, l.echo.summary.p50)
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

    fn sizes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(f, "Binary size (release profile)")?;
        writeln!(f, "{:<LABEL$} {:>10} {:>8}", "", "bytes", "MiB")?;
        for size in &self.measured.sizes {
            writeln!(
                f,
                "{:<LABEL$} {:>10} {:>8.2}",
                size.label,
                size.bytes,
                mib(size.bytes)
            )?;
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
        if self.measured.notes.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "Notes (coldstart up's and the web app's stderr, cleanup)"
        )?;
        for note in &self.measured.notes {
            writeln!(f, "  {note}")?;
        }
        Ok(())
    }
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

/// `3 (502)`: a count with the status of the last one, when there were any.
fn failures(row: &Latency) -> String {
    match row.failure_status {
        Some(status) if row.failures > 0 => format!("{} ({})", row.failures, status.as_u16()),
        _ => row.failures.to_string(),
    }
}

/// `a - b` in microseconds with one decimal and a sign.
fn signed_micros(a: Duration, b: Duration) -> String {
    format!("{:+.1}", (a.as_secs_f64() - b.as_secs_f64()) * 1e6)
}

/// Bytes in MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The first line a command prints, or `unknown`.
fn first_line(argv: &[&str]) -> String {
    let Some((program, args)) = argv.split_first() else {
        return "unknown".into();
    };
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The `model name` of the first CPU in `/proc/cpuinfo`.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.strip_prefix("model name"))
        .find_map(|rest| rest.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_owned())
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

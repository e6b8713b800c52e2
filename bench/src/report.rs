//! The invoke bench's results table: plain text with a stable layout, meant to be committed as
//! `bench/results/invoke.txt` and compared in diffs.

use std::fmt;
use std::time::Duration;

use crate::client::{Latency, PAYLOAD_LEN};
use crate::measure::{
    Plan, Startup, Streaming, Throughput, UpToReady, WarmFunctionUrl, WarmInvokes, ratio,
};
use crate::peer::{CargoLambda, Peer};
use crate::stats::{micros, millis};
use crate::stream::STREAM_BYTES;
use crate::table::{self, Machine, Size, failures, mb, verdict};

/// Warm invoke p50 of coldstart with our runtime: at most this many times the floor's.
const FLOOR_RATIO_TARGET: f64 = 2.5;
/// cargo-lambda's `watch` emulator on this machine with 8 clients (the issue author's figure).
const CARGO_LAMBDA_RATE: f64 = 3_500.0;
/// Throughput target as a multiple of cargo-lambda's: [`CARGO_LAMBDA_RATE`], and the rate
/// measured in the same run.
const RATE_TARGET_FACTOR: f64 = 5.0;
/// `coldstart up` until every endpoint has answered, median (the target; builds excluded).
const UP_READY_TARGET: Duration = Duration::from_millis(100);
/// The first invoke after `up` (it spawns the sandbox), median.
const COLD_START_TARGET: Duration = Duration::from_millis(5);
/// Warm Function URL p50: at most this many times the floor's.
const FUNCTION_URL_RATIO_TARGET: f64 = 3.0;
/// Time to first byte after the function's write, p50, through either streaming door.
const TTFB_TARGET: Duration = Duration::from_millis(1);
/// Median throughput of a 100 MiB stream through either door, in MB/s (10^6 bytes): 1 GB/s.
const STREAM_RATE_TARGET: f64 = 1_000.0;
/// How far coldstart's peak resident memory may rise during the 100 MiB transfers, in MB: a tenth
/// of the stream, so that buffering the whole answer cannot pass.
const PEAK_RISE_TARGET: f64 = 10.0;
/// Width of the row labels.
const LABEL: usize = 40;

/// Everything one run measured.
#[derive(Debug)]
pub struct Results {
    pub machine: Machine,
    pub plan: Plan,
    /// Sequential warm invokes: the floor and both runtimes.
    pub warm: WarmInvokes,
    /// Throughput with coldstart-runtime.
    pub load_ours: Throughput,
    /// Throughput with lambda_runtime.
    pub load_lr: Throughput,
    /// Throughput of lambda_runtime behind `cargo lambda watch`.
    pub load_peer: Peer<Throughput>,
    /// The `cargo lambda` the peer ran on, or why there is none.
    pub cargo_lambda: Peer<CargoLambda>,
    pub sizes: Vec<Size>,
    pub startup: Vec<Startup>,
    /// `coldstart up` → ready, and its first invoke.
    pub up: UpToReady,
    /// Sequential GETs to a Function URL of `coldstart up`, with the floor.
    pub url: WarmFunctionUrl,
    /// Response streaming through both doors of `coldstart up`.
    pub stream: Streaming,
}

impl fmt::Display for Results {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = "coldstart invoke benchmark";
        self.machine
            .header(f, title, self.plan.quick, &self.setup())?;
        self.sequential(f)?;
        self.throughput(f)?;
        table::sizes(f, LABEL, &self.sizes)?;
        self.startup(f)?;
        self.up(f)?;
        self.function_url(f)?;
        self.streaming(f)?;
        self.notes(f)
    }
}

impl Results {
    /// The header's rows of this bench: the peer and the payload.
    fn setup(&self) -> Vec<(&'static str, String)> {
        let peer = match &self.cargo_lambda {
            Peer::Measured(found) => format!("{} (cargo lambda watch)", found.version),
            Peer::Skipped(why) => format!("skipped: {why}"),
        };
        let payload =
            format!("{PAYLOAD_LEN}-byte JSON over HTTP/1.1 keep-alive, TCP_NODELAY, loopback");
        vec![("peer", peer), ("payload", payload)]
    }

    fn sequential(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warm = &self.warm;
        writeln!(f)?;
        let peer = match warm.peer {
            Peer::Measured(_) => " and cargo-lambda",
            Peer::Skipped(_) => "",
        };
        writeln!(
            f,
            "Sequential warm invokes: floor, both runtimes{peer} served at once, one keep-alive \
             connection each (us)"
        )?;
        self.rounds(f)?;
        let mut rows = vec![&warm.floor, &warm.ours.latency, &warm.lr.latency];
        if let Peer::Measured(peer) = &warm.peer {
            rows.push(&peer.latency);
        }
        latency_table(f, &rows)?;
        let ours = warm.ours.latency.summary.p50;
        let to_floor = ratio(ours, warm.floor.summary.p50);
        let to_lr = ratio(ours, warm.lr.latency.summary.p50);
        writeln!(
            f,
            "  coldstart-runtime p50 / floor p50           {to_floor:5.2}x  \
             target <= {FLOOR_RATIO_TARGET}x: {}",
            verdict(to_floor <= FLOOR_RATIO_TARGET)
        )?;
        writeln!(
            f,
            "  coldstart-runtime p50 / lambda_runtime p50  {to_lr:5.2}x  target <= 1x: {}",
            verdict(to_lr <= 1.0)
        )?;
        match &warm.peer {
            Peer::Measured(peer) => {
                let to_peer = ratio(ours, peer.latency.summary.p50);
                writeln!(
                    f,
                    "  coldstart-runtime p50 / cargo-lambda p50    {to_peer:5.2}x"
                )
            }
            Peer::Skipped(why) => writeln!(f, "  cargo-lambda skipped: {why}"),
        }
    }

    /// How the interleaved sequential measurements send their requests.
    fn rounds(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = &self.plan.interleaved;
        writeln!(
            f,
            "  {} warm-up requests each, then {} rounds; a round sends a block of 1 + {} \
             sequential requests",
            plan.warmup, plan.rounds, plan.block
        )?;
        writeln!(
            f,
            "  to every target in turn, the order rotated by one every round. The first request \
             of a block comes"
        )?;
        writeln!(
            f,
            "  after the other targets' blocks, long enough for coldstart to freeze an idle \
             sandbox (20 ms), and"
        )?;
        writeln!(
            f,
            "  thaws it: it is discarded ({} per target; its p50 under `1st p50`). {} measured \
             per target;",
            plan.rounds,
            plan.rounds * plan.block
        )?;
        writeln!(f, "  non-200 and mismatches count the discarded ones too.")
    }

    fn throughput(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = &self.plan;
        writeln!(f)?;
        writeln!(
            f,
            "Throughput: coldstart run --concurrency {} (cargo lambda watch --concurrency {}), {} \
             clients, {} invokes or {} s (after {} warm-up); only 200s count",
            plan.load_concurrency,
            plan.load_concurrency,
            plan.clients,
            plan.load_total,
            plan.load_limit.as_secs(),
            plan.load_warmup
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>9} {:>7} {:>7} {:>7} {:>10} {:>6} {:>7}",
            "", "invokes/s", "200", "429", "other", "mismatches", "broken", "seconds"
        )?;
        for row in self.load_rows() {
            let load = &row.load;
            writeln!(
                f,
                "{:<LABEL$} {:>9.0} {:>7} {:>7} {:>7} {:>10} {:>6} {:>7.2}",
                row.label,
                load.rate(),
                load.echoed,
                load.throttled,
                failures(load.failures, load.failure_status),
                load.mismatches,
                load.broken,
                load.elapsed.as_secs_f64()
            )?;
        }
        let target = CARGO_LAMBDA_RATE * RATE_TARGET_FACTOR;
        writeln!(
            f,
            "  coldstart-runtime invokes/s  target >= {target:.0} \
             ({RATE_TARGET_FACTOR}x cargo-lambda's {CARGO_LAMBDA_RATE:.0}): {}",
            verdict(self.load_ours.load.rate() >= target)
        )?;
        match &self.load_peer {
            Peer::Measured(peer) => {
                let times = self.load_ours.load.rate() / peer.load.rate();
                writeln!(
                    f,
                    "  coldstart-runtime invokes/s / cargo-lambda invokes/s  {times:5.2}x  \
                     target >= {RATE_TARGET_FACTOR}x: {}",
                    verdict(times >= RATE_TARGET_FACTOR)
                )?;
            }
            Peer::Skipped(why) => writeln!(f, "  cargo-lambda skipped: {why}")?,
        }
        for row in self.load_rows() {
            let warm = &row.warmup;
            writeln!(
                f,
                "  warm-up, {}: {} x 200, {} x 429, {} other, {} broken",
                row.label, warm.echoed, warm.throttled, warm.failures, warm.broken
            )?;
        }
        Ok(())
    }

    /// The rows of the throughput table: both runtimes, then the peer if it was measured.
    fn load_rows(&self) -> Vec<&Throughput> {
        let mut rows = vec![&self.load_ours, &self.load_lr];
        if let Peer::Measured(peer) = &self.load_peer {
            rows.push(peer);
        }
        rows
    }

    fn startup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "Spawn -> first next: {} runs each, interleaved (ms)",
            self.plan.startup_runs
        )?;
        writeln!(f, "{:<LABEL$} {:>8} {:>8}", "", "median", "p90")?;
        for row in &self.startup {
            writeln!(
                f,
                "{:<LABEL$} {:>8} {:>8}",
                row.label,
                millis(row.summary.p50),
                millis(row.summary.p90)
            )?;
        }
        Ok(())
    }

    fn up(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = &self.up;
        writeln!(f)?;
        writeln!(
            f,
            "coldstart up -> ready: {} runs after 1 unmeasured, {} with a Function URL and an \
             HTTP API, ports 0, no build (ms)",
            self.plan.up_runs, up.label
        )?;
        writeln!(f, "{:<LABEL$} {:>8} {:>8}", "", "median", "p90")?;
        for (label, summary) in [
            ("spawn -> banner read", &up.banner),
            ("`ready in` (coldstart's, whole ms)", &up.printed),
            ("spawn -> every endpoint answered", &up.ready),
            ("first invoke (sandbox spawn -> answer)", &up.first_invoke),
        ] {
            writeln!(
                f,
                "{label:<LABEL$} {:>8} {:>8}",
                millis(summary.p50),
                millis(summary.p90)
            )?;
        }
        writeln!(
            f,
            "  spawn -> every endpoint answered, median  target <= {} ms: {}",
            UP_READY_TARGET.as_millis(),
            verdict(up.ready.p50 <= UP_READY_TARGET)
        )?;
        writeln!(
            f,
            "  first invoke, median                      target <= {} ms: {}",
            COLD_START_TARGET.as_millis(),
            verdict(up.first_invoke.p50 <= COLD_START_TARGET)
        )
    }

    fn function_url(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        writeln!(f)?;
        writeln!(
            f,
            "Warm Function URL: one coldstart up; GET / over one keep-alive connection, the floor \
             answering the same GETs, any 200 right (us)"
        )?;
        self.rounds(f)?;
        latency_table(f, &[&url.floor, &url.url.latency])?;
        let to_floor = ratio(url.url.latency.summary.p50, url.floor.summary.p50);
        writeln!(
            f,
            "  Function URL p50 / floor p50  {to_floor:5.2}x  \
             target <= {FUNCTION_URL_RATIO_TARGET}x: {}",
            verdict(to_floor <= FUNCTION_URL_RATIO_TARGET)
        )
    }

    fn streaming(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (stream, plan) = (&self.stream, &self.plan);
        writeln!(f)?;
        writeln!(
            f,
            "Response streaming: time to first byte, one coldstart up serving {} through both \
             doors (us)",
            stream.label
        )?;
        writeln!(
            f,
            "  from the function's write of one chunk (the epoch ns it carries) to this client \
             decoding it; {} warm-up",
            plan.ttfb_warmup
        )?;
        writeln!(
            f,
            "  then {} requests each, alternating doors, one keep-alive connection per door",
            plan.ttfb_runs
        )?;
        writeln!(
            f,
            "{:<LABEL$} {:>8} {:>8} {:>8} {:>8}",
            "", "p50", "p99", "mean", "max"
        )?;
        for door in &stream.doors {
            let s = &door.ttfb;
            writeln!(
                f,
                "{:<LABEL$} {:>8} {:>8} {:>8} {:>8}",
                door.label,
                micros(s.p50),
                micros(s.p99),
                micros(s.mean),
                micros(s.max)
            )?;
        }
        for door in &stream.doors {
            writeln!(
                f,
                "  {:<26} p50  target <= {} us: {}",
                door.label,
                TTFB_TARGET.as_micros(),
                verdict(door.ttfb.p50 <= TTFB_TARGET)
            )?;
        }

        writeln!(f)?;
        writeln!(
            f,
            "Response streaming: a {STREAM_BYTES}-byte (100 MiB) stream in 64 KiB chunks, {} \
             warm-up then {} each, alternating doors",
            plan.transfer_warmup, plan.transfer_runs
        )?;
        writeln!(
            f,
            "  from sending the request to the end of the answer (event stream decoded, payload \
             counted); MB/s, 1 MB = 10^6 bytes"
        )?;
        writeln!(f, "{:<LABEL$} {:>8} {:>8}", "", "median", "slowest")?;
        for door in &stream.doors {
            writeln!(
                f,
                "{:<LABEL$} {:>8.0} {:>8.0}",
                door.label,
                door.median_rate(),
                door.slowest_rate()
            )?;
        }
        for door in &stream.doors {
            writeln!(
                f,
                "  {:<26} median  target >= {STREAM_RATE_TARGET:.0} MB/s: {}",
                door.label,
                verdict(door.median_rate() >= STREAM_RATE_TARGET)
            )?;
        }
        let memory = &stream.memory;
        let (before, peak) = (mb(memory.before), mb(memory.peak));
        let during = match memory.peak_since_start {
            None => "during the transfers",
            Some(_) => "since start-up (the reset failed, see Notes)",
        };
        writeln!(
            f,
            "  coldstart's memory (MB): VmRSS {before:.1} before the transfers, peak (VmHWM) \
             {peak:.1} {during}"
        )?;
        writeln!(
            f,
            "  peak - VmRSS before  {:.1} MB  target <= {PEAK_RISE_TARGET:.0} MB: {}",
            peak - before,
            verdict(peak - before <= PEAK_RISE_TARGET)
        )
    }

    /// What the emulator printed on stderr and why connections broke, if anything.
    fn notes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut notes = Vec::new();
        let mut rows = vec![&self.warm.ours, &self.warm.lr, &self.url.url];
        if let Peer::Measured(peer) = &self.warm.peer {
            rows.push(peer);
        }
        for row in rows {
            let label = &row.latency.label;
            notes.extend(row.notes.iter().map(|n| format!("{label}: {n}")));
        }
        notes.extend(
            self.up
                .notes
                .iter()
                .map(|n| format!("coldstart up -> ready, {n}")),
        );
        notes.extend(
            self.stream
                .notes
                .iter()
                .chain(&self.stream.memory.peak_since_start)
                .map(|n| format!("response streaming: {n}")),
        );
        for row in self.load_rows() {
            let broken = row
                .warmup
                .broken_reason
                .iter()
                .chain(&row.load.broken_reason);
            notes.extend(
                row.notes
                    .iter()
                    .chain(broken)
                    .map(|n| format!("{} (throughput): {n}", row.label)),
            );
        }
        table::notes(f, "emulator stderr, broken connections", &notes)
    }
}

/// The rows of a sequential measurement, with their header.
fn latency_table(f: &mut fmt::Formatter<'_>, rows: &[&Latency]) -> fmt::Result {
    let rows = rows.iter().map(|row| (*row, row.mismatches.to_string()));
    table::latencies(f, LABEL, "mismatches", rows)
}

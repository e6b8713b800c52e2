//! The benchmarks of coldstart against the loopback floor and its peers: one binary,
//! `coldstart-bench`, with a subcommand per scenario over one measuring core.
//!
//! Entry point: [`run`] with the scenarios asked for. Each scenario starts what it measures,
//! measures it, stops it (every process by process group, also on errors and Ctrl-C) and returns
//! a [`core::report::Report`], printed and written under `bench/results/`:
//!
//! ```no_run
//! // What `coldstart-bench --quick url` does.
//! coldstart_bench::run(&[coldstart_bench::Scenario::Url], true)?;
//! # anyhow::Ok(())
//! ```
//!
//! # Layout
//! - [`core`]: the measuring core: the HTTP client and the loopback floor, statistics, processes,
//!   coldstart with `--ready-json`, the results format.
//! - [`scenarios`]: one module per scenario.

pub mod core;
pub mod scenarios;

use scenarios::Context;

/// A scenario, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Scenario {
    /// Warm invokes and throughput vs the floor, lambda_runtime and cargo-lambda; sizes;
    /// spawn -> first next; boto3.
    Invoke,
    /// Warm Function URL GETs vs the floor.
    Url,
    /// `coldstart up` from spawn until every endpoint answered; its first invoke.
    Up,
    /// Response streaming: time to first byte, 100 MiB, memory.
    Stream,
    /// What coldstart-adapter adds to a web app's request.
    Adapter,
    /// The chat example: round trips, @connections POSTs, connections held, fan-out.
    Websocket,
    /// Reading a 1,000-resource template; `up --no-build` on the chat template.
    Template,
    /// coldstart-test in process: in-process handler invokes vs the floor; stack start -> ready.
    Harness,
    /// A Python function (managed runtime): cold start, warm invokes vs the floor.
    Managed,
    /// Warm-invoke throughput with the live dashboard open and streaming, and without.
    Dashboard,
    /// One multi-concurrent environment (8 at once) against eight single ones, echo.
    Concurrent,
    /// Messages per second through one SQS mapping (echo, moto's server), beside its ceiling.
    Sqs,
    /// A fresh clone of this repository's HEAD, from `git clone` until every example serves
    Fresh,
    /// Every scenario above, in that order.
    All,
}

impl Scenario {
    /// Every scenario `All` stands for.
    pub const EACH: [Self; 13] = [
        Self::Invoke,
        Self::Url,
        Self::Up,
        Self::Stream,
        Self::Adapter,
        Self::Websocket,
        Self::Template,
        Self::Harness,
        Self::Managed,
        Self::Dashboard,
        Self::Concurrent,
        Self::Sqs,
        Self::Fresh,
    ];

    fn run(self, cx: &Context) -> anyhow::Result<core::report::Report> {
        match self {
            Self::Invoke => scenarios::invoke::run(cx),
            Self::Url => scenarios::url::run(cx),
            Self::Up => scenarios::up::run(cx),
            Self::Stream => scenarios::stream::run(cx),
            Self::Adapter => scenarios::adapter::run(cx),
            Self::Websocket => scenarios::websocket::run(cx),
            Self::Template => scenarios::template::run(cx),
            Self::Harness => scenarios::harness::run(cx),
            Self::Managed => scenarios::managed::run(cx),
            Self::Dashboard => scenarios::dashboard::run(cx),
            Self::Concurrent => scenarios::concurrent::run(cx),
            Self::Sqs => scenarios::sqs::run(cx),
            Self::Fresh => scenarios::fresh::run(cx),
            Self::All => anyhow::bail!("`all` is not one scenario"),
        }
    }
}

/// Runs `scenarios` in turn (`All` expands to each), publishing each report; a failed scenario
/// does not stop the next. The error names every scenario that failed.
pub fn run(scenarios: &[Scenario], quick: bool) -> anyhow::Result<()> {
    // First, before any other thread exists.
    core::process::kill_children_on_interrupt()?;
    let cx = Context {
        quick,
        rt: core::http::runtime()?,
    };
    let mut failed = Vec::new();
    for &scenario in scenarios {
        let each = if scenario == Scenario::All {
            &Scenario::EACH[..]
        } else {
            &[scenario][..]
        };
        for scenario in each {
            if let Err(err) = scenario.run(&cx).and_then(|report| report.publish()) {
                eprintln!("coldstart-bench: {scenario:?} failed: {err:#}");
                failed.push(format!("{scenario:?}"));
            }
        }
    }
    anyhow::ensure!(failed.is_empty(), "failed: {}", failed.join(", "));
    Ok(())
}

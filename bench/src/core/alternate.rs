//! Closed-loop throughput runs of several targets, alternated: whatever drifts on a shared
//! machine (other load, the CPU's clock) falls on every target alike, and each target's figure
//! is its median run.

use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;

use crate::core::http::{self, Load, Target};
use crate::core::report::failures;
use crate::scenarios::Context;

/// How the runs go.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Clients sending back to back.
    pub clients: usize,
    /// Requests of each target's one warm-up run.
    pub warm_up: usize,
    /// Requests of each measured run.
    pub per_run: usize,
    /// Measured runs per target.
    pub alternations: usize,
    /// Longest a run may take.
    pub limit: Duration,
}

impl Plan {
    /// `clients` clients, a warm-up run of 2,000 requests, five runs of 20,000 (cut in quick
    /// mode), at most 30 s each.
    pub fn standard(cx: &Context, clients: usize) -> Self {
        Self {
            clients,
            warm_up: cx.cut(2_000),
            per_run: cx.cut(20_000),
            alternations: 5,
            limit: Duration::from_secs(30),
        }
    }

    /// How the runs went, for a table's title.
    pub fn about(&self) -> String {
        format!(
            "{} alternating runs of {} requests (or {} s) each; median run",
            self.alternations,
            self.per_run,
            self.limit.as_secs()
        )
    }
}

/// Runs `plan` over `targets`: a warm-up run each, then `plan.alternations` rounds of one run
/// per target in turn. `measure(i, run)` makes target `i`'s measured run by calling `run`, and
/// may take readings around it. Returns each target's runs.
pub fn runs(
    rt: &Runtime,
    targets: &[Target],
    payload: &Bytes,
    plan: &Plan,
    mut measure: impl FnMut(usize, &mut dyn FnMut() -> Load) -> Load,
) -> Vec<Vec<Load>> {
    let run = |target: &Target, total| {
        rt.block_on(http::load(
            std::slice::from_ref(target),
            payload,
            plan.clients,
            total,
            plan.limit,
        ))
    };
    for target in targets {
        run(target, plan.warm_up);
    }
    let mut runs: Vec<Vec<Load>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..plan.alternations {
        for (i, target) in targets.iter().enumerate() {
            let load = measure(i, &mut || run(target, plan.per_run));
            runs[i].push(load);
        }
    }
    runs
}

/// A target's runs as a table's cells: the median run's invokes/s, every run's, then the 429s,
/// other failures and broken connections of all runs. Returns the median too.
pub fn cells(runs: &[Load]) -> (f64, Vec<String>) {
    let mut rates: Vec<f64> = runs.iter().map(Load::rate).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or_default();
    let all: Vec<String> = runs.iter().map(|l| format!("{:.0}", l.rate())).collect();
    let throttled: usize = runs.iter().map(|l| l.throttled).sum();
    let failed: usize = runs.iter().map(|l| l.failures).sum();
    let status = runs.iter().find_map(|l| l.failure_status);
    let broken: usize = runs.iter().map(|l| l.broken).sum();
    (
        median,
        vec![
            format!("{median:.0}"),
            all.join(" "),
            throttled.to_string(),
            failures(failed, status),
            broken.to_string(),
        ],
    )
}

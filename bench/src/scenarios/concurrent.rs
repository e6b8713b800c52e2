//! `concurrent`: one multi-concurrent execution environment against eight single ones. Two
//! `coldstart run` servers of the echo function: `echo-concurrent` (coldstart-runtime's
//! concurrent mode) with `--max-concurrency 8 --concurrency 8` (one environment taking eight
//! invocations at once), and `echo` with `--concurrency 8` (up to eight environments, one
//! invocation each); closed-loop throughput runs alternate between them and the median run of
//! each is compared; then sequential warm invokes interleaved.

use coldstart_protocol::invoke;

use crate::core::alternate::{self, Plan};
use crate::core::http::{self, Target};
use crate::core::report::{Report, Table};
use crate::core::stack::{Coldstart, binary};
use crate::scenarios::{Context, invoke as invoke_scenario};

const FUNCTION: &str = "function";
/// Invocations at once: per environment on one side, environments on the other.
const N: usize = 8;
const CLIENTS: usize = 8;

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("concurrent", cx.quick);
    let coldstart = binary("coldstart")?;
    let echo = binary("echo")?;
    let echo_concurrent = binary("echo-concurrent")?;
    let payload = http::payload();
    report.setup.push((
        "servers",
        format!(
            "coldstart run --max-concurrency {N} --concurrency {N} -- echo-concurrent; \
             coldstart run --concurrency {N} -- echo"
        ),
    ));
    let path = invoke::invoke_path(FUNCTION);
    let n = N.to_string();
    let per_environment = ["--max-concurrency".as_ref(), n.as_ref()];
    let one = Coldstart::run_with(&coldstart, &echo_concurrent, Some(N), &per_environment)?;
    let eight = Coldstart::run(&coldstart, &echo, Some(N))?;
    let targets = [
        Target::echo(
            format!("one environment, {N} at once"),
            one.invoke_api()?,
            path.clone(),
        ),
        Target::echo(
            format!("{N} environments, one each"),
            eight.invoke_api()?,
            path.clone(),
        ),
    ];

    eprintln!("concurrent: throughput, alternating runs");
    let plan = Plan::standard(cx, CLIENTS);
    let runs = alternate::runs(&cx.rt, &targets, &payload, &plan, |_, run| run());

    eprintln!("concurrent: sequential warm invokes, interleaved");
    let rounds = invoke_scenario::rounds(cx);
    let sequential = cx.rt.block_on(http::sequential(&targets, &payload, rounds));
    report.note("coldstart run --max-concurrency", one.stop()?);
    report.note("coldstart run", eight.stop()?);

    let title = format!(
        "Throughput: {CLIENTS} clients back to back, {}",
        plan.about()
    );
    let mut table = Table::new(
        title,
        &["invokes/s", "runs (invokes/s)", "429", "other", "broken"],
    );
    let mut medians = [0.0f64; 2];
    for (i, target) in targets.iter().enumerate() {
        let (median, cells) = alternate::cells(&runs[i]);
        medians[i] = median;
        table.row(target.label.clone(), cells);
    }
    table.line(format!(
        "one multi-concurrent environment: {:.2}x the throughput of {N} single ones",
        medians[0] / medians[1].max(1e-9)
    ));
    report.tables.push(table);

    let rows = sequential?;
    let title = "Sequential warm invokes, one keep-alive connection each (us)";
    report.tables.push(invoke_scenario::rounds_about(
        Table::latency(title, &[&rows[0], &rows[1]], Some(&rows[1])),
        rounds,
    ));
    Ok(report)
}

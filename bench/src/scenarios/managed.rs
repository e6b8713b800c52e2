//! `managed`: a hello-world Python function (`runtime = "python3.N"` in a `coldstart.toml`, the
//! machine's Python with `awslambdaric`) under `coldstart up`: its cold start (the first invoke
//! after `up` is ready: the sandbox's interpreter starts, imports the runtime client and the
//! handler, answers) and its warm invokes interleaved with the loopback floor.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;

use crate::core::http::{self, Floor, Target};
use crate::core::report::{Report, Table, ratio};
use crate::core::stack::{Coldstart, ConfigDir, binary};
use crate::core::stats::millis;
use crate::scenarios::{Context, invoke};

/// Goal (issue 19): cold start to first answer of a hello-world Python function, median.
const PYTHON_COLD_GOAL: Duration = Duration::from_millis(150);

/// The function's name in the config.
const FUNCTION: &str = "hello";

const APP: &str =
    "def handler(event, context):\n    return {\"hello\": event.get(\"name\", \"world\")}\n";

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("managed", cx.quick);
    let coldstart = binary("coldstart")?;
    let python = coldstart_stack::managed::find_python(13).context("no Python 3 installed")?;
    let runtime = format!("python3.{}", python.minor);
    let config = ConfigDir::write(
        "managed",
        &format!("[functions.{FUNCTION}]\nruntime = \"{runtime}\"\nhandler = \"app.handler\"\n"),
    )?;
    std::fs::write(config.dir.join("app.py"), APP)?;
    report.setup.push((
        "python",
        format!(
            "{runtime} ({}), awslambdaric from coldstart's cache",
            python.program.display()
        ),
    ));
    let payload = Bytes::from_static(br#"{"name":"bench"}"#);
    let path = coldstart_protocol::invoke::invoke_path(FUNCTION);

    // Cold starts: a fresh `up` each, its first invoke timed.
    let runs = cx.cut(20);
    eprintln!("managed: {runs} Python cold starts after 1 unmeasured");
    let cold = |report: &mut Report| -> anyhow::Result<Duration> {
        let up = Coldstart::up(&coldstart, &[], &config.config)?;
        let target = Target::post("python", up.invoke_api()?, path.clone());
        let first = cx.rt.block_on(http::first_answer(&target, &payload));
        report.note("coldstart up", up.stop()?);
        first
    };
    cold(&mut report).context("the unmeasured cold start")?;
    let mut samples = Vec::with_capacity(runs);
    for n in 1..=runs {
        samples.push([cold(&mut report).with_context(|| format!("cold start {n}"))?]);
    }
    let mut table = Table::new(
        format!("Python cold start: {runs} fresh `up`s after 1 unmeasured (ms)"),
        &["median", "p90"],
    )
    .about("from sending the first invoke (the sandbox is not started yet) to the end of its answer:")
    .about("the interpreter starts, imports awslambdaric and the handler, answers over the Runtime API.");
    let [median] = table.median_rows(["first invoke (cold start)"], &samples)?;
    table.goal(
        "Python cold start, median",
        millis(median),
        "<= 150 ms",
        median <= PYTHON_COLD_GOAL,
    );
    report.tables.push(table);

    // Warm invokes, interleaved with the floor.
    eprintln!("managed: warm Python invokes and the floor, interleaved");
    let floor = Floor::start()?;
    let up = Coldstart::up(&coldstart, &[], &config.config)?;
    let targets = [
        Target::post(Floor::LABEL, floor.addr, "/"),
        Target::post(format!("Python ({runtime}) hello"), up.invoke_api()?, path),
    ];
    let rounds = invoke::rounds(cx);
    let measured = cx.rt.block_on(http::sequential(&targets, &payload, rounds));
    report.note("coldstart up", up.stop()?);
    let rows = measured?;
    let mut table = invoke::rounds_about(
        Table::latency(
            "Warm invoke of a Python hello world over one keep-alive connection (us)",
            &[&rows[0], &rows[1]],
            Some(&rows[0]),
        ),
        rounds,
    );
    table.line(format!(
        "Python p50 / floor p50: {:.2}x",
        ratio(rows[1].summary.p50, rows[0].summary.p50)
    ));
    report.tables.push(table);
    Ok(report)
}

//! `managed`: hello-world Python and Node.js functions (`runtime = "python3.N"` /
//! `"nodejsN.x"` in a `coldstart.toml`, the machine's interpreters with AWS's runtime interface
//! clients from coldstart's cache) under `coldstart up`: each one's cold start (the first invoke
//! after `up` is ready: the interpreter starts, loads the runtime client and the handler,
//! answers) and their warm invokes interleaved with the loopback floor. A language whose
//! interpreter is missing is a `skipped` line.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;

use crate::core::http::{self, Floor, Target};
use crate::core::report::{Report, Table, ratio};
use crate::core::stack::{Coldstart, ConfigDir, binary};
use crate::core::stats::millis;
use crate::scenarios::{Context, invoke};

/// One hello-world function of a managed runtime.
struct Language {
    /// The function's name in the config, and the rows' label.
    name: &'static str,
    /// Its `runtime`.
    runtime: String,
    /// Its `handler`.
    handler: &'static str,
    /// Its one file.
    file: &'static str,
    code: &'static str,
    /// Goal (issue 19): cold start to first answer, median.
    goal: Duration,
}

const PYTHON_APP: &str =
    "def handler(event, context):\n    return {\"hello\": event.get(\"name\", \"world\")}\n";

const NODE_APP: &str = "exports.handler = async (event) => ({ hello: event.name ?? \"world\" });\n";

/// The languages this machine runs, and a line for each it does not.
fn languages() -> (Vec<Language>, Vec<String>) {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    match coldstart_stack::managed::find_python(13) {
        Some(python) => found.push(Language {
            name: "python",
            runtime: format!("python3.{}", python.minor),
            handler: "app.handler",
            file: "app.py",
            code: PYTHON_APP,
            goal: Duration::from_millis(150),
        }),
        None => skipped.push("python: no Python 3 installed".to_owned()),
    }
    match coldstart_stack::managed::node_for(20) {
        Ok((node, _)) => found.push(Language {
            name: "node",
            runtime: format!("nodejs{}.x", node.major),
            handler: "index.handler",
            file: "index.js",
            code: NODE_APP,
            goal: Duration::from_millis(250),
        }),
        Err(why) => skipped.push(format!("node: {why}")),
    }
    (found, skipped)
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("managed", cx.quick);
    let coldstart = binary("coldstart")?;
    let (languages, skipped) = languages();
    anyhow::ensure!(!languages.is_empty(), "{}", skipped.join("; "));
    let mut toml = String::new();
    for l in &languages {
        toml.push_str(&format!(
            "[functions.{}]\nruntime = \"{}\"\nhandler = \"{}\"\ncode = \"{}\"\n",
            l.name, l.runtime, l.handler, l.name
        ));
    }
    let config = ConfigDir::write("managed", &toml)?;
    for l in &languages {
        let dir = config.dir.join(l.name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(l.file), l.code)?;
        report.setup.push((
            "runtime",
            format!(
                "{}: the machine's interpreter, AWS's runtime client from coldstart's cache",
                l.runtime
            ),
        ));
    }
    for line in &skipped {
        report.note("skipped", vec![line.clone()]);
    }
    let payload = Bytes::from_static(br#"{"name":"bench"}"#);
    let path = |l: &Language| coldstart_protocol::invoke::invoke_path(l.name);

    // Cold starts: a fresh `up` each; the first invoke of every function is timed, one after
    // the other (each has its own sandbox).
    let runs = cx.cut(20);
    eprintln!("managed: {runs} cold starts per language after 1 unmeasured");
    let cold = |report: &mut Report| -> anyhow::Result<Vec<Duration>> {
        let up = Coldstart::up(&coldstart, &[], &config.config)?;
        let firsts = languages
            .iter()
            .map(|l| {
                let target = Target::post(l.name, up.invoke_api()?, path(l));
                cx.rt.block_on(http::first_answer(&target, &payload))
            })
            .collect::<anyhow::Result<Vec<_>>>();
        report.note("coldstart up", up.stop()?);
        firsts
    };
    cold(&mut report).context("the unmeasured cold start")?;
    let mut samples = Vec::with_capacity(runs);
    for n in 1..=runs {
        samples.push(cold(&mut report).with_context(|| format!("cold start {n}"))?);
    }
    let mut table = Table::new(
        format!("Cold start: {runs} fresh `up`s after 1 unmeasured (ms)"),
        &["median", "p90"],
    )
    .about("from sending the first invoke (the sandbox is not started yet) to the end of its answer:")
    .about("the interpreter starts, loads the runtime client and the handler, answers over the Runtime API.");
    for (i, l) in languages.iter().enumerate() {
        let runs: Vec<[Duration; 1]> = samples.iter().map(|run| [run[i]]).collect();
        let label = format!("{} ({}) first invoke", l.name, l.runtime);
        let [median] = table.median_rows([label.as_str()], &runs)?;
        table.goal(
            &format!("{} cold start, median", l.runtime),
            millis(median),
            &format!("<= {} ms", l.goal.as_millis()),
            median <= l.goal,
        );
    }
    report.tables.push(table);

    // Warm invokes, interleaved with the floor.
    eprintln!("managed: warm invokes and the floor, interleaved");
    let floor = Floor::start()?;
    let up = Coldstart::up(&coldstart, &[], &config.config)?;
    let mut targets = vec![Target::post(Floor::LABEL, floor.addr, "/")];
    for l in &languages {
        targets.push(Target::post(
            format!("{} ({}) hello", l.name, l.runtime),
            up.invoke_api()?,
            path(l),
        ));
    }
    let rounds = invoke::rounds(cx);
    let measured = cx.rt.block_on(http::sequential(&targets, &payload, rounds));
    report.note("coldstart up", up.stop()?);
    let rows = measured?;
    let mut table = invoke::rounds_about(
        Table::latency(
            "Warm invoke of a hello world over one keep-alive connection (us)",
            &rows.iter().collect::<Vec<_>>(),
            Some(&rows[0]),
        ),
        rounds,
    );
    for (l, row) in languages.iter().zip(&rows[1..]) {
        table.line(format!(
            "{} p50 / floor p50: {:.2}x",
            l.runtime,
            ratio(row.summary.p50, rows[0].summary.p50)
        ));
    }
    report.tables.push(table);
    Ok(report)
}

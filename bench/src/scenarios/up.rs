//! `up`: `coldstart up` from spawn until every endpoint answered one request, with no build: an
//! echo function with a Function URL and an HTTP API on ports 0. Its first invoke is the cold
//! start.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;

use crate::core::http::{self, Target};
use crate::core::report::{Report, Table};
use crate::core::stack::{Coldstart, ConfigDir, binary, toml_path};
use crate::core::stats::millis;
use crate::scenarios::Context;

/// The function of [`echo_config`].
pub const FUNCTION: &str = "echo";
/// Goals: spawn → every endpoint answered, and the first invoke, medians.
const READY_GOAL: Duration = Duration::from_millis(100);
const COLD_GOAL: Duration = Duration::from_millis(5);

/// `bootstrap` as [`FUNCTION`] with a Function URL, and an HTTP API whose `$default` route is
/// it; every port 0 and no `build` key, so nothing builds.
pub fn echo_config(bootstrap: &Path) -> anyhow::Result<String> {
    Ok(format!(
        "[functions.{FUNCTION}]\nbootstrap = {}\nurl = {{ port = 0 }}\n\n\
         [http_apis.api]\nport = 0\nroutes = {{ \"$default\" = \"{FUNCTION}\" }}\n",
        toml_path(bootstrap)?
    ))
}

/// One run's figures: spawn → ready line, `ready in` (coldstart's own), spawn → every endpoint
/// answered, the first invoke.
type Run = [Duration; 4];

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("up", cx.quick);
    let coldstart = binary("coldstart")?;
    let config = ConfigDir::write("up", &echo_config(&binary("echo")?)?)?;
    let runs = cx.cut(20);
    eprintln!("up: {runs} runs after 1 unmeasured");
    once(cx, &coldstart, &config, &mut report).context("the unmeasured run")?;
    let mut samples: Vec<Run> = Vec::with_capacity(runs);
    for n in 1..=runs {
        samples
            .push(once(cx, &coldstart, &config, &mut report).with_context(|| format!("run {n}"))?);
    }
    let title = format!(
        "coldstart up -> ready: {runs} runs after 1 unmeasured; echo with a Function URL and an \
         HTTP API, ports 0, no build (ms)"
    );
    let mut table = Table::new(title, &["median", "p90"])
        .about("each endpoint gets one request on a new connection: the Invoke API (POST {}, echoed) first, then GET /")
        .about("to the Function URL and the HTTP API; the first invoke spawns the sandbox.");
    let labels = [
        "spawn -> --ready-json line read",
        "`ready in` (coldstart's, whole ms)",
        "spawn -> every endpoint answered",
        "first invoke (sandbox spawn -> answer)",
    ];
    let medians = table.median_rows(labels, &samples)?;
    table.goal(
        "spawn -> every endpoint answered, median",
        millis(medians[2]),
        "<= 100 ms",
        medians[2] <= READY_GOAL,
    );
    table.goal(
        "first invoke, median",
        millis(medians[3]),
        "<= 5 ms",
        medians[3] <= COLD_GOAL,
    );
    report.tables.push(table);
    Ok(report)
}

fn once(
    cx: &Context,
    coldstart: &Path,
    config: &ConfigDir,
    report: &mut Report,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let up = Coldstart::up(coldstart, &[], &config.config)?;
    let answered = cx.rt.block_on(async {
        let invoke = Target::echo(
            "the Invoke API",
            up.invoke_api()?,
            coldstart_protocol::invoke::invoke_path(FUNCTION),
        );
        let first = http::first_answer(&invoke, &Bytes::from_static(b"{}")).await?;
        for (name, kind) in [(FUNCTION, "url"), ("api", "http-api")] {
            let target = Target::get(format!("{name} {kind}"), up.endpoint(name, kind)?.addr, "/");
            http::first_answer(&target, &Bytes::new()).await?;
        }
        anyhow::Ok(first)
    });
    let ready = started.elapsed();
    let line = up.ready_at.duration_since(started);
    let printed = up.ready_in();
    let said = up.stop()?;
    let first = answered.with_context(|| said.join("\n"))?;
    report.note("coldstart up", said);
    let printed = printed.context("coldstart up printed no `ready in`")?;
    Ok([line, printed, ready, first])
}

//! `url`: warm `GET /` to an echo function's Function URL under `coldstart up`, interleaved with
//! the same GETs to the loopback floor.

use anyhow::Context as _;
use bytes::Bytes;

use crate::core::http::{self, Floor, Target};
use crate::core::report::{Report, Table, ratio};
use crate::core::stack::{Coldstart, ConfigDir, binary};
use crate::scenarios::{Context, invoke, up};

/// p50 over the floor's (issue 17).
const GOAL: f64 = 3.0;

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("url", cx.quick);
    let coldstart = binary("coldstart")?;
    let config = ConfigDir::write("url", &up::echo_config(&binary("echo")?)?)?;
    report.setup.push((
        "up",
        "coldstart up: echo (coldstart-runtime) with a BUFFERED Function URL".into(),
    ));
    eprintln!("url: warm Function URL and the floor, interleaved");
    let floor = Floor::start()?;
    let up = Coldstart::up(&coldstart, &[], &config.config)?;
    let targets = [
        Target::get(Floor::LABEL, floor.addr, "/"),
        Target::get(
            "Function URL, coldstart-runtime echo",
            up.endpoint(up::FUNCTION, "url")?.addr,
            "/",
        ),
    ];
    let rounds = invoke::rounds(cx);
    let measured = cx
        .rt
        .block_on(http::sequential(&targets, &Bytes::new(), rounds));
    report.note("coldstart up", up.stop()?);
    let rows = measured.with_context(|| format!("{:?}", report.notes))?;
    let title = "Warm Function URL: GET / over one keep-alive connection, any 200 right (us)";
    let mut table = invoke::rounds_about(
        Table::latency(title, &[&rows[0], &rows[1]], Some(&rows[0])),
        rounds,
    );
    let to_floor = ratio(rows[1].summary.p50, rows[0].summary.p50);
    table.goal(
        "Function URL p50 / floor p50",
        format!("{to_floor:.2}x"),
        &format!("<= {GOAL}x"),
        to_floor <= GOAL,
    );
    report.tables.push(table);
    Ok(report)
}

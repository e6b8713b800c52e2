//! `harness`: `coldstart-test` as users' tests run it, inside this process: warm invokes of an
//! in-process handler (`Function::handler`) interleaved with the loopback floor, and a stack's
//! start until ready for `examples/echo`'s template (no build).
//!
//! The stacks run on a runtime of their own (two worker threads, as `#[tokio::test(flavor =
//! "multi_thread", worker_threads = 2)]` gives a test), the client on the bench's one thread.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use coldstart_runtime::Context as LambdaContext;
use coldstart_test::{Endpoint, EndpointKind, Function, Stack};

use crate::core::http::{self, Floor, Target};
use crate::core::report::{Report, Table, ratio};
use crate::core::stack::{binary, repository};
use crate::core::stats::millis;
use crate::scenarios::{Context, invoke};

/// Goals (issue 14): in-process invoke p50 over the floor's; stack start → ready, median.
const INVOKE_GOAL: f64 = 2.0;
const START_GOAL: Duration = Duration::from_millis(20);

/// The path of an invocation of the one function of [`Function::handler`].
const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("harness", cx.quick);
    let stacks = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    report.setup.push((
        "stacks",
        "coldstart-test in this process, on a 2-worker tokio runtime; the client on one thread"
            .into(),
    ));
    report.tables.push(in_process_invokes(cx, &stacks)?);
    report.tables.push(stack_starts(cx, &stacks)?);
    Ok(report)
}

/// Warm invokes of an in-process JSON echo, interleaved with the floor.
fn in_process_invokes(cx: &Context, stacks: &tokio::runtime::Runtime) -> anyhow::Result<Table> {
    eprintln!("harness: in-process handler invokes and the floor, interleaved");
    let floor = Floor::start()?;
    let stack = stacks.block_on(
        Function::handler(|event: serde_json::Value, _ctx: LambdaContext| async move {
            Ok::<_, coldstart_runtime::Error>(event)
        })
        .start(),
    )?;
    let invoke_api = invoke_api(&stack)?;
    let targets = [
        Target::echo(Floor::LABEL, floor.addr, "/"),
        Target::echo(
            "in-process handler (Function::handler)",
            invoke_api,
            INVOKE_PATH,
        ),
    ];
    let rounds = invoke::rounds(cx);
    let measured = cx
        .rt
        .block_on(http::sequential(&targets, &http::payload(), rounds));
    stacks.block_on(stack.stop());
    let rows = measured?;
    let title = "Warm invoke of an in-process handler: 100-byte JSON echo over one keep-alive connection (us)";
    let mut table = invoke::rounds_about(
        Table::latency(title, &[&rows[0], &rows[1]], Some(&rows[0])),
        rounds,
    );
    let to_floor = ratio(rows[1].summary.p50, rows[0].summary.p50);
    table.goal(
        "in-process invoke p50 / floor p50",
        format!("{to_floor:.2}x"),
        &format!("<= {INVOKE_GOAL}x"),
        to_floor <= INVOKE_GOAL,
    );
    Ok(table)
}

/// `Stack::from_template(examples/echo/template.yaml)` with the release `echo` as its bootstrap
/// and no build: from the call until `start` returns (every endpoint bound and answering), then
/// until each endpoint answered a request.
fn stack_starts(cx: &Context, stacks: &tokio::runtime::Runtime) -> anyhow::Result<Table> {
    let template = repository().join("examples/echo/template.yaml");
    let echo = binary("echo")?;
    let runs = cx.cut(50);
    eprintln!("harness: {runs} stack starts after 1 unmeasured");
    let start = || {
        stacks.block_on(async {
            let began = Instant::now();
            let stack = Stack::from_template(&template)
                .bootstrap("EchoFunction", &echo)
                .build(false)
                .start()
                .await?;
            let started = began.elapsed();
            let endpoints: Vec<Endpoint> = stack.endpoints().to_vec();
            let answered = every_endpoint_answers(&endpoints)
                .await
                .map(|()| began.elapsed());
            stack.stop().await;
            anyhow::Ok([started, answered?])
        })
    };
    start().context("the unmeasured start")?;
    let mut samples = Vec::with_capacity(runs);
    for n in 1..=runs {
        samples.push(start().with_context(|| format!("start {n}"))?);
    }
    let mut table = Table::new(
        format!(
            "Stack start -> ready: examples/echo/template.yaml (Invoke API, Function URL, HTTP API), \
             no build, {runs} starts after 1 unmeasured (ms)"
        ),
        &["median", "p90"],
    )
    .about("`ready`: Builder::start returned (every listener bound); `answered`: then one GET or")
    .about("POST to each endpoint on a new connection (the Function URL's and the route's invoke the function:")
    .about("the first spawns its sandbox).");
    let labels = ["start() -> ready", "start() -> every endpoint answered"];
    let medians = table.median_rows(labels, &samples)?;
    table.goal(
        "stack start -> ready, median",
        millis(medians[0]),
        "<= 20 ms",
        medians[0] <= START_GOAL,
    );
    Ok(table)
}

/// Every endpoint answers one request: the Invoke API an echo, the others a GET.
async fn every_endpoint_answers(endpoints: &[Endpoint]) -> anyhow::Result<()> {
    for endpoint in endpoints {
        let target = match endpoint.kind {
            EndpointKind::Invoke => Target::echo(
                "invoke",
                endpoint.addr,
                "/2015-03-31/functions/EchoFunction/invocations",
            ),
            EndpointKind::HttpApi => Target::get("api", endpoint.addr, "/hello/bench"),
            _ => Target::get(endpoint.name.clone(), endpoint.addr, "/"),
        };
        http::first_answer(&target, &http::payload()).await?;
    }
    Ok(())
}

fn invoke_api(stack: &Stack) -> anyhow::Result<std::net::SocketAddr> {
    stack
        .endpoints()
        .iter()
        .find(|e| e.kind == EndpointKind::Invoke)
        .map(|e| e.addr)
        .context("no Invoke API endpoint")
}

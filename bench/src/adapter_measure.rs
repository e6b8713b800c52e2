//! The adapter bench's one run: the web app straight, and through `coldstart up`'s Function URLs
//! behind coldstart-adapter (buffered and streamed), and the plain echo function's Function URL,
//! all up at once and measured in interleaved rounds; then the memory of every process involved,
//! and the CPU time each spends per request on each path.
//!
//! Starting and stopping happen outside the client's runtime; the requests run on it (one thread,
//! driving its own sockets), as in the invoke bench.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, ensure};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;

use crate::adapter_app::DirectApp;
use crate::adapter_config::{self, Binaries, ECHO, WEB, WEB_STREAM};
use crate::client::{self, Exchange, Latency, REQUEST_LIMIT, Rounds, Sequential, Target};
use crate::process;
use crate::table::Size;
use crate::tree::{self, Usage};
use crate::up::{Door, Up};

/// The request every target gets.
pub const PATH: &str = "/hello/bench";
/// The web app's answer to [`PATH`], straight or through the adapter.
pub const GREETING: &str = r#"{"message":"Hello, bench!","name":"bench"}"#;
/// The longest one sequential run (the rounds with their warm-up, or one CPU-time block) may take;
/// a full run of the rounds takes seconds.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// The variable that names a sandbox's function, in every sandbox process's environment.
const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// How much to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Quick mode: every count cut by 10×.
    pub quick: bool,
    /// The interleaved rounds. Default: 500 warm-up requests per target, then 50 rounds of blocks
    /// of 1 + 100.
    pub interleaved: Rounds,
    /// Rounds of the CPU-time measurement; each sends one block to every target. Default: 10.
    pub cpu_rounds: usize,
    /// Sequential requests of one CPU-time block, counted (after one that thaws the sandbox, not
    /// counted). Not cut in quick mode. Default: 200.
    pub cpu_block: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            quick,
            interleaved: Rounds::new(500, 50, 100, quick),
            cpu_rounds: 10 / scale,
            cpu_block: 200,
        }
    }

    /// The requests each process serves between the two memory readings: the warm-up, the
    /// rounds and the check after them.
    pub fn requests_between_readings(&self) -> usize {
        let rounds = &self.interleaved;
        rounds.warmup + rounds.rounds * (rounds.block + 1) + 1
    }
}

/// The sequential latencies of one target, and its very first request.
#[derive(Debug)]
pub struct Timed {
    pub latency: Latency,
    /// The very first request, on a new connection, before the warm-up: for a function, it
    /// starts the sandbox (a cold start).
    pub first_request: Duration,
}

/// The four targets, measured together.
#[derive(Debug)]
pub struct Latencies {
    /// Straight to the web app.
    pub direct: Timed,
    /// Function URL (BUFFERED) → coldstart-adapter → the web app.
    pub buffered: Timed,
    /// Function URL (RESPONSE_STREAM) → coldstart-adapter (`response_stream`) → the web app.
    pub streaming: Timed,
    /// Function URL (BUFFERED) → the plain Rust echo function.
    pub echo: Timed,
}

/// The resident memory of one process after the rounds, in bytes.
#[derive(Debug)]
pub struct Resident {
    pub label: String,
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident since the process started (the rounds included).
    pub peak: u64,
    /// `RssAnon`: the resident pages that are the process's own (heap, stacks), not the
    /// binary's and libraries' file pages, which processes share.
    pub anon: u64,
    /// `RssAnon` after the first requests, before the warm-up: what the rounds added is
    /// `anon - anon_before`, over [`Plan::requests_between_readings`] requests.
    pub anon_before: u64,
}

/// What every process on one target's path used while that target alone got its CPU-time
/// blocks (see [`cpu_shares`]).
#[derive(Debug)]
pub struct CpuShare {
    pub label: &'static str,
    /// Requests counted.
    pub requests: usize,
    /// The blocks' wall time, connection set-up included.
    pub wall: Duration,
    /// The bench process (the client).
    pub client: Usage,
    /// `coldstart up`.
    pub coldstart: Usage,
    /// The adapter, on the paths through one.
    pub adapter: Option<Usage>,
    /// The web app, or the echo function.
    pub function: Usage,
}

/// Everything one run measured.
#[derive(Debug)]
pub struct Measured {
    pub latencies: Latencies,
    pub memory: Vec<Resident>,
    /// Direct, BUFFERED, RESPONSE_STREAM, echo.
    pub cpu: Vec<CpuShare>,
    pub sizes: Vec<Size>,
    /// What `coldstart up` and the web app printed on stderr (warnings, errors), and cleanup
    /// notes.
    pub notes: Vec<String>,
}

/// What a target must answer to [`PATH`].
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The web app's greeting, as JSON.
    Greeting,
    /// The echo function's answer: the Function URL event it received, as JSON.
    Event,
}

/// The run: starts the web app straight and `coldstart up` with the three functions, measures,
/// stops both (also when the measurement failed, whose error then carries what they said).
pub fn run(rt: &Runtime, plan: &Plan, bins: &Binaries) -> anyhow::Result<Measured> {
    let config = adapter_config::write_config(bins)?;
    let app = DirectApp::start(&bins.web)?;
    let up = Up::start(&bins.coldstart, &config.config)?;
    let measured = measure(rt, plan, bins, &app, &up);
    // Stopped before `?`, so a failed run still reports what they said.
    let up_said = up.stop();
    let app_said = app.stop();
    let mut notes: Vec<String> = up_said?
        .into_iter()
        .map(|line| format!("coldstart up: {line}"))
        .collect();
    notes.extend(app_said?.into_iter().map(|line| format!("web app: {line}")));
    let (latencies, memory, cpu) = measured.map_err(|err| {
        if notes.is_empty() {
            err
        } else {
            err.context(format!("the run failed (meanwhile {})", notes.join("; ")))
        }
    })?;
    let sizes = vec![
        Size::of("coldstart-adapter", &bins.adapter)?,
        Size::of("web (examples/web)", &bins.web)?,
        Size::of("echo (coldstart-runtime)", &bins.echo)?,
    ];
    Ok(Measured {
        latencies,
        memory,
        cpu,
        sizes,
        notes,
    })
}

/// The measurements on the running app and `up`.
fn measure(
    rt: &Runtime,
    plan: &Plan,
    bins: &Binaries,
    app: &DirectApp,
    up: &Up,
) -> anyhow::Result<(Latencies, Vec<Resident>, Vec<CpuShare>)> {
    let url = |function: &str, door: Door| -> anyhow::Result<Target> {
        Ok(target(up.endpoint(function, door)?.addr))
    };
    let targets = [
        target(app.addr),
        url(WEB, Door::FunctionUrl)?,
        url(WEB_STREAM, Door::StreamingFunctionUrl)?,
        url(ECHO, Door::FunctionUrl)?,
    ];
    let labels = [
        "direct to the app (PORT)",
        "Function URL BUFFERED -> adapter -> app",
        "Function URL STREAM -> adapter -> app",
        "Function URL BUFFERED -> echo function",
    ];
    let expect = [
        Expect::Greeting,
        Expect::Greeting,
        Expect::Greeting,
        Expect::Event,
    ];

    // One request each on a new connection, which also starts the sandboxes: the rounds below
    // only count statuses, so this is where the answers are checked.
    let mut first_requests = Vec::with_capacity(targets.len());
    for ((target, label), expect) in targets.iter().zip(labels).zip(expect) {
        let first = rt
            .block_on(check(target, expect))
            .with_context(|| format!("{label}: the first request"))?;
        first_requests.push(first);
    }
    let up = up.pid()?;
    // Every sandbox runs now.
    let sandboxes = sandbox_processes(up, bins)?;
    let anon_before = anon(&sandboxes, app.pid()?)?;
    let rounds = sequential(rt, &targets, plan.interleaved).context("the interleaved rounds")?;
    // And once more after the rounds, warm.
    for ((target, label), expect) in targets.iter().zip(labels).zip(expect) {
        rt.block_on(check(target, expect))
            .with_context(|| format!("{label}: the request after the rounds"))?;
    }
    let memory = memory(&sandboxes, app.pid()?, &anon_before)?;

    // Each path alone, so that what each process used is that path's.
    let find = |what: &str, function: &str| -> anyhow::Result<u32> {
        sandboxes
            .iter()
            .find(|p| p.what == what && p.function == function)
            .map(|p| p.pid)
            .with_context(|| {
                format!("found no {what} in the sandbox of {function} under coldstart up")
            })
    };
    let paths = [
        (None, app.pid()?),
        (Some(find(ADAPTER, WEB)?), find(WEB_APP, WEB)?),
        (Some(find(ADAPTER, WEB_STREAM)?), find(WEB_APP, WEB_STREAM)?),
        (None, find(ECHO_FUNCTION, ECHO)?),
    ];
    let cpu = cpu_shares(rt, plan, &targets, labels, paths, up).context("CPU time")?;

    let mut rows = rounds
        .into_iter()
        .zip(labels)
        .zip(first_requests)
        .map(|((result, label), first)| timed(label, result, first));
    let mut next = || rows.next().context("the interleaved run lost a target")?;
    let latencies = Latencies {
        direct: next()?,
        buffered: next()?,
        streaming: next()?,
        echo: next()?,
    };
    Ok((latencies, memory, cpu))
}

/// Sequential requests to `targets` in interleaved rounds ([`client::interleaved`]), within
/// [`RUN_LIMIT`].
fn sequential(rt: &Runtime, targets: &[Target], rounds: Rounds) -> anyhow::Result<Vec<Sequential>> {
    rt.block_on(async {
        tokio::time::timeout(
            RUN_LIMIT,
            client::interleaved(targets, &Bytes::new(), rounds),
        )
        .await
        .with_context(|| format!("the requests took more than {RUN_LIMIT:?}"))?
    })
}

/// The processes on one target's path besides the client and `up`: the adapter, if the path has
/// one, and the web app or echo function.
type PathPids = (Option<u32>, u32);

/// The CPU time each process on each target's path uses per request: [`Plan::cpu_rounds`]
/// rounds, in which every target in turn (the order rotated by one every round) gets one request
/// that thaws its sandbox, then a block of [`Plan::cpu_block`] sequential requests during which
/// the CPU time of the client (this process), `up`, and the path's processes is counted. Only
/// one target is busy at a time, so what each process used is that path's; the rounds spread
/// drift in the machine's speed evenly, as in the latency rounds.
fn cpu_shares(
    rt: &Runtime,
    plan: &Plan,
    targets: &[Target],
    labels: [&'static str; 4],
    paths: [PathPids; 4],
    up: u32,
) -> anyhow::Result<Vec<CpuShare>> {
    let mut shares: Vec<CpuShare> = labels
        .iter()
        .zip(paths)
        .map(|(&label, (adapter, _))| CpuShare {
            label,
            requests: 0,
            wall: Duration::ZERO,
            client: Usage::default(),
            coldstart: Usage::default(),
            adapter: adapter.map(|_| Usage::default()),
            function: Usage::default(),
        })
        .collect();
    for round in 0..plan.cpu_rounds {
        for step in 0..targets.len() {
            let i = (round + step) % targets.len();
            cpu_block(rt, plan, &targets[i], paths[i], up, &mut shares[i])
                .with_context(|| labels[i])?;
        }
    }
    Ok(shares)
}

/// One block of [`cpu_shares`], added to `share`.
fn cpu_block(
    rt: &Runtime,
    plan: &Plan,
    target: &Target,
    (adapter, function): PathPids,
    up: u32,
    share: &mut CpuShare,
) -> anyhow::Result<()> {
    let target = std::slice::from_ref(target);
    let read = || -> anyhow::Result<(Usage, Usage, Option<Usage>, Usage)> {
        Ok((
            tree::usage(std::process::id())?,
            tree::usage(up)?,
            adapter.map(tree::usage).transpose()?,
            tree::usage(function)?,
        ))
    };
    // `rounds: 1, block: n` sends 1 + n requests.
    let once = Rounds {
        warmup: 0,
        rounds: 1,
        block: 0,
    };
    let block = Rounds {
        warmup: 0,
        rounds: 1,
        block: plan.cpu_block.saturating_sub(1),
    };
    sequential(rt, target, once).context("the thawing request")?;
    let before = read()?;
    let started = Instant::now();
    let result = sequential(rt, target, block)?;
    let wall = started.elapsed();
    let after = read()?;
    let failures: usize = result.iter().map(|r| r.failures).sum();
    ensure!(failures == 0, "{failures} answers were not 200");
    share.requests += plan.cpu_block;
    share.wall += wall;
    share.client.add(after.0.since(before.0));
    share.coldstart.add(after.1.since(before.1));
    if let (Some(total), Some(after), Some(before)) = (&mut share.adapter, after.2, before.2) {
        total.add(after.since(before));
    }
    share.function.add(after.3.since(before.3));
    Ok(())
}

/// `GET PATH` to the server at `addr`; any 200 is right during the rounds.
fn target(addr: std::net::SocketAddr) -> Target {
    Target {
        addr,
        path: PATH.into(),
        exchange: Exchange::Get,
    }
}

fn timed(label: &str, result: Sequential, first_request: Duration) -> anyhow::Result<Timed> {
    Ok(Timed {
        latency: Latency::of(label, result)?,
        first_request,
    })
}

/// Sends `GET PATH` to `target` on a new connection and checks the answer against `expect`;
/// returns the round trip (from sending the request to the end of the body; the connection is
/// open before).
async fn check(target: &Target, expect: Expect) -> anyhow::Result<Duration> {
    let (mut sender, connection) = client::connect(target.addr).await?;
    // Driven by this runtime while the request below waits; ends once `sender` is dropped.
    let connection = tokio::spawn(connection);
    let request = Request::get(target.path.as_str())
        .header(header::HOST, target.addr.to_string())
        .body(Full::new(Bytes::new()))?;
    let exchange = async {
        sender.ready().await?;
        let started = Instant::now();
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        anyhow::Ok((started.elapsed(), parts, body))
    };
    let (elapsed, parts, body) = tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .with_context(|| format!("no answer within {REQUEST_LIMIT:?}"))??;
    drop(sender);
    connection
        .await
        .map_err(|err| anyhow!("the connection task failed: {err}"))?
        .context("the connection failed")?;
    let text = String::from_utf8_lossy(&body);
    ensure!(
        parts.status == StatusCode::OK,
        "answered {}: {text}",
        parts.status
    );
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    ensure!(
        content_type.is_some_and(|v| v == "application/json"),
        "content-type {content_type:?}, not application/json"
    );
    match expect {
        Expect::Greeting => ensure!(text == GREETING, "answered {text}, not {GREETING}"),
        Expect::Event => {
            let event: serde_json::Value =
                serde_json::from_slice(&body).context("the echo's answer is not JSON")?;
            ensure!(
                event["rawPath"] == PATH,
                "the echoed event's rawPath is {}, not {PATH}",
                event["rawPath"]
            );
        }
    }
    Ok(elapsed)
}

/// What a sandbox process runs, by executable.
const ADAPTER: &str = "coldstart-adapter";
const WEB_APP: &str = "web app";
const ECHO_FUNCTION: &str = "echo";

/// A process in one of `up`'s sandboxes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SandboxProcess {
    /// The function's place in [`WEB`], [`WEB_STREAM`], [`ECHO`]: the order of the table.
    rank: usize,
    /// [`ADAPTER`], [`WEB_APP`] or [`ECHO_FUNCTION`].
    what: &'static str,
    function: String,
    pid: u32,
}

/// The adapters, web apps and echo functions running under `up`, found by executable and
/// ancestry and named by their function; adapters first, then apps, then echo.
fn sandbox_processes(up: u32, bins: &Binaries) -> anyhow::Result<Vec<SandboxProcess>> {
    let order = [WEB, WEB_STREAM, ECHO];
    let mut found = Vec::new();
    for (kind, (program, what)) in [
        (&bins.adapter, ADAPTER),
        (&bins.web, WEB_APP),
        (&bins.echo, ECHO_FUNCTION),
    ]
    .into_iter()
    .enumerate()
    {
        for pid in tree::running(up, program) {
            let function = tree::env_var(pid, FUNCTION_NAME_VAR)?;
            let rank = order
                .iter()
                .position(|f| *f == function)
                .unwrap_or(order.len());
            found.push((
                kind,
                SandboxProcess {
                    rank,
                    what,
                    function,
                    pid,
                },
            ));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, process)| process).collect())
}

/// The processes whose memory is reported: every sandbox process, then the app started straight.
fn reported(sandboxes: &[SandboxProcess], direct: u32) -> Vec<(String, u32)> {
    let mut processes: Vec<(String, u32)> = sandboxes
        .iter()
        .map(|p| (format!("{}, sandbox of {}", p.what, p.function), p.pid))
        .collect();
    processes.push(("web app, started directly".into(), direct));
    processes
}

/// `RssAnon` of every reported process, by pid.
fn anon(sandboxes: &[SandboxProcess], direct: u32) -> anyhow::Result<HashMap<u32, u64>> {
    reported(sandboxes, direct)
        .into_iter()
        .map(|(label, pid)| {
            let anon = process::resident_bytes(pid, "RssAnon").with_context(|| label)?;
            Ok((pid, anon))
        })
        .collect()
}

/// The memory of every reported process now, with its `RssAnon` from `before`.
fn memory(
    sandboxes: &[SandboxProcess],
    direct: u32,
    before: &HashMap<u32, u64>,
) -> anyhow::Result<Vec<Resident>> {
    reported(sandboxes, direct)
        .into_iter()
        .map(|(label, pid)| {
            let read = |field| process::resident_bytes(pid, field).with_context(|| label.clone());
            Ok(Resident {
                rss: read("VmRSS")?,
                peak: read("VmHWM")?,
                anon: read("RssAnon")?,
                anon_before: before
                    .get(&pid)
                    .copied()
                    .with_context(|| format!("{label}: no RssAnon before the rounds"))?,
                label,
            })
        })
        .collect()
}

//! `adapter`: what coldstart-adapter adds to a warm request. The web example (axum) straight on
//! a free port, and through `coldstart up`'s Function URLs behind the adapter (buffered and
//! streamed), with a plain Rust echo function's URL and the loopback floor for context, all in
//! one interleaved run; then the CPU time per request of every process on each path, binary
//! sizes and the memory of every sandbox process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ::http::{Method, StatusCode, header};
use anyhow::{Context as _, ensure};
use bytes::Bytes;

use crate::core::http::{self, Floor, Http, Latency, Rounds, Target};
use crate::core::process::{self, Listening, STOP_GRACE, Server, Usage};
use crate::core::report::{self, Report, Table};
use crate::core::stack::{Coldstart, ConfigDir, binary, toml_path};
use crate::core::stats::millis;
use crate::scenarios::Context;

/// The request every target gets, and the web app's answer to it.
const PATH: &str = "/hello/bench";
const GREETING: &str = r#"{"message":"Hello, bench!","name":"bench"}"#;
/// The functions: the app behind the adapter, buffered and streamed, and the echo.
const FUNCTIONS: [&str; 3] = ["web", "web-stream", "echo"];
/// Added latency goal, p50 (issue 17).
const ADDED_GOAL: f64 = 150.0;
/// How long the app may take to say it listens.
const READY_LIMIT: Duration = Duration::from_secs(10);
const LABELS: [&str; 5] = [
    Floor::LABEL,
    "direct to the app (PORT)",
    "Function URL BUFFERED -> adapter -> app",
    "Function URL STREAM -> adapter -> app",
    "Function URL BUFFERED -> echo function",
];

/// The release binaries of the scenario.
struct Bins {
    coldstart: PathBuf,
    web: PathBuf,
    adapter: PathBuf,
    echo: PathBuf,
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("adapter", cx.quick);
    let bins = Bins {
        coldstart: binary("coldstart")?,
        web: binary("web")?,
        adapter: binary("coldstart-adapter")?,
        echo: binary("echo")?,
    };
    report.setup.push((
        "request",
        format!("GET {PATH} -> 42-byte JSON, HTTP/1.1 keep-alive, TCP_NODELAY, loopback"),
    ));
    report.setup.push((
        "up",
        "web (web + coldstart-adapter, buffered), web-stream (response_stream), echo; \
         BUFFERED / RESPONSE_STREAM / BUFFERED URLs, concurrency 1, freezing on"
            .into(),
    ));
    let config = ConfigDir::write("adapter", &config_toml(&bins)?)?;
    let floor = Floor::start()?;
    let [port] = process::free_ports()?;
    let mut command = Command::new(&bins.web);
    command
        .env("PORT", port.port().to_string())
        .env_remove("AWS_LWA_PORT");
    let (app, app_addr, _) = Server::start(
        "the web app",
        command,
        Listening("web: listening on http://"),
        READY_LIMIT,
    )?;
    let up = Coldstart::up(&bins.coldstart, &[], &config.config)?;
    eprintln!(
        "adapter: the app straight, behind the adapter (both doors), echo and the floor, interleaved"
    );
    let measured = measure(cx, &bins, floor.addr, (&app, app_addr), &up, &mut report);
    report.note("coldstart up", up.stop()?);
    report.note("web app", app.stop(STOP_GRACE)?);
    measured.with_context(|| format!("{:?}", report.notes))?;
    report.tables.push(report::sizes(&[
        ("coldstart-adapter", &bins.adapter),
        ("web (examples/web)", &bins.web),
        ("echo (coldstart-runtime)", &bins.echo),
    ])?);
    Ok(report)
}

/// Three functions, each with one sandbox and a Function URL on port 0; absolute paths and no
/// `build` key, so nothing builds.
fn config_toml(bins: &Bins) -> anyhow::Result<String> {
    let (web, adapter) = (toml_path(&bins.web)?, toml_path(&bins.adapter)?);
    let web_function = |name: &str, lwa: &str, url: &str| {
        format!(
            "[functions.{name}]\nbootstrap = {web}\nextensions = [{adapter}]\nconcurrency = 1\n\
             environment = {{ AWS_LWA_INVOKE_MODE = \"{lwa}\", AWS_LWA_READINESS_CHECK_PATH = \"/health\" }}\n\
             url = {{ port = 0, invoke_mode = \"{url}\" }}\n\n"
        )
    };
    Ok(format!(
        "{}{}[functions.echo]\nbootstrap = {}\nconcurrency = 1\nurl = {{ port = 0, invoke_mode = \"BUFFERED\" }}\n",
        web_function("web", "buffered", "BUFFERED"),
        web_function("web-stream", "response_stream", "RESPONSE_STREAM"),
        toml_path(&bins.echo)?
    ))
}

fn measure(
    cx: &Context,
    bins: &Bins,
    floor: std::net::SocketAddr,
    (app, app_addr): (&Server, std::net::SocketAddr),
    up: &Coldstart,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut targets = vec![
        Target::get(LABELS[0], floor, PATH),
        Target::get(LABELS[1], app_addr, PATH),
    ];
    for (function, label) in FUNCTIONS.iter().zip(&LABELS[2..]) {
        targets.push(Target::get(
            *label,
            up.endpoint(function, "url")?.addr,
            PATH,
        ));
    }
    // One request each on a new connection (it starts the sandboxes); the answers are checked here
    // and after the rounds, which count statuses only.
    let mut first = Vec::new();
    for target in &targets[1..] {
        first.push(
            cx.rt
                .block_on(check(target))
                .with_context(|| format!("{}: the first request", target.label))?,
        );
    }
    let sandboxes = sandbox_processes(up.pid()?, bins);
    let mut processes: Vec<(String, u32)> = sandboxes
        .iter()
        .map(|(what, function, pid)| (format!("{what}, sandbox of {function}"), *pid))
        .collect();
    processes.push(("web app, started directly".into(), app.pid()?));
    let anon = |pid| process::resident_bytes(pid, "RssAnon");
    let before: HashMap<u32, u64> = processes
        .iter()
        .map(|(_, pid)| Ok((*pid, anon(*pid)?)))
        .collect::<anyhow::Result<_>>()?;
    let rounds = Rounds {
        warmup: cx.cut(500),
        rounds: cx.cut(50),
        block: 100,
    };
    let rows = cx
        .rt
        .block_on(http::sequential(&targets, &Bytes::new(), rounds))
        .context("the interleaved rounds")?;
    for target in &targets[1..] {
        cx.rt
            .block_on(check(target))
            .with_context(|| format!("{}: the request after the rounds", target.label))?;
    }

    let refs: Vec<&Latency> = rows.iter().collect();
    let title = "Warm requests: the floor, the app straight and behind coldstart-adapter, the echo function, all up at once (us)";
    let mut table = Table::latency(title, &refs, Some(&rows[0]))
        .about(format!("{} warm-up requests each, then {} rounds of 1 + {} sequential requests to every target, the order rotated;", rounds.warmup, rounds.rounds, rounds.block))
        .about("a block's first request thaws the sandbox (`1st p50`); `1st req ms` below: the very first request, which starts it.");
    for (label, ms) in LABELS[1..].iter().zip(&first) {
        table.line(format!("1st req {label:<40} {} ms", millis(*ms)));
    }
    let p50 = |i: usize| rows[i].summary.p50.as_secs_f64() * 1e6;
    for (door, i) in [("BUFFERED", 2), ("STREAM", 3)] {
        let added = p50(i) - p50(1);
        table.goal(
            &format!("added latency, {door} (p50 - direct p50, us)"),
            format!("+{added:.1}"),
            "<= 150 us",
            added <= ADDED_GOAL,
        );
    }
    table.line(format!(
        "emulator: Function URL -> plain Rust function (echo - direct)  +{:.1} us",
        p50(4) - p50(1)
    ));
    table.line(format!(
        "adapter: its hop to the app and back (BUFFERED - echo)          +{:.1} us",
        p50(2) - p50(4)
    ));
    report.tables.push(table);

    let mut memory = Table::new(
        "Resident memory after the rounds (MiB); growth: RssAnon gained per request since the first one (bytes)",
        &["VmRSS", "VmHWM", "RssAnon", "growth"],
    );
    let between = rounds.warmup + rounds.rounds * (rounds.block + 1) + 1;
    for (label, pid) in &processes {
        let read = |field| process::resident_bytes(*pid, field).with_context(|| label.clone());
        let (rss, peak, now) = (read("VmRSS")?, read("VmHWM")?, read("RssAnon")?);
        let growth = (now as f64 - before[pid] as f64) / between as f64;
        let mib = |b: u64| format!("{:.2}", b as f64 / 1048576.0);
        memory.row(
            label.clone(),
            vec![mib(rss), mib(peak), mib(now), format!("{growth:.1}")],
        );
    }

    // Each path alone, so that what each process used is that path's.
    let find = |what: &str, function: &str| {
        sandboxes
            .iter()
            .find(|(w, f, _)| *w == what && f == function)
            .map(|p| p.2)
            .with_context(|| format!("no {what} in the sandbox of {function}"))
    };
    let paths = [
        (None, app.pid()?),
        (
            Some(find("coldstart-adapter", "web")?),
            find("web app", "web")?,
        ),
        (
            Some(find("coldstart-adapter", "web-stream")?),
            find("web app", "web-stream")?,
        ),
        (None, find("echo", "echo")?),
    ];
    report
        .tables
        .push(cpu_table(cx, &targets[1..], paths, up.pid()?)?);
    report.tables.push(memory);
    Ok(())
}

/// CPU time per request of every process on each path: in each of 10 rounds (1 in quick mode),
/// every target in turn gets one request that thaws its sandbox, then 200 counted sequential
/// requests while the others idle.
fn cpu_table(
    cx: &Context,
    targets: &[Target],
    paths: [(Option<u32>, u32); 4],
    up: u32,
) -> anyhow::Result<Table> {
    const BLOCK: usize = 200;
    let rounds = cx.cut(10);
    let mut sums = [[Usage::default(); 4]; 4];
    let mut walls = [Duration::ZERO; 4];
    for round in 0..rounds {
        for step in 0..targets.len() {
            let i = (round + step) % targets.len();
            let one = std::slice::from_ref(&targets[i]);
            let thaw = Rounds {
                warmup: 0,
                rounds: 1,
                block: 0,
            };
            cx.rt.block_on(http::sequential(one, &Bytes::new(), thaw))?;
            let (adapter, function) = paths[i];
            let read = || {
                [
                    Usage::of(std::process::id()),
                    Usage::of(up),
                    adapter.map(Usage::of).unwrap_or_default(),
                    Usage::of(function),
                ]
            };
            let before = read();
            let started = std::time::Instant::now();
            let block = Rounds {
                warmup: 0,
                rounds: 1,
                block: BLOCK - 1,
            };
            let rows = cx
                .rt
                .block_on(http::sequential(one, &Bytes::new(), block))?;
            walls[i] += started.elapsed();
            ensure!(
                rows[0].failures == 0,
                "{}: {} answers were not 200",
                targets[i].label,
                rows[0].failures
            );
            for (sum, (after, before)) in sums[i].iter_mut().zip(read().into_iter().zip(before)) {
                *sum = sum.plus(after.since(before));
            }
        }
    }
    let title = format!(
        "CPU time per request (us), from /proc/PID/task/*/schedstat: {rounds} rounds of {BLOCK} per path while the others idle"
    );
    let mut table = Table::new(title, &["wall", "client", "up", "adapter", "app/fn", "CPU", "wall-CPU", "switches"])
        .about("client: this bench; up: coldstart up; wall - CPU: time nobody on the path ran; switches: every process together.");
    let requests = (rounds * BLOCK) as f64;
    for i in 0..targets.len() {
        let per = |ns: u64| format!("{:.1}", ns as f64 / 1e3 / requests);
        let [client, up, adapter, function] = sums[i];
        let cpu = client.cpu_ns + up.cpu_ns + adapter.cpu_ns + function.cpu_ns;
        let wall = walls[i].as_nanos() as u64;
        let switches = client.switches + up.switches + adapter.switches + function.switches;
        table.row(
            targets[i].label.clone(),
            vec![
                per(wall),
                per(client.cpu_ns),
                per(up.cpu_ns),
                if paths[i].0.is_some() {
                    per(adapter.cpu_ns)
                } else {
                    "-".into()
                },
                per(function.cpu_ns),
                per(cpu),
                format!("{:.1}", (wall as f64 - cpu as f64) / 1e3 / requests),
                format!("{:.1}", switches as f64 / requests),
            ],
        );
    }
    Ok(table)
}

/// `GET PATH` on a new connection, checked: the greeting, or for echo the event of `PATH`;
/// returns the round trip.
async fn check(target: &Target) -> anyhow::Result<Duration> {
    let mut http = Http::connect(target.addr).await?;
    let started = std::time::Instant::now();
    let (status, headers, body) = http.send(Method::GET, PATH, Bytes::new()).await?;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&body);
    ensure!(status == StatusCode::OK, "answered {status}: {text}");
    let content_type = headers.get(header::CONTENT_TYPE);
    ensure!(
        content_type.is_some_and(|v| v == "application/json"),
        "content-type {content_type:?}"
    );
    if target.label.contains("echo") {
        let event: serde_json::Value =
            serde_json::from_slice(&body).context("the echo is not JSON")?;
        ensure!(
            event["rawPath"] == PATH,
            "the echoed event's rawPath is {}",
            event["rawPath"]
        );
    } else {
        ensure!(text == GREETING, "answered {text}, not {GREETING}");
    }
    Ok(took)
}

/// The adapters, web apps and echo functions under `up` (by executable), named by their
/// function (`AWS_LAMBDA_FUNCTION_NAME`): `(what, function, pid)` in the table's order.
fn sandbox_processes(up: u32, bins: &Bins) -> Vec<(&'static str, String, u32)> {
    let kinds: [(&Path, &str); 3] = [
        (&bins.adapter, "coldstart-adapter"),
        (&bins.web, "web app"),
        (&bins.echo, "echo"),
    ];
    let mut found = Vec::new();
    for pid in process::descendants(up) {
        let Some(exe) = process::exe(pid) else {
            continue;
        };
        let Some(kind) = kinds.iter().position(|(path, _)| *path == exe) else {
            continue;
        };
        let function = process::env_var(pid, "AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
        let rank = FUNCTIONS
            .iter()
            .position(|f| *f == function)
            .unwrap_or(FUNCTIONS.len());
        found.push((kind, rank, kinds[kind].1, function, pid));
    }
    found.sort();
    found
        .into_iter()
        .map(|(_, _, what, function, pid)| (what, function, pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_serves_three_functions_from_absolute_paths() {
        let bins = Bins {
            coldstart: "/t/coldstart".into(),
            web: "/t/web".into(),
            adapter: "/t/coldstart-adapter".into(),
            echo: "/t/echo".into(),
        };
        let toml = config_toml(&bins).expect("UTF-8 paths");
        assert!(toml.contains("[functions.web-stream]"));
        assert!(toml.contains("extensions = [\"/t/coldstart-adapter\"]"));
        assert!(toml.contains("AWS_LWA_INVOKE_MODE = \"response_stream\""));
    }
}

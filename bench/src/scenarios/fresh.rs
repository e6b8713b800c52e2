//! `fresh`: a fresh clone to serving, as a new user meets coldstart. The clock starts before
//! `git clone` of this repository's committed `HEAD` into an empty temporary folder; then
//! `cargo fetch --locked` (nothing to download when the machine's cargo cache has the crates),
//! then the README's main command, `cargo run --profile local --locked -p coldstart -- up`
//! (here with `--ready-json`, `--listen 127.0.0.1:0` and `--port-base 0` so that it never meets
//! another server's port), with an empty target folder (`CARGO_TARGET_DIR` unset). Figures: when
//! `up`'s ready line came (coldstart built and serving), and when each function of the clone's
//! `coldstart.toml` first answered an invoke with anything but 409 (`Pending`: its build is not
//! done), polled every [`POLL`] through the Invoke API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::core::http::Http;
use crate::core::process::TEMP_PREFIX;
use crate::core::report::{Report, Table};
use crate::core::stack::{Coldstart, repository};
use crate::scenarios::Context;

/// How often a function still building is asked again.
const POLL: Duration = Duration::from_millis(100);
/// The longest coldstart's own build may take, and then the functions' builds.
const LIMIT: Duration = Duration::from_secs(20 * 60);
/// Issue 17's goals: the first endpoint, and every endpoint, from `git clone`.
const FIRST_GOAL: Duration = Duration::from_secs(60);
const ALL_GOAL: Duration = Duration::from_secs(180);

/// A temporary folder, removed on drop (and by the bench's interrupt handler: [`TEMP_PREFIX`]).
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("fresh", cx.quick);
    let folder =
        Folder(std::env::temp_dir().join(format!("{TEMP_PREFIX}fresh-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&folder.0);
    let clone = folder.0.join("coldstart");
    let commit = git(&repository(), &["rev-parse", "--short", "HEAD"])?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report.note(
        "machine",
        [format!(
            "{} cores, load average at the start {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        )],
    );
    eprintln!("fresh: cloning {commit} and building from nothing (minutes)");

    let started = Instant::now();
    let mut clone_command = Command::new("git");
    clone_command
        .args(["clone", "--quiet"])
        .arg(repository())
        .arg(&clone);
    status(clone_command, "git clone")?;
    let cloned = started.elapsed();
    let mut fetch = cargo(&clone);
    fetch.args(["fetch", "--locked", "--quiet"]);
    status(fetch, "cargo fetch")?;
    let fetched = started.elapsed();

    let mut up = cargo(&clone);
    up.args([
        "run",
        "--profile",
        "local",
        "--locked",
        "-p",
        "coldstart",
        "--",
    ])
    .args([
        "up",
        "--ready-json",
        "--listen",
        "127.0.0.1:0",
        "--port-base",
        "0",
    ])
    .env("COLDSTART_LOG", "warn");
    let up = Coldstart::start_with("cargo run -- up", up, LIMIT)?;
    let serving = up.ready_at.duration_since(started);
    let functions = coldstart_stack::config::load(&clone.join("coldstart.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .functions
        .into_iter()
        .map(|f| f.config.name)
        .collect::<Vec<_>>();
    let answered = cx.rt.block_on(answers(&up, &functions, started));
    let said = up.stop()?;
    report.note("cargo and coldstart (warnings and errors)", said);
    let answered = answered?;

    let mut table = Table::new(
        format!(
            "fresh clone of {commit} -> serving: `cargo run --profile local --locked -p coldstart -- up`, empty target folder (s from the start of git clone)"
        ),
        &["s"],
    )
    .about("a function answers once its build is done: 409 (Pending) before; the Invoke API is asked every 100 ms")
    .about("`bash` (a shell script) needs no build: it answers as soon as coldstart serves")
    .about("cargo fetch downloads nothing when the machine's cargo cache has every crate");
    let secs = |d: Duration| format!("{:.1}", d.as_secs_f64());
    table.row("git clone done", vec![secs(cloned)]);
    table.row("cargo fetch done", vec![secs(fetched)]);
    table.row("coldstart built, serving (ready line)", vec![secs(serving)]);
    for (name, at) in &answered {
        table.row(format!("{name} answers"), vec![secs(*at)]);
    }
    let first = answered.iter().map(|(_, at)| *at).min().unwrap_or(serving);
    let all = answered.iter().map(|(_, at)| *at).max().unwrap_or(serving);
    table.goal(
        "first endpoint answering",
        secs(first),
        "<= 60 s",
        first <= FIRST_GOAL,
    );
    table.goal(
        "every endpoint answering",
        secs(all),
        "<= 180 s",
        all <= ALL_GOAL,
    );
    report.tables.push(table);
    Ok(report)
}

/// When each of `functions` first answered anything but 409 through `up`'s Invoke API, in the
/// order they did.
async fn answers(
    up: &Coldstart,
    functions: &[String],
    started: Instant,
) -> anyhow::Result<Vec<(String, Duration)>> {
    let invoke = up.invoke_api()?;
    let mut waiting: Vec<&String> = functions.iter().collect();
    let mut answered = Vec::new();
    while !waiting.is_empty() {
        if started.elapsed() > LIMIT {
            bail!("still building after {LIMIT:?}: {waiting:?}");
        }
        let mut still = Vec::new();
        for name in waiting {
            let path = coldstart_protocol::invoke::invoke_path(name);
            let mut http = Http::connect(invoke).await?;
            let (status, _, body) = http
                .send(Method::POST, &path, Bytes::from_static(b"{}"))
                .await?;
            match status {
                StatusCode::CONFLICT => still.push(name),
                status if status.is_success() => answered.push((name.clone(), started.elapsed())),
                status => bail!(
                    "{name} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(answered)
}

/// `cargo` in `dir`, building into `dir/target` whatever this process was told.
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    command
}

/// Runs `command` to its end; an error unless it succeeded.
fn status(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed: {status}");
    }
    Ok(())
}

/// `git ARGS` in `dir`: its standard output, trimmed.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .context("starting git")?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

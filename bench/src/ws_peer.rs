//! serverless-offline, the optional peer: the chat's echo and `whoami` (`bench/peers/
//! serverless-offline`) under `serverless offline`, measured with the same round trips and
//! `@connections` POSTs as coldstart. It never fails the bench: when it is not installed or does
//! not start, the table says it was skipped and why.
//!
//! It runs in a process group of its own (its Lambda handlers run in worker threads of the same
//! process); the group is SIGTERMed after the measurements, SIGKILLed after [`STOP_GRACE`], and
//! SIGKILLed on any early return.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::runtime::Runtime;

use crate::process::free_ports;
use crate::table::first_line;
use crate::ws_measure::{self, Ids, Plan, Target};
use crate::ws_report::{Peer, PeerRun};

/// The line serverless-offline prints once its `@connections` endpoint serves (its last).
const READY_LINE: &str = "Offline [http for websocket] listening on";
/// How long it may take to print [`READY_LINE`] (it loads the framework first).
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long it gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How many lines printed before it was ready are kept for a failure's message.
const EARLY_LINES: usize = 200;
/// How many of its error lines the table keeps.
const KEPT_NOTES: usize = 10;

/// Measures serverless-offline installed in `dir`, or says why it could not.
pub fn measure(rt: &Runtime, dir: &Path, plan: &Plan) -> Peer<PeerRun> {
    match run(rt, dir, plan) {
        Ok(run) => Peer::Measured(run),
        Err(err) => Peer::Skipped(format!("{err:#}")),
    }
}

fn run(rt: &Runtime, dir: &Path, plan: &Plan) -> anyhow::Result<PeerRun> {
    // Absolute: serverless runs from `dir`, and is given the path of its own CLI.
    let dir = &dir
        .canonicalize()
        .with_context(|| format!("{} is missing", dir.display()))?;
    let cli = dir.join("node_modules/serverless/bin/serverless.js");
    if !cli.is_file() {
        bail!(
            "{} is missing (bench/websocket.sh --with-peer runs `npm ci` there)",
            cli.display()
        );
    }
    let node = first_line(&["node", "--version"]);
    if node == "unknown" {
        bail!("`node --version` failed: Node.js is not installed");
    }
    let version = format!(
        "serverless-offline {} (serverless {}, node {node})",
        package_version(dir, "serverless-offline")?,
        package_version(dir, "serverless")?
    );
    let [http, ws, lambda] = free_ports()?;
    let mut command = Command::new("node");
    command
        .arg(&cli)
        .args(["offline", "start", "--host", "127.0.0.1"])
        .args(["--httpPort", &http.port().to_string()])
        .args(["--websocketPort", &ws.port().to_string()])
        .args(["--lambdaPort", &lambda.port().to_string()])
        .current_dir(dir)
        .env("WS_ENDPOINT", format!("http://{ws}"))
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut offline = Offline::spawn(command)?;
    offline.ready()?;

    let target = Target {
        addr: ws,
        ws_path: "/",
        connections_prefix: "",
        ids: Ids::Whoami,
    };
    eprintln!("  round trips");
    let one = rt.block_on(ws_measure::round_trip(
        &target,
        1,
        plan.rt_warmup,
        plan.rt_count,
    ))?;
    let parallel = rt.block_on(ws_measure::round_trip(
        &target,
        plan.rt_parallel,
        plan.rt_parallel_warmup,
        plan.rt_parallel_count,
    ))?;
    eprintln!("  @connections POSTs");
    let posts = rt.block_on(ws_measure::posts(&target, plan))?;
    let notes = offline.stop();
    Ok(PeerRun {
        version,
        one,
        parallel,
        posts,
        notes,
    })
}

/// The `version` of `node_modules/NAME/package.json` in `dir`.
fn package_version(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join("node_modules").join(name).join("package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    json["version"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} has no version", path.display()))
}

/// `serverless offline` in a process group of its own; its output read by two threads.
#[derive(Debug)]
struct Offline {
    /// `None` once reaped.
    child: Option<Child>,
    /// Gets a message when the ready line is read; disconnects when both pipes have ended.
    ready: mpsc::Receiver<()>,
    /// The lines that look like errors, and everything it said before it was ready (for a
    /// failure's message). The reader threads hold the other references.
    errors: Arc<Mutex<Vec<String>>>,
    early: Arc<Mutex<Vec<String>>>,
}

impl Offline {
    fn spawn(mut command: Command) -> anyhow::Result<Self> {
        let mut child = command
            .process_group(0)
            .spawn()
            .context("could not start `node` (is Node.js installed?)")?;
        let (ready_tx, ready) = mpsc::channel();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let early = Arc::new(Mutex::new(Vec::new()));
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let (ready_tx, errors, early) = (ready_tx.clone(), errors.clone(), early.clone());
            thread::spawn(move || read_output(pipe, &ready_tx, &errors, &early));
        }
        Ok(Self {
            child: Some(child),
            ready,
            errors,
            early,
        })
    }

    /// Waits up to [`READY_LIMIT`] for the ready line.
    fn ready(&mut self) -> anyhow::Result<()> {
        let why = match self.ready.recv_timeout(READY_LIMIT) {
            Ok(()) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => format!("did not serve within {READY_LIMIT:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => "exited before it served".to_owned(),
        };
        let said = self.early.lock().map(|l| l.join("\n")).unwrap_or_default();
        Err(anyhow!("serverless offline {why}; it said:\n{said}"))
    }

    /// SIGTERMs the group, SIGKILLs it after [`STOP_GRACE`]; returns the error lines it printed.
    fn stop(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(mut child) = self.child.take() {
            let group = Pid::from_raw(child.id() as i32);
            let _ = killpg(group, Signal::SIGTERM);
            // Both pipes end when the whole group has exited: that is the event waited for.
            let ended = loop {
                match self.ready.recv_timeout(STOP_GRACE) {
                    Ok(()) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break true,
                    Err(mpsc::RecvTimeoutError::Timeout) => break false,
                }
            };
            if !ended {
                notes.push(format!(
                    "did not exit within {STOP_GRACE:?} of SIGTERM; killed"
                ));
            }
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait();
        }
        let errors = self.errors.lock().map(|l| l.clone()).unwrap_or_default();
        let total = errors.len();
        notes.extend(errors.into_iter().take(KEPT_NOTES));
        if total > KEPT_NOTES {
            notes.push(format!("… and {} more such lines", total - KEPT_NOTES));
        }
        notes
    }
}

impl Drop for Offline {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// Reads one of serverless-offline's pipes to its end: signals the ready line, keeps the lines
/// that look like errors, and until ready, every line.
fn read_output(
    pipe: Box<dyn Read + Send>,
    ready: &mpsc::Sender<()>,
    errors: &Mutex<Vec<String>>,
    early: &Mutex<Vec<String>>,
) {
    let mut is_ready = false;
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if !is_ready
            && let Ok(mut early) = early.lock()
            && early.len() < EARLY_LINES
        {
            early.push(line.clone());
        }
        if line.contains(READY_LINE) {
            is_ready = true;
            let _ = ready.send(());
        }
        let lower = line.to_lowercase();
        // The AWS SDK's notice that later versions need Node 22 is not an error of the run.
        let error = (lower.contains("error") || lower.contains("exception") || line.contains('×'))
            && !line.contains("NodeVersionSupportWarning");
        if error && let Ok(mut errors) = errors.lock() {
            errors.push(line);
        }
    }
}

//! serverless-offline, the optional peer: the chat's echo and `whoami` (`bench/peers/
//! serverless-offline/handler.js`) under `serverless offline`, measured with the same round trips
//! and `@connections` POSTs as coldstart. Its handlers run in worker threads of its one process.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::runtime::Runtime;

use super::measure::{self, Ids, Plan, Posts, RoundTrip, Target};
use crate::core::process::{self, Output, STOP_GRACE, Server};
use crate::core::report::first_line;

/// How long it may take to say its `@connections` endpoint serves (it loads the framework first).
const READY_LIMIT: Duration = Duration::from_secs(60);

/// What was measured on the peer.
#[derive(Debug)]
pub struct PeerRun {
    /// `serverless-offline X (serverless Y, node Z)`.
    pub version: String,
    pub one: RoundTrip,
    pub parallel: RoundTrip,
    pub posts: Posts,
    /// What it printed that looked like an error.
    pub notes: Vec<String>,
}

/// Its ready line, and the lines that look like errors (not the AWS SDK's notice that later
/// versions need Node 22).
#[derive(Debug)]
struct Offline;

impl Output for Offline {
    type Ready = ();
    fn ready(&self, line: &str) -> Option<()> {
        line.contains("Offline [http for websocket] listening on")
            .then_some(())
    }
    fn keep(&self, line: &str) -> bool {
        let lower = line.to_lowercase();
        (lower.contains("error") || lower.contains("exception") || line.contains('×'))
            && !line.contains("NodeVersionSupportWarning")
    }
}

/// Starts serverless-offline installed in `dir` and measures it; an error says why it could not.
pub fn measure(rt: &Runtime, dir: &Path, plan: &Plan) -> anyhow::Result<PeerRun> {
    let dir = &dir.canonicalize()?;
    let cli = dir.join("node_modules/serverless/bin/serverless.js");
    if !cli.is_file() {
        bail!(
            "{} is missing (bench/run.sh --with-peer runs `npm ci`)",
            cli.display()
        );
    }
    let node = first_line(&["node", "--version"]);
    if node == "unknown" {
        bail!("`node --version` failed: Node.js is not installed");
    }
    let version = |name: &str| -> anyhow::Result<String> {
        let path = dir.join("node_modules").join(name).join("package.json");
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        json["version"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{} has no version", path.display()))
    };
    let version = format!(
        "serverless-offline {} (serverless {}, node {node})",
        version("serverless-offline")?,
        version("serverless")?
    );
    let [http, ws, lambda] = process::free_ports()?;
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
        .env("SLS_NOTIFICATIONS_MODE", "off");
    let (server, (), _) = Server::start("serverless offline", command, Offline, READY_LIMIT)?;
    let target = Target {
        addr: ws,
        ws_path: "/",
        connections_prefix: "",
        ids: Ids::Whoami,
    };
    let one = rt.block_on(measure::round_trip(
        &target,
        1,
        plan.rt_warmup,
        plan.rt_count,
    ))?;
    let parallel = rt.block_on(measure::round_trip(
        &target,
        plan.rt_parallel,
        plan.rt_parallel_warmup,
        plan.rt_parallel_count,
    ))?;
    let posts = rt.block_on(measure::posts(&target, plan))?;
    let notes = server.stop(STOP_GRACE)?;
    Ok(PeerRun {
        version,
        one,
        parallel,
        posts,
        notes,
    })
}

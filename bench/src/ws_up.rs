//! `coldstart up` serving the chat example as the WebSocket bench drives it: a `coldstart.toml` in
//! a temporary folder (its own ports, its own SQLite file), `up` with `--no-build`, its WebSocket
//! API checked in its endpoint table, the memory and CPU time it uses, and a stop that lets it
//! close every connection and run their `$disconnect`s before it would be killed.
//!
//! Apart from the invoke bench's `up` because the ports must be known before `up` starts (the
//! functions' `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` names the WebSocket port), and because
//! stopping an emulator that holds thousands of connections takes longer than the usual grace
//! period: here it is [`STOP_GRACE`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use crate::process;
use crate::tree;
use crate::up::{ConfigDir, Door, Up, temp_folder, toml_string, utf8};

/// The WebSocket API's stage (as in the repository's `coldstart.toml`).
pub const STAGE: &str = "staging";
/// How long `up` gets after SIGTERM: it closes every connection (1001) and waits for each
/// `$disconnect`, which for 10,000 connections takes seconds.
const STOP_GRACE: Duration = Duration::from_secs(120);

/// The chat example's two binaries.
#[derive(Debug, Clone)]
pub struct Chat {
    pub coldstart: PathBuf,
    pub chat: PathBuf,
    pub broadcast: PathBuf,
}

impl Chat {
    /// `coldstart`, `chat` and `broadcast` in the workspace's `target/release` (absolute paths).
    pub fn find() -> anyhow::Result<Self> {
        let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
        let release = release
            .canonicalize()
            .with_context(|| format!("{} is missing: build first", release.display()))?;
        let find = |name: &str| {
            let path = release.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(anyhow!(
                    "{} is missing: run bench/websocket.sh, which builds it",
                    path.display()
                ))
            }
        };
        Ok(Self {
            coldstart: find("coldstart")?,
            chat: find("chat")?,
            broadcast: find("broadcast")?,
        })
    }
}

/// A folder under the system's temporary folder holding a `coldstart.toml` for the chat example
/// and its SQLite file; removed on drop.
#[derive(Debug)]
pub struct ChatConfig {
    /// The folder and its `coldstart.toml`.
    pub dir: ConfigDir,
    /// The chat's connection table (`CONNECTIONS_DB`).
    pub db: PathBuf,
    /// The WebSocket API's address (`ws://ADDR/staging`, `http://ADDR/staging/@connections/…`).
    pub ws: SocketAddr,
    /// The HTTP API's address (`POST http://ADDR/broadcast`).
    pub http: SocketAddr,
}

impl ChatConfig {
    /// Writes the config: the root `coldstart.toml`'s chat entries, with absolute bootstraps, no
    /// `build` key, two free loopback ports and a SQLite file in the folder. `name` tells runs
    /// apart in the folder's name.
    pub fn write(chat: &Chat, name: &str) -> anyhow::Result<Self> {
        let dir = ConfigDir::create(temp_folder(&format!("coldstart-bench-ws-{name}")))?;
        let [ws, http] = process::free_ports()?;
        let db = dir.dir().join("connections.sqlite3");
        let environment = format!(
            "{{ AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI = {}, AWS_ACCESS_KEY_ID = \"local\", \
             AWS_SECRET_ACCESS_KEY = \"local\", CONNECTIONS_DB = {} }}",
            toml_string(&format!("http://{ws}/{STAGE}")),
            toml_string(utf8(&db)?)
        );
        let toml = format!(
            "[functions.chat]\n\
             bootstrap = {chat}\n\
             timeout = 10\n\
             environment = {environment}\n\
             \n\
             [functions.broadcast]\n\
             bootstrap = {broadcast}\n\
             timeout = 29\n\
             environment = {environment}\n\
             \n\
             [http_apis.api]\n\
             port = {http_port}\n\
             payload_version = \"2.0\"\n\
             routes = {{ \"POST /broadcast\" = \"broadcast\" }}\n\
             \n\
             [websocket_apis.chat]\n\
             port = {ws_port}\n\
             stage = \"{STAGE}\"\n\
             route_selection = \"$request.body.action\"\n\
             routes = {{ \"$connect\" = \"chat\", \"$disconnect\" = \"chat\", \
             \"$default\" = \"chat\", \"broadcast\" = \"chat\" }}\n",
            chat = toml_string(utf8(&chat.chat)?),
            broadcast = toml_string(utf8(&chat.broadcast)?),
            http_port = http.port(),
            ws_port = ws.port(),
        );
        dir.write(&toml)?;
        Ok(Self { dir, db, ws, http })
    }

    /// The connection ids the chat recorded on `channel` (its `$connect` writes the row before
    /// `up` answers the upgrade).
    pub fn connection_ids(&self, channel: &str) -> anyhow::Result<Vec<String>> {
        let db = rusqlite::Connection::open(&self.db)
            .with_context(|| format!("opening {}", self.db.display()))?;
        db.busy_timeout(Duration::from_secs(5))?;
        let mut query = db.prepare("SELECT connection_id FROM connections WHERE channel = ?1")?;
        let ids = query
            .query_map([channel], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()
            .with_context(|| format!("reading the connections of {channel}"))?;
        Ok(ids)
    }
}

/// `coldstart up --no-build` serving a [`ChatConfig`]; its sandboxes never outlive it (see
/// [`Up`]).
#[derive(Debug)]
pub struct ChatUp {
    up: Up,
}

impl ChatUp {
    /// Starts `up` and waits for its endpoint table, which must list the WebSocket API at
    /// `config.ws`. Function logs (its stdout) are discarded; it logs warnings and errors only.
    pub fn start(coldstart: &Path, config: &ChatConfig) -> anyhow::Result<Self> {
        let up = Up::start_with(coldstart, &["--no-build"], &config.dir.config)?;
        let path = format!("/{STAGE}");
        let listed = up
            .banner
            .endpoints
            .iter()
            .any(|e| e.door == Door::WebSocketApi && e.addr == config.ws && e.path == path);
        if !listed {
            bail!(
                "coldstart up's endpoint table does not list ws://{}{path}: {:?}",
                config.ws,
                up.banner.endpoints
            );
        }
        Ok(Self { up })
    }

    /// `up`'s resident memory (`VmRSS`), in bytes. Its own process only, not its sandboxes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        process::resident_bytes(self.up.pid()?, "VmRSS")
    }

    /// CPU time used so far by `up`, by its sandboxes (those alive now) and by this process.
    pub fn cpu(&self) -> anyhow::Result<Cpu> {
        let pid = self.up.pid()?;
        let sandboxes = tree::children(pid).into_iter().filter_map(cpu_ticks).sum();
        Ok(Cpu {
            coldstart: cpu_ticks(pid).context("reading coldstart up's CPU time")?,
            sandboxes,
            bench: cpu_ticks(std::process::id()).unwrap_or(0),
        })
    }

    /// SIGTERMs `up` (it closes every connection with 1001 and invokes their `$disconnect`, then
    /// stops its sandboxes), waits up to [`STOP_GRACE`], then SIGKILLs it; any sandbox that
    /// outlived it is killed by group. Returns what it printed on stderr besides the table, with
    /// a line for an unclean end: warnings and errors worth reporting.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.up.stop_within(STOP_GRACE)
    }
}

/// CPU time (user + system) in clock ticks of `/proc` (USER_HZ: 100 per second on Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub coldstart: u64,
    pub sandboxes: u64,
    /// The bench itself: every client.
    pub bench: u64,
}

impl Cpu {
    /// Length of one clock tick.
    pub const TICK: Duration = Duration::from_millis(10);

    /// What was used between `self` and `later`.
    pub fn until(self, later: Self) -> Self {
        Self {
            coldstart: later.coldstart.saturating_sub(self.coldstart),
            sandboxes: later.sandboxes.saturating_sub(self.sandboxes),
            bench: later.bench.saturating_sub(self.bench),
        }
    }
}

/// User + system CPU time of `pid` (fields 14 and 15 of `/proc/PID/stat`), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3: utime is field 14, stime field 15.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn cpu_ticks_reads_our_own() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(cpu_ticks(u32::MAX).is_none());
    }
}

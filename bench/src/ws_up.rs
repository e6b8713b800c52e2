//! `coldstart up` serving the chat example as the WebSocket bench drives it: a `coldstart.toml` in
//! a temporary folder (its own ports, its own SQLite file), the process in a group of its own, its
//! endpoint table awaited on stderr, its memory read from `/proc`, and a stop that lets it close
//! every connection and run their `$disconnect`s before it would be killed.
//!
//! Apart from the invoke bench's `process` and `up` because the ports must be known before `up`
//! starts (the functions' `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` names the WebSocket port), and
//! because stopping an emulator that holds thousands of connections takes longer than their
//! fixed grace period: here the grace is [`STOP_GRACE`], and sandboxes that outlive `coldstart`
//! (each runs in a process group of its own) are killed too.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The WebSocket API's stage (as in the repository's `coldstart.toml`).
pub const STAGE: &str = "staging";
/// How long `up` may take to print its endpoint table. Default: 10 seconds.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long `up` gets after SIGTERM: it closes every connection (1001) and waits for each
/// `$disconnect`, which for 10,000 connections takes seconds.
const STOP_GRACE: Duration = Duration::from_secs(120);
/// How long to wait for the last stderr lines once `up` has exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// The start and middle of the table's first line, `coldstart: N functions ready in X ms`.
const READY_PREFIX: &str = "coldstart: ";
const READY_IN: &str = " ready in ";

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
    dir: PathBuf,
    pub config: PathBuf,
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
        let dir =
            std::env::temp_dir().join(format!("coldstart-bench-ws-{name}-{}", std::process::id()));
        // A leftover of an earlier run with the same pid must not lend it its connections.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let [ws, http] = free_ports()?;
        // Owned from here, so an error below still removes the folder.
        let made = Self {
            config: dir.join("coldstart.toml"),
            db: dir.join("connections.sqlite3"),
            dir,
            ws,
            http,
        };
        let environment = format!(
            "{{ AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI = {}, AWS_ACCESS_KEY_ID = \"local\", \
             AWS_SECRET_ACCESS_KEY = \"local\", CONNECTIONS_DB = {} }}",
            toml_string(&format!("http://{ws}/{STAGE}")),
            toml_string(utf8(&made.db)?)
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
        std::fs::write(&made.config, toml)
            .with_context(|| format!("writing {}", made.config.display()))?;
        Ok(made)
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

impl Drop for ChatConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `N` distinct free loopback ports: bound on `127.0.0.1:0` together, then released for the
/// server (its config takes numbers, and its functions must be told the WebSocket port before it
/// runs).
pub fn free_ports<const N: usize>() -> anyhow::Result<[SocketAddr; N]> {
    let mut held = Vec::with_capacity(N);
    for _ in 0..N {
        held.push(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?);
    }
    let mut addrs = [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); N];
    for (addr, listener) in addrs.iter_mut().zip(&held) {
        *addr = listener.local_addr()?;
    }
    Ok(addrs)
}

fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running `coldstart up --no-build --listen 127.0.0.1:0 --config CONFIG`, in a process group of
/// its own. Dropping it SIGKILLs that group and every sandbox group, and reaps `up`.
#[derive(Debug)]
pub struct Up {
    /// `None` once reaped.
    child: Option<Child>,
    /// How long from spawn until the endpoint table was read.
    pub ready_after: Duration,
    /// Every stderr line outside the endpoint table. The drain thread holds the other reference.
    stderr: Arc<Mutex<Vec<String>>>,
    /// Disconnects when the drain thread reaches the end of stderr (`up` has exited).
    drained: mpsc::Receiver<()>,
}

impl Up {
    /// Starts `up` and waits for its endpoint table, which must list the WebSocket API at
    /// `config.ws`. Function logs (its stdout) are discarded; it logs warnings and errors only.
    pub fn start(coldstart: &Path, config: &ChatConfig) -> anyhow::Result<Self> {
        let mut command = Command::new(coldstart);
        command
            .args(["up", "--no-build", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config.config)
            .env("COLDSTART_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {}", coldstart.display()))?;
        let stderr = child.stderr.take();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (table_tx, table_rx) = mpsc::channel();
        // The drain thread holds `drained_tx`: dropping it at the end of stderr tells `stop` that
        // every line is in.
        let (drained_tx, drained) = mpsc::channel::<()>();
        let sink = Arc::clone(&lines);
        if let Some(stderr) = stderr {
            thread::spawn(move || {
                let _drained_tx = drained_tx;
                drain_stderr(stderr, &table_tx, &sink);
            });
        }
        // Owned from here: an error below kills it.
        let mut up = Self {
            child: Some(child),
            ready_after: Duration::ZERO,
            stderr: lines,
            drained,
        };
        // A closed channel means stderr ended before the table did: `up` exited.
        let table = match table_rx.recv_timeout(READY_LIMIT) {
            Ok(table) => table,
            Err(err) => bail!(
                "coldstart up did not print its endpoint table ({err}); its stderr:\n{}",
                up.said()
            ),
        };
        up.ready_after = started.elapsed();
        let ws = format!("ws://{}/{STAGE}", config.ws);
        if !table.iter().any(|row| row.contains(&ws)) {
            bail!(
                "coldstart up's endpoint table does not list {ws}:\n{}",
                table.join("\n")
            );
        }
        Ok(up)
    }

    /// `up`'s process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .context("coldstart up was already reaped")
    }

    /// `up`'s resident memory (`VmRSS`), in bytes. Its own process only, not its sandboxes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .context("no VmRSS in /proc/PID/status")
    }

    /// CPU time used so far by `up`, by its sandboxes (those alive now) and by this process.
    pub fn cpu(&self) -> anyhow::Result<Cpu> {
        let pid = self.pid()?;
        let sandboxes = children(pid)
            .iter()
            .filter_map(|&(child, _)| cpu_ticks(child))
            .sum();
        Ok(Cpu {
            coldstart: cpu_ticks(pid).context("reading coldstart up's CPU time")?,
            sandboxes,
            bench: cpu_ticks(std::process::id()).unwrap_or(0),
        })
    }

    /// Every stderr line outside the table so far; once `up` has exited, waits up to
    /// [`DRAIN_LIMIT`] for the last of them.
    fn said(&self) -> String {
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        self.stderr
            .lock()
            .map(|lines| lines.join("\n"))
            .unwrap_or_default()
    }

    /// SIGTERMs `up` (it closes every connection with 1001 and invokes their `$disconnect`, then
    /// stops its sandboxes), waits up to [`STOP_GRACE`], then SIGKILLs its group; any sandbox
    /// that outlived it is killed by group. Returns what it printed on stderr besides the table,
    /// with a line for an unclean exit: warnings and errors worth reporting.
    pub fn stop(mut self) -> anyhow::Result<Vec<String>> {
        let mut child = self
            .child
            .take()
            .context("coldstart up was already reaped")?;
        let group = Pid::from_raw(child.id() as i32);
        let sandboxes = children(child.id());
        let _ = killpg(group, Signal::SIGTERM);
        // `wait` blocks without a timeout, so a helper thread waits and reports the exit: the
        // grace period ends on the exit itself, not on a polling timer.
        let (exited_tx, exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            // The receiver is gone only if we stopped waiting, which never happens before this.
            let _ = exited_tx.send(());
            status
        });
        let killed = exited.recv_timeout(STOP_GRACE).is_err();
        if killed {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let status = waiter
            .join()
            .map_err(|_| anyhow!("the waiter thread panicked"))??;
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        let mut lines = self
            .stderr
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default();
        let left = kill_survivors(&sandboxes);
        if left > 0 {
            lines.push(format!(
                "{left} sandbox process(es) outlived coldstart up and were killed"
            ));
        }
        if killed {
            lines.push(format!(
                "coldstart up did not exit within {STOP_GRACE:?} of SIGTERM and was killed"
            ));
        } else if !status.success() {
            lines.push(format!("coldstart up exited with {status} after SIGTERM"));
        }
        Ok(lines)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let sandboxes = children(child.id());
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            kill_survivors(&sandboxes);
        }
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

/// A process, named by its id and its start time (field 22 of `/proc/PID/stat`, clock ticks since
/// boot), so that a recycled id is not mistaken for it.
type Started = (u32, u64);

/// The children of `parent` (coldstart's sandboxes, each the leader of its own group).
fn children(parent: u32) -> Vec<Started> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (ppid, start) = stat(pid)?;
            (ppid == parent).then_some((pid, start))
        })
        .collect()
}

/// The parent id and start time of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): ppid is field 4, starttime field 22.
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// SIGKILLs the group of every process of `sandboxes` still alive (same id, same start time);
/// returns how many there were.
fn kill_survivors(sandboxes: &[Started]) -> usize {
    let mut left = 0;
    for &(pid, start) in sandboxes {
        if stat(pid).is_some_and(|(_, now)| now == start) {
            left += 1;
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    left
}

/// Reads `up`'s stderr to its end: the endpoint table (the `ready in` line, a blank line, the
/// header, one row per endpoint, a blank line) goes to `table` once complete; every other line
/// goes to `lines`. Reading on keeps the pipe from filling up and blocking `up`.
fn drain_stderr(
    stderr: ChildStderr,
    table: &mpsc::Sender<Vec<String>>,
    lines: &Mutex<Vec<String>>,
) {
    // `None` before the `ready in` line; then the rows read so far.
    let mut rows: Option<Vec<String>> = None;
    let mut complete = false;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if !complete {
            match &mut rows {
                None if line.starts_with(READY_PREFIX) && line.contains(READY_IN) => {
                    rows = Some(Vec::new());
                    continue;
                }
                None => {}
                Some(rows) if line.trim().is_empty() && !rows.is_empty() => {
                    complete = true;
                    let _ = table.send(std::mem::take(rows));
                    continue;
                }
                Some(rows) => {
                    // The blank line before the header is not a row.
                    if !line.trim().is_empty() {
                        rows.push(line);
                    }
                    continue;
                }
            }
        }
        if let Ok(mut lines) = lines.lock() {
            lines.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
    }

    #[test]
    fn our_own_stat_names_our_parent() {
        let me = std::process::id();
        let (ppid, start) = stat(me).expect("our own /proc/PID/stat");
        assert_eq!(ppid, std::os::unix::process::parent_id());
        assert!(start > 0);
    }
}

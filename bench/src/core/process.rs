//! Every process a scenario starts: spawned as the leader of its own process group, its output
//! drained by threads, stopped with SIGTERM, a grace period and SIGKILL, and always reaped; with
//! the process groups its children made (coldstart's sandboxes, cargo-lambda's instances), which
//! a signal to its own group misses. Also what `/proc` says about a process: memory, CPU time,
//! descendants.
//!
//! One place, so that no early return or panic in a scenario can leave a process behind: the
//! guard kills on `Drop`, and the interrupt guard turns Ctrl-C into the same cleanup.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::{Pid, getpgrp};

/// How long a process gets to exit after SIGTERM before SIGKILL, unless told otherwise.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for the last output lines once a process has exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// How long the groups a stopped server made may take to end by themselves.
const GROUPS_GRACE: Duration = Duration::from_secs(1);
/// How many output lines a server keeps for the report; the rest are counted.
const KEPT_LINES: usize = 200;

/// Says which output lines are the ready signal, and which are worth keeping for the report.
pub trait Output: Send + Sync + 'static {
    /// What the ready line says (an address, the endpoints).
    type Ready: Send + 'static;
    /// `Some` for the line that says the process serves.
    fn ready(&self, line: &str) -> Option<Self::Ready>;
    /// Whether a line other than the ready line goes into the report (warnings, errors).
    fn keep(&self, line: &str) -> bool;
}

/// Where a [`Server`]'s ready line arrives: what it said, and when it was read.
pub type ReadyRx<O> = mpsc::Receiver<(<O as Output>::Ready, Instant)>;

/// A child process in its own process group, with its output drained. Dropping it SIGKILLs its
/// group and the groups its descendants made, and reaps it.
#[derive(Debug)]
pub struct Server {
    /// What messages call it.
    pub name: String,
    /// `None` once reaped.
    child: Option<Child>,
    /// Kept output lines; the drain threads hold the other references.
    kept: Arc<Mutex<Vec<String>>>,
    /// Disconnects once every drain thread has reached the end of its pipe (the process exited).
    drained: mpsc::Receiver<()>,
}

impl Server {
    /// Spawns `command` with stdout and stderr piped and drained; the receiver gets what
    /// `output` read from the ready line, and when it was read, and disconnects when the output
    /// ends first (the process exited).
    pub fn spawn<O: Output>(
        name: impl Into<String>,
        mut command: Command,
        output: O,
    ) -> anyhow::Result<(Self, ReadyRx<O>)> {
        let name = name.into();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start {name} ({:?})", command.get_program()))?;
        let output = Arc::new(output);
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = mpsc::channel();
        // Each drain thread holds a clone of `drained_tx`: all dropped = all output read.
        let (drained_tx, drained) = mpsc::channel::<()>();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child.stdout.take().map(|p| Box::new(p) as _),
            child.stderr.take().map(|p| Box::new(p) as _),
        ];
        for pipe in pipes.into_iter().flatten() {
            let (output, kept, ready_tx) = (output.clone(), kept.clone(), ready_tx.clone());
            let drained_tx = drained_tx.clone();
            thread::spawn(move || {
                let _drained_tx = drained_tx;
                drain(pipe, &*output, &ready_tx, &kept);
            });
        }
        let server = Self {
            name,
            child: Some(child),
            kept,
            drained,
        };
        Ok((server, ready))
    }

    /// As [`Server::spawn`], then waits up to `limit` for the ready line.
    pub fn start<O: Output>(
        name: impl Into<String>,
        command: Command,
        output: O,
        limit: Duration,
    ) -> anyhow::Result<(Self, O::Ready, Instant)> {
        let (server, ready) = Self::spawn(name, command, output)?;
        match ready.recv_timeout(limit) {
            Ok((found, at)) => Ok((server, found, at)),
            Err(err) => bail!(
                "{} did not start serving ({err}); it said:\n{}",
                server.name,
                server.said()
            ),
        }
    }

    /// The process id (the leader of its group).
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .with_context(|| format!("{} was already reaped", self.name))
    }

    /// Whether it has exited (reaped if so).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The kept lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.kept.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The kept lines so far, joined; waits up to [`DRAIN_LIMIT`] for the last ones of an exited
    /// process.
    pub fn said(&self) -> String {
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        self.kept.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGTERM to its group, up to `grace` for it to exit (ended by the exit itself, not a
    /// polling timer), then SIGKILL; then SIGKILL for every group its descendants made that
    /// outlived it. Returns the kept lines, with a line for a kill, a failed exit, or groups left.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<Vec<String>> {
        let mut child = self.child.take().context("already stopped")?;
        let groups = groups_below(child.id());
        let group = Pid::from_raw(child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        // `wait` has no timeout: a helper thread waits and reports the exit.
        let (exited_tx, exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = exited_tx.send(());
            status
        });
        let killed = exited.recv_timeout(grace).is_err();
        if killed {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let status = waiter
            .join()
            .map_err(|_| anyhow!("the waiter panicked"))??;
        let left = end_groups(&groups, GROUPS_GRACE);
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        let mut lines = self.kept.lock().map(|l| l.clone()).unwrap_or_default();
        let name = &self.name;
        if killed {
            lines.push(format!("{name} outlived {grace:?} after SIGTERM: killed"));
        } else if !status.success() {
            lines.push(format!("{name} exited with {status} after SIGTERM"));
        }
        if left > 0 {
            lines.push(format!("{left} process group(s) outlived {name}: killed"));
        }
        Ok(lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let groups = groups_below(child.id());
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            kill_groups(&groups);
        }
    }
}

/// Reads `pipe` to its end (so the process never blocks on a full pipe): the first ready line
/// goes to `ready`, kept lines to `kept` (at most [`KEPT_LINES`]).
fn drain<O: Output>(
    pipe: impl Read,
    output: &O,
    ready: &mpsc::Sender<(O::Ready, Instant)>,
    kept: &Mutex<Vec<String>>,
) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if let Some(found) = output.ready(&line) {
            let _ = ready.send((found, Instant::now()));
        } else if output.keep(&line)
            && let Ok(mut kept) = kept.lock()
            && kept.len() < KEPT_LINES
        {
            kept.push(line);
        }
    }
}

/// A process that prints nothing to wait for; every line is kept except those `skip` names.
#[derive(Debug)]
pub struct NoBanner(pub &'static [&'static str]);

impl Output for NoBanner {
    type Ready = ();
    fn ready(&self, _: &str) -> Option<()> {
        None
    }
    fn keep(&self, line: &str) -> bool {
        !self.0.iter().any(|skip| line.contains(skip))
    }
}

/// A one-line banner: `prefix` then the address it serves at; every other line is kept.
#[derive(Debug)]
pub struct Listening(pub &'static str);

impl Output for Listening {
    type Ready = SocketAddr;
    fn ready(&self, line: &str) -> Option<SocketAddr> {
        line.strip_prefix(self.0)?.trim().parse().ok()
    }
    fn keep(&self, _: &str) -> bool {
        true
    }
}

/// `N` distinct free loopback ports, for servers that take a port number rather than a listener:
/// bound together, then released. Should another process take one meanwhile, the server fails to
/// bind and exits, which waiting for it to serve reports.
pub fn free_ports<const N: usize>() -> anyhow::Result<[SocketAddr; N]> {
    let held = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut addrs = [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); N];
    for (addr, listener) in addrs.iter_mut().zip(&held) {
        *addr = listener.local_addr()?;
    }
    Ok(addrs)
}

/// `field` of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`), in bytes.
pub fn resident_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = status
        .lines()
        .filter_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .find_map(|rest| rest.trim().strip_suffix(" kB")?.trim().parse::<u64>().ok())
        .with_context(|| format!("no {field} in {path}"))?;
    Ok(kib * 1024)
}

/// Resets `VmHWM` of `pid` to its current size (`5` into `/proc/PID/clear_refs`), so that a later
/// `VmHWM` is the peak since now.
pub fn reset_peak_resident(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("writing 5 to {path}"))
}

/// A process's parent and group (`PID (COMM) STATE PPID PGRP ...`, counted from the last `)`).
fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    stat(pid).map(|(_, parent, group)| (parent, group))
}

/// `pid`'s state letter (`R`, `S`, `Z`, ...), parent and process group, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(String, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_owned();
    Some((
        state,
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
    ))
}

/// The processes that descend from `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((parent, _)) = parent_and_group(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let (mut found, mut next) = (Vec::new(), vec![root]);
    // Bounded: each process is pushed once, by its one parent.
    while let Some(pid) = next.pop() {
        if let Some(kids) = children.get(&pid) {
            found.extend(kids);
            next.extend(kids);
        }
    }
    found.sort_unstable();
    found
}

/// The process groups of `root`'s descendants, other than the bench's and `root`'s own.
pub fn groups_below(root: u32) -> Vec<u32> {
    let own = getpgrp().as_raw() as u32;
    let mut groups: Vec<u32> = descendants(root)
        .into_iter()
        .filter_map(|pid| Some(parent_and_group(pid)?.1))
        .filter(|&group| group != own && group != root)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Waits up to `limit` for each of `groups` to end by itself (a server's own helpers, such as
/// coldstart's watchdog, exit just after it), then SIGKILLs those with a live process left;
/// returns how many had one. A zombie (whose new parent never reaps it) is not alive.
pub fn end_groups(groups: &[u32], limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    // Bounded by `limit`: 10 ms between looks at /proc.
    while groups.iter().any(|&g| group_alive(g)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    groups
        .iter()
        .filter(|&&g| group_alive(g))
        .filter(|&&g| killpg(Pid::from_raw(g as i32), Signal::SIGKILL).is_ok())
        .count()
}

/// Whether a process of `group` runs (is not a zombie).
fn group_alive(group: u32) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| stat(pid).is_some_and(|(state, _, pgid)| pgid == group && state != "Z"))
}

/// SIGKILLs each of `groups` that still exists; returns how many did.
pub fn kill_groups(groups: &[u32]) -> usize {
    groups
        .iter()
        .map(|&group| Pid::from_raw(group as i32))
        .filter(|&group| killpg(group, None).is_ok() && killpg(group, Signal::SIGKILL).is_ok())
        .count()
}

/// The executable `pid` runs, without the ` (deleted)` the kernel adds after a rebuild.
pub fn exe(pid: u32) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = path.to_str()?;
    Some(text.strip_suffix(" (deleted)").unwrap_or(text).into())
}

/// The value of `name` in the environment `pid` was started with.
pub fn env_var(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|&byte| byte == 0)
        .filter_map(|pair| std::str::from_utf8(pair).ok()?.split_once('='))
        .find_map(|(key, value)| (key == name).then(|| value.to_owned()))
}

/// CPU time and context switches of a process, summed over its live threads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Nanoseconds on a CPU (`/proc/PID/task/TID/schedstat`, first field).
    pub cpu_ns: u64,
    /// Voluntary and involuntary context switches.
    pub switches: u64,
}

impl Usage {
    /// What `pid` used so far; zero for a process that is gone.
    pub fn of(pid: u32) -> Self {
        let mut total = Self::default();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten().map(|t| t.path()) {
            let read = |file| std::fs::read_to_string(task.join(file)).unwrap_or_default();
            let first = read("schedstat")
                .split_whitespace()
                .next()
                .map(str::to_owned);
            total.cpu_ns += first.and_then(|ns| ns.parse().ok()).unwrap_or(0);
            total.switches += read("status")
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_once(':')?.1.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        total
    }

    /// What was used since `before`.
    pub fn since(self, before: Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            switches: self.switches.saturating_sub(before.switches),
        }
    }

    /// This plus `more`.
    pub fn plus(self, more: Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns + more.cpu_ns,
            switches: self.switches + more.switches,
        }
    }
}

/// Turns Ctrl-C and a closed terminal into a clean exit: every process group below the bench is
/// SIGKILLed, its temporary folders are removed, and it exits with 128 + the signal. Without it,
/// the groups the bench made (which the terminal's signals do not reach) would go on serving.
///
/// Called first in `main`, before any other thread exists: the signals are blocked in every
/// thread (children inherit the mask; the bench stops them with SIGTERM and SIGKILL only) and
/// taken by one waiting thread.
pub fn kill_children_on_interrupt() -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set.thread_block().context("blocking SIGINT and SIGHUP")?;
    thread::Builder::new()
        .name("interrupts".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            eprintln!("coldstart-bench: {signal}; killing what it started");
            kill_groups(&groups_below(std::process::id()));
            remove_temp_folders();
            std::process::exit(128 + signal as i32);
        })
        .context("starting the interrupt thread")?;
    Ok(())
}

/// The start of every temporary folder the bench makes (`<prefix><name>-<pid>`).
pub const TEMP_PREFIX: &str = "coldstart-bench-";

/// Removes every temporary folder of this process (the interrupt guard's cleanup).
pub fn remove_temp_folders() {
    let suffix = format!("-{}", std::process::id());
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(&suffix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[derive(Debug)]
    struct Ready;
    impl Output for Ready {
        type Ready = ();
        fn ready(&self, line: &str) -> Option<()> {
            (line == "ready").then_some(())
        }
        fn keep(&self, line: &str) -> bool {
            line != "skip"
        }
    }

    #[test]
    fn a_server_keeps_both_streams_and_reports_its_exit() {
        let command = shell("echo one >&2; echo skip; echo ready; exec sleep 30");
        let (server, (), _) =
            Server::start("the shell", command, Ready, Duration::from_secs(10)).expect("sh starts");
        let lines = server.stop(STOP_GRACE).expect("it stops");
        assert_eq!(
            lines,
            [
                "one",
                "the shell exited with signal: 15 (SIGTERM) after SIGTERM"
            ]
        );
    }

    #[test]
    fn a_server_that_ignores_sigterm_is_killed_after_its_grace() {
        let command = shell("trap '' TERM; echo ready; while :; do sleep 1; done");
        let (server, (), _) =
            Server::start("the shell", command, Ready, Duration::from_secs(10)).expect("sh starts");
        let lines = server.stop(Duration::from_millis(100)).expect("killed");
        assert_eq!(lines, ["the shell outlived 100ms after SIGTERM: killed"]);
    }

    #[test]
    fn a_child_group_below_a_server_is_killed_with_it() {
        // The inner `sleep` leads a group of its own, as a sandbox under `coldstart up` does.
        let command = shell("setsid sh -c 'echo ready; exec sleep 30'");
        let (server, (), _) =
            Server::start("the shell", command, Ready, Duration::from_secs(10)).expect("sh starts");
        let pid = server.pid().expect("alive");
        let groups = groups_below(pid);
        assert_eq!(groups.len(), 1, "{groups:?}");
        drop(server);
        // Killed: gone, or a zombie until init reaps it (bounded wait).
        let state = || {
            parent_and_group(groups[0]).map(|_| {
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", groups[0]))
                    .unwrap_or_default();
                stat.rsplit_once(") ")
                    .map(|(_, rest)| rest.starts_with('Z'))
                    .unwrap_or(true)
            })
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while state() == Some(false) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_ne!(state(), Some(false), "the group below still runs");
    }

    #[test]
    fn a_group_that_ends_just_after_its_server_is_not_reported_and_one_that_stays_is_killed() {
        // The first sleeps in a group of its own past the server's end, as coldstart's
        // watchdog does for a moment; the second would outlive it for good.
        for (inner, expected) in [("0.3", 0), ("30", 1)] {
            let command = shell(&format!(
                "setsid sh -c 'echo ready; exec sleep {inner}' & exec sleep 30"
            ));
            let (server, (), _) =
                Server::start("the shell", command, Ready, Duration::from_secs(10))
                    .expect("sh starts");
            let groups = groups_below(server.pid().expect("alive"));
            assert_eq!(groups.len(), 1, "{groups:?}");
            let lines = server.stop(STOP_GRACE).expect("stopped");
            let reported = lines.iter().filter(|l| l.contains("outlived")).count();
            assert_eq!(reported, expected, "sleep {inner}: {lines:?}");
            // A SIGKILL takes effect soon, not at once: a bounded wait.
            let deadline = Instant::now() + Duration::from_secs(2);
            while group_alive(groups[0]) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            assert!(!group_alive(groups[0]), "sleep {inner} still runs");
        }
    }

    #[test]
    fn proc_readings_of_this_process() {
        let pid = std::process::id();
        assert!(resident_bytes(pid, "VmRSS").expect("VmRSS") > 0);
        assert!(resident_bytes(pid, "VmNothing").is_err());
        assert_eq!(env_var(pid, "PATH"), std::env::var("PATH").ok());
        assert!(Usage::of(pid).cpu_ns > 0);
        let [a, b] = free_ports().expect("two ports");
        assert!(a != b && a.ip().is_loopback());
    }
}

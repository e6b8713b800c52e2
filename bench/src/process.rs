//! Child processes the benches start: the release binaries they run, a guard that always reaps
//! the whole process group, a server whose start-up banner is read from its output, and the
//! `coldstart run` emulator.
//!
//! Separate from the measurements so that no early return or panic in them can leave a process
//! behind: everything spawned here is killed (by process group) and waited for on `Drop`.

use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a server may take to print its banner. Default: 10 seconds.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a process gets to exit after SIGTERM before SIGKILL, unless told otherwise.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for the last output lines once a server has exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// The prefix of the one line `coldstart run` prints on stderr when it is serving.
const BANNER: &str = "coldstart: serving ";

/// The folder of this executable (`target/release` when the scripts built it), where the binaries
/// it runs are.
#[derive(Debug)]
pub struct Release {
    dir: PathBuf,
    /// How to build a missing binary, for the error that says it is missing.
    build: &'static str,
}

impl Release {
    /// This executable's folder; `build` says how to build what is missing from it.
    pub fn find(build: &'static str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let dir = exe.parent().context("this executable has no folder")?;
        Ok(Self {
            dir: dir.to_owned(),
            build,
        })
    }

    /// The binary `name` in the folder, canonical (so that it compares equal to `/proc/PID/exe`).
    pub fn binary(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        if !path.is_file() {
            bail!(
                "{} is missing; build it with {}",
                path.display(),
                self.build
            );
        }
        path.canonicalize()
            .with_context(|| format!("resolving {}", path.display()))
    }
}

/// How a process ended once asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited within its grace period, with this status.
    Exited(ExitStatus),
    /// It outlived its grace period and was SIGKILLed.
    Killed,
}

/// A child process in its own process group. Dropping it SIGKILLs the group and waits.
#[derive(Debug)]
pub struct Process {
    /// `None` once waited for.
    child: Option<Child>,
}

impl Process {
    /// Spawns `command` as the leader of a new process group, so one signal reaches the tree.
    pub fn spawn(mut command: Command) -> anyhow::Result<Self> {
        let child = command
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start {}", program(&command)))?;
        Ok(Self { child: Some(child) })
    }

    /// The child's process id (the leader of its group), while it has not been reaped.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child has exited; reaps it if so.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => false,
            // Exited, or its status cannot be read: either way it will not serve.
            Some(_) | None => true,
        }
    }

    /// SIGTERMs the group, waits up to `grace`, then SIGKILLs it; says how the process ended.
    pub fn terminate(mut self, grace: Duration) -> anyhow::Result<Ending> {
        let mut child = self
            .child
            .take()
            .context("the process was already reaped")?;
        let group = group_of(&child);
        signal_group(group, Signal::SIGTERM);
        // `wait` blocks without a timeout, so a helper thread waits and reports the exit: the
        // grace period ends on the exit itself, not on a polling timer.
        let (exited_tx, exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            // The receiver is gone only if we stopped waiting, which never happens before this.
            let _ = exited_tx.send(());
            status
        });
        let killed = exited.recv_timeout(grace).is_err();
        if killed {
            signal_group(group, Signal::SIGKILL);
        }
        let status = waiter
            .join()
            .map_err(|_| anyhow!("the waiter thread panicked"))??;
        Ok(if killed {
            Ending::Killed
        } else {
            Ending::Exited(status)
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(group_of(&child), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// The process group a child leads (it was spawned with `process_group(0)`).
fn group_of(child: &Child) -> Pid {
    Pid::from_raw(child.id() as i32)
}

fn signal_group(group: Pid, signal: Signal) {
    // ESRCH means the group is already gone, which is what we want.
    let _ = killpg(group, signal);
}

/// What a [`Banner`] made of one stderr line.
#[derive(Debug)]
pub enum Read<T> {
    /// Not part of the banner: kept for the report.
    Other,
    /// Part of a banner that goes on.
    Part,
    /// The banner's last line, and what the banner said.
    Done(T),
}

/// Recognises a server's start-up banner in its stderr, one line at a time.
pub trait Banner: Send + 'static {
    /// What the banner says: an address, a table of endpoints.
    type Found: Send + 'static;
    /// Reads `line`, read from the pipe at `at`.
    fn read(&mut self, line: &str, at: Instant) -> Read<Self::Found>;
}

/// A banner of one line: the first line for which `F` reads what it says.
pub struct Line<F>(pub F);

impl<F> fmt::Debug for Line<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Line")
    }
}

impl<T, F> Banner for Line<F>
where
    T: Send + 'static,
    F: FnMut(&str) -> Option<T> + Send + 'static,
{
    type Found = T;

    fn read(&mut self, line: &str, _at: Instant) -> Read<T> {
        (self.0)(line).map_or(Read::Other, Read::Done)
    }
}

/// A process that serves once it has printed a banner. A thread reads its output (stderr, or
/// stdout and stderr together) to the end; every line besides the banner is kept to be reported.
#[derive(Debug)]
pub struct Server {
    /// What messages call it: the program, unless [`Server::named`] said otherwise.
    name: String,
    process: Process,
    /// Every output line outside the banner. The drain thread holds the other reference.
    output: Arc<Mutex<Vec<String>>>,
    /// Disconnects when the drain thread reaches the end of the output (the server has exited).
    drained: mpsc::Receiver<()>,
}

impl Server {
    /// Spawns `command` (its stderr piped over whatever it said) and waits up to [`READY_LIMIT`]
    /// for `banner` to be complete.
    pub fn start<B: Banner>(command: Command, banner: B) -> anyhow::Result<(Self, B::Found)> {
        let (server, found_rx) = Self::spawn(command, banner)?;
        // A closed channel means stderr ended before the banner did: the server exited.
        let found = match found_rx.recv_timeout(READY_LIMIT) {
            Ok(found) => found,
            Err(err) => {
                let said = server.said();
                bail!(
                    "{} did not start serving ({err}); its stderr:\n{said}",
                    server.name
                );
            }
        };
        Ok((server, found))
    }

    /// Spawns `command` (its stderr piped over whatever it said) without waiting: the receiver
    /// gets what `banner` found once it is complete, and disconnects if stderr ends first.
    pub fn spawn<B: Banner>(
        mut command: Command,
        banner: B,
    ) -> anyhow::Result<(Self, mpsc::Receiver<B::Found>)> {
        let name = program(&command);
        command.stderr(Stdio::piped());
        let mut process = Process::spawn(command)?;
        let stderr = process
            .child
            .as_mut()
            .and_then(|child| child.stderr.take())
            .with_context(|| format!("{name}'s stderr is not piped"))?;
        Ok(Self::watch(name, process, stderr, banner))
    }

    /// As [`Server::spawn`], with stdout and stderr sharing one pipe: the banner and any
    /// complaint arrive in the order they were written.
    pub fn spawn_merged<B: Banner>(
        mut command: Command,
        banner: B,
    ) -> anyhow::Result<(Self, mpsc::Receiver<B::Found>)> {
        let name = program(&command);
        let (reader, writer) =
            io::pipe().with_context(|| format!("creating {name}'s output pipe"))?;
        command
            .stderr(writer.try_clone().context("sharing the output pipe")?)
            .stdout(writer);
        // `spawn` consumes the command, and with it this process's ends of the pipe's write side:
        // the reader sees the end of the output once the server has exited.
        let process = Process::spawn(command)?;
        Ok(Self::watch(name, process, reader, banner))
    }

    /// Starts the thread that reads `output` to its end.
    fn watch<B: Banner>(
        name: String,
        process: Process,
        output: impl io::Read + Send + 'static,
        banner: B,
    ) -> (Self, mpsc::Receiver<B::Found>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (found_tx, found_rx) = mpsc::channel();
        // The drain thread holds `drained_tx`: dropping it at the end of the output tells `stop`
        // that every line is in.
        let (drained_tx, drained) = mpsc::channel::<()>();
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            let _drained_tx = drained_tx;
            drain(output, banner, found_tx, &sink);
        });
        let server = Self {
            name,
            process,
            output: lines,
            drained,
        };
        (server, found_rx)
    }

    /// Calls the server `name` in the messages of stopping it.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether the server has exited (it is reaped if so).
    pub fn exited(&mut self) -> bool {
        self.process.exited()
    }

    /// Every output line outside the banner so far, once the server has exited: waits up to
    /// [`DRAIN_LIMIT`] for the last of them.
    pub fn said(&self) -> String {
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        self.output.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.process.id().context("the server was already reaped")
    }

    /// Stops the server with SIGTERM (coldstart stops its sandboxes) and returns what it printed
    /// besides the banner: warnings and errors worth reporting, and a line for a failed exit
    /// status. Not exiting within [`STOP_GRACE`] is an error.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        let name = self.name.clone();
        let (ending, mut lines) = self.terminate(STOP_GRACE)?;
        match ending {
            Ending::Killed => Err(anyhow!(
                "it did not exit within {STOP_GRACE:?} of SIGTERM and was killed"
            ))
            .with_context(|| format!("stopping {name}")),
            Ending::Exited(status) => {
                lines.extend(failed_exit(&name, status));
                Ok(lines)
            }
        }
    }

    /// As [`Server::stop`] with a grace period of `grace`, past which the server is killed and a
    /// line says so.
    pub fn stop_within(self, grace: Duration) -> anyhow::Result<Vec<String>> {
        let name = self.name.clone();
        let (ending, mut lines) = self.terminate(grace)?;
        match ending {
            Ending::Killed => lines.push(format!(
                "{name} did not exit within {grace:?} of SIGTERM and was killed"
            )),
            Ending::Exited(status) => lines.extend(failed_exit(&name, status)),
        }
        Ok(lines)
    }

    /// SIGTERM, `grace`, SIGKILL ([`Process::terminate`]); how it ended, and every output line
    /// outside the banner.
    fn terminate(self, grace: Duration) -> anyhow::Result<(Ending, Vec<String>)> {
        let ending = self
            .process
            .terminate(grace)
            .with_context(|| format!("stopping {}", self.name))?;
        // Ends at once when the drain thread has already finished (sender dropped).
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        let lines = self.output.lock().map(|l| l.clone()).unwrap_or_default();
        Ok((ending, lines))
    }
}

/// The line that reports a failed exit status after SIGTERM, if it failed.
fn failed_exit(name: &str, status: ExitStatus) -> Option<String> {
    (!status.success()).then(|| format!("{name} exited with {status} after SIGTERM"))
}

/// The program `command` runs, for messages.
fn program(command: &Command) -> String {
    command.get_program().to_string_lossy().into_owned()
}

/// Reads `output` to its end: `banner` reads each line until its banner is complete, which goes to
/// `found`; every other line goes to `lines`. Reading on keeps the pipe from filling up and
/// blocking the server.
fn drain<B: Banner>(
    output: impl io::Read,
    mut banner: B,
    found: mpsc::Sender<B::Found>,
    lines: &Mutex<Vec<String>>,
) {
    let mut complete = false;
    for line in BufReader::new(output).lines() {
        let Ok(line) = line else { break };
        let at = Instant::now();
        if !complete {
            match banner.read(&line, at) {
                Read::Other => {}
                Read::Part => continue,
                Read::Done(what) => {
                    complete = true;
                    let _ = found.send(what);
                    continue;
                }
            }
        }
        if let Ok(mut lines) = lines.lock() {
            lines.push(line);
        }
    }
}

/// `N` distinct free loopback ports, for servers that take a port number rather than a listener:
/// bound on `127.0.0.1:0` together, then released. Another process could take one in between; the
/// server would then fail to bind and exit, which waiting for it to serve reports.
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

/// One free loopback port ([`free_ports`]).
pub fn free_port() -> anyhow::Result<u16> {
    let [addr] = free_ports()?;
    Ok(addr.port())
}

/// `field` (`VmRSS`: resident now; `VmHWM`: the peak resident) of `/proc/PID/status`, in bytes.
pub fn resident_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib = status
        .lines()
        .filter_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .find_map(|rest| rest.trim().strip_suffix(" kB")?.trim().parse::<u64>().ok())
        .with_context(|| format!("no {field} in {path}"))?;
    // The kernel's "kB" is 1024 bytes.
    Ok(kib * 1024)
}

/// Resets the peak resident set size (`VmHWM`) of `pid` to its current size, by writing `5` to
/// `/proc/PID/clear_refs` (Linux 4.0 and later), so that a later `VmHWM` is the peak since now.
pub fn reset_peak_resident(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("writing 5 to {path}"))
}

/// A `coldstart run` process serving one function on an ephemeral loopback port.
#[derive(Debug)]
pub struct Emulator {
    server: Server,
    /// The Invoke API's address, from the banner.
    pub addr: SocketAddr,
}

impl Emulator {
    /// Starts `coldstart run --listen 127.0.0.1:0 [--concurrency N] -- bootstrap` and waits for its
    /// banner. Function logs (stdout) are discarded; only warnings and errors reach stderr.
    pub fn start(
        coldstart: &Path,
        bootstrap: &Path,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(coldstart);
        command.args(["run", "--listen", "127.0.0.1:0"]);
        if let Some(n) = concurrency {
            command.arg("--concurrency").arg(n.to_string());
        }
        command
            .arg("--")
            .arg(bootstrap)
            .env("COLDSTART_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let (server, addr) = Server::start(command, Line(banner_addr))?;
        Ok(Self { server, addr })
    }

    /// Stops the emulator; see [`Server::stop`].
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.server.stop()
    }
}

/// The address in the one-line banner of `coldstart run`, ``coldstart: serving `BOOTSTRAP` at http://ADDR/2015-03-31/...``.
fn banner_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(BANNER)?;
    let (_, url) = rest.rsplit_once(" at http://")?;
    let (addr, _) = url.split_once('/')?;
    addr.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_addr_reads_the_address_of_the_banner() {
        let line = "coldstart: serving `target/release/echo` at \
                    http://127.0.0.1:40123/2015-03-31/functions/function/invocations";
        assert_eq!(
            banner_addr(line),
            Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
        );
        assert_eq!(
            banner_addr("WARN something else at http://127.0.0.1:1/"),
            None
        );
    }

    #[test]
    fn resident_bytes_reads_proc_status() {
        let pid = std::process::id();
        let now = resident_bytes(pid, "VmRSS").expect("VmRSS");
        let peak = resident_bytes(pid, "VmHWM").expect("VmHWM");
        // Two reads of a live process: VmRSS may have grown past the VmHWM read before it (the
        // kernel updates the peak lazily), so only their presence is checked.
        assert!(now > 0 && peak > 0, "VmRSS {now}, VmHWM {peak}");
        assert!(resident_bytes(pid, "VmNothing").is_err());
    }

    /// The banner of the test servers: a line `ready`.
    fn ready(line: &str) -> Option<()> {
        (line == "ready").then_some(())
    }

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_merged_server_keeps_both_streams_in_order() {
        // Every line before the banner: SIGTERM could cut a line after it short.
        let command = shell("echo one >&2; echo two; echo ready; exec sleep 30");
        let (server, found) = Server::spawn_merged(command, Line(ready)).expect("sh starts");
        found.recv_timeout(READY_LIMIT).expect("the banner");
        let lines = server.named("the shell").stop().expect("it stops");
        assert_eq!(
            lines,
            [
                "one",
                "two",
                "the shell exited with signal: 15 (SIGTERM) after SIGTERM"
            ]
        );
    }

    #[test]
    fn a_server_that_ignores_sigterm_is_killed_after_its_grace() {
        let command = shell("trap '' TERM; echo ready >&2; while :; do sleep 1; done");
        let (server, ()) = Server::start(command, Line(ready)).expect("sh starts");
        let lines = server
            .named("the shell")
            .stop_within(Duration::from_millis(100))
            .expect("it is killed");
        assert_eq!(
            lines,
            ["the shell did not exit within 100ms of SIGTERM and was killed"]
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let release = Release::find("`make`").expect("this test's folder");
        let err = release.binary("no-such-binary").map(|_| ());
        let err = format!("{:#}", err.expect_err("it is missing"));
        assert!(
            err.ends_with("/no-such-binary is missing; build it with `make`"),
            "{err}"
        );
    }

    #[test]
    fn free_ports_are_distinct() {
        let [a, b, c] = free_ports().expect("three ports");
        assert!(a != b && b != c && a != c, "{a} {b} {c}");
        assert!(a.ip().is_loopback() && a.port() != 0);
    }

    #[test]
    fn dropping_a_process_kills_its_group() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let process = Process::spawn(command).expect("sleep starts");
        let pid = process.child.as_ref().map(Child::id).expect("a child");
        drop(process);
        // The group is gone: signalling it fails.
        assert!(killpg(Pid::from_raw(pid as i32), None).is_err());
    }
}

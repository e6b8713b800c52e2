//! Child processes the bench starts: a guard that always reaps the whole process group, a server
//! whose start-up banner is read from its stderr, and the `coldstart run` emulator.
//!
//! Separate from the measurements so that no early return or panic in them can leave a process
//! behind: everything spawned here is killed (by process group) and waited for on `Drop`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a server may take to print its banner. Default: 10 seconds.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for the last stderr lines once a server has exited.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// The prefix of the one line `coldstart run` prints on stderr when it is serving.
const BANNER: &str = "coldstart: serving ";

/// A child process in its own process group. Dropping it SIGKILLs the group and waits.
#[derive(Debug)]
pub struct Process {
    /// `None` once waited for.
    child: Option<Child>,
}

impl Process {
    /// Spawns `command` as the leader of a new process group, so one signal reaches the tree.
    pub fn spawn(mut command: Command) -> anyhow::Result<Self> {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
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

    /// Takes the child's piped stderr, if it was piped and not taken yet.
    fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.as_mut()?.stderr.take()
    }

    /// SIGTERMs the group, waits up to [`STOP_GRACE`], then SIGKILLs it; returns the exit status.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
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
        let killed = exited.recv_timeout(STOP_GRACE).is_err();
        if killed {
            signal_group(group, Signal::SIGKILL);
        }
        let status = waiter
            .join()
            .map_err(|_| anyhow!("the waiter thread panicked"))??;
        if killed {
            bail!("it did not exit within {STOP_GRACE:?} of SIGTERM and was killed");
        }
        Ok(status)
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

/// A process that serves once it has printed a banner on stderr. A thread reads its stderr to the
/// end; every line besides the banner is kept to be reported.
#[derive(Debug)]
pub struct Server {
    /// The program's name, for messages.
    program: String,
    process: Process,
    /// Every stderr line outside the banner. The drain thread holds the other reference.
    stderr: Arc<Mutex<Vec<String>>>,
    /// Disconnects when the drain thread reaches the end of stderr (the server has exited).
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
                    server.program
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
        let program = command.get_program().to_string_lossy().into_owned();
        command.stderr(Stdio::piped());
        let mut process = Process::spawn(command)?;
        let stderr = process
            .take_stderr()
            .with_context(|| format!("{program}'s stderr is not piped"))?;

        let lines = Arc::new(Mutex::new(Vec::new()));
        let (found_tx, found_rx) = mpsc::channel();
        // The drain thread holds `drained_tx`: dropping it at the end of stderr tells `stop` that
        // every line is in.
        let (drained_tx, drained) = mpsc::channel::<()>();
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            let _drained_tx = drained_tx;
            drain_stderr(stderr, banner, found_tx, &sink);
        });
        let server = Self {
            program,
            process,
            stderr: lines,
            drained,
        };
        Ok((server, found_rx))
    }

    /// Whether the server has exited (it is reaped if so).
    pub fn exited(&mut self) -> bool {
        self.process.exited()
    }

    /// Every stderr line outside the banner so far, once the server has exited: waits up to
    /// [`DRAIN_LIMIT`] for the last of them.
    pub fn said(&self) -> String {
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.process.id().context("the server was already reaped")
    }

    /// Stops the server with SIGTERM (coldstart stops its sandboxes) and returns what it printed
    /// on stderr besides the banner: warnings and errors worth reporting.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        let program = self.program;
        let status = self
            .process
            .stop()
            .with_context(|| format!("stopping {program}"))?;
        // Ends at once when the drain thread has already finished (sender dropped).
        let _ = self.drained.recv_timeout(DRAIN_LIMIT);
        let mut lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        if !status.success() {
            lines.push(format!("{program} exited with {status} after SIGTERM"));
        }
        Ok(lines)
    }
}

/// Reads `stderr` to its end: `banner` reads each line until its banner is complete, which goes to
/// `found`; every other line goes to `lines`. Reading on keeps the pipe from filling up and
/// blocking the server.
fn drain_stderr<B: Banner>(
    stderr: ChildStderr,
    mut banner: B,
    found: mpsc::Sender<B::Found>,
    lines: &Mutex<Vec<String>>,
) {
    let mut complete = false;
    for line in BufReader::new(stderr).lines() {
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
        let (server, addr) = Server::start(command, RunBanner)?;
        Ok(Self { server, addr })
    }

    /// Stops the emulator; see [`Server::stop`].
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.server.stop()
    }
}

/// The one-line banner of `coldstart run`.
#[derive(Debug)]
struct RunBanner;

impl Banner for RunBanner {
    type Found = SocketAddr;

    fn read(&mut self, line: &str, _at: Instant) -> Read<SocketAddr> {
        banner_addr(line).map_or(Read::Other, Read::Done)
    }
}

/// The address in ``coldstart: serving `BOOTSTRAP` at http://ADDR/2015-03-31/...``.
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

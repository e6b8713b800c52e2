//! Process-group plumbing for sandboxes: signals, exit descriptions, peak memory.

use std::process::ExitStatus;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a sandbox gets between SIGTERM and SIGKILL at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Makes the process `command` starts die with SIGKILL when the emulator's process dies, however
/// it dies (a `kill -9` of `coldstart` included): a sandbox's processes live in groups of their
/// own, so nothing else would end a runtime busy in a handler. Linux's parent-death signal
/// follows the thread that spawned the child; sandboxes are spawned from the runtime's worker
/// threads, which live as long as the emulator.
pub(crate) fn die_with_emulator(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The emulator died between fork and prctl: follow it at once.
            if libc::getppid() as u32 != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
}

/// Sends `signal` to every process of the group led by `pgid`. A group that is already gone is
/// not an error.
pub(crate) fn signal_group(pgid: Pid, signal: Signal) {
    if signal == Signal::SIGKILL {
        // The group is done for: its id may name another group later.
        crate::watchdog::forget_group(pgid.as_raw() as u32);
    }
    if let Err(err) = killpg(pgid, signal)
        && err != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pgid = pgid.as_raw(), ?signal, %err, "could not signal sandbox");
    }
}

/// How rapid words a runtime's exit: `Runtime exited with error: exit status 1`, `… signal:
/// killed`.
pub(crate) fn describe_exit(status: Option<ExitStatus>) -> String {
    match status {
        Some(status) if status.code() != Some(0) => {
            format!("Runtime exited with error: {}", describe_status(status))
        }
        _ => "Runtime exited without providing a reason".into(),
    }
}

/// A process's exit status in Go's words, as rapid prints it: `exit status 1`, `signal: killed`.
pub(crate) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let signal = status.signal().unwrap_or(0);
    let name = match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        11 => "segmentation fault",
        13 => "broken pipe",
        15 => "terminated",
        _ => return format!("signal: {signal}"),
    };
    format!("signal: {name}")
}

/// How long a peak read from `/proc` serves the `REPORT`s of short invocations.
const PEAK_REUSE: Duration = Duration::from_millis(100);

/// An invocation at least this long always reads the peak afresh: a shorter one can have
/// raised the peak by a page fault's worth of memory at most, and shows up within
/// [`PEAK_REUSE`].
pub(crate) const SHORT_INVOCATION: Duration = Duration::from_millis(1);

/// The `/proc/{pid}/status` file of a process, kept open to read its peak memory again and
/// again without a path lookup each time. The kernel renders the whole file (about 1.5 kB,
/// signal masks and CPU lists included) for each read: 9 % of the emulator's CPU per warm
/// invoke when read for every `REPORT`, so short invocations in quick succession reuse the
/// last read.
#[derive(Debug)]
pub(crate) struct StatusFile {
    file: Option<std::fs::File>,
    /// The last read: when, and the peak it gave.
    last: Mutex<Option<(Instant, u64)>>,
}

impl StatusFile {
    pub(crate) fn open(pid: u32) -> Self {
        Self {
            file: std::fs::File::open(format!("/proc/{pid}/status")).ok(),
            last: Mutex::new(None),
        }
    }

    /// Peak resident memory (`VmHWM`), in MB rounded up; `None` once the process is gone.
    pub(crate) fn peak_rss_mb(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let file = self.file.as_ref()?;
        let mut buf = [0u8; 4096];
        let n = file.read_at(&mut buf, 0).ok()?;
        let mb = parse_peak_mb(std::str::from_utf8(&buf[..n]).ok()?)?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), mb));
        Some(mb)
    }

    /// The peak for the `REPORT` of an invocation that ran `ran`: the last read when the
    /// invocation was short and that read is recent, else a fresh read.
    pub(crate) fn peak_after(&self, ran: Duration) -> Option<u64> {
        if ran < SHORT_INVOCATION {
            let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, mb)) = last.filter(|(at, _)| at.elapsed() < PEAK_REUSE) {
                return Some(mb);
            }
        }
        self.peak_rss_mb()
    }
}

/// Peak resident memory (`VmHWM`) of process `pid`, in MB rounded up.
#[cfg(test)]
pub(crate) fn peak_rss_mb(pid: u32) -> Option<u64> {
    parse_peak_mb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_peak_mb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exits_are_worded_as_rapid_words_them() {
        assert_eq!(
            describe_exit(Some(ExitStatus::from_raw(1 << 8))),
            "Runtime exited with error: exit status 1"
        );
        assert_eq!(
            describe_exit(Some(ExitStatus::from_raw(9))),
            "Runtime exited with error: signal: killed"
        );
        assert_eq!(
            describe_exit(Some(ExitStatus::from_raw(0))),
            "Runtime exited without providing a reason"
        );
    }

    #[test]
    fn reads_our_own_peak_memory() {
        let mb = peak_rss_mb(std::process::id());
        assert!(mb.is_some_and(|mb| mb > 0), "{mb:?}");
        let kept = StatusFile::open(std::process::id());
        // Peaks only grow (other tests run beside this one).
        let again = kept.peak_rss_mb();
        assert!(again >= mb, "{again:?} < {mb:?}");
        let third = kept.peak_rss_mb();
        assert!(
            third >= again,
            "read again from the start: {third:?} < {again:?}"
        );
    }

    #[test]
    fn short_invocations_in_quick_succession_reuse_the_last_read() {
        let status = StatusFile::open(std::process::id());
        let last = || {
            status
                .last
                .lock()
                .map(|l| l.map(|(at, _)| at))
                .ok()
                .flatten()
        };
        assert_eq!(last(), None);
        let first = status.peak_after(Duration::ZERO);
        assert!(first.is_some());
        let read_at = last();
        assert!(
            read_at.is_some(),
            "nothing cached: the first report reads /proc"
        );
        assert_eq!(status.peak_after(Duration::ZERO), first);
        assert_eq!(
            last(),
            read_at,
            "a short invocation right after reuses the read"
        );
        status.peak_after(SHORT_INVOCATION);
        assert!(last() > read_at, "a longer invocation reads afresh");
    }
}

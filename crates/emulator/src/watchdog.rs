//! The orphan watchdog: a process that outlives a `kill -9` of coldstart just long enough to
//! kill the process groups coldstart had started.
//!
//! Parent-death signals ([`crate::process`]) reach only the processes coldstart spawned itself;
//! their own children (a shell runtime's `curl` or `sleep`, the compiler under a build's
//! `cargo`) would be orphaned and live on. Every such process stays in the group of the process
//! coldstart spawned, so killing that group is enough — but someone has to be alive to do it.
//! The watchdog is a small `sh` loop in a group of its own (terminal signals do not reach it),
//! reading group ids from a pipe whose other end only this process holds: `+PGID` to watch a
//! group, `-PGID` once it has been killed. When the pipe reaches end of file — this process has
//! exited, however it exited — it sends SIGKILL to every group still watched, then exits.
//!
//! Forgetting a group once it is killed matters: a dead group's id may later name someone
//! else's group. A process that leaves its group (`setsid`, `setpgid`) escapes the watchdog.

use std::io::Write as _;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// The loop: keep the watched ids in `$groups`; at end of input kill them all.
const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
groups=""
while read -r line; do
  case "$line" in
    +*) groups="$groups ${line#+}" ;;
    -*) kept=""; for g in $groups; do [ "$g" = "${line#-}" ] || kept="$kept $g"; done; groups=$kept ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The write end of the watchdog's pipe, once it is started; `None` after a failed start.
static WATCHDOG: Mutex<Option<Option<ChildStdin>>> = Mutex::new(None);

/// Kill process group `pgid` if this process dies before [`forget_group`] is called for it.
pub fn watch_group(pgid: u32) {
    tell(&format!("+{pgid}\n"));
}

/// Stop watching process group `pgid` (it has been killed, or has ended).
pub fn forget_group(pgid: u32) {
    tell(&format!("-{pgid}\n"));
}

/// A process group that is killed (SIGKILL) when this guard is dropped — and, through the
/// watchdog, when this process dies first. For work such as builds whose leftovers must not
/// outlive it.
#[derive(Debug)]
pub struct GroupGuard(u32);

impl GroupGuard {
    /// Guards the group led by `pgid` (a child spawned with `process_group(0)`).
    pub fn new(pgid: u32) -> Self {
        watch_group(pgid);
        Self(pgid)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0 as i32);
        // A group that is already gone is not an error.
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        forget_group(self.0);
    }
}

fn tell(line: &str) {
    let mut slot = WATCHDOG.lock().unwrap_or_else(PoisonError::into_inner);
    let pipe = slot.get_or_insert_with(start);
    let failed = match pipe {
        Some(stdin) => stdin.write_all(line.as_bytes()).is_err(),
        None => false,
    };
    if failed {
        tracing::warn!("the orphan watchdog is gone: a kill -9 may leave processes behind");
        *pipe = None;
    }
}

fn start() -> Option<ChildStdin> {
    use std::os::unix::process::CommandExt as _;
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        // The child is never waited for: it ends when this process does.
        Ok(mut child) => child.stdin.take(),
        Err(err) => {
            tracing::warn!(%err, "could not start the orphan watchdog");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
            .unwrap_or(false)
    }

    fn wait_until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A watchdog of our own (not the process-wide one) with two groups, one forgotten.
    #[test]
    fn at_end_of_input_the_watched_groups_are_killed_and_the_forgotten_ones_spared() {
        use std::os::unix::process::CommandExt as _;
        let spawn_group = || {
            Command::new("sleep")
                .arg("30")
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let (mut watched, mut forgotten) = (spawn_group(), spawn_group());
        let mut watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut pipe = watchdog.stdin.take().unwrap_or_else(|| panic!("no pipe"));
        writeln!(
            pipe,
            "+{}\n+{}\n-{}",
            watched.id(),
            forgotten.id(),
            forgotten.id()
        )
        .unwrap_or_else(|e| panic!("{e}"));
        drop(pipe);
        let status = watched.wait().unwrap_or_else(|e| panic!("{e}"));
        let _ = watchdog.wait();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "the watched group was not killed");
        assert!(alive(forgotten.id()), "a forgotten group was killed");
        let _ = forgotten.kill();
        let _ = forgotten.wait();
        wait_until("the forgotten group is gone", || !alive(forgotten.id()));
    }
}

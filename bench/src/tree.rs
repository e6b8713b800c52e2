//! The processes below a pid, read from `/proc`: who descends from whom, what each runs, its
//! environment, and the CPU time it used; and the guard that kills them when a bench is
//! interrupted.
//!
//! `coldstart up` starts every sandbox process (an adapter, a web app, a function) in a process
//! group of its own, so killing `up`'s group does not reach them: the benches find them here, by
//! ancestry, to read what they use and to make sure none outlives a run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::{Pid, getpgrp};

/// A process's parent and process group, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    parent: u32,
    group: u32,
}

/// Reads `/proc/PID/stat`; `None` when the process is gone.
fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `PID (COMM) STATE PPID PGRP ...`: COMM may hold spaces and parentheses, so the fields are
/// counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(1);
    Some(Stat {
        parent: fields.next()?.parse().ok()?,
        group: fields.next()?.parse().ok()?,
    })
}

/// Every live process, with its parent and group.
fn every_process() -> HashMap<u32, Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// The processes whose parent is `parent`.
pub fn children(parent: u32) -> Vec<u32> {
    let mut pids: Vec<u32> = every_process()
        .into_iter()
        .filter_map(|(pid, stat)| (stat.parent == parent).then_some(pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// The processes that descend from `root` (not `root` itself), parents before children.
pub fn descendants(root: u32) -> Vec<u32> {
    let processes = every_process();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, stat) in &processes {
        children.entry(stat.parent).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    // Bounded by the number of processes: each is pushed once, by its one parent.
    while let Some(pid) = next.pop() {
        if let Some(kids) = children.get(&pid) {
            found.extend(kids);
            next.extend(kids);
        }
    }
    found
}

/// The process groups of `root`'s descendants, other than the bench's own group.
pub fn groups_below(root: u32) -> Vec<u32> {
    let own = getpgrp().as_raw() as u32;
    let mut groups: Vec<u32> = descendants(root)
        .into_iter()
        .filter_map(|pid| Some(stat(pid)?.group))
        .filter(|&group| group != own)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// SIGKILLs each of `groups` that still exists; returns how many did.
pub fn kill_groups(groups: &[u32]) -> usize {
    groups
        .iter()
        .filter(|&&group| {
            let group = Pid::from_raw(group as i32);
            // Signal 0 only checks that the group exists.
            killpg(group, None).is_ok() && killpg(group, Signal::SIGKILL).is_ok()
        })
        .count()
}

/// The executable `pid` runs. The kernel appends ` (deleted)` when the file was replaced since
/// (a rebuild during the run): that suffix is removed, so the process is still recognised.
pub fn exe(pid: u32) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = path.to_str()?;
    Some(PathBuf::from(
        text.strip_suffix(" (deleted)").unwrap_or(text),
    ))
}

/// The descendants of `root` that run `program` (an absolute, canonical path).
pub fn running(root: u32, program: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = descendants(root)
        .into_iter()
        .filter(|&pid| exe(pid).is_some_and(|exe| exe == program))
        .collect();
    pids.sort_unstable();
    pids
}

/// The value of the environment variable `name` that `pid` was started with.
pub fn env_var(pid: u32, name: &str) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/environ");
    let environ = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    environ
        .split(|&byte| byte == 0)
        .filter_map(|pair| std::str::from_utf8(pair).ok()?.split_once('='))
        .find_map(|(key, value)| (key == name).then(|| value.to_owned()))
        .with_context(|| format!("no {name} in {path}"))
}

/// What a process has used so far, summed over its live threads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Time on a CPU (`/proc/PID/task/TID/schedstat`, first field), in nanoseconds.
    pub cpu_ns: u64,
    /// Context switches, voluntary and not (`/proc/PID/task/TID/status`).
    pub switches: u64,
}

impl Usage {
    /// Adds `more` to this.
    pub fn add(&mut self, more: Usage) {
        self.cpu_ns += more.cpu_ns;
        self.switches += more.switches;
    }

    /// What was used between `before` and `self`.
    pub fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}

/// The CPU time and context switches of `pid`'s live threads. A thread that exits between two
/// readings takes its share with it: the servers measured keep their threads.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))?;
    let mut total = Usage::default();
    for task in tasks {
        let task = task.with_context(|| format!("reading {dir}"))?.path();
        // A thread that has just exited: nothing more to count.
        let (Ok(schedstat), Ok(status)) = (
            std::fs::read_to_string(task.join("schedstat")),
            std::fs::read_to_string(task.join("status")),
        ) else {
            continue;
        };
        total.cpu_ns += schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .with_context(|| format!("no run time in {}/schedstat", task.display()))?;
        total.switches += status
            .lines()
            .filter(|line| line.contains("ctxt_switches:"))
            .filter_map(|line| line.split_once(':')?.1.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(total)
}

/// The signals the bench turns into a clean exit: Ctrl-C and a closed terminal.
fn interrupts() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set
}

/// Turns Ctrl-C (SIGINT) and a closed terminal (SIGHUP) into a clean exit: every process the
/// bench started (and every process they started, sandboxes included) is SIGKILLed by process
/// group, then `cleanup` runs (no `Drop` will), and the bench, `program` in the message it
/// prints, exits with 128 + the signal's number. Without it, Ctrl-C would end the bench at once,
/// no `Drop` would run, and what it started in groups of their own (which the terminal's signals
/// do not reach), `coldstart up` and the web app among them, would be left serving.
///
/// Call it first, before any other thread exists. The signals are blocked in every thread and
/// taken by one waiting thread. Children inherit a blocked mask (`std::process::Command` keeps
/// it), so SIGTERM, with which the bench stops `coldstart up` and the web app, is left alone: a
/// `kill` of the bench itself still ends it without this cleanup. Blocking SIGINT and SIGHUP in
/// the children changes nothing that is measured: the bench stops them with SIGTERM and SIGKILL
/// only.
pub fn kill_children_on_interrupt(
    program: &'static str,
    cleanup: impl FnOnce() + Send + 'static,
) -> anyhow::Result<()> {
    let set = interrupts();
    // Blocked in this thread before any other starts, so every thread inherits the mask and only
    // the waiter below takes these signals.
    set.thread_block().context("blocking SIGINT and SIGHUP")?;
    thread::Builder::new()
        .name("interrupts".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            eprintln!("{program}: {signal}; killing what it started");
            // Collected while the parents are alive: a sandbox whose `coldstart up` is gone is
            // no longer found by ancestry.
            let groups = groups_below(std::process::id());
            kill_groups(&groups);
            cleanup();
            std::process::exit(128 + signal as i32);
        })
        .context("starting the interrupt thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 109 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                parent: 17,
                group: 4242
            })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[test]
    fn a_child_in_its_own_group_is_found_and_killed() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep starts");
        let me = std::process::id();
        assert!(children(me).contains(&child.id()));
        assert!(descendants(me).contains(&child.id()));
        assert_eq!(
            exe(child.id()).and_then(|p| p.file_name().map(ToOwned::to_owned)),
            Some("sleep".into())
        );
        let groups = groups_below(me);
        assert!(groups.contains(&child.id()), "{groups:?}");
        assert!(!groups.contains(&(getpgrp().as_raw() as u32)));
        assert!(kill_groups(&[child.id()]) == 1);
        let _ = child.wait();
        assert_eq!(kill_groups(&[child.id()]), 0);
    }

    #[test]
    fn usage_counts_this_process_cpu() {
        let before = usage(std::process::id()).expect("our own usage");
        let spun = std::time::Instant::now();
        while spun.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::black_box(0);
        }
        let used = usage(std::process::id())
            .expect("our own usage")
            .since(before);
        assert!(used.cpu_ns >= 10_000_000, "{used:?}");
    }

    #[test]
    fn env_var_reads_proc_environ() {
        let path = env_var(std::process::id(), "PATH");
        assert_eq!(path.ok(), std::env::var("PATH").ok());
        assert!(env_var(std::process::id(), "NO_SUCH_VARIABLE_HERE").is_err());
    }
}

//! Stopping `coldstart up` while everything it runs is busy: a build that never ends, `--watch`
//! watchers, a runtime busy in its handler with a child of its own, an extension, a WebSocket
//! client attached. After a SIGTERM or a kill -9 of `up` alone, no process it started (children
//! and grandchildren) may survive; on SIGTERM the extension gets `SHUTDOWN`.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{PATIENCE, Server, app, coldstart, process_state, repo, wait_line};

/// A stack with one function whose build never ends, one whose runtime stays busy in its
/// handler (with a `sleep` child; a SIGTERM of `up` waits for its 3 s timeout), and a WebSocket
/// API whose function has an extension.
fn busy_stack(dir: &Path) -> String {
    let busy = repo("crates/testkit/fixtures/busy-handler.sh");
    let extension = repo("crates/testkit/fixtures/extension.sh");
    let pids = dir.display();
    format!(
        r#"
[functions.slow]
build = "echo $$ > {pids}/build.pid; sleep 600 & echo $! > {pids}/build-child.pid; wait"
bootstrap = "answer.sh"

[functions.busy]
bootstrap = "{busy}"
timeout = 3

[functions.echo]
bootstrap = "event-echo.sh"
extensions = ["{extension}"]

[websocket_apis.chat]
port = 0
stage = "dev"
routes = {{ "$connect" = "echo", "$default" = "echo" }}
"#,
        busy = busy.display(),
        extension = extension.display(),
    )
}

/// The pid written in `file` once it is there (the build writes it when it starts).
fn pid_in(file: &Path) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} was never written",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every process whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // Fields after the command: state, ppid, pgrp.
                    let after = stat.rsplit_once(") ")?.1.to_owned();
                    after.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Every process under `pid`: its children, theirs, and so on.
fn descendants(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(i32, i32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat
                .rsplit_once(") ")?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        at += 1;
    }
    found.remove(0);
    found
}

/// A process's command line, for messages.
fn command_line(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// Opens a WebSocket connection to `addr` by hand and keeps it open.
fn attach_websocket(addr: &str) -> std::net::TcpStream {
    let mut stream =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(PATIENCE))
        .unwrap_or_else(|e| panic!("{e}"));
    write!(
        stream,
        "GET /dev HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut head = [0u8; 512];
    let n = stream.read(&mut head).unwrap_or_else(|e| panic!("{e}"));
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A process that outlived `up`: its command line, pid and state.
type Survivor = (String, i32, Option<char>);

/// Starts the busy stack under `up --watch`, stops `up` alone with `signal`, and returns
/// (the processes it had started that are still alive, `up`'s stdout after the signal).
fn stop_busy_up(signal: Signal) -> (Vec<Survivor>, Vec<String>) {
    let (dir, config) = app("");
    std::fs::write(&config, busy_stack(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    let (mut server, table) = Server::up_with(&config, &["--watch"]);
    let ws = table
        .iter()
        .find(|l| l.contains("ws://"))
        .and_then(|l| l.split("ws://").nth(1))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no WebSocket API in {table:?}"))
        .to_owned();

    // The build is running (and stays so).
    let build = pid_in(&dir.path().join("build.pid"));
    let build_child = pid_in(&dir.path().join("build-child.pid"));
    // The runtime is busy in its handler, its extension waiting for events.
    let endpoint = server.endpoint.clone();
    std::thread::spawn(move || {
        let _ = coldstart()
            .args(["invoke", "busy", "{}", "--endpoint", &endpoint])
            .output();
    });
    let line = wait_line(&server.stdout, |l| l.starts_with("[busy] BUSY PID="));
    let runtime: i32 = line
        .trim_start_matches("[busy] BUSY PID=")
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    let _socket = attach_websocket(&ws);

    // The runtime's `sleep` is started right after its line.
    let deadline = Instant::now() + PATIENCE;
    while group_members(runtime).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the busy runtime never started its child"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_line(&server.stdout, |l| {
        l.starts_with("[echo] EXTENSION registered")
    });

    // Everything `up` started, children and grandchildren, as the test saw it.
    let up = server.child.id() as i32;
    let watched: Vec<(String, i32)> = descendants(up)
        .into_iter()
        .map(|pid| (command_line(pid), pid))
        .collect();
    for pid in [build, build_child, runtime] {
        assert!(
            watched.iter().any(|(_, p)| *p == pid),
            "{pid} not under up: {watched:?}"
        );
    }

    let _ = kill(Pid::from_raw(server.child.id() as i32), signal);
    let mut after = Vec::new();
    if signal == Signal::SIGTERM {
        // The extension hears SHUTDOWN before `up` exits.
        let shutdown = wait_line(&server.stdout, |l| {
            l.starts_with("[echo] EXTENSION event") && l.contains("SHUTDOWN")
        });
        after.push(shutdown);
    }
    let _ = server.child.wait();
    let deadline = Instant::now() + PATIENCE;
    let alive = |watched: &[(String, i32)]| -> Vec<Survivor> {
        watched
            .iter()
            .map(|(what, pid)| (what.clone(), *pid, process_state(*pid)))
            .filter(|(_, _, state)| state.is_some_and(|s| s != 'Z'))
            .collect()
    };
    while !alive(&watched).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = alive(&watched);
    // Whatever is left must not outlive the test.
    for (_, pid, _) in &left {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    (left, after)
}

#[test]
fn sigterm_of_up_stops_builds_watchers_runtimes_grandchildren_and_shuts_extensions_down() {
    let (left, said) = stop_busy_up(Signal::SIGTERM);
    assert!(left.is_empty(), "survived a SIGTERM of up: {left:?}");
    assert!(
        said[0].contains("\"shutdownReason\":\"spindown\""),
        "{said:?}"
    );
}

#[test]
fn a_kill_9_of_up_takes_its_builds_runtimes_and_their_children_with_it() {
    let (left, _) = stop_busy_up(Signal::SIGKILL);
    assert!(left.is_empty(), "survived a kill -9 of up: {left:?}");
}

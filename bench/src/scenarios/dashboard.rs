//! `dashboard`: what the live dashboard costs warm invokes. Three `coldstart run` servers of
//! `echo` (concurrency 2): plain, with `--dashboard` and no page open, and with `--dashboard`
//! and a client reading its live events (`/api/events`, every invocation and log line);
//! closed-loop throughput runs alternate between them and the median run of each is compared;
//! then sequential warm invokes interleaved.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use coldstart_protocol::invoke;

use crate::core::alternate::{self, Plan};
use crate::core::http::{self, Target};
use crate::core::process::Usage;
use crate::core::report::{Report, Table};
use crate::core::stack::{Coldstart, binary};
use crate::scenarios::{Context, invoke as invoke_scenario};

const FUNCTION: &str = "function";
const CLIENTS: usize = 8;
const CONCURRENCY: usize = 2;
/// Most throughput the open dashboard may cost (issue 15).
const GOAL_DROP: f64 = 0.05;

/// A client of `/api/events` on a thread of its own (not the measuring runtime's), reading and
/// counting bytes until dropped.
struct Watcher {
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Watcher {
    fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(addr).context("connecting to the dashboard")?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        write!(
            stream,
            "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        )?;
        let (stop, bytes) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let thread = std::thread::spawn({
            let (stop, bytes) = (stop.clone(), bytes.clone());
            move || {
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    match stream.read(&mut buf) {
                        Ok(0) => anyhow::bail!("the dashboard closed the event stream"),
                        Ok(n) => {
                            bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        });
        Ok(Self {
            stop,
            bytes,
            thread: Some(thread),
        })
    }

    /// Bytes of events read so far.
    fn read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn close(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => anyhow::bail!("the event reader panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("dashboard", cx.quick);
    let coldstart = binary("coldstart")?;
    let echo = binary("echo")?;
    let payload = http::payload();
    report.setup.push((
        "servers",
        format!(
            "coldstart run --concurrency {CONCURRENCY}: echo, and echo with --dashboard and one \
             client reading /api/events"
        ),
    ));
    let path = invoke::invoke_path(FUNCTION);
    let with_dashboard = ["--dashboard".as_ref(), "127.0.0.1:0".as_ref()];
    let plain = Coldstart::run(&coldstart, &echo, Some(CONCURRENCY))?;
    let unwatched = Coldstart::run_with(&coldstart, &echo, Some(CONCURRENCY), &with_dashboard)?;
    let dash = Coldstart::run_with(&coldstart, &echo, Some(CONCURRENCY), &with_dashboard)?;
    let watcher = Watcher::open(dash.endpoint("dashboard", "dashboard")?.addr)?;
    let targets = [
        Target::echo("echo", plain.invoke_api()?, path.clone()),
        Target::echo(
            "echo, --dashboard, no page open",
            unwatched.invoke_api()?,
            path.clone(),
        ),
        Target::echo(
            "echo, --dashboard, open and streaming",
            dash.invoke_api()?,
            path.clone(),
        ),
    ];

    eprintln!("dashboard: throughput, alternating runs");
    let plan = Plan::standard(cx, CLIENTS);
    // coldstart's own CPU time (not its sandboxes'), which the dashboard adds to: steadier than
    // throughput on a shared machine.
    let pids = [plain.pid()?, unwatched.pid()?, dash.pid()?];
    let (mut cpu_ns, mut answered) = ([0u64; 3], [0usize; 3]);
    let runs = alternate::runs(&cx.rt, &targets, &payload, &plan, |i, run| {
        let before = Usage::of(pids[i]);
        let load = run();
        cpu_ns[i] += Usage::of(pids[i]).since(before).cpu_ns;
        answered[i] += load.right;
        load
    });
    let streamed = watcher.read();

    eprintln!("dashboard: sequential warm invokes, interleaved");
    let rounds = invoke_scenario::rounds(cx);
    let sequential = cx.rt.block_on(http::sequential(&targets, &payload, rounds));
    let closed = watcher.close();
    report.note("coldstart run", plain.stop()?);
    report.note("coldstart run --dashboard (no page)", unwatched.stop()?);
    report.note("coldstart run --dashboard", dash.stop()?);
    closed?;

    let title = format!(
        "Throughput: {CLIENTS} clients back to back, concurrency {CONCURRENCY}, {}",
        plan.about()
    );
    let mut table = Table::new(
        title,
        &[
            "invokes/s",
            "runs (invokes/s)",
            "coldstart CPU us/invoke",
            "429",
            "other",
            "broken",
        ],
    )
    .about(format!(
        "the live client read {streamed} bytes of events during the runs"
    ));
    let mut medians = [0.0f64; 3];
    let cpu_per_invoke = |i: usize| cpu_ns[i] as f64 / answered[i].max(1) as f64 / 1000.0;
    for (i, target) in targets.iter().enumerate() {
        let (median, mut cells) = alternate::cells(&runs[i]);
        medians[i] = median;
        cells.insert(2, format!("{:.1}", cpu_per_invoke(i)));
        table.row(target.label.clone(), cells);
    }
    table.line(format!(
        "--dashboard with no page open: {:.1} % less",
        (1.0 - medians[1] / medians[0].max(1e-9)) * 100.0
    ));
    table.line(format!(
        "coldstart CPU per invoke: +{:.1} us with --dashboard, +{:.1} us with it streaming",
        cpu_per_invoke(1) - cpu_per_invoke(0),
        cpu_per_invoke(2) - cpu_per_invoke(0)
    ));
    let drop = 1.0 - medians[2] / medians[0].max(1e-9);
    table.goal(
        "throughput drop with the dashboard streaming",
        format!("{:.1} %", drop * 100.0),
        &format!("<= {:.0} %", GOAL_DROP * 100.0),
        drop <= GOAL_DROP,
    );
    report.tables.push(table);

    let rows = sequential.with_context(|| format!("{:?}", report.notes))?;
    let title = "Sequential warm invokes, one keep-alive connection each (us)";
    report.tables.push(invoke_scenario::rounds_about(
        Table::latency(title, &[&rows[0], &rows[1], &rows[2]], Some(&rows[0])),
        rounds,
    ));
    Ok(report)
}

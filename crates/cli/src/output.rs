//! Terminal output: function logs on standard output through a writer thread (so a slow terminal
//! never blocks an invocation), diagnostics on standard error through `tracing`.

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// How long the writer gathers lines after a wake-up before writing them: one wake-up (and one
/// write) per burst instead of one per line keeps the invocation path free of futex calls.
const GATHER: Duration = Duration::from_millis(2);

use coldstart_emulator::LogSink;

/// Installs the `tracing` subscriber: `COLDSTART_LOG` sets the filter (`LEVEL` and
/// `TARGET=LEVEL` directives, comma-separated; default: `info` for coldstart, `warn` for the
/// rest; a value that does not parse keeps the default).
pub(crate) fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("COLDSTART_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            ["coldstart", "coldstart_emulator", "coldstart_websocket"]
                .into_iter()
                .fold(
                    Targets::new().with_default(LevelFilter::WARN),
                    |t, crate_name| t.with_target(crate_name, LevelFilter::INFO),
                )
        });
    tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .finish()
        .with(filter)
        .init();
}

/// Prints each log line as `[function] line` on standard output (standard error with
/// `--ready-json`, whose one line owns standard output).
#[derive(Debug)]
pub(crate) struct StdoutSink {
    /// The writer thread holds the receiver; an empty string asks it to flush and exit.
    lines: mpsc::Sender<String>,
    /// The writer thread, joined by [`StdoutSink::close`].
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl StdoutSink {
    /// Lines go to standard output, or to standard error when `to_stderr`.
    pub(crate) fn new(to_stderr: bool) -> Self {
        let (lines, rx) = mpsc::channel::<String>();
        let writer = std::thread::Builder::new()
            .name("coldstart-logs".into())
            .spawn(move || {
                // Standard error is shared with human output: its lock is taken per burst, not
                // held by this thread.
                let target: Box<dyn Write> = if to_stderr {
                    Box::new(std::io::stderr())
                } else {
                    Box::new(std::io::stdout().lock())
                };
                let mut out = std::io::BufWriter::new(target);
                'lines: while let Ok(line) = rx.recv() {
                    if line.is_empty() {
                        break;
                    }
                    let _ = out.write_all(line.as_bytes());
                    std::thread::sleep(GATHER);
                    // Write the whole burst, then flush once.
                    while let Ok(line) = rx.try_recv() {
                        if line.is_empty() {
                            break 'lines;
                        }
                        let _ = out.write_all(line.as_bytes());
                    }
                    let _ = out.flush();
                }
                let _ = out.flush();
            })
            .ok();
        Self {
            lines,
            writer: std::sync::Mutex::new(writer),
        }
    }

    /// Writes every line logged so far and stops the writer: called last, so that the
    /// sandboxes' final lines (an extension's answer to `SHUTDOWN`) are not lost at exit.
    pub(crate) fn close(&self) {
        let _ = self.lines.send(String::new());
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

/// Prints the `--ready-json` line on standard output, alone, and flushes it.
pub(crate) fn ready_line(endpoints: &[coldstart_stack::Endpoint]) {
    let line = coldstart_stack::ready_json(endpoints);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl LogSink for StdoutSink {
    fn line(&self, function: &str, line: &str) {
        let _ = self.lines.send(format!("[{function}] {line}\n"));
    }
}

/// The `SCHEDULES` block `up` prints after its table: each schedule, its function, its
/// expression and when it fires next (in UTC, and in its own zone when that is another).
pub(crate) fn schedules(list: &[coldstart_stack::schedules::Listed], off: bool) {
    if list.is_empty() {
        return;
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|l| {
            let s = &l.spec;
            let next = match l.next {
                _ if off => "off (--no-schedules)".to_owned(),
                _ if !s.enabled => "disabled".to_owned(),
                None => "never again".to_owned(),
                Some(t) if s.timezone == chrono_tz::UTC => {
                    format!("next {}", t.format("%Y-%m-%d %H:%M:%S UTC"))
                }
                Some(t) => format!(
                    "next {} ({})",
                    t.format("%Y-%m-%d %H:%M:%S UTC"),
                    t.with_timezone(&s.timezone).format("%Y-%m-%d %H:%M %Z")
                ),
            };
            [
                s.name.clone(),
                s.function.clone(),
                s.expression.to_string(),
                next,
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0).max(8), width(1).max(8), width(2));
    let mut out = format!(
        "  {:w0$}  {:w1$}  {:w2$}  WHEN\n",
        "SCHEDULE", "FUNCTION", ""
    );
    for [name, function, expression, next] in &rows {
        out.push_str(&format!(
            "  {name:w0$}  {function:w1$}  {expression:w2$}  {next}\n"
        ));
    }
    eprintln!("{out}");
}

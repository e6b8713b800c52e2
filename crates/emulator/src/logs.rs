//! Function logs: every line a sandbox writes, plus the platform's `START`, `END` and `REPORT`.
//!
//! A sandbox's stdout and stderr share one pipe, as in Lambda, so lines keep the order the
//! function wrote them in; its external extensions write to a second pipe, read by a second
//! capture, so that their lines can be told apart (`extension` rather than `function` records on
//! the sandbox's platform event stream, where every captured line is also published). The read end is non-blocking and guarded by one lock: a reader task
//! drains it as data arrives, and the invocation path drains it again before writing `END`, so a
//! line the function printed before answering always lands inside its invocation.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::unix::AsyncFd;

use coldstart_protocol::level::LogLevel;
use coldstart_protocol::limits::LOG_TAIL;
use coldstart_protocol::telemetry::{Category, Record};

use crate::notes::StreamEvent;
use crate::telemetry::Telemetry;

/// Where function log lines go. The CLI prints them; tests collect them.
pub trait LogSink: Send + Sync + 'static {
    /// One line (without its newline) of `function`'s log: its own output or a platform line.
    fn line(&self, function: &str, line: &str);

    /// Whether the sink also wants every sandbox's platform event stream
    /// ([`LogSink::record`]). Default: no, and no record is built for it.
    fn wants_records(&self) -> bool {
        false
    }

    /// Whether the sink also wants the `function` and `extension` events of the stream (each
    /// log line again, as a record). Default: yes, when it wants records at all; a sink that
    /// reads lines through [`LogSink::line`] alone says no, and they are not built for it.
    fn wants_log_records(&self) -> bool {
        true
    }

    /// One event of `function`'s platform event stream ([`StreamEvent`], in JSON the Telemetry
    /// API's shape `{"time", "type", "record"}`: `platform.initStart`, `platform.start`,
    /// `platform.runtimeDone`, `platform.report`, `function`, `extension`, ...): the stream
    /// Telemetry API subscribers read, whatever they subscribed to and whatever the log level;
    /// also coldstart's own events, typed `coldstart.*` ([`crate::notes`]: previews of an
    /// invocation's event and answer, front-door requests, builds), which subscribers never get.
    /// Called on the invocation's path: keep what is needed (a clone is cheap) and render it
    /// later.
    fn record(&self, function: &str, event: &StreamEvent) {
        let _ = (function, event);
    }
}

/// A [`LogSink`] that emits each line as a `tracing` event at INFO level.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl LogSink for TracingSink {
    fn line(&self, function: &str, line: &str) {
        tracing::info!(function, "{line}");
    }
}

/// Longest line kept whole; a longer run without a newline is emitted in pieces.
const MAX_LINE: usize = 256 * 1024;
/// The tail buffer is trimmed to [`LOG_TAIL`] bytes once it grows past this.
const TAIL_TRIM_AT: usize = 64 * 1024;

/// The log pipe of one sandbox and the capture of the current invocation's lines.
pub(crate) struct LogCapture {
    function: Arc<str>,
    sink: Arc<dyn LogSink>,
    /// The sandbox's event stream, where each captured line is published.
    telemetry: Arc<Telemetry>,
    /// Whose lines these are: [`Category::Function`] or [`Category::Extension`].
    category: Category,
    /// With the JSON log format, `(application, system)`: the levels below which the function's
    /// lines and the platform's records ([`Self::platform_record`]) are left out of the log (the
    /// sink and the tail; subscribers still get them). `None`: text lines, nothing filtered.
    levels: Option<(LogLevel, LogLevel)>,
    /// The pipe's read end. Every read happens under `state`'s lock.
    pipe: AsyncFd<OwnedFd>,
    state: Mutex<CaptureState>,
}

struct CaptureState {
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// The current invocation's log, kept only when its caller asked for the tail.
    tail: Option<Vec<u8>>,
    /// The pipe reached end of file.
    eof: bool,
}

impl LogCapture {
    /// Wraps the read end of a sandbox's log pipe, whose lines are `category`'s.
    pub(crate) fn new(
        function: Arc<str>,
        sink: Arc<dyn LogSink>,
        read_end: OwnedFd,
        telemetry: Arc<Telemetry>,
        category: Category,
        levels: Option<(LogLevel, LogLevel)>,
    ) -> io::Result<Self> {
        set_nonblocking(&read_end)?;
        Ok(Self {
            function,
            sink,
            telemetry,
            category,
            levels,
            // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, so the descriptor stays open and
            // refers to the same pipe for the `AsyncFd`'s whole life.
            pipe: unsafe { AsyncFd::register(read_end) }.map_err(io::Error::from)?,
            state: Mutex::new(CaptureState {
                partial: Vec::new(),
                tail: None,
                eof: false,
            }),
        })
    }

    /// Reads the pipe as data arrives until every writer has closed it.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let Ok(mut guard) = self.pipe.readable().await else {
                return;
            };
            loop {
                // `try_io` clears readiness only when our own read hits WouldBlock, so a wake-up
                // is never lost to data that arrives between the read and the clear.
                match guard.try_io(|_| self.read_once()) {
                    Ok(Ok(0)) => return self.flush_partial(),
                    Ok(Ok(_)) => continue,
                    Ok(Err(_)) => return self.flush_partial(),
                    Err(_would_block) => break,
                }
            }
        }
    }

    /// Reads everything already in the pipe, without waiting.
    pub(crate) fn drain(&self) {
        while let Ok(n) = self.read_once() {
            if n == 0 {
                break;
            }
        }
    }

    fn read_once(&self) -> io::Result<usize> {
        let mut state = self.lock();
        if state.eof {
            return Ok(0);
        }
        let mut buf = [0u8; 16 * 1024];
        let n = loop {
            match (&File(self.pipe.get_ref())).read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            state.eof = true;
            return Ok(0);
        }
        let mut rest = &buf[..n];
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(pos);
            if state.partial.is_empty() {
                self.emit(&mut state, line, true);
            } else {
                let mut whole = std::mem::take(&mut state.partial);
                whole.extend_from_slice(line);
                self.emit(&mut state, &whole, true);
            }
            rest = &after[1..];
        }
        state.partial.extend_from_slice(rest);
        if state.partial.len() > MAX_LINE {
            let whole = std::mem::take(&mut state.partial);
            self.emit(&mut state, &whole, true);
        }
        Ok(n)
    }

    fn flush_partial(&self) {
        let mut state = self.lock();
        if !state.partial.is_empty() {
            let whole = std::mem::take(&mut state.partial);
            self.emit(&mut state, &whole, true);
        }
    }

    /// Keeps lines for the tail from now on: a cold start's init output belongs to the tail of
    /// the invocation that caused it.
    pub(crate) fn keep_tail(&self) {
        self.lock().tail.get_or_insert_with(Vec::new);
    }

    /// Starts an invocation's log: keeps its lines for the tail when `tail` is set, writes `START`.
    pub(crate) fn begin_invocation(&self, request_id: &str, tail: bool) {
        let mut state = self.lock();
        if !tail {
            state.tail = None;
        } else if state.tail.is_none() {
            state.tail = Some(Vec::new());
        }
        if self.levels.is_none() {
            let line = format!("START RequestId: {request_id} Version: $LATEST");
            self.emit(&mut state, line.as_bytes(), false);
        }
    }

    /// Writes a platform line (`END`, `REPORT`, a timeout notice) into a text log.
    pub(crate) fn platform_line(&self, line: &str) {
        if self.levels.is_some() {
            return;
        }
        let mut state = self.lock();
        self.emit(&mut state, line.as_bytes(), false);
    }

    /// Whether the platform's records are written as JSON lines.
    pub(crate) fn json(&self) -> bool {
        self.levels.is_some()
    }

    /// Whether a platform record of `level` is written into the log: a JSON log's, at or above
    /// its `SystemLogLevel`.
    pub(crate) fn wants_record(&self, level: LogLevel) -> bool {
        self.levels.is_some_and(|(_, system)| level >= system)
    }

    /// Writes a platform record, serialised, into a JSON log (see [`Self::wants_record`]).
    pub(crate) fn platform_record(&self, json: &str) {
        if self.levels.is_none() {
            return;
        }
        let mut state = self.lock();
        self.emit(&mut state, json.as_bytes(), false);
    }

    /// Ends the invocation's capture, returning the last 4 KB of its log when it was kept.
    pub(crate) fn end_invocation(&self) -> Option<Vec<u8>> {
        let mut tail = self.lock().tail.take()?;
        if tail.len() > LOG_TAIL {
            tail.drain(..tail.len() - LOG_TAIL);
        }
        Some(tail)
    }

    /// Writes one line to the sink and the tail; the process's `own` lines (not the platform's)
    /// are published too.
    fn emit(&self, state: &mut CaptureState, line: &[u8], own: bool) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if own {
            self.telemetry
                .publish(self.category, || match self.category {
                    Category::Extension => Record::ExtensionLog(text.to_string()),
                    _ => Record::Function(text.to_string()),
                });
            if let Some((application, _)) = self.levels
                && self.category == Category::Function
                && application > LogLevel::Trace
                && LogLevel::of_json_line(&text) < application
            {
                return;
            }
        }
        self.sink.line(&self.function, &text);
        if let Some(tail) = state.tail.as_mut() {
            tail.extend_from_slice(line);
            tail.push(b'\n');
            if tail.len() > TAIL_TRIM_AT {
                tail.drain(..tail.len() - LOG_TAIL);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Borrowed `read(2)` on the pipe without taking ownership of the descriptor.
struct File<'a>(&'a OwnedFd);

impl Read for &File<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the descriptor is open for as long as `self.0` is borrowed, and `buf` is a
        // valid writable region of `buf.len()` bytes.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex as StdMutex;

    fn stream() -> Arc<Telemetry> {
        Arc::new(Telemetry::new(tokio_util::sync::CancellationToken::new()))
    }

    #[derive(Default)]
    struct Collect(StdMutex<Vec<String>>);
    impl LogSink for Collect {
        fn line(&self, function: &str, line: &str) {
            if let Ok(mut v) = self.0.lock() {
                v.push(format!("{function}|{line}"));
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn drain_splits_lines_and_keeps_the_invocations_tail() -> io::Result<()> {
        let sink = Arc::new(Collect::default());
        let (r, mut w) = std::io::pipe()?;
        let capture = LogCapture::new(
            "f".into(),
            sink.clone(),
            OwnedFd::from(r),
            stream(),
            Category::Function,
            None,
        )?;
        capture.begin_invocation("id-1", true);
        w.write_all(b"hello\nwor")?;
        capture.drain();
        w.write_all(b"ld\r\n")?;
        capture.drain();
        capture.platform_line("END RequestId: id-1");
        let tail = capture.end_invocation().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&tail),
            "START RequestId: id-1 Version: $LATEST\nhello\nworld\nEND RequestId: id-1\n"
        );
        let lines = sink.0.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(lines[1..3], ["f|hello".to_owned(), "f|world".to_owned()]);
        // Without Tail nothing is kept.
        capture.begin_invocation("id-2", false);
        assert!(capture.end_invocation().is_none());
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tail_is_the_last_4_kb() -> io::Result<()> {
        let (r, _w) = std::io::pipe()?;
        let capture = LogCapture::new(
            "f".into(),
            Arc::new(Collect::default()),
            OwnedFd::from(r),
            stream(),
            Category::Function,
            None,
        )?;
        capture.begin_invocation("id", true);
        for i in 0..2000 {
            capture.platform_line(&format!("line {i}"));
        }
        let tail = capture.end_invocation().unwrap_or_default();
        assert_eq!(tail.len(), LOG_TAIL);
        assert!(String::from_utf8_lossy(&tail).ends_with("line 1999\n"));
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_json_log_leaves_out_lines_below_the_application_level() -> io::Result<()> {
        let sink = Arc::new(Collect::default());
        let (r, mut w) = std::io::pipe()?;
        let capture = LogCapture::new(
            "f".into(),
            sink.clone(),
            OwnedFd::from(r),
            stream(),
            Category::Function,
            Some((LogLevel::Warn, LogLevel::Info)),
        )?;
        capture.begin_invocation("id", true);
        w.write_all(b"{\"level\":\"debug\",\"m\":1}\nplain\n{\"level\":\"ERROR\",\"m\":2}\n")?;
        w.write_all(b"{\"level\":\"warn\",\"m\":3}\n")?;
        capture.drain();
        let tail = capture.end_invocation().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&tail),
            "{\"level\":\"ERROR\",\"m\":2}\n{\"level\":\"warn\",\"m\":3}\n"
        );
        let lines = sink.0.lock().map(|v| v.len()).unwrap_or_default();
        assert_eq!(
            lines, 2,
            "a JSON log has no START line and keeps WARN and above"
        );
        assert!(capture.wants_record(LogLevel::Info));
        assert!(!capture.wants_record(LogLevel::Debug));
        Ok(())
    }
}

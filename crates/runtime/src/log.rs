//! Log lines in the function's log format, with the request id of the invocation they belong to.
//!
//! With `LoggingConfig.LogFormat` JSON, Lambda sets `AWS_LAMBDA_LOG_FORMAT=JSON` and
//! `AWS_LAMBDA_LOG_LEVEL`; each line is then one JSON object, as the managed runtimes write them
//! (`{"timestamp", "level", "requestId", "message"}`), and lines below the level are not written
//! at all (Lambda would drop them anyway). With the text format every line is written, as
//! `timestamp⇥request id⇥LEVEL⇥message`. Lines go to stderr, which Lambda captures.
//!
//! ```no_run
//! use coldstart_runtime::{Context, Error};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     coldstart_runtime::run(|name: String, _ctx: Context| async move {
//!         coldstart_runtime::info!("greeting {name}");
//!         coldstart_runtime::debug!("written only when AWS_LAMBDA_LOG_LEVEL allows DEBUG");
//!         Ok::<_, Error>(format!("hello, {name}"))
//!     })
//!     .await
//! }
//! ```

use std::fmt::{self, Write as _};
use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use coldstart_protocol::env;
pub use coldstart_protocol::level::LogLevel as Level;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
    /// Where lines go instead of stderr, and in which format ([`to_writer`]).
    static TARGET: Target;
}

/// A log written somewhere else than the process's stderr.
struct Target {
    writer: Mutex<Box<dyn std::io::Write + Send>>,
    format: Format,
}

/// How this process writes its lines, read once from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    json: bool,
    /// Lines below it are not written (JSON format only).
    level: Level,
}

impl Format {
    fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let json = lookup(env::LOG_FORMAT).is_some_and(|f| f.eq_ignore_ascii_case("JSON"));
        let level = lookup(env::LOG_LEVEL)
            .and_then(|l| Level::parse(&l))
            .unwrap_or_default();
        Self {
            json,
            level: if json { level } else { Level::Trace },
        }
    }
}

fn format() -> Format {
    static FORMAT: OnceLock<Format> = OnceLock::new();
    *FORMAT.get_or_init(Format::from_env)
}

/// Whether a line of `level` is written.
pub fn enabled(level: Level) -> bool {
    let format = TARGET.try_with(|t| t.format).unwrap_or_else(|_| format());
    level >= format.level
}

/// Writes one line of `level` (use the [`info!`](crate::info) family of macros).
pub fn write(level: Level, message: fmt::Arguments<'_>) {
    let render_with = |format: Format| {
        (level >= format.level).then(|| {
            render(
                format.json,
                SystemTime::now(),
                level,
                request_id().as_deref(),
                message,
            )
        })
    };
    let redirected = TARGET.try_with(|target| {
        if let Some(line) = render_with(target.format) {
            let mut writer = target.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writer.write_all(line.as_bytes());
        }
    });
    if redirected.is_err()
        && let Some(line) = render_with(format())
    {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Runs `future` with every line written through this module (the [`info!`](crate::info)
/// family, and the runtime's own lines) going to `writer` instead of stderr, in the log format
/// that `lookup` gives (it maps `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` to their
/// values): for hosts that run a handler inside their own process, whose stderr is not the
/// function's log. Lines written from tasks the future spawns go to stderr as before.
pub fn to_writer<F: Future>(
    writer: impl std::io::Write + Send + 'static,
    lookup: impl Fn(&str) -> Option<String>,
    future: F,
) -> impl Future<Output = F::Output> {
    TARGET.scope(
        Target {
            writer: Mutex::new(Box::new(writer)),
            format: Format::from_lookup(lookup),
        },
        future,
    )
}

/// The request id of the invocation this code runs in (inside the handler's future), if any.
pub fn request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// Runs `future` as invocation `request_id`'s: its lines carry that id.
pub(crate) fn scope<F: Future>(request_id: &str, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(Arc::from(request_id), future)
}

/// One line, with its newline.
fn render(
    json: bool,
    at: SystemTime,
    level: Level,
    request_id: Option<&str>,
    message: fmt::Arguments<'_>,
) -> String {
    let timestamp = humantime::format_rfc3339_millis(at);
    let mut line = String::with_capacity(96);
    if json {
        let message = message
            .as_str()
            .map_or_else(|| message.to_string().into(), std::borrow::Cow::Borrowed);
        let mut object = serde_json::Map::with_capacity(4);
        object.insert("timestamp".into(), timestamp.to_string().into());
        object.insert("level".into(), level.as_str().into());
        if let Some(id) = request_id {
            object.insert("requestId".into(), id.into());
        }
        object.insert("message".into(), message.into_owned().into());
        line.push_str(&serde_json::Value::Object(object).to_string());
    } else {
        let _ = write!(line, "{timestamp}\t");
        if let Some(id) = request_id {
            let _ = write!(line, "{id}\t");
        }
        let _ = write!(line, "{level}\t{message}");
    }
    line.push('\n');
    line
}

/// Writes a line at TRACE level: `coldstart_runtime::trace!("{x}")`. See [`log`](crate::log).
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Trace, $($arg)+) };
}

/// Writes a line at DEBUG level. See [`log`](crate::log).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Debug, $($arg)+) };
}

/// Writes a line at INFO level. See [`log`](crate::log).
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Info, $($arg)+) };
}

/// Writes a line at WARN level. See [`log`](crate::log).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Warn, $($arg)+) };
}

/// Writes a line at ERROR level. See [`log`](crate::log).
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Error, $($arg)+) };
}

/// Writes a line at FATAL level. See [`log`](crate::log).
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Fatal, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($arg:tt)+) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, ::std::format_args!($($arg)+));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    }

    #[test]
    fn json_lines_are_the_managed_runtimes_shape() {
        let line = render(
            true,
            at(),
            Level::Warn,
            Some("req-1"),
            format_args!("disk {}% \"full\"", 91),
        );
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(
            value,
            serde_json::json!({
                "timestamp": "2023-11-14T22:13:20.123Z",
                "level": "WARN",
                "requestId": "req-1",
                "message": "disk 91% \"full\"",
            })
        );
        assert!(line.ends_with("}\n"));
        // Lambda reads the level back from the line.
        assert_eq!(Level::of_json_line(line.trim_end()), Level::Warn);
        let outside = render(true, at(), Level::Info, None, format_args!("init"));
        assert!(!outside.contains("requestId"), "{outside}");
    }

    #[test]
    fn text_lines_are_tab_separated() {
        let line = render(false, at(), Level::Info, Some("req-1"), format_args!("hi"));
        assert_eq!(line, "2023-11-14T22:13:20.123Z\treq-1\tINFO\thi\n");
        let line = render(false, at(), Level::Error, None, format_args!("boom"));
        assert_eq!(line, "2023-11-14T22:13:20.123Z\tERROR\tboom\n");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_request_id_is_the_scoped_invocations() {
        assert_eq!(request_id(), None);
        let inside = scope("abc", async { request_id() }).await;
        assert_eq!(inside.as_deref(), Some("abc"));
        assert_eq!(request_id(), None);
    }
}

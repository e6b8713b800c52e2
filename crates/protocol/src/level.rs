//! Log levels of Lambda's `LoggingConfig`: `ApplicationLogLevel` (`TRACE` to `FATAL`) filters the
//! function's JSON log lines by their `level` key, `SystemLogLevel` (`DEBUG`, `INFO`, `WARN`) the
//! platform's records. Both apply only with the JSON log format.
//!
//! ```
//! use coldstart_protocol::level::LogLevel;
//!
//! assert_eq!(LogLevel::parse("warn"), Some(LogLevel::Warn));
//! assert!(LogLevel::Debug < LogLevel::Info);
//! assert_eq!(LogLevel::of_json_line(r#"{"level":"debug","msg":"x"}"#), LogLevel::Debug);
//! // A line without a level (or not JSON) counts as INFO, as in Lambda.
//! assert_eq!(LogLevel::of_json_line("plain text"), LogLevel::Info);
//! ```

use std::fmt;

/// A log level, from the most detail (`Trace`) to the least (`Fatal`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `TRACE`: the most fine-grained detail.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`: the default of both settings.
    #[default]
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
    /// `FATAL`.
    Fatal,
}

/// The levels `SystemLogLevel` takes.
pub const SYSTEM_LEVELS: [LogLevel; 3] = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn];

impl LogLevel {
    /// Every level, most detail first.
    pub const ALL: [LogLevel; 6] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
    ];

    /// The level named `name`, in any case (`WARNING` counts as `WARN`, `CRITICAL` as `FATAL`,
    /// as Python's logging names them).
    pub fn parse(name: &str) -> Option<LogLevel> {
        let name = name.trim();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        Some(if is("TRACE") {
            LogLevel::Trace
        } else if is("DEBUG") {
            LogLevel::Debug
        } else if is("INFO") {
            LogLevel::Info
        } else if is("WARN") || is("WARNING") {
            LogLevel::Warn
        } else if is("ERROR") {
            LogLevel::Error
        } else if is("FATAL") || is("CRITICAL") {
            LogLevel::Fatal
        } else {
            return None;
        })
    }

    /// Its name as Lambda writes it: `TRACE` ... `FATAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        }
    }

    /// The level Lambda gives a line of the function's output: its `level` key when it is a JSON
    /// object with a known level, INFO otherwise.
    pub fn of_json_line(line: &str) -> LogLevel {
        if !line.trim_start().starts_with('{') {
            return LogLevel::Info;
        }
        #[derive(serde::Deserialize)]
        struct Levelled<'a> {
            #[serde(borrow)]
            level: Option<std::borrow::Cow<'a, str>>,
        }
        serde_json::from_str::<Levelled<'_>>(line)
            .ok()
            .and_then(|l| l.level)
            .and_then(|l| LogLevel::parse(&l))
            .unwrap_or(LogLevel::Info)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_any_case() {
        for level in LogLevel::ALL {
            assert_eq!(LogLevel::parse(level.as_str()), Some(level));
            assert_eq!(LogLevel::parse(&level.as_str().to_lowercase()), Some(level));
        }
        assert_eq!(LogLevel::parse("VERBOSE"), None);
        assert_eq!(LogLevel::parse(""), None);
    }

    #[test]
    fn a_lines_level_is_its_level_key_or_info() {
        assert_eq!(
            LogLevel::of_json_line(r#"{"level":"ERROR","message":"m"}"#),
            LogLevel::Error
        );
        assert_eq!(
            LogLevel::of_json_line(r#"{"message":"m","level":"trace"}"#),
            LogLevel::Trace
        );
        assert_eq!(
            LogLevel::of_json_line(r#"{"level":"loud"}"#),
            LogLevel::Info
        );
        assert_eq!(LogLevel::of_json_line(r#"{"level":3}"#), LogLevel::Info);
        assert_eq!(LogLevel::of_json_line(r#"{"level":"#), LogLevel::Info);
        assert_eq!(LogLevel::of_json_line("[DEBUG] text"), LogLevel::Info);
    }
}

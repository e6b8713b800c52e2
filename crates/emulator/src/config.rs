//! What the emulator is told about each function and about the account it pretends to be.
//!
//! These are plain values: the CLI builds them from flags or `coldstart.toml`, tests build them
//! directly. Validation lives here so every front end rejects the same things the same way.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use coldstart_protocol::extension::MAX_EXTENSIONS;

use crate::error::Error;

/// Shortest function timeout Lambda accepts: 1 second.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest function timeout Lambda accepts: 900 seconds.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// Smallest memory size Lambda accepts, in MB.
pub const MIN_MEMORY_MB: u32 = 128;
/// Largest memory size Lambda accepts, in MB.
pub const MAX_MEMORY_MB: u32 = 10_240;
/// The on-demand init limit: a runtime that has not called `next` by then is killed.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One function: its bootstrap and its Lambda settings.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The function's name, as callers name it. Letters, digits, `-` and `_`, at most 64.
    pub name: String,
    /// The bootstrap's argv: the executable first. A relative executable path is resolved
    /// against the current directory when the emulator starts.
    pub command: Vec<OsString>,
    /// `_HANDLER`. Default: none.
    pub handler: Option<String>,
    /// `LAMBDA_TASK_ROOT` and the bootstrap's working directory. Default: the bootstrap's folder.
    pub task_root: Option<PathBuf>,
    /// How long one invocation may run before its sandbox is killed. Default: 3 seconds.
    pub timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB. Default: 128.
    pub memory_mb: u32,
    /// Most execution environments (sandboxes) at once; invocations past it get 429. Default: 10.
    pub concurrency: usize,
    /// Extra environment variables; reserved Lambda variables override them and names starting
    /// with `_` are dropped, as in Lambda. Default: none.
    pub environment: BTreeMap<String, String>,
    /// Stop (SIGSTOP) a sandbox's processes while it waits for work. Default: true.
    pub freeze: bool,
    /// How long a runtime may take to call its first `next`. Default: 10 seconds.
    pub init_timeout: Duration,
    /// How long a synchronous invocation waits, when every sandbox is busy at the concurrency
    /// limit, for one to free up before it is throttled (429). Zero throttles at once, as
    /// Lambda's front end does; a few milliseconds let a saturated local client queue instead of
    /// spinning on 429s. Default: 10 ms.
    pub throttle_after: Duration,
    /// How long a sandbox may stay idle before it is stopped (the next invocation starts a
    /// new one). Default: 10 minutes.
    pub idle_timeout: Duration,
    /// External extensions started in each sandbox before the bootstrap, as `/opt/extensions/*`
    /// are in Lambda: each registers with the Extensions API, and init completes only when the
    /// runtime and every extension wait for work. At most 10. Default: none.
    pub extensions: Vec<PathBuf>,
    /// Give each sandbox a free loopback port of its own in `PORT` and `AWS_LWA_PORT` (and in
    /// `AWS_LWA_READINESS_CHECK_PORT` when that names the configured port), so that several
    /// sandboxes of one web app can listen at once, as each has its own network in Lambda.
    /// Default: false.
    pub sandbox_port: bool,
    /// `LoggingConfig.LogFormat`: how the platform's lines (`START`, `END`, `REPORT`, ...) are
    /// written, and what `AWS_LAMBDA_LOG_FORMAT` tells the runtime. Default: text.
    pub log_format: LogFormat,
}

/// The format of a function's log, as Lambda's `LoggingConfig.LogFormat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// `START`/`END`/`REPORT` lines. The default.
    #[default]
    Text,
    /// One JSON document a line for the platform's records, in the Telemetry API's shape
    /// (`{"time", "type": "platform.start", "record": {...}}`); `AWS_LAMBDA_LOG_FORMAT=JSON`.
    Json,
}

impl FunctionConfig {
    /// A function with Lambda's default settings.
    pub fn new(name: impl Into<String>, command: Vec<OsString>) -> Self {
        Self {
            name: name.into(),
            command,
            handler: None,
            task_root: None,
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            concurrency: 10,
            environment: BTreeMap::new(),
            freeze: true,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            throttle_after: Duration::from_millis(10),
            idle_timeout: Duration::from_secs(600),
            extensions: Vec::new(),
            sandbox_port: false,
            log_format: LogFormat::Text,
        }
    }

    /// Checks the settings against Lambda's limits.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| {
            Err(Error::InvalidFunction {
                function: self.name.clone(),
                reason,
            })
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return bad("the name must be 1 to 64 letters, digits, '-' or '_'".into());
        }
        if self.command.is_empty() {
            return bad("no bootstrap command".into());
        }
        if self.timeout < MIN_TIMEOUT || self.timeout > MAX_TIMEOUT {
            return bad(format!(
                "timeout must be between 1 and 900 seconds, not {:?}",
                self.timeout
            ));
        }
        if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&self.memory_mb) {
            return bad(format!(
                "memory must be between 128 and 10240 MB, not {}",
                self.memory_mb
            ));
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if self.extensions.len() > MAX_EXTENSIONS {
            return bad(format!(
                "at most {MAX_EXTENSIONS} extensions, not {}",
                self.extensions.len()
            ));
        }
        Ok(())
    }
}

/// The account and region the emulator presents to functions and callers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `AWS_REGION` given to functions and used in ARNs. Default: `us-east-1`.
    pub region: String,
    /// Account id used in ARNs. Default: `012345678912`, as the Runtime Interface Emulator.
    pub account_id: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "012345678912".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function() -> FunctionConfig {
        FunctionConfig::new("echo", vec!["./bootstrap".into()])
    }

    #[test]
    fn defaults_are_lambdas() {
        let f = function();
        assert_eq!(f.timeout, Duration::from_secs(3));
        assert_eq!(f.memory_mb, 128);
        assert_eq!(f.concurrency, 10);
        assert!(f.freeze);
        assert!(f.validate().is_ok());
    }

    #[test]
    fn rejects_values_outside_lambdas_limits() {
        let mut f = function();
        f.timeout = Duration::from_secs(901);
        assert!(f.validate().is_err());
        let mut f = function();
        f.memory_mb = 64;
        assert!(f.validate().is_err());
        let mut f = function();
        f.concurrency = 0;
        assert!(f.validate().is_err());
        let mut f = function();
        f.name = "has space".into();
        assert!(f.validate().is_err());
        let mut f = function();
        f.command.clear();
        assert!(f.validate().is_err());
    }
}

//! What the emulator is told about each function and about the account it pretends to be.
//!
//! These are plain values: the CLI builds them from flags or `coldstart.toml`, tests build them
//! directly. Validation lives here so every front end rejects the same things the same way.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use coldstart_protocol::extension::MAX_EXTENSIONS;
use coldstart_protocol::level::{LogLevel, SYSTEM_LEVELS};

use crate::error::Error;
use crate::in_process::InProcess;

/// Shortest function timeout Lambda accepts: 1 second.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest function timeout Lambda accepts: 900 seconds.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// Smallest memory size Lambda accepts, in MB.
pub const MIN_MEMORY_MB: u32 = 128;
/// Largest memory size Lambda accepts, in MB.
pub const MAX_MEMORY_MB: u32 = 10_240;
/// Most invocations one execution environment takes at once
/// (`PerExecutionEnvironmentMaxConcurrency`'s maximum).
pub const MAX_CONCURRENCY_PER_ENVIRONMENT: usize = 1600;
/// The on-demand init limit: a runtime that has not called `next` by then is killed.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One function: its bootstrap and its Lambda settings.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A folder bound read-only at `/opt` in a mount namespace of each sandbox's own (its
    /// bootstrap and extensions), as Lambda unpacks layers there; extensions under it start from
    /// their `/opt/...` path. Only where [`crate::opt_mount_available`]: otherwise
    /// [`crate::Emulator::new`] refuses the function. Default: none (the host's `/opt`).
    pub opt: Option<PathBuf>,
    /// How its `Event` invocations are retried and where their outcomes go
    /// (`EventInvokeConfig`, `DeadLetterConfig`). Default: AWS's (two retries, six hours).
    pub async_config: AsyncConfig,
    /// `LoggingConfig.LogFormat`: how the platform's lines (`START`, `END`, `REPORT`, ...) are
    /// written, and what `AWS_LAMBDA_LOG_FORMAT` tells the runtime. Default: text.
    pub log_format: LogFormat,
    /// `LoggingConfig.ApplicationLogLevel`, JSON format only: the function's lines below it
    /// (by their `level` key; INFO without one) are left out of its log, and
    /// `AWS_LAMBDA_LOG_LEVEL` tells the runtime. Default: INFO with the JSON format.
    pub application_log_level: Option<LogLevel>,
    /// `LoggingConfig.SystemLogLevel`, JSON format only (DEBUG, INFO or WARN): the platform's
    /// records below it ([`coldstart_protocol::telemetry::Record::system_level`]) are left out of
    /// the function's log. Default: INFO with the JSON format. Neither level filters what
    /// Telemetry API subscribers receive.
    pub system_log_level: Option<LogLevel>,
    /// Run the runtime as a task inside the emulator's process instead of starting `command`
    /// (which may then be empty): see [`InProcess`]. Default: none.
    pub in_process: Option<InProcess>,
    /// `PerExecutionEnvironmentMaxConcurrency` (Lambda Managed Instances): how many invocations
    /// one execution environment runs at once. Above 1, the runtime is told through
    /// `AWS_LAMBDA_MAX_CONCURRENCY`, its Runtime API takes that many `next` calls at once, each
    /// invocation keeps its own deadline, and [`Self::concurrency`] counts invocations rather
    /// than environments. 1 to [`MAX_CONCURRENCY_PER_ENVIRONMENT`]. Default: 1 (one at a time).
    pub max_concurrency: usize,
}

/// Fewest seconds `MaximumEventAgeInSeconds` takes.
pub const MIN_EVENT_AGE: Duration = Duration::from_secs(60);
/// Most seconds `MaximumEventAgeInSeconds` takes (and its default): six hours.
pub const MAX_EVENT_AGE: Duration = Duration::from_secs(21_600);
/// Most retries of a failed asynchronous invocation (and the default).
pub const MAX_RETRY_ATTEMPTS: u32 = 2;

/// A function's asynchronous invocation settings, as Lambda's `EventInvokeConfig` and
/// `DeadLetterConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncConfig {
    /// `MaximumRetryAttempts`: retries after a function error, timeout or crash, 0 to 2.
    /// Default: 2.
    pub max_retry_attempts: u32,
    /// `MaximumEventAgeInSeconds`: an event not processed by then is discarded (to
    /// `on_failure`), 60 s to 6 h. Default: 6 h.
    pub max_event_age: Duration,
    /// `DestinationConfig.OnSuccess.Destination`: an ARN. A local function's ARN (or name) is
    /// invoked with the destination record; any other is written to
    /// [`Settings::async_records`]. Default: none.
    pub on_success: Option<String>,
    /// `DestinationConfig.OnFailure.Destination`, as `on_success`. Default: none.
    pub on_failure: Option<String>,
    /// `DeadLetterConfig.TargetArn` (an SQS queue or SNS topic): a discarded event is written
    /// to [`Settings::async_records`] with its error. Default: none.
    pub dead_letter: Option<String>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            max_retry_attempts: MAX_RETRY_ATTEMPTS,
            max_event_age: MAX_EVENT_AGE,
            on_success: None,
            on_failure: None,
            dead_letter: None,
        }
    }
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
            opt: None,
            async_config: AsyncConfig::default(),
            log_format: LogFormat::Text,
            application_log_level: None,
            system_log_level: None,
            in_process: None,
            max_concurrency: 1,
        }
    }

    /// The levels that filter the function's log: `None` with the text format (nothing is
    /// filtered), otherwise `(application, system)` with INFO for a level not set.
    pub fn log_levels(&self) -> Option<(LogLevel, LogLevel)> {
        (self.log_format == LogFormat::Json).then(|| {
            (
                self.application_log_level.unwrap_or_default(),
                self.system_log_level.unwrap_or_default(),
            )
        })
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
        if self.command.is_empty() && self.in_process.is_none() {
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
        if !(1..=MAX_CONCURRENCY_PER_ENVIRONMENT).contains(&self.max_concurrency) {
            return bad(format!(
                "max_concurrency must be between 1 and {MAX_CONCURRENCY_PER_ENVIRONMENT}, not {}",
                self.max_concurrency
            ));
        }
        let a = &self.async_config;
        if a.max_retry_attempts > MAX_RETRY_ATTEMPTS {
            return bad(format!(
                "MaximumRetryAttempts must be between 0 and 2, not {}",
                a.max_retry_attempts
            ));
        }
        if a.max_event_age < MIN_EVENT_AGE || a.max_event_age > MAX_EVENT_AGE {
            return bad(format!(
                "MaximumEventAgeInSeconds must be between 60 and 21600, not {}",
                a.max_event_age.as_secs()
            ));
        }
        let levels = [self.application_log_level, self.system_log_level];
        if self.log_format == LogFormat::Text && levels.iter().any(Option::is_some) {
            return bad("ApplicationLogLevel and SystemLogLevel need LogFormat JSON".into());
        }
        if let Some(level) = self.system_log_level
            && !SYSTEM_LEVELS.contains(&level)
        {
            return bad(format!(
                "SystemLogLevel must be DEBUG, INFO or WARN, not {level}"
            ));
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
    /// How long a failed `Event` invocation waits before its first retry; Lambda waits one
    /// minute (then two before the second retry). Every asynchronous wait and event age is
    /// scaled by the same ratio, so a local `100ms` makes a six-hour maximum age 36 s. Default:
    /// 60 s.
    pub async_retry_delay: Duration,
    /// A JSON-lines file where asynchronous outcomes bound for destinations that are not local
    /// functions (SQS, SNS, EventBridge, S3, dead-letter queues) are appended. Default: none
    /// (they are only logged).
    pub async_records: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "012345678912".into(),
            async_retry_delay: AWS_RETRY_DELAY,
            async_records: None,
        }
    }
}

/// Lambda's wait before the first retry of a failed asynchronous invocation.
pub const AWS_RETRY_DELAY: Duration = Duration::from_secs(60);

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
        f.max_concurrency = 0;
        assert!(f.validate().is_err());
        f.max_concurrency = MAX_CONCURRENCY_PER_ENVIRONMENT + 1;
        assert!(f.validate().is_err());
        f.max_concurrency = MAX_CONCURRENCY_PER_ENVIRONMENT;
        assert!(f.validate().is_ok());
        let mut f = function();
        f.name = "has space".into();
        assert!(f.validate().is_err());
        let mut f = function();
        f.command.clear();
        assert!(f.validate().is_err());
    }
}

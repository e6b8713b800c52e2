//! The Telemetry API (`/2022-07-01/telemetry`): how an extension subscribes, the buffering limits
//! Lambda enforces, and the `{time, type, record}` events it then receives.
//!
//! An extension `PUT`s a [`SubscribeRequest`] on [`SUBSCRIBE_PATH`] with its
//! `Lambda-Extension-Identifier`; Lambda answers 200 [`SUBSCRIBED_BODY`] and from then on `POST`s
//! JSON arrays of [`Event`]s to the extension's listener. The record shapes follow the schema
//! reference of `2022-12-13` (`telemetry-schema-reference` in the Lambda developer guide), which
//! `2025-01-29` extends for Lambda Managed Instances only.

use serde::{Deserialize, Serialize};

use crate::level::LogLevel;

/// `PUT /2022-07-01/telemetry`: subscribe the calling extension, body [`SubscribeRequest`].
pub const SUBSCRIBE_PATH: &str = "/2022-07-01/telemetry";

/// The host name a destination uses for the execution environment itself; it resolves to the
/// loopback interface there.
pub const SANDBOX_HOST: &str = "sandbox.localdomain";

/// The body of a successful subscription (a JSON string), with status 200.
pub const SUBSCRIBED_BODY: &str = "\"OK\"";

/// `errorType` of a refused subscription (status 400).
pub const VALIDATION_ERROR: &str = "ValidationError";

/// `errorType` of what the emulator accepts but does not do (status 202), as the Runtime
/// Interface Emulator answers the whole API.
pub const NOT_SUPPORTED: &str = "Telemetry.NotSupported";

/// `maxItems`: the most events buffered in memory. Default: 10,000.
pub const MAX_ITEMS: Limit = Limit {
    default: 10_000,
    min: 1_000,
    max: 10_000,
};

/// `maxBytes`: the most telemetry bytes buffered in memory. Default: 262,144.
pub const MAX_BYTES: Limit = Limit {
    default: 262_144,
    min: 262_144,
    max: 1_048_576,
};

/// `timeoutMs`: the longest a batch is buffered, in milliseconds. Default: 1,000.
pub const TIMEOUT_MS: Limit = Limit {
    default: 1_000,
    min: 25,
    max: 30_000,
};

/// A buffering setting's default and its allowed range (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Used when the subscription does not set it.
    pub default: u64,
    /// Smallest value accepted.
    pub min: u64,
    /// Largest value accepted.
    pub max: u64,
}

impl Limit {
    /// Whether `value` is within the range.
    pub fn allows(&self, value: u64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// The schema versions an extension may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaVersion {
    /// The first version.
    #[serde(rename = "2022-07-01")]
    V2022_07_01,
    /// Adds function name and version to `platform.initStart`, status and error type to
    /// reports.
    #[serde(rename = "2022-12-13")]
    V2022_12_13,
    /// Required by Lambda Managed Instances; backward compatible with `2022-12-13`.
    #[serde(rename = "2025-01-29")]
    V2025_01_29,
}

/// How telemetry reaches the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// `POST`s of JSON arrays to a local HTTP listener.
    #[serde(rename = "HTTP")]
    Http,
    /// Newline-delimited JSON on a local TCP port.
    #[serde(rename = "TCP")]
    Tcp,
}

/// Where telemetry goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The protocol.
    pub protocol: Protocol,
    /// `http://sandbox.localdomain:PORT/PATH` (HTTP) or `sandbox.localdomain:PORT` (TCP).
    #[serde(rename = "URI")]
    pub uri: String,
}

/// A telemetry stream an extension may subscribe to (`types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// `platform.*` events.
    Platform,
    /// The function's log lines.
    Function,
    /// The extensions' log lines.
    Extension,
}

/// The buffering a subscription asks for; unset fields take their [`Limit::default`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buffering {
    /// See [`MAX_ITEMS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// See [`MAX_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// See [`TIMEOUT_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// The body of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    /// The schema of the events to receive.
    pub schema_version: SchemaVersion,
    /// Where they go.
    pub destination: Destination,
    /// Which streams.
    pub types: Vec<Category>,
    /// How they are batched. Default: every [`Limit::default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering: Option<Buffering>,
}

/// One telemetry event: `{"time": …, "type": …, "record": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When the platform generated it: RFC 3339 with milliseconds, `2022-10-12T00:00:15.064Z`.
    pub time: String,
    /// `type` and `record`.
    #[serde(flatten)]
    pub record: Record,
}

/// An event's `type` and the `record` of that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "record")]
pub enum Record {
    /// `platform.initStart`: init began.
    #[serde(rename = "platform.initStart")]
    InitStart(InitStart),
    /// `platform.initRuntimeDone`: the runtime finished init (it called `next`, or failed).
    #[serde(rename = "platform.initRuntimeDone")]
    InitRuntimeDone(InitRuntimeDone),
    /// `platform.initReport`: the init phase's report.
    #[serde(rename = "platform.initReport")]
    InitReport(InitReport),
    /// `platform.start`: an invocation began.
    #[serde(rename = "platform.start")]
    Start(Start),
    /// `platform.runtimeDone`: the runtime finished an invocation.
    #[serde(rename = "platform.runtimeDone")]
    RuntimeDone(RuntimeDone),
    /// `platform.report`: an invocation's report.
    #[serde(rename = "platform.report")]
    Report(Report),
    /// `platform.extension`: an extension's state after init.
    #[serde(rename = "platform.extension")]
    Extension(ExtensionState),
    /// `platform.telemetrySubscription`: an extension subscribed.
    #[serde(rename = "platform.telemetrySubscription")]
    TelemetrySubscription(TelemetrySubscription),
    /// `platform.logsDropped`: events were dropped because a subscriber fell behind.
    #[serde(rename = "platform.logsDropped")]
    LogsDropped(LogsDropped),
    /// `function`: one line of the function's output (text log format).
    #[serde(rename = "function")]
    Function(String),
    /// `extension`: one line of an extension's output (text log format).
    #[serde(rename = "extension")]
    ExtensionLog(String),
}

impl Record {
    /// The event's `type`: `platform.start`, `function`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Record::InitStart(_) => "platform.initStart",
            Record::InitRuntimeDone(_) => "platform.initRuntimeDone",
            Record::InitReport(_) => "platform.initReport",
            Record::Start(_) => "platform.start",
            Record::RuntimeDone(_) => "platform.runtimeDone",
            Record::Report(_) => "platform.report",
            Record::Extension(_) => "platform.extension",
            Record::TelemetrySubscription(_) => "platform.telemetrySubscription",
            Record::LogsDropped(_) => "platform.logsDropped",
            Record::Function(_) => "function",
            Record::ExtensionLog(_) => "extension",
        }
    }

    /// The invocation it is about: `platform.start`, `platform.runtimeDone` and
    /// `platform.report` name one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Record::Start(r) => Some(&r.request_id),
            Record::RuntimeDone(r) => Some(&r.request_id),
            Record::Report(r) => Some(&r.request_id),
            _ => None,
        }
    }

    /// The stream this record belongs to.
    pub fn category(&self) -> Category {
        match self {
            Record::Function(_) => Category::Function,
            Record::ExtensionLog(_) => Category::Extension,
            _ => Category::Platform,
        }
    }

    /// The level Lambda gives a platform record when `SystemLogLevel` filters the function's
    /// log: the phases' ends and subscriptions are DEBUG, dropped logs WARN, the rest INFO. A log
    /// line's level is its own ([`LogLevel::of_json_line`]).
    pub fn system_level(&self) -> LogLevel {
        match self {
            Record::InitRuntimeDone(_)
            | Record::RuntimeDone(_)
            | Record::TelemetrySubscription(_) => LogLevel::Debug,
            Record::LogsDropped(_) => LogLevel::Warn,
            Record::Function(line) | Record::ExtensionLog(line) => LogLevel::of_json_line(line),
            _ => LogLevel::Info,
        }
    }
}

/// How the environment was initialised (`initializationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitType {
    /// Started for an invocation.
    OnDemand,
    /// Started ahead for provisioned concurrency.
    ProvisionedConcurrency,
    /// Restored from a snapshot.
    SnapStart,
}

/// When init ran (`phase`): in the init phase, or again inside the first invocation after an
/// init that failed or timed out ("suppressed init").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitPhase {
    /// The init phase.
    Init,
    /// Inside an invocation.
    Invoke,
}

/// How a phase ended (`status`); every value but `success` comes with an `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It succeeded.
    Success,
    /// The platform failed.
    Failure,
    /// The function or runtime failed (a handler error, a crash).
    Error,
    /// It ran out of time.
    Timeout,
}

impl Status {
    /// Its name on the wire: `success`, `failure`, `error`, `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }
}

/// `platform.initStart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitStart {
    /// How the environment was initialised.
    pub initialization_type: InitType,
    /// In which phase.
    pub phase: InitPhase,
    /// The function's name (since `2022-12-13`).
    pub function_name: String,
    /// The function's version (since `2022-12-13`).
    pub function_version: String,
    /// The managed runtime's version; absent for custom runtimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    /// The managed runtime's version ARN; absent for custom runtimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
}

/// `platform.initRuntimeDone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitRuntimeDone {
    /// How the environment was initialised.
    pub initialization_type: InitType,
    /// In which phase.
    pub phase: InitPhase,
    /// How init ended.
    pub status: Status,
    /// Why, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Spans of the phase, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

/// `platform.initReport`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// How the environment was initialised.
    pub initialization_type: InitType,
    /// In which phase.
    pub phase: InitPhase,
    /// How init ended.
    pub status: Status,
    /// Why, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Its duration.
    pub metrics: InitReportMetrics,
    /// Spans of the phase, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

/// `metrics` of `platform.initReport`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReportMetrics {
    /// How long init took, in milliseconds.
    pub duration_ms: f64,
}

/// `platform.start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// The invocation's request id.
    pub request_id: String,
    /// The function version invoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The invocation's trace context, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TraceContext>,
}

/// `platform.runtimeDone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDone {
    /// The invocation's request id.
    pub request_id: String,
    /// How the invocation ended for the runtime.
    pub status: Status,
    /// Why, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Its duration and output size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RuntimeDoneMetrics>,
    /// `responseLatency` and `responseDuration`, when the runtime answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
    /// The invocation's trace context, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TraceContext>,
}

/// `metrics` of `platform.runtimeDone`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDoneMetrics {
    /// From the invocation's start to the runtime's answer, in milliseconds.
    pub duration_ms: f64,
    /// Size of the runtime's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced_bytes: Option<u64>,
}

/// `platform.report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The invocation's request id.
    pub request_id: String,
    /// How the invocation ended.
    pub status: Status,
    /// Why, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// What `REPORT` prints.
    pub metrics: ReportMetrics,
    /// Spans of the invocation, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
    /// The invocation's trace context, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TraceContext>,
}

/// `metrics` of `platform.report`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetrics {
    /// The invocation's duration, in milliseconds.
    pub duration_ms: f64,
    /// The billed duration: whole milliseconds, rounded up.
    pub billed_duration_ms: u64,
    /// The function's memory setting.
    #[serde(rename = "memorySizeMB")]
    pub memory_size_mb: u64,
    /// The environment's peak memory use.
    #[serde(rename = "maxMemoryUsedMB")]
    pub max_memory_used_mb: u64,
    /// The init duration, on the first invocation of an environment (a cold start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_duration_ms: Option<f64>,
}

/// A named span of time (`responseLatency`, `responseDuration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Its name.
    pub name: String,
    /// When it began, as [`Event::time`].
    pub start: String,
    /// How long it lasted, in milliseconds.
    pub duration_ms: f64,
}

/// The `responseLatency` span: from the invocation's start to the runtime's first answer byte.
pub const RESPONSE_LATENCY: &str = "responseLatency";
/// The `responseDuration` span: from the first to the last byte of the runtime's answer.
pub const RESPONSE_DURATION: &str = "responseDuration";

/// The trace context of an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceContext {
    /// The span id, when traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Always `X-Amzn-Trace-Id`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The trace header's value.
    pub value: String,
}

/// `platform.extension`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionState {
    /// The extension's name.
    pub name: String,
    /// Its state (`Ready`).
    pub state: String,
    /// The events it subscribed to (`INVOKE`, `SHUTDOWN`).
    pub events: Vec<String>,
}

/// `platform.telemetrySubscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySubscription {
    /// The extension's name.
    pub name: String,
    /// Its subscription's state (`Subscribed`).
    pub state: String,
    /// The streams it subscribed to.
    pub types: Vec<Category>,
}

/// `platform.logsDropped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsDropped {
    /// Why.
    pub reason: String,
    /// How many events were dropped.
    pub dropped_records: u64,
    /// Their size.
    pub dropped_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_schema_references_shape() {
        let report = Event {
            time: "2022-10-21T14:05:05.766Z".into(),
            record: Record::Report(Report {
                request_id: "459921b5".into(),
                status: Status::Success,
                error_type: None,
                metrics: ReportMetrics {
                    duration_ms: 2599.4,
                    billed_duration_ms: 2600,
                    memory_size_mb: 128,
                    max_memory_used_mb: 94,
                    init_duration_ms: Some(549.04),
                },
                spans: Vec::new(),
                tracing: None,
            }),
        };
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"time":"2022-10-21T14:05:05.766Z","type":"platform.report","record":{
                "requestId":"459921b5","status":"success","metrics":{"durationMs":2599.4,
                "billedDurationMs":2600,"memorySizeMB":128,"maxMemoryUsedMB":94,"initDurationMs":549.04}}})
        );
        let back: Event = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, report);

        let line = Event {
            time: "2022-10-12T00:03:50.000Z".into(),
            record: Record::Function("[INFO] Hello world".into()),
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap_or_default(),
            r#"{"time":"2022-10-12T00:03:50.000Z","type":"function","record":"[INFO] Hello world"}"#
        );
        let parsed: Event = serde_json::from_str(
            r#"{"time":"t","type":"platform.runtimeDone","record":{"requestId":"r","status":"error","errorType":"E","metrics":{"durationMs":1.5}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            parsed.record,
            Record::RuntimeDone(RuntimeDone {
                status: Status::Error,
                ..
            })
        ));
        assert_eq!(parsed.record.category(), Category::Platform);
        // The typed names match the wire's, so readers of typed events see what subscribers see.
        for event in [&report, &line, &parsed] {
            let json = serde_json::to_value(event).unwrap_or_default();
            assert_eq!(json["type"], event.record.type_name());
            assert_eq!(
                json["record"]["requestId"].as_str(),
                event.record.request_id()
            );
            if let Some(status) = json["record"]["status"].as_str() {
                assert!(
                    matches!(&event.record, Record::Report(Report { status: s, .. })
                    | Record::RuntimeDone(RuntimeDone { status: s, .. }) if s.as_str() == status)
                );
            }
        }
    }

    #[test]
    fn subscriptions_parse_with_optional_buffering() {
        let request: SubscribeRequest = serde_json::from_str(
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080/x"},
                "types":["platform","function","extension"],"buffering":{"maxItems":1000,"timeoutMs":100}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.schema_version, SchemaVersion::V2022_12_13);
        assert_eq!(request.destination.protocol, Protocol::Http);
        assert_eq!(request.types.len(), 3);
        let buffering = request.buffering.unwrap_or_default();
        assert_eq!(
            (buffering.max_items, buffering.max_bytes),
            (Some(1000), None)
        );
        assert!(
            serde_json::from_str::<SubscribeRequest>(
                r#"{"schemaVersion":"2021-01-01","destination":{"protocol":"HTTP","URI":"x"},"types":[]}"#
            )
            .is_err()
        );
        assert!(MAX_ITEMS.allows(1000) && !MAX_ITEMS.allows(999) && !TIMEOUT_MS.allows(24));
    }
}

//! The Logs API (`/2020-08-15/logs`), the Telemetry API's predecessor: how an extension
//! subscribes, and the older record shapes it then receives.
//!
//! An extension `PUT`s a [`SubscribeRequest`] on [`SUBSCRIBE_PATH`] with its
//! `Lambda-Extension-Identifier`; Lambda answers 200 `"OK"` and delivers JSON arrays of
//! [`Event`]s (`{time, type, record}`) to its listener, with the same buffering limits as the
//! Telemetry API. Schema `2021-03-18` added `platform.runtimeDone` and the `version` of
//! `platform.start`; `2020-08-15` (the default) has neither.

use serde::{Deserialize, Serialize};

use crate::telemetry::{Buffering, Category, Destination};

/// `PUT /2020-08-15/logs`: subscribes an extension's listener.
pub const SUBSCRIBE_PATH: &str = "/2020-08-15/logs";

/// The Logs API's schema versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaVersion {
    /// The first: no `platform.runtimeDone`. The default.
    #[default]
    #[serde(rename = "2020-08-15")]
    V2020_08_15,
    /// Adds `platform.runtimeDone` and `platform.start`'s `version`.
    #[serde(rename = "2021-03-18")]
    V2021_03_18,
}

/// The body of a Logs API subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    /// Default: `2020-08-15`.
    #[serde(default)]
    pub schema_version: SchemaVersion,
    pub destination: Destination,
    pub types: Vec<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffering: Option<Buffering>,
}

/// One delivered event: when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 with milliseconds, UTC.
    pub time: String,
    #[serde(flatten)]
    pub record: Record,
}

/// A Logs API record, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "record")]
pub enum Record {
    /// An invocation began.
    #[serde(rename = "platform.start")]
    Start(Start),
    /// The runtime answered (schema `2021-03-18`).
    #[serde(rename = "platform.runtimeDone")]
    RuntimeDone(RuntimeDone),
    /// The invocation ended.
    #[serde(rename = "platform.end")]
    End(RequestRef),
    /// The invocation's metrics.
    #[serde(rename = "platform.report")]
    Report(Report),
    /// The runtime or the environment failed: `RequestId: … Process exited before completing
    /// request`.
    #[serde(rename = "platform.fault")]
    Fault(String),
    /// An extension registered.
    #[serde(rename = "platform.extension")]
    Extension(crate::telemetry::ExtensionState),
    /// An extension subscribed to the Logs API.
    #[serde(rename = "platform.logsSubscription")]
    LogsSubscription(crate::telemetry::TelemetrySubscription),
    /// Events were dropped: the subscriber fell behind.
    #[serde(rename = "platform.logsDropped")]
    LogsDropped(crate::telemetry::LogsDropped),
    /// A line the function printed.
    #[serde(rename = "function")]
    Function(String),
    /// A line an extension printed.
    #[serde(rename = "extension")]
    ExtensionLog(String),
}

/// `platform.start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub request_id: String,
    /// `$LATEST`; schema `2021-03-18` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A record that only names its invocation (`platform.end`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRef {
    pub request_id: String,
}

/// `platform.runtimeDone`: `status` is `success`, `failure` or `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDone {
    pub request_id: String,
    pub status: String,
}

/// `platform.report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub request_id: String,
    pub metrics: crate::telemetry::ReportMetrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_the_logs_apis_shapes() {
        let shape = |record: Record| {
            serde_json::to_value(Event {
                time: "2020-08-20T12:31:32.123Z".into(),
                record,
            })
            .unwrap_or_default()
        };
        assert_eq!(
            shape(Record::Start(Start {
                request_id: "6f7f0961".into(),
                version: Some("$LATEST".into()),
            })),
            serde_json::json!({"time":"2020-08-20T12:31:32.123Z","type":"platform.start",
                "record":{"requestId":"6f7f0961","version":"$LATEST"}})
        );
        assert_eq!(
            shape(Record::End(RequestRef {
                request_id: "6f7f0961".into()
            }))["record"],
            serde_json::json!({"requestId":"6f7f0961"})
        );
        assert_eq!(
            shape(Record::Fault(
                "RequestId: 1 Process exited before completing request".into()
            ))["type"],
            "platform.fault"
        );
        assert_eq!(
            shape(Record::Function(
                "2020-08-20T12:31:32.123Z\tINFO\thello\n".into()
            ))["record"],
            "2020-08-20T12:31:32.123Z\tINFO\thello\n"
        );
        assert_eq!(shape(Record::ExtensionLog("x".into()))["type"], "extension");
    }

    #[test]
    fn subscriptions_default_to_the_first_schema() {
        let request: SubscribeRequest = serde_json::from_str(
            r#"{"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080/logs"},"types":["platform","function"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.schema_version, SchemaVersion::V2020_08_15);
        let request: SubscribeRequest = serde_json::from_str(
            r#"{"schemaVersion":"2021-03-18","destination":{"protocol":"TCP","URI":"sandbox.localdomain:9000"},"types":["extension"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.schema_version, SchemaVersion::V2021_03_18);
    }
}

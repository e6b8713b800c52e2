//! The events of a function's platform event stream as the log sink reads them
//! ([`StreamEvent`], [`crate::LogSink::record`]), and coldstart's own events among them: facts a
//! local tool wants (what an invocation received and answered, a front door's requests, a
//! build's state) that Lambda's Telemetry API has no event for. Those go only to the log sink,
//! never to an extension's Telemetry or Logs API subscription, so what extensions receive stays
//! Lambda's.
//!
//! Each is `{"time", "type", "record"}` like the Telemetry API's events, with a `coldstart.`
//! type. They are built only while the sink wants records; a preview holds at most
//! [`PREVIEW_LIMIT`] bytes, so no payload is copied whole. Events are typed until someone reads
//! them as JSON: the invocation path builds each once and shares it, no `serde_json::Value` is
//! made on it.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use coldstart_protocol::telemetry::{self, Record};

use crate::clock::iso_millis;

/// One event of a function's platform event stream, as the log sink gets it
/// ([`crate::LogSink::record`]): a Telemetry API event as subscribers get it, or one of
/// coldstart's own. Cheap to clone (its parts are shared); [`StreamEvent::to_value`] and its
/// `Serialize` give the event's JSON, `{"time", "type", "record"}`.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// A Telemetry API event: `platform.*`, `function`, `extension`.
    Telemetry(Arc<telemetry::Event>),
    /// A [`REQUEST_PREVIEW`] or [`RESPONSE_PREVIEW`].
    Preview(Arc<Preview>),
    /// Any other coldstart event, as JSON ([`API_REQUEST`], [`BUILD`], an event source's
    /// deliveries).
    Note(Arc<Value>),
}

impl StreamEvent {
    /// A coldstart event already in JSON, `{"time", "type", "record"}` ([`event`] makes one).
    pub fn note(event: Value) -> Self {
        Self::Note(Arc::new(event))
    }

    /// The event's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Telemetry(event) => event.record.type_name(),
            Self::Preview(preview) => preview.kind(),
            Self::Note(event) => event["type"].as_str().unwrap_or_default(),
        }
    }

    /// The event's `time`.
    pub fn time(&self) -> &str {
        match self {
            Self::Telemetry(event) => &event.time,
            Self::Preview(preview) => &preview.time,
            Self::Note(event) => event["time"].as_str().unwrap_or_default(),
        }
    }

    /// The invocation it is about, when it names one (`record.requestId`).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Telemetry(event) => event.record.request_id(),
            Self::Preview(preview) => Some(&preview.request_id),
            Self::Note(event) => event["record"]["requestId"].as_str(),
        }
    }

    /// The Telemetry API record, when it is one.
    pub fn telemetry(&self) -> Option<&Record> {
        match self {
            Self::Telemetry(event) => Some(&event.record),
            _ => None,
        }
    }

    /// The event's JSON.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Note(event) => (**event).clone(),
            other => serde_json::to_value(other).unwrap_or_default(),
        }
    }
}

impl Serialize for StreamEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Telemetry(event) => event.serialize(serializer),
            Self::Preview(preview) => {
                #[derive(Serialize)]
                struct Shape<'a> {
                    time: &'a str,
                    #[serde(rename = "type")]
                    kind: &'a str,
                    record: PreviewRecord<'a>,
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct PreviewRecord<'a> {
                    request_id: &'a str,
                    preview: &'a str,
                    size: Option<usize>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    error_type: Option<&'a str>,
                }
                Shape {
                    time: &preview.time,
                    kind: preview.kind(),
                    record: PreviewRecord {
                        request_id: &preview.request_id,
                        preview: &preview.preview,
                        size: preview.size,
                        error_type: preview.error_type.as_deref(),
                    },
                }
                .serialize(serializer)
            }
            Self::Note(event) => event.serialize(serializer),
        }
    }
}

/// The first bytes of an invocation's event or answer ([`REQUEST_PREVIEW`],
/// [`RESPONSE_PREVIEW`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// When it was taken.
    pub time: String,
    /// Of the answer (`false`: of the event).
    pub answer: bool,
    /// The invocation.
    pub request_id: String,
    /// At most [`PREVIEW_LIMIT`] bytes as text ([`preview_text`]), secrets not hidden.
    pub preview: String,
    /// The whole event's or answer's length in bytes; `None` for a stream.
    pub size: Option<usize>,
    /// For an answer: the function error's, the crash's or the timeout's type.
    pub error_type: Option<String>,
}

impl Preview {
    /// [`REQUEST_PREVIEW`] or [`RESPONSE_PREVIEW`].
    pub fn kind(&self) -> &'static str {
        if self.answer {
            RESPONSE_PREVIEW
        } else {
            REQUEST_PREVIEW
        }
    }
}

/// The first bytes of an invocation's event: `record` is `{"requestId", "preview", "size"}`
/// (`size`: the whole event's length in bytes). Published just before its `platform.start`.
pub const REQUEST_PREVIEW: &str = "coldstart.requestPreview";

/// The first bytes of an invocation's answer, as the caller gets it: `record` is
/// `{"requestId", "preview", "size", "errorType"}` (`errorType` for a function error, a crash or
/// a timeout; `size` is `null` for a stream). Published before its `platform.report`.
pub const RESPONSE_PREVIEW: &str = "coldstart.responsePreview";

/// One request a Function URL or an HTTP or REST API answered: `record` is `{"api", "kind"
/// (`url`, `http-api`, `rest-api`), "method", "path", "status", "durationMs" (until the answer's
/// head), "requestId"}`. Published under the function's name for a Function URL and under the
/// empty name for an API (its routes' functions are known by the request id).
pub const API_REQUEST: &str = "coldstart.apiRequest";

/// A function's build: `record` is `{"status": "building" | "built" | "failed", "error"}`
/// (`error`: the first line of why it failed).
pub const BUILD: &str = "coldstart.build";

/// Longest preview, in bytes.
pub const PREVIEW_LIMIT: usize = 1024;

/// An event of type `kind` with `record`, timed now.
pub fn event(kind: &str, record: Value) -> Value {
    json!({
        "time": iso_millis(SystemTime::now()),
        "type": kind,
        "record": record,
    })
}

/// A [`REQUEST_PREVIEW`] or [`RESPONSE_PREVIEW`] (`answer`) of `bytes` (of which at most
/// [`PREVIEW_LIMIT`] are read).
pub(crate) fn preview(
    answer: bool,
    request_id: &str,
    bytes: &[u8],
    size: Option<usize>,
    error_type: Option<&str>,
) -> StreamEvent {
    StreamEvent::Preview(Arc::new(Preview {
        time: iso_millis(SystemTime::now()),
        answer,
        request_id: request_id.to_owned(),
        preview: preview_text(bytes),
        size,
        error_type: error_type.map(str::to_owned),
    }))
}

/// At most [`PREVIEW_LIMIT`] bytes of `bytes` as text, cut at a character boundary; `…` marks
/// a cut.
pub fn preview_text(bytes: &[u8]) -> String {
    if bytes.len() <= PREVIEW_LIMIT {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let head = &bytes[..PREVIEW_LIMIT];
    // A character cut in two at the end is dropped, not shown as a replacement character.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(head).into_owned(),
    };
    format!("{text}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_bounded_and_cut_at_a_character_boundary() {
        let long = "é".repeat(PREVIEW_LIMIT);
        let cut = preview_text(long.as_bytes());
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.len() <= PREVIEW_LIMIT + '…'.len_utf8());
        assert!(!cut.contains('\u{fffd}'), "no half character");
        assert_eq!(preview_text(b"{}"), "{}");
        let event = preview(true, "r1", b"ok", Some(2), Some("Runtime.ExitError"));
        assert_eq!(event.kind(), RESPONSE_PREVIEW);
        assert_eq!(event.request_id(), Some("r1"));
        let json = event.to_value();
        assert_eq!(json["type"], RESPONSE_PREVIEW);
        assert_eq!(json["time"], event.time());
        assert_eq!(json["record"]["preview"], "ok");
        assert_eq!(json["record"]["size"], 2);
        assert_eq!(json["record"]["errorType"], "Runtime.ExitError");
        let request = preview(false, "r2", b"{}", Some(2), None).to_value();
        assert_eq!(request["type"], REQUEST_PREVIEW);
        assert!(request["record"].get("errorType").is_none());
    }
}

//! coldstart's own events on a function's platform event stream: facts a local tool wants
//! (what an invocation received and answered, a front door's requests, a build's state) that
//! Lambda's Telemetry API has no event for. They go only to the log sink's record hook
//! ([`crate::LogSink::record`], a dashboard), never to an extension's Telemetry or Logs API
//! subscription, so what extensions receive stays Lambda's.
//!
//! Each is `{"time", "type", "record"}` like the Telemetry API's events, with a `coldstart.`
//! type. They are built only while the sink wants records; a preview holds at most
//! [`PREVIEW_LIMIT`] bytes, so no payload is copied whole.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::clock::iso_millis;

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

/// A [`REQUEST_PREVIEW`] or [`RESPONSE_PREVIEW`] of `bytes` (of which at most
/// [`PREVIEW_LIMIT`] are read).
pub(crate) fn preview(
    kind: &str,
    request_id: &str,
    bytes: &[u8],
    size: Option<usize>,
    error_type: Option<&str>,
) -> Value {
    let mut record = json!({
        "requestId": request_id,
        "preview": preview_text(bytes),
        "size": size,
    });
    if let Some(error_type) = error_type {
        record["errorType"] = Value::from(error_type);
    }
    event(kind, record)
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
        let event = preview(
            RESPONSE_PREVIEW,
            "r1",
            b"ok",
            Some(2),
            Some("Runtime.ExitError"),
        );
        assert_eq!(event["type"], RESPONSE_PREVIEW);
        assert_eq!(event["record"]["preview"], "ok");
        assert_eq!(event["record"]["errorType"], "Runtime.ExitError");
    }
}

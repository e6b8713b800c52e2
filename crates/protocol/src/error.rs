//! JSON error bodies: the Runtime API's `{"errorType","errorMessage"}` and the Invoke API's
//! `{"Type","Message"}`.

use serde::{Deserialize, Serialize};

/// The error shape of the Runtime API and of function errors returned to callers:
/// `{"errorType":"…","errorMessage":"…"}` with an optional `stackTrace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Category, e.g. `Runtime.ExitError` or the handler's error type.
    #[serde(rename = "errorType")]
    pub error_type: String,
    /// Human-readable message.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    /// Optional stack trace lines.
    #[serde(
        rename = "stackTrace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stack_trace: Option<Vec<String>>,
}

impl ErrorBody {
    /// An error body without a stack trace.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            error_message: error_message.into(),
            stack_trace: None,
        }
    }

    /// The JSON bytes of this body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising two strings and a list of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The error shape of the Invoke API (restJson1): `{"Type":"User","Message":"…"}`, plus `Reason`
/// for throttling. The exception name travels in `x-amzn-ErrorType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// `User` for a client fault, `Service` for a service fault.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Human-readable message.
    #[serde(rename = "Message")]
    pub message: String,
    /// Throttling reason, e.g. `ReservedFunctionConcurrentInvocationLimitExceeded`.
    #[serde(rename = "Reason", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ApiErrorBody {
    /// The JSON bytes of this body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// An error with its causes on one line, as a program's `main` reports it: `a: b: c`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_uses_aws_field_names_and_omits_absent_trace() {
        let json = String::from_utf8(ErrorBody::new("Foo", "bar").to_json()).unwrap_or_default();
        assert_eq!(json, r#"{"errorType":"Foo","errorMessage":"bar"}"#);
        let parsed: ErrorBody =
            serde_json::from_str(r#"{"errorType":"A","errorMessage":"b","stackTrace":["x"]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.stack_trace, Some(vec!["x".to_owned()]));
    }

    #[test]
    fn api_error_body_uses_restjson_field_names() {
        let body = ApiErrorBody {
            kind: "User".into(),
            message: "Rate Exceeded.".into(),
            reason: Some("ReservedFunctionConcurrentInvocationLimitExceeded".into()),
        };
        let json = String::from_utf8(body.to_json()).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"Type":"User","Message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#
        );
    }
}

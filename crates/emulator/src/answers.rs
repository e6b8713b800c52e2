//! Answers shared by a sandbox's Runtime, Extensions and Telemetry APIs, worded as rapid words
//! them, and the extension identifier the latter two check. They live apart so that the APIs
//! beside each other do not import each other.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use coldstart_protocol::ErrorBody;
use coldstart_protocol::extension as ext;
use coldstart_protocol::runtime as rt;

use crate::body::Body;
use crate::extensions::ExtensionRefusal;

/// 202 and `{"status":"OK"}`.
pub(crate) fn accepted() -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from_static(rt::ACCEPTED_BODY.as_bytes())));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A `{"errorMessage","errorType"}` answer, as rapid gives to the Runtime and Extensions APIs.
pub(crate) fn rapid_error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(
        ErrorBody::new(error_type, message).to_json(),
    )));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An Extensions API refusal: 403 and rapid's error body.
pub(crate) fn refused(refusal: ExtensionRefusal) -> Response<Body> {
    rapid_error(StatusCode::FORBIDDEN, refusal.error_type, &refusal.message)
}

/// The `Lambda-Extension-Identifier` header, checked for presence and UUID shape.
pub(crate) fn identifier(headers: &HeaderMap) -> Result<String, ExtensionRefusal> {
    let Some(id) = header(headers, &ext::IDENTIFIER) else {
        return Err(ExtensionRefusal::new(
            "Extension.MissingExtensionIdentifier",
            "Missing Lambda-Extension-Identifier header",
        ));
    };
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ExtensionRefusal::new(
            "Extension.InvalidExtensionIdentifier",
            "Invalid Lambda-Extension-Identifier",
        ));
    }
    Ok(id)
}

/// A header's trimmed text, when it has some.
pub(crate) fn header(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

//! The `@connections` management API (`PostToConnection`, `GetConnection`,
//! `DeleteConnection`), served under the stage on the WebSocket port:
//! `/{stage}/@connections/{connectionId}`, the id percent-encoded (`=` as `%3D`); and, a
//! coldstart addition, `GET /{stage}/@connections` listing the open connections ([`list`]).
//!
//! Answers follow the service model, so `aws-sdk-apigatewaymanagement` and boto3 raise their
//! modelled exceptions: errors carry `x-amzn-ErrorType` and a `{"message": …}` body. SigV4
//! headers are accepted and not checked.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::sync::mpsc::error::TrySendError;

use coldstart_protocol::invoke::{ERROR_TYPE, REQUEST_ID};

use crate::answer::frame_of;
use crate::error::ConnectionsError;
use crate::event::percent_decode;
use crate::registry::Registry;
use crate::wire::MAX_POST;
use coldstart_emulator::apigw::iso_millis;

/// Answers one `@connections` request; `raw_id` is the path after `@connections/`, still
/// percent-encoded.
pub(crate) async fn handle(
    method: &Method,
    raw_id: &str,
    headers: &HeaderMap,
    body: Incoming,
    registry: &Registry,
) -> Response<Full<Bytes>> {
    let result = match decode_id(raw_id) {
        Ok(id) => operate(method, &id, headers, body, registry).await,
        Err(err) => Err(err),
    };
    let mut response = match result {
        Ok(response) => response,
        Err(err) => {
            let mut response = json(err.status(), err.body());
            response
                .headers_mut()
                .insert(ERROR_TYPE, HeaderValue::from_static(err.error_type()));
            response
        }
    };
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn operate(
    method: &Method,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
    registry: &Registry,
) -> Result<Response<Full<Bytes>>, ConnectionsError> {
    let gone = || ConnectionsError::Gone(id.to_owned());
    match *method {
        Method::POST => {
            let data = read_body(headers, body).await?;
            let handle = registry.get(id).ok_or_else(gone)?;
            match handle.outbox.try_send(frame_of(data)) {
                Ok(()) => Ok(Response::new(Full::default())),
                Err(TrySendError::Full(_)) => Err(ConnectionsError::LimitExceeded),
                Err(TrySendError::Closed(_)) => Err(gone()),
            }
        }
        Method::GET => {
            let handle = registry.get(id).ok_or_else(gone)?;
            let c = &handle.connection;
            let mut identity = serde_json::json!({ "sourceIp": c.source_ip });
            if let Some(ua) = &c.user_agent {
                identity["userAgent"] = ua.as_str().into();
            }
            let body = serde_json::json!({
                "connectedAt": iso_ms(c.connected_at),
                "identity": identity,
                "lastActiveAt": iso_ms(c.last_active()),
            });
            Ok(json(StatusCode::OK, body.to_string()))
        }
        Method::DELETE => {
            // Out of the table at once, so that the id is gone for every later request; the
            // session closes the socket and invokes `$disconnect`.
            let handle = registry.remove(id).ok_or_else(gone)?;
            handle.delete.cancel();
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok(response)
        }
        _ => Err(ConnectionsError::Forbidden),
    }
}

/// `GET /{stage}/@connections`, which API Gateway does not have: coldstart's list of the open
/// connections, each as `GetConnection` describes it plus its `connectionId`, oldest first:
/// `{"connections": [{"connectionId", "connectedAt", "lastActiveAt", "identity"}]}`. Tools
/// such as the dashboard read it; functions should keep their own table as on AWS.
pub(crate) fn list(registry: &Registry) -> Response<Full<Bytes>> {
    let connections: Vec<serde_json::Value> = registry
        .connections()
        .iter()
        .map(|c| {
            let mut identity = serde_json::json!({ "sourceIp": c.source_ip });
            if let Some(ua) = &c.user_agent {
                identity["userAgent"] = ua.as_str().into();
            }
            serde_json::json!({
                "connectionId": c.id,
                "connectedAt": iso_ms(c.connected_at),
                "lastActiveAt": iso_ms(c.last_active()),
                "identity": identity,
            })
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "connections": connections }).to_string(),
    )
}

/// The connection id of the path: percent-decoded, one segment, not empty.
fn decode_id(raw: &str) -> Result<String, ConnectionsError> {
    if raw.is_empty() || raw.contains('/') {
        return Err(ConnectionsError::Forbidden);
    }
    percent_decode(raw)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(ConnectionsError::BadRequest(
            "Invalid connectionId: not valid percent-encoding",
        ))
}

/// The posted data, at most [`MAX_POST`] bytes.
async fn read_body(headers: &HeaderMap, body: Incoming) -> Result<Bytes, ConnectionsError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_POST as u64) {
        return Err(ConnectionsError::PayloadTooLarge);
    }
    match Limited::new(body, MAX_POST).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(ConnectionsError::PayloadTooLarge),
        Err(_) => Err(ConnectionsError::BadRequest("The request body broke off")),
    }
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// ISO-8601 with milliseconds of an epoch-milliseconds time, as the `@connections` API shows it.
fn iso_ms(epoch_ms: u64) -> String {
    iso_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(epoch_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_percent_decoded_single_segments() {
        assert_eq!(
            decode_id("L0SM9cOFvHcCIhw%3D").ok().as_deref(),
            Some("L0SM9cOFvHcCIhw=")
        );
        assert_eq!(
            decode_id("L0SM9cOFvHcCIhw=").ok().as_deref(),
            Some("L0SM9cOFvHcCIhw=")
        );
        assert_eq!(decode_id(""), Err(ConnectionsError::Forbidden));
        assert_eq!(decode_id("a/b"), Err(ConnectionsError::Forbidden));
        assert!(matches!(
            decode_id("a%zz"),
            Err(ConnectionsError::BadRequest(_))
        ));
    }
}

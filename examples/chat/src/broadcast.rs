//! Sending one message to every connection of a channel, and the `broadcast` function's handler
//! (an HTTP API route, payload 2.0) around it.
//!
//! The fan-out lives here rather than in a binary because both functions use it: `broadcast` for
//! `POST /broadcast`, and `chat` for the WebSocket route `broadcast`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use coldstart_runtime::events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use coldstart_runtime::events::encodings::Body;
use coldstart_runtime::events::http::{HeaderValue, header::CONTENT_TYPE};
use futures_util::StreamExt;
use serde::Serialize;

use crate::{App, ConnectionStore, Delivery, Endpoint, Error, config};

/// Most PostToConnection requests in flight at once during a broadcast.
const CONCURRENT_POSTS: usize = 16;

/// What a broadcast did, connection by connection.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Outcome {
    /// Connections the message was sent to.
    pub sent: usize,
    /// Connections that were gone (410), whose records were removed.
    pub gone: usize,
    /// Connections the message could not be sent to for another reason (their records are kept),
    /// and gone connections whose records could not be removed.
    pub failed: Vec<Error>,
}

impl Outcome {
    /// The counts, as the `broadcast` function answers them.
    pub fn summary(&self) -> Summary {
        Summary {
            sent: self.sent,
            gone: self.gone,
            failed: self.failed.len(),
        }
    }
}

/// The JSON body of a broadcast's answer: `{"sent":N,"gone":M,"failed":K}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Connections the message was sent to.
    pub sent: usize,
    /// Gone connections (removed).
    pub gone: usize,
    /// Connections that failed otherwise.
    pub failed: usize,
}

/// Sends `message` to every connection of `channel` through `endpoint`, removing the records of
/// connections that are gone. Fails only when the channel's connections cannot be listed; failures
/// of single connections are collected in the [`Outcome`].
pub async fn broadcast(
    store: &impl ConnectionStore,
    endpoint: &Endpoint,
    channel: &str,
    message: &[u8],
) -> Result<Outcome, Error> {
    let connections = store.list(channel).await?;
    let mut deliveries = futures_util::stream::iter(connections)
        .map(|connection_id| async move {
            match endpoint.post(&connection_id, message).await {
                Ok(Delivery::Gone) => store.delete(&connection_id).await.map(|()| Delivery::Gone),
                other => other,
            }
        })
        .buffer_unordered(CONCURRENT_POSTS);
    let mut outcome = Outcome::default();
    while let Some(delivery) = deliveries.next().await {
        match delivery {
            Ok(Delivery::Sent) => outcome.sent += 1,
            Ok(Delivery::Gone) => outcome.gone += 1,
            Err(error) => outcome.failed.push(error),
        }
    }
    Ok(outcome)
}

/// The `broadcast` function: `POST /broadcast?channel=C` with the message as the body sends it to
/// every connection of channel `C` (default `test`) and answers `200 {"sent":N,"gone":M,"failed":K}`;
/// an empty or undecodable body answers 400.
///
/// Failures of single connections are returned too, for the caller to log; they do not fail the
/// invocation.
pub async fn handle_broadcast(
    app: &App,
    request: ApiGatewayV2httpRequest,
) -> Result<(ApiGatewayV2httpResponse, Vec<Error>), Error> {
    let channel = request
        .query_string_parameters
        .first("channel")
        .filter(|channel| !channel.is_empty())
        .unwrap_or(config::DEFAULT_CHANNEL);
    let message = match decode_body(request.body.as_deref(), request.is_base64_encoded) {
        Some(message) if !message.is_empty() => message,
        Some(_) => {
            return Ok((
                bad_request("the body is the message to broadcast; it is empty"),
                Vec::new(),
            ));
        }
        None => {
            return Ok((
                bad_request("the body is marked base64 but is not"),
                Vec::new(),
            ));
        }
    };
    let endpoint = app.connections.endpoint(None, None)?;
    let outcome = broadcast(&app.store, &endpoint, channel, &message).await?;
    let summary = outcome.summary();
    Ok((json_response(200, &summary), outcome.failed))
}

/// The event's body as bytes: decoded when API Gateway marked it base64 (HTTP APIs do so for
/// bodies that are not text, e.g. `curl -d`'s `application/x-www-form-urlencoded`). `None` when
/// the base64 is invalid.
pub(crate) fn decode_body(body: Option<&str>, is_base64_encoded: bool) -> Option<Vec<u8>> {
    let body = body.unwrap_or_default();
    if is_base64_encoded {
        BASE64.decode(body).ok()
    } else {
        Some(body.as_bytes().to_vec())
    }
}

fn bad_request(message: &str) -> ApiGatewayV2httpResponse {
    json_response(400, &serde_json::json!({ "message": message }))
}

fn json_response(status: i64, body: &impl Serialize) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status;
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Serialising a struct of numbers or a map of strings cannot fail.
    response.body = Some(Body::Text(serde_json::to_string(body).unwrap_or_default()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base64_body_is_decoded() {
        assert_eq!(decode_body(Some("aGk="), true), Some(b"hi".to_vec()));
        assert_eq!(decode_body(Some("hi"), false), Some(b"hi".to_vec()));
        assert_eq!(decode_body(None, false), Some(Vec::new()));
        assert_eq!(decode_body(Some("not base64!"), true), None);
    }

    #[test]
    fn the_summary_is_counts() {
        let outcome = Outcome {
            sent: 2,
            gone: 1,
            failed: vec![Error::NoEndpoint],
        };
        assert_eq!(
            serde_json::to_string(&outcome.summary()).ok().as_deref(),
            Some(r#"{"sent":2,"gone":1,"failed":1}"#)
        );
    }
}

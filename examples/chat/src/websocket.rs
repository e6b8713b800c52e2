//! The `chat` function's handler: the routes of the WebSocket API.
//!
//! - `$connect`: records the connection on its channel (`?channel=`, default `test`);
//! - `$disconnect`: forgets it;
//! - `broadcast` (a message `{"action":"broadcast","message":"..."}`): sends `message` to every
//!   connection of the sender's channel;
//! - `$default` (any other message): echoes the message back to the sender.
//!
//! Every route answers `{"statusCode":200}`; messages to clients go through `@connections`, since
//! API Gateway does not forward a route's return value without a route response.

use coldstart_runtime::events::apigw::ApiGatewayWebsocketProxyRequest;
use serde::Serialize;

use crate::broadcast::{Outcome, broadcast, decode_body};
use crate::{App, ConnectionStore, Delivery, Error, config};

/// The route key of the custom route that broadcasts to the sender's channel.
pub const BROADCAST_ROUTE: &str = "broadcast";

/// A WebSocket route's answer: `{"statusCode":200}`, with a `body` only when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketResponse {
    /// 2xx accepts a `$connect`; anything else rejects the upgrade with that status.
    pub status_code: u16,
    /// Sent to the client only if the route has a route response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WebSocketResponse {
    /// `{"statusCode":200}`.
    pub fn ok() -> Self {
        Self {
            status_code: 200,
            body: None,
        }
    }

    /// `{"statusCode":status,"body":body}`.
    pub fn with_body(status_code: u16, body: impl Into<String>) -> Self {
        Self {
            status_code,
            body: Some(body.into()),
        }
    }
}

/// What the `chat` function did with one event, for its log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Handled {
    /// `$connect`: the connection was recorded on this channel.
    Connected {
        /// The channel.
        channel: String,
    },
    /// `$disconnect`: the record was removed.
    Disconnected,
    /// `$default`: the message was echoed (`Sent`) or the sender was gone (`Gone`, record removed).
    Echoed(Delivery),
    /// `broadcast`: the message went to the sender's channel.
    Broadcast {
        /// The channel.
        channel: String,
        /// What became of it, connection by connection.
        outcome: Outcome,
    },
}

/// The `chat` function: handles one WebSocket event (see the module's documentation).
pub async fn handle_websocket(
    app: &App,
    event: ApiGatewayWebsocketProxyRequest,
) -> Result<(WebSocketResponse, Handled), Error> {
    let context = &event.request_context;
    let connection_id = context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or(Error::InvalidEvent("no requestContext.connectionId"))?;
    let route_key = context.route_key.as_deref().unwrap_or_default();
    let handled = match route_key {
        "$connect" => {
            let channel = event
                .query_string_parameters
                .first("channel")
                .filter(|channel| !channel.is_empty())
                .unwrap_or(config::DEFAULT_CHANNEL)
                .to_owned();
            app.store.put(connection_id, &channel).await?;
            Handled::Connected { channel }
        }
        "$disconnect" => {
            app.store.delete(connection_id).await?;
            Handled::Disconnected
        }
        _ => {
            let message = decode_body(event.body.as_deref(), event.is_base64_encoded)
                .ok_or(Error::InvalidEvent("the body is marked base64 but is not"))?;
            let endpoint = app
                .connections
                .endpoint(context.domain_name.as_deref(), context.stage.as_deref())?;
            if route_key == BROADCAST_ROUTE {
                let channel = app
                    .store
                    .channel_of(connection_id)
                    .await?
                    .unwrap_or_else(|| config::DEFAULT_CHANNEL.to_owned());
                let message = broadcast_message(&message);
                let outcome = broadcast(&app.store, &endpoint, &channel, &message).await?;
                Handled::Broadcast { channel, outcome }
            } else {
                let delivery = endpoint.post(connection_id, message).await?;
                if delivery == Delivery::Gone {
                    app.store.delete(connection_id).await?;
                }
                Handled::Echoed(delivery)
            }
        }
    };
    Ok((WebSocketResponse::ok(), handled))
}

/// The text a `broadcast` message sends: its `message` field when it is a JSON object with a
/// string `message`, else the whole frame.
fn broadcast_message(frame: &[u8]) -> Vec<u8> {
    serde_json::from_slice::<serde_json::Value>(frame)
        .ok()
        .and_then(|value| match value.get("message") {
            Some(serde_json::Value::String(message)) => Some(message.clone().into_bytes()),
            _ => None,
        })
        .unwrap_or_else(|| frame.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_answers_status_200_only() {
        assert_eq!(
            serde_json::to_string(&WebSocketResponse::ok())
                .ok()
                .as_deref(),
            Some(r#"{"statusCode":200}"#)
        );
    }

    #[test]
    fn a_broadcast_sends_the_message_field() {
        assert_eq!(
            broadcast_message(br#"{"action":"broadcast","message":"hello"}"#),
            b"hello"
        );
        assert_eq!(
            broadcast_message(br#"{"action":"broadcast"}"#),
            br#"{"action":"broadcast"}"#
        );
        assert_eq!(broadcast_message(b"plain"), b"plain");
    }
}

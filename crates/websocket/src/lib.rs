//! API Gateway WebSocket APIs for coldstart: clients connect with WebSocket, each message goes
//! to a Lambda function chosen by a route selection expression, and the `@connections` API lets
//! functions (through an AWS SDK) send to, describe and disconnect clients.
//!
//! Describe the API with a [`WebSocketApi`] and serve it with [`serve_websocket_api`] on a
//! listener, invoking functions on an [`Emulator`](coldstart_emulator::Emulator). Clients connect
//! to `ws://127.0.0.1:PORT/{stage}`; the `@connections` API is on the same port at
//! `http://127.0.0.1:PORT/{stage}/@connections/{connectionId}` (point an SDK's endpoint at
//! `http://127.0.0.1:PORT/{stage}`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use coldstart_emulator::{Emulator, FunctionConfig, Settings, TracingSink};
//! use coldstart_websocket::{RouteTarget, WebSocketApi, serve_websocket_api};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let chat = FunctionConfig::new("chat", vec!["target/release/chat".into()]);
//! let emulator = Emulator::new(vec![chat], Settings::default(), Arc::new(TracingSink))?;
//! let api = WebSocketApi::new("chat", "staging")
//!     .route("$connect", RouteTarget::new("chat"))
//!     .route("$disconnect", RouteTarget::new("chat"))
//!     .route("$default", RouteTarget::two_way("chat"))
//!     .route("broadcast", RouteTarget::new("chat"));
//! api.validate(&emulator)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9200").await?;
//! let shutdown = CancellationToken::new();
//! serve_websocket_api(emulator.clone(), api, listener, shutdown).await?;
//! emulator.shutdown(std::time::Duration::from_secs(3)).await;
//! # Ok(())
//! # }
//! ```
//!
//! What API Gateway does and this does too: `$connect` runs before the upgrade is answered
//! (a non-2xx `statusCode` rejects it with that status, a failed function with 502, returned
//! `headers` such as `Sec-WebSocket-Protocol` go on the 101); messages route by the selection
//! expression, else to `$default`, else the client gets a `Forbidden` error message; a failed
//! function gets it an `Internal server error` message; two-way routes send the answer back;
//! `$disconnect` runs exactly once for every accepted connection, whatever ended it; idle
//! timeout, maximum duration and message and frame limits close with 1001 and 1009. One
//! difference: binary frames, which API Gateway refuses (1003), are delivered base64-encoded
//! with `isBase64Encoded: true`.
//!
//! # Layout
//! - `api`: [`WebSocketApi`] and [`RouteTarget`], the API's settings, and their validation.
//! - `selection`: route selection expressions (`$request.body.action`, `${…}` templates).
//! - `server`: [`serve_websocket_api`], the listener: upgrade and `$connect`, `@connections`,
//!   shutdown.
//! - `session`: one connection's life: routing messages, sending, closing, `$disconnect`;
//!   written against `Sink + Stream` so tests drive it through channels.
//! - `event`: the `CONNECT`, `MESSAGE` and `DISCONNECT` events.
//! - `answer`: reading function answers: the handshake decision, route responses, error
//!   messages.
//! - `management`: the `@connections` API.
//! - `registry`: the table of open connections.
//! - `backend`: how functions are invoked (the emulator, or a test's script).
//! - `clock`: connection, request and message ids in API Gateway's format.
//! - [`wire`]: the protocol's names, limits and close codes.
//! - [`error`]: configuration errors, and the `@connections` API's refusals.

mod answer;
mod api;
mod backend;
mod clock;
pub mod error;
mod event;
mod management;
mod registry;
mod selection;
mod server;
mod session;
pub mod wire;

pub use api::{RouteTarget, WebSocketApi};
pub use error::Error;
pub use server::serve_websocket_api;

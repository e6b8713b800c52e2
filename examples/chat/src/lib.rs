//! The WebSocket chat app of the seeds, done right: two Lambda functions, a connection store that
//! is SQLite locally and DynamoDB in production, and no name, region or endpoint in the code.
//!
//! - `chat` (`src/bin/chat.rs`) sits behind a WebSocket API: [`handle_websocket`] records
//!   connections on `$connect` (channel from `?channel=`, default `test`), forgets them on
//!   `$disconnect`, echoes `$default` messages to their sender and sends a `broadcast` route's
//!   message to the sender's channel, both through `@connections`.
//! - `broadcast` (`src/bin/broadcast.rs`) sits behind an HTTP API route `POST /broadcast`:
//!   [`handle_broadcast`] sends the body to every connection of `?channel=` (default `test`),
//!   removing connections that are gone (410), and answers `{"sent":N,"gone":M,"failed":K}`.
//!
//! Each process builds an [`App`] once, from the environment, before its first invocation:
//!
//! ```no_run
//! use chat::{App, ConnectionStore};
//!
//! # async fn example() -> Result<(), chat::Error> {
//! let app = App::from_env().await?;
//! app.store.put("L0SM9cOFvHcCIhw=", "test").await?;
//! assert_eq!(app.store.list("test").await?, ["L0SM9cOFvHcCIhw="]);
//! # Ok(())
//! # }
//! ```
//!
//! # Environment
//! - `CONNECTIONS_TABLE`: the DynamoDB table; when set, the DynamoDB store is used. Default: unset.
//! - `CONNECTIONS_INDEX`: the table's GSI on `channel`. Default: `channel-index`.
//! - `CONNECTIONS_DB`: the SQLite file when `CONNECTIONS_TABLE` is unset. Default:
//!   `coldstart-chat.sqlite3` in the temporary directory (`$TMPDIR`, else `/tmp`).
//! - `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`: the `@connections` endpoint,
//!   `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`. Default: the generic
//!   `AWS_ENDPOINT_URL`, else (`chat` only) `https://{domainName}/{stage}` of each event.
//!   `broadcast` needs one and reports an init error without.
//! - The AWS SDK's own: `AWS_REGION`, credentials (`AWS_ACCESS_KEY_ID`, ... or the default
//!   chain), `AWS_ENDPOINT_URL_DYNAMODB` for a local DynamoDB.
//!
//! # Layout
//! - `config`: the environment variables, their defaults, and the SDK configuration.
//! - `store`: [`ConnectionStore`], the store's interface, and [`Store`], the backend the
//!   environment picks.
//! - `sqlite`: [`SqliteStore`], connections in a SQLite file shared by processes (WAL, busy
//!   timeout, statements on the blocking pool).
//! - `dynamodb`: [`DynamoDbStore`], connections in a DynamoDB table with a GSI on `channel`.
//! - `connections`: [`Connections`] and [`Endpoint`], the `@connections` API (PostToConnection),
//!   and [`Delivery`], what became of a message.
//! - `broadcast`: [`broadcast`], the fan-out to a channel, and [`handle_broadcast`], the
//!   `broadcast` function's handler.
//! - `websocket`: [`handle_websocket`], the `chat` function's handler, and its
//!   [`WebSocketResponse`].
//! - `app`: [`App`], what a process builds once.
//! - `error`: [`Error`], and its translation into what Lambda records.

mod app;
mod broadcast;
pub mod config;
mod connections;
mod dynamodb;
mod error;
mod sqlite;
mod store;
mod websocket;

pub use app::App;
pub use broadcast::{Outcome, Summary, broadcast, handle_broadcast};
pub use connections::{Connections, Delivery, Endpoint};
pub use dynamodb::DynamoDbStore;
pub use error::{BoxError, Error};
pub use sqlite::SqliteStore;
pub use store::{ConnectionStore, Store};
pub use websocket::{BROADCAST_ROUTE, Handled, WebSocketResponse, handle_websocket};

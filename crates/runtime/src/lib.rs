//! A small, fast AWS Lambda runtime client: write your function as a plain async handler and hand
//! it to [`run`].
//!
//! The entry point is [`run`] (JSON events) or [`run_bytes`] (raw bytes); both read
//! `AWS_LAMBDA_RUNTIME_API`, connect, and loop: fetch the next event, call the handler with the
//! event and a [`Context`], post the result. A handler error becomes a [`Diagnostic`] posted to
//! Lambda, a panic is reported as an error of type `Panic`, and the loop carries on; only a
//! failing Runtime API ends it, with an [`Error`] for `main` to return.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), coldstart_runtime::Error> {
//!     coldstart_runtime::run(|event: serde_json::Value, _ctx: coldstart_runtime::Context| async move {
//!         Ok::<_, coldstart_runtime::Error>(event)
//!     })
//!     .await
//! }
//! ```
//!
//! To stream a response (functions with invoke mode `RESPONSE_STREAM`, Function URLs), use
//! [`run_streaming`]: the handler also gets a [`ResponseStream`] and each
//! [`write`](ResponseStream::write) leaves at once; [`ResponseStream::http`] first sends a Function
//! URL's status, headers and cookies ([`HttpPrelude`]):
//!
//! ```no_run
//! use coldstart_runtime::{Context, Error, HttpPrelude, ResponseStream};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     coldstart_runtime::run_streaming(
//!         |name: String, _ctx: Context, mut stream: ResponseStream| async move {
//!             stream
//!                 .http(HttpPrelude::new(200).header("content-type", "text/plain"))
//!                 .await?;
//!             stream.write("hello, ").await?;
//!             stream.write(name).await?;
//!             Ok::<_, Error>(())
//!         },
//!     )
//!     .await
//! }
//! ```
//!
//! Any `Display` type works as the handler's error (`String`, `std::io::Error`,
//! `Box<dyn std::error::Error + Send + Sync>`, your own type), and so does [`Diagnostic`] to pick
//! the reported error type yourself. To report a failed initialisation to Lambda, use [`Runtime`]:
//! [`Runtime::from_env`], then [`Runtime::init_error`] or [`Runtime::run`].
//!
//! Multi-concurrent execution environments (Lambda Managed Instances, `coldstart run
//! --max-concurrency N`, `max_concurrency` in `coldstart.toml`) hand one environment up to
//! `AWS_LAMBDA_MAX_CONCURRENCY` invocations at once. [`run_concurrent`] keeps that many `next`
//! calls open, one task each (one when the variable is unset): the handler must be
//! `Clone + Send + 'static` and is called concurrently, so shared state needs a lock or an
//! atomic, and the trace id is on the [`Context`] only (no process-wide `_X_AMZN_TRACE_ID`). A
//! panic fails only its own invocation; on SIGTERM no new invocation is taken and those in
//! progress finish and are answered before it returns:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use coldstart_runtime::{Context, Error};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     let served = Arc::new(AtomicU64::new(0));
//!     coldstart_runtime::run_concurrent(move |name: String, ctx: Context| {
//!         let served = served.clone();
//!         async move {
//!             let n = served.fetch_add(1, Ordering::Relaxed) + 1;
//!             let trace = ctx.xray_trace_id.unwrap_or_default();
//!             Ok::<_, Error>(format!("hello {name}, #{n} (trace {trace})"))
//!         }
//!     })
//!     .await
//! }
//! ```
//!
//! Logging: [`info!`], [`warn!`], [`error!`] and the rest write a line carrying the current
//! invocation's request id, as one JSON object when the function's `LoggingConfig.LogFormat` is
//! JSON (skipping lines below `AWS_LAMBDA_LOG_LEVEL`); see [`log`].
//!
//! Typed events: with the default feature `events`, `aws_lambda_events` is re-exported
//! as `coldstart_runtime::events`; enable the event families you need on `aws_lambda_events`
//! (e.g. its `apigw` feature) and take the event type as the handler's argument:
//!
//! ```ignore
//! use coldstart_runtime::events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
//!
//! async fn handler(
//!     request: ApiGatewayV2httpRequest,
//!     _ctx: coldstart_runtime::Context,
//! ) -> Result<ApiGatewayV2httpResponse, coldstart_runtime::Error> {
//!     let mut response = ApiGatewayV2httpResponse::default();
//!     response.status_code = 200;
//!     response.body = request.body.map(Into::into);
//!     Ok(response)
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), coldstart_runtime::Error> {
//!     coldstart_runtime::run(handler).await
//! }
//! ```
//!
//! # Layout
//! - `error`: [`Error`], why the runtime stopped.
//! - `diagnostic`: [`Diagnostic`], what a failed invocation reports, and the conversion from any
//!   `Display` type.
//! - `context`: [`Context`] of one invocation, parsed from the `next` headers, the function's
//!   [`Config`], and the [`ClientContext`] / [`CognitoIdentity`] JSON shapes.
//! - `client`: the keep-alive HTTP/1.1 connection to the Runtime API and its request body type.
//! - `concurrent`: the concurrent mode behind [`run_concurrent`], pollers for a multi-concurrent
//!   execution environment.
//! - `runtime`: [`Runtime`] and the invocation loops behind [`run`], [`run_bytes`] and
//!   [`run_streaming`].
//! - `stream`: [`ResponseStream`] and [`HttpPrelude`], the channel from a streaming handler to the
//!   request body, and the streaming wire shapes (prelude, error trailers).
//! - `panic`: catching a handler's panic, in the call and while its future is polled.
//! - `trace_env`: exporting `_X_AMZN_TRACE_ID` per invocation without leaking the old values.

mod client;
mod concurrent;
mod context;
mod diagnostic;
mod error;
pub mod log;
mod panic;
mod runtime;
mod stream;
mod trace_env;

pub use client::Connection;
pub use concurrent::run_concurrent;
pub use context::{ClientApplication, ClientContext, CognitoIdentity, Config, Context};
pub use diagnostic::Diagnostic;
pub use error::Error;
pub use runtime::{Runtime, run, run_bytes, run_streaming};
pub use stream::{HttpPrelude, ResponseStream};

/// The `aws_lambda_events` crate: typed events for the handler's argument and result.
#[cfg(feature = "events")]
pub use aws_lambda_events as events;

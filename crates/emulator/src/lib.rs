//! A native AWS Lambda emulator: runs any `bootstrap` as Lambda would, without Docker.
//!
//! An [`Emulator`] holds functions; [`Emulator::invoke`] is the one way in for every front door
//! and [`serve_invoke_api`] is the Invoke API front door on a listener. Each invocation goes to an
//! execution environment (a *sandbox*: the bootstrap in its own process group with its own
//! Runtime API), started on first use, frozen while idle, killed at its deadline.
//!
//! ```no_run
//! use std::sync::Arc;
//! use coldstart_emulator::{Emulator, FunctionConfig, Settings, TracingSink, serve_invoke_api};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let echo = FunctionConfig::new("function", vec!["target/release/echo".into()]);
//! let emulator = Emulator::new(vec![echo], Settings::default(), Arc::new(TracingSink))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! let shutdown = CancellationToken::new();
//! serve_invoke_api(emulator.clone(), listener, shutdown).await;
//! emulator.shutdown(std::time::Duration::from_secs(3)).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`apigw`]: API Gateway's ids, query strings and time formats, shared with the WebSocket
//!   front door.
//! - [`config`]: function settings and their validation against Lambda's limits.
//! - `emulator`: the [`Emulator`]: functions by name or ARN, request validation, shutdown.
//! - `function`: one function's path of an invocation: warm, cold start, init failures, deadline;
//!   the owner of its sandboxes (it hears their lifecycle facts and serves their Runtime API).
//! - `pool`: the scheduler: idle sandboxes, concurrency slots, throttling.
//! - `sandbox`: one execution environment, a folder: `state` (its phases and transitions, unit
//!   tested without processes), `spawn`, `exit` (reaping, crashes, timeouts, stop), `freezer`,
//!   `streaming`, `reports` (the answer, `END`/`REPORT`, platform events). It is started from a
//!   plain `Spec` and tells its owner `Fact`s; it never calls up.
//! - `runtime_api`: the Runtime API server of a sandbox; `extension_api` beside it: the
//!   Extensions API, over `extensions`, the registry of a sandbox's extensions; `answers`: the
//!   answers they share, as rapid words them.
//! - `invoke_api`: the Invoke API front door, and InvokeWithResponseStream (`eventstream`: its
//!   framing).
//! - `gateway`: the HTTP front doors: Function URLs and API Gateway HTTP/REST APIs, with their
//!   events (`aws_lambda_events` types), route matching, CORS, per-route throttling and
//!   response mapping; a Function URL's SigV4 check (`AuthType: AWS_IAM`, in `gateway::sigv4`)
//!   and CORS (`gateway::cors`).
//! - [`logs`]: function log capture, `START`/`END`/`REPORT`, the log tail.
//! - [`notes`]: coldstart's own events on the platform event stream (previews of what an
//!   invocation received and answered, front-door requests, builds), for the log sink only.
//! - `telemetry`: a sandbox's platform event stream (the Telemetry API's event kinds, and the
//!   older Logs API's shapes for its subscribers) and its subscriptions' bounded queues and
//!   delivery tasks; `telemetry_api` beside it: the Telemetry API's `PUT /2022-07-01/telemetry`
//!   and the Logs API's `PUT /2020-08-15/logs`.
//! - [`auth`]: API Gateway's authorizers (Lambda and JWT), shared with the WebSocket front door.
//! - `invocation`: what front doors send in and get back; `async_invoke`: `Event` invocations
//!   as Lambda runs them (retries, event age, destinations, dead-letter queue); `queued`: the
//!   [`QueuedEvent`]s a graceful stop keeps ([`Emulator::shutdown_keeping_events`]) and a later
//!   emulator takes up again ([`Emulator::resume`]). Storing them is the caller's business (the
//!   stack crate keeps them in SQLite), so the emulator has no file format of its own for them.
//! - [`in_process`]: runtimes run as tasks of the emulator's process (for test harnesses).
//! - `opt`: a sandbox's own `/opt`, bound in a mount namespace.
//! - `process`, `clock`, `body`, `server`: signals, ids and times, body reading, the accept loop.
//! - `watchdog`: a process that kills the sandboxes' (and builds') process groups when coldstart
//!   dies, however it dies, so their grandchildren do not outlive a `kill -9`.
//! - [`error`]: set-up errors and the Invoke API's refusals.
//! - `snapshot`: a read-only view of each function's sandboxes and their phases
//!   ([`Emulator::sandboxes`]), for dashboards.
//!
//! Who imports whom, by floors: a module imports only modules on floors below its own, so there
//! is no circle among them.
//!
//! ```text
//! 11 gateway
//! 10 invoke_api, auth/  authorizers: identity sources, IAM policies, JWTs (over `Invoker`)
//! 9  emulator
//! 8  async_invoke
//! 7  function        owns sandboxes: starts them, hears their facts, serves their Runtime API
//! 6  runtime_api
//! 5  extension_api, telemetry_api, pool
//! 4  sandbox/        spawn, exit, freezer, streaming -> mod -> reports -> state
//! 3  logs
//! 2  answers, server, telemetry, config, apigw, notes
//! 1  body, extensions, invocation, process, error, clock, eventstream, opt, queued, in_process,
//!    snapshot
//! ```

mod answers;
pub mod apigw;
mod async_invoke;
pub mod auth;
mod body;
mod clock;
pub mod config;
mod emulator;
pub mod error;
mod eventstream;
mod extension_api;
mod extensions;
mod function;
mod gateway;
pub mod in_process;
mod invocation;
mod invoke_api;
pub mod logs;
pub mod notes;
mod opt;
mod pool;
mod process;
mod queued;
mod runtime_api;
mod sandbox;
mod server;
mod snapshot;
mod telemetry;
mod telemetry_api;
mod watchdog;

pub use coldstart_protocol::level::LogLevel;
pub use config::{
    AsyncConfig, FunctionConfig, LogFormat, MAX_CONCURRENCY_PER_ENVIRONMENT, Settings,
};
pub use emulator::Emulator;
pub use error::{Error, InvokeError};
pub use function::State;
pub use gateway::cors::UrlCors;
pub use gateway::sigv4::{
    LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, LOCAL_SESSION_TOKEN, LocalKey,
};
pub use gateway::{
    AWS_IAM, ApiCors, HTTP_INTEGRATION_TIMEOUT, HttpApi, HttpCors, InvokeMode, PayloadVersion,
    REST_INTEGRATION_TIMEOUT, RateLimit, RestCors, RouteKey, Router, Throttle, UrlAuthType,
    UrlSettings, serve_function_url, serve_http_api,
};
pub use in_process::{Connector, InProcess, TaskEnv};
pub use invocation::{
    InvokeRequest, InvokeResponse, Outcome, ResponseStream, StreamError, StreamItem,
};
pub use invoke_api::serve_invoke_api;
pub use logs::{LogSink, TracingSink};
pub use opt::{OPT, opt_mount_available};
pub use process::SHUTDOWN_GRACE;
pub use queued::{QueuedEvent, Resumed};
pub use snapshot::{SandboxPhase, SandboxView};
pub use watchdog::{GroupGuard, forget_group, watch_group};

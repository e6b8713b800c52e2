//! The stack model of coldstart, its two readers, builds, and a running stack.
//!
//! A [`Stack`] is everything `coldstart up` serves: functions with their settings and builds,
//! layers, Function URLs, HTTP/REST APIs, WebSocket APIs, tables and outputs. It is read from a
//! `coldstart.toml` ([`config::load`]) or a SAM/CloudFormation template ([`template::load`]);
//! [`build::build_all`] makes its code and [`start`] serves it. The CLI's `up`, tests and
//! benchmarks all go through here.
//!
//! ```no_run
//! use std::sync::Arc;
//! use coldstart_stack::{Source, StartOptions, TemplateOptions};
//!
//! # async fn demo() -> Result<(), coldstart_stack::Error> {
//! let source = Source::find(std::path::Path::new("examples/echo"))?;
//! let stack = source.load(&TemplateOptions { port_base: 0, ..TemplateOptions::default() })?;
//! coldstart_stack::build::build_all(&stack, &coldstart_stack::Reporter::default()).await?;
//! let mut options = StartOptions::new(Arc::new(coldstart_emulator::TracingSink));
//! options.listen = "127.0.0.1:0".parse().expect("an address");
//! let running = coldstart_stack::start(&stack, options).await?;
//! for endpoint in &running.endpoints {
//!     println!("{} {} {}", endpoint.kind.as_str(), endpoint.name, endpoint.url);
//! }
//! running.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`model`]: the [`Stack`] and its parts.
//! - [`config`]: the `coldstart.toml` reader (`api_table`: an API's CORS, stage variables and
//!   throttling there; `schedule_table`: a function's `schedule`;
//!   `queue_table`: its `sqs`); [`template`]: the SAM/CloudFormation reader; [`discover`]: which file
//!   to read.
//! - [`build`]: builds (shell commands, `make build-<Id>`, cargo).
//! - `layers`: a function's layers merged into the folder that stands for its `/opt`.
//! - `tables`: DynamoDB tables created on a local endpoint.
//! - `report`: the [`Reporter`] that progress lines go through.
//! - [`schedules`]: fires a running stack's schedules on time, or now ([`Schedules::fire`]).
//! - [`input_transform`]: a rule target's `InputPath` and `InputTransformer`.
//! - `sqs`: queues created on `--sqs-endpoint`, and the SQS event source mappings' pollers.
//! - [`sdk_http`]: the AWS SDK clients' HTTP/1.1 connector for local, plain-HTTP services.
//! - `start`: binds, wires local endpoints and serves: [`start()`] → [`Running`].
//! - `async_store`: the SQLite file where a stop keeps queued `Event` invocations for the next
//!   start ([`StartOptions::async_store`]).
//! - [`watch`]: rebuild and reload on source changes.
//! - [`samples`]: sample events by SAM's `generate-event` names.
//! - [`expression`]: schedule expressions (`rate(...)`, `cron(...)`, `at(...)`), checked with
//!   AWS's rules, and when each fires next.
//! - `filter`: Lambda's event filtering (`FilterCriteria` patterns).
//! - [`error`]: what can go wrong, located in the user's file.

mod api_table;
mod async_store;
mod auth_table;
pub mod build;
pub mod config;
pub mod discover;
pub mod error;
pub mod expression;
mod filter;
pub mod input_transform;
mod layers;
pub mod managed;
pub mod model;
#[cfg(test)]
mod props;
mod queue_table;
mod report;
pub mod samples;
mod schedule_table;
pub mod schedules;
pub mod sdk_http;
mod sqs;
mod start;
mod tables;
pub mod template;
pub mod watch;

pub use discover::Source;
pub use error::{Error, Location};
pub use model::{
    Build, FunctionSpec, HttpApiSpec, IndexSpec, LayerSpec, OutputSpec, QueueSpec, ScheduleKind,
    ScheduleSpec, SqsMappingSpec, Stack, TableSpec, UrlSpec, WebSocketApiSpec,
};
pub use report::Reporter;
pub use schedules::{Delivery, Schedules};
pub use start::{
    Endpoint, EndpointKind, Reload, Reloader, Running, StartOptions, activate, answering,
    executable, ready_json, start,
};
pub use template::TemplateOptions;

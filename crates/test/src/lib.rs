//! Test your Lambda functions and whole stacks in `cargo test`: start them on free ports,
//! invoke them, assert on answers and logs, stop.
//!
//! A [`Stack`] is started from a SAM template ([`Stack::from_template`]), a `coldstart.toml`
//! ([`Stack::from_config`]) or one bootstrap ([`Stack::function`]) through the same library
//! `coldstart up` uses, with every port a free one, so independent stacks run in parallel in one
//! test binary. It hands out its endpoints, an `aws-sdk-lambda` client pointed at it,
//! [`Stack::invoke`] (the answer with its log lines), HTTP and WebSocket clients for its APIs,
//! [`Stack::fire_schedule`] (a schedule's delivery, now), every log line, and every platform event (`platform.start`, `platform.report`, ... by request
//! id: [`Stack::records_of`]). Dropping it kills every process it started, also when a test
//! panics.
//!
//! ```no_run
//! use coldstart_test::Stack;
//!
//! #[tokio::test]
//! async fn echo_answers_with_its_event() {
//!     let stack = Stack::from_template("examples/bash/template.yaml").start().await.unwrap();
//!     let answer = stack.invoke("BashFunction", r#"{"payload":"hi"}"#).await.unwrap();
//!     assert!(answer.text().contains("hi"));
//!     assert!(answer.logs.iter().any(|line| line.contains("hi")));
//!     stack.stop().await;
//! }
//! ```
//!
//! # Layout
//! - `stack`: [`Stack`] and its [`Builder`]: reading, building, starting, stopping.
//! - `invocation`: [`Invocation`], one answer with its logs; [`StreamedInvocation`], a
//!   streamed one.
//! - `logs`: the log lines of every function, kept for assertions.
//! - `http`: a small HTTP client for the stack's URLs and APIs ([`Response`]).
//! - [`error`]: what can go wrong.

pub mod error;
mod function;
mod http;
mod invocation;
mod logs;
mod stack;

pub use error::Error;
pub use function::{Function, cargo_bin};
pub use http::Response;
pub use invocation::{Invocation, StreamedInvocation};
pub use stack::{Builder, FUNCTION, Stack, WebSocket, sdk_client};

pub use coldstart_stack::{Delivery, Endpoint, EndpointKind};

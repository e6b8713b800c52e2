//! One module per scenario, each a `run(&Context) -> Report` over the measuring core.
//!
//! - [`invoke`]: warm invokes and throughput against the floor, `lambda_runtime` and
//!   cargo-lambda; binary sizes; spawn → first `next`; boto3.
//! - [`url`]: warm Function URL GETs against the floor.
//! - [`up`]: `coldstart up` from spawn until every endpoint answered, and its first invoke.
//! - [`stream`]: response streaming's time to first byte, 100 MiB, and memory, both doors.
//! - [`adapter`]: what coldstart-adapter adds to a web app's request.
//! - [`websocket`]: the chat example's round trips, `@connections` POSTs, connections held and
//!   fan-out, against serverless-offline where installed.
//! - [`template`]: reading a 1,000-resource template, and `up --no-build` on the chat template.
//! - [`harness`]: `coldstart-test` in this process: in-process handler invokes, stack starts.
//! - [`managed`]: a Python function's cold start and warm invokes.
//! - [`dashboard`]: warm-invoke throughput with the live dashboard open and streaming.
//! - [`concurrent`]: one multi-concurrent environment (8 at once) against eight single ones.
//! - [`sqs`]: messages per second through one SQS mapping, beside the queue server's ceiling.
//! - [`fresh`]: a fresh clone of this repository to every example function serving.

use tokio::runtime::Runtime;

pub mod adapter;
pub mod concurrent;
pub mod dashboard;
pub mod fresh;
pub mod harness;
pub mod invoke;
pub mod managed;
pub mod sqs;
pub mod stream;
pub mod template;
pub mod up;
pub mod url;
pub mod websocket;

/// What every scenario gets.
#[derive(Debug)]
pub struct Context {
    /// `--quick`: counts cut (by 10 unless a scenario says otherwise), a smoke test.
    pub quick: bool,
    /// The client's runtime: one thread driving every socket of the bench.
    pub rt: Runtime,
}

impl Context {
    /// `n`, or a tenth of it (at least 1) in quick mode.
    pub fn cut(&self, n: usize) -> usize {
        if self.quick { (n / 10).max(1) } else { n }
    }
}

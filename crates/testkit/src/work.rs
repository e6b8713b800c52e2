//! What the multi-concurrency fixtures (`fx-conc` on coldstart-runtime, `fx-lr-conc` on the
//! official `lambda_runtime`) do with an event, shared so that both runtimes run the same
//! function: sleep, fail or panic as asked, bump a deliberately racy counter, and report when the
//! work began and ended by the function's own clock, so that tests measure overlap from the
//! invocations themselves rather than from the caller's wall clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What an invocation is asked to do.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Order {
    /// How long to work (sleep), in milliseconds.
    pub sleep_ms: u64,
    /// Fail with this message instead of answering.
    pub fail: Option<String>,
    /// Panic in the handler.
    pub panic: bool,
    /// Bump the shared counter with a read-modify-write across the sleep (a lost update when
    /// invocations overlap).
    pub count: bool,
}

/// What an invocation answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    pub request_id: String,
    /// When the work began and ended, in microseconds since the epoch, by the function's clock.
    pub started_us: u64,
    pub ended_us: u64,
    /// The invocation's own deadline (`Lambda-Runtime-Deadline-Ms`).
    pub deadline_ms: u64,
    pub pid: u32,
    /// The trace id the context carried.
    pub trace_id: Option<String>,
    /// `_X_AMZN_TRACE_ID` of the process as the work ended.
    pub env_trace_id: Option<String>,
    /// The counter as this invocation left it, when it counted.
    pub count: Option<u64>,
    /// `AWS_LAMBDA_MAX_CONCURRENCY` as the process saw it.
    pub max_concurrency: Option<String>,
}

/// The counter every invocation of the process shares.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Carries out `order` for invocation `request_id`.
pub async fn work(
    order: Order,
    request_id: &str,
    deadline_ms: u64,
    trace_id: Option<String>,
) -> Result<Done, String> {
    let started_us = now_us();
    // Tests wait on this line to know the runtime holds the invocation.
    println!("work begins {request_id}");
    // Read, wait, write: the classic lost update once invocations overlap.
    let seen = COUNTER.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(order.sleep_ms)).await;
    let count = order.count.then(|| {
        COUNTER.store(seen + 1, Ordering::SeqCst);
        seen + 1
    });
    if order.panic {
        panic!("asked to panic in {request_id}");
    }
    if let Some(message) = order.fail {
        return Err(message);
    }
    Ok(Done {
        request_id: request_id.to_owned(),
        started_us,
        ended_us: now_us(),
        deadline_ms,
        pid: std::process::id(),
        trace_id,
        env_trace_id: std::env::var("_X_AMZN_TRACE_ID").ok(),
        count,
        max_concurrency: std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").ok(),
    })
}

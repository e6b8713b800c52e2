//! Multi-concurrent execution environments (`max_concurrency`, Lambda Managed Instances) with
//! real runtime clients in their concurrent modes: coldstart-runtime's and the official
//! `lambda_runtime` crate's. Overlap is measured from the invocations' own start and end times.

use std::time::Duration;

use coldstart_testkit::work::Done;
use serde_json::json;

use crate::support::{Harness, RawResponse, fixture, function};

/// A function on `bin` taking `n` invocations per environment.
fn concurrent(name: &str, bin: &str, n: usize) -> coldstart_emulator::FunctionConfig {
    let mut f = function(name, fixture(bin));
    f.max_concurrency = n;
    f
}

/// Invokes `name` once per payload, all at once.
async fn invoke_all(h: &Harness, name: &str, payloads: Vec<serde_json::Value>) -> Vec<RawResponse> {
    let calls = payloads
        .into_iter()
        .map(|p| h.invoke_raw(name, &[], p.to_string()));
    futures_util::future::join_all(calls).await
}

fn done(r: &RawResponse) -> Done {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-amz-function-error"), None, "{r:?}");
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not a report ({e}): {}", String::from_utf8_lossy(&r.body)))
}

/// Whether every invocation was running while every other was: the latest start came before
/// the earliest end.
fn all_overlap(done: &[Done]) -> bool {
    let latest_start = done.iter().map(|d| d.started_us).max().unwrap_or(0);
    let earliest_end = done.iter().map(|d| d.ended_us).min().unwrap_or(0);
    latest_start < earliest_end
}

async fn n_invocations_overlap_in_one_environment(bin: &str) {
    let h = Harness::start(vec![concurrent("conc", bin, 4)]).await;
    let payloads = (0..4).map(|_| json!({"sleep_ms": 400})).collect();
    let responses = invoke_all(&h, "conc", payloads).await;
    let done: Vec<Done> = responses.iter().map(done).collect();
    assert!(
        all_overlap(&done),
        "the invocations ran one after another: {done:?}"
    );
    // One environment: one process, one init.
    assert!(done.iter().all(|d| d.pid == done[0].pid), "{done:?}");
    assert_eq!(h.emulator.sandbox_pids("conc").len(), 1);
    let inits = h
        .logs
        .all()
        .iter()
        .filter(|l| l.contains("Init Duration"))
        .count();
    assert_eq!(inits, 1, "{:#?}", h.logs.all());
    // Each answer is its own invocation's, and the runtime was told the concurrency.
    for (r, d) in responses.iter().zip(&done) {
        assert_eq!(r.header("x-amzn-requestid"), Some(d.request_id.as_str()));
        assert_eq!(d.max_concurrency.as_deref(), Some("4"));
        assert!(d.trace_id.is_some());
    }
    for d in &done {
        h.logs
            .wait_for(|l| l.contains(&format!("REPORT RequestId: {}", d.request_id)))
            .await;
    }
    h.stop().await;
}

#[tokio::test]
async fn coldstart_runtime_runs_n_invocations_at_once_in_one_environment() {
    n_invocations_overlap_in_one_environment("fx-conc").await;
}

#[tokio::test]
async fn lambda_runtime_concurrent_mode_runs_n_invocations_at_once_in_one_environment() {
    n_invocations_overlap_in_one_environment("fx-lr-conc").await;
}

#[tokio::test]
async fn in_the_concurrent_mode_the_trace_id_is_on_the_context_only() {
    let h = Harness::start(vec![concurrent("conc", "fx-conc", 2)]).await;
    let payloads = (0..2).map(|_| json!({"sleep_ms": 100})).collect();
    for r in invoke_all(&h, "conc", payloads).await {
        let d = done(&r);
        assert!(d.trace_id.is_some());
        assert_eq!(d.env_trace_id, None, "no process-wide _X_AMZN_TRACE_ID");
    }
    h.stop().await;
}

async fn errors_stay_with_their_invocation(bin: &str, panics: bool) {
    let h = Harness::start(vec![concurrent("conc", bin, 3)]).await;
    let third = if panics {
        json!({"sleep_ms": 300, "panic": true})
    } else {
        json!({"sleep_ms": 300, "fail": "third"})
    };
    let payloads = vec![
        json!({"sleep_ms": 300, "fail": "first"}),
        json!({"sleep_ms": 300}),
        third,
    ];
    let r = invoke_all(&h, "conc", payloads).await;
    assert_eq!(
        r[0].header("x-amz-function-error"),
        Some("Unhandled"),
        "{:?}",
        r[0]
    );
    assert_eq!(r[0].json()["errorMessage"], "first");
    let ok = done(&r[1]);
    assert_eq!(
        r[1].header("x-amzn-requestid"),
        Some(ok.request_id.as_str())
    );
    assert_eq!(
        r[2].header("x-amz-function-error"),
        Some("Unhandled"),
        "{:?}",
        r[2]
    );
    if panics {
        assert_eq!(r[2].json()["errorType"], "Panic", "{:?}", r[2]);
    }
    // Nothing crashed: the same environment answers again.
    let again = done(&h.invoke_raw("conc", &[], json!({}).to_string()).await);
    assert_eq!(again.pid, ok.pid);
    h.stop().await;
}

#[tokio::test]
async fn coldstart_runtime_keeps_errors_and_panics_with_their_invocation() {
    errors_stay_with_their_invocation("fx-conc", true).await;
}

#[tokio::test]
async fn lambda_runtime_keeps_errors_with_their_invocation() {
    errors_stay_with_their_invocation("fx-lr-conc", false).await;
}

#[tokio::test]
async fn each_invocation_keeps_its_own_deadline() {
    let h = Harness::start(vec![concurrent("conc", "fx-conc", 2)]).await;
    let first = h.invoke_raw("conc", &[], json!({"sleep_ms": 300}).to_string());
    let second = async {
        // Sent once the first has started, so its deadline is its own, later one.
        h.logs.wait_for(|l| l.contains("START RequestId")).await;
        h.invoke_raw("conc", &[], json!({"sleep_ms": 10}).to_string())
            .await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (done(&first), done(&second));
    assert_ne!(first.request_id, second.request_id);
    assert!(
        second.deadline_ms >= first.deadline_ms,
        "{first:?} {second:?}"
    );
    assert!(second.deadline_ms > second.started_us / 1000, "{second:?}");
    h.stop().await;
}

/// AWS (Lambda Managed Instances execution environment, "Independent timeouts"): a timeout
/// fails only its invocation; the others and the environment go on.
#[tokio::test]
async fn one_timeout_does_not_answer_the_others_or_reset_the_environment() {
    let mut f = concurrent("conc", "fx-conc", 2);
    f.timeout = Duration::from_secs(1);
    let h = Harness::start(vec![f]).await;
    let payloads = vec![json!({"sleep_ms": 1500}), json!({"sleep_ms": 100})];
    let r = invoke_all(&h, "conc", payloads).await;
    assert_eq!(r[0].json()["errorType"], "Sandbox.Timedout", "{:?}", r[0]);
    let timed_out = r[0]
        .header("x-amzn-requestid")
        .unwrap_or_default()
        .to_owned();
    let other = done(&r[1]);
    assert_ne!(other.request_id, timed_out);
    h.logs
        .wait_for(|l| l.contains(&timed_out) && l.contains("Task timed out"))
        .await;
    // The timed-out code ran on and answered late (410, which the runtime logs): its worker is
    // free again, in the same environment, which was never reset.
    h.logs
        .wait_for(|l| l.contains("410") && l.contains(&timed_out))
        .await;
    let payloads = vec![json!({"sleep_ms": 10}), json!({"sleep_ms": 10})];
    for r in invoke_all(&h, "conc", payloads).await {
        assert_eq!(done(&r).pid, other.pid);
    }
    assert_eq!(h.emulator.sandbox_pids("conc").len(), 1);
    h.stop().await;
}

/// A read-modify-write across an await, safe one at a time, loses updates once invocations
/// overlap: the race shows locally.
#[tokio::test]
async fn a_shared_counter_loses_updates_only_when_invocations_overlap() {
    let order = || json!({"sleep_ms": 300, "count": true});
    let h = Harness::start(vec![concurrent("conc", "fx-conc", 4)]).await;
    let done_all: Vec<Done> = invoke_all(&h, "conc", (0..4).map(|_| order()).collect())
        .await
        .iter()
        .map(done)
        .collect();
    assert!(all_overlap(&done_all), "{done_all:?}");
    let last = done_all.iter().filter_map(|d| d.count).max();
    assert_eq!(last, Some(1), "every overlapping update but one was lost");
    h.stop().await;

    // One at a time in one environment: every update lands.
    let mut one = concurrent("one", "fx-conc", 1);
    one.concurrency = 1;
    one.throttle_after = Duration::from_secs(20);
    let h = Harness::start(vec![one]).await;
    let mut counts: Vec<u64> = invoke_all(&h, "one", (0..4).map(|_| order()).collect())
        .await
        .iter()
        .filter_map(|r| done(r).count)
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 3, 4]);
    h.stop().await;
}

#[tokio::test]
async fn a_stop_lets_invocations_in_progress_finish() {
    let h = Harness::start(vec![concurrent("conc", "fx-conc", 2)]).await;
    let payloads = vec![json!({"sleep_ms": 400}), json!({"sleep_ms": 400})];
    let calls = invoke_all(&h, "conc", payloads);
    let stop = async {
        // Both are in the function's hands (not merely dispatched).
        h.logs.wait_for_nth(2, |l| l.contains("work begins")).await;
        // SIGTERM: the runtime takes nothing new and finishes both.
        h.emulator.shutdown(Duration::from_secs(5)).await;
    };
    let (responses, ()) = tokio::join!(calls, stop);
    for r in &responses {
        let _ = done(r);
    }
}

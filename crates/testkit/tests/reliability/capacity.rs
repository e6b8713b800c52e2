//! A function's concurrency comes back whatever its invocations went through: a caller that
//! leaves during a cold start or during a hung invocation, a sandbox that cannot start. Each was
//! a slot lost for good (the soak's long mode found the first two: every invocation throttled
//! after about 28,000).

use std::time::{Duration, Instant};

use crate::support::{Harness, PATIENCE, fixture, function};

/// Invokes `f` (at concurrency 1) until it answers other than 429, within [`PATIENCE`]: the
/// slot a stranded sandbox held must come back.
async fn answered_again(h: &Harness, body: &'static str) -> u16 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = h.invoke_raw("f", &[], body).await.status;
        if status != 429 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Symptom: a caller that hung up while its sandbox was starting left that sandbox waiting in
// `next` with its slot taken; every later invocation at the limit got 429.
#[tokio::test]
async fn a_caller_that_leaves_during_a_cold_start_does_not_strand_the_sandbox() {
    let mut config = function("f", fixture("fx-slow-init"));
    config.concurrency = 1;
    config
        .environment
        .insert("SLOW_INIT_MS".into(), "300".into());
    let h = Harness::start(vec![config]).await;
    let left = tokio::time::timeout(Duration::from_millis(50), h.invoke_raw("f", &[], "{}")).await;
    assert!(left.is_err(), "the cold start answered within 50 ms");
    assert_eq!(answered_again(&h, "{}").await, 200);
    h.stop().await;
}

// Symptom: a caller that hung up on a hung invocation took its deadline with it: the function
// was never timed out and kept its sandbox (and the slot) for as long as it hung.
#[tokio::test]
async fn a_caller_that_leaves_a_hung_invocation_does_not_take_its_deadline_with_it() {
    let mut config = function("f", fixture("fx-faults"));
    config.concurrency = 1;
    config.timeout = Duration::from_secs(1);
    let h = Harness::start(vec![config]).await;
    assert_eq!(h.invoke_raw("f", &[], r#"{"op":"echo"}"#).await.status, 200);
    let left = tokio::time::timeout(
        Duration::from_millis(100),
        h.invoke_raw("f", &[], r#"{"op":"sleep","ms":600000}"#),
    )
    .await;
    assert!(left.is_err(), "a 10-minute sleep answered");
    // Timed out at its 1 s deadline, the sandbox is replaced and the function answers again.
    assert_eq!(answered_again(&h, r#"{"op":"echo"}"#).await, 200);
    h.logs.wait_for(|l| l.contains("Status: timeout")).await;
    h.stop().await;
}

/// A bootstrap that cannot be started — its file open for writing, as while a rebuild replaces
/// it (`Text file busy`) — fails its invocations; once it can start again, the function has all
/// of its concurrency back.
#[tokio::test]
async fn sandboxes_that_fail_to_start_give_their_concurrency_back() {
    let dir = std::env::temp_dir().join(format!("coldstart-respawn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = dir.join("bootstrap");
    std::fs::copy(fixture("fx-faults"), &bootstrap).unwrap_or_else(|e| panic!("{e}"));
    let mut config = function("f", bootstrap.clone());
    config.concurrency = 2;
    let h = Harness::start(vec![config]).await;
    assert_eq!(
        h.invoke_raw("f", &[], r#"{"op":"exit","code":3}"#)
            .await
            .status,
        200
    );
    // The crashed runtime is reaped (its file is free to open) within PATIENCE.
    let deadline = std::time::Instant::now() + PATIENCE;
    let writer = loop {
        match std::fs::OpenOptions::new().append(true).open(&bootstrap) {
            Ok(writer) => break writer,
            Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    };
    // Every start fails now.
    for _ in 0..6 {
        let r = h.invoke_raw("f", &[], r#"{"op":"exit","code":3}"#).await;
        println!(
            "while busy: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    drop(writer);
    let (a, b) = tokio::join!(
        h.invoke_raw("f", &[], r#"{"op":"sleep","ms":300}"#),
        h.invoke_raw("f", &[], r#"{"op":"sleep","ms":300}"#)
    );
    assert_eq!((a.status, b.status), (200, 200), "{a:?} {b:?}");
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

//! Memory under a 100 MB stream, in a test binary of its own: peak memory is per process, and in
//! the shared test binary other tests running alongside would blur the figure.

#[allow(dead_code)]
#[path = "it/support.rs"]
mod support;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as Event;

use support::{Harness, fixture, function};

/// Peak resident memory of this process, in MB.
fn peak_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

#[tokio::test]
async fn a_100_mb_stream_passes_with_bounded_memory() {
    const TOTAL: usize = 100 * 1024 * 1024;
    let mut stream = function("stream", fixture("fx-stream"));
    stream.timeout = std::time::Duration::from_secs(60);
    let h = Harness::start(vec![stream]).await;
    let before = peak_mb();
    let mut out = h
        .sdk()
        .invoke_with_response_stream()
        .function_name("stream")
        .payload(Blob::new(r#"{"op":"bytes"}"#))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    // Chunks are counted where they arrive: no buffer of the test's own.
    let mut received = 0usize;
    loop {
        match out.event_stream.recv().await {
            Ok(Some(Event::PayloadChunk(update))) => {
                received += update.payload().map_or(0, |p| p.as_ref().len());
            }
            Ok(Some(Event::InvokeComplete(done))) => {
                assert_eq!(done.error_code(), None, "{done:?}");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, TOTAL);
    let grown = peak_mb().saturating_sub(before);
    // The emulator and the SDK share this process: together they held far less than the 100 MB
    // that went through them.
    assert!(
        grown < 40,
        "peak memory grew by {grown} MB while streaming 100 MB"
    );
    h.stop().await;
}

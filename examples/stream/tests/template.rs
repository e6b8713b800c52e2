//! The streaming report as its template deploys it (a `RESPONSE_STREAM` Function URL), tested
//! with `coldstart-test`.

use coldstart_test::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_streams_its_status_headers_and_lines() {
    let stack = Stack::from_template(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .bootstrap("StreamFunction", env!("CARGO_BIN_EXE_stream"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let report = stack
        .get("StreamFunction", "/?lines=3")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, 200);
    assert_eq!(
        report
            .headers
            .get("x-report-lines")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let text = report.text();
    assert!(text.starts_with("Monthly report (3 lines)\n"), "{text}");
    assert!(
        text.contains("line 3: 21 widgets\n") && text.ends_with("end of report\n"),
        "{text}"
    );
    stack.stop().await;
}

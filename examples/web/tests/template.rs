//! The web app as its template deploys it — an ordinary axum app as the function's bootstrap,
//! `coldstart-adapter` as a layer's extension, a `RESPONSE_STREAM` Function URL — tested with
//! `coldstart-test`: the way to test a web app that runs on Lambda.

use std::path::PathBuf;

use coldstart_test::Stack;

/// A folder laid out as the template's `AdapterLayer` builds it (`extensions/coldstart-adapter`),
/// with the adapter cargo built for the workspace; removed on drop.
struct AdapterLayer(PathBuf);

impl AdapterLayer {
    fn new() -> Self {
        let adapter = coldstart_test::cargo_bin("coldstart-adapter");
        assert!(
            adapter.is_file(),
            "{} is missing: build it first (`cargo build -p coldstart-adapter`; `cargo test --workspace` does)",
            adapter.display()
        );
        let folder = std::env::temp_dir().join(format!("web-adapter-layer-{}", std::process::id()));
        let extensions = folder.join("extensions");
        std::fs::create_dir_all(&extensions).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(&adapter, extensions.join("coldstart-adapter"))
            .unwrap_or_else(|e| panic!("{e}"));
        Self(folder)
    }
}

impl Drop for AdapterLayer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_answers_and_streams_through_its_function_url() {
    let layer = AdapterLayer::new();
    let stack = Stack::from_template(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .bootstrap("WebFunction", env!("CARGO_BIN_EXE_web"))
        .layer("AdapterLayer", &layer.0)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let hello = stack
        .get("WebFunction", "/hello/lambda")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.json()["message"], "Hello, lambda!");

    // The app's chunked answer comes through the adapter and the streaming URL whole.
    let lines = stack
        .get("WebFunction", "/stream?n=3")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lines.status, 200);
    assert_eq!(lines.text(), "line 1 of 3\nline 2 of 3\nline 3 of 3\n");

    // Both cookies of the app's answer reach the client.
    let cookies = stack
        .get("WebFunction", "/cookies")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cookies.headers.get_all("set-cookie").iter().count(), 2);
    stack.stop().await;
}

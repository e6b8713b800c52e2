//! A SAM template mixing languages, run without Docker: the echo example in Rust, a
//! `Runtime: python3.13` function with a `requirements.txt`, and `Runtime: nodejs20.x` functions
//! with a `package.json` on the machine's Node.js and AWS's `aws-lambda-ric` (its native addon
//! built once per machine by the stack's build, cached, under a lock: these tests start their
//! stacks in parallel). Invoked through the AWS SDK, a streaming Function URL and an HTTP API.
//!
//! The Rust function is the `echo` example's binary: `cargo test --workspace` builds it; alone,
//! `cargo build -p echo` first.

use std::path::PathBuf;

use bytes::Bytes;
use coldstart_test::{Stack, cargo_bin};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/fixtures")
        .join(path)
}

async fn mixed() -> Stack {
    Stack::from_template(fixture("mixed/template.yaml"))
        .bootstrap("RustFunction", cargo_bin("echo"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_python_and_node_functions_answer_side_by_side_through_the_sdk_and_an_http_api() {
    let stack = mixed().await;

    let rust = stack
        .invoke("RustFunction", r#"{"from":"rust"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rust.json(), json!({"from": "rust"}), "{:?}", rust.logs);

    let python = stack
        .invoke("PyFunction", r#"{"n":1}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(python.json()["six"], true, "{}", python.text());

    let node = stack
        .invoke("NodeFunction", r#"{"n":2}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!node.failed(), "{}\n{:?}", node.text(), node.logs);
    let body = node.json();
    assert_eq!(body["event"], json!({"n": 2}));
    assert_eq!(body["function"], "NodeFunction");
    assert_eq!(body["memory"], "256");
    assert_eq!(body["remaining"], true);
    assert_eq!(
        body["twoDays"], 172_800_000,
        "package.json's ms was installed"
    );
    let id = node
        .request_id()
        .unwrap_or_else(|| panic!("{:?}", node.logs));
    assert_eq!(body["request"], id);
    // The environment Lambda's nodejs20.x sets.
    let env = &body["env"];
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_nodejs20.x");
    assert_eq!(env["_HANDLER"], "index.handler");
    let code = std::fs::canonicalize(fixture("node")).unwrap_or_else(|e| panic!("{e}"));
    let task_root = std::fs::canonicalize(env["LAMBDA_TASK_ROOT"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{env}: {e}"));
    assert_eq!(task_root, code);
    let node_path = env["NODE_PATH"].as_str().unwrap_or_default();
    let parts: Vec<&str> = node_path.split(':').collect();
    assert!(
        parts.len() == 2 && parts[0].ends_with("aws-lambda-ric-3.3.0/node_modules"),
        "the runtime's modules, then the code: {node_path}"
    );
    // The function's own lines between the platform's START and END/REPORT.
    let at = |prefix: &str| {
        node.logs
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {:?}", node.logs))
    };
    let got = node
        .logs
        .iter()
        .position(|l| l.contains("node got {\"n\":2}"))
        .unwrap_or_else(|| panic!("{:?}", node.logs));
    assert!(at("START RequestId: ") < got && got < at("END RequestId: "));
    assert!(at("END RequestId: ") < at("REPORT RequestId: "));

    // Callback handlers, ES modules by `.mjs` and by `"type": "module"`.
    let callback = stack
        .invoke("NodeCallback", "{}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(callback.json()["style"], "callback", "{}", callback.text());
    let esm = stack
        .invoke("NodeEsm", r#"{"k":"v"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        esm.json(),
        json!({"style": "esm", "oneHour": 3_600_000, "event": {"k": "v"}})
    );
    let typed = stack
        .invoke("NodeTypeModule", "{}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(typed.json()["oneMinute"], 60_000, "{}", typed.text());

    // The Node function's HTTP API route, payload 2.0.
    let page = stack
        .get("ServerlessHttpApi", "/hello/node")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text(), "hello, node (1m)");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_errors_timeouts_and_init_errors_come_back_as_aws_shapes_them() {
    let stack = mixed().await;

    // A thrown error: the Node runtime's error document (errorType, errorMessage, trace).
    let failed = stack
        .invoke("NodeFunction", r#"{"fail":true}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    let error = failed.json();
    assert_eq!(error["errorType"], "TypeError", "{error}");
    assert_eq!(error["errorMessage"], "the event asked for it");
    let trace = error["trace"].as_array().cloned().unwrap_or_default();
    assert!(
        trace.first().and_then(|t| t.as_str()) == Some("TypeError: the event asked for it")
            && trace.len() > 1,
        "{error}"
    );

    // An error given to the callback.
    let callback = stack
        .invoke("NodeCallback", r#"{"fail":true}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(callback.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        callback.json()["errorType"],
        "RangeError",
        "{}",
        callback.text()
    );

    // Past its 1 s timeout: the sandbox is ended, as Lambda ends it; the next invoke runs.
    let slow = stack
        .invoke("NodeFunction", r#"{"sleep":5}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(slow.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        slow.json()["errorType"],
        "Sandbox.Timedout",
        "{}",
        slow.text()
    );
    let after = stack
        .invoke("NodeFunction", r#"{"n":3}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.json()["event"], json!({"n": 3}), "{}", after.text());

    // Init errors, as the runtime client reports them.
    for (function, error_type, message) in [
        (
            "NodeMissingModule",
            "Runtime.ImportModuleError",
            "Cannot find module 'missing'",
        ),
        (
            "NodeMissingHandler",
            "Runtime.HandlerNotFound",
            "index.nope is undefined or not exported",
        ),
        ("NodeThrowsAtLoad", "Error", "broken at load"),
    ] {
        let broken = stack
            .invoke(function, "{}")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(broken.function_error.as_deref(), Some("Unhandled"));
        let error = broken.json();
        assert_eq!(error["errorType"], error_type, "{function}: {error}");
        assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{function}: {error}"
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_streaming_function_sends_each_chunk_as_it_is_written() {
    let stack = mixed().await;

    // InvokeWithResponseStream: the chunks as written, then InvokeComplete without an error.
    let streamed = stack
        .invoke_stream("NodeStream", r#"{"chunks":["one ","two ","three"]}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(streamed.complete, "{streamed:?}");
    assert_eq!(streamed.error_code, None, "{streamed:?}");
    assert_eq!(streamed.body(), Bytes::from("one two three"));

    // An error after some chunks: the chunks, then InvokeComplete with the error.
    let broken = stack
        .invoke_stream("NodeStream", r#"{"chunks":["half"],"fail":true}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(broken.complete, "{broken:?}");
    assert_eq!(broken.body(), Bytes::from("half"));
    assert_eq!(
        broken.error_code.as_deref(),
        Some("RangeError"),
        "{broken:?}"
    );
    assert!(
        broken
            .error_details
            .as_deref()
            .is_some_and(|d| d.contains("the stream broke")),
        "{broken:?}"
    );

    // The RESPONSE_STREAM Function URL: the prelude's status and headers, the first chunk while
    // the function waits (on the gate this test opens only then), then the last.
    let gate = Gate::new();
    let base = stack.url("NodeStream").unwrap_or_else(|e| panic!("{e}"));
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let connection = tokio::spawn(conn);
    let request = http::Request::get(format!("/?gate={}", gate.path()))
        .header(http::header::HOST, &addr)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-streamed-by"], "node");
    let mut body = response.into_body();
    assert_eq!(
        next_data(&mut body).await,
        Some(Bytes::from("first chunk\n"))
    );
    gate.open().await;
    let mut rest = Vec::new();
    while let Some(data) = next_data(&mut body).await {
        rest.extend_from_slice(&data);
    }
    assert_eq!(rest, b"last chunk\n");
    connection.abort();
    stack.stop().await;
}

/// The next data frame of `body`; `None` at its end.
async fn next_data(body: &mut hyper::body::Incoming) -> Option<Bytes> {
    loop {
        let frame = body.frame().await?.unwrap_or_else(|e| panic!("{e}"));
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// A FIFO in a fresh folder: the streaming fixture waits on it after its first chunk.
struct Gate(PathBuf);

impl Gate {
    fn new() -> Gate {
        let dir = std::env::temp_dir().join(format!("coldstart-node-gate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        nix::unistd::mkfifo(&dir.join("gate"), nix::sys::stat::Mode::S_IRWXU)
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        Gate(dir)
    }

    fn path(&self) -> String {
        self.0.join("gate").display().to_string()
    }

    /// Lets the function go on (opening the FIFO for writing waits for its reader).
    async fn open(&self) {
        let path = self.0.join("gate");
        let _ = tokio::task::spawn_blocking(move || std::fs::write(path, b"go")).await;
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! Readiness before forwarding, at the library level: under `AWS_LWA_ASYNC_INIT` the adapter may
//! take an invocation before the app is ready, and must then wait for readiness before it
//! forwards (the Lambda Web Adapter's rule).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use bytes::Bytes;
use coldstart_adapter::Config;
use coldstart_adapter::forward::Forwarder;
use coldstart_runtime::Context;
use serde_json::Value;
use tokio::sync::Notify;

use crate::support::{PATIENCE, event};

/// An app whose `/` answers 503 until the test makes it healthy, and which records every request.
#[derive(Default)]
struct Flaky {
    healthy: AtomicBool,
    /// Each request's path and status, in order.
    seen: Mutex<Vec<(String, u16)>>,
    /// Woken on each request.
    requested: Notify,
}

impl Flaky {
    fn seen(&self) -> Vec<(String, u16)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn record(&self, uri: &Uri, status: StatusCode) -> StatusCode {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((uri.path().to_owned(), status.as_u16()));
        }
        self.requested.notify_waiters();
        status
    }
}

#[tokio::test]
async fn a_forward_before_readiness_waits_for_the_app_to_be_healthy() {
    let app = Arc::new(Flaky::default());
    let router = Router::new()
        .route(
            "/",
            get(|State(app): State<Arc<Flaky>>, uri: Uri| async move {
                let status = if app.healthy.load(Ordering::SeqCst) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                app.record(&uri, status)
            }),
        )
        .route(
            "/hello",
            get(|State(app): State<Arc<Flaky>>, uri: Uri| async move {
                (app.record(&uri, StatusCode::OK), "hi")
            }),
        )
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let config = Config::from_lookup(|name| match name {
        "AWS_LWA_PORT" => Some(port.to_string()),
        "AWS_LWA_ASYNC_INIT" => Some("true".into()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // Not ready at init: the async-init budget ran out.
    let forwarder = Forwarder::new(config, false);
    let mut hello = event("function-url");
    hello["rawPath"] = serde_json::json!("/hello");
    let payload = Bytes::from(hello.to_string());

    let (answer, ()) = tokio::time::timeout(
        PATIENCE,
        futures_util::future::join(forwarder.buffered(payload, Context::default()), async {
            // Let the app turn healthy only after the adapter found it unhealthy.
            loop {
                let requested = app.requested.notified();
                tokio::pin!(requested);
                requested.as_mut().enable();
                if app
                    .seen()
                    .iter()
                    .any(|(path, status)| path == "/" && *status == 503)
                {
                    break;
                }
                requested.await;
            }
            assert!(
                !app.seen().iter().any(|(path, _)| path == "/hello"),
                "forwarded before the app was ready: {:?}",
                app.seen()
            );
            app.healthy.store(true, Ordering::SeqCst);
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer; the app saw {:?}", app.seen()));

    let answer = answer.unwrap_or_else(|d| panic!("{d:?}"));
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["body"], "hi");
    let seen = app.seen();
    let last_two = &seen[seen.len() - 2..];
    assert_eq!(
        last_two,
        [("/".to_owned(), 200), ("/hello".to_owned(), 200)],
        "{seen:?}"
    );
}

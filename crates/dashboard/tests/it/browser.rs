//! The page in headless Chromium, driven through chromedriver (installed by
//! `scripts/test-tools.sh`): it lists a function, invokes it from the form, shows the answer and
//! that invocation's log, sees the invocation arrive live, and sends to a WebSocket client.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::StreamExt;
use serde_json::json;

use crate::support::{PATIENCE, start};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver in its own process group and a fresh profile folder; dropping it (also in a
/// panic's unwinding) kills the group and removes the folder.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: run scripts/test-tools.sh (apt-get install chromium chromium-driver)"
            );
        }
        // A free loopback port: bound, read, released for chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let profile = std::env::temp_dir().join(format!(
            "coldstart-dashboard-chromium-{}-{port}",
            std::process::id()
        ));
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER}: {e}"));
        Self {
            child,
            port,
            profile,
        }
    }

    /// A browser session, once chromedriver accepts one (a bounded number of tries).
    async fn session(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", self.profile.display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let mut last = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(e) => last = Some(e),
            }
            // chromedriver is still starting: it has no readiness signal but its port.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no browser session: {last:?}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Opens a section by clicking its tab (the page's list is not reloaded).
async fn tab(client: &Client, name: &str) {
    client
        .find(Locator::Id(&format!("tab-{name}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Clicks the element `css` names.
async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// A request to a front door, as a client outside the page makes it: returns the request id.
async fn outside(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> String {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = tokio::time::timeout(PATIENCE, crate::support::send(addr, request))
        .await
        .unwrap_or_else(|_| panic!("{addr}{path} took too long"));
    assert_eq!(response.status(), 200, "{path}");
    response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The text of `css`, once `pred` holds for it (fantoccini's bounded wait).
async fn text_when(client: &Client, css: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(element) = client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if pred(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{css} never matched; last text: {last:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_invokes_a_function_and_shows_it_live_and_sends_to_a_websocket_client() {
    let served = start().await;
    let driver = Driver::start();
    let client = driver.session().await;
    let base = format!("http://127.0.0.1:{}/", served.addr.port());
    client.goto(&base).await.unwrap_or_else(|e| panic!("{e}"));

    // The function is listed.
    let row = text_when(&client, r#"tr[data-function="echo"]"#, |t| {
        t.contains("echo")
    })
    .await;
    assert!(row.contains("128 MB"), "{row}");
    assert!(row.contains("not built"), "no build: {row}");
    text_when(&client, "body[data-ready] #live", |t| t == "live").await;

    // A sample event fills the payload editor.
    tab(&client, "invoke").await;
    let sample = client
        .find(Locator::Id("invoke-sample"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sample
        .select_by_value("sqs/receive-message")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let payload = client
        .find(Locator::Id("invoke-payload"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let filled = tokio::time::timeout(PATIENCE, async {
        loop {
            let value = payload
                .prop("value")
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            if value.contains("Records") {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(filled.is_ok(), "the sample never filled the editor");

    // Invoke from the form.
    payload.clear().await.unwrap_or_else(|e| panic!("{e}"));
    payload
        .send_keys(r#"{"from":"the browser"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .find(Locator::Id("invoke-button"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = text_when(&client, "#invoke-answer", |t| !t.is_empty()).await;
    assert_eq!(answer, r#"{"from":"the browser"}"#);
    let status = text_when(&client, "#invoke-status", |t| t.contains("request ")).await;
    let id = status
        .rsplit("request ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let logs = text_when(&client, "#invoke-logs", |t| t.contains("REPORT")).await;
    assert!(logs.contains(&format!("REPORT RequestId: {id}")), "{logs}");

    // The invocation came in over the live stream (the list was loaded before it ran).
    tab(&client, "invocations").await;
    let row = text_when(&client, &format!(r#"tr[data-request-id="{id}"]"#), |t| {
        t.contains("success")
    })
    .await;
    assert!(row.contains("echo"), "{row}");
    // And its log line in the live tail.
    tab(&client, "logs").await;
    text_when(&client, "#log-lines", |t| {
        t.contains(&format!("[echo] END RequestId: {id}"))
    })
    .await;

    // A Function URL request made outside the page: its row shows the start of the event's
    // preview, the opened invocation all of it, with the Authorization header's value hidden.
    let url_id = outside(
        served.url_addr,
        "POST",
        "/orders",
        Some("Bearer s3cr3t-value"),
    )
    .await;
    tab(&client, "invocations").await;
    let row_css = format!(r#"tr[data-request-id="{url_id}"]"#);
    let row = text_when(&client, &row_css, |t| {
        t.contains(r#"{"version":"2.0""#) && t.contains("success")
    })
    .await;
    assert!(!row.contains("s3cr3t"), "{row}");
    click(&client, &row_css).await;
    let detail = text_when(&client, "#invocation-detail", |t| {
        t.contains(&url_id) && t.contains(r#""authorization":"(hidden)""#)
    })
    .await;
    assert!(!detail.contains("s3cr3t"), "{detail}");

    // An HTTP API request: listed on the APIs page, its request id opens the invocation.
    let api_id = outside(served.http_addr, "GET", "/items", None).await;
    tab(&client, "apis").await;
    let listed = text_when(&client, r#"section[data-api="http-api/shop"]"#, |t| {
        t.contains(&api_id)
    })
    .await;
    assert!(
        listed.contains("GET") && listed.contains("/items"),
        "{listed}"
    );
    click(
        &client,
        r#"section[data-api="http-api/shop"] a.request-link"#,
    )
    .await;
    text_when(&client, "#invocation-detail", |t| {
        t.contains(&api_id) && t.contains(r#""routeKey":"GET /items""#)
    })
    .await;

    // Stream mode: the first chunk shows while the function waits to write the second.
    tab(&client, "invoke").await;
    client
        .find(Locator::Id("invoke-function"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .select_by_value("stream")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(&client, r#"input[name="mode"][value="stream"]"#).await;
    click(&client, "#invoke-button").await;
    let first = text_when(&client, "#invoke-answer", |t| t.contains("chunk 1")).await;
    assert!(!first.contains("chunk 2"), "{first}");
    served.open_gate().await;
    text_when(&client, "#invoke-answer", |t| t.contains("chunk 2")).await;
    text_when(&client, "#invoke-status", |t| t.starts_with("200 ok")).await;

    // A schedule, fired from its page.
    tab(&client, "schedules").await;
    let row = text_when(&client, r#"tr[data-schedule="nightly"]"#, |t| {
        t.contains("rate(1 day)")
    })
    .await;
    assert!(row.contains("echo"), "{row}");
    click(&client, r#"tr[data-schedule="nightly"] button"#).await;
    text_when(&client, "#schedule-status", |t| {
        t.contains("nightly fired: echo request")
    })
    .await;

    // A WebSocket client connects; the page sends it a message through @connections.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/staging", served.ws_addr))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    tab(&client, "websockets").await;
    client
        .find(Locator::Id("ws-refresh"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    text_when(&client, "#ws-list", |t| t.contains("connected")).await;
    let input = client
        .find(Locator::Css("input.ws-message"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    input
        .send_keys("hello from the dashboard")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .find(Locator::Css("form.ws-send button"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let message = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .unwrap_or_else(|_| panic!("the client got nothing"));
    let text = match message {
        Some(Ok(m)) => m.into_text().map(|t| t.to_string()).unwrap_or_default(),
        other => panic!("{other:?}"),
    };
    assert_eq!(text, "hello from the dashboard");

    // Disconnect from the page: the client's connection is closed (API Gateway closes with 1000).
    client
        .find(Locator::Css(
            r#"li[data-connection-id] button[type="button"]"#,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the client was not disconnected"));
    assert_eq!(
        closed.map(|f| u16::from(f.code)),
        Some(1000),
        "a normal closure"
    );
    text_when(&client, "#ws-list", |t| t.contains("No connections")).await;

    let _ = client.close().await;
    drop(driver);
    served.stop().await;
}

//! What the dashboard shows of invocations it did not make (the Invoke API, a Function URL, the
//! APIs), the invoke form's stream mode, schedules, and the build state `up` reports.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::support::{PATIENCE, call, repo, send, serve, start};

/// `request` to `addr`: status, `x-amzn-RequestId`, body.
async fn door(addr: std::net::SocketAddr, request: http::Request<Full<Bytes>>) -> (u16, String) {
    let response = tokio::time::timeout(PATIENCE, send(addr, request))
        .await
        .unwrap_or_else(|_| panic!("{addr} took too long"));
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let _ = response.into_body().collect().await;
    (status, id)
}

fn get(addr: std::net::SocketAddr, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .uri(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_through_the_invoke_api_a_url_and_apis_show_previews_without_secrets() {
    let served = start().await;

    // The Invoke API, with an event over the preview's size and a secret in it.
    let event = serde_json::json!({"password": "hunter3", "pad": "x".repeat(5000)}).to_string();
    let invoke = http::Request::builder()
        .method("POST")
        .uri("/2015-03-31/functions/echo/invocations")
        .header("host", served.invoke_addr.to_string())
        .body(Full::new(Bytes::from(event)))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, id) = door(served.invoke_addr, invoke).await;
    assert_eq!(status, 200);
    let found = served.reported(&id).await;
    let payload = found["payload"].as_str().unwrap_or_default();
    assert!(payload.starts_with(r#"{"pad":"xxx"#), "{payload}");
    assert!(payload.ends_with('…'), "cut: {payload}");
    assert!(payload.len() <= 1024 + 3, "{} bytes", payload.len());
    let answer = found["answer"].as_str().unwrap_or_default();
    assert!(answer.ends_with('…'), "{answer}");

    // A Function URL, with an Authorization header: shown hidden in the event and the answer.
    let url = http::Request::builder()
        .method("POST")
        .uri("/orders?x=1")
        .header("host", served.url_addr.to_string())
        .header("authorization", "Bearer s3cr3t-value")
        .body(Full::new(Bytes::from(r#"{"hello":"url"}"#)))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, url_id) = door(served.url_addr, url).await;
    assert_eq!(status, 200);
    let found = served.reported(&url_id).await;
    // The list carries the previews too, as the page's rows show them.
    let (_, list) = served
        .call("GET", "/api/invocations?function=echo", &[], "")
        .await;
    let listed = list["invocations"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["requestId"] == url_id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["payload"], found["payload"], "{list}");
    for shown in [&found["payload"], &found["answer"]] {
        let text = shown.as_str().unwrap_or_default();
        assert!(text.contains(r#""rawPath":"/orders""#), "{text}");
        assert!(
            text.contains(r#""authorization":"(hidden)""#),
            "the header's value is hidden: {text}"
        );
    }
    assert!(!list.to_string().contains("s3cr3t-value"), "{list}");
    assert!(!list.to_string().contains("hunter3"), "{list}");

    // The APIs: a routed request, and one no route takes.
    let (status, shop_id) = door(served.http_addr, get(served.http_addr, "/items")).await;
    assert_eq!(status, 200);
    let (status, _) = door(served.http_addr, get(served.http_addr, "/nope")).await;
    assert_eq!(status, 404);
    // The echo's answer is no proxy response: the REST API answers 502, as API Gateway does.
    let (status, legacy_id) = door(served.rest_addr, get(served.rest_addr, "/orders")).await;
    assert_eq!(status, 502);

    let (_, apis) = served.call("GET", "/api/apis", &[], "").await;
    let requests = |kind: &str, name: &str| -> Vec<Value> {
        apis["apis"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["kind"] == kind && e["name"] == name))
            .and_then(|e| e["requests"].as_array().cloned())
            .unwrap_or_default()
    };
    let shop = requests("http-api", "shop");
    assert_eq!(shop.len(), 2, "{apis}");
    // Newest first.
    assert_eq!(
        (&shop[0]["method"], &shop[0]["path"], &shop[0]["status"]),
        (
            &Value::from("GET"),
            &Value::from("/nope"),
            &Value::from(404)
        )
    );
    assert_eq!(shop[0]["requestId"], Value::Null);
    assert_eq!(shop[1]["path"], "/items");
    assert_eq!(shop[1]["status"], 200);
    assert_eq!(shop[1]["requestId"], shop_id.as_str());
    assert_eq!(shop[1]["function"], "echo");
    assert!(shop[1]["durationMs"].as_f64().is_some(), "{}", shop[1]);
    let legacy = requests("rest-api", "legacy");
    assert_eq!(legacy.len(), 1, "{apis}");
    assert_eq!(legacy[0]["requestId"], legacy_id.as_str());
    assert_eq!(legacy[0]["status"], 502);
    let url = requests("url", "echo");
    assert_eq!(url.len(), 1, "{apis}");
    assert_eq!(
        (&url[0]["method"], &url[0]["path"]),
        (&Value::from("POST"), &Value::from("/orders"))
    );
    assert_eq!(url[0]["requestId"], url_id.as_str());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invoke_forms_stream_mode_passes_each_chunk_on_as_it_is_written() {
    let served = start().await;
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/invoke")
        .header("host", served.addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            r#"{"function":"stream","payload":"{}","mode":"stream"}"#,
        )))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = send(served.addr, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut body = response.into_body();
    let mut seen = String::new();
    let mut read_until = async |want: &str, seen: &mut String| {
        let found = tokio::time::timeout(PATIENCE, async {
            while !seen.contains(want) {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            seen.push_str(&String::from_utf8_lossy(data));
                        }
                    }
                    _ => return false,
                }
            }
            true
        })
        .await;
        assert!(matches!(found, Ok(true)), "never saw {want}: {seen}");
    };
    // The first chunk arrives while the function still waits to write the second.
    read_until(r#"{"chunk":"chunk 1\n"}"#, &mut seen).await;
    assert!(!seen.contains("chunk 2"), "{seen}");
    served.open_gate().await;
    read_until(r#""end""#, &mut seen).await;
    let lines: Vec<Value> = seen
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let id = lines[0]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(lines[0]["statusCode"], 200);
    assert_eq!(lines[1]["chunk"], "chunk 1\n");
    assert_eq!(lines[2]["chunk"], "chunk 2\n");
    let end = &lines[3]["end"];
    assert_eq!(end["functionError"], Value::Null, "{end}");
    let logs = end["logs"].as_str().unwrap_or_default();
    assert!(logs.contains(&format!("REPORT RequestId: {id}")), "{logs}");
    // The streamed answer's preview is on the invocation.
    let found = served.reported(&id).await;
    assert_eq!(found["answer"], "chunk 1\nchunk 2\n", "{found}");

    let (status, _) = served
        .call(
            "POST",
            "/api/invoke",
            &[("content-type", "application/json")],
            r#"{"function":"echo","mode":"sideways"}"#,
        )
        .await;
    assert_eq!(status, 400);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_listed_with_their_next_time_and_fire_from_the_api() {
    let served = start().await;
    let (status, listed) = served.call("GET", "/api/schedules", &[], "").await;
    assert_eq!(status, 200);
    let nightly = &listed["schedules"][0];
    assert_eq!(nightly["name"], "nightly", "{listed}");
    assert_eq!(nightly["function"], "echo");
    assert_eq!(nightly["expression"], "rate(1 day)");
    let next = nightly["next"].as_str().unwrap_or_default();
    let next = chrono::DateTime::parse_from_rfc3339(next).unwrap_or_else(|e| panic!("{e}: {next}"));
    assert!(next > chrono::Utc::now(), "{next}");

    // Another site cannot fire it.
    let (status, _) = served
        .call(
            "POST",
            "/api/schedules/nightly/fire",
            &[("origin", "http://evil.example")],
            "",
        )
        .await;
    assert_eq!(status, 403);
    let (status, fired) = served
        .call("POST", "/api/schedules/nightly/fire", &[], "")
        .await;
    assert_eq!(status, 200, "{fired}");
    let delivery = &fired["deliveries"][0];
    assert_eq!(delivery["function"], "echo");
    let id = delivery["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ran = served.reported(&id).await;
    assert_eq!(ran["status"], "success", "{ran}");
    assert_eq!(ran["payload"], r#"{"job":"nightly"}"#, "{ran}");

    let (status, _) = served
        .call("POST", "/api/schedules/nope/fire", &[], "")
        .await;
    assert_eq!(status, 404);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_page_shows_each_functions_build_as_up_runs_it() {
    let dir =
        std::env::temp_dir().join(format!("coldstart-dashboard-builds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let gate = dir.join("gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::S_IRWXU).unwrap_or_else(|e| panic!("{e}"));
    let echo = repo("crates/testkit/fixtures/event-echo.sh");
    let config = format!(
        r#"
[functions.plain]
bootstrap = "{echo}"

[functions.good]
build = "read -r _ < gate && cp {echo} good.sh"
bootstrap = "good.sh"

[functions.broken]
build = "echo 'error: expected one of `;` or `}}`' >&2; exit 2"
bootstrap = "broken.sh"
"#,
        echo = echo.display()
    );
    let file = dir.join("coldstart.toml");
    std::fs::write(&file, config).unwrap_or_else(|e| panic!("{e}"));
    let stack = coldstart_stack::Source::Config(file)
        .load(&coldstart_stack::TemplateOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));

    // As `up` does: serve at once, the built functions pending, then build them.
    let dashboard =
        coldstart_dashboard::Dashboard::new(std::sync::Arc::new(coldstart_emulator::TracingSink));
    let mut options = coldstart_stack::StartOptions::new(dashboard.sink());
    options.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    options.pending = vec!["good".into(), "broken".into()];
    options.schedules = false;
    let running = coldstart_stack::start(&stack, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    dashboard.attach(
        running.emulator.clone(),
        running.functions.clone(),
        running.endpoints.clone(),
    );
    let (addr, shutdown, server) = serve(dashboard).await;
    let building = tokio::spawn(coldstart_stack::activate(
        stack.clone(),
        running.emulator.clone(),
        running.functions.clone(),
        coldstart_stack::Reporter::default(),
    ));
    let build_of = |functions: &Value, name: &str| {
        functions["functions"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name))
            .map(|f| f["build"].clone())
            .unwrap_or_default()
    };
    // `good` builds until its gate opens.
    let mut functions = Value::Null;
    for _ in 0..300 {
        functions = call(addr, "GET", "/api/functions", &[], "").await.1;
        if build_of(&functions, "good")["status"] == "building" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        build_of(&functions, "good")["status"],
        "building",
        "{functions}"
    );
    let opened = tokio::task::spawn_blocking({
        let gate = gate.clone();
        move || std::fs::write(gate, "go\n")
    });
    let _ = tokio::time::timeout(PATIENCE, opened).await;
    tokio::time::timeout(PATIENCE * 2, building)
        .await
        .unwrap_or_else(|_| panic!("the builds never ended"))
        .unwrap_or_else(|e| panic!("{e}"));

    let (_, functions) = call(addr, "GET", "/api/functions", &[], "").await;
    assert_eq!(build_of(&functions, "plain"), Value::Null, "not built");
    assert_eq!(build_of(&functions, "good")["status"], "built");
    let broken = build_of(&functions, "broken");
    assert_eq!(broken["status"], "failed", "{functions}");
    let error = broken["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the build of broken failed") && !error.contains('\n'),
        "the error's first line: {error}"
    );

    shutdown.cancel();
    let _ = tokio::time::timeout(PATIENCE, server).await;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

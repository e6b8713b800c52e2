//! The dashboard's HTTP server: the page's assets, the JSON API under `/api/`, and the live
//! updates at `/api/events` (Server-Sent Events). Every request passes the [`guard`] first.
//!
//! [`guard`]: crate::guard

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{InvokeRequest, Outcome, StreamItem};
use coldstart_protocol::InvocationType;
use coldstart_stack::EndpointKind;

use crate::{Dashboard, guard, secrets};

/// The page and its modules, embedded in the binary.
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// How long live updates gather before they are sent together.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Most updates sent in one live event.
const MAX_BATCH: usize = 512;

/// Longest answer the invoke form reads from a streamed response.
const MAX_STREAMED: usize = 1024 * 1024;

/// What every handler shares.
struct App {
    dashboard: Dashboard,
    /// The address the listener is bound to: the only one `Host` and `Origin` may name.
    bound: SocketAddr,
    /// Cancelled at shutdown: live streams end with it, so the server can finish.
    shutdown: CancellationToken,
}

type Shared = State<Arc<App>>;

/// The router: assets, API and events, behind the guard.
pub(crate) fn router(
    dashboard: Dashboard,
    bound: SocketAddr,
    shutdown: CancellationToken,
) -> Router {
    let app = Arc::new(App {
        dashboard,
        bound,
        shutdown,
    });
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/functions", get(functions))
        .route("/api/invocations", get(invocations))
        .route("/api/invocations/{id}", get(invocation))
        .route("/api/logs", get(logs))
        .route("/api/apis", get(apis))
        .route("/api/samples", get(samples))
        .route("/api/samples/{service}/{event}", get(sample))
        .route("/api/invoke", post(invoke))
        .route("/api/schedules", get(schedules))
        .route("/api/schedules/{name}/fire", post(fire_schedule))
        .route("/api/websockets", get(websockets))
        .route(
            "/api/websockets/{api}/connections/{id}",
            post(ws_send).delete(ws_disconnect),
        )
        .route("/api/events", get(events))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .layer(middleware::from_fn_with_state(app.clone(), check))
        .with_state(app)
}

/// The guard, and headers that keep the page out of frames and other sites' reach.
async fn check(State(app): Shared, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(why) = guard::refusal(text(header::HOST), text(header::ORIGIN), app.bound) {
        return error(StatusCode::FORBIDDEN, why);
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `{"message": …}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn not_attached() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the stack is starting")
}

async fn functions(State(app): Shared) -> Response {
    let Some(target) = app.dashboard.target() else {
        return not_attached();
    };
    let list: Vec<Value> = target
        .functions
        .iter()
        .map(|f| {
            let sandboxes: Vec<Value> = target
                .emulator
                .sandboxes(&f.name)
                .iter()
                .map(|s| json!({"id": s.id, "pid": s.pid, "state": s.phase.as_str()}))
                .collect();
            let state = target.emulator.state(&f.name).map(|s| s.as_str());
            let command: Vec<String> = f
                .command
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            json!({
                "name": f.name,
                "state": state,
                "command": command,
                "handler": f.handler,
                "memoryMb": f.memory_mb,
                "timeoutSeconds": f.timeout.as_secs_f64(),
                "concurrency": f.concurrency,
                "freeze": f.freeze,
                "environment": secrets::redact(&f.environment),
                "sandboxes": sandboxes,
                "stats": app.dashboard.hub.stats(&f.name),
                "build": app.dashboard.hub.build(&f.name),
            })
        })
        .collect();
    axum::Json(json!({ "functions": list })).into_response()
}

#[derive(Debug, Deserialize)]
struct Filter {
    function: Option<String>,
    status: Option<String>,
    q: Option<String>,
}

async fn invocations(State(app): Shared, Query(filter): Query<Filter>) -> Response {
    let list = app
        .dashboard
        .hub
        .invocations(filter.function.as_deref(), filter.status.as_deref());
    axum::Json(json!({ "invocations": list })).into_response()
}

async fn invocation(State(app): Shared, Path(id): Path<String>) -> Response {
    match app.dashboard.hub.invocation(&id) {
        Some(found) => axum::Json(found).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such invocation is kept"),
    }
}

async fn logs(State(app): Shared, Query(filter): Query<Filter>) -> Response {
    let lines = app
        .dashboard
        .hub
        .lines(filter.function.as_deref(), filter.q.as_deref());
    axum::Json(json!({ "lines": lines })).into_response()
}

async fn apis(State(app): Shared) -> Response {
    let Some(target) = app.dashboard.target() else {
        return not_attached();
    };
    let list: Vec<Value> = target
        .endpoints
        .iter()
        .map(|e| {
            let routes: Vec<Value> = e
                .routes
                .iter()
                .map(|(function, route)| json!({"function": function, "route": route}))
                .collect();
            let kind = e.kind.as_str();
            json!({
                "name": e.name,
                "kind": kind,
                "url": e.url,
                "streaming": e.streaming,
                "routes": routes,
                "requests": app.dashboard.hub.api_requests(kind, &e.name),
            })
        })
        .collect();
    axum::Json(json!({ "apis": list })).into_response()
}

async fn samples() -> Response {
    let list: Vec<Value> = coldstart_stack::samples::SAMPLES
        .iter()
        .map(|s| json!({"service": s.service, "event": s.event, "description": s.description}))
        .collect();
    axum::Json(json!({ "samples": list })).into_response()
}

async fn sample(Path((service, event)): Path<(String, String)>) -> Response {
    let Some(sample) = coldstart_stack::samples::find(&service, &event) else {
        return error(StatusCode::NOT_FOUND, "no such sample event");
    };
    match sample.build(&[]) {
        Ok(value) => axum::Json(value).into_response(),
        Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    }
}

#[derive(Debug, Deserialize)]
struct InvokeForm {
    function: String,
    /// The event as JSON text. Default: `{}`.
    #[serde(default)]
    payload: Option<String>,
    /// `RequestResponse` (default), `Event`, or `stream` (InvokeWithResponseStream).
    #[serde(default)]
    mode: Option<String>,
}

/// How the invoke form invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RequestResponse,
    Event,
    /// As InvokeWithResponseStream: the answer is passed on chunk by chunk.
    Stream,
}

/// Invokes a function as the Invoke API would, and answers with what a person wants to see:
/// `{"requestId", "statusCode", "functionError", "answer", "logs"}`; in `stream` mode, the same
/// as newline-delimited JSON while it arrives ([`streamed`]).
async fn invoke(State(app): Shared, axum::Json(form): axum::Json<InvokeForm>) -> Response {
    let Some(target) = app.dashboard.target() else {
        return not_attached();
    };
    let mode = match form.mode.as_deref() {
        None | Some("RequestResponse") => Mode::RequestResponse,
        Some("Event") => Mode::Event,
        Some("stream") => Mode::Stream,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "mode is RequestResponse, Event or stream",
            );
        }
    };
    let invocation_type = match mode {
        Mode::Event => InvocationType::Event,
        Mode::RequestResponse | Mode::Stream => InvocationType::RequestResponse,
    };
    let payload = Bytes::from(form.payload.unwrap_or_else(|| "{}".into()));
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = InvokeRequest {
        payload,
        invocation_type,
        log_tail: invocation_type == InvocationType::RequestResponse,
        request_id: Some(request_id.clone()),
        ..InvokeRequest::default()
    };
    let response = match target.emulator.invoke(&form.function, request).await {
        Ok(response) => response,
        Err(refused) => {
            let body = serde_json::to_value(refused.body()).unwrap_or_default();
            return (
                refused.status(),
                axum::Json(json!({
                    "requestId": request_id,
                    "statusCode": refused.status().as_u16(),
                    "errorType": refused.error_type(),
                    "answer": body.to_string(),
                })),
            )
                .into_response();
        }
    };
    if mode == Mode::Stream {
        return streamed(request_id, response);
    }
    let mut tail = response.log_tail;
    let (status, function_error, answer) = match response.outcome {
        Outcome::Response { body, .. } => (200, None, body),
        Outcome::FunctionError { error_type, body } => (200, Some(error_type), body),
        Outcome::Stream { mut stream, .. } => {
            let mut body = Vec::new();
            let mut failed = None;
            while let Some(item) = stream.next().await {
                match item {
                    StreamItem::Chunk(chunk) => {
                        if body.len() < MAX_STREAMED {
                            body.extend_from_slice(&chunk);
                        }
                    }
                    StreamItem::End { error, log_tail } => {
                        failed = error.map(|e| e.error_type);
                        tail = log_tail;
                        break;
                    }
                }
            }
            (200, failed, Bytes::from(body))
        }
        Outcome::Accepted => (202, None, Bytes::new()),
        Outcome::DryRun => (204, None, Bytes::new()),
    };
    let logs = tail.map(|t| String::from_utf8_lossy(&t).into_owned());
    axum::Json(json!({
        "requestId": request_id,
        "statusCode": status,
        "functionError": function_error,
        "answer": String::from_utf8_lossy(&answer),
        "logs": logs,
    }))
    .into_response()
}

/// The invoke form's `stream` answer, as `application/x-ndjson`, one JSON object a line, each
/// written as soon as it is known: `{"requestId", "statusCode"}`, then `{"chunk": text}` for
/// each chunk the function streams (its whole answer as one chunk when it does not stream),
/// then `{"end": {"functionError", "logs"}}`.
fn streamed(request_id: String, response: coldstart_emulator::InvokeResponse) -> Response {
    let head = json!({"requestId": request_id, "statusCode": 200});
    let chunk = |bytes: &[u8]| json!({"chunk": String::from_utf8_lossy(bytes)});
    let end = |error: Option<String>, logs: Option<Vec<u8>>| {
        let logs = logs.map(|t| String::from_utf8_lossy(&t).into_owned());
        json!({"end": {"functionError": error, "logs": logs}})
    };
    let tail = response.log_tail;
    let (first, rest): (Vec<Value>, Option<coldstart_emulator::ResponseStream>) =
        match response.outcome {
            Outcome::Response { body, .. } => (vec![head, chunk(&body), end(None, tail)], None),
            Outcome::FunctionError { error_type, body } => {
                (vec![head, chunk(&body), end(Some(error_type), tail)], None)
            }
            Outcome::Stream { stream, .. } => (vec![head], Some(stream)),
            Outcome::Accepted | Outcome::DryRun => (vec![head, end(None, tail)], None),
        };
    let line = |value: &Value| {
        let mut text = value.to_string();
        text.push('\n');
        Ok::<_, Infallible>(Bytes::from(text))
    };
    let first = futures_util::stream::iter(first.iter().map(line).collect::<Vec<_>>());
    // The function's stream, passed on as it comes: one line per chunk, then its end.
    // A character the function wrote across two chunks waits in `carry` for its other part.
    let rest =
        futures_util::stream::unfold((rest, Vec::new()), move |(stream, mut carry)| async move {
            let mut stream = stream?;
            match stream.next().await? {
                StreamItem::Chunk(bytes) => {
                    carry.extend_from_slice(&bytes);
                    let whole = match std::str::from_utf8(&carry) {
                        Err(e) if e.error_len().is_none() => e.valid_up_to(),
                        _ => carry.len(),
                    };
                    let text = line(&chunk(&carry[..whole]));
                    carry.drain(..whole);
                    Some((text, (Some(stream), carry)))
                }
                StreamItem::End { error, log_tail } => {
                    let mut text = String::new();
                    if !carry.is_empty() {
                        text.push_str(&chunk(&carry).to_string());
                        text.push('\n');
                    }
                    text.push_str(&end(error.map(|e| e.error_type), log_tail).to_string());
                    text.push('\n');
                    Some((Ok(Bytes::from(text)), (None, Vec::new())))
                }
            }
        });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(first.chain(rest)),
    )
        .into_response()
}

/// The stack's schedules: `{"schedules": [{"name", "function", "expression", "enabled",
/// "description", "next"}]}` (`next`: when it fires by itself, RFC 3339, or `null`).
async fn schedules(State(app): Shared) -> Response {
    let Some(target) = app.dashboard.target() else {
        return not_attached();
    };
    let list: Vec<Value> = target
        .schedules
        .as_ref()
        .map(|s| s.list())
        .unwrap_or_default()
        .iter()
        .map(|l| {
            json!({
                "name": l.spec.name,
                "function": l.spec.function,
                "expression": l.spec.expression.to_string(),
                "enabled": l.spec.enabled,
                "description": l.spec.description,
                "next": l.next.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            })
        })
        .collect();
    axum::Json(json!({ "schedules": list })).into_response()
}

/// Fires the schedule `name` now: `{"deliveries": [{"schedule", "function", "requestId"}]}`,
/// 404 for a schedule the stack does not have.
async fn fire_schedule(State(app): Shared, Path(name): Path<String>) -> Response {
    let Some(target) = app.dashboard.target() else {
        return not_attached();
    };
    let Some(schedules) = &target.schedules else {
        return error(StatusCode::NOT_FOUND, "the stack has no schedules");
    };
    if !schedules.list().iter().any(|l| l.spec.name == name) {
        return error(StatusCode::NOT_FOUND, "no such schedule");
    }
    match schedules.fire(&name).await {
        Ok(deliveries) => {
            let list: Vec<Value> = deliveries
                .iter()
                .map(|d| {
                    json!({"schedule": d.schedule, "function": d.function, "requestId": d.request_id})
                })
                .collect();
            axum::Json(json!({ "deliveries": list })).into_response()
        }
        Err(why) => error(StatusCode::BAD_GATEWAY, &why.to_string()),
    }
}

/// The `@connections` base of each WebSocket API: `(name, ws url, http://addr/stage/@connections)`.
fn websocket_apis(app: &App) -> Vec<(String, String, SocketAddr, String)> {
    let Some(target) = app.dashboard.target() else {
        return Vec::new();
    };
    target
        .endpoints
        .iter()
        .filter(|e| e.kind == EndpointKind::WebSocket)
        .map(|e| {
            let stage_path = e
                .url
                .splitn(4, '/')
                .nth(3)
                .map(|stage| format!("/{stage}"))
                .unwrap_or_default();
            (
                e.name.clone(),
                e.url.clone(),
                e.addr,
                format!("{stage_path}/@connections"),
            )
        })
        .collect()
}

async fn websockets(State(app): Shared) -> Response {
    let mut list = Vec::new();
    for (name, url, addr, base) in websocket_apis(&app) {
        let connections = match crate::client::request(Method::GET, addr, &base, Bytes::new()).await
        {
            Ok((200, body)) => serde_json::from_slice::<Value>(&body)
                .map(|v| v["connections"].clone())
                .unwrap_or_default(),
            Ok((status, _)) => json!({"error": format!("@connections answered {status}")}),
            Err(why) => json!({"error": why}),
        };
        list.push(json!({"name": name, "url": url, "connections": connections}));
    }
    axum::Json(json!({ "websockets": list })).into_response()
}

async fn ws_send(
    State(app): Shared,
    Path((api, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    connection_call(&app, &api, &id, Method::POST, body).await
}

async fn ws_disconnect(State(app): Shared, Path((api, id)): Path<(String, String)>) -> Response {
    connection_call(&app, &api, &id, Method::DELETE, Bytes::new()).await
}

/// Passes a send or a disconnect on to the API's own `@connections` endpoint, and its answer
/// back (410 `GoneException` for a closed connection, as API Gateway answers).
async fn connection_call(app: &App, api: &str, id: &str, method: Method, body: Bytes) -> Response {
    let Some((_, _, addr, base)) = websocket_apis(app).into_iter().find(|w| w.0 == api) else {
        return error(StatusCode::NOT_FOUND, "no such WebSocket API");
    };
    let encoded = percent_encode(id);
    match crate::client::request(method, addr, &format!("{base}/{encoded}"), body).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (status, headers, body).into_response()
        }
        Err(why) => error(StatusCode::BAD_GATEWAY, &why),
    }
}

/// A connection id as one path segment (`=` and other reserved characters escaped).
fn percent_encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Live updates, as `updates` events whose data is a JSON array of what happened since the
/// last one (at most every [`GATHER`]), oldest first: `{"kind": "invocation", "data": {...}}` (an invocation started or
/// ended: its summary), `{"kind": "log", "data": {...}}` (a log line), `{"kind": "lagged",
/// "data": {"missed": n}}` (this client fell so far behind that `n` updates were dropped for it;
/// reload the lists). Whatever is waiting goes in one event, so a busy stack costs one write per
/// burst, not one per line.
async fn events(State(app): Shared) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.dashboard.hub.subscribe();
    let shutdown = app.shutdown.clone();
    let stream = futures_util::stream::unfold((rx, shutdown), |(mut rx, shutdown)| async move {
        let first = tokio::select! {
            // The server is stopping: end the stream so the connection can close.
            () = shutdown.cancelled() => return None,
            item = rx.recv() => item,
        };
        // Let a burst gather: one wake-up and one write per burst instead of one per line, and
        // the page redraws at most every GATHER. Sends meanwhile wake nobody.
        if first.is_ok() {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(GATHER) => {}
            }
        }
        let mut batch = String::from("[");
        let mut add = |kind: &str, data: &str| {
            if batch.len() > 1 {
                batch.push(',');
            }
            batch.push_str(r#"{"kind":""#);
            batch.push_str(kind);
            batch.push_str(r#"","data":"#);
            batch.push_str(data);
            batch.push('}');
        };
        let lagged = |missed: u64| json!({ "missed": missed }).to_string();
        match first {
            Ok(update) => add(update.kind(), &update.json()),
            Err(broadcast::error::RecvError::Lagged(missed)) => add("lagged", &lagged(missed)),
            Err(broadcast::error::RecvError::Closed) => return None,
        }
        for _ in 0..MAX_BATCH {
            match rx.try_recv() {
                Ok(update) => add(update.kind(), &update.json()),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                    add("lagged", &lagged(missed))
                }
                Err(_) => break,
            }
        }
        batch.push(']');
        let event = Event::default().event("updates").data(batch);
        Some((Ok(event), (rx, shutdown)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

//! The WebSocket API's listener: one HTTP/1.1 port serving both the WebSocket upgrade at
//! `/{stage}` (running `$connect` before answering it) and the `@connections` API under the
//! stage; everything else is 403 `{"message":"Forbidden"}`, as API Gateway answers.
//!
//! Shutdown: the accept loop stops, HTTP requests in flight finish (an upgrade whose `$connect`
//! is running completes and its session closes at once), every session closes its connection
//! with 1001 and invokes `$disconnect`, and only then does [`serve_websocket_api`] return.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use coldstart_emulator::Emulator;
use coldstart_emulator::apigw::query_pairs;
use coldstart_emulator::auth::{Check, Granted, Identity, Refusal};

use crate::answer::{Handshake, handshake};
use crate::api::{Plan, WebSocketApi};
use crate::backend::Backend;
use crate::clock;
use crate::error::{Error, message_body};
use crate::event;
use crate::management;
use crate::registry::{Connection, Registry};
use crate::session::{Ending, Session};
use crate::wire::{CONNECT, CONNECTIONS, CONNECTIONS_ENCODED};

/// Initial read buffer of a connection (tungstenite's default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How long a closed connection's socket is drained for the client's last bytes, so that
/// closing it sends FIN rather than RST (which could destroy the close frame in flight).
const LINGER: Duration = Duration::from_secs(2);

/// Serves `api` on `listener` until `shutdown` is cancelled, invoking its routes' functions on
/// `emulator`. Returns once every connection has been closed and its `$disconnect` handed to the
/// emulator (queued as an `Event` invocation, so that none is throttled away; the emulator's
/// shutdown runs what is queued);
/// stop the emulator after that. Fails at once, serving nothing, if `api` is invalid (see
/// [`WebSocketApi::validate`]).
pub async fn serve_websocket_api(
    emulator: Emulator,
    api: WebSocketApi,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let plan = api.plan(&emulator.function_names())?;
    // Requests in flight at shutdown are `$connect` invocations (or quick `@connections`
    // calls): they may take a function's timeout.
    let drain = emulator.longest_timeout() + Duration::from_secs(1);
    serve(emulator, plan, listener, shutdown, drain).await;
    Ok(())
}

/// What every request handler and session of one API shares.
#[derive(Debug)]
struct State<B> {
    plan: Arc<Plan>,
    backend: B,
    registry: Arc<Registry>,
    /// Sessions and the message invocations they start; waited for at the end.
    sessions: TaskTracker,
    /// The server's shutdown signal, watched by every session.
    shutdown: CancellationToken,
    config: WebSocketConfig,
}

pub(crate) async fn serve<B: Backend>(
    backend: B,
    plan: Plan,
    listener: TcpListener,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(plan.api.max_message_size))
        .max_frame_size(Some(plan.api.max_frame_size))
        // tungstenite's default read buffer is 128 KiB per connection: at thousands of mostly
        // idle connections that is most of the memory. Messages still grow it as they need.
        .read_buffer_size(READ_BUFFER);
    let state = Arc::new(State {
        plan: Arc::new(plan),
        backend,
        registry: Arc::new(Registry::default()),
        sessions: TaskTracker::new(),
        shutdown: shutdown.clone(),
        config,
    });
    // HTTP connections (until they upgrade or close).
    let http = TaskTracker::new();
    loop {
        // A shutdown stops the accepting at once, even with clients queued.
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Clients that write headers and body separately would otherwise wait out Nagle and
        // delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        http.spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, peer, &state).await) }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            // Either the connection ends (or upgrades), or the shutdown asks it to finish its
            // request in flight and close.
            tokio::select! {
                _ = conn.as_mut() => {}
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    // Stop accepting at once; give `$connect`s in flight their time, then wait for every
    // session's close and `$disconnect`.
    drop(listener);
    http.close();
    if tokio::time::timeout(drain, http.wait()).await.is_err() {
        tracing::warn!("HTTP requests still running at shutdown were abandoned");
    }
    state.sessions.close();
    state.sessions.wait().await;
}

/// Routes one request by its path.
async fn route<B: Backend>(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: &State<B>,
) -> Response<Full<Bytes>> {
    let stage = &state.plan.api.stage;
    let path = req.uri().path().to_owned();
    let under_stage = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage.as_str()));
    match under_stage {
        Some("" | "/") => upgrade(req, peer, state).await,
        Some(rest)
            if req.method() == Method::GET
                && [CONNECTIONS, CONNECTIONS_ENCODED]
                    .iter()
                    .any(|segment| rest.strip_prefix('/') == Some(segment)) =>
        {
            management::list(&state.registry)
        }
        Some(rest) => {
            let id = [CONNECTIONS, CONNECTIONS_ENCODED]
                .iter()
                .find_map(|segment| {
                    rest.strip_prefix('/')?
                        .strip_prefix(segment)?
                        .strip_prefix('/')
                });
            match id {
                Some(id) => {
                    let (parts, body) = req.into_parts();
                    management::handle(&parts.method, id, &parts.headers, body, &state.registry)
                        .await
                }
                None => forbidden(),
            }
        }
        None => forbidden(),
    }
}

/// The WebSocket handshake: runs `$connect`, then answers 101 and starts the session, or
/// answers what `$connect` decided.
async fn upgrade<B: Backend>(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    state: &State<B>,
) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        return management::json(
            StatusCode::UPGRADE_REQUIRED,
            message_body("Upgrade Required"),
        );
    }
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (Some(key), true, &http::Method::GET) = (key, version_ok, req.method()) else {
        return management::json(StatusCode::BAD_REQUEST, message_body("Bad Request"));
    };
    let text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let connection = Arc::new(Connection::new(
        clock::id(),
        peer.ip().to_string(),
        text(header::USER_AGENT),
        text(header::HOST).unwrap_or_default(),
    ));
    if let Some(authorizer) = &state.plan.api.connect_authorizer {
        match authorize(&req, &connection, state, &authorizer.name).await {
            Ok(granted) => {
                let _ = connection.authorizer.set(granted.for_v1());
            }
            Err(refusal) => {
                tracing::info!(connection_id = %connection.id, ?refusal, "connection refused by the $connect authorizer");
                let (status, message) = match refusal {
                    Refusal::Unauthorized | Refusal::InvalidToken(_) => {
                        (StatusCode::UNAUTHORIZED, "Unauthorized")
                    }
                    Refusal::Failed(_) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    }
                    _ => (StatusCode::FORBIDDEN, "Forbidden"),
                };
                return management::json(status, message_body(message));
            }
        }
    }
    let decision = match state.plan.reserved(CONNECT) {
        None => Handshake::Accept(Vec::new()),
        Some(target) => {
            let request_id = clock::id();
            let event = event::connect(
                &connection,
                &state.plan,
                req.headers(),
                req.uri().query(),
                &request_id,
            );
            handshake(&state.backend.invoke(&target.function, event).await)
        }
    };
    match decision {
        Handshake::Reject {
            status,
            headers,
            body,
        } => {
            tracing::info!(
                connection_id = %connection.id,
                status = status.as_u16(),
                "connection refused by $connect"
            );
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            for (name, value) in headers {
                response.headers_mut().append(name, value);
            }
            response
        }
        Handshake::Accept(headers) => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let session = Session::open(
                connection,
                state.plan.clone(),
                state.backend.clone(),
                state.registry.clone(),
                state.sessions.clone(),
                state.shutdown.clone(),
            );
            state
                .sessions
                .spawn(run_session(session, on_upgrade, state.config));
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let out = response.headers_mut();
            out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
                out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            }
            for (name, value) in headers {
                out.append(name, value);
            }
            response
        }
    }
}

/// Runs the `$connect` authorizer for an upgrade request.
async fn authorize<B: Backend>(
    req: &Request<Incoming>,
    connection: &Connection,
    state: &State<B>,
    name: &str,
) -> Result<Granted, Refusal> {
    let request_id = clock::id();
    let raw = event::connect(
        connection,
        &state.plan,
        req.headers(),
        req.uri().query(),
        &request_id,
    );
    let event: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    let query = req.uri().query().map(query_pairs).unwrap_or_default();
    let stage_variables = BTreeMap::new();
    let (region, account) = state.backend.arn_scope();
    let check = Check {
        arn: format!(
            "arn:aws:execute-api:{region}:{account}:{}/{}/{CONNECT}",
            state.plan.api_id, state.plan.api.stage
        ),
        identity: Identity {
            headers: req.headers(),
            query: &query,
            stage_variables: &stage_variables,
            context: event
                .get("requestContext")
                .unwrap_or(&serde_json::Value::Null),
        },
        scopes: &[],
    };
    let result = state
        .plan
        .authorizers
        .authorize(&state.backend, name, check, |_| event.clone())
        .await;
    if let Err(Refusal::Failed(why)) = &result {
        tracing::warn!(api = %state.plan.api.name, "$connect authorizer failed: {why}");
    }
    result
}

/// An accepted connection, from the upgrade to its `$disconnect`.
async fn run_session<B: Backend>(
    mut session: Session<B>,
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
) {
    let ending = match on_upgrade.await {
        Ok(upgraded) => {
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            let (mut sink, mut stream) = ws.split();
            let ending = session.run(&mut sink, &mut stream).await;
            // The halves are ours: reuniting cannot fail. Lingering is not tracked: at
            // shutdown the server returns without waiting for slow clients' last bytes.
            if let Ok(ws) = sink.reunite(stream) {
                tokio::spawn(linger(ws.into_inner()));
            }
            ending
        }
        Err(err) => {
            // The 101 went out but the socket did not come back: the client left at once.
            tracing::debug!(connection_id = %session.id(), %err, "upgrade failed");
            Ending::Dropped
        }
    };
    session.finish(&ending).await;
}

/// Closes a finished connection's socket politely: FIN after the last frame, then reads
/// whatever the client still sends until it closes too (or [`LINGER`] passes).
async fn linger(mut io: TokioIo<Upgraded>) {
    let _ = io.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let drained = async {
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drained).await;
}

/// API Gateway's answer to any other path.
fn forbidden() -> Response<Full<Bytes>> {
    management::json(StatusCode::FORBIDDEN, message_body("Forbidden"))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::api::RouteTarget;
    use crate::backend::Answer;
    use crate::backend::script::Script;

    const PATIENCE: Duration = Duration::from_secs(10);

    fn accept(_: &Value) -> Answer {
        Answer::Response(Bytes::from_static(br#"{"statusCode":200}"#))
    }

    #[tokio::test]
    async fn shutdown_returns_only_after_every_disconnect() {
        let plan = WebSocketApi::new("api", "s")
            .route("$connect", RouteTarget::new("f"))
            .route("$disconnect", RouteTarget::new("f"))
            .plan(&["f".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        let (script, mut calls) = Script::new(accept);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            script,
            plan,
            listener,
            stop.clone(),
            Duration::from_secs(5),
        ));
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/s"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            // Reading answers the server's close.
            clients.push(tokio::spawn(async move {
                let mut last = None;
                while let Some(Ok(message)) = ws.next().await {
                    last = Some(message);
                }
                last
            }));
        }
        stop.cancel();
        tokio::time::timeout(PATIENCE, server)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut kinds = Vec::new();
        while let Ok(event) = calls.try_recv() {
            let ctx = &event["requestContext"];
            kinds.push(format!(
                "{} {}",
                ctx["eventType"], ctx["disconnectStatusCode"]
            ));
        }
        kinds.sort();
        assert_eq!(
            kinds,
            [
                r#""CONNECT" null"#,
                r#""CONNECT" null"#,
                r#""CONNECT" null"#,
                r#""DISCONNECT" 1001"#,
                r#""DISCONNECT" 1001"#,
                r#""DISCONNECT" 1001"#,
            ]
        );
        for client in clients {
            let last = client.await.unwrap_or_else(|e| panic!("{e}"));
            assert!(
                matches!(&last, Some(tokio_tungstenite::tungstenite::Message::Close(Some(f))) if u16::from(f.code) == 1001),
                "{last:?}"
            );
        }
    }

    #[tokio::test]
    async fn other_paths_are_forbidden_and_rejected_upgrades_never_open() {
        fn reject(_: &Value) -> Answer {
            Answer::Response(Bytes::from_static(br#"{"statusCode":401,"body":"no"}"#))
        }
        let plan = WebSocketApi::new("api", "s")
            .route("$connect", RouteTarget::new("f"))
            .route("$disconnect", RouteTarget::new("f"))
            .plan(&["f".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        let (script, mut calls) = Script::new(reject);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(script, plan, listener, stop.clone(), PATIENCE));
        let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(other) => panic!("{other}"),
            Ok(_) => 101,
        };
        let elsewhere = tokio_tungstenite::connect_async(format!("ws://{addr}/other")).await;
        assert_eq!(status(elsewhere.map(drop)), 403);
        let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/s")).await;
        assert_eq!(status(refused.map(drop)), 401);
        stop.cancel();
        tokio::time::timeout(PATIENCE, server)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop"))
            .unwrap_or_else(|e| panic!("{e}"));
        // One `$connect`, and no `$disconnect` for a connection that never opened.
        let connect = calls.try_recv().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(connect["requestContext"]["eventType"], "CONNECT");
        assert!(calls.try_recv().is_err());
    }
}

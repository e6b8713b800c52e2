//! HTTP front doors that put a function behind a URL: Function URLs (payload 2.0, one function
//! at the root of its own port) and API Gateway HTTP/REST APIs (routes to functions, payload 2.0
//! or 1.0). Each turns a request into the event AWS would send (typed with `aws_lambda_events`)
//! and the function's answer into the response AWS would give.
//!
//! Layout: `route` matches route keys; `event` builds events from requests; `answer` reads
//! function answers back into HTTP responses; `sigv4` checks the signatures of Function URLs
//! with `AWS_IAM` auth; `cors` applies a Function URL's `Cors` settings; `api_cors` answers an
//! API's preflights and adds its CORS headers; `throttle` limits requests per route; `access`
//! tells the log sink each request answered.

mod access;
mod answer;
mod api_cors;
pub mod cors;
mod event;
pub mod route;
pub mod sigv4;
mod stream;
mod throttle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use coldstart_protocol::limits;

use crate::apigw::{api_id, query_pairs};
use crate::auth::{Authorizer, AuthorizerEvent, Authorizers, Check, Identity, RouteAuth};
use crate::body::Body;
use crate::emulator::Emulator;
use crate::invocation::InvokeRequest;
use crate::server;

pub use api_cors::{ApiCors, HttpCors, RestCors};
pub use route::{RouteKey, Router};
use sigv4::LocalKey;
pub use throttle::{RateLimit, Throttle};

/// The event format an HTTP API sends its functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    /// REST APIs and HTTP APIs with payload 1.0: `resource`, `httpMethod`, `multiValueHeaders`.
    V1,
    /// HTTP APIs with payload 2.0 (and Function URLs): `routeKey`, `rawPath`, `cookies`.
    V2,
}

/// An API Gateway HTTP API (or REST API) to serve.
#[derive(Debug, Clone)]
pub struct HttpApi {
    /// The API's name, used for its id.
    pub name: String,
    /// Which event format its functions get.
    pub payload_version: PayloadVersion,
    /// Its routes.
    pub router: Router,
    /// The stage: `$default` serves at the root; any other name serves under `/{stage}`.
    /// Default: `$default`.
    pub stage: String,
    /// How it answers cross-origin requests. Default: no CORS (`None`).
    pub cors: Option<ApiCors>,
    /// The stage's variables, the events' `stageVariables`. Default: none.
    pub stage_variables: std::collections::BTreeMap<String, String>,
    /// The stage's per-route throttling. Default: none.
    pub throttle: Throttle,
    /// A REST API (API Gateway v1): its refusals are worded as REST APIs word them.
    pub rest: bool,
    /// Its authorizers.
    pub authorizers: Vec<Authorizer>,
    /// Route key → the route's authorization; routes not named here are open.
    pub route_auth: HashMap<String, RouteAuth>,
    /// Route key → its integration timeout (`TimeoutInMillis`); others get the API kind's
    /// default ([`REST_INTEGRATION_TIMEOUT`], [`HTTP_INTEGRATION_TIMEOUT`]).
    pub timeouts: HashMap<String, Duration>,
    /// The keys `AWS_IAM` routes accept (SigV4, signing name `execute-api`).
    pub credentials: Vec<LocalKey>,
    /// REST APIs: route keys whose Lambda proxy integration has `ResponseTransferMode: STREAM`:
    /// the function's streamed answer (an HTTP-integration stream) reaches the client as it is
    /// written, as a `RESPONSE_STREAM` Function URL's does, with no integration timeout of the
    /// API's own (the function's timeout bounds it). Default: none (buffered).
    pub streamed: std::collections::HashSet<String>,
}

/// The authorizer name of routes with `AWS_IAM` authorization: SigV4 is checked against the
/// API's [`HttpApi::credentials`].
pub const AWS_IAM: &str = "AWS_IAM";

/// How long a REST API waits for its integration by default (API Gateway's 29 s).
pub const REST_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// How long an HTTP API waits for its integration, at most and by default (30 s).
pub const HTTP_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

impl HttpApi {
    /// An HTTP API with payload `version` on the `$default` stage, without CORS, stage
    /// variables, throttling or authorizers: set those fields after.
    pub fn new(name: impl Into<String>, payload_version: PayloadVersion, router: Router) -> Self {
        Self {
            name: name.into(),
            payload_version,
            router,
            stage: "$default".into(),
            cors: None,
            stage_variables: std::collections::BTreeMap::new(),
            throttle: Throttle::default(),
            rest: false,
            authorizers: Vec::new(),
            route_auth: HashMap::new(),
            timeouts: HashMap::new(),
            credentials: vec![LocalKey::coldstart()],
            streamed: std::collections::HashSet::new(),
        }
    }
}

/// How a Function URL answers (`InvokeMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvokeMode {
    /// The function's answer is read whole (up to 6 MB), then sent.
    #[default]
    Buffered,
    /// The function's streamed answer goes to the client as it is written (up to 200 MB).
    ResponseStream,
}

/// Who may call a Function URL (`AuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlAuthType {
    /// Anyone: requests are not checked.
    #[default]
    None,
    /// Callers that sign with SigV4 (service `lambda`) using one of the local credentials.
    AwsIam,
}

/// How a Function URL serves its function.
#[derive(Debug, Clone, Default)]
pub struct UrlSettings {
    /// Buffered or streamed answers. Default: buffered.
    pub invoke_mode: InvokeMode,
    /// Who may call it. Default: anyone.
    pub auth_type: UrlAuthType,
    /// The keys signed requests may use, for [`UrlAuthType::AwsIam`]. Default: none.
    pub credentials: Vec<sigv4::LocalKey>,
    /// Its CORS settings, if it has any. Default: none.
    pub cors: Option<cors::UrlCors>,
}

/// Which front door a request came through: it decides the event and the error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    FunctionUrl,
    HttpApi(PayloadVersion),
}

/// The parts of an HTTP request an event is made of.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) method: http::Method,
    /// The path the route is matched on (an API's stage taken off).
    pub(crate) path: String,
    /// The path as the client sent it (what a signature covers).
    pub(crate) sent_path: String,
    pub(crate) raw_query: String,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) source_ip: String,
}

/// Serves `function` as a Function URL on `listener`: every path and method, at the root.
pub async fn serve_function_url(
    emulator: Emulator,
    function: String,
    settings: UrlSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let drain = emulator.longest_timeout() + Duration::from_secs(1);
    let settings = std::sync::Arc::new(settings);
    let handler = move |req: Request<Incoming>, peer: SocketAddr| {
        let emulator = emulator.clone();
        let function = function.clone();
        let settings = settings.clone();
        async move {
            let access = access::Access::begin(&emulator, &req);
            let response = async {
                let captured = match capture(req, peer, Door::FunctionUrl).await {
                    Ok(c) => c,
                    Err(response) => return response,
                };
                let mut response = url_response(&emulator, &function, &settings, &captured).await;
                if let Some(cors) = &settings.cors {
                    cors::decorate(cors, &captured.headers, response.headers_mut());
                }
                response
            }
            .await;
            if let Some(access) = access {
                let door = access::Door {
                    name: &function,
                    kind: "url",
                    function: &function,
                };
                access.end(&emulator, &door, &response);
            }
            response
        }
    };
    server::serve(listener, handler, shutdown, drain).await;
}

/// A Function URL's answer before CORS: the preflight, the auth check, then the function.
async fn url_response(
    emulator: &Emulator,
    function: &str,
    settings: &UrlSettings,
    captured: &Captured,
) -> Response<Body> {
    if let Some(cors) = &settings.cors
        && let Some(answer) = cors::preflight(cors, &captured.method, &captured.headers)
    {
        return answer;
    }
    let authorizer = match settings.auth_type {
        UrlAuthType::None => None,
        UrlAuthType::AwsIam => {
            let region = &emulator.settings().region;
            match sigv4::verify(
                captured,
                &settings.credentials,
                region,
                std::time::SystemTime::now(),
            ) {
                Ok(key) => Some(key.authorizer(&emulator.settings().account_id)),
                Err(refusal) => {
                    tracing::debug!(function, ?refusal, "function url request refused");
                    let mut response = refusal.response();
                    if let Ok(id) = http::HeaderValue::from_str(&crate::clock::request_id()) {
                        response
                            .headers_mut()
                            .insert(coldstart_protocol::invoke::REQUEST_ID, id);
                    }
                    return response;
                }
            }
        }
    };
    let request_id = crate::clock::request_id();
    let url_id = url_id(function);
    let event = event::function_url(
        captured,
        &request_id,
        &url_id,
        emulator.settings(),
        authorizer,
    );
    invoke(
        emulator,
        function,
        event,
        request_id,
        Door::FunctionUrl,
        settings.invoke_mode,
    )
    .await
}

/// Serves an HTTP API on `listener`.
pub async fn serve_http_api(
    emulator: Emulator,
    api: HttpApi,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let drain = emulator.longest_timeout() + Duration::from_secs(1);
    let authorizers = Authorizers::new(api.authorizers.clone()).unwrap_or_else(|e| {
        // Stacks check their authorizers before serving; a bad one here refuses its routes.
        tracing::error!(api = %api.name, "{e}");
        Authorizers::default()
    });
    let api = Arc::new((api, authorizers));
    let cors_api = api.clone();
    let access_emulator = emulator.clone();
    // Shared by every request to this API; dropped with the server.
    let buckets = Arc::new(throttle::Buckets::new(api.0.throttle.clone()));
    let inner = move |req: Request<Incoming>, peer: SocketAddr| {
        let emulator = emulator.clone();
        let api = api.clone();
        let buckets = buckets.clone();
        async move {
            let (api, authorizers) = &*api;
            let door = Door::HttpApi(api.payload_version);
            let mut captured = match capture(req, peer, door).await {
                Ok(c) => c,
                Err(response) => return response,
            };
            if api.stage != "$default" {
                let prefix = format!("/{}", api.stage);
                match captured.path.strip_prefix(&prefix) {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                        captured.path = if rest.is_empty() {
                            "/".into()
                        } else {
                            rest.to_owned()
                        };
                    }
                    _ => return answer::no_route(door),
                }
            }
            if let Some(preflight) = api_cors::preflight(
                api.cors.as_ref(),
                &api.router,
                &captured.method,
                &captured.path,
                &captured.headers,
            ) {
                return preflight;
            }
            let Some(matched) = api.router.route(captured.method.as_str(), &captured.path) else {
                return answer::no_route(door);
            };
            if !buckets.admit(&matched.route.key) {
                return answer::from_refusal(door, &crate::error::InvokeError::Throttled);
            }
            let request_id = crate::clock::request_id();
            let settings = emulator.settings();
            let mut event = event::http_api(
                &captured,
                &matched,
                api,
                api.payload_version,
                &request_id,
                settings,
            );
            let route_auth = api.route_auth.get(&matched.route.key);
            if route_auth.is_some_and(|a| a.authorizer == AWS_IAM) {
                let account = &settings.account_id;
                match sigv4::verify_for(
                    &captured,
                    &api.credentials,
                    &settings.region,
                    sigv4::EXECUTE_API,
                    std::time::SystemTime::now(),
                ) {
                    Ok(key) => sigv4::api_caller(key, account, api.payload_version, &mut event),
                    Err(refusal) => {
                        tracing::debug!(api = %api.name, ?refusal, "IAM request refused");
                        return refusal.api_response(api.rest);
                    }
                }
            } else if let Some(route_auth) = route_auth {
                let granted = match authorize(
                    &emulator,
                    api,
                    authorizers,
                    route_auth,
                    &captured,
                    &matched,
                    &event,
                    &request_id,
                )
                .await
                {
                    Ok(granted) => granted,
                    Err(refusal) => {
                        let mut response = answer::refused(api.rest, &refusal);
                        if let Ok(id) = http::HeaderValue::from_str(&request_id) {
                            response
                                .headers_mut()
                                .insert(coldstart_protocol::invoke::REQUEST_ID, id);
                        }
                        return response;
                    }
                };
                if let Some(context) = event.get_mut("requestContext") {
                    context["authorizer"] = match api.payload_version {
                        PayloadVersion::V2 => granted.for_v2(),
                        PayloadVersion::V1 => granted.for_v1(),
                    };
                }
            }
            let function = matched.function.to_owned();
            let event = serde_json::to_vec(&event).unwrap_or_default();
            if event.len() > limits::MAX_SYNC_REQUEST {
                // The gateway took it, but the event is over Lambda's synchronous limit.
                return answer::event_too_large();
            }
            if api.rest && api.streamed.contains(&matched.route.key) {
                return invoke(
                    &emulator,
                    &function,
                    event,
                    request_id,
                    door,
                    InvokeMode::ResponseStream,
                )
                .await;
            }
            let limit = api
                .timeouts
                .get(&matched.route.key)
                .copied()
                .unwrap_or(if api.rest {
                    REST_INTEGRATION_TIMEOUT
                } else {
                    HTTP_INTEGRATION_TIMEOUT
                });
            invoke_within(
                &emulator, function, event, request_id, door, api.rest, limit,
            )
            .await
        }
    };
    // Every answer of the API, the gateway's own included, goes through its CORS rules.
    let handler = move |req: Request<Incoming>, peer: SocketAddr| {
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        let api = cors_api.clone();
        let access = access::Access::begin(&access_emulator, &req);
        let emulator = access_emulator.clone();
        let response = inner(req, peer);
        async move {
            let response = api_cors::finish(api.0.cors.as_ref(), origin.as_ref(), response.await);
            if let Some(access) = access {
                let door = access::Door {
                    name: &api.0.name,
                    kind: if api.0.rest { "rest-api" } else { "http-api" },
                    function: "",
                };
                access.end(&emulator, &door, &response);
            }
            response
        }
    };
    server::serve(listener, handler, shutdown, drain).await;
}

/// Runs the route's authorizer for a request whose event is `event`.
#[allow(clippy::too_many_arguments)]
async fn authorize(
    emulator: &Emulator,
    api: &HttpApi,
    authorizers: &Authorizers,
    route_auth: &RouteAuth,
    captured: &Captured,
    matched: &route::Matched<'_>,
    event: &serde_json::Value,
    request_id: &str,
) -> Result<crate::auth::Granted, crate::auth::Refusal> {
    let settings = emulator.settings();
    let query = query_pairs(&captured.raw_query);
    let null = serde_json::Value::Null;
    let check = Check {
        arn: crate::auth::method_arn(
            &settings.region,
            &settings.account_id,
            &api_id(&api.name),
            &api.stage,
            captured.method.as_str(),
            &captured.path,
        ),
        identity: Identity {
            headers: &captured.headers,
            query: &query,
            stage_variables: &api.stage_variables,
            context: event.get("requestContext").unwrap_or(&null),
        },
        scopes: &route_auth.scopes,
    };
    let result = authorizers
        .authorize(emulator, &route_auth.authorizer, check, |kind| {
            let version = match kind {
                AuthorizerEvent::HttpV2 { .. } => PayloadVersion::V2,
                _ => PayloadVersion::V1,
            };
            if version == api.payload_version {
                event.clone()
            } else {
                event::http_api(captured, matched, api, version, request_id, settings)
            }
        })
        .await;
    if let Err(crate::auth::Refusal::Failed(why)) = &result {
        tracing::warn!(api = %api.name, route = %matched.route.key, "authorizer failed: {why}");
    }
    result
}

/// The largest request body API Gateway takes (10 MB); its event must still fit Lambda's 6 MB.
pub const API_MAX_REQUEST: usize = 10 * 1024 * 1024;

async fn capture(
    req: Request<Incoming>,
    peer: SocketAddr,
    door: Door,
) -> Result<Captured, Response<Body>> {
    let (parts, body) = req.into_parts();
    let limit = match door {
        Door::FunctionUrl => limits::MAX_SYNC_REQUEST,
        Door::HttpApi(_) => API_MAX_REQUEST,
    };
    let body = match read_body(body, limit).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => return Err(answer::request_too_large(door)),
        Err(BodyError::Broken) => {
            return Err(answer::plain(http::StatusCode::BAD_REQUEST, "Bad Request"));
        }
    };
    Ok(Captured {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        sent_path: parts.uri.path().to_owned(),
        raw_query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        source_ip: peer.ip().to_string(),
    })
}

/// Why a request body could not be had.
enum BodyError {
    TooLarge,
    Broken,
}

/// How much of a body over its limit is read and dropped, so that the client finishes sending
/// and reads the 413 (a client that is still writing when the server closes sees an error).
const DRAIN_AT_MOST: usize = 32 * 1024 * 1024;

/// The body, up to `limit` bytes; a longer one is drained (up to [`DRAIN_AT_MOST`]) and refused.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let mut buffer = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_AT_MOST {
            return Err(BodyError::TooLarge);
        }
        if seen <= limit {
            buffer.extend_from_slice(&data);
        }
    }
    if seen > limit {
        Err(BodyError::TooLarge)
    } else {
        Ok(buffer.freeze())
    }
}

/// Invokes `function` with `event` and answers as `door` does, reading the function's answer
/// whole or, for a `RESPONSE_STREAM` Function URL, streaming it.
async fn invoke(
    emulator: &Emulator,
    function: &str,
    event: Vec<u8>,
    request_id: String,
    door: Door,
    mode: InvokeMode,
) -> Response<Body> {
    let request = InvokeRequest {
        payload: Bytes::from(event),
        request_id: Some(request_id.clone()),
        serialized: true,
        ..InvokeRequest::default()
    };
    let mut response = match emulator.invoke(function, request).await {
        Ok(response) if mode == InvokeMode::ResponseStream => {
            stream::respond(response.outcome).await
        }
        Ok(response) => {
            let response = response.buffered(limits::MAX_RUNTIME_RESPONSE).await;
            answer::from_outcome(door, response.outcome)
        }
        Err(err) => answer::from_refusal(door, &err),
    };
    if let Ok(id) = http::HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(coldstart_protocol::invoke::REQUEST_ID, id);
    }
    response
}

/// Invokes an API route's `function` and answers as `door` does, unless the function takes
/// longer than the integration's `limit`: then the API answers at once (REST 504
/// `Endpoint request timed out`, HTTP 503 `Service Unavailable`) and the invocation goes on to
/// its own end in the background, as on AWS.
async fn invoke_within(
    emulator: &Emulator,
    function: String,
    event: Vec<u8>,
    request_id: String,
    door: Door,
    rest: bool,
    limit: Duration,
) -> Response<Body> {
    let request = InvokeRequest {
        payload: Bytes::from(event),
        request_id: Some(request_id.clone()),
        serialized: true,
        ..InvokeRequest::default()
    };
    // Polled here; only an invocation that outlives `limit` is handed to a task of its own.
    let mut running = Box::pin({
        let emulator = emulator.clone();
        async move {
            match emulator.invoke(&function, request).await {
                Ok(response) => Ok(response.buffered(limits::MAX_RUNTIME_RESPONSE).await),
                Err(err) => Err(err),
            }
        }
    });
    let mut response = match tokio::time::timeout(limit, &mut running).await {
        Ok(Ok(response)) => answer::from_outcome(door, response.outcome),
        Ok(Err(err)) => answer::from_refusal(door, &err),
        Err(_) => {
            tracing::info!(%request_id, limit_ms = limit.as_millis() as u64, "integration timed out");
            tokio::spawn(running);
            answer::integration_timeout(rest)
        }
    };
    if let Ok(id) = http::HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(coldstart_protocol::invoke::REQUEST_ID, id);
    }
    response
}

/// A stable 32-character id for a Function URL, like AWS's url-id.
fn url_id(function: &str) -> String {
    let mut id: String = function
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    id.push_str("coldstartlocalfunctionurl0000000");
    id.truncate(32);
    id
}

//! A stack, served: [`start`] binds every listener, creates the tables, starts the emulator and
//! the front doors, and hands back a [`Running`] stack with its endpoints.
//!
//! Listeners are bound before anything else so that ports of 0 are known when the functions'
//! environments are made: a value that names an API's or URL's address on AWS
//! (`https://<id>.execute-api.<region>.amazonaws.com/...`, `wss://...`,
//! `https://<id>.lambda-url.<region>.on.aws/`) is rewritten to its local URL, so a function
//! that calls `@connections` through its own API's URL reaches the local one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{
    Emulator, FunctionConfig, HttpApi, InvokeMode, LogSink, RouteKey, Router, State,
    serve_function_url, serve_http_api, serve_invoke_api,
};
use coldstart_emulator::{
    LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, LOCAL_SESSION_TOKEN, LocalKey, UrlSettings,
};
use coldstart_websocket::{RouteTarget, WebSocketApi, serve_websocket_api};

use crate::error::{Error, Location};
use crate::layers;
use crate::model::{FunctionSpec, OutputSpec, Stack};
use crate::report::Reporter;

/// How a stack is served.
#[derive(Clone)]
pub struct StartOptions {
    /// The Invoke API's address; every other listener binds its IP. Default: `127.0.0.1:9000`.
    pub listen: SocketAddr,
    /// Stop (SIGSTOP) idle sandboxes. Default: true.
    pub freeze: bool,
    /// A DynamoDB-compatible endpoint: the stack's tables are created there if missing and
    /// functions get `AWS_ENDPOINT_URL_DYNAMODB`. Default: none.
    pub dynamodb_endpoint: Option<String>,
    /// Where function logs go.
    pub sink: Arc<dyn LogSink>,
    /// Where progress lines go (layers, tables). Default: `tracing`.
    pub report: Reporter,
    /// Functions whose code is still being built: they start `Pending` (invocations get 409
    /// `ResourceConflictException`, as Lambda answers for a function being created) and their
    /// bootstrap is not looked for yet; [`activate`] makes them `Active` once built. Default:
    /// none.
    pub pending: Vec<String>,
    /// A file (SQLite) where `Event` invocations still queued at a graceful stop are kept, and
    /// from which the next start takes them up again; `up` uses
    /// `.coldstart/async-queue.sqlite`. An unreadable file is moved aside with a warning.
    /// Default: none (they are dropped, and logged, at the stop).
    pub async_store: Option<PathBuf>,
    /// Fire the stack's schedules at their times (`up --no-schedules` turns this off;
    /// [`Running::schedules`] can still fire one now). Default: true.
    pub schedules: bool,
    /// An SQS-compatible endpoint: the stack's queues are created there, its SQS event source
    /// mappings poll them, and functions get `AWS_ENDPOINT_URL_SQS` (queue URLs in their
    /// environment point there). Default: none (SQS events are not emulated).
    pub sqs_endpoint: Option<String>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("listen", &self.listen)
            .field("freeze", &self.freeze)
            .field("dynamodb_endpoint", &self.dynamodb_endpoint)
            .finish_non_exhaustive()
    }
}

impl StartOptions {
    /// Defaults, with logs to `sink`.
    pub fn new(sink: Arc<dyn LogSink>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            freeze: true,
            dynamodb_endpoint: None,
            sink,
            report: Reporter::default(),
            pending: Vec::new(),
            async_store: None,
            schedules: true,
            sqs_endpoint: None,
        }
    }
}

/// What kind of front door an [`Endpoint`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// The Invoke API of every function.
    Invoke,
    /// A Function URL.
    Url,
    /// An API Gateway HTTP API.
    HttpApi,
    /// An API Gateway REST API.
    RestApi,
    /// An API Gateway WebSocket API.
    WebSocket,
    /// The live dashboard (`--dashboard`).
    Dashboard,
}

impl EndpointKind {
    /// The kind's name in `--ready-json`: `invoke`, `url`, `http-api`, `rest-api`, `websocket`,
    /// `dashboard`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::Url => "url",
            Self::HttpApi => "http-api",
            Self::RestApi => "rest-api",
            Self::WebSocket => "websocket",
            Self::Dashboard => "dashboard",
        }
    }
}

/// One listener of a running stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The function (for a URL) or API it serves; `*` for the Invoke API.
    pub name: String,
    /// What it is.
    pub kind: EndpointKind,
    /// Its full URL: `http://127.0.0.1:9000` (the Invoke API), `http://127.0.0.1:3000/` (a
    /// Function URL or an API), `http://127.0.0.1:3000/Prod/` (a REST API's stage),
    /// `ws://127.0.0.1:3001/staging` (a WebSocket API's stage).
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
    /// What it serves, as (function, what to call): one row per route or function.
    pub routes: Vec<(String, String)>,
    /// A Function URL in `RESPONSE_STREAM` mode: answers are streamed.
    pub streaming: bool,
}

impl Endpoint {
    /// The name of the Invoke API's endpoint, which serves every function.
    pub const INVOKE_API: &'static str = "*";

    /// The Invoke API at `addr`, serving `functions`.
    pub fn invoke_api(addr: SocketAddr, functions: &[String]) -> Self {
        Self {
            name: Self::INVOKE_API.into(),
            kind: EndpointKind::Invoke,
            url: format!("http://{addr}"),
            addr,
            routes: functions
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        format!("http://{addr}/2015-03-31/functions/{name}/invocations"),
                    )
                })
                .collect(),
            streaming: false,
        }
    }
}

/// The `--ready-json` line (design.md's readiness contract): `{"ready":true,"endpoints":[...]}`,
/// each endpoint with its `name` (`*` for the Invoke API), `kind` and full `url`.
pub fn ready_json(endpoints: &[Endpoint]) -> String {
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|e| serde_json::json!({"name": e.name, "kind": e.kind.as_str(), "url": e.url}))
        .collect();
    serde_json::json!({"ready": true, "endpoints": endpoints}).to_string()
}

/// How long [`answering`] waits for an endpoint to accept a connection.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until every endpoint accepts a connection (each is served by then: its listener is
/// bound and its server task spawned), at most a few seconds each.
pub async fn answering(endpoints: &[&Endpoint]) -> Result<(), Error> {
    for endpoint in endpoints {
        let connect = tokio::net::TcpStream::connect(endpoint.addr);
        match tokio::time::timeout(ANSWER_WITHIN, connect).await {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => {
                return Err(Error::Io {
                    what: format!("{} ({}) does not answer", endpoint.name, endpoint.url),
                    source,
                });
            }
            Err(_) => {
                return Err(Error::Io {
                    what: format!("{} ({}) does not answer", endpoint.name, endpoint.url),
                    source: std::io::ErrorKind::TimedOut.into(),
                });
            }
        }
    }
    Ok(())
}

/// A stack being served. Dropping it does not stop it: call [`Running::stop`], or cancel the
/// token of [`Running::shutdown_token`] and [`Running::wait`].
#[derive(Debug)]
pub struct Running {
    /// The emulator behind every front door.
    pub emulator: Emulator,
    /// Every listener, the Invoke API first.
    pub endpoints: Vec<Endpoint>,
    /// The template's outputs with local values.
    pub outputs: Vec<OutputSpec>,
    /// The functions as they were started (with their final environment).
    pub functions: Vec<FunctionConfig>,
    /// Applies a changed stack to this one.
    reloader: Reloader,
    /// Cancelled to stop every server; the servers hold clones.
    shutdown: CancellationToken,
    /// The servers; each returns once `shutdown` is cancelled and its requests are done.
    servers: JoinSet<()>,
    /// Where queued `Event` invocations are kept at the stop ([`StartOptions::async_store`]).
    async_store: Option<PathBuf>,
    /// Where the stop says how many it kept.
    report: Reporter,
    /// The stack's schedules: when each fires next, and a way to fire one now.
    pub schedules: crate::schedules::Schedules,
}

impl Running {
    /// The token that stops the stack when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// What applies a changed stack (functions' new settings) to this one while it serves.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The endpoint of `name` (a function's URL or an API) of `kind`.
    pub fn endpoint(&self, name: &str, kind: EndpointKind) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.name == name && e.kind == kind)
    }

    /// Waits until every endpoint accepts connections.
    pub async fn answering(&self) -> Result<(), Error> {
        answering(&self.endpoints.iter().collect::<Vec<_>>()).await
    }

    /// Waits until the shutdown token is cancelled, then for every server to finish its
    /// requests, then stops every sandbox.
    pub async fn wait(mut self) {
        while self.servers.join_next().await.is_some() {}
        let kept = self
            .emulator
            .shutdown_keeping_events(self.emulator.longest_timeout())
            .await;
        crate::async_store::keep(self.async_store.as_deref(), &kept, &self.report);
    }

    /// Stops the stack: servers finish their requests, sandboxes get SIGTERM then SIGKILL.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// Serves `stack`. Its code must be built already (see [`crate::build`]).
pub async fn start(stack: &Stack, options: StartOptions) -> Result<Running, Error> {
    check_ports(stack, options.listen)?;

    let ip = options.listen.ip();
    let invoke = bind(options.listen).await?;
    let invoke_addr = local_addr(&invoke)?;
    let mut urls = Vec::new();
    for f in &stack.functions {
        if let Some(url) = &f.url {
            let listener = bind(SocketAddr::new(ip, url.port)).await?;
            urls.push((f, url, listener));
        }
    }
    let mut http = Vec::new();
    for api in &stack.http_apis {
        http.push((api, bind(SocketAddr::new(ip, api.port)).await?));
    }
    let mut ws = Vec::new();
    for api in &stack.websocket_apis {
        ws.push((api, bind(SocketAddr::new(ip, api.port)).await?));
    }

    // AWS addresses of local endpoints → their local URLs.
    let mut rewrites: Vec<(String, String)> = Vec::new();
    for (_, url, listener) in &urls {
        if let Some(host) = &url.aws_host {
            let addr = local_addr(listener)?;
            rewrites.push((format!("https://{host}"), format!("http://{addr}")));
        }
    }
    for (api, listener) in &http {
        if let Some(host) = &api.aws_host {
            let addr = local_addr(listener)?;
            rewrites.push((format!("https://{host}"), format!("http://{addr}")));
        }
    }
    for (api, listener) in &ws {
        if let Some(host) = &api.aws_host {
            let addr = local_addr(listener)?;
            rewrites.push((format!("https://{host}"), format!("http://{addr}")));
            rewrites.push((format!("wss://{host}"), format!("ws://{addr}")));
        }
    }
    // Queues first: their URLs on the endpoint stand for their AWS URLs.
    let mut queues = BTreeMap::new();
    let sqs = match &options.sqs_endpoint {
        Some(endpoint) if !stack.queues.is_empty() => {
            let client = crate::sqs::client(endpoint, &stack.settings.region);
            queues = crate::sqs::create_all(&client, &stack.queues, endpoint, &options.report)
                .await?
                .into_iter()
                .collect();
            for q in &stack.queues {
                if let Some(created) = queues.get(&q.id) {
                    rewrites.push((
                        format!(
                            "https://sqs.{}.amazonaws.com/{}/{}",
                            stack.settings.region, stack.settings.account_id, q.name
                        ),
                        created.url.clone(),
                    ));
                }
            }
            Some(client)
        }
        _ => None,
    };
    if options.sqs_endpoint.is_none() && !stack.sqs_mappings.is_empty() {
        let names: Vec<&str> = stack.sqs_mappings.iter().map(|m| m.name.as_str()).collect();
        options.report.say(format!(
            "SQS events are not emulated without --sqs-endpoint URL: {}",
            names.join(", ")
        ));
    }
    let wiring = Wiring {
        invoke_addr,
        rewrites,
        freeze: options.freeze,
        dynamodb_endpoint: options.dynamodb_endpoint.clone(),
        report: options.report.clone(),
        sqs_endpoint: options.sqs_endpoint.clone(),
    };
    let mut configs = Vec::with_capacity(stack.functions.len());
    for f in &stack.functions {
        let config = wiring.configure(stack, f)?;
        if !options.pending.contains(&config.name) {
            check_executable(stack, &config)?;
        }
        configs.push(config);
    }
    let local = |value: &str| rewrite(value, &wiring.rewrites);
    if let Some(endpoint) = &options.dynamodb_endpoint {
        crate::tables::create_all(
            &stack.tables,
            endpoint,
            &stack.settings.region,
            &options.report,
        )
        .await?;
    }

    let emulator = Emulator::new(
        configs.clone(),
        stack.settings.clone(),
        options.sink.clone(),
    )?;
    for name in &options.pending {
        emulator.set_state(name, State::Pending);
    }
    if let Some(store) = &options.async_store {
        crate::async_store::resume(store, &emulator, &options.report);
    }
    let shutdown = CancellationToken::new();
    let mut servers = JoinSet::new();
    let names: Vec<String> = stack
        .functions
        .iter()
        .map(|f| f.config.name.clone())
        .collect();
    let mut endpoints = vec![Endpoint::invoke_api(invoke_addr, &names)];
    servers.spawn(serve_invoke_api(emulator.clone(), invoke, shutdown.clone()));
    let schedules = crate::schedules::Schedules::new(
        stack.schedules.clone(),
        emulator.clone(),
        options.sink.clone(),
        chrono::Utc::now(),
        options.schedules,
    );
    servers.spawn(schedules.clone().run(shutdown.clone()));
    if let Some(client) = sqs {
        for spec in stack.sqs_mappings.iter().filter(|m| m.enabled) {
            let (Some(queue), Some(config)) = (
                queues.get(&spec.queue),
                configs.iter().find(|c| c.name == spec.function),
            ) else {
                continue;
            };
            let concurrency = spec
                .maximum_concurrency
                .unwrap_or_else(|| u32::try_from(config.concurrency).unwrap_or(1));
            let mapping = crate::sqs::Mapping {
                spec: spec.clone(),
                queue: queue.clone(),
                client: client.clone(),
                emulator: emulator.clone(),
                sink: options.sink.clone(),
                region: stack.settings.region.clone(),
                concurrency,
            };
            servers.spawn(mapping.run(shutdown.clone()));
        }
    }

    for (f, url, listener) in urls {
        let addr = local_addr(&listener)?;
        let name = f.config.name.clone();
        endpoints.push(Endpoint {
            name: name.clone(),
            kind: EndpointKind::Url,
            url: format!("http://{addr}/"),
            addr,
            routes: vec![(name.clone(), format!("http://{addr}/"))],
            streaming: url.invoke_mode == InvokeMode::ResponseStream,
        });
        let settings = UrlSettings {
            invoke_mode: url.invoke_mode,
            auth_type: url.auth_type,
            credentials: url_credentials(),
            cors: url.cors.clone(),
        };
        servers.spawn(serve_function_url(
            emulator.clone(),
            name,
            settings,
            listener,
            shutdown.clone(),
        ));
    }

    for (api, listener) in http {
        let addr = local_addr(&listener)?;
        let base = match api.stage.as_str() {
            "$default" => format!("http://{addr}"),
            stage => format!("http://{addr}/{stage}"),
        };
        let mut routes = Vec::new();
        let mut shown = Vec::new();
        for (key, function) in &api.routes {
            let route = RouteKey::parse(key).map_err(|why| {
                Error::invalid(&stack.source, Location::path(api.name.clone()), why)
            })?;
            shown.push((
                function.clone(),
                match key.split_once(' ') {
                    Some((method, path)) => format!("{method} {base}{path}"),
                    None => format!("ANY {base}/ ($default)"),
                },
            ));
            routes.push((route, function.clone()));
        }
        let kind = if api.rest {
            EndpointKind::RestApi
        } else {
            EndpointKind::HttpApi
        };
        endpoints.push(Endpoint {
            name: api.name.clone(),
            kind,
            url: format!("{base}/"),
            addr,
            routes: shown,
            streaming: false,
        });
        let http_api = HttpApi {
            name: api.name.clone(),
            payload_version: api.payload_version,
            router: Router::new(routes),
            stage: api.stage.clone(),
            cors: api.cors.clone(),
            stage_variables: api.stage_variables.clone(),
            throttle: api.throttle.clone(),
            rest: api.rest,
            authorizers: api.authorizers.clone(),
            route_auth: api.route_auth.iter().cloned().collect(),
            timeouts: api.timeouts.iter().cloned().collect(),
            credentials: url_credentials(),
            streamed: api.streamed.iter().cloned().collect(),
        };
        servers.spawn(serve_http_api(
            emulator.clone(),
            http_api,
            listener,
            shutdown.clone(),
        ));
    }

    for (spec, listener) in ws {
        let addr = local_addr(&listener)?;
        let mut api = WebSocketApi::new(spec.name.clone(), spec.stage.clone());
        api.route_selection = spec.route_selection.clone();
        if let Some(idle) = spec.idle_timeout {
            api.idle_timeout = idle;
        }
        api.connect_authorizer = spec.connect_authorizer.clone();
        if let Some(max) = spec.max_duration {
            api.max_duration = max;
        }
        for (key, function, two_way) in &spec.routes {
            let target = if *two_way {
                RouteTarget::two_way(function.clone())
            } else {
                RouteTarget::new(function.clone())
            };
            api = api.route(key.clone(), target);
        }
        api.validate(&emulator).map_err(|e| {
            Error::invalid(
                &stack.source,
                Location::path(spec.name.clone()),
                e.to_string(),
            )
        })?;
        let url = format!("ws://{addr}/{}", spec.stage);
        let mut routes: Vec<(String, String)> = spec
            .routes
            .iter()
            .map(|(key, function, _)| (function.clone(), format!("{key} {url}")))
            .collect();
        routes.push((
            String::new(),
            format!(
                "@connections http://{addr}/{}/@connections/{{id}}",
                spec.stage
            ),
        ));
        endpoints.push(Endpoint {
            name: spec.name.clone(),
            kind: EndpointKind::WebSocket,
            url,
            addr,
            routes,
            streaming: false,
        });
        let (emulator, shutdown) = (emulator.clone(), shutdown.clone());
        let name = spec.name.clone();
        servers.spawn(async move {
            if let Err(e) = serve_websocket_api(emulator, api, listener, shutdown).await {
                tracing::error!("{name}: {e}");
            }
        });
    }

    let outputs = stack
        .outputs
        .iter()
        .map(|o| OutputSpec {
            value: local(&o.value),
            ..o.clone()
        })
        .collect();
    let reloader = Reloader {
        served: Arc::new(Mutex::new(Served {
            stack: stack.clone(),
            configs: configs.clone(),
            wiring,
            emulator: emulator.clone(),
        })),
    };
    Ok(Running {
        emulator,
        endpoints,
        outputs,
        functions: configs,
        reloader,
        shutdown,
        servers,
        async_store: options.async_store,
        report: options.report,
        schedules,
    })
}

/// What makes a function's settings into the config the emulator runs: the started stack's
/// local addresses and how it was started.
#[derive(Debug, Clone)]
struct Wiring {
    invoke_addr: SocketAddr,
    /// AWS addresses of local endpoints, with their local URLs.
    rewrites: Vec<(String, String)>,
    freeze: bool,
    dynamodb_endpoint: Option<String>,
    report: Reporter,
    sqs_endpoint: Option<String>,
}

impl Wiring {
    /// `f` as the emulator runs it: its layers at `/opt`, AWS addresses of local endpoints made
    /// local, and a template's local environment.
    fn configure(&self, stack: &Stack, f: &FunctionSpec) -> Result<FunctionConfig, Error> {
        let mut config = f.config.clone();
        config.freeze = self.freeze;
        if !f.layers.is_empty() {
            layers::attach(stack, f, &mut config, &self.report)?;
        }
        for value in config.environment.values_mut() {
            *value = rewrite(value, &self.rewrites);
        }
        if let Some(endpoint) = &self.sqs_endpoint {
            config
                .environment
                .entry("AWS_ENDPOINT_URL_SQS".to_owned())
                .or_insert_with(|| endpoint.clone());
        }
        if stack.local_environment {
            local_environment(
                &mut config.environment,
                self.invoke_addr,
                self.dynamodb_endpoint.as_deref(),
            );
        }
        Ok(config)
    }
}

/// What [`Reloader::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reload {
    /// Nothing the emulator runs changed.
    Unchanged,
    /// These functions run with their new settings from their next invocation on.
    Reconfigured(Vec<String>),
    /// The stack's shape changed (what is said here): functions added or removed, a Function
    /// URL, an API, a table, a layer or the settings. It must be started again.
    Restart(String),
}

/// Applies a changed [`Stack`] to a running one, function by function: see
/// [`Running::reloader`].
#[derive(Debug, Clone)]
pub struct Reloader {
    served: Arc<Mutex<Served>>,
}

/// The stack as it is served now.
#[derive(Debug)]
struct Served {
    stack: Stack,
    configs: Vec<FunctionConfig>,
    wiring: Wiring,
    emulator: Emulator,
}

impl Reloader {
    /// The stack as it is served now.
    pub fn stack(&self) -> Stack {
        self.lock().stack.clone()
    }

    /// What about `new` a [`Reloader::reload`] cannot apply (its shape changed), if anything.
    pub fn reload_check(&self, new: &Stack) -> Option<String> {
        shape_change(&self.lock().stack, new)
    }

    /// Serves `new` in place of the running stack when only functions' settings changed
    /// (environment, memory, timeout, code, handler, layers used, ...): each changed function
    /// gets new sandboxes with the new settings, as Lambda's `UpdateFunctionConfiguration`
    /// does, while the rest keep theirs. Anything else says [`Reload::Restart`] and changes
    /// nothing. The builds of changed functions must have run. A function that cannot run (its
    /// bootstrap missing) is an error, and nothing changes.
    pub fn reload(&self, new: &Stack) -> Result<Reload, Error> {
        let mut served = self.lock();
        if let Some(why) = shape_change(&served.stack, new) {
            return Ok(Reload::Restart(why));
        }
        let mut configs = Vec::with_capacity(new.functions.len());
        let mut changed = Vec::new();
        for ((before, config), f) in served
            .stack
            .functions
            .iter()
            .zip(&served.configs)
            .zip(&new.functions)
        {
            if before == f {
                configs.push(config.clone());
                continue;
            }
            let config = served.wiring.configure(new, f)?;
            check_executable(new, &config)?;
            changed.push(config.clone());
            configs.push(config);
        }
        for config in &changed {
            served.emulator.reconfigure(config.clone())?;
        }
        served.stack = new.clone();
        served.configs = configs;
        Ok(if changed.is_empty() {
            Reload::Unchanged
        } else {
            Reload::Reconfigured(changed.into_iter().map(|c| c.name).collect())
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What changed between `old` and `new` that a reload cannot apply, if anything.
fn shape_change(old: &Stack, new: &Stack) -> Option<String> {
    let names =
        |s: &Stack| -> Vec<String> { s.functions.iter().map(|f| f.config.name.clone()).collect() };
    if names(old) != names(new) {
        return Some(format!("the functions are now {}", names(new).join(", ")));
    }
    if let Some(f) = old
        .functions
        .iter()
        .zip(&new.functions)
        .find(|(a, b)| a.url != b.url)
    {
        return Some(format!("{}'s Function URL changed", f.1.config.name));
    }
    let api_names = |apis: &[crate::model::HttpApiSpec]| {
        apis.iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if old.http_apis != new.http_apis {
        return Some(format!("the APIs changed ({})", api_names(&new.http_apis)));
    }
    if old.websocket_apis != new.websocket_apis {
        return Some("the WebSocket APIs changed".into());
    }
    if old.tables != new.tables {
        return Some("the tables changed".into());
    }
    if old.queues != new.queues || old.sqs_mappings != new.sqs_mappings {
        return Some("the queues changed".into());
    }
    if old.schedules != new.schedules {
        return Some("the schedules changed".into());
    }
    if old.layers != new.layers {
        return Some("the layers changed".into());
    }
    if old.settings.region != new.settings.region
        || old.settings.account_id != new.settings.account_id
        || old.local_environment != new.local_environment
    {
        return Some("the region or account changed".into());
    }
    None
}

/// Runs the builds of the functions of a started stack that are still `Pending` (layers were
/// built before it started), one after another, making each function `Active` as soon as its
/// build is done and its bootstrap is there, or `Failed` (with the build's output reported):
/// the rest of the stack serves meanwhile.
///
/// Takes what it needs by value (the stack, a clone of [`Running::emulator`] and of
/// [`Running::functions`]) so that it can run as a task beside the servers.
pub async fn activate(
    stack: Stack,
    emulator: Emulator,
    functions: Vec<FunctionConfig>,
    report: Reporter,
) {
    use crate::build::{BuildState, tell};
    let steps = crate::build::function_steps(&stack);
    for name in steps.iter().flat_map(|s| &s.names) {
        tell(&emulator, name, BuildState::Building);
    }
    for step in steps {
        // A shared cargo build names each binary as it is linked: its function serves then.
        let started = std::time::Instant::now();
        let mut linked: Vec<PathBuf> = Vec::new();
        let mut early: Vec<String> = Vec::new();
        let built = crate::build::run_step_with(&step, &report, &mut |path| {
            linked.extend(std::fs::canonicalize(path));
            for config in functions.iter().filter(|c| step.names.contains(&c.name)) {
                let name = &config.name;
                let bootstrap = config.command.first().map(std::fs::canonicalize);
                let is_linked = matches!(&bootstrap, Some(Ok(b)) if linked.contains(b));
                if early.contains(name) || !is_linked || check_executable(&stack, config).is_err() {
                    continue;
                }
                emulator.set_state(name, State::Active);
                tell(&emulator, name, BuildState::Built);
                report.say(format!(
                    "built {name} in {:.1} s; {name} is ready",
                    started.elapsed().as_secs_f64()
                ));
                early.push(name.clone());
            }
        })
        .await;
        for name in step.names.iter().filter(|n| !early.contains(n)) {
            let Some(config) = functions.iter().find(|c| &c.name == name) else {
                continue;
            };
            let ready = match &built {
                Ok(()) => check_executable(&stack, config),
                Err(e) => Err(Error::Build {
                    name: name.clone(),
                    reason: e.to_string(),
                }),
            };
            // Cargo linked the bootstrap under another target dir (`CARGO_TARGET_DIR`, cargo's
            // `build.target-dir`): that is the executable the build made, served from there.
            let moved = match &ready {
                Err(_) if built.is_ok() => relocated(config, &linked)
                    .filter(|moved| check_executable(&stack, moved).is_ok())
                    .filter(|moved| emulator.reconfigure(moved.clone()).is_ok()),
                _ => None,
            };
            match (ready, moved) {
                (_, Some(moved)) => {
                    emulator.set_state(name, State::Active);
                    tell(&emulator, name, BuildState::Built);
                    report.say(format!(
                        "{name} is ready: cargo linked it under another target dir \
                         (CARGO_TARGET_DIR or cargo's build.target-dir): {} is served",
                        Path::new(moved.command.first().map_or("".as_ref(), |c| c.as_os_str()))
                            .display()
                    ));
                }
                (Ok(()), None) => {
                    emulator.set_state(name, State::Active);
                    tell(&emulator, name, BuildState::Built);
                    report.say(format!("{name} is ready"));
                }
                (Err(e), None) => {
                    emulator.set_state(name, State::Failed);
                    tell(&emulator, name, BuildState::Failed(&e.to_string()));
                    report.say(format!(
                        "{e}\n{name} is Failed: invocations get 409 ResourceConflictException \
                         until a build passes (`up --watch` rebuilds on change)"
                    ));
                }
            }
        }
    }
}

/// When `config`'s bootstrap or extensions are missing but the build linked executables of
/// their names elsewhere (`CARGO_TARGET_DIR` or cargo's `build.target-dir` moves cargo's
/// output): `config` with those executables in their place.
fn relocated(config: &FunctionConfig, linked: &[PathBuf]) -> Option<FunctionConfig> {
    let found = |path: &Path| -> Option<PathBuf> {
        if path.exists() {
            return None;
        }
        let name = path.file_name()?;
        linked.iter().find(|l| l.file_name() == Some(name)).cloned()
    };
    let mut moved = config.clone();
    let mut any = false;
    if let Some(bootstrap) = moved.command.first_mut()
        && let Some(path) = found(Path::new(bootstrap))
    {
        *bootstrap = path.into_os_string();
        any = true;
    }
    for extension in &mut moved.extensions {
        if let Some(path) = found(extension) {
            *extension = path;
            any = true;
        }
    }
    any.then_some(moved)
}

/// No two endpoints on one port, and none on the Invoke API's.
fn check_ports(stack: &Stack, listen: SocketAddr) -> Result<(), Error> {
    let mut seen: BTreeMap<u16, String> = BTreeMap::new();
    seen.insert(listen.port(), format!("the Invoke API (--listen {listen})"));
    for (port, owner) in stack.ports() {
        if let Some(other) = seen.insert(port, owner.clone()) {
            return Err(Error::invalid(
                &stack.source,
                Location::File,
                format!("{owner} and {other} both want port {port}"),
            ));
        }
    }
    Ok(())
}

/// A bootstrap or extension given as a path must exist and be executable; a bare name is looked
/// up in `PATH` when the sandbox starts. An in-process runtime has no bootstrap.
fn check_executable(stack: &Stack, config: &FunctionConfig) -> Result<(), Error> {
    let key = |what: &str| {
        let toml = stack.source.extension().is_some_and(|e| e == "toml");
        Location::path(if toml {
            format!("functions.{}.{what}", config.name)
        } else {
            format!("Resources.{}", config.name)
        })
    };
    let bootstrap = config
        .command
        .first()
        .map(PathBuf::from)
        .unwrap_or_default();
    let in_process = config.in_process.is_some() && config.command.is_empty();
    if !in_process && let Err(why) = executable(&bootstrap) {
        return Err(Error::invalid(
            &stack.source,
            key("bootstrap"),
            format!("bootstrap {why}"),
        ));
    }
    for extension in &config.extensions {
        if let Err(why) = executable(extension) {
            return Err(Error::invalid(
                &stack.source,
                key("extensions"),
                format!("extension {why}"),
            ));
        }
    }
    Ok(())
}

/// Checks one program path; the error says what is wrong with it.
pub fn executable(program: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if program.components().count() < 2 {
        return Ok(());
    }
    let meta = std::fs::metadata(program).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (is it built? `up` builds it unless --no-build)"
        } else {
            ""
        };
        format!("{}: {e}{hint}", program.display())
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", program.display()));
    }
    Ok(())
}

/// What a function of a template gets besides its own environment, unless it sets it: the
/// local Invoke API for SDK calls to sibling functions, the local DynamoDB, `AWS_SAM_LOCAL`
/// (which code written for SAM checks), and credentials when the user's environment has none,
/// so SDK clients aimed at local endpoints work with no set-up.
fn local_environment(
    env: &mut BTreeMap<String, String>,
    invoke: SocketAddr,
    dynamodb: Option<&str>,
) {
    let mut set = |key: &str, value: String| {
        env.entry(key.to_owned()).or_insert(value);
    };
    set("AWS_ENDPOINT_URL_LAMBDA", format!("http://{invoke}"));
    set("AWS_SAM_LOCAL", "true".into());
    if let Some(endpoint) = dynamodb {
        set("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_owned());
    }
    let has_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some()
        || std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    if !has_credentials {
        set("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY_ID.into());
        set("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_ACCESS_KEY.into());
        set("AWS_SESSION_TOKEN", LOCAL_SESSION_TOKEN.into());
    }
}

/// The keys a Function URL with `AWS_IAM` auth accepts: the pair functions get when
/// coldstart's environment has none, and `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from
/// that environment.
fn url_credentials() -> Vec<LocalKey> {
    let mut keys = vec![LocalKey::coldstart()];
    if let (Ok(access_key_id), Ok(secret_access_key)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) && access_key_id != LOCAL_ACCESS_KEY_ID
    {
        keys.push(LocalKey {
            access_key_id,
            secret_access_key,
            user: "coldstart-environment".into(),
        });
    }
    keys
}

/// `value` with every AWS address of a local endpoint replaced by the local one.
fn rewrite(value: &str, rewrites: &[(String, String)]) -> String {
    let mut out = value.to_owned();
    for (aws, local) in rewrites {
        if out.contains(aws.as_str()) {
            out = out.replace(aws.as_str(), local);
        }
    }
    out
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Io {
        what: "reading a listener's address".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_cargo_linked_elsewhere_is_served_from_there() {
        let linked = [PathBuf::from("/elsewhere/local/echo")];
        let missing = FunctionConfig::new("echo", vec!["/app/target/local/echo".into()]);
        let moved = relocated(&missing, &linked).map(|c| c.command);
        assert_eq!(moved, Some(vec!["/elsewhere/local/echo".into()]));
        let other = FunctionConfig::new("web", vec!["/app/target/local/web".into()]);
        assert!(
            relocated(&other, &linked).is_none(),
            "no executable of that name"
        );
        let present = FunctionConfig::new("sh", vec!["/bin/sh".into()]);
        assert!(
            relocated(&present, &[PathBuf::from("/x/sh")]).is_none(),
            "it is there"
        );
        // An extension built beside it moves too.
        let mut adapted = FunctionConfig::new("web", vec!["/bin/sh".into()]);
        adapted.extensions = vec!["/app/target/local/coldstart-adapter".into()];
        let linked = [PathBuf::from("/elsewhere/local/coldstart-adapter")];
        let moved = relocated(&adapted, &linked).map(|c| (c.command, c.extensions));
        assert_eq!(
            moved,
            Some((
                vec!["/bin/sh".into()],
                vec![PathBuf::from("/elsewhere/local/coldstart-adapter")]
            ))
        );
    }

    #[test]
    fn aws_addresses_of_local_endpoints_become_local_urls() {
        let rewrites = vec![
            (
                "https://abc.execute-api.us-east-1.amazonaws.com".to_owned(),
                "http://127.0.0.1:3001".to_owned(),
            ),
            (
                "wss://abc.execute-api.us-east-1.amazonaws.com".to_owned(),
                "ws://127.0.0.1:3001".to_owned(),
            ),
        ];
        assert_eq!(
            rewrite(
                "https://abc.execute-api.us-east-1.amazonaws.com/staging",
                &rewrites
            ),
            "http://127.0.0.1:3001/staging"
        );
        assert_eq!(
            rewrite(
                "wss://abc.execute-api.us-east-1.amazonaws.com/staging",
                &rewrites
            ),
            "ws://127.0.0.1:3001/staging"
        );
        assert_eq!(
            rewrite(
                "https://other.execute-api.us-east-1.amazonaws.com/",
                &rewrites
            ),
            "https://other.execute-api.us-east-1.amazonaws.com/"
        );
    }

    #[test]
    fn a_function_that_sets_its_own_endpoint_keeps_it() {
        let mut env = BTreeMap::from([(
            "AWS_ENDPOINT_URL_LAMBDA".to_owned(),
            "http://elsewhere:1".to_owned(),
        )]);
        local_environment(
            &mut env,
            SocketAddr::from(([127, 0, 0, 1], 9000)),
            Some("http://127.0.0.1:8000"),
        );
        assert_eq!(env["AWS_ENDPOINT_URL_LAMBDA"], "http://elsewhere:1");
        assert_eq!(env["AWS_ENDPOINT_URL_DYNAMODB"], "http://127.0.0.1:8000");
        assert_eq!(env["AWS_SAM_LOCAL"], "true");
    }
}

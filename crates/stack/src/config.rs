//! The `coldstart.toml` reader: functions, Function URLs, HTTP APIs and WebSocket APIs, as a
//! [`Stack`].
//!
//! Every mistake is reported with the file, line and key it is at. One function per section
//! reads it; `parse` puts them together.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use coldstart_emulator::{FunctionConfig, config as limits};

use crate::error::{Error, Location};
use crate::managed::{self, Managed};
use crate::model::{Build, FunctionSpec, HttpApiSpec, Stack, UrlSpec, WebSocketApiSpec};
use crate::{api_table, auth_table};

/// The stage of a WebSocket API that names none.
pub const DEFAULT_STAGE: &str = "dev";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    functions: BTreeMap<String, Spanned<FunctionToml>>,
    #[serde(default)]
    http_apis: BTreeMap<String, Spanned<HttpApiToml>>,
    #[serde(default)]
    websocket_apis: BTreeMap<String, Spanned<WebSocketApiToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebSocketApiToml {
    port: Spanned<i64>,
    stage: Option<Spanned<String>>,
    route_selection: Option<String>,
    #[serde(default)]
    routes: BTreeMap<String, Spanned<WsRouteToml>>,
    idle_timeout: Option<Spanned<i64>>,
    max_duration: Option<Spanned<i64>>,
    connect_authorizer: Option<Spanned<auth_table::AuthorizerToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WsRouteToml {
    Function(String),
    Route {
        function: String,
        #[serde(default)]
        two_way: bool,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionToml {
    build: Option<String>,
    bootstrap: Option<Spanned<Bootstrap>>,
    /// A managed runtime (`python3.12`, `nodejs20.x`): no bootstrap, the handler runs on its client.
    runtime: Option<Spanned<String>>,
    /// A managed runtime's code folder. Default: the config's folder.
    code: Option<String>,
    handler: Option<String>,
    timeout: Option<Spanned<i64>>,
    memory: Option<Spanned<i64>>,
    concurrency: Option<Spanned<i64>>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    extensions: Option<Spanned<Vec<String>>>,
    sandbox_port: Option<bool>,
    idle_timeout: Option<Spanned<i64>>,
    watch: Option<Vec<String>>,
    url: Option<Spanned<UrlToml>>,
    #[serde(rename = "async")]
    async_invoke: Option<Spanned<AsyncToml>>,
    logging: Option<Spanned<LoggingToml>>,
    schedule: Option<Spanned<crate::schedule_table::ScheduleToml>>,
    sqs: Option<Spanned<crate::queue_table::SqsToml>>,
    /// Invocations one execution environment runs at once (Lambda Managed Instances).
    max_concurrency: Option<Spanned<i64>>,
}

/// A function's `LoggingConfig`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggingToml {
    format: Option<String>,
    application_log_level: Option<String>,
    system_log_level: Option<String>,
}

/// A function's asynchronous invocation settings (`EventInvokeConfig`, `DeadLetterConfig`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AsyncToml {
    max_retry_attempts: Option<i64>,
    max_event_age: Option<i64>,
    on_success: Option<String>,
    on_failure: Option<String>,
    dead_letter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Bootstrap {
    Path(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlToml {
    port: Spanned<i64>,
    invoke_mode: Option<Spanned<String>>,
    auth_type: Option<Spanned<String>>,
    cors: Option<Spanned<api_table::CorsToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpApiToml {
    port: Spanned<i64>,
    payload_version: Option<Spanned<String>>,
    #[serde(default)]
    routes: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    stage_variables: BTreeMap<String, Spanned<String>>,
    cors: Option<Spanned<api_table::CorsToml>>,
    throttle: Option<Spanned<api_table::ThrottleToml>>,
    #[serde(default)]
    route_throttle: BTreeMap<String, Spanned<api_table::ThrottleToml>>,
    #[serde(default)]
    authorizers: BTreeMap<String, Spanned<auth_table::AuthorizerToml>>,
    default_authorizer: Option<Spanned<String>>,
    #[serde(default)]
    route_auth: BTreeMap<String, Spanned<auth_table::RouteAuthToml>>,
    integration_timeout: Option<Spanned<i64>>,
    /// `ResponseTransferMode` of every route's integration: `BUFFERED` or `STREAM` (REST APIs).
    response_transfer_mode: Option<Spanned<String>>,
    /// Route key → its own `ResponseTransferMode`, over `response_transfer_mode`.
    #[serde(default)]
    route_transfer_mode: BTreeMap<String, Spanned<String>>,
}

/// `AllowOrigins` as this file spells it: `allow_origins`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Reads and checks the config at `path`.
pub fn load(path: &Path) -> Result<Stack, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(path, Location::File, format!("cannot read the config: {e}"))
    })?;
    let root = Stack::folder_of(path);
    let mut stack = parse(path, &text, &root)?;
    stack.source = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(stack)
}

/// Reads a config's text; `file` names it in errors, `root` is its folder.
pub fn parse(file: &Path, text: &str, root: &Path) -> Result<Stack, Error> {
    let at = |span: Range<usize>, message: String| locate(file, text, span, message);
    let parsed: FileToml = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_owned();
        at(e.span().unwrap_or(0..0), message)
    })?;

    let mut ports: HashMap<u16, String> = HashMap::new();
    let mut claim = |port: &Spanned<i64>, owner: String| -> Result<u16, Error> {
        let value = *port.get_ref();
        let Ok(p) = u16::try_from(value) else {
            return Err(at(
                port.span(),
                format!("{owner}.port: {value} is not a TCP port"),
            ));
        };
        // Port 0 takes any free port (the endpoint table shows which).
        if p == 0 {
            return Ok(p);
        }
        if let Some(other) = ports.insert(p, owner.clone()) {
            return Err(at(
                port.span(),
                format!("{owner}.port: port {p} is already used by {other}"),
            ));
        }
        Ok(p)
    };

    let mut functions = Vec::new();
    let mut notices = Vec::new();
    let mut schedules = Vec::new();
    let mut queues: Vec<crate::model::QueueSpec> = Vec::new();
    let mut sqs_mappings = Vec::new();
    for (name, entry) in &parsed.functions {
        let key = format!("functions.{name}");
        let span = entry.span();
        let f = entry.get_ref();
        let managed = match (&f.runtime, &f.bootstrap) {
            (Some(runtime), None) => {
                let Some(kind) = Managed::parse(runtime.get_ref()) else {
                    return Err(at(
                        runtime.span(),
                        format!(
                            "{key}.runtime: {} is not one coldstart runs without a bootstrap ({})",
                            runtime.get_ref(),
                            managed::MANAGED_RUNTIMES
                        ),
                    ));
                };
                let Some(handler) = &f.handler else {
                    return Err(at(
                        span,
                        format!(
                            "{key}.handler: a {} function needs a handler ({})",
                            runtime.get_ref(),
                            kind.handler_shape()
                        ),
                    ));
                };
                if f.build.is_some() {
                    return Err(at(
                        span,
                        format!(
                            "{key}.build: a {} function's build is its installs (requirements.txt or package.json beside its code)",
                            runtime.get_ref()
                        ),
                    ));
                }
                let code = root.join(f.code.as_deref().unwrap_or("."));
                match managed::managed_function(&kind, &code, handler, None) {
                    Ok((function, lines)) => {
                        notices.extend(lines.into_iter().map(|line| format!("{name}: {line}")));
                        Some((code, function))
                    }
                    Err(line) => {
                        notices.push(format!(
                            "{name}: runtime {line}; the other functions are served"
                        ));
                        continue;
                    }
                }
            }
            (Some(runtime), Some(_)) => {
                return Err(at(
                    runtime.span(),
                    format!("{key}: either a bootstrap or a runtime, not both"),
                ));
            }
            (None, None) => {
                return Err(at(
                    span,
                    format!(
                        "{key}: a function needs a bootstrap (or a runtime such as python3.12 and a handler)"
                    ),
                ));
            }
            (None, Some(_)) => None,
        };
        let command: Vec<OsString> = match f.bootstrap.as_ref().map(Spanned::get_ref) {
            None => managed
                .as_ref()
                .map(|(_, p)| p.argv.iter().map(OsString::from).collect())
                .unwrap_or_default(),
            Some(Bootstrap::Path(p)) => vec![root.join(p).into_os_string()],
            Some(Bootstrap::Argv(argv)) if argv.is_empty() => {
                return Err(at(
                    f.bootstrap.as_ref().map_or(span.clone(), Spanned::span),
                    format!("{key}.bootstrap: the argv is empty"),
                ));
            }
            Some(Bootstrap::Argv(argv)) => {
                let program = Path::new(&argv[0]);
                let first = if program.components().count() > 1 {
                    root.join(program).into_os_string()
                } else {
                    OsString::from(&argv[0])
                };
                std::iter::once(first)
                    .chain(argv[1..].iter().map(OsString::from))
                    .collect()
            }
        };
        let mut config = FunctionConfig::new(name.clone(), command);
        config.handler = f.handler.clone();
        config.environment = f.environment.clone();
        if let Some((code, function)) = &managed {
            config.task_root = Some(code.clone());
            config
                .environment
                .extend(function.environment.iter().cloned());
        }
        if let Some(t) = &f.timeout {
            let secs = *t.get_ref();
            if !(1..=900).contains(&secs) {
                return Err(at(
                    t.span(),
                    format!("{key}.timeout: must be 1 to 900 seconds, not {secs}"),
                ));
            }
            config.timeout = Duration::from_secs(secs as u64);
        }
        if let Some(m) = &f.memory {
            let mb = *m.get_ref();
            if !(i64::from(limits::MIN_MEMORY_MB)..=i64::from(limits::MAX_MEMORY_MB)).contains(&mb)
            {
                return Err(at(
                    m.span(),
                    format!("{key}.memory: must be 128 to 10240 MB, not {mb}"),
                ));
            }
            config.memory_mb = mb as u32;
        }
        if let Some(c) = &f.concurrency {
            let n = *c.get_ref();
            if !(1..=1000).contains(&n) {
                return Err(at(
                    c.span(),
                    format!("{key}.concurrency: must be 1 to 1000, not {n}"),
                ));
            }
            config.concurrency = n as usize;
        }
        if let Some(c) = &f.max_concurrency {
            let n = *c.get_ref();
            let most = coldstart_emulator::MAX_CONCURRENCY_PER_ENVIRONMENT as i64;
            if !(1..=most).contains(&n) {
                return Err(at(
                    c.span(),
                    format!("{key}.max_concurrency: must be 1 to {most}, not {n}"),
                ));
            }
            config.max_concurrency = n as usize;
        }
        if let Some(t) = &f.idle_timeout {
            let secs = *t.get_ref();
            if secs < 1 {
                return Err(at(
                    t.span(),
                    format!("{key}.idle_timeout: must be at least 1 second, not {secs}"),
                ));
            }
            config.idle_timeout = Duration::from_secs(secs as u64);
        }
        if let Some(a) = &f.async_invoke {
            let span = a.span();
            let a = a.get_ref();
            if let Some(n) = a.max_retry_attempts {
                if !(0..=2).contains(&n) {
                    return Err(at(
                        span,
                        format!("{key}.async.max_retry_attempts: must be 0, 1 or 2, not {n}"),
                    ));
                }
                config.async_config.max_retry_attempts = n as u32;
            }
            if let Some(secs) = a.max_event_age {
                if !(60..=21_600).contains(&secs) {
                    return Err(at(
                        span,
                        format!(
                            "{key}.async.max_event_age: must be 60 to 21600 seconds, not {secs}"
                        ),
                    ));
                }
                config.async_config.max_event_age = Duration::from_secs(secs as u64);
            }
            config.async_config.on_success = a.on_success.clone();
            config.async_config.on_failure = a.on_failure.clone();
            config.async_config.dead_letter = a.dead_letter.clone();
        }
        if let Some(l) = &f.logging {
            let span = l.span();
            let l = l.get_ref();
            config.log_format = match l.format.as_deref() {
                None | Some("Text") => coldstart_emulator::LogFormat::Text,
                Some("JSON") => coldstart_emulator::LogFormat::Json,
                Some(other) => {
                    return Err(at(
                        span,
                        format!(
                            "{key}.logging.format: must be \"Text\" or \"JSON\", not {other:?}"
                        ),
                    ));
                }
            };
            let level = |name: &str, value: &Option<String>| match value.as_deref() {
                None => Ok(None),
                Some(text) => coldstart_emulator::LogLevel::parse(text)
                    .map(Some)
                    .ok_or_else(|| {
                        at(
                            span.clone(),
                            format!("{key}.logging.{name}: not a log level: {text:?}"),
                        )
                    }),
            };
            config.application_log_level =
                level("application_log_level", &l.application_log_level)?;
            config.system_log_level = level("system_log_level", &l.system_log_level)?;
        }
        if let Some(extensions) = &f.extensions {
            if extensions.get_ref().len() > coldstart_protocol::extension::MAX_EXTENSIONS {
                return Err(at(
                    extensions.span(),
                    format!(
                        "{key}.extensions: at most {} extensions, not {}",
                        coldstart_protocol::extension::MAX_EXTENSIONS,
                        extensions.get_ref().len()
                    ),
                ));
            }
            config.extensions = extensions.get_ref().iter().map(|p| root.join(p)).collect();
        }
        config.sandbox_port = f
            .sandbox_port
            .unwrap_or_else(|| wants_sandbox_port(&config));
        config
            .validate()
            .map_err(|e| at(span.clone(), format!("{key}: {e}")))?;
        let url = match &f.url {
            None => None,
            Some(url) => {
                let u = url.get_ref();
                let mode = match u.invoke_mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
                    None | Some((_, "BUFFERED")) => coldstart_emulator::InvokeMode::Buffered,
                    Some((_, "RESPONSE_STREAM")) => coldstart_emulator::InvokeMode::ResponseStream,
                    Some((m, other)) => {
                        return Err(at(
                            m.span(),
                            format!(
                                "{key}.url.invoke_mode: must be BUFFERED or RESPONSE_STREAM, not {other}"
                            ),
                        ));
                    }
                };
                let auth_type = match u.auth_type.as_ref().map(|a| (a, a.get_ref().as_str())) {
                    None | Some((_, "NONE")) => coldstart_emulator::UrlAuthType::None,
                    Some((_, "AWS_IAM")) => coldstart_emulator::UrlAuthType::AwsIam,
                    Some((a, other)) => {
                        return Err(at(
                            a.span(),
                            format!("{key}.url.auth_type: must be NONE or AWS_IAM, not {other}"),
                        ));
                    }
                };
                let cors = match &u.cors {
                    None => None,
                    Some(c) => {
                        let t = c.get_ref();
                        let cors = coldstart_emulator::UrlCors {
                            allow_origins: t.allow_origins.clone(),
                            allow_methods: t.allow_methods.clone(),
                            allow_headers: t.allow_headers.clone(),
                            expose_headers: t.expose_headers.clone(),
                            allow_credentials: t.allow_credentials,
                            max_age: t.max_age.as_ref().map(|m| *m.get_ref()),
                        };
                        cors.check().map_err(|(field, message)| {
                            at(
                                c.span(),
                                format!("{key}.url.cors.{}: {message}", snake_case(field)),
                            )
                        })?;
                        Some(cors)
                    }
                };
                Some(UrlSpec {
                    port: claim(&u.port, format!("{key}.url"))?,
                    invoke_mode: mode,
                    aws_host: None,
                    auth_type,
                    cors,
                })
            }
        };
        let watch = match (&f.watch, &f.build) {
            (Some(paths), _) => paths.iter().map(|p| root.join(p)).collect(),
            (None, Some(_)) => vec![root.to_path_buf()],
            (None, None) if managed.is_some() => {
                managed.iter().map(|(code, _)| code.clone()).collect()
            }
            (None, None) => {
                let bootstrap = Path::new(&config.command[0]);
                vec![
                    bootstrap
                        .parent()
                        .map_or_else(|| root.to_path_buf(), Path::to_path_buf),
                ]
            }
        };
        if let Some(schedule) = &f.schedule {
            schedules.push(crate::schedule_table::schedule(&key, name, schedule, &at)?);
        }
        if let Some(sqs) = &f.sqs {
            let (new, mapping) = crate::queue_table::sqs(&key, name, sqs, &at)?;
            for q in new {
                match queues.iter_mut().find(|known| known.id == q.id) {
                    // A queue two functions name: the settings one gives win over none.
                    Some(known) => {
                        known.visibility_timeout =
                            known.visibility_timeout.or(q.visibility_timeout);
                        known.dead_letter = known.dead_letter.clone().or(q.dead_letter);
                    }
                    None => queues.push(q),
                }
            }
            sqs_mappings.push(mapping);
        }
        functions.push(FunctionSpec {
            config,
            build: match &managed {
                Some((_, managed)) => Some(managed.build.clone()),
                None => f.build.as_ref().map(|command| Build::Command {
                    command: command.clone(),
                    dir: root.to_path_buf(),
                }),
            },
            url,
            watch,
            layers: Vec::new(),
        });
    }

    let mut http_apis = Vec::new();
    for (name, entry) in &parsed.http_apis {
        let key = format!("http_apis.{name}");
        let api = entry.get_ref();
        let port = claim(&api.port, key.clone())?;
        let payload_version = match api.payload_version.as_ref() {
            None => coldstart_emulator::PayloadVersion::V2,
            Some(v) => match v.get_ref().as_str() {
                "2.0" => coldstart_emulator::PayloadVersion::V2,
                "1.0" => coldstart_emulator::PayloadVersion::V1,
                other => {
                    return Err(at(
                        v.span(),
                        format!("{key}.payload_version: must be \"1.0\" or \"2.0\", not {other:?}"),
                    ));
                }
            },
        };
        let mut routes = Vec::new();
        for (route, target) in &api.routes {
            if let Err(why) = coldstart_emulator::RouteKey::parse(route) {
                return Err(at(target.span(), format!("{key}.routes: {why}")));
            }
            if !parsed.functions.contains_key(target.get_ref()) {
                return Err(at(
                    target.span(),
                    format!(
                        "{key}.routes.{route:?}: no function named {:?}",
                        target.get_ref()
                    ),
                ));
            }
            routes.push((route.clone(), target.get_ref().clone()));
        }
        let kind = if payload_version == coldstart_emulator::PayloadVersion::V1 {
            auth_table::ApiKind::Rest
        } else {
            auth_table::ApiKind::Http
        };
        let function_names: Vec<&String> = parsed.functions.keys().collect();
        let authorizers = api
            .authorizers
            .iter()
            .map(|(n, a)| {
                auth_table::authorizer(
                    &format!("{key}.authorizers.{n}"),
                    n,
                    a,
                    kind,
                    &function_names,
                    &at,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let route_auth = auth_table::route_auth(
            &key,
            &routes,
            &authorizers,
            api.default_authorizer.as_ref(),
            &api.route_auth,
            &at,
        )?;
        let timeouts = match &api.integration_timeout {
            None => Vec::new(),
            Some(ms) => match u64::try_from(*ms.get_ref()) {
                Ok(n) if (50..=30_000).contains(&n) => routes
                    .iter()
                    .map(|(r, _)| (r.clone(), Duration::from_millis(n)))
                    .collect(),
                _ => {
                    return Err(at(
                        ms.span(),
                        format!(
                            "{key}.integration_timeout: must be 50 to 30000 milliseconds, not {}",
                            ms.get_ref()
                        ),
                    ));
                }
            },
        };
        let rest = payload_version == coldstart_emulator::PayloadVersion::V1;
        let streamed = api_table::streamed(
            &key,
            rest,
            &routes,
            api.response_transfer_mode.as_ref(),
            &api.route_transfer_mode,
            &at,
        )?;
        http_apis.push(HttpApiSpec {
            name: name.clone(),
            port,
            payload_version,
            rest: payload_version == coldstart_emulator::PayloadVersion::V1,
            stage: "$default".to_owned(),
            routes,
            aws_host: None,
            cors: api_table::cors(&key, api.cors.as_ref(), &at)?,
            stage_variables: api_table::stage_variables(&key, &api.stage_variables, &at)?,
            throttle: api_table::throttle(&key, api.throttle.as_ref(), &api.route_throttle, &at)?,
            authorizers,
            route_auth,
            timeouts,
            streamed,
        });
    }
    let mut websocket_apis = Vec::new();
    for (name, entry) in &parsed.websocket_apis {
        let key = format!("websocket_apis.{name}");
        let api = entry.get_ref();
        let port = claim(&api.port, key.clone())?;
        let stage = match &api.stage {
            None => DEFAULT_STAGE.to_owned(),
            Some(stage) => {
                let ok = !stage.get_ref().is_empty()
                    && stage
                        .get_ref()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(at(
                        stage.span(),
                        format!(
                            "{key}.stage: a stage name is letters, digits, '-' and '_', not {:?}",
                            stage.get_ref()
                        ),
                    ));
                }
                stage.get_ref().clone()
            }
        };
        let seconds = |value: &Option<Spanned<i64>>, what: &str| match value {
            None => Ok(None),
            Some(v) if *v.get_ref() >= 1 => Ok(Some(Duration::from_secs(*v.get_ref() as u64))),
            Some(v) => Err(at(
                v.span(),
                format!(
                    "{key}.{what}: must be at least 1 second, not {}",
                    v.get_ref()
                ),
            )),
        };
        let idle_timeout = seconds(&api.idle_timeout, "idle_timeout")?;
        let max_duration = seconds(&api.max_duration, "max_duration")?;
        let mut routes = Vec::new();
        for (route, target) in &api.routes {
            let (function, two_way) = match target.get_ref() {
                WsRouteToml::Function(f) => (f, false),
                WsRouteToml::Route { function, two_way } => (function, *two_way),
            };
            if route.is_empty() {
                return Err(at(target.span(), format!("{key}.routes: empty route key")));
            }
            if !parsed.functions.contains_key(function) {
                return Err(at(
                    target.span(),
                    format!("{key}.routes.{route:?}: no function named {function:?}"),
                ));
            }
            routes.push((route.clone(), function.clone(), two_way));
        }
        websocket_apis.push(WebSocketApiSpec {
            name: name.clone(),
            port,
            stage,
            route_selection: api
                .route_selection
                .clone()
                .unwrap_or_else(|| "$request.body.action".to_owned()),
            routes,
            idle_timeout,
            max_duration,
            aws_host: None,
            connect_authorizer: match &api.connect_authorizer {
                None => None,
                Some(a) => Some(auth_table::authorizer(
                    &format!("{key}.connect_authorizer"),
                    "connect",
                    a,
                    auth_table::ApiKind::WebSocket,
                    &parsed.functions.keys().collect::<Vec<_>>(),
                    &at,
                )?),
            },
        });
    }
    Ok(Stack {
        source: file.to_path_buf(),
        root: root.to_path_buf(),
        functions,
        http_apis,
        websocket_apis,
        notices,
        schedules,
        queues,
        sqs_mappings,
        ..Stack::default()
    })
}

/// Whether a function looks like a web app that listens on a port of its own: it has
/// extensions, names `PORT` or `AWS_LWA_PORT`, or runs `coldstart-adapter`. Such functions get a
/// port per sandbox unless `sandbox_port = false`.
pub fn wants_sandbox_port(config: &FunctionConfig) -> bool {
    use coldstart_protocol::env;
    let adapter = |p: &OsString| {
        Path::new(p)
            .file_name()
            .is_some_and(|n| n == "coldstart-adapter")
    };
    !config.extensions.is_empty()
        || config.environment.contains_key(env::PORT)
        || config.environment.contains_key(env::LWA_PORT)
        || config.command.iter().take(1).any(adapter)
}

/// Turns a byte span into a line and column (1-based).
fn locate(file: &Path, text: &str, span: Range<usize>, message: String) -> Error {
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = start - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Error::invalid(file, Location::Span { line, column }, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn load_str(text: &str) -> Result<Stack, String> {
        parse(Path::new("coldstart.toml"), text, Path::new("/app")).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[functions.echo]
build = "cargo build --release -p echo"
bootstrap = "target/release/echo"
timeout = 5
memory = 256
concurrency = 2
max_concurrency = 8
environment = { RUST_LOG = "info" }
url = { port = 9001, invoke_mode = "BUFFERED" }

[functions.bash]
bootstrap = ["examples/bash/bootstrap", "--flag"]
handler = "function.handler"
idle_timeout = 60
watch = ["examples/bash"]
async = { max_retry_attempts = 1, max_event_age = 120, on_failure = "echo", dead_letter = "arn:aws:sqs:us-east-1:123456789012:dlq" }
logging = { format = "JSON", application_log_level = "debug", system_log_level = "WARN" }

[functions.web]
bootstrap = "target/release/web"
extensions = ["target/release/coldstart-adapter"]

[http_apis.api]
port = 9100
payload_version = "2.0"
routes = { "GET /hello" = "echo", "$default" = "bash" }

[websocket_apis.chat]
port = 9200
stage = "staging"
route_selection = "$request.body.action"
idle_timeout = 30
routes = { "$connect" = "echo", "$default" = { function = "echo", two_way = true } }
"#;

    #[test]
    fn a_python_function_needs_a_runtime_and_a_handler_and_no_bootstrap() {
        let stack = load_str(
            r#"
[functions.py]
runtime = "python3.11"
handler = "app.handler"
code = "src"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let py = &stack.functions[0];
        assert_eq!(
            py.config.command[1..],
            ["-m", "awslambdaric", "app.handler"]
        );
        assert_eq!(py.config.task_root.as_deref(), Some(Path::new("/app/src")));
        assert!(
            py.config.environment["PYTHONPATH"].starts_with("/app/src:"),
            "{:?}",
            py.config.environment
        );
        assert!(matches!(py.build, Some(Build::Pip { .. })));
        assert_eq!(py.watch, vec![PathBuf::from("/app/src")]);

        for (text, expected) in [
            (
                "[functions.py]\nruntime = \"python3.11\"\n",
                "functions.py.handler: a python3.11 function needs a handler",
            ),
            (
                "[functions.js]\nruntime = \"nodejs20.x\"\n",
                "functions.js.handler: a nodejs20.x function needs a handler (file.function)",
            ),
            (
                "[functions.js]\nruntime = \"nodejs20.x\"\nhandler = \"a.b\"\nbuild = \"npm ci\"\n",
                "functions.js.build: a nodejs20.x function's build is its installs",
            ),
            (
                "[functions.py]\nruntime = \"nodejs12.x\"\nhandler = \"a.b\"\n",
                "functions.py.runtime: nodejs12.x is not one coldstart runs",
            ),
            (
                "[functions.py]\nruntime = \"python3.11\"\nhandler = \"a.b\"\nbootstrap = \"x\"\n",
                "functions.py: either a bootstrap or a runtime, not both",
            ),
            (
                "[functions.py]\nhandler = \"a.b\"\n",
                "functions.py: a function needs a bootstrap",
            ),
        ] {
            let err = load_str(text)
                .err()
                .unwrap_or_else(|| panic!("accepted {text}"));
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn reads_every_documented_key() {
        let config = load_str(GOOD).unwrap_or_else(|e| panic!("{e}"));
        let echo = &config.functions[1];
        assert_eq!(echo.config.name, "echo");
        assert_eq!(
            echo.config.command,
            vec![OsString::from("/app/target/release/echo")]
        );
        assert_eq!(echo.config.timeout, Duration::from_secs(5));
        assert_eq!(echo.config.memory_mb, 256);
        assert_eq!(echo.config.concurrency, 2);
        assert_eq!(echo.config.max_concurrency, 8);
        assert_eq!(
            echo.config.environment.get("RUST_LOG").map(String::as_str),
            Some("info")
        );
        assert_eq!(
            echo.build,
            Some(Build::Command {
                command: "cargo build --release -p echo".into(),
                dir: PathBuf::from("/app")
            })
        );
        assert_eq!(
            echo.url.as_ref().map(|u| (u.port, u.invoke_mode)),
            Some((9001, coldstart_emulator::InvokeMode::Buffered))
        );
        let bash = &config.functions[0];
        assert_eq!(
            bash.config.command,
            vec![
                OsString::from("/app/examples/bash/bootstrap"),
                OsString::from("--flag")
            ]
        );
        assert_eq!(bash.config.handler.as_deref(), Some("function.handler"));
        assert_eq!(bash.config.idle_timeout, Duration::from_secs(60));
        let a = &bash.config.async_config;
        assert_eq!(a.max_retry_attempts, 1);
        assert_eq!(a.max_event_age, Duration::from_secs(120));
        assert_eq!(a.on_failure.as_deref(), Some("echo"));
        assert_eq!(a.on_success, None);
        assert_eq!(
            a.dead_letter.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:dlq")
        );
        assert_eq!(bash.config.log_format, coldstart_emulator::LogFormat::Json);
        assert_eq!(
            bash.config.log_levels(),
            Some((
                coldstart_emulator::LogLevel::Debug,
                coldstart_emulator::LogLevel::Warn
            ))
        );
        assert_eq!(echo.config.log_levels(), None, "text unless asked");
        assert_eq!(bash.watch, vec![PathBuf::from("/app/examples/bash")]);
        assert_eq!(echo.watch, vec![PathBuf::from("/app")]);
        assert_eq!(bash.config.timeout, Duration::from_secs(3));
        let api = &config.http_apis[0];
        assert_eq!(api.port, 9100);
        assert_eq!(api.routes.len(), 2);
        assert!(!echo.config.sandbox_port);
        let web = &config.functions[2];
        assert_eq!(
            web.config.extensions,
            vec![PathBuf::from("/app/target/release/coldstart-adapter")]
        );
        assert!(
            web.config.sandbox_port,
            "a function with extensions gets a port per sandbox"
        );
        let ws = &config.websocket_apis[0];
        assert_eq!((ws.port, ws.stage.as_str()), (9200, "staging"));
        assert_eq!(ws.route_selection, "$request.body.action");
        assert_eq!(ws.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            ws.routes,
            vec![
                ("$connect".to_owned(), "echo".to_owned(), false),
                ("$default".to_owned(), "echo".to_owned(), true)
            ]
        );
        assert_eq!(config.ports().len(), 3);
    }

    fn error_of(text: &str) -> String {
        match load_str(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_mistake_names_file_line_and_key() {
        let unknown = error_of("[functions.a]\nbootstrap = \"b\"\ntimeuot = 3\n");
        assert!(
            unknown.starts_with("coldstart.toml:3:1:") && unknown.contains("timeuot"),
            "{unknown}"
        );

        let range = error_of("[functions.a]\nbootstrap = \"b\"\ntimeout = 901\n");
        assert!(
            range.starts_with("coldstart.toml:3:11:") && range.contains("functions.a.timeout"),
            "{range}"
        );

        let memory = error_of("[functions.a]\nbootstrap = \"b\"\nmemory = 64\n");
        assert!(
            memory.starts_with("coldstart.toml:3:") && memory.contains("functions.a.memory"),
            "{memory}"
        );

        let per_environment = error_of("[functions.a]\nbootstrap = \"b\"\nmax_concurrency = 0\n");
        assert!(
            per_environment.starts_with("coldstart.toml:3:")
                && per_environment.contains("functions.a.max_concurrency: must be 1 to 1600"),
            "{per_environment}"
        );

        let retries =
            error_of("[functions.a]\nbootstrap = \"b\"\nasync = { max_retry_attempts = 3 }\n");
        assert!(
            retries.starts_with("coldstart.toml:3:")
                && retries.contains("functions.a.async.max_retry_attempts"),
            "{retries}"
        );

        let format =
            error_of("[functions.a]\nbootstrap = \"b\"\nlogging = { format = \"YAML\" }\n");
        assert!(
            format.starts_with("coldstart.toml:3:")
                && format.contains("functions.a.logging.format"),
            "{format}"
        );
        let level = error_of(
            "[functions.a]\nbootstrap = \"b\"\nlogging = { format = \"JSON\", system_log_level = \"LOUD\" }\n",
        );
        assert!(
            level.contains("functions.a.logging.system_log_level"),
            "{level}"
        );
        let text = error_of(
            "[functions.a]\nbootstrap = \"b\"\nlogging = { application_log_level = \"ERROR\" }\n",
        );
        assert!(text.contains("need LogFormat JSON"), "{text}");
        let system = error_of(
            "[functions.a]\nbootstrap = \"b\"\nlogging = { format = \"JSON\", system_log_level = \"ERROR\" }\n",
        );
        assert!(system.contains("DEBUG, INFO or WARN"), "{system}");

        let missing = error_of(
            "[functions.a]\nbootstrap = \"b\"\n[http_apis.api]\nport = 9100\nroutes = { \"GET /x\" = \"nope\" }\n",
        );
        assert!(
            missing.starts_with("coldstart.toml:5:")
                && missing.contains("no function named \"nope\""),
            "{missing}"
        );

        let clash = error_of(
            "[functions.a]\nbootstrap = \"b\"\nurl = { port = 9100 }\n[http_apis.api]\nport = 9100\n",
        );
        assert!(
            clash.starts_with("coldstart.toml:5:8:")
                && clash.contains("already used by functions.a.url"),
            "{clash}"
        );

        let invalid = error_of("[functions.a\nbootstrap = \"b\"\n");
        assert!(invalid.starts_with("coldstart.toml:1:"), "{invalid}");

        let route = error_of(
            "[functions.a]\nbootstrap = \"b\"\n[http_apis.api]\nport = 9100\nroutes = { \"FETCH /x\" = \"a\" }\n",
        );
        assert!(route.contains("http_apis.api.routes"), "{route}");

        let ws = error_of(
            "[functions.a]\nbootstrap = \"b\"\n[websocket_apis.chat]\nport = 9200\nroutes = { \"$default\" = \"nope\" }\n",
        );
        assert!(
            ws.contains("websocket_apis.chat.routes") && ws.contains("nope"),
            "{ws}"
        );
        let stage = error_of("[websocket_apis.chat]\nport = 9200\nstage = \"a/b\"\n");
        assert!(stage.contains("websocket_apis.chat.stage"), "{stage}");
        let clash = error_of("[http_apis.a]\nport = 9200\n[websocket_apis.chat]\nport = 9200\n");
        assert!(clash.contains("already used"), "{clash}");

        let no_bootstrap = error_of("[functions.a]\nhandler = \"x\"\n");
        assert!(no_bootstrap.contains("bootstrap"), "{no_bootstrap}");
    }

    #[test]
    fn a_url_table_reads_auth_type_and_cors_and_names_bad_keys() {
        let stack = load_str(
            "[functions.a]\nbootstrap = \"b\"\n[functions.a.url]\nport = 0\nauth_type = \"AWS_IAM\"\ncors = { allow_origins = [\"https://app.example.com\"], allow_methods = [\"GET\"], allow_headers = [\"content-type\"], expose_headers = [\"x-id\"], allow_credentials = true, max_age = 60 }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let url = stack.functions[0]
            .url
            .clone()
            .unwrap_or_else(|| panic!("no url"));
        assert_eq!(url.auth_type, coldstart_emulator::UrlAuthType::AwsIam);
        let cors = url.cors.unwrap_or_default();
        assert_eq!(cors.allow_origins, ["https://app.example.com"]);
        assert_eq!(cors.allow_methods, ["GET"]);
        assert!(cors.allow_credentials);
        assert_eq!(cors.max_age, Some(60));

        let auth =
            error_of("[functions.a]\nbootstrap = \"b\"\nurl = { port = 0, auth_type = \"IAM\" }\n");
        assert!(
            auth.starts_with("coldstart.toml:3:") && auth.contains("functions.a.url.auth_type"),
            "{auth}"
        );
        let age = error_of(
            "[functions.a]\nbootstrap = \"b\"\nurl = { port = 0, cors = { max_age = -1 } }\n",
        );
        assert!(age.contains("functions.a.url.cors.max_age"), "{age}");
        let unknown = error_of(
            "[functions.a]\nbootstrap = \"b\"\nurl = { port = 0, cors = { allow_origin = [] } }\n",
        );
        assert!(unknown.contains("allow_origin"), "{unknown}");
    }

    #[test]
    fn a_rest_api_streams_every_route_and_an_http_api_cannot() {
        let text = "[functions.a]\nbootstrap = \"b\"\n[http_apis.api]\nport = 9100\npayload_version = \"1.0\"\nresponse_transfer_mode = \"STREAM\"\nroutes = { \"GET /chat\" = \"a\" }\n";
        let config = load_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.http_apis[0].streamed, ["GET /chat"]);
        let v2 = text.replace("\"1.0\"", "\"2.0\"");
        let e = load_str(&v2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("http_apis.api.response_transfer_mode: STREAM needs a REST API"),
            "{e}"
        );
    }

    #[test]
    fn one_route_of_a_rest_api_streams_with_route_transfer_mode() {
        let text = "[functions.a]\nbootstrap = \"b\"\n[http_apis.api]\nport = 9100\npayload_version = \"1.0\"\nroutes = { \"GET /chat\" = \"a\", \"GET /items\" = \"a\" }\nroute_transfer_mode = { \"GET /chat\" = \"STREAM\" }\n";
        let config = load_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.http_apis[0].streamed, ["GET /chat"]);
        // A route's own mode wins over the API's.
        let buffered = text.replace(
            "route_transfer_mode = { \"GET /chat\" = \"STREAM\" }",
            "response_transfer_mode = \"STREAM\"\nroute_transfer_mode = { \"GET /items\" = \"BUFFERED\" }",
        );
        let config = load_str(&buffered).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.http_apis[0].streamed, ["GET /chat"]);
        let error = |text: &str| {
            load_str(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let e = error(&text.replace(
            "\"GET /chat\" = \"STREAM\" }",
            "\"GET /nope\" = \"STREAM\" }",
        ));
        assert!(
            e.contains("http_apis.api.route_transfer_mode.\"GET /nope\": not a route of the API"),
            "{e}"
        );
        let e = error(&text.replace("= \"STREAM\" }", "= \"LIVE\" }"));
        assert!(
            e.contains("must be BUFFERED or STREAM, not \"LIVE\""),
            "{e}"
        );
        let e = error(&text.replace("\"1.0\"", "\"2.0\""));
        assert!(e.contains("STREAM needs a REST API"), "{e}");
    }
}

//! Functions (`AWS::Serverless::Function`, `AWS::Lambda::Function`) and layers
//! (`AWS::Serverless::LayerVersion`, `AWS::Lambda::LayerVersion`) as [`FunctionSpec`]s and
//! [`LayerSpec`]s: code and build, settings checked against Lambda's limits, environment with
//! `--env-vars`, layers, Function URLs, and the HTTP events the API reader routes.
//!
//! A function coldstart cannot run (another runtime, an image, code in S3) is left out with a
//! notice, and so are its routes and URL: the rest of the stack is still served.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use coldstart_emulator::{
    FunctionConfig, InvokeMode, LogLevel, PayloadVersion, RouteKey, config as limits,
};
use coldstart_protocol::level::SYSTEM_LEVELS;
use serde_json::{Map, Value};

use crate::config::wants_sandbox_port;
use crate::error::{Error, Location};
use crate::managed::{self, Managed};
use crate::model::{Build, FunctionSpec, LayerSpec, UrlSpec};
use crate::template::Context;
use crate::template::intrinsics::{ACCOUNT_ID, describe, text};
use crate::template::resources::{IMPLICIT_HTTP_API, IMPLICIT_REST_API, Resource, url_host};
use crate::template::rest_api;
use crate::template::url;

/// Runtimes whose functions bring their own `bootstrap`, which coldstart runs.
const RUNTIMES: [&str; 2] = ["provided.al2023", "provided.al2"];
/// The account that publishes the AWS Lambda Web Adapter's layers.
const ADAPTER_ACCOUNT: &str = "753240598075";
/// The Web Adapter's layer names; `coldstart-adapter` stands in for them.
const ADAPTER_LAYERS: [&str; 2] = ["LambdaAdapterLayerX86", "LambdaAdapterLayerArm64"];

/// An `HttpApi` or `Api` event: a route of an API to a function.
#[derive(Debug, Clone)]
pub(crate) struct HttpEvent {
    /// The API's logical id.
    pub(crate) api: String,
    /// The route key (`GET /hello/{name}`, `$default`).
    pub(crate) route: String,
    /// The function's logical id.
    pub(crate) function: String,
    /// The event format.
    pub(crate) payload: PayloadVersion,
    /// The event's name (under `Events`).
    pub(crate) name: String,
    /// `Auth.Authorizer`: an authorizer of the API, `NONE` or `AWS_IAM`; `None`: the API's
    /// default.
    pub(crate) authorizer: Option<String>,
    /// `Auth.AuthorizationScopes`.
    pub(crate) scopes: Vec<String>,
    /// `TimeoutInMillis` (HttpApi events): the integration timeout.
    pub(crate) timeout: Option<std::time::Duration>,
    /// `ResponseTransferMode: STREAM` (Api events).
    pub(crate) streamed: bool,
}

/// What the function reader found.
#[derive(Debug, Default)]
pub(crate) struct Functions {
    /// The functions coldstart runs.
    pub(crate) functions: Vec<FunctionSpec>,
    /// Their API events.
    pub(crate) events: Vec<HttpEvent>,
    /// Function URLs: (the URL's logical id, the function).
    pub(crate) urls: Vec<(String, String)>,
    /// Functions of the template left out (they cannot run here).
    pub(crate) left_out: HashSet<String>,
    /// `AWS::Lambda::EventInvokeConfig` resources applied to their functions.
    pub(crate) event_invoke_configs: Vec<String>,
}

/// SAM's `--env-vars` file: values for every function (`Parameters`) and per logical id.
#[derive(Debug, Default)]
pub(crate) struct EnvVars {
    all: BTreeMap<String, String>,
    by_function: HashMap<String, BTreeMap<String, String>>,
}

impl EnvVars {
    /// Reads the file; a mistake in it is an error at it.
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(
                path,
                Location::File,
                format!("cannot read the --env-vars file: {e}"),
            )
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                path,
                Location::Span {
                    line: e.line(),
                    column: e.column(),
                },
                format!("invalid JSON: {e}"),
            )
        })?;
        Self::from_value(path, &value)
    }

    fn from_value(path: &Path, value: &Value) -> Result<Self, Error> {
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                path,
                Location::File,
                format!("must be a JSON object, not {}", describe(value)),
            ));
        };
        let mut vars = Self::default();
        for (key, entries) in map {
            let Value::Object(entries) = entries else {
                return Err(Error::invalid(
                    path,
                    Location::path(key.clone()),
                    format!("must be an object of variables, not {}", describe(entries)),
                ));
            };
            let mut values = BTreeMap::new();
            for (name, v) in entries {
                let v = match v {
                    Value::Null => String::new(),
                    other => text(other).ok_or_else(|| {
                        Error::invalid(
                            path,
                            Location::Path(format!("{key}.{name}")),
                            format!("must be a string, not {}", describe(other)),
                        )
                    })?,
                };
                values.insert(name.clone(), v);
            }
            if key == "Parameters" {
                vars.all = values;
            } else {
                vars.by_function.insert(key.clone(), values);
            }
        }
        Ok(vars)
    }

    /// Overrides the variables `environment` declares, as SAM does: the function's own entry
    /// wins over `Parameters`, and a variable the template does not declare is not added.
    fn apply(&self, function: &str, environment: &mut BTreeMap<String, String>) {
        let own = self.by_function.get(function);
        for (name, value) in environment.iter_mut() {
            if let Some(v) = own.and_then(|o| o.get(name)).or_else(|| self.all.get(name)) {
                v.clone_into(value);
            }
        }
    }
}

/// Reads the layers: (logical id, the layer, or `None` when it is not available locally).
pub(crate) fn read_layers(
    cx: &Context<'_>,
    resources: &[Resource],
    notices: &mut Vec<String>,
) -> Result<Vec<(String, Option<LayerSpec>)>, Error> {
    let mut layers = Vec::new();
    for r in resources {
        let key = match r.kind.as_str() {
            "AWS::Serverless::LayerVersion" => "ContentUri",
            "AWS::Lambda::LayerVersion" => "Content",
            _ => continue,
        };
        let content = match cx.property(r, key)? {
            Some(Value::String(path)) if !path.starts_with("s3://") => Some(cx.path(&path)),
            Some(_) => None,
            None => return Err(cx.error(r, key, "a layer without content")),
        };
        let Some(dir) = content else {
            notices.push(format!(
                "{}: the layer's content is in S3, which is not available locally",
                r.id
            ));
            layers.push((r.id.clone(), None));
            continue;
        };
        let (content, build) = match build_method(r) {
            Some("makefile") => {
                let artifacts = cx.artifacts(&r.id);
                (
                    artifacts.clone(),
                    Some(Build::Makefile {
                        dir,
                        target: r.id.clone(),
                        artifacts,
                    }),
                )
            }
            Some(other) => {
                notices.push(format!(
                    "{}: BuildMethod {other} is not run locally; {key} is used as it is",
                    r.id
                ));
                (dir, None)
            }
            None => (dir, None),
        };
        layers.push((
            r.id.clone(),
            Some(LayerSpec {
                name: r.id.clone(),
                content,
                build,
            }),
        ));
    }
    Ok(layers)
}

fn build_method(r: &Resource) -> Option<&str> {
    r.metadata.get("BuildMethod").and_then(Value::as_str)
}

/// Reads the functions, their URLs and their API events.
pub(crate) fn read_functions(
    cx: &Context<'_>,
    resources: &[Resource],
    layers: &[(String, Option<LayerSpec>)],
    notices: &mut Vec<String>,
) -> Result<Functions, Error> {
    let mut out = Functions::default();
    for r in resources {
        let sam = match r.kind.as_str() {
            "AWS::Serverless::Function" => true,
            "AWS::Lambda::Function" => false,
            _ => continue,
        };
        match read_function(cx, r, sam, layers, notices)? {
            Some((spec, events)) => {
                if spec.url.is_some() {
                    out.urls.push((format!("{}Url", r.id), r.id.clone()));
                }
                out.functions.push(spec);
                out.events.extend(events);
            }
            None => {
                out.left_out.insert(r.id.clone());
            }
        }
    }
    // Function URLs declared as resources of their own.
    for r in resources
        .iter()
        .filter(|r| r.kind == "AWS::Lambda::Url" && !r.implicit)
    {
        let Some(target) = cx.string(r, "TargetFunctionArn")? else {
            return Err(cx.error(
                r,
                "TargetFunctionArn",
                "a Function URL needs a TargetFunctionArn",
            ));
        };
        let function = crate::template::resources::function_of(&target)
            .unwrap_or(&target)
            .to_owned();
        if out.left_out.contains(&function) {
            continue;
        }
        let invoke_mode = invoke_mode(cx, r, "InvokeMode", cx.string(r, "InvokeMode")?)?;
        let auth_type = url::auth_type(cx, r, "AuthType", cx.property(r, "AuthType")?.as_ref())?;
        let cors = url::cors(cx, r, "Cors", cx.property(r, "Cors")?.as_ref())?;
        let Some(spec) = out.functions.iter_mut().find(|f| f.config.name == function) else {
            notices.push(format!(
                "{}: {function} is not a function of the template; the URL is not served",
                r.id
            ));
            continue;
        };
        spec.url = Some(UrlSpec {
            port: 0,
            invoke_mode,
            aws_host: Some(url_host(&cx.options.region, &function)),
            auth_type,
            cors,
        });
        out.urls.push((r.id.clone(), function));
    }
    // Asynchronous invocation settings declared as resources of their own.
    for r in resources
        .iter()
        .filter(|r| r.kind == "AWS::Lambda::EventInvokeConfig")
    {
        let Some(target) = cx.string(r, "FunctionName")? else {
            return Err(cx.error(r, "FunctionName", "needs the function's name"));
        };
        let function = crate::template::resources::function_of(&target)
            .unwrap_or(&target)
            .to_owned();
        let Some(spec) = out.functions.iter_mut().find(|f| f.config.name == function) else {
            continue;
        };
        let mut settings = Map::new();
        for key in [
            "MaximumRetryAttempts",
            "MaximumEventAgeInSeconds",
            "DestinationConfig",
        ] {
            if let Some(v) = cx.property(r, key)? {
                settings.insert(key.to_owned(), v);
            }
        }
        event_invoke_config(
            cx,
            r,
            "",
            &Value::Object(settings),
            &mut spec.config.async_config,
        )?;
        out.event_invoke_configs.push(r.id.clone());
    }
    Ok(out)
}

/// `EventInvokeConfig` (SAM) or an `AWS::Lambda::EventInvokeConfig`'s properties (`path` is
/// where they are, empty for the latter): retries, event age, destinations.
fn event_invoke_config(
    cx: &Context<'_>,
    r: &Resource,
    path: &str,
    v: &Value,
    config: &mut coldstart_emulator::AsyncConfig,
) -> Result<(), Error> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let Value::Object(settings) = v else {
        return Err(cx.error(r, path, format!("must be a map, not {}", describe(v))));
    };
    if let Some(n) = settings.get("MaximumRetryAttempts") {
        match integer(n) {
            Some(n @ 0..=2) => config.max_retry_attempts = n.unsigned_abs() as u32,
            _ => {
                return Err(cx.error(
                    r,
                    &at("MaximumRetryAttempts"),
                    format!("must be 0, 1 or 2, not {}", shown(n)),
                ));
            }
        }
    }
    if let Some(n) = settings.get("MaximumEventAgeInSeconds") {
        match integer(n) {
            Some(secs @ 60..=21_600) => {
                config.max_event_age = Duration::from_secs(secs.unsigned_abs())
            }
            _ => {
                return Err(cx.error(
                    r,
                    &at("MaximumEventAgeInSeconds"),
                    format!("must be 60 to 21600 seconds, not {}", shown(n)),
                ));
            }
        }
    }
    if let Some(destinations) = settings.get("DestinationConfig") {
        for (key, slot) in [
            ("OnSuccess", &mut config.on_success),
            ("OnFailure", &mut config.on_failure),
        ] {
            let Some(d) = destinations.get(key) else {
                continue;
            };
            let here = at(&format!("DestinationConfig.{key}.Destination"));
            match (
                d.get("Destination").and_then(text),
                d.get("Type").and_then(text),
            ) {
                (Some(arn), _) => *slot = Some(arn),
                // SAM makes the queue or topic when none is named.
                (None, Some(kind)) if kind == "SQS" || kind == "SNS" => {
                    let service = kind.to_lowercase();
                    *slot = Some(format!(
                        "arn:aws:{service}:{}:{ACCOUNT_ID}:{}EventInvokeConfig{key}{}",
                        cx.options.region,
                        r.id,
                        if kind == "SQS" { "Queue" } else { "Topic" }
                    ));
                }
                _ => return Err(cx.error(r, &here, "needs a Destination (an ARN)")),
            }
        }
    }
    Ok(())
}

fn invoke_mode(
    cx: &Context<'_>,
    r: &Resource,
    path: &str,
    mode: Option<String>,
) -> Result<InvokeMode, Error> {
    match mode.as_deref() {
        None | Some("BUFFERED") => Ok(InvokeMode::Buffered),
        Some("RESPONSE_STREAM") => Ok(InvokeMode::ResponseStream),
        Some(other) => Err(cx.error(
            r,
            path,
            format!("must be BUFFERED or RESPONSE_STREAM, not {other}"),
        )),
    }
}

/// A whole number from a number or numeric text.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn read_function(
    cx: &Context<'_>,
    r: &Resource,
    sam: bool,
    layers: &[(String, Option<LayerSpec>)],
    notices: &mut Vec<String>,
) -> Result<Option<(FunctionSpec, Vec<HttpEvent>)>, Error> {
    let id = r.id.as_str();
    let region = cx.options.region.as_str();
    let code_key = if sam { "CodeUri" } else { "Code" };
    let image = cx.string(r, "PackageType")?.as_deref() == Some("Image");
    if image {
        notices.push(format!(
            "{id}: PackageType Image cannot run yet; the other functions are served"
        ));
        return Ok(None);
    }
    // Where the code is: a local folder, or somewhere coldstart cannot reach.
    let code = cx.property(r, code_key)?;
    let inline = sam && r.properties.contains_key("InlineCode");
    let folder = match (&code, inline) {
        (Some(Value::String(path)), _) if !path.starts_with("s3://") => Some(cx.path(path)),
        (Some(_), _) | (None, true) => None,
        (None, false) => {
            return Err(cx.error(r, code_key, "a function without code"));
        }
    };
    let runtime = cx.string(r, "Runtime")?;
    let managed = runtime.as_deref().and_then(Managed::parse);
    match runtime.as_deref() {
        Some(rt) if RUNTIMES.contains(&rt) || managed.is_some() => {}
        Some(rt) => {
            notices.push(format!(
                "{id}: Runtime {rt} cannot run yet; the other functions are served"
            ));
            return Ok(None);
        }
        None => {
            return Err(cx.error(
                r,
                "Runtime",
                format!(
                    "a function needs a Runtime (provided.al2023, provided.al2, {})",
                    managed::MANAGED_RUNTIMES
                ),
            ));
        }
    }
    let Some(dir) = folder else {
        let where_ = if inline || code.as_ref().is_some_and(|c| c.get("ZipFile").is_some()) {
            "inline code"
        } else if code.as_ref().is_some_and(|c| c.get("ImageUri").is_some()) {
            "an image"
        } else {
            "code in S3"
        };
        notices.push(format!(
            "{id}: {where_} cannot run locally; the other functions are served"
        ));
        return Ok(None);
    };

    // A managed runtime's function: its interpreter and runtime interface client.
    let managed = match managed {
        Some(kind) => {
            let Some(handler) = cx.string(r, "Handler")? else {
                return Err(cx.error(
                    r,
                    "Handler",
                    format!(
                        "a {} function needs a Handler ({})",
                        kind.name(),
                        kind.handler_shape()
                    ),
                ));
            };
            let arch = cx.property(r, "Architectures")?.and_then(|v| {
                v.get(0)
                    .and_then(Value::as_str)
                    .and_then(managed::Arch::parse)
            });
            match managed::managed_function(&kind, &dir, &handler, arch) {
                Ok((function, lines)) => {
                    notices.extend(
                        lines
                            .into_iter()
                            .map(|line| format!("{id}: Runtime {line}")),
                    );
                    Some(function)
                }
                Err(line) => {
                    notices.push(format!(
                        "{id}: Runtime {line}; the other functions are served"
                    ));
                    return Ok(None);
                }
            }
        }
        None => None,
    };
    let (bootstrap, task_root, build) = match (&managed, build_method(r)) {
        (Some(function), _) => (
            PathBuf::from(&function.argv[0]),
            dir.clone(),
            Some(function.build.clone()),
        ),
        (None, method) => match method {
            Some("makefile") => {
                let artifacts = cx.artifacts(id);
                (
                    artifacts.join("bootstrap"),
                    artifacts.clone(),
                    Some(Build::Makefile {
                        dir: dir.clone(),
                        target: id.to_owned(),
                        artifacts,
                    }),
                )
            }
            Some("rust-cargolambda") => {
                let artifacts = cx.artifacts(id);
                let binary = r
                    .metadata
                    .get("BuildProperties")
                    .and_then(|p| p.get("Binary"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (
                    artifacts.join("bootstrap"),
                    artifacts.clone(),
                    Some(Build::Cargo {
                        dir: dir.clone(),
                        binary,
                        artifacts,
                    }),
                )
            }
            other => {
                if let Some(method) = other {
                    notices.push(format!(
                        "{id}: BuildMethod {method} is not run locally; {code_key} runs as it is"
                    ));
                }
                (dir.join("bootstrap"), dir.clone(), None)
            }
        },
    };

    let command = match &managed {
        Some(function) => function.argv.iter().map(Into::into).collect(),
        None => vec![bootstrap.into_os_string()],
    };
    let mut config = FunctionConfig::new(id, command);
    config.task_root = Some(task_root);
    config.handler = cx.string(r, "Handler")?;
    if let Some(v) = cx.property(r, "MemorySize")? {
        let mb = integer(&v).unwrap_or(-1);
        if !(i64::from(limits::MIN_MEMORY_MB)..=i64::from(limits::MAX_MEMORY_MB)).contains(&mb) {
            return Err(cx.error(
                r,
                "MemorySize",
                format!("must be 128 to 10240 MB, not {}", shown(&v)),
            ));
        }
        config.memory_mb = u32::try_from(mb).unwrap_or(limits::MIN_MEMORY_MB);
    }
    if let Some(v) = cx.property(r, "Timeout")? {
        let secs = integer(&v).unwrap_or(-1);
        if !(1..=900).contains(&secs) {
            return Err(cx.error(
                r,
                "Timeout",
                format!("must be 1 to 900 seconds, not {}", shown(&v)),
            ));
        }
        config.timeout = Duration::from_secs(secs.unsigned_abs());
    }
    config.environment = environment(cx, r)?;
    if let Some(function) = &managed {
        config
            .environment
            .extend(function.environment.iter().cloned());
    }
    if let Some(Value::Object(logging)) = cx.property(r, "LoggingConfig")? {
        if let Some(format) = logging.get("LogFormat").and_then(text) {
            config.log_format = match format.as_str() {
                "JSON" => coldstart_emulator::LogFormat::Json,
                "Text" => coldstart_emulator::LogFormat::Text,
                other => {
                    return Err(cx.error(
                        r,
                        "LoggingConfig.LogFormat",
                        format!("must be Text or JSON, not {other}"),
                    ));
                }
            };
        }
        let level = |name: &str, allowed: &[LogLevel]| -> Result<Option<LogLevel>, Error> {
            let Some(value) = logging.get(name) else {
                return Ok(None);
            };
            let names: Vec<&str> = allowed.iter().map(|l| l.as_str()).collect();
            // CloudFormation takes the names in capitals only.
            match text(value).and_then(|t| allowed.iter().find(|l| l.as_str() == t)) {
                Some(level) => Ok(Some(*level)),
                None => Err(cx.error(
                    r,
                    &format!("LoggingConfig.{name}"),
                    format!("must be one of {}, not {}", names.join(", "), shown(value)),
                )),
            }
        };
        config.application_log_level = level("ApplicationLogLevel", &LogLevel::ALL)?;
        config.system_log_level = level("SystemLogLevel", &SYSTEM_LEVELS)?;
        if config.log_format != coldstart_emulator::LogFormat::Json
            && (config.application_log_level.is_some() || config.system_log_level.is_some())
        {
            return Err(cx.error(
                r,
                "LoggingConfig",
                "ApplicationLogLevel and SystemLogLevel need LogFormat JSON".to_owned(),
            ));
        }
    }
    if let Some(vars) = cx.env_vars {
        vars.apply(id, &mut config.environment);
    }
    super::capacity::read(cx, r, sam, &mut config, notices)?;
    if let Some(v) = cx.property(r, "ReservedConcurrentExecutions")? {
        match integer(&v) {
            Some(0) => notices.push(format!(
                "{id}: ReservedConcurrentExecutions 0 is throttled on AWS; it runs locally"
            )),
            Some(n) if n >= 1 => config.concurrency = usize::try_from(n).unwrap_or(1),
            _ => {
                return Err(cx.error(
                    r,
                    "ReservedConcurrentExecutions",
                    format!("must be a whole number from 0, not {}", shown(&v)),
                ));
            }
        }
    }
    if sam && let Some(v) = cx.property(r, "EventInvokeConfig")? {
        event_invoke_config(cx, r, "EventInvokeConfig", &v, &mut config.async_config)?;
    }
    let dead_letter = if sam {
        "DeadLetterQueue"
    } else {
        "DeadLetterConfig"
    };
    if let Some(v) = cx.property(r, dead_letter)? {
        match v.get("TargetArn").and_then(text) {
            Some(arn) => config.async_config.dead_letter = Some(arn),
            None => {
                return Err(cx.error(
                    r,
                    &format!("{dead_letter}.TargetArn"),
                    "needs the queue's or topic's ARN",
                ));
            }
        }
    }
    if let Some(v) = cx.property(r, "Architectures")? {
        let ok = matches!(&v, Value::Array(a) if a.len() == 1
            && a.first().and_then(Value::as_str).is_some_and(|s| s == "x86_64" || s == "arm64"));
        if !ok {
            return Err(cx.error(
                r,
                "Architectures",
                format!("must be [x86_64] or [arm64], not {}", shown(&v)),
            ));
        }
    }

    let mut local_layers = Vec::new();
    if let Some(v) = cx.property(r, "Layers")? {
        let Value::Array(items) = v else {
            return Err(cx.error(r, "Layers", format!("must be a list, not {}", describe(&v))));
        };
        for (i, item) in items.iter().enumerate() {
            let Some(arn) = text(item) else {
                return Err(cx.error(
                    r,
                    &format!("Layers[{i}]"),
                    format!("must be a layer ARN, not {}", describe(item)),
                ));
            };
            let parts: Vec<&str> = arn.split(':').collect();
            let (account, name) = match parts.as_slice() {
                ["arn", _, "lambda", _, account, "layer", name, ..] => (*account, *name),
                _ => ("", arn.as_str()),
            };
            if account == ACCOUNT_ID
                && let Some((layer, spec)) = layers.iter().find(|(l, _)| l == name)
            {
                if spec.is_some() {
                    local_layers.push(layer.clone());
                } else {
                    notices.push(format!(
                        "layer {layer} is not available locally; {id} starts without it"
                    ));
                }
            } else if account == ADAPTER_ACCOUNT && ADAPTER_LAYERS.contains(&name) {
                match &cx.options.adapter {
                    Some(adapter) => config.extensions.push(adapter.clone()),
                    None => notices.push(format!(
                        "{id}: the Lambda Web Adapter layer needs coldstart-adapter, which was not found; {id} starts without it"
                    )),
                }
            } else {
                notices.push(format!(
                    "layer {arn} is not available locally; {id} starts without it"
                ));
            }
        }
    }

    let url = match cx.property(r, "FunctionUrlConfig")? {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            let mode = c.get("InvokeMode").and_then(text);
            Some(UrlSpec {
                port: 0,
                invoke_mode: invoke_mode(cx, r, "FunctionUrlConfig.InvokeMode", mode)?,
                aws_host: Some(url_host(region, id)),
                auth_type: url::auth_type(cx, r, "FunctionUrlConfig.AuthType", c.get("AuthType"))?,
                cors: url::cors(cx, r, "FunctionUrlConfig.Cors", c.get("Cors"))?,
            })
        }
        Some(other) => {
            return Err(cx.error(
                r,
                "FunctionUrlConfig",
                format!("must be a map, not {}", describe(&other)),
            ));
        }
    };

    config.sandbox_port = wants_sandbox_port(&config);
    config
        .validate()
        .map_err(|e| cx.error(r, "", e.to_string()))?;
    let events = if sam {
        events(cx, r, notices)?
    } else {
        Vec::new()
    };
    Ok(Some((
        FunctionSpec {
            config,
            build,
            url,
            watch: vec![dir],
            layers: local_layers,
        },
        events,
    )))
}

/// A value as a message shows it.
fn shown(v: &Value) -> String {
    text(v).unwrap_or_else(|| v.to_string())
}

fn environment(cx: &Context<'_>, r: &Resource) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    let Some(env) = cx.property(r, "Environment")? else {
        return Ok(out);
    };
    let variables = match env.get("Variables") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(v)) => v,
        Some(other) => {
            return Err(cx.error(
                r,
                "Environment.Variables",
                format!("must be a map, not {}", describe(other)),
            ));
        }
    };
    for (name, value) in variables {
        let value = text(value).ok_or_else(|| {
            cx.error(
                r,
                &format!("Environment.Variables.{name}"),
                format!("must be a string, not {}", describe(value)),
            )
        })?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// The function's `HttpApi` and `Api` events as routes; other events get a notice each.
fn events(
    cx: &Context<'_>,
    r: &Resource,
    notices: &mut Vec<String>,
) -> Result<Vec<HttpEvent>, Error> {
    let mut out = Vec::new();
    let Some(events) = cx.property(r, "Events")? else {
        return Ok(out);
    };
    let Value::Object(events) = events else {
        return Err(cx.error(
            r,
            "Events",
            format!("must be a map, not {}", describe(&events)),
        ));
    };
    let empty = Map::new();
    for (name, event) in &events {
        let path = format!("Events.{name}");
        let Some(kind) = event.get("Type").and_then(Value::as_str) else {
            return Err(cx.error(r, &format!("{path}.Type"), "an event needs a Type"));
        };
        let props = match event.get("Properties") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(p)) => p,
            Some(other) => {
                return Err(cx.error(
                    r,
                    &format!("{path}.Properties"),
                    format!("must be a map, not {}", describe(other)),
                ));
            }
        };
        let (api_key, implicit, rest) = match kind {
            "HttpApi" => ("ApiId", IMPLICIT_HTTP_API, false),
            "Api" => ("RestApiId", IMPLICIT_REST_API, true),
            // Read by the schedule reader.
            "Schedule" | "ScheduleV2" => continue,
            // Read by the queue reader.
            "SQS" => continue,
            other => {
                let what = match other {
                    "DynamoDB" => "DynamoDB Streams events are".to_owned(),
                    "Kinesis" => "Kinesis events are".to_owned(),
                    other => format!("events of type {other} are"),
                };
                notices.push(format!("{}.{path}: {what} not emulated yet", r.id));
                continue;
            }
        };
        let api = match props.get(api_key) {
            None => implicit.to_owned(),
            Some(v) => {
                let api_id = text(v).unwrap_or_default();
                api_by_id(cx, &api_id, rest).ok_or_else(|| {
                    cx.error(
                        r,
                        &format!("{path}.Properties.{api_key}"),
                        format!(
                            "{api_id:?} is not an {} of the template",
                            if rest {
                                "AWS::Serverless::Api"
                            } else {
                                "AWS::Serverless::HttpApi"
                            }
                        ),
                    )
                })?
            }
        };
        let method = props.get("Method").and_then(text);
        let route_path = props.get("Path").and_then(text);
        let route = match (method, route_path) {
            (None, None) if !rest => "$default".to_owned(),
            (Some(m), Some(p)) => {
                let m = m.to_ascii_uppercase();
                format!("{m} {p}")
            }
            _ => {
                return Err(cx.error(
                    r,
                    &format!("{path}.Properties"),
                    if rest {
                        "an Api event needs a Path and a Method"
                    } else {
                        "an HttpApi event needs both Path and Method, or neither ($default)"
                    },
                ));
            }
        };
        if let Err(why) = RouteKey::parse(&route) {
            return Err(cx.error(r, &format!("{path}.Properties"), why));
        }
        let payload = if rest {
            PayloadVersion::V1
        } else {
            match props.get("PayloadFormatVersion").and_then(text).as_deref() {
                None | Some("2.0") | Some("2") => PayloadVersion::V2,
                Some("1.0") | Some("1") => PayloadVersion::V1,
                Some(other) => {
                    return Err(cx.error(
                        r,
                        &format!("{path}.Properties.PayloadFormatVersion"),
                        format!("must be \"1.0\" or \"2.0\", not {other:?}"),
                    ));
                }
            }
        };
        let (authorizer, scopes) = match props.get("Auth") {
            None | Some(Value::Null) => (None, Vec::new()),
            Some(Value::Object(auth)) => {
                let authorizer = auth.get("Authorizer").and_then(text);
                let scopes = match auth.get("AuthorizationScopes") {
                    None => Vec::new(),
                    Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
                    Some(other) => {
                        return Err(cx.error(
                            r,
                            &format!("{path}.Properties.Auth.AuthorizationScopes"),
                            format!("must be a list, not {}", describe(other)),
                        ));
                    }
                };
                (authorizer, scopes)
            }
            Some(other) => {
                return Err(cx.error(
                    r,
                    &format!("{path}.Properties.Auth"),
                    format!("must be a map, not {}", describe(other)),
                ));
            }
        };
        let streamed = match props.get("ResponseTransferMode") {
            None | Some(Value::Null) => false,
            Some(_) if !rest => {
                return Err(cx.error(
                    r,
                    &format!("{path}.Properties.ResponseTransferMode"),
                    "response streaming needs a REST API (an Api event, not HttpApi)",
                ));
            }
            Some(v) => rest_api::streams(v).map_err(|why| {
                cx.error(r, &format!("{path}.Properties.ResponseTransferMode"), why)
            })?,
        };
        let timeout =
            match props.get("TimeoutInMillis") {
                None | Some(Value::Null) => None,
                Some(v) => Some(rest_api::route_timeout(v, streamed).map_err(|why| {
                    cx.error(r, &format!("{path}.Properties.TimeoutInMillis"), why)
                })?),
            };
        out.push(HttpEvent {
            api,
            route,
            function: r.id.clone(),
            payload,
            name: name.clone(),
            authorizer,
            scopes,
            timeout,
            streamed,
        });
    }
    Ok(out)
}

/// The logical id of the API whose id (what `Ref` gives) is `api_id`.
fn api_by_id(cx: &Context<'_>, api_id: &str, rest: bool) -> Option<String> {
    let kinds: &[&str] = if rest {
        &["AWS::Serverless::Api"]
    } else {
        &["AWS::Serverless::HttpApi"]
    };
    cx.resolver
        .resources
        .iter()
        .find(|(_, f)| kinds.contains(&f.kind.as_str()) && f.reference == api_id)
        .map(|(id, _)| id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_vars_override_only_declared_variables_function_first() {
        let vars = EnvVars::from_value(
            Path::new("env.json"),
            &json!({"Parameters": {"A": "all", "B": "all", "X": "new"}, "Echo": {"B": "echo", "C": 3}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut env: BTreeMap<String, String> = [("A", "t"), ("B", "t"), ("C", "t"), ("D", "t")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.apply("Echo", &mut env);
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![("A", "all"), ("B", "echo"), ("C", "3"), ("D", "t")]
        );
    }

    #[test]
    fn a_bad_env_vars_file_is_an_error_at_it() {
        let e = EnvVars::from_value(Path::new("env.json"), &json!({"Echo": ["x"]}))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|e| e.starts_with("env.json: Echo: must be an object")),
            "{e:?}"
        );
        let missing = EnvVars::load(Path::new("/nonexistent/env.json")).map(|_| ());
        assert!(missing.is_err_and(|e| e.to_string().starts_with("/nonexistent/env.json")));
    }

    #[test]
    fn integers_come_from_numbers_and_text() {
        assert_eq!(integer(&json!(128)), Some(128));
        assert_eq!(integer(&json!("256")), Some(256));
        assert_eq!(integer(&json!(3.0)), Some(3));
        assert_eq!(integer(&json!(3.5)), None);
        assert_eq!(integer(&json!([1])), None);
    }
}

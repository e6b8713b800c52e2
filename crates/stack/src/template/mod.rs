//! SAM and CloudFormation templates (YAML or JSON) read into a [`Stack`](crate::Stack).
//!
//! [`load`] reads a file, [`parse`] its text. The read goes in stages, one module each: the
//! text becomes a JSON value with short tags in long form ([`yaml`]); `Parameters` get their
//! values ([`parameters`]); `Conditions` are evaluated and `Resources` read with `Globals`
//! merged ([`globals`]), SAM's generated resources added and dependency cycles refused
//! ([`resources`]); every value is resolved with CloudFormation's intrinsic functions
//! ([`intrinsics`]); then the resources coldstart emulates become the stack's functions and
//! layers ([`functions`]), APIs ([`apis`], their CORS, stage variables and throttling in
//! [`api_settings`]), tables ([`tables`]), schedules ([`schedules`]: `Schedule`/`ScheduleV2`
//! events, `AWS::Events::Rule`, `AWS::Scheduler::Schedule`) and queues with their SQS event
//! source mappings ([`queues`]). Everything else is listed in
//! [`Stack::not_emulated`](crate::Stack::not_emulated).
//!
//! # Ports
//! Every front door gets a port: each HTTP API, REST API and WebSocket API, and each Function
//! URL, whose logical id is `<FunctionId>Url` as SAM names it (implicit APIs are
//! `ServerlessHttpApi` and `ServerlessRestApi`). Sorted together by logical id, the `n`th
//! (from 0) gets `port_base + n`; with `port_base` 0 every port is 0 (any free port). Adding a
//! front door can move the ports of those sorted after it.
//!
//! # Errors
//! A mistake is an [`Error::Invalid`](crate::Error::Invalid) naming the file and where: a line
//! and column for syntax, else the path of keys (`Resources.Echo.Properties.Timeout`).

mod api_settings;
mod apis;
mod auth;
mod capacity;
mod functions;
mod globals;
mod intrinsics;
mod parameters;
mod queues;
pub(crate) mod resources;
mod rest_api;
mod schedules;
mod tables;
mod url;
mod yaml;

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Location};
use crate::model::{OutputSpec, Stack};

use intrinsics::{ACCOUNT_ID, At, Resolver, describe, text};
use resources::Resource;

pub use parameters::parse_parameter_overrides;

/// The SAM transform this reader applies.
const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// What the command line adds to a template.
#[derive(Debug, Clone)]
pub struct TemplateOptions {
    /// `--parameter-overrides`, already split into (key, value).
    pub parameter_overrides: Vec<(String, String)>,
    /// `--env-vars FILE`: SAM's JSON (`{"Parameters": {...}, "<LogicalId>": {...}}`).
    pub env_vars: Option<PathBuf>,
    /// `AWS::Region`. Default: `us-east-1`.
    pub region: String,
    /// `AWS::StackName`. Default: `coldstart`.
    pub stack_name: String,
    /// The first port of the APIs and Function URLs, counted up in their documented order;
    /// 0 gives each a free port. Default: 3000.
    pub port_base: u16,
    /// The `coldstart-adapter` executable, run as an extension by functions that use the AWS
    /// Lambda Web Adapter's public layer. Default: none (such functions get a notice).
    pub adapter: Option<PathBuf>,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        Self {
            parameter_overrides: Vec::new(),
            env_vars: None,
            region: "us-east-1".into(),
            stack_name: "coldstart".into(),
            port_base: 3000,
            adapter: None,
        }
    }
}

/// Reads and resolves the template at `path`.
pub fn load(path: &Path, options: &TemplateOptions) -> Result<Stack, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(
            path,
            Location::File,
            format!("cannot read the template: {e}"),
        )
    })?;
    let root = Stack::folder_of(path);
    let mut stack = parse(path, &text, &root, options)?;
    stack.source = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(stack)
}

/// Reads a template's text (YAML or JSON); `file` names it in errors, `root` is its folder.
pub fn parse(
    file: &Path,
    text: &str,
    root: &Path,
    options: &TemplateOptions,
) -> Result<Stack, Error> {
    let template = yaml::parse(file, text)?;
    let Value::Object(template) = template else {
        return Err(Error::invalid(
            file,
            Location::File,
            format!("a template is a map, not {}", describe(&template)),
        ));
    };
    let mut notices = Vec::new();
    check_transform(file, template.get("Transform"), &mut notices)?;

    let mut resolver = Resolver::new(file, &options.region, &options.stack_name);
    resolver.parameters = parameters::resolve(
        file,
        template.get("Parameters"),
        &options.parameter_overrides,
        &mut notices,
    )?;
    match template.get("Mappings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => resolver.mappings = m.clone(),
        Some(other) => {
            return Err(Error::invalid(
                file,
                Location::path("Mappings"),
                format!("must be a map, not {}", describe(other)),
            ));
        }
    }
    resources::evaluate_conditions(&mut resolver, template.get("Conditions"))?;
    let globals = globals::Globals::read(file, template.get("Globals"))?;
    let resources = resources::read(&mut resolver, template.get("Resources"), &globals)?;
    resources::compute_facts(&mut resolver, &resources);

    let env_vars = match &options.env_vars {
        Some(path) => Some(functions::EnvVars::load(path)?),
        None => None,
    };
    let cx = Context {
        resolver: &resolver,
        root,
        options,
        env_vars: env_vars.as_ref(),
    };
    let mut used = std::collections::HashSet::new();
    let layers = functions::read_layers(&cx, &resources, &mut notices)?;
    let read = functions::read_functions(&cx, &resources, &layers, &mut notices)?;
    let mut functions = read.functions;
    used.extend(read.urls.iter().map(|(id, _)| id.clone()));
    used.extend(read.event_invoke_configs.iter().cloned());
    let apis = apis::read(
        &cx,
        &resources,
        &read.events,
        &read.left_out,
        &mut used,
        &mut notices,
    )?;
    let tables = tables::read(&cx, &resources)?;
    let schedules = schedules::read(&cx, &resources, &functions, &mut used, &mut notices)?;
    let (queues, sqs_mappings) = queues::read(&cx, &resources, &functions, &mut used)?;
    let outputs = outputs(&resolver, template.get("Outputs"))?;

    // Ports: every front door, sorted by logical id (see the module doc).
    let mut doors: Vec<(&str, Door)> = Vec::new();
    for (i, api) in apis.http.iter().enumerate() {
        doors.push((api.name.as_str(), Door::Http(i)));
    }
    for (i, api) in apis.websocket.iter().enumerate() {
        doors.push((api.name.as_str(), Door::WebSocket(i)));
    }
    for (id, function) in &read.urls {
        doors.push((id.as_str(), Door::Url(function.clone())));
    }
    doors.sort_by(|a, b| a.0.cmp(b.0));
    let mut http_apis = apis.http.clone();
    let mut websocket_apis = apis.websocket.clone();
    for (n, (id, door)) in doors.iter().enumerate() {
        let port = if options.port_base == 0 {
            0
        } else {
            u16::try_from(n)
                .ok()
                .and_then(|n| options.port_base.checked_add(n))
                .ok_or_else(|| {
                    Error::invalid(
                        file,
                        Location::Path(format!("Resources.{id}")),
                        format!(
                            "no port is left for it: {} front doors from port {}",
                            doors.len(),
                            options.port_base
                        ),
                    )
                })?
        };
        match door {
            Door::Http(i) => {
                if let Some(api) = http_apis.get_mut(*i) {
                    api.port = port;
                }
            }
            Door::WebSocket(i) => {
                if let Some(api) = websocket_apis.get_mut(*i) {
                    api.port = port;
                }
            }
            Door::Url(function) => {
                if let Some(url) = functions
                    .iter_mut()
                    .find(|f| &f.config.name == function)
                    .and_then(|f| f.url.as_mut())
                {
                    url.port = port;
                }
            }
        }
    }

    let emulated = |r: &Resource| {
        matches!(
            r.kind.as_str(),
            "AWS::Serverless::Function"
                | "AWS::Lambda::Function"
                | "AWS::Serverless::LayerVersion"
                | "AWS::Lambda::LayerVersion"
                | "AWS::Serverless::HttpApi"
                | "AWS::Serverless::Api"
                | "AWS::ApiGatewayV2::Api"
                | "AWS::DynamoDB::Table"
                | "AWS::Serverless::SimpleTable"
        ) || r.implicit
            || used.contains(r.id.as_str())
    };
    capacity::list(&resources, &mut notices);
    let mut not_emulated: Vec<(String, String)> = resources
        .iter()
        .filter(|r| !emulated(r) && !capacity::PROVIDER_TYPES.contains(&r.kind.as_str()))
        .map(|r| (r.id.clone(), r.kind.clone()))
        .collect();
    not_emulated.sort();

    functions.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    http_apis.sort_by(|a, b| a.name.cmp(&b.name));
    websocket_apis.sort_by(|a, b| a.name.cmp(&b.name));
    let mut layers: Vec<_> = layers.into_iter().filter_map(|(_, l)| l).collect();
    layers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Stack {
        source: file.to_path_buf(),
        root: root.to_path_buf(),
        functions,
        layers,
        http_apis,
        websocket_apis,
        tables,
        outputs,
        not_emulated,
        notices,
        settings: coldstart_emulator::Settings {
            region: options.region.clone(),
            account_id: ACCOUNT_ID.to_owned(),
            ..coldstart_emulator::Settings::default()
        },
        local_environment: true,
        schedules,
        queues,
        sqs_mappings,
    })
}

/// A front door waiting for its port.
enum Door {
    Http(usize),
    WebSocket(usize),
    Url(String),
}

/// What the resource readers share.
pub(crate) struct Context<'a> {
    /// Resolves values.
    pub(crate) resolver: &'a Resolver<'a>,
    /// The template's folder.
    pub(crate) root: &'a Path,
    /// The command line's options.
    pub(crate) options: &'a TemplateOptions,
    /// `--env-vars`, read.
    pub(crate) env_vars: Option<&'a functions::EnvVars>,
}

impl Context<'_> {
    /// The resolved property `key` of `r`; `None` when absent or `AWS::NoValue`.
    pub(crate) fn property(&self, r: &Resource, key: &str) -> Result<Option<Value>, Error> {
        let Some(v) = r.properties.get(key) else {
            return Ok(None);
        };
        let root = At::root("Resources");
        let at = root.key(&r.id);
        let at = at.key("Properties");
        self.resolver.resolve(v, &at.key(key))
    }

    /// The resolved property `key` of `r` as text.
    pub(crate) fn string(&self, r: &Resource, key: &str) -> Result<Option<String>, Error> {
        match self.property(r, key)? {
            None | Some(Value::Null) => Ok(None),
            Some(v) => text(&v).map(Some).ok_or_else(|| {
                self.error(r, key, format!("must be a string, not {}", describe(&v)))
            }),
        }
    }

    /// An error at `Resources.<Id>.Properties.<path>` (`Resources.<Id>` when `path` is empty).
    pub(crate) fn error(&self, r: &Resource, path: &str, message: impl Into<String>) -> Error {
        let at = if path.is_empty() {
            format!("Resources.{}", r.id)
        } else {
            format!("{}.{path}", r.path())
        };
        Error::invalid(self.resolver.file, Location::Path(at), message)
    }

    /// `relative` (a `CodeUri`, `ContentUri`) as an absolute path under the root, with `.` and
    /// `..` folded.
    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        let mut out = PathBuf::new();
        for component in self.root.join(relative).components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }

    /// Where the build of `id` puts its output: `<root>/.coldstart/build/<id>`.
    pub(crate) fn artifacts(&self, id: &str) -> PathBuf {
        self.root.join(".coldstart").join("build").join(id)
    }
}

/// Accepts the SAM transform (alone or in a list) and templates without one; other transforms
/// (macros, `AWS::Include`) are not applied, with a notice.
fn check_transform(
    file: &Path,
    transform: Option<&Value>,
    notices: &mut Vec<String>,
) -> Result<(), Error> {
    let names: Vec<&Value> = match transform {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    };
    for name in names {
        match name {
            Value::String(s) if s == SAM_TRANSFORM || s == "AWS::LanguageExtensions" => {}
            Value::String(s) => notices.push(format!(
                "Transform {s} is not applied locally; the template is read without it"
            )),
            Value::Object(m) if m.get("Name").and_then(Value::as_str) == Some("AWS::Include") => {
                notices.push("Transform AWS::Include is not applied locally".to_owned());
            }
            other => {
                return Err(Error::invalid(
                    file,
                    Location::path("Transform"),
                    format!("must name a transform, not {}", describe(other)),
                ));
            }
        }
    }
    Ok(())
}

/// The `Outputs` section, resolved; an output whose condition is false is left out.
fn outputs(resolver: &Resolver<'_>, section: Option<&Value>) -> Result<Vec<OutputSpec>, Error> {
    let map = match section {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(resolver.error(
                &At::root("Outputs"),
                format!("must be a map, not {}", describe(other)),
            ));
        }
    };
    let root = At::root("Outputs");
    let mut outputs = Vec::with_capacity(map.len());
    for (name, output) in map {
        let at = root.key(name);
        if let Some(condition) = output.get("Condition")
            && !resolver.named_condition(condition, &at.key("Condition"))?
        {
            continue;
        }
        let Some(value) = output.get("Value") else {
            return Err(resolver.error(&at, "an output needs a Value"));
        };
        let value_at = at.key("Value");
        let value = match resolver.resolve(value, &value_at)? {
            None => continue,
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| text(v).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            Some(v) => text(&v).ok_or_else(|| {
                resolver.error(&value_at, format!("must be a string, not {}", describe(&v)))
            })?,
        };
        let description = match output.get("Description") {
            None => None,
            Some(d) => resolver
                .resolve(d, &at.key("Description"))?
                .and_then(|v| text(&v)),
        };
        outputs.push(OutputSpec {
            name: name.clone(),
            value,
            description,
        });
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, FunctionSpec};
    use coldstart_emulator::{InvokeMode, PayloadVersion};

    fn read(text: &str) -> Result<Stack, String> {
        read_with(text, &TemplateOptions::default())
    }

    fn read_with(text: &str, options: &TemplateOptions) -> Result<Stack, String> {
        parse(Path::new("template.yaml"), text, Path::new("/app"), options)
            .map_err(|e| e.to_string())
    }

    fn ok(text: &str) -> Stack {
        read(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        match read(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    fn example(name: &str) -> Stack {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
            .join(name)
            .join("template.yaml");
        load(&path, &TemplateOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn function<'s>(stack: &'s Stack, name: &str) -> &'s FunctionSpec {
        stack
            .function(name)
            .unwrap_or_else(|| panic!("no function {name}: {:?}", stack.functions))
    }

    #[test]
    fn asynchronous_invocation_settings_come_from_the_function_and_from_resources() {
        let stack = ok("
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Runtime: provided.al2023
      Handler: h
      DeadLetterQueue:
        Type: SQS
        TargetArn: !GetAtt Queue.Arn
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        MaximumEventAgeInSeconds: 120
        DestinationConfig:
          OnSuccess:
            Type: Lambda
            Destination: !GetAtt Other.Arn
          OnFailure:
            Type: SQS
  Other:
    Type: AWS::Lambda::Function
    Properties:
      Code: other
      Runtime: provided.al2023
      Handler: h
      DeadLetterConfig:
        TargetArn: arn:aws:sns:us-east-1:123456789012:dead
  OtherAsync:
    Type: AWS::Lambda::EventInvokeConfig
    Properties:
      FunctionName: !Ref Other
      Qualifier: $LATEST
      MaximumRetryAttempts: 0
      DestinationConfig:
        OnFailure:
          Destination: !GetAtt Fn.Arn
");
        let a = &function(&stack, "Fn").config.async_config;
        assert_eq!(a.max_retry_attempts, 1);
        assert_eq!(a.max_event_age, std::time::Duration::from_secs(120));
        assert_eq!(
            a.on_success.as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:Other")
        );
        assert_eq!(
            a.on_failure.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:FnEventInvokeConfigOnFailureQueue")
        );
        assert!(
            a.dead_letter
                .as_deref()
                .is_some_and(|arn| arn.starts_with("arn:aws:sqs:")),
            "{a:?}"
        );
        let o = &function(&stack, "Other").config.async_config;
        assert_eq!(o.max_retry_attempts, 0);
        assert_eq!(
            o.on_failure.as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:Fn")
        );
        assert_eq!(
            o.dead_letter.as_deref(),
            Some("arn:aws:sns:us-east-1:123456789012:dead")
        );
        assert!(
            !stack.not_emulated.iter().any(|(id, _)| id == "OtherAsync"),
            "{:?}",
            stack.not_emulated
        );

        let bad = err("
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Runtime: provided.al2023
      EventInvokeConfig:
        MaximumRetryAttempts: 3
");
        assert!(
            bad.contains("Resources.Fn.Properties.EventInvokeConfig.MaximumRetryAttempts")
                && bad.contains("0, 1 or 2"),
            "{bad}"
        );
    }

    /// Hostile input: every example template cut short, with a line dropped, or with a
    /// character replaced, is read to a stack or an error — never a panic.
    #[test]
    fn mangled_templates_are_errors_not_panics() {
        let mut tried = 0;
        for name in ["echo", "stream", "bash", "web", "chat"] {
            let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
                .join(name)
                .join("template.yaml");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let lines: Vec<&str> = text.lines().collect();
            let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            // Deterministic positions spread over the text.
            for k in 0..40 {
                let at = boundaries[(k * 7919) % boundaries.len()];
                let _ = read(&text[..at]);
                let mut replaced = text.clone();
                let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                let junk = ["!", ":", "[", "{", "!Ref", "\t", "- ", "&a *a"][k % 8];
                replaced.replace_range(at..end, junk);
                let _ = read(&replaced);
                let mut dropped = lines.clone();
                dropped.remove((k * 31) % lines.len());
                let _ = read(&dropped.join("\n"));
                tried += 3;
            }
        }
        assert_eq!(tried, 600);
    }

    const FUNCTION: &str = "
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Runtime: provided.al2023
      Handler: bootstrap
";

    #[test]
    fn echo_example_has_a_makefile_build_a_url_and_an_http_api() {
        let stack = example("echo");
        assert!(stack.root.ends_with("examples/echo"), "{:?}", stack.root);
        assert!(stack.source.ends_with("examples/echo/template.yaml"));
        let echo = function(&stack, "EchoFunction");
        let artifacts = stack.root.join(".coldstart/build/EchoFunction");
        assert_eq!(
            echo.build,
            Some(Build::Makefile {
                dir: stack.root.clone(),
                target: "EchoFunction".into(),
                artifacts: artifacts.clone(),
            })
        );
        assert_eq!(
            echo.config.command,
            vec![artifacts.join("bootstrap").into_os_string()]
        );
        assert_eq!(echo.config.task_root.as_ref(), Some(&artifacts));
        assert_eq!(echo.watch, vec![stack.root.clone()]);
        let url = echo.url.as_ref().unwrap_or_else(|| panic!("no URL"));
        assert_eq!(url.invoke_mode, InvokeMode::Buffered);
        let api = &stack.http_apis[0];
        assert_eq!(api.name, "ServerlessHttpApi");
        assert_eq!(api.stage, "$default");
        assert_eq!(api.payload_version, PayloadVersion::V2);
        assert_eq!(
            api.routes,
            vec![("GET /hello/{name}".to_owned(), "EchoFunction".to_owned())]
        );
        // EchoFunctionUrl sorts before ServerlessHttpApi.
        assert_eq!((url.port, api.port), (3000, 3001));
        let output = |name: &str| {
            stack
                .outputs
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.value.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            output("EchoFunctionUrl"),
            format!("https://{}/", url.aws_host.as_deref().unwrap_or_default())
        );
        assert_eq!(
            output("HelloApi"),
            format!(
                "https://{}/hello/world",
                api.aws_host.as_deref().unwrap_or_default()
            )
        );
        assert!(stack.local_environment);
        assert_eq!(stack.settings.account_id, "123456789012");
    }

    #[test]
    fn chat_example_has_a_websocket_api_a_table_and_the_connections_endpoint() {
        let stack = example("chat");
        let names: Vec<&str> = stack
            .functions
            .iter()
            .map(|f| f.config.name.as_str())
            .collect();
        assert_eq!(names, vec!["BroadcastFunction", "ChatFunction"]);
        let ws = &stack.websocket_apis[0];
        assert_eq!(ws.name, "WebSocketApi");
        assert_eq!(ws.stage, "staging");
        assert_eq!(ws.route_selection, "$request.body.action");
        assert_eq!(ws.routes.len(), 4);
        assert!(
            ws.routes
                .iter()
                .all(|(_, f, two_way)| f == "ChatFunction" && !two_way)
        );
        let mut keys: Vec<&str> = ws.routes.iter().map(|(k, _, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec!["$connect", "$default", "$disconnect", "broadcast"]
        );
        let table = &stack.tables[0];
        assert_eq!(table.name, "coldstart-ConnectionsTable");
        assert_eq!(
            table.key,
            vec![("connectionId".to_owned(), "HASH".to_owned())]
        );
        assert_eq!(table.global_indexes[0].name, "channel-index");
        assert_eq!(table.global_indexes[0].projection, "KEYS_ONLY");
        assert_eq!(table.ttl_attribute.as_deref(), Some("expiresAt"));
        let host = ws.aws_host.as_deref().unwrap_or_default();
        let id = host.split('.').next().unwrap_or_default();
        assert_eq!(id.len(), 10);
        for f in &stack.functions {
            assert_eq!(
                f.config
                    .environment
                    .get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
                    .map(String::as_str),
                Some(format!("https://{id}.execute-api.us-east-1.amazonaws.com/staging").as_str())
            );
            assert_eq!(
                f.config
                    .environment
                    .get("CONNECTIONS_TABLE")
                    .map(String::as_str),
                Some("coldstart-ConnectionsTable")
            );
        }
        let api = &stack.http_apis[0];
        assert_eq!(
            api.routes,
            vec![("POST /broadcast".to_owned(), "BroadcastFunction".to_owned())]
        );
        // The routes, integration, deployment and stage are part of the WebSocket API.
        let listed: Vec<&str> = stack
            .not_emulated
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(listed, vec!["ChatInvokePermission"]);
        let output = stack.outputs.iter().find(|o| o.name == "WebSocketUrl");
        assert_eq!(
            output.map(|o| o.value.as_str()),
            Some(format!("wss://{id}.execute-api.us-east-1.amazonaws.com/staging").as_str())
        );
    }

    #[test]
    fn web_example_has_a_layer_built_by_make() {
        let stack = example("web");
        let layer = &stack.layers[0];
        assert_eq!(layer.name, "AdapterLayer");
        let artifacts = stack.root.join(".coldstart/build/AdapterLayer");
        assert_eq!(layer.content, artifacts);
        assert!(
            matches!(&layer.build, Some(Build::Makefile { target, .. }) if target == "AdapterLayer")
        );
        let web = function(&stack, "WebFunction");
        assert_eq!(web.layers, vec!["AdapterLayer".to_owned()]);
        assert!(web.config.sandbox_port, "PORT is set");
        assert_eq!(
            web.url.as_ref().map(|u| u.invoke_mode),
            Some(InvokeMode::ResponseStream)
        );
    }

    #[test]
    fn bash_example_runs_its_folder_as_it_is() {
        let stack = example("bash");
        let bash = function(&stack, "BashFunction");
        assert!(bash.build.is_none());
        assert!(
            PathBuf::from(&bash.config.command[0]).ends_with("examples/bash/bootstrap"),
            "{:?}",
            bash.config.command
        );
        assert_eq!(bash.config.handler.as_deref(), Some("function.handler"));
        assert_eq!(stack.outputs[0].value, "BashFunction");
    }

    #[test]
    fn stream_example_has_a_streaming_url() {
        let stack = example("stream");
        let f = function(&stack, "StreamFunction");
        assert_eq!(
            f.url.as_ref().map(|u| (u.invoke_mode, u.port)),
            Some((InvokeMode::ResponseStream, 3000))
        );
        assert_eq!(f.config.timeout, std::time::Duration::from_secs(30));
    }

    #[test]
    fn json_templates_read_like_yaml() {
        let stack = ok(r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {
    "Echo": {
      "Type": "AWS::Lambda::Function",
      "Properties": {
        "Code": "build/echo",
        "Runtime": "provided.al2",
        "Handler": "x",
        "MemorySize": 256,
        "Environment": {"Variables": {"NAME": {"Fn::Sub": "${AWS::StackName}-echo"}, "N": 3, "B": true}}
      }
    },
    "Queue": {"Type": "AWS::SQS::Queue"}
  },
  "Outputs": {"Queue": {"Value": {"Ref": "Queue"}}}
}"#);
        let echo = function(&stack, "Echo");
        assert_eq!(echo.config.memory_mb, 256);
        assert_eq!(
            echo.config.command,
            vec![OsString::from("/app/build/echo/bootstrap")]
        );
        let env: Vec<(&str, &str)> = echo
            .config
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            vec![("B", "true"), ("N", "3"), ("NAME", "coldstart-echo")]
        );
        assert_eq!(
            stack.outputs[0].value,
            "https://sqs.us-east-1.amazonaws.com/123456789012/coldstart-Queue"
        );
        assert_eq!(
            stack.not_emulated,
            vec![("Queue".to_owned(), "AWS::SQS::Queue".to_owned())]
        );
    }

    use std::ffi::OsString;

    #[test]
    fn yaml_syntax_errors_name_the_file_line_and_column() {
        let e = err("Resources:\n  A: [1, 2\n");
        assert!(e.starts_with("template.yaml:"), "{e}");
        let (line, column) = e
            .split(':')
            .skip(1)
            .take(2)
            .map(|n| n.trim().parse::<usize>().unwrap_or(0))
            .fold((0, 0), |(l, _), n| if l == 0 { (n, 0) } else { (l, n) });
        assert!(line >= 2 && column >= 1, "{e}");
    }

    #[test]
    fn timeout_and_memory_outside_lambdas_limits_are_errors_at_the_property() {
        let e = err(&format!("{FUNCTION}      Timeout: 901\n"));
        assert_eq!(
            e,
            "template.yaml: Resources.Echo.Properties.Timeout: must be 1 to 900 seconds, not 901"
        );
        let e = err(&format!("{FUNCTION}      MemorySize: 64\n"));
        assert!(
            e.starts_with(
                "template.yaml: Resources.Echo.Properties.MemorySize: must be 128 to 10240"
            ),
            "{e}"
        );
        let e = err(&format!("{FUNCTION}      Architectures: [mips]\n"));
        assert!(e.contains("Resources.Echo.Properties.Architectures"), "{e}");
    }

    #[test]
    fn log_levels_are_checked_at_their_property() {
        let e = err(&format!(
            "{FUNCTION}      LoggingConfig: {{LogFormat: JSON, SystemLogLevel: ERROR}}\n"
        ));
        assert_eq!(
            e,
            "template.yaml: Resources.Echo.Properties.LoggingConfig.SystemLogLevel: must be one of DEBUG, INFO, WARN, not ERROR"
        );
        let e = err(&format!(
            "{FUNCTION}      LoggingConfig: {{LogFormat: JSON, ApplicationLogLevel: debug}}\n"
        ));
        assert!(
            e.contains("LoggingConfig.ApplicationLogLevel: must be one of TRACE,"),
            "{e}"
        );
        let e = err(&format!(
            "{FUNCTION}      LoggingConfig: {{ApplicationLogLevel: WARN}}\n"
        ));
        assert!(
            e.ends_with(
                "LoggingConfig: ApplicationLogLevel and SystemLogLevel need LogFormat JSON"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_function_without_code_is_an_error_at_code_uri() {
        let e = err(
            "Resources:\n  Echo:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: provided.al2023\n",
        );
        assert_eq!(
            e,
            "template.yaml: Resources.Echo.Properties.CodeUri: a function without code"
        );
    }

    #[test]
    fn an_unknown_ref_is_an_error_naming_it_at_its_path() {
        let e = err(&format!(
            "{FUNCTION}      Environment:\n        Variables:\n          TABLE: !Ref Tabel\n"
        ));
        assert!(
            e.starts_with(
                "template.yaml: Resources.Echo.Properties.Environment.Variables.TABLE.Ref: Tabel is not"
            ),
            "{e}"
        );
    }

    #[test]
    fn get_att_of_a_missing_attribute_is_an_error_naming_both() {
        let e = err(&format!(
            "{FUNCTION}      Environment:\n        Variables:\n          ARN: !GetAtt Other.Nope\n  Other:\n    Type: AWS::SNS::Topic\n"
        ));
        assert!(
            e.starts_with("template.yaml: Resources.Echo.Properties.Environment.Variables.ARN")
                && e.contains(
                    "Other (AWS::SNS::Topic) has no attribute Nope (available: TopicArn, TopicName)"
                ),
            "{e}"
        );
        // A resource that is not emulated fails only when an attribute it lacks is used.
        let e = err(&format!(
            "{FUNCTION}      Environment:\n        Variables:\n          X: !GetAtt Rule.Arn\n  Rule:\n    Type: AWS::Events::Rule\n"
        ));
        assert!(
            e.contains("Rule (AWS::Events::Rule) has no attribute Arn"),
            "{e}"
        );
    }

    #[test]
    fn a_parameter_outside_allowed_values_is_an_error_at_it() {
        let template = format!(
            "Parameters:\n  Stage:\n    Type: String\n    Default: dev\n    AllowedValues: [dev, prod]\n{FUNCTION}"
        );
        let options = TemplateOptions {
            parameter_overrides: vec![("Stage".into(), "test".into())],
            ..TemplateOptions::default()
        };
        let e = read_with(&template, &options).err().unwrap_or_default();
        assert!(
            e.starts_with(
                "template.yaml: Parameters.Stage: \"test\" is not one of the allowed values"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_cycle_is_an_error_naming_its_resources_in_order() {
        let e = err(&format!(
            "{FUNCTION}      Environment:\n        Variables:\n          URL: !GetAtt EchoUrl.FunctionUrl\n      FunctionUrlConfig:\n        AuthType: NONE\n"
        ));
        assert!(e.starts_with("template.yaml: Resources.Echo"), "{e}");
        assert!(e.contains("circular dependency between resources"), "{e}");
        assert!(
            e.contains("Echo → EchoUrl → Echo") || e.contains("EchoUrl → Echo → EchoUrl"),
            "{e}"
        );
        let e = err(
            "Resources:\n  A:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !GetAtt B.TopicName\n  B:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Sub '${C}'\n  C:\n    Type: AWS::SNS::Topic\n    DependsOn: A\n",
        );
        assert!(
            e.starts_with(
                "template.yaml: Resources.A: circular dependency between resources: A → B → C → A"
            ),
            "{e}"
        );
    }

    #[test]
    fn conditions_decide_which_resources_and_outputs_exist() {
        let template = "
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Or [!Condition IsProd, !Equals [a, a]]]
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Runtime: provided.al2023
      MemorySize: !If [IsProd, 1024, 256]
      Environment:
        Variables:
          DEV_ONLY: !If [IsDev, yes, !Ref AWS::NoValue]
          PROD_ONLY: !If [IsProd, yes, !Ref AWS::NoValue]
  ProdTable:
    Type: AWS::Serverless::SimpleTable
    Condition: IsProd
Outputs:
  Table:
    Condition: IsProd
    Value: !Ref ProdTable
  Both:
    Condition: Both
    Value: both
";
        let dev = ok(template);
        let echo = function(&dev, "Echo");
        assert_eq!(echo.config.memory_mb, 256);
        assert!(echo.config.environment.contains_key("DEV_ONLY"));
        assert!(!echo.config.environment.contains_key("PROD_ONLY"));
        assert!(dev.tables.is_empty());
        let names: Vec<&str> = dev.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, vec!["Both"]);
        let prod = read_with(
            template,
            &TemplateOptions {
                parameter_overrides: vec![("Stage".into(), "prod".into())],
                ..TemplateOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(function(&prod, "Echo").config.memory_mb, 1024);
        assert_eq!(
            prod.tables[0].key,
            vec![("id".to_owned(), "HASH".to_owned())]
        );
        assert_eq!(prod.outputs.len(), 1);
        // A reference to a resource whose condition is false names the condition.
        let e = err(&format!(
            "{FUNCTION}      Environment:\n        Variables:\n          T: !Ref Gone\n  Gone:\n    Type: AWS::SNS::Topic\n    Condition: Never\nConditions:\n  Never: !Equals [a, b]\n"
        ));
        assert!(
            e.contains("Resources.Echo.Properties.Environment.Variables.T.Ref: Gone does not exist: its condition Never is false"),
            "{e}"
        );
    }

    #[test]
    fn a_cycle_between_conditions_is_an_error_at_one_of_them() {
        let e = err(&format!(
            "Conditions:\n  A: !Not [!Condition B]\n  B: !And [!Condition A, !Equals [x, x]]\n{FUNCTION}"
        ));
        assert_eq!(
            e,
            "template.yaml: Conditions.A: the conditions form a cycle: A → B → A"
        );
    }

    #[test]
    fn mappings_and_find_in_map_resolve() {
        let stack = ok(&format!(
            "Mappings:\n  Sizes:\n    us-east-1: {{Memory: 512}}\n{FUNCTION}      MemorySize: !FindInMap [Sizes, !Ref AWS::Region, Memory]\n"
        ));
        assert_eq!(function(&stack, "Echo").config.memory_mb, 512);
    }

    #[test]
    fn globals_merge_into_functions() {
        let stack = ok("
Globals:
  Function:
    Runtime: provided.al2023
    Timeout: 10
    CodeUri: code/
    Environment:
      Variables: {A: global, B: global}
Resources:
  One:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 20
      Environment:
        Variables: {B: own}
  Two:
    Type: AWS::Serverless::Function
");
        let one = function(&stack, "One");
        assert_eq!(one.config.timeout, std::time::Duration::from_secs(20));
        assert_eq!(
            one.config.environment.get("A").map(String::as_str),
            Some("global")
        );
        assert_eq!(
            one.config.environment.get("B").map(String::as_str),
            Some("own")
        );
        let two = function(&stack, "Two");
        assert_eq!(two.config.timeout, std::time::Duration::from_secs(10));
        assert_eq!(
            two.config.environment.get("B").map(String::as_str),
            Some("global")
        );
    }

    #[test]
    fn ports_follow_the_logical_ids_of_every_front_door() {
        let template = "
Transform: [AWS::Serverless-2016-10-31]
Resources:
  Zeta:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Runtime: provided.al2023
      FunctionUrlConfig: {AuthType: NONE, InvokeMode: RESPONSE_STREAM}
      Events:
        Get: {Type: HttpApi, Properties: {Path: /z, Method: get}}
        Rest: {Type: Api, Properties: {Path: /r, Method: any}}
        Own: {Type: HttpApi, Properties: {ApiId: !Ref Alpha}}
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
  Alpha:
    Type: AWS::Serverless::HttpApi
    Properties: {StageName: v1}
  Sockets:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
";
        let stack = read_with(
            template,
            &TemplateOptions {
                port_base: 4000,
                ..TemplateOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Alpha, ServerlessHttpApi, ServerlessRestApi, Sockets, ZetaUrl.
        let port = |name: &str| {
            stack
                .http_apis
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.port)
                .or_else(|| {
                    stack
                        .websocket_apis
                        .iter()
                        .find(|a| a.name == name)
                        .map(|a| a.port)
                })
        };
        assert_eq!(port("Alpha"), Some(4000));
        assert_eq!(port("ServerlessHttpApi"), Some(4001));
        assert_eq!(port("ServerlessRestApi"), Some(4002));
        assert_eq!(port("Sockets"), Some(4003));
        assert_eq!(
            function(&stack, "Zeta").url.as_ref().map(|u| u.port),
            Some(4004)
        );
        let rest = stack
            .http_apis
            .iter()
            .find(|a| a.name == "ServerlessRestApi");
        assert_eq!(
            rest.map(|a| (a.stage.as_str(), a.payload_version, a.routes.clone())),
            Some((
                "Prod",
                PayloadVersion::V1,
                vec![("ANY /r".to_owned(), "Zeta".to_owned())]
            ))
        );
        let alpha = stack.http_apis.iter().find(|a| a.name == "Alpha");
        assert_eq!(
            alpha.map(|a| (a.stage.as_str(), a.routes.clone())),
            Some(("v1", vec![("$default".to_owned(), "Zeta".to_owned())]))
        );
        // Its schedule fires it (it is no longer a notice).
        assert_eq!(
            stack
                .schedules
                .iter()
                .map(|s| (s.name.as_str(), s.function.as_str()))
                .collect::<Vec<_>>(),
            [("ZetaTick", "Zeta")]
        );
        assert!(
            !stack.notices.iter().any(|n| n.contains("Tick")),
            "{:?}",
            stack.notices
        );
        let zero = read_with(
            template,
            &TemplateOptions {
                port_base: 0,
                ..TemplateOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(zero.ports().is_empty());
    }

    #[test]
    fn a_python_function_runs_its_handler_on_awslambdaric_with_pip_installs_as_its_build() {
        let stack = ok("
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: py/
      Runtime: python3.12
      Handler: app.handler
      Timeout: 7
");
        let py = &stack.functions[0];
        assert_eq!(
            py.config.command[1..],
            ["-m", "awslambdaric", "app.handler"]
        );
        assert!(
            py.config.command[0]
                .to_string_lossy()
                .starts_with("python3"),
            "{:?}",
            py.config.command
        );
        assert_eq!(py.config.timeout, std::time::Duration::from_secs(7));
        assert_eq!(py.config.handler.as_deref(), Some("app.handler"));
        let path = &py.config.environment["PYTHONPATH"];
        assert!(
            path.split(':').next().is_some_and(|p| p.ends_with("py")),
            "{path}"
        );
        assert!(path.ends_with("awslambdaric-4.2.2"), "{path}");
        assert!(
            matches!(py.build, Some(Build::Pip { .. })),
            "{:?}",
            py.build
        );

        let err = err("
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: py/, Runtime: python3.12}
");
        assert!(err.contains("Resources.Py.Properties.Handler"), "{err}");
    }

    #[test]
    fn a_node_function_runs_its_handler_on_aws_lambda_ric_with_npm_installs_as_its_build() {
        let stack = ok("
Resources:
  Js:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: js/
      Runtime: nodejs22.x
      Handler: app.handler
");
        let Some(js) = stack.functions.first() else {
            // No node, or no tools to build the client's addon: said, and the rest served.
            assert!(
                stack
                    .notices
                    .iter()
                    .any(|n| n.starts_with("Js: Runtime nodejs22.x needs")
                        && n.ends_with("; the other functions are served")),
                "{:?}",
                stack.notices
            );
            return;
        };
        assert_eq!(js.config.command[0], "node");
        assert!(
            js.config.command[1]
                .to_string_lossy()
                .ends_with("aws-lambda-ric/bin/index.mjs"),
            "{:?}",
            js.config.command
        );
        assert_eq!(js.config.command[2], "app.handler");
        assert_eq!(
            js.config.environment["AWS_EXECUTION_ENV"],
            "AWS_Lambda_nodejs22.x"
        );
        let path = &js.config.environment["NODE_PATH"];
        assert!(path.ends_with("/js"), "{path}");
        assert!(
            matches!(js.build, Some(Build::Npm { .. })),
            "{:?}",
            js.build
        );
        if !stack.notices.is_empty() {
            assert!(
                stack.notices[0].starts_with(
                    "Js: Runtime nodejs22.x is not installed here; it runs on node (Node.js "
                ),
                "{:?}",
                stack.notices
            );
        }

        let err = err("
Resources:
  Js:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: js/, Runtime: nodejs20.x}
");
        assert!(
            err.contains("Resources.Js.Properties.Handler") && err.contains("(file.function)"),
            "{err}"
        );
    }

    #[test]
    fn other_runtimes_and_remote_code_are_left_out_with_their_routes() {
        let stack = ok("
Resources:
  Js:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: js/
      Runtime: java21
      Handler: app.handler
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Get: {Type: HttpApi, Properties: {Path: /py, Method: GET}}
  Remote:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Code: {S3Bucket: b, S3Key: k}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Runtime: provided.al2023
      Events:
        Get: {Type: HttpApi, Properties: {Path: /echo, Method: GET}}
");
        assert_eq!(stack.functions.len(), 1);
        assert!(
            stack
                .notices
                .iter()
                .any(|n| n == "Js: Runtime java21 cannot run yet; the other functions are served"),
            "{:?}",
            stack.notices
        );
        assert!(stack.notices.iter().any(|n| n.starts_with("Remote:")));
        assert_eq!(
            stack.http_apis[0].routes,
            vec![("GET /echo".to_owned(), "Echo".to_owned())]
        );
        assert_eq!(stack.ports().len(), 1);
    }

    #[test]
    fn layers_concurrency_logging_and_the_web_adapter() {
        let template = "
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: web/
      Runtime: provided.al2023
      ReservedConcurrentExecutions: 3
      LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG}
      Layers:
        - !Sub arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerX86:25
        - arn:aws:lambda:us-east-1:999999999999:layer:Other:3
        - !GetAtt Local.LayerVersionArn
  Local:
    Type: AWS::Lambda::LayerVersion
    Properties: {Content: layer/}
  Throttled:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: t/
      Runtime: provided.al2
      ReservedConcurrentExecutions: 0
      Architectures: [arm64]
      Metadata: {}
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties: {Binary: throttled}
";
        let stack = read_with(
            template,
            &TemplateOptions {
                adapter: Some(PathBuf::from("/bin/coldstart-adapter")),
                ..TemplateOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let web = function(&stack, "Web");
        assert_eq!(web.config.concurrency, 3);
        assert_eq!(
            web.config.extensions,
            vec![PathBuf::from("/bin/coldstart-adapter")]
        );
        assert!(web.config.sandbox_port);
        assert_eq!(web.layers, vec!["Local".to_owned()]);
        assert_eq!(web.config.log_format, coldstart_emulator::LogFormat::Json);
        assert_eq!(
            web.config.log_levels(),
            Some((
                coldstart_emulator::LogLevel::Debug,
                coldstart_emulator::LogLevel::Info
            )),
            "SystemLogLevel defaults to INFO"
        );
        assert_eq!(stack.layers[0].content, PathBuf::from("/app/layer"));
        assert!(
            stack.notices.iter().any(|n| n
                == "layer arn:aws:lambda:us-east-1:999999999999:layer:Other:3 is not available locally; Web starts without it"),
            "{:?}",
            stack.notices
        );
        let throttled = function(&stack, "Throttled");
        assert_eq!(throttled.config.concurrency, 10);
        assert!(stack.notices.iter().any(|n| n.contains("throttled on AWS")));
        assert_eq!(
            throttled.build,
            Some(Build::Cargo {
                dir: PathBuf::from("/app/t"),
                binary: Some("throttled".into()),
                artifacts: PathBuf::from("/app/.coldstart/build/Throttled"),
            })
        );
        let without = read(template).unwrap_or_else(|e| panic!("{e}"));
        assert!(function(&without, "Web").config.extensions.is_empty());
        assert!(without.notices.iter().any(|n| n.contains("Web Adapter")));
    }

    #[test]
    fn env_vars_file_overrides_declared_variables() {
        let dir = std::env::temp_dir().join(format!("coldstart-env-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("env.json");
        std::fs::write(
            &file,
            r#"{"Parameters": {"A": "p", "NEW": "x"}, "Echo": {"B": "e"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let stack = read_with(
            &format!("{FUNCTION}      Environment:\n        Variables: {{A: t, B: t}}\n"),
            &TemplateOptions {
                env_vars: Some(file.clone()),
                ..TemplateOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let env = &function(&stack, "Echo").config.environment;
        assert_eq!(env.get("A").map(String::as_str), Some("p"));
        assert_eq!(env.get("B").map(String::as_str), Some("e"));
        assert!(!env.contains_key("NEW"));
        std::fs::write(&file, "{nope").unwrap_or_else(|e| panic!("{e}"));
        let e = read_with(
            FUNCTION,
            &TemplateOptions {
                env_vars: Some(file.clone()),
                ..TemplateOptions::default()
            },
        )
        .err()
        .unwrap_or_default();
        assert!(e.starts_with(&file.display().to_string()), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn http_apis_from_api_gateway_v2_resources() {
        let stack = ok("
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {Code: ., Runtime: provided.al2023}
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: api, ProtocolType: HTTP}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Fn.Arn
      PayloadFormatVersion: '1.0'
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: GET /items/{id}
      Target: !Join [/, [integrations, !Ref Integration]]
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: $default, AutoDeploy: true}
  Url:
    Type: AWS::Lambda::Url
    Properties: {TargetFunctionArn: !Ref Fn, AuthType: NONE}
Outputs:
  Endpoint:
    Value: !GetAtt Api.ApiEndpoint
  Url:
    Value: !GetAtt Url.FunctionUrl
");
        let api = &stack.http_apis[0];
        assert_eq!(
            api.routes,
            vec![("GET /items/{id}".to_owned(), "Fn".to_owned())]
        );
        assert_eq!(api.payload_version, PayloadVersion::V1);
        assert_eq!(api.stage, "$default");
        assert!(stack.not_emulated.is_empty(), "{:?}", stack.not_emulated);
        let host = api.aws_host.as_deref().unwrap_or_default();
        assert_eq!(stack.outputs[0].value, format!("https://{host}"));
        let url = function(&stack, "Fn")
            .url
            .as_ref()
            .map(|u| u.aws_host.clone());
        assert_eq!(
            Some(Some(
                stack.outputs[1]
                    .value
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned()
            )),
            url
        );
    }

    #[test]
    fn references_give_what_cloudformation_gives() {
        let stack = ok(&format!(
            "{FUNCTION}      Layers: [!Ref Layer]
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {{ContentUri: s3://bucket/layer.zip}}
  Topic: {{Type: AWS::SNS::Topic}}
  Queue: {{Type: AWS::SQS::Queue, Properties: {{QueueName: jobs}}}}
  Bucket: {{Type: AWS::S3::Bucket}}
  Role: {{Type: AWS::IAM::Role}}
  Table: {{Type: AWS::DynamoDB::Table, Properties: {{TableName: items, KeySchema: [{{AttributeName: id, KeyType: HASH}}], AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]}}}}
Outputs:
  Fn: {{Value: !Ref Echo}}
  FnArn: {{Value: !GetAtt Echo.Arn}}
  FnRole: {{Value: !GetAtt EchoRole.Arn}}
  Layer: {{Value: !Ref Layer}}
  Topic: {{Value: !Ref Topic}}
  TopicName: {{Value: !GetAtt Topic.TopicName}}
  Queue: {{Value: !GetAtt Queue.Arn}}
  Bucket: {{Value: !GetAtt Bucket.DomainName}}
  Role: {{Value: !GetAtt Role.Arn}}
  Table: {{Value: !Ref Table}}
  Stream: {{Value: !GetAtt Table.StreamArn}}
  AZs: {{Value: !GetAZs ''}}
"
        ));
        let out = |name: &str| {
            stack
                .outputs
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.value.clone())
                .unwrap_or_default()
        };
        assert_eq!(out("Fn"), "Echo");
        assert_eq!(
            out("FnArn"),
            "arn:aws:lambda:us-east-1:123456789012:function:Echo"
        );
        assert_eq!(
            out("FnRole"),
            "arn:aws:iam::123456789012:role/coldstart-EchoRole"
        );
        assert_eq!(
            out("Layer"),
            "arn:aws:lambda:us-east-1:123456789012:layer:Layer:1"
        );
        assert_eq!(
            out("Topic"),
            "arn:aws:sns:us-east-1:123456789012:coldstart-Topic"
        );
        assert_eq!(out("TopicName"), "coldstart-Topic");
        assert_eq!(out("Queue"), "arn:aws:sqs:us-east-1:123456789012:jobs");
        assert_eq!(out("Bucket"), "coldstart-bucket.s3.amazonaws.com");
        assert_eq!(out("Role"), "arn:aws:iam::123456789012:role/coldstart-Role");
        assert_eq!(out("Table"), "items");
        assert!(
            out("Stream")
                .starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/items/stream/")
        );
        assert_eq!(out("AZs"), "us-east-1a,us-east-1b,us-east-1c");
        assert!(function(&stack, "Echo").layers.is_empty());
        assert!(
            stack
                .notices
                .iter()
                .any(|n| n.contains("layer Layer is not available locally"))
        );
    }

    #[test]
    fn import_value_is_a_clear_error() {
        let e = err(&format!(
            "{FUNCTION}      Environment:\n        Variables:\n          VPC: !ImportValue shared-vpc\n"
        ));
        assert!(
            e.contains("Resources.Echo.Properties.Environment.Variables.VPC.Fn::ImportValue: Fn::ImportValue needs another stack's exports"),
            "{e}"
        );
    }

    #[test]
    fn a_thousand_resources_resolve() {
        let mut t = String::from("Transform: AWS::Serverless-2016-10-31\nResources:\n");
        for i in 0..334 {
            t.push_str(&format!(
                "  Table{i}:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Sub '${{AWS::StackName}}-t{i}'\n      KeySchema: [{{AttributeName: id, KeyType: HASH}}]\n      AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]\n"
            ));
            let previous = if i == 0 {
                "first".to_owned()
            } else {
                format!("${{Queue{}.QueueName}}", i - 1)
            };
            t.push_str(&format!(
                "  Queue{i}:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub '${{Table{i}}}-{previous}-q'\n"
            ));
            t.push_str(&format!(
                "  Fn{i}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn{i}/\n      Runtime: provided.al2023\n      Environment:\n        Variables:\n          TABLE: !Ref Table{i}\n          QUEUE: !GetAtt Queue{i}.Arn\n          URL: !Ref Queue{i}\n"
            ));
        }
        let stack = ok(&t);
        assert_eq!(stack.functions.len(), 334);
        assert_eq!(stack.tables.len(), 334);
        assert_eq!(stack.not_emulated.len(), 334);
        let f = function(&stack, "Fn333");
        assert_eq!(
            f.config.environment.get("TABLE").map(String::as_str),
            Some("coldstart-t333")
        );
        assert!(
            f.config
                .environment
                .get("QUEUE")
                .is_some_and(|q| q.ends_with("-q"))
        );
    }
}

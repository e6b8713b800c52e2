//! A stack under test: read (a template, a `coldstart.toml`, one bootstrap), built, started on
//! free ports through `coldstart-stack`, called, stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use coldstart_stack::{
    Endpoint, EndpointKind, FunctionSpec, Reporter, Running, Source, StartOptions, TemplateOptions,
};

use crate::error::Error;
use crate::function::Function;
use crate::http::{Response, send};
use crate::invocation::{Invocation, StreamedInvocation};
use crate::logs::Logs;

/// What a stack is read from.
#[derive(Debug, Clone)]
enum From {
    File(Source),
    Function(Box<Function>),
}

/// Whether `event` is about the invocation `request_id`.
fn of_request(event: &serde_json::Value, request_id: &str) -> bool {
    let record = &event["record"];
    record["requestId"] == request_id
        || record.get("requestId").is_none()
            && record
                .as_str()
                .is_some_and(|line| line.contains(request_id))
}

/// A WebSocket connection to one of the stack's APIs ([`Stack::websocket`]).
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How to start a [`Stack`]: made by [`Stack::from_template`], [`Stack::from_config`] or
/// [`Stack::function`], then [`Builder::start`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until started"]
pub struct Builder {
    from: From,
    options: TemplateOptions,
    build: bool,
    environment: Vec<(String, String)>,
    dynamodb_endpoint: Option<String>,
    /// (function, runtime) that replace the file's bootstraps.
    replacements: Vec<(String, Function)>,
    /// (layer, folder) that replace the file's layers' content.
    layers: Vec<(String, PathBuf)>,
    /// Whether schedules fire at their times. Default: no ([`Stack::fire_schedule`] fires one).
    schedules: bool,
    sqs_endpoint: Option<String>,
}

/// A running stack. Dropping it kills its functions' processes; [`Stack::stop`] stops it in
/// order (runtimes get SIGTERM, extensions SHUTDOWN).
#[derive(Debug)]
pub struct Stack {
    /// Taken by [`Stack::stop`].
    running: Option<Running>,
    logs: Arc<Logs>,
    sdk: aws_sdk_lambda::Client,
}

/// The name a stack of one bootstrap ([`Stack::function`]) gives its function, as `coldstart
/// run` and the Runtime Interface Emulator do.
pub const FUNCTION: &str = "function";

impl Stack {
    /// A SAM/CloudFormation template's stack.
    pub fn from_template(path: impl Into<PathBuf>) -> Builder {
        Builder::new(From::File(Source::Template(path.into())))
    }

    /// A `coldstart.toml`'s stack.
    pub fn from_config(path: impl Into<PathBuf>) -> Builder {
        Builder::new(From::File(Source::Config(path.into())))
    }

    /// One bootstrap (any executable speaking the Runtime API: a `cargo` binary, a script)
    /// served as the function [`FUNCTION`].
    pub fn function(bootstrap: impl Into<PathBuf>) -> Builder {
        Function::binary(bootstrap).stack()
    }

    fn running(&self) -> &Running {
        // Only `stop` (which consumes the stack) and `drop` take it.
        self.running
            .as_ref()
            .unwrap_or_else(|| unreachable!("a stack is running until stopped"))
    }

    /// Every endpoint: the Invoke API first, then Function URLs and APIs.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.running().endpoints
    }

    /// The URL of the endpoint named `name` (a function with a URL, or an API; `*` for the
    /// Invoke API): `http://127.0.0.1:PORT/`, `http://…/Prod/`, `ws://…/stage`.
    pub fn url(&self, name: &str) -> Result<&str, Error> {
        self.endpoints()
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.url.as_str())
            .ok_or_else(|| Error::NoEndpoint {
                name: name.to_owned(),
                kind: "endpoint",
            })
    }

    /// An `aws-sdk-lambda` client pointed at the stack's Invoke API, with test credentials.
    pub fn sdk(&self) -> &aws_sdk_lambda::Client {
        &self.sdk
    }

    /// Invokes `function` synchronously with `payload` (JSON text); the answer comes with the
    /// invocation's log lines.
    pub async fn invoke(
        &self,
        function: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Invocation, Error> {
        use base64::Engine as _;
        let out = self
            .sdk
            .invoke()
            .function_name(function)
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.into()))
            .send()
            .await
            .map_err(|e| Error::Invoke {
                function: function.to_owned(),
                message: format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)),
            })?;
        let logs = out
            .log_result()
            .and_then(|tail| base64::engine::general_purpose::STANDARD.decode(tail).ok())
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Invocation {
            payload: out
                .payload()
                .map(|b| Bytes::copy_from_slice(b.as_ref()))
                .unwrap_or_default(),
            function_error: out.function_error().map(str::to_owned),
            logs,
            version: out.executed_version().map(str::to_owned),
        })
    }

    /// Invokes `function` with `payload` through `InvokeWithResponseStream`: the chunks as the
    /// function wrote them and how the stream ended.
    pub async fn invoke_stream(
        &self,
        function: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<StreamedInvocation, Error> {
        use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as Event;
        let failed = |message: String| Error::Invoke {
            function: function.to_owned(),
            message,
        };
        let mut out = self
            .sdk
            .invoke_with_response_stream()
            .function_name(function)
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.into()))
            .send()
            .await
            .map_err(|e| failed(format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e))))?;
        let mut streamed = StreamedInvocation::default();
        loop {
            match out.event_stream.recv().await {
                Ok(Some(Event::PayloadChunk(chunk))) => {
                    if let Some(bytes) = chunk.payload() {
                        streamed.chunks.push(Bytes::copy_from_slice(bytes.as_ref()));
                    }
                }
                Ok(Some(Event::InvokeComplete(done))) => {
                    streamed.error_code = done.error_code().map(str::to_owned);
                    streamed.error_details = done.error_details().map(str::to_owned);
                    streamed.logs = done
                        .log_result()
                        .and_then(|tail| {
                            use base64::Engine as _;
                            base64::engine::general_purpose::STANDARD.decode(tail).ok()
                        })
                        .map(|bytes| {
                            String::from_utf8_lossy(&bytes)
                                .lines()
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    streamed.complete = true;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    return Err(failed(format!(
                        "{}",
                        aws_sdk_lambda::error::DisplayErrorContext(e)
                    )));
                }
            }
        }
        Ok(streamed)
    }

    /// Opens a WebSocket connection to the API `name` (at its stage), with `query` (say
    /// `"token=abc"`, or `""`) as the query string: its `$connect` (and authorizer) ran.
    pub async fn websocket(&self, name: &str, query: &str) -> Result<WebSocket, Error> {
        let base = self
            .endpoints()
            .iter()
            .find(|e| e.name == name && e.kind == EndpointKind::WebSocket)
            .map(|e| e.url.clone())
            .ok_or_else(|| Error::NoEndpoint {
                name: name.to_owned(),
                kind: "WebSocket API",
            })?;
        let url = if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        };
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| Error::Request {
                url,
                message: e.to_string(),
            })
    }

    /// Sends `request` to the endpoint `name` (a Function URL's function, or an API): its path
    /// is relative to the endpoint's URL (an API's stage included).
    pub async fn send(&self, name: &str, request: http::Request<Bytes>) -> Result<Response, Error> {
        let base = self
            .endpoints()
            .iter()
            .find(|e| e.name == name && e.kind != EndpointKind::WebSocket)
            .map(|e| e.url.clone())
            .ok_or_else(|| Error::NoEndpoint {
                name: name.to_owned(),
                kind: "HTTP endpoint",
            })?;
        send(&base, request).await
    }

    /// `GET path` on the endpoint `name`.
    pub async fn get(&self, name: &str, path: &str) -> Result<Response, Error> {
        let request = http::Request::get(path)
            .body(Bytes::new())
            .map_err(|e| Error::Request {
                url: path.to_owned(),
                message: e.to_string(),
            })?;
        self.send(name, request).await
    }

    /// The process ids of `function`'s live sandboxes (each its bootstrap's process group).
    pub fn sandbox_pids(&self, function: &str) -> Vec<u32> {
        self.running().emulator.sandbox_pids(function)
    }

    /// Fires the schedule `name` now (a `Schedule`/`ScheduleV2` event's `<Function><Event>`,
    /// a rule's or schedule's logical id, or `<function>-schedule` in `coldstart.toml`): its
    /// function gets AWS's payload as an `Event` invocation. Returns each delivery with its
    /// request id (see [`Stack::wait_for_record`]) and payload.
    pub async fn fire_schedule(&self, name: &str) -> Result<Vec<coldstart_stack::Delivery>, Error> {
        Ok(self.running().schedules.fire(name).await?)
    }

    /// Every log line so far, as `(function, line)`.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.logs.all()
    }

    /// The platform events of the invocation `request_id` so far (`platform.start`,
    /// `platform.runtimeDone`, `platform.report`, and JSON log lines that carry its id), in
    /// order: the same events a Telemetry API subscriber gets, and coldstart's own about it
    /// (`coldstart.requestPreview`, `coldstart.responsePreview`: [`coldstart_emulator::notes`]).
    pub fn records_of(&self, request_id: &str) -> Vec<serde_json::Value> {
        self.logs
            .records()
            .into_iter()
            .map(|(_, event)| event)
            .filter(|event| of_request(event, request_id))
            .collect()
    }

    /// Every platform event of every function so far, as `(function, event)`; each event is
    /// `{"time", "type", "record"}` as the Telemetry API sends it.
    pub fn records(&self) -> Vec<(String, serde_json::Value)> {
        self.logs.records()
    }

    /// Waits up to `patience` for the event of type `kind` (`platform.report`, ...) of the
    /// invocation `request_id`.
    pub async fn wait_for_record(
        &self,
        request_id: &str,
        kind: &str,
        patience: Duration,
    ) -> Option<serde_json::Value> {
        self.logs
            .wait_for_record(patience, |event| {
                event["type"] == kind && of_request(event, request_id)
            })
            .await
    }

    /// Waits up to `patience` for a log line of `function` that `pred` accepts.
    pub async fn wait_for_log(
        &self,
        function: &str,
        patience: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.logs.wait_for(function, patience, pred).await
    }

    /// Stops the stack: servers finish their requests, runtimes get SIGTERM, extensions
    /// SHUTDOWN, then whatever is left is killed.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Not stopped (a test that failed, or forgot): no process may outlive the test.
        let Some(running) = self.running.take() else {
            return;
        };
        running.shutdown_token().cancel();
        let mut killed = Vec::new();
        for name in running.emulator.function_names() {
            for pid in running.emulator.sandbox_pids(&name) {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    killed.push(pid);
                }
            }
        }
        // SIGKILL is delivered asynchronously: wait (briefly, bounded) until each is dead, so
        // that no process of the stack is still running once the drop returns.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        for pid in killed {
            while running_process(pid) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Whether process `pid` still exists and is not a zombie.
fn running_process(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

impl Builder {
    fn new(from: From) -> Self {
        Self {
            from,
            options: TemplateOptions {
                port_base: 0,
                ..TemplateOptions::default()
            },
            build: true,
            environment: Vec::new(),
            dynamodb_endpoint: None,
            replacements: Vec::new(),
            layers: Vec::new(),
            schedules: false,
            sqs_endpoint: None,
        }
    }

    /// A stack of `function` alone.
    pub(crate) fn of_function(function: Function) -> Self {
        Self::new(From::Function(Box::new(function)))
    }

    /// Runs `executable` as `function`'s bootstrap instead of what its build makes: a test
    /// serves the template with the binary cargo built for it (`env!("CARGO_BIN_EXE_…")`).
    /// That function's build is skipped.
    pub fn bootstrap(self, function: impl Into<String>, executable: impl Into<PathBuf>) -> Self {
        self.function(function, Function::binary(executable))
    }

    /// Runs `runtime` (an in-process [`Function::handler`], a [`Function::binary`], a
    /// [`Function::cargo_bin`]) as `function`'s code instead of what its build makes; the
    /// function keeps the file's settings (timeout, memory, environment, events) and its build
    /// is skipped. A test serves a template's APIs with handlers it defines itself.
    pub fn function(mut self, function: impl Into<String>, runtime: Function) -> Self {
        self.replacements.push((function.into(), runtime));
        self
    }

    /// Serves `folder` as the content of the template's layer `layer` (its logical id) instead of
    /// what its build makes (that build is skipped): a test provides a layer's files, say an
    /// extension cargo built, as `extensions/<name>`.
    pub fn layer(mut self, layer: impl Into<String>, folder: impl Into<PathBuf>) -> Self {
        self.layers.push((layer.into(), folder.into()));
        self
    }

    /// The stack's name (`AWS::StackName`, and the prefix of its tables' generated names):
    /// tests that share a DynamoDB endpoint give each stack its own.
    pub fn stack_name(mut self, name: impl Into<String>) -> Self {
        self.options.stack_name = name.into();
        self
    }

    /// A template parameter's value (`--parameter-overrides`).
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options
            .parameter_overrides
            .push((key.into(), value.into()));
        self
    }

    /// An environment variable for every function (over the file's own).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.environment.push((key.into(), value.into()));
        self
    }

    /// Run the stack's builds before starting (`coldstart up` does; `--no-build` does not).
    /// Default: true.
    pub fn build(mut self, build: bool) -> Self {
        self.build = build;
        self
    }

    /// A DynamoDB-compatible endpoint: the template's tables are created there and functions
    /// get `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn dynamodb_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.dynamodb_endpoint = Some(endpoint.into());
        self
    }

    /// An SQS-compatible endpoint: the stack's queues are created there and its SQS event
    /// sources poll them, as `up --sqs-endpoint` does.
    pub fn sqs_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.sqs_endpoint = Some(endpoint.into());
        self
    }

    /// Let the stack's schedules fire at their times, as `coldstart up` does. Default: false,
    /// so that a test decides when each fires ([`Stack::fire_schedule`]).
    pub fn schedules(mut self, fire: bool) -> Self {
        self.schedules = fire;
        self
    }

    /// Reads, builds (unless told not to) and starts the stack, every port a free one.
    pub async fn start(self) -> Result<Stack, Error> {
        let mut stack = match &self.from {
            From::File(source) => source.load(&self.options)?,
            From::Function(function) => one_function(function),
        };
        for (name, runtime) in &self.replacements {
            let function = stack
                .functions
                .iter_mut()
                .find(|f| &f.config.name == name)
                .ok_or_else(|| Error::NoEndpoint {
                    name: name.clone(),
                    kind: "function",
                })?;
            function.config.command.clone_from(&runtime.config.command);
            function
                .config
                .in_process
                .clone_from(&runtime.config.in_process);
            function.config.task_root = None;
            if runtime.is_in_process() {
                function.config.freeze = false;
            }
            function.build = None;
        }
        for (name, folder) in &self.layers {
            let layer = stack
                .layers
                .iter_mut()
                .find(|l| &l.name == name)
                .ok_or_else(|| Error::NoEndpoint {
                    name: name.clone(),
                    kind: "layer",
                })?;
            layer.content.clone_from(folder);
            layer.build = None;
        }
        for function in &mut stack.functions {
            function
                .config
                .environment
                .extend(self.environment.iter().cloned());
        }
        if self.build {
            coldstart_stack::build::build_all(&stack, &Reporter::default()).await?;
        }
        let logs = Arc::new(Logs::default());
        let mut options = StartOptions::new(logs.clone());
        options.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        options.dynamodb_endpoint = self.dynamodb_endpoint;
        options.schedules = self.schedules;
        options.sqs_endpoint = self.sqs_endpoint;
        let running = coldstart_stack::start(&stack, options).await?;
        let invoke = running
            .endpoint(Endpoint::INVOKE_API, EndpointKind::Invoke)
            .map(|e| e.addr)
            .ok_or_else(|| Error::NoEndpoint {
                name: Endpoint::INVOKE_API.into(),
                kind: "Invoke API endpoint",
            })?;
        Ok(Stack {
            running: Some(running),
            logs,
            sdk: sdk_client(invoke),
        })
    }
}

/// A stack of `function` alone (a bootstrap runs from its folder).
fn one_function(function: &Function) -> coldstart_stack::Stack {
    let (source, root) = match function.bootstrap() {
        Some(bootstrap) => (
            bootstrap.to_path_buf(),
            bootstrap
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        ),
        None => (PathBuf::from("(in-process)"), PathBuf::from(".")),
    };
    coldstart_stack::Stack {
        source,
        root: root.clone(),
        functions: vec![FunctionSpec {
            config: function.config.clone(),
            build: None,
            url: None,
            watch: vec![root],
            layers: Vec::new(),
        }],
        ..coldstart_stack::Stack::default()
    }
}

/// An `aws-sdk-lambda` client for the Invoke API at `addr`: fixed region and test credentials
/// (it neither needs nor touches anyone's AWS account), no retries (a throttle must show), plain
/// HTTP. [`Stack::sdk`] is one; this makes one for any emulator.
pub fn sdk_client(addr: std::net::SocketAddr) -> aws_sdk_lambda::Client {
    use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "coldstart-test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .http_client(coldstart_stack::sdk_http::LocalHttp::default())
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

//! The stack model: what `coldstart up` serves, whichever file described it.
//!
//! Both readers — `coldstart.toml` ([`crate::config`]) and SAM/CloudFormation templates
//! ([`crate::template`]) — produce a [`Stack`]; [`crate::start`] serves one. Everything here is a
//! plain, checked value: paths are absolute, names are the ones callers use, ports are concrete
//! (0 takes any free port when the stack starts).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use coldstart_emulator::auth::{Authorizer, RouteAuth};
use coldstart_emulator::{ApiCors, FunctionConfig, InvokeMode, PayloadVersion, Throttle};

/// A whole stack: functions, their front doors, tables and outputs.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// The file the stack was read from.
    pub source: PathBuf,
    /// The file's folder: builds run here and relative paths start here.
    pub root: PathBuf,
    /// The functions, in a stable order (by name).
    pub functions: Vec<FunctionSpec>,
    /// Layers that functions use, with their builds.
    pub layers: Vec<LayerSpec>,
    /// API Gateway HTTP APIs (v2) and REST APIs (v1).
    pub http_apis: Vec<HttpApiSpec>,
    /// API Gateway WebSocket APIs.
    pub websocket_apis: Vec<WebSocketApiSpec>,
    /// DynamoDB tables, created on `--dynamodb-endpoint` when one is given.
    pub tables: Vec<TableSpec>,
    /// The template's outputs, resolved (AWS URLs of local APIs are rewritten at start).
    pub outputs: Vec<OutputSpec>,
    /// Resources read but not emulated, as (logical id, type): listed once at start.
    pub not_emulated: Vec<(String, String)>,
    /// Things to say once at start (a remote layer that is not available, a runtime that cannot
    /// run yet, ...).
    pub notices: Vec<String>,
    /// The account and region functions and ARNs use.
    pub settings: coldstart_emulator::Settings,
    /// Give every function `AWS_ENDPOINT_URL_LAMBDA` (the local Invoke API), credentials when
    /// the environment has none, and `AWS_SAM_LOCAL=true`, unless it sets them itself. On for
    /// templates.
    pub local_environment: bool,
    /// Schedules that invoke functions (`Schedule`/`ScheduleV2` events, `AWS::Events::Rule`,
    /// `AWS::Scheduler::Schedule`, `coldstart.toml`'s `schedule`), by name.
    pub schedules: Vec<ScheduleSpec>,
    /// SQS queues, created on `--sqs-endpoint` when one is given.
    pub queues: Vec<QueueSpec>,
    /// SQS event source mappings: queues that invoke functions.
    pub sqs_mappings: Vec<SqsMappingSpec>,
}

/// An SQS queue (`AWS::SQS::Queue`, or one a `coldstart.toml` function's `sqs` names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Its logical id (its name in `coldstart.toml`).
    pub id: String,
    /// Its name (`QueueName`, else `<stack>-<logical id>`).
    pub name: String,
    /// `VisibilityTimeout` in seconds. Default: the server's (SQS: 30).
    pub visibility_timeout: Option<u32>,
    /// `RedrivePolicy`: the dead-letter queue's id and `maxReceiveCount`.
    pub dead_letter: Option<(String, u32)>,
    /// `ContentBasedDeduplication` of a FIFO queue (a FIFO queue's name ends in `.fifo`).
    /// Default: false.
    pub content_based_deduplication: bool,
}

/// A function's SQS event source mapping (an `SQS` event, `AWS::Lambda::EventSourceMapping`,
/// `[functions.x.sqs]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SqsMappingSpec {
    /// Where it is written (`<Function>.Events.<Name>`, `functions.x.sqs`), for messages.
    pub name: String,
    /// The function it invokes.
    pub function: String,
    /// The queue's id ([`QueueSpec::id`]).
    pub queue: String,
    /// `BatchSize`: most records per invocation, 1 to 10,000. Default: 10.
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds`: how long to gather a batch, 0 to 300. Default: 0.
    pub batching_window: Duration,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: the answer's `batchItemFailures`
    /// name the messages that failed; the rest are deleted. Default: off.
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: most invocations at once, 2 to 1,000. Default: the
    /// function's concurrency.
    pub maximum_concurrency: Option<u32>,
    /// `FilterCriteria.Filters[].Pattern`: a record goes to the function when it matches one
    /// (none: all do); records that match none are deleted, as Lambda does.
    pub filters: Vec<serde_json::Value>,
    /// `Enabled`. Default: true.
    pub enabled: bool,
}

/// One function and what `up` does for it besides running it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// How the emulator runs it. `config.name` is the name callers use (a template's logical id).
    pub config: FunctionConfig,
    /// What makes its code, run before serving (unless `--no-build`).
    pub build: Option<Build>,
    /// Its Function URL, if it has one.
    pub url: Option<UrlSpec>,
    /// What `up --watch` watches for this function; `target/` and hidden entries are ignored.
    pub watch: Vec<PathBuf>,
    /// Names of the [`LayerSpec`]s whose content is merged, in order, into the function's `/opt`.
    pub layers: Vec<String>,
}

/// A function's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSpec {
    /// The local port; 0 takes any free port.
    pub port: u16,
    /// `BUFFERED` or `RESPONSE_STREAM`.
    pub invoke_mode: InvokeMode,
    /// The host the URL has on AWS (`<id>.lambda-url.<region>.on.aws`): values that name it
    /// are rewritten to the local URL.
    pub aws_host: Option<String>,
    /// Who may call it (`AuthType`). Default: anyone (`NONE`).
    pub auth_type: coldstart_emulator::UrlAuthType,
    /// Its `Cors` settings, applied by the URL itself. Default: none.
    pub cors: Option<coldstart_emulator::UrlCors>,
}

/// How a function's or layer's code is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    /// A shell command (`sh -c`), run from `dir` (`coldstart.toml`'s `build`).
    Command {
        /// The command line.
        command: String,
        /// Its working directory.
        dir: PathBuf,
    },
    /// `make build-<target>` in `dir` with `ARTIFACTS_DIR` set, as `sam build` runs
    /// `BuildMethod: makefile`.
    Makefile {
        /// The folder with the `Makefile` (the `CodeUri`/`ContentUri`).
        dir: PathBuf,
        /// The logical id: the target is `build-<target>`.
        target: String,
        /// Where the build puts the code (`.coldstart/build/<id>`).
        artifacts: PathBuf,
    },
    /// `cargo build --release` of the crate in `dir`, its binary copied to
    /// `<artifacts>/bootstrap` (`BuildMethod: rust-cargolambda`).
    Cargo {
        /// The crate's folder (the `CodeUri`).
        dir: PathBuf,
        /// The binary to build (`Metadata.BuildProperties.Binary`); default: the crate's only one.
        binary: Option<String>,
        /// Where `bootstrap` goes (`.coldstart/build/<id>`).
        artifacts: PathBuf,
    },
    /// `pip install --target` with `interpreter`, for a managed Python runtime: each install
    /// not complete yet ([`crate::managed`]).
    Pip {
        /// The Python that installs (and runs) the packages.
        interpreter: PathBuf,
        /// What to install, and where.
        installs: Vec<PipInstall>,
    },
    /// npm installs for a managed Node.js runtime: its runtime interface client and its
    /// `package.json` ([`crate::managed`]), each only when not complete yet.
    Npm {
        /// What to install, in order.
        installs: Vec<NpmInstall>,
    },
    /// The [`Build::Cargo`] builds of functions whose crates share one Cargo workspace, run as
    /// one `cargo build` with a `-p` for each crate, so that features are resolved once and
    /// nothing is compiled twice; each binary goes to its `bootstrap` as soon as cargo links it.
    CargoWorkspace {
        /// The workspace's root folder.
        root: PathBuf,
        /// The builds it stands for, each a [`Build::Cargo`].
        builds: Vec<Build>,
    },
}

/// One install of a `Build::Npm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpmInstall {
    /// `npm install <package>` into `target` (a cache folder), under a lock file beside it so
    /// that one process builds it while others wait; complete when `target` exists.
    Client {
        /// The package and version, `name@version`.
        package: String,
        /// The folder whose `node_modules` holds it.
        target: PathBuf,
    },
    /// `npm ci --omit=dev` (`npm install --omit=dev` without a `package-lock.json`) of `code`'s
    /// `package.json`, as `sam build` installs it, into `code/node_modules`. Complete when that
    /// folder's `.coldstart-lock` holds `hash`; a `node_modules` without that file is the
    /// user's own and is left alone.
    Packages {
        /// The folder with `package.json`.
        code: PathBuf,
        /// The hash of `package-lock.json` (of `package.json` without one).
        hash: String,
    },
}

/// One `pip install --target <target> <args>`: a complete target is never installed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipInstall {
    /// What pip installs: requirement specifiers, or `-r FILE`.
    pub args: Vec<String>,
    /// The folder the packages go to.
    pub target: PathBuf,
    /// pip's `--platform` (with `--only-binary=:all:`) when the function's architecture is not
    /// the machine's. Default: none (the machine's wheels).
    pub platform: Option<String>,
}

/// A layer: a folder merged into `/opt` of the functions that name it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// The layer's name (its logical id).
    pub name: String,
    /// The folder whose content goes to `/opt` (after the build, when there is one).
    pub content: PathBuf,
    /// What makes the content.
    pub build: Option<Build>,
}

/// API Gateway HTTP API or REST API.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpApiSpec {
    /// The API's name (its logical id, or its `coldstart.toml` key).
    pub name: String,
    /// The local port; 0 takes any free port.
    pub port: u16,
    /// The event format of its functions: 2.0 (HTTP API) or 1.0 (REST API, HTTP API 1.0).
    pub payload_version: PayloadVersion,
    /// A REST API (API Gateway v1) rather than an HTTP API.
    pub rest: bool,
    /// The stage: `$default` serves at the root; any other name under `/<stage>`.
    pub stage: String,
    /// Route key (`GET /items/{id}`, `ANY /{proxy+}`, `$default`) → function name.
    pub routes: Vec<(String, String)>,
    /// The host the API has on AWS (`<id>.execute-api.<region>.amazonaws.com`).
    pub aws_host: Option<String>,
    /// CORS (`CorsConfiguration`, SAM's `Cors`, `coldstart.toml`'s `cors`). Default: none.
    pub cors: Option<ApiCors>,
    /// The stage's variables (`StageVariables`, `Variables`). Default: none.
    pub stage_variables: BTreeMap<String, String>,
    /// Per-route throttling (`DefaultRouteSettings`/`RouteSettings`, `MethodSettings`).
    /// Default: none.
    pub throttle: Throttle,
    /// Its authorizers.
    pub authorizers: Vec<Authorizer>,
    /// Route key → its authorization; routes not named are open.
    pub route_auth: Vec<(String, RouteAuth)>,
    /// Route key → its integration timeout; others get the API kind's (REST 29 s, HTTP 30 s).
    pub timeouts: Vec<(String, Duration)>,
    /// REST APIs: route keys with `ResponseTransferMode: STREAM` (`coldstart.toml`'s
    /// `stream`). Default: none.
    pub streamed: Vec<String>,
}

/// API Gateway WebSocket API.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketApiSpec {
    /// The API's name (its logical id, or its `coldstart.toml` key).
    pub name: String,
    /// The local port; 0 takes any free port.
    pub port: u16,
    /// The stage: the URL's path and the `@connections` base.
    pub stage: String,
    /// Default: `$request.body.action`.
    pub route_selection: String,
    /// Route key → (function name, two-way).
    pub routes: Vec<(String, String, bool)>,
    /// Default: 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// Default: 2 hours.
    pub max_duration: Option<Duration>,
    /// The host the API has on AWS (`<id>.execute-api.<region>.amazonaws.com`).
    pub aws_host: Option<String>,
    /// The `$connect` route's authorizer.
    pub connect_authorizer: Option<Authorizer>,
}

/// A DynamoDB table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Its logical id.
    pub id: String,
    /// Its name (`TableName`, else `<stack>-<logical id>`): what `Ref` gives.
    pub name: String,
    /// Attribute definitions: (name, `S` | `N` | `B`).
    pub attributes: Vec<(String, String)>,
    /// The key schema: (attribute, `HASH` | `RANGE`).
    pub key: Vec<(String, String)>,
    /// Global secondary indexes.
    pub global_indexes: Vec<IndexSpec>,
    /// Local secondary indexes.
    pub local_indexes: Vec<IndexSpec>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

/// A secondary index of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// The index's name.
    pub name: String,
    /// Its key schema: (attribute, `HASH` | `RANGE`).
    pub key: Vec<(String, String)>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    /// With `INCLUDE`: the projected attributes.
    pub non_key_attributes: Vec<String>,
}

/// A template output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The output's logical id.
    pub name: String,
    /// Its value, resolved.
    pub value: String,
    /// Its description.
    pub description: Option<String>,
}

/// A schedule that invokes a function asynchronously (as EventBridge and EventBridge Scheduler
/// do: `InvocationType` `Event`, so the function's async retries and destinations apply).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// What `up` and [`crate::Schedules::fire`] call it: the rule's or schedule's logical id
    /// (`<Function><Event>` for a SAM event, as SAM names the resource it makes), or
    /// `<function>-schedule` in `coldstart.toml`. Several specs share a name when one rule
    /// has several targets.
    pub name: String,
    /// The function it invokes.
    pub function: String,
    /// When it fires.
    pub expression: crate::expression::ScheduleExpression,
    /// The zone its cron or `at` fields are read in. Default: UTC (EventBridge rules always).
    pub timezone: chrono_tz::Tz,
    /// The payload (JSON text) instead of the default one.
    pub input: Option<String>,
    /// `Enabled`/`State`: a disabled schedule is listed but never fires by itself.
    /// Default: true.
    pub enabled: bool,
    /// Which service fires it, which decides the payload and the ARN.
    pub kind: ScheduleKind,
    /// Its name on AWS (`Name`, else the logical id): the rule's or schedule's ARN ends in it.
    pub aws_name: String,
    /// Its `Description`.
    pub description: Option<String>,
    /// A rule target's `InputPath` or `InputTransformer`, applied to the `Scheduled Event`.
    /// Default: none.
    pub transform: Option<crate::input_transform::RuleInput>,
}

/// Which service fires a [`ScheduleSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// An EventBridge rule (`Schedule` events, `AWS::Events::Rule`): the function gets a
    /// `Scheduled Event` (or the target's `Input`).
    Rule,
    /// An EventBridge Scheduler schedule (`ScheduleV2` events, `AWS::Scheduler::Schedule`,
    /// `coldstart.toml`): the function gets the target's `Input` (`{}` without one), with its
    /// `<aws.scheduler.*>` context attributes filled in.
    Scheduler,
}

impl Stack {
    /// The folder of a stack's file, canonical where it can be: builds run there and relative
    /// paths start there.
    pub fn folder_of(file: &std::path::Path) -> PathBuf {
        let folder = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
        std::fs::canonicalize(&folder).unwrap_or(folder)
    }

    /// Gives every Function URL and API a free port (0), whatever its configuration fixed.
    pub fn free_every_port(&mut self) {
        for url in self.functions.iter_mut().filter_map(|f| f.url.as_mut()) {
            url.port = 0;
        }
        for api in &mut self.http_apis {
            api.port = 0;
        }
        for api in &mut self.websocket_apis {
            api.port = 0;
        }
    }

    /// Every port the stack claims (0 excepted), with its owner.
    pub fn ports(&self) -> Vec<(u16, String)> {
        let urls = self.functions.iter().filter_map(|f| {
            f.url
                .as_ref()
                .map(|u| (u.port, format!("{} (Function URL)", f.config.name)))
        });
        let http = self.http_apis.iter().map(|a| (a.port, a.name.clone()));
        let ws = self.websocket_apis.iter().map(|a| (a.port, a.name.clone()));
        urls.chain(http)
            .chain(ws)
            .filter(|(p, _)| *p != 0)
            .collect()
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.config.name == name)
    }
}

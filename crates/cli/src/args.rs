//! Command-line arguments (the `coldstart` CLI contract of design.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Build, run and test AWS Lambda custom runtimes locally, natively and fast.
#[derive(Debug, Parser)]
#[command(name = "coldstart", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve one bootstrap as the function `function`, like the Runtime Interface Emulator.
    Run(RunArgs),
    /// Build and serve every function, Function URL and API of a `coldstart.toml` or a SAM
    /// template.
    Up(UpArgs),
    /// Invoke a function through the Invoke API and print its answer.
    Invoke(InvokeArgs),
    /// Print a sample event (SAM's `generate-event` names); with no arguments, list them.
    Event(EventArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EventArgs {
    /// The service: `apigateway`, `sqs`, `s3`, ...
    pub(crate) service: Option<String>,
    /// The event: `aws-proxy`, `receive-message`, `put`, ...
    #[arg(requires = "service")]
    pub(crate) event: Option<String>,
    /// Set a field by dotted path (`body=hi`, `Records.0.body=hi`); repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_env, requires = "event")]
    pub(crate) sets: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Address of the Invoke API.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub(crate) listen: SocketAddr,
    /// Function timeout in seconds (1-900).
    #[arg(long, default_value_t = 3)]
    pub(crate) timeout: u64,
    /// Memory size in MB (128-10240).
    #[arg(long, default_value_t = 128)]
    pub(crate) memory: u32,
    /// Most execution environments at once.
    #[arg(long, default_value_t = 10)]
    pub(crate) concurrency: usize,
    /// The handler, given to the runtime as `_HANDLER` (e.g. `function.handler`).
    #[arg(long)]
    pub(crate) handler: Option<String>,
    /// `LAMBDA_TASK_ROOT` and working directory. Default: the bootstrap's folder.
    #[arg(long)]
    pub(crate) task_root: Option<PathBuf>,
    /// An environment variable for the function, `KEY=VALUE`; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub(crate) env: Vec<(String, String)>,
    /// Do not stop (SIGSTOP) idle execution environments.
    #[arg(long)]
    pub(crate) no_freeze: bool,
    /// How long a failed `Event` invocation waits before its first retry (Lambda: one minute,
    /// then two). Every asynchronous wait and maximum event age is scaled by the same ratio:
    /// `--async-retry-delay 1s` makes a six-hour event age six minutes.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub(crate) async_retry_delay: std::time::Duration,
    /// An external extension started in each execution environment before the bootstrap, as
    /// from `/opt/extensions`; repeatable.
    #[arg(long = "extension", value_name = "PATH")]
    pub(crate) extensions: Vec<PathBuf>,
    /// A folder whose every file is an external extension, like `/opt/extensions` in Lambda.
    #[arg(long, value_name = "DIR")]
    pub(crate) extensions_dir: Option<PathBuf>,
    /// Once the Invoke API answers, print one JSON line on standard output naming it
    /// (`{"ready":true,"endpoints":[...]}`); function logs go to standard error.
    #[arg(long)]
    pub(crate) ready_json: bool,
    /// A managed runtime (`python3.12`, `nodejs20.x`) to run `--handler` on, from the code folder
    /// `DIR`, instead of a bootstrap: the machine's Python with AWS's `awslambdaric` (installed
    /// once, with `DIR/requirements.txt`, in coldstart's cache folder), or its Node.js with AWS's
    /// `aws-lambda-ric` (built once per machine; `DIR/package.json` into `DIR/node_modules`).
    #[arg(long, value_name = "RUNTIME", requires_all = ["handler", "code"], conflicts_with = "command")]
    pub(crate) runtime: Option<String>,
    /// With `--runtime`: the function's code folder.
    #[arg(value_name = "DIR", requires = "runtime")]
    pub(crate) code: Option<PathBuf>,
    /// Serve the live dashboard (a page and a JSON API) at ADDR. Default ADDR: 127.0.0.1:2999.
    /// An address that is not loopback must be given explicitly and is warned about.
    #[arg(long, value_name = "ADDR", num_args = 0..=1)]
    pub(crate) dashboard: Option<Option<SocketAddr>>,
    /// Invocations one execution environment runs at once (Lambda Managed Instances'
    /// `PerExecutionEnvironmentMaxConcurrency`, 1-1600), told to the runtime as
    /// `AWS_LAMBDA_MAX_CONCURRENCY`; `--concurrency` then counts invocations.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1600))]
    pub(crate) max_concurrency: u16,
    /// The bootstrap and its arguments.
    #[arg(
        last = true,
        required_unless_present = "runtime",
        value_name = "BOOTSTRAP"
    )]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The config file. Default: `coldstart.toml` in the current directory, else a template
    /// (`template.yaml`, `template.yml`, `template.json`).
    #[arg(long, conflicts_with = "template")]
    pub(crate) config: Option<PathBuf>,
    /// A SAM/CloudFormation template (YAML or JSON) to serve instead of a `coldstart.toml`.
    #[arg(long, short = 't')]
    pub(crate) template: Option<PathBuf>,
    /// Address of the Invoke API for every function.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub(crate) listen: SocketAddr,
    /// Do not stop (SIGSTOP) idle execution environments.
    #[arg(long)]
    pub(crate) no_freeze: bool,
    /// Skip the builds: serve what the last build made.
    #[arg(long)]
    pub(crate) no_build: bool,
    /// Rebuild a function when its sources change and replace its sandboxes (in-flight
    /// invocations finish on the old ones).
    #[arg(long)]
    pub(crate) watch: bool,
    /// Template parameters, in SAM's forms: `K=V K2=V2` or
    /// `ParameterKey=K,ParameterValue=V`.
    #[arg(long, num_args = 1.., value_name = "K=V")]
    pub(crate) parameter_overrides: Vec<String>,
    /// Environment values in SAM's JSON format: `{"Parameters": {..}, "<LogicalId>": {..}}`.
    #[arg(long, value_name = "FILE")]
    pub(crate) env_vars: Option<PathBuf>,
    /// `AWS::Region` of a template. Default: `$AWS_REGION`, else `us-east-1`.
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// `AWS::StackName` of a template.
    #[arg(long, default_value = "coldstart")]
    pub(crate) stack_name: String,
    /// The first port of a template's APIs and Function URLs (counted up in the order of
    /// their logical ids); 0 gives each a free port, a coldstart.toml's fixed ones too.
    #[arg(long, default_value_t = 3000)]
    pub(crate) port_base: u16,
    /// A DynamoDB-compatible endpoint: a template's tables are created there if missing and
    /// functions get `AWS_ENDPOINT_URL_DYNAMODB`.
    #[arg(long, value_name = "URL")]
    pub(crate) dynamodb_endpoint: Option<String>,
    /// Once every endpoint answers, print one JSON line on standard output naming them
    /// (`{"ready":true,"endpoints":[{"name":..,"kind":..,"url":..}]}`); everything else,
    /// function logs included, goes to standard error.
    #[arg(long)]
    pub(crate) ready_json: bool,
    /// How long a failed `Event` invocation waits before its first retry (Lambda: one minute,
    /// then two). Every asynchronous wait and maximum event age is scaled by the same ratio:
    /// `--async-retry-delay 1s` makes a six-hour event age six minutes.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub(crate) async_retry_delay: std::time::Duration,
    /// Serve the live dashboard (a page and a JSON API) at ADDR. Default ADDR:
    /// 127.0.0.1:<port-base − 1> (2999). An address that is not loopback must be given
    /// explicitly and is warned about.
    #[arg(long, value_name = "ADDR", num_args = 0..=1)]
    pub(crate) dashboard: Option<Option<SocketAddr>>,
    /// Do not fire schedules (`Schedule`/`ScheduleV2` events, `AWS::Events::Rule`,
    /// `AWS::Scheduler::Schedule`, `schedule` in coldstart.toml) at their times.
    #[arg(long)]
    pub(crate) no_schedules: bool,
    /// An SQS-compatible endpoint: the stack's queues are created there, its SQS event sources
    /// poll them as Lambda does, and functions get `AWS_ENDPOINT_URL_SQS`. Without it SQS events
    /// are not emulated.
    #[arg(long, value_name = "URL")]
    pub(crate) sqs_endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InvokeArgs {
    /// The function's name or ARN.
    pub(crate) function: String,
    /// The JSON payload; `-` reads it from standard input. Default: `{}`.
    #[arg(conflicts_with = "file")]
    pub(crate) payload: Option<String>,
    /// Read the payload from a file.
    #[arg(long, conflicts_with = "event")]
    pub(crate) file: Option<PathBuf>,
    /// Send a sample event, `SERVICE/EVENT` as `coldstart event` names them
    /// (`sqs/receive-message`).
    #[arg(long, value_name = "SERVICE/EVENT", conflicts_with = "payload")]
    pub(crate) event: Option<String>,
    /// The Invoke API endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub(crate) endpoint: String,
    /// `Tail` prints the last 4 KB of the invocation's log to standard error.
    #[arg(long, value_parser = ["None", "Tail"])]
    pub(crate) log_type: Option<String>,
    /// `RequestResponse` (default), `Event` or `DryRun`.
    #[arg(long, value_parser = ["RequestResponse", "Event", "DryRun"])]
    pub(crate) invocation_type: Option<String>,
    /// Use InvokeWithResponseStream and print the answer's chunks as they arrive.
    #[arg(long)]
    pub(crate) stream: bool,
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{value}`")),
    }
}

/// A duration as `60s`, `100ms`, `2m`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_takes_the_bootstrap_after_the_separator() {
        let cli = Cli::try_parse_from([
            "coldstart",
            "run",
            "--timeout",
            "5",
            "--env",
            "A=b=c",
            "--",
            "./bootstrap",
            "x",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Command::Run(args) = cli.command else {
            panic!("run expected");
        };
        assert_eq!(args.timeout, 5);
        assert_eq!(args.env, vec![("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(args.command, vec!["./bootstrap", "x"]);
        assert_eq!(args.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn dashboard_takes_an_optional_address() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Command::Up(up)) => up.dashboard,
            other => panic!("{other:?}"),
        };
        assert_eq!(parse(&["coldstart", "up"]), None);
        assert_eq!(parse(&["coldstart", "up", "--dashboard"]), Some(None));
        assert_eq!(
            parse(&["coldstart", "up", "--dashboard", "0.0.0.0:8080"]),
            Some(Some(SocketAddr::from(([0, 0, 0, 0], 8080))))
        );
        let run = Cli::try_parse_from(["coldstart", "run", "--dashboard", "--", "./b"]);
        match run.map(|c| c.command) {
            Ok(Command::Run(run)) => {
                assert_eq!(run.dashboard, Some(None));
                assert_eq!(run.command, vec!["./b"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_env_and_missing_bootstrap_are_usage_errors() {
        assert!(Cli::try_parse_from(["coldstart", "run", "--env", "nokey", "--", "b"]).is_err());
        assert!(Cli::try_parse_from(["coldstart", "run"]).is_err());
    }
}

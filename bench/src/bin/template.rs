//! `bench-template [--quick]`: how fast a SAM template becomes a served stack.
//!
//! - **read**: `coldstart_stack::template::parse` (YAML → resolved stack: parameters,
//!   conditions, intrinsics, globals, the dependency graph) of a generated template of 1,000
//!   resources, in this process, after warm-up runs. Goal: ≤ 50 ms.
//! - **up --no-build**: `coldstart up --no-build --template examples/chat/template.yaml` as a
//!   whole process, from spawn to the end of its endpoint table (every listener bound and
//!   served). Goal: ≤ 100 ms. The chat's functions are built first (`make`, as `up` runs it) when
//!   `.coldstart/build/` lacks them.
//!
//! Run it through `bench/template.sh`, which builds the release binaries first. Prints the table
//! and writes it to `bench/results/template.txt`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use coldstart_bench::cli::{Args, Command as Bench};
use coldstart_bench::process::{Banner, Read, Release, Server};
use coldstart_bench::stats::{Summary, millis};
use coldstart_bench::table::{Machine, verdict};
use coldstart_stack::TemplateOptions;

/// Resources in the generated template.
const RESOURCES: usize = 1_000;
/// The goals of the issue, for the verdicts.
const READ_GOAL: Duration = Duration::from_millis(50);
const UP_GOAL: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    Bench::new("bench-template", "template.txt").main(run)
}

struct Results {
    machine: Machine,
    quick: bool,
    read: Summary,
    bytes: usize,
    up: Summary,
    endpoints: usize,
}

fn run(args: Args) -> anyhow::Result<Results> {
    let machine = Machine::detect();
    let (read_runs, up_runs) = if args.quick { (5, 3) } else { (50, 20) };

    eprintln!("read: a generated template of {RESOURCES} resources, {read_runs} runs");
    let text = generated(RESOURCES);
    let file = Path::new("generated.yaml");
    let options = TemplateOptions::default();
    let read_once = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let stack = coldstart_stack::template::parse(file, &text, Path::new("/app"), &options)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let took = started.elapsed();
        anyhow::ensure!(
            stack.functions.len() + stack.tables.len() + stack.not_emulated.len() >= RESOURCES,
            "the generated template lost resources"
        );
        Ok(took)
    };
    for _ in 0..3 {
        read_once()?;
    }
    let read = (0..read_runs)
        .map(|_| read_once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let read = Summary::of(read).context("no read samples")?;

    eprintln!("up --no-build: examples/chat, {up_runs} runs");
    let release = Release::find("bench/template.sh")?;
    let coldstart = release.binary("coldstart")?;
    let chat = repository().join("examples/chat");
    build_chat_once(&chat)?;
    let mut samples = Vec::new();
    let mut endpoints = 0;
    for _ in 0..up_runs + 1 {
        let mut command = Command::new(&coldstart);
        command
            .args([
                "up",
                "--no-build",
                "--listen",
                "127.0.0.1:0",
                "--port-base",
                "0",
            ])
            .arg("--template")
            .arg(chat.join("template.yaml"))
            .current_dir(&chat);
        let started = Instant::now();
        let (server, rows) = Server::start(command, Table::default())?;
        samples.push(started.elapsed());
        endpoints = rows;
        server.stop()?;
    }
    // The first run warms the page cache.
    samples.remove(0);
    let up = Summary::of(samples).context("no up samples")?;
    Ok(Results {
        machine,
        quick: args.quick,
        read,
        bytes: text.len(),
        up,
        endpoints,
    })
}

impl fmt::Display for Results {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.machine
            .header(f, "coldstart: templates", self.quick, &[])?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<44} {:>6} {:>9} {:>9} {:>9}  goal",
            "", "runs", "p50 ms", "p90 ms", "max ms"
        )?;
        writeln!(
            f,
            "{:<44} {:>6} {:>9} {:>9} {:>9}  ≤ {} ms: {}",
            format!("read {RESOURCES} resources ({} KB)", self.bytes / 1024),
            self.read.count,
            millis(self.read.p50),
            millis(self.read.p90),
            millis(self.read.max),
            READ_GOAL.as_millis(),
            verdict(self.read.p50 <= READ_GOAL)
        )?;
        writeln!(
            f,
            "{:<44} {:>6} {:>9} {:>9} {:>9}  ≤ {} ms: {}",
            format!("up --no-build examples/chat ({} rows)", self.endpoints),
            self.up.count,
            millis(self.up.p50),
            millis(self.up.p90),
            millis(self.up.max),
            UP_GOAL.as_millis(),
            verdict(self.up.p50 <= UP_GOAL)
        )
    }
}

/// The endpoint table of `up`: done at the blank line after its rows; the number of rows.
#[derive(Debug, Default)]
struct Table {
    started: bool,
    rows: usize,
}

impl Banner for Table {
    type Found = usize;

    fn read(&mut self, line: &str, _at: Instant) -> Read<usize> {
        if !self.started {
            self.started = line.contains(" functions ready in ");
            return if self.started {
                Read::Part
            } else {
                Read::Other
            };
        }
        if line.trim().is_empty() {
            return if self.rows > 1 {
                Read::Done(self.rows - 1)
            } else {
                Read::Part
            };
        }
        self.rows += 1;
        Read::Part
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the chat's functions as `up` would, unless their bootstraps are there.
fn build_chat_once(chat: &Path) -> anyhow::Result<()> {
    let built = ["ChatFunction", "BroadcastFunction"].iter().all(|f| {
        chat.join(".coldstart/build")
            .join(f)
            .join("bootstrap")
            .is_file()
    });
    if built {
        return Ok(());
    }
    eprintln!("building the chat example's functions first");
    let stack =
        coldstart_stack::template::load(&chat.join("template.yaml"), &TemplateOptions::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(coldstart_stack::build::build_all(
        &stack,
        &coldstart_stack::Reporter::new(|line| eprintln!("{line}")),
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A template of `n` resources: functions with environments built from `Ref`, `GetAtt` and
/// `Sub` of tables and queues, conditions and a mapping, under SAM's globals.
fn generated(n: usize) -> String {
    let mut out = String::from(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nTransform: AWS::Serverless-2016-10-31\n\
         Parameters:\n  Stage:\n    Type: String\n    Default: dev\n    AllowedValues: [dev, prod]\n\
         Mappings:\n  Sizes:\n    dev: { Memory: 256 }\n    prod: { Memory: 1024 }\n\
         Conditions:\n  IsProd: !Equals [!Ref Stage, prod]\n\
         Globals:\n  Function:\n    Runtime: provided.al2023\n    Handler: bootstrap\n    Timeout: 10\n\
         \x20   Environment:\n      Variables:\n        STAGE: !Ref Stage\n\
         Resources:\n",
    );
    let groups = n / 4;
    for i in 0..groups {
        out.push_str(&format!(
            "  Table{i}:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      \
             AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]\n      \
             KeySchema: [{{AttributeName: id, KeyType: HASH}}]\n      BillingMode: PAY_PER_REQUEST\n\
             \x20 Queue{i}:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub \"${{AWS::StackName}}-q{i}\"\n\
             \x20 Topic{i}:\n    Type: AWS::SNS::Topic\n\
             \x20 Fn{i}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn{i}\n      \
             MemorySize: !FindInMap [Sizes, !Ref Stage, Memory]\n      Environment:\n        Variables:\n          \
             TABLE: !Ref Table{i}\n          TABLE_ARN: !GetAtt Table{i}.Arn\n          \
             QUEUE: !GetAtt Queue{i}.QueueUrl\n          TOPIC: !Ref Topic{i}\n          \
             MODE: !If [IsProd, fast, cheap]\n          \
             NAME: !Sub \"${{AWS::StackName}}-${{Table{i}}}-${{AWS::Region}}\"\n"
        ));
    }
    out
}

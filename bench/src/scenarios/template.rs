//! `template`: how fast a SAM template becomes a served stack.
//!
//! - **read**: `coldstart_stack::template::parse` of a generated template of 1,000 resources
//!   (functions, tables, queues, topics; environments from `Ref`, `GetAtt`, `Sub`, `FindInMap`,
//!   `If`, under `Globals`), in this process, after three warm-up reads.
//! - **up --no-build**: `coldstart up --no-build --template examples/chat/template.yaml` as a
//!   whole process, from spawn to its `--ready-json` line (every endpoint answers), then SIGTERM;
//!   the first run is not counted. The release `chat` and `broadcast` are copied into
//!   `.coldstart/build/` first, where `up` puts its builds.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coldstart_stack::TemplateOptions;

use crate::core::report::{Report, Table};
use crate::core::stack::{Coldstart, binary, repository};
use crate::core::stats::{Summary, millis};
use crate::scenarios::Context;

/// Resources in the generated template.
const RESOURCES: usize = 1_000;
/// Goals (the template issue's).
const READ_GOAL: Duration = Duration::from_millis(50);
const UP_GOAL: Duration = Duration::from_millis(100);

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("template", cx.quick);
    let (read_runs, up_runs) = if cx.quick { (5, 3) } else { (50, 20) };
    eprintln!("template: read a generated template of {RESOURCES} resources, {read_runs} runs");
    let text = generated(RESOURCES);
    let options = TemplateOptions::default();
    let read_once = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let stack = coldstart_stack::template::parse(
            Path::new("generated.yaml"),
            &text,
            Path::new("/app"),
            &options,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let took = started.elapsed();
        let read = stack.functions.len() + stack.tables.len() + stack.not_emulated.len();
        anyhow::ensure!(read >= RESOURCES, "the generated template lost resources");
        Ok(took)
    };
    for _ in 0..3 {
        read_once()?;
    }
    let read = (0..read_runs)
        .map(|_| read_once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let read = Summary::of(read).context("no read samples")?;

    eprintln!("template: up --no-build examples/chat, {up_runs} runs after 1");
    let coldstart = binary("coldstart")?;
    let chat = repository().join("examples/chat");
    build_chat_once(&chat)?;
    let mut samples = Vec::new();
    let mut endpoints = 0;
    for _ in 0..=up_runs {
        let started = Instant::now();
        let up = Coldstart::up_template(&coldstart, &chat.join("template.yaml"))?;
        samples.push(up.ready_at.duration_since(started));
        endpoints = up.endpoints.len();
        report.note(
            "coldstart up",
            up.stop()?.into_iter().filter(|l| !l.contains(" ready in ")),
        );
    }
    // The first run warms the page cache.
    samples.remove(0);
    let up = Summary::of(samples).context("no up samples")?;

    let mut table = Table::new(
        "Templates read and served (ms)",
        &["runs", "p50", "p90", "max"],
    );
    let rows = [
        (
            format!("read {RESOURCES} resources ({} KB)", text.len() / 1024),
            read,
        ),
        (
            format!("up --no-build examples/chat ({endpoints} endpoints)"),
            up,
        ),
    ];
    for (label, s) in rows {
        table.row(
            label,
            vec![
                s.count.to_string(),
                millis(s.p50),
                millis(s.p90),
                millis(s.max),
            ],
        );
    }
    table.goal(
        "read, p50",
        millis(read.p50),
        "<= 50 ms",
        read.p50 <= READ_GOAL,
    );
    table.goal(
        "up --no-build, spawn -> ready line, p50",
        millis(up.p50),
        "<= 100 ms",
        up.p50 <= UP_GOAL,
    );
    report.tables.push(table);
    Ok(report)
}

/// Puts the release `chat` and `broadcast` (which `bench/run.sh` builds) where `up --no-build`
/// looks for the chat's functions, unless a build of the chat put them there already.
fn build_chat_once(chat: &Path) -> anyhow::Result<()> {
    for (function, name) in [("ChatFunction", "chat"), ("BroadcastFunction", "broadcast")] {
        let bootstrap = chat
            .join(".coldstart/build")
            .join(function)
            .join("bootstrap");
        if !bootstrap.is_file() {
            std::fs::create_dir_all(bootstrap.parent().unwrap_or(chat))?;
            std::fs::copy(binary(name)?, &bootstrap)
                .with_context(|| format!("copying {name} to {}", bootstrap.display()))?;
        }
    }
    Ok(())
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

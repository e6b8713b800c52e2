//! `sqs`: messages per second through one SQS event source mapping. The scenario starts moto's
//! server (`scripts/test-tools.sh` installs it; its own process group, stopped after), measures
//! the queue server's own ceiling with this client (send, then receive and delete, ten at a time,
//! nothing else), then serves the echo function under `coldstart up --sqs-endpoint` with a
//! `[functions.echo.sqs]` mapping and times the same messages from the first send until the
//! queue is empty (every message received, invoked and deleted by coldstart). Goal (issue 21):
//! limited by the queue server, not by coldstart.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};

use crate::core::process::{Output, STOP_GRACE, Server, free_ports};
use crate::core::report::{Report, Table};
use crate::core::stack::{Coldstart, ConfigDir, binary, toml_path};
use crate::scenarios::Context;

const FUNCTION: &str = "echo";
const QUEUE: &str = "bench";
/// Messages per run (a tenth with `--quick`).
const MESSAGES: usize = 5_000;
/// Runs per side, alternating; the median is compared.
const RUNS: usize = 3;
/// The longest a run may take before it is reported unfinished.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// How long moto's server may take to say it listens.
const START_LIMIT: Duration = Duration::from_secs(30);
/// coldstart's messages per second over the ceiling's (issue 21: limited by the queue server).
const GOAL: f64 = 0.8;
/// Most entries in one SendMessageBatch, ReceiveMessage or DeleteMessageBatch.
const BATCH: usize = 10;
/// coldstart's pollers (`maximum_concurrency`, with as many environments), and the ceiling's
/// consumers.
const POLLERS: usize = 4;
/// The ceiling's consumers' long poll, seconds: they start before the first message is sent.
const CEILING_WAIT: i32 = 1;

/// moto's server (werkzeug) says ` * Running on http://127.0.0.1:PORT` once it listens.
struct MotoBanner;

impl Output for MotoBanner {
    type Ready = ();
    fn ready(&self, line: &str) -> Option<()> {
        line.contains("Running on http://").then_some(())
    }
    fn keep(&self, line: &str) -> bool {
        line.contains("Error") || line.contains("Traceback")
    }
}

pub fn run(cx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new("sqs", cx.quick);
    let coldstart = binary("coldstart")?;
    let echo = binary("echo")?;
    let [addr] = free_ports::<1>()?;
    let mut command = Command::new("moto_server");
    command.args(["-H", "127.0.0.1", "-p", &addr.port().to_string()]);
    let (moto, (), _) = Server::start("moto_server", command, MotoBanner, START_LIMIT)
        .context("moto's server (scripts/test-tools.sh installs it)")?;
    let endpoint = format!("http://{addr}");
    let client = client(&endpoint);
    let messages = cx.cut(MESSAGES);
    report.setup.push((
        "queue server",
        format!("moto_server (moto {}) on {endpoint}", moto_version()),
    ));
    report.setup.push((
        "coldstart",
        format!(
            "coldstart up --sqs-endpoint {endpoint}: echo (coldstart-runtime) with [functions.echo.sqs] queue = \"{QUEUE}\", batch_size = {BATCH}, maximum_concurrency = {POLLERS} (concurrency = {POLLERS})"
        ),
    ));
    let config = ConfigDir::write(
        "sqs",
        &format!(
            "[functions.{FUNCTION}]\nbootstrap = {}\nconcurrency = {POLLERS}\n\n[functions.{FUNCTION}.sqs]\nqueue = \"{QUEUE}\"\nbatch_size = {BATCH}\nmaximum_concurrency = {POLLERS}\n",
            toml_path(&echo)?
        ),
    )?;
    let up = Coldstart::up(&coldstart, &["--sqs-endpoint", &endpoint], &config.config)?;
    let measured = (|| -> anyhow::Result<[Vec<f64>; 2]> {
        let queue = cx.rt.block_on(queue_url(&client, QUEUE))?;
        let ceiling_queue = cx.rt.block_on(async {
            let url = client
                .create_queue()
                .queue_name("ceiling")
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
                .queue_url
                .unwrap_or_default();
            anyhow::Ok(url)
        })?;
        // Warm-up: the function's sandbox started, moto's paths warm.
        cx.rt
            .block_on(through_coldstart(&client, &queue, cx.cut(200)))?;
        cx.rt
            .block_on(by_this_client(&client, &ceiling_queue, cx.cut(200)))?;
        let mut rates = [Vec::new(), Vec::new()];
        for run in 1..=RUNS {
            eprintln!("sqs: run {run} of {RUNS}, {messages} messages each side");
            let t = cx
                .rt
                .block_on(by_this_client(&client, &ceiling_queue, messages))?;
            rates[0].push(messages as f64 / t.as_secs_f64());
            let t = cx
                .rt
                .block_on(through_coldstart(&client, &queue, messages))?;
            rates[1].push(messages as f64 / t.as_secs_f64());
        }
        Ok(rates)
    })();
    report.note("coldstart up", up.stop()?);
    report.note("moto_server", moto.stop(STOP_GRACE)?);
    let rates = measured?;

    let title = format!(
        "Messages per second: {messages} messages, {RUNS} alternating runs per side; median run"
    );
    let mut table = Table::new(title, &["messages/s", "runs (messages/s)"])
        .about(format!("ceiling: this client sends (SendMessageBatch of 10) while {POLLERS} consumers of its own receive (10, long poll) and delete"))
        .about(format!("(DeleteMessageBatch); coldstart: the same sends while its mapping's {POLLERS} pollers receive, invoke echo and delete;"))
        .about("timed from the first send until the last message is deleted (coldstart: until the queue reports none left).");
    let labels = [
        "queue server ceiling (this client, no coldstart)",
        "through coldstart's SQS mapping (echo)",
    ];
    let mut medians = [0.0; 2];
    for (i, label) in labels.iter().enumerate() {
        let mut sorted = rates[i].clone();
        sorted.sort_by(f64::total_cmp);
        medians[i] = sorted[sorted.len() / 2];
        let all: Vec<String> = rates[i].iter().map(|r| format!("{r:.0}")).collect();
        table.row(*label, vec![format!("{:.0}", medians[i]), all.join(" ")]);
    }
    let share = medians[1] / medians[0].max(1e-9);
    table.goal(
        "coldstart / ceiling",
        format!("{share:.2}x"),
        &format!(">= {GOAL}x"),
        share >= GOAL,
    );
    report.tables.push(table);
    Ok(report)
}

/// An SQS client for `endpoint` with local credentials.
fn client(endpoint: &str) -> Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
            .endpoint_url(endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build(),
    )
}

fn sdk_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_sqs::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e))
}

/// The URL of the queue coldstart created.
async fn queue_url(client: &Client, name: &str) -> anyhow::Result<String> {
    Ok(client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .unwrap_or_default())
}

/// Sends `n` messages to `queue`, ten at a time.
async fn send(client: &Client, queue: &str, n: usize) -> anyhow::Result<()> {
    for start in (0..n).step_by(BATCH) {
        let entries = (start..n.min(start + BATCH))
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("{{\"n\":{i}}}"))
                    .build()
                    .map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        client
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sdk_error)?;
    }
    Ok(())
}

/// The ceiling: sends `n` messages while [`POLLERS`] consumers receive and delete them, ten at
/// a time; until the last one is deleted.
async fn by_this_client(client: &Client, queue: &str, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let deleted = std::sync::atomic::AtomicUsize::new(0);
    // Set by the consumer whose delete reaches `n`.
    let finished = std::sync::Mutex::new(None::<Instant>);
    let consume = || async {
        while deleted.load(std::sync::atomic::Ordering::SeqCst) < n {
            if start.elapsed() > RUN_LIMIT {
                bail!("the ceiling run deleted {deleted:?} of {n} in {RUN_LIMIT:?}");
            }
            let got = client
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(BATCH as i32)
                .wait_time_seconds(CEILING_WAIT)
                .send()
                .await
                .map_err(sdk_error)?
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                continue;
            }
            let entries = got
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.as_deref()?)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            let count = entries.len();
            client
                .delete_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_error)?;
            let total = deleted.fetch_add(count, std::sync::atomic::Ordering::SeqCst) + count;
            if total >= n
                && let Ok(mut at) = finished.lock()
            {
                at.get_or_insert_with(Instant::now);
            }
        }
        anyhow::Ok(())
    };
    let consumers = futures_util::future::try_join_all((0..POLLERS).map(|_| consume()));
    tokio::try_join!(send(client, queue, n), consumers)?;
    let end = finished
        .lock()
        .ok()
        .and_then(|at| *at)
        .unwrap_or_else(Instant::now);
    Ok(end - start)
}

/// Through coldstart: sends `n` messages and waits (asking every 20 ms, bounded) until the
/// queue holds none, visible or in flight.
async fn through_coldstart(client: &Client, queue: &str, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    send(client, queue, n).await?;
    loop {
        let attributes = client
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(sdk_error)?
            .attributes
            .unwrap_or_default();
        let left: u64 = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .filter_map(|k| attributes.get(k)?.parse::<u64>().ok())
        .sum();
        if left == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > RUN_LIMIT {
            bail!("{left} of {n} messages still in the queue after {RUN_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// moto's version, for the report.
fn moto_version() -> String {
    Command::new("python3")
        .args(["-c", "import moto; print(moto.__version__)"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown version".to_owned())
}

//! SQS queues on an SQS-compatible endpoint (`--sqs-endpoint`), and the event source mappings
//! that drain them into functions as Lambda's pollers do.
//!
//! [`create_all`] creates the stack's queues (with `VisibilityTimeout`, then `RedrivePolicy`
//! once the dead-letter queues' ARNs are known). [`Mapping::run`] is one mapping: up to its
//! maximum concurrency of pollers, each long-polling the queue (`WaitTimeSeconds` 20), gathering
//! up to `BatchSize` records within `MaximumBatchingWindowInSeconds`, deleting the records no
//! filter matches, invoking the function synchronously with an SQS event, and deleting what
//! succeeded: the whole batch on success, all but the `batchItemFailures` with
//! `ReportBatchItemFailures`, nothing on a function error or a throttle — those come back after
//! the visibility timeout, and the queue's redrive policy moves them to the dead-letter queue
//! after `maxReceiveCount` receives. Each batch is told to the log sink with its queue, message
//! ids and outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{Emulator, InvokeError, InvokeRequest, LogSink, Outcome};
use coldstart_protocol::InvocationType;

use crate::error::Error;
use crate::model::{QueueSpec, SqsMappingSpec};
use crate::report::Reporter;

/// The type of the platform event each batch adds to its function's event stream.
pub const SQS_EVENT: &str = "coldstart.sqs";
/// SQS's longest long poll.
const LONG_POLL: i32 = 20;
/// Most messages one `ReceiveMessage` returns.
const RECEIVE_MAX: u32 = 10;
/// How long a poller waits after the endpoint failed or the function was throttled, before it
/// asks again.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How a batch went, for the poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    /// Invoked (whatever the function answered), or nothing to invoke.
    Done,
    /// The function was throttled: the batch returns after its visibility timeout.
    Throttled,
}

/// A queue created on the endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub(crate) url: String,
    pub(crate) arn: String,
}

/// A client for `endpoint` with the environment's credentials, or local ones.
pub(crate) fn client(endpoint: &str, region: &str) -> Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let credentials = match (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Ok(key), Ok(secret)) => Credentials::new(
            key,
            secret,
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "environment",
        ),
        _ => Credentials::new(
            coldstart_emulator::LOCAL_ACCESS_KEY_ID,
            coldstart_emulator::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "coldstart",
        ),
    };
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(endpoint.trim_end_matches('/'))
        .http_client(crate::sdk_http::LocalHttp::default())
        .build();
    Client::from_conf(config)
}

/// Creates every queue of `queues` on the client's endpoint (an existing one is kept and
/// given the settings); by queue id, its URL and ARN there.
pub(crate) async fn create_all(
    client: &Client,
    queues: &[QueueSpec],
    endpoint: &str,
    report: &Reporter,
) -> Result<HashMap<String, Created>, Error> {
    let fail = |queue: &QueueSpec, e: &dyn std::fmt::Display| Error::Queue {
        queue: queue.name.clone(),
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    };
    let mut created = HashMap::new();
    for queue in queues {
        let mut request = client.create_queue().queue_name(&queue.name);
        if let Some(timeout) = queue.visibility_timeout {
            request =
                request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
        }
        if queue.name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        if queue.content_based_deduplication {
            request = request.attributes(QueueAttributeName::ContentBasedDeduplication, "true");
        }
        let url = request
            .send()
            .await
            .map_err(|e| fail(queue, &aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .unwrap_or_default();
        let arn = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| fail(queue, &aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        report.say(format!("queue {} at {url}", queue.name));
        created.insert(queue.id.clone(), Created { url, arn });
    }
    for queue in queues {
        let (Some((target, count)), Some(here)) = (&queue.dead_letter, created.get(&queue.id))
        else {
            continue;
        };
        let Some(dlq) = created.get(target) else {
            continue;
        };
        let policy = json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": count});
        client
            .set_queue_attributes()
            .queue_url(&here.url)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(|e| fail(queue, &aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    }
    Ok(created)
}

/// One event source mapping, ready to run.
#[derive(Clone)]
pub(crate) struct Mapping {
    pub(crate) spec: SqsMappingSpec,
    pub(crate) queue: Created,
    pub(crate) client: Client,
    pub(crate) emulator: Emulator,
    pub(crate) sink: Arc<dyn LogSink>,
    pub(crate) region: String,
    /// How many pollers (each with at most one invocation at a time).
    pub(crate) concurrency: u32,
}

impl Mapping {
    /// Runs the pollers until `shutdown` is cancelled.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut pollers = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency.max(1) {
            let this = self.clone();
            let shutdown = shutdown.clone();
            pollers.spawn(async move { this.poll(shutdown).await });
        }
        while pollers.join_next().await.is_some() {}
    }

    async fn poll(&self, shutdown: CancellationToken) {
        loop {
            // Cancelled: the stack is stopping; messages received and not deleted return to
            // the queue after their visibility timeout.
            let batch = tokio::select! {
                () = shutdown.cancelled() => return,
                batch = self.gather() => batch,
            };
            match batch {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => {
                    if self.deliver(messages).await == Delivered::Throttled {
                        // Lambda backs off when the function is throttled rather than receive
                        // (and count a receive of) more messages at once.
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(AFTER_FAILURE) => {}
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(function = %self.spec.function, "{}: {e}", self.spec.name);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(AFTER_FAILURE) => {}
                    }
                }
            }
        }
    }

    /// Up to `BatchSize` messages, gathered for at most the batching window once the first is
    /// there (one long poll when the window is 0).
    async fn gather(&self) -> Result<Vec<Message>, String> {
        let want = self.spec.batch_size as usize;
        let mut out: Vec<Message> = Vec::new();
        let mut first: Option<Instant> = None;
        loop {
            let wait = match first {
                None => LONG_POLL,
                Some(t) => {
                    let left = self.spec.batching_window.saturating_sub(t.elapsed());
                    if left.is_zero() {
                        return Ok(out);
                    }
                    i32::try_from(left.as_secs().max(1))
                        .unwrap_or(LONG_POLL)
                        .min(LONG_POLL)
                }
            };
            let room = u32::try_from(want - out.len())
                .unwrap_or(RECEIVE_MAX)
                .min(RECEIVE_MAX);
            let got = self
                .client
                .receive_message()
                .queue_url(&self.queue.url)
                .max_number_of_messages(i32::try_from(room).unwrap_or(10))
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?
                .messages
                .unwrap_or_default();
            if !got.is_empty() && first.is_none() {
                first = Some(Instant::now());
            }
            out.extend(got);
            if out.len() >= want || (self.spec.batching_window.is_zero() && !out.is_empty()) {
                return Ok(out);
            }
        }
    }

    /// The SQS event record of `m`, as Lambda sends it.
    fn record(&self, m: &Message) -> Value {
        let attributes: serde_json::Map<String, Value> = m
            .attributes
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
            .collect();
        let message_attributes: serde_json::Map<String, Value> = m
            .message_attributes
            .iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({
                        "stringValue": v.string_value,
                        "binaryValue": v.binary_value.as_ref().map(|b| {
                            use base64::Engine as _;
                            base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                        }),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.data_type,
                    }),
                )
            })
            .collect();
        json!({
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body.clone().unwrap_or_default(),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue.arn,
            "awsRegion": self.region,
        })
    }

    /// Filters, invokes and deletes what succeeded.
    async fn deliver(&self, messages: Vec<Message>) -> Delivered {
        let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
        let (records, dropped): (Vec<Value>, Vec<Value>) = records.into_iter().partition(|r| {
            self.spec.filters.is_empty() || {
                // The body's fields are filtered on when it is JSON.
                let mut seen = r.clone();
                if let Some(body) = r["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                {
                    seen["body"] = body;
                }
                self.spec
                    .filters
                    .iter()
                    .any(|f| crate::filter::matches(f, &seen))
            }
        });
        if !dropped.is_empty() {
            // Lambda deletes the messages no filter matches.
            self.delete(&dropped).await;
        }
        if records.is_empty() {
            return Delivered::Done;
        }
        let ids: Vec<&str> = records
            .iter()
            .filter_map(|r| r["messageId"].as_str())
            .collect();
        let payload = json!({ "Records": records }).to_string();
        let request = InvokeRequest {
            payload: bytes::Bytes::from(payload),
            invocation_type: InvocationType::RequestResponse,
            serialized: true,
            ..InvokeRequest::default()
        };
        let answer = self.emulator.invoke(&self.spec.function, request).await;
        let throttled = matches!(answer, Err(InvokeError::Throttled));
        let (request_id, failed, outcome): (String, Vec<String>, String) = match &answer {
            Ok(response) => match &response.outcome {
                Outcome::Response { body, .. } => {
                    let failed = if self.spec.report_batch_item_failures {
                        batch_item_failures(body, &ids)
                    } else {
                        Vec::new()
                    };
                    let outcome = if failed.is_empty() {
                        "ok".to_owned()
                    } else {
                        format!("{} of {} failed", failed.len(), ids.len())
                    };
                    (response.request_id.clone(), failed, outcome)
                }
                Outcome::FunctionError { error_type, .. } => (
                    response.request_id.clone(),
                    ids.iter().map(|s| (*s).to_owned()).collect(),
                    format!("function error {error_type}"),
                ),
                _ => (response.request_id.clone(), Vec::new(), "ok".to_owned()),
            },
            Err(e) => (
                String::new(),
                ids.iter().map(|s| (*s).to_owned()).collect(),
                match e {
                    InvokeError::Throttled => "throttled".to_owned(),
                    e => e.to_string(),
                },
            ),
        };
        let queue = self.queue.url.rsplit('/').next().unwrap_or_default();
        self.sink.line(
            &self.spec.function,
            &format!(
                "SQS {queue} {} message{} {}{}: {outcome}",
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                ids.join(","),
                if request_id.is_empty() {
                    String::new()
                } else {
                    format!(" RequestId: {request_id}")
                }
            ),
        );
        if self.sink.wants_records() {
            self.sink.record(
                &self.spec.function,
                &coldstart_emulator::notes::StreamEvent::note(coldstart_emulator::notes::event(
                    SQS_EVENT,
                    json!({
                        "queue": self.queue.arn,
                        "messageIds": ids,
                        "requestId": request_id,
                        "failed": failed,
                        "outcome": outcome,
                    }),
                )),
            );
        }
        if self.queue.arn.ends_with(".fifo") && !failed.is_empty() {
            // Lambda deletes what the answer does not name, FIFO or not; a FIFO function must
            // stop at its first failure and name the rest of the batch too. Say so when one
            // did not, as the group's order is lost on AWS as well.
            for (deleted, after, group) in order_broken(&records, &failed) {
                self.sink.line(
                    &self.spec.function,
                    &format!(
                        "SQS {queue}: message {deleted} of group {group} succeeded after {after} of the same group failed, so it is deleted and the group's order is lost; a FIFO function stops at its first failure and reports the rest in batchItemFailures"
                    ),
                );
            }
        }
        let done: Vec<Value> = records
            .into_iter()
            .filter(|r| !failed.iter().any(|f| r["messageId"] == f.as_str()))
            .collect();
        self.delete(&done).await;
        if throttled {
            Delivered::Throttled
        } else {
            Delivered::Done
        }
    }

    /// Deletes `records` from the queue, ten at a time.
    async fn delete(&self, records: &[Value]) {
        for chunk in records.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r["receiptHandle"].as_str()?)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(
                    function = %self.spec.function,
                    "{}: deleting messages: {}",
                    self.spec.name,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                );
            }
        }
    }
}

/// In a FIFO batch, each record answered as a success after a failed record of its own message
/// group: (its message id, the failed one's, the group).
fn order_broken(records: &[Value], failed: &[String]) -> Vec<(String, String, String)> {
    let mut first_failure: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    for r in records {
        let (Some(id), Some(group)) = (
            r["messageId"].as_str(),
            r["attributes"]["MessageGroupId"].as_str(),
        ) else {
            continue;
        };
        if failed.iter().any(|f| f == id) {
            first_failure.entry(group).or_insert(id);
        } else if let Some(after) = first_failure.get(group) {
            out.push((id.to_owned(), (*after).to_owned(), group.to_owned()));
        }
    }
    out
}

/// The message ids a `ReportBatchItemFailures` answer says failed, as Lambda reads it: an
/// empty or null answer, or an empty list, is success; an identifier that is empty or not of
/// the batch fails the whole batch.
fn batch_item_failures(body: &[u8], ids: &[&str]) -> Vec<String> {
    let all = || ids.iter().map(|s| (*s).to_owned()).collect();
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let Ok(answer) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    let Some(failures) = answer.get("batchItemFailures") else {
        return Vec::new();
    };
    let Value::Array(failures) = failures else {
        return if failures.is_null() {
            Vec::new()
        } else {
            all()
        };
    };
    let mut out = Vec::new();
    for f in failures {
        match f.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if ids.contains(&id) => out.push(id.to_owned()),
            _ => return all(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_after_a_failure_of_its_group_breaks_fifo_order() {
        let record = |id: &str, group: &str| json!({"messageId": id, "attributes": {"MessageGroupId": group}});
        let batch = [
            record("a1", "a"),
            record("a2", "a"),
            record("b1", "b"),
            record("a3", "a"),
            record("b2", "b"),
        ];
        // As AWS advises: the first failure and everything after it reported.
        let all_after: Vec<String> = ["a2", "b1", "a3", "b2"].map(String::from).into();
        assert!(order_broken(&batch, &all_after).is_empty());
        // Only the failed one reported: a3 is deleted after a2 of its group failed.
        assert_eq!(
            order_broken(&batch, &["a2".to_owned()]),
            [("a3".to_owned(), "a2".to_owned(), "a".to_owned())]
        );
    }

    #[test]
    fn batch_item_failures_are_read_as_lambda_reads_them() {
        let ids = ["a", "b", "c"];
        assert!(batch_item_failures(b"", &ids).is_empty());
        assert!(batch_item_failures(b"null", &ids).is_empty());
        assert!(batch_item_failures(b"{\"batchItemFailures\":[]}", &ids).is_empty());
        assert_eq!(
            batch_item_failures(
                b"{\"batchItemFailures\":[{\"itemIdentifier\":\"b\"}]}",
                &ids
            ),
            ["b"]
        );
        // An identifier not of the batch, or empty, fails every message.
        assert_eq!(
            batch_item_failures(
                b"{\"batchItemFailures\":[{\"itemIdentifier\":\"z\"}]}",
                &ids
            ),
            ["a", "b", "c"]
        );
        assert_eq!(
            batch_item_failures(b"{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", &ids),
            ["a", "b", "c"]
        );
    }
}

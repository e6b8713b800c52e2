//! A function's `[functions.x.sqs]` in `coldstart.toml`: the queue that invokes it (created on
//! `--sqs-endpoint`, with its dead-letter queue) and the mapping's settings, read into
//! [`QueueSpec`]s and an [`SqsMappingSpec`] with Lambda's limits.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::Error;
use crate::model::{QueueSpec, SqsMappingSpec};

/// `[functions.x.sqs]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqsToml {
    queue: String,
    batch_size: Option<i64>,
    batching_window: Option<i64>,
    report_batch_item_failures: Option<bool>,
    maximum_concurrency: Option<i64>,
    #[serde(default)]
    filters: Vec<toml::Value>,
    enabled: Option<bool>,
    visibility_timeout: Option<i64>,
    dead_letter_queue: Option<String>,
    max_receive_count: Option<i64>,
    content_based_deduplication: Option<bool>,
}

/// The queues and the mapping of function `function` (key `functions.<name>`); mistakes are
/// located at the `sqs` table.
pub(crate) fn sqs(
    key: &str,
    function: &str,
    toml: &Spanned<SqsToml>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<(Vec<QueueSpec>, SqsMappingSpec), Error> {
    let t = toml.get_ref();
    let err = |field: &str, why: String| at(toml.span(), format!("{key}.sqs.{field}: {why}"));
    let within = |field: &str, v: Option<i64>, min: i64, max: i64, default: i64, unit: &str| {
        let v = v.unwrap_or(default);
        if (min..=max).contains(&v) {
            Ok(u32::try_from(v).unwrap_or(0))
        } else {
            Err(err(field, format!("must be {min} to {max}{unit}, not {v}")))
        }
    };
    let batch_size = within("batch_size", t.batch_size, 1, 10_000, 10, "")?;
    let window = within("batching_window", t.batching_window, 0, 300, 0, " seconds")?;
    if batch_size > 10 && window == 0 {
        return Err(err(
            "batching_window",
            "a batch_size above 10 needs a batching window of at least 1 second".into(),
        ));
    }
    // Lambda: a FIFO queue's batches are at most 10 records, with no batching window.
    let fifo = t.queue.ends_with(".fifo");
    if fifo && batch_size > 10 {
        return Err(err(
            "batch_size",
            format!("must be 1 to 10 for a FIFO queue, not {batch_size}"),
        ));
    }
    if fifo && window > 0 {
        return Err(err(
            "batching_window",
            "a batching window is not supported for FIFO queues".into(),
        ));
    }
    let content_based_deduplication = t.content_based_deduplication.unwrap_or(false);
    if content_based_deduplication && !fifo {
        return Err(err(
            "content_based_deduplication",
            "is for FIFO queues (a queue name ending in .fifo)".into(),
        ));
    }
    let maximum_concurrency = match t.maximum_concurrency {
        None => None,
        v => Some(within("maximum_concurrency", v, 2, 1000, 2, "")?),
    };
    let mut filters = Vec::new();
    for filter in &t.filters {
        let pattern = serde_json::to_value(filter).map_err(|e| err("filters", e.to_string()))?;
        crate::filter::check(&pattern).map_err(|why| err("filters", why))?;
        filters.push(pattern);
    }
    let visibility_timeout = match t.visibility_timeout {
        None => None,
        v => Some(within("visibility_timeout", v, 0, 43_200, 30, " seconds")?),
    };
    let mut queues = vec![QueueSpec {
        id: t.queue.clone(),
        name: t.queue.clone(),
        visibility_timeout,
        dead_letter: None,
        content_based_deduplication,
    }];
    match (&t.dead_letter_queue, t.max_receive_count) {
        (Some(dlq), count) => {
            let count = within("max_receive_count", count, 1, 1000, 3, "")?;
            if fifo != dlq.ends_with(".fifo") {
                return Err(err(
                    "dead_letter_queue",
                    "a FIFO queue's dead-letter queue is a FIFO queue, and a standard queue's a standard one (FIFO names end in .fifo)".into(),
                ));
            }
            queues[0].dead_letter = Some((dlq.clone(), count));
            queues.push(QueueSpec {
                id: dlq.clone(),
                name: dlq.clone(),
                visibility_timeout: None,
                dead_letter: None,
                content_based_deduplication: false,
            });
        }
        (None, Some(_)) => {
            return Err(err(
                "max_receive_count",
                "needs a dead_letter_queue to move messages to".into(),
            ));
        }
        (None, None) => {}
    }
    let mapping = SqsMappingSpec {
        name: format!("{key}.sqs"),
        function: function.to_owned(),
        queue: t.queue.clone(),
        batch_size,
        batching_window: Duration::from_secs(u64::from(window)),
        report_batch_item_failures: t.report_batch_item_failures.unwrap_or(false),
        maximum_concurrency,
        filters,
        enabled: t.enabled.unwrap_or(true),
    };
    Ok((queues, mapping))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::Stack;

    fn load(text: &str) -> Result<Stack, String> {
        crate::config::parse(Path::new("coldstart.toml"), text, Path::new("/app"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_functions_sqs_table_makes_its_queues_and_mapping() {
        let stack = load(
            "[functions.worker]\nbootstrap = \"w\"\n\n[functions.worker.sqs]\nqueue = \"orders\"\n\
             batch_size = 50\nbatching_window = 2\nreport_batch_item_failures = true\n\
             maximum_concurrency = 5\nvisibility_timeout = 60\ndead_letter_queue = \"orders-dlq\"\n\
             max_receive_count = 4\nfilters = [{ body = { kind = [\"order\"] } }]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<(&str, Option<u32>)> = stack
            .queues
            .iter()
            .map(|q| (q.name.as_str(), q.visibility_timeout))
            .collect();
        assert_eq!(names, [("orders", Some(60)), ("orders-dlq", None)]);
        assert_eq!(stack.queues[0].dead_letter, Some(("orders-dlq".into(), 4)));
        let [m] = stack.sqs_mappings.as_slice() else {
            panic!("{:?}", stack.sqs_mappings);
        };
        assert_eq!(
            (m.function.as_str(), m.queue.as_str()),
            ("worker", "orders")
        );
        assert_eq!((m.batch_size, m.batching_window.as_secs()), (50, 2));
        assert!(m.report_batch_item_failures && m.enabled);
        assert_eq!(m.maximum_concurrency, Some(5));
        assert_eq!(
            m.filters,
            [serde_json::json!({"body": {"kind": ["order"]}})]
        );
    }

    #[test]
    fn sqs_settings_outside_lambdas_limits_name_their_key() {
        for (table, says) in [
            (
                "queue = \"q\"\nbatch_size = 0\n",
                "functions.w.sqs.batch_size: must be 1 to 10000, not 0",
            ),
            (
                "queue = \"q\"\nbatch_size = 20\n",
                "functions.w.sqs.batching_window: a batch_size above 10 needs",
            ),
            (
                "queue = \"q\"\nmaximum_concurrency = 1\n",
                "functions.w.sqs.maximum_concurrency: must be 2 to 1000",
            ),
            (
                "queue = \"q\"\nmax_receive_count = 3\n",
                "functions.w.sqs.max_receive_count: needs a dead_letter_queue",
            ),
            (
                "queue = \"q.fifo\"\nbatch_size = 20\nbatching_window = 1\n",
                "functions.w.sqs.batch_size: must be 1 to 10 for a FIFO queue, not 20",
            ),
            (
                "queue = \"q.fifo\"\nbatching_window = 1\n",
                "functions.w.sqs.batching_window: a batching window is not supported for FIFO queues",
            ),
            (
                "queue = \"q.fifo\"\ndead_letter_queue = \"dlq\"\n",
                "functions.w.sqs.dead_letter_queue: a FIFO queue's dead-letter queue is a FIFO queue",
            ),
            (
                "queue = \"q\"\ncontent_based_deduplication = true\n",
                "functions.w.sqs.content_based_deduplication: is for FIFO queues",
            ),
            (
                "queue = \"q\"\nfilters = [{ body = { kind = \"order\" } }]\n",
                "functions.w.sqs.filters: kind: a field's values are a list",
            ),
        ] {
            let text = format!("[functions.w]\nbootstrap = \"w\"\n\n[functions.w.sqs]\n{table}");
            let e = match load(&text) {
                Ok(s) => panic!("accepted {:?}", s.sqs_mappings),
                Err(e) => e,
            };
            assert!(
                e.starts_with("coldstart.toml:4:1: ") && e.contains(says),
                "{e}\n  does not contain\n{says}"
            );
        }
    }
}

//! SQS queues (`AWS::SQS::Queue`, with `VisibilityTimeout` and `RedrivePolicy`) and the event
//! source mappings that make them invoke functions (`SQS` events, and
//! `AWS::Lambda::EventSourceMapping`s with an SQS `EventSourceArn`), as [`QueueSpec`]s and
//! [`SqsMappingSpec`]s, each setting checked against Lambda's limits at its property.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::model::{FunctionSpec, QueueSpec, SqsMappingSpec};
use crate::template::Context;
use crate::template::intrinsics::{describe, text};
use crate::template::resources::{Resource, function_of};

/// The queues of the template and the SQS mappings of `functions`; the queues and mappings read
/// go into `used`.
pub(crate) fn read(
    cx: &Context<'_>,
    resources: &[Resource],
    functions: &[FunctionSpec],
    used: &mut HashSet<String>,
) -> Result<(Vec<QueueSpec>, Vec<SqsMappingSpec>), Error> {
    let runs = |name: &str| functions.iter().any(|f| f.config.name == name);
    // Queue ARN (what `GetAtt Q.Arn` gives) → logical id.
    let by_arn = |arn: &str| -> Option<String> {
        cx.resolver
            .resources
            .iter()
            .find(|(_, f)| {
                f.kind == "AWS::SQS::Queue"
                    && f.attributes.iter().any(|(k, v)| *k == "Arn" && v == arn)
            })
            .map(|(id, _)| id.clone())
    };
    let mut queues = Vec::new();
    for r in resources.iter().filter(|r| r.kind == "AWS::SQS::Queue") {
        let name = cx
            .resolver
            .resources
            .get(&r.id)
            .and_then(|f| f.attributes.iter().find(|(k, _)| *k == "QueueName"))
            .and_then(|(_, v)| text(v))
            .unwrap_or_else(|| r.id.clone());
        let visibility_timeout = match cx.property(r, "VisibilityTimeout")? {
            None => None,
            Some(v) => Some(whole(&v, 0, 43_200).ok_or_else(|| {
                cx.error(
                    r,
                    "VisibilityTimeout",
                    format!("must be 0 to 43200 seconds, not {}", shown(&v)),
                )
            })?),
        };
        let dead_letter = match cx.property(r, "RedrivePolicy")? {
            None | Some(Value::Null) => None,
            Some(policy) => {
                // A JSON string is accepted as CloudFormation accepts it.
                let policy = match policy {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    v => v,
                };
                let arn = policy
                    .get("deadLetterTargetArn")
                    .and_then(text)
                    .ok_or_else(|| {
                        cx.error(
                            r,
                            "RedrivePolicy.deadLetterTargetArn",
                            "needs the dead-letter queue's ARN",
                        )
                    })?;
                let target = by_arn(&arn).ok_or_else(|| {
                    cx.error(
                        r,
                        "RedrivePolicy.deadLetterTargetArn",
                        format!("{arn} is not a queue of the template"),
                    )
                })?;
                let count = policy
                    .get("maxReceiveCount")
                    .and_then(|v| whole(v, 1, 1000))
                    .ok_or_else(|| {
                        cx.error(r, "RedrivePolicy.maxReceiveCount", "must be 1 to 1000")
                    })?;
                Some((target, count))
            }
        };
        // SQS: a FIFO queue's name ends in `.fifo`, and only a FIFO queue's does.
        let flag = |key: &str| -> Result<bool, Error> {
            Ok(cx
                .property(r, key)?
                .is_some_and(|v| v == Value::Bool(true) || text(&v).as_deref() == Some("true")))
        };
        let fifo = flag("FifoQueue")?;
        if fifo != name.ends_with(".fifo") {
            return Err(cx.error(
                r,
                "QueueName",
                if fifo {
                    format!("{name:?}: a FIFO queue's name must end in .fifo")
                } else {
                    format!("{name:?}: a name ending in .fifo needs FifoQueue: true")
                },
            ));
        }
        if let Some((target, _)) = &dead_letter {
            let target_fifo = cx
                .resolver
                .resources
                .get(target)
                .and_then(|f| f.attributes.iter().find(|(k, _)| *k == "QueueName"))
                .and_then(|(_, v)| v.as_str())
                .is_some_and(|n| n.ends_with(".fifo"));
            if target_fifo != fifo {
                return Err(cx.error(
                    r,
                    "RedrivePolicy.deadLetterTargetArn",
                    "a FIFO queue's dead-letter queue is a FIFO queue, and a standard queue's a standard one",
                ));
            }
        }
        let content_based_deduplication = flag("ContentBasedDeduplication")?;
        if content_based_deduplication && !fifo {
            return Err(cx.error(
                r,
                "ContentBasedDeduplication",
                "is for FIFO queues (FifoQueue: true)",
            ));
        }
        queues.push(QueueSpec {
            id: r.id.clone(),
            name,
            visibility_timeout,
            dead_letter,
            content_based_deduplication,
        });
    }

    let mut mappings = Vec::new();
    for r in resources {
        match r.kind.as_str() {
            "AWS::Serverless::Function" if runs(&r.id) => {
                let Some(Value::Object(events)) = cx.property(r, "Events")? else {
                    continue;
                };
                for (name, event) in &events {
                    if event.get("Type").and_then(Value::as_str) != Some("SQS") {
                        continue;
                    }
                    let at = format!("Events.{name}.Properties");
                    let empty = Map::new();
                    let props = event
                        .get("Properties")
                        .and_then(Value::as_object)
                        .unwrap_or(&empty);
                    mappings.push(mapping(
                        cx,
                        r,
                        &at,
                        props,
                        "Queue",
                        format!("{}.Events.{name}", r.id),
                        r.id.clone(),
                        &by_arn,
                    )?);
                }
            }
            "AWS::Lambda::EventSourceMapping" => {
                let Some(source) = cx.string(r, "EventSourceArn")? else {
                    continue;
                };
                if !source.starts_with("arn:aws:sqs:") {
                    continue;
                }
                let target = cx.string(r, "FunctionName")?.unwrap_or_default();
                let function = function_of(&target).unwrap_or(&target).to_owned();
                if !runs(&function) {
                    continue;
                }
                let props: Map<String, Value> = r
                    .properties
                    .keys()
                    .filter_map(|k| {
                        cx.property(r, k)
                            .transpose()
                            .map(|v| v.map(|v| (k.clone(), v)))
                    })
                    .collect::<Result<_, _>>()?;
                mappings.push(mapping(
                    cx,
                    r,
                    "",
                    &props,
                    "EventSourceArn",
                    r.id.clone(),
                    function,
                    &by_arn,
                )?);
                used.insert(r.id.clone());
            }
            _ => {}
        }
    }
    // Queues that feed a function, and their dead-letter queues, are emulated (with
    // --sqs-endpoint); the others are still created there, for functions that send to them.
    for m in &mappings {
        used.insert(m.queue.clone());
        if let Some((dlq, _)) = queues
            .iter()
            .find(|q| q.id == m.queue)
            .and_then(|q| q.dead_letter.as_ref())
        {
            used.insert(dlq.clone());
        }
    }
    Ok((queues, mappings))
}

fn whole(v: &Value, min: u64, max: u64) -> Option<u32> {
    text(v)
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| u32::try_from(n).ok())
}

fn shown(v: &Value) -> String {
    text(v).unwrap_or_else(|| describe(v).to_owned())
}

/// One mapping's settings, at `at` (empty: the resource's own properties).
#[allow(clippy::too_many_arguments)]
fn mapping(
    cx: &Context<'_>,
    r: &Resource,
    at: &str,
    props: &Map<String, Value>,
    queue_key: &str,
    name: String,
    function: String,
    by_arn: &impl Fn(&str) -> Option<String>,
) -> Result<SqsMappingSpec, Error> {
    let path = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    let arn = props.get(queue_key).and_then(text).ok_or_else(|| {
        cx.error(
            r,
            &path(queue_key),
            "needs the queue's ARN (!GetAtt Queue.Arn)",
        )
    })?;
    let queue = by_arn(&arn).ok_or_else(|| {
        cx.error(
            r,
            &path(queue_key),
            format!("{arn} is not a queue of the template"),
        )
    })?;
    let batch_size = match props.get("BatchSize") {
        None => 10,
        Some(v) => whole(v, 1, 10_000).ok_or_else(|| {
            cx.error(
                r,
                &path("BatchSize"),
                format!("must be 1 to 10000, not {}", shown(v)),
            )
        })?,
    };
    let window = match props.get("MaximumBatchingWindowInSeconds") {
        None => 0,
        Some(v) => whole(v, 0, 300).ok_or_else(|| {
            cx.error(
                r,
                &path("MaximumBatchingWindowInSeconds"),
                format!("must be 0 to 300 seconds, not {}", shown(v)),
            )
        })?,
    };
    // Lambda: a batch of more than 10 needs a batching window of at least 1 second.
    if batch_size > 10 && window == 0 {
        return Err(cx.error(
            r,
            &path("MaximumBatchingWindowInSeconds"),
            "a BatchSize above 10 needs a batching window of at least 1 second",
        ));
    }
    // Lambda: a FIFO queue's batches are at most 10 records, with no batching window.
    let fifo = cx
        .resolver
        .resources
        .get(&queue)
        .and_then(|f| f.attributes.iter().find(|(k, _)| *k == "QueueName"))
        .and_then(|(_, v)| v.as_str())
        .is_some_and(|n| n.ends_with(".fifo"));
    if fifo && batch_size > 10 {
        return Err(cx.error(
            r,
            &path("BatchSize"),
            format!("must be 1 to 10 for a FIFO queue, not {batch_size}"),
        ));
    }
    if fifo && window > 0 {
        return Err(cx.error(
            r,
            &path("MaximumBatchingWindowInSeconds"),
            "a batching window is not supported for FIFO queues",
        ));
    }
    let report_batch_item_failures = match props.get("FunctionResponseTypes") {
        None | Some(Value::Null) => false,
        Some(Value::Array(types)) => {
            for t in types {
                if text(t).as_deref() != Some("ReportBatchItemFailures") {
                    return Err(cx.error(
                        r,
                        &path("FunctionResponseTypes"),
                        format!("can only hold ReportBatchItemFailures, not {}", shown(t)),
                    ));
                }
            }
            !types.is_empty()
        }
        Some(v) => {
            return Err(cx.error(
                r,
                &path("FunctionResponseTypes"),
                format!("must be a list, not {}", describe(v)),
            ));
        }
    };
    let maximum_concurrency = match props
        .get("ScalingConfig")
        .and_then(|s| s.get("MaximumConcurrency"))
    {
        None => None,
        Some(v) => Some(whole(v, 2, 1000).ok_or_else(|| {
            cx.error(
                r,
                &path("ScalingConfig.MaximumConcurrency"),
                format!("must be 2 to 1000, not {}", shown(v)),
            )
        })?),
    };
    let mut filters = Vec::new();
    if let Some(list) = props.get("FilterCriteria").and_then(|f| f.get("Filters")) {
        let Value::Array(list) = list else {
            return Err(cx.error(r, &path("FilterCriteria.Filters"), "must be a list"));
        };
        for (i, filter) in list.iter().enumerate() {
            let here = path(&format!("FilterCriteria.Filters[{i}].Pattern"));
            let pattern = match filter.get("Pattern") {
                Some(Value::String(s)) => serde_json::from_str(s)
                    .map_err(|e| cx.error(r, &here, format!("must be a JSON pattern: {e}")))?,
                Some(v @ Value::Object(_)) => v.clone(),
                _ => return Err(cx.error(r, &here, "needs a Pattern (JSON text)")),
            };
            crate::filter::check(&pattern).map_err(|why| cx.error(r, &here, why))?;
            filters.push(pattern);
        }
    }
    let enabled = match props.get("Enabled") {
        None | Some(Value::Null) => true,
        Some(v) => !matches!(text(v).as_deref(), Some("false")) && v != &Value::Bool(false),
    };
    Ok(SqsMappingSpec {
        name,
        function,
        queue,
        batch_size,
        batching_window: Duration::from_secs(u64::from(window)),
        report_batch_item_failures,
        maximum_concurrency,
        filters,
        enabled,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::Stack;
    use crate::template::{TemplateOptions, parse};

    const HEAD: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: orders
      VisibilityTimeout: 60
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}
  Dlq:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker
      Runtime: provided.al2023
      Handler: bootstrap
";

    fn read(rest: &str) -> Result<Stack, String> {
        parse(
            Path::new("template.yaml"),
            &format!("{HEAD}{rest}"),
            Path::new("/app"),
            &TemplateOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn queues_and_sqs_events_become_queues_and_mappings() {
        let stack = read(
            r#"      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 4}
            FilterCriteria:
              Filters:
                - Pattern: '{"body": {"kind": ["order"]}}'
      DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt Dlq.Arn}
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let queues: Vec<(&str, &str, Option<u32>)> = stack
            .queues
            .iter()
            .map(|q| (q.id.as_str(), q.name.as_str(), q.visibility_timeout))
            .collect();
        assert_eq!(
            queues,
            [
                ("Dlq", "coldstart-Dlq", None),
                ("Orders", "orders", Some(60))
            ]
        );
        assert_eq!(stack.queues[1].dead_letter, Some(("Dlq".into(), 3)));
        let [m] = stack.sqs_mappings.as_slice() else {
            panic!("{:?}", stack.sqs_mappings);
        };
        assert_eq!(m.name, "Worker.Events.Work");
        assert_eq!((m.queue.as_str(), m.batch_size), ("Orders", 100));
        assert!(m.report_batch_item_failures);
        assert_eq!(m.maximum_concurrency, Some(4));
        assert_eq!(m.filters.len(), 1);
        assert!(
            stack
                .not_emulated
                .iter()
                .all(|(id, _)| id != "Orders" && id != "Dlq")
        );
        assert!(
            !stack.notices.iter().any(|n| n.contains("SQS")),
            "{:?}",
            stack.notices
        );
    }

    #[test]
    fn an_event_source_mapping_resource_maps_its_queue() {
        let stack = read(
            "  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Orders.Arn
      FunctionName: !Ref Worker
      BatchSize: 5
      Enabled: false
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let [m] = stack.sqs_mappings.as_slice() else {
            panic!("{:?}", stack.sqs_mappings);
        };
        assert_eq!(
            (m.name.as_str(), m.function.as_str(), m.queue.as_str()),
            ("Mapping", "Worker", "Orders")
        );
        assert_eq!(m.batch_size, 5);
        assert!(!m.enabled);
        assert!(stack.not_emulated.iter().all(|(id, _)| id != "Mapping"));
    }

    #[test]
    fn bad_sqs_settings_name_the_file_the_logical_id_and_the_property() {
        for (rest, says) in [
            (
                "      Events:\n        W:\n          Type: SQS\n          Properties:\n            Queue: arn:aws:sqs:us-east-1:123456789012:elsewhere\n",
                "template.yaml: Resources.Worker.Properties.Events.W.Properties.Queue: arn:aws:sqs:us-east-1:123456789012:elsewhere is not a queue of the template",
            ),
            (
                "      Events:\n        W:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Orders.Arn\n            BatchSize: 20\n",
                "Resources.Worker.Properties.Events.W.Properties.MaximumBatchingWindowInSeconds: a BatchSize above 10 needs",
            ),
            (
                "      Events:\n        W:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Orders.Arn\n            FunctionResponseTypes: [Everything]\n",
                "Resources.Worker.Properties.Events.W.Properties.FunctionResponseTypes: can only hold ReportBatchItemFailures, not Everything",
            ),
            (
                "      Events:\n        W:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Orders.Arn\n            ScalingConfig: {MaximumConcurrency: 1}\n",
                "Resources.Worker.Properties.Events.W.Properties.ScalingConfig.MaximumConcurrency: must be 2 to 1000, not 1",
            ),
            (
                "      Events:\n        W:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Orders.Arn\n            FilterCriteria: {Filters: [{Pattern: '{\"body\": 1'}]}\n",
                "Resources.Worker.Properties.Events.W.Properties.FilterCriteria.Filters[0].Pattern: must be a JSON pattern",
            ),
            (
                "  Bad:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimeout: 50000\n",
                "Resources.Bad.Properties.VisibilityTimeout: must be 0 to 43200 seconds, not 50000",
            ),
        ] {
            let e = match read(rest) {
                Ok(s) => panic!("accepted {:?}", s.sqs_mappings),
                Err(e) => e,
            };
            assert!(e.contains(says), "{e}\n  does not contain\n{says}");
        }
    }

    /// `Jobs` is a FIFO queue; `{event}` is spliced into its SQS event's properties.
    fn fifo(event: &str, queue: &str) -> Result<Stack, String> {
        read(&format!(
            "      Events:
        W:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
{event}
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
{queue}
"
        ))
    }

    #[test]
    fn a_fifo_queue_has_a_fifo_name_and_batches_of_ten_without_a_window() {
        let stack = fifo(
            "            BatchSize: 10",
            "      FifoQueue: true\n      ContentBasedDeduplication: true",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let jobs = stack.queues.iter().find(|q| q.id == "Jobs");
        assert_eq!(
            jobs.map(|q| (q.name.as_str(), q.content_based_deduplication)),
            Some(("coldstart-Jobs.fifo", true))
        );
        for (event, queue, says) in [
            (
                "            BatchSize: 11\n            MaximumBatchingWindowInSeconds: 1",
                "      FifoQueue: true",
                "Resources.Worker.Properties.Events.W.Properties.BatchSize: must be 1 to 10 for a FIFO queue, not 11",
            ),
            (
                "            MaximumBatchingWindowInSeconds: 1",
                "      FifoQueue: true",
                "Resources.Worker.Properties.Events.W.Properties.MaximumBatchingWindowInSeconds: a batching window is not supported for FIFO queues",
            ),
            (
                "            BatchSize: 1",
                "      FifoQueue: true\n      QueueName: jobs",
                "Resources.Jobs.Properties.QueueName: \"jobs\": a FIFO queue's name must end in .fifo",
            ),
            (
                "            BatchSize: 1",
                "      QueueName: jobs.fifo",
                "Resources.Jobs.Properties.QueueName: \"jobs.fifo\": a name ending in .fifo needs FifoQueue: true",
            ),
            (
                "            BatchSize: 1",
                "      ContentBasedDeduplication: true",
                "Resources.Jobs.Properties.ContentBasedDeduplication: is for FIFO queues",
            ),
            (
                "            BatchSize: 1",
                "      FifoQueue: true\n      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}",
                "Resources.Jobs.Properties.RedrivePolicy.deadLetterTargetArn: a FIFO queue's dead-letter queue is a FIFO queue",
            ),
        ] {
            let e = match fifo(event, queue) {
                Ok(s) => panic!("accepted {:?} {:?}", s.queues, s.sqs_mappings),
                Err(e) => e,
            };
            assert!(e.contains(says), "{e}\n  does not contain\n{says}");
        }
    }
}

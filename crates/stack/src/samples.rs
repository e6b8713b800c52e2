//! Sample events, by SAM's `generate-event` names (`apigateway aws-proxy`, `sqs
//! receive-message`, …), for `coldstart event` and `coldstart invoke --event`.
//!
//! Each sample is a realistic event (the JSON files beside this module, shaped like SAM's own
//! samples). The tests read every one into its `aws_lambda_events` type — what a Rust handler
//! deserializes — and back, so a sample that drifts from the type fails the build's tests rather
//! than a user's handler; the types stay out of the binary (they bring chrono and serde_with).
//! `--set PATH=VALUE` edits a sample by dotted path (`Records.0.body`).

use serde_json::Value;

/// One sample event.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The service, as SAM names it: `apigateway`, `sqs`, `s3`, …
    pub service: &'static str,
    /// The event, as SAM names it: `aws-proxy`, `receive-message`, `put`, …
    pub event: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The event's JSON.
    json: fn() -> String,
}

macro_rules! sample {
    ($service:literal, $event:literal, $description:literal) => {
        Sample {
            service: $service,
            event: $event,
            description: $description,
            json: || include_str!(concat!("samples/", $service, "-", $event, ".json")).to_owned(),
        }
    };
}

/// Every sample, in `coldstart event`'s order.
pub const SAMPLES: &[Sample] = &[
    sample!("alb", "request", "an Application Load Balancer request"),
    sample!(
        "apigateway",
        "authorizer",
        "a REST API TOKEN authorizer request"
    ),
    sample!(
        "apigateway",
        "aws-proxy",
        "a REST API proxy request (payload 1.0)"
    ),
    sample!(
        "apigateway",
        "http-api-proxy",
        "an HTTP API request (payload 2.0)"
    ),
    sample!(
        "apigateway",
        "request-authorizer",
        "a REST API REQUEST authorizer request"
    ),
    sample!(
        "apigateway",
        "websocket-connect",
        "a WebSocket API $connect"
    ),
    sample!("apigateway", "websocket-message", "a WebSocket API message"),
    Sample {
        service: "cloudwatch",
        event: "logs",
        description: "a CloudWatch Logs subscription (gzip, base64)",
        json: logs_event,
    },
    sample!(
        "cloudwatch",
        "scheduled-event",
        "an EventBridge (CloudWatch Events) schedule"
    ),
    sample!(
        "dynamodb",
        "update",
        "a DynamoDB stream batch (INSERT, MODIFY)"
    ),
    sample!("eventbridge", "event", "an EventBridge event"),
    sample!("kinesis", "get-records", "a Kinesis stream batch"),
    sample!("lambda", "function-url", "a Function URL request"),
    sample!("s3", "delete", "an S3 ObjectRemoved:Delete notification"),
    sample!("s3", "put", "an S3 ObjectCreated:Put notification"),
    sample!("sns", "notification", "an SNS notification"),
    sample!("sqs", "receive-message", "an SQS batch of one message"),
];

/// The sample `service event`, e.g. `find("sqs", "receive-message")`.
pub fn find(service: &str, event: &str) -> Option<&'static Sample> {
    SAMPLES
        .iter()
        .find(|s| s.service == service && s.event == event)
}

impl Sample {
    /// The event, with each `(path, value)` of `sets` applied in order: `path` is dotted
    /// (`Records.0.body`, `queryStringParameters.x`), a missing key is added; `value` replaces
    /// a string as it is, and is read as JSON where the field holds a number, a boolean, an
    /// array or an object.
    pub fn build(&self, sets: &[(String, String)]) -> Result<Value, String> {
        let mut event: Value = serde_json::from_str(&(self.json)()).map_err(|e| {
            format!(
                "{} {}: the sample is not JSON: {e}",
                self.service, self.event
            )
        })?;
        for (path, value) in sets {
            set(&mut event, path, value)?;
        }
        Ok(event)
    }
}

/// Sets the field at dotted `path` of `event` to `value`.
fn set(event: &mut Value, path: &str, value: &str) -> Result<(), String> {
    let mut at = event;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("--set {path}: an empty name in the path"));
        }
        let last = i + 1 == parts.len();
        at = match at {
            Value::Array(items) => {
                let index: usize = part
                    .parse()
                    .map_err(|_| format!("--set {path}: {part} is not an index of the list"))?;
                let len = items.len();
                items.get_mut(index).ok_or_else(|| {
                    format!("--set {path}: index {index} is past the list's {len} items")
                })?
            }
            Value::Object(map) => {
                if last {
                    let old = map.get(*part);
                    map.insert((*part).to_owned(), typed_like(old, value, path)?);
                    return Ok(());
                }
                map.entry((*part).to_owned())
                    .or_insert_with(|| Value::Object(serde_json::Map::new()))
            }
            Value::Null => {
                *at = Value::Object(serde_json::Map::new());
                match at {
                    Value::Object(map) => {
                        if last {
                            map.insert((*part).to_owned(), Value::String(value.to_owned()));
                            return Ok(());
                        }
                        map.entry((*part).to_owned())
                            .or_insert_with(|| Value::Object(serde_json::Map::new()))
                    }
                    _ => return Err(format!("--set {path}: cannot set {part}")),
                }
            }
            _ => {
                return Err(format!(
                    "--set {path}: {part} is inside a value that has no fields"
                ));
            }
        };
        if last {
            let new = typed_like(Some(at), value, path)?;
            *at = new;
            return Ok(());
        }
    }
    Ok(())
}

/// `value` as the kind of JSON `old` is: text for strings (and new fields), JSON otherwise.
fn typed_like(old: Option<&Value>, value: &str, path: &str) -> Result<Value, String> {
    match old {
        None | Some(Value::String(_)) | Some(Value::Null) => Ok(Value::String(value.to_owned())),
        Some(_) => serde_json::from_str(value)
            .map_err(|e| format!("--set {path}: {value:?} is not JSON of the field's kind: {e}")),
    }
}

/// A CloudWatch Logs subscription event: `awslogs.data` is the gzip of the log data, base64.
fn logs_event() -> String {
    use base64::Engine as _;
    use std::io::Write as _;
    let data = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/echo",
        "logStream": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "subscriptionFilters": ["LambdaStream_cloudwatchlogs"],
        "logEvents": [
            {"id": "eventId1", "timestamp": 1_440_442_987_000_u64, "message": "[ERROR] First test message"},
            {"id": "eventId2", "timestamp": 1_440_442_987_001_u64, "message": "[ERROR] Second test message"}
        ]
    });
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gzip.write_all(data.to_string().as_bytes());
    let compressed = gzip.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(compressed);
    serde_json::json!({"awslogs": {"data": encoded}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::{alb, apigw, cloudwatch_events, cloudwatch_logs, dynamodb};
    use aws_lambda_events::event::{eventbridge, kinesis, lambda_function_urls, s3, sns, sqs};
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// `value` through the type `T`: deserialized from its text (as a handler gets it), then
    /// serialized again.
    fn through<T: DeserializeOwned + Serialize>(value: Value) -> Result<Value, String> {
        let typed: T = serde_json::from_str(&value.to_string()).map_err(|e| e.to_string())?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }

    /// Each sample's `aws_lambda_events` type.
    fn typed(sample: &Sample, event: Value) -> Result<Value, String> {
        match (sample.service, sample.event) {
            ("alb", _) => through::<alb::AlbTargetGroupRequest>(event),
            ("apigateway", "authorizer") => {
                through::<apigw::ApiGatewayCustomAuthorizerRequest>(event)
            }
            ("apigateway", "aws-proxy") => through::<apigw::ApiGatewayProxyRequest>(event),
            ("apigateway", "http-api-proxy") => through::<apigw::ApiGatewayV2httpRequest>(event),
            ("apigateway", "request-authorizer") => {
                through::<apigw::ApiGatewayCustomAuthorizerRequestTypeRequest>(event)
            }
            ("apigateway", _) => through::<apigw::ApiGatewayWebsocketProxyRequest>(event),
            ("cloudwatch", "logs") => through::<cloudwatch_logs::LogsEvent>(event),
            ("cloudwatch", _) => through::<cloudwatch_events::CloudWatchEvent>(event),
            ("dynamodb", _) => through::<dynamodb::Event>(event),
            ("eventbridge", _) => through::<eventbridge::EventBridgeEvent>(event),
            ("kinesis", _) => through::<kinesis::KinesisEvent>(event),
            ("lambda", _) => through::<lambda_function_urls::LambdaFunctionUrlRequest>(event),
            ("s3", _) => through::<s3::S3Event>(event),
            ("sns", _) => through::<sns::SnsEvent>(event),
            ("sqs", _) => through::<sqs::SqsEvent>(event),
            (service, name) => Err(format!("no type for {service} {name}")),
        }
    }

    #[test]
    fn every_sample_fits_its_aws_lambda_events_type() {
        for sample in SAMPLES {
            let event = sample.build(&[]).unwrap_or_else(|e| panic!("{e}"));
            let typed = typed(sample, event.clone())
                .unwrap_or_else(|e| panic!("{} {}: {e}", sample.service, sample.event));
            assert!(!typed.is_null(), "{} {}", sample.service, sample.event);
        }
        assert_eq!(SAMPLES.len(), 17);
    }

    #[test]
    fn set_edits_by_dotted_path_and_keeps_the_type() {
        let sample = find("sqs", "receive-message").unwrap_or_else(|| panic!("no sample"));
        let event = sample
            .build(&[("Records.0.body".into(), "hi".into())])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event["Records"][0]["body"], "hi");
        assert!(typed(sample, event).is_ok());

        let proxy = find("apigateway", "aws-proxy").unwrap_or_else(|| panic!("no sample"));
        let event = proxy
            .build(&[
                ("body".into(), "hi".into()),
                ("queryStringParameters.x".into(), "1".into()),
                ("isBase64Encoded".into(), "false".into()),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event["body"], "hi");
        assert_eq!(event["queryStringParameters"]["x"], "1");
        assert_eq!(event["isBase64Encoded"], false);
        assert!(typed(proxy, event).is_ok());

        let past = sample.build(&[("Records.3.body".into(), "x".into())]);
        assert!(past.is_err_and(|e| e.contains("index 3")));
        let wrong = proxy.build(&[("isBase64Encoded".into(), "maybe".into())]);
        assert!(wrong.is_err_and(|e| e.contains("isBase64Encoded")));
        let nested = proxy
            .build(&[("requestContext.identity.sourceIp".into(), "10.1.1.1".into())])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nested["requestContext"]["identity"]["sourceIp"], "10.1.1.1");
    }

    #[test]
    fn the_logs_sample_carries_gzipped_log_data() {
        let sample = find("cloudwatch", "logs").unwrap_or_else(|| panic!("no sample"));
        let text = sample
            .build(&[])
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        let event: cloudwatch_logs::LogsEvent =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.aws_logs.data.log_events.len(), 2);
    }
}

//! Asynchronous (`Event`) invocations as Lambda runs them: the event waits for capacity (a
//! throttled event is queued, never dropped), a function error, timeout or crash is retried up to
//! `MaximumRetryAttempts` times after one and then two minutes (scaled by
//! [`Settings::async_retry_delay`]), an event older than `MaximumEventAgeInSeconds` is
//! discarded, and the outcome goes to the `OnSuccess`/`OnFailure` destination as Lambda's
//! destination record, and a discarded event to the dead-letter queue.
//!
//! A destination that is a local function is invoked (asynchronously, as Lambda does) with the
//! record; any other destination's records are appended to [`Settings::async_records`] as JSON
//! lines and logged.
//!
//! When the emulator stops, an event still waiting (for capacity or for a retry) ends its task
//! as a [`QueuedEvent`] handed to [`Destinations::keep`]; [`run`] takes such an event up again
//! where it was (attempts made, age, last failure).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use coldstart_protocol::limits;

use crate::clock;
use crate::config::{AWS_RETRY_DELAY, Settings};
use crate::function::Function;
use crate::invocation::{Invocation, Outcome};
use crate::queued::QueuedEvent;

/// Why an asynchronous invocation ended, as the destination record's `condition` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// Where outcomes go besides the records file: the functions of the emulator. The emulator
/// implements it, so that this module does not import the emulator that spawns it.
pub(crate) trait Destinations: Send + Sync + 'static {
    /// The account, region and asynchronous timing.
    fn settings(&self) -> &Settings;
    /// Whether a function of that name is served.
    fn has_function(&self, name: &str) -> bool;
    /// Invokes `function` asynchronously with `payload`.
    fn invoke_event(
        &self,
        function: &str,
        payload: Bytes,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), crate::InvokeError>> + Send + '_>>;
    /// Keeps an event that did not run to its end because the emulator is stopping.
    fn keep(&self, event: QueuedEvent);
}

/// An `Event` invocation on its way: new (no attempts yet), or taken up again after a restart.
pub(crate) struct Event {
    pub(crate) invocation: Invocation,
    /// Attempts made so far.
    pub(crate) attempts: u32,
    /// When Lambda accepted it; its age counts from here.
    pub(crate) enqueued: SystemTime,
    /// The last attempt's failure.
    last: Option<Answer>,
    /// Run while the emulator stops, if still queued, rather than kept (see
    /// [`crate::InvokeRequest::run_before_stop`]).
    pub(crate) run_before_stop: bool,
}

impl Event {
    /// A new event, accepted now.
    pub(crate) fn new(invocation: Invocation) -> Self {
        Self {
            invocation,
            attempts: 0,
            enqueued: SystemTime::now(),
            last: None,
            run_before_stop: false,
        }
    }

    /// An event kept by an earlier emulator.
    pub(crate) fn resumed(queued: QueuedEvent) -> Self {
        let last = queued.last_error.map(|(error_type, body)| Answer {
            body: Bytes::from(body),
            error_type: Some(error_type),
        });
        Self {
            invocation: Invocation {
                request_id: queued.request_id,
                payload: Bytes::from(queued.payload),
                content_type: queued.content_type,
                invoked_arn: queued.invoked_arn,
                trace_id: queued.trace_id,
                client_context: queued.client_context,
                tenant_id: queued.tenant_id,
                log_tail: false,
            },
            attempts: queued.attempts,
            enqueued: queued.enqueued,
            last,
            run_before_stop: false,
        }
    }

    /// How long ago Lambda accepted it.
    fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.enqueued)
            .unwrap_or_default()
    }

    /// Whether it is older than `function`'s maximum event age (on the local clock).
    pub(crate) fn expired(&self, settings: &Settings, function: &Function) -> bool {
        self.age() > scaled(settings, function.config().async_config.max_event_age)
    }

    /// The event as kept at a stop, with `function`'s failure destinations.
    pub(crate) fn keep(self, function: &Function) -> QueuedEvent {
        let config = &function.config().async_config;
        let invocation = self.invocation;
        QueuedEvent {
            function: function.name.to_string(),
            invoked_arn: invocation.invoked_arn,
            request_id: invocation.request_id,
            payload: invocation.payload.to_vec(),
            content_type: invocation.content_type,
            trace_id: invocation.trace_id,
            client_context: invocation.client_context,
            tenant_id: invocation.tenant_id,
            attempts: self.attempts,
            enqueued: self.enqueued,
            last_error: self
                .last
                .and_then(|a| a.error_type.map(|t| (t, a.body.to_vec()))),
            on_failure: config.on_failure.clone(),
            dead_letter: config.dead_letter.clone(),
        }
    }
}

/// The last answer of an attempt.
#[derive(Default)]
struct Answer {
    body: Bytes,
    /// The function error's type, when the attempt failed.
    error_type: Option<String>,
}

/// `wait` on Lambda's clock, as long as it lasts locally.
fn scaled(settings: &Settings, wait: Duration) -> Duration {
    wait.mul_f64(settings.async_retry_delay.as_secs_f64() / AWS_RETRY_DELAY.as_secs_f64())
}

/// Runs one `Event` invocation of `function` to its end, with retries, then sends its outcome
/// to the destinations. When `stopping` is cancelled while the event waits (for capacity or for
/// a retry), the task ends and the event goes to [`Destinations::keep`]; an attempt already
/// running is let finish first.
///
/// Boxed as `dyn Send`: a destination that is a local function is invoked through the
/// emulator, which spawns this again.
pub(crate) fn run<D: Destinations + Clone>(
    emulator: D,
    function: Arc<Function>,
    event: Event,
    stopping: CancellationToken,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(attempt_all(emulator, function, event, stopping))
}

async fn attempt_all<D: Destinations>(
    emulator: D,
    function: Arc<Function>,
    mut event: Event,
    stopping: CancellationToken,
) {
    // Both live as long as this task: it owns the emulator and the function.
    let settings = emulator.settings();
    let config = &function.config().async_config;
    let name = function.name.clone();
    let max_age = scaled(settings, config.max_event_age);
    let (condition, answer) = loop {
        // An event taken up again after a restart may have aged past its maximum meanwhile.
        if event.age() > max_age {
            break (
                Condition::EventAgeExceeded,
                event.last.take().unwrap_or_default(),
            );
        }
        let give_up = (!event.run_before_stop).then_some(&stopping);
        let ran = function
            .run_unless_stopping(event.invocation.clone(), give_up)
            .await;
        let answer = match ran {
            Ok(Some(response)) => match response
                .buffered(limits::MAX_RUNTIME_RESPONSE)
                .await
                .outcome
            {
                Outcome::Response { body, .. } => Answer {
                    body,
                    error_type: None,
                },
                Outcome::FunctionError { error_type, body } => Answer {
                    body,
                    error_type: Some(error_type),
                },
                _ => Answer::default(),
            },
            // Stopped while it waited for capacity: kept for the next start.
            Ok(None) => return keep(&emulator, &function, event),
            Err(_) if stopping.is_cancelled() => return keep(&emulator, &function, event),
            Err(err) => {
                tracing::warn!(
                    function = &*name,
                    request_id = event.invocation.request_id,
                    %err,
                    "event invocation dropped"
                );
                return;
            }
        };
        event.attempts += 1;
        if answer.error_type.is_none() {
            break (Condition::Success, answer);
        }
        if event.attempts > config.max_retry_attempts {
            break (Condition::RetriesExhausted, answer);
        }
        // One minute before the first retry, two before the second.
        let wait = scaled(settings, AWS_RETRY_DELAY * event.attempts);
        if event.age() + wait > max_age {
            break (Condition::EventAgeExceeded, answer);
        }
        event.last = Some(answer);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // The stop does not wait for the retry: the event is kept, and its next attempt
            // runs when an emulator takes it up again.
            () = stopping.cancelled() => return keep(&emulator, &function, event),
        }
    };
    let invocation = &event.invocation;
    tracing::info!(
        function = &*name,
        request_id = invocation.request_id,
        attempts = event.attempts,
        condition = condition.as_str(),
        "event invocation done"
    );
    let record = destination_record(invocation, condition, event.attempts, &answer);
    let destination = match condition {
        Condition::Success => config.on_success.as_deref(),
        _ => config.on_failure.as_deref(),
    };
    if let Some(destination) = destination {
        deliver(&emulator, &name, destination, &record).await;
    }
    if condition != Condition::Success
        && let Some(queue) = &config.dead_letter
    {
        dead_letter(settings, &name, queue, invocation, &answer);
    }
}

/// Hands an event that did not run to its end to the emulator, to keep.
fn keep(emulator: &impl Destinations, function: &Function, event: Event) {
    tracing::info!(
        function = &*function.name,
        request_id = event.invocation.request_id,
        attempts = event.attempts,
        "event invocation kept: the emulator is stopping"
    );
    emulator.keep(event.keep(function));
}

/// Ends a kept event whose function is no longer served: its `OnFailure` destination and
/// dead-letter queue (as kept with it) get it as `RetriesExhausted`, the nearest of Lambda's
/// conditions (no attempt is left to make); with neither, it is dropped and logged.
pub(crate) async fn orphan(emulator: impl Destinations, queued: QueuedEvent) {
    let function = queued.function.clone();
    let (on_failure, queue) = (queued.on_failure.clone(), queued.dead_letter.clone());
    let event = Event::resumed(queued);
    let answer = event.last.unwrap_or_default();
    tracing::warn!(
        function,
        request_id = event.invocation.request_id,
        "kept event invocation of a function no longer served"
    );
    if on_failure.is_none() && queue.is_none() {
        tracing::warn!(
            function,
            request_id = event.invocation.request_id,
            "event invocation dropped: no OnFailure destination or dead-letter queue"
        );
    }
    if let Some(destination) = on_failure {
        let record = destination_record(
            &event.invocation,
            Condition::RetriesExhausted,
            event.attempts,
            &answer,
        );
        deliver(&emulator, &function, &destination, &record).await;
    }
    if let Some(queue) = queue {
        dead_letter(
            emulator.settings(),
            &function,
            &queue,
            &event.invocation,
            &answer,
        );
    }
}

/// Lambda's destination record: what was asked, how it ended, what came back.
fn destination_record(
    invocation: &Invocation,
    condition: Condition,
    attempts: u32,
    answer: &Answer,
) -> Value {
    let payload = |bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    };
    let mut response_context = json!({"statusCode": 200, "executedVersion": "$LATEST"});
    if answer.error_type.is_some() {
        response_context["functionError"] = json!("Unhandled");
    }
    let function_arn = if invocation.invoked_arn.ends_with(":$LATEST") {
        invocation.invoked_arn.clone()
    } else {
        format!("{}:$LATEST", invocation.invoked_arn)
    };
    json!({
        "version": "1.0",
        "timestamp": clock::iso_millis(SystemTime::now()),
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload(&invocation.payload),
        "responseContext": response_context,
        "responsePayload": if answer.body.is_empty() { Value::Null } else { payload(&answer.body) },
    })
}

/// The local function a destination ARN (or bare name) names, if it is one.
fn local_function<'d>(emulator: &impl Destinations, destination: &'d str) -> Option<&'d str> {
    let name = match destination.strip_prefix("arn:") {
        Some(_) => {
            let (_, rest) = destination.split_once(":function:")?;
            rest.split(':').next()?
        }
        None => destination,
    };
    emulator.has_function(name).then_some(name)
}

/// Sends `record` to `destination`: a local function is invoked asynchronously with it; any
/// other destination gets it in the records file.
async fn deliver(emulator: &impl Destinations, function: &str, destination: &str, record: &Value) {
    if let Some(target) = local_function(emulator, destination) {
        if let Err(err) = emulator
            .invoke_event(target, Bytes::from(record.to_string()))
            .await
        {
            tracing::warn!(function, destination, %err, "destination not invoked");
        }
        return;
    }
    append(
        emulator.settings(),
        function,
        &json!({"destination": destination, "record": record}),
    );
}

/// Sends a discarded event to the dead-letter queue: its payload with the request id and error,
/// as Lambda's message attributes carry them.
fn dead_letter(
    settings: &Settings,
    function: &str,
    queue: &str,
    invocation: &Invocation,
    answer: &Answer,
) {
    let message = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("errorMessage").cloned())
        .unwrap_or(Value::Null);
    append(
        settings,
        function,
        &json!({
            "deadLetterQueue": queue,
            "messageAttributes": {
                "RequestID": invocation.request_id,
                "ErrorCode": 200,
                "ErrorMessage": message,
            },
            "body": String::from_utf8_lossy(&invocation.payload),
        }),
    );
}

/// Appends one JSON line to the records file, if there is one, and logs it.
fn append(settings: &Settings, function: &str, line: &Value) {
    tracing::info!(function, "async record: {line}");
    let Some(path) = &settings.async_records else {
        return;
    };
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| writeln!(file, "{line}"));
    if let Err(err) = written {
        tracing::warn!(function, %err, "cannot write {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_ages_scale_with_the_retry_delay() {
        let settings = Settings {
            async_retry_delay: Duration::from_millis(100),
            ..Settings::default()
        };
        assert_eq!(
            scaled(&settings, AWS_RETRY_DELAY),
            Duration::from_millis(100)
        );
        assert_eq!(
            scaled(&settings, Duration::from_secs(21_600)),
            Duration::from_secs(36)
        );
        assert_eq!(
            scaled(&Settings::default(), Duration::from_secs(120)),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn the_destination_record_has_lambdas_shape() {
        let invocation = Invocation {
            request_id: "r-1".into(),
            payload: Bytes::from_static(br#"{"order":7}"#),
            content_type: None,
            invoked_arn: "arn:aws:lambda:us-east-1:012345678912:function:f".into(),
            trace_id: String::new(),
            client_context: None,
            tenant_id: None,
            log_tail: false,
        };
        let answer = Answer {
            body: Bytes::from_static(br#"{"errorType":"E","errorMessage":"no"}"#),
            error_type: Some("E".into()),
        };
        let record = destination_record(&invocation, Condition::RetriesExhausted, 3, &answer);
        assert_eq!(record["version"], "1.0");
        assert_eq!(record["requestContext"]["requestId"], "r-1");
        assert_eq!(
            record["requestContext"]["functionArn"],
            "arn:aws:lambda:us-east-1:012345678912:function:f:$LATEST"
        );
        assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(record["requestPayload"]["order"], 7);
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        assert_eq!(record["responseContext"]["statusCode"], 200);
        assert_eq!(record["responsePayload"]["errorMessage"], "no");
        assert!(
            record["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
}

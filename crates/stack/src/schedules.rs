//! The schedules of a running stack: a task per enabled schedule that sleeps until its next
//! fire time and invokes its function, and [`Schedules::fire`] to fire one now (tests, the
//! dashboard).
//!
//! Each delivery is an `Event` invocation, as EventBridge and EventBridge Scheduler make, so
//! the function's async retries, event age and destinations apply. The payload is AWS's:
//! an EventBridge rule sends a `Scheduled Event` (or its target's `Input`); EventBridge
//! Scheduler sends the target's `Input` with its `<aws.scheduler.*>` context attributes filled
//! in. Each delivery is told to the log sink: a line under the function's name (the terminal)
//! and a `coldstart.schedule` event on its platform event stream.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{Emulator, InvokeRequest, LogSink, Settings};
use coldstart_protocol::InvocationType;

use crate::error::Error;
use crate::model::{ScheduleKind, ScheduleSpec};

/// The type of the platform event each delivery adds to its function's event stream.
pub const SCHEDULE_EVENT: &str = "coldstart.schedule";

/// A running stack's schedules. Cheap to clone.
#[derive(Clone)]
pub struct Schedules {
    inner: Arc<Inner>,
}

struct Inner {
    specs: Vec<ScheduleSpec>,
    emulator: Emulator,
    sink: Arc<dyn LogSink>,
    /// When the stack started: a rate counts from here.
    started: DateTime<Utc>,
    /// The tokio clock's time at `started`: the schedules' clock counts the tokio time since
    /// (see `Schedules::now`), so that a test with a paused tokio clock moves them too.
    anchor: tokio::time::Instant,
    /// Whether the schedules fire by themselves (`up --no-schedules` says no).
    timers: bool,
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedules")
            .field("specs", &self.inner.specs)
            .field("started", &self.inner.started)
            .field("timers", &self.inner.timers)
            .finish_non_exhaustive()
    }
}

/// One delivery of a schedule ([`Schedules::fire`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The schedule.
    pub schedule: String,
    /// The function invoked.
    pub function: String,
    /// The `Event` invocation's request id.
    pub request_id: String,
    /// The payload the function got.
    pub payload: serde_json::Value,
}

/// A schedule as `up` lists it ([`Schedules::list`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The schedule.
    pub spec: ScheduleSpec,
    /// When it fires next by itself: `None` when disabled, turned off (`--no-schedules`), or
    /// never again.
    pub next: Option<DateTime<Utc>>,
}

impl Schedules {
    /// `specs` of a stack started at `started`, invoking through `emulator` and telling `sink`.
    /// `timers`: whether [`Schedules::run`] fires them by themselves.
    pub fn new(
        specs: Vec<ScheduleSpec>,
        emulator: Emulator,
        sink: Arc<dyn LogSink>,
        started: DateTime<Utc>,
        timers: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                specs,
                emulator,
                sink,
                started,
                anchor: tokio::time::Instant::now(),
                timers,
            }),
        }
    }

    /// Now, on the schedules' clock: the later of the wall clock and the start plus the tokio
    /// time since (the tokio clock stops while the machine sleeps; a paused one in tests runs
    /// ahead of the wall clock).
    fn now(&self) -> DateTime<Utc> {
        let since = tokio::time::Instant::now().duration_since(self.inner.anchor);
        let ticked = self.inner.started + chrono::Duration::from_std(since).unwrap_or_default();
        ticked.max(Utc::now())
    }

    /// Every schedule with its next fire time after now.
    pub fn list(&self) -> Vec<Listed> {
        let now = self.now();
        self.inner
            .specs
            .iter()
            .map(|spec| Listed {
                next: (self.inner.timers && spec.enabled)
                    .then(|| self.next_after(spec, now))
                    .flatten(),
                spec: spec.clone(),
            })
            .collect()
    }

    fn next_after(&self, spec: &ScheduleSpec, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        spec.expression
            .next_after(after, self.inner.started, spec.timezone)
    }

    /// Fires the schedule `name` now (disabled or not): every function it targets gets its
    /// payload as an `Event` invocation. Returns once the invocations are accepted.
    pub async fn fire(&self, name: &str) -> Result<Vec<Delivery>, Error> {
        let specs: Vec<&ScheduleSpec> =
            self.inner.specs.iter().filter(|s| s.name == name).collect();
        if specs.is_empty() {
            let names: Vec<&str> = self.inner.specs.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::Schedule {
                name: name.to_owned(),
                reason: format!(
                    "no such schedule (the stack has {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            });
        }
        let now = self.now().trunc_subsecs(0);
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            out.push(self.deliver(spec, now).await?);
        }
        Ok(out)
    }

    /// Invokes `spec`'s function with its payload for the fire time `time`.
    async fn deliver(&self, spec: &ScheduleSpec, time: DateTime<Utc>) -> Result<Delivery, Error> {
        let settings = self.inner.emulator.settings();
        let text = payload(spec, settings, time, &uuid::Uuid::new_v4().to_string());
        let request = InvokeRequest {
            payload: bytes::Bytes::from(text.clone()),
            invocation_type: InvocationType::Event,
            ..InvokeRequest::default()
        };
        let sink = &self.inner.sink;
        let answer = self.inner.emulator.invoke(&spec.function, request).await;
        let (request_id, outcome) = match &answer {
            Ok(response) => (response.request_id.clone(), "accepted".to_owned()),
            Err(e) => (String::new(), e.to_string()),
        };
        sink.line(
            &spec.function,
            &format!(
                "SCHEDULE {} {} fired{}",
                spec.name,
                spec.expression,
                if request_id.is_empty() {
                    format!(": not delivered: {outcome}")
                } else {
                    format!(" RequestId: {request_id}")
                }
            ),
        );
        if sink.wants_records() {
            sink.record(
                &spec.function,
                &coldstart_emulator::notes::StreamEvent::note(coldstart_emulator::notes::event(
                    SCHEDULE_EVENT,
                    serde_json::json!({
                        "schedule": spec.name,
                        "arn": arn(spec, settings),
                        "expression": spec.expression.to_string(),
                        "scheduledTime": rfc3339(time),
                        "requestId": request_id,
                        "outcome": outcome,
                    }),
                )),
            );
        }
        let response = answer.map_err(|e| Error::Schedule {
            name: spec.name.clone(),
            reason: format!("{} could not be invoked: {e}", spec.function),
        })?;
        Ok(Delivery {
            schedule: spec.name.clone(),
            function: spec.function.clone(),
            request_id: response.request_id,
            payload: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        })
    }

    /// Fires every enabled schedule at its times until `shutdown` is cancelled (at once when
    /// the schedules were turned off).
    pub async fn run(self, shutdown: CancellationToken) {
        if !self.inner.timers {
            return;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, spec) in self.inner.specs.iter().enumerate() {
            if !spec.enabled {
                continue;
            }
            let this = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { this.timer(i, shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The timer of the `i`-th schedule: sleeps until each fire time, then delivers.
    async fn timer(&self, i: usize, shutdown: CancellationToken) {
        let Some(spec) = self.inner.specs.get(i) else {
            return;
        };
        let mut after = self.now();
        while let Some(next) = self.next_after(spec, after) {
            let wait = (next - self.now()).to_std().unwrap_or_default();
            // Cancelled: the stack is stopping and the schedule fires no more.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            if let Err(e) = self.deliver(spec, next).await {
                tracing::warn!(schedule = %spec.name, "{e}");
            }
            after = next;
        }
    }
}

/// The ARN of `spec`'s rule or schedule.
pub fn arn(spec: &ScheduleSpec, settings: &Settings) -> String {
    match spec.kind {
        ScheduleKind::Rule => format!(
            "arn:aws:events:{}:{}:rule/{}",
            settings.region, settings.account_id, spec.aws_name
        ),
        ScheduleKind::Scheduler => format!(
            "arn:aws:scheduler:{}:{}:schedule/default/{}",
            settings.region, settings.account_id, spec.aws_name
        ),
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What `spec`'s function gets when it fires at `time`; `id` is the event's or execution's id.
///
/// An EventBridge rule without `Input` sends its `Scheduled Event` (EventBridge user guide,
/// "Creating a rule that runs on a schedule"; Lambda developer guide, "Using Lambda with
/// EventBridge"), or the part its target's `InputPath` selects, or what its `InputTransformer`
/// makes of it; with `Input`, that text. EventBridge Scheduler sends `Input` with its context
/// attributes (`<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`,
/// `<aws.scheduler.execution-id>`, `<aws.scheduler.attempt-number>`) replaced, and `{}` without
/// one.
pub fn payload(spec: &ScheduleSpec, settings: &Settings, time: DateTime<Utc>, id: &str) -> String {
    match (spec.kind, &spec.input) {
        (ScheduleKind::Rule, Some(input)) => input.clone(),
        (ScheduleKind::Rule, None) => {
            let event = serde_json::json!({
                "version": "0",
                "id": id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": settings.account_id,
                "time": rfc3339(time),
                "region": settings.region,
                "resources": [arn(spec, settings)],
                "detail": {},
            });
            match &spec.transform {
                Some(t) => t.apply(&event, &spec.aws_name, &arn(spec, settings), &rfc3339(time)),
                None => event.to_string(),
            }
        }
        (ScheduleKind::Scheduler, Some(input)) => input
            .replace("<aws.scheduler.schedule-arn>", &arn(spec, settings))
            .replace("<aws.scheduler.scheduled-time>", &rfc3339(time))
            .replace("<aws.scheduler.execution-id>", id)
            .replace("<aws.scheduler.attempt-number>", "1"),
        (ScheduleKind::Scheduler, None) => "{}".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::expression::ScheduleExpression;

    fn spec(kind: ScheduleKind, input: Option<&str>) -> ScheduleSpec {
        ScheduleSpec {
            name: "NightlyJob".into(),
            function: "Job".into(),
            expression: ScheduleExpression::parse("cron(0 3 * * ? *)", true)
                .unwrap_or_else(|e| panic!("{e}")),
            timezone: chrono_tz::UTC,
            input: input.map(str::to_owned),
            enabled: true,
            kind,
            aws_name: "nightly".into(),
            description: None,
            transform: None,
        }
    }

    fn time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-05T03:00:00Z")
            .unwrap_or_else(|e| panic!("{e}"))
            .with_timezone(&Utc)
    }

    /// Collects the schedule lines with the tokio time they came at.
    #[derive(Default)]
    struct Lines(std::sync::Mutex<Vec<(tokio::time::Instant, String)>>);

    impl LogSink for Lines {
        fn line(&self, _function: &str, line: &str) {
            if let Ok(mut lines) = self.0.lock() {
                lines.push((tokio::time::Instant::now(), line.to_owned()));
            }
        }
    }

    // The timers on a paused tokio clock: a rate fires N units after the start, then every N
    // units; a disabled schedule never does; nothing fires after the stop.
    #[tokio::test(start_paused = true)]
    async fn a_rate_fires_one_minute_after_the_start_then_every_minute() {
        let mut config =
            coldstart_emulator::FunctionConfig::new("Job", vec!["/no/such/bootstrap".into()]);
        config.freeze = false;
        let emulator = Emulator::new(
            vec![config],
            Settings::default(),
            Arc::new(Lines::default()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Pending: each delivery is refused at once, and its line still says it fired.
        emulator.set_state("Job", coldstart_emulator::State::Pending);
        let every = |name: &str, enabled: bool| ScheduleSpec {
            name: name.into(),
            expression: ScheduleExpression::parse("rate(1 minute)", false)
                .unwrap_or_else(|e| panic!("{e}")),
            enabled,
            ..spec(ScheduleKind::Rule, None)
        };
        let lines = Arc::new(Lines::default());
        let start = tokio::time::Instant::now();
        let schedules = Schedules::new(
            vec![every("Tick", true), every("Off", false)],
            emulator,
            lines.clone(),
            Utc::now(),
            true,
        );
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(schedules.clone().run(shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(150)).await;
        shutdown.cancel();
        run.await.unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_secs(600)).await;
        let fired: Vec<(u64, String)> = lines
            .0
            .lock()
            .map(|l| {
                l.iter()
                    .map(|(t, line)| (t.duration_since(start).as_secs(), line.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let at: Vec<u64> = fired.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [60, 120], "{fired:?}");
        assert!(
            fired
                .iter()
                .all(|(_, l)| l.starts_with("SCHEDULE Tick rate(1 minute) fired: not delivered")),
            "{fired:?}"
        );
    }

    #[test]
    fn a_rule_sends_a_scheduled_event_that_aws_lambda_events_reads() {
        let settings = Settings::default();
        let text = payload(&spec(ScheduleKind::Rule, None), &settings, time(), "e-1");
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(event.source, "aws.events");
        assert_eq!(event.id.as_deref(), Some("e-1"));
        assert_eq!(
            event.time.map(|t| t.to_rfc3339()),
            Some("2026-12-05T03:00:00+00:00".into())
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(
            value["resources"][0],
            format!(
                "arn:aws:events:{}:{}:rule/nightly",
                settings.region, settings.account_id
            )
        );
        assert_eq!(value["time"], "2026-12-05T03:00:00Z");
        assert_eq!(value["detail"], serde_json::json!({}));
        assert_eq!(value["version"], "0");
    }

    #[test]
    fn input_replaces_the_event_and_scheduler_fills_its_context_attributes() {
        let settings = Settings::default();
        assert_eq!(
            payload(
                &spec(ScheduleKind::Rule, Some(r#"{"job":"x"}"#)),
                &settings,
                time(),
                "e"
            ),
            r#"{"job":"x"}"#
        );
        let scheduler = spec(
            ScheduleKind::Scheduler,
            Some(
                r#"{"arn":"<aws.scheduler.schedule-arn>","at":"<aws.scheduler.scheduled-time>","id":"<aws.scheduler.execution-id>","n":"<aws.scheduler.attempt-number>"}"#,
            ),
        );
        let value: serde_json::Value =
            serde_json::from_str(&payload(&scheduler, &settings, time(), "x-1"))
                .unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({
                "arn": format!("arn:aws:scheduler:{}:{}:schedule/default/nightly", settings.region, settings.account_id),
                "at": "2026-12-05T03:00:00Z",
                "id": "x-1",
                "n": "1",
            })
        );
        assert_eq!(
            payload(&spec(ScheduleKind::Scheduler, None), &settings, time(), "x"),
            "{}"
        );
    }
}

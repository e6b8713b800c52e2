//! What a sandbox says about its invocations: the caller's one answer, the `END`/`REPORT` and
//! `INIT_REPORT` lines, and the platform events of its telemetry stream.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use coldstart_protocol::logs;
use coldstart_protocol::telemetry::{
    self as tm, Category, InitPhase, InitType, Record, Status, TraceContext,
};

use super::Sandbox;
use super::state::{Answer, InitDone, Running};
use crate::clock::{iso_millis, ms2};
use crate::invocation::{Invocation, InvokeResponse, Outcome, StreamError, StreamItem};
use crate::logs::LogCapture;
use crate::notes;
use crate::telemetry::Telemetry;

/// The `END` and `REPORT` lines of an answered invocation, still to be written: the Runtime API
/// writes them once the caller's answer is on its way.
pub(crate) struct Report {
    request_id: String,
    duration: Duration,
    init: Option<Duration>,
    status: Option<ReportStatus>,
}

/// The `Status` of a `REPORT` line.
pub(super) enum ReportStatus {
    Timeout,
    Error(String),
}

/// When the runtime's buffered answer began and finished arriving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseTiming {
    pub(crate) began: Instant,
    pub(crate) ended: Instant,
}

impl ResponseTiming {
    /// `responseLatency` (the invocation's start to the answer's start) and `responseDuration`
    /// (the answer's start to its end).
    fn spans(self, running: &Running) -> Vec<tm::Span> {
        let began_at = running.started_at + self.began.saturating_duration_since(running.started);
        vec![
            tm::Span {
                name: tm::RESPONSE_LATENCY.into(),
                start: iso_millis(running.started_at),
                duration_ms: millis(self.began.saturating_duration_since(running.started)),
            },
            tm::Span {
                name: tm::RESPONSE_DURATION.into(),
                start: iso_millis(began_at),
                duration_ms: millis(self.ended.saturating_duration_since(self.began)),
            },
        ]
    }
}

/// Publishes the platform record `make` builds on a sandbox's stream and, with the JSON log
/// format, writes it to the function's log as one line, in the Telemetry API's shape (when its
/// level is not below the function's `SystemLogLevel`).
pub(super) fn platform_record(
    telemetry: &Telemetry,
    logs: &LogCapture,
    make: impl FnOnce() -> Record,
) {
    if !logs.json() {
        telemetry.publish(Category::Platform, make);
        return;
    }
    let record = make();
    let event = tm::Event {
        time: iso_millis(SystemTime::now()),
        record,
    };
    if logs.wants_record(event.record.system_level())
        && let Ok(line) = serde_json::to_string(&event)
    {
        logs.platform_record(&line);
    }
    telemetry.publish(Category::Platform, move || event.record);
}

/// The `platform.runtimeDone` record of `running`, its duration measured now.
pub(super) fn runtime_done_record(
    running: &Running,
    status: Status,
    error_type: Option<&str>,
    produced_bytes: Option<u64>,
    timing: Option<ResponseTiming>,
) -> Record {
    let spans = timing.map_or_else(Vec::new, |t| t.spans(running));
    Record::RuntimeDone(tm::RuntimeDone {
        request_id: running.invocation.request_id.clone(),
        status,
        error_type: error_type.map(str::to_owned),
        metrics: Some(tm::RuntimeDoneMetrics {
            duration_ms: millis(running.started.elapsed()),
            produced_bytes,
        }),
        spans,
        tracing: trace_context(&running.invocation.trace_id),
    })
}

impl Sandbox {
    /// Publishes the platform record `make` builds and, with the JSON log format, writes it to
    /// the function's log as one line, in the Telemetry API's shape.
    fn platform_record(&self, make: impl FnOnce() -> Record) {
        platform_record(&self.telemetry, &self.logs, make);
    }

    /// Publishes a successful init: every extension's state, then its end.
    pub(super) fn publish_init_ready(&self, done: &InitDone) {
        for (name, events) in &done.extensions {
            self.platform_record(|| {
                Record::Extension(tm::ExtensionState {
                    name: name.clone(),
                    state: "Ready".into(),
                    events: events.clone(),
                })
            });
        }
        self.publish_init_done(done.duration, Status::Success, None);
    }

    /// Publishes the end of init (`platform.initRuntimeDone`, `platform.initReport`); events are
    /// no longer kept for later subscribers.
    fn publish_init_done(&self, duration: Duration, status: Status, error_type: Option<&str>) {
        self.platform_record(|| {
            Record::InitRuntimeDone(tm::InitRuntimeDone {
                initialization_type: InitType::OnDemand,
                phase: InitPhase::Init,
                status,
                error_type: error_type.map(str::to_owned),
                spans: Vec::new(),
            })
        });
        self.platform_record(|| {
            Record::InitReport(tm::InitReport {
                initialization_type: InitType::OnDemand,
                phase: InitPhase::Init,
                status,
                error_type: error_type.map(str::to_owned),
                metrics: tm::InitReportMetrics {
                    duration_ms: millis(duration),
                },
                spans: Vec::new(),
            })
        });
        self.telemetry.end_init();
    }

    /// Publishes `platform.start` of `invocation`, after the preview of its event for the log
    /// sink ([`crate::notes::REQUEST_PREVIEW`]).
    pub(super) fn publish_start(&self, invocation: &Invocation) {
        self.telemetry.observe(|| {
            let payload = &invocation.payload;
            notes::preview(
                false,
                &invocation.request_id,
                payload,
                Some(payload.len()),
                None,
            )
        });
        self.platform_record(|| {
            Record::Start(tm::Start {
                request_id: invocation.request_id.clone(),
                version: Some("$LATEST".into()),
                tracing: trace_context(&invocation.trace_id),
            })
        });
    }

    /// Publishes `platform.runtimeDone` of `running`.
    pub(super) fn publish_runtime_done(
        &self,
        running: &Running,
        status: Status,
        error_type: Option<&str>,
        produced_bytes: Option<u64>,
        timing: Option<ResponseTiming>,
    ) {
        self.publish_runtime_done_record(|| {
            runtime_done_record(running, status, error_type, produced_bytes, timing)
        });
    }

    /// Whether anyone reads `platform.runtimeDone` now: a Telemetry API subscriber (or the
    /// emulator's observer), or the function's JSON log.
    pub(super) fn runtime_done_wanted(&self) -> bool {
        self.telemetry.wants(Category::Platform) || self.logs.json()
    }

    /// Publishes a `platform.runtimeDone` after the lines the function printed before answering.
    pub(super) fn publish_runtime_done_record(&self, make: impl FnOnce() -> Record) {
        if self.telemetry.wants(Category::Function) || self.logs.json() {
            // The lines the function printed before answering belong before its runtimeDone.
            self.logs.drain();
        }
        self.platform_record(make);
    }

    /// Hands the log sink the first bytes of the answer `outcome` of `request_id`
    /// ([`crate::notes::RESPONSE_PREVIEW`]).
    pub(super) fn publish_answer_preview(&self, request_id: &str, outcome: &Outcome) {
        self.telemetry.observe(|| {
            let (body, error_type) = match outcome {
                Outcome::Response { body, .. } => (&body[..], None),
                Outcome::FunctionError { error_type, body } => (&body[..], Some(&**error_type)),
                Outcome::Stream { .. } | Outcome::Accepted | Outcome::DryRun => (&[][..], None),
            };
            notes::preview(true, request_id, body, Some(body.len()), error_type)
        });
    }

    /// Hands the log sink the first bytes of a streamed answer, gathered by the Runtime API
    /// while it forwarded the stream (see [`Self::wants_previews`]).
    pub(crate) fn publish_stream_preview(
        &self,
        request_id: &str,
        head: &[u8],
        error_type: Option<&str>,
    ) {
        self.telemetry
            .observe(|| notes::preview(true, request_id, head, None, error_type));
    }

    /// Whether the log sink reads previews: the Runtime API keeps a streamed answer's first
    /// [`notes::PREVIEW_LIMIT`] bytes only then.
    pub(crate) fn wants_previews(&self) -> bool {
        self.telemetry.observed_by_sink()
    }

    /// Answers an invocation whose sandbox never became ready, with the platform's log lines.
    pub(crate) fn fail_start(
        &self,
        invocation: &Invocation,
        outcome: Outcome,
        timed_out: bool,
    ) -> InvokeResponse {
        let request_id = &invocation.request_id;
        self.logs.begin_invocation(request_id, invocation.log_tail);
        self.publish_start(invocation);
        let status = if timed_out {
            ReportStatus::Timeout
        } else {
            ReportStatus::Error(outcome.error_type().unwrap_or("Runtime.Unknown").to_owned())
        };
        self.publish_answer_preview(request_id, &outcome);
        self.logs.drain();
        self.write_end_report(request_id, Duration::ZERO, None, Some(status));
        InvokeResponse {
            request_id: request_id.clone(),
            outcome,
            log_tail: self.logs.end_invocation(),
        }
    }

    /// Answers the caller and writes `END` and `REPORT`. With Tail the log is completed before
    /// the answer so that it carries `REPORT`; without, the caller is answered first. A streamed
    /// answer is ended with `outcome`'s error.
    #[must_use = "the END and REPORT lines of a returned report are still to be written"]
    pub(super) fn finish(
        &self,
        running: Running,
        outcome: Outcome,
        status: Option<ReportStatus>,
    ) -> Option<Report> {
        let duration = running.started.elapsed();
        let request_id = running.invocation.request_id.clone();
        if matches!(running.answer, Answer::Pending(_)) {
            self.publish_answer_preview(&request_id, &outcome);
        }
        let reply = match running.answer {
            Answer::Pending(reply) => reply,
            Answer::Streaming { abort, .. } => {
                self.logs.drain();
                self.write_end_report(&request_id, duration, running.init, status);
                let log_tail = self.logs.end_invocation();
                let error = match outcome {
                    Outcome::FunctionError { error_type, body } => {
                        Some(StreamError { error_type, body })
                    }
                    _ => None,
                };
                let _ = abort.send(StreamItem::End { error, log_tail });
                return None;
            }
        };
        if running.invocation.log_tail {
            self.logs.drain();
            self.write_end_report(&request_id, duration, running.init, status);
            let log_tail = self.logs.end_invocation();
            let _ = reply.send(InvokeResponse {
                request_id,
                outcome,
                log_tail,
            });
            None
        } else {
            // The caller may be gone; the invocation still ran and is still logged.
            let _ = reply.send(InvokeResponse {
                request_id: request_id.clone(),
                outcome,
                log_tail: None,
            });
            Some(Report {
                request_id,
                duration,
                init: running.init,
                status,
            })
        }
    }

    /// Writes an answered invocation's `END` and `REPORT` (after whatever it printed).
    pub(crate) fn write_report(&self, report: Report) {
        self.logs.drain();
        self.write_end_report(
            &report.request_id,
            report.duration,
            report.init,
            report.status,
        );
        self.logs.end_invocation();
    }

    pub(super) fn write_end_report(
        &self,
        request_id: &str,
        duration: Duration,
        init: Option<Duration>,
        status: Option<ReportStatus>,
    ) {
        let config = &self.spec.config;
        let billed = (duration + init.unwrap_or_default()).as_secs_f64() * 1000.0;
        let billed = billed.ceil().max(1.0) as u64;
        let peak = self.refresh_peak(Some(duration));
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {peak} MB\t",
            ms2(duration),
            config.memory_mb,
        );
        self.telemetry.publish_logs(|| {
            logs::Record::End(logs::RequestRef {
                request_id: request_id.to_owned(),
            })
        });
        self.platform_record(|| {
            let (status, error_type) = match &status {
                None => (Status::Success, None),
                Some(ReportStatus::Timeout) => (Status::Timeout, Some("Sandbox.Timedout".into())),
                Some(ReportStatus::Error(t)) => (Status::Error, Some(t.clone())),
            };
            Record::Report(tm::Report {
                request_id: request_id.to_owned(),
                status,
                error_type,
                metrics: tm::ReportMetrics {
                    duration_ms: millis(duration),
                    billed_duration_ms: billed,
                    memory_size_mb: u64::from(config.memory_mb),
                    max_memory_used_mb: peak,
                    init_duration_ms: init.map(millis),
                },
                spans: Vec::new(),
                tracing: None,
            })
        });
        if let Some(init) = init {
            report.push_str(&format!("Init Duration: {} ms\t", ms2(init)));
        }
        match status {
            None => {}
            Some(ReportStatus::Timeout) => report.push_str("Status: timeout\t"),
            Some(ReportStatus::Error(t)) => {
                report.push_str(&format!("Status: error\tError Type: {t}\t"));
            }
        }
        self.logs
            .platform_line(&format!("END RequestId: {request_id}"));
        self.logs.platform_line(&report);
    }

    /// Writes an `INIT_REPORT` line for an init that failed (`Error`) or timed out, and
    /// publishes its end.
    pub(super) fn log_init_report(
        &self,
        duration: Duration,
        status: Status,
        error_type: Option<&str>,
    ) {
        let word = if status == Status::Timeout {
            "timeout"
        } else {
            "error"
        };
        let mut line = format!(
            "INIT_REPORT Init Duration: {} ms\tPhase: init\tStatus: {word}",
            ms2(duration)
        );
        if let Some(t) = error_type {
            line.push_str(&format!("\tError Type: {t}"));
        }
        self.logs.drain();
        self.logs.platform_line(&line);
        self.publish_init_done(duration, status, error_type);
    }

    /// The bootstrap's peak memory, kept for reports written after it is gone; for an
    /// invocation that `ran` so long, as [`crate::process::StatusFile::peak_after`] reads it.
    pub(super) fn refresh_peak(&self, ran: Option<Duration>) -> u64 {
        let read = self.status.get().and_then(|status| match ran {
            Some(ran) => status.peak_after(ran),
            None => status.peak_rss_mb(),
        });
        match read {
            Some(mb) => {
                self.peak_mb.store(mb, Ordering::Relaxed);
                mb
            }
            None => self.peak_mb.load(Ordering::Relaxed),
        }
    }
}

/// Milliseconds with microsecond precision, as Lambda's metrics.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// The Telemetry API's trace context of an invocation's trace header, if it has one.
fn trace_context(trace_id: &str) -> Option<TraceContext> {
    (!trace_id.is_empty()).then(|| TraceContext {
        span_id: None,
        kind: "X-Amzn-Trace-Id".into(),
        value: trace_id.to_owned(),
    })
}

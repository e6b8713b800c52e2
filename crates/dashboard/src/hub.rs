//! The dashboard's view of the platform event stream: a [`LogSink`] that passes every line on
//! to the sink it wraps (the terminal, a test's collector) and keeps, bounded, what the page
//! shows: recent invocations with their log lines, platform events and previews of their event
//! and answer, recent log lines, per-function counts and durations, each function's build
//! state, and each front door's recent requests (the last three from coldstart's own events on
//! the same stream, [`coldstart_emulator::notes`]). Every change is also offered to live subscribers
//! ([`Hub::subscribe`]) through a bounded broadcast channel: a subscriber that falls behind
//! loses the oldest updates and is told how many, it never slows an invocation down.
//!
//! Log lines carry no request id on the wire; a line is given to the invocation of its function
//! that started last and has not ended (`platform.start` … `platform.runtimeDone`). With one
//! sandbox per function that is exact; with several busy at once, a line may land on a sibling.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use coldstart_emulator::LogSink;
use coldstart_emulator::notes::{self, StreamEvent};
use coldstart_protocol::telemetry::Record;

use crate::secrets;

/// Invocations kept, newest last.
pub const MAX_INVOCATIONS: usize = 500;
/// Log lines kept, all functions together.
pub const MAX_LINES: usize = 5000;
/// Log lines kept per invocation.
const MAX_INVOCATION_LINES: usize = 200;
/// Platform events kept per invocation.
const MAX_INVOCATION_EVENTS: usize = 50;
/// Durations kept per function for its percentiles.
const MAX_DURATIONS: usize = 1000;
/// Characters of a preview an invocation's summary (a list row, a live update) carries; the
/// invocation itself has the whole preview.
pub const SUMMARY_PREVIEW: usize = 120;
/// Requests kept per API (Function URL, HTTP API, REST API).
pub const MAX_API_REQUESTS: usize = 50;
/// How many of the latest invocations a log line or event is looked for in.
const RECENT: usize = 64;
/// Updates a live subscriber may fall behind by before it loses the oldest.
const LIVE_BACKLOG: usize = 1024;

/// One invocation as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    /// The request id.
    pub request_id: String,
    /// The function.
    pub function: String,
    /// When it started (the `platform.start` event's time).
    pub started_at: String,
    /// `running`, then the `platform.report` status: `success`, `error`, `timeout`, `failure`.
    pub status: String,
    /// `durationMs` of its report.
    pub duration_ms: Option<f64>,
    /// `billedDurationMs` of its report.
    pub billed_duration_ms: Option<f64>,
    /// `memorySizeMB` of its report.
    pub memory_size_mb: Option<f64>,
    /// `maxMemoryUsedMB` of its report.
    pub max_memory_used_mb: Option<f64>,
    /// `initDurationMs` of its report: set on a cold start.
    pub init_duration_ms: Option<f64>,
    /// The first bytes of the event ([`coldstart_emulator::notes::PREVIEW_LIMIT`]), secret
    /// values hidden ([`crate::secrets::redact_json`]) when read from the hub.
    pub payload: Option<String>,
    /// The first bytes of the answer, secret values hidden when read from the hub.
    pub answer: Option<String>,
    /// Its log lines.
    pub logs: Vec<Arc<str>>,
    /// Its platform events (`platform.initStart` … of the cold start it caused, then
    /// `platform.start`, `platform.runtimeDone`, `platform.report`).
    pub events: Vec<StreamEvent>,
}

/// One log line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Counts lines from 1, in arrival order.
    pub seq: u64,
    /// Arrival time, epoch milliseconds.
    pub time: u64,
    /// The function that wrote it.
    pub function: String,
    /// The invocation it belongs to, when one was running.
    pub request_id: Option<String>,
    /// The line.
    pub line: Arc<str>,
}

/// A function's counts and durations so far.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Invocations reported.
    pub invocations: u64,
    /// Sandboxes started (`platform.initStart`).
    pub cold_starts: u64,
    /// Invocations whose report status was not `success`.
    pub errors: u64,
    /// Median `durationMs` of the last invocations.
    pub p50_ms: Option<f64>,
    /// 99th percentile `durationMs` of the last invocations.
    pub p99_ms: Option<f64>,
}

/// What the invocation list shows of an invocation; the rest (logs, events, previews) is read
/// with [`Hub::invocation`] when it is opened.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub request_id: String,
    pub function: String,
    pub started_at: String,
    pub status: String,
    pub duration_ms: Option<f64>,
    pub billed_duration_ms: Option<f64>,
    pub memory_size_mb: Option<f64>,
    pub max_memory_used_mb: Option<f64>,
    pub init_duration_ms: Option<f64>,
    /// The start of the payload preview ([`SUMMARY_PREVIEW`] characters, `…` when cut).
    pub payload: Option<String>,
    /// The start of the answer preview.
    pub answer: Option<String>,
}

impl Invocation {
    /// Its summary with the previews as kept (whole, secrets not hidden yet): what a live
    /// update carries, made into a row by [`Summary::shown`] in the subscriber's task.
    fn summary(&self) -> Summary {
        Summary {
            payload: self.payload.clone(),
            answer: self.answer.clone(),
            request_id: self.request_id.clone(),
            function: self.function.clone(),
            started_at: self.started_at.clone(),
            status: self.status.clone(),
            duration_ms: self.duration_ms,
            billed_duration_ms: self.billed_duration_ms,
            memory_size_mb: self.memory_size_mb,
            max_memory_used_mb: self.max_memory_used_mb,
            init_duration_ms: self.init_duration_ms,
        }
    }
}

impl Summary {
    /// As a row shows it: the previews' secrets hidden, then cut to [`SUMMARY_PREVIEW`].
    fn shown(&self) -> Summary {
        let row = |preview: &Option<String>| {
            preview
                .as_deref()
                .map(|p| summary_preview(&secrets::redact_json(p)))
        };
        Summary {
            payload: row(&self.payload),
            answer: row(&self.answer),
            ..self.clone()
        }
    }
}

/// A function's build, as `up` told it ([`coldstart_emulator::notes::BUILD`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    /// The function.
    pub function: String,
    /// `building`, `built` or `failed`.
    pub status: String,
    /// The first line of why it failed.
    pub error: Option<String>,
}

/// One request a Function URL or an API answered ([`coldstart_emulator::notes::API_REQUEST`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    /// The API's name (the function's, for a Function URL).
    pub api: String,
    /// `url`, `http-api` or `rest-api`.
    pub kind: String,
    /// When it was answered.
    pub time: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Until the answer's head.
    pub duration_ms: f64,
    /// The invocation it made, when a function ran.
    pub request_id: Option<String>,
    /// The function that ran, when the invocation is kept.
    pub function: Option<String>,
}

/// A change, as a live subscriber gets it. Cheap to clone: subscribers serialise it in their
/// own task, off the invocation path.
#[derive(Debug, Clone)]
pub enum Update {
    /// An invocation started or ended (SSE event `invocation`): its summary with the previews
    /// whole and secrets not hidden yet; [`Update::json`] hides them and cuts the previews.
    Invocation(Arc<Summary>),
    /// A log line (SSE event `log`).
    Log(Arc<LogLine>),
    /// A function's build state changed (SSE event `build`).
    Build(Arc<Build>),
    /// A front door answered a request (SSE event `apiRequest`).
    ApiRequest(Arc<ApiRequest>),
}

impl Update {
    /// The SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invocation(_) => "invocation",
            Self::Log(_) => "log",
            Self::Build(_) => "build",
            Self::ApiRequest(_) => "apiRequest",
        }
    }

    /// The JSON data.
    pub fn json(&self) -> String {
        match self {
            Self::Invocation(summary) => serde_json::to_string(&summary.shown()),
            Self::Log(line) => serde_json::to_string(&**line),
            Self::Build(build) => serde_json::to_string(&**build),
            Self::ApiRequest(request) => serde_json::to_string(&**request),
        }
        .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Store {
    invocations: VecDeque<Invocation>,
    lines: VecDeque<Arc<LogLine>>,
    next_seq: u64,
    /// Per function: request ids started and not yet done, oldest first.
    running: HashMap<String, Vec<String>>,
    /// Per function: init events waiting for the invocation that caused them.
    init_events: HashMap<String, Vec<StreamEvent>>,
    stats: HashMap<String, FunctionStats>,
    /// Event previews (secrets not hidden yet), by request id, until their invocation starts.
    payloads: HashMap<String, String>,
    /// Per function: its build's last state.
    builds: HashMap<String, Build>,
    /// Per `(kind, api)`: its latest requests, oldest first.
    api_requests: HashMap<(String, String), VecDeque<Arc<ApiRequest>>>,
}

impl Store {
    /// The invocation `id` among the last [`RECENT`]: lines and events come while an
    /// invocation is recent, and a miss (a `START` line comes before its `platform.start`)
    /// must not cost a scan of every invocation kept.
    fn recent(&mut self, id: &str) -> Option<&mut Invocation> {
        self.invocations
            .iter_mut()
            .rev()
            .take(RECENT)
            .find(|i| i.request_id == id)
    }
}

#[derive(Debug, Default)]
struct FunctionStats {
    counts: Stats,
    durations: VecDeque<f64>,
}

/// The tee: see the module's doc.
pub struct Hub {
    /// Where every line goes on to.
    inner: Arc<dyn LogSink>,
    store: Mutex<Store>,
    /// Live subscribers hold receivers; with none, nothing is serialised for them.
    live: broadcast::Sender<Update>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub passing every line on to `inner`.
    pub fn new(inner: Arc<dyn LogSink>) -> Arc<Self> {
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        Arc::new(Self {
            inner,
            store: Mutex::new(Store::default()),
            live,
        })
    }

    /// Live updates from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.live.subscribe()
    }

    /// The invocations kept, newest first, those of `function` and of `status` if given,
    /// secrets hidden.
    pub fn invocations(&self, function: Option<&str>, status: Option<&str>) -> Vec<Invocation> {
        let kept: Vec<Invocation> = self
            .lock()
            .invocations
            .iter()
            .rev()
            .filter(|i| function.is_none_or(|f| i.function == f))
            .filter(|i| status.is_none_or(|s| i.status == s))
            .cloned()
            .collect();
        // Hidden out of the lock: invocations wait on it.
        kept.into_iter().map(shown).collect()
    }

    /// The invocation `request_id`, if it is kept, secrets hidden.
    pub fn invocation(&self, request_id: &str) -> Option<Invocation> {
        let kept = self
            .lock()
            .invocations
            .iter()
            .rev()
            .find(|i| i.request_id == request_id)
            .cloned();
        kept.map(shown)
    }

    /// The log lines kept, oldest first, of `function` and containing `search` if given.
    pub fn lines(&self, function: Option<&str>, search: Option<&str>) -> Vec<LogLine> {
        self.lock()
            .lines
            .iter()
            .filter(|l| function.is_none_or(|f| l.function == f))
            .filter(|l| search.is_none_or(|s| l.line.contains(s)))
            .map(|l| (**l).clone())
            .collect()
    }

    /// `function`'s counts and durations.
    pub fn stats(&self, function: &str) -> Stats {
        let (mut stats, mut sorted) = match self.lock().stats.get(function) {
            Some(s) => (
                s.counts.clone(),
                s.durations.iter().copied().collect::<Vec<_>>(),
            ),
            None => return Stats::default(),
        };
        sorted.sort_by(f64::total_cmp);
        stats.p50_ms = percentile(&sorted, 50.0);
        stats.p99_ms = percentile(&sorted, 99.0);
        stats
    }

    /// `function`'s build state, when `up` told one.
    pub fn build(&self, function: &str) -> Option<Build> {
        self.lock().builds.get(function).cloned()
    }

    /// The latest requests of the front door `kind` `api`, newest first.
    pub fn api_requests(&self, kind: &str, api: &str) -> Vec<ApiRequest> {
        self.lock()
            .api_requests
            .get(&(kind.to_owned(), api.to_owned()))
            .map(|list| list.iter().rev().map(|r| (**r).clone()).collect())
            .unwrap_or_default()
    }

    /// Keeps a preview of an invocation's event or answer.
    fn preview(&self, preview: &notes::Preview) {
        let mut store = self.lock();
        if preview.answer {
            if let Some(invocation) = store.recent(&preview.request_id) {
                invocation.answer = Some(preview.preview.clone());
            }
            return;
        }
        // The preview comes just before its `platform.start`; bounded, as an invocation that
        // fails to start sends no start.
        if store.payloads.len() >= MAX_INVOCATIONS {
            store.payloads.clear();
        }
        store
            .payloads
            .insert(preview.request_id.clone(), preview.preview.clone());
    }

    /// Keeps a coldstart event in JSON ([`coldstart_emulator::notes`]); returns the live
    /// update.
    fn note(&self, store: &mut Store, function: &str, event: &Value) -> Option<Update> {
        let kind = event["type"].as_str().unwrap_or_default();
        let record = &event["record"];
        let text = |key: &str| record[key].as_str().map(str::to_owned);
        match kind {
            notes::BUILD => {
                let build = Build {
                    function: function.to_owned(),
                    status: text("status").unwrap_or_default(),
                    error: text("error"),
                };
                let update = self
                    .wanted()
                    .then(|| Update::Build(Arc::new(build.clone())));
                store.builds.insert(function.to_owned(), build);
                update
            }
            notes::API_REQUEST => {
                let request_id = text("requestId");
                let ran = request_id
                    .as_deref()
                    .and_then(|id| store.recent(id))
                    .map(|i| i.function.clone());
                let request = Arc::new(ApiRequest {
                    api: text("api").unwrap_or_default(),
                    kind: text("kind").unwrap_or_default(),
                    time: event["time"].as_str().unwrap_or_default().to_owned(),
                    method: text("method").unwrap_or_default(),
                    path: text("path").unwrap_or_default(),
                    status: record["status"].as_u64().unwrap_or_default() as u16,
                    duration_ms: record["durationMs"].as_f64().unwrap_or_default(),
                    request_id,
                    function: ran.or_else(|| (!function.is_empty()).then(|| function.to_owned())),
                });
                let list = store
                    .api_requests
                    .entry((request.kind.clone(), request.api.clone()))
                    .or_default();
                if list.len() == MAX_API_REQUESTS {
                    list.pop_front();
                }
                list.push_back(request.clone());
                self.wanted().then_some(Update::ApiRequest(request))
            }
            _ => None,
        }
    }

    fn wanted(&self) -> bool {
        self.live.receiver_count() > 0
    }

    fn offer(&self, update: Option<Update>) {
        if let Some(update) = update {
            // Err: every subscriber left meanwhile.
            let _ = self.live.send(update);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogSink for Hub {
    fn line(&self, function: &str, line: &str) {
        self.inner.line(function, line);
        let text: Arc<str> = Arc::from(line);
        let mut store = self.lock();
        // The platform's own lines name their invocation; the function's are given to the one
        // running (see the module's doc).
        let named = platform_line_id(line);
        let request_id = match named {
            Some((_, id)) => Some(id.to_owned()),
            None => store
                .running
                .get(function)
                .and_then(|ids| ids.last())
                .cloned(),
        };
        if let Some(id) = &request_id
            && let Some(invocation) = store.recent(id)
            && invocation.logs.len() < MAX_INVOCATION_LINES
        {
            invocation.logs.push(text.clone());
        }
        // `END` follows every line the function printed before it answered (the capture is
        // drained before it is written): from here on, its lines are not this invocation's.
        if let Some((PlatformLine::End, id)) = named {
            done(&mut store, function, id);
        }
        store.next_seq += 1;
        let entry = Arc::new(LogLine {
            seq: store.next_seq,
            time: now_ms(),
            function: function.to_owned(),
            request_id,
            line: text,
        });
        let update = self.wanted().then(|| Update::Log(entry.clone()));
        if store.lines.len() == MAX_LINES {
            store.lines.pop_front();
        }
        store.lines.push_back(entry);
        drop(store);
        self.offer(update);
    }

    fn wants_records(&self) -> bool {
        true
    }

    fn wants_log_records(&self) -> bool {
        // Lines come through `line`; as records they would come twice.
        self.inner.wants_records() && self.inner.wants_log_records()
    }

    fn record(&self, function: &str, event: &StreamEvent) {
        if self.inner.wants_records() {
            self.inner.record(function, event);
        }
        let record = match event {
            StreamEvent::Telemetry(telemetry) => &telemetry.record,
            StreamEvent::Preview(preview) => return self.preview(preview),
            StreamEvent::Note(note) => {
                let update = self.note(&mut self.lock(), function, note);
                return self.offer(update);
            }
        };
        let mut guard = self.lock();
        let store = &mut *guard;
        let update = match record {
            // Their lines come through `line`.
            Record::Function(_) | Record::ExtensionLog(_) => None,
            Record::InitStart(_) => {
                store
                    .stats
                    .entry(function.to_owned())
                    .or_default()
                    .counts
                    .cold_starts += 1;
                let events = store.init_events.entry(function.to_owned()).or_default();
                events.clear();
                events.push(event.clone());
                None
            }
            Record::Start(start) => {
                let id = &start.request_id;
                let mut events = store.init_events.remove(function).unwrap_or_default();
                events.push(event.clone());
                let invocation = Invocation {
                    request_id: id.clone(),
                    function: function.to_owned(),
                    started_at: event.time().to_owned(),
                    status: "running".into(),
                    duration_ms: None,
                    billed_duration_ms: None,
                    memory_size_mb: None,
                    max_memory_used_mb: None,
                    init_duration_ms: None,
                    payload: store.payloads.remove(id),
                    answer: None,
                    // `START` is written just before `platform.start` is published.
                    logs: store
                        .lines
                        .iter()
                        .rev()
                        .take(4)
                        .filter(|l| l.function == function && l.request_id.as_ref() == Some(id))
                        .map(|l| l.line.clone())
                        .collect(),
                    events,
                };
                store
                    .running
                    .entry(function.to_owned())
                    .or_default()
                    .push(id.clone());
                let update = self
                    .wanted()
                    .then(|| Update::Invocation(Arc::new(invocation.summary())));
                if store.invocations.len() == MAX_INVOCATIONS {
                    store.invocations.pop_front();
                }
                store.invocations.push_back(invocation);
                update
            }
            Record::Report(report) => {
                // Without an `END` line (a JSON log), the report ends the invocation's lines.
                done(store, function, &report.request_id);
                let Some(invocation) = store.recent(&report.request_id) else {
                    return;
                };
                if invocation.events.len() < MAX_INVOCATION_EVENTS {
                    invocation.events.push(event.clone());
                }
                let metrics = &report.metrics;
                invocation.status = report.status.as_str().to_owned();
                invocation.duration_ms = Some(metrics.duration_ms);
                invocation.billed_duration_ms = Some(metrics.billed_duration_ms as f64);
                invocation.memory_size_mb = Some(metrics.memory_size_mb as f64);
                invocation.max_memory_used_mb = Some(metrics.max_memory_used_mb as f64);
                invocation.init_duration_ms = metrics.init_duration_ms;
                let update = self
                    .wanted()
                    .then(|| Update::Invocation(Arc::new(invocation.summary())));
                let failed = invocation.status != "success";
                let stats = store.stats.entry(function.to_owned()).or_default();
                stats.counts.invocations += 1;
                if failed {
                    stats.counts.errors += 1;
                }
                // Percentiles are worked out when asked for, off the invocation path.
                if stats.durations.len() == MAX_DURATIONS {
                    stats.durations.pop_front();
                }
                stats.durations.push_back(metrics.duration_ms);
                update
            }
            other => {
                if let Some(id) = other.request_id() {
                    if let Some(invocation) = store.recent(id)
                        && invocation.events.len() < MAX_INVOCATION_EVENTS
                    {
                        invocation.events.push(event.clone());
                    }
                } else if matches!(other, Record::InitRuntimeDone(_) | Record::InitReport(_))
                    && let Some(events) = store.init_events.get_mut(function)
                    && events.len() < MAX_INVOCATION_EVENTS
                {
                    // Init's other events (initRuntimeDone, initReport) go with the cold start.
                    events.push(event.clone());
                }
                None
            }
        };
        drop(guard);
        self.offer(update);
    }
}

/// `request_id` of `function` has ended: lines that follow are not its.
fn done(store: &mut Store, function: &str, request_id: &str) {
    if let Some(ids) = store.running.get_mut(function) {
        ids.retain(|r| r != request_id);
    }
}

/// An invocation as the dashboard shows it: previews with secrets hidden.
fn shown(mut invocation: Invocation) -> Invocation {
    invocation.payload = invocation.payload.as_deref().map(secrets::redact_json);
    invocation.answer = invocation.answer.as_deref().map(secrets::redact_json);
    invocation
}

/// Which of the platform's lines a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlatformLine {
    Start,
    End,
    Report,
}

/// The platform line `line` is (`START`, `END`, `REPORT`) and the request id it names.
fn platform_line_id(line: &str) -> Option<(PlatformLine, &str)> {
    let (kind, rest) = [
        (PlatformLine::Start, "START RequestId: "),
        (PlatformLine::End, "END RequestId: "),
        (PlatformLine::Report, "REPORT RequestId: "),
    ]
    .iter()
    .find_map(|(kind, prefix)| Some((*kind, line.strip_prefix(prefix)?)))?;
    Some((kind, rest.split_whitespace().next()?))
}

/// The first [`SUMMARY_PREVIEW`] characters of `preview`, `…` when cut.
fn summary_preview(preview: &str) -> String {
    match preview.char_indices().nth(SUMMARY_PREVIEW) {
        Some((end, _)) => format!("{}…", &preview[..end]),
        None => preview.to_owned(),
    }
}

/// The nearest-rank percentile `p` of `sorted`.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldstart_emulator::TracingSink;
    use serde_json::json;

    fn report(id: &str, status: &str, duration: f64) -> Value {
        json!({"time": "t", "type": "platform.report", "record": {"requestId": id, "status": status,
            "metrics": {"durationMs": duration, "billedDurationMs": duration.ceil() as u64,
            "memorySizeMB": 128, "maxMemoryUsedMB": 20}}})
    }

    /// Hands `hub` the event `json` as the emulator would: typed.
    fn record(hub: &Hub, function: &str, json: Value) {
        let kind = json["type"].as_str().unwrap_or_default();
        let event = if kind.starts_with("platform.") || kind == "function" {
            StreamEvent::Telemetry(Arc::new(
                serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}")),
            ))
        } else if let Some(answer) = match kind {
            notes::REQUEST_PREVIEW => Some(false),
            notes::RESPONSE_PREVIEW => Some(true),
            _ => None,
        } {
            let record = &json["record"];
            StreamEvent::Preview(Arc::new(notes::Preview {
                time: json["time"].as_str().unwrap_or_default().to_owned(),
                answer,
                request_id: record["requestId"].as_str().unwrap_or_default().to_owned(),
                preview: record["preview"].as_str().unwrap_or_default().to_owned(),
                size: None,
                error_type: None,
            }))
        } else {
            StreamEvent::note(json)
        };
        hub.record(function, &event);
    }

    #[test]
    fn an_invocation_gathers_its_cold_start_lines_and_report() {
        let hub = Hub::new(Arc::new(TracingSink));
        record(
            &hub,
            "f",
            json!({"time": "t0", "type": "platform.initStart", "record": {
                "initializationType": "on-demand", "phase": "init", "functionName": "f",
                "functionVersion": "$LATEST"}}),
        );
        hub.line("f", "START RequestId: r1 Version: $LATEST");
        record(
            &hub,
            "f",
            json!({"time": "t1", "type": "platform.start", "record": {"requestId": "r1"}}),
        );
        hub.line("f", "hello");
        record(
            &hub,
            "f",
            json!({"time": "t2", "type": "platform.runtimeDone", "record": {"requestId": "r1", "status": "success"}}),
        );
        hub.line("f", "END RequestId: r1");
        record(&hub, "f", report("r1", "success", 2.5));
        hub.line("f", "REPORT RequestId: r1\tDuration: 2.50 ms");
        hub.line("f", "between invocations");
        let i = hub.invocation("r1").unwrap_or_else(|| panic!("r1 kept"));
        assert_eq!(i.status, "success");
        assert_eq!(
            i.logs.iter().map(|l| &**l).collect::<Vec<_>>(),
            [
                "START RequestId: r1 Version: $LATEST",
                "hello",
                "END RequestId: r1",
                "REPORT RequestId: r1\tDuration: 2.50 ms"
            ]
        );
        assert_eq!(i.billed_duration_ms, Some(3.0));
        let kinds: Vec<_> = i
            .events
            .iter()
            .map(|e| e.to_value()["type"].clone())
            .collect();
        assert_eq!(
            kinds,
            [
                "platform.initStart",
                "platform.start",
                "platform.runtimeDone",
                "platform.report"
            ]
        );
        let stats = hub.stats("f");
        assert_eq!(
            (stats.invocations, stats.cold_starts, stats.errors),
            (1, 1, 0)
        );
        assert_eq!(hub.lines(Some("f"), Some("between")).len(), 1);
        assert_eq!(hub.lines(Some("f"), None)[4].request_id, None);
    }

    #[test]
    fn coldstarts_own_events_bring_previews_builds_and_api_requests() {
        use coldstart_emulator::notes::{API_REQUEST, BUILD, REQUEST_PREVIEW, RESPONSE_PREVIEW};
        let hub = Hub::new(Arc::new(TracingSink));
        let note = |kind: &str, record: Value| json!({"time": "t", "type": kind, "record": record});
        let event = format!(r#"{{"password":"p","pad":"{}"}}"#, "x".repeat(300));
        record(
            &hub,
            "f",
            note(
                REQUEST_PREVIEW,
                json!({"requestId": "r1", "preview": event}),
            ),
        );
        record(
            &hub,
            "f",
            json!({"time": "t1", "type": "platform.start", "record": {"requestId": "r1"}}),
        );
        record(
            &hub,
            "f",
            note(
                RESPONSE_PREVIEW,
                json!({"requestId": "r1", "preview": "{}"}),
            ),
        );
        record(&hub, "f", report("r1", "success", 1.0));
        let i = hub.invocation("r1").unwrap_or_else(|| panic!("r1 kept"));
        let payload = i.payload.clone().unwrap_or_default();
        assert!(
            payload.starts_with(r#"{"password":"(hidden)","pad":"xx"#),
            "{payload}"
        );
        assert_eq!(i.answer.as_deref(), Some("{}"));
        let row = i.summary().shown().payload.unwrap_or_default();
        assert_eq!(row.chars().count(), SUMMARY_PREVIEW + 1, "{row}");
        assert!(row.ends_with('…'));

        record(
            &hub,
            "",
            note(
                API_REQUEST,
                json!({"api": "shop", "kind": "http-api", "method": "GET", "path": "/items",
                    "status": 200, "durationMs": 3.5, "requestId": "r1"}),
            ),
        );
        let requests = hub.api_requests("http-api", "shop");
        assert_eq!(
            requests[0].function.as_deref(),
            Some("f"),
            "found by request id"
        );
        assert_eq!(requests[0].status, 200);
        assert!(hub.api_requests("url", "shop").is_empty());

        assert!(hub.build("f").is_none(), "not built");
        record(
            &hub,
            "f",
            note(BUILD, json!({"status": "failed", "error": "exit 2"})),
        );
        let build = hub.build("f").unwrap_or_else(|| panic!("told"));
        assert_eq!(
            (build.status.as_str(), build.error.as_deref()),
            ("failed", Some("exit 2"))
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50.0));
        assert_eq!(percentile(&sorted, 99.0), Some(99.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_subscriber_that_falls_behind_is_told_how_much_it_missed() {
        let hub = Hub::new(Arc::new(TracingSink));
        let mut rx = hub.subscribe();
        for i in 0..LIVE_BACKLOG + 10 {
            hub.line("f", &format!("line {i}"));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 10),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(hub.lines(None, None).len(), LIVE_BACKLOG + 10);
    }
}

//! The platform event stream of one sandbox, and the Telemetry API and Logs API subscriptions
//! that read it.
//!
//! The sandbox publishes each lifecycle fact once (init started and done, an invocation's start,
//! runtime done and report, a log line) as a Telemetry API [`Record`]; facts only the older Logs
//! API reports (`platform.end`, `platform.fault`) as a [`logs::Record`]. Each event is serialised
//! once per dialect someone subscribed with (the Logs API's shapes only while a Logs API
//! subscription exists). With nobody listening for a record's stream, publishing is one atomic
//! load: the record is never built. While init runs, events are also kept in a small backlog, so
//! that an extension subscribing during init still receives them, as in Lambda.
//!
//! Each subscription has a bounded queue and a delivery task of its own, which batches events
//! (`maxItems`, `maxBytes`, `timeoutMs`) and POSTs them as JSON arrays to the extension's HTTP
//! listener, or writes them as newline-delimited JSON to its TCP listener. Publishing never waits: a full queue drops the event and counts it, and the next
//! batch opens with `platform.logsDropped`. A slow or dead listener delays nothing but its own
//! telemetry. At shutdown the queues are closed and flushed, within a time limit.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use coldstart_protocol::logs;
use coldstart_protocol::telemetry::{
    self as tm, Buffering, Category, Destination, Event, LogsDropped, Protocol, Record,
    SANDBOX_HOST, Status, SubscribeRequest, TelemetrySubscription,
};
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::iso_millis;
use crate::error::SubscribeError;
use crate::notes::StreamEvent;

/// Most events kept from an init phase for extensions that subscribe during it.
const BACKLOG_LIMIT: usize = 1_000;

/// The longest one delivery waits for the listener's answer. A listener that never answers
/// costs its own subscription this much per batch, never the function anything.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest the final delivery at shutdown may take, within the shutdown's own limit.
pub(crate) const FINAL_FLUSH_LIMIT: Duration = Duration::from_millis(500);

/// How many times a batch is sent when the listener cannot be reached or answers an error.
const DELIVERY_ATTEMPTS: u32 = 3;

/// The pause before a delivery is tried again, times the attempt's number.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Why events are dropped, as Lambda words it.
const DROPPED_REASON: &str =
    "Consumer seems to have fallen behind as it has not acknowledged receipt of logs.";

/// The platform event stream of one sandbox.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// One bit per [`Category`] someone may want (a subscription, or the init backlog, which
    /// wants all), and one per dialect ([`TELEMETRY_SHAPES`], [`LOGS_SHAPES`]); read without the
    /// lock, so that publishing to nobody costs a load.
    wanted: AtomicU8,
    inner: Mutex<Inner>,
    /// The sandbox's: cancelled once its processes are gone, and with them every listener;
    /// delivery tasks stop at once.
    gone: CancellationToken,
    /// Notified by delivery tasks whenever their queue has nothing left to deliver; the
    /// sandbox's freezer waits on it, since a frozen listener cannot take a delivery.
    quiet: Arc<Notify>,
    /// Who gets every record besides subscriptions (the emulator's log sink, when it wants
    /// records), whoever subscribed.
    observer: Option<Observer>,
}

/// Takes one event of a function's stream, as `(function, event)`.
pub(crate) type Deliver = Arc<dyn Fn(&str, &StreamEvent) + Send + Sync>;

/// A function's name and where every record of its sandboxes goes.
#[derive(Clone)]
pub(crate) struct Observer {
    pub(crate) function: Arc<str>,
    pub(crate) deliver: Deliver,
    /// Whether it wants `function` and `extension` records too
    /// ([`crate::LogSink::wants_log_records`]).
    pub(crate) log_records: bool,
}

impl Observer {
    /// Whether it wants records of `category`.
    fn wants(&self, category: Category) -> bool {
        self.log_records || category == Category::Platform
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    /// Events of the init phase so far; `None` once init is over.
    backlog: Option<Vec<Arc<Item>>>,
    subscriptions: Vec<Subscription>,
    /// Shut down: no more subscriptions.
    closed: bool,
}

/// One event, serialised once per dialect and shared by every queue it is offered to.
#[derive(Debug)]
struct Item {
    category: Category,
    /// The Telemetry API's shape, when it has one and a subscriber may want it.
    telemetry: Option<Bytes>,
    /// The Logs API's shape, when it has one and a subscriber may want it.
    logs: Option<Bytes>,
    /// Only the Logs API's schema `2021-03-18` has it (`platform.runtimeDone`).
    logs_2021: bool,
}

/// Which API a subscription came through, and so the shapes its listener receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `PUT /2022-07-01/telemetry`.
    Telemetry,
    /// `PUT /2020-08-15/logs`, with its schema version.
    Logs(logs::SchemaVersion),
}

/// [`Telemetry::wanted`]'s bit for the Telemetry API's shapes.
const TELEMETRY_SHAPES: u8 = 8;
/// [`Telemetry::wanted`]'s bit for the Logs API's shapes.
const LOGS_SHAPES: u8 = 16;
/// Everything: what the init backlog wants.
const EVERYTHING: u8 = 7 | TELEMETRY_SHAPES | LOGS_SHAPES;

/// A subscription as the publisher sees it.
#[derive(Debug)]
struct Subscription {
    extension_id: String,
    dialect: Dialect,
    types: Vec<Category>,
    max_bytes: u64,
    /// The delivery task holds the receiver. Dropping this sender (a new subscription by the
    /// same extension, shutdown) lets the task deliver what is queued and end.
    queue: mpsc::Sender<Bytes>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

/// What the publisher and a delivery task share about one queue.
#[derive(Debug)]
struct Counters {
    /// Bytes in the queue (added by the publisher, removed by the task).
    queued_bytes: AtomicU64,
    /// While the task gathers a batch: how many more events, or bytes, fill it. The publisher
    /// wakes the task ([`Counters::full`]) only once the queue holds that much, so that events
    /// trickling in one by one cost no wake-up each; `u64::MAX` when the task is not gathering.
    wanted_items: AtomicU64,
    wanted_bytes: AtomicU64,
    /// Wakes the gathering task: its batch can be filled.
    full: Notify,
    /// Events queued or being delivered; zero when the subscription is quiet.
    pending: AtomicU64,
    /// Events dropped since the last `platform.logsDropped`.
    dropped_records: AtomicU64,
    dropped_bytes: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            queued_bytes: AtomicU64::new(0),
            wanted_items: AtomicU64::new(u64::MAX),
            wanted_bytes: AtomicU64::new(u64::MAX),
            full: Notify::new(),
            pending: AtomicU64::new(0),
            dropped_records: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
        }
    }
}

impl Counters {
    /// The task gathers a batch that `items` more events or `bytes` more bytes fill.
    fn want(&self, items: u64, bytes: u64) {
        self.wanted_items.store(items, Ordering::Release);
        self.wanted_bytes.store(bytes, Ordering::Release);
    }
}

/// A validated subscription: where to deliver, what, and how to batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) dialect: Dialect,
    pub(crate) types: Vec<Category>,
    /// HTTP: each batch is POSTed as a JSON array. TCP: events are written as newline-delimited
    /// JSON on one connection, without acknowledgement, as Lambda does.
    pub(crate) protocol: Protocol,
    /// The listener's address (`sandbox.localdomain` is the loopback interface).
    pub(crate) addr: SocketAddr,
    /// The destination's own authority (HTTP's `Host` header).
    pub(crate) host: String,
    /// Path and query of an HTTP destination.
    pub(crate) path: String,
    pub(crate) max_items: usize,
    pub(crate) max_bytes: u64,
    pub(crate) timeout: Duration,
}

impl Plan {
    /// Validates a Telemetry API subscription's body as Lambda does.
    pub(crate) fn from_body(body: &[u8]) -> Result<Plan, SubscribeError> {
        let request: SubscribeRequest = serde_json::from_slice(body)
            .map_err(|e| SubscribeError::Validation(format!("Invalid request body: {e}")))?;
        Self::new(
            Dialect::Telemetry,
            request.types,
            &request.destination,
            request.buffering,
        )
    }

    /// Validates a Logs API subscription's body as Lambda does.
    pub(crate) fn from_logs_body(body: &[u8]) -> Result<Plan, SubscribeError> {
        let request: logs::SubscribeRequest = serde_json::from_slice(body)
            .map_err(|e| SubscribeError::Validation(format!("Invalid request body: {e}")))?;
        Self::new(
            Dialect::Logs(request.schema_version),
            request.types,
            &request.destination,
            request.buffering,
        )
    }

    /// The limits both APIs share.
    fn new(
        dialect: Dialect,
        types: Vec<Category>,
        destination: &Destination,
        buffering: Option<Buffering>,
    ) -> Result<Plan, SubscribeError> {
        let mut problems = Vec::new();
        if types.is_empty() {
            problems.push("types should not be empty".to_owned());
        }
        let buffering = buffering.unwrap_or_default();
        let mut setting = |name: &str, value: Option<u64>, limit: tm::Limit| match value {
            None => limit.default,
            Some(v) if limit.allows(v) => v,
            Some(v) => {
                problems.push(format!(
                    "buffering.{name} {v} is out of range [{}, {}]",
                    limit.min, limit.max
                ));
                limit.default
            }
        };
        let max_items = setting("maxItems", buffering.max_items, tm::MAX_ITEMS);
        let max_bytes = setting("maxBytes", buffering.max_bytes, tm::MAX_BYTES);
        let timeout_ms = setting("timeoutMs", buffering.timeout_ms, tm::TIMEOUT_MS);
        let target = match destination.protocol {
            Protocol::Http => http_destination(&destination.uri),
            Protocol::Tcp => tcp_destination(&destination.uri),
        };
        let (addr, host, path) = match target {
            Ok(target) if problems.is_empty() => target,
            Ok(_) => return Err(SubscribeError::Validation(problems.join("; "))),
            Err(problem) => {
                problems.push(problem);
                return Err(SubscribeError::Validation(problems.join("; ")));
            }
        };
        let mut types = types;
        types.dedup();
        Ok(Plan {
            dialect,
            types,
            protocol: destination.protocol,
            addr,
            host,
            path,
            max_items: max_items as usize,
            max_bytes,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// `http://sandbox.localdomain:PORT/PATH` → the loopback address, the authority, the path.
fn http_destination(uri: &str) -> Result<(SocketAddr, String, String), String> {
    let uri: Uri = uri
        .parse()
        .map_err(|e| format!("URI {uri:?} is invalid: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("URI scheme must be http".into());
    }
    let host = uri.host().unwrap_or_default();
    if !matches!(host, SANDBOX_HOST | "localhost" | "127.0.0.1") {
        return Err(format!(
            "URI host must be {SANDBOX_HOST}: telemetry goes only to listeners inside the execution environment"
        ));
    }
    let Some(port) = uri.port_u16() else {
        return Err("URI port is not provided".into());
    };
    let authority = uri.authority().map_or_else(String::new, |a| a.to_string());
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok((
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        authority,
        path,
    ))
}

/// Whether the Telemetry API reports `record` (it has no place for what only the Logs API has).
fn in_telemetry(record: &Record) -> bool {
    !matches!(record, Record::LogsDropped(_))
}

/// The Logs API's shape of `record`, when that API reports it: not the init phase's events, nor
/// Telemetry subscriptions.
fn logs_record(record: &Record) -> Option<logs::Record> {
    Some(match record {
        Record::Start(start) => logs::Record::Start(logs::Start {
            request_id: start.request_id.clone(),
            version: start.version.clone(),
        }),
        Record::RuntimeDone(done) => logs::Record::RuntimeDone(logs::RuntimeDone {
            request_id: done.request_id.clone(),
            status: match done.status {
                Status::Success => "success",
                Status::Timeout => "timeout",
                Status::Error | Status::Failure => "failure",
            }
            .into(),
        }),
        Record::Report(report) => logs::Record::Report(logs::Report {
            request_id: report.request_id.clone(),
            metrics: report.metrics,
        }),
        Record::Extension(state) => logs::Record::Extension(state.clone()),
        Record::Function(line) => logs::Record::Function(line.clone()),
        Record::ExtensionLog(line) => logs::Record::ExtensionLog(line.clone()),
        Record::InitStart(_)
        | Record::InitRuntimeDone(_)
        | Record::InitReport(_)
        | Record::TelemetrySubscription(_)
        | Record::LogsDropped(_) => return None,
    })
}

/// `tcp://sandbox.localdomain:PORT` (or without the scheme) → the loopback address and the
/// authority.
fn tcp_destination(uri: &str) -> Result<(SocketAddr, String, String), String> {
    let authority = uri
        .strip_prefix("tcp://")
        .unwrap_or(uri)
        .trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| "URI port is not provided".to_owned())?;
    if !matches!(host, SANDBOX_HOST | "localhost" | "127.0.0.1") {
        return Err(format!(
            "URI host must be {SANDBOX_HOST}: telemetry goes only to listeners inside the execution environment"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("URI {uri:?} has an invalid port"))?;
    Ok((
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        authority.to_owned(),
        String::new(),
    ))
}

fn bit(category: Category) -> u8 {
    match category {
        Category::Platform => 1,
        Category::Function => 2,
        Category::Extension => 4,
    }
}

impl Telemetry {
    /// A stream in init: it keeps a backlog until [`Self::end_init`].
    pub(crate) fn new(gone: CancellationToken) -> Self {
        Self {
            wanted: AtomicU8::new(EVERYTHING),
            inner: Mutex::new(Inner {
                backlog: Some(Vec::new()),
                subscriptions: Vec::new(),
                closed: false,
            }),
            gone,
            quiet: Arc::new(Notify::new()),
            observer: None,
        }
    }

    /// A stream in init whose every record also goes to `observer`.
    pub(crate) fn observed(gone: CancellationToken, observer: Observer) -> Self {
        Self {
            observer: Some(observer),
            ..Self::new(gone)
        }
    }

    /// Whether the log sink reads this stream (and so coldstart's own events, [`crate::notes`]).
    pub(crate) fn observed_by_sink(&self) -> bool {
        self.observer.is_some()
    }

    /// Hands the coldstart event `make` builds ([`crate::notes`]) to the log sink, if it reads
    /// this stream; extensions' subscriptions never get it. Without an observer it is not built.
    pub(crate) fn observe(&self, make: impl FnOnce() -> StreamEvent) {
        if let Some(observer) = &self.observer {
            (observer.deliver)(&observer.function, &make());
        }
    }

    /// Whether any extension subscribed.
    pub(crate) fn has_subscribers(&self) -> bool {
        !self.lock().subscriptions.is_empty()
    }

    /// Whether no subscription has events waiting for delivery.
    pub(crate) fn is_quiet(&self) -> bool {
        self.lock()
            .subscriptions
            .iter()
            .all(|s| s.counters.pending.load(Ordering::Acquire) == 0)
    }

    /// Returns once no subscription has events waiting for delivery.
    pub(crate) async fn quieted(&self) {
        loop {
            let notified = self.quiet.notified();
            tokio::pin!(notified);
            // Registered before the check, so a notification in between is not lost.
            notified.as_mut().enable();
            if self.is_quiet() {
                return;
            }
            notified.await;
        }
    }

    /// Whether anyone may want a record of `category` now.
    pub(crate) fn wants(&self, category: Category) -> bool {
        self.observer.as_ref().is_some_and(|o| o.wants(category))
            || self.wanted.load(Ordering::Acquire) & bit(category) != 0
    }

    /// Publishes the record `make` builds, if anyone wants records of `category` (which must be
    /// the record's own).
    pub(crate) fn publish(&self, category: Category, make: impl FnOnce() -> Record) {
        let wanted = self.wanted.load(Ordering::Acquire);
        let observer = self.observer.as_ref().filter(|o| o.wants(category));
        if wanted & bit(category) == 0 && observer.is_none() {
            return;
        }
        let record = make();
        debug_assert_eq!(record.category(), category);
        // Built once: the observer keeps it as it is, subscribers get it serialised.
        let event = Arc::new(Event {
            time: iso_millis(SystemTime::now()),
            record,
        });
        if let Some(observer) = observer
            && in_telemetry(&event.record)
        {
            (observer.deliver)(&observer.function, &StreamEvent::Telemetry(event.clone()));
        }
        if wanted & bit(category) == 0 {
            return;
        }
        let older = (wanted & LOGS_SHAPES != 0)
            .then(|| logs_record(&event.record))
            .flatten();
        let logs_2021 = matches!(older, Some(logs::Record::RuntimeDone(_)));
        let logs = older.and_then(|record| {
            let event = logs::Event {
                time: event.time.clone(),
                record,
            };
            serde_json::to_vec(&event).ok().map(Bytes::from)
        });
        let telemetry = (wanted & TELEMETRY_SHAPES != 0 && in_telemetry(&event.record))
            .then(|| serde_json::to_vec(&*event).ok().map(Bytes::from))
            .flatten();
        self.offer(Item {
            category,
            telemetry,
            logs,
            logs_2021,
        });
    }

    /// Publishes a record only the Logs API reports (`platform.end`, `platform.fault`), if a Logs
    /// API subscriber may want platform records.
    pub(crate) fn publish_logs(&self, make: impl FnOnce() -> logs::Record) {
        let wanted = self.wanted.load(Ordering::Acquire);
        if wanted & LOGS_SHAPES == 0 || wanted & bit(Category::Platform) == 0 {
            return;
        }
        let event = logs::Event {
            time: iso_millis(SystemTime::now()),
            record: make(),
        };
        let Ok(json) = serde_json::to_vec(&event) else {
            return;
        };
        self.offer(Item {
            category: Category::Platform,
            telemetry: None,
            logs: Some(Bytes::from(json)),
            logs_2021: false,
        });
    }

    /// Keeps `item` for init's late subscribers and offers it to every subscription.
    fn offer(&self, item: Item) {
        if item.telemetry.is_none() && item.logs.is_none() {
            return;
        }
        let item = Arc::new(item);
        let mut inner = self.lock();
        if let Some(backlog) = inner.backlog.as_mut()
            && backlog.len() < BACKLOG_LIMIT
        {
            backlog.push(item.clone());
        }
        for subscription in &inner.subscriptions {
            subscription.offer(&item);
        }
    }

    /// Init is over: events are no longer kept for later subscribers.
    pub(crate) fn end_init(&self) {
        let mut inner = self.lock();
        inner.backlog = None;
        self.update_wanted(&inner);
    }

    /// Subscribes extension `extension_id` (named `name`) as `plan` says, replacing its earlier
    /// subscription; it first receives the init phase's events so far, then
    /// `platform.telemetrySubscription`.
    pub(crate) fn subscribe(&self, extension_id: &str, name: &str, plan: Plan) {
        let types = plan.types.clone();
        let dialect = plan.dialect;
        let (queue, rx) = mpsc::channel(plan.max_items.max(1));
        let counters = Arc::new(Counters::default());
        let subscription = Subscription {
            extension_id: extension_id.to_owned(),
            dialect,
            types: types.clone(),
            max_bytes: plan.max_bytes,
            queue,
            counters: counters.clone(),
            task: tokio::spawn(deliver(
                rx,
                counters,
                plan,
                self.gone.clone(),
                self.quiet.clone(),
            )),
        };
        {
            let mut inner = self.lock();
            if inner.closed {
                // Dropping the subscription closes its queue: its task ends at once.
                return;
            }
            for item in inner.backlog.iter().flatten() {
                subscription.offer(item);
            }
            // The earlier subscription's sender is dropped: its task delivers what it has and ends.
            inner
                .subscriptions
                .retain(|s| s.extension_id != extension_id);
            inner.subscriptions.push(subscription);
            self.update_wanted(&inner);
        }
        let subscribed = TelemetrySubscription {
            name: name.to_owned(),
            state: "Subscribed".into(),
            types,
        };
        match dialect {
            Dialect::Telemetry => {
                self.publish(Category::Platform, || {
                    Record::TelemetrySubscription(subscribed)
                });
            }
            Dialect::Logs(_) => {
                self.publish_logs(|| logs::Record::LogsSubscription(subscribed));
            }
        }
    }

    /// Closes every queue and waits, at most `limit`, for the deliveries of what they hold;
    /// deliveries still running then are abandoned.
    pub(crate) async fn shutdown(&self, limit: Duration) {
        let mut tasks = self.close();
        let all = async {
            for task in &mut tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            for task in &tasks {
                task.abort();
            }
        }
    }

    /// Takes no more events or subscriptions and closes every queue; returns the delivery tasks,
    /// which deliver what their queues hold and end.
    #[must_use = "dropping the tasks lets them finish unawaited"]
    pub(crate) fn close(&self) -> Vec<JoinHandle<()>> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.backlog = None;
        self.wanted.store(0, Ordering::Release);
        // Dropping the senders closes the queues.
        inner.subscriptions.drain(..).map(|s| s.task).collect()
    }

    fn update_wanted(&self, inner: &Inner) {
        let mut wanted = if inner.backlog.is_some() {
            EVERYTHING
        } else {
            0
        };
        for subscription in &inner.subscriptions {
            wanted |= match subscription.dialect {
                Dialect::Telemetry => TELEMETRY_SHAPES,
                Dialect::Logs(_) => LOGS_SHAPES,
            };
            for &category in &subscription.types {
                wanted |= bit(category);
            }
        }
        self.wanted.store(wanted, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Subscription {
    /// Queues `item` when this subscription wants it and there is room; otherwise counts it as
    /// dropped. Never waits.
    fn offer(&self, item: &Arc<Item>) {
        if !self.types.contains(&item.category) {
            return;
        }
        let json = match self.dialect {
            Dialect::Telemetry => item.telemetry.as_ref(),
            Dialect::Logs(logs::SchemaVersion::V2020_08_15) if item.logs_2021 => None,
            Dialect::Logs(_) => item.logs.as_ref(),
        };
        let Some(json) = json else {
            return;
        };
        let len = json.len() as u64;
        let before = self.counters.queued_bytes.fetch_add(len, Ordering::AcqRel);
        // One event is always let into an empty queue, however large.
        let room = before == 0 || before + len <= self.max_bytes;
        if room {
            self.counters.pending.fetch_add(1, Ordering::AcqRel);
            if self.queue.try_send(json.clone()).is_ok() {
                let queued = (self.queue.max_capacity() - self.queue.capacity()) as u64;
                if queued >= self.counters.wanted_items.load(Ordering::Acquire)
                    || before + len >= self.counters.wanted_bytes.load(Ordering::Acquire)
                {
                    self.counters.full.notify_one();
                }
                return;
            }
            self.counters.pending.fetch_sub(1, Ordering::AcqRel);
        }
        self.counters.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.counters
            .dropped_records
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .dropped_bytes
            .fetch_add(len, Ordering::Relaxed);
    }
}

/// Events taken from a queue, to be sent together.
#[derive(Debug, Default)]
struct Batch {
    items: Vec<Bytes>,
    bytes: u64,
}

impl Batch {
    fn push(&mut self, counters: &Counters, item: Bytes) {
        let len = item.len() as u64;
        counters.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.bytes += len;
        self.items.push(item);
    }

    /// Takes queued events until the batch is full or the queue empty; returns whether the
    /// queue is closed.
    fn take(&mut self, rx: &mut mpsc::Receiver<Bytes>, counters: &Counters, plan: &Plan) -> bool {
        while !self.full(plan) {
            match rx.try_recv() {
                Ok(item) => self.push(counters, item),
                Err(mpsc::error::TryRecvError::Empty) => return false,
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    fn full(&self, plan: &Plan) -> bool {
        self.items.len() >= plan.max_items || self.bytes >= plan.max_bytes
    }

    /// What to send, opened by `platform.logsDropped` when events were dropped since the last
    /// one: a JSON array for HTTP, newline-delimited JSON for TCP; `None` when there is nothing
    /// to send.
    fn body(&self, counters: &Counters, protocol: Protocol) -> Option<Bytes> {
        let dropped_records = counters.dropped_records.swap(0, Ordering::Relaxed);
        let dropped_bytes = counters.dropped_bytes.swap(0, Ordering::Relaxed);
        let dropped = (dropped_records > 0).then(|| {
            serde_json::to_vec(&Event {
                time: iso_millis(SystemTime::now()),
                record: Record::LogsDropped(LogsDropped {
                    reason: DROPPED_REASON.into(),
                    dropped_records,
                    dropped_bytes,
                }),
            })
            .unwrap_or_default()
        });
        if dropped.is_none() && self.items.is_empty() {
            return None;
        }
        let mut body = BytesMut::with_capacity(self.bytes as usize + self.items.len() + 256);
        let events = dropped
            .as_deref()
            .into_iter()
            .chain(self.items.iter().map(|i| &i[..]));
        match protocol {
            Protocol::Http => {
                body.put_u8(b'[');
                for (i, json) in events.enumerate() {
                    if i > 0 {
                        body.put_u8(b',');
                    }
                    body.put_slice(json);
                }
                body.put_u8(b']');
            }
            Protocol::Tcp => {
                for json in events {
                    body.put_slice(json);
                    body.put_u8(b'\n');
                }
            }
        }
        Some(body.freeze())
    }

    /// The listener did not take the batch: it counts as dropped.
    fn lost(&self, counters: &Counters) {
        counters
            .dropped_records
            .fetch_add(self.items.len() as u64, Ordering::Relaxed);
        counters
            .dropped_bytes
            .fetch_add(self.bytes, Ordering::Relaxed);
    }
}

/// The delivery task of one subscription: it owns the queue's receiver and the connection to
/// the listener. It waits for a first event (no timer runs while the queue is empty), gathers
/// more until the batch is full or `timeout` passed, sends it, and so on; when the queue is
/// closed it sends what is left and ends. The sandbox's end stops it at once.
async fn deliver(
    mut rx: mpsc::Receiver<Bytes>,
    counters: Arc<Counters>,
    plan: Plan,
    gone: CancellationToken,
    quiet: Arc<Notify>,
) {
    let mut client = Client::new(&plan, gone.clone());
    let mut closed = false;
    while !closed {
        let mut batch = Batch::default();
        let first = tokio::select! {
            () = gone.cancelled() => return,
            item = rx.recv() => item,
        };
        match first {
            Some(item) => batch.push(&counters, item),
            None => closed = true,
        }
        let deadline = Instant::now() + plan.timeout;
        // The rest of the batch is taken from the queue when it can fill the batch or at the
        // deadline, not event by event: publishing wakes this task once per batch.
        loop {
            closed |= batch.take(&mut rx, &counters, &plan);
            if closed || batch.full(&plan) {
                break;
            }
            let items = (plan.max_items - batch.items.len()) as u64;
            let bytes = plan.max_bytes.saturating_sub(batch.bytes);
            counters.want(items, bytes);
            // Published between the take and the `want`: nobody was woken for it.
            if rx.len() as u64 >= items || counters.queued_bytes.load(Ordering::Acquire) >= bytes {
                continue;
            }
            tokio::select! {
                () = gone.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => {
                    closed |= batch.take(&mut rx, &counters, &plan);
                    break;
                }
                () = counters.full.notified() => {}
            }
        }
        counters.want(u64::MAX, u64::MAX);
        if let Some(body) = batch.body(&counters, plan.protocol)
            && !client.send(body).await
        {
            batch.lost(&counters);
        }
        let taken = batch.items.len() as u64;
        if counters.pending.fetch_sub(taken, Ordering::AcqRel) == taken {
            quiet.notify_waiters();
        }
    }
}

/// The connection to a subscription's listener (HTTP/1.1, or plain TCP), opened on first use and
/// again after a failure.
struct Client {
    addr: SocketAddr,
    protocol: Protocol,
    host: HeaderValue,
    path: String,
    conn: Option<Connection>,
    /// The TCP destination's stream.
    tcp: Option<tokio::net::TcpStream>,
    gone: CancellationToken,
}

/// A live connection: the sender, and the task driving the connection (aborted with it).
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Client {
    fn new(plan: &Plan, gone: CancellationToken) -> Self {
        Self {
            addr: plan.addr,
            protocol: plan.protocol,
            tcp: None,
            host: HeaderValue::from_str(&plan.host)
                .unwrap_or_else(|_| HeaderValue::from_static(SANDBOX_HOST)),
            path: plan.path.clone(),
            conn: None,
            gone,
        }
    }

    /// Sends `body`; true when it was delivered: for HTTP, the listener answered 2xx; for TCP,
    /// it was written. A connection failure or an error answer is tried again; a listener that
    /// does not take it within [`DELIVERY_TIMEOUT`] is not (it may have taken the batch).
    async fn send(&mut self, body: Bytes) -> bool {
        for attempt in 0..DELIVERY_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY_BACKOFF * attempt).await;
            }
            let sent = match self.protocol {
                Protocol::Http => {
                    let post =
                        async { self.try_post(body.clone()).await.map_err(|e| e.to_string()) };
                    tokio::time::timeout(DELIVERY_TIMEOUT, post).await
                }
                Protocol::Tcp => {
                    let write = async { self.try_write(&body).await.map_err(|e| e.to_string()) };
                    tokio::time::timeout(DELIVERY_TIMEOUT, write).await
                }
            };
            match sent {
                Ok(Ok(true)) => return true,
                Ok(Ok(false)) => {}
                Ok(Err(err)) => {
                    tracing::debug!(%err, addr = %self.addr, "telemetry delivery failed");
                    self.conn = None;
                    self.tcp = None;
                }
                Err(_elapsed) => {
                    self.conn = None;
                    self.tcp = None;
                    return false;
                }
            }
        }
        false
    }

    /// Writes `body` on the TCP connection, connecting first when there is none.
    async fn try_write(&mut self, body: &[u8]) -> Result<bool, std::io::Error> {
        let stream = match &mut self.tcp {
            Some(stream) => stream,
            None => {
                let Ok(stream) = tokio::net::TcpStream::connect(self.addr).await else {
                    return Ok(false);
                };
                let _ = stream.set_nodelay(true);
                self.tcp.insert(stream)
            }
        };
        stream.write_all(body).await?;
        Ok(true)
    }

    async fn try_post(&mut self, body: Bytes) -> Result<bool, hyper::Error> {
        if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
            self.conn = None;
            let Ok(stream) = tokio::net::TcpStream::connect(self.addr).await else {
                return Ok(false);
            };
            let _ = stream.set_nodelay(true);
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let gone = self.gone.clone();
            let driver = tokio::spawn(async move {
                tokio::select! {
                    _ = conn => {}
                    // The listener is gone with its sandbox.
                    () = gone.cancelled() => {}
                }
            });
            self.conn = Some(Connection { sender, driver });
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        let mut request = Request::post(self.path.as_str());
        if let Some(headers) = request.headers_mut() {
            headers.insert(HOST, self.host.clone());
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let Ok(request) = request.body(Full::new(body)) else {
            return Ok(false);
        };
        conn.sender.ready().await?;
        let response = conn.sender.send_request(request).await?;
        let ok = response.status().is_success();
        // Read the answer to the end, so the connection can carry the next batch.
        let _ = response.into_body().collect().await;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn body(json: &str) -> Result<Plan, SubscribeError> {
        Plan::from_body(json.as_bytes())
    }

    fn subscription(destination: &str, extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":"2022-12-13","destination":{{"protocol":"HTTP","URI":"{destination}"}},"types":["platform","function"]{extra}}}"#
        )
    }

    #[test]
    fn a_subscription_takes_awss_defaults_and_rewrites_sandbox_localdomain() {
        let plan = body(&subscription(
            "http://sandbox.localdomain:4243/telemetry?x=1",
            "",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.addr, SocketAddr::from(([127, 0, 0, 1], 4243)));
        assert_eq!(plan.host, "sandbox.localdomain:4243");
        assert_eq!(plan.path, "/telemetry?x=1");
        assert_eq!(plan.types, [Category::Platform, Category::Function]);
        assert_eq!(
            (plan.max_items, plan.max_bytes, plan.timeout),
            (10_000, 262_144, Duration::from_millis(1_000))
        );
        let plan = body(&subscription(
            "http://sandbox.localdomain:80",
            r#","buffering":{"maxItems":1000,"maxBytes":1048576,"timeoutMs":25}"#,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                plan.max_items,
                plan.max_bytes,
                plan.timeout,
                plan.path.as_str()
            ),
            (1_000, 1_048_576, Duration::from_millis(25), "/")
        );
    }

    #[test]
    fn bad_subscriptions_get_validation_errors() {
        let refused = |json: String| match body(&json) {
            Err(SubscribeError::Validation(message)) => message,
            other => panic!("{json}: {other:?}"),
        };
        let ok = "http://sandbox.localdomain:8080";
        for (extra, expected) in [
            (r#","buffering":{"maxItems":999}"#, "maxItems"),
            (r#","buffering":{"maxItems":10001}"#, "maxItems"),
            (r#","buffering":{"maxBytes":262143}"#, "maxBytes"),
            (r#","buffering":{"timeoutMs":24}"#, "timeoutMs"),
            (r#","buffering":{"timeoutMs":30001}"#, "timeoutMs"),
        ] {
            let message = refused(subscription(ok, extra));
            assert!(message.contains(expected), "{extra}: {message}");
        }
        assert!(refused(subscription("http://sandbox.localdomain", "")).contains("port"));
        assert!(refused(subscription("https://sandbox.localdomain:1", "")).contains("scheme"));
        assert!(refused(subscription("http://example.com:1", "")).contains("host"));
        assert!(refused(ok.replace("8080", "x")).contains("Invalid request body"));
        let no_types = format!(
            r#"{{"schemaVersion":"2022-07-01","destination":{{"protocol":"HTTP","URI":"{ok}"}},"types":[]}}"#
        );
        assert!(refused(no_types).contains("types should not be empty"));
        let wrong_schema = subscription(ok, "").replace("2022-12-13", "2023-01-01");
        assert!(refused(wrong_schema).contains("Invalid request body"));
        // TCP destinations: `tcp://HOST:PORT` or `HOST:PORT`, inside the environment only.
        let tcp = |uri: &str| {
            format!(
                r#"{{"schemaVersion":"2025-01-29","destination":{{"protocol":"TCP","URI":"{uri}"}},"types":["platform"]}}"#
            )
        };
        for uri in ["tcp://sandbox.localdomain:4243", "sandbox.localdomain:4243"] {
            let plan = body(&tcp(uri)).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(plan.protocol, Protocol::Tcp);
            assert_eq!(plan.addr, SocketAddr::from(([127, 0, 0, 1], 4243)));
        }
        assert!(refused(tcp("tcp://example.com:1")).contains("host"));
        assert!(refused(tcp("tcp://sandbox.localdomain")).contains("port"));
        assert_eq!(
            body(&subscription(ok, "")).err().map(|e| e.error_type()),
            None
        );
    }

    #[test]
    fn publishing_to_nobody_builds_nothing() {
        let telemetry = Telemetry::new(CancellationToken::new());
        telemetry.end_init();
        let mut built = false;
        telemetry.publish(Category::Function, || {
            built = true;
            Record::Function("x".into())
        });
        assert!(!built);
    }

    /// A listener on loopback that reports each batch, answering once `gate` allows.
    async fn listener(
        gate: Arc<Notify>,
        hold_first: bool,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<serde_json::Value>>) {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = tcp.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = mpsc::unbounded_channel();
        let first = Arc::new(std::sync::atomic::AtomicBool::new(hold_first));
        tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                let tx = tx.clone();
                let gate = gate.clone();
                let first = first.clone();
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        let gate = gate.clone();
                        let hold = first.swap(false, Ordering::AcqRel);
                        async move {
                            let bytes = req.into_body().collect().await.map(|b| b.to_bytes());
                            let batch: Vec<serde_json::Value> =
                                serde_json::from_slice(&bytes.unwrap_or_default())
                                    .unwrap_or_default();
                            let _ = tx.send(batch);
                            if hold {
                                gate.notified().await;
                            }
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (addr, rx)
    }

    fn plan(addr: SocketAddr, max_items: usize, timeout_ms: u64) -> Plan {
        Plan {
            dialect: Dialect::Telemetry,
            protocol: Protocol::Http,
            types: vec![Category::Platform, Category::Function],
            addr,
            host: format!("sandbox.localdomain:{}", addr.port()),
            path: "/".into(),
            max_items,
            max_bytes: 262_144,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    fn line(telemetry: &Telemetry, text: &str) {
        telemetry.publish(Category::Function, || Record::Function(text.into()));
    }

    async fn next_batch(
        rx: &mut mpsc::UnboundedReceiver<Vec<serde_json::Value>>,
    ) -> Vec<serde_json::Value> {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no batch"))
    }

    fn records(batch: &[serde_json::Value]) -> Vec<String> {
        batch
            .iter()
            .map(|e| match e["type"].as_str() {
                Some("function") => e["record"].as_str().unwrap_or_default().to_owned(),
                Some(other) => other.to_owned(),
                None => String::new(),
            })
            .collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn batches_fill_to_max_items_and_the_backlog_reaches_init_subscribers() {
        let (addr, mut batches) = listener(Arc::new(Notify::new()), false).await;
        let telemetry = Telemetry::new(CancellationToken::new());
        telemetry.publish(Category::Platform, || {
            Record::InitStart(tm::InitStart {
                initialization_type: tm::InitType::OnDemand,
                phase: tm::InitPhase::Init,
                function_name: "f".into(),
                function_version: "$LATEST".into(),
                runtime_version: None,
                runtime_version_arn: None,
            })
        });
        telemetry.subscribe("id", "ext", plan(addr, 3, 30_000));
        telemetry.end_init();
        // initStart and telemetrySubscription are queued: one more line fills the batch.
        line(&telemetry, "a");
        assert_eq!(
            records(&next_batch(&mut batches).await),
            ["platform.initStart", "platform.telemetrySubscription", "a"]
        );
        // Extension lines are not subscribed to: not even built.
        assert!(!telemetry.wants(Category::Extension));
        line(&telemetry, "b");
        // Shutdown flushes a batch that is not full.
        telemetry.shutdown(Duration::from_secs(5)).await;
        assert_eq!(records(&next_batch(&mut batches).await), ["b"]);
        line(&telemetry, "after");
        assert!(!telemetry.wants(Category::Function));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_goes_once_its_bytes_fill_it_not_at_the_deadline() {
        let (addr, mut batches) = listener(Arc::new(Notify::new()), false).await;
        let telemetry = Telemetry::new(CancellationToken::new());
        telemetry.end_init();
        let mut small = plan(addr, 1000, 30_000);
        small.types = vec![Category::Function];
        // Each line's event is some 140 bytes: two fill the batch.
        small.max_bytes = 200;
        telemetry.subscribe("id", "ext", small);
        let text = |n: usize| format!("{n}{}", "x".repeat(80));
        line(&telemetry, &text(1));
        // The delivery task takes the first line and waits for the batch to fill: it says how
        // much more it wants (bounded: the task runs whenever this one yields).
        let gathering = || {
            telemetry.lock().subscriptions[0]
                .counters
                .wanted_bytes
                .load(Ordering::Acquire)
                != u64::MAX
        };
        for _ in 0..1000 {
            if gathering() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(gathering(), "the delivery task never waited for more");
        line(&telemetry, &text(2));
        let batch = next_batch(&mut batches).await;
        let lines: Vec<&str> = batch.iter().filter_map(|e| e["record"].as_str()).collect();
        assert_eq!(lines, [text(1), text(2)]);
        telemetry.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_listener_that_falls_behind_gets_logs_dropped_and_never_blocks_publishing() {
        let gate = Arc::new(Notify::new());
        let (addr, mut batches) = listener(gate.clone(), true).await;
        let telemetry = Telemetry::new(CancellationToken::new());
        telemetry.end_init();
        let mut small = plan(addr, 1, 25);
        small.types = vec![Category::Function];
        telemetry.subscribe("id", "ext", small);
        line(&telemetry, "first");
        // The listener holds the first batch; the queue (one event) fills behind it.
        assert_eq!(records(&next_batch(&mut batches).await), ["first"]);
        line(&telemetry, "queued");
        for i in 0..5 {
            line(&telemetry, &format!("dropped {i}"));
        }
        gate.notify_one();
        let batch = next_batch(&mut batches).await;
        assert_eq!(records(&batch), ["platform.logsDropped", "queued"]);
        assert_eq!(batch[0]["record"]["droppedRecords"], 5);
        let bytes = batch[0]["record"]["droppedBytes"]
            .as_u64()
            .unwrap_or_default();
        assert!(bytes > 5 * 40, "{bytes}");
        telemetry.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_api_gets_its_own_shapes_from_one_stream() {
        let (telemetry_addr, mut telemetry_batches) =
            listener(Arc::new(Notify::new()), false).await;
        let (logs_addr, mut logs_batches) = listener(Arc::new(Notify::new()), false).await;
        let (old_addr, mut old_batches) = listener(Arc::new(Notify::new()), false).await;
        let telemetry = Telemetry::new(CancellationToken::new());
        telemetry.end_init();
        telemetry.subscribe("t", "tel", plan(telemetry_addr, 1_000, 30_000));
        let mut newer = plan(logs_addr, 1_000, 30_000);
        newer.dialect = Dialect::Logs(logs::SchemaVersion::V2021_03_18);
        telemetry.subscribe("l", "logs", newer);
        let mut older = plan(old_addr, 1_000, 30_000);
        older.dialect = Dialect::Logs(logs::SchemaVersion::V2020_08_15);
        telemetry.subscribe("o", "old", older);
        telemetry.publish(Category::Platform, || {
            Record::Start(tm::Start {
                request_id: "r".into(),
                version: Some("$LATEST".into()),
                tracing: None,
            })
        });
        line(&telemetry, "hello");
        telemetry.publish(Category::Platform, || {
            Record::RuntimeDone(tm::RuntimeDone {
                request_id: "r".into(),
                status: Status::Error,
                error_type: Some("Runtime.ExitError".into()),
                metrics: None,
                spans: Vec::new(),
                tracing: None,
            })
        });
        telemetry.publish_logs(|| {
            logs::Record::End(logs::RequestRef {
                request_id: "r".into(),
            })
        });
        telemetry.shutdown(Duration::from_secs(5)).await;
        let telemetry_batch = next_batch(&mut telemetry_batches).await;
        assert_eq!(
            records(&telemetry_batch),
            [
                "platform.telemetrySubscription",
                "platform.start",
                "hello",
                "platform.runtimeDone"
            ]
        );
        assert_eq!(telemetry_batch[3]["record"]["status"], "error");
        let logs_batch = next_batch(&mut logs_batches).await;
        // Its own subscription, then the next one's.
        assert_eq!(
            records(&logs_batch),
            [
                "platform.logsSubscription",
                "platform.logsSubscription",
                "platform.start",
                "hello",
                "platform.runtimeDone",
                "platform.end"
            ]
        );
        assert_eq!(logs_batch[0]["record"]["name"], "logs");
        assert_eq!(
            logs_batch[4]["record"],
            serde_json::json!({"requestId":"r","status":"failure"})
        );
        assert_eq!(
            logs_batch[5]["record"],
            serde_json::json!({"requestId":"r"})
        );
        // The first schema has no platform.runtimeDone.
        assert_eq!(
            records(&next_batch(&mut old_batches).await),
            [
                "platform.logsSubscription",
                "platform.start",
                "hello",
                "platform.end"
            ]
        );
    }

    #[test]
    fn logs_subscriptions_are_validated_like_telemetry_ones() {
        let plan = Plan::from_logs_body(
            br#"{"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:1234/logs"},"types":["platform","function"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.dialect,
            Dialect::Logs(logs::SchemaVersion::V2020_08_15)
        );
        assert_eq!(plan.max_items, 10_000);
        assert!(matches!(
            Plan::from_logs_body(
                br#"{"schemaVersion":"2021-03-18","destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:1"},"types":["platform"],"buffering":{"timeoutMs":5}}"#
            ),
            Err(SubscribeError::Validation(m)) if m.contains("timeoutMs")
        ));
        assert!(matches!(
            Plan::from_logs_body(b"{}"),
            Err(SubscribeError::Validation(_))
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_tcp_destination_gets_newline_delimited_json() {
        use tokio::io::AsyncBufReadExt;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = tcp.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let telemetry = Telemetry::new(CancellationToken::new());
        telemetry.end_init();
        let mut over_tcp = plan(addr, 1_000, 25);
        over_tcp.protocol = Protocol::Tcp;
        over_tcp.types = vec![Category::Function];
        telemetry.subscribe("id", "ext", over_tcp);
        line(&telemetry, "one");
        line(&telemetry, "two");
        let (stream, _) = tcp.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut lines = tokio::io::BufReader::new(stream).lines();
        let mut got = Vec::new();
        while got.len() < 2 {
            let Ok(Some(json)) = lines.next_line().await else {
                panic!("the stream ended after {got:?}");
            };
            let event: serde_json::Value =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            got.push(event["record"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(got, ["one", "two"]);
        telemetry.shutdown(Duration::from_secs(5)).await;
    }
}

//! The emulator: a set of functions, one way in ([`Emulator::invoke`]) for every front door, and
//! an orderly shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use coldstart_protocol::{InvocationType, limits};

use crate::async_invoke::Event;
use crate::clock;
use crate::config::{FunctionConfig, Settings};
use crate::error::{Error, InvokeError};
use crate::function::{Function, State};
use crate::invocation::{Invocation, InvokeRequest, InvokeResponse, Outcome};
use crate::logs::LogSink;
use crate::pool::Urgency;
use crate::queued::{QueuedEvent, Resumed};

use crate::process::SHUTDOWN_GRACE;

/// A running set of functions. Cheap to clone: clones share the functions and their sandboxes.
#[derive(Clone, Debug)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    /// The functions by name; [`Emulator::reconfigure`] replaces entries at run time.
    functions: RwLock<HashMap<String, Arc<Function>>>,
    /// Functions replaced by [`Emulator::reconfigure`] whose sandboxes may still be answering;
    /// stopped at shutdown like the rest.
    retired: Mutex<Vec<Arc<Function>>>,
    sink: Arc<dyn LogSink>,
    settings: Settings,
    /// `Event` invocations running in the background; waited for at shutdown.
    events: TaskTracker,
    /// Cancelled at shutdown: `Event` invocations waiting for capacity or a retry end and put
    /// their event in `kept`.
    stopping: CancellationToken,
    /// Events that did not run to their end because of the stop; handed back by
    /// [`Emulator::shutdown_keeping_events`].
    kept: Mutex<Vec<QueuedEvent>>,
    /// Resumed events of functions that are not `Active` yet (still building): queued once
    /// [`Emulator::set_state`] makes their function `Active`, kept again at shutdown otherwise.
    parked: Mutex<Vec<QueuedEvent>>,
}

impl crate::async_invoke::Destinations for Emulator {
    fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn has_function(&self, name: &str) -> bool {
        self.function(name).is_some()
    }

    fn invoke_event(
        &self,
        function: &str,
        payload: Bytes,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), InvokeError>> + Send + '_>> {
        let request = InvokeRequest {
            payload,
            invocation_type: InvocationType::Event,
            ..InvokeRequest::default()
        };
        let function = function.to_owned();
        Box::pin(async move {
            if self.inner.events.is_closed()
                && let Some(target) = self.function(&function)
            {
                // The destination's own invocation would be refused now: it is kept instead,
                // as a new event of the destination function.
                let arn = self.arn_of(&function, None);
                let invocation = self.invocation(arn, request);
                crate::async_invoke::Destinations::keep(self, Event::new(invocation).keep(&target));
                return Ok(());
            }
            self.invoke(&function, request).await.map(|_| ())
        })
    }

    fn keep(&self, event: QueuedEvent) {
        lock(&self.inner.kept).push(event);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("functions", &self.functions)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// An emulator serving `functions`, writing their logs to `sink`. No process starts until
    /// the first invocation of a function.
    pub fn new(
        functions: Vec<FunctionConfig>,
        settings: Settings,
        sink: Arc<dyn LogSink>,
    ) -> Result<Self, Error> {
        let mut map = HashMap::new();
        for config in functions {
            let name = config.name.clone();
            let function = Function::new(config, &settings, sink.clone())?;
            if map.insert(name.clone(), function).is_some() {
                return Err(Error::DuplicateFunction(name));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                functions: RwLock::new(map),
                retired: Mutex::new(Vec::new()),
                sink,
                settings,
                events: TaskTracker::new(),
                stopping: CancellationToken::new(),
                kept: Mutex::new(Vec::new()),
                parked: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The account and region functions see.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Whether the log sink reads records (and so [`Self::note`]'s events).
    pub fn wants_notes(&self) -> bool {
        self.inner.sink.wants_records()
    }

    /// Hands the coldstart event `make` builds ([`crate::notes`]: an API request, a build's
    /// state) about `function` to the log sink's record hook, if the sink reads records;
    /// otherwise it is not built.
    pub fn note(&self, function: &str, make: impl FnOnce() -> serde_json::Value) {
        if self.inner.sink.wants_records() {
            self.inner
                .sink
                .record(function, &crate::notes::StreamEvent::note(make()));
        }
    }

    /// The function called `name`, if any.
    fn function(&self, name: &str) -> Option<Arc<Function>> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every function served.
    fn functions(&self) -> Vec<Arc<Function>> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The names of the functions served.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Serves `config` under its name from now on, as Lambda's `UpdateFunctionConfiguration`
    /// and `CreateFunction` do: new invocations start sandboxes with the new settings; the old
    /// version's idle sandboxes stop at once and busy ones once their invocation is answered.
    /// The new function keeps the old one's [`State`]. A config that fails validation changes
    /// nothing.
    pub fn reconfigure(&self, config: FunctionConfig) -> Result<(), Error> {
        let name = config.name.clone();
        let function = Function::new(config, &self.inner.settings, self.inner.sink.clone())?;
        let old = self
            .inner
            .functions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, function.clone());
        if let Some(old) = old {
            function.set_state(old.state());
            self.retire(old);
        }
        Ok(())
    }

    /// Lets a replaced or removed function's sandboxes finish: idle ones stop at once, busy ones
    /// once answered; shutdown stops whatever is left.
    fn retire(&self, old: Arc<Function>) {
        old.replace_sandboxes();
        self.inner
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(old);
    }

    /// Stops serving `function`, as Lambda's `DeleteFunction`: new invocations get 404; its idle
    /// sandboxes stop at once and busy ones once answered. Returns false for an unknown function.
    pub fn remove(&self, function: &str) -> bool {
        let old = self
            .inner
            .functions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(function);
        match old {
            Some(old) => {
                self.retire(old);
                true
            }
            None => false,
        }
    }

    /// Sets `function`'s [`State`]: a `Pending` or `Failed` function refuses invocations with
    /// 409 `ResourceConflictException`, as Lambda does; `up` keeps a function `Pending` while its
    /// code builds. Returns false when there is no such function.
    pub fn set_state(&self, function: &str, state: State) -> bool {
        match self.function(function) {
            Some(f) => {
                f.set_state(state);
                if state == State::Active {
                    let parked: Vec<QueuedEvent> = {
                        let mut parked = lock(&self.inner.parked);
                        let (theirs, rest) = std::mem::take(&mut *parked)
                            .into_iter()
                            .partition(|q| q.function == function);
                        *parked = rest;
                        theirs
                    };
                    for queued in parked {
                        self.spawn_event(f.clone(), Event::resumed(queued));
                    }
                }
                true
            }
            None => false,
        }
    }

    /// Takes up `Event` invocations kept by an earlier emulator's
    /// [`shutdown_keeping_events`](Self::shutdown_keeping_events), in order: each is queued
    /// again for its function (once it is `Active`) with the attempts it made and its age; one
    /// older than its function's `MaximumEventAgeInSeconds` goes to `OnFailure` and the
    /// dead-letter queue instead; one of a function no longer served goes to the `OnFailure`
    /// destination and dead-letter queue kept with it, or is dropped. Spawns their tasks and
    /// returns at once.
    pub fn resume(&self, events: Vec<QueuedEvent>) -> Resumed {
        let mut resumed = Resumed::default();
        for queued in events {
            if self.inner.events.is_closed() {
                // Stopping already: kept again as they were.
                lock(&self.inner.kept).push(queued);
                continue;
            }
            let Some(function) = self.function(&queued.function) else {
                resumed.orphaned += 1;
                self.inner
                    .events
                    .spawn(crate::async_invoke::orphan(self.clone(), queued));
                continue;
            };
            let event = Event::resumed(queued);
            if event.expired(&self.inner.settings, &function) {
                // Its task sends it to OnFailure before running anything.
                resumed.expired += 1;
                self.spawn_event(function, event);
                continue;
            }
            resumed.queued += 1;
            if function.state() == State::Active {
                self.spawn_event(function, event);
            } else {
                lock(&self.inner.parked).push(event.keep(&function));
            }
        }
        resumed
    }

    /// Runs `event` in the background, to its end or to the stop.
    fn spawn_event(&self, function: Arc<Function>, event: Event) {
        self.inner.events.spawn(crate::async_invoke::run(
            self.clone(),
            function,
            event,
            self.inner.stopping.clone(),
        ));
    }

    /// Process ids of `function`'s live sandboxes (their bootstraps, each a process group leader).
    pub fn sandbox_pids(&self, function: &str) -> Vec<u32> {
        self.function(function)
            .map(|f| f.pids())
            .unwrap_or_default()
    }

    /// `function`'s live sandboxes and what each is doing, in start order; empty for an unknown
    /// function. A copy: it does not follow later changes.
    pub fn sandboxes(&self, function: &str) -> Vec<crate::snapshot::SandboxView> {
        self.function(function)
            .map(|f| f.sandbox_views())
            .unwrap_or_default()
    }

    /// `function`'s [`State`], if it is served.
    pub fn state(&self, function: &str) -> Option<State> {
        self.function(function).map(|f| f.state())
    }

    /// Invokes `function` (a name, `name:$LATEST`, or a full or partial ARN) and returns its one
    /// answer. Refusals before the function runs come back as [`InvokeError`].
    pub async fn invoke(
        &self,
        function: &str,
        request: InvokeRequest,
    ) -> Result<InvokeResponse, InvokeError> {
        let (function, invoked_arn) = self.resolve(function, request.qualifier.as_deref())?;
        match function.state() {
            State::Active => {}
            state => {
                return Err(InvokeError::NotActive {
                    state: state.as_str(),
                });
            }
        }
        let limit = match request.invocation_type {
            InvocationType::Event => limits::MAX_ASYNC_REQUEST,
            _ => limits::MAX_SYNC_REQUEST,
        };
        let size = request.payload.len();
        if size > limit {
            return Err(InvokeError::TooLarge(match request.invocation_type {
                InvocationType::Event => format!(
                    "{size} byte payload is too large for the Event invocation type (limit {limit} bytes)"
                ),
                _ => format!(
                    "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                ),
            }));
        }
        let payload = if request.payload.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            if !request.serialized
                && let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&request.payload)
            {
                return Err(InvokeError::InvalidContent(format!(
                    "Could not parse request body into json: Could not parse payload into json: {err}"
                )));
            }
            request.payload
        };
        let invocation_type = request.invocation_type;
        let run_before_stop = request.run_before_stop;
        let invocation = self.invocation(invoked_arn, InvokeRequest { payload, ..request });
        let request_id = invocation.request_id.clone();
        match invocation_type {
            InvocationType::DryRun => Ok(InvokeResponse {
                request_id,
                outcome: Outcome::DryRun,
                log_tail: None,
            }),
            InvocationType::Event => {
                if self.inner.events.is_closed() {
                    return Err(InvokeError::Service("the emulator is shutting down".into()));
                }
                let mut event = Event::new(invocation);
                event.run_before_stop = run_before_stop;
                self.spawn_event(function, event);
                Ok(InvokeResponse {
                    request_id,
                    outcome: Outcome::Accepted,
                    log_tail: None,
                })
            }
            InvocationType::RequestResponse => function.run(invocation, Urgency::Sync).await,
        }
    }

    /// The invocation `request` makes of the function at `invoked_arn`: a fresh request id and
    /// trace header unless the request brings them.
    fn invocation(&self, invoked_arn: String, request: InvokeRequest) -> Invocation {
        Invocation {
            request_id: request.request_id.unwrap_or_else(clock::request_id),
            payload: request.payload,
            content_type: request.content_type,
            invoked_arn,
            trace_id: request
                .trace_id
                .filter(|t| t.contains("Root="))
                .unwrap_or_else(clock::trace_id),
            client_context: request.client_context,
            tenant_id: request.tenant_id,
            log_tail: request.log_tail,
        }
    }

    /// The ARN of function `name`, with `qualifier` if given.
    fn arn_of(&self, name: &str, qualifier: Option<&str>) -> String {
        let settings = &self.inner.settings;
        let base = format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            settings.region, settings.account_id
        );
        match qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }

    /// Finds a function by name or ARN; returns it with the ARN the caller invoked.
    fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(Arc<Function>, String), InvokeError> {
        // arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}], or the partial
        // {account}:function:{name}[:{qualifier}], or {name}[:{qualifier}].
        let rest = name
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(':').map(|(_, r)| r)) // partition
            .and_then(|r| r.strip_prefix("lambda:"))
            .and_then(|r| r.split_once(':').map(|(_, r)| r)) // region
            .unwrap_or(name);
        let rest = match rest.split_once(":function:") {
            Some((_account, rest)) => rest,
            None => rest,
        };
        let (bare, inline_qualifier) = match rest.split_once(':') {
            Some((n, q)) => (n, Some(q)),
            None => (rest, None),
        };
        let qualifier = qualifier.or(inline_qualifier);
        let arn_of = |n: &str| self.arn_of(n, qualifier);
        let function = self
            .function(bare)
            .filter(|_| qualifier.is_none_or(|q| q == "$LATEST"))
            .ok_or_else(|| InvokeError::NotFound { arn: arn_of(bare) })?;
        Ok((function, arn_of(bare)))
    }

    /// Shuts down as [`shutdown_keeping_events`](Self::shutdown_keeping_events) does, and drops
    /// (logging how many) the `Event` invocations still queued.
    pub async fn shutdown(&self, drain: Duration) {
        let kept = self.shutdown_keeping_events(drain).await;
        if !kept.is_empty() {
            tracing::warn!(
                count = kept.len(),
                "queued event invocations dropped at shutdown"
            );
        }
    }

    /// Shuts down: refuses new invocations, lets attempts of `Event` invocations already
    /// running finish (for at most `drain`), then stops every sandbox (SIGTERM, SIGKILL after
    /// [`SHUTDOWN_GRACE`]). Returns the `Event` invocations that did not run to their end: those
    /// still waiting for capacity or for a retry, in the order they were kept, for
    /// [`resume`](Self::resume) on a later emulator.
    pub async fn shutdown_keeping_events(&self, drain: Duration) -> Vec<QueuedEvent> {
        self.inner.events.close();
        // Waiting events end at once and keep themselves; running attempts go on.
        self.inner.stopping.cancel();
        let drained = tokio::time::timeout(drain, self.inner.events.wait())
            .await
            .is_ok();
        if !drained {
            tracing::warn!("event invocations still running at shutdown were stopped");
        }
        let mut stops = tokio::task::JoinSet::new();
        let retired: Vec<Arc<Function>> = std::mem::take(
            &mut *self
                .inner
                .retired
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for function in self.functions().into_iter().chain(retired) {
            stops.spawn(async move { function.stop_all(SHUTDOWN_GRACE).await });
        }
        while stops.join_next().await.is_some() {}
        if !drained {
            // Attempts cut short by the stop end now (their sandboxes are gone) and keep their
            // event for a retry.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.inner.events.wait()).await;
        }
        let mut kept = std::mem::take(&mut *lock(&self.inner.kept));
        kept.append(&mut lock(&self.inner.parked));
        kept
    }

    /// Replaces `function`'s sandboxes after its code changed: idle ones stop at once, busy ones
    /// once their invocation is answered; the next invocations start new sandboxes. Returns false
    /// for an unknown function.
    pub fn replace_sandboxes(&self, function: &str) -> bool {
        match self.function(function) {
            Some(f) => {
                f.replace_sandboxes();
                true
            }
            None => false,
        }
    }

    /// The longest timeout of any function: how long an in-flight invocation may still take.
    pub fn longest_timeout(&self) -> Duration {
        self.functions()
            .iter()
            .map(|f| f.config().timeout)
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::TracingSink;

    fn emulator() -> Emulator {
        let f = FunctionConfig::new("echo", vec!["/bin/true".into()]);
        Emulator::new(vec![f], Settings::default(), Arc::new(TracingSink))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn functions_are_replaced_added_and_removed_while_serving() {
        let emu = emulator();
        assert!(emu.set_state("echo", State::Pending));
        let mut longer = FunctionConfig::new("echo", vec!["/bin/true".into()]);
        longer.timeout = Duration::from_secs(60);
        emu.reconfigure(longer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(emu.longest_timeout(), Duration::from_secs(60));
        let err = emu.invoke("echo", InvokeRequest::default()).await.err();
        assert_eq!(
            err.map(|e| e.status()),
            Some(http::StatusCode::CONFLICT),
            "the new version keeps the old one's state"
        );

        let mut bad = FunctionConfig::new("echo", vec!["/bin/true".into()]);
        bad.timeout = Duration::ZERO;
        assert!(emu.reconfigure(bad).is_err());
        assert_eq!(emu.longest_timeout(), Duration::from_secs(60), "unchanged");

        emu.reconfigure(FunctionConfig::new("other", vec!["/bin/true".into()]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(emu.function_names(), ["echo", "other"]);
        assert!(emu.remove("echo"));
        assert!(!emu.remove("echo"));
        let err = emu.invoke("echo", InvokeRequest::default()).await.err();
        assert_eq!(err.map(|e| e.status()), Some(http::StatusCode::NOT_FOUND));
        assert_eq!(emu.function_names(), ["other"]);
        emu.shutdown(Duration::from_millis(10)).await;
    }

    #[tokio::test]
    async fn a_function_that_is_not_active_refuses_invocations_with_409() {
        let emu = emulator();
        assert!(emu.set_state("echo", State::Pending));
        let err = emu
            .invoke("echo", InvokeRequest::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("a pending function was invoked"));
        assert_eq!(err.status(), http::StatusCode::CONFLICT);
        assert_eq!(err.error_type(), "ResourceConflictException");
        assert!(
            err.to_string().ends_with("following state: Pending"),
            "{err}"
        );
        assert!(emu.set_state("echo", State::Failed));
        let err = emu
            .invoke("echo", InvokeRequest::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("a failed function was invoked"));
        assert!(
            err.to_string().ends_with("following state: Failed"),
            "{err}"
        );
        assert!(!emu.set_state("nope", State::Active));
    }

    fn queued(function: &str, enqueued: std::time::SystemTime) -> QueuedEvent {
        QueuedEvent {
            function: function.into(),
            invoked_arn: format!("arn:aws:lambda:us-east-1:012345678912:function:{function}"),
            request_id: "r-1".into(),
            payload: b"{}".to_vec(),
            content_type: None,
            trace_id: "Root=1-00000000-000000000000000000000000".into(),
            client_context: None,
            tenant_id: None,
            attempts: 1,
            enqueued,
            last_error: Some(("Boom".into(), b"{}".to_vec())),
            on_failure: None,
            dead_letter: None,
        }
    }

    #[tokio::test]
    async fn resumed_events_of_a_pending_function_wait_for_it_and_are_kept_again_at_a_stop() {
        let emu = emulator();
        assert!(emu.set_state("echo", State::Pending));
        let waiting = queued("echo", std::time::SystemTime::now());
        let resumed = emu.resume(vec![
            waiting.clone(),
            queued("echo", std::time::UNIX_EPOCH),
            queued("gone", std::time::SystemTime::now()),
        ]);
        assert_eq!(
            resumed,
            Resumed {
                queued: 1,
                expired: 1,
                orphaned: 1
            }
        );
        // Nothing ran (the function is still building): the stop hands the event back as it
        // came, while the expired and orphaned ones are done with.
        let kept = emu.shutdown_keeping_events(Duration::from_secs(5)).await;
        assert_eq!(kept, vec![waiting]);
        assert!(emu.sandbox_pids("echo").is_empty());
    }

    #[test]
    fn resolves_names_and_arns() {
        let emu = emulator();
        let arn = "arn:aws:lambda:us-east-1:012345678912:function:echo";
        for name in ["echo", "echo:$LATEST", arn, "012345678912:function:echo"] {
            let (f, _) = emu
                .resolve(name, None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&*f.name, "echo");
        }
        assert_eq!(
            emu.resolve("echo", None).map(|r| r.1).ok().as_deref(),
            Some(arn)
        );
        let qualified = format!("{arn}:$LATEST");
        assert_eq!(
            emu.resolve(&qualified, None).map(|r| r.1).ok(),
            Some(qualified.clone())
        );
    }

    #[test]
    fn unknown_functions_and_versions_are_not_found() {
        let emu = emulator();
        let err = emu.resolve("nope", None).err();
        assert!(
            matches!(&err, Some(InvokeError::NotFound { arn }) if arn == "arn:aws:lambda:us-east-1:012345678912:function:nope"),
            "{err:?}"
        );
        assert!(emu.resolve("echo", Some("3")).is_err());
        assert!(emu.resolve("echo:prod", None).is_err());
    }

    #[tokio::test]
    async fn refuses_bad_payloads_before_running_anything() {
        let emu = emulator();
        let bad = InvokeRequest {
            payload: Bytes::from_static(b"{not json"),
            ..Default::default()
        };
        assert!(matches!(
            emu.invoke("echo", bad).await,
            Err(InvokeError::InvalidContent(_))
        ));
        let big_event = InvokeRequest {
            payload: Bytes::from(vec![b' '; limits::MAX_ASYNC_REQUEST + 1]),
            invocation_type: InvocationType::Event,
            ..Default::default()
        };
        assert!(matches!(
            emu.invoke("echo", big_event).await,
            Err(InvokeError::TooLarge(_))
        ));
        assert!(emu.sandbox_pids("echo").is_empty());
    }
}

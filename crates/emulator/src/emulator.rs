//! The emulator: a set of functions, one way in ([`Emulator::invoke`]) for every front door, and
//! an orderly shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::task::TaskTracker;

use coldstart_protocol::{InvocationType, limits};

use crate::clock;
use crate::config::{FunctionConfig, Settings};
use crate::error::{Error, InvokeError};
use crate::function::{Function, State};
use crate::invocation::{Invocation, InvokeRequest, InvokeResponse, Outcome};
use crate::logs::LogSink;
use crate::pool::Urgency;

use crate::process::SHUTDOWN_GRACE;

/// A running set of functions. Cheap to clone: clones share the functions and their sandboxes.
#[derive(Clone, Debug)]
pub struct Emulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    functions: HashMap<String, Arc<Function>>,
    settings: Settings,
    /// `Event` invocations running in the background; waited for at shutdown.
    events: TaskTracker,
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
                functions: map,
                settings,
                events: TaskTracker::new(),
            }),
        })
    }

    /// The account and region functions see.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The names of the functions served.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.functions.keys().cloned().collect();
        names.sort();
        names
    }

    /// Sets `function`'s [`State`]: a `Pending` or `Failed` function refuses invocations with
    /// 409 `ResourceConflictException`, as Lambda does; `up` keeps a function `Pending` while its
    /// code builds. Returns false when there is no such function.
    pub fn set_state(&self, function: &str, state: State) -> bool {
        match self.inner.functions.get(function) {
            Some(f) => {
                f.set_state(state);
                true
            }
            None => false,
        }
    }

    /// Process ids of `function`'s live sandboxes (their bootstraps, each a process group leader).
    pub fn sandbox_pids(&self, function: &str) -> Vec<u32> {
        self.inner
            .functions
            .get(function)
            .map(|f| f.pids())
            .unwrap_or_default()
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
            if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&request.payload) {
                return Err(InvokeError::InvalidContent(format!(
                    "Could not parse request body into json: Could not parse payload into json: {err}"
                )));
            }
            request.payload
        };
        let request_id = request.request_id.unwrap_or_else(clock::request_id);
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            content_type: request.content_type,
            invoked_arn,
            trace_id: request
                .trace_id
                .filter(|t| t.contains("Root="))
                .unwrap_or_else(clock::trace_id),
            client_context: request.client_context,
            tenant_id: request.tenant_id,
            log_tail: request.log_tail,
        };
        match request.invocation_type {
            InvocationType::DryRun => Ok(InvokeResponse {
                request_id,
                outcome: Outcome::DryRun,
                log_tail: None,
            }),
            InvocationType::Event => {
                if self.inner.events.is_closed() {
                    return Err(InvokeError::Service("the emulator is shutting down".into()));
                }
                self.inner.events.spawn(async move {
                    let id = invocation.request_id.clone();
                    if let Err(err) = function.run(invocation, Urgency::Async).await {
                        tracing::warn!(function = &*function.name, request_id = id, %err, "event invocation dropped");
                    }
                });
                Ok(InvokeResponse {
                    request_id,
                    outcome: Outcome::Accepted,
                    log_tail: None,
                })
            }
            InvocationType::RequestResponse => function.run(invocation, Urgency::Sync).await,
        }
    }

    /// Finds a function by name or ARN; returns it with the ARN the caller invoked.
    fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(Arc<Function>, String), InvokeError> {
        let settings = &self.inner.settings;
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
        let arn_of = |n: &str| {
            let base = format!(
                "arn:aws:lambda:{}:{}:function:{n}",
                settings.region, settings.account_id
            );
            match qualifier {
                Some(q) => format!("{base}:{q}"),
                None => base,
            }
        };
        let function = self
            .inner
            .functions
            .get(bare)
            .filter(|_| qualifier.is_none_or(|q| q == "$LATEST"))
            .ok_or_else(|| InvokeError::NotFound { arn: arn_of(bare) })?;
        Ok((function.clone(), arn_of(bare)))
    }

    /// Shuts down: refuses new invocations, lets background `Event` invocations finish (for at
    /// most `drain`), then stops every sandbox (SIGTERM, SIGKILL after [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(&self, drain: Duration) {
        self.inner.events.close();
        if tokio::time::timeout(drain, self.inner.events.wait())
            .await
            .is_err()
        {
            tracing::warn!("event invocations still running at shutdown were stopped");
        }
        let mut stops = tokio::task::JoinSet::new();
        for function in self.inner.functions.values() {
            let function = function.clone();
            stops.spawn(async move { function.stop_all(SHUTDOWN_GRACE).await });
        }
        while stops.join_next().await.is_some() {}
    }

    /// Replaces `function`'s sandboxes after its code changed: idle ones stop at once, busy ones
    /// once their invocation is answered; the next invocations start new sandboxes. Returns false
    /// for an unknown function.
    pub fn replace_sandboxes(&self, function: &str) -> bool {
        match self.inner.functions.get(function) {
            Some(f) => {
                f.replace_sandboxes();
                true
            }
            None => false,
        }
    }

    /// The longest timeout of any function: how long an in-flight invocation may still take.
    pub fn longest_timeout(&self) -> Duration {
        self.inner
            .functions
            .values()
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

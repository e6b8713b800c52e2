//! The extensions of one sandbox as the Extensions API sees them: who registered, what each
//! subscribed to, which events wait to be fetched, and who is waiting in `event/next`.
//!
//! This is plain bookkeeping kept inside the sandbox's lock; the sandbox decides when init and
//! invocations are complete ("every extension waits") and the HTTP side lives in
//! `extension_api`. Refusals carry rapid's error types.

use std::collections::VecDeque;

use coldstart_protocol::extension::{Event, EventType, MAX_EXTENSIONS};
use tokio::sync::oneshot;

/// An Extensions API call that the registry refuses: 403 with this `errorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtensionRefusal {
    pub(crate) error_type: &'static str,
    pub(crate) message: String,
}

impl ExtensionRefusal {
    pub(crate) fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
}

/// One registered extension.
#[derive(Debug)]
struct Extension {
    id: String,
    name: String,
    /// Started by the sandbox from the function's `extensions` (not a process registering an
    /// in-process extension).
    external: bool,
    invoke: bool,
    shutdown: bool,
    /// Its `event/next` waits on the other end; dropped when the sandbox dies.
    waiter: Option<oneshot::Sender<Event>>,
    /// Events not fetched yet.
    queued: VecDeque<Event>,
    /// It has called `next` since its last event: it is done with its work.
    ready: bool,
    /// The error type it reported on `exit/error`, used if it then exits.
    exit_error: Option<String>,
}

/// What `event/next` should do.
#[derive(Debug)]
pub(crate) enum ExtensionNext {
    /// An event is already waiting.
    Deliver(Event),
    /// Hold the request until an event arrives (`Err`: the sandbox died).
    Wait(oneshot::Receiver<Event>),
}

/// The extensions of one sandbox.
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    registered: Vec<Extension>,
    /// File names of the external extensions started that have not registered yet.
    unregistered: Vec<String>,
}

impl Extensions {
    /// A registry expecting the external extensions whose executables have these file names.
    pub(crate) fn expecting(names: Vec<String>) -> Self {
        Self {
            registered: Vec::new(),
            unregistered: names,
        }
    }

    /// Every external extension started has registered.
    pub(crate) fn all_registered(&self) -> bool {
        self.unregistered.is_empty()
    }

    /// Every registered extension waits in `next` with nothing left to fetch.
    pub(crate) fn all_ready(&self) -> bool {
        self.registered.iter().all(|e| e.ready)
    }

    /// Whether any extension is registered at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }

    /// Registers an extension named `name` for `events`; returns its identifier. An external
    /// extension's name is its executable's file name; any other name registers an internal
    /// extension (one running inside another process), which may not subscribe to `SHUTDOWN`.
    pub(crate) fn register(
        &mut self,
        name: &str,
        events: &[EventType],
    ) -> Result<String, ExtensionRefusal> {
        if name.is_empty() {
            return Err(ExtensionRefusal::new(
                "Extension.InvalidExtensionName",
                "Empty extension name",
            ));
        }
        if self.registered.len() >= MAX_EXTENSIONS {
            return Err(ExtensionRefusal::new(
                "Extension.TooManyExtensions",
                format!("Too many extensions registered (the limit is {MAX_EXTENSIONS})"),
            ));
        }
        if self.registered.iter().any(|e| e.name == name) {
            return Err(ExtensionRefusal::new(
                "Extension.InvalidExtensionName",
                format!("Extension {name} is already registered"),
            ));
        }
        let external = match self.unregistered.iter().position(|n| n == name) {
            Some(i) => {
                self.unregistered.swap_remove(i);
                true
            }
            None => false,
        };
        let shutdown = events.contains(&EventType::Shutdown);
        if shutdown && !external {
            return Err(ExtensionRefusal::new(
                "Extension.InvalidEventType",
                "Internal extensions cannot subscribe to SHUTDOWN",
            ));
        }
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        self.registered.push(Extension {
            id: id.clone(),
            name: name.to_owned(),
            external,
            invoke: events.contains(&EventType::Invoke),
            shutdown,
            waiter: None,
            queued: VecDeque::new(),
            ready: false,
            exit_error: None,
        });
        Ok(id)
    }

    fn find(&mut self, id: &str) -> Result<&mut Extension, ExtensionRefusal> {
        self.registered
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| {
                ExtensionRefusal::new(
                    "Extension.UnknownExtensionIdentifier",
                    "Unknown extension identifier",
                )
            })
    }

    /// Extension `id` called `event/next`.
    pub(crate) fn next(&mut self, id: &str) -> Result<ExtensionNext, ExtensionRefusal> {
        let extension = self.find(id)?;
        if let Some(event) = extension.queued.pop_front() {
            return Ok(ExtensionNext::Deliver(event));
        }
        let (tx, rx) = oneshot::channel();
        extension.waiter = Some(tx);
        extension.ready = true;
        Ok(ExtensionNext::Wait(rx))
    }

    /// Hands `event` to one extension: to its waiting `next`, or queued for its next call.
    fn deliver(extension: &mut Extension, event: Event) {
        extension.ready = false;
        let event = match extension.waiter.take() {
            Some(waiter) => match waiter.send(event) {
                Ok(()) => return,
                // Its `next` went away (a client timeout): keep the event for the next call.
                Err(event) => event,
            },
            None => event,
        };
        extension.queued.push_back(event);
    }

    /// An invocation started: every `INVOKE` subscriber gets `event`.
    pub(crate) fn invoke(&mut self, event: &Event) {
        for extension in self.registered.iter_mut().filter(|e| e.invoke) {
            Self::deliver(extension, event.clone());
        }
    }

    /// The sandbox shuts down: every `SHUTDOWN` subscriber gets `event`. Returns the names of
    /// the external extensions that did not subscribe (they are killed at once).
    pub(crate) fn shutdown(&mut self, event: &Event) -> Vec<String> {
        let mut unsubscribed = Vec::new();
        for extension in &mut self.registered {
            if extension.shutdown {
                Self::deliver(extension, event.clone());
            } else if extension.external {
                unsubscribed.push(extension.name.clone());
            }
        }
        unsubscribed
    }

    /// Extension `id` reported `exit/error` with `error_type`.
    pub(crate) fn exit_error(
        &mut self,
        id: &str,
        error_type: String,
    ) -> Result<(), ExtensionRefusal> {
        self.find(id)?.exit_error = Some(error_type);
        Ok(())
    }

    /// The name extension `id` registered with.
    pub(crate) fn name_of(&mut self, id: &str) -> Result<String, ExtensionRefusal> {
        self.find(id).map(|e| e.name.clone())
    }

    /// Every registered extension's name and the events it subscribed to, as
    /// `platform.extension` reports them.
    pub(crate) fn states(&self) -> Vec<(String, Vec<String>)> {
        self.registered
            .iter()
            .map(|e| {
                let events = [(e.invoke, "INVOKE"), (e.shutdown, "SHUTDOWN")]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, name)| name.to_owned())
                    .collect();
                (e.name.clone(), events)
            })
            .collect()
    }

    /// Checks that `id` is registered.
    pub(crate) fn check(&mut self, id: &str) -> Result<(), ExtensionRefusal> {
        self.find(id).map(|_| ())
    }

    /// The error type the external extension named `name` reported before exiting, if any.
    pub(crate) fn exit_error_of(&self, name: &str) -> Option<String> {
        self.registered
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.exit_error.clone())
    }

    /// The sandbox is gone: waiting `next` calls are answered with an error.
    pub(crate) fn close(&mut self) {
        for extension in &mut self.registered {
            extension.waiter = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke_event() -> Event {
        Event::Invoke {
            deadline_ms: 1,
            request_id: "r".into(),
            invoked_function_arn: "arn".into(),
            tracing: None,
        }
    }

    #[test]
    fn init_waits_for_every_external_extension() {
        let mut exts = Extensions::expecting(vec!["a".into(), "b".into()]);
        assert!(!exts.all_registered());
        let a = exts.register("a", &[EventType::Invoke]).unwrap_or_default();
        assert!(!exts.all_registered());
        let b = exts.register("b", &[]).unwrap_or_default();
        assert!(exts.all_registered());
        assert!(!exts.all_ready());
        assert!(matches!(exts.next(&a), Ok(ExtensionNext::Wait(_))));
        assert!(!exts.all_ready());
        let _b_waits = exts.next(&b);
        assert!(exts.all_ready());
    }

    #[test]
    fn an_invoke_reaches_subscribers_and_keeps_them_busy_until_next() {
        let mut exts = Extensions::expecting(vec!["a".into(), "b".into()]);
        let a = exts.register("a", &[EventType::Invoke]).unwrap_or_default();
        let b = exts
            .register("b", &[EventType::Shutdown])
            .unwrap_or_default();
        let Ok(ExtensionNext::Wait(mut a_waits)) = exts.next(&a) else {
            panic!("a should wait");
        };
        let _b_waits = exts.next(&b);
        exts.invoke(&invoke_event());
        assert_eq!(a_waits.try_recv().ok(), Some(invoke_event()));
        assert!(!exts.all_ready(), "a has not called next again");
        let _a_waits = exts.next(&a);
        assert!(exts.all_ready());
    }

    #[test]
    fn an_event_for_an_extension_not_waiting_is_queued() {
        let mut exts = Extensions::expecting(vec!["a".into()]);
        let a = exts.register("a", &[EventType::Invoke]).unwrap_or_default();
        exts.invoke(&invoke_event());
        assert!(matches!(exts.next(&a), Ok(ExtensionNext::Deliver(e)) if e == invoke_event()));
    }

    #[test]
    fn misuse_is_refused_with_rapids_error_types() {
        let mut exts = Extensions::expecting(vec!["a".into()]);
        let refused = |r: Result<String, ExtensionRefusal>| r.err().map(|e| e.error_type);
        assert_eq!(
            refused(exts.register("", &[])),
            Some("Extension.InvalidExtensionName")
        );
        assert_eq!(
            refused(exts.register("internal", &[EventType::Shutdown])),
            Some("Extension.InvalidEventType")
        );
        assert!(exts.register("internal", &[EventType::Invoke]).is_ok());
        assert!(!exts.all_registered(), "a is still expected");
        for i in 0..9 {
            assert!(
                exts.register(&format!("x{i}"), &[]).is_ok(),
                "extension {i}"
            );
        }
        assert_eq!(
            refused(exts.register("eleven", &[])),
            Some("Extension.TooManyExtensions")
        );
        assert_eq!(
            exts.next("nope").err().map(|e| e.error_type),
            Some("Extension.UnknownExtensionIdentifier")
        );
    }

    #[test]
    fn shutdown_goes_to_subscribers_and_names_the_rest() {
        let mut exts = Extensions::expecting(vec!["a".into(), "b".into()]);
        let a = exts
            .register("a", &[EventType::Shutdown])
            .unwrap_or_default();
        let _ = exts.register("b", &[]);
        let event = Event::Shutdown {
            shutdown_reason: coldstart_protocol::extension::ShutdownReason::Spindown,
            deadline_ms: 2,
        };
        assert_eq!(exts.shutdown(&event), ["b".to_owned()]);
        assert!(matches!(exts.next(&a), Ok(ExtensionNext::Deliver(e)) if e == event));
    }
}

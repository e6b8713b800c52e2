//! The one thing the WebSocket front door needs from the emulator: invoke a function with an
//! event and get its answer. It is a crate-private trait so that the session logic can be unit
//! tested against a scripted backend; [`Emulator`] is the only implementation users see.

use std::future::Future;

use bytes::Bytes;
use coldstart_emulator::auth::Invoker;
use coldstart_emulator::{Emulator, InvokeError, InvokeRequest, Outcome};
use coldstart_protocol::{InvocationType, limits};

/// How an invocation ended, as the WebSocket front door cares about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The function answered these bytes.
    Response(Bytes),
    /// The function failed (reported an error, crashed, timed out); the error type says how.
    Failed(String),
    /// Refused before the function ran: every sandbox busy at the concurrency limit.
    Throttled,
    /// Refused before the function ran for another reason (e.g. the emulator is shutting down).
    Refused(String),
}

/// Something that runs functions.
pub(crate) trait Backend: Invoker + Clone + Send + Sync + 'static {
    /// The region and account of method ARNs.
    fn arn_scope(&self) -> (String, String);

    /// Invokes `function` synchronously with `event` (JSON bytes).
    fn invoke(&self, function: &str, event: Vec<u8>) -> impl Future<Output = Answer> + Send;

    /// Hands `function` an `event` whose answer nobody waits for (`$disconnect`): it is queued
    /// until a sandbox is free rather than throttled, so that it runs however many
    /// connections end at once. `Response` means accepted.
    fn notify(&self, function: &str, event: Vec<u8>) -> impl Future<Output = Answer> + Send;
}

impl Backend for Emulator {
    fn arn_scope(&self) -> (String, String) {
        let settings = self.settings();
        (settings.region.clone(), settings.account_id.clone())
    }

    async fn invoke(&self, function: &str, event: Vec<u8>) -> Answer {
        let request = InvokeRequest {
            payload: Bytes::from(event),
            serialized: true,
            ..InvokeRequest::default()
        };
        match Emulator::invoke(self, function, request).await {
            Ok(response) => match response
                .buffered(limits::MAX_RUNTIME_RESPONSE)
                .await
                .outcome
            {
                Outcome::Response { body, .. } => Answer::Response(body),
                Outcome::FunctionError { error_type, .. } => Answer::Failed(error_type),
                // `buffered` reads streams whole; only `Event` and `DryRun` invocations end
                // otherwise, and this one is synchronous.
                _ => Answer::Response(Bytes::new()),
            },
            Err(InvokeError::Throttled) => Answer::Throttled,
            Err(err) => Answer::Refused(err.to_string()),
        }
    }

    async fn notify(&self, function: &str, event: Vec<u8>) -> Answer {
        // An `Event` invocation: the emulator queues it for a free sandbox, and its shutdown
        // runs it (a `$disconnect` is caused by the stop; keeping it for the next start would
        // leave the connection's records behind until then).
        let request = InvokeRequest {
            payload: Bytes::from(event),
            invocation_type: InvocationType::Event,
            run_before_stop: true,
            serialized: true,
            ..InvokeRequest::default()
        };
        match Emulator::invoke(self, function, request).await {
            Ok(_) => Answer::Response(Bytes::new()),
            Err(InvokeError::Throttled) => Answer::Throttled,
            Err(err) => Answer::Refused(err.to_string()),
        }
    }
}

/// A scripted backend for unit tests.
#[cfg(test)]
pub(crate) mod script {
    use serde_json::Value;
    use tokio::sync::mpsc;

    use super::{Answer, Backend};

    /// Records every event it is invoked with and answers with `answer(event)`.
    #[derive(Debug, Clone)]
    pub(crate) struct Script {
        pub(crate) calls: mpsc::UnboundedSender<Value>,
        pub(crate) answer: fn(&Value) -> Answer,
    }

    impl Script {
        /// A script answering with `answer`, and the receiver of the events it gets.
        pub(crate) fn new(answer: fn(&Value) -> Answer) -> (Self, mpsc::UnboundedReceiver<Value>) {
            let (calls, rx) = mpsc::unbounded_channel();
            (Script { calls, answer }, rx)
        }
    }

    impl coldstart_emulator::auth::Invoker for Script {
        async fn run(
            &self,
            _function: &str,
            payload: bytes::Bytes,
        ) -> coldstart_emulator::auth::Invoked {
            let event: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            match (self.answer)(&event) {
                Answer::Response(body) => coldstart_emulator::auth::Invoked::Answer(body),
                Answer::Failed(t) => {
                    coldstart_emulator::auth::Invoked::Error(bytes::Bytes::from(t))
                }
                other => coldstart_emulator::auth::Invoked::Refused(format!("{other:?}")),
            }
        }
    }

    impl Backend for Script {
        fn arn_scope(&self) -> (String, String) {
            ("us-east-1".into(), "123456789012".into())
        }

        async fn invoke(&self, _function: &str, event: Vec<u8>) -> Answer {
            let event: Value = serde_json::from_slice(&event).unwrap_or(Value::Null);
            let answer = (self.answer)(&event);
            // The event is recorded before the answer is returned: once an invocation has
            // returned, its event is in the channel.
            let _ = self.calls.send(event);
            answer
        }

        async fn notify(&self, function: &str, event: Vec<u8>) -> Answer {
            self.invoke(function, event).await
        }
    }
}

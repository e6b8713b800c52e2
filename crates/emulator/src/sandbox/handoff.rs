//! What a sandbox's state machine ([`super::state`]) and its slots of a multi-concurrent
//! environment ([`super::slots`]) hand to the Runtime API and take from it: the vocabulary both
//! share, apart from either, so that neither imports the other's types.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::invocation::{Invocation, InvokeResponse, StreamItem};

/// An invocation handed to a waiting `next`, with its deadline.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) invocation: Arc<Invocation>,
    pub(crate) deadline_ms: u64,
}

/// What the Runtime API should do with a `next` call.
pub(crate) enum NextAction {
    /// Hold the request open until an invocation arrives (or the sandbox dies: `Err`).
    Wait(oneshot::Receiver<Delivery>),
    /// Answer at once: an invocation was assigned while no `next` was waiting.
    Deliver(Delivery),
    /// Refuse: the runtime called `next` in a state that forbids it.
    Refuse(Refusal),
}

/// A Runtime API call that the sandbox's state forbids, answered as rapid answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 400 `InvalidRequestID`: the id is not the current invocation's.
    InvalidRequestId,
    /// 403 `InvalidStateTransition`.
    InvalidStateTransition {
        from: &'static str,
        to: &'static str,
    },
    /// 410 `InvokeTimeout`: the invocation already timed out.
    InvokeTimeout,
    /// 500: the sandbox is gone.
    Gone,
}

/// The invocation a sandbox is running.
pub(crate) struct Running {
    pub(crate) invocation: Arc<Invocation>,
    pub(crate) deadline_ms: u64,
    /// When the deadline passes, for a streamed answer (the sandbox then keeps the time).
    pub(crate) deadline: Instant,
    /// The runtime has received it from `next`.
    pub(crate) delivered: bool,
    pub(crate) started: Instant,
    /// `started` on the wall clock, for the spans of `platform.runtimeDone`.
    pub(crate) started_at: SystemTime,
    /// Init duration to report, on a cold start.
    pub(crate) init: Option<Duration>,
    /// Where the answer goes.
    pub(crate) answer: Answer,
}

/// Where an invocation's answer goes.
pub(crate) enum Answer {
    /// The caller waits on the other end for the whole answer; dropping it unanswered is a bug.
    Pending(oneshot::Sender<InvokeResponse>),
    /// The answer is being streamed to the caller by the Runtime API handler, which waits on
    /// the other end of `abort` for an end forced by the deadline or the runtime's death.
    Streaming {
        abort: oneshot::Sender<StreamItem>,
        /// The stream's deadline task waits on the other end; dropping this stops it.
        _deadline: oneshot::Sender<()>,
    },
}

//! The invocations of a multi-concurrent execution environment (Lambda Managed Instances'
//! `PerExecutionEnvironmentMaxConcurrency` above 1), as a value: up to `max` of them at once,
//! each tied to its own `next` by request id, each with its own deadline.
//!
//! It is what [`super::state::Phase::Serving`] holds once init is over, apart from the
//! one-at-a-time phases so that those stay exactly as they were. As in Lambda Managed Instances,
//! the environment is never frozen between invocations, and a timeout fails only its own
//! invocation: Lambda does not stop the code, so the worker that runs it stays busy (its slot
//! taken) until it answers late (410) and calls `next` again.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::sync::oneshot;

use super::handoff::{Delivery, NextAction, Refusal, Running};

/// The in-flight invocations of one multi-concurrent sandbox.
pub(crate) struct Slots {
    /// Most invocations at once (`AWS_LAMBDA_MAX_CONCURRENCY`).
    max: usize,
    /// Every invocation in flight, by request id, delivered to a `next` or not yet.
    running: HashMap<String, Running>,
    /// Request ids assigned while no `next` waited, oldest first.
    undelivered: VecDeque<String>,
    /// `next` calls waiting for work, oldest first. Each receiver is held by a Runtime API
    /// handler; dropping a sender answers its `next` with an error (the sandbox is gone).
    waiters: VecDeque<oneshot::Sender<Delivery>>,
    /// Invocations answered with a timeout whose worker still runs them: a late answer gets 410
    /// and frees the worker's slot.
    overdue: HashSet<String>,
}

impl Slots {
    /// Init is over with the runtime's workers already waiting in `waiters`.
    pub(crate) fn new(
        max: usize,
        waiters: impl IntoIterator<Item = oneshot::Sender<Delivery>>,
    ) -> Self {
        Self {
            max,
            running: HashMap::new(),
            undelivered: VecDeque::new(),
            waiters: waiters.into_iter().filter(|w| !w.is_closed()).collect(),
            overdue: HashSet::new(),
        }
    }

    /// How many invocations are in flight (overdue ones included: their workers are busy).
    pub(crate) fn busy(&self) -> usize {
        self.running.len() + self.overdue.len()
    }

    /// Whether it takes another invocation.
    pub(crate) fn has_room(&self) -> bool {
        self.busy() < self.max
    }

    /// A worker called `next`: the oldest undelivered invocation, or a wait. A `next` beyond
    /// `max` outstanding workers is refused, as the one-at-a-time Runtime API refuses a second.
    pub(crate) fn next(&mut self) -> NextAction {
        if let Some(id) = self.undelivered.pop_front()
            && let Some(running) = self.running.get_mut(&id)
        {
            running.delivered = true;
            return NextAction::Deliver(Delivery {
                invocation: running.invocation.clone(),
                deadline_ms: running.deadline_ms,
            });
        }
        // A worker whose connection went away left its sender closed.
        self.waiters.retain(|w| !w.is_closed());
        let working = self.running.values().filter(|r| r.delivered).count() + self.overdue.len();
        if working + self.waiters.len() >= self.max {
            return NextAction::Refuse(Refusal::InvalidStateTransition {
                from: "Running",
                to: "Ready",
            });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push_back(tx);
        NextAction::Wait(rx)
    }

    /// Assigns `running` to the first waiting worker, or keeps it for the next `next`; gives it
    /// back when every slot is taken.
    pub(crate) fn dispatch(&mut self, mut running: Running) -> Result<(), Running> {
        if !self.has_room() {
            return Err(running);
        }
        let delivery = Delivery {
            invocation: running.invocation.clone(),
            deadline_ms: running.deadline_ms,
        };
        while let Some(waiter) = self.waiters.pop_front() {
            if waiter.send(delivery.clone()).is_ok() {
                running.delivered = true;
                break;
            }
        }
        let id = running.invocation.request_id.clone();
        if !running.delivered {
            self.undelivered.push_back(id.clone());
        }
        self.running.insert(id, running);
        Ok(())
    }

    /// May the runtime answer `request_id` now?
    pub(crate) fn answerable(&self, request_id: &str) -> Result<(), Refusal> {
        match self.running.get(request_id) {
            Some(r) if r.delivered => Ok(()),
            _ if self.overdue.contains(request_id) => Err(Refusal::InvokeTimeout),
            _ => Err(Refusal::InvalidRequestId),
        }
    }

    /// The delivered invocation `request_id`, to change how it is answered.
    pub(crate) fn delivered_mut(&mut self, request_id: &str) -> Result<&mut Running, Refusal> {
        self.answerable(request_id)?;
        self.running
            .get_mut(request_id)
            .ok_or(Refusal::InvalidRequestId)
    }

    /// Takes invocation `request_id` out: it was answered.
    pub(crate) fn take(&mut self, request_id: &str) -> Option<Running> {
        self.running.remove(request_id)
    }

    /// The deadline of `request_id` passed: it is taken out to be answered with the timeout.
    /// The flag says whether its slot is free at once (no worker had it yet); otherwise the
    /// worker keeps it until it answers late.
    pub(crate) fn time_out(&mut self, request_id: &str) -> Option<(Running, bool)> {
        let running = self.running.remove(request_id)?;
        if running.delivered {
            self.overdue.insert(request_id.to_owned());
            Some((running, false))
        } else {
            self.undelivered.retain(|id| id != request_id);
            Some((running, true))
        }
    }

    /// A worker answered its overdue invocation `request_id`: true when that frees its slot.
    pub(crate) fn release_overdue(&mut self, request_id: &str) -> bool {
        self.overdue.remove(request_id)
    }

    /// Every invocation in flight, taken out (the runtime is gone); the waiting workers are let
    /// go with the slots.
    pub(crate) fn drain(&mut self) -> Vec<Running> {
        self.waiters.clear();
        self.undelivered.clear();
        self.running.drain().map(|(_, r)| r).collect()
    }
}

//! What a multi-concurrent sandbox (`max_concurrency` above 1) does beside the one-at-a-time
//! path: each answer frees a slot at once (the worker calls `next` on its own time), a timeout
//! fails only its own invocation, and a late answer to an overdue one frees its worker's slot.
//!
//! Kept apart so that the one-at-a-time path (`mod.rs`, `exit.rs`) only gains a branch.

use std::sync::Arc;

use super::{Fact, Refusal, Sandbox};

impl Sandbox {
    /// Whether it runs several invocations at once.
    pub(crate) fn is_concurrent(&self) -> bool {
        self.spec.config.max_concurrency > 1
    }

    /// An invocation was answered: in a multi-concurrent sandbox its slot is free now.
    pub(super) fn slot_freed(self: &Arc<Self>) {
        if self.is_concurrent() {
            self.tell(Fact::Ready);
        }
    }

    /// A refused answer: when it is a worker's late answer to its overdue invocation, that
    /// worker is free again, and so is its slot.
    pub(super) fn late_answer(self: &Arc<Self>, request_id: &str, refusal: &Refusal) {
        if *refusal == Refusal::InvokeTimeout && self.lock().release_overdue(request_id) {
            self.tell(Fact::Responded);
            self.tell(Fact::Ready);
        }
    }

    /// The deadline of `request_id` passed in a multi-concurrent sandbox: that invocation alone
    /// is answered `Sandbox.Timedout`; the environment and its other invocations go on. Lambda
    /// Managed Instances do not stop the timed-out code: its worker keeps its slot until it
    /// answers (then 410) and calls `next` again.
    pub(super) fn time_out_one(self: &Arc<Self>, request_id: &str) {
        let Some((running, free)) = self.lock().time_out_one(request_id) else {
            return;
        };
        self.answer_timed_out(running);
        if free {
            self.tell(Fact::Responded);
            self.tell(Fact::Ready);
        }
    }
}

//! The scheduler of one function: which sandbox takes the next invocation.
//!
//! A pool counts every live sandbox against the function's concurrency. An invocation takes an
//! idle sandbox (warm); or waits for a sandbox that has already answered and only has to call
//! `next` again (microseconds for most runtimes, far less than a cold start); or takes a slot to
//! start a new sandbox (cold). Only when every slot is starting or busy is a synchronous
//! invocation throttled (429), as Lambda does; asynchronous (`Event`) invocations queue instead.
//!
//! A multi-concurrent function (`max_concurrency` N above 1) counts invocation slots instead of
//! sandboxes: a sandbox holds one slot while it starts, takes up to N-1 more once it is ready
//! (as many as the limit leaves), and each free slot is one entry in the idle list. While one
//! starts, callers wait for the slots it is about to open rather than start sandboxes of their
//! own, so that a burst lands in one environment.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::sandbox::{Sandbox, Vacated};

/// What an invocation gets from the pool.
#[derive(Debug)]
pub(crate) enum Grant {
    /// An idle sandbox, already taken out of the pool.
    Warm(Arc<Sandbox>),
    /// A reserved slot: start a new sandbox with it.
    Cold,
}

/// The answer to [`Pool::acquire`].
#[derive(Debug)]
pub(crate) enum Acquire {
    /// Go ahead.
    Now(Grant),
    /// Wait for a sandbox or a slot (the sender is dropped if the pool closes), then, if none
    /// came, do as `then` says.
    Wait {
        grant: oneshot::Receiver<Grant>,
        then: Fallback,
    },
    /// Every slot is busy: 429.
    Throttled,
    /// The emulator is shutting down.
    Closed,
}

/// What a waiting invocation does if nothing is granted in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// Wait as long as it takes (a finishing sandbox is about to be free; an `Event` queues).
    Block,
    /// A slot was free too: after this long, ask again impatiently and start a sandbox.
    StartAfter(Duration),
    /// Every sandbox is busy: after this long, throttle (429).
    ThrottleAfter(Duration),
}

impl Fallback {
    /// How long to wait before falling back; `None`: for as long as it takes.
    pub(crate) fn patience(self) -> Option<Duration> {
        match self {
            Fallback::Block => None,
            Fallback::StartAfter(d) | Fallback::ThrottleAfter(d) => Some(d),
        }
    }
}

/// Which waiting line an invocation stands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// A caller is waiting: never queue behind busy sandboxes.
    Sync,
    /// An `Event` invocation: queue until capacity frees up.
    Async,
}

/// How long an invocation waits for a sandbox that answered to call `next` again before it
/// starts a new sandbox instead (when a slot is free). A runtime normally calls `next` within
/// microseconds (a shell runtime: a few milliseconds); a cold start costs more.
pub(crate) const FINISHING_PATIENCE: Duration = Duration::from_millis(50);

/// The sandboxes of one function.
#[derive(Debug)]
pub(crate) struct Pool {
    limit: usize,
    /// Invocations one sandbox runs at once (`max_concurrency`); above 1, `limit` counts slots.
    per_sandbox: usize,
    /// How long a synchronous invocation at the limit waits for a busy sandbox before 429.
    throttle_after: Duration,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Idle sandboxes, most recently used last (taken first: it is the warmest).
    idle: Vec<Arc<Sandbox>>,
    /// Sandboxes counted against the limit: starting, busy, finishing and idle.
    live: usize,
    /// Sandboxes that answered and have not called `next` yet.
    finishing: usize,
    /// Synchronous invocations waiting for a finishing sandbox; at most `finishing` of them.
    /// Each receiver is held by an invocation; a dropped one is skipped.
    sync_waiters: VecDeque<oneshot::Sender<Grant>>,
    /// Asynchronous invocations waiting for any capacity.
    async_waiters: VecDeque<oneshot::Sender<Grant>>,
    closed: bool,
    /// Multi-concurrent only: slots that starting sandboxes will open once ready.
    promised: usize,
    /// Multi-concurrent only: the slots each ready sandbox holds (by sandbox id), counted in
    /// `live`, given back when it dies.
    slots: HashMap<u64, usize>,
}

impl Pool {
    /// A pool that runs at most `limit` sandboxes at once; at the limit a synchronous
    /// invocation waits up to `throttle_after` for one to free up before it is throttled.
    pub(crate) fn new(limit: usize, throttle_after: Duration) -> Self {
        Self {
            limit,
            per_sandbox: 1,
            throttle_after,
            state: Mutex::new(PoolState::default()),
        }
    }

    /// The same pool for sandboxes that each run up to `n` invocations at once: the limit then
    /// counts invocation slots.
    pub(crate) fn per_sandbox(mut self, n: usize) -> Self {
        self.per_sandbox = n.max(1);
        self
    }

    /// The slots a starting sandbox will open beside its first.
    fn promise(&self) -> usize {
        self.per_sandbox - 1
    }

    /// Takes a sandbox or a slot for one invocation. A `patient` caller would rather wait for
    /// a finishing sandbox than start a new one.
    pub(crate) fn acquire(&self, urgency: Urgency, patient: bool) -> Acquire {
        let mut st = self.lock();
        if st.closed {
            return Acquire::Closed;
        }
        if let Some(sandbox) = st.idle.pop() {
            return Acquire::Now(Grant::Warm(sandbox));
        }
        let slot_free = st.live < self.limit;
        let finishing_free = st.sync_waiters.len() < st.finishing + st.promised;
        if slot_free && !(patient && finishing_free) {
            st.live += 1;
            st.promised += self.promise();
            return Acquire::Now(Grant::Cold);
        }
        let (tx, grant) = oneshot::channel();
        let then = match urgency {
            // A starting multi-concurrent sandbox will open a slot for this caller.
            Urgency::Sync if st.sync_waiters.len() < st.promised => Fallback::Block,
            Urgency::Sync if finishing_free && slot_free => {
                Fallback::StartAfter(FINISHING_PATIENCE)
            }
            Urgency::Sync if finishing_free => Fallback::Block,
            Urgency::Sync if !self.throttle_after.is_zero() => {
                Fallback::ThrottleAfter(self.throttle_after)
            }
            Urgency::Sync => return Acquire::Throttled,
            Urgency::Async => Fallback::Block,
        };
        match urgency {
            Urgency::Sync => st.sync_waiters.push_back(tx),
            Urgency::Async => st.async_waiters.push_back(tx),
        }
        Acquire::Wait { grant, then }
    }

    /// An idle sandbox, if one is waiting (the warmest), unless the pool is closed.
    pub(crate) fn take_warm(&self) -> Option<Arc<Sandbox>> {
        let mut st = self.lock();
        if st.closed {
            return None;
        }
        st.idle.pop()
    }

    /// Gives back a slot reserved by [`Acquire`] but never used for a sandbox.
    pub(crate) fn release_slot(&self) {
        let mut st = self.lock();
        st.live -= 1;
        st.promised = st.promised.saturating_sub(self.promise());
        self.offer_slot(&mut st);
    }

    /// A multi-concurrent `sandbox` is ready beside the invocation it was started for: it takes
    /// up to `more` slots, as many as the limit leaves, each handed to a waiter or kept idle.
    pub(crate) fn open(&self, sandbox: &Arc<Sandbox>, more: usize) {
        let mut st = self.lock();
        st.promised = st.promised.saturating_sub(more);
        let granted = more.min(self.limit.saturating_sub(st.live));
        if st.closed {
            return;
        }
        st.live += granted;
        st.slots.insert(sandbox.id, 1 + granted);
        for _ in 0..granted {
            Self::hand_over(&mut st, sandbox.clone());
        }
    }

    /// A sandbox answered its invocation and will call `next` soon.
    pub(crate) fn on_responded(&self) {
        self.lock().finishing += 1;
    }

    /// A sandbox that had answered called `next`: hand it to a waiter or park it. Returns true
    /// when it was parked idle (the caller may freeze it).
    pub(crate) fn on_ready(&self, sandbox: Arc<Sandbox>) -> bool {
        let mut st = self.lock();
        st.finishing -= 1;
        Self::hand_over(&mut st, sandbox)
    }

    /// Gives `sandbox` to the first waiter still waiting, or parks it idle; true when parked.
    fn hand_over(st: &mut PoolState, sandbox: Arc<Sandbox>) -> bool {
        let mut sandbox = sandbox;
        loop {
            let waiter = match st.sync_waiters.pop_front() {
                Some(w) => w,
                None => match st.async_waiters.pop_front() {
                    Some(w) => w,
                    None => break,
                },
            };
            match waiter.send(Grant::Warm(sandbox)) {
                Ok(()) => return false,
                Err(Grant::Warm(back)) => sandbox = back,
                Err(Grant::Cold) => return false,
            }
        }
        if st.closed {
            return false;
        }
        st.idle.push(sandbox);
        true
    }

    /// A sandbox that had answered called `next`, but is to be stopped rather than reused (its
    /// function was replaced): it no longer counts as finishing.
    pub(crate) fn on_retired(&self) {
        self.lock().finishing -= 1;
    }

    /// Takes `sandbox` out of the idle list (to stop it); false when it was granted meanwhile.
    pub(crate) fn take_idle(&self, sandbox: &Sandbox) -> bool {
        let mut st = self.lock();
        let before = st.idle.len();
        st.idle.retain(|s| !std::ptr::eq(Arc::as_ptr(s), sandbox));
        st.idle.len() != before
    }

    /// Takes every idle sandbox out of the idle list (to stop them).
    pub(crate) fn take_all_idle(&self) -> Vec<Arc<Sandbox>> {
        let mut idle = std::mem::take(&mut self.lock().idle);
        // A multi-concurrent sandbox is in the list once per free slot.
        let mut seen = std::collections::HashSet::new();
        idle.retain(|s| seen.insert(Arc::as_ptr(s)));
        idle
    }

    /// A sandbox died; `vacated` is the state it was in.
    pub(crate) fn on_dead(&self, sandbox: &Sandbox, vacated: Vacated) {
        let mut st = self.lock();
        if self.per_sandbox > 1 {
            // Its free slots leave the idle list; all its slots are given back, and a sandbox
            // that died starting breaks its promise.
            st.idle.retain(|s| !std::ptr::eq(Arc::as_ptr(s), sandbox));
            let held = match st.slots.remove(&sandbox.id) {
                Some(held) => held,
                None => {
                    st.promised = st.promised.saturating_sub(self.promise());
                    1
                }
            };
            if vacated == Vacated::Finishing {
                st.finishing -= 1;
            }
            st.live -= held;
            for _ in 0..held {
                self.offer_slot(&mut st);
            }
            return;
        }
        st.live -= 1;
        match vacated {
            Vacated::Idle => st.idle.retain(|s| !std::ptr::eq(Arc::as_ptr(s), sandbox)),
            Vacated::Finishing => st.finishing -= 1,
            Vacated::Other | Vacated::Serving => {}
        }
        self.offer_slot(&mut st);
    }

    /// Closes the pool: no more invocations; waiting ones are released with nothing.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.idle.clear();
        // Dropping the senders tells every waiter the pool is closed.
        st.sync_waiters.clear();
        st.async_waiters.clear();
    }

    /// A slot opened: give it to the first waiter still waiting.
    fn offer_slot(&self, st: &mut PoolState) {
        if st.closed {
            return;
        }
        while let Some(waiter) = st
            .sync_waiters
            .pop_front()
            .or_else(|| st.async_waiters.pop_front())
        {
            st.live += 1;
            if waiter.send(Grant::Cold).is_ok() {
                st.promised += self.promise();
                return;
            }
            st.live -= 1;
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_sync_only_when_no_sandbox_is_finishing() {
        let pool = Pool::new(1, Duration::ZERO);
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Now(Grant::Cold)
        ));
        // The only sandbox is starting or busy: a second caller is throttled.
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Throttled
        ));
        // Once it answered, a caller may wait for its `next`.
        pool.on_responded();
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Wait {
                then: Fallback::Block,
                ..
            }
        ));
        // But only one caller per finishing sandbox.
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Throttled
        ));
        // Async invocations always queue.
        assert!(matches!(
            pool.acquire(Urgency::Async, true),
            Acquire::Wait { .. }
        ));
    }

    #[test]
    fn at_the_limit_a_caller_waits_a_little_before_it_is_throttled() {
        let pool = Pool::new(1, Duration::from_millis(10));
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Now(Grant::Cold)
        ));
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Wait {
                then: Fallback::ThrottleAfter(_),
                ..
            }
        ));
    }

    #[test]
    fn a_patient_caller_waits_for_a_finishing_sandbox_before_starting_one() {
        let pool = Pool::new(2, Duration::ZERO);
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Now(Grant::Cold)
        ));
        pool.on_responded();
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Wait {
                then: Fallback::StartAfter(_),
                ..
            }
        ));
        // An impatient one starts a sandbox with the free slot.
        assert!(matches!(
            pool.acquire(Urgency::Sync, false),
            Acquire::Now(Grant::Cold)
        ));
    }

    #[test]
    fn a_released_slot_goes_to_a_waiter() {
        let pool = Pool::new(1, Duration::ZERO);
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Now(Grant::Cold)
        ));
        let Acquire::Wait { grant: mut rx, .. } = pool.acquire(Urgency::Async, true) else {
            panic!("async invocations queue");
        };
        pool.release_slot();
        assert!(matches!(rx.try_recv(), Ok(Grant::Cold)));
        // The slot now belongs to the waiter: nobody else gets one.
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Throttled
        ));
    }

    #[test]
    fn callers_wait_for_the_slots_a_starting_concurrent_sandbox_will_open() {
        // Eight at once per sandbox: the first caller starts one, the next seven wait for its
        // slots instead of starting seven more.
        let pool = Pool::new(10, Duration::ZERO).per_sandbox(8);
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Now(Grant::Cold)
        ));
        let mut waiting = Vec::new();
        for _ in 0..7 {
            let Acquire::Wait {
                grant,
                then: Fallback::Block,
            } = pool.acquire(Urgency::Sync, true)
            else {
                panic!("a caller waits for a promised slot");
            };
            waiting.push(grant);
        }
        // The eighth waiting caller has no promised slot: an impatient one starts a sandbox.
        assert!(matches!(
            pool.acquire(Urgency::Sync, false),
            Acquire::Now(Grant::Cold)
        ));
        // A failed start breaks its promise and gives its slot to the first waiter, whose own
        // start promises slots for the others again.
        pool.release_slot();
        assert!(matches!(waiting[0].try_recv(), Ok(Grant::Cold)));
        assert!(waiting[1].try_recv().is_err());
        let st = pool.lock();
        assert_eq!(st.promised, 14);
        assert_eq!(st.live, 2);
    }

    #[test]
    fn one_at_a_time_pools_promise_nothing() {
        let pool = Pool::new(2, Duration::ZERO);
        let _ = pool.acquire(Urgency::Sync, true);
        assert_eq!(pool.lock().promised, 0);
        assert!(matches!(
            pool.acquire(Urgency::Sync, true),
            Acquire::Now(Grant::Cold)
        ));
    }

    #[test]
    fn closing_releases_waiters() {
        let pool = Pool::new(1, Duration::ZERO);
        let _ = pool.acquire(Urgency::Sync, true);
        let Acquire::Wait { grant: mut rx, .. } = pool.acquire(Urgency::Async, true) else {
            panic!("async invocations queue");
        };
        pool.close();
        assert!(rx.try_recv().is_err());
        assert!(matches!(pool.acquire(Urgency::Sync, true), Acquire::Closed));
    }
}

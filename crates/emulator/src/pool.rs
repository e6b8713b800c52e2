//! The scheduler of one function: which sandbox takes the next invocation.
//!
//! A pool counts every live sandbox against the function's concurrency. An invocation takes an
//! idle sandbox (warm); or waits for a sandbox that has already answered and only has to call
//! `next` again (microseconds for most runtimes, far less than a cold start); or takes a slot to
//! start a new sandbox (cold). Only when every slot is starting or busy is a synchronous
//! invocation throttled (429), as Lambda does; asynchronous (`Event`) invocations queue instead.

use std::collections::VecDeque;
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
}

impl Pool {
    /// A pool that runs at most `limit` sandboxes at once; at the limit a synchronous
    /// invocation waits up to `throttle_after` for one to free up before it is throttled.
    pub(crate) fn new(limit: usize, throttle_after: Duration) -> Self {
        Self {
            limit,
            throttle_after,
            state: Mutex::new(PoolState::default()),
        }
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
        let finishing_free = st.sync_waiters.len() < st.finishing;
        if slot_free && !(patient && finishing_free) {
            st.live += 1;
            return Acquire::Now(Grant::Cold);
        }
        let (tx, grant) = oneshot::channel();
        let then = match urgency {
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
        Self::offer_slot(&mut st);
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
        std::mem::take(&mut self.lock().idle)
    }

    /// A sandbox died; `vacated` is the state it was in.
    pub(crate) fn on_dead(&self, sandbox: &Sandbox, vacated: Vacated) {
        let mut st = self.lock();
        st.live -= 1;
        match vacated {
            Vacated::Idle => st.idle.retain(|s| !std::ptr::eq(Arc::as_ptr(s), sandbox)),
            Vacated::Finishing => st.finishing -= 1,
            Vacated::Other => {}
        }
        Self::offer_slot(&mut st);
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
    fn offer_slot(st: &mut PoolState) {
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

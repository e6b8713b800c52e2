//! An `Event` invocation that has not run to its end, as plain data: what a graceful stop hands
//! back ([`crate::Emulator::shutdown_keeping_events`]) and what a later emulator takes in again
//! ([`crate::Emulator::resume`]). Kept apart so that whoever stores them (the stack keeps them
//! in SQLite) needs nothing else of the emulator.

use std::time::SystemTime;

/// An `Event` invocation still queued (never run, or waiting for a retry) when the emulator
/// stopped: everything its retries, event age and destinations need to carry on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// The function's name.
    pub function: String,
    /// The ARN the caller invoked (the destination record's `functionArn`).
    pub invoked_arn: String,
    /// The request id every attempt runs under.
    pub request_id: String,
    /// The event.
    pub payload: Vec<u8>,
    /// The payload's `Content-Type`, if the caller gave one.
    pub content_type: Option<String>,
    /// The X-Ray trace header every attempt carries.
    pub trace_id: String,
    /// The client context as JSON text.
    pub client_context: Option<String>,
    /// The tenant id of a tenant-isolated invocation.
    pub tenant_id: Option<String>,
    /// Attempts made so far: 0 for an event that never ran.
    pub attempts: u32,
    /// When Lambda accepted the event: `MaximumEventAgeInSeconds` counts from here, across
    /// restarts.
    pub enqueued: SystemTime,
    /// The last attempt's failure, if it ran: its error type and error document.
    pub last_error: Option<(String, Vec<u8>)>,
    /// The function's `OnFailure` destination when the event was kept: where the event goes if
    /// the function no longer exists when it is resumed.
    pub on_failure: Option<String>,
    /// The function's dead-letter queue when the event was kept, likewise.
    pub dead_letter: Option<String>,
}

/// What [`crate::Emulator::resume`] did with the events it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Queued again for their functions (including those waiting for a `Pending` function).
    pub queued: usize,
    /// Older than their function's `MaximumEventAgeInSeconds`: sent to `OnFailure` and the
    /// dead-letter queue with `condition: EventAgeExceeded`.
    pub expired: usize,
    /// Of a function that is no longer served: sent to the `OnFailure` destination and
    /// dead-letter queue kept with them, or dropped (and logged) when there were none.
    pub orphaned: usize,
}

impl Resumed {
    /// Every event taken.
    pub fn total(&self) -> usize {
        self.queued + self.expired + self.orphaned
    }
}

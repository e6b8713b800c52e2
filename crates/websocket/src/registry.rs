//! The table of open connections, shared by the sessions (which add and remove themselves) and
//! the `@connections` API (which looks connections up to post to, describe or delete them).
//!
//! A connection is in the table from the moment its `$connect` accepted it until its session
//! ends; a lookup that misses is a `GoneException`, whether the id never existed or its
//! connection closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::apigw::epoch_ms;

/// What is known about one connection.
#[derive(Debug)]
pub(crate) struct Connection {
    /// `connectionId`.
    pub(crate) id: String,
    /// When the upgrade request arrived, epoch milliseconds.
    pub(crate) connected_at: u64,
    /// The client's address.
    pub(crate) source_ip: String,
    /// The client's `User-Agent`, if it sent one.
    pub(crate) user_agent: Option<String>,
    /// The `Host` the client connected to: the events' `domainName`.
    pub(crate) domain_name: String,
    /// When the client last sent a frame (or connected), epoch milliseconds.
    last_active: AtomicU64,
    /// What the `$connect` authorizer allowed: every event's `requestContext.authorizer`.
    pub(crate) authorizer: std::sync::OnceLock<serde_json::Value>,
}

impl Connection {
    /// A connection arriving now.
    pub(crate) fn new(
        id: String,
        source_ip: String,
        user_agent: Option<String>,
        domain_name: String,
    ) -> Self {
        let now = epoch_ms(SystemTime::now());
        Self {
            id,
            connected_at: now,
            source_ip,
            user_agent,
            domain_name,
            last_active: AtomicU64::new(now),
            authorizer: std::sync::OnceLock::new(),
        }
    }

    /// Notes that the client was active just now.
    pub(crate) fn touch(&self) {
        self.last_active
            .store(epoch_ms(SystemTime::now()), Ordering::Relaxed);
    }

    /// When the client was last active, epoch milliseconds.
    pub(crate) fn last_active(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }
}

/// How others reach an open connection's session.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    pub(crate) connection: Arc<Connection>,
    /// Frames to send to the client. The session holds the receiver; a full queue is the
    /// client's buffer being full (`LimitExceededException`), a closed one a session that ended.
    pub(crate) outbox: mpsc::Sender<Message>,
    /// Cancelled by `DELETE @connections/{id}`; the session watches it and closes with 1000.
    pub(crate) delete: CancellationToken,
}

/// The open connections of one API, by id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: Mutex<HashMap<String, Handle>>,
}

impl Registry {
    /// Adds an accepted connection.
    pub(crate) fn insert(&self, handle: Handle) {
        self.lock().insert(handle.connection.id.clone(), handle);
    }

    /// The open connection `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Handle> {
        self.lock().get(id).cloned()
    }

    /// Removes connection `id`; returns it if it was there.
    pub(crate) fn remove(&self, id: &str) -> Option<Handle> {
        self.lock().remove(id)
    }

    /// Every open connection, oldest first.
    pub(crate) fn connections(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<Arc<Connection>> =
            self.lock().values().map(|h| h.connection.clone()).collect();
        all.sort_by(|a, b| (a.connected_at, &a.id).cmp(&(b.connected_at, &b.id)));
        all
    }

    /// How many connections are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Handle>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

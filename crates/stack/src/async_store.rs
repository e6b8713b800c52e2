//! Where a stopped stack keeps its queued `Event` invocations until it starts again: a SQLite
//! file (`.coldstart/async-queue.sqlite` for `up`).
//!
//! The emulator hands back what a graceful stop kept
//! ([`coldstart_emulator::Emulator::shutdown_keeping_events`]) and takes events up again
//! ([`coldstart_emulator::Emulator::resume`]); this module only stores them. Taking is one
//! immediate transaction: the rows are read, given to the emulator's in-memory queue, deleted,
//! and committed, so a crash before the commit leaves them in the file and a second `up` of the
//! same folder cannot take them too. rusqlite is synchronous; each call is a handful of
//! statements at start or stop, so it runs where it is called.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coldstart_emulator::{Emulator, QueuedEvent};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::error::Error;
use crate::report::Reporter;

/// How long a statement waits for another process's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The layout this code reads and writes, as SQLite's `user_version`.
const VERSION: i64 = 1;

/// The schema, idempotent. `seq` keeps the order events were kept in.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS queued_events (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        function       TEXT    NOT NULL,
        invoked_arn    TEXT    NOT NULL,
        request_id     TEXT    NOT NULL,
        payload        BLOB    NOT NULL,
        content_type   TEXT,
        trace_id       TEXT    NOT NULL,
        client_context TEXT,
        tenant_id      TEXT,
        attempts       INTEGER NOT NULL,
        enqueued_ms    INTEGER NOT NULL,
        error_type     TEXT,
        error_body     BLOB,
        on_failure     TEXT,
        dead_letter    TEXT
    );
";

const COLUMNS: &str = "seq, function, invoked_arn, request_id, payload, content_type, trace_id, \
    client_context, tenant_id, attempts, enqueued_ms, error_type, error_body, on_failure, \
    dead_letter";

fn failed(path: &Path, source: rusqlite::Error) -> Error {
    Error::AsyncStore {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// `path` as the user would type it: relative to the working folder when under it.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Puts the events kept at a stop in the store at `store`, and says how many; without a store
/// they are dropped, and that is said.
pub(crate) fn keep(store: Option<&Path>, kept: &[QueuedEvent], report: &Reporter) {
    if kept.is_empty() {
        return;
    }
    let n = kept.len();
    let Some(path) = store else {
        report.say(format!("dropped {n} queued Event invocations"));
        return;
    };
    let saved = save(path, kept).or_else(|first| {
        // A file that went bad while serving is moved aside rather than losing the events.
        let aside = move_aside(path).map_err(|_| first)?;
        report.say(format!(
            "moved the unreadable {} to {}",
            shown(path),
            shown(&aside)
        ));
        save(path, kept)
    });
    match saved {
        Ok(()) => report.say(format!(
            "kept {n} queued Event invocations in {}",
            shown(path)
        )),
        Err(e) => report.say(format!(
            "{}; dropped {n} queued Event invocations",
            coldstart_protocol::error::chain(&e)
        )),
    }
}

/// Takes up the events kept in the store at `store` into `emulator`, and says how many. An
/// unreadable store is moved aside with a warning: the stack serves without its events.
pub(crate) fn resume(store: &Path, emulator: &Emulator, report: &Reporter) {
    match take(store, |events| emulator.resume(events)) {
        Ok(None) => {}
        Ok(Some(resumed)) if resumed.total() == 0 => {}
        Ok(Some(resumed)) => {
            let mut line = format!(
                "resumed {} queued Event invocations from {}",
                resumed.total(),
                shown(store)
            );
            if resumed.expired > 0 {
                line.push_str(&format!(
                    "; {} past their maximum event age went to OnFailure",
                    resumed.expired
                ));
            }
            if resumed.orphaned > 0 {
                line.push_str(&format!(
                    "; {} of functions no longer in the stack went to their OnFailure \
                     destination or were dropped",
                    resumed.orphaned
                ));
            }
            report.say(line);
        }
        Err(e) => {
            let what = match move_aside(store) {
                Ok(aside) => format!("moved it to {}", shown(&aside)),
                Err(err) => format!("could not move it aside: {err}"),
            };
            report.say(format!(
                "warning: {}; {what}; serving without the Event invocations it held",
                coldstart_protocol::error::chain(&e)
            ));
        }
    }
}

/// Opens (creating if needed) the store at `path` and checks its layout.
fn open(path: &Path) -> Result<Connection, Error> {
    let fail = |e| failed(path, e);
    let connection = Connection::open(path).map_err(fail)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail)?;
    if version > VERSION {
        return Err(Error::AsyncStore {
            path: path.to_path_buf(),
            source: format!(
                "written by a newer coldstart (layout {version}; this one reads {VERSION})"
            )
            .into(),
        });
    }
    connection.execute_batch(SCHEMA).map_err(fail)?;
    connection
        .pragma_update(None, "user_version", VERSION)
        .map_err(fail)?;
    Ok(connection)
}

/// Adds `events` to the store at `path` (after any already there), creating it and its folder.
pub(crate) fn save(path: &Path, events: &[QueuedEvent]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            what: format!("could not create {}", parent.display()),
            source,
        })?;
    }
    let fail = |e| failed(path, e);
    let mut connection = open(path)?;
    let tx = connection.transaction().map_err(fail)?;
    {
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO queued_events ({}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                 ?10, ?11, ?12, ?13, ?14)",
                COLUMNS
            ))
            .map_err(fail)?;
        for e in events {
            let (error_type, error_body) = match &e.last_error {
                Some((t, b)) => (Some(t.as_str()), Some(b.as_slice())),
                None => (None, None),
            };
            let enqueued_ms = e
                .enqueued
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as i64;
            insert
                .execute(params![
                    e.function,
                    e.invoked_arn,
                    e.request_id,
                    e.payload,
                    e.content_type,
                    e.trace_id,
                    e.client_context,
                    e.tenant_id,
                    e.attempts,
                    enqueued_ms,
                    error_type,
                    error_body,
                    e.on_failure,
                    e.dead_letter,
                ])
                .map_err(fail)?;
        }
    }
    tx.commit().map_err(fail)
}

/// Takes every event in the store at `path`, oldest first, and gives them to `resume` (which
/// must put them in memory before it returns); they are deleted in the same transaction.
/// `Ok(None)` when there is no store yet.
pub(crate) fn take<R>(
    path: &Path,
    resume: impl FnOnce(Vec<QueuedEvent>) -> R,
) -> Result<Option<R>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    let fail = |e| failed(path, e);
    let mut connection = open(path)?;
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let (events, last) = {
        let mut select = tx
            .prepare(&format!("SELECT {COLUMNS} FROM queued_events ORDER BY seq"))
            .map_err(fail)?;
        let rows = select
            .query_map([], |row| {
                let seq: i64 = row.get(0)?;
                let error_type: Option<String> = row.get(11)?;
                let error_body: Option<Vec<u8>> = row.get(12)?;
                let enqueued_ms: i64 = row.get(10)?;
                Ok((
                    seq,
                    QueuedEvent {
                        function: row.get(1)?,
                        invoked_arn: row.get(2)?,
                        request_id: row.get(3)?,
                        payload: row.get(4)?,
                        content_type: row.get(5)?,
                        trace_id: row.get(6)?,
                        client_context: row.get(7)?,
                        tenant_id: row.get(8)?,
                        attempts: row.get(9)?,
                        enqueued: UNIX_EPOCH
                            + Duration::from_millis(u64::try_from(enqueued_ms).unwrap_or(0)),
                        last_error: error_type.map(|t| (t, error_body.unwrap_or_default())),
                        on_failure: row.get(13)?,
                        dead_letter: row.get(14)?,
                    },
                ))
            })
            .map_err(fail)?;
        let mut events = Vec::new();
        let mut last = 0;
        for row in rows {
            let (seq, event) = row.map_err(fail)?;
            last = seq;
            events.push(event);
        }
        (events, last)
    };
    let resumed = resume(events);
    tx.execute("DELETE FROM queued_events WHERE seq <= ?1", [last])
        .map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(Some(resumed))
}

/// Moves an unreadable store out of the way (`<file>.unreadable-<epoch seconds>`), so that the
/// stack starts with an empty one and the old file is still there to look at.
pub(crate) fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".unreadable-{secs}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "coldstart-async-store-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join(".coldstart").join("async-queue.sqlite")
    }

    fn event(n: u32) -> QueuedEvent {
        QueuedEvent {
            function: format!("f{n}"),
            invoked_arn: format!("arn:aws:lambda:us-east-1:012345678912:function:f{n}"),
            request_id: format!("r-{n}"),
            payload: format!("{{\"n\":{n}}}").into_bytes(),
            content_type: None,
            trace_id: "Root=1-00000000-000000000000000000000000".into(),
            client_context: Some("{}".into()),
            tenant_id: None,
            attempts: n,
            enqueued: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            last_error: (n > 0).then(|| ("Boom".to_owned(), b"{\"errorType\":\"Boom\"}".to_vec())),
            on_failure: Some("arn:aws:sqs:us-east-1:012345678912:q".into()),
            dead_letter: None,
        }
    }

    #[test]
    fn kept_events_come_back_in_order_once() {
        let path = scratch("order");
        save(&path, &[event(0), event(1)]).unwrap_or_else(|e| panic!("{e}"));
        save(&path, &[event(2)]).unwrap_or_else(|e| panic!("{e}"));
        let taken = take(&path, |events| events).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(taken, Some(vec![event(0), event(1), event(2)]));
        let again = take(&path, |events| events).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, Some(Vec::new()), "taken events are deleted");
        let _ = std::fs::remove_dir_all(path.parent().and_then(Path::parent).unwrap_or(&path));
    }

    #[test]
    fn no_store_is_nothing_to_resume() {
        let path = scratch("none");
        assert!(matches!(take(&path, |e| e.len()), Ok(None)));
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_an_error_naming_it_and_can_be_moved_aside() {
        let path = scratch("corrupt");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(
            &path,
            b"this is not a database, just some text that is long enough",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let err = take(&path, |e| e.len()).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("async-queue.sqlite") && e.contains("cannot be read")),
            "{err:?}"
        );
        let aside = move_aside(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(aside.exists() && !path.exists());
        assert!(matches!(take(&path, |e| e.len()), Ok(None)));
        let _ = std::fs::remove_dir_all(path.parent().and_then(Path::parent).unwrap_or(&path));
    }
}

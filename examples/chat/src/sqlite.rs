//! The embedded connection store: one SQLite file shared by every process of the app.
//!
//! Separate from the DynamoDB store because its concerns are local ones: the file is opened in WAL
//! mode (readers never block the writer) with a busy timeout (a writer waits for another process's
//! write instead of failing with `SQLITE_BUSY`), and rusqlite is synchronous, so each statement runs
//! on tokio's blocking pool rather than on the runtime's one thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{BoxError, ConnectionStore, Error};

/// How long a statement waits for another process's write lock before failing.
/// Writes are single-row and take microseconds, so this is only reached when something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, idempotent: every process runs it on open.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS connections (
        connection_id TEXT PRIMARY KEY NOT NULL,
        channel       TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS connections_by_channel ON connections (channel);
";

/// Connections in a SQLite file.
///
/// Cheap to clone: clones share one SQLite connection (statements are serialised by its mutex;
/// Lambda gives a process one invocation at a time anyway). Other processes open their own.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: Arc<Path>,
    /// The connection; each statement locks it for its duration on a blocking-pool thread.
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`: WAL journal, busy timeout, schema.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path: Arc<Path> = path.into().into();
        let opening = Arc::clone(&path);
        let connection = tokio::task::spawn_blocking(move || open_connection(&opening))
            .await
            .map_err(Error::BlockingTask)?
            .map_err(|source| Error::SqliteOpen {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path,
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `statement` with the connection on the blocking pool.
    async fn run<T, F>(&self, operation: &'static str, statement: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier statement leaves the connection itself usable: SQLite rolls
            // back an unfinished statement.
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            statement(&connection)
        })
        .await
        .map_err(Error::BlockingTask)?
        .map_err(|source| Error::Sqlite {
            operation,
            source: source.into(),
        })
    }
}

/// Opens the file and prepares it for sharing between processes.
fn open_connection(path: &Path) -> Result<Connection, BoxError> {
    let connection = Connection::open(path)?;
    // First, so that the statements below wait for a process that is creating the same file.
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // WAL is a property of the file: the first process sets it, the others find it set.
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // E.g. a file system without shared memory: sharing between processes is not safe.
        return Err(format!("journal mode is {mode}, not wal").into());
    }
    // Durable at each checkpoint rather than each commit: enough for a list of live connections.
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(SCHEMA)?;
    Ok(connection)
}

impl ConnectionStore for SqliteStore {
    async fn put(&self, connection_id: &str, channel: &str) -> Result<(), Error> {
        let (connection_id, channel) = (connection_id.to_owned(), channel.to_owned());
        self.run("put", move |db| {
            db.prepare_cached(
                "INSERT INTO connections (connection_id, channel) VALUES (?1, ?2)
                 ON CONFLICT (connection_id) DO UPDATE SET channel = excluded.channel",
            )?
            .execute(params![connection_id, channel])
            .map(drop)
        })
        .await
    }

    async fn delete(&self, connection_id: &str) -> Result<(), Error> {
        let connection_id = connection_id.to_owned();
        self.run("delete", move |db| {
            db.prepare_cached("DELETE FROM connections WHERE connection_id = ?1")?
                .execute(params![connection_id])
                .map(drop)
        })
        .await
    }

    async fn list(&self, channel: &str) -> Result<Vec<String>, Error> {
        let channel = channel.to_owned();
        self.run("list", move |db| {
            db.prepare_cached("SELECT connection_id FROM connections WHERE channel = ?1")?
                .query_map(params![channel], |row| row.get(0))?
                .collect()
        })
        .await
    }

    async fn channel_of(&self, connection_id: &str) -> Result<Option<String>, Error> {
        let connection_id = connection_id.to_owned();
        self.run("channel_of", move |db| {
            db.prepare_cached("SELECT channel FROM connections WHERE connection_id = ?1")?
                .query_row(params![connection_id], |row| row.get(0))
                .optional()
        })
        .await
    }
}

//! The SQLite store on a temporary file: the conformance tests, and the properties that make it
//! safe to share between the app's processes (WAL, busy timeout, writers in several processes).

use std::collections::BTreeSet;
use std::process::Command;

use chat::{ConnectionStore, SqliteStore};

use crate::conformance::conformance_tests;
use crate::support::TempDir;

/// Environment of a child process of [`writers_in_several_processes_all_succeed`]: the database
/// file, and the prefix of the connection ids the child writes.
const CHILD_DB: &str = "CHAT_TEST_CHILD_DB";
const CHILD_PREFIX: &str = "CHAT_TEST_CHILD_PREFIX";
/// Connections each writer (each child and the parent) records, one transaction each.
const WRITES_PER_PROCESS: usize = 200;
const CHANNEL: &str = "shared";

async fn open() -> (SqliteStore, TempDir) {
    let dir = TempDir::new("sqlite");
    let store = SqliteStore::open(dir.path().join("connections.sqlite3"))
        .await
        .expect("open the sqlite store");
    (store, dir)
}

conformance_tests!(open);

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let (store, _dir) = open().await;
    let db = rusqlite::Connection::open(store.path()).expect("open the file directly");
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("read the journal mode");
    assert_eq!(mode.to_lowercase(), "wal");
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes() {
    let (first, _dir) = open().await;
    let second = SqliteStore::open(first.path()).await.expect("open again");
    first.put("from-first=", "room").await.expect("put");
    second.put("from-second=", "room").await.expect("put");
    for store in [&first, &second] {
        let listed: BTreeSet<String> = store
            .list("room")
            .await
            .expect("list")
            .into_iter()
            .collect();
        assert_eq!(
            listed,
            BTreeSet::from(["from-first=".into(), "from-second=".into()])
        );
    }
    second.delete("from-first=").await.expect("delete");
    assert_eq!(
        first.channel_of("from-first=").await.expect("channel_of"),
        None
    );
}

#[tokio::test]
async fn a_missing_directory_fails_to_open_with_the_path() {
    let dir = TempDir::new("sqlite-missing");
    let path = dir.path().join("no/such/dir/connections.sqlite3");
    let error = SqliteStore::open(&path).await.expect_err("open must fail");
    assert!(
        error.chain().contains(&path.display().to_string()),
        "{}",
        error.chain()
    );
}

/// Two child processes (this test binary again, running [`child_writer`]) and this one write to a
/// fresh file at the same time, each put its own transaction: with WAL and the busy timeout none
/// fails with `database is locked`, and every write is kept.
#[tokio::test]
async fn writers_in_several_processes_all_succeed() {
    let dir = TempDir::new("sqlite-processes");
    let path = dir.path().join("connections.sqlite3");
    let exe = std::env::current_exe().expect("the test binary");
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|prefix| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "sqlite::child_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DB, &path)
                .env(CHILD_PREFIX, prefix)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn a child writer")
        })
        .collect();
    write_connections(&path, "parent").await;
    for mut child in children {
        let status = child.wait().expect("wait for a child writer");
        assert!(status.success(), "a child writer failed: {status}");
    }
    let store = SqliteStore::open(&path).await.expect("open");
    let listed = store.list(CHANNEL).await.expect("list");
    assert_eq!(listed.len(), 3 * WRITES_PER_PROCESS);
    for prefix in ["a", "b", "parent"] {
        let id = format!("{prefix}-{}", WRITES_PER_PROCESS - 1);
        assert_eq!(
            store.channel_of(&id).await.expect("channel_of"),
            Some(CHANNEL.into())
        );
    }
}

/// The child side of [`writers_in_several_processes_all_succeed`]; does nothing when run as an
/// ordinary test.
#[tokio::test]
async fn child_writer() {
    let (Some(path), Some(prefix)) = (std::env::var_os(CHILD_DB), std::env::var(CHILD_PREFIX).ok())
    else {
        return;
    };
    write_connections(std::path::Path::new(&path), &prefix).await;
}

async fn write_connections(path: &std::path::Path, prefix: &str) {
    // Opening races too: the first process creates the file, switches it to WAL and creates the
    // schema while the others open it.
    let store = SqliteStore::open(path).await.expect("open");
    for n in 0..WRITES_PER_PROCESS {
        store
            .put(&format!("{prefix}-{n}"), CHANNEL)
            .await
            .unwrap_or_else(|error| panic!("{prefix}: put {n}: {}", error.chain()));
    }
}

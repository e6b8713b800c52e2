//! The chat example's integration tests: one binary, one module per concern.
//!
//! - `conformance`: the store's behaviour, written once and run against both backends;
//! - `sqlite`: the SQLite store on a temporary file, including writers in several processes;
//! - `dynamodb`: the DynamoDB store on a local DynamoDB-compatible server (dynalite, installed by
//!   `scripts/test-tools.sh` and started by each test); these tests fail, not skip, without it;
//! - `e2e`: the app through its real front doors: both binaries in an emulator behind a WebSocket
//!   API and an HTTP API, driven by WebSocket clients, against both stores;
//! - `handlers`: both functions' handlers against the SQLite store and a fake `@connections` API;
//! - `support`: temporary directories, the dynalite process, SDK configuration, the fake API.

mod conformance;
mod dynamodb;
mod e2e;
mod handlers;
mod sqlite;
mod support;

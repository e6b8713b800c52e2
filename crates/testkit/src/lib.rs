//! Fixture functions and end-to-end tests of coldstart. Not published.
//!
//! The fixtures are small `bootstrap` programs under `src/bin/`, each showing one behaviour a
//! Lambda function can have (answering, failing, crashing, hanging in init). The end-to-end tests
//! in `tests/it/` run them under the emulator and call them with real clients; `tests/memory.rs`
//! is the one test that measures this process's peak memory, so it has a binary to itself.
//!
//! # Layout
//! - `src/bin/fx-faults.rs`: a function whose behaviour is chosen by its event (`op`).
//! - `src/bin/fx-chaos.rs`: speaks the Runtime API by hand and misbehaves as its event asks
//!   (crash, hang, error, garbage, double answers), for the chaos soak in `tests/reliability/`.
//! - `src/bin/fx-conc.rs`, `fx-lr-conc.rs`: multi-concurrent functions on coldstart-runtime's
//!   and `lambda_runtime`'s concurrent modes, both doing what [`work`] says.
//! - `work`: the work those two share: sleep, fail, panic, a racy counter, timestamps.
//! - `src/bin/fx-echo.rs`: echo on `coldstart-runtime`, the smallest function.
//! - `src/bin/fx-lr-echo.rs`: echo on the official `lambda_runtime` crate.
//! - `src/bin/fx-http.rs`: an HTTP-event function that answers what its request asks for.
//! - `src/bin/fx-stream.rs`, `fx-lr-stream.rs`: streaming functions on coldstart-runtime and on
//!   `lambda_runtime`.
//! - `src/bin/fx-crash-on-start.rs`, `fx-slow-init.rs`, `fx-init-error.rs`, `fx-ignore-sigterm.rs`:
//!   init and shutdown behaviours.
//! - `src/bin/fx-env.rs`: answers with its environment, or invokes a sibling through
//!   `AWS_ENDPOINT_URL_LAMBDA` (templates: local endpoints, functions calling functions).
//! - `src/bin/fx-ws.rs`: a WebSocket API function (`$connect` answers as its query asks,
//!   messages by route).
//! - `src/bin/fx-telemetry.rs`: an external extension that subscribes to the Telemetry API with
//!   an HTTP listener and prints every event it receives (or, asked to, never answers).
//! - `fixtures/`: shell bootstraps, shared with the CLI's tests: a hand-held runtime that lets a
//!   test speak the Runtime API, an event echo that prints its PID, one that dies mid-invoke, one
//!   that answers with a file read at start-up; and `extension.sh`, an external extension that
//!   registers, prints every event it gets and exits on `SHUTDOWN`.

pub mod work;

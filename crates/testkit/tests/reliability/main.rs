//! The reliability suite: a seeded chaos soak over every front door, hostile input for every
//! listener, and each front door's limits at their edges. A binary of its own, so that the
//! soak's memory readings see only its own work: `cargo test -p coldstart-testkit --test
//! reliability`. The soak's long mode is `COLDSTART_SOAK=100000` (see `soak.rs`).

// The end-to-end tests' harness; this binary uses part of it.
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

mod capacity;
mod hostile;
mod limits;
mod soak;

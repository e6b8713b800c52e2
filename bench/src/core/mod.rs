//! The measuring core every scenario shares.
//!
//! - [`http`]: the one HTTP client (interleaved rounds, closed-loop load, one request) and the
//!   loopback floor.
//! - [`stats`]: nearest-rank percentiles and means.
//! - [`process`]: processes in groups of their own, drained, stopped and reaped; `/proc` readings
//!   (memory, CPU time, descendants); the interrupt guard.
//! - [`stack`]: coldstart started with `--ready-json`, its endpoints, temporary configs, the
//!   release binaries.
//! - [`report`]: the one results format.

pub mod alternate;
pub mod http;
pub mod process;
pub mod report;
pub mod stack;
pub mod stats;

//! The benchmarks of coldstart against its peers: the code behind the three bench binaries,
//! `coldstart-bench` (the invoke path), `bench-adapter` (what coldstart-adapter adds) and
//! `bench-websocket` (the WebSocket APIs), each a thin `main` over these modules.
//!
//! A bench's `main` is [`cli::Command::main`] around a function that measures and returns its
//! results table (a `Results` that implements `Display`, headed by [`table::Machine`]), which is
//! printed and written under `bench/results/`:
//!
//! ```no_run
//! use std::fmt;
//! use std::process::ExitCode;
//!
//! use coldstart_bench::cli::{Args, Command};
//! use coldstart_bench::table::{self, Machine, Size};
//!
//! /// One section: the size of this executable.
//! struct Results {
//!     machine: Machine,
//!     quick: bool,
//!     sizes: Vec<Size>,
//! }
//!
//! impl fmt::Display for Results {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         self.machine.header(f, "coldstart size benchmark", self.quick, &[])?;
//!         table::sizes(f, 20, &self.sizes)
//!     }
//! }
//!
//! fn main() -> ExitCode {
//!     // Writes bench/results/size.txt.
//!     Command::new("bench-size", "size.txt").main(|args: Args| {
//!         let exe = std::env::current_exe()?;
//!         Ok(Results {
//!             machine: Machine::detect(),
//!             quick: args.quick,
//!             sizes: vec![Size::of("this bench", &exe)?],
//!         })
//!     })
//! }
//! ```
//!
//! # Layout
//! Shared by the benches:
//! - [`cli`]: the command line (`--quick`, `--help`, `--peer DIR`) and how `main` ends: the
//!   table printed and written to its results file, or the error and exit code 1.
//! - [`table`]: what every results table shares: the header (date, `nproc`, CPU, `rustc`,
//!   mode), the binary-size section, cell formatting, writing the results file.
//! - [`client`]: the HTTP/1.1 load generator and its single-thread runtime.
//! - [`process`]: the release binaries; child processes killed by process group on drop; servers
//!   with a start-up banner; `coldstart run`; `/proc/PID/status` memory.
//! - [`up`]: `coldstart up` with a config in a temporary folder, its endpoint table, and its
//!   sandboxes, which never outlive it.
//! - [`tree`]: processes below a pid in `/proc` (ancestry, executable, environment, CPU time),
//!   and the interrupt guard.
//! - [`stats`]: percentiles and means.
//!
//! The invoke bench (`coldstart-bench`):
//! - [`measure`]: one function per measurement, and the plan of how much to do.
//! - [`floor`]: the bare hyper echo server the invoke path is compared with.
//! - [`startup`]: the stub Runtime API that times spawn → first `next`.
//! - [`peer`]: `cargo lambda watch`, the optional peer, and why it was skipped.
//! - [`stream`]: streamed answers read chunk by chunk (event stream or chunked body).
//! - [`report`]: its results table.
//!
//! The adapter bench (`bench-adapter`):
//! - [`adapter_measure`]: the plan, and the run: start, check, measure, read memory, stop.
//! - [`adapter_config`]: the release binaries and the temporary `coldstart.toml`.
//! - [`adapter_app`]: the web app started straight on a free port.
//! - [`adapter_report`]: its results table.
//!
//! The WebSocket bench (`bench-websocket`):
//! - [`ws_measure`]: one function per measurement, and the plan of how much to do.
//! - [`ws_client`]: WebSocket clients (round trips, idle connections that drain) and the
//!   HTTP/1.1 POST client.
//! - [`ws_up`]: `coldstart up` serving the chat with a config in a temporary folder.
//! - [`ws_peer`]: serverless-offline, the optional peer, and why it was skipped.
//! - [`ws_report`]: its results table.

// The crate is not published: its docs are for whoever works on the benches, read with
// `--document-private-items`, and name the private limits and helpers behind a figure.
#![allow(
    rustdoc::private_intra_doc_links,
    reason = "docs read with --document-private-items"
)]

pub mod cli;
pub mod client;
pub mod process;
pub mod stats;
pub mod table;
pub mod tree;
pub mod up;

pub mod floor;
pub mod measure;
pub mod peer;
pub mod report;
pub mod startup;
pub mod stream;

pub mod adapter_app;
pub mod adapter_config;
pub mod adapter_measure;
pub mod adapter_report;

pub mod ws_client;
pub mod ws_measure;
pub mod ws_peer;
pub mod ws_report;
pub mod ws_up;

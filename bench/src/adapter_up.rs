//! `coldstart up` for the adapter bench, with its sandboxes: none may outlive it.
//!
//! [`Up`] kills `up`'s own process group on drop, but `up` starts each sandbox process in a group
//! of its own, and a SIGKILLed `up` cannot stop them. [`Emulator`] collects the sandboxes' groups
//! (by ancestry, while `up` lives) before it stops or kills `up`, and kills whatever group is left
//! after it.

use std::path::Path;

use anyhow::Context as _;

use crate::adapter_tree;
use crate::up::{Door, Endpoint, Up};

/// A running `coldstart up` and the sandboxes it starts.
#[derive(Debug)]
pub struct Emulator {
    /// `None` once stopped.
    up: Option<Up>,
}

impl Emulator {
    /// Starts `coldstart up --listen 127.0.0.1:0 --config CONFIG` and waits for its endpoint
    /// table on stderr (see [`Up::start`]).
    pub fn start(coldstart: &Path, config: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            up: Some(Up::start(coldstart, config)?),
        })
    }

    fn up(&self) -> anyhow::Result<&Up> {
        self.up.as_ref().context("coldstart up was already stopped")
    }

    /// The first endpoint of `function` through `door`.
    pub fn endpoint(&self, function: &str, door: Door) -> anyhow::Result<&Endpoint> {
        self.up()?.endpoint(function, door)
    }

    /// The process id of `coldstart up`.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.up()?.pid()
    }

    /// Stops `up` with SIGTERM (it stops its sandboxes), then SIGKILLs any sandbox group it left;
    /// returns what `up` printed on stderr besides its banner, and a note if a group was left.
    pub fn stop(mut self) -> anyhow::Result<Vec<String>> {
        let up = self.up.take().context("coldstart up was already stopped")?;
        let groups = adapter_tree::groups_below(up.pid()?);
        let stopped = up.stop();
        let left = adapter_tree::kill_groups(&groups);
        let mut notes = stopped?;
        if left > 0 {
            notes.push(format!(
                "{left} sandbox process group(s) outlived coldstart up and were killed"
            ));
        }
        Ok(notes)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(up) = self.up.take() {
            let groups = up.pid().map(adapter_tree::groups_below).unwrap_or_default();
            // Kills `up`'s group and waits for it...
            drop(up);
            // ...then the sandboxes it could not stop.
            adapter_tree::kill_groups(&groups);
        }
    }
}

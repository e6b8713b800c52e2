//! A read-only view of what runs: each function's sandboxes and the phase each is in, for
//! dashboards and tools that show the emulator live. Nothing here changes a sandbox; a view is
//! a copy taken under each sandbox's lock, stale as soon as it is returned.

/// What a sandbox is doing, as a person watching it would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxPhase {
    /// Its extensions and runtime start; the runtime has not called `next` yet (a cold start).
    Init,
    /// Waiting in `next` for work (warm).
    Ready,
    /// Running an invocation, or answered and not back in `next` yet.
    Busy,
    /// Idle with its processes stopped (SIGSTOP) until the next invocation.
    Frozen,
    /// Its runtime exited or is being killed; it takes no more work.
    Dead,
}

impl SandboxPhase {
    /// `init`, `ready`, `busy`, `frozen` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Ready => "ready",
            Self::Busy => "busy",
            Self::Frozen => "frozen",
            Self::Dead => "dead",
        }
    }
}

/// One sandbox of a function, as seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxView {
    /// The sandbox's number within its function, counting from 1 in start order.
    pub id: u64,
    /// The bootstrap's process id (0 before it started).
    pub pid: u32,
    /// What it is doing.
    pub phase: SandboxPhase,
}

//! `_X_AMZN_TRACE_ID`, exported on every invocation without growing the process.
//!
//! glibc's `setenv` never frees a value it replaces (an older `getenv` result must stay valid), so
//! `std::env::set_var` with a fresh trace id per invocation leaked ~150 bytes each time: 150 MB
//! per million warm invocations, more than a small function's memory. Here the variable's
//! `NAME=value` string lives in one buffer of our own that the environment points at
//! (`putenv`, which copies nothing), rewritten in place for each invocation.

use std::ffi::c_char;
use std::sync::{Mutex, PoisonError};

use coldstart_protocol::env::TRACE_ID;

/// Room for `_X_AMZN_TRACE_ID=` and a trace header (X-Ray's are ~80 bytes) and its NUL.
const CAPACITY: usize = 512;

/// The buffer the environment points at once exported; leaked on purpose: the environment may
/// refer to it for the rest of the process.
static SLOT: Mutex<Option<&'static mut [u8; CAPACITY]>> = Mutex::new(None);

/// Sets `_X_AMZN_TRACE_ID` to `value`; false when it does not fit the buffer (or holds a NUL),
/// for the caller to fall back to `std::env::set_var`.
pub(crate) fn export(value: &str) -> bool {
    let name = TRACE_ID.as_bytes();
    let len = name.len() + 1 + value.len();
    if len + 1 > CAPACITY || value.contains('\0') {
        return false;
    }
    let mut slot = SLOT.lock().unwrap_or_else(PoisonError::into_inner);
    let buf = slot.get_or_insert_with(|| Box::leak(Box::new([0; CAPACITY])));
    buf[..name.len()].copy_from_slice(name);
    buf[name.len()] = b'=';
    buf[name.len() + 1..len].copy_from_slice(value.as_bytes());
    buf[len] = 0;
    // SAFETY: the string is NUL-terminated, lives for the rest of the process and is only written
    // under `SLOT`'s lock. `putenv` makes the environment point at it (again, should something
    // have unset or replaced the variable since). As with `set_var`, the one possible race is
    // foreign code reading the environment on another thread at this moment; the runtime writes
    // it between invocations, before the handler runs.
    unsafe { libc::putenv(buf.as_mut_ptr().cast::<c_char>()) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    // Regression: `set_var` per invocation grew the process by ~150 bytes per trace id.
    #[test]
    fn exporting_many_trace_ids_keeps_the_last_and_does_not_grow_the_process() {
        assert!(export("Root=1-first"));
        assert_eq!(
            std::env::var(TRACE_ID).ok().as_deref(),
            Some("Root=1-first")
        );
        let before = rss_kb();
        for i in 0..100_000 {
            export(&format!(
                "Root=1-6b0140d0-{i:024x};Parent=ac3ac41cf39810ce;Sampled=0"
            ));
        }
        let grown = rss_kb().saturating_sub(before);
        // The leak grew this loop by ~14 MB.
        assert!(grown < 4_000, "grew by {grown} kB");
        assert_eq!(
            std::env::var(TRACE_ID).ok().as_deref(),
            Some("Root=1-6b0140d0-00000000000000000001869f;Parent=ac3ac41cf39810ce;Sampled=0")
        );
        assert!(!export(&"x".repeat(CAPACITY)));
    }
}

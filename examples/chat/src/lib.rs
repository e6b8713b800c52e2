//! The chat app library (work in progress).

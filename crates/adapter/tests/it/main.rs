//! End-to-end tests: the adapter binary runs as a real sandbox process under the emulator (in this
//! process), forwarding to a web app in this process or to one it starts itself.

mod events;
mod extension;
mod readiness;
mod streaming;
mod support;
mod wrapper;

//! Turning a handler's panic into an invocation error instead of a dead runtime.
//!
//! A panic can happen in two places: while the handler builds its future (caught with
//! [`std::panic::catch_unwind`] at the call site) and while that future is polled (caught by
//! [`CatchUnwind`]). Either way the payload becomes a [`Diagnostic`] of type `Panic`. The default
//! panic hook still prints the panic to stderr first, which lands in the function's logs.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Diagnostic;

/// Error type posted for a panicking handler.
pub(crate) const PANIC: &str = "Panic";

/// A panic payload, as `catch_unwind` hands it back.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Polls `F`, turning a panic during a poll into `Err(payload)`.
///
/// `F: Unpin` keeps this free of unsafe pin projection: the runtime wraps a `Pin<&mut Fut>` of a
/// future pinned on its own stack, so no allocation is needed either.
#[derive(Debug)]
pub(crate) struct CatchUnwind<F> {
    inner: F,
}

impl<F: Future + Unpin> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Payload>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().inner;
        // The handler's state may be inconsistent after a panic; the runtime drops the future and
        // never polls it again, which is what makes asserting unwind safety acceptable.
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The diagnostic posted for a panic: its message when the payload is a string, else `panic`.
pub(crate) fn diagnostic(payload: &Payload) -> Diagnostic {
    let payload: &(dyn Any + Send) = payload.as_ref();
    let message = if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic".to_owned()
    };
    Diagnostic::new(PANIC, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a future to completion on a fresh current-thread runtime.
    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(future)
    }

    #[test]
    fn passes_normal_output_through() {
        let fut = std::pin::pin!(async { 7 });
        let out = block_on(CatchUnwind::new(fut));
        assert_eq!(out.ok(), Some(7));
    }

    #[test]
    fn catches_a_panic_while_polling() {
        let fut = std::pin::pin!(async {
            tokio::task::yield_now().await;
            if true {
                panic!("boom {}", 42);
            }
        });
        let payload = block_on(CatchUnwind::new(fut))
            .err()
            .unwrap_or_else(|| panic!("no panic caught"));
        assert_eq!(diagnostic(&payload), Diagnostic::new(PANIC, "boom 42"));
    }

    #[test]
    fn describes_every_payload_kind() {
        let from_str: Payload = Box::new("static message");
        assert_eq!(diagnostic(&from_str).error_message, "static message");
        let from_string: Payload = Box::new(String::from("owned message"));
        assert_eq!(diagnostic(&from_string).error_message, "owned message");
        let other: Payload = Box::new(17_u8);
        assert_eq!(diagnostic(&other).error_message, "panic");
    }
}

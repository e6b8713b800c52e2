//! What can go wrong starting or calling a stack under test.

/// An error of a stack under test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stack could not be read, built or started.
    #[error(transparent)]
    Stack(#[from] coldstart_stack::Error),
    /// The stack has no endpoint (or function) of that name and kind.
    #[error("the stack has no {kind} named {name}")]
    NoEndpoint {
        /// The name asked for.
        name: String,
        /// The kind asked for (`url`, `http-api`, …).
        kind: &'static str,
    },
    /// An invocation through the Invoke API failed before the function answered.
    #[error("invoking {function}: {message}")]
    Invoke {
        /// The function.
        function: String,
        /// What the Invoke API or the SDK said.
        message: String,
    },
    /// An HTTP or WebSocket request failed.
    #[error("{url}: {message}")]
    Request {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

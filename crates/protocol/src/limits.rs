//! Payload limits. AWS "MB" are 1024 × 1024 bytes.

/// Largest synchronous Invoke request body: 6 MB.
pub const MAX_SYNC_REQUEST: usize = 6 * 1024 * 1024;
/// Largest asynchronous (`Event`) Invoke request body: 1 MB.
pub const MAX_ASYNC_REQUEST: usize = 1024 * 1024;
/// Largest buffered runtime `/response` body, as rapid enforces it: 6 MB + 100 bytes.
pub const MAX_RUNTIME_RESPONSE: usize = 6 * 1024 * 1024 + 100;
/// Largest `/error` and `/init/error` body accepted: 1 MB.
pub const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Largest streamed response: 200 MB.
pub const MAX_STREAMED_RESPONSE: usize = 200 * 1024 * 1024;
/// Size of the log tail returned with `X-Amz-Log-Type: Tail`: 4 KB.
pub const LOG_TAIL: usize = 4 * 1024;

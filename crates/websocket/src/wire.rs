//! The wire vocabulary of API Gateway WebSocket APIs, written down once: reserved route keys,
//! event types, the `@connections` path and its exception names, size limits and the close codes
//! this emulator sends. Handlers name these items instead of spelling protocol strings.

use std::time::Duration;

/// Route run while the upgrade request waits; its answer accepts or rejects the connection.
pub const CONNECT: &str = "$connect";
/// Route run once after a connection ended, however it ended.
pub const DISCONNECT: &str = "$disconnect";
/// Route for messages whose selected key matches no route (and for non-JSON or binary ones).
pub const DEFAULT: &str = "$default";

/// `requestContext.eventType` of the `$connect` event.
pub const EVENT_CONNECT: &str = "CONNECT";
/// `requestContext.eventType` of a message event.
pub const EVENT_MESSAGE: &str = "MESSAGE";
/// `requestContext.eventType` of the `$disconnect` event.
pub const EVENT_DISCONNECT: &str = "DISCONNECT";

/// The path segment of the management API under the stage: `/{stage}/@connections/{id}`.
pub const CONNECTIONS: &str = "@connections";
/// The same segment as SDKs that percent-encode `@` send it.
pub const CONNECTIONS_ENCODED: &str = "%40connections";

/// Largest message a client may send (frames reassembled): 128 KB.
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Largest single frame a client may send: 32 KB. Bigger messages must be fragmented.
pub const MAX_FRAME: usize = 32 * 1024;
/// Largest `PostToConnection` body: 128 KB.
pub const MAX_POST: usize = 131_072;

/// API Gateway's idle connection timeout: 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// API Gateway's maximum connection duration: 2 hours.
pub const MAX_DURATION: Duration = Duration::from_secs(2 * 60 * 60);

/// Exception names of the `@connections` API, sent as `x-amzn-ErrorType`.
pub mod exception {
    /// 410: the connection is closed or never existed.
    pub const GONE: &str = "GoneException";
    /// 413: the posted data is over [`MAX_POST`](super::MAX_POST) bytes.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLargeException";
    /// 429: the client's send buffer is full.
    pub const LIMIT_EXCEEDED: &str = "LimitExceededException";
    /// 403: no such operation.
    pub const FORBIDDEN: &str = "ForbiddenException";
    /// 400: the request is malformed (e.g. a connection id that is not valid percent-encoding).
    pub const BAD_REQUEST: &str = "BadRequestException";
}

/// Close codes (RFC 6455 §7.4.1) with the meanings API Gateway gives them.
pub mod close {
    /// The connection was deleted through `@connections`.
    pub const NORMAL: u16 = 1000;
    /// Idle timeout, maximum duration, server shutdown.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Reported (never sent) when the client's close frame carried no status code.
    pub const NO_STATUS: u16 = 1005;
    /// Reported (never sent) when the connection ended without a close frame.
    pub const ABNORMAL: u16 = 1006;
    /// A frame or message over the limits.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_api_gateways() {
        assert_eq!(MAX_MESSAGE, 131_072);
        assert_eq!(MAX_POST, MAX_MESSAGE);
        assert_eq!(MAX_FRAME, 32_768);
    }
}

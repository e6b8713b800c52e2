//! API Gateway WebSocket API emulation for coldstart (work in progress).

//! The access log of the HTTP front doors, for the log sink: each request a Function URL or an
//! API answered becomes a [`crate::notes::API_REQUEST`] event. Nothing is kept or copied when
//! the sink does not read records.

use std::time::Instant;

use http::{Method, Request, Response};
use serde_json::json;

use crate::body::Body;
use crate::emulator::Emulator;
use crate::notes;

/// Which front door answered: its name and kind as the stack lists its endpoints.
pub(super) struct Door<'a> {
    /// The function (a Function URL) or the API's name.
    pub(super) name: &'a str,
    /// `url`, `http-api` or `rest-api`.
    pub(super) kind: &'static str,
    /// The function a Function URL serves; empty for an API, whose routes' functions the
    /// request id leads to.
    pub(super) function: &'a str,
}

/// A request seen arriving, while the sink reads records.
pub(super) struct Access {
    started: Instant,
    method: Method,
    path: String,
}

impl Access {
    /// Notes `req`'s arrival, if the log sink reads records.
    pub(super) fn begin<B>(emulator: &Emulator, req: &Request<B>) -> Option<Self> {
        emulator.wants_notes().then(|| Self {
            started: Instant::now(),
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
        })
    }

    /// Tells the log sink how `door` answered the request: status, time to the answer's head,
    /// and the invocation's request id when a function ran.
    pub(super) fn end(self, emulator: &Emulator, door: &Door<'_>, response: &Response<Body>) {
        let request_id = response
            .headers()
            .get(coldstart_protocol::invoke::REQUEST_ID)
            .and_then(|v| v.to_str().ok());
        emulator.note(door.function, || {
            notes::event(
                notes::API_REQUEST,
                json!({
                    "api": door.name,
                    "kind": door.kind,
                    "method": self.method.as_str(),
                    "path": self.path,
                    "status": response.status().as_u16(),
                    "durationMs": self.started.elapsed().as_secs_f64() * 1000.0,
                    "requestId": request_id,
                }),
            )
        });
    }
}

//! The subscription endpoints of one sandbox's platform event stream, served beside its
//! Extensions API: the Telemetry API's `PUT /2022-07-01/telemetry` and the older Logs API's
//! `PUT /2020-08-15/logs`.
//!
//! A registered extension subscribes its listener to the sandbox's platform event stream; the
//! subscription is validated as Lambda validates it (`400 ValidationError`), then handed to the
//! sandbox's `telemetry`, which delivers from then on, in the shapes of the API it came through.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use coldstart_protocol::limits;
use coldstart_protocol::telemetry::{SUBSCRIBED_BODY, VALIDATION_ERROR};

use crate::answers::{identifier, rapid_error, refused};
use crate::body::{Body, read_limited};
use crate::error::SubscribeError;
use crate::sandbox::Sandbox;
use crate::telemetry::Plan;

/// Answers `PUT /2022-07-01/telemetry`.
pub(crate) async fn handle(sandbox: &Arc<Sandbox>, req: Request<Incoming>) -> Response<Body> {
    subscribe(sandbox, req, Plan::from_body).await
}

/// Answers `PUT /2020-08-15/logs`.
pub(crate) async fn handle_logs(sandbox: &Arc<Sandbox>, req: Request<Incoming>) -> Response<Body> {
    subscribe(sandbox, req, Plan::from_logs_body).await
}

/// Subscribes the calling extension with the plan `parse` reads from the body.
async fn subscribe(
    sandbox: &Arc<Sandbox>,
    req: Request<Incoming>,
    parse: fn(&[u8]) -> Result<Plan, SubscribeError>,
) -> Response<Body> {
    if req.method() != Method::PUT {
        return rapid_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Telemetry.InvalidRequest",
            "Method not allowed",
        );
    }
    let (parts, body) = req.into_parts();
    let id = match identifier(&parts.headers) {
        Ok(id) => id,
        Err(refusal) => return refused(refusal),
    };
    let name = match sandbox.extension_name(&id) {
        Ok(name) => name,
        Err(refusal) => return refused(refusal),
    };
    let Ok(read) = read_limited(&parts.headers, body, limits::MAX_ERROR_BODY).await else {
        return rapid_error(
            StatusCode::BAD_REQUEST,
            VALIDATION_ERROR,
            "Could not read the request body",
        );
    };
    let plan = match parse(&read.bytes) {
        Ok(plan) => plan,
        Err(err) => return rapid_error(err.status(), err.error_type(), &err.to_string()),
    };
    tracing::debug!(
        function = &*sandbox.spec.name,
        sandbox = sandbox.id,
        extension = name,
        destination = %plan.addr,
        dialect = ?plan.dialect,
        "telemetry subscription"
    );
    sandbox.telemetry.subscribe(&id, &name, plan);
    let mut response = Response::new(Body::full(Bytes::from_static(SUBSCRIBED_BODY.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

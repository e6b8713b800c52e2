//! The Telemetry API's subscription endpoint (`PUT /2022-07-01/telemetry`) of one sandbox,
//! served beside its Extensions API.
//!
//! A registered extension subscribes its listener to the sandbox's platform event stream; the
//! subscription is validated as Lambda validates it (`400 ValidationError`), then handed to the
//! sandbox's `telemetry`, which delivers from then on.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use coldstart_protocol::limits;
use coldstart_protocol::telemetry::{SUBSCRIBED_BODY, VALIDATION_ERROR};

use crate::answers::{identifier, rapid_error, refused};
use crate::body::{Body, read_limited};
use crate::sandbox::Sandbox;
use crate::telemetry::Plan;

/// Answers `PUT /2022-07-01/telemetry`.
pub(crate) async fn handle(sandbox: &Arc<Sandbox>, req: Request<Incoming>) -> Response<Body> {
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
    let plan = match Plan::from_body(&read.bytes) {
        Ok(plan) => plan,
        Err(err) => return rapid_error(err.status(), err.error_type(), &err.to_string()),
    };
    tracing::debug!(
        function = &*sandbox.spec.name,
        sandbox = sandbox.id,
        extension = name,
        destination = %plan.addr,
        "telemetry subscription"
    );
    sandbox.telemetry.subscribe(&id, &name, plan);
    let mut response = Response::new(Body::full(Bytes::from_static(SUBSCRIBED_BODY.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

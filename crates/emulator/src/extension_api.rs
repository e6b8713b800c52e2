//! The Extensions API (`/2020-01-01/extension/*`) of one sandbox, served beside its Runtime API.
//!
//! `register` hands out identifiers (and starts the bootstrap once every external extension has
//! registered); `event/next` is held open until the sandbox has an `INVOKE` or `SHUTDOWN` event
//! for the extension; `init/error` fails init; `exit/error` records why an extension is about to
//! exit. Misuse is answered as rapid does: 403 and `{"errorMessage","errorType"}`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use coldstart_protocol::extension::{
    self as ext, Event, EventType, RegisterRequest, RegisterResponse, Route,
};
use coldstart_protocol::{ErrorBody, limits};

use crate::answers::{accepted, header, identifier, rapid_error, refused};
use crate::body::{Body, read_limited};
use crate::extensions::{ExtensionNext, ExtensionRefusal};
use crate::sandbox::Sandbox;

/// Answers an Extensions API request; `None` when the path is not one of the API's.
pub(crate) async fn handle(
    sandbox: &Arc<Sandbox>,
    req: Request<Incoming>,
) -> Option<Response<Body>> {
    let route = Route::parse(req.uri().path())?;
    Some(match (req.method(), route) {
        (&Method::POST, Route::Register) => register(sandbox, req).await,
        (&Method::GET, Route::Next) => next(sandbox, req.headers()).await,
        (&Method::POST, Route::InitError) => report(sandbox, req, Report::Init).await,
        (&Method::POST, Route::ExitError) => report(sandbox, req, Report::Exit).await,
        _ => rapid_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Extension.InvalidRequest",
            "Method not allowed",
        ),
    })
}

async fn register(sandbox: &Arc<Sandbox>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let name = header(&parts.headers, &ext::NAME).unwrap_or_default();
    let Ok(read) = read_limited(&parts.headers, body, limits::MAX_ERROR_BODY).await else {
        return refused(ExtensionRefusal::new(
            "InvalidRequestFormat",
            "Could not read the request body",
        ));
    };
    let request: RegisterRequest = if read.bytes.iter().all(u8::is_ascii_whitespace) {
        RegisterRequest::default()
    } else {
        match serde_json::from_slice(&read.bytes) {
            Ok(request) => request,
            Err(err) => {
                let error_type = if err.to_string().contains("unknown variant") {
                    "Extension.InvalidEventType"
                } else {
                    "InvalidRequestFormat"
                };
                return refused(ExtensionRefusal::new(error_type, err.to_string()));
            }
        }
    };
    let events: Vec<EventType> = request.events;
    let id = match sandbox.register_extension(&name, &events) {
        Ok(id) => id,
        Err(refusal) => return refused(refusal),
    };
    let spec = &sandbox.spec;
    let wants_account = parts.headers.get_all(&ext::ACCEPT_FEATURE).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|f| f.trim_ascii() == b"accountId")
    });
    let answer = RegisterResponse {
        function_name: spec.name.to_string(),
        function_version: "$LATEST".into(),
        handler: spec.config.handler.clone().unwrap_or_default(),
        account_id: wants_account.then(|| spec.account_id.clone()),
    };
    let mut response = json(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(ext::IDENTIFIER, value);
    }
    response
}

async fn next(sandbox: &Arc<Sandbox>, headers: &HeaderMap) -> Response<Body> {
    let id = match identifier(headers) {
        Ok(id) => id,
        Err(refusal) => return refused(refusal),
    };
    let event = match sandbox.extension_next(&id) {
        Ok(ExtensionNext::Deliver(event)) => event,
        // Held open until the sandbox has an event for this extension; if the sandbox dies
        // instead, the waiter is dropped and the extension is told to exit.
        Ok(ExtensionNext::Wait(rx)) => match rx.await {
            Ok(event) => event,
            Err(_) => {
                return rapid_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Extension.ExecutionEnvironmentGone",
                    "The execution environment is gone",
                );
            }
        },
        Err(refusal) => return refused(refusal),
    };
    deliver(&event)
}

fn deliver(event: &Event) -> Response<Body> {
    let mut response = json(
        StatusCode::OK,
        serde_json::to_vec(event).unwrap_or_default(),
    );
    let event_id = uuid::Uuid::new_v4().hyphenated().to_string();
    if let Ok(value) = HeaderValue::from_str(&event_id) {
        response.headers_mut().insert(ext::EVENT_IDENTIFIER, value);
    }
    response
}

#[derive(Clone, Copy)]
enum Report {
    Init,
    Exit,
}

async fn report(sandbox: &Arc<Sandbox>, req: Request<Incoming>, report: Report) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let id = match identifier(&parts.headers) {
        Ok(id) => id,
        Err(refusal) => return refused(refusal),
    };
    let Some(error_type) = header(&parts.headers, &ext::FUNCTION_ERROR_TYPE) else {
        return refused(ExtensionRefusal::new(
            "Extension.MissingHeader",
            "Lambda-Extension-Function-Error-Type header is required",
        ));
    };
    let body = match read_limited(&parts.headers, body, limits::MAX_ERROR_BODY).await {
        Ok(read) if !read.bytes.is_empty() => read.bytes,
        _ => Bytes::from(ErrorBody::new(&error_type, "").to_json()),
    };
    let result = match report {
        Report::Init => sandbox.extension_init_error(&id, error_type, body),
        Report::Exit => sandbox.extension_exit_error(&id, error_type),
    };
    match result {
        Ok(()) => accepted(),
        Err(refusal) => refused(refusal),
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

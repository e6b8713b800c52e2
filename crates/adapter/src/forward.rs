//! One invocation: the event becomes a request to the app, the app's response becomes the answer
//! to Lambda, buffered or streamed.
//!
//! The [`Forwarder`] is what the runtime loop's handler calls. It owns the keep-alive connection
//! to the app and adds what the Lambda Web Adapter adds to each request: the event's request
//! context (`x-amzn-request-context`), the invocation's Lambda context (`x-amzn-lambda-context`),
//! the tenant id (`x-amz-tenant-id`) and the trace id (`x-amzn-trace-id`).

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use coldstart_runtime::{ClientContext, CognitoIdentity, Context, Diagnostic, ResponseStream};
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

use crate::client::{AppClient, Body, chain};
use crate::compression;
use crate::config::Config;
use crate::error::{APP_UNREACHABLE_TYPE, ERROR_STATUS_TYPE};
use crate::event::{AppRequest, Source};
use crate::readiness;
use crate::response::{self, AppResponse};

/// `x-amzn-request-context`: the event's `requestContext`, as JSON.
pub const REQUEST_CONTEXT: HeaderName = HeaderName::from_static("x-amzn-request-context");
/// `x-amzn-lambda-context`: the invocation's Lambda context, as JSON (see [`LambdaContext`]).
pub const LAMBDA_CONTEXT: HeaderName = HeaderName::from_static("x-amzn-lambda-context");
/// `x-amz-tenant-id` (the tenant of a tenant-isolated invocation) and `x-amzn-trace-id` (the
/// X-Ray trace header, added when the request does not carry one): the Invoke API's own headers.
pub use coldstart_protocol::invoke::{TENANT_ID, TRACE_ID};

/// `errorType` of an event the adapter cannot turn into a request (a body that claims to be
/// base64 and is not).
pub const INVALID_EVENT_TYPE: &str = "Adapter.InvalidEvent";

/// Turns invocations into requests to the app and its responses into answers.
#[derive(Debug)]
pub struct Forwarder {
    config: Config,
    /// The connection to the app. Invocations come one at a time, so the lock is never
    /// contended; it is held only while a request is sent, not while its body is read.
    client: Mutex<AppClient>,
    /// Whether the app passed its readiness check. False at the start only under
    /// `AWS_LWA_ASYNC_INIT` when the app was not ready in time: each invocation then waits for
    /// readiness before it is forwarded, until one sees it.
    ready: AtomicBool,
}

impl Forwarder {
    /// A forwarder to the app `config` names; `ready` says whether it passed its readiness check.
    pub fn new(config: Config, ready: bool) -> Self {
        let client = Mutex::new(AppClient::new(config.port));
        Self {
            config,
            client,
            ready: AtomicBool::new(ready),
        }
    }

    /// Answers an invocation with a buffered response in the event source's shape.
    pub async fn buffered(&self, event: Bytes, context: Context) -> Result<Bytes, Diagnostic> {
        let (source, accepts_gzip, response) = self.send(&event, &context).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| unreachable_app(&e))?
            .to_bytes();
        let mut response = AppResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        if self.config.compression && accepts_gzip && source != Source::PassThrough {
            compression::gzip(&mut response);
        }
        Ok(Bytes::from(response::buffered(source, &response)))
    }

    /// Answers an invocation by streaming the app's response as it arrives: an HTTP-integration
    /// prelude (status, headers, cookies) and each body frame as its own write. A pass-through
    /// event's response is streamed as it is, with the app's content type.
    pub async fn streaming(
        &self,
        event: Box<RawValue>,
        context: Context,
        mut stream: ResponseStream,
    ) -> Result<(), Diagnostic> {
        let event = Bytes::from(String::from(Box::<str>::from(event)));
        let (source, _, response) = self.send(&event, &context).await?;
        let (parts, mut body) = response.into_parts();
        if source == Source::PassThrough {
            if let Some(content_type) = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
            {
                stream.set_content_type(content_type)?;
            }
        } else {
            let prelude = response::prelude(parts.status, &parts.headers);
            // The body's first bytes, when the app sent them with its head, go with the prelude:
            // one write, not two. Otherwise the prelude goes now, as the stream's start.
            let ready = {
                // Polled once, without waiting: a pending frame is polled again below.
                let mut next = std::pin::pin!(body.frame());
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                next.as_mut().poll(&mut cx)
            };
            match ready {
                std::task::Poll::Ready(Some(frame)) => {
                    let frame = frame.map_err(|e| unreachable_app(&e))?;
                    let first = frame.into_data().unwrap_or_default();
                    stream.http_with(prelude, first).await?;
                }
                _ => stream.http(prelude).await?,
            }
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| unreachable_app(&e))?;
            if let Ok(data) = frame.into_data() {
                // The last bytes and the stream's end leave together.
                if body.is_end_stream() {
                    return Ok(stream.finish(data).await?);
                }
                stream.write(data).await?;
            }
        }
        Ok(())
    }

    /// Sends the request for `event` and returns the event's source, whether its client accepts
    /// gzip, and the app's response head.
    async fn send(
        &self,
        event: &Bytes,
        context: &Context,
    ) -> Result<(Source, bool, hyper::Response<Incoming>), Diagnostic> {
        if !self.ready.load(Ordering::Relaxed) {
            readiness::wait(&self.config.readiness).await;
            self.ready.store(true, Ordering::Relaxed);
        }
        let app_request = AppRequest::from_event(event, &self.config)
            .map_err(|message| Diagnostic::new(INVALID_EVENT_TYPE, message))?;
        let source = app_request.source;
        let accepts_gzip = compression::accepts_gzip(&app_request.headers);
        let request = build_request(app_request, context)?;
        let response = self
            .client
            .lock()
            .await
            .send(request)
            .await
            .map_err(|e| unreachable_app(&e))?;
        let status = response.status();
        if let Some(codes) = &self.config.error_status_codes
            && codes.contains(status.as_u16())
        {
            return Err(Diagnostic::new(
                ERROR_STATUS_TYPE,
                format!(
                    "the app answered {status} to a {}, a status listed in AWS_LWA_ERROR_STATUS_CODES",
                    source_name(source),
                ),
            ));
        }
        Ok((source, accepts_gzip, response))
    }
}

/// The source's name, for messages.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::RestApi => "REST API request",
        Source::HttpApiV2 => "HTTP API/Function URL request",
        Source::Alb { .. } => "ALB request",
        Source::PassThrough => "pass-through event",
    }
}

/// The hyper request for `app_request`, with the context headers.
fn build_request(app_request: AppRequest, context: &Context) -> Result<Request<Body>, Diagnostic> {
    let AppRequest {
        method,
        path_and_query,
        mut headers,
        body,
        request_context,
        ..
    } = app_request;
    if let Some(request_context) = request_context
        && let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(request_context))
    {
        headers.insert(REQUEST_CONTEXT, value);
    }
    if let Ok(json) = serde_json::to_vec(&LambdaContext::of(context))
        && let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(json))
    {
        headers.insert(LAMBDA_CONTEXT, value);
    }
    if let Some(tenant) = context.tenant_id.as_deref()
        && let Ok(value) = HeaderValue::from_str(tenant)
    {
        headers.insert(TENANT_ID, value);
    }
    if !headers.contains_key(&TRACE_ID)
        && let Some(trace) = context.xray_trace_id.as_deref()
        && let Ok(value) = HeaderValue::from_str(trace)
    {
        headers.insert(TRACE_ID, value);
    }
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query.as_str())
        .body(Body::new(body))
        .map_err(|e| {
            Diagnostic::new(
                INVALID_EVENT_TYPE,
                format!("cannot request {path_and_query:?} from the app: {e}"),
            )
        })?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The diagnostic of a request that did not get through to the app, or of a response that broke
/// off.
fn unreachable_app(error: &dyn std::error::Error) -> Diagnostic {
    Diagnostic::new(APP_UNREACHABLE_TYPE, chain(error))
}

/// The JSON of `x-amzn-lambda-context`: the Lambda context with the field names of the Rust
/// runtime's `Context`, as the Lambda Web Adapter sends it.
#[derive(Debug, Serialize)]
pub struct LambdaContext<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The deadline, in Unix epoch milliseconds.
    pub deadline: u64,
    /// The ARN the caller invoked.
    pub invoked_function_arn: &'a str,
    /// The X-Ray trace header.
    pub xray_trace_id: Option<&'a str>,
    /// The mobile SDK's client context.
    pub client_context: Option<&'a ClientContext>,
    /// The caller's Cognito identity.
    pub identity: Option<&'a CognitoIdentity>,
    /// The tenant id.
    pub tenant_id: Option<&'a str>,
    /// The function's configuration.
    pub env_config: EnvConfig<'a>,
}

/// The `env_config` part of [`LambdaContext`].
#[derive(Debug, Serialize)]
pub struct EnvConfig<'a> {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: &'a str,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory: u32,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: &'a str,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream: &'a str,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub log_group: &'a str,
}

impl<'a> LambdaContext<'a> {
    /// The context of one invocation.
    pub fn of(context: &'a Context) -> Self {
        let env = &context.env_config;
        Self {
            request_id: &context.request_id,
            deadline: context.deadline_ms,
            invoked_function_arn: &context.invoked_function_arn,
            xray_trace_id: context.xray_trace_id.as_deref(),
            client_context: context.client_context.as_ref(),
            identity: context.identity.as_ref(),
            tenant_id: context.tenant_id.as_deref(),
            env_config: EnvConfig {
                function_name: &env.function_name,
                memory: env.memory_mb,
                version: &env.version,
                log_stream: &env.log_stream,
                log_group: &env.log_group,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_context_has_the_rust_runtime_field_names() {
        let mut context = Context::default();
        context.request_id = "r-1".into();
        context.deadline_ms = 1_700_000_000_000;
        context.invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:web".into();
        context.tenant_id = Some("t-1".into());
        let json = serde_json::to_value(LambdaContext::of(&context)).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "request_id": "r-1",
                "deadline": 1_700_000_000_000_u64,
                "invoked_function_arn": "arn:aws:lambda:us-east-1:1:function:web",
                "xray_trace_id": null,
                "client_context": null,
                "identity": null,
                "tenant_id": "t-1",
                "env_config": {"function_name": "", "memory": 0, "version": "", "log_stream": "", "log_group": ""}
            })
        );
    }
}

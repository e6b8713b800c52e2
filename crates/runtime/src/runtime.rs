//! The invocation loop: `next`, call the handler, answer, repeat.
//!
//! Everything that can go wrong with one invocation (a malformed header, an event the handler's
//! type cannot represent, a handler error, a panic, a rejected answer) is reported for that
//! invocation and the loop goes on. Only the Runtime API itself failing (5xx, a broken connection,
//! an unusable request id) ends the loop with an [`Error`], per Lambda's runtime-client rules.
//!
//! Two loops share these rules: the buffered one ([`Runtime::run`], [`Runtime::run_bytes`]), which
//! posts the handler's result once it is complete, and the streaming one
//! ([`Runtime::run_streaming`]), which posts while the handler writes.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use coldstart_protocol::{env, runtime};
use http::header::{CONTENT_TYPE, TRAILER};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use hyper::body::Frame;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Body, Client, Connection};
use crate::panic::{self, CatchUnwind};
use crate::stream::{
    DEFAULT_CONTENT_TYPE, Ends, Head, STREAMING, StreamBody, TRAILER_VALUE, error_trailers,
};
use crate::{Config, Context, Diagnostic, Error, ResponseStream};

/// `Content-Type` of JSON responses and of error bodies.
pub(crate) const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
/// `Content-Type` of [`Runtime::run_bytes`] responses.
const APPLICATION_OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
/// Error type posted when the event does not deserialize into the handler's event type.
const INVALID_EVENT_DATA: &str = "Runtime.InvalidEventData";
/// Error type posted when the handler's output does not serialize.
const SERIALIZATION_ERROR: &str = "Runtime.SerializationError";

/// A connection to the Runtime API and the function's configuration: the runtime before its loop
/// starts.
///
/// Use it instead of the free [`run`] when initialisation can fail, so the failure reaches
/// `/runtime/init/error`:
///
/// ```no_run
/// use coldstart_runtime::{Context, Error, Runtime};
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     let runtime = Runtime::from_env().await?;
///     let greeting = match std::env::var("GREETING") {
///         Ok(greeting) => greeting,
///         Err(e) => return Err(runtime.init_error(e).await),
///     };
///     runtime
///         .run(move |name: String, _ctx: Context| {
///             let reply = format!("{greeting}, {name}");
///             async move { Ok::<_, Error>(reply) }
///         })
///         .await
/// }
/// ```
#[derive(Debug)]
pub struct Runtime {
    client: Client,
    config: Arc<Config>,
    /// Whether each invocation's trace id is exported as `_X_AMZN_TRACE_ID`: a runtime that
    /// owns its process does; one hosted inside another's ([`Runtime::connect`]) leaves the
    /// process's environment alone (the trace id is on the [`Context`]).
    pub(crate) export_trace: bool,
    /// The concurrent mode's stop: once it holds `true`, the loop takes no more invocations (one
    /// in progress is finished first). The sender is held by [`Runtime::run_concurrent_until`];
    /// `None` outside that mode.
    pub(crate) stopping: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Runtime {
    /// Connects to the Runtime API named by `AWS_LAMBDA_RUNTIME_API` and reads the function's
    /// [`Config`] from the environment.
    pub async fn from_env() -> Result<Self, Error> {
        let runtime_api = match std::env::var(env::RUNTIME_API) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(value)) => {
                Some(value.to_string_lossy().into_owned())
            }
        };
        let mut runtime = Self::from_parts(runtime_api, Config::from_env()).await?;
        runtime.export_trace = true;
        Ok(runtime)
    }

    /// Connects to the Runtime API at `runtime_api` (`host:port`) for a function configured as
    /// `config`, without reading the environment: for hosts that run a handler inside their own
    /// process, such as a test harness serving several functions at once. Such a runtime does
    /// not export `_X_AMZN_TRACE_ID` (the process is shared): read [`Context::xray_trace_id`].
    pub async fn connect(runtime_api: &str, config: Config) -> Result<Self, Error> {
        Self::from_parts(Some(runtime_api.to_owned()), config).await
    }

    /// As [`Runtime::connect`], over connections that `dial` opens instead of TCP sockets (an
    /// in-memory duplex to an emulator in the same process, say); `runtime_api` is still the
    /// `Host` of each request and the name in errors. `dial` is called again to reconnect.
    pub async fn connect_with<C, D>(
        runtime_api: &str,
        dial: D,
        config: Config,
    ) -> Result<Self, Error>
    where
        C: Connection,
        D: Fn() -> std::io::Result<C> + Send + Sync + 'static,
    {
        let dial: crate::client::Dial =
            Arc::new(move || dial().map(|c| Box::new(c) as Box<dyn Connection>));
        Self::connected(
            Client::new(runtime_api)?.with_dial(dial),
            Arc::new(config),
            None,
        )
        .await
    }

    /// Connects to `runtime_api` (`host:port`); `None` or empty is [`Error::MissingRuntimeApi`].
    pub(crate) async fn from_parts(
        runtime_api: Option<String>,
        config: Config,
    ) -> Result<Self, Error> {
        let runtime_api = runtime_api
            .filter(|value| !value.is_empty())
            .ok_or(Error::MissingRuntimeApi)?;
        Self::connected(Client::new(&runtime_api)?, Arc::new(config), None).await
    }

    /// Another connection to the same Runtime API with the same configuration: one more
    /// poller of the concurrent mode.
    pub(crate) async fn another(&self) -> Result<Self, Error> {
        Self::connected(
            self.client.same_endpoint(),
            self.config.clone(),
            self.stopping.clone(),
        )
        .await
    }

    /// A runtime on `client`, connected first; it does not export `_X_AMZN_TRACE_ID`.
    async fn connected(
        mut client: Client,
        config: Arc<Config>,
        stopping: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Self, Error> {
        client.connect().await?;
        Ok(Self {
            client,
            config,
            export_trace: false,
            stopping,
        })
    }

    /// `GET next`, or `None` once the concurrent mode is stopping: a stop lets go of a `next`
    /// still waiting, never of an invocation already received.
    async fn next_event(&mut self) -> Result<Option<(StatusCode, HeaderMap, Bytes)>, Error> {
        let Some(stopping) = &mut self.stopping else {
            return self.client.next().await.map(Some);
        };
        if *stopping.borrow_and_update() {
            return Ok(None);
        }
        tokio::select! {
            next = self.client.next() => next.map(Some),
            // The sender dropped counts as a stop too.
            _ = stopping.wait_for(|stop| *stop) => Ok(None),
        }
    }

    /// The function's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reports an initialisation failure to `/runtime/init/error` and returns the
    /// [`Error::Init`] for `main` to return, so the process exits non-zero.
    pub async fn init_error(mut self, error: impl Into<Diagnostic>) -> Error {
        let diagnostic = error.into();
        let uri = Uri::from(http::uri::PathAndQuery::from_static(
            runtime::INIT_ERROR_PATH,
        ));
        let mut request = self
            .client
            .request(Method::POST, uri, Bytes::from(diagnostic.to_json()));
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(
            &runtime::FUNCTION_ERROR_TYPE,
            error_type_header(&diagnostic),
        );
        match self.client.exchange(request).await {
            Ok((status, _, _)) if status.is_success() => {}
            Ok((status, _, body)) => log(format_args!(
                "runtime api answered {status} to the init error: {}",
                String::from_utf8_lossy(&body)
            )),
            Err(error) => log(format_args!("cannot report the init error: {error:?}")),
        }
        Error::Init(diagnostic)
    }

    /// Runs the invocation loop with a JSON handler: each event is deserialized into `E`, each
    /// `Ok` result serialized as the JSON response. Returns only when the Runtime API fails.
    pub async fn run<F, Fut, E, R, Err>(self, handler: F) -> Result<(), Error>
    where
        F: FnMut(E, Context) -> Fut,
        Fut: Future<Output = Result<R, Err>>,
        E: DeserializeOwned,
        R: Serialize,
        Err: Into<Diagnostic>,
    {
        self.serve(handler, decode_json, encode_json, APPLICATION_JSON)
            .await
    }

    /// Runs the invocation loop with a raw handler: the event's bytes in, the response's bytes
    /// out (sent as `application/octet-stream`). Returns only when the Runtime API fails.
    pub async fn run_bytes<F, Fut, R, Err>(self, handler: F) -> Result<(), Error>
    where
        F: FnMut(Bytes, Context) -> Fut,
        Fut: Future<Output = Result<R, Err>>,
        R: Into<Bytes>,
        Err: Into<Diagnostic>,
    {
        self.serve(handler, Ok, |r: R| Ok(r.into()), APPLICATION_OCTET_STREAM)
            .await
    }

    pub(crate) async fn serve<F, Fut, E, R, Err, D, S>(
        mut self,
        mut handler: F,
        decode: D,
        encode: S,
        content_type: HeaderValue,
    ) -> Result<(), Error>
    where
        F: FnMut(E, Context) -> Fut,
        Fut: Future<Output = Result<R, Err>>,
        Err: Into<Diagnostic>,
        D: Fn(Bytes) -> Result<E, Diagnostic>,
        S: Fn(R) -> Result<Bytes, Diagnostic>,
    {
        // Whether `_X_AMZN_TRACE_ID` may be set; true at first in case the environment set it.
        let mut trace_exported = self.export_trace;
        loop {
            let Some((status, headers, event)) = self.next_event().await? else {
                return Ok(());
            };
            if !status.is_success() {
                return Err(runtime_api_error(status, &event));
            }
            let request_id = request_id(&headers)?;
            let response_uri = invocation_uri(request_id, runtime::response_path(request_id))?;

            let outcome = match Context::from_headers(request_id, &headers, self.config.clone()) {
                Err(diagnostic) => Err(diagnostic),
                Ok(context) => {
                    if self.export_trace {
                        export_trace_id(&mut trace_exported, context.xray_trace_id.as_deref());
                    }
                    // One future for decode, call, await and encode, so a panic in any user code
                    // (a Deserialize impl, the handler call, its future, a Serialize impl) is
                    // caught in one place.
                    let invocation = pin!(crate::log::scope(request_id, async {
                        let event = decode(event)?;
                        match handler(event, context).await {
                            Ok(response) => encode(response),
                            Err(error) => Err(error.into()),
                        }
                    }));
                    match CatchUnwind::new(invocation).await {
                        Ok(outcome) => outcome,
                        Err(payload) => Err(panic::diagnostic(&payload)),
                    }
                }
            };

            let invocation_id = headers.get(&runtime::INVOCATION_ID);
            let request = match outcome {
                Ok(body) => {
                    let mut request = self.client.request(Method::POST, response_uri, body);
                    let headers = request.headers_mut();
                    headers.insert(CONTENT_TYPE, content_type.clone());
                    if let Some(invocation_id) = invocation_id {
                        headers.insert(&runtime::INVOCATION_ID, invocation_id.clone());
                    }
                    request
                }
                Err(diagnostic) => self.error_request(request_id, invocation_id, &diagnostic)?,
            };
            let answer = self.client.exchange(request).await;
            check_answer(request_id, answer)?;
        }
    }

    /// Runs the invocation loop with a streaming handler: each event is deserialized into `E`
    /// and the handler writes its response to a [`ResponseStream`], each write sent as it is
    /// made. Returns only when the Runtime API fails.
    ///
    /// The response starts on the first write, so a handler that fails before writing is
    /// reported as usual (`/error`); one that fails (or panics) after it ends the stream with
    /// Lambda's error trailers. Meant for functions whose invoke mode is `RESPONSE_STREAM`.
    ///
    /// ```no_run
    /// use coldstart_runtime::{Context, Error, HttpPrelude, ResponseStream, Runtime};
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Error> {
    ///     let runtime = Runtime::from_env().await?;
    ///     runtime
    ///         .run_streaming(|lines: u32, _ctx: Context, mut stream: ResponseStream| async move {
    ///             stream
    ///                 .http(HttpPrelude::new(200).header("content-type", "text/plain"))
    ///                 .await?;
    ///             for n in 0..lines {
    ///                 stream.write(format!("line {n}\n")).await?;
    ///             }
    ///             Ok::<_, Error>(())
    ///         })
    ///         .await
    /// }
    /// ```
    pub async fn run_streaming<F, Fut, E, Err>(mut self, mut handler: F) -> Result<(), Error>
    where
        F: FnMut(E, Context, ResponseStream) -> Fut,
        Fut: Future<Output = Result<(), Err>>,
        E: DeserializeOwned,
        Err: Into<Diagnostic>,
    {
        // Whether `_X_AMZN_TRACE_ID` may be set; true at first in case the environment set it.
        let mut trace_exported = self.export_trace;
        loop {
            let (status, headers, event) = self.client.next().await?;
            if !status.is_success() {
                return Err(runtime_api_error(status, &event));
            }
            let request_id = request_id(&headers)?;
            let invocation_id = headers.get(&runtime::INVOCATION_ID);

            let context = match Context::from_headers(request_id, &headers, self.config.clone()) {
                Ok(context) => context,
                Err(diagnostic) => {
                    let request = self.error_request(request_id, invocation_id, &diagnostic)?;
                    let answer = self.client.exchange(request).await;
                    check_answer(request_id, answer)?;
                    continue;
                }
            };
            if self.export_trace {
                export_trace_id(&mut trace_exported, context.xray_trace_id.as_deref());
            }
            let (stream, ends) = ResponseStream::new();
            // As in `serve`: one future, so a panic anywhere in user code is caught in one place.
            let invocation = pin!(crate::log::scope(request_id, async {
                let event = decode_json(event)?;
                handler(event, context, stream).await.map_err(Into::into)
            }));
            let invocation = CatchUnwind::new(invocation);
            let answer = self
                .stream(request_id, invocation_id, invocation, ends)
                .await;
            check_answer(request_id, answer)?;
        }
    }

    /// Drives one streaming invocation and returns the Runtime API's answer: runs the handler
    /// alone until its first write (or its end), then posts `/response` while it goes on writing,
    /// or `/error` when it failed before writing anything.
    async fn stream<I>(
        &mut self,
        request_id: &str,
        invocation_id: Option<&HeaderValue>,
        mut invocation: I,
        ends: Ends,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Error>
    where
        I: Future<Output = Result<Result<(), Diagnostic>, panic::Payload>> + Unpin,
    {
        // Before the handler runs, as in `serve`: an unusable id must not cut a stream short.
        let uri = invocation_uri(request_id, runtime::response_path(request_id))?;
        let Ends { head, frames, body } = ends;
        let mut head = Some(head);
        // The content type of a stream dropped before any write.
        let mut unwritten = None;
        let begun = poll_fn(|cx| {
            // The handler first: if it wrote and finished in one poll, its head is still read below.
            if let Poll::Ready(outcome) = Pin::new(&mut invocation).poll(cx) {
                return Poll::Ready(Begun::Finished(settle(outcome)));
            }
            // Polled only until it resolves (a oneshot must not be polled again after that).
            if let Some(Poll::Ready(received)) = head.as_mut().map(|h| Pin::new(h).poll(cx)) {
                head = None;
                match received {
                    Ok(Head {
                        content_type,
                        written: true,
                    }) => return Poll::Ready(Begun::Written(content_type)),
                    Ok(Head { content_type, .. }) => unwritten = Some(content_type),
                    // Unreachable: the stream sends its head before it is dropped.
                    Err(_) => {}
                }
            }
            Poll::Pending
        })
        .await;

        let (content_type, outcome, body) = match begun {
            Begun::Written(content_type) => (content_type, None, body),
            Begun::Finished(outcome) => {
                // The stream went with the handler's future, so its head is waiting (unless the
                // handler leaked the stream, e.g. into a task; then it cannot start any more).
                let received = head.as_mut().and_then(|h| h.try_recv().ok());
                match (received, outcome) {
                    (Some(received), outcome) if received.written => {
                        (received.content_type, Some(outcome), body)
                    }
                    (received, Ok(())) => {
                        let content_type = received
                            .map(|h| h.content_type)
                            .or(unwritten)
                            .unwrap_or(DEFAULT_CONTENT_TYPE);
                        // Nothing was written: an empty stream, and writes of a leaked stream
                        // fail at once rather than wait on a channel nobody reads.
                        drop(body);
                        (content_type, Some(Ok(())), StreamBody::empty())
                    }
                    (_, Err(diagnostic)) => {
                        let request = self.error_request(request_id, invocation_id, &diagnostic)?;
                        return self.client.exchange(request).await;
                    }
                }
            }
        };

        let mut request = self.client.request(Method::POST, uri, Body::Stream(body));
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(&runtime::RESPONSE_MODE, STREAMING);
        headers.insert(TRAILER, TRAILER_VALUE);
        if let Some(invocation_id) = invocation_id {
            headers.insert(&runtime::INVOCATION_ID, invocation_id.clone());
        }
        let finish = async move {
            let outcome = match outcome {
                Some(outcome) => outcome,
                None => settle(invocation.await),
            };
            if let Err(diagnostic) = outcome {
                let trailers = error_trailers(&diagnostic, error_type_header(&diagnostic));
                // Fails only when hyper dropped the body (the request failed): the answer says so.
                let _ = frames.send(Frame::trailers(trailers)).await;
            }
            // `frames` is dropped here; the stream went with the handler's future, so the body
            // ends (after the trailers, if any).
        };
        // The request and the rest of the handler run together: hyper sends each chunk as the
        // handler writes it, and the answer (202) comes once the body has ended.
        let (answer, ()) = tokio::join!(self.client.exchange(request), finish);
        answer
    }

    /// `POST /error` for `diagnostic`.
    fn error_request(
        &self,
        request_id: &str,
        invocation_id: Option<&HeaderValue>,
        diagnostic: &Diagnostic,
    ) -> Result<Request<Body>, Error> {
        let uri = invocation_uri(request_id, runtime::error_path(request_id))?;
        let body = Bytes::from(diagnostic.to_json());
        let mut request = self.client.request(Method::POST, uri, body);
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(&runtime::FUNCTION_ERROR_TYPE, error_type_header(diagnostic));
        if let Some(invocation_id) = invocation_id {
            headers.insert(&runtime::INVOCATION_ID, invocation_id.clone());
        }
        Ok(request)
    }
}

/// How a streaming invocation got past its silent start.
enum Begun {
    /// The handler wrote: the response starts now, with this `Content-Type`.
    Written(HeaderValue),
    /// The handler finished without writing (or wrote and finished in one poll).
    Finished(Result<(), Diagnostic>),
}

/// A handler's outcome with a panic turned into its diagnostic.
fn settle(outcome: Result<Result<(), Diagnostic>, panic::Payload>) -> Result<(), Diagnostic> {
    outcome.unwrap_or_else(|payload| Err(panic::diagnostic(&payload)))
}

/// Applies Lambda's rules to the answer to a `/response` or `/error`: a 5xx ends the loop, any
/// other failure loses only this invocation.
fn check_answer(
    request_id: &str,
    answer: Result<(StatusCode, HeaderMap, Bytes), Error>,
) -> Result<(), Error> {
    let (status, _, answer) = answer?;
    if status.is_server_error() {
        return Err(runtime_api_error(status, &answer));
    }
    if !status.is_success() {
        // 400, 403, 410 (invoke timed out), 413 (too large): this invocation is lost, the
        // environment is not.
        log(format_args!(
            "runtime api answered {status} for invocation {request_id}: {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    Ok(())
}

/// Connects with [`Runtime::from_env`] and runs the invocation loop with a JSON handler; see
/// [`Runtime::run`].
pub async fn run<F, Fut, E, R, Err>(handler: F) -> Result<(), Error>
where
    F: FnMut(E, Context) -> Fut,
    Fut: Future<Output = Result<R, Err>>,
    E: DeserializeOwned,
    R: Serialize,
    Err: Into<Diagnostic>,
{
    Runtime::from_env().await?.run(handler).await
}

/// Connects with [`Runtime::from_env`] and runs the invocation loop with a streaming handler; see
/// [`Runtime::run_streaming`].
pub async fn run_streaming<F, Fut, E, Err>(handler: F) -> Result<(), Error>
where
    F: FnMut(E, Context, ResponseStream) -> Fut,
    Fut: Future<Output = Result<(), Err>>,
    E: DeserializeOwned,
    Err: Into<Diagnostic>,
{
    Runtime::from_env().await?.run_streaming(handler).await
}

/// Connects with [`Runtime::from_env`] and runs the invocation loop with a raw bytes handler; see
/// [`Runtime::run_bytes`].
pub async fn run_bytes<F, Fut, R, Err>(handler: F) -> Result<(), Error>
where
    F: FnMut(Bytes, Context) -> Fut,
    Fut: Future<Output = Result<R, Err>>,
    R: Into<Bytes>,
    Err: Into<Diagnostic>,
{
    Runtime::from_env().await?.run_bytes(handler).await
}

pub(crate) fn decode_json<E: DeserializeOwned>(event: Bytes) -> Result<E, Diagnostic> {
    serde_json::from_slice(&event).map_err(|e| {
        Diagnostic::new(
            INVALID_EVENT_DATA,
            format!("cannot deserialize the event: {e}"),
        )
    })
}

pub(crate) fn encode_json<R: Serialize>(response: R) -> Result<Bytes, Diagnostic> {
    serde_json::to_vec(&response).map(Bytes::from).map_err(|e| {
        Diagnostic::new(
            SERIALIZATION_ERROR,
            format!("cannot serialize the response: {e}"),
        )
    })
}

/// The request id of a `next` answer, if it can address `/response` and `/error`.
fn request_id(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers.get(&runtime::REQUEST_ID);
    match value.and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() && !id.contains(['/', '?', '#']) => Ok(id),
        _ => Err(Error::InvalidRequestId {
            value: value
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
        }),
    }
}

/// `path` (built from `request_id`) as a request URI.
fn invocation_uri(request_id: &str, path: String) -> Result<Uri, Error> {
    Uri::try_from(path).map_err(|_| Error::InvalidRequestId {
        value: request_id.to_owned(),
    })
}

/// The `Lambda-Runtime-Function-Error-Type` value; `Unhandled` when the type cannot be a header.
fn error_type_header(diagnostic: &Diagnostic) -> HeaderValue {
    HeaderValue::from_str(&diagnostic.error_type).unwrap_or(HeaderValue::from_static("Unhandled"))
}

fn runtime_api_error(status: StatusCode, body: &[u8]) -> Error {
    Error::RuntimeApi {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

/// Exports the invocation's X-Ray header as `_X_AMZN_TRACE_ID`, or removes it when absent;
/// `exported` remembers whether the variable may be set, so invocations without a trace id do not
/// touch the environment again and again.
fn export_trace_id(exported: &mut bool, trace_id: Option<&str>) {
    if trace_id.is_none() && !*exported {
        return;
    }
    *exported = trace_id.is_some();
    match trace_id {
        // SAFETY: the Lambda runtime contract requires exporting the trace id per invocation
        // (X-Ray SDKs read it from the environment). It is written from the loop, between
        // invocations, before the handler runs; std's own environment access is serialised by a
        // lock, so the only possible race is foreign code calling libc `getenv` on another thread
        // at this moment, the same trade-off every official Lambda runtime makes.
        Some(id) if crate::trace_env::export(id) => {}
        Some(id) if !id.contains('\0') => unsafe { std::env::set_var(env::TRACE_ID, id) },
        // SAFETY: as above.
        _ => unsafe { std::env::remove_var(env::TRACE_ID) },
    }
}

/// One ERROR line of the runtime's own on stderr, which Lambda sends to the function's log
/// stream, in its log format.
fn log(message: fmt::Arguments<'_>) {
    crate::log::write(
        crate::log::Level::Error,
        format_args!("coldstart-runtime: {message}"),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use std::time::Duration;

    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING, USER_AGENT};
    use http::{HeaderName, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;
    use crate::HttpPrelude;

    /// A scripted Runtime API: answers `next` from a queue (500 once it is empty) and records
    /// every other request, answering each from `answers` (202 once that is empty) after reading
    /// its whole body.
    #[derive(Default)]
    struct Script {
        nexts: Mutex<VecDeque<(HeaderMap, &'static str)>>,
        answers: Mutex<VecDeque<StatusCode>>,
        posts: Mutex<Vec<Posted>>,
        connections: AtomicUsize,
        /// Receives each data frame of a body as it arrives; the test holds the receiver.
        arrivals: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
    }

    #[derive(Debug)]
    struct Posted {
        path: String,
        headers: HeaderMap,
        body: Bytes,
        trailers: Option<HeaderMap>,
    }

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn invocation(request_id: &str, extra: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut set = |name: &HeaderName, value: &str| {
            let value = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}"));
            headers.insert(name.clone(), value);
        };
        set(&runtime::REQUEST_ID, request_id);
        set(&runtime::DEADLINE_MS, "4102444800000");
        set(
            &runtime::INVOKED_FUNCTION_ARN,
            "arn:aws:lambda:us-east-1:1:function:f",
        );
        for (name, value) in extra {
            set(name, value);
        }
        headers
    }

    impl Script {
        fn next(self, headers: HeaderMap, body: &'static str) -> Self {
            lock(&self.nexts).push_back((headers, body));
            self
        }

        fn answer(self, status: StatusCode) -> Self {
            lock(&self.answers).push_back(status);
            self
        }

        /// Reports each data frame of every body to the returned receiver as it arrives.
        fn observe(&self) -> mpsc::UnboundedReceiver<Bytes> {
            let (sender, receiver) = mpsc::unbounded_channel();
            *lock(&self.arrivals) = Some(sender);
            receiver
        }

        fn posts(&self) -> Vec<Posted> {
            std::mem::take(&mut *lock(&self.posts))
        }

        async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
            let (parts, mut incoming) = request.into_parts();
            let mut body = Vec::new();
            let mut trailers = None;
            while let Some(Ok(frame)) = incoming.frame().await {
                match frame.into_data() {
                    Ok(data) => {
                        if let Some(arrivals) = lock(&self.arrivals).as_ref() {
                            let _ = arrivals.send(data.clone());
                        }
                        body.extend_from_slice(&data);
                    }
                    Err(frame) => trailers = frame.into_trailers().ok(),
                }
            }
            let body = Bytes::from(body);
            if parts.uri.path() == runtime::NEXT_PATH {
                let next = lock(&self.nexts).pop_front();
                let Some((headers, event)) = next else {
                    let mut response = Response::new(Full::from("Internal Server Error"));
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return response;
                };
                let mut response = Response::new(Full::from(event));
                *response.headers_mut() = headers;
                return response;
            }
            lock(&self.posts).push(Posted {
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body,
                trailers,
            });
            let status = lock(&self.answers)
                .pop_front()
                .unwrap_or(StatusCode::ACCEPTED);
            let mut response = Response::new(Full::from(runtime::ACCEPTED_BODY));
            *response.status_mut() = status;
            response
        }

        /// Serves the script on `127.0.0.1:0`; `keep_alive: false` closes every connection after
        /// one exchange.
        async fn serve(self: Arc<Self>, keep_alive: bool) -> SocketAddr {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    self.connections.fetch_add(1, Ordering::SeqCst);
                    let script = self.clone();
                    let service = service_fn(move |request| {
                        let script = script.clone();
                        async move { Ok::<_, Infallible>(script.handle(request).await) }
                    });
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new()
                            .keep_alive(keep_alive)
                            .serve_connection(TokioIo::new(stream), service),
                    );
                }
            });
            addr
        }
    }

    /// A runtime at `addr` that owns its process, as [`Runtime::from_env`] makes one.
    async fn connect(addr: SocketAddr) -> Runtime {
        let mut runtime = Runtime::connect(&addr.to_string(), Config::default())
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        runtime.export_trace = true;
        runtime
    }

    fn header<'a>(posted: &'a Posted, name: &HeaderName) -> Option<&'a str> {
        posted.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn error_body(posted: &Posted) -> coldstart_protocol::ErrorBody {
        serde_json::from_slice(&posted.body).unwrap_or_else(|e| panic!("{e}: {posted:?}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loop_answers_each_invocation_and_stops_on_500() {
        let script = Arc::new(
            Script::default()
                .next(
                    invocation(
                        "r1",
                        &[
                            (&runtime::INVOCATION_ID, "inv-1"),
                            (&runtime::TRACE_ID, "Root=1-a"),
                        ],
                    ),
                    r#"{"a":1}"#,
                )
                .next(invocation("r2", &[]), r#""panic""#)
                .next(invocation("r3", &[]), "not json")
                .next(invocation("r4", &[]), r#"{"fail":true}"#)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::GONE)
                .next(invocation("r5", &[]), "{}"),
        );
        let addr = script.clone().serve(true).await;
        let mut broken_deadline = invocation("r6", &[]);
        broken_deadline.insert(runtime::DEADLINE_MS, HeaderValue::from_static("soon"));
        lock(&script.nexts).push_back((broken_deadline, "{}"));

        let traces = Arc::new(Mutex::new(Vec::new()));
        let seen = traces.clone();
        let result = connect(addr)
            .await
            .run(move |event: serde_json::Value, ctx: Context| {
                lock(&seen).push(std::env::var(env::TRACE_ID).ok());
                async move {
                    if event == "panic" {
                        panic!("handler panicked on {}", ctx.request_id);
                    }
                    if event.get("fail").is_some() {
                        return Err(format!("bad event in {}", ctx.request_id));
                    }
                    Ok(event)
                }
            })
            .await;

        assert!(
            matches!(result, Err(Error::RuntimeApi { status, .. }) if status == 500),
            "{result:?}"
        );
        let posts = script.posts();
        let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                runtime::response_path("r1"),
                runtime::error_path("r2"),
                runtime::error_path("r3"),
                runtime::error_path("r4"),
                runtime::response_path("r5"),
                runtime::error_path("r6"),
            ]
        );

        let ok = &posts[0];
        assert_eq!(ok.body, r#"{"a":1}"#);
        assert_eq!(header(ok, &CONTENT_TYPE), Some("application/json"));
        assert_eq!(header(ok, &runtime::INVOCATION_ID), Some("inv-1"));
        assert!(header(ok, &USER_AGENT).is_some_and(|ua| ua.starts_with("coldstart-runtime/")));

        let panicked = &posts[1];
        assert_eq!(header(panicked, &runtime::INVOCATION_ID), None);
        assert_eq!(
            header(panicked, &runtime::FUNCTION_ERROR_TYPE),
            Some("Panic")
        );
        assert_eq!(
            error_body(panicked),
            coldstart_protocol::ErrorBody::new("Panic", "handler panicked on r2")
        );

        assert_eq!(error_body(&posts[2]).error_type, INVALID_EVENT_DATA);
        assert_eq!(
            error_body(&posts[3]),
            coldstart_protocol::ErrorBody::new("String", "bad event in r4")
        );
        assert_eq!(
            header(&posts[3], &runtime::FUNCTION_ERROR_TYPE),
            Some("String")
        );
        assert_eq!(
            header(&posts[5], &runtime::FUNCTION_ERROR_TYPE),
            Some(crate::context::INVALID_HEADER)
        );

        // The 410 on r4's error did not stop the loop, and the trace id was only exported for r1.
        assert_eq!(
            *lock(&traces),
            [Some("Root=1-a".to_owned()), None, None, None]
        );
        assert_eq!(script.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bytes_loop_reconnects_when_the_api_closes_connections() {
        let script = Arc::new(
            Script::default()
                .next(invocation("b1", &[]), "raw in")
                .next(invocation("b2", &[]), "again"),
        );
        let addr = script.clone().serve(false).await;
        let result = connect(addr)
            .await
            .run_bytes(|event: Bytes, _ctx: Context| async move {
                let mut reply = b"got ".to_vec();
                reply.extend_from_slice(&event);
                Ok::<_, std::io::Error>(reply)
            })
            .await;
        assert!(
            matches!(result, Err(Error::RuntimeApi { .. })),
            "{result:?}"
        );
        let posts = script.posts();
        assert_eq!(posts.len(), 2);
        assert_eq!(posts[0].body, "got raw in");
        assert_eq!(posts[1].body, "got again");
        assert_eq!(
            header(&posts[0], &CONTENT_TYPE),
            Some("application/octet-stream")
        );
        assert_eq!(script.connections.load(Ordering::SeqCst), 5);
    }

    /// Bounds a test whose failure mode is a hang (a chunk held back until the end): it fails
    /// instead. Not a readiness wait: every step inside is awaited on a signal.
    async fn bounded<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(30), future)
            .await
            .unwrap_or_else(|_| panic!("timed out"))
    }

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streaming_sends_each_chunk_before_the_next_write() {
        let script = Arc::new(Script::default().next(
            invocation("s1", &[(&runtime::INVOCATION_ID, "inv-s1")]),
            r#""second""#,
        ));
        let mut arrivals = Some(script.observe());
        let addr = script.clone().serve(true).await;
        let runtime = connect(addr).await;
        let result = bounded(runtime.run_streaming(
            move |event: String, _ctx: Context, mut stream: ResponseStream| {
                let arrivals = arrivals.take();
                async move {
                    let mut arrivals = arrivals.ok_or("called twice")?;
                    stream.set_content_type("text/plain")?;
                    stream.write("first,").await?;
                    // The server must hold the first chunk before the second is written: a
                    // runtime that buffers until the end never gets past this loop.
                    let mut arrived = Vec::new();
                    while arrived.len() < b"first,".len() {
                        let chunk = arrivals.recv().await.ok_or("server gone")?;
                        arrived.extend_from_slice(&chunk);
                    }
                    if arrived != b"first," {
                        return Err(format!("arrived first: {arrived:?}").into());
                    }
                    stream.write(event).await?;
                    Ok::<_, BoxError>(())
                }
            },
        ))
        .await;

        assert!(
            matches!(&result, Err(Error::RuntimeApi { status, .. }) if *status == 500),
            "{result:?}"
        );
        let posts = script.posts();
        assert_eq!(posts.len(), 1, "{posts:?}");
        let streamed = &posts[0];
        assert_eq!(streamed.path, runtime::response_path("s1"));
        assert_eq!(streamed.body, "first,second");
        assert_eq!(streamed.trailers, None);
        assert_eq!(
            header(streamed, &runtime::RESPONSE_MODE),
            Some(runtime::RESPONSE_MODE_STREAMING)
        );
        assert_eq!(header(streamed, &TRANSFER_ENCODING), Some("chunked"));
        assert_eq!(header(streamed, &CONTENT_LENGTH), None);
        assert_eq!(header(streamed, &CONTENT_TYPE), Some("text/plain"));
        assert_eq!(
            header(streamed, &TRAILER),
            Some("Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
        );
        assert_eq!(header(streamed, &runtime::INVOCATION_ID), Some("inv-s1"));
    }

    /// The one POST a streaming `handler` makes for the invocation `id` (the script has no
    /// other, so the loop then ends with a Runtime API error).
    async fn one_streamed_post<F, Fut>(id: &str, handler: F) -> Posted
    where
        F: FnMut(serde_json::Value, Context, ResponseStream) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let script = Arc::new(Script::default().next(invocation(id, &[]), "{}"));
        let addr = script.clone().serve(true).await;
        let runtime = connect(addr).await;
        let result = bounded(runtime.run_streaming(handler)).await;
        assert!(
            matches!(result, Err(Error::RuntimeApi { .. })),
            "{result:?}"
        );
        let mut posts = script.posts();
        assert_eq!(posts.len(), 1, "{posts:?}");
        let post = posts.remove(0);
        assert_eq!(post.path, runtime::response_path(id));
        assert_eq!(
            header(&post, &CONTENT_TYPE),
            Some("application/vnd.awslambda.http-integration-response")
        );
        post
    }

    #[tokio::test]
    async fn http_integration_stream_starts_with_the_prelude() {
        let post = one_streamed_post(
            "h1",
            |_event: serde_json::Value, _ctx: Context, mut stream: ResponseStream| async move {
                let prelude = HttpPrelude::new(201)
                    .header("content-type", "text/plain")
                    .cookie("a=b; Path=/");
                stream.http(prelude).await?;
                if !matches!(
                    stream.set_content_type("text/html"),
                    Err(Error::StreamStarted)
                ) {
                    return Err("content type changed after the prelude".into());
                }
                stream.write(&b"body"[..]).await?;
                Ok::<_, BoxError>(())
            },
        )
        .await;
        let mut expected =
            br#"{"statusCode":201,"headers":{"content-type":"text/plain"},"cookies":["a=b; Path=/"]}"#
                .to_vec();
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(b"body");
        assert_eq!(post.body, expected);
    }

    #[tokio::test]
    async fn a_prelude_with_the_first_bytes_and_a_finishing_chunk_make_the_same_stream() {
        let post = one_streamed_post(
            "h2",
            |_event: serde_json::Value, _ctx: Context, mut stream: ResponseStream| async move {
                let prelude = HttpPrelude::new(202).header("content-type", "text/plain");
                stream.http_with(prelude, &b"bo"[..]).await?;
                stream.write(&b"d"[..]).await?;
                stream.finish(&b"y"[..]).await?;
                Ok::<_, BoxError>(())
            },
        )
        .await;
        let mut expected =
            br#"{"statusCode":202,"headers":{"content-type":"text/plain"},"cookies":[]}"#.to_vec();
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(b"body");
        assert_eq!(post.body, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streaming_failures_end_in_trailers_or_go_to_error() {
        let script = Arc::new(
            Script::default()
                .next(invocation("e1", &[]), r#""fail-mid""#)
                .next(invocation("e2", &[]), r#""panic-mid""#)
                .next(
                    invocation("e3", &[(&runtime::INVOCATION_ID, "inv-e3")]),
                    r#""fail-early""#,
                )
                .next(invocation("e4", &[]), r#""panic-early""#)
                .next(invocation("e5", &[]), r#""empty""#)
                .next(invocation("e6", &[]), "42")
                .next(invocation("e7", &[]), r#""ok""#)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::ACCEPTED)
                // A 4xx loses the invocation, not the loop; a 5xx ends the loop.
                .answer(StatusCode::GONE)
                .answer(StatusCode::ACCEPTED)
                .answer(StatusCode::INTERNAL_SERVER_ERROR),
        );
        let addr = script.clone().serve(true).await;
        let runtime = connect(addr).await;
        let result = bounded(runtime.run_streaming(
            |event: String, _ctx: Context, mut stream: ResponseStream| async move {
                match event.as_str() {
                    "fail-mid" => {
                        stream.write("partial").await?;
                        Err(Diagnostic::new("Function.Broken", "went wrong"))
                    }
                    "panic-mid" => {
                        stream.write("half").await?;
                        panic!("stream panicked");
                    }
                    "fail-early" => Err(Diagnostic::new("Function.Early", "before any byte")),
                    "panic-early" => panic!("early panic"),
                    "empty" => {
                        stream.set_content_type("text/csv")?;
                        Ok(())
                    }
                    _ => stream.write(event).await.map_err(Diagnostic::from),
                }
            },
        ))
        .await;

        // The 500 is the answer to e7's stream (`next` would have answered with another body).
        assert!(
            matches!(&result, Err(Error::RuntimeApi { status, body })
                if *status == 500 && body == runtime::ACCEPTED_BODY),
            "{result:?}"
        );
        let posts = script.posts();
        let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                runtime::response_path("e1"),
                runtime::response_path("e2"),
                runtime::error_path("e3"),
                runtime::error_path("e4"),
                runtime::response_path("e5"),
                runtime::error_path("e6"),
                runtime::response_path("e7"),
            ]
        );

        let trailer = |posted: &Posted, name: &HeaderName| {
            let trailers = posted.trailers.as_ref();
            let value = trailers.and_then(|t| t.get(name)).map(HeaderValue::to_str);
            value.and_then(Result::ok).map(str::to_owned)
        };
        let failed = &posts[0];
        assert_eq!(failed.body, "partial");
        assert_eq!(
            trailer(failed, &runtime::FUNCTION_ERROR_TYPE).as_deref(),
            Some("Function.Broken")
        );
        // base64 of {"errorType":"Function.Broken","errorMessage":"went wrong"}
        assert_eq!(
            trailer(failed, &runtime::FUNCTION_ERROR_BODY).as_deref(),
            Some(
                "eyJlcnJvclR5cGUiOiJGdW5jdGlvbi5Ccm9rZW4iLCJlcnJvck1lc3NhZ2UiOiJ3ZW50IHdyb25nIn0="
            )
        );

        let panicked = &posts[1];
        assert_eq!(panicked.body, "half");
        assert_eq!(
            trailer(panicked, &runtime::FUNCTION_ERROR_TYPE).as_deref(),
            Some("Panic")
        );
        // base64 of {"errorType":"Panic","errorMessage":"stream panicked"}
        assert_eq!(
            trailer(panicked, &runtime::FUNCTION_ERROR_BODY).as_deref(),
            Some("eyJlcnJvclR5cGUiOiJQYW5pYyIsImVycm9yTWVzc2FnZSI6InN0cmVhbSBwYW5pY2tlZCJ9")
        );

        let early = &posts[2];
        assert_eq!(
            error_body(early),
            coldstart_protocol::ErrorBody::new("Function.Early", "before any byte")
        );
        assert_eq!(
            header(early, &runtime::FUNCTION_ERROR_TYPE),
            Some("Function.Early")
        );
        assert_eq!(header(early, &runtime::INVOCATION_ID), Some("inv-e3"));
        assert_eq!(header(early, &runtime::RESPONSE_MODE), None);
        assert_eq!(
            error_body(&posts[3]),
            coldstart_protocol::ErrorBody::new("Panic", "early panic")
        );

        let empty = &posts[4];
        assert_eq!(empty.body, "");
        assert_eq!(empty.trailers, None);
        assert_eq!(header(empty, &CONTENT_TYPE), Some("text/csv"));
        assert_eq!(header(empty, &TRANSFER_ENCODING), Some("chunked"));
        assert_eq!(
            header(empty, &runtime::RESPONSE_MODE),
            Some(runtime::RESPONSE_MODE_STREAMING)
        );

        assert_eq!(error_body(&posts[5]).error_type, INVALID_EVENT_DATA);
        assert_eq!(posts[6].body, "ok");
        assert_eq!(
            header(&posts[6], &CONTENT_TYPE),
            Some("application/octet-stream")
        );
    }

    #[tokio::test]
    async fn init_error_is_posted_and_returned() {
        let script = Arc::new(Script::default());
        let addr = script.clone().serve(true).await;
        let error = connect(addr)
            .await
            .init_error(Diagnostic::new("Runtime.ConfigInvalid", "no table"))
            .await;
        assert!(matches!(&error, Error::Init(d) if d.error_type == "Runtime.ConfigInvalid"));
        let posts = script.posts();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].path, runtime::INIT_ERROR_PATH);
        assert_eq!(
            header(&posts[0], &runtime::FUNCTION_ERROR_TYPE),
            Some("Runtime.ConfigInvalid")
        );
        assert_eq!(
            error_body(&posts[0]),
            coldstart_protocol::ErrorBody::new("Runtime.ConfigInvalid", "no table")
        );
    }

    #[tokio::test]
    async fn missing_or_bad_runtime_api_is_an_error_not_a_panic() {
        let missing = Runtime::from_parts(None, Config::default()).await;
        assert!(
            matches!(missing, Err(Error::MissingRuntimeApi)),
            "{missing:?}"
        );
        let empty = Runtime::from_parts(Some(String::new()), Config::default()).await;
        assert!(matches!(empty, Err(Error::MissingRuntimeApi)), "{empty:?}");
        let bad = Runtime::from_parts(Some("no-port".into()), Config::default()).await;
        assert!(
            matches!(bad, Err(Error::InvalidRuntimeApi { .. })),
            "{bad:?}"
        );

        // A port nobody listens on any more.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        drop(listener);
        let refused = Runtime::from_parts(Some(addr.to_string()), Config::default()).await;
        assert!(matches!(refused, Err(Error::Connect { .. })), "{refused:?}");
    }

    #[test]
    fn request_id_must_address_a_path() {
        let ok = invocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd", &[]);
        assert_eq!(
            request_id(&ok).ok(),
            Some("8476a536-e9f4-11e8-9739-2dfe598c3fcd")
        );
        for bad in ["", "a/b", "a?b", "a#b"] {
            let headers = invocation(bad, &[]);
            assert!(
                matches!(request_id(&headers), Err(Error::InvalidRequestId { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(request_id(&HeaderMap::new()).is_err());
    }

    /// The loop's future must be spawnable when the handler is.
    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let future = run(|event: serde_json::Value, _ctx: Context| async move {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(event)
        });
        assert_send(&future);
        let future = run_bytes(|event: Bytes, _ctx: Context| async move { Ok::<_, String>(event) });
        assert_send(&future);
        let future = run_streaming(
            |event: String, _ctx: Context, mut stream: ResponseStream| async move {
                stream.write(event).await
            },
        );
        assert_send(&future);
    }
}

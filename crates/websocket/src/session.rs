//! One connection's life after `$connect` accepted it: reading the client's messages and routing
//! each to its function, sending what the `@connections` API and two-way routes send, closing on
//! idle timeout, maximum duration, `DELETE`, shutdown or oversized messages, and — whatever ended
//! it — leaving the registry and invoking `$disconnect` exactly once.
//!
//! The logic is written against a [`Sink`] and a [`Stream`] of WebSocket messages, not a socket,
//! so unit tests drive it through channels; the server hands it the halves of a real
//! WebSocket.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::answer::{FORBIDDEN, INTERNAL_ERROR, error_message, route_response};
use crate::api::Plan;
use crate::backend::{Answer, Backend};
use crate::clock;
use crate::event::{self, Body};
use crate::registry::{Connection, Handle, Registry};
use crate::wire::{self, close};

/// Frames that may wait to be sent to one client before `PostToConnection` answers 429.
const OUTBOX_CAPACITY: usize = 256;

/// How long a close we started waits for the client's close frame before giving up on it.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How a connection ended, as its `$disconnect` event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The client sent a close frame, with a status code or without one.
    ClientClosed {
        /// The client's code, if its frame had one.
        code: Option<u16>,
        /// The client's reason.
        reason: String,
    },
    /// The connection broke without a close frame (network drop, client killed).
    Dropped,
    /// `DELETE @connections/{id}` closed it (1000).
    Deleted,
    /// No frame came from the client for the idle timeout (1001).
    IdleTimeout,
    /// It was open for the maximum duration (1001).
    MaxDuration,
    /// The server is shutting down (1001).
    Shutdown,
    /// The client sent a frame or message over the limits (1009).
    TooBig,
    /// The client broke the WebSocket protocol (1002).
    ProtocolError,
}

impl Ending {
    /// `disconnectStatusCode`.
    pub(crate) fn code(&self) -> u16 {
        match self {
            Ending::ClientClosed { code, .. } => code.unwrap_or(close::NO_STATUS),
            Ending::Dropped => close::ABNORMAL,
            Ending::Deleted => close::NORMAL,
            Ending::IdleTimeout | Ending::MaxDuration | Ending::Shutdown => close::GOING_AWAY,
            Ending::TooBig => close::MESSAGE_TOO_BIG,
            Ending::ProtocolError => close::PROTOCOL_ERROR,
        }
    }

    /// `disconnectReason` (and the reason of the close frame the server sends).
    pub(crate) fn reason(&self) -> &str {
        match self {
            Ending::ClientClosed { code: None, .. } => "Client-side close frame status not set",
            Ending::ClientClosed { reason, .. } => reason,
            Ending::Dropped => "Connection closed abnormally",
            Ending::Deleted => "Connection deleted",
            Ending::IdleTimeout => "Idle timeout",
            Ending::MaxDuration => "Maximum connection duration reached",
            Ending::Shutdown => "Going away",
            Ending::TooBig => "Message too big",
            Ending::ProtocolError => "Protocol error",
        }
    }

    /// The close frame the server sends, when it is the one closing.
    fn close_frame(&self) -> Option<CloseFrame> {
        match self {
            Ending::ClientClosed { .. } | Ending::Dropped => None,
            _ => Some(CloseFrame {
                code: CloseCode::from(self.code()),
                reason: self.reason().to_owned().into(),
            }),
        }
    }
}

/// Everything a session shares with the invocations it starts.
#[derive(Debug, Clone)]
struct Shared<B> {
    connection: Arc<Connection>,
    plan: Arc<Plan>,
    backend: B,
    /// Where the session leaves the table at its end.
    registry: Arc<Registry>,
    /// Message invocations run here, so a slow function never stops the session reading; the
    /// server waits for them at shutdown.
    tasks: TaskTracker,
    /// A sender of the session's own outbox, cloned into invocations for their replies.
    outbox: mpsc::Sender<Message>,
}

/// An accepted connection's session.
#[derive(Debug)]
pub(crate) struct Session<B> {
    shared: Shared<B>,
    /// Frames to send: posted through `@connections` (the registry holds a sender) or replies
    /// of invocations (each holds a sender). Never closes while the session lives, since
    /// `shared.outbox` is a sender too.
    outbox: mpsc::Receiver<Message>,
    /// Cancelled by `DELETE @connections/{id}`, through the registry's handle.
    delete: CancellationToken,
    /// The server's shutdown signal.
    shutdown: CancellationToken,
}

impl<B: Backend> Session<B> {
    /// Opens the session of `connection`, which `$connect` accepted: it enters the registry
    /// (and can be posted to) at once.
    pub(crate) fn open(
        connection: Arc<Connection>,
        plan: Arc<Plan>,
        backend: B,
        registry: Arc<Registry>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (outbox_tx, outbox) = mpsc::channel(OUTBOX_CAPACITY);
        let delete = CancellationToken::new();
        registry.insert(Handle {
            connection: connection.clone(),
            outbox: outbox_tx.clone(),
            delete: delete.clone(),
        });
        tracing::info!(
            connection_id = %connection.id,
            source_ip = %connection.source_ip,
            stage = %plan.api.stage,
            "connected"
        );
        Session {
            shared: Shared {
                connection,
                plan,
                backend,
                registry,
                tasks,
                outbox: outbox_tx,
            },
            outbox,
            delete,
            shutdown,
        }
    }

    /// The connection's id.
    pub(crate) fn id(&self) -> &str {
        &self.shared.connection.id
    }

    /// Runs the session until the connection ends, then leaves the registry and invokes
    /// `$disconnect`.
    #[cfg(test)]
    pub(crate) async fn serve<Si, St>(mut self, sink: &mut Si, stream: &mut St) -> Ending
    where
        Si: Sink<Message> + Unpin,
        Si::Error: Display,
        St: Stream<Item = Result<Message, WsError>> + Unpin,
    {
        let ending = self.run(sink, stream).await;
        self.finish(&ending).await;
        ending
    }

    /// Exchanges messages until the connection ends, and says how it ended. When the server
    /// ends it, it sends the close frame and waits (a little) for the client's.
    pub(crate) async fn run<Si, St>(&mut self, sink: &mut Si, stream: &mut St) -> Ending
    where
        Si: Sink<Message> + Unpin,
        Si::Error: Display,
        St: Stream<Item = Result<Message, WsError>> + Unpin,
    {
        let api = &self.shared.plan.api;
        let idle_timeout = api.idle_timeout;
        let idle = sleep(idle_timeout);
        tokio::pin!(idle);
        let max = sleep_until(Instant::now() + api.max_duration);
        tokio::pin!(max);
        let ending = loop {
            // Whichever comes first; none is favoured, so a chatty client cannot hold off a
            // deletion or the shutdown.
            let outgoing = tokio::select! {
                frame = stream.next() => {
                    let message = match frame {
                        Some(Ok(message)) => message,
                        Some(Err(err)) => break ending_of(&err),
                        None => break Ending::Dropped,
                    };
                    // Any frame from the client, pings included, is activity.
                    self.shared.connection.touch();
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    match &message {
                        Message::Text(text) => self.shared.on_message(Body::Text(text.as_str())),
                        Message::Binary(bytes) => self.shared.on_message(Body::Binary(bytes)),
                        Message::Close(frame) => {
                            // Sends the close reply tungstenite queued (a client that no
                            // longer reads gets no reply).
                            let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                            break Ending::ClientClosed {
                                code: frame.as_ref().map(|f| u16::from(f.code)),
                                reason: frame
                                    .as_ref()
                                    .map(|f| f.reason.as_str().to_owned())
                                    .unwrap_or_default(),
                            };
                        }
                        // tungstenite answers pings itself.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
                    }
                }
                Some(message) = self.outbox.recv() => Some(message),
                () = &mut idle => break Ending::IdleTimeout,
                () = &mut max => break Ending::MaxDuration,
                () = self.delete.cancelled() => break Ending::Deleted,
                () = self.shutdown.cancelled() => break Ending::Shutdown,
            };
            let Some(message) = outgoing else {
                continue;
            };
            // A client that stops reading fills the socket and stalls the send: it gives way
            // to the same ends as the wait above, so the session still closes.
            let stalled = tokio::select! {
                sent = sink.send(message) => match sent {
                    Ok(()) => None,
                    Err(err) => {
                        tracing::debug!(connection_id = %self.id(), %err, "send failed");
                        Some(Ending::Dropped)
                    }
                },
                () = &mut idle => Some(Ending::IdleTimeout),
                () = &mut max => Some(Ending::MaxDuration),
                () = self.delete.cancelled() => Some(Ending::Deleted),
                () = self.shutdown.cancelled() => Some(Ending::Shutdown),
            };
            if let Some(ending) = stalled {
                break ending;
            }
        };
        if let Some(frame) = ending.close_frame() {
            close_with(sink, stream, frame).await;
        }
        ending
    }

    /// After the connection ended: leaves the registry (posts now get 410) and invokes
    /// `$disconnect`, if the API has it.
    pub(crate) async fn finish(self, ending: &Ending) {
        let shared = self.shared;
        let connection = &shared.connection;
        shared.registry.remove(&connection.id);
        tracing::info!(
            connection_id = %connection.id,
            code = ending.code(),
            reason = ending.reason(),
            "disconnected"
        );
        let Some(target) = shared.plan.reserved(wire::DISCONNECT) else {
            return;
        };
        let request_id = clock::id();
        let event = event::disconnect(
            connection,
            &shared.plan,
            ending.code(),
            ending.reason(),
            &request_id,
        );
        match shared.backend.notify(&target.function, event).await {
            Answer::Response(_) => {}
            failed => tracing::warn!(
                connection_id = %connection.id,
                function = %target.function,
                answer = ?failed,
                "$disconnect failed"
            ),
        }
    }
}

impl<B: Backend> Shared<B> {
    /// Routes one message and starts its invocation; returns the frame to send at once, if
    /// any (the `Forbidden` error when no route takes it).
    fn on_message(&self, body: Body<'_>) -> Option<Message> {
        let connection = &self.connection;
        let request_id = clock::id();
        let text = match body {
            Body::Text(text) => Some(text),
            Body::Binary(_) => None,
        };
        let Some(route) = self.plan.choose(text) else {
            return Some(error_message(FORBIDDEN, &connection.id, &request_id));
        };
        let message_id = clock::id();
        let event = event::message(
            connection,
            &self.plan,
            route.key,
            body,
            &message_id,
            &request_id,
        );
        let function = route.target.function.clone();
        let two_way = route.target.two_way;
        let backend = self.backend.clone();
        let outbox = self.outbox.clone();
        let connection = connection.clone();
        self.tasks.spawn(async move {
            let reply = match backend.invoke(&function, event).await {
                Answer::Response(body) if two_way => route_response(&body),
                Answer::Response(_) => None,
                failed => {
                    tracing::warn!(
                        connection_id = %connection.id,
                        function = %function,
                        answer = ?failed,
                        "message invocation failed"
                    );
                    Some(error_message(INTERNAL_ERROR, &connection.id, &request_id))
                }
            };
            if let Some(reply) = reply {
                // Fails only when the session has ended: nobody to send to.
                let _ = outbox.send(reply).await;
            }
        });
        None
    }
}

/// What a read error means for the connection.
fn ending_of(err: &WsError) -> Ending {
    match err {
        WsError::Capacity(_) => Ending::TooBig,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | WsError::Io(_)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed => Ending::Dropped,
        _ => Ending::ProtocolError,
    }
}

/// Sends `frame` and waits for the client's close frame, all in at most [`CLOSE_GRACE`];
/// whatever else the client still sends is dropped.
async fn close_with<Si, St>(sink: &mut Si, stream: &mut St, frame: CloseFrame)
where
    Si: Sink<Message> + Unpin,
    St: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let handshake = async {
        if sink.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::Value;
    use tokio::task::JoinHandle;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    use super::*;
    use crate::answer::frame_of;
    use crate::api::{RouteTarget, WebSocketApi};
    use crate::backend::script::Script;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// Answers `{"statusCode":200,"body":"<routeKey> <body>"}`, or fails for `{"action":"fail"}`.
    fn echo(event: &Value) -> Answer {
        let route = event["requestContext"]["routeKey"]
            .as_str()
            .unwrap_or_default();
        let body = event["body"].as_str().unwrap_or_default();
        if route == "fail" {
            return Answer::Failed("Unhandled".into());
        }
        let answer = serde_json::json!({"statusCode": 200, "body": format!("{route} {body}")});
        Answer::Response(Bytes::from(answer.to_string()))
    }

    /// A session on channels: the test plays the client.
    struct Client {
        id: String,
        /// Frames "from the client" (the session's stream).
        send: Option<mpsc::Sender<Result<Message, WsError>>>,
        /// Frames the session sent.
        received: mpsc::Receiver<Message>,
        /// Events the functions got.
        calls: mpsc::UnboundedReceiver<Value>,
        registry: Arc<Registry>,
        shutdown: CancellationToken,
        session: JoinHandle<Ending>,
    }

    fn api() -> WebSocketApi {
        WebSocketApi::new("api", "test")
            .route("$disconnect", RouteTarget::new("f"))
            .route("$default", RouteTarget::two_way("f"))
            .route("echo", RouteTarget::two_way("f"))
            .route("fail", RouteTarget::two_way("f"))
            .route("quiet", RouteTarget::new("f"))
    }

    fn start(api: WebSocketApi) -> Client {
        let plan = Arc::new(
            api.plan(&["f".to_owned()])
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let (backend, calls) = Script::new(echo);
        let registry = Arc::new(Registry::default());
        let shutdown = CancellationToken::new();
        let connection = Arc::new(Connection::new(
            clock::id(),
            "127.0.0.1".into(),
            None,
            "localhost".into(),
        ));
        let session = Session::open(
            connection,
            plan,
            backend,
            registry.clone(),
            TaskTracker::new(),
            shutdown.clone(),
        );
        let id = session.id().to_owned();
        let (send, mut inbox) = mpsc::channel(8);
        let (sent, received) = mpsc::channel(8);
        let session = tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| inbox.poll_recv(cx));
            let mut sink = tokio_util::sync::PollSender::new(sent);
            session.serve(&mut sink, &mut stream).await
        });
        Client {
            id,
            send: Some(send),
            received,
            calls,
            registry,
            shutdown,
            session,
        }
    }

    impl Client {
        async fn send(&self, message: Message) {
            if let Some(send) = &self.send {
                let _ = send.send(Ok(message)).await;
            }
        }

        async fn fail(&self, err: WsError) {
            if let Some(send) = &self.send {
                let _ = send.send(Err(err)).await;
            }
        }

        async fn receive(&mut self) -> Message {
            tokio::time::timeout(PATIENCE, self.received.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no frame from the session"))
        }

        async fn text(&mut self) -> String {
            match self.receive().await {
                Message::Text(t) => t.as_str().to_owned(),
                other => panic!("not text: {other:?}"),
            }
        }

        async fn call(&mut self) -> Value {
            tokio::time::timeout(PATIENCE, self.calls.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no invocation"))
        }

        /// Waits for the session's end; checks that exactly one `$disconnect` was invoked for
        /// it (it is invoked before the session ends) and that the connection left the registry.
        async fn ended(mut self) -> (Ending, Value) {
            let ending = tokio::time::timeout(PATIENCE, &mut self.session)
                .await
                .unwrap_or_else(|_| panic!("session did not end"))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut disconnects = Vec::new();
            while let Ok(call) = self.calls.try_recv() {
                if call["requestContext"]["eventType"] == "DISCONNECT" {
                    disconnects.push(call);
                }
            }
            assert_eq!(disconnects.len(), 1, "{disconnects:?}");
            let disconnect = disconnects.remove(0);
            assert_eq!(
                disconnect["requestContext"]["connectionId"],
                self.id.as_str()
            );
            assert!(self.registry.get(&self.id).is_none());
            assert_eq!(self.registry.len(), 0);
            (ending, disconnect)
        }
    }

    fn code_of(disconnect: &Value) -> (u64, String) {
        let ctx = &disconnect["requestContext"];
        (
            ctx["disconnectStatusCode"].as_u64().unwrap_or_default(),
            ctx["disconnectReason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    fn close_code(message: &Message) -> Option<u16> {
        match message {
            Message::Close(Some(frame)) => Some(u16::from(frame.code)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn messages_go_to_their_routes_and_two_way_answers_come_back() {
        let mut c = start(api());
        c.send(Message::text(r#"{"action":"echo"}"#)).await;
        assert_eq!(c.text().await, r#"echo {"action":"echo"}"#);
        let event = c.call().await;
        assert_eq!(event["requestContext"]["eventType"], "MESSAGE");
        assert_eq!(event["requestContext"]["connectionId"], c.id.as_str());
        c.send(Message::text("plain")).await;
        assert_eq!(c.text().await, "$default plain");
        c.call().await;
        // A one-way route answers nothing; the next two-way answer is the next frame.
        c.send(Message::text(r#"{"action":"quiet"}"#)).await;
        assert_eq!(c.call().await["requestContext"]["routeKey"], "quiet");
        c.send(Message::text(r#"{"action":"echo","n":2}"#)).await;
        assert_eq!(c.text().await, r#"echo {"action":"echo","n":2}"#);
        c.call().await;
        c.send(Message::Close(None)).await;
        let (_, disconnect) = c.ended().await;
        assert_eq!(code_of(&disconnect).0, 1005);
    }

    #[tokio::test]
    async fn binary_frames_go_to_default_base64_encoded() {
        let mut c = start(api());
        c.send(Message::Binary(Bytes::from_static(&[0, 1, 2, 255])))
            .await;
        assert_eq!(c.text().await, "$default AAEC/w==");
        let event = c.call().await;
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "AAEC/w==");
    }

    #[tokio::test]
    async fn unroutable_messages_are_forbidden_and_failures_are_internal_errors() {
        let mut c = start(
            WebSocketApi::new("api", "test")
                .route("fail", RouteTarget::new("f"))
                .route("$disconnect", RouteTarget::new("f")),
        );
        c.send(Message::text(r#"{"action":"nope"}"#)).await;
        let forbidden: Value = serde_json::from_str(&c.text().await).unwrap_or(Value::Null);
        assert_eq!(forbidden["message"], "Forbidden");
        assert_eq!(forbidden["connectionId"], c.id.as_str());
        assert!(
            forbidden["requestId"]
                .as_str()
                .is_some_and(|r| r.len() == 16)
        );
        c.send(Message::text(r#"{"action":"fail"}"#)).await;
        let failed: Value = serde_json::from_str(&c.text().await).unwrap_or(Value::Null);
        assert_eq!(failed["message"], "Internal server error");
        assert_eq!(failed["connectionId"], c.id.as_str());
        c.call().await;
        c.send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "bye".into(),
        })))
        .await;
        let (ending, disconnect) = c.ended().await;
        assert_eq!(
            ending,
            Ending::ClientClosed {
                code: Some(4000),
                reason: "bye".into()
            }
        );
        assert_eq!(code_of(&disconnect), (4000, "bye".into()));
    }

    #[tokio::test]
    async fn posts_reach_the_client_and_delete_closes_with_1000() {
        let mut c = start(api());
        let handle = c
            .registry
            .get(&c.id)
            .unwrap_or_else(|| panic!("not registered"));
        let _ = handle
            .outbox
            .send(frame_of(Bytes::from_static(b"hi")))
            .await;
        assert_eq!(c.text().await, "hi");
        let _ = handle
            .outbox
            .send(frame_of(Bytes::from_static(&[0xff, 0])))
            .await;
        assert_eq!(
            c.receive().await,
            Message::Binary(Bytes::from_static(&[0xff, 0]))
        );
        handle.delete.cancel();
        assert_eq!(close_code(&c.receive().await), Some(1000));
        c.send(Message::Close(None)).await;
        let (ending, disconnect) = c.ended().await;
        assert_eq!(ending, Ending::Deleted);
        assert_eq!(code_of(&disconnect), (1000, "Connection deleted".into()));
    }

    #[tokio::test]
    async fn a_dropped_connection_is_1006() {
        let mut c = start(api());
        c.send.take();
        let (ending, disconnect) = c.ended().await;
        assert_eq!(ending, Ending::Dropped);
        assert_eq!(code_of(&disconnect).0, 1006);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_and_old_connections_are_closed_with_1001() {
        let mut idle = api();
        idle.idle_timeout = Duration::from_millis(50);
        let mut c = start(idle);
        assert_eq!(close_code(&c.receive().await), Some(1001));
        c.send.take();
        let (ending, disconnect) = c.ended().await;
        assert_eq!(ending, Ending::IdleTimeout);
        assert_eq!(code_of(&disconnect).0, 1001);

        let mut old = api();
        old.max_duration = Duration::from_millis(50);
        let mut c = start(old);
        assert_eq!(close_code(&c.receive().await), Some(1001));
        c.send(Message::Close(None)).await;
        assert_eq!(c.ended().await.0, Ending::MaxDuration);
    }

    #[tokio::test(start_paused = true)]
    async fn activity_defers_the_idle_timeout() {
        let mut idle = api();
        idle.idle_timeout = Duration::from_millis(300);
        let mut c = start(idle);
        let started = Instant::now();
        // Pings every 100 ms for 600 ms keep the connection open past its idle timeout.
        while started.elapsed() < Duration::from_millis(600) {
            c.send(Message::Ping(Bytes::new())).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(c.received.try_recv().is_err(), "closed while active");
        assert_eq!(close_code(&c.receive().await), Some(1001));
        assert!(started.elapsed() >= Duration::from_millis(600));
        c.send.take();
        assert_eq!(c.ended().await.0, Ending::IdleTimeout);
    }

    #[tokio::test]
    async fn shutdown_closes_with_1001_and_still_disconnects() {
        let mut c = start(api());
        c.shutdown.cancel();
        assert_eq!(close_code(&c.receive().await), Some(1001));
        c.send(Message::Close(None)).await;
        let (ending, disconnect) = c.ended().await;
        assert_eq!(ending, Ending::Shutdown);
        assert_eq!(code_of(&disconnect), (1001, "Going away".into()));
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_cannot_hold_the_session_open() {
        // Regression: a send stalled on a full socket kept the session from seeing the
        // shutdown, so the server never returned.
        let c = start(api());
        let handle = c
            .registry
            .get(&c.id)
            .unwrap_or_else(|| panic!("not registered"));
        // More frames than the "socket" holds; the test reads none of them.
        for n in 0..20 {
            let _ = handle.outbox.try_send(Message::text(format!("{n}")));
        }
        c.shutdown.cancel();
        let (ending, disconnect) = c.ended().await;
        assert_eq!(ending, Ending::Shutdown);
        assert_eq!(code_of(&disconnect).0, 1001);
    }

    #[tokio::test]
    async fn oversized_messages_close_with_1009() {
        let mut c = start(api());
        c.fail(WsError::Capacity(CapacityError::MessageTooLong {
            size: 200_000,
            max_size: 131_072,
        }))
        .await;
        assert_eq!(close_code(&c.receive().await), Some(1009));
        c.send.take();
        let (ending, disconnect) = c.ended().await;
        assert_eq!(ending, Ending::TooBig);
        assert_eq!(code_of(&disconnect).0, 1009);
    }

    #[tokio::test]
    async fn replies_to_an_ended_session_are_dropped() {
        // A client that leaves while its message is being handled: the reply goes nowhere,
        // and `$disconnect` still comes exactly once.
        let c = start(api());
        c.send(Message::text(r#"{"action":"echo"}"#)).await;
        c.send(Message::Close(None)).await;
        let (ending, _) = c.ended().await;
        assert_eq!(ending.code(), 1005);
    }
}

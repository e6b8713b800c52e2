//! The chat app end to end, through its real front doors, served from its own SAM template
//! (`examples/chat/template.yaml`) as `coldstart up` serves it: the `chat` and `broadcast`
//! binaries run as `ChatFunction` and `BroadcastFunction` behind the template's WebSocket API
//! (stage `staging`, routes `$connect`, `$disconnect`, `$default` and `broadcast`) and HTTP API
//! (`POST /broadcast`, payload 2.0). The functions find `@connections` through the template's
//! `execute-api` URL, rewritten to the local API. Clients are tokio-tungstenite WebSockets.
//!
//! Every scenario runs with the same body against both connection stores: SQLite (a file in a
//! fresh temporary directory: the template's table name is there, but no DynamoDB endpoint) and
//! DynamoDB (the template's table, created with its GSI and TTL by the stack on a dynalite each
//! test starts; these fail, not skip, without dynalite). The test reads and writes the same store
//! as the functions, to check what they recorded and to plant records.
//!
//! Tests wait on signals only (frames, the functions' log lines, answers), each for at most
//! [`PATIENCE`]; a test that fails kills the sandboxes it started.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chat::config::{CONNECTIONS_DB, DEFAULT_CHANNEL_INDEX};
use chat::{ConnectionStore, DynamoDbStore, SqliteStore, Store};
use coldstart_test::{EndpointKind, Stack, WebSocket};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Dynalite, TempDir, dynamodb_client, sdk_config, unique};

/// The longest a test waits for anything it expects to happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// The WebSocket API's stage, as in the template.
const STAGE: &str = "staging";

/// The functions' logical ids in the template.
const CHAT: &str = "ChatFunction";
const BROADCAST: &str = "BroadcastFunction";

/// The channel of a connection that names none (`chat::config::DEFAULT_CHANNEL`).
const DEFAULT_CHANNEL: &str = "test";

/// One `#[tokio::test]` per scenario, in module `$module`, each on a fresh app whose functions
/// keep their connections in the store `$setup().await` makes.
macro_rules! e2e_tests {
    ($module:ident => $setup:ident; $($case:ident),+ $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let app = super::ChatApp::start(super::$setup().await).await;
                    super::$case(&app).await;
                    app.stop().await;
                }
            )+
        }
    };
}

e2e_tests!(sqlite => sqlite_store;
    a_broadcast_reaches_exactly_its_channel,
    a_message_is_echoed_to_its_sender,
    a_client_broadcast_reaches_its_channel,
    gone_connections_are_forgotten,
);

e2e_tests!(dynamodb => dynamodb_store;
    a_broadcast_reaches_exactly_its_channel,
    a_message_is_echoed_to_its_sender,
    a_client_broadcast_reaches_its_channel,
    gone_connections_are_forgotten,
);

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Three clients on channel `a` and one on `b`: `POST /broadcast?channel=a` reaches each `a`
/// client exactly once, and the `b` client not at all.
async fn a_broadcast_reaches_exactly_its_channel(app: &ChatApp) {
    let mut on_a = Vec::new();
    for _ in 0..3 {
        on_a.push(app.connect(Some("a")).await);
    }
    let mut on_b = app.connect(Some("b")).await;
    let ids_on_a: BTreeSet<String> = on_a.iter().map(|client| client.id.clone()).collect();
    assert_eq!(app.listed("a").await, ids_on_a);
    assert_eq!(app.listed("b").await, BTreeSet::from([on_b.id.clone()]));

    assert_eq!(
        app.broadcast("a", "hello, a").await,
        json!({"sent": 3, "gone": 0, "failed": 0})
    );
    for client in &mut on_a {
        assert_eq!(client.text().await, "hello, a", "client {}", client.id);
    }
    // `a`'s message went out (into every outbox) before this one: had it reached the `b`
    // client, it would come first.
    assert_eq!(
        app.broadcast("b", "hello, b").await,
        json!({"sent": 1, "gone": 0, "failed": 0})
    );
    assert_eq!(on_b.text().await, "hello, b");
    // Exactly once: the next thing each `a` client gets is the next broadcast.
    assert_eq!(
        app.broadcast("a", "again, a").await,
        json!({"sent": 3, "gone": 0, "failed": 0})
    );
    for client in &mut on_a {
        assert_eq!(client.text().await, "again, a", "client {}", client.id);
    }

    // Both functions really ran on the store the test set up.
    app.uses_the_test_store(CHAT, "chat").await;
    app.uses_the_test_store(BROADCAST, "broadcast").await;
}

/// A `$default` message (plain text, or JSON whose `action` names no route) comes back to its
/// sender, and only to it, through `@connections`.
async fn a_message_is_echoed_to_its_sender(app: &ChatApp) {
    let mut alice = app.connect(None).await;
    let mut bob = app.connect(None).await;
    alice.send("hello, echo").await;
    assert_eq!(alice.text().await, "hello, echo");
    let sent = format!("connection {}: echo Sent", alice.id);
    app.line(CHAT, |line| line == sent).await;
    let unrouted = r#"{"action":"shout","text":"hi"}"#;
    alice.send(unrouted).await;
    assert_eq!(alice.text().await, unrouted);
    // Bob, on the same channel, got neither: his first message is his own echo.
    bob.send("bob here").await;
    assert_eq!(bob.text().await, "bob here");
    app.uses_the_test_store(CHAT, "chat").await;
}

/// The WebSocket route `broadcast` (`{"action":"broadcast","message":…}`) sends the message to
/// every connection of the sender's channel, the sender included, and to no other channel.
async fn a_client_broadcast_reaches_its_channel(app: &ChatApp) {
    let mut alice = app.connect(Some("room")).await;
    let mut bob = app.connect(Some("room")).await;
    let mut carol = app.connect(Some("other")).await;
    alice
        .send(r#"{"action":"broadcast","message":"hi, room"}"#)
        .await;
    assert_eq!(alice.text().await, "hi, room");
    assert_eq!(bob.text().await, "hi, room");
    let sent = format!(
        "connection {}: broadcast to channel room: 2 sent, 0 gone, 0 failed",
        alice.id
    );
    app.line(CHAT, |line| line == sent).await;
    // The broadcast above was answered before this one started.
    assert_eq!(
        app.broadcast("other", "hi, other").await,
        json!({"sent": 1, "gone": 0, "failed": 0})
    );
    assert_eq!(carol.text().await, "hi, other");
}

/// A client that goes away (its TCP connection dropped without a close frame, or closed with
/// one) is removed from the store by its `$disconnect`, and later broadcasts neither send to it
/// nor fail on it. A record whose connection API Gateway does not know (a lost `$disconnect`)
/// gets 410 from `@connections` and is removed by the broadcast that found it.
async fn gone_connections_are_forgotten(app: &ChatApp) {
    let mut keeper = app.connect(Some("c")).await;
    let dropper = app.connect(Some("c")).await;
    let closer = app.connect(Some("c")).await;
    assert_eq!(
        app.listed("c").await,
        BTreeSet::from([keeper.id.clone(), dropper.id.clone(), closer.id.clone()])
    );

    let dropped = dropper.id.clone();
    // The socket closes without a close frame.
    drop(dropper);
    app.disconnected(&dropped).await;
    let closed = closer.id.clone();
    closer.close().await;
    app.disconnected(&closed).await;
    assert_eq!(app.listed("c").await, BTreeSet::from([keeper.id.clone()]));
    for id in [&dropped, &closed] {
        assert_eq!(app.channel_of(id).await, None, "{id} is still recorded");
    }
    assert_eq!(
        app.broadcast("c", "still there?").await,
        json!({"sent": 1, "gone": 0, "failed": 0})
    );
    assert_eq!(keeper.text().await, "still there?");

    // A record without a connection: @connections answers 410 and the broadcast forgets it.
    let ghost = "GhostConnection=";
    app.store.put(ghost, "c").await.expect("plant a record");
    assert_eq!(
        app.listed("c").await,
        BTreeSet::from([keeper.id.clone(), ghost.to_owned()])
    );
    assert_eq!(
        app.broadcast("c", "who is here?").await,
        json!({"sent": 1, "gone": 1, "failed": 0})
    );
    assert_eq!(keeper.text().await, "who is here?");
    assert_eq!(app.listed("c").await, BTreeSet::from([keeper.id.clone()]));
    assert_eq!(app.channel_of(ghost).await, None);
    // Forgotten for good: the next broadcast does not try it again.
    assert_eq!(
        app.broadcast("c", "just us").await,
        json!({"sent": 1, "gone": 0, "failed": 0})
    );
    assert_eq!(keeper.text().await, "just us");
}

// ---------------------------------------------------------------------------------------------
// The stores

/// A store for the app: the test's own handle on it, the environment that points both
/// functions at it, the DynamoDB endpoint the stack creates its table on, the stack's name (the
/// table's is `<stack>-ConnectionsTable`), and what keeps it alive.
#[derive(Debug)]
struct Backing {
    store: Store,
    environment: Vec<(String, String)>,
    dynamodb_endpoint: Option<String>,
    stack_name: String,
    guard: Guard,
}

/// What a store lives in (a directory or a server), for as long as the test runs.
#[derive(Debug, Default)]
struct Guard {
    _directory: Option<TempDir>,
    _server: Option<Dynalite>,
}

/// SQLite, in a file of a fresh temporary directory.
async fn sqlite_store() -> Backing {
    let dir = TempDir::new("e2e");
    let path = dir.path().join("connections.sqlite3");
    let store = SqliteStore::open(&path)
        .await
        .expect("open the sqlite store");
    Backing {
        store: Store::Sqlite(store),
        environment: vec![(CONNECTIONS_DB.into(), path.display().to_string())],
        dynamodb_endpoint: None,
        stack_name: "chat".into(),
        guard: Guard {
            _directory: Some(dir),
            ..Guard::default()
        },
    }
}

/// DynamoDB: the template's table, which the stack creates (with its GSI) on a dynalite of this
/// test's own.
async fn dynamodb_store() -> Backing {
    let server = Dynalite::start().await;
    let client = dynamodb_client(&sdk_config().await, server.endpoint());
    let stack_name = unique("chat");
    let table = format!("{stack_name}-ConnectionsTable");
    let store = DynamoDbStore::new(client, &table, DEFAULT_CHANNEL_INDEX);
    Backing {
        store: Store::DynamoDb(store),
        environment: Vec::new(),
        dynamodb_endpoint: Some(server.endpoint().to_owned()),
        stack_name,
        guard: Guard {
            _server: Some(server),
            ..Guard::default()
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The app

/// The template's stack with both functions, its WebSocket API and HTTP API, and the store they
/// share, started with `coldstart-test`: dropping it kills every sandbox it started (a failed
/// test leaves nothing behind); [`ChatApp::stop`] stops everything in order.
#[derive(Debug)]
struct ChatApp {
    /// The running stack; taken by [`ChatApp::stop`].
    stack: Option<Stack>,
    store: Store,
    /// The WebSocket API: `ws://{websocket}/staging`, `@connections` beside it.
    websocket: SocketAddr,
    /// Every channel a client connected to, to check at the end that all were cleaned.
    channels: Mutex<BTreeSet<String>>,
    /// Ids of the connections opened so far, to tell a new one's `$connect` line.
    connections: Mutex<Vec<String>>,
    _guard: Guard,
}

impl ChatApp {
    async fn start(backing: Backing) -> Self {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
        // The binaries cargo built for this test stand for the Makefile's builds.
        let mut builder = Stack::from_template(template)
            .stack_name(backing.stack_name.clone())
            .bootstrap(CHAT, env!("CARGO_BIN_EXE_chat"))
            .bootstrap(BROADCAST, env!("CARGO_BIN_EXE_broadcast"));
        for (key, value) in &backing.environment {
            builder = builder.env(key, value);
        }
        if let Some(endpoint) = &backing.dynamodb_endpoint {
            builder = builder.dynamodb_endpoint(endpoint);
        }
        let stack = builder
            .start()
            .await
            .unwrap_or_else(|error| panic!("start the template's stack: {error}"));
        let websocket = stack
            .endpoints()
            .iter()
            .find(|e| e.name == "WebSocketApi" && e.kind == EndpointKind::WebSocket)
            .unwrap_or_else(|| panic!("no WebSocket API in {:?}", stack.endpoints()))
            .addr;
        Self {
            stack: Some(stack),
            store: backing.store,
            websocket,
            channels: Mutex::default(),
            connections: Mutex::default(),
            _guard: backing.guard,
        }
    }

    fn stack(&self) -> &Stack {
        self.stack
            .as_ref()
            .unwrap_or_else(|| unreachable!("running until stopped"))
    }

    /// Waits (at most [`PATIENCE`]) for a log line of `function` matching `pred`.
    async fn line(&self, function: &str, pred: impl Fn(&str) -> bool) -> String {
        let stack = self.stack();
        stack
            .wait_for_log(function, PATIENCE, pred)
            .await
            .unwrap_or_else(|| panic!("no such log line of {function}; got:\n{:#?}", stack.logs()))
    }

    /// Opens a WebSocket on `?channel=` (none: no query); learns its id from the `chat`
    /// function's `$connect` line and checks the store has it on that channel.
    async fn connect(&self, channel: Option<&str>) -> Client {
        let query = channel.map_or_else(String::new, |channel| format!("channel={channel}"));
        let ws = tokio::time::timeout(PATIENCE, self.stack().websocket("WebSocketApi", &query))
            .await
            .unwrap_or_else(|_| panic!("the handshake with ?{query} hung"))
            .unwrap_or_else(|error| panic!("the handshake failed: {error}"));
        let expected = channel.unwrap_or(DEFAULT_CHANNEL);
        lock(&self.channels).insert(expected.to_owned());

        // Connections open one at a time: the one `$connect` line of an unknown id is ours.
        let known = lock(&self.connections).clone();
        let line = self
            .line(CHAT, |line| {
                line.starts_with("connection ")
                    && line.contains(": connected to channel ")
                    && !known.iter().any(|id| line.contains(id.as_str()))
            })
            .await;
        let (id, connected_to) = line
            .strip_prefix("connection ")
            .and_then(|rest| rest.split_once(": connected to channel "))
            .unwrap_or_else(|| panic!("unexpected $connect line {line:?}"));
        assert_eq!(connected_to, expected, "{line}");
        let id = id.to_owned();
        lock(&self.connections).push(id.clone());
        // `$connect` had recorded it before the upgrade was answered.
        assert_eq!(self.channel_of(&id).await.as_deref(), Some(expected));
        Client { ws, id }
    }

    /// `POST /broadcast?channel={channel}` with `message` as the body; the 200 answer's JSON.
    async fn broadcast(&self, channel: &str, message: &str) -> Value {
        let request = http::Request::post(format!("/broadcast?channel={channel}"))
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(Bytes::from(message.to_owned()))
            .expect("a request");
        let response =
            tokio::time::timeout(PATIENCE, self.stack().send("ServerlessHttpApi", request))
                .await
                .unwrap_or_else(|_| panic!("POST /broadcast?channel={channel} hung"))
                .unwrap_or_else(|error| panic!("POST /broadcast?channel={channel}: {error}"));
        let body = response.text();
        assert_eq!(
            response.status, 200,
            "POST /broadcast?channel={channel}: {body}"
        );
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}"))
    }

    /// Waits for the `chat` function's `$disconnect` line of `id`: written once the record is
    /// deleted.
    async fn disconnected(&self, id: &str) {
        let expected = format!("connection {id}: disconnected");
        self.line(CHAT, |line| line == expected).await;
    }

    /// Waits for `function`'s start-up line (its `binary` names itself in it) and checks it
    /// names the test's store and the local WebSocket API's `@connections`, which the template
    /// gives as its `execute-api` URL.
    async fn uses_the_test_store(&self, function: &str, binary: &str) {
        let prefix = format!("{binary}: store: ");
        let line = self.line(function, |line| line.starts_with(&prefix)).await;
        let expected = format!(
            "{prefix}{}; @connections: http://{}/{STAGE}",
            self.store.describe(),
            self.websocket
        );
        assert_eq!(line, expected);
    }

    /// The store's connections on `channel`, as the test reads them.
    async fn listed(&self, channel: &str) -> BTreeSet<String> {
        self.store
            .list(channel)
            .await
            .unwrap_or_else(|error| panic!("list {channel}: {}", error.chain()))
            .into_iter()
            .collect()
    }

    async fn channel_of(&self, id: &str) -> Option<String> {
        self.store
            .channel_of(id)
            .await
            .unwrap_or_else(|error| panic!("channel_of {id}: {}", error.chain()))
    }

    /// Stops the APIs, then the emulator. The WebSocket API returns once every connection's
    /// `$disconnect` is queued and the emulator's shutdown runs them, so by then no channel has
    /// a record left.
    async fn stop(mut self) {
        // The `$disconnect`s are queued as `Event` invocations: the emulator's shutdown, after
        // the servers', waits for them.
        if let Some(stack) = self.stack.take() {
            tokio::time::timeout(PATIENCE, stack.stop())
                .await
                .unwrap_or_else(|_| panic!("the stack did not stop"));
        }
        let channels = lock(&self.channels).clone();
        for channel in channels {
            assert_eq!(
                self.listed(&channel).await,
                BTreeSet::new(),
                "records left on channel {channel} after every $disconnect"
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Clients and logs

/// An open WebSocket and its connection id.
struct Client {
    ws: WebSocket,
    id: String,
}

impl Client {
    async fn send(&mut self, text: &str) {
        tokio::time::timeout(PATIENCE, self.ws.send(Message::text(text)))
            .await
            .unwrap_or_else(|_| panic!("{}: sending hung", self.id))
            .unwrap_or_else(|error| panic!("{}: send: {error}", self.id));
    }

    /// The next text frame (pings and pongs skipped).
    async fn text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {PATIENCE:?}", self.id));
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(other)) => panic!("{}: not a text frame: {other:?}", self.id),
                Some(Err(error)) => panic!("{}: read: {error}", self.id),
                None => panic!("{}: the connection ended", self.id),
            }
        }
    }

    /// Closes with a close frame and waits for the server's answer to it.
    async fn close(mut self) {
        self.ws
            .close(None)
            .await
            .unwrap_or_else(|error| panic!("{}: close: {error}", self.id));
        let answered = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(frame)) = self.ws.next().await {
                if matches!(frame, Message::Close(_)) {
                    return;
                }
            }
        })
        .await;
        assert!(answered.is_ok(), "{}: the close was not answered", self.id);
    }
}

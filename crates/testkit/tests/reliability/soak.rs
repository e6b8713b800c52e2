//! The seeded chaos soak: callers on every front door (the Invoke API buffered and streamed, a
//! Function URL, an HTTP API route, a WebSocket API) ask `fx-chaos` to answer, fail, crash, hang,
//! answer garbage or answer twice, and now and then leave mid-request. Every answer a caller
//! waits for must be the one its request asked for, no request id may reach a runtime twice,
//! memory must stay bounded and no runtime may outlive the stop.
//!
//! Short by default (CI). `COLDSTART_SOAK=100000` runs that many invocations;
//! `COLDSTART_SOAK_SEED` replays a seed (printed at the start and in every failure);
//! `COLDSTART_SOAK_WORKERS` sets the number of concurrent callers (default 8);
//! `COLDSTART_SOAK_ONLY` narrows the mix to the doors and faults named, comma-separated (e.g.
//! `Stream,hang`), to corner a failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use coldstart_stack::{Endpoint, EndpointKind};

use crate::support::{PATIENCE, RawResponse, TemplateProject, process_state, read_whole, send};

/// Every front door in front of `fx-chaos` (`chaos/bootstrap`).
pub(crate) const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Chaos:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: chaos
      Handler: bootstrap
      Runtime: provided.al2023
      Timeout: 1
      ReservedConcurrentExecutions: 40
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: BUFFERED
      Events:
        Route:
          Type: HttpApi
          Properties: { ApiId: !Ref Http, Path: /chaos, Method: post }
  Http:
    Type: AWS::Serverless::HttpApi
  Socket:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: socket
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"
  SocketIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Socket
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Chaos.Arn}/invocations"
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $connect
      Target: !Sub "integrations/${SocketIntegration}"
  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $disconnect
      Target: !Sub "integrations/${SocketIntegration}"
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $default
      RouteResponseSelectionExpression: $default
      Target: !Sub "integrations/${SocketIntegration}"
  SocketStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Socket
      StageName: chaos
"#;

/// A small, seedable generator (SplitMix64): the soak replays exactly from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `choices`, each as likely as its weight.
    fn pick<T: Copy>(&mut self, choices: &[(T, u64)]) -> T {
        let total: u64 = choices.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for (choice, weight) in choices {
            if at < *weight {
                return *choice;
            }
            at -= weight;
        }
        choices[0].0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Door {
    Invoke,
    Stream,
    Url,
    HttpApi,
    WebSocket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Ok,
    Error,
    Crash,
    Hang,
    Garbage,
    Double,
    Stream,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Ok => "ok",
            Op::Error => "error",
            Op::Crash => "crash",
            Op::Hang => "hang",
            Op::Garbage => "garbage",
            Op::Double => "double",
            Op::Stream => "stream",
        }
    }
}

const DOORS: &[(Door, u64)] = &[
    (Door::Invoke, 3),
    (Door::Stream, 2),
    (Door::Url, 2),
    (Door::HttpApi, 2),
    (Door::WebSocket, 2),
];

/// Hangs cost a whole timeout (1 s), so they are rare.
const OPS: &[(Op, u64)] = &[
    (Op::Ok, 50),
    (Op::Error, 10),
    (Op::Crash, 8),
    (Op::Hang, 2),
    (Op::Garbage, 8),
    (Op::Double, 8),
    (Op::Stream, 8),
];

/// One caller in this many leaves mid-request.
const LEAVE_ONE_IN: u64 = 20;

/// `choices` less those `COLDSTART_SOAK_ONLY` leaves out (it names doors and faults; a list
/// that names none of `choices` keeps them all).
fn narrowed<T: Copy>(choices: &[(T, u64)], name: impl Fn(T) -> String) -> Vec<(T, u64)> {
    let only = std::env::var("COLDSTART_SOAK_ONLY").unwrap_or_default();
    let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
    let kept: Vec<(T, u64)> = choices
        .iter()
        .copied()
        .filter(|(c, _)| wanted.contains(&name(*c).as_str()))
        .collect();
    if kept.is_empty() {
        choices.to_vec()
    } else {
        kept
    }
}

/// What the soak saw, for its assertions and its report.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    answered: usize,
    left: usize,
    /// Answered 429: every sandbox busy (callers that left leave their invocations running).
    throttled: usize,
    /// (door, op) → answers.
    per_kind: BTreeMap<(Door, Op), usize>,
    /// Answers that were not what the request asked for.
    wrong: Vec<String>,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's memory from `/proc/self/status`: (`VmRSS`, `VmHWM`) in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Doors {
    invoke: SocketAddr,
    url: SocketAddr,
    http: SocketAddr,
    socket: SocketAddr,
}

fn addr(running: &coldstart_stack::Running, name: &str, kind: EndpointKind) -> SocketAddr {
    running
        .endpoint(name, kind)
        .unwrap_or_else(|| panic!("no {name} in {:?}", running.endpoints))
        .addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_every_front_door_gets_exactly_one_right_answer_and_leaves_nothing() {
    let seed = env_number(
        "COLDSTART_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    );
    let total = env_number("COLDSTART_SOAK", 1000) as usize;
    let workers = env_number("COLDSTART_SOAK_WORKERS", 8).max(1) as usize;
    println!(
        "chaos soak: seed {seed} (COLDSTART_SOAK_SEED), {total} invocations, {workers} callers"
    );

    let project = TemplateProject::new("soak", TEMPLATE, &[("chaos", "fx-chaos")]);
    let runtimes = Arc::new(Runtimes::default());
    let running = project.serve_to(runtimes.clone()).await;
    let doors = Arc::new(Doors {
        invoke: addr(&running, Endpoint::INVOKE_API, EndpointKind::Invoke),
        url: addr(&running, "Chaos", EndpointKind::Url),
        http: addr(&running, "Http", EndpointKind::HttpApi),
        socket: addr(&running, "Socket", EndpointKind::WebSocket),
    });

    // Warm up (one sandbox, every door's code path) before the first memory reading.
    for door in [Door::Invoke, Door::Stream, Door::Url, Door::HttpApi] {
        let answer = call(
            &mut Connections::default(),
            &doors,
            door,
            Op::Ok,
            "warm",
            None,
        )
        .await;
        if let Some(problem) = answer.and_then(|a| check(door, Op::Ok, "warm", &a)) {
            panic!("seed {seed}: warm-up: {problem}");
        }
    }
    let (rss_start, _) = memory_kib();
    let started = Instant::now();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let budget = Duration::from_secs(90) + Duration::from_millis(40) * total as u32;
    let mut callers = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let doors = doors.clone();
        let tally = tally.clone();
        let share = total / workers + usize::from(worker < total % workers);
        let mut rng = Rng(seed ^ (worker as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        callers.spawn(async move { caller(&doors, &mut rng, share, worker, &tally).await });
    }
    let finished = tokio::time::timeout(budget, async {
        while let Some(joined) = callers.join_next().await {
            if let Err(e) = joined {
                return Err(format!("a caller panicked: {e}"));
            }
        }
        Ok(())
    })
    .await;
    let wall = started.elapsed();
    let (rss_end, rss_peak) = memory_kib();
    let capacity = capacity_back(&doors).await;
    println!(
        "sandboxes at the end: {}",
        running.emulator.sandbox_pids("Chaos").len()
    );

    // The stop: every runtime the soak saw must be gone when it returns.
    let pids = runtimes.pids();
    running.stop().await;
    let leftovers: Vec<(u32, char)> = pids
        .iter()
        .filter_map(|&p| process_state(p).map(|s| (p, s)))
        .filter(|(_, s)| *s != 'Z')
        .collect();

    let seen = runtimes.seen();
    let tally = tally
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .unwrap_or_default();
    println!(
        "chaos soak figures: seed {seed}; {} invocations sent, {} answered, {} callers left \
         mid-request, {} throttled; answers per fault {:?}; {} deliveries to runtimes, {} duplicates; {} WebSocket connections; {} runtimes \
         started, {} left after the stop; RSS {} KiB at start, {} KiB at end, peak {} KiB; wall \
         {:.1} s",
        tally.sent,
        tally.answered,
        tally.left,
        tally.throttled,
        faults(&tally),
        seen.delivered,
        seen.duplicates.len(),
        seen.connections.len(),
        pids.len(),
        leftovers.len(),
        rss_start,
        rss_end,
        rss_peak,
        wall.as_secs_f64(),
    );

    let fail = |what: String| panic!("seed {seed} (set COLDSTART_SOAK_SEED to replay): {what}");
    match finished {
        Err(_) => fail(format!("the callers did not finish within {budget:?}")),
        Ok(Err(e)) => fail(e),
        Ok(Ok(())) => {}
    }
    if !tally.wrong.is_empty() {
        fail(format!(
            "{} wrong answers:\n{}",
            tally.wrong.len(),
            tally
                .wrong
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if tally.sent != tally.answered + tally.left {
        fail(format!(
            "{} sent, {} answered, {} left",
            tally.sent, tally.answered, tally.left
        ));
    }
    if !seen.duplicates.is_empty() {
        fail(format!(
            "request ids reached a runtime twice: {:?}",
            seen.duplicates
        ));
    }
    if let Some(bad) = seen
        .seconds
        .iter()
        .find(|s| !matches!(s, 400 | 403 | 410 | 500))
    {
        fail(format!("a second answer to one invocation got {bad}"));
    }
    if let Err(e) = capacity {
        fail(e);
    }
    // Every WebSocket connection, closed or vanished, ended in exactly one `$disconnect`.
    let unpaired: Vec<_> = seen
        .connections
        .iter()
        .filter(|(_, counts)| **counts != (1, 1))
        .take(10)
        .collect();
    if !unpaired.is_empty() {
        fail(format!(
            "WebSocket connections without exactly one $connect and one $disconnect \
             (id, (connects, disconnects)): {unpaired:?}"
        ));
    }
    if !leftovers.is_empty() {
        fail(format!("runtimes outlived the stop: {leftovers:?}"));
    }
    // Generous: a leak of one kilobyte per invocation shows in the long mode.
    let bound = 96 * 1024 + total as u64 / 4;
    if rss_end.saturating_sub(rss_start) > bound {
        fail(format!(
            "RSS grew from {rss_start} KiB to {rss_end} KiB (bound +{bound} KiB)"
        ));
    }
}

fn faults(tally: &Tally) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for ((_, op), n) in &tally.per_kind {
        *out.entry(op.name()).or_default() += n;
    }
    out
}

/// The function's whole reserved concurrency (40) answers at once once the soak is over: no
/// invocation a caller left, no crash or hang, kept a sandbox busy for ever. Invocations left
/// running may still hold some for up to their 1 s timeout: retried until [`PATIENCE`].
async fn capacity_back(doors: &Doors) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut all = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (addr, request) = request(Door::Invoke, doors, Op::Ok, &format!("capacity-{i}"));
            all.spawn(async move { send(addr, request).await.status });
        }
        let statuses = all.join_all().await;
        let throttled = statuses.iter().filter(|s| **s == 429).count();
        if throttled == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{throttled} of 40 concurrent invocations still throttled after the soak: \
                 sandboxes stayed busy"
            ));
        }
    }
}

/// What the runtimes printed, kept small: the soak's own memory must not grow with its length.
#[derive(Default)]
struct Runtimes {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default, Clone)]
struct Seen {
    /// How many `CHAOS DELIVERED` lines.
    delivered: usize,
    /// Every request id delivered, as its 128 bits (ids are UUIDs).
    ids: HashSet<u128>,
    /// Ids delivered more than once.
    duplicates: Vec<String>,
    /// `CHAOS PID` lines: every runtime started.
    pids: Vec<u32>,
    /// The status of every second answer a `double` gave.
    seconds: Vec<u16>,
    /// WebSocket connection id → (`$connect` events, `$disconnect` events) the function got.
    connections: HashMap<String, (u32, u32)>,
}

impl coldstart_emulator::LogSink for Runtimes {
    fn line(&self, _function: &str, line: &str) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let after = |marker: &str| line.split_once(marker).map(|(_, rest)| rest.trim());
        if let Some(id) = after("CHAOS DELIVERED ") {
            let bits = u128::from_str_radix(&id.replace('-', ""), 16).unwrap_or(u128::MAX);
            seen.delivered += 1;
            if !seen.ids.insert(bits) {
                seen.duplicates.push(id.to_owned());
            }
        } else if let Some(pid) = after("CHAOS PID ").and_then(|p| p.parse().ok()) {
            seen.pids.push(pid);
        } else if let Some(status) = after("CHAOS SECOND ").and_then(|s| s.parse().ok()) {
            seen.seconds.push(status);
        } else if let Some((kind, id)) = after("CHAOS WS ").and_then(|r| r.split_once(' ')) {
            let counts = seen.connections.entry(id.to_owned()).or_default();
            match kind {
                "CONNECT" => counts.0 += 1,
                "DISCONNECT" => counts.1 += 1,
                _ => {}
            }
        }
    }
}

impl Runtimes {
    fn seen(&self) -> Seen {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn pids(&self) -> Vec<u32> {
        self.seen().pids
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn caller(doors: &Doors, rng: &mut Rng, share: usize, worker: usize, tally: &Mutex<Tally>) {
    let mut socket: Option<Socket> = None;
    let mut connections = Connections::default();
    for i in 0..share {
        let door = rng.pick(&narrowed(DOORS, |d| format!("{d:?}")));
        let mut op = rng.pick(&narrowed(OPS, |o| o.name().to_owned()));
        if op == Op::Stream && !matches!(door, Door::Invoke | Door::Stream) {
            // A streamed answer of raw bytes is not an HTTP response for the gateways.
            op = Op::Ok;
        }
        let leave = rng.below(LEAVE_ONE_IN) == 0;
        let token = format!("w{worker}-{i}-{}", rng.next());
        if let Ok(mut t) = tally.lock() {
            t.sent += 1;
            if t.sent % 5000 == 0 {
                // Progress of a long run, on the test's output.
                println!(
                    "chaos soak: {} sent, {} answered, {} left, {} throttled, {} wrong",
                    t.sent,
                    t.answered,
                    t.left,
                    t.throttled,
                    t.wrong.len()
                );
            }
        }
        let answer = if door == Door::WebSocket {
            websocket(doors, &mut socket, op, &token, leave.then(|| rng.below(30))).await
        } else {
            call(
                &mut connections,
                doors,
                door,
                op,
                &token,
                leave.then(|| rng.below(30)),
            )
            .await
        };
        let Ok(mut t) = tally.lock() else { return };
        match answer {
            None => t.left += 1,
            Some(Answer::Http(r)) if r.status == 429 => {
                t.answered += 1;
                t.throttled += 1;
            }
            Some(answer) => {
                t.answered += 1;
                *t.per_kind.entry((door, op)).or_default() += 1;
                if let Some(problem) = check(door, op, &token, &answer) {
                    t.wrong.push(format!("{door:?} {}: {problem}", op.name()));
                }
            }
        }
    }
    if let Some(mut ws) = socket {
        let _ = ws.close(None).await;
    }
}

/// What a caller got back.
#[derive(Debug)]
enum Answer {
    Http(RawResponse),
    Frame(String),
}

fn request(
    door: Door,
    doors: &Doors,
    op: Op,
    token: &str,
) -> (SocketAddr, http::Request<Full<Bytes>>) {
    let event = json!({"chaos": {"op": op.name(), "token": token}}).to_string();
    let (addr, path) = match door {
        Door::Invoke => (
            doors.invoke,
            coldstart_protocol::invoke::invoke_path("Chaos"),
        ),
        Door::Stream => (
            doors.invoke,
            coldstart_protocol::invoke::stream_invoke_path("Chaos"),
        ),
        Door::Url => (doors.url, "/".to_owned()),
        Door::HttpApi | Door::WebSocket => (doors.http, "/chaos".to_owned()),
    };
    let request = http::Request::post(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(event)))
        .unwrap_or_else(|e| panic!("{e}"));
    (addr, request)
}

/// A caller's kept-alive connections, one per listener, as an SDK keeps them (a connection per
/// request would leave a TIME_WAIT socket per request and run out of ports in the long mode).
#[derive(Default)]
struct Connections(HashMap<SocketAddr, SendRequest<Full<Bytes>>>);

impl Connections {
    /// Sends the request `make` builds on the kept connection to `addr`, or on a new one when
    /// there is none or the server closed it. Dropping the future drops the connection.
    async fn send(
        &mut self,
        addr: SocketAddr,
        make: impl Fn() -> http::Request<Full<Bytes>>,
    ) -> RawResponse {
        let kept = match self.0.remove(&addr) {
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let reused = kept.is_some();
        let mut sender = match kept {
            Some(sender) => sender,
            None => connect(addr).await,
        };
        let response = match sender.send_request(make()).await {
            Ok(response) => response,
            // The server closed the kept connection as the request went out: once more, anew.
            Err(e) if reused && e.is_canceled() => {
                sender = connect(addr).await;
                sender
                    .send_request(make())
                    .await
                    .unwrap_or_else(|e| panic!("request to {addr}: {e}"))
            }
            Err(e) => panic!("request to {addr}: {e}"),
        };
        let answer = read_whole(response).await;
        self.0.insert(addr, sender);
        answer
    }
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("handshake with {addr}: {e}"));
    tokio::spawn(conn);
    sender
}

/// One HTTP invocation; `None` when the caller left after `leave_after` ms.
async fn call(
    connections: &mut Connections,
    doors: &Doors,
    door: Door,
    op: Op,
    token: &str,
    leave_after: Option<u64>,
) -> Option<Answer> {
    let addr = request(door, doors, op, token).0;
    let make = || request(door, doors, op, token).1;
    match leave_after {
        Some(ms) => {
            // The caller hangs up: the request future (and its connection) is dropped.
            match tokio::time::timeout(Duration::from_millis(ms), connections.send(addr, make))
                .await
            {
                Ok(answer) => Some(Answer::Http(answer)),
                Err(_) => None,
            }
        }
        None => Some(Answer::Http(
            tokio::time::timeout(PATIENCE, connections.send(addr, make))
                .await
                .unwrap_or_else(|_| panic!("{door:?} {} got no answer", op.name())),
        )),
    }
}

/// One WebSocket message on the caller's connection (opened when there is none); `None` when
/// the caller dropped the connection right after sending.
async fn websocket(
    doors: &Doors,
    socket: &mut Option<Socket>,
    op: Op,
    token: &str,
    leave_after: Option<u64>,
) -> Option<Answer> {
    if socket.is_none() {
        let url = format!("ws://{}/chaos", doors.socket);
        let handshake = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
            .await
            .unwrap_or_else(|_| panic!("WebSocket handshake hung"));
        match handshake {
            Ok((ws, _)) => *socket = Some(ws),
            // `$connect` was throttled: the caller sees the handshake's 429.
            Err(WsError::Http(r)) if r.status() == 429 => {
                return Some(Answer::Http(RawResponse {
                    status: 429,
                    headers: Vec::new(),
                    body: Bytes::new(),
                }));
            }
            Err(e) => panic!("WebSocket handshake: {e}"),
        }
    }
    let ws = socket.as_mut()?;
    let message = json!({"action": "chaos", "chaos": {"op": op.name(), "token": token}});
    ws.send(Message::text(message.to_string()))
        .await
        .unwrap_or_else(|e| panic!("WebSocket send: {e}"));
    if let Some(ms) = leave_after {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        // Vanish without a close frame: the API must notice and clean up.
        *socket = None;
        return None;
    }
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap_or_else(|_| panic!("WebSocket {} got no answer", op.name()));
        match frame {
            Some(Ok(Message::Text(text))) => return Some(Answer::Frame(text.to_string())),
            Some(Ok(Message::Binary(b))) => {
                return Some(Answer::Frame(String::from_utf8_lossy(&b).into_owned()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            other => panic!("WebSocket {} ended: {other:?}", op.name()),
        }
    }
}

/// The event-stream messages of a streamed invocation's body: (payload, `InvokeComplete` JSON).
fn event_stream(body: &Bytes) -> Result<(Vec<u8>, Value), String> {
    use aws_smithy_eventstream::frame::read_message_from;
    let mut rest = body.clone();
    let mut payload = Vec::new();
    while !rest.is_empty() {
        let message = read_message_from(&mut rest).map_err(|e| format!("bad frame: {e}"))?;
        let kind = message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        match kind.as_str() {
            "PayloadChunk" => payload.extend_from_slice(message.payload()),
            "InvokeComplete" if rest.is_empty() => {
                let complete = serde_json::from_slice(message.payload())
                    .map_err(|e| format!("InvokeComplete is not JSON: {e}"))?;
                return Ok((payload, complete));
            }
            other => return Err(format!("unexpected event {other:?}")),
        }
    }
    Err("the stream ended without InvokeComplete".into())
}

/// What is wrong with `answer` to `op` asked on `door`, if anything.
fn check(door: Door, op: Op, token: &str, answer: &Answer) -> Option<String> {
    let ok_json = json!({"statusCode": 200, "body": token});
    let garbage = [b"\xff\x00garbage ".as_slice(), token.as_bytes()].concat();
    let failure_type = match op {
        Op::Error => Some("Chaos"),
        Op::Crash => Some("Runtime.ExitError"),
        Op::Hang => Some("Sandbox.Timedout"),
        _ => None,
    };
    let problem = |what: &str| Some(format!("{what}; got {answer:?}"));
    match (door, answer) {
        (Door::Invoke, Answer::Http(r)) => {
            if r.status != 200 {
                return problem("status is not 200");
            }
            let function_error = r.header("x-amz-function-error");
            match failure_type {
                Some(kind) => {
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    if function_error != Some("Unhandled") || body["errorType"] != kind {
                        return problem(&format!("not an Unhandled {kind}"));
                    }
                }
                None if function_error.is_some() => return problem("a function error"),
                None => {
                    let expected = match op {
                        Op::Stream => token.as_bytes().to_vec(),
                        Op::Garbage => garbage,
                        _ => ok_json.to_string().into_bytes(),
                    };
                    if r.body.as_ref() != expected.as_slice() {
                        return problem("not the function's answer");
                    }
                }
            }
            None
        }
        (Door::Stream, Answer::Http(r)) => {
            if r.status != 200 {
                return problem("status is not 200");
            }
            let (payload, complete) = match event_stream(&r.body) {
                Ok(parts) => parts,
                Err(e) => return problem(&e),
            };
            match failure_type {
                // A reported error ends as `Unhandled` with the error document in the details
                // (as `X-Amz-Function-Error` says for a buffered invoke); the platform's own
                // errors carry their type.
                Some("Chaos") => {
                    let details: Value = complete["ErrorDetails"]
                        .as_str()
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or_default();
                    if complete["ErrorCode"] != "Unhandled" || details["errorType"] != "Chaos" {
                        return problem("InvokeComplete is not the Unhandled Chaos error");
                    }
                }
                Some(kind) => {
                    if complete["ErrorCode"] != kind {
                        return problem(&format!("InvokeComplete is not {kind}"));
                    }
                }
                None => {
                    let expected = match op {
                        Op::Stream => token.as_bytes().to_vec(),
                        Op::Garbage => garbage,
                        _ => ok_json.to_string().into_bytes(),
                    };
                    if complete.get("ErrorCode").is_some() || payload != expected {
                        return problem("not the function's answer");
                    }
                }
            }
            None
        }
        (Door::Url | Door::HttpApi, Answer::Http(r)) => {
            let failed = failure_type.is_some() || op == Op::Garbage;
            let expected_failure = if door == Door::Url { 502 } else { 500 };
            if failed && r.status != expected_failure {
                return problem(&format!("not a {expected_failure}"));
            }
            if !failed && (r.status != 200 || r.body.as_ref() != token.as_bytes()) {
                return problem("not 200 with the token");
            }
            None
        }
        (Door::WebSocket, Answer::Frame(text)) => {
            // A route response passes an answer that is no proxy response through as it is.
            let right = match op {
                _ if failure_type.is_some() => text.contains("Internal server error"),
                Op::Garbage => text.ends_with(&format!("garbage {token}")),
                _ => text == token,
            };
            if right {
                None
            } else {
                problem("not the answer asked for")
            }
        }
        _ => problem("an answer of the wrong kind"),
    }
}

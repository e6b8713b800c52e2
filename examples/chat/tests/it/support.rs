//! What the tests share: temporary directories, the dynalite process, an SDK configuration that
//! ignores the host's AWS settings, and a fake `@connections` API.

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long dynalite may take to print its address.
const DYNALITE_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Readiness: tries of a real request, and the pause between two.
const READY_TRIES: u32 = 50;
const READY_PAUSE: Duration = Duration::from_millis(100);

/// A directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("chat-tests-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique name for a table, channel or connection of one test.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{n}", std::process::id())
}

/// An SDK configuration from nothing on the host: fixed region and test credentials, so the tests
/// neither depend on nor touch anyone's AWS account. Endpoints are set per client.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(chat::config::http_client())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "chat-tests"))
        .load()
        .await
}

/// A DynamoDB client for `endpoint`. The endpoint is set on the client, so it wins over any
/// `AWS_ENDPOINT_URL*` of the host.
pub fn dynamodb_client(sdk: &SdkConfig, endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The repository's root (this crate is `examples/chat`).
fn repository_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A dynalite server on a loopback port the OS picked, in its own process group; killed (the
/// whole group) on drop. It also exits by itself when its stdin closes, so a test process that
/// dies without dropping it leaves nothing behind.
#[derive(Debug)]
pub struct Dynalite {
    child: Child,
    /// Held open for the server's life: closing it is the server's signal to exit.
    _stdin: ChildStdin,
    endpoint: String,
}

impl Dynalite {
    /// Starts the server and waits until it answers a real request. Panics, with what to do,
    /// when it cannot: these tests fail rather than skip without their server.
    pub async fn start() -> Self {
        let tools = repository_root().join("tools/dynamodb");
        let module = tools.join("node_modules/dynalite/package.json");
        assert!(
            module.is_file(),
            "dynalite is not installed ({} is missing): run scripts/test-tools.sh",
            module.display()
        );
        let mut child = Command::new("node")
            .arg(tools.join("serve.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start node for dynalite ({error}): install Node.js 20+ and run scripts/test-tools.sh")
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // The first line is `listening 127.0.0.1:PORT`, printed once the socket accepts.
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let mut server = Self {
            child,
            _stdin: stdin,
            endpoint: String::new(),
        };
        let line = line_rx
            .recv_timeout(DYNALITE_START_TIMEOUT)
            .unwrap_or_else(|_| panic!("dynalite did not start within {DYNALITE_START_TIMEOUT:?}"));
        let address = line.trim().strip_prefix("listening ").unwrap_or_else(|| {
            panic!("dynalite exited or printed {line:?} instead of its address")
        });
        server.endpoint = format!("http://{address}");
        server.wait_ready().await;
        server
    }

    /// A bounded retry of a real request.
    async fn wait_ready(&self) {
        let client = dynamodb_client(&sdk_config().await, &self.endpoint);
        let mut last_error = None;
        for _ in 0..READY_TRIES {
            match client.list_tables().send().await {
                Ok(_) => return,
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(READY_PAUSE).await;
        }
        panic!(
            "dynalite at {} never answered ListTables: {:?}",
            self.endpoint, last_error
        );
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).unwrap_or(i32::MAX);
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A fake `@connections` API: `POST {stage}/@connections/{id}` (or `%40connections`) records the
/// message and answers 200, or 410 `GoneException` for connections marked gone, or 403
/// `ForbiddenException` for connections marked forbidden.
#[derive(Debug, Clone)]
pub struct FakeConnections {
    url: String,
    state: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    posts: Vec<(String, Vec<u8>)>,
    gone: HashSet<String>,
    forbidden: HashSet<String>,
}

impl FakeConnections {
    /// Serves on a loopback port the OS picked, on the current runtime, under stage `staging`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake @connections api");
        let address: SocketAddr = listener.local_addr().expect("its address");
        let fake = Self {
            url: format!("http://{address}/staging"),
            state: Arc::default(),
        };
        let state = Arc::clone(&fake.state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        fake
    }

    /// The endpoint, `http://127.0.0.1:PORT/staging`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn mark_gone(&self, connection_id: &str) {
        self.lock().gone.insert(connection_id.to_owned());
    }

    pub fn mark_forbidden(&self, connection_id: &str) {
        self.lock().forbidden.insert(connection_id.to_owned());
    }

    /// The messages accepted so far, as (connection id, text), sorted.
    pub fn posts(&self) -> Vec<(String, String)> {
        let mut posts: Vec<_> = self
            .lock()
            .posts
            .iter()
            .map(|(id, data)| (id.clone(), String::from_utf8_lossy(data).into_owned()))
            .collect();
        posts.sort();
        posts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }
}

async fn answer(state: &Mutex<FakeState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let id = path
        .strip_prefix("/staging/@connections/")
        .or_else(|| path.strip_prefix("/staging/%40connections/"))
        .map(|id| {
            percent_encoding::percent_decode_str(id)
                .decode_utf8_lossy()
                .into_owned()
        });
    let (Some(id), &Method::POST) = (id, request.method()) else {
        return error(StatusCode::NOT_FOUND, "NotFoundException");
    };
    let data = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "BadRequestException"),
    };
    let mut state = state.lock().expect("fake state");
    if state.gone.contains(&id) {
        return error(StatusCode::GONE, "GoneException");
    }
    if state.forbidden.contains(&id) {
        return error(StatusCode::FORBIDDEN, "ForbiddenException");
    }
    state.posts.push((id, data));
    Response::new(Full::new(Bytes::new()))
}

fn error(status: StatusCode, error_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"message\":null}")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "x-amzn-errortype",
        hyper::header::HeaderValue::from_static(error_type),
    );
    response
}

//! The test harness: an emulator in this process serving the Invoke API on `127.0.0.1:0`, a log
//! collector to await lines on, and clients (the AWS SDK and a plain HTTP one).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coldstart_emulator::{Emulator, FunctionConfig, LogSink, Settings, serve_invoke_api};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The longest a test waits for anything it expects to happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A fixture function's bootstrap.
pub fn fixture(bin: &str) -> PathBuf {
    PathBuf::from(match bin {
        "fx-echo" => env!("CARGO_BIN_EXE_fx-echo"),
        "fx-faults" => env!("CARGO_BIN_EXE_fx-faults"),
        "fx-lr-echo" => env!("CARGO_BIN_EXE_fx-lr-echo"),
        "fx-crash-on-start" => env!("CARGO_BIN_EXE_fx-crash-on-start"),
        "fx-slow-init" => env!("CARGO_BIN_EXE_fx-slow-init"),
        "fx-init-error" => env!("CARGO_BIN_EXE_fx-init-error"),
        "fx-ignore-sigterm" => env!("CARGO_BIN_EXE_fx-ignore-sigterm"),
        "fx-http" => env!("CARGO_BIN_EXE_fx-http"),
        "fx-authorizer" => env!("CARGO_BIN_EXE_fx-authorizer"),
        "fx-stream" => env!("CARGO_BIN_EXE_fx-stream"),
        "fx-lr-stream" => env!("CARGO_BIN_EXE_fx-lr-stream"),
        "fx-ws" => env!("CARGO_BIN_EXE_fx-ws"),
        "fx-env" => env!("CARGO_BIN_EXE_fx-env"),
        "fx-telemetry" => env!("CARGO_BIN_EXE_fx-telemetry"),
        "fx-chaos" => env!("CARGO_BIN_EXE_fx-chaos"),
        "fx-conc" => env!("CARGO_BIN_EXE_fx-conc"),
        "fx-lr-conc" => env!("CARGO_BIN_EXE_fx-lr-conc"),
        other => panic!("no fixture {other}"),
    })
}

/// A shell fixture from `fixtures/`, or a file of the repository (`examples/...`).
pub fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A function named `name` running `bootstrap`.
pub fn function(name: &str, bootstrap: PathBuf) -> FunctionConfig {
    FunctionConfig::new(name, vec![bootstrap.into_os_string()])
}

/// Collects every log line and lets tests wait for one.
#[derive(Default)]
pub struct Logs {
    lines: Mutex<Vec<String>>,
    added: Notify,
}

impl LogSink for Logs {
    fn line(&self, function: &str, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(format!("{function}: {line}"));
        }
        self.added.notify_waiters();
    }
}

impl Logs {
    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (at most [`PATIENCE`]) for a line matching `pred`, and returns it.
    pub async fn wait_for(&self, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_nth(1, pred).await
    }

    /// Waits (at most [`PATIENCE`]) for the `n`th line matching `pred`, and returns it.
    pub async fn wait_for_nth(&self, n: usize, pred: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.added.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(line) = self.all().into_iter().filter(|l| pred(l)).nth(n - 1) {
                    return line;
                }
                notified.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no such log line; got:\n{}", self.all().join("\n")))
    }
}

/// An emulator serving the Invoke API on loopback. Dropping it kills every sandbox it started.
pub struct Harness {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    pub logs: Arc<Logs>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub async fn start(functions: Vec<FunctionConfig>) -> Harness {
        Self::start_with(functions, Settings::default()).await
    }

    pub async fn start_with(functions: Vec<FunctionConfig>, settings: Settings) -> Harness {
        let logs = Arc::new(Logs::default());
        let emulator = Emulator::new(functions, settings, logs.clone())
            .unwrap_or_else(|e| panic!("emulator: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve_invoke_api(
            emulator.clone(),
            listener,
            shutdown.clone(),
        ));
        Harness {
            emulator,
            addr,
            logs,
            shutdown,
            server: Some(server),
        }
    }

    /// An `aws-sdk-lambda` client pointed at the emulator, without retries (a 429 must show).
    pub fn sdk(&self) -> aws_sdk_lambda::Client {
        coldstart_test::sdk_client(self.addr)
    }

    /// A plain HTTP invocation: `POST /2015-03-31/functions/{name}/invocations`.
    pub async fn invoke_raw(
        &self,
        name: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> RawResponse {
        let mut request = http::Request::post(coldstart_protocol::invoke::invoke_path(name))
            .header(http::header::HOST, self.addr.to_string());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(body.into()))
            .unwrap_or_else(|e| panic!("{e}"));
        send(self.addr, request).await
    }

    /// Stops the server and the emulator gracefully.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.emulator.shutdown(Duration::from_secs(5)).await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A failed test must not leave processes behind.
        for name in self.emulator.function_names() {
            for pid in self.emulator.sandbox_pids(&name) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Every header line, repeats kept, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl RawResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one request on a fresh connection to `addr`.
pub async fn send(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> RawResponse {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    read_whole(response).await
}

/// Reads `response` whole.
pub async fn read_whole(response: http::Response<hyper::body::Incoming>) -> RawResponse {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("body: {e}"))
        .to_bytes();
    RawResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body,
    }
}

/// Decodes `X-Amz-Log-Result`.
pub fn decode_log(encoded: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("log result is not base64: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The single-letter state of process `pid` from `/proc` (`S`, `T`, `Z`...), if it exists.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may contain spaces.
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

/// A SAM project in a temporary folder: a template and fixture bootstraps in code folders;
/// removed on drop.
pub struct TemplateProject(pub PathBuf);

impl TemplateProject {
    /// Writes `template` and, for each `(folder, fixture)`, `folder/bootstrap` as a link to the
    /// fixture. `name` keeps the folders of tests running side by side apart.
    pub fn new(name: &str, template: &str, code: &[(&str, &str)]) -> TemplateProject {
        let dir = std::env::temp_dir().join(format!("coldstart-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (folder, bin) in code {
            std::fs::create_dir_all(dir.join(folder)).unwrap_or_else(|e| panic!("{e}"));
            std::os::unix::fs::symlink(fixture(bin), dir.join(folder).join("bootstrap"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(dir.join("template.yaml"), template).unwrap_or_else(|e| panic!("{e}"));
        TemplateProject(dir)
    }

    /// Starts the stack as `up` does, on free ports, sandboxes never frozen.
    pub async fn serve(&self) -> (coldstart_stack::Running, std::sync::Arc<Logs>) {
        let logs = std::sync::Arc::new(Logs::default());
        (self.serve_to(logs.clone()).await, logs)
    }

    /// [`TemplateProject::serve`], the functions' log lines going to `sink`.
    pub async fn serve_to(&self, sink: Arc<dyn LogSink>) -> coldstart_stack::Running {
        let source = coldstart_stack::Source::find(&self.0).unwrap_or_else(|e| panic!("{e}"));
        let options = coldstart_stack::TemplateOptions {
            port_base: 0,
            ..coldstart_stack::TemplateOptions::default()
        };
        let stack = source.load(&options).unwrap_or_else(|e| panic!("{e}"));
        let mut start = coldstart_stack::StartOptions::new(sink);
        start.listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
        start.freeze = false;
        coldstart_stack::start(&stack, start)
            .await
            .unwrap_or_else(|e| panic!("start: {e}"))
    }
}

impl Drop for TemplateProject {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `method path` with `headers` and `body` to the endpoint `name` of kind `kind`.
pub async fn call_endpoint(
    running: &coldstart_stack::Running,
    name: &str,
    kind: coldstart_stack::EndpointKind,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    let addr = running
        .endpoint(name, kind)
        .unwrap_or_else(|| panic!("no {name} in {:?}", running.endpoints))
        .addr;
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_else(|e| panic!("{e}"));
    send(addr, request).await
}

/// How many times `function` has been invoked: one `START` line each.
pub fn invocations(logs: &Logs, function: &str) -> usize {
    let start = format!("{function}: START RequestId");
    logs.all().iter().filter(|l| l.starts_with(&start)).count()
}

/// `request` signed with SigV4 as the AWS SDKs sign, for the signing name `service`, with the
/// local access key, `secret` and an optional session `token`, in `us-east-1`.
pub fn sign_v4(
    mut request: http::Request<Bytes>,
    service: &str,
    settings: aws_sigv4::http_request::SigningSettings,
    secret: &str,
    token: Option<&str>,
) -> http::Request<Bytes> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let identity = aws_credential_types::Credentials::new(
        coldstart_emulator::LOCAL_ACCESS_KEY_ID,
        secret,
        token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = request.body().clone();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (instructions, _) = sign(signable, &params)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    request
}

//! End-to-end tests of the `coldstart` binary: `run` as a drop-in for the Runtime Interface
//! Emulator, `invoke` as its client, signals and exit codes.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The longest a test waits for a line it expects.
const PATIENCE: Duration = Duration::from_secs(20);

fn coldstart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coldstart"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A `coldstart run` in its own process group; killed with its group when dropped.
struct Server {
    child: Child,
    endpoint: String,
    /// Lines of the server's standard output (the functions' logs).
    stdout: mpsc::Receiver<String>,
    /// Lines of its standard error after the banner, for `up` (for `run`, drained and dropped).
    stderr: Option<mpsc::Receiver<String>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Self::spawn(
            coldstart()
                .arg("run")
                .arg("--listen")
                .arg("127.0.0.1:0")
                .args(args),
            "serving",
        )
    }

    /// `coldstart up` on `config`; the endpoint is the Invoke API's.
    fn up(config: &std::path::Path) -> (Server, Vec<String>) {
        Self::up_with(config, &[])
    }

    fn up_with(config: &std::path::Path, extra: &[&str]) -> (Server, Vec<String>) {
        let mut command = coldstart();
        command
            .args(["up", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--config")
            .arg(config);
        Self::up_command(&mut command)
    }

    /// Spawns `up` and waits for its endpoint table.
    fn up_command(command: &mut Command) -> (Server, Vec<String>) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn coldstart up: {e}"));
        let stderr = lines(child.stderr.take());
        let stdout = lines(child.stdout.take());
        let (endpoint, table) = Self::table(&stderr);
        let server = Server {
            child,
            endpoint,
            stdout,
            stderr: Some(stderr),
        };
        (server, table)
    }

    /// Waits for `up`'s endpoint table on `stderr`; returns the Invoke API's URL and the rows.
    fn table(stderr: &mpsc::Receiver<String>) -> (String, Vec<String>) {
        let mut table = Vec::new();
        wait_line(stderr, |l| l.contains("functions ready in"));
        // The table follows: a blank line, a header, then one row per endpoint, then a blank.
        loop {
            match stderr.recv_timeout(PATIENCE) {
                Ok(line) if line.trim().is_empty() && table.len() > 1 => break,
                Ok(line) if !line.trim().is_empty() => table.push(line),
                Ok(_) => continue,
                Err(e) => panic!("no endpoint table: {e}"),
            }
        }
        let invoke = table
            .iter()
            .find(|l| l.contains("Invoke API"))
            .and_then(|l| l.split("http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no Invoke API in {table:?}"))
            .to_owned();
        (format!("http://{invoke}"), table)
    }

    fn spawn(command: &mut Command, ready: &str) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn coldstart: {e}"));
        let stderr = lines(child.stderr.take());
        let stdout = lines(child.stdout.take());
        let mut server = Server {
            child,
            endpoint: String::new(),
            stdout,
            stderr: None,
        };
        let banner = wait_line(&stderr, |l| l.contains(ready));
        let addr = banner
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {banner}"));
        server.endpoint = format!("http://{addr}");
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || while stderr.recv().is_ok() {});
        server
    }

    fn invoke(&self, args: &[&str]) -> Output {
        coldstart()
            .arg("invoke")
            .args(args)
            .arg("--endpoint")
            .arg(&self.endpoint)
            .output()
            .unwrap_or_else(|e| panic!("coldstart invoke: {e}"))
    }

    fn signal(&self, signal: Signal) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), signal);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn lines(pipe: Option<impl std::io::Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(_) => continue,
            Err(e) => panic!("no expected line: {e}"),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_serves_the_bash_runtime_and_invoke_prints_its_answer() {
    let bootstrap = repo("examples/bash/bootstrap");
    let server = Server::start(&[
        "--handler",
        "function.handler",
        "--",
        bootstrap.to_str().unwrap_or_default(),
    ]);
    let out = server.invoke(&["function", r#"{"payload":"hello world!"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Echoing request: '{\"payload\":\"hello world!\"}'\n"
    );
    // The function's logs, prefixed with its name, with the platform's lines around them.
    wait_line(&server.stdout, |l| {
        l.starts_with("[function] START RequestId: ")
    });
    wait_line(&server.stdout, |l| {
        l == r#"[function] {"payload":"hello world!"}"#
    });
    wait_line(&server.stdout, |l| {
        l.starts_with("[function] REPORT RequestId: ")
    });

    let tail = server.invoke(&["function", "{}", "--log-type", "Tail"]);
    assert!(tail.status.success());
    let log = text(&tail.stderr);
    assert!(
        log.contains("START RequestId: ") && log.contains("REPORT RequestId: "),
        "{log}"
    );
}

#[test]
fn invoke_exits_1_on_a_function_error_and_on_an_unknown_function() {
    let bootstrap = repo("crates/testkit/fixtures/exit-on-invoke.sh");
    let server = Server::start(&["--", bootstrap.to_str().unwrap_or_default()]);
    let out = server.invoke(&["function", "{}"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("Runtime.ExitError") && err.contains("exit status 2"),
        "{err}"
    );

    let missing = server.invoke(&["nope", "{}"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("ResourceNotFoundException"));
}

#[test]
fn sigterm_stops_the_server_and_every_sandbox_with_exit_0() {
    let bootstrap = repo("crates/testkit/fixtures/event-echo.sh");
    let mut server = Server::start(&["--", bootstrap.to_str().unwrap_or_default()]);
    let out = server.invoke(&["function", r#"{"x":1}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = wait_line(&server.stdout, |l| l.starts_with("[function] PID="));
    let pid: i32 = line
        .trim_start_matches("[function] PID=")
        .parse()
        .unwrap_or(0);
    assert!(pid > 0);
    // Signal only the server (not its group): it must stop its sandboxes itself.
    let _ = nix::sys::signal::kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM);
    let status = server.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0));
    // The sandbox's group is gone (SIGKILL, if needed, was sent before the server exited).
    let deadline = std::time::Instant::now() + PATIENCE;
    while killpg(Pid::from_raw(pid), None).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox group {pid} survived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The state letter of process `pid` in `/proc` (`R`, `S`, `Z`, ...); `None` once it is gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn a_kill_9_of_run_takes_a_runtime_busy_in_its_handler_with_it() {
    let bootstrap = repo("crates/testkit/fixtures/busy-handler.sh");
    let mut server = Server::start(&[
        "--timeout",
        "600",
        "--",
        bootstrap.to_str().unwrap_or_default(),
    ]);
    // The invocation never ends on its own: the runtime stays in its handler.
    let endpoint = server.endpoint.clone();
    std::thread::spawn(move || {
        let _ = coldstart()
            .args(["invoke", "function", "{}", "--endpoint", &endpoint])
            .output();
    });
    let line = wait_line(&server.stdout, |l| l.starts_with("[function] BUSY PID="));
    let pid: i32 = line
        .trim_start_matches("[function] BUSY PID=")
        .parse()
        .unwrap_or(0);
    assert!(pid > 0, "{line}");
    // Only the server gets SIGKILL: it can do nothing, so the runtime must follow by itself.
    let _ = nix::sys::signal::kill(Pid::from_raw(server.child.id() as i32), Signal::SIGKILL);
    let _ = server.child.wait();
    let deadline = std::time::Instant::now() + PATIENCE;
    while process_state(pid).is_some_and(|s| s != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "runtime {pid} survived a kill -9 of coldstart"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Whatever else of its group is left goes with the test's cleanup.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
}

#[test]
fn run_starts_the_extensions_of_a_folder_and_sends_them_shutdown_on_sigterm() {
    let dir = tempdir::Dir::new();
    let extensions = dir.path().join("extensions");
    std::fs::create_dir_all(extensions.join("ignored-folder")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        repo("crates/testkit/fixtures/extension.sh"),
        extensions.join("watcher"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = repo("crates/testkit/fixtures/event-echo.sh");
    let mut server = Server::start(&[
        "--extensions-dir",
        extensions.to_str().unwrap_or_default(),
        "--",
        bootstrap.to_str().unwrap_or_default(),
    ]);
    let out = server.invoke(&["function", r#"{"x":1}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"{"x":1}"#);
    wait_line(&server.stdout, |l| {
        l.starts_with("[function] EXTENSION event") && l.contains("\"INVOKE\"")
    });
    let _ = nix::sys::signal::kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM);
    wait_line(&server.stdout, |l| {
        l.starts_with("[function] EXTENSION event") && l.contains("\"shutdownReason\":\"spindown\"")
    });
    wait_line(&server.stdout, |l| l == "[function] EXTENSION exiting");
    let status = server.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bad_usage_exits_2() {
    let missing = coldstart()
        .args(["run", "--", "./no/such/bootstrap"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no/such/bootstrap"));
    let bad_timeout = coldstart()
        .args(["run", "--timeout", "0", "--", "/bin/true"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad_timeout.status.code(), Some(2));
    assert!(text(&bad_timeout.stderr).contains("timeout"));
    let no_bootstrap = coldstart()
        .arg("run")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(no_bootstrap.status.code(), Some(2));
}

/// A config in a fresh folder, with the shell fixtures beside it.
fn app(config: &str) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new();
    for fixture in ["event-echo.sh", "exit-on-invoke.sh", "answer.sh"] {
        let from = repo("crates/testkit/fixtures").join(fixture);
        std::fs::copy(&from, dir.path().join(fixture)).unwrap_or_else(|e| panic!("{e}"));
    }
    let path = dir.path().join("coldstart.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    (dir, path)
}

/// A temporary folder removed on drop (no extra crate needed for one folder).
mod stop;

mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "coldstart-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The URL in the table row whose door is `door`.
fn endpoint(table: &[String], door: &str) -> String {
    table
        .iter()
        .find(|l| l.contains(door))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .unwrap_or_else(|| panic!("no {door} in {table:?}"))
        .to_owned()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    text(&out.stdout)
}

#[test]
fn up_builds_then_serves_every_door_of_the_config() {
    let (dir, config) = app(r#"
[functions.web]
build = "touch built.marker"
bootstrap = "event-echo.sh"
url = { port = 0 }

[functions.crash]
bootstrap = ["./exit-on-invoke.sh"]

[http_apis.api]
port = 0
routes = { "GET /items/{id}" = "web" }
"#);
    let (server, table) = Server::up(&config);
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    wait_line(stderr, |l| l.contains("web is ready"));
    assert!(
        dir.path().join("built.marker").exists(),
        "the build ran in the config's folder"
    );
    for name in ["web", "crash"] {
        assert!(
            table
                .iter()
                .any(|l| l.trim_start().starts_with(name) && l.contains("Invoke API")),
            "{table:?}"
        );
    }
    // The Function URL at its root path.
    let url = endpoint(&table, "Function URL");
    let event: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("{url}some/path?q=1")])).unwrap_or_default();
    assert_eq!(event["rawPath"], "/some/path");
    assert_eq!(event["queryStringParameters"]["q"], "1");
    // The HTTP API route, with its path parameter.
    let route = endpoint(&table, "http_apis.api").replace("{id}", "42");
    let event: serde_json::Value = serde_json::from_str(&curl(&[&route])).unwrap_or_default();
    assert_eq!(event["routeKey"], "GET /items/{id}");
    assert_eq!(event["pathParameters"]["id"], "42");
    // The Invoke API, by name and by ARN.
    let out = server.invoke(&["web", r#"{"k":1}"#]);
    assert_eq!(text(&out.stdout), "{\"k\":1}\n");
    let out = server.invoke(&[
        "arn:aws:lambda:us-east-1:012345678912:function:web",
        r#"{"k":2}"#,
    ]);
    assert_eq!(text(&out.stdout), "{\"k\":2}\n");
    let out = server.invoke(&["crash", "{}"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn up_rejects_a_bad_config_with_file_line_and_key() {
    let (_dir, config) = app("[functions.web]\nbootstrap = \"event-echo.sh\"\nmemory = 64\n");
    let out = coldstart()
        .args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("coldstart.toml:3:10:") && err.contains("functions.web.memory"),
        "{err}"
    );
}

#[test]
fn a_failed_build_is_shown_and_its_function_is_failed_while_the_rest_serves() {
    let (_dir, config) = app(
        "[functions.web]\nbuild = \"echo compiler says no >&2; exit 3\"\nbootstrap = \"event-echo.sh\"\n\n[functions.other]\nbootstrap = \"event-echo.sh\"\n",
    );
    let (server, _) = Server::up(&config);
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    wait_line(stderr, |l| l.contains("compiler says no"));
    wait_line(stderr, |l| l.contains("web is Failed"));
    let out = server.invoke(&["web", "{}"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("ResourceConflictException") && err.contains("following state: Failed"),
        "{err}"
    );
    // The function without a build serves all along.
    assert_eq!(
        text(&server.invoke(&["other", "{\"ok\":1}"]).stdout),
        "{\"ok\":1}\n"
    );
}

#[test]
fn up_serves_at_once_and_each_function_once_its_build_is_done() {
    // The build waits for the test's go-ahead (a file), at most 20 s.
    let (dir, config) = app(
        "[functions.slow]\nbuild = \"for i in $(seq 400); do [ -e go ] && break; sleep 0.05; done; cp event-echo.sh built.sh\"\nbootstrap = \"built.sh\"\n\n[functions.fast]\nbootstrap = \"event-echo.sh\"\n",
    );
    let (server, table) = Server::up(&config);
    assert!(table.iter().any(|l| l.contains("slow")), "{table:?}");
    let pending = server.invoke(&["slow", "{}"]);
    assert_eq!(pending.status.code(), Some(1));
    assert!(
        text(&pending.stderr).contains("following state: Pending"),
        "{}",
        text(&pending.stderr)
    );
    assert_eq!(
        text(&server.invoke(&["fast", "{\"n\":1}"]).stdout),
        "{\"n\":1}\n"
    );

    std::fs::write(dir.path().join("go"), "").unwrap_or_else(|e| panic!("{e}"));
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    wait_line(stderr, |l| l.contains("slow is ready"));
    assert_eq!(
        text(&server.invoke(&["slow", "{\"n\":2}"]).stdout),
        "{\"n\":2}\n"
    );
}

#[test]
fn up_serves_each_binary_of_a_shared_cargo_build_as_soon_as_cargo_links_it() {
    // Two packages of one workspace in one `cargo build`: `slow`'s build script waits for the
    // test's go-ahead (a file, at most 60 s), so `fast` must answer while that build still runs.
    let build = "cargo build --offline -p fast -p slow";
    let (dir, config) = app(&format!(
        "[functions.fast]\nbuild = \"{build}\"\nbootstrap = \"target/debug/fast\"\n\n\
         [functions.slow]\nbuild = \"{build}\"\nbootstrap = \"target/debug/slow\"\n"
    ));
    two_crate_workspace(dir.path(), "");
    let mut command = coldstart();
    command
        .args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        // The test's own target folder is not the app's.
        .env_remove("CARGO_TARGET_DIR");
    let (server, _) = Server::up_command(&mut command);
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    fast_serves_while_slow_builds(&server, stderr, dir.path(), "fast", "slow");
}

/// With the workspace of [`two_crate_workspace`] building: `fast` answers while `slow` is
/// still `Pending`, then `slow` answers once the test lets its build end.
fn fast_serves_while_slow_builds(
    server: &Server,
    stderr: &mpsc::Receiver<String>,
    dir: &Path,
    fast: &str,
    slow: &str,
) {
    let ready = wait_line(stderr, |l| l.contains(&format!("{fast} is ready")));
    assert!(ready.contains(&format!("built {fast} in")), "{ready}");
    assert_eq!(
        text(&server.invoke(&[fast, "{\"n\":1}"]).stdout),
        "{\"n\":1}\n"
    );
    let pending = server.invoke(&[slow, "{}"]);
    assert!(
        text(&pending.stderr).contains("following state: Pending"),
        "{}",
        text(&pending.stderr)
    );
    std::fs::write(dir.join("go"), "").unwrap_or_else(|e| panic!("{e}"));
    wait_line(stderr, |l| l.contains(&format!("{slow} is ready")));
    assert_eq!(
        text(&server.invoke(&[slow, "{\"n\":2}"]).stdout),
        "{\"n\":2}\n"
    );
}

/// Two packages, `fast` and `slow`, in a Cargo workspace in `dir` (its `Cargo.toml` ends with
/// `root_extra`), each with one binary that runs the shell runtime `dir/event-echo.sh`;
/// `slow`'s build script waits for a file `dir/go` (at most 60 s), so that its build ends when
/// the test says.
fn two_crate_workspace(dir: &Path, root_extra: &str) {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))
            .and_then(|()| std::fs::write(&path, text))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    };
    write(
        "Cargo.toml",
        &format!("[workspace]\nmembers = [\"fast\", \"slow\"]\nresolver = \"3\"\n{root_extra}"),
    );
    let main = "use std::os::unix::process::CommandExt as _;\nfn main() {\n    \
                let e = std::process::Command::new(\"bash\").arg(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../event-echo.sh\")).exec();\n    \
                panic!(\"{e}\");\n}\n";
    for name in ["fast", "slow"] {
        write(
            &format!("{name}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n"),
        );
        write(&format!("{name}/src/main.rs"), main);
    }
    write(
        "slow/build.rs",
        "fn main() {\n    for _ in 0..1200 {\n        \
         if std::path::Path::new(\"../go\").exists() { return; }\n        \
         std::thread::sleep(std::time::Duration::from_millis(50));\n    }\n}\n",
    );
}

#[test]
fn up_builds_the_cargolambda_functions_of_one_workspace_in_one_cargo_build_with_its_local_profile()
{
    let dir = tempdir::Dir::new();
    std::fs::copy(
        repo("crates/testkit/fixtures/event-echo.sh"),
        dir.path().join("event-echo.sh"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    two_crate_workspace(dir.path(), "\n[profile.local]\ninherits = \"dev\"\n");
    let function = |code: &str| {
        format!(
            "  {}:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildMethod: rust-cargolambda\n    \
             Properties:\n      CodeUri: {code}\n      Runtime: provided.al2023\n      Handler: bootstrap\n",
            if code == "fast" { "Fast" } else { "Slow" }
        )
    };
    let template = dir.path().join("template.yaml");
    std::fs::write(
        &template,
        format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n{}{}",
            function("fast"),
            function("slow")
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut command = coldstart();
    command
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--port-base",
            "0",
            "--template",
        ])
        .arg(&template)
        .env_remove("CARGO_TARGET_DIR");
    let (server, _) = Server::up_command(&mut command);
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    let building = wait_line(stderr, |l| l.contains("building Fast, Slow: "));
    assert!(
        building.contains("building Fast, Slow: cargo build --profile local -p fast -p slow"),
        "{building}"
    );
    fast_serves_while_slow_builds(&server, stderr, dir.path(), "Fast", "Slow");
    assert!(dir.path().join("target/local/slow").is_file());
}

#[test]
fn up_watch_rebuilds_a_changed_function_and_serves_the_new_code() {
    let (dir, config) = app(
        "[functions.web]\nbuild = \"cp src/answer.txt answer.txt\"\nbootstrap = \"answer.sh\"\nwatch = [\"src\"]\n",
    );
    std::fs::create_dir_all(dir.path().join("src")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("src/answer.txt"), "v1").unwrap_or_else(|e| panic!("{e}"));
    let (server, _) = Server::up_with(&config, &["--watch"]);
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    // Both, in either order: the watcher is set and the first build is done.
    let first = wait_line(stderr, |l| {
        l.contains("web is ready") || l.starts_with("coldstart: watching")
    });
    if first.contains("web is ready") {
        wait_line(stderr, |l| l.starts_with("coldstart: watching"));
    } else {
        wait_line(stderr, |l| l.contains("web is ready"));
    }
    assert_eq!(text(&server.invoke(&["web", "{}"]).stdout), "\"v1\"\n");

    std::fs::write(dir.path().join("src/answer.txt"), "v2").unwrap_or_else(|e| panic!("{e}"));
    wait_line(stderr, |l| l.contains("web reloaded"));
    assert_eq!(text(&server.invoke(&["web", "{}"]).stdout), "\"v2\"\n");
}

/// A shell runtime that answers every event with `"$GREETING"`.
const GREETER: &str = r#"#!/bin/bash
set -eu
while true; do
  HEADERS="$(mktemp)"
  curl -sS -D "$HEADERS" -o /dev/null "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next"
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  rm -f "$HEADERS"
  curl -sS -o /dev/null -X POST "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$ID/response" -d "\"$GREETING\""
done
"#;

/// A template of greeters: one function per (logical id, greeting).
fn greeters(functions: &[(&str, &str)]) -> String {
    let mut template = String::from("Transform: AWS::Serverless-2016-10-31\nResources:\n");
    for (id, greeting) in functions {
        template.push_str(&format!(
            "  {id}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: code\n      \
             Runtime: provided.al2023\n      Handler: h\n      Environment:\n        Variables:\n          \
             GREETING: {greeting}\n"
        ));
    }
    template
}

#[test]
fn up_watch_applies_a_changed_template_in_place_or_starts_the_stack_again() {
    let dir = tempdir::Dir::new();
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(code.join("bootstrap"), GREETER).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(
        code.join("bootstrap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let template = dir.path().join("template.yaml");
    std::fs::write(&template, greeters(&[("Hello", "v1")])).unwrap_or_else(|e| panic!("{e}"));
    let (mut server, _) = Server::up_command(
        coldstart()
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--port-base",
                "0",
                "--watch",
            ])
            .arg("--template")
            .arg(&template),
    );
    let stderr = server
        .stderr
        .take()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    wait_line(&stderr, |l| l.starts_with("coldstart: watching"));
    assert_eq!(text(&server.invoke(&["Hello", "{}"]).stdout), "\"v1\"\n");

    // A changed setting: the function is reconfigured in place, the stack keeps serving.
    std::fs::write(&template, greeters(&[("Hello", "v2")])).unwrap_or_else(|e| panic!("{e}"));
    wait_line(&stderr, |l| {
        l.contains("Hello reloaded with the new settings")
    });
    assert_eq!(text(&server.invoke(&["Hello", "{}"]).stdout), "\"v2\"\n");

    // A template that no longer reads changes nothing.
    std::fs::write(&template, "Resources: [").unwrap_or_else(|e| panic!("{e}"));
    wait_line(&stderr, |l| l.contains("does not read"));
    assert_eq!(text(&server.invoke(&["Hello", "{}"]).stdout), "\"v2\"\n");

    // A new function changes the stack's shape: it starts again, with both.
    std::fs::write(&template, greeters(&[("Hello", "v3"), ("Other", "hi")]))
        .unwrap_or_else(|e| panic!("{e}"));
    wait_line(&stderr, |l| l.contains("starting the stack again"));
    let (endpoint, table) = Server::table(&stderr);
    assert!(table.iter().any(|row| row.contains("Other")), "{table:?}");
    server.endpoint = endpoint;
    assert_eq!(text(&server.invoke(&["Other", "{}"]).stdout), "\"hi\"\n");
    assert_eq!(text(&server.invoke(&["Hello", "{}"]).stdout), "\"v3\"\n");
    // Still watching, with the new stack.
    std::fs::write(&template, greeters(&[("Hello", "v4"), ("Other", "hi")]))
        .unwrap_or_else(|e| panic!("{e}"));
    wait_line(&stderr, |l| {
        l.contains("Hello reloaded with the new settings")
    });
    assert_eq!(text(&server.invoke(&["Hello", "{}"]).stdout), "\"v4\"\n");
}

#[test]
fn up_stops_every_server_and_sandbox_on_sigterm() {
    let (_dir, config) = app(
        "[functions.a]\nbootstrap = \"event-echo.sh\"\nurl = { port = 0 }\n[functions.b]\nbootstrap = \"event-echo.sh\"\n",
    );
    let (mut server, _) = Server::up(&config);
    let mut groups = Vec::new();
    for name in ["a", "b"] {
        assert!(server.invoke(&[name, "{}"]).status.success());
        let line = wait_line(&server.stdout, |l| l.starts_with(&format!("[{name}] PID=")));
        groups.push(
            line.rsplit('=')
                .next()
                .and_then(|p| p.parse::<i32>().ok())
                .unwrap_or(0),
        );
    }
    let _ = nix::sys::signal::kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM);
    let status = server.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0));
    let deadline = std::time::Instant::now() + PATIENCE;
    for pid in groups {
        assert!(pid > 0);
        while killpg(Pid::from_raw(pid), None).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "sandbox group {pid} survived"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn invoke_stream_prints_the_streamed_answer_and_the_tail() {
    let bootstrap = repo("crates/testkit/fixtures/stream-echo.sh");
    let server = Server::start(&["--", bootstrap.to_str().unwrap_or_default()]);
    let out = server.invoke(&["function", "{}", "--stream", "--log-type", "Tail"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "chunk 1\nchunk 2\n\n");
    let log = text(&out.stderr);
    assert!(
        log.contains("START RequestId: ") && log.contains("REPORT RequestId: "),
        "{log}"
    );
    // A buffered invoke of the same function gets the whole answer.
    let whole = server.invoke(&["function", "{}"]);
    assert_eq!(text(&whole.stdout), "chunk 1\nchunk 2\n\n");
}

#[tokio::test(flavor = "current_thread")]
async fn up_serves_a_websocket_api_and_logs_each_connection_with_its_id() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let (_dir, config) = app(r#"
[functions.ws]
bootstrap = "event-echo.sh"

[websocket_apis.chat]
port = 0
stage = "test"
routes = { "$connect" = "ws", "$disconnect" = "ws", "$default" = { function = "ws", two_way = true } }
"#);
    let (server, table) = Server::up(&config);
    let ws_url = table
        .iter()
        .find(|l| l.contains("websocket_apis.chat") && l.contains("$default"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("ws://")))
        .unwrap_or_else(|| panic!("no WebSocket URL in {table:?}"))
        .to_owned();
    assert!(ws_url.ends_with("/test"), "{ws_url}");
    let connections = endpoint(&table, "@connections");
    assert!(
        connections.ends_with("/test/@connections/{id}"),
        "{connections}"
    );
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("no stderr"));

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws_url}?room=1"))
        .await
        .unwrap_or_else(|e| panic!("connect {ws_url}: {e}"));
    let connected = wait_line(stderr, |l| {
        l.contains("connected") && l.contains("connection_id")
    });
    let id = connected
        .split("connection_id=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id in {connected}"))
        .to_owned();
    assert_eq!(id.len(), 16, "an id in AWS's format: {id}");

    // A two-way $default route: the function's answer (here, its event) comes back.
    socket
        .send(Message::text("hello"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let reply = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .unwrap_or_else(|_| panic!("no reply"))
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("connection ended"));
    let event: serde_json::Value = serde_json::from_str(reply.to_text().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{reply:?}: {e}"));
    assert_eq!(event["body"], "hello");
    assert_eq!(event["requestContext"]["routeKey"], "$default");
    assert_eq!(event["requestContext"]["connectionId"], id.as_str());

    socket
        .close(None)
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    let disconnected = wait_line(stderr, |l| l.contains("disconnected"));
    assert!(disconnected.contains(&id), "{disconnected}");
    // $connect, the message and $disconnect each ran the function.
    for _ in 0..3 {
        wait_line(&server.stdout, |l| l.starts_with("[ws] END RequestId:"));
    }
}

/// A folder with `file` (a template) and `code/bootstrap`, the event echo.
fn template_app(file: &str, template: &str) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    std::fs::create_dir_all(dir.path().join("code")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        repo("crates/testkit/fixtures/event-echo.sh"),
        dir.path().join("code/bootstrap"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join(file), template).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn up_finds_a_json_template_in_its_folder_without_flags() {
    let dir = template_app(
        "template.json",
        r#"{"Transform": "AWS::Serverless-2016-10-31",
            "Resources": {"Echo": {"Type": "AWS::Serverless::Function",
              "Properties": {"CodeUri": "code", "Runtime": "provided.al2023", "Handler": "h",
                             "FunctionUrlConfig": {"AuthType": "NONE"}}}}}"#,
    );
    let mut command = coldstart();
    command
        .args(["up", "--listen", "127.0.0.1:0", "--port-base", "0"])
        .current_dir(dir.path());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn coldstart up: {e}"));
    let stderr = lines(child.stderr.take());
    let _stdout = lines(child.stdout.take());
    let server = Server {
        child,
        endpoint: String::new(),
        stdout: _stdout,
        stderr: None,
    };
    let url = wait_line(&stderr, |l| l.contains("Function URL"));
    let url = url
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {url}"))
        .to_owned();
    let event: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("{url}from/json")])).unwrap_or_default();
    assert_eq!(event["rawPath"], "/from/json");
    drop(server);
}

#[test]
fn up_rejects_each_broken_template_with_file_logical_id_and_property() {
    let function = |extra: &str| {
        format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Echo:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: provided.al2023\n      Handler: h\n{extra}"
        )
    };
    let cases = [
        (
            "YAML syntax",
            "Resources:\n  Echo: [unclosed\n".to_owned(),
            "template.yaml:".to_owned(),
        ),
        (
            "an unknown Ref",
            function(
                "      CodeUri: code\n      Environment:\n        Variables:\n          X: !Ref Nowhere\n",
            ),
            "Resources.Echo.Properties.Environment.Variables.X".to_owned(),
        ),
        (
            "GetAtt of a missing attribute",
            format!(
                "{}  Topic:\n    Type: AWS::SNS::Topic\n",
                function(
                    "      CodeUri: code\n      Environment:\n        Variables:\n          X: !GetAtt Topic.Colour\n"
                )
            ),
            "Resources.Echo.Properties.Environment.Variables.X".to_owned(),
        ),
        (
            "a function without code",
            function(""),
            "Resources.Echo.Properties.CodeUri".to_owned(),
        ),
        (
            "a parameter outside AllowedValues",
            format!(
                "Parameters:\n  Stage:\n    Type: String\n    Default: qa\n    AllowedValues: [dev, prod]\n{}",
                function("      CodeUri: code\n")
            ),
            "Parameters.Stage".to_owned(),
        ),
        (
            "a cycle",
            format!(
                "{}  A:\n    Type: AWS::SNS::Topic\n    DependsOn: B\n  B:\n    Type: AWS::SNS::Topic\n    DependsOn: A\n",
                function("      CodeUri: code\n")
            ),
            "circular dependency".to_owned(),
        ),
    ];
    for (what, template, names) in cases {
        let dir = template_app("template.yaml", &template);
        let out = coldstart()
            .args(["up", "--listen", "127.0.0.1:0", "--port-base", "0"])
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("template.yaml") && err.contains(&names),
            "{what}: {err}"
        );
        if what == "GetAtt of a missing attribute" {
            assert!(err.contains("Topic") && err.contains("Colour"), "{err}");
        }
        if what == "a cycle" {
            assert!(
                err.contains("Resources.A") || err.contains("Resources.B"),
                "{err}"
            );
        }
    }
}

/// A client in another language drives `--ready-json`: Python starts `coldstart up`, reads the
/// one line on its standard output, invokes the function through the Invoke API it names and
/// calls the Function URL, then stops it.
#[test]
fn ready_json_names_every_endpoint_for_a_python_client() {
    let dir = template_app(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Echo:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: code\n      Runtime: provided.al2023\n      Handler: h\n      FunctionUrlConfig:\n        AuthType: NONE\n",
    );
    let script = r#"
import json, os, signal, subprocess, sys, urllib.request
up = subprocess.Popen([sys.argv[1], "up", "--ready-json", "--listen", "127.0.0.1:0", "--port-base", "0"],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
try:
    ready = json.loads(up.stdout.readline())
    kinds = {e["kind"]: e for e in ready["endpoints"]}
    invoke = kinds["invoke"]["url"] + "/2015-03-31/functions/Echo/invocations"
    answer = urllib.request.urlopen(urllib.request.Request(invoke, data=b'{"from":"python"}')).read()
    url = urllib.request.urlopen(kinds["url"]["url"] + "py/path").read()
    print(json.dumps({"ready": ready, "answer": json.loads(answer), "url": json.loads(url)}))
finally:
    os.killpg(up.pid, signal.SIGTERM)
    up.wait(timeout=20)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_coldstart"))
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(seen["ready"]["ready"], true);
    let endpoints = seen["ready"]["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("{seen}"));
    assert_eq!(endpoints[0]["name"], "*");
    assert_eq!(endpoints[0]["kind"], "invoke");
    assert!(
        endpoints
            .iter()
            .any(|e| e["name"] == "Echo" && e["kind"] == "url"),
        "{seen}"
    );
    assert_eq!(seen["answer"]["from"], "python");
    assert_eq!(seen["url"]["rawPath"], "/py/path");
}

/// `coldstart run --ready-json --listen 127.0.0.1:0 ARGS…`, once its ready line is read: the
/// server and the line.
fn run_ready(args: &[&std::ffi::OsStr]) -> (Server, serde_json::Value) {
    let mut child = coldstart()
        .args(["run", "--ready-json", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = lines(child.stdout.take());
    let server = Server {
        child,
        endpoint: String::new(),
        stdout,
        stderr: None,
    };
    let line = server
        .stdout
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("no ready line: {e}"));
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(ready["ready"], true);
    (server, ready)
}

/// The invocation URL of `run`'s function, from its ready line (the Invoke API comes first).
fn invoke_url(ready: &serde_json::Value) -> String {
    let url = ready["endpoints"][0]["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("http://127.0.0.1:"), "{ready}");
    format!("{url}/2015-03-31/functions/function/invocations")
}

/// `run --ready-json` prints its one line too: the Invoke API of the function `function`.
#[test]
fn run_ready_json_prints_one_line_naming_the_invoke_api() {
    let echo = repo("crates/testkit/fixtures/event-echo.sh");
    let (_server, ready) = run_ready(&["--".as_ref(), echo.as_os_str()]);
    let url = invoke_url(&ready);
    let answer = curl(&["-XPOST", &url, "-d", "{\"a\":1}"]);
    assert_eq!(answer, "{\"a\":1}");
}

/// `run --runtime RUNTIME --handler HANDLER DIR` (DIR in the repository), invoked once with
/// `{"n":2}`: its answer.
fn run_managed(runtime: &str, handler: &str, dir: &str) -> serde_json::Value {
    let code = repo(dir);
    let (_server, ready) = run_ready(&[
        "--runtime".as_ref(),
        runtime.as_ref(),
        "--handler".as_ref(),
        handler.as_ref(),
        code.as_os_str(),
    ]);
    let answer = curl(&["-XPOST", &invoke_url(&ready), "-d", "{\"n\":2}"]);
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// `run --runtime python3.11 --handler app.handler DIR`: a Python function without a bootstrap,
/// as the Runtime Interface Emulator runs one in AWS's Python image.
#[test]
fn run_serves_a_python_handler_from_its_folder() {
    let answer = run_managed(
        "python3.11",
        "app.handler",
        "crates/testkit/fixtures/python",
    );
    assert_eq!(answer["event"]["n"], 2);
    assert_eq!(answer["function"], "function");
    assert_eq!(answer["six"], true);
}

/// `run --runtime nodejs20.x --handler esm.handler DIR`: a Node.js ES module handler without a
/// bootstrap, its `package.json` dependency installed, as the RIE runs one in AWS's Node image.
#[test]
fn run_serves_a_node_handler_from_its_folder() {
    let answer = run_managed("nodejs20.x", "esm.handler", "crates/testkit/fixtures/node");
    assert_eq!(answer["style"], "esm");
    assert_eq!(answer["oneHour"], 3_600_000);
    assert_eq!(answer["event"]["n"], 2);
}

/// A folder for `PATH` with only `tools` (linked from where they are here).
fn path_with(dir: &std::path::Path, tools: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools {
        let found = std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no {tool} on PATH"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap_or_else(|e| panic!("{e}"));
    }
    bin
}

/// Without `node`, or without the tools to build the runtime client's addon, a Node.js function
/// is left out with a line naming what is missing; `up` serves the rest.
#[test]
fn up_names_what_a_node_function_misses_and_serves_the_rest() {
    let dir = template_app(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code, Runtime: provided.al2023, Handler: h}
  Js:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code, Runtime: nodejs20.x, Handler: index.handler}
",
    );
    // What the echo bootstrap runs, and nothing else.
    let shell = ["mktemp", "curl", "grep", "tr", "cut", "rm"];
    let no_node = path_with(&dir.path().join("no-node"), &shell);
    let mut with_node: Vec<&str> = shell.to_vec();
    with_node.push("node");
    let no_tools = path_with(&dir.path().join("no-tools"), &with_node);
    let cache = dir.path().join("cache"); // empty: the runtime client is not prepared
    for (path, missing) in [
        (&no_node, "needs Node.js (node on PATH) and none runs here"),
        (
            &no_tools,
            "building it needs npm, cmake, autoconf, automake, libtoolize, g++, make",
        ),
    ] {
        let mut command = coldstart();
        command
            .args(["up", "--listen", "127.0.0.1:0", "--port-base", "0"])
            .current_dir(dir.path())
            .env("PATH", path)
            .env("COLDSTART_CACHE", &cache);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn coldstart up: {e}"));
        let stderr = lines(child.stderr.take());
        let mut server = Server {
            stdout: lines(child.stdout.take()),
            child,
            endpoint: String::new(),
            stderr: None,
        };
        let notice = wait_line(&stderr, |l| l.contains("Js: Runtime nodejs20.x"));
        assert!(
            notice.contains(missing) && notice.ends_with("the other functions are served"),
            "{notice}"
        );
        (server.endpoint, _) = Server::table(&stderr);
        let out = server.invoke(&["Echo", "{\"still\":\"served\"}"]);
        assert_eq!(
            text(&out.stdout).trim(),
            "{\"still\":\"served\"}",
            "{}",
            text(&out.stderr)
        );
    }
}

/// `run --dashboard ADDR` serves the dashboard there and `--ready-json` lists it (kind
/// `dashboard`); the page's API answers and invokes, and a foreign `Host` is refused.
#[test]
fn run_dashboard_is_listed_in_the_ready_line_and_invokes_the_function() {
    let echo = repo("crates/testkit/fixtures/event-echo.sh");
    let (_server, ready) = run_ready(&[
        "--dashboard".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--".as_ref(),
        echo.as_os_str(),
    ]);
    let line = ready.to_string();
    let dashboard = ready["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "dashboard"))
        .and_then(|e| e["url"].as_str())
        .unwrap_or_else(|| panic!("no dashboard endpoint: {line}"))
        .to_owned();
    assert!(dashboard.starts_with("http://127.0.0.1:"), "{line}");
    let answer = curl(&[
        "-XPOST",
        &format!("{dashboard}api/invoke"),
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"function":"function","payload":"{\"via\":\"dashboard\"}"}"#,
    ]);
    let answer: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(answer["answer"], r#"{"via":"dashboard"}"#, "{answer}");
    let refused = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Host: attacker.example",
        &format!("{dashboard}api/functions"),
    ]);
    assert_eq!(refused, "403");
}

/// `up --dashboard` is listed in `--ready-json`; its API shows the stack's endpoints and an
/// invocation made through an HTTP API (not through the page).
#[test]
fn up_dashboard_shows_the_apis_and_an_invocation_from_an_http_api() {
    let (_dir, config) = app(r#"
[functions.web]
bootstrap = "event-echo.sh"

[http_apis.api]
port = 0
routes = { "GET /items/{id}" = "web" }
"#);
    let (server, table) = Server::up_with(
        &config,
        &["--no-build", "--ready-json", "--dashboard", "127.0.0.1:0"],
    );
    let line = server
        .stdout
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("no ready line: {e}"));
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let dashboard = ready["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "dashboard"))
        .and_then(|e| e["url"].as_str())
        .unwrap_or_else(|| panic!("no dashboard endpoint: {line}"))
        .to_owned();
    let route = endpoint(&table, "http_apis.api").replace("{id}", "7");
    let event: serde_json::Value = serde_json::from_str(&curl(&[&route])).unwrap_or_default();
    assert_eq!(event["pathParameters"]["id"], "7");
    let apis: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("{dashboard}api/apis")])).unwrap_or_default();
    let kinds: Vec<&str> = apis["apis"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["invoke", "http-api"], "{apis}");
    // The caller was answered before the REPORT: a bounded retry until it is in.
    let mut invocations = serde_json::Value::Null;
    for _ in 0..100 {
        invocations = serde_json::from_str(&curl(&[&format!(
            "{dashboard}api/invocations?function=web&status=success"
        )]))
        .unwrap_or_default();
        if invocations["invocations"][0].is_object() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = &invocations["invocations"][0];
    assert_eq!(first["status"], "success", "{invocations}");
    // Every invocation has previews, also one the page did not make.
    let payload = first["payload"].as_str().unwrap_or_default();
    assert!(payload.contains("/items/7"), "{invocations}");
    // The API lists the request, with the invocation's request id.
    let apis: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("{dashboard}api/apis")])).unwrap_or_default();
    let request = &apis["apis"][1]["requests"][0];
    assert_eq!(request["path"], "/items/7", "{apis}");
    assert_eq!(request["status"], 200, "{apis}");
    assert_eq!(request["requestId"], first["requestId"], "{apis}");
}

#[test]
fn event_lists_the_samples_and_prints_one_with_its_fields_set() {
    let list = coldstart()
        .arg("event")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(list.status.success());
    let listed = text(&list.stdout);
    for name in [
        "apigateway aws-proxy",
        "sqs receive-message",
        "s3 put",
        "lambda function-url",
    ] {
        assert!(listed.contains(name), "{name} is not listed:\n{listed}");
    }

    let out = coldstart()
        .args([
            "event",
            "sqs",
            "receive-message",
            "--set",
            "Records.0.body=hi there",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let event: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(event["Records"][0]["body"], "hi there");
    assert_eq!(event["Records"][0]["eventSource"], "aws:sqs");

    let unknown = coldstart()
        .args(["event", "sqs", "nope"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no sample event sqs nope"));
}

/// `invoke --event` sends a sample: a REST API proxy event reaches the function whole.
#[test]
fn invoke_sends_a_sample_event() {
    let server = Server::start(&[
        "--",
        repo("crates/testkit/fixtures/event-echo.sh")
            .to_str()
            .unwrap_or_default(),
    ]);
    let out = server.invoke(&["function", "--event", "apigateway/aws-proxy"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let event: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["requestContext"]["resourcePath"], "/{proxy+}");
}

#[test]
fn up_keeps_queued_event_invocations_on_sigterm_and_resumes_them_at_the_next_start() {
    let (dir, config) = app("[functions.crash]\nbootstrap = [\"./exit-on-invoke.sh\"]\n");
    // Run from the stack's folder, as a user does: paths are shown relative to it.
    let up = |dir: &std::path::Path| {
        let mut command = coldstart();
        command
            .current_dir(dir)
            .args(["up", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config);
        Server::up_command(&mut command)
    };
    let sigterm = |mut server: Server| {
        let _ = nix::sys::signal::kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM);
        let status = server.child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.code(), Some(0));
        server
    };

    let (server, _) = up(dir.path());
    // Accepted (202); the crash is retried after Lambda's minute, long after the stop.
    let out = server.invoke(&["crash", "{\"n\":1}", "--invocation-type", "Event"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = sigterm(server);
    let stderr = server
        .stderr
        .as_ref()
        .unwrap_or_else(|| panic!("up keeps its stderr"));
    wait_line(stderr, |l| {
        l == "coldstart: kept 1 queued Event invocations in .coldstart/async-queue.sqlite"
    });
    drop(server);
    assert!(dir.path().join(".coldstart/async-queue.sqlite").exists());

    // The next start says what it resumed before its table.
    let mut command = coldstart();
    let child = command
        .current_dir(dir.path())
        .args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = child.unwrap_or_else(|e| panic!("spawn coldstart up: {e}"));
    let stderr = lines(child.stderr.take());
    let server = Server {
        stdout: lines(child.stdout.take()),
        child,
        endpoint: String::new(),
        stderr: None,
    };
    wait_line(&stderr, |l| {
        l == "coldstart: resumed 1 queued Event invocations from .coldstart/async-queue.sqlite"
    });
    wait_line(&stderr, |l| l.contains("functions ready in"));
    // It runs again and fails again: the stop keeps it once more, with its second attempt.
    wait_line(&server.stdout, |l| l.contains("dying mid-invoke"));
    let _server = sigterm(server);
    wait_line(&stderr, |l| l.starts_with("coldstart: kept 1 queued Event"));
}

#[test]
fn up_lists_each_schedule_with_its_next_fire_time_and_no_schedules_turns_them_off() {
    let config = r#"
[functions.tick]
bootstrap = "event-echo.sh"
schedule = "rate(1 minute)"

[functions.noon]
bootstrap = "event-echo.sh"
schedule = { expression = "cron(0 12 * * ? *)", timezone = "Asia/Tokyo" }
"#;
    let (_dir, path) = app(config);
    let schedules = |server: &Server| -> Vec<String> {
        let stderr = server
            .stderr
            .as_ref()
            .unwrap_or_else(|| panic!("up keeps its stderr"));
        wait_line(stderr, |l| l.trim_start().starts_with("SCHEDULE"));
        (0..2)
            .map(|_| wait_line(stderr, |l| l.contains("-schedule")))
            .collect()
    };
    let (server, _) = Server::up(&path);
    let rows = schedules(&server);
    let tick = rows
        .iter()
        .find(|r| r.contains("tick-schedule"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert!(
        tick.contains("rate(1 minute)") && tick.contains("next ") && tick.contains(" UTC"),
        "{tick}"
    );
    let noon = rows
        .iter()
        .find(|r| r.contains("noon-schedule"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    // 12:00 in Tokyo is 03:00 UTC.
    assert!(
        noon.contains("cron(0 12 * * ? *)")
            && noon.contains("03:00:00 UTC")
            && noon.contains("12:00 JST"),
        "{noon}"
    );
    drop(server);

    let (server, _) = Server::up_with(&path, &["--no-schedules"]);
    let rows = schedules(&server);
    assert!(
        rows.iter().all(|r| r.ends_with("off (--no-schedules)")),
        "{rows:?}"
    );
}

#[test]
fn up_rejects_a_bad_schedule_with_file_line_and_key() {
    let (_dir, config) =
        app("[functions.tick]\nbootstrap = \"event-echo.sh\"\nschedule = \"cron(0 12 * * * *)\"\n");
    let out = coldstart()
        .args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("coldstart.toml:3:12: functions.tick.schedule: cron(0 12 * * * *): one of day-of-month and day-of-week must be ?"),
        "{err}"
    );
}

#[test]
fn up_without_sqs_endpoint_says_sqs_events_are_not_emulated_and_serves_the_rest() {
    let dir = template_app(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code
      Runtime: provided.al2023
      Handler: h
      Events:
        Work: {Type: SQS, Properties: {Queue: !GetAtt Orders.Arn}}
        Changes: {Type: DynamoDB, Properties: {Stream: arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x, StartingPosition: LATEST}}
        Clicks: {Type: Kinesis, Properties: {Stream: arn:aws:kinesis:us-east-1:123456789012:stream/s, StartingPosition: LATEST}}
",
    );
    let mut command = coldstart();
    command
        .args(["up", "--listen", "127.0.0.1:0", "--port-base", "0"])
        .current_dir(dir.path());
    let (server, table) = Server::up_command(&mut command);
    assert!(table.iter().any(|l| l.contains("Worker")), "{table:?}");
    let out = server.invoke(&["Worker", r#"{"served":true}"#]);
    assert_eq!(text(&out.stdout), "{\"served\":true}\n");
    drop(server);
    // The lines were said before the table; a second run collects every line to the end.
    let mut child = coldstart()
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--port-base",
            "0",
            "--no-build",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = lines(child.stderr.take());
    let mut said = Vec::new();
    while let Ok(line) = stderr.recv_timeout(PATIENCE) {
        let done = line.contains("functions ready in");
        said.push(line);
        if done {
            break;
        }
    }
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
    let said = said.join("\n");
    for line in [
        "SQS events are not emulated without --sqs-endpoint URL: Worker.Events.Work",
        "Worker.Events.Changes: DynamoDB Streams events are not emulated yet",
        "Worker.Events.Clicks: Kinesis events are not emulated yet",
    ] {
        assert!(said.contains(line), "{line}\n  not in\n{said}");
    }
}

/// The issue's done-when: `run --max-concurrency 8` answers eight parallel callers of a function
/// that sleeps 200 ms from one environment: one init, eight overlapping invocations (by the
/// function's own clock).
#[test]
fn run_with_max_concurrency_8_answers_8_parallel_callers_from_one_environment() {
    let bootstrap = repo("crates/testkit/fixtures/concurrent-sleep.sh");
    let server = Server::start(&[
        "--max-concurrency",
        "8",
        "--",
        bootstrap.to_str().unwrap_or_default(),
    ]);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let endpoint = server.endpoint.clone();
            std::thread::spawn(move || {
                coldstart()
                    .args(["invoke", "function", "{}", "--endpoint", &endpoint])
                    .output()
            })
        })
        .collect();
    for caller in callers {
        let out = caller
            .join()
            .unwrap_or_else(|_| panic!("caller panicked"))
            .unwrap_or_else(|e| panic!("coldstart invoke: {e}"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("pid"), "{}", text(&out.stdout));
    }
    let mut begins = Vec::new();
    let mut ends = Vec::new();
    let mut inits = 0;
    let mut reports = 0;
    let mut pids = 0;
    while reports < 8 {
        let line = wait_line(&server.stdout, |_| true);
        let stamp = |l: &str| {
            l.rsplit(' ')
                .next()
                .and_then(|n| n.parse::<u128>().ok())
                .unwrap_or(0)
        };
        if line.starts_with("[function] PID=") {
            pids += 1;
        } else if line.starts_with("[function] WORK-BEGIN ") {
            begins.push(stamp(&line));
        } else if line.starts_with("[function] WORK-END ") {
            ends.push(stamp(&line));
        } else if line.contains("REPORT RequestId") {
            reports += 1;
            inits += usize::from(line.contains("Init Duration"));
        }
    }
    assert_eq!(pids, 1, "one environment");
    assert_eq!(inits, 1, "one init");
    assert_eq!((begins.len(), ends.len()), (8, 8));
    let latest_begin = begins.iter().max().copied().unwrap_or(0);
    let earliest_end = ends.iter().min().copied().unwrap_or(0);
    assert!(
        latest_begin < earliest_end,
        "the eight ran one after another: {begins:?} {ends:?}"
    );
}

/// `run --ready-json` under `COLDSTART_LOG=filter` (unset with `None`), stopped with SIGTERM once
/// ready: what it said on standard error.
fn stderr_under(filter: Option<&str>) -> String {
    let echo = repo("crates/testkit/fixtures/event-echo.sh");
    let mut command = coldstart();
    command
        .args(["run", "--ready-json", "--listen", "127.0.0.1:0", "--"])
        .arg(&echo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    match filter {
        Some(filter) => command.env("COLDSTART_LOG", filter),
        None => command.env_remove("COLDSTART_LOG"),
    };
    let mut child = command.spawn().unwrap_or_else(|e| panic!("{e}"));
    let stdout = lines(child.stdout.take());
    let stderr = lines(child.stderr.take());
    stdout
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("no ready line: {e}"));
    let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0));
    stderr.iter().collect::<Vec<_>>().join("\n")
}

/// `COLDSTART_LOG` sets what coldstart says: its own `info` lines by default, none under `warn`,
/// back under a `TARGET=LEVEL` pair for coldstart's crate, and the default for a value that does
/// not parse.
#[test]
fn coldstart_log_filters_what_coldstart_says_on_stderr() {
    let said = |filter| stderr_under(filter).contains("shutting down");
    assert!(said(None), "the default shows coldstart's info lines");
    assert!(!said(Some("warn")), "warn hides them");
    assert!(said(Some("warn,coldstart=info")), "a target's own level");
    assert!(
        said(Some("=nonsense=")),
        "a filter that does not parse keeps the default"
    );
}

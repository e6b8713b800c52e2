//! coldstart as the scenarios start it: `coldstart up` or `coldstart run` with `--ready-json`,
//! whose one line on stdout names every endpoint once each answers; a `coldstart.toml` in a
//! temporary folder; and the release binaries next to this executable.
//!
//! Endpoints come from that JSON line, never from the table `up` prints for people.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::core::process::{Output, STOP_GRACE, Server, TEMP_PREFIX};

/// How long coldstart may take to print its ready line (builds are never part of a run).
const READY_LIMIT: Duration = Duration::from_secs(30);
/// What `up` prints on stderr before its endpoint table: `coldstart: N functions ready in X ms`.
const READY_IN: &str = " ready in ";

/// One endpoint of the ready line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The function (for a URL) or API it serves; `*` for the Invoke API.
    pub name: String,
    /// `invoke`, `url`, `http-api`, `rest-api`, `websocket`.
    pub kind: String,
    pub addr: SocketAddr,
    /// The URL's path (`/`, `/staging`, empty for the Invoke API).
    pub path: String,
}

/// Reads `{"ready":true,"endpoints":[{"name":..,"kind":..,"url":..}]}`.
pub fn parse_ready(line: &str) -> Option<Vec<Endpoint>> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value["ready"] != true {
        return None;
    }
    let endpoints = value["endpoints"].as_array()?.iter().map(|e| {
        let url = e["url"].as_str()?;
        let rest = url.split_once("://")?.1;
        let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Some(Endpoint {
            name: e["name"].as_str()?.to_owned(),
            kind: e["kind"].as_str()?.to_owned(),
            addr: addr.parse().ok()?,
            path: path.to_owned(),
        })
    });
    endpoints.collect()
}

/// coldstart's output: the ready line on stdout; kept are its warnings and errors and the
/// `ready in` line of `up` (function logs, `[name] ...`, and the table are not).
#[derive(Debug)]
struct ReadyJson;

impl Output for ReadyJson {
    type Ready = Vec<Endpoint>;
    fn ready(&self, line: &str) -> Option<Vec<Endpoint>> {
        line.starts_with("{\"").then(|| parse_ready(line)).flatten()
    }
    fn keep(&self, line: &str) -> bool {
        // `error` opens cargo's messages when coldstart is run through `cargo run`.
        line.starts_with("error")
            || ["WARN", "ERROR", "panicked", READY_IN]
                .iter()
                .any(|word| line.contains(word))
    }
}

/// `coldstart SUBCOMMAND --listen 127.0.0.1:0 --ready-json`, logging warnings and errors only.
fn command(coldstart: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(coldstart);
    command
        .args([subcommand, "--listen", "127.0.0.1:0", "--ready-json"])
        .env("COLDSTART_LOG", "warn");
    command
}

/// A running `coldstart up` or `coldstart run` and its sandboxes, none of which outlive it.
#[derive(Debug)]
pub struct Coldstart {
    server: Server,
    pub endpoints: Vec<Endpoint>,
    /// When the ready line was read.
    pub ready_at: Instant,
}

impl Coldstart {
    /// `coldstart up [OPTIONS] --listen 127.0.0.1:0 --ready-json --config CONFIG`.
    pub fn up(coldstart: &Path, options: &[&str], config: &Path) -> anyhow::Result<Self> {
        let mut command = command(coldstart, "up");
        command.args(options).arg("--config").arg(config);
        Self::start("coldstart up", command)
    }

    /// `coldstart up --template TEMPLATE` from the template's folder, with every port free.
    pub fn up_template(coldstart: &Path, template: &Path) -> anyhow::Result<Self> {
        let mut command = command(coldstart, "up");
        command
            .args(["--no-build", "--port-base", "0", "--template"])
            .arg(template)
            .current_dir(template.parent().unwrap_or(Path::new(".")));
        Self::start("coldstart up", command)
    }

    /// `coldstart run [--concurrency N] -- BOOTSTRAP`, serving it as `function`.
    pub fn run(
        coldstart: &Path,
        bootstrap: &Path,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Self> {
        Self::run_with(coldstart, bootstrap, concurrency, &[])
    }

    /// [`Self::run`] with more of `run`'s options (`--extension PATH`, `--env K=V`, ...).
    pub fn run_with(
        coldstart: &Path,
        bootstrap: &Path,
        concurrency: Option<usize>,
        options: &[&std::ffi::OsStr],
    ) -> anyhow::Result<Self> {
        let mut command = command(coldstart, "run");
        if let Some(n) = concurrency {
            command.args(["--concurrency", &n.to_string()]);
        }
        command.args(options);
        command.arg("--").arg(bootstrap);
        Self::start("coldstart run", command)
    }

    fn start(name: &str, command: Command) -> anyhow::Result<Self> {
        Self::start_with(name, command, READY_LIMIT)
    }

    /// `command`, which runs coldstart with `--ready-json` (`cargo run -- up ...`), given `limit`
    /// to print its ready line (a build included).
    pub fn start_with(name: &str, command: Command, limit: Duration) -> anyhow::Result<Self> {
        let (server, endpoints, ready_at) = Server::start(name, command, ReadyJson, limit)?;
        Ok(Self {
            server,
            endpoints,
            ready_at,
        })
    }

    /// The endpoint of `kind` serving `name` (`*` for the Invoke API).
    pub fn endpoint(&self, name: &str, kind: &str) -> anyhow::Result<&Endpoint> {
        match self
            .endpoints
            .iter()
            .find(|e| e.name == name && e.kind == kind)
        {
            Some(endpoint) => Ok(endpoint),
            None => bail!("no {kind} endpoint for {name} in {:?}", self.endpoints),
        }
    }

    /// The Invoke API's address.
    pub fn invoke_api(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.endpoint("*", "invoke")?.addr)
    }

    /// The pid of coldstart itself (not its sandboxes).
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.server.pid()
    }

    /// The `X` of `coldstart: N functions ready in X ms`, which `up` prints on stderr.
    pub fn ready_in(&self) -> Option<Duration> {
        let lines = self.server.lines();
        let ms = lines.iter().find_map(|l| {
            let (_, rest) = l.split_once(READY_IN)?;
            rest.strip_suffix(" ms")?.trim().parse::<f64>().ok()
        })?;
        Duration::try_from_secs_f64(ms / 1e3).ok()
    }

    /// SIGTERM (coldstart stops its sandboxes), [`STOP_GRACE`], SIGKILL; sandbox groups left are
    /// killed. Returns its warnings and errors, and a line for an unclean end.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.stop_within(STOP_GRACE)
    }

    /// As [`Coldstart::stop`] with another grace period.
    pub fn stop_within(self, grace: Duration) -> anyhow::Result<Vec<String>> {
        let lines = self.server.stop(grace)?;
        Ok(lines
            .into_iter()
            .filter(|l| !l.contains(READY_IN))
            .collect())
    }
}

/// A temporary folder with a `coldstart.toml`; removed on drop.
#[derive(Debug)]
pub struct ConfigDir {
    pub dir: PathBuf,
    /// The `coldstart.toml` in it.
    pub config: PathBuf,
}

impl ConfigDir {
    /// `TEMP/coldstart-bench-NAME-PID`, emptied, with `toml` as its `coldstart.toml`.
    pub fn write(name: &str, toml: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{TEMP_PREFIX}{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let made = Self {
            config: dir.join("coldstart.toml"),
            dir,
        };
        std::fs::write(&made.config, toml)
            .with_context(|| format!("writing {}", made.config.display()))?;
        Ok(made)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `path` as a TOML string; an error if it is not UTF-8.
pub fn toml_path(path: &Path) -> anyhow::Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(toml_string(s))
}

/// `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The repository root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The release binary `name` in this executable's folder (`target/release` after `run.sh`),
/// canonical so that it compares equal to `/proc/PID/exe`.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!("{} is missing; bench/run.sh builds it", path.display());
    }
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_every_endpoint() {
        let line = r#"{"ready":true,"endpoints":[{"name":"*","kind":"invoke","url":"http://127.0.0.1:9000"},{"name":"echo","kind":"url","url":"http://127.0.0.1:3000/"},{"name":"chat","kind":"websocket","url":"ws://127.0.0.1:3001/staging"}]}"#;
        let endpoints = parse_ready(line).expect("endpoints");
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(endpoints[0].addr, at(9000));
        assert_eq!(endpoints[0].path, "");
        assert_eq!(
            (endpoints[1].kind.as_str(), endpoints[1].path.as_str()),
            ("url", "/")
        );
        assert_eq!(
            (endpoints[2].addr, endpoints[2].path.as_str()),
            (at(3001), "/staging")
        );
        assert_eq!(parse_ready(r#"{"ready":false}"#), None);
        assert!(
            ReadyJson
                .ready("coldstart: 1 functions ready in 3 ms")
                .is_none()
        );
        assert!(ReadyJson.keep("coldstart: 1 functions ready in 3 ms"));
        assert!(!ReadyJson.keep("[echo] START RequestId: 1 Version: $LATEST"));
    }
}

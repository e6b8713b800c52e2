//! `coldstart up` as the benches drive it: a `coldstart.toml` in a temporary folder, the process
//! with its sandboxes, and the endpoint table it prints on stderr once it serves.
//!
//! Apart from `process` because the banner of `up` spans several lines and its rows are what the
//! measurements send their requests to, and because `up` starts each sandbox in a process group
//! of its own, which stopping `up` must not leave behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::process::{Banner, Read, Server};
use crate::tree;

/// The function the config of [`ConfigDir::echo`] serves.
pub const FUNCTION: &str = "echo";
/// The function the config of [`ConfigDir::stream`] serves.
pub const STREAM_FUNCTION: &str = "stream";
/// The start of the banner's first line, `coldstart: N functions ready in X ms`.
const READY_PREFIX: &str = "coldstart: ";
const READY_IN: &str = " ready in ";

/// A folder holding one `coldstart.toml` (and whatever else a config needs beside it); removed on
/// drop.
#[derive(Debug)]
pub struct ConfigDir {
    dir: PathBuf,
    /// The `coldstart.toml` in it.
    pub config: PathBuf,
}

impl ConfigDir {
    /// Creates the folder `dir`, empty: a leftover of an earlier run with the same name (and
    /// pid, see [`temp_folder`]) is removed first, so that it lends the run none of its files.
    /// From here the folder is owned: it is removed on drop, also when writing into it fails.
    pub fn create(dir: PathBuf) -> anyhow::Result<Self> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            config: dir.join("coldstart.toml"),
            dir,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `toml` as the folder's `coldstart.toml`.
    pub fn write(&self, toml: &str) -> anyhow::Result<()> {
        std::fs::write(&self.config, toml)
            .with_context(|| format!("writing {}", self.config.display()))
    }

    /// Writes a config that serves `bootstrap` as [`FUNCTION`] with a Function URL and an HTTP API
    /// whose `$default` route is the function. Every port is 0 (any free port) and there is no
    /// `build` key, so `up` builds nothing.
    pub fn echo(bootstrap: &Path) -> anyhow::Result<Self> {
        let toml = format!(
            "[functions.{FUNCTION}]\n\
             bootstrap = {}\n\
             url = {{ port = 0 }}\n\
             \n\
             [http_apis.api]\n\
             port = 0\n\
             routes = {{ \"$default\" = \"{FUNCTION}\" }}\n",
            toml_string(utf8(bootstrap)?)
        );
        Self::with("up", &toml)
    }

    /// Writes a config that serves `bootstrap` as [`STREAM_FUNCTION`] with a `RESPONSE_STREAM`
    /// Function URL on port 0 and a 60-second timeout (a 100 MiB stream must never hit the
    /// default 3 s).
    pub fn stream(bootstrap: &Path) -> anyhow::Result<Self> {
        let toml = format!(
            "[functions.{STREAM_FUNCTION}]\n\
             bootstrap = {}\n\
             timeout = 60\n\
             url = {{ port = 0, invoke_mode = \"RESPONSE_STREAM\" }}\n",
            toml_string(utf8(bootstrap)?)
        );
        Self::with("stream", &toml)
    }

    /// `toml` as `coldstart.toml` in a new folder `coldstart-bench-NAME-PID`.
    fn with(name: &str, toml: &str) -> anyhow::Result<Self> {
        let made = Self::create(temp_folder(&format!("coldstart-bench-{name}")))?;
        made.write(toml)?;
        Ok(made)
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `NAME-PID` under the system's temporary folder: this process's own.
pub fn temp_folder(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{name}-{}", std::process::id()))
}

/// `path` as text, for a config; an error if it is not UTF-8.
pub fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Which of `up`'s servers an endpoint belongs to (the `DOOR` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `Invoke API`: the function's `/2015-03-31/functions/NAME/invocations`.
    InvokeApi,
    /// `Function URL`: a buffered Function URL.
    FunctionUrl,
    /// `Function URL (stream)`: a Function URL with `invoke_mode = "RESPONSE_STREAM"`.
    StreamingFunctionUrl,
    /// `http_apis.NAME`: a route of an HTTP API.
    HttpApi,
    /// `websocket_apis.NAME`: a route of a WebSocket API (`ws://ADDR/STAGE`).
    WebSocketApi,
}

/// One row of the endpoint table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub function: String,
    pub door: Door,
    pub addr: SocketAddr,
    /// The URL's path; for an HTTP API route, the route's path (`/` for `$default`).
    pub path: String,
}

/// What `up` printed once it served.
#[derive(Debug, Clone)]
pub struct UpBanner {
    /// When the bench read the `ready in` line.
    pub at: Instant,
    /// The `ready in X ms` coldstart printed (whole milliseconds).
    pub ready: Duration,
    pub endpoints: Vec<Endpoint>,
}

/// A `coldstart up --listen 127.0.0.1:0` process and the sandboxes it starts, none of which may
/// outlive it.
///
/// `up` starts each sandbox process in a process group of its own, and a SIGKILLed `up` cannot
/// stop them: stopping or dropping an [`Up`] collects the sandboxes' groups (by ancestry, while
/// `up` lives) before it stops or kills `up`'s own group, and kills whatever group is left after.
#[derive(Debug)]
pub struct Up {
    /// `None` once stopped.
    server: Option<Server>,
    pub banner: UpBanner,
}

impl Up {
    /// Starts `coldstart up --listen 127.0.0.1:0 --config CONFIG` and waits for its endpoint
    /// table. Function logs (stdout) are discarded; only warnings and errors reach stderr.
    pub fn start(coldstart: &Path, config: &Path) -> anyhow::Result<Self> {
        Self::start_with(coldstart, &[], config)
    }

    /// As [`Up::start`], with `options` (such as `--no-build`) right after `up`.
    pub fn start_with(coldstart: &Path, options: &[&str], config: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(coldstart);
        command
            .arg("up")
            .args(options)
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("COLDSTART_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let (server, banner) = Server::start(command, UpBannerReader::default())?;
        Ok(Self {
            server: Some(server.named("coldstart up")),
            banner,
        })
    }

    /// The first endpoint of `function` through `door` whose path has no parameters.
    pub fn endpoint(&self, function: &str, door: Door) -> anyhow::Result<&Endpoint> {
        match self
            .banner
            .endpoints
            .iter()
            .find(|e| e.function == function && e.door == door && !e.path.contains('{'))
        {
            Some(endpoint) => Ok(endpoint),
            None => bail!("coldstart up listed no {door:?} endpoint for {function}"),
        }
    }

    /// The process id of `coldstart up`, to read its memory use from `/proc`.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.server
            .as_ref()
            .context("coldstart up was already stopped")?
            .pid()
    }

    /// Stops `up` with SIGTERM (it stops its sandboxes), then SIGKILLs any sandbox group it left;
    /// returns what `up` printed on stderr besides its banner, with a line for a failed exit and
    /// for groups it left. See [`Server::stop`].
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.stop_with(Server::stop)
    }

    /// As [`Up::stop`], with a grace period of `grace` after SIGTERM, past which `up` is killed
    /// and a line says so ([`Server::stop_within`]).
    pub fn stop_within(self, grace: Duration) -> anyhow::Result<Vec<String>> {
        self.stop_with(|server| server.stop_within(grace))
    }

    fn stop_with(
        mut self,
        stop: impl FnOnce(Server) -> anyhow::Result<Vec<String>>,
    ) -> anyhow::Result<Vec<String>> {
        let server = self
            .server
            .take()
            .context("coldstart up was already stopped")?;
        let groups = tree::groups_below(server.pid()?);
        let stopped = stop(server);
        let left = tree::kill_groups(&groups);
        let mut notes = stopped?;
        if left > 0 {
            notes.push(format!(
                "{left} sandbox process group(s) outlived coldstart up and were killed"
            ));
        }
        Ok(notes)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let groups = server.pid().map(tree::groups_below).unwrap_or_default();
            // Kills `up`'s group and waits for it...
            drop(server);
            // ...then the sandboxes it could not stop.
            tree::kill_groups(&groups);
        }
    }
}

/// Reads the banner: the `ready in` line, a blank line, the header, one row per endpoint, and the
/// blank line that ends the table.
#[derive(Debug, Default)]
struct UpBannerReader {
    /// When the `ready in` line was read, and its figure; `None` before it.
    ready: Option<(Instant, Duration)>,
    endpoints: Vec<Endpoint>,
}

impl Banner for UpBannerReader {
    type Found = UpBanner;

    fn read(&mut self, line: &str, at: Instant) -> Read<UpBanner> {
        let Some((ready_at, ready)) = self.ready else {
            return match ready_in(line) {
                Some(ready) => {
                    self.ready = Some((at, ready));
                    Read::Part
                }
                None => Read::Other,
            };
        };
        if line.trim().is_empty() && !self.endpoints.is_empty() {
            return Read::Done(UpBanner {
                at: ready_at,
                ready,
                endpoints: std::mem::take(&mut self.endpoints),
            });
        }
        // The blank line before the header, the header, and rows of doors we do not know.
        if let Some(endpoint) = endpoint(line) {
            self.endpoints.push(endpoint);
        }
        Read::Part
    }
}

/// The `X` of `coldstart: N functions ready in X ms`.
fn ready_in(line: &str) -> Option<Duration> {
    let (_, ms) = line.strip_prefix(READY_PREFIX)?.split_once(READY_IN)?;
    let ms: f64 = ms.strip_suffix(" ms")?.trim().parse().ok()?;
    Duration::try_from_secs_f64(ms / 1e3).ok()
}

/// A row such as `  echo  Function URL  http://127.0.0.1:PORT/`,
/// `  echo  http_apis.api  ANY http://127.0.0.1:PORT/ ($default)` or
/// `  chat  websocket_apis.chat  $connect ws://127.0.0.1:PORT/staging`.
fn endpoint(line: &str) -> Option<Endpoint> {
    let (before, url) = line
        .split_once("http://")
        .or_else(|| line.split_once("ws://"))?;
    let url = url.split_whitespace().next()?;
    let (addr, path) = url.split_at(url.find('/')?);
    let mut words = before.split_whitespace();
    let function = words.next()?.to_owned();
    let door = words.collect::<Vec<_>>().join(" ");
    let door = match door.as_str() {
        "Invoke API" => Door::InvokeApi,
        "Function URL" => Door::FunctionUrl,
        "Function URL (stream)" => Door::StreamingFunctionUrl,
        other if other.starts_with("http_apis.") => Door::HttpApi,
        other if other.starts_with("websocket_apis.") => Door::WebSocketApi,
        _ => return None,
    };
    Some(Endpoint {
        function,
        door,
        addr: addr.parse().ok()?,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> (Vec<&'static str>, Option<UpBanner>) {
        let mut reader = UpBannerReader::default();
        let mut kinds = Vec::new();
        for line in lines {
            match reader.read(line, Instant::now()) {
                Read::Other => kinds.push("other"),
                Read::Part => kinds.push("part"),
                Read::Done(banner) => return (kinds, Some(banner)),
            }
        }
        (kinds, None)
    }

    #[test]
    fn the_banner_of_up_gives_every_endpoint() {
        let (kinds, banner) = feed(&[
            "WARN something before",
            "coldstart: 1 functions ready in 3 ms",
            "",
            "  FUNCTION  DOOR           ENDPOINT",
            "  echo      Invoke API     http://127.0.0.1:40611/2015-03-31/functions/echo/invocations",
            "  echo      Function URL   http://127.0.0.1:40161/",
            "  echo      http_apis.api  ANY http://127.0.0.1:35835/ ($default)",
            "  echo      http_apis.api  GET http://127.0.0.1:35835/hello/{name}",
            "",
        ]);
        assert_eq!(
            kinds,
            [
                "other", "part", "part", "part", "part", "part", "part", "part"
            ]
        );
        let banner = banner.expect("a complete banner");
        assert_eq!(banner.ready, Duration::from_millis(3));
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let row = |door, port, path: &str| Endpoint {
            function: "echo".into(),
            door,
            addr: at(port),
            path: path.into(),
        };
        assert_eq!(
            banner.endpoints,
            [
                row(
                    Door::InvokeApi,
                    40611,
                    "/2015-03-31/functions/echo/invocations"
                ),
                row(Door::FunctionUrl, 40161, "/"),
                row(Door::HttpApi, 35835, "/"),
                row(Door::HttpApi, 35835, "/hello/{name}"),
            ]
        );
    }

    #[test]
    fn a_streaming_function_url_is_a_door_of_its_own() {
        let row =
            endpoint("  stream    Function URL (stream)  http://127.0.0.1:41927/").expect("a row");
        assert_eq!(row.door, Door::StreamingFunctionUrl);
        assert_eq!(row.addr, SocketAddr::from(([127, 0, 0, 1], 41927)));
        assert_eq!(row.path, "/");
    }

    #[test]
    fn a_websocket_route_is_a_door_of_its_own() {
        let row = endpoint("  chat  websocket_apis.chat  $connect ws://127.0.0.1:41000/staging")
            .expect("a row");
        assert_eq!(row.function, "chat");
        assert_eq!(row.door, Door::WebSocketApi);
        assert_eq!(row.addr, SocketAddr::from(([127, 0, 0, 1], 41000)));
        assert_eq!(row.path, "/staging");
        // The `@connections` row names no function: it is no route.
        assert_eq!(
            endpoint(
                "        websocket_apis.chat  @connections http://127.0.0.1:41000/staging/@connections/{id}"
            ),
            None
        );
    }

    #[test]
    fn a_banner_cut_short_is_not_complete() {
        let (_, banner) = feed(&["coldstart: 1 functions ready in 0 ms", ""]);
        assert!(banner.is_none());
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
    }
}

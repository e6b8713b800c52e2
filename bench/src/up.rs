//! `coldstart up` as the bench drives it: a `coldstart.toml` in a temporary folder, the process,
//! and the endpoint table it prints on stderr once it serves.
//!
//! Apart from `process` because the banner of `up` spans several lines and its rows are what the
//! measurements send their requests to.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::process::{Banner, Read, Server};

/// The function the config of [`ConfigDir::echo`] serves.
pub const FUNCTION: &str = "echo";
/// The function the config of [`ConfigDir::stream`] serves.
pub const STREAM_FUNCTION: &str = "stream";
/// The start of the banner's first line, `coldstart: N functions ready in X ms`.
const READY_PREFIX: &str = "coldstart: ";
const READY_IN: &str = " ready in ";

/// A folder under the system's temporary folder holding one `coldstart.toml`; removed on drop.
#[derive(Debug)]
pub struct ConfigDir {
    dir: PathBuf,
    /// The `coldstart.toml` in it.
    pub config: PathBuf,
}

impl ConfigDir {
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
        Self::write("up", &toml)
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
        Self::write("stream", &toml)
    }

    /// Writes `toml` as `coldstart.toml` in a new folder `coldstart-bench-NAME-PID`.
    fn write(name: &str, toml: &str) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("coldstart-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Owned from here, so an error below still removes the folder.
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

fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
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

/// A `coldstart up --listen 127.0.0.1:0` process.
#[derive(Debug)]
pub struct Up {
    server: Server,
    pub banner: UpBanner,
}

impl Up {
    /// Starts `coldstart up --listen 127.0.0.1:0 --config CONFIG` and waits for its endpoint
    /// table. Function logs (stdout) are discarded; only warnings and errors reach stderr.
    pub fn start(coldstart: &Path, config: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(coldstart);
        command
            .args(["up", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("COLDSTART_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let (server, banner) = Server::start(command, UpBannerReader::default())?;
        Ok(Self { server, banner })
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
        self.server.pid()
    }

    /// Stops `up`; see [`Server::stop`].
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.server.stop()
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

/// A row such as `  echo  Function URL  http://127.0.0.1:PORT/` or
/// `  echo  http_apis.api  ANY http://127.0.0.1:PORT/ ($default)`.
fn endpoint(line: &str) -> Option<Endpoint> {
    let (before, url) = line.split_once("http://")?;
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
    fn a_banner_cut_short_is_not_complete() {
        let (_, banner) = feed(&["coldstart: 1 functions ready in 0 ms", ""]);
        assert!(banner.is_none());
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
    }
}

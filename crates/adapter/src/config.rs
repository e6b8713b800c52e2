//! The adapter's settings, read from `AWS_LWA_*` environment variables with the Lambda Web
//! Adapter's names and defaults.
//!
//! Kept apart so every rule about a variable (its default, its syntax, its error message) is in
//! one place and testable without touching the process environment: [`Config::from_lookup`]
//! reads through a function. Unlike the Lambda Web Adapter, which falls back to the default on a
//! value it cannot parse, an invalid value is an error naming the variable, the value and what
//! was expected: the adapter reports it as an init error instead of serving with settings the
//! user did not ask for. An empty value counts as unset.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use coldstart_protocol::env;
use http::HeaderName;

use crate::error::ConfigError;

/// `AWS_LWA_PORT`: the port the app listens on.
pub const PORT: &str = env::LWA_PORT;
/// `PORT`: read when [`PORT`] is not set.
pub const PORT_FALLBACK: &str = env::PORT;
/// `AWS_LWA_READINESS_CHECK_PATH`: the path of the readiness check.
pub const READINESS_CHECK_PATH: &str = "AWS_LWA_READINESS_CHECK_PATH";
/// `AWS_LWA_READINESS_CHECK_PORT`: the port of the readiness check.
pub const READINESS_CHECK_PORT: &str = env::LWA_READINESS_CHECK_PORT;
/// `AWS_LWA_READINESS_CHECK_PROTOCOL`: `http` or `tcp`.
pub const READINESS_CHECK_PROTOCOL: &str = "AWS_LWA_READINESS_CHECK_PROTOCOL";
/// `AWS_LWA_READINESS_CHECK_HEALTHY_STATUS`: status codes that mean "ready".
pub const READINESS_CHECK_HEALTHY_STATUS: &str = "AWS_LWA_READINESS_CHECK_HEALTHY_STATUS";
/// `AWS_LWA_READINESS_CHECK_MIN_UNHEALTHY_STATUS`: the older way to say
/// [`READINESS_CHECK_HEALTHY_STATUS`]: healthy is `100` up to this value, exclusive.
pub const READINESS_CHECK_MIN_UNHEALTHY_STATUS: &str =
    "AWS_LWA_READINESS_CHECK_MIN_UNHEALTHY_STATUS";
/// `AWS_LWA_ASYNC_INIT`: start taking invocations before the app is ready.
pub const ASYNC_INIT: &str = "AWS_LWA_ASYNC_INIT";
/// `AWS_LWA_REMOVE_BASE_PATH`: a path prefix removed from every request.
pub const REMOVE_BASE_PATH: &str = "AWS_LWA_REMOVE_BASE_PATH";
/// `AWS_LWA_INVOKE_MODE`: `buffered` or `response_stream`.
pub const INVOKE_MODE: &str = "AWS_LWA_INVOKE_MODE";
/// `AWS_LWA_PASS_THROUGH_PATH`: where non-HTTP events are posted.
pub const PASS_THROUGH_PATH: &str = "AWS_LWA_PASS_THROUGH_PATH";
/// `AWS_LWA_ENABLE_COMPRESSION`: gzip buffered responses.
pub const ENABLE_COMPRESSION: &str = "AWS_LWA_ENABLE_COMPRESSION";
/// `AWS_LWA_ERROR_STATUS_CODES`: app statuses reported as function errors.
pub const ERROR_STATUS_CODES: &str = "AWS_LWA_ERROR_STATUS_CODES";
/// `AWS_LWA_AUTHORIZATION_SOURCE`: a header whose value is copied into `Authorization`.
pub const AUTHORIZATION_SOURCE: &str = "AWS_LWA_AUTHORIZATION_SOURCE";

/// How long `AWS_LWA_ASYNC_INIT` waits for readiness before taking invocations anyway: just under
/// Lambda's 10 s init limit, as the Lambda Web Adapter does.
pub const ASYNC_INIT_BUDGET: Duration = Duration::from_millis(9_800);

/// Everything the adapter is told by its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The port the app listens on, on 127.0.0.1 (`AWS_LWA_PORT`, else `PORT`). Default: 8080.
    pub port: u16,
    /// How readiness is checked.
    pub readiness: Readiness,
    /// Take invocations after [`ASYNC_INIT_BUDGET`] even if the app is not ready yet, checking
    /// readiness before each forward until it is (`AWS_LWA_ASYNC_INIT`). Default: false.
    pub async_init: bool,
    /// A prefix removed from request paths, e.g. an API Gateway stage
    /// (`AWS_LWA_REMOVE_BASE_PATH`). Default: none.
    pub remove_base_path: Option<String>,
    /// Buffered or streamed responses (`AWS_LWA_INVOKE_MODE`). Default: buffered.
    pub invoke_mode: InvokeMode,
    /// The path non-HTTP events are posted to (`AWS_LWA_PASS_THROUGH_PATH`). Default: `/events`.
    pub pass_through_path: String,
    /// Gzip buffered responses the client accepts compressed (`AWS_LWA_ENABLE_COMPRESSION`).
    /// Default: false.
    pub compression: bool,
    /// App response statuses reported as function errors (`AWS_LWA_ERROR_STATUS_CODES`).
    /// Default: none.
    pub error_status_codes: Option<StatusSet>,
    /// A request header whose value is copied into `Authorization`
    /// (`AWS_LWA_AUTHORIZATION_SOURCE`). Default: none.
    pub authorization_source: Option<HeaderName>,
}

/// How the adapter decides the app is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The port checked (`AWS_LWA_READINESS_CHECK_PORT`). Default: the app's port.
    pub port: u16,
    /// The path of the HTTP check (`AWS_LWA_READINESS_CHECK_PATH`). Default: `/`.
    pub path: String,
    /// HTTP GET or TCP connect (`AWS_LWA_READINESS_CHECK_PROTOCOL`). Default: HTTP.
    pub protocol: Protocol,
    /// Statuses of the HTTP check that mean ready (`AWS_LWA_READINESS_CHECK_HEALTHY_STATUS`).
    /// Default: 100-499.
    pub healthy: StatusSet,
}

/// The readiness check's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `GET` the readiness path; ready on a healthy status.
    Http,
    /// Ready once a TCP connection opens.
    Tcp,
}

/// How responses go back to Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeMode {
    /// The whole response, in the event source's response shape.
    Buffered,
    /// Streamed through the Runtime API as the app writes it, after an HTTP-integration prelude.
    ResponseStream,
}

/// A set of HTTP status codes, written as ranges and single codes: `200-399,404`.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<RangeInclusive<u16>>);

impl StatusSet {
    /// Parses `200-399,404`: comma-separated codes and inclusive ranges of codes 100-599.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (low, high) = match item.split_once('-') {
                Some((low, high)) => (status(low)?, status(high)?),
                None => (status(item)?, status(item)?),
            };
            if low > high {
                return Err(format!("{item:?} is an empty range"));
            }
            ranges.push(low..=high);
        }
        if ranges.is_empty() {
            return Err("no status codes".into());
        }
        Ok(Self(ranges))
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|range| range.contains(&code))
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                if r.start() == r.end() {
                    r.start().to_string()
                } else {
                    format!("{}-{}", r.start(), r.end())
                }
            })
            .collect();
        write!(f, "StatusSet({})", items.join(","))
    }
}

/// One status code, 100 to 599.
fn status(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(format!("{:?} is not a status code (100-599)", text.trim())),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, which maps a variable name to its value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            let value = lookup(name).filter(|v| !v.trim().is_empty());
            value.map(|value| Var { name, value })
        };

        let port = match get(PORT).or_else(|| get(PORT_FALLBACK)) {
            Some(var) => var.parse(parse_port, "a port number (1-65535)")?,
            None => 8080,
        };
        let healthy = match (
            get(READINESS_CHECK_HEALTHY_STATUS),
            get(READINESS_CHECK_MIN_UNHEALTHY_STATUS),
        ) {
            (Some(var), _) => var.parse(StatusSet::parse, "status codes such as 200-399,404")?,
            (None, Some(var)) => var.parse(
                |v| status(v).map(|min| StatusSet(vec![100..=min.saturating_sub(1).max(100)])),
                "a status code (100-599)",
            )?,
            (None, None) => StatusSet(vec![100..=499]),
        };
        let readiness = Readiness {
            port: match get(READINESS_CHECK_PORT) {
                Some(var) => var.parse(parse_port, "a port number (1-65535)")?,
                None => port,
            },
            path: match get(READINESS_CHECK_PATH) {
                Some(var) => var.parse(parse_path, "a path starting with /")?,
                None => "/".into(),
            },
            protocol: match get(READINESS_CHECK_PROTOCOL) {
                Some(var) => var.parse(
                    |v| match v.to_ascii_lowercase().as_str() {
                        "http" => Ok(Protocol::Http),
                        "tcp" => Ok(Protocol::Tcp),
                        _ => Err(String::new()),
                    },
                    "http or tcp",
                )?,
                None => Protocol::Http,
            },
            healthy,
        };
        Ok(Self {
            port,
            readiness,
            async_init: match get(ASYNC_INIT) {
                Some(var) => var.parse(parse_bool, "true or false")?,
                None => false,
            },
            remove_base_path: match get(REMOVE_BASE_PATH) {
                Some(var) => {
                    let path = var.parse(parse_path, "a path starting with /")?;
                    let path = path.trim_end_matches('/');
                    (!path.is_empty()).then(|| path.to_owned())
                }
                None => None,
            },
            invoke_mode: match get(INVOKE_MODE) {
                Some(var) => var.parse(
                    |v| match v.to_ascii_lowercase().as_str() {
                        "buffered" => Ok(InvokeMode::Buffered),
                        "response_stream" => Ok(InvokeMode::ResponseStream),
                        _ => Err(String::new()),
                    },
                    "buffered or response_stream",
                )?,
                None => InvokeMode::Buffered,
            },
            pass_through_path: match get(PASS_THROUGH_PATH) {
                Some(var) => var.parse(parse_path, "a path starting with /")?,
                None => "/events".into(),
            },
            compression: match get(ENABLE_COMPRESSION) {
                Some(var) => var.parse(parse_bool, "true or false")?,
                None => false,
            },
            error_status_codes: match get(ERROR_STATUS_CODES) {
                Some(var) => Some(var.parse(StatusSet::parse, "status codes such as 500-599,404")?),
                None => None,
            },
            authorization_source: match get(AUTHORIZATION_SOURCE) {
                Some(var) => Some(var.parse(
                    |v| HeaderName::from_bytes(v.trim().as_bytes()).map_err(|_| String::new()),
                    "an HTTP header name",
                )?),
                None => None,
            },
        })
    }
}

/// A set variable, for parsing with an error that names it.
struct Var {
    name: &'static str,
    value: String,
}

impl Var {
    /// Parses the value; an error names the variable, the value, what was expected and, if the
    /// parser said more than that, why.
    fn parse<T>(
        &self,
        parse: impl FnOnce(&str) -> Result<T, String>,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        parse(self.value.trim()).map_err(|reason| ConfigError {
            variable: self.name,
            value: self.value.clone(),
            expected,
            reason: (!reason.is_empty()).then_some(reason),
        })
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(0) | Err(_) => Err(String::new()),
        Ok(port) => Ok(port),
    }
}

fn parse_path(value: &str) -> Result<String, String> {
    let valid = value.starts_with('/')
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(String::new())
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_are_the_lambda_web_adapters() {
        let c = config(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.port, 8080);
        assert_eq!(c.readiness.port, 8080);
        assert_eq!(c.readiness.path, "/");
        assert_eq!(c.readiness.protocol, Protocol::Http);
        assert!(c.readiness.healthy.contains(100));
        assert!(c.readiness.healthy.contains(499));
        assert!(!c.readiness.healthy.contains(500));
        assert!(!c.async_init);
        assert_eq!(c.remove_base_path, None);
        assert_eq!(c.invoke_mode, InvokeMode::Buffered);
        assert_eq!(c.pass_through_path, "/events");
        assert!(!c.compression);
        assert_eq!(c.error_status_codes, None);
        assert_eq!(c.authorization_source, None);
    }

    #[test]
    fn every_variable_is_read() {
        let c = config(&[
            (PORT, "3000"),
            (PORT_FALLBACK, "4000"),
            (READINESS_CHECK_PATH, "/health"),
            (READINESS_CHECK_PORT, "3001"),
            (READINESS_CHECK_PROTOCOL, "TCP"),
            (READINESS_CHECK_HEALTHY_STATUS, "200-399, 404"),
            (ASYNC_INIT, "True"),
            (REMOVE_BASE_PATH, "/prod/"),
            (INVOKE_MODE, "RESPONSE_STREAM"),
            (PASS_THROUGH_PATH, "/sqs"),
            (ENABLE_COMPRESSION, "true"),
            (ERROR_STATUS_CODES, "500-599,404"),
            (AUTHORIZATION_SOURCE, "X-Custom-Auth"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.port, 3000);
        assert_eq!(c.readiness.port, 3001);
        assert_eq!(c.readiness.path, "/health");
        assert_eq!(c.readiness.protocol, Protocol::Tcp);
        assert!(c.readiness.healthy.contains(404));
        assert!(c.readiness.healthy.contains(399));
        assert!(!c.readiness.healthy.contains(400));
        assert!(c.async_init);
        assert_eq!(c.remove_base_path.as_deref(), Some("/prod"));
        assert_eq!(c.invoke_mode, InvokeMode::ResponseStream);
        assert_eq!(c.pass_through_path, "/sqs");
        assert!(c.compression);
        let errors = c.error_status_codes.unwrap_or_else(|| panic!("no codes"));
        assert!(errors.contains(404) && errors.contains(503) && !errors.contains(400));
        assert_eq!(
            c.authorization_source.as_ref().map(HeaderName::as_str),
            Some("x-custom-auth")
        );
    }

    #[test]
    fn port_falls_back_to_port_and_readiness_follows_it() {
        let c =
            config(&[(PORT_FALLBACK, "4000"), (ASYNC_INIT, "")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.port, c.readiness.port), (4000, 4000));
        assert!(!c.async_init);
        let legacy = config(&[(READINESS_CHECK_MIN_UNHEALTHY_STATUS, "400")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(legacy.readiness.healthy.contains(399));
        assert!(!legacy.readiness.healthy.contains(400));
    }

    #[test]
    fn invalid_values_name_the_variable_and_what_was_expected() {
        for (name, value, expected) in [
            (PORT, "eighty", "a port number"),
            (PORT, "0", "a port number"),
            (READINESS_CHECK_PORT, "70000", "a port number"),
            (READINESS_CHECK_PATH, "health", "a path starting with /"),
            (READINESS_CHECK_PROTOCOL, "udp", "http or tcp"),
            (READINESS_CHECK_HEALTHY_STATUS, "200-1000", "status codes"),
            (READINESS_CHECK_HEALTHY_STATUS, "399-200", "status codes"),
            (ASYNC_INIT, "maybe", "true or false"),
            (INVOKE_MODE, "streaming", "buffered or response_stream"),
            (PASS_THROUGH_PATH, "/a b", "a path starting with /"),
            (ENABLE_COMPRESSION, "gzip", "true or false"),
            (ERROR_STATUS_CODES, "5xx", "status codes"),
            (AUTHORIZATION_SOURCE, "bad header", "an HTTP header name"),
        ] {
            let error = config(&[(name, value)])
                .err()
                .unwrap_or_else(|| panic!("{name}={value} accepted"));
            let message = error.to_string();
            assert!(message.contains(name), "{message}");
            assert!(message.contains(&format!("{value:?}")), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn status_sets_parse_ranges_and_codes() {
        let set = StatusSet::parse("200-204,301, 404 ,500-599").unwrap_or_else(|e| panic!("{e}"));
        for code in [200, 204, 301, 404, 500, 599] {
            assert!(set.contains(code), "{code}");
        }
        for code in [199, 205, 300, 405, 499] {
            assert!(!set.contains(code), "{code}");
        }
        assert_eq!(format!("{set:?}"), "StatusSet(200-204,301,404,500-599)");
        assert!(StatusSet::parse(",").is_err());
        assert!(StatusSet::parse("99").is_err());
        assert!(StatusSet::parse("200-").is_err());
    }
}

//! The parts of a `coldstart.toml` `[http_apis.<name>]` table beyond its routes: `cors`,
//! `stage_variables`, `throttle`, `route_throttle`, `response_transfer_mode` and
//! `route_transfer_mode`. Kept out of `config` so that reader
//! stays one function per section.
//!
//! ```toml
//! [http_apis.api]
//! port = 9100
//! routes = { "GET /items" = "items" }
//! stage_variables = { table = "items-dev" }
//! cors = { allow_origins = ["https://app.example.com"], allow_methods = ["GET", "POST"], allow_headers = ["content-type"], max_age = 300 }
//! throttle = { burst_limit = 20, rate_limit = 10 }
//! route_throttle = { "GET /items" = { burst_limit = 2, rate_limit = 0.5 } }
//! # REST APIs (payload_version = "1.0") only:
//! route_transfer_mode = { "GET /items" = "STREAM" }
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use coldstart_emulator::{ApiCors, HttpCors, RateLimit, RouteKey, Throttle};

use crate::error::Error;

/// `cors`: an HTTP API's `CorsConfiguration` (and a Function URL's `Cors`), in snake case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorsToml {
    #[serde(default)]
    pub(crate) allow_origins: Vec<String>,
    #[serde(default)]
    pub(crate) allow_methods: Vec<String>,
    #[serde(default)]
    pub(crate) allow_headers: Vec<String>,
    #[serde(default)]
    pub(crate) expose_headers: Vec<String>,
    #[serde(default)]
    pub(crate) allow_credentials: bool,
    pub(crate) max_age: Option<Spanned<i64>>,
}

/// `throttle` and each `route_throttle` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThrottleToml {
    burst_limit: Spanned<i64>,
    rate_limit: Spanned<Number>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(i64),
    Float(f64),
}

/// Reads `cors` of the API at `key` (`http_apis.<name>`); `at` places an error at a span.
pub(crate) fn cors(
    key: &str,
    cors: Option<&Spanned<CorsToml>>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<Option<ApiCors>, Error> {
    let Some(spanned) = cors else {
        return Ok(None);
    };
    let c = spanned.get_ref();
    let max_age = match &c.max_age {
        None => None,
        Some(m) if *m.get_ref() == -1 => None,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(s) if s <= 86400 => Some(s),
            _ => {
                return Err(at(
                    m.span(),
                    format!(
                        "{key}.cors.max_age: must be whole seconds from -1 to 86400, not {}",
                        m.get_ref()
                    ),
                ));
            }
        },
    };
    if c.allow_credentials
        && (c.allow_origins.is_empty() || c.allow_origins.iter().any(|o| o == "*"))
    {
        return Err(at(
            spanned.span(),
            format!(
                "{key}.cors.allow_credentials: can not be true when allow_origins is \"*\" or not set"
            ),
        ));
    }
    Ok(Some(ApiCors::Http(HttpCors {
        allow_origins: c.allow_origins.clone(),
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        allow_credentials: c.allow_credentials,
        max_age,
    })))
}

/// Reads `stage_variables`: names of letters, digits and `_`.
pub(crate) fn stage_variables(
    key: &str,
    variables: &BTreeMap<String, Spanned<String>>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, value) in variables {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(at(
                value.span(),
                format!(
                    "{key}.stage_variables: a stage variable's name is letters, digits and '_', not {name:?}"
                ),
            ));
        }
        out.insert(name.clone(), value.get_ref().clone());
    }
    Ok(out)
}

/// Reads `throttle` (every route) and `route_throttle` (by route key).
pub(crate) fn throttle(
    key: &str,
    default: Option<&Spanned<ThrottleToml>>,
    routes: &BTreeMap<String, Spanned<ThrottleToml>>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<Throttle, Error> {
    let limit = |t: &Spanned<ThrottleToml>, what: &str| -> Result<RateLimit, Error> {
        let t = t.get_ref();
        let burst = u32::try_from(*t.burst_limit.get_ref()).map_err(|_| {
            at(
                t.burst_limit.span(),
                format!(
                    "{key}.{what}.burst_limit: must be a whole number of at least 0, not {}",
                    t.burst_limit.get_ref()
                ),
            )
        })?;
        let rate = match t.rate_limit.get_ref() {
            Number::Integer(i) => *i as f64,
            Number::Float(f) => *f,
        };
        if !rate.is_finite() || rate < 0.0 {
            return Err(at(
                t.rate_limit.span(),
                format!("{key}.{what}.rate_limit: must be a number of at least 0, not {rate}"),
            ));
        }
        Ok(RateLimit { burst, rate })
    };
    let mut throttle = Throttle {
        default: default.map(|d| limit(d, "throttle")).transpose()?,
        routes: Vec::new(),
    };
    for (route, t) in routes {
        if let Err(why) = RouteKey::parse(route) {
            return Err(at(t.span(), format!("{key}.route_throttle: {why}")));
        }
        throttle.routes.push((
            route.clone(),
            limit(t, &format!("route_throttle.{route:?}"))?,
        ));
    }
    Ok(throttle)
}

/// The routes whose integration streams: `response_transfer_mode` for every route, each
/// `route_transfer_mode` entry for its own (`BUFFERED` or `STREAM`; streaming needs a REST API).
pub(crate) fn streamed(
    key: &str,
    rest: bool,
    routes: &[(String, String)],
    default: Option<&Spanned<String>>,
    per_route: &BTreeMap<String, Spanned<String>>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<Vec<String>, Error> {
    let mode = |m: &Spanned<String>, what: &str| -> Result<bool, Error> {
        let why = match m.get_ref().as_str() {
            "BUFFERED" => return Ok(false),
            "STREAM" if rest => return Ok(true),
            "STREAM" => "STREAM needs a REST API (payload_version = \"1.0\")".to_owned(),
            other => format!("must be BUFFERED or STREAM, not {other:?}"),
        };
        Err(at(m.span(), format!("{key}.{what}: {why}")))
    };
    let all = match default {
        Some(m) => mode(m, "response_transfer_mode")?,
        None => false,
    };
    for (route, m) in per_route {
        if !routes.iter().any(|(r, _)| r == route) {
            return Err(at(
                m.span(),
                format!("{key}.route_transfer_mode.{route:?}: not a route of the API"),
            ));
        }
    }
    let mut out = Vec::new();
    for (route, _) in routes {
        let streams = match per_route.get(route) {
            Some(m) => mode(m, &format!("route_transfer_mode.{route:?}"))?,
            None => all,
        };
        if streams {
            out.push(route.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use coldstart_emulator::{ApiCors, HttpCors, RateLimit};

    use crate::config::parse;
    use crate::model::Stack;

    fn load(text: &str) -> Result<Stack, String> {
        parse(Path::new("coldstart.toml"), text, Path::new("/app")).map_err(|e| e.to_string())
    }

    const API: &str = "[functions.items]\nbootstrap = \"b\"\n[http_apis.api]\nport = 9100\nroutes = { \"GET /items\" = \"items\" }\n";

    #[test]
    fn an_api_table_reads_cors_stage_variables_and_throttling() {
        let stack = load(&format!(
            "{API}stage_variables = {{ table = \"items-dev\" }}
cors = {{ allow_origins = [\"https://app.example.com\"], allow_methods = [\"GET\"], allow_headers = [\"content-type\"], expose_headers = [\"x-id\"], allow_credentials = true, max_age = 300 }}
throttle = {{ burst_limit = 20, rate_limit = 10 }}
route_throttle = {{ \"GET /items\" = {{ burst_limit = 2, rate_limit = 0.001 }} }}
"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let api = &stack.http_apis[0];
        assert_eq!(
            api.cors,
            Some(ApiCors::Http(HttpCors {
                allow_origins: vec!["https://app.example.com".into()],
                allow_methods: vec!["GET".into()],
                allow_headers: vec!["content-type".into()],
                expose_headers: vec!["x-id".into()],
                allow_credentials: true,
                max_age: Some(300),
            }))
        );
        assert_eq!(api.stage_variables["table"], "items-dev");
        assert_eq!(
            api.throttle.default,
            Some(RateLimit {
                burst: 20,
                rate: 10.0
            })
        );
        assert_eq!(
            api.throttle.limit_for("GET /items"),
            Some(RateLimit {
                burst: 2,
                rate: 0.001
            })
        );
        let plain = load(API).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.http_apis[0].cors, None);
        assert!(plain.http_apis[0].stage_variables.is_empty());
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        for (extra, key) in [
            (
                "cors = { allow_origins = [\"*\"], allow_credentials = true }",
                "http_apis.api.cors.allow_credentials",
            ),
            ("cors = { max_age = 90000 }", "http_apis.api.cors.max_age"),
            ("cors = { allow_origin = \"x\" }", "allow_origin"),
            (
                "stage_variables = { \"a-b\" = \"c\" }",
                "http_apis.api.stage_variables",
            ),
            (
                "throttle = { burst_limit = -1, rate_limit = 1 }",
                "http_apis.api.throttle.burst_limit",
            ),
            (
                "route_throttle = { \"FETCH /x\" = { burst_limit = 1, rate_limit = 1 } }",
                "http_apis.api.route_throttle",
            ),
        ] {
            match load(&format!("{API}{extra}\n")) {
                Ok(_) => panic!("accepted {extra}"),
                Err(e) => assert!(
                    e.starts_with("coldstart.toml:") && e.contains(key),
                    "{extra}: {e}"
                ),
            }
        }
    }
}

//! The authorizers of `coldstart.toml`'s APIs: `authorizers`, `default_authorizer` and
//! `route_auth` of an `[http_apis.<name>]` table, and `connect_authorizer` of a
//! `[websocket_apis.<name>]` table.
//!
//! ```toml
//! [http_apis.api]
//! port = 9100
//! routes = { "GET /items" = "items", "GET /health" = "items" }
//! default_authorizer = "token"
//! route_auth = { "GET /health" = { authorizer = "NONE" } }
//!
//! [http_apis.api.authorizers.token]     # a Lambda authorizer
//! function = "auth"
//! payload_version = "2.0"               # "1.0" or "2.0"; REST APIs: type = "TOKEN" | "REQUEST"
//! simple_responses = true
//! identity_sources = ["$request.header.Authorization"]
//! ttl = 300                             # seconds its answers are cached; 0: none
//!
//! [http_apis.api.authorizers.users]     # a JWT authorizer
//! issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
//! audience = ["my-client-id"]
//! jwks_url = "http://127.0.0.1:8081/keys"   # optional: else the issuer's discovery document
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use coldstart_emulator::auth::{
    Authorizer, AuthorizerEvent, AuthorizerKind, Authorizers, IdentitySource, JwtConfig, MAX_TTL,
    RouteAuth,
};

use crate::error::Error;

/// One authorizer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorizerToml {
    function: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    payload_version: Option<String>,
    #[serde(default)]
    simple_responses: bool,
    #[serde(default)]
    identity_sources: Vec<String>,
    validation: Option<String>,
    ttl: Option<u64>,
    issuer: Option<String>,
    #[serde(default)]
    audience: Vec<String>,
    jwks_url: Option<String>,
}

/// A route's `route_auth` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteAuthToml {
    authorizer: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// What an API kind's authorizers may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiKind {
    Http,
    Rest,
    WebSocket,
}

/// Reads one authorizer at `key` (`http_apis.api.authorizers.token`).
pub(crate) fn authorizer(
    key: &str,
    name: &str,
    entry: &Spanned<AuthorizerToml>,
    api: ApiKind,
    functions: &[&String],
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<Authorizer, Error> {
    let a = entry.get_ref();
    let fail = |message: String| at(entry.span(), format!("{key}: {message}"));
    let mut sources = a
        .identity_sources
        .iter()
        .map(|s| IdentitySource::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    let ttl = Duration::from_secs(a.ttl.unwrap_or(if api == ApiKind::Rest { 300 } else { 0 }));
    if ttl > MAX_TTL {
        return Err(fail("ttl must be at most 3600 seconds".into()));
    }
    let kind = match (&a.function, &a.issuer) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(fail(
                "give either function (a Lambda authorizer) or issuer (a JWT authorizer)".into(),
            ));
        }
        (None, Some(issuer)) => {
            if api != ApiKind::Http {
                return Err(fail("JWT authorizers are for HTTP APIs".into()));
            }
            if a.audience.is_empty() {
                return Err(fail("a JWT authorizer needs an audience".into()));
            }
            if sources.is_empty() {
                sources.push(IdentitySource::Header("Authorization".into()));
            }
            AuthorizerKind::Jwt(JwtConfig {
                issuer: issuer.clone(),
                audience: a.audience.clone(),
                jwks_url: a.jwks_url.clone(),
            })
        }
        (Some(function), None) => {
            if !functions.contains(&function) {
                return Err(fail(format!("no function named {function:?}")));
            }
            let event = match api {
                ApiKind::WebSocket => AuthorizerEvent::Request,
                ApiKind::Rest => match a.kind.as_deref() {
                    None | Some("TOKEN") => {
                        if sources.is_empty() {
                            sources.push(IdentitySource::Header("Authorization".into()));
                        }
                        AuthorizerEvent::Token
                    }
                    Some("REQUEST") => AuthorizerEvent::Request,
                    Some(other) => {
                        return Err(fail(format!(
                            "type must be TOKEN or REQUEST, not {other:?}"
                        )));
                    }
                },
                ApiKind::Http => match a.payload_version.as_deref() {
                    None | Some("2.0") => AuthorizerEvent::HttpV2 {
                        simple_responses: a.simple_responses,
                    },
                    Some("1.0") if !a.simple_responses => AuthorizerEvent::HttpV1,
                    Some("1.0") => {
                        return Err(fail("simple_responses needs payload_version 2.0".into()));
                    }
                    Some(other) => {
                        return Err(fail(format!(
                            "payload_version must be \"1.0\" or \"2.0\", not {other:?}"
                        )));
                    }
                },
            };
            if api == ApiKind::Http && sources.is_empty() {
                sources.push(IdentitySource::Header("Authorization".into()));
            }
            AuthorizerKind::Lambda {
                function: function.clone(),
                event,
                validation: a.validation.clone(),
            }
        }
    };
    let authorizer = Authorizer {
        name: name.to_owned(),
        kind,
        identity_sources: sources,
        ttl,
    };
    Authorizers::new(vec![authorizer.clone()]).map_err(fail)?;
    Ok(authorizer)
}

/// The authorization of each route of an API: its `route_auth` entry, else the default;
/// `NONE` leaves a route open.
pub(crate) fn route_auth(
    key: &str,
    routes: &[(String, String)],
    authorizers: &[Authorizer],
    default: Option<&Spanned<String>>,
    entries: &BTreeMap<String, Spanned<RouteAuthToml>>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<Vec<(String, RouteAuth)>, Error> {
    let known = |name: &str| {
        name == "NONE" || name == "AWS_IAM" || authorizers.iter().any(|a| a.name == name)
    };
    if let Some(d) = default
        && !known(d.get_ref())
    {
        return Err(at(
            d.span(),
            format!(
                "{key}.default_authorizer: no authorizer named {:?}",
                d.get_ref()
            ),
        ));
    }
    for (route, entry) in entries {
        if !routes.iter().any(|(r, _)| r == route) {
            return Err(at(
                entry.span(),
                format!("{key}.route_auth: {route:?} is not one of the API's routes"),
            ));
        }
        if !known(&entry.get_ref().authorizer) {
            return Err(at(
                entry.span(),
                format!(
                    "{key}.route_auth.{route:?}: no authorizer named {:?}",
                    entry.get_ref().authorizer
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for (route, _) in routes {
        let (name, scopes) = match entries.get(route) {
            Some(e) => (e.get_ref().authorizer.clone(), e.get_ref().scopes.clone()),
            None => match default {
                Some(d) => (d.get_ref().clone(), Vec::new()),
                None => continue,
            },
        };
        if name != "NONE" {
            out.push((
                route.clone(),
                RouteAuth {
                    authorizer: name,
                    scopes,
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const TOML: &str = r#"[functions.web]
bootstrap = "web"
[functions.auth]
bootstrap = "auth"
[http_apis.api]
port = 9100
routes = { "GET /items" = "web", "GET /health" = "web", "GET /me" = "web" }
default_authorizer = "token"
route_auth = { "GET /health" = { authorizer = "NONE" }, "GET /me" = { authorizer = "users", scopes = ["profile"] } }
[http_apis.api.authorizers.token]
function = "auth"
simple_responses = true
ttl = 60
[http_apis.api.authorizers.users]
issuer = "https://issuer.example.com"
audience = ["app"]
[websocket_apis.chat]
port = 9200
routes = { "$connect" = "web" }
connect_authorizer = { function = "auth", identity_sources = ["route.request.querystring.token"] }
"#;

    fn load(text: &str) -> Result<crate::model::Stack, String> {
        crate::config::parse(Path::new("coldstart.toml"), text, Path::new("/app"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn authorizers_defaults_and_route_auth_are_read() {
        let stack = load(TOML).unwrap_or_else(|e| panic!("{e}"));
        let api = &stack.http_apis[0];
        assert_eq!(api.authorizers.len(), 2);
        let token = &api.authorizers[0];
        assert_eq!(token.ttl, Duration::from_secs(60));
        assert_eq!(
            token.identity_sources,
            vec![IdentitySource::Header("Authorization".into())]
        );
        let routes: Vec<(&str, &str, usize)> = api
            .route_auth
            .iter()
            .map(|(r, a)| (r.as_str(), a.authorizer.as_str(), a.scopes.len()))
            .collect();
        assert_eq!(
            routes,
            [("GET /items", "token", 0), ("GET /me", "users", 1)]
        );
        let ws = stack.websocket_apis[0].connect_authorizer.as_ref();
        assert_eq!(
            ws.map(|a| &a.identity_sources),
            Some(&vec![IdentitySource::Query("token".into())])
        );
    }

    #[test]
    fn mistakes_name_the_line_and_key() {
        for (from, to, key) in [
            (
                "default_authorizer = \"token\"",
                "default_authorizer = \"tokn\"",
                "http_apis.api.default_authorizer",
            ),
            (
                "function = \"auth\"\nsimple",
                "function = \"nope\"\nsimple",
                "http_apis.api.authorizers.token",
            ),
            ("ttl = 60", "ttl = 7200", "http_apis.api.authorizers.token"),
            (
                "audience = [\"app\"]",
                "audience = []",
                "http_apis.api.authorizers.users",
            ),
            (
                "\"GET /me\" = { authorizer",
                "\"GET /you\" = { authorizer",
                "http_apis.api.route_auth",
            ),
        ] {
            assert!(TOML.contains(from), "{from}");
            let e = load(&TOML.replace(from, to)).err().unwrap_or_default();
            assert!(
                e.starts_with("coldstart.toml:") && e.contains(key),
                "{to}: {e}"
            );
        }
    }
}

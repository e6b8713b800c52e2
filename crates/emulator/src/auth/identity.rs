//! Identity sources: where an authorizer's identity comes from in a request. API Gateway writes
//! them differently per API kind — `method.request.header.Auth` (REST), `$request.header.Auth`
//! (HTTP), `route.request.header.Auth` (WebSocket) — and they all mean the same four places.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde_json::Value;

/// One place an identity is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A request header (names are case-insensitive).
    Header(String),
    /// A query string parameter.
    Query(String),
    /// A stage variable.
    StageVariable(String),
    /// A `$context` variable: a dotted path into the event's `requestContext`.
    Context(String),
}

/// The parts of a request identity sources read.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// Its decoded query pairs, in order.
    pub query: &'a [(String, String)],
    /// The stage's variables.
    pub stage_variables: &'a BTreeMap<String, String>,
    /// The `requestContext` of the event the request makes.
    pub context: &'a Value,
}

impl IdentitySource {
    /// Parses any API kind's spelling: `method.request.header.X`, `$request.header.X`,
    /// `route.request.header.X`, `…querystring.x`, `stageVariables.x` (or `$stageVariables.x`),
    /// `context.x` (or `$context.x`).
    pub fn parse(source: &str) -> Result<IdentitySource, String> {
        let s = source.trim();
        let request = ["method.request.", "$request.", "route.request."]
            .iter()
            .find_map(|p| s.strip_prefix(p));
        let (kind, name) = if let Some(rest) = request {
            if let Some(name) = rest.strip_prefix("header.") {
                ("header", name)
            } else if let Some(name) = rest.strip_prefix("querystring.") {
                ("query", name)
            } else {
                return Err(format!(
                    "identity source {source:?}: only request headers and query strings are read"
                ));
            }
        } else if let Some(name) = s
            .strip_prefix("$stageVariables.")
            .or_else(|| s.strip_prefix("stageVariables."))
        {
            ("stage", name)
        } else if let Some(name) = s
            .strip_prefix("$context.")
            .or_else(|| s.strip_prefix("context."))
        {
            ("context", name)
        } else {
            return Err(format!(
                "identity source {source:?} must be a request header or query string, a stage \
                 variable or a context variable (e.g. $request.header.Authorization)"
            ));
        };
        if name.is_empty() {
            return Err(format!("identity source {source:?} names nothing"));
        }
        let name = name.to_owned();
        Ok(match kind {
            "header" => IdentitySource::Header(name),
            "query" => IdentitySource::Query(name),
            "stage" => IdentitySource::StageVariable(name),
            _ => IdentitySource::Context(name),
        })
    }

    /// The source's value in `request`; `None` when it is missing or empty (API Gateway answers
    /// 401 without running the authorizer).
    pub fn value(&self, request: &Identity<'_>) -> Option<String> {
        let value = match self {
            IdentitySource::Header(name) => {
                let values: Vec<&str> = request
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                values.join(",")
            }
            IdentitySource::Query(name) => request
                .query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
            IdentitySource::StageVariable(name) => request
                .stage_variables
                .get(name)
                .cloned()
                .unwrap_or_default(),
            IdentitySource::Context(path) => {
                let found = path
                    .split('.')
                    .try_fold(request.context, |v, key| v.get(key));
                match found {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                }
            }
        };
        (!value.is_empty()).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_api_kinds_spelling_parses_to_the_same_place() {
        for s in [
            "method.request.header.Auth",
            "$request.header.Auth",
            "route.request.header.Auth",
        ] {
            assert_eq!(
                IdentitySource::parse(s),
                Ok(IdentitySource::Header("Auth".into()))
            );
        }
        assert_eq!(
            IdentitySource::parse("$request.querystring.token"),
            Ok(IdentitySource::Query("token".into()))
        );
        assert_eq!(
            IdentitySource::parse("stageVariables.v"),
            Ok(IdentitySource::StageVariable("v".into()))
        );
        assert_eq!(
            IdentitySource::parse("$context.identity.sourceIp"),
            Ok(IdentitySource::Context("identity.sourceIp".into()))
        );
        for bad in ["Authorization", "$request.body.x", "$request.header.", ""] {
            assert!(IdentitySource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_read_and_empty_ones_are_missing() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", http::HeaderValue::from_static("Bearer x"));
        headers.insert("x-empty", http::HeaderValue::from_static(""));
        let query = vec![("t".to_owned(), "1".to_owned())];
        let stage = BTreeMap::from([("v".to_owned(), "s".to_owned())]);
        let context = json!({"identity": {"sourceIp": "127.0.0.1"}});
        let request = Identity {
            headers: &headers,
            query: &query,
            stage_variables: &stage,
            context: &context,
        };
        let value = |s: &str| {
            IdentitySource::parse(s)
                .ok()
                .and_then(|i| i.value(&request))
        };
        assert_eq!(
            value("$request.header.Authorization").as_deref(),
            Some("Bearer x")
        );
        assert_eq!(value("$request.header.X-Empty"), None);
        assert_eq!(value("$request.header.Missing"), None);
        assert_eq!(value("$request.querystring.t").as_deref(), Some("1"));
        assert_eq!(value("$stageVariables.v").as_deref(), Some("s"));
        assert_eq!(
            value("$context.identity.sourceIp").as_deref(),
            Some("127.0.0.1")
        );
    }
}

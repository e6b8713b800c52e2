//! What a handler knows about its invocation and its function.
//!
//! [`Context`] is rebuilt for every invocation from the headers of the `next` answer; [`Config`] is
//! read once from the environment and shared by every context. Both live here, with the JSON
//! shapes carried by the optional headers ([`ClientContext`], [`CognitoIdentity`]), so the header
//! parsing can be tested without a connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coldstart_protocol::{env, runtime};
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};

use crate::Diagnostic;

/// Error type posted when a `next` header cannot be parsed.
pub(crate) const INVALID_HEADER: &str = "Runtime.InvalidHeader";

/// The function's static configuration, read once from the environment at start-up.
///
/// A missing or unparsable variable leaves its field empty (or 0); it is never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `AWS_LAMBDA_FUNCTION_NAME`. Default: empty.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB. Default: 0.
    pub memory_mb: u32,
    /// `AWS_LAMBDA_FUNCTION_VERSION`, e.g. `$LATEST`. Default: empty.
    pub version: String,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`. Default: empty.
    pub log_stream: String,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`, e.g. `/aws/lambda/my-function`. Default: empty.
    pub log_group: String,
    /// `AWS_LAMBDA_MAX_CONCURRENCY`: how many invocations the execution environment runs at
    /// once (Lambda Managed Instances), so how many pollers [`crate::run_concurrent`] starts.
    /// Default: 1.
    pub max_concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which maps a variable name to its value: for
    /// hosts that run a handler inside their own process, with the function's environment at
    /// hand rather than in the process's.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            function_name: lookup(env::FUNCTION_NAME).unwrap_or_default(),
            memory_mb: lookup(env::FUNCTION_MEMORY_SIZE)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            version: lookup(env::FUNCTION_VERSION).unwrap_or_default(),
            log_stream: lookup(env::LOG_STREAM_NAME).unwrap_or_default(),
            log_group: lookup(env::LOG_GROUP_NAME).unwrap_or_default(),
            max_concurrency: lookup(env::MAX_CONCURRENCY)
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n >= 1)
                .unwrap_or(1),
        }
    }
}

/// Everything Lambda tells the handler about one invocation.
///
/// `Default` exists for tests of handlers: start from `Context::default()` and set the fields
/// you need.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Context {
    /// The request id (`Lambda-Runtime-Aws-Request-Id`).
    pub request_id: String,
    /// When the invocation times out, in Unix epoch milliseconds (`Lambda-Runtime-Deadline-Ms`).
    pub deadline_ms: u64,
    /// The ARN the caller invoked, with its qualifier (`Lambda-Runtime-Invoked-Function-Arn`).
    pub invoked_function_arn: String,
    /// The X-Ray tracing header (`Lambda-Runtime-Trace-Id`), also exported as `_X_AMZN_TRACE_ID`
    /// (except in the concurrent mode, where invocations overlap: read it here).
    pub xray_trace_id: Option<String>,
    /// The mobile SDK's client context (`Lambda-Runtime-Client-Context`), on synchronous invokes.
    pub client_context: Option<ClientContext>,
    /// The Cognito identity of the caller (`Lambda-Runtime-Cognito-Identity`).
    pub identity: Option<CognitoIdentity>,
    /// The tenant of a tenant-isolated invocation (`Lambda-Runtime-Aws-Tenant-Id`).
    pub tenant_id: Option<String>,
    /// The function's configuration, shared by every invocation.
    pub env_config: Arc<Config>,
}

impl Context {
    /// Builds the context of one invocation from the headers of the `next` answer.
    ///
    /// `request_id` has already been read from `headers` by the caller. A missing or malformed
    /// header yields the diagnostic to post for this invocation.
    pub(crate) fn from_headers(
        request_id: &str,
        headers: &HeaderMap,
        config: Arc<Config>,
    ) -> Result<Self, Diagnostic> {
        let deadline = required(headers, &runtime::DEADLINE_MS)?;
        let deadline_ms = deadline.trim().parse().map_err(|_| {
            invalid(
                &runtime::DEADLINE_MS,
                format_args!("expected Unix epoch milliseconds, got {deadline:?}"),
            )
        })?;
        let client_context = json(headers, &runtime::CLIENT_CONTEXT)?;
        let identity = json(headers, &runtime::COGNITO_IDENTITY)?;
        Ok(Self {
            request_id: request_id.to_owned(),
            deadline_ms,
            invoked_function_arn: required(headers, &runtime::INVOKED_FUNCTION_ARN)?.to_owned(),
            xray_trace_id: optional(headers, &runtime::TRACE_ID)?.map(str::to_owned),
            client_context,
            identity,
            tenant_id: optional(headers, &runtime::TENANT_ID)?.map(str::to_owned),
            env_config: config,
        })
    }

    /// When the invocation times out.
    pub fn deadline(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.deadline_ms)
    }

    /// Time left before the invocation times out; zero once the deadline has passed.
    pub fn remaining(&self) -> Duration {
        self.deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

/// The client context a mobile SDK sends with a synchronous invoke:
/// `{"client":{…},"custom":{…},"env":{…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientContext {
    /// The calling application.
    #[serde(default)]
    pub client: Option<ClientApplication>,
    /// Values set by the calling application.
    #[serde(default)]
    pub custom: HashMap<String, String>,
    /// Environment reported by the SDK (platform, model, locale, …).
    #[serde(default)]
    pub env: HashMap<String, String>,
}

/// The application part of a [`ClientContext`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientApplication {
    /// `installationId`.
    pub installation_id: String,
    /// `appTitle`.
    pub app_title: String,
    /// `appVersionName`.
    pub app_version_name: String,
    /// `appVersionCode`.
    pub app_version_code: String,
    /// `appPackageName`.
    pub app_package_name: String,
}

/// The Cognito identity of the caller: `{"cognitoIdentityId","cognitoIdentityPoolId"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CognitoIdentity {
    /// `cognitoIdentityId`.
    #[serde(rename = "cognitoIdentityId", default)]
    pub identity_id: String,
    /// `cognitoIdentityPoolId`.
    #[serde(rename = "cognitoIdentityPoolId", default)]
    pub identity_pool_id: String,
}

/// The diagnostic posted for a malformed `next` header.
fn invalid(name: &HeaderName, reason: std::fmt::Arguments<'_>) -> Diagnostic {
    Diagnostic::new(INVALID_HEADER, format!("invalid {name} header: {reason}"))
}

/// A header that may be absent; present, it must be UTF-8.
fn optional<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, Diagnostic> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => std::str::from_utf8(value.as_bytes())
            .map(Some)
            .map_err(|_| invalid(name, format_args!("not UTF-8"))),
    }
}

/// A header Lambda always sends.
fn required<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<&'h str, Diagnostic> {
    optional(headers, name)?.ok_or_else(|| invalid(name, format_args!("missing")))
}

/// An optional header carrying JSON.
fn json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Option<T>, Diagnostic> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => serde_json::from_slice(value.as_bytes())
            .map(Some)
            .map_err(|e| invalid(name, format_args!("{e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                (*name).clone(),
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        map
    }

    fn parse(map: &HeaderMap) -> Result<Context, Diagnostic> {
        Context::from_headers("req-1", map, Arc::new(Config::default()))
    }

    #[test]
    fn parses_every_header() {
        let map = headers(&[
            (&runtime::DEADLINE_MS, "1700000000123"),
            (
                &runtime::INVOKED_FUNCTION_ARN,
                "arn:aws:lambda:us-east-1:123456789012:function:echo:live",
            ),
            (
                &runtime::TRACE_ID,
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            ),
            (
                &runtime::CLIENT_CONTEXT,
                r#"{"client":{"installationId":"i","appTitle":"t","appVersionName":"1.0","appVersionCode":"1","appPackageName":"p"},"custom":{"k":"v"},"env":{"platform":"Android"}}"#,
            ),
            (
                &runtime::COGNITO_IDENTITY,
                r#"{"cognitoIdentityId":"us-east-1:id","cognitoIdentityPoolId":"us-east-1:pool"}"#,
            ),
            (&runtime::TENANT_ID, "tenant-a"),
        ]);
        let ctx = parse(&map).unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(ctx.request_id, "req-1");
        assert_eq!(ctx.deadline_ms, 1_700_000_000_123);
        assert_eq!(
            ctx.invoked_function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:echo:live"
        );
        assert_eq!(
            ctx.xray_trace_id.as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
        );
        let client_context = ctx.client_context.unwrap_or_default();
        let app = client_context.client.unwrap_or_default();
        assert_eq!(app.installation_id, "i");
        assert_eq!(app.app_title, "t");
        assert_eq!(app.app_version_name, "1.0");
        assert_eq!(app.app_version_code, "1");
        assert_eq!(app.app_package_name, "p");
        assert_eq!(
            client_context.custom.get("k").map(String::as_str),
            Some("v")
        );
        assert_eq!(
            client_context.env.get("platform").map(String::as_str),
            Some("Android")
        );
        assert_eq!(
            ctx.identity,
            Some(CognitoIdentity {
                identity_id: "us-east-1:id".into(),
                identity_pool_id: "us-east-1:pool".into(),
            })
        );
        assert_eq!(ctx.tenant_id.as_deref(), Some("tenant-a"));
    }

    #[test]
    fn optional_headers_absent_are_none() {
        let map = headers(&[
            (&runtime::DEADLINE_MS, "1"),
            (&runtime::INVOKED_FUNCTION_ARN, "arn"),
        ]);
        let ctx = parse(&map).unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(ctx.xray_trace_id, None);
        assert_eq!(ctx.client_context, None);
        assert_eq!(ctx.identity, None);
        assert_eq!(ctx.tenant_id, None);
    }

    #[test]
    fn client_context_with_missing_parts_parses() {
        let map = headers(&[
            (&runtime::DEADLINE_MS, "1"),
            (&runtime::INVOKED_FUNCTION_ARN, "arn"),
            (&runtime::CLIENT_CONTEXT, r#"{"custom":{"a":"b"}}"#),
        ]);
        let ctx = parse(&map).unwrap_or_else(|d| panic!("{d:?}"));
        let cc = ctx.client_context.unwrap_or_default();
        assert_eq!(cc.client, None);
        assert_eq!(cc.custom.len(), 1);
        assert!(cc.env.is_empty());
    }

    #[test]
    fn malformed_headers_are_invalid_header_diagnostics() {
        let cases = [
            headers(&[(&runtime::INVOKED_FUNCTION_ARN, "arn")]),
            headers(&[
                (&runtime::DEADLINE_MS, "soon"),
                (&runtime::INVOKED_FUNCTION_ARN, "arn"),
            ]),
            headers(&[(&runtime::DEADLINE_MS, "1")]),
            headers(&[
                (&runtime::DEADLINE_MS, "1"),
                (&runtime::INVOKED_FUNCTION_ARN, "arn"),
                (&runtime::COGNITO_IDENTITY, "{not json"),
            ]),
        ];
        for map in &cases {
            let d = parse(map).err().unwrap_or_else(|| panic!("{map:?} parsed"));
            assert_eq!(d.error_type, INVALID_HEADER);
        }
        let d = parse(&cases[1]).err().unwrap_or_else(|| panic!("parsed"));
        assert!(
            d.error_message.contains("lambda-runtime-deadline-ms"),
            "{d:?}"
        );
    }

    #[test]
    fn remaining_counts_down_to_the_deadline_and_saturates() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let ctx = Context {
            deadline_ms: now_ms + 10_000,
            ..Context::default()
        };
        let remaining = ctx.remaining();
        assert!(remaining <= Duration::from_secs(10), "{remaining:?}");
        assert!(remaining > Duration::from_secs(9), "{remaining:?}");
        assert_eq!(
            ctx.deadline(),
            UNIX_EPOCH + Duration::from_millis(now_ms + 10_000)
        );

        let past = Context {
            deadline_ms: 1,
            ..Context::default()
        };
        assert_eq!(past.remaining(), Duration::ZERO);
    }

    #[test]
    fn config_reads_variables_and_defaults_missing_ones() {
        let config = Config::from_lookup(|name| match name {
            env::FUNCTION_NAME => Some("echo".into()),
            env::FUNCTION_MEMORY_SIZE => Some("256".into()),
            env::FUNCTION_VERSION => Some("$LATEST".into()),
            env::LOG_GROUP_NAME => Some("/aws/lambda/echo".into()),
            _ => None,
        });
        assert_eq!(config.function_name, "echo");
        assert_eq!(config.memory_mb, 256);
        assert_eq!(config.version, "$LATEST");
        assert_eq!(config.log_group, "/aws/lambda/echo");
        assert_eq!(config.log_stream, "");
        assert_eq!(config.max_concurrency, 1, "one poller when unset");
        let eight = Config::from_lookup(|name| (name == env::MAX_CONCURRENCY).then(|| "8".into()));
        assert_eq!(eight.max_concurrency, 8);

        let bad = Config::from_lookup(|name| {
            (name == env::FUNCTION_MEMORY_SIZE).then(|| "lots".to_owned())
        });
        assert_eq!(bad, Config::default());
    }
}

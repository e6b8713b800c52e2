//! API Gateway's authorizers, shared by the HTTP and REST APIs here and the WebSocket APIs of
//! `coldstart-websocket`: Lambda authorizers (REST `TOKEN` and `REQUEST`, HTTP API payload 1.0
//! and 2.0, WebSocket `$connect`) and HTTP API JWT authorizers.
//!
//! A front door asks [`Authorizers::authorize`] before it invokes a route's function. The
//! answer is either [`Granted`] — what goes into the event's `requestContext.authorizer` — or a
//! [`Refusal`] that the front door words as its API kind does (401, 403 or 500).
//!
//! Layout: `identity` reads identity sources; `policy` reads authorizer answers and evaluates
//! IAM policies against the method ARN; `jwt` verifies tokens; `fetch` gets JWKS documents.

mod fetch;
mod identity;
mod jwt;
mod policy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coldstart_protocol::limits;
use serde_json::{Map, Value, json};

use crate::emulator::Emulator;
use crate::invocation::{InvokeRequest, Outcome};

pub use identity::{Identity, IdentitySource};
pub use jwt::JwtConfig;

use policy::{Answer, Shape, Verdict};

/// The longest cache time API Gateway allows (`AuthorizerResultTtlInSeconds`).
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// The most entries one authorizer's cache keeps; the oldest go first.
const CACHE_ENTRIES: usize = 10_000;

/// An authorizer of an API.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorizer {
    /// Its name: routes name it.
    pub name: String,
    /// What decides.
    pub kind: AuthorizerKind,
    /// Where the identity is read from. A request missing one is refused (401) without running
    /// the authorizer; the values are its cache key. A JWT authorizer reads the first.
    pub identity_sources: Vec<IdentitySource>,
    /// How long a Lambda authorizer's answer is kept per identity; zero keeps none.
    pub ttl: Duration,
}

/// What kind of authorizer it is.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerKind {
    /// A Lambda function decides.
    Lambda {
        /// The function's name.
        function: String,
        /// The event it gets and how its answer is read.
        event: AuthorizerEvent,
        /// REST `TOKEN` only: a regular expression the token must match, else 401 without
        /// running the authorizer (`ValidationExpression`).
        validation: Option<String>,
    },
    /// A JWT is verified (HTTP APIs).
    Jwt(JwtConfig),
}

/// The event a Lambda authorizer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerEvent {
    /// REST API `TOKEN`: `{type, authorizationToken, methodArn}`.
    Token,
    /// REST API and WebSocket `REQUEST`: the request's proxy event with `type` and `methodArn`.
    Request,
    /// HTTP API payload 1.0: like `Request`, with `version`, `identitySource` and
    /// `authorizationToken`; the answer is an IAM policy.
    HttpV1,
    /// HTTP API payload 2.0: the 2.0 event with `type`, `routeArn` and `identitySource`; the
    /// answer is an IAM policy, or with `simple_responses` `{"isAuthorized": …}`.
    HttpV2 {
        /// `EnableSimpleResponses`.
        simple_responses: bool,
    },
}

/// A route's authorization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteAuth {
    /// The authorizer's name.
    pub authorizer: String,
    /// JWT authorizers: the token needs one of these scopes (`AuthorizationScopes`).
    pub scopes: Vec<String>,
}

/// What a request gets checked with.
#[derive(Debug)]
pub struct Check<'a> {
    /// The method ARN (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`).
    pub arn: String,
    /// Where identity sources are read.
    pub identity: Identity<'a>,
    /// The route's scopes (JWT).
    pub scopes: &'a [String],
}

/// A request the authorizer let through.
#[derive(Debug, Clone, PartialEq)]
pub enum Granted {
    /// A Lambda authorizer allowed it.
    Lambda {
        /// Its `principalId`.
        principal_id: Option<String>,
        /// Its `context`.
        context: Map<String, Value>,
        /// How long it took, in ms (0 from the cache).
        latency_ms: u64,
    },
    /// A valid JWT.
    Jwt {
        /// The token's claims.
        claims: Map<String, Value>,
        /// Its scopes, if it has any.
        scopes: Option<Vec<String>>,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: an identity source is missing, the token fails `ValidationExpression`, or the
    /// authorizer said `Unauthorized`.
    Unauthorized,
    /// 401 from a JWT authorizer, with why (for `www-authenticate`).
    InvalidToken(String),
    /// 403: the policy has no `Allow` for the method, or a simple response said no.
    Forbidden,
    /// 403: the policy denies the method explicitly.
    ExplicitDeny,
    /// 403 from a JWT authorizer: the token has none of the route's scopes.
    InsufficientScope(String),
    /// 500: the authorizer failed or answered something API Gateway cannot read.
    Failed(String),
}

impl Granted {
    /// `requestContext.authorizer` of a payload 2.0 event: `{"lambda": context}` or
    /// `{"jwt": {"claims", "scopes"}}`.
    pub fn for_v2(&self) -> Value {
        match self {
            Granted::Lambda { context, .. } => json!({ "lambda": context }),
            Granted::Jwt { claims, scopes } => json!({
                "jwt": { "claims": jwt::claims_for_event(claims), "scopes": scopes }
            }),
        }
    }

    /// `requestContext.authorizer` of REST, payload 1.0 and WebSocket events: the context's
    /// keys beside `principalId` and `integrationLatency`, or a JWT's `claims` and `scopes`.
    pub fn for_v1(&self) -> Value {
        match self {
            Granted::Lambda {
                principal_id,
                context,
                latency_ms,
            } => {
                let mut map = context.clone();
                map.insert("principalId".into(), json!(principal_id));
                map.insert("integrationLatency".into(), json!(latency_ms));
                Value::Object(map)
            }
            Granted::Jwt { claims, scopes } => json!({
                "claims": jwt::claims_for_event(claims), "scopes": scopes
            }),
        }
    }
}

/// What runs authorizer functions: the [`Emulator`], or a test's stand-in.
pub trait Invoker: Sync {
    /// Invokes `function` synchronously with `payload` (JSON bytes).
    fn run(&self, function: &str, payload: Bytes) -> impl Future<Output = Invoked> + Send;
}

/// How an authorizer invocation ended.
#[derive(Debug)]
pub enum Invoked {
    /// The function's answer.
    Answer(Bytes),
    /// The function failed: its error document (`{"errorType","errorMessage"}`).
    Error(Bytes),
    /// It could not run (throttled, unknown, shutting down).
    Refused(String),
}

impl Invoker for Emulator {
    async fn run(&self, function: &str, payload: Bytes) -> Invoked {
        let request = InvokeRequest {
            payload,
            serialized: true,
            ..InvokeRequest::default()
        };
        match self.invoke(function, request).await {
            Ok(response) => match response
                .buffered(limits::MAX_RUNTIME_RESPONSE)
                .await
                .outcome
            {
                Outcome::Response { body, .. } => Invoked::Answer(body),
                Outcome::FunctionError { body, .. } => Invoked::Error(body),
                _ => Invoked::Refused("the authorizer answered nothing readable".into()),
            },
            Err(e) => Invoked::Refused(e.to_string()),
        }
    }
}

/// The authorizers of one API, with their caches.
#[derive(Debug, Default)]
pub struct Authorizers {
    by_name: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    config: Authorizer,
    validation: Option<regex_lite::Regex>,
    cache: Mutex<HashMap<String, (Instant, Arc<Answer>)>>,
    keys: Option<jwt::Keys>,
}

impl Authorizers {
    /// The runtime of `authorizers`; `Err` names the first whose settings cannot work.
    pub fn new(authorizers: Vec<Authorizer>) -> Result<Self, String> {
        let mut by_name = HashMap::new();
        for config in authorizers {
            let validation = match &config.kind {
                AuthorizerKind::Lambda {
                    validation: Some(re),
                    ..
                } => Some(regex_lite::Regex::new(&format!("^(?:{re})$")).map_err(|e| {
                    format!("authorizer {}: ValidationExpression: {e}", config.name)
                })?),
                _ => None,
            };
            let keys = match &config.kind {
                AuthorizerKind::Jwt(jwt) => Some(jwt::Keys::new(jwt.clone())),
                AuthorizerKind::Lambda { .. } => None,
            };
            if matches!(config.kind, AuthorizerKind::Jwt(_)) && config.identity_sources.is_empty() {
                return Err(format!(
                    "authorizer {}: a JWT authorizer needs an identity source",
                    config.name
                ));
            }
            by_name.insert(
                config.name.clone(),
                Entry {
                    config,
                    validation,
                    cache: Mutex::new(HashMap::new()),
                    keys,
                },
            );
        }
        Ok(Self { by_name })
    }

    /// The authorizer named `name`.
    pub fn get(&self, name: &str) -> Option<&Authorizer> {
        self.by_name.get(name).map(|e| &e.config)
    }

    /// Checks a request with the authorizer named `name`. `event` makes the Lambda
    /// authorizer's event (the request's event in the authorizer's shape, without `type`,
    /// `methodArn`/`routeArn` and identity fields: those are added here); it is called only
    /// when the authorizer runs.
    pub async fn authorize(
        &self,
        invoker: &impl Invoker,
        name: &str,
        check: Check<'_>,
        event: impl FnOnce(AuthorizerEvent) -> Value,
    ) -> Result<Granted, Refusal> {
        let Some(entry) = self.by_name.get(name) else {
            return Err(Refusal::Failed(format!("no authorizer {name}")));
        };
        let mut values = Vec::new();
        for source in &entry.config.identity_sources {
            match source.value(&check.identity) {
                Some(v) => values.push(v),
                None => return Err(Refusal::Unauthorized),
            }
        }
        match &entry.config.kind {
            AuthorizerKind::Jwt(_) => {
                let keys = entry.keys.as_ref().ok_or(Refusal::Unauthorized)?;
                let token = values.first().ok_or(Refusal::Unauthorized)?;
                match keys.verify(token, check.scopes).await {
                    Ok(v) => Ok(Granted::Jwt {
                        claims: v.claims,
                        scopes: v.scopes,
                    }),
                    Err(jwt::JwtError::Invalid(why)) => Err(Refusal::InvalidToken(why)),
                    Err(jwt::JwtError::Keys(why)) => {
                        tracing::warn!(authorizer = name, "JWT keys unavailable: {why}");
                        Err(Refusal::InvalidToken(
                            "the issuer's keys could not be fetched".into(),
                        ))
                    }
                    Err(jwt::JwtError::Scope(scopes)) => Err(Refusal::InsufficientScope(scopes)),
                }
            }
            AuthorizerKind::Lambda {
                function,
                event: kind,
                ..
            } => {
                if let (Some(re), Some(token)) = (&entry.validation, values.first())
                    && !re.is_match(token)
                {
                    return Err(Refusal::Unauthorized);
                }
                let key = values.join("\u{1f}");
                let ttl = entry.config.ttl.min(MAX_TTL);
                let cached = (!ttl.is_zero() && !values.is_empty())
                    .then(|| entry.cached(&key, ttl))
                    .flatten();
                let (answer, latency_ms) = match cached {
                    Some(answer) => (answer, 0),
                    None => {
                        let started = Instant::now();
                        let payload = lambda_event(*kind, event(*kind), &check.arn, &values);
                        let answer = Arc::new(run(invoker, function, *kind, payload).await?);
                        if !ttl.is_zero() && !values.is_empty() {
                            entry.remember(key, answer.clone());
                        }
                        (answer, started.elapsed().as_millis() as u64)
                    }
                };
                match answer.verdict(&check.arn) {
                    Verdict::Allow => Ok(Granted::Lambda {
                        principal_id: answer.principal_id.clone(),
                        context: answer.context.clone(),
                        latency_ms,
                    }),
                    Verdict::ExplicitDeny => Err(Refusal::ExplicitDeny),
                    Verdict::NotAllowed => Err(Refusal::Forbidden),
                }
            }
        }
    }
}

impl Entry {
    fn cached(&self, key: &str, ttl: Duration) -> Option<Arc<Answer>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, a)| a.clone())
    }

    fn remember(&self, key: String, answer: Arc<Answer>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        cache.insert(key, (Instant::now(), answer));
    }
}

/// The Lambda authorizer's event: `base` with the fields of its kind.
fn lambda_event(kind: AuthorizerEvent, base: Value, arn: &str, values: &[String]) -> Value {
    let mut map = match base {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in ["body", "isBase64Encoded"] {
        map.remove(key);
    }
    match kind {
        AuthorizerEvent::Token => {
            let mut token = Map::new();
            token.insert("type".into(), json!("TOKEN"));
            token.insert("authorizationToken".into(), json!(values.first()));
            token.insert("methodArn".into(), json!(arn));
            return Value::Object(token);
        }
        AuthorizerEvent::Request => {
            map.insert("type".into(), json!("REQUEST"));
            map.insert("methodArn".into(), json!(arn));
        }
        AuthorizerEvent::HttpV1 => {
            let joined = values.join(",");
            map.insert("version".into(), json!("1.0"));
            map.insert("type".into(), json!("REQUEST"));
            map.insert("methodArn".into(), json!(arn));
            map.insert("identitySource".into(), json!(joined));
            map.insert("authorizationToken".into(), json!(joined));
        }
        AuthorizerEvent::HttpV2 { .. } => {
            map.insert("version".into(), json!("2.0"));
            map.insert("type".into(), json!("REQUEST"));
            map.insert("routeArn".into(), json!(arn));
            map.insert("identitySource".into(), json!(values));
        }
    }
    Value::Object(map)
}

/// Invokes the authorizer and reads its answer.
async fn run(
    invoker: &impl Invoker,
    function: &str,
    kind: AuthorizerEvent,
    payload: Value,
) -> Result<Answer, Refusal> {
    let payload = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
    let shape = match kind {
        AuthorizerEvent::HttpV2 {
            simple_responses: true,
        } => Shape::Simple,
        AuthorizerEvent::HttpV2 { .. } => Shape::PolicyV2,
        _ => Shape::Policy,
    };
    match invoker.run(function, payload).await {
        Invoked::Answer(body) => Answer::parse(&body, shape)
            .map_err(|why| Refusal::Failed(format!("authorizer {function}: {why}"))),
        Invoked::Error(body) => {
            let message = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
                v.get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            // REST and WebSocket authorizers refuse with 401 by failing with "Unauthorized".
            if message.as_deref() == Some("Unauthorized")
                && matches!(kind, AuthorizerEvent::Token | AuthorizerEvent::Request)
            {
                Err(Refusal::Unauthorized)
            } else {
                Err(Refusal::Failed(format!(
                    "authorizer {function} failed: {}",
                    message.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
                )))
            }
        }
        Invoked::Refused(why) => Err(Refusal::Failed(format!(
            "authorizer {function} could not run: {why}"
        ))),
    }
}

/// The method ARN of a request: `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{verb}/{path}`.
pub fn method_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    verb: &str,
    path: &str,
) -> String {
    format!(
        "arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{verb}/{}",
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_events_carry_their_kinds_fields() {
        let base = json!({"headers": {"a": "b"}, "body": "x", "isBase64Encoded": false});
        let arn = "arn:aws:execute-api:us-east-1:1:api/prod/GET/x";
        let token = lambda_event(AuthorizerEvent::Token, base.clone(), arn, &["t".into()]);
        assert_eq!(
            token,
            json!({"type": "TOKEN", "authorizationToken": "t", "methodArn": arn})
        );
        let request = lambda_event(AuthorizerEvent::Request, base.clone(), arn, &[]);
        assert_eq!(request["type"], "REQUEST");
        assert_eq!(request["methodArn"], arn);
        assert_eq!(request["headers"]["a"], "b");
        assert!(request.get("body").is_none());
        let v1 = lambda_event(
            AuthorizerEvent::HttpV1,
            base.clone(),
            arn,
            &["a".into(), "b".into()],
        );
        assert_eq!(v1["version"], "1.0");
        assert_eq!(v1["identitySource"], "a,b");
        let v2 = lambda_event(
            AuthorizerEvent::HttpV2 {
                simple_responses: true,
            },
            base,
            arn,
            &["a".into(), "b".into()],
        );
        assert_eq!(v2["version"], "2.0");
        assert_eq!(v2["routeArn"], arn);
        assert_eq!(v2["identitySource"], json!(["a", "b"]));
    }

    #[test]
    fn granted_contexts_have_each_payloads_shape() {
        let mut context = Map::new();
        context.insert("user".into(), json!("alice"));
        let lambda = Granted::Lambda {
            principal_id: Some("u1".into()),
            context,
            latency_ms: 3,
        };
        assert_eq!(lambda.for_v2(), json!({"lambda": {"user": "alice"}}));
        assert_eq!(
            lambda.for_v1(),
            json!({"user": "alice", "principalId": "u1", "integrationLatency": 3})
        );
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("u1"));
        claims.insert("exp".into(), json!(1_700_000_000));
        claims.insert("groups".into(), json!(["a", "b"]));
        let jwt = Granted::Jwt {
            claims,
            scopes: Some(vec!["read".into()]),
        };
        assert_eq!(
            jwt.for_v2(),
            json!({"jwt": {"claims": {"sub": "u1", "exp": "1700000000", "groups": "[a b]"}, "scopes": ["read"]}})
        );
    }

    #[test]
    fn arns_name_the_stage_verb_and_path() {
        assert_eq!(
            method_arn("us-east-1", "123", "api", "$default", "GET", "/items/1"),
            "arn:aws:execute-api:us-east-1:123:api/$default/GET/items/1"
        );
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let bad_regex = Authorizer {
            name: "tok".into(),
            kind: AuthorizerKind::Lambda {
                function: "f".into(),
                event: AuthorizerEvent::Token,
                validation: Some("(".into()),
            },
            identity_sources: vec![IdentitySource::Header("Authorization".into())],
            ttl: Duration::ZERO,
        };
        assert!(
            Authorizers::new(vec![bad_regex])
                .err()
                .is_some_and(|e| e.contains("tok") && e.contains("ValidationExpression"))
        );
    }
}

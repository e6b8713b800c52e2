//! HTTP API JWT authorizers, checked as API Gateway checks them: the token (alone or after
//! `Bearer `) is decoded, its `kid` found in the issuer's JWKS (from the OpenID discovery
//! document at `{issuer}/.well-known/openid-configuration`, or a configured URL), its RSA
//! signature verified, then `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf`,
//! `iat` and the route's scopes (`scope` or `scp`). Keys are cached for two hours and fetched
//! again when a token names a key the cache does not have.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::fetch::get_json;

/// How long fetched keys are trusted, as API Gateway caches them.
const KEYS_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// A token naming an unknown key fetches the keys again at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

/// A JWT authorizer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `iss` must equal this; the JWKS is found from it unless `jwks_url` is given.
    pub issuer: String,
    /// `aud` (or `client_id`) must be one of these; empty: not checked (REST APIs' Cognito
    /// user pool authorizers accept any client of the pool).
    pub audience: Vec<String>,
    /// Where the keys are, instead of the issuer's discovery document (coldstart's own
    /// setting, for local issuers).
    pub jwks_url: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwtError {
    /// 401: the token is missing, malformed, badly signed, expired or for someone else.
    Invalid(String),
    /// 403: a valid token without any of the route's scopes.
    Scope(String),
    /// 401 as well, but the keys could not be had: said in the log.
    Keys(String),
}

/// A valid token's claims and scopes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verified {
    pub(crate) claims: Map<String, Value>,
    pub(crate) scopes: Option<Vec<String>>,
}

/// One JWT authorizer's keys.
#[derive(Debug)]
pub(crate) struct Keys {
    config: JwtConfig,
    cached: Mutex<Option<(Instant, JwkSet)>>,
}

impl Keys {
    pub(crate) fn new(config: JwtConfig) -> Self {
        Self {
            config,
            cached: Mutex::new(None),
        }
    }

    /// Checks `token` (the identity source's value) for a route that asks for `scopes`.
    pub(crate) async fn verify(
        &self,
        token: &str,
        scopes: &[String],
    ) -> Result<Verified, JwtError> {
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| JwtError::Invalid(format!("the token is malformed: {e}")))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) {
            return Err(JwtError::Invalid(format!(
                "the token's algorithm {:?} is not RSA",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| JwtError::Invalid("the token has no kid".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
                JwtError::Invalid(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "the token has expired".to_owned()
                    }
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                        "the token is not valid yet".to_owned()
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        "the token's signature does not verify".to_owned()
                    }
                    _ => format!("the token is not valid: {e}"),
                })
            })?;
        let claims = data.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(JwtError::Invalid(
                "the token's iss is not the issuer".into(),
            ));
        }
        let audiences: Vec<&str> = match claims.get("aud").or_else(|| claims.get("client_id")) {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        // No audience configured (a REST API's Cognito user pool authorizer): any client of
        // the issuer.
        if !self.config.audience.is_empty()
            && !audiences
                .iter()
                .any(|a| self.config.audience.iter().any(|want| want == a))
        {
            return Err(JwtError::Invalid(
                "the token's aud (or client_id) is not an audience of the authorizer".into(),
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat > now)
        {
            return Err(JwtError::Invalid(
                "the token was issued in the future".into(),
            ));
        }
        let token_scopes = token_scopes(&claims);
        if !scopes.is_empty()
            && !token_scopes
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|s| scopes.contains(s))
        {
            return Err(JwtError::Scope(scopes.join(" ")));
        }
        Ok(Verified {
            claims,
            scopes: token_scopes,
        })
    }

    /// The key named `kid`: from the cache, or fetched when the cache is stale or lacks it.
    async fn key(&self, kid: &str) -> Result<DecodingKey, JwtError> {
        let mut cached = self.cached.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < KEYS_TTL);
        let has = cached
            .as_ref()
            .is_some_and(|(_, set)| set.find(kid).is_some());
        let may_refetch = cached
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= REFETCH_EVERY);
        if !fresh || (!has && may_refetch) {
            let set = self.fetch().await.map_err(JwtError::Keys)?;
            *cached = Some((Instant::now(), set));
        }
        let jwk = cached
            .as_ref()
            .and_then(|(_, set)| set.find(kid))
            .ok_or_else(|| JwtError::Invalid(format!("no key {kid} in the issuer's JWKS")))?;
        DecodingKey::from_jwk(jwk).map_err(|e| JwtError::Invalid(format!("key {kid}: {e}")))
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let url = match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let document = get_json(&discovery).await?;
                document
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{discovery}: no jwks_uri"))?
                    .to_owned()
            }
        };
        let value = get_json(&url).await?;
        serde_json::from_value(value).map_err(|e| format!("{url}: not a JWKS: {e}"))
    }
}

/// `scope` (space-separated) or `scp` (a list or a string).
fn token_scopes(claims: &Map<String, Value>) -> Option<Vec<String>> {
    match claims.get("scope").or_else(|| claims.get("scp"))? {
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

/// Claims as API Gateway hands them to integrations: every value a string (`[a b]` for lists).
pub(crate) fn claims_for_event(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect()
}

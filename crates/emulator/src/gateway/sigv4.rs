//! Signature Version 4 checks for Function URLs with `AuthType: AWS_IAM`: the request's
//! `Authorization` header is read, its access key looked up among the local credentials, and
//! its signature computed again with `aws-sigv4` from what was received (method, path, query,
//! the signed headers, the payload) and compared in constant time. Refusals answer as Lambda
//! does: 403 with a JSON body and `x-amzn-ErrorType`.
//!
//! Kept apart from the front door so that it can be tested with requests signed by `aws-sigv4`
//! itself, without a server.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequestContextAuthorizerDescription,
    LambdaFunctionUrlRequestContextAuthorizerIamDescription,
};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use crate::body::Body;

use super::Captured;

/// The access key id coldstart gives functions when its own environment has no credentials.
pub const LOCAL_ACCESS_KEY_ID: &str = "coldstart-local-key";
/// The secret access key that goes with [`LOCAL_ACCESS_KEY_ID`].
pub const LOCAL_SECRET_ACCESS_KEY: &str = "coldstart-local-secret";
/// The session token coldstart gives functions with [`LOCAL_ACCESS_KEY_ID`].
pub const LOCAL_SESSION_TOKEN: &str = "coldstart-local-session";

/// The only algorithm Function URLs accept.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name requests to a Function URL are signed for.
pub(crate) const SERVICE: &str = "lambda";
/// The signing name of API Gateway's APIs (`AWS_IAM` routes).
pub(crate) const EXECUTE_API: &str = "execute-api";
/// How far a request's `X-Amz-Date` may be from the clock, either way, as AWS allows.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// `x-amz-date`, the signing time.
const X_AMZ_DATE: &str = "x-amz-date";
/// `x-amz-content-sha256`, the payload hash a client may send.
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The payload hash of a request whose body is not signed.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// A key pair a signed request may use, and the IAM user it stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalKey {
    /// The access key id (`AKIA…` on AWS).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The IAM user name the event's `userArn` names.
    pub user: String,
}

impl std::fmt::Debug for LocalKey {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("access_key_id", &self.access_key_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl LocalKey {
    /// The pair coldstart hands functions when its environment has none.
    pub fn coldstart() -> Self {
        Self {
            access_key_id: LOCAL_ACCESS_KEY_ID.into(),
            secret_access_key: LOCAL_SECRET_ACCESS_KEY.into(),
            user: "coldstart-local".into(),
        }
    }

    /// The event's `requestContext.authorizer` for a caller signing with this key.
    pub(crate) fn authorizer(
        &self,
        account_id: &str,
    ) -> LambdaFunctionUrlRequestContextAuthorizerDescription {
        let user_id = self.user_id();
        let mut iam = LambdaFunctionUrlRequestContextAuthorizerIamDescription::default();
        iam.access_key = Some(self.access_key_id.clone());
        iam.account_id = Some(account_id.to_owned());
        iam.caller_id = Some(user_id.clone());
        iam.user_arn = Some(format!("arn:aws:iam::{account_id}:user/{}", self.user));
        iam.user_id = Some(user_id);
        iam.other.insert("cognitoIdentity".into(), Value::Null);
        iam.other.insert("principalOrgId".into(), Value::Null);
        let mut authorizer = LambdaFunctionUrlRequestContextAuthorizerDescription::default();
        authorizer.iam = Some(iam);
        authorizer
    }

    /// A stable IAM-style unique id (`AIDA` and 16 characters) for the user.
    fn user_id(&self) -> String {
        // FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.access_key_id.bytes().chain(self.user.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("AIDA{hash:016X}")
    }
}

/// Why a request was refused, each answered as Lambda answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No SigV4 `Authorization` header at all.
    Missing,
    /// An `Authorization` header that lacks a part.
    Incomplete(String),
    /// An access key that is not one of the local ones.
    UnknownKey,
    /// The credential scope names another region, service or terminator.
    Scope(String),
    /// The signing time is more than [`CLOCK_SKEW`] away from now.
    Time(String),
    /// The signature is not the one the secret gives.
    Mismatch,
}

impl Refusal {
    /// Lambda's answer: 403, `x-amzn-ErrorType` and a JSON body.
    pub(crate) fn response(&self) -> Response<Body> {
        let (kind, body) = match self {
            // Lambda's own answer to an anonymous call, capitalised as it is.
            Self::Missing => (
                "AccessDeniedException",
                serde_json::json!({ "Message": "Forbidden" }),
            ),
            Self::Incomplete(message) => (
                "IncompleteSignatureException",
                serde_json::json!({ "message": message }),
            ),
            Self::UnknownKey => (
                "UnrecognizedClientException",
                serde_json::json!({
                    "message": "The security token included in the request is invalid."
                }),
            ),
            Self::Scope(message) | Self::Time(message) => (
                "InvalidSignatureException",
                serde_json::json!({ "message": message }),
            ),
            Self::Mismatch => (
                "InvalidSignatureException",
                serde_json::json!({
                    "message": "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                }),
            ),
        };
        forbidden(kind, &body)
    }
}

impl Refusal {
    /// API Gateway's answer to an `AWS_IAM` route's request it refuses: REST APIs 403
    /// `Missing Authentication Token` without a signature, else the signature's complaint as
    /// Lambda words it; HTTP APIs 403 `{"message":"Forbidden"}`.
    pub(crate) fn api_response(&self, rest: bool) -> Response<Body> {
        match self {
            _ if !rest => forbidden(
                "AccessDeniedException",
                &serde_json::json!({ "message": "Forbidden" }),
            ),
            Self::Missing => forbidden(
                "MissingAuthenticationTokenException",
                &serde_json::json!({ "message": "Missing Authentication Token" }),
            ),
            other => other.response(),
        }
    }
}

/// A 403 with `x-amzn-ErrorType: kind` and a JSON `body`.
fn forbidden(kind: &'static str, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

/// Puts the caller signing with `key` into an API event: payload 2.0's
/// `requestContext.authorizer.iam`, payload 1.0's `requestContext.identity`.
pub(crate) fn api_caller(
    key: &LocalKey,
    account_id: &str,
    version: super::PayloadVersion,
    event: &mut Value,
) {
    let Some(context) = event.get_mut("requestContext") else {
        return;
    };
    match version {
        super::PayloadVersion::V2 => {
            context["authorizer"] =
                serde_json::to_value(key.authorizer(account_id)).unwrap_or(Value::Null);
        }
        super::PayloadVersion::V1 => {
            let user_id = key.user_id();
            let identity = &mut context["identity"];
            identity["accessKey"] = Value::from(key.access_key_id.clone());
            identity["accountId"] = Value::from(account_id);
            identity["caller"] = Value::from(user_id.clone());
            identity["user"] = Value::from(user_id);
            identity["userArn"] =
                Value::from(format!("arn:aws:iam::{account_id}:user/{}", key.user));
        }
    }
}

/// The parts of a SigV4 signature, from the `Authorization` header or a presigned URL's query.
#[derive(Debug, PartialEq, Eq)]
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    terminator: String,
    signed_headers: Vec<String>,
    signature: String,
    /// `X-Amz-Date`: the signing time as written.
    stamp: Option<String>,
    /// Set when the signature came in the query string.
    presigned: Option<Presigned>,
}

/// What a presigned URL's query adds.
#[derive(Debug, PartialEq, Eq)]
struct Presigned {
    /// `X-Amz-Expires`: how long after signing the URL is good.
    expires: Duration,
    /// `X-Amz-Security-Token`, signed as part of the query.
    token: Option<String>,
    /// The query without the signature's own parameters.
    rest: String,
}

/// Checks the request's signature against `keys` for `region` at `now`; answers the key that
/// signed it.
pub(crate) fn verify<'k>(
    c: &Captured,
    keys: &'k [LocalKey],
    region: &str,
    now: SystemTime,
) -> Result<&'k LocalKey, Refusal> {
    verify_for(c, keys, region, SERVICE, now)
}

/// [`verify`] for the signing name `service` (`lambda`, `execute-api`).
pub(crate) fn verify_for<'k>(
    c: &Captured,
    keys: &'k [LocalKey],
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<&'k LocalKey, Refusal> {
    let auth = match authorization(&c.headers) {
        Err(Refusal::Missing) if has_query_signature(&c.raw_query) => presigned(&c.raw_query)?,
        other => other?,
    };
    let Some(key) = keys.iter().find(|k| k.access_key_id == auth.access_key_id) else {
        return Err(Refusal::UnknownKey);
    };
    let Some(stamp) = auth.stamp.as_deref() else {
        return Err(Refusal::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        ));
    };
    let signed_at = parse_stamp(stamp).ok_or_else(|| {
        Refusal::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{stamp}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    check_time(
        stamp,
        signed_at,
        now,
        auth.presigned.as_ref().map(|p| p.expires),
    )?;
    check_scope(&auth, stamp, region, service)?;
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(Refusal::Incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let expected = signature(c, &auth, key, signed_at, service).ok_or(Refusal::Mismatch)?;
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(key)
    } else {
        Err(Refusal::Mismatch)
    }
}

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn authorization(headers: &HeaderMap) -> Result<Authorization, Refusal> {
    let Some(value) = text(headers, header::AUTHORIZATION.as_str()) else {
        return Err(Refusal::Missing);
    };
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        return Err(Refusal::Missing);
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, part) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if part.is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if !missing.is_empty() {
        missing.push_str(&format!("Authorization={value}"));
        return Err(Refusal::Incomplete(missing));
    }
    parts(
        credential.unwrap_or_default(),
        signed_headers.unwrap_or_default(),
        signature.unwrap_or_default(),
        text(headers, X_AMZ_DATE).map(str::to_owned),
        None,
    )
}

/// Whether the query carries a SigV4 signature (a presigned URL).
fn has_query_signature(query: &str) -> bool {
    query_pairs(query).any(|(k, _, _)| k == "X-Amz-Algorithm")
}

/// Each `key=value` of a query: decoded key, decoded value, and the pair as written.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(k), decode(v), pair)
    })
}

/// The signature of a presigned URL, from its `X-Amz-*` query parameters.
fn presigned(query: &str) -> Result<Authorization, Refusal> {
    let mut found = std::collections::HashMap::new();
    let mut rest = Vec::new();
    for (key, value, raw) in query_pairs(query) {
        match key.as_str() {
            "X-Amz-Algorithm"
            | "X-Amz-Credential"
            | "X-Amz-Date"
            | "X-Amz-Expires"
            | "X-Amz-SignedHeaders"
            | "X-Amz-Signature"
            | "X-Amz-Security-Token" => {
                found.insert(key, value);
            }
            _ => rest.push(raw),
        }
    }
    if found.get("X-Amz-Algorithm").map(String::as_str) != Some(ALGORITHM) {
        return Err(Refusal::Missing);
    }
    let mut missing = String::new();
    for name in [
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
        "X-Amz-Expires",
    ] {
        if found.get(name).is_none_or(String::is_empty) {
            missing.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    if !missing.is_empty() {
        missing.push_str("Re-examine the query-string parameters.");
        return Err(Refusal::Incomplete(missing));
    }
    let take = |name: &str| found.get(name).cloned().unwrap_or_default();
    let expires = take("X-Amz-Expires");
    let Some(expires) = expires.parse().ok().filter(|s| (1..=604_800).contains(s)) else {
        return Err(Refusal::Incomplete(format!(
            "X-Amz-Expires must be a number of seconds from 1 to 604800, not '{expires}'."
        )));
    };
    parts(
        &take("X-Amz-Credential"),
        &take("X-Amz-SignedHeaders"),
        &take("X-Amz-Signature"),
        Some(take("X-Amz-Date")),
        Some(Presigned {
            expires: Duration::from_secs(expires),
            token: found.get("X-Amz-Security-Token").cloned(),
            rest: rest.join("&"),
        }),
    )
}

/// A signature's parts, the credential split into its scope.
fn parts(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    stamp: Option<String>,
    presigned: Option<Presigned>,
) -> Result<Authorization, Refusal> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(Refusal::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        terminator: terminator.to_owned(),
        signed_headers: signed_headers.split(';').map(str::to_owned).collect(),
        signature: signature.to_owned(),
        stamp,
        presigned,
    })
}

/// `20240102T030405Z` as a time.
fn parse_stamp(stamp: &str) -> Option<SystemTime> {
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    DateTime::from_str(&iso, Format::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
}

/// A time as `X-Amz-Date` writes it.
fn stamp_of(t: SystemTime) -> String {
    DateTime::from(t)
        .fmt(Format::DateTime)
        .map(|iso| {
            iso.chars()
                .filter(|c| !matches!(c, '-' | ':'))
                .take(15)
                .chain(std::iter::once('Z'))
                .collect()
        })
        .unwrap_or_default()
}

/// Within [`CLOCK_SKEW`] of now; a presigned URL instead until `expires` after signing.
fn check_time(
    stamp: &str,
    signed_at: SystemTime,
    now: SystemTime,
    expires: Option<Duration>,
) -> Result<(), Refusal> {
    let now_stamp = stamp_of(now);
    let (good_for, shown) = match expires {
        None => (CLOCK_SKEW, "5 min.".to_owned()),
        Some(d) if d.as_secs() % 60 == 0 => (d, format!("{} min.", d.as_secs() / 60)),
        Some(d) => (d, format!("{} sec.", d.as_secs())),
    };
    if signed_at + good_for < now {
        return Err(Refusal::Time(format!(
            "Signature expired: {stamp} is now earlier than {} ({now_stamp} - {shown})",
            stamp_of(now - good_for)
        )));
    }
    if signed_at > now + CLOCK_SKEW {
        return Err(Refusal::Time(format!(
            "Signature not yet current: {stamp} is still later than {} ({now_stamp} + 5 min.)",
            stamp_of(now + CLOCK_SKEW)
        )));
    }
    Ok(())
}

fn check_scope(
    auth: &Authorization,
    stamp: &str,
    region: &str,
    service: &str,
) -> Result<(), Refusal> {
    if auth.date != stamp[..8] {
        return Err(Refusal::Scope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{stamp}'.",
            auth.date,
            &stamp[..8]
        )));
    }
    if auth.region != region {
        return Err(Refusal::Scope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    if auth.service != service {
        return Err(Refusal::Scope(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if auth.terminator != "aws4_request" {
        return Err(Refusal::Scope(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
            auth.terminator
        )));
    }
    Ok(())
}

/// The signature `key` gives the request as received; `None` when it cannot be computed
/// (a signed header that is not there, a value that is not text).
fn signature(
    c: &Captured,
    auth: &Authorization,
    key: &LocalKey,
    signed_at: SystemTime,
    service: &str,
) -> Option<String> {
    let host = text(&c.headers, header::HOST.as_str())?;
    // The path as the client sent it (an API's stage included).
    let mut uri = format!("http://{host}{}", c.sent_path);
    // A presigned URL's own parameters are added back by `aws-sigv4` as it signs.
    let query = match &auth.presigned {
        Some(p) => p.rest.as_str(),
        None => c.raw_query.as_str(),
    };
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    // Exactly the headers the client signed, every value of each: `aws-sigv4` signs all it is
    // given (nothing excluded below) and adds only `x-amz-date`, which is among them.
    let mut headers = Vec::new();
    for name in &auth.signed_headers {
        let mut values = c.headers.get_all(name.as_str()).iter().peekable();
        values.peek()?;
        for value in values {
            headers.push((name.as_str(), value.to_str().ok()?));
        }
    }
    // A hash claimed in `x-amz-content-sha256` is signed as a header, while the payload line
    // is the body's own hash: a claim that does not match the body fails like a bad secret.
    let body = match text(&c.headers, X_AMZ_CONTENT_SHA256) {
        Some(UNSIGNED_PAYLOAD) => SignableBody::UnsignedPayload,
        _ => SignableBody::Bytes(&c.body),
    };
    let signable =
        SignableRequest::new(c.method.as_str(), uri.as_str(), headers.into_iter(), body).ok()?;
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    // With the header, the session token (when signed) is one of the headers above; in a
    // presigned URL it is a query parameter `aws-sigv4` adds from the identity.
    let token = auth.presigned.as_ref().and_then(|p| p.token.clone());
    if let Some(p) = &auth.presigned {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(p.expires);
    }
    let identity = Credentials::new(
        key.access_key_id.clone(),
        key.secret_access_key.clone(),
        token,
        None,
        "coldstart",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(service)
        .time(signed_at)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let output = sign(signable, &params).ok()?;
    Some(output.signature().to_owned())
}

/// Equal contents, in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    const REGION: &str = "us-east-1";

    fn keys() -> Vec<LocalKey> {
        vec![LocalKey::coldstart()]
    }

    /// A request as a client sends it, signed by `aws-sigv4` as the AWS SDK signs
    /// (`x-amz-content-sha256` left out, as SDKs other than S3's do).
    fn signed(
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        secret: &str,
        token: Option<&str>,
        at: SystemTime,
    ) -> Captured {
        signed_with(
            SigningSettings::default(),
            method,
            path_and_query,
            extra,
            body,
            secret,
            token,
            at,
        )
    }

    /// A presigned URL good for `expires`, as `aws-sigv4` presigns.
    fn presigned_url(path_and_query: &str, expires: Duration, at: SystemTime) -> Captured {
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
        signed_with(
            settings,
            "GET",
            path_and_query,
            &[],
            b"",
            LOCAL_SECRET_ACCESS_KEY,
            Some(LOCAL_SESSION_TOKEN),
            at,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn signed_with(
        settings: SigningSettings,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        secret: &str,
        token: Option<&str>,
        at: SystemTime,
    ) -> Captured {
        let host = "127.0.0.1:9001";
        let uri = format!("http://{host}{path_and_query}");
        let mut request = http::Request::builder().method(method).uri(&uri);
        request = request.header("host", host);
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        let mut request = request.body(()).unwrap_or_else(|e| panic!("request: {e}"));
        let identity = Credentials::new(
            LOCAL_ACCESS_KEY_ID,
            secret,
            token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("lambda")
            .time(at)
            .settings(settings)
            .build()
            .unwrap_or_else(|e| panic!("params: {e}"))
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let signable = SignableRequest::new(
            method,
            uri.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap_or_else(|e| panic!("signable: {e}"));
        let (instructions, _) = sign(signable, &params)
            .unwrap_or_else(|e| panic!("sign: {e}"))
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let (parts, ()) = request.into_parts();
        Captured {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            sent_path: parts.uri.path().to_owned(),
            raw_query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts.headers,
            body: Bytes::copy_from_slice(body),
            source_ip: "127.0.0.1".into(),
        }
    }

    fn good(at: SystemTime) -> Captured {
        signed(
            "POST",
            "/orders/a%20b?x=1&y=two",
            &[("content-type", "application/json"), ("x-custom", "v")],
            br#"{"k":1}"#,
            LOCAL_SECRET_ACCESS_KEY,
            None,
            at,
        )
    }

    fn check(c: &Captured, now: SystemTime) -> Result<String, Refusal> {
        let keys = keys();
        verify(c, &keys, REGION, now).map(|k| k.access_key_id.clone())
    }

    #[test]
    fn a_request_signed_by_aws_sigv4_verifies() {
        let now = SystemTime::now();
        assert_eq!(check(&good(now), now), Ok(LOCAL_ACCESS_KEY_ID.to_owned()));
        let get = signed("GET", "/", &[], b"", LOCAL_SECRET_ACCESS_KEY, None, now);
        assert_eq!(check(&get, now), Ok(LOCAL_ACCESS_KEY_ID.to_owned()));
    }

    #[test]
    fn a_session_token_is_accepted_with_a_known_key() {
        let now = SystemTime::now();
        let c = signed(
            "GET",
            "/x",
            &[],
            b"",
            LOCAL_SECRET_ACCESS_KEY,
            Some(LOCAL_SESSION_TOKEN),
            now,
        );
        assert!(c.headers.contains_key("x-amz-security-token"));
        assert_eq!(check(&c, now), Ok(LOCAL_ACCESS_KEY_ID.to_owned()));
    }

    #[test]
    fn any_change_after_signing_fails() {
        let now = SystemTime::now();
        let mut path = good(now);
        path.sent_path = "/orders/other".into();
        assert_eq!(check(&path, now), Err(Refusal::Mismatch));
        let mut query = good(now);
        query.raw_query = "x=2&y=two".into();
        assert_eq!(check(&query, now), Err(Refusal::Mismatch));
        let mut header = good(now);
        header
            .headers
            .insert("x-custom", HeaderValue::from_static("changed"));
        assert_eq!(check(&header, now), Err(Refusal::Mismatch));
        let mut body = good(now);
        body.body = Bytes::from_static(br#"{"k":2}"#);
        assert_eq!(check(&body, now), Err(Refusal::Mismatch));
        let mut method = good(now);
        method.method = Method::PUT;
        assert_eq!(check(&method, now), Err(Refusal::Mismatch));
        let mut dropped = good(now);
        dropped.headers.remove("x-custom");
        assert_eq!(check(&dropped, now), Err(Refusal::Mismatch));
    }

    #[test]
    fn a_wrong_secret_fails_and_an_unknown_key_is_unrecognized() {
        let now = SystemTime::now();
        let wrong = signed("GET", "/", &[], b"", "not-the-secret", None, now);
        assert_eq!(check(&wrong, now), Err(Refusal::Mismatch));
        let keys = vec![LocalKey {
            access_key_id: "AKIDOTHER".into(),
            secret_access_key: LOCAL_SECRET_ACCESS_KEY.into(),
            user: "other".into(),
        }];
        assert_eq!(
            verify(&good(now), &keys, REGION, now).map(|_| ()),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn an_old_or_future_date_fails_beyond_five_minutes() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        let within = good(now - Duration::from_secs(4 * 60));
        assert!(check(&within, now).is_ok());
        let old = good(now - Duration::from_secs(6 * 60));
        assert_eq!(
            check(&old, now),
            Err(Refusal::Time(
                "Signature expired: 20251231T235400Z is now earlier than 20251231T235500Z (20260101T000000Z - 5 min.)"
                    .into()
            ))
        );
        let future = good(now + Duration::from_secs(6 * 60));
        assert!(
            matches!(check(&future, now), Err(Refusal::Time(m)) if m.starts_with("Signature not yet current: 20260101T000600Z"))
        );
    }

    #[test]
    fn missing_and_malformed_authorization_is_refused() {
        let now = SystemTime::now();
        let mut unsigned = good(now);
        unsigned.headers.remove(header::AUTHORIZATION);
        assert_eq!(check(&unsigned, now), Err(Refusal::Missing));
        let mut partial = good(now);
        partial.headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=coldstart-local-key/20260101/us-east-1/lambda/aws4_request"),
        );
        assert!(
            matches!(check(&partial, now), Err(Refusal::Incomplete(m)) if m.contains("'Signature'") && m.contains("'SignedHeaders'"))
        );
    }

    #[test]
    fn the_scope_must_name_this_region_and_lambda() {
        let now = SystemTime::now();
        let c = good(now);
        let keys = keys();
        assert!(matches!(
            verify(&c, &keys, "eu-west-1", now),
            Err(Refusal::Scope(m)) if m.contains("valid region")
        ));
    }

    #[test]
    fn a_presigned_url_verifies_until_it_expires() {
        let now = SystemTime::now();
        let url = presigned_url("/report?month=5", Duration::from_secs(600), now);
        assert!(
            url.raw_query.contains("X-Amz-Signature="),
            "{}",
            url.raw_query
        );
        assert!(!url.headers.contains_key(header::AUTHORIZATION));
        assert_eq!(check(&url, now), Ok(LOCAL_ACCESS_KEY_ID.to_owned()));
        // Still good after the clock skew, as long as X-Amz-Expires allows.
        let later = now + Duration::from_secs(9 * 60);
        assert_eq!(check(&url, later), Ok(LOCAL_ACCESS_KEY_ID.to_owned()));
        assert!(matches!(
            check(&url, now + Duration::from_secs(11 * 60)),
            Err(Refusal::Time(m)) if m.starts_with("Signature expired") && m.ends_with("- 10 min.)")
        ));
        let mut changed = url;
        changed.raw_query = changed.raw_query.replace("month=5", "month=6");
        assert_eq!(check(&changed, now), Err(Refusal::Mismatch));
    }

    #[test]
    fn refusals_answer_403_with_lambdas_bodies() {
        let r = Refusal::Missing.response();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["x-amzn-errortype"], "AccessDeniedException");
        let r = Refusal::Mismatch.response();
        assert_eq!(r.headers()["x-amzn-errortype"], "InvalidSignatureException");
    }

    #[test]
    fn the_authorizer_names_the_key_and_the_account() {
        let a = LocalKey::coldstart().authorizer("123456789012");
        let v = serde_json::to_value(&a).unwrap_or(Value::Null);
        let iam = &v["iam"];
        assert_eq!(iam["accessKey"], LOCAL_ACCESS_KEY_ID);
        assert_eq!(iam["accountId"], "123456789012");
        assert_eq!(
            iam["userArn"],
            "arn:aws:iam::123456789012:user/coldstart-local"
        );
        assert_eq!(iam["callerId"], iam["userId"]);
        assert!(
            iam["userId"]
                .as_str()
                .is_some_and(|u| u.starts_with("AIDA"))
        );
        assert!(iam["cognitoIdentity"].is_null() && iam.get("cognitoIdentity").is_some());
        assert!(iam.get("principalOrgId").is_some());
    }
}

//! Authorizers of a template's APIs, as [`Authorizer`]s: SAM's `Auth` on `AWS::Serverless::Api`
//! (Lambda `TOKEN`/`REQUEST` authorizers, `DefaultAuthorizer`) and `AWS::Serverless::HttpApi`
//! (Lambda authorizers with payload 1.0/2.0, JWT authorizers), and
//! `AWS::ApiGatewayV2::Authorizer` resources with their routes' `AuthorizationType`.
//!
//! What is not checked locally (Cognito user pools on REST APIs, `AWS_IAM`) is said once as a
//! notice and leaves the route open, as `sam local` does.

use std::collections::HashSet;
use std::time::Duration;

use coldstart_emulator::auth::{
    Authorizer, AuthorizerEvent, AuthorizerKind, Authorizers, IdentitySource, JwtConfig, MAX_TTL,
};
use serde_json::{Map, Value};

use crate::error::{Error, Location};
use crate::template::Context;
use crate::template::intrinsics::{At, describe, text};
use crate::template::resources::{Resource, function_of};

/// REST authorizers cache for 5 minutes unless told otherwise.
const REST_TTL: Duration = Duration::from_secs(300);

/// The authorizers of one SAM API and its default.
#[derive(Debug, Default)]
pub(crate) struct ApiAuth {
    pub(crate) authorizers: Vec<Authorizer>,
    /// `DefaultAuthorizer`: routes without their own `Auth.Authorizer` use it.
    pub(crate) default: Option<String>,
    /// Authorizers that are read but not checked locally (their routes stay open).
    pub(crate) unchecked: HashSet<String>,
}

impl ApiAuth {
    /// The authorization of a route whose event names `named` (`None`: the default).
    pub(crate) fn route<'a>(&'a self, named: Option<&'a str>) -> Option<&'a str> {
        let name = named.or(self.default.as_deref())?;
        if name == "NONE" || self.unchecked.contains(name) {
            return None;
        }
        Some(name)
    }

    /// Whether `name` is something a route may name.
    pub(crate) fn knows(&self, name: &str) -> bool {
        name == "NONE"
            || name == "AWS_IAM"
            || self.unchecked.contains(name)
            || self.authorizers.iter().any(|a| a.name == name)
    }
}

/// Reads SAM's `Auth` of `r` (an `AWS::Serverless::Api` when `rest`, else an `HttpApi`).
pub(crate) fn sam(
    cx: &Context<'_>,
    r: &Resource,
    rest: bool,
    notices: &mut Vec<String>,
) -> Result<ApiAuth, Error> {
    let mut out = ApiAuth::default();
    // Resolved key by key: an authorizer naming a user pool of the template (whose `Arn` only
    // exists once deployed) is left unresolved.
    let Some(raw) = r.properties.get("Auth") else {
        return Ok(out);
    };
    let Value::Object(raw) = raw else {
        return Err(cx.error(r, "Auth", format!("must be a map, not {}", describe(raw))));
    };
    let resources = At::root("Resources");
    let resource = resources.key(&r.id);
    let properties = resource.key("Properties");
    let auth_at = properties.key("Auth");
    let mut auth = Map::new();
    for (key, value) in raw {
        if key == "Authorizers" {
            continue;
        }
        if let Some(v) = cx.resolver.resolve(value, &auth_at.key(key))? {
            auth.insert(key.clone(), v);
        }
    }
    let reader = Reader { cx, r };
    if let Some(list) = raw.get("Authorizers") {
        let Value::Object(list) = list else {
            return Err(cx.error(r, "Auth.Authorizers", "must be a map of authorizers"));
        };
        let list_at = auth_at.key("Authorizers");
        for (name, a) in list {
            let at = format!("Auth.Authorizers.{name}");
            if a.get("UserPoolArn")
                .is_some_and(|p| names_a_resource(cx, p))
            {
                notices.push(format!(
                    "{}: authorizer {name} uses a user pool of this template, which exists only once deployed; its routes are open",
                    r.id
                ));
                out.unchecked.insert(name.clone());
                continue;
            }
            let Some(Value::Object(a)) = cx.resolver.resolve(a, &list_at.key(name))? else {
                return Err(cx.error(r, &at, "must be a map"));
            };
            let read = if rest {
                reader.rest(name, &a, &at)?
            } else {
                reader.http(name, &a, &at)?
            };
            out.authorizers.extend(read);
        }
    }
    if let Some(default) = auth.get("DefaultAuthorizer") {
        let name = text(default)
            .ok_or_else(|| cx.error(r, "Auth.DefaultAuthorizer", "must be a string"))?;
        if !out.knows(&name) {
            return Err(cx.error(
                r,
                "Auth.DefaultAuthorizer",
                format!("{name:?} is not one of Auth.Authorizers"),
            ));
        }
        out.default = Some(name);
    }
    if let Err(why) = Authorizers::new(out.authorizers.clone()) {
        return Err(cx.error(r, "Auth.Authorizers", why));
    }
    Ok(out)
}

/// Reads an `AWS::ApiGatewayV2::Authorizer`; `websocket` for a WebSocket API's.
pub(crate) fn v2(cx: &Context<'_>, r: &Resource, websocket: bool) -> Result<Authorizer, Error> {
    let reader = Reader { cx, r };
    let kind = cx.string(r, "AuthorizerType")?.unwrap_or_default();
    let sources = match cx.property(r, "IdentitySource")? {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => reader.texts(&v, "IdentitySource")?,
    };
    let identity_sources = sources
        .iter()
        .map(|s| IdentitySource::parse(s).map_err(|why| cx.error(r, "IdentitySource", why)))
        .collect::<Result<Vec<_>, _>>()?;
    let name = cx.string(r, "Name")?.unwrap_or_else(|| r.id.clone());
    let authorizer = match kind.as_str() {
        "JWT" if !websocket => {
            let Some(Value::Object(jwt)) = cx.property(r, "JwtConfiguration")? else {
                return Err(cx.error(
                    r,
                    "JwtConfiguration",
                    "a JWT authorizer needs a JwtConfiguration with Issuer and Audience",
                ));
            };
            Authorizer {
                name,
                kind: AuthorizerKind::Jwt(reader.jwt(&jwt, "JwtConfiguration")?),
                identity_sources: if identity_sources.is_empty() {
                    vec![IdentitySource::Header("Authorization".into())]
                } else {
                    identity_sources
                },
                ttl: Duration::ZERO,
            }
        }
        "REQUEST" => {
            let uri = cx.string(r, "AuthorizerUri")?.unwrap_or_default();
            let function = reader.function(&uri, "AuthorizerUri")?;
            let event = if websocket {
                AuthorizerEvent::Request
            } else {
                let simple = reader.flag(
                    cx.property(r, "EnableSimpleResponses")?,
                    "EnableSimpleResponses",
                )?;
                reader.payload(
                    cx.property(r, "AuthorizerPayloadFormatVersion")?,
                    simple,
                    "AuthorizerPayloadFormatVersion",
                )?
            };
            let ttl = reader.seconds(
                cx.property(r, "AuthorizerResultTtlInSeconds")?,
                Duration::ZERO,
                "AuthorizerResultTtlInSeconds",
            )?;
            Authorizer {
                name,
                kind: AuthorizerKind::Lambda {
                    function,
                    event,
                    validation: None,
                },
                identity_sources,
                ttl,
            }
        }
        other => {
            return Err(cx.error(
                r,
                "AuthorizerType",
                if websocket {
                    format!("a WebSocket API's authorizer must be REQUEST, not {other:?}")
                } else {
                    format!("must be REQUEST or JWT, not {other:?}")
                },
            ));
        }
    };
    if let Err(why) = Authorizers::new(vec![authorizer.clone()]) {
        return Err(cx.error(r, "", why));
    }
    Ok(authorizer)
}

/// Whether `value` uses one of the template's resources (`GetAtt`, `Ref`, or `${Id}` /
/// `${Id.Attr}` in a `Sub`): such a value only means something once deployed.
pub(crate) fn names_a_resource(cx: &Context<'_>, value: &Value) -> bool {
    let is_resource = |id: &str| cx.resolver.resources.contains_key(id);
    match value {
        Value::Object(map) => {
            if map.contains_key("Fn::GetAtt") {
                return true;
            }
            if map
                .get("Ref")
                .and_then(Value::as_str)
                .is_some_and(is_resource)
            {
                return true;
            }
            let sub = match map.get("Fn::Sub") {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(Value::Array(items)) => items.first().and_then(Value::as_str),
                _ => None,
            };
            if let Some(text) = sub {
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    let after = &rest[start + 2..];
                    let end = after.find('}').unwrap_or(after.len());
                    let name = after[..end].split('.').next().unwrap_or_default();
                    if is_resource(name) {
                        return true;
                    }
                    rest = &after[end..];
                }
            }
            map.values().any(|v| names_a_resource(cx, v))
        }
        Value::Array(items) => items.iter().any(|v| names_a_resource(cx, v)),
        _ => false,
    }
}

/// An error at a path under a function's properties (its events live there).
pub(crate) fn error_at(cx: &Context<'_>, function: &str, path: &str, message: String) -> Error {
    Error::invalid(
        cx.resolver.file,
        Location::Path(format!("Resources.{function}.Properties.{path}")),
        message,
    )
}

struct Reader<'a, 'c> {
    cx: &'a Context<'c>,
    r: &'a Resource,
}

impl Reader<'_, '_> {
    fn error(&self, at: &str, message: impl Into<String>) -> Error {
        self.cx.error(self.r, at, message)
    }

    /// A REST API authorizer; `None` for a Cognito one.
    fn rest(
        &self,
        name: &str,
        a: &Map<String, Value>,
        at: &str,
    ) -> Result<Option<Authorizer>, Error> {
        if let Some(pool) = a.get("UserPoolArn") {
            return self.cognito(name, pool, a, at);
        }
        let function = self.function_arn(a, at)?;
        let payload = a.get("FunctionPayloadType").and_then(text);
        let identity = self.identity(a, at)?;
        let ttl = self.seconds(
            identity.get("ReauthorizeEvery").cloned(),
            REST_TTL,
            &format!("{at}.Identity.ReauthorizeEvery"),
        )?;
        let (event, sources, validation) = match payload.as_deref() {
            None | Some("TOKEN") => {
                let header = identity
                    .get("Header")
                    .and_then(text)
                    .unwrap_or_else(|| "Authorization".into());
                let validation = identity.get("ValidationExpression").and_then(text);
                (
                    AuthorizerEvent::Token,
                    vec![IdentitySource::Header(header)],
                    validation,
                )
            }
            Some("REQUEST") => {
                let sources = self.sources(&identity, &format!("{at}.Identity"), true)?;
                // Without caching a REQUEST authorizer runs whatever the request carries.
                let sources = if ttl.is_zero() { Vec::new() } else { sources };
                (AuthorizerEvent::Request, sources, None)
            }
            Some(other) => {
                return Err(self.error(
                    &format!("{at}.FunctionPayloadType"),
                    format!("must be TOKEN or REQUEST, not {other:?}"),
                ));
            }
        };
        Ok(Some(Authorizer {
            name: name.to_owned(),
            kind: AuthorizerKind::Lambda {
                function,
                event,
                validation,
            },
            identity_sources: sources,
            ttl,
        }))
    }

    /// A REST API's Cognito user pool authorizer: the token (the `Identity.Header`, by default
    /// `Authorization`) is checked as a JWT of the pool's issuer,
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`, whose keys come from AWS. A pool
    /// of the template itself (`!GetAtt Pool.Arn`) exists only once deployed: `None`, not
    /// checked.
    fn cognito(
        &self,
        name: &str,
        pool: &Value,
        a: &Map<String, Value>,
        at: &str,
    ) -> Result<Option<Authorizer>, Error> {
        let arn = match pool {
            Value::Array(items) => items.first().and_then(text),
            other => text(other),
        }
        .unwrap_or_default();
        let parts: Vec<&str> = arn.split(':').collect();
        let (Some(region), Some(pool_id)) = (
            parts.get(3).filter(|r| !r.is_empty()),
            arn.rsplit_once("userpool/").map(|(_, id)| id),
        ) else {
            return Err(self.error(
                &format!("{at}.UserPoolArn"),
                format!("{arn:?} is not a user pool ARN (arn:aws:cognito-idp:<region>:<account>:userpool/<id>)"),
            ));
        };
        let identity = self.identity(a, at)?;
        let header = identity
            .get("Header")
            .and_then(text)
            .unwrap_or_else(|| "Authorization".into());
        Ok(Some(Authorizer {
            name: name.to_owned(),
            kind: AuthorizerKind::Jwt(JwtConfig {
                issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}"),
                audience: Vec::new(),
                jwks_url: None,
            }),
            identity_sources: vec![IdentitySource::Header(header)],
            ttl: Duration::ZERO,
        }))
    }

    /// An HTTP API authorizer: Lambda or JWT.
    fn http(
        &self,
        name: &str,
        a: &Map<String, Value>,
        at: &str,
    ) -> Result<Option<Authorizer>, Error> {
        if let Some(jwt) = a.get("JwtConfiguration") {
            let Value::Object(jwt) = jwt else {
                return Err(self.error(&format!("{at}.JwtConfiguration"), "must be a map"));
            };
            let source = a
                .get("IdentitySource")
                .and_then(text)
                .unwrap_or_else(|| "$request.header.Authorization".into());
            let source = IdentitySource::parse(&source)
                .map_err(|why| self.error(&format!("{at}.IdentitySource"), why))?;
            return Ok(Some(Authorizer {
                name: name.to_owned(),
                kind: AuthorizerKind::Jwt(self.jwt(jwt, &format!("{at}.JwtConfiguration"))?),
                identity_sources: vec![source],
                ttl: Duration::ZERO,
            }));
        }
        let function = self.function_arn(a, at)?;
        let simple = self.flag(
            a.get("EnableSimpleResponses").cloned(),
            &format!("{at}.EnableSimpleResponses"),
        )?;
        let event = self.payload(
            a.get("AuthorizerPayloadFormatVersion").cloned(),
            simple,
            &format!("{at}.AuthorizerPayloadFormatVersion"),
        )?;
        let identity = self.identity(a, at)?;
        let ttl = self.seconds(
            identity.get("ReauthorizeEvery").cloned(),
            Duration::ZERO,
            &format!("{at}.Identity.ReauthorizeEvery"),
        )?;
        let sources = self.sources(&identity, &format!("{at}.Identity"), false)?;
        Ok(Some(Authorizer {
            name: name.to_owned(),
            kind: AuthorizerKind::Lambda {
                function,
                event,
                validation: None,
            },
            identity_sources: sources,
            ttl,
        }))
    }

    fn function_arn(&self, a: &Map<String, Value>, at: &str) -> Result<String, Error> {
        let arn = a.get("FunctionArn").and_then(text).ok_or_else(|| {
            self.error(
                at,
                "an authorizer needs a FunctionArn (or JwtConfiguration on an HttpApi, UserPoolArn on an Api)",
            )
        })?;
        self.function(&arn, &format!("{at}.FunctionArn"))
    }

    /// The function of the template an ARN or integration URI names.
    fn function(&self, arn: &str, at: &str) -> Result<String, Error> {
        let function = function_of(arn)
            .ok_or_else(|| self.error(at, format!("{arn:?} names no Lambda function")))?;
        let known = self.cx.resolver.resources.get(function).is_some_and(|f| {
            f.kind == "AWS::Serverless::Function" || f.kind == "AWS::Lambda::Function"
        });
        if !known {
            return Err(self.error(at, format!("{function} is not a function of the template")));
        }
        Ok(function.to_owned())
    }

    fn identity(&self, a: &Map<String, Value>, at: &str) -> Result<Map<String, Value>, Error> {
        match a.get("Identity") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(self.error(
                &format!("{at}.Identity"),
                format!("must be a map, not {}", describe(other)),
            )),
        }
    }

    /// `Headers`, `QueryStrings`, `StageVariables`, `Context` of an `Identity`.
    fn sources(
        &self,
        identity: &Map<String, Value>,
        at: &str,
        rest: bool,
    ) -> Result<Vec<IdentitySource>, Error> {
        let mut out = Vec::new();
        for key in ["Headers", "QueryStrings", "StageVariables", "Context"] {
            let Some(v) = identity.get(key) else { continue };
            for name in self.texts(v, &format!("{at}.{key}"))? {
                out.push(match key {
                    "Headers" => IdentitySource::Header(name),
                    "QueryStrings" => IdentitySource::Query(name),
                    "StageVariables" => IdentitySource::StageVariable(name),
                    _ => IdentitySource::Context(name),
                });
            }
        }
        if !rest && out.is_empty() {
            // SAM's default for HTTP API Lambda authorizers.
            out.push(IdentitySource::Header("Authorization".into()));
        }
        Ok(out)
    }

    fn jwt(&self, jwt: &Map<String, Value>, at: &str) -> Result<JwtConfig, Error> {
        let get = |key: &str| jwt.get(key).or_else(|| jwt.get(&key.to_ascii_lowercase()));
        let issuer = get("Issuer").and_then(text).ok_or_else(|| {
            self.error(&format!("{at}.Issuer"), "a JWT authorizer needs an Issuer")
        })?;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(self.error(
                &format!("{at}.Issuer"),
                format!("{issuer:?} must be an https:// URL"),
            ));
        }
        let audience = match get("Audience") {
            Some(v) => self.texts(v, &format!("{at}.Audience"))?,
            None => Vec::new(),
        };
        if audience.is_empty() {
            return Err(self.error(
                &format!("{at}.Audience"),
                "a JWT authorizer needs an Audience",
            ));
        }
        Ok(JwtConfig {
            issuer,
            audience,
            jwks_url: None,
        })
    }

    fn payload(&self, v: Option<Value>, simple: bool, at: &str) -> Result<AuthorizerEvent, Error> {
        let version = v.as_ref().and_then(text);
        match version.as_deref() {
            Some("2.0") | Some("2") => Ok(AuthorizerEvent::HttpV2 {
                simple_responses: simple,
            }),
            Some("1.0") | Some("1") if !simple => Ok(AuthorizerEvent::HttpV1),
            Some("1.0") | Some("1") => Err(self.error(
                at,
                "EnableSimpleResponses needs AuthorizerPayloadFormatVersion 2.0",
            )),
            None => Err(self.error(at, "an HTTP API Lambda authorizer needs \"1.0\" or \"2.0\"")),
            Some(other) => {
                Err(self.error(at, format!("must be \"1.0\" or \"2.0\", not {other:?}")))
            }
        }
    }

    fn flag(&self, v: Option<Value>, at: &str) -> Result<bool, Error> {
        match v {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(other) => {
                Err(self.error(at, format!("must be a boolean, not {}", describe(&other))))
            }
        }
    }

    fn seconds(&self, v: Option<Value>, default: Duration, at: &str) -> Result<Duration, Error> {
        let Some(v) = v else { return Ok(default) };
        let n = text(&v)
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| {
                self.error(
                    at,
                    format!("must be a number of seconds, not {}", describe(&v)),
                )
            })?;
        let ttl = Duration::from_secs(n);
        if ttl > MAX_TTL {
            return Err(self.error(at, format!("must be at most 3600, not {n}")));
        }
        Ok(ttl)
    }

    fn texts(&self, v: &Value, at: &str) -> Result<Vec<String>, Error> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| text(i).ok_or_else(|| self.error(at, "must be a list of strings")))
                .collect(),
            other => text(other)
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .ok_or_else(|| {
                    self.error(
                        at,
                        format!("must be a list of strings, not {}", describe(other)),
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use coldstart_emulator::auth::RouteAuth;

    use crate::model::Stack;
    use crate::template::{TemplateOptions, parse};

    use super::*;

    const HEAD: &str = "Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: provided.al2023, Handler: bootstrap, CodeUri: fn/}
Resources:
  Auth:
    Type: AWS::Serverless::Function
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /x, Method: get}
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Http, Path: /open, Method: get, Auth: {Authorizer: NONE}}
        Rest:
          Type: Api
          Properties: {RestApiId: !Ref Rest, Path: /r, Method: get, Auth: {Authorizer: Req}}
";

    fn read(apis: &str) -> Result<Stack, String> {
        let text = format!("{HEAD}{apis}");
        parse(
            Path::new("template.yaml"),
            &text,
            Path::new("/app"),
            &TemplateOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    const GOOD: &str = "  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Lambda
        Authorizers:
          Lambda:
            FunctionArn: !GetAtt Auth.Arn
            AuthorizerPayloadFormatVersion: 2.0
            EnableSimpleResponses: true
            Identity: {Headers: [X-Token], ReauthorizeEvery: 60}
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        Authorizers:
          Req:
            FunctionArn: !GetAtt Auth.Arn
            FunctionPayloadType: REQUEST
            Identity: {Headers: [X-Token], QueryStrings: [q]}
";

    #[test]
    fn sam_auth_gives_authorizers_defaults_and_open_routes() {
        let stack = read(GOOD).unwrap_or_else(|e| panic!("{e}"));
        let http = stack.http_apis.iter().find(|a| a.name == "Http");
        let http = http.unwrap_or_else(|| panic!("no Http"));
        assert_eq!(
            http.authorizers,
            vec![Authorizer {
                name: "Lambda".into(),
                kind: AuthorizerKind::Lambda {
                    function: "Auth".into(),
                    event: AuthorizerEvent::HttpV2 {
                        simple_responses: true
                    },
                    validation: None,
                },
                identity_sources: vec![IdentitySource::Header("X-Token".into())],
                ttl: Duration::from_secs(60),
            }]
        );
        // The default covers GET /x; NONE leaves /open open.
        assert_eq!(
            http.route_auth,
            vec![(
                "GET /x".to_owned(),
                RouteAuth {
                    authorizer: "Lambda".into(),
                    scopes: vec![]
                }
            )]
        );
        let rest = stack.http_apis.iter().find(|a| a.name == "Rest");
        let rest = rest.unwrap_or_else(|| panic!("no Rest"));
        assert_eq!(rest.authorizers[0].ttl, REST_TTL);
        assert_eq!(rest.authorizers[0].identity_sources.len(), 2);
        assert_eq!(rest.route_auth[0].1.authorizer, "Req");
    }

    #[test]
    fn a_cognito_authorizer_checks_the_pools_tokens_unless_the_pool_is_the_templates() {
        let with_pool = |pool: &str| {
            GOOD.replace(
                "          Req:\n",
                &format!("          Pool:\n            UserPoolArn: {pool}\n          Req:\n"),
            )
        };
        let stack = read(&with_pool(
            "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let rest = stack.http_apis.iter().find(|a| a.name == "Rest");
        let pool = rest.and_then(|r| r.authorizers.iter().find(|a| a.name == "Pool"));
        assert_eq!(
            pool.map(|p| &p.kind),
            Some(&AuthorizerKind::Jwt(JwtConfig {
                issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC".into(),
                audience: vec![],
                jwks_url: None,
            }))
        );
        let local = read(&format!(
            "{}  UserPool:\n    Type: AWS::Cognito::UserPool\n",
            with_pool("!GetAtt UserPool.Arn")
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let rest = local.http_apis.iter().find(|a| a.name == "Rest");
        assert!(rest.is_some_and(|r| r.authorizers.iter().all(|a| a.name != "Pool")));
        assert!(
            local.notices.iter().any(|n| n.contains("Pool")),
            "{:?}",
            local.notices
        );
        let bad = read(&with_pool("not-an-arn")).err().unwrap_or_default();
        assert!(bad.contains("Auth.Authorizers.Pool.UserPoolArn"), "{bad}");
    }

    #[test]
    fn mistakes_name_the_file_the_resource_and_the_property() {
        for (from, to, at) in [
            (
                "DefaultAuthorizer: Lambda",
                "DefaultAuthorizer: Lamda",
                "Resources.Http.Properties.Auth.DefaultAuthorizer",
            ),
            (
                "AuthorizerPayloadFormatVersion: 2.0",
                "AuthorizerPayloadFormatVersion: 3.0",
                "Resources.Http.Properties.Auth.Authorizers.Lambda.AuthorizerPayloadFormatVersion",
            ),
            (
                "FunctionArn: !GetAtt Auth.Arn\n            AuthorizerPayloadFormatVersion",
                "FunctionArn: arn:aws:lambda:us-east-1:1:function:Nope\n            AuthorizerPayloadFormatVersion",
                "Resources.Http.Properties.Auth.Authorizers.Lambda.FunctionArn",
            ),
            (
                "ReauthorizeEvery: 60",
                "ReauthorizeEvery: 7200",
                "Resources.Http.Properties.Auth.Authorizers.Lambda.Identity.ReauthorizeEvery",
            ),
            (
                "Path: /x, Method: get}",
                "Path: /x, Method: get, TimeoutInMillis: 40000}",
                "Resources.Web.Properties.Events.Get.Properties.TimeoutInMillis",
            ),
            (
                "FunctionPayloadType: REQUEST",
                "FunctionPayloadType: COOKIE",
                "Resources.Rest.Properties.Auth.Authorizers.Req.FunctionPayloadType",
            ),
            (
                "          Req:",
                "          Other:",
                "Resources.Web.Properties.Events.Rest.Properties.Auth.Authorizer",
            ),
        ] {
            assert!(GOOD.contains(from) || HEAD.contains(from), "{from}");
            let text = if HEAD.contains(from) {
                format!("{}{GOOD}", HEAD.replace(from, to))
            } else {
                format!("{HEAD}{}", GOOD.replace(from, to))
            };
            let e = parse(
                Path::new("template.yaml"),
                &text,
                Path::new("/app"),
                &TemplateOptions::default(),
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(
                e.starts_with("template.yaml") && e.contains(at),
                "{to}: {e}"
            );
        }
    }
}

//! An API's CORS, stage variables and throttling, read from the properties that carry them:
//! SAM's `AWS::Serverless::HttpApi` (`CorsConfiguration`, `StageVariables`,
//! `DefaultRouteSettings`, `RouteSettings`), SAM's `AWS::Serverless::Api` (`Cors`, `Variables`,
//! `MethodSettings`), and an `AWS::ApiGatewayV2::Api`'s `CorsConfiguration` with its stage's
//! `StageVariables`, `DefaultRouteSettings` and `RouteSettings`.
//!
//! Separate from `apis` so that the route reading stays short; the checks are SAM's and API
//! Gateway's (a credentialed wildcard origin, SAM's quoted REST values, limits' types).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use coldstart_emulator::{ApiCors, HttpCors, RateLimit, RestCors, RouteKey, Throttle};

use crate::error::Error;
use crate::template::Context;
use crate::template::intrinsics::{describe, text};
use crate::template::resources::Resource;

/// API Gateway's account-level limits: what a route gets for the half of a setting left out.
const ACCOUNT_BURST: u32 = 5000;
const ACCOUNT_RATE: f64 = 10000.0;

/// What an API's properties and stage say besides its routes.
#[derive(Debug, Default)]
pub(crate) struct ApiSettings {
    pub(crate) cors: Option<ApiCors>,
    pub(crate) stage_variables: BTreeMap<String, String>,
    pub(crate) throttle: Throttle,
}

/// A SAM `AWS::Serverless::HttpApi`'s settings.
pub(crate) fn sam_http(cx: &Context<'_>, r: &Resource) -> Result<ApiSettings, Error> {
    let cors = match cx.property(r, "CorsConfiguration")? {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        // SAM: `true` allows every origin and nothing else.
        Some(Value::Bool(true)) => Some(HttpCors {
            allow_origins: vec!["*".into()],
            ..HttpCors::default()
        }),
        Some(Value::String(origin)) => Some(HttpCors {
            allow_origins: vec![origin],
            ..HttpCors::default()
        }),
        Some(Value::Object(map)) => Some(http_cors(cx, r, "CorsConfiguration", &map)?),
        Some(other) => {
            return Err(cx.error(
                r,
                "CorsConfiguration",
                format!(
                    "must be true, an origin or a map of CORS settings, not {}",
                    describe(&other)
                ),
            ));
        }
    };
    Ok(ApiSettings {
        cors: cors.map(ApiCors::Http),
        stage_variables: variables(cx, r, "StageVariables")?,
        throttle: route_settings(cx, r)?,
    })
}

/// A SAM `AWS::Serverless::Api`'s settings.
pub(crate) fn sam_rest(cx: &Context<'_>, r: &Resource) -> Result<ApiSettings, Error> {
    let cors = match cx.property(r, "Cors")? {
        None | Some(Value::Null) => None,
        Some(Value::String(origin)) => Some(RestCors {
            allow_origin: quoted(cx, r, "Cors", &origin)?,
            ..RestCors::default()
        }),
        Some(Value::Object(map)) => Some(rest_cors(cx, r, &map)?),
        Some(other) => {
            return Err(cx.error(
                r,
                "Cors",
                format!(
                    "must be an origin (\"'https://example.com'\") or a map, not {}",
                    describe(&other)
                ),
            ));
        }
    };
    Ok(ApiSettings {
        cors: cors.map(ApiCors::Rest),
        stage_variables: variables(cx, r, "Variables")?,
        throttle: method_settings(cx, r)?,
    })
}

/// An `AWS::ApiGatewayV2::Api`'s `CorsConfiguration` and its stage's settings; `parts` are the
/// API's routes, integrations and stages. The stage is the one `apis` serves: the first by
/// logical id.
pub(crate) fn v2_http(
    cx: &Context<'_>,
    api: &Resource,
    parts: &[&Resource],
) -> Result<ApiSettings, Error> {
    let cors = match cx.property(api, "CorsConfiguration")? {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(ApiCors::Http(http_cors(
            cx,
            api,
            "CorsConfiguration",
            &map,
        )?)),
        Some(other) => {
            return Err(cx.error(
                api,
                "CorsConfiguration",
                format!("must be a map of CORS settings, not {}", describe(&other)),
            ));
        }
    };
    let stage = parts
        .iter()
        .filter(|p| p.kind == "AWS::ApiGatewayV2::Stage")
        .min_by(|a, b| a.id.cmp(&b.id));
    let mut settings = ApiSettings {
        cors,
        ..ApiSettings::default()
    };
    if let Some(stage) = stage {
        settings.stage_variables = variables(cx, stage, "StageVariables")?;
        settings.throttle = route_settings(cx, stage)?;
    }
    Ok(settings)
}

const HTTP_CORS_KEYS: [&str; 6] = [
    "AllowOrigins",
    "AllowMethods",
    "AllowHeaders",
    "ExposeHeaders",
    "AllowCredentials",
    "MaxAge",
];

fn http_cors(
    cx: &Context<'_>,
    r: &Resource,
    prop: &str,
    map: &Map<String, Value>,
) -> Result<HttpCors, Error> {
    if let Some(unknown) = map.keys().find(|k| !HTTP_CORS_KEYS.contains(&k.as_str())) {
        return Err(cx.error(
            r,
            &format!("{prop}.{unknown}"),
            format!(
                "not a CORS setting; there are {}",
                HTTP_CORS_KEYS.join(", ")
            ),
        ));
    }
    let list = |key: &str| -> Result<Vec<String>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    text(item).ok_or_else(|| {
                        cx.error(
                            r,
                            &format!("{prop}.{key}"),
                            format!("must be a list of strings, not one with {}", describe(item)),
                        )
                    })
                })
                .collect(),
            Some(other) => Err(cx.error(
                r,
                &format!("{prop}.{key}"),
                format!("must be a list of strings, not {}", describe(other)),
            )),
        }
    };
    let cors = HttpCors {
        allow_origins: list("AllowOrigins")?,
        allow_methods: list("AllowMethods")?,
        allow_headers: list("AllowHeaders")?,
        expose_headers: list("ExposeHeaders")?,
        allow_credentials: boolean(cx, r, &format!("{prop}.AllowCredentials"), map)?,
        max_age: max_age(cx, r, &format!("{prop}.MaxAge"), map.get("MaxAge"))?,
    };
    if cors.allow_credentials
        && (cors.allow_origins.is_empty() || cors.allow_origins.contains(&"*".to_owned()))
    {
        return Err(cx.error(
            r,
            &format!("{prop}.AllowCredentials"),
            "can not be true when AllowOrigins is '*' or not set",
        ));
    }
    Ok(cors)
}

const REST_CORS_KEYS: [&str; 5] = [
    "AllowOrigin",
    "AllowMethods",
    "AllowHeaders",
    "MaxAge",
    "AllowCredentials",
];

fn rest_cors(cx: &Context<'_>, r: &Resource, map: &Map<String, Value>) -> Result<RestCors, Error> {
    if let Some(unknown) = map.keys().find(|k| !REST_CORS_KEYS.contains(&k.as_str())) {
        return Err(cx.error(
            r,
            &format!("Cors.{unknown}"),
            format!(
                "not a CORS setting; there are {}",
                REST_CORS_KEYS.join(", ")
            ),
        ));
    }
    let string = |key: &str| -> Result<Option<String>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => quoted(cx, r, &format!("Cors.{key}"), s).map(Some),
            Some(other) => Err(cx.error(
                r,
                &format!("Cors.{key}"),
                format!(
                    "must be a quoted string (\"'...'\"), not {}",
                    describe(other)
                ),
            )),
        }
    };
    let Some(allow_origin) = string("AllowOrigin")? else {
        return Err(cx.error(r, "Cors.AllowOrigin", "is required"));
    };
    let max_age = match map.get("MaxAge") {
        Some(Value::String(s)) => {
            let inner = quoted(cx, r, "Cors.MaxAge", s)?;
            max_age(cx, r, "Cors.MaxAge", Some(&Value::String(inner)))?
        }
        other => max_age(cx, r, "Cors.MaxAge", other)?,
    };
    let cors = RestCors {
        allow_origin,
        allow_headers: string("AllowHeaders")?,
        allow_methods: string("AllowMethods")?,
        max_age,
        allow_credentials: boolean(cx, r, "Cors.AllowCredentials", map)?,
    };
    if cors.allow_credentials && cors.allow_origin == "*" {
        return Err(cx.error(
            r,
            "Cors.AllowCredentials",
            "can not be true when AllowOrigin is \"'*'\"",
        ));
    }
    Ok(cors)
}

/// SAM's REST CORS values are API Gateway string expressions: `'value'`, quotes included.
fn quoted(cx: &Context<'_>, r: &Resource, at: &str, value: &str) -> Result<String, Error> {
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .map(str::to_owned)
        .ok_or_else(|| {
            cx.error(
                r,
                at,
                format!("SAM wants the value in single quotes (\"'{value}'\"), not {value:?}"),
            )
        })
}

fn boolean(
    cx: &Context<'_>,
    r: &Resource,
    at: &str,
    map: &Map<String, Value>,
) -> Result<bool, Error> {
    let key = at.rsplit('.').next().unwrap_or(at);
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(cx.error(
            r,
            at,
            format!("must be true or false, not {}", describe(other)),
        )),
    }
}

/// `MaxAge`: whole seconds, 0 to 86400 as API Gateway takes them (-1 turns caching off and is
/// sent as it is by browsers' rules, so it is left out here).
fn max_age(
    cx: &Context<'_>,
    r: &Resource,
    at: &str,
    value: Option<&Value>,
) -> Result<Option<u32>, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let seconds = text(value).and_then(|t| t.parse::<i64>().ok());
    match seconds {
        Some(-1) => Ok(None),
        Some(s) if (0..=86400).contains(&s) => Ok(u32::try_from(s).ok()),
        _ => Err(cx.error(
            r,
            at,
            format!("must be whole seconds from -1 to 86400, not {value}"),
        )),
    }
}

/// A map of stage variables: names of letters, digits and `_`, values as text.
fn variables(
    cx: &Context<'_>,
    r: &Resource,
    prop: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let map = match cx.property(r, prop)? {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(cx.error(
                r,
                prop,
                format!("must be a map of names to values, not {}", describe(&other)),
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (name, value) in map {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(cx.error(
                r,
                &format!("{prop}.{name}"),
                "a stage variable's name is letters, digits and '_'",
            ));
        }
        let Some(value) = text(&value) else {
            return Err(cx.error(
                r,
                &format!("{prop}.{name}"),
                format!("must be a string, not {}", describe(&value)),
            ));
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// `DefaultRouteSettings` and `RouteSettings` (HTTP API stages and SAM's HttpApi).
fn route_settings(cx: &Context<'_>, r: &Resource) -> Result<Throttle, Error> {
    let mut throttle = Throttle::default();
    if let Some(value) = cx.property(r, "DefaultRouteSettings")? {
        throttle.default = limit(cx, r, "DefaultRouteSettings", &value)?;
    }
    match cx.property(r, "RouteSettings")? {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let at = format!("RouteSettings.{key}");
                if let Err(why) = RouteKey::parse(&key) {
                    return Err(cx.error(r, &at, why));
                }
                if let Some(limit) = limit(cx, r, &at, &value)? {
                    throttle.routes.push((key, limit));
                }
            }
        }
        Some(other) => {
            return Err(cx.error(
                r,
                "RouteSettings",
                format!(
                    "must be a map of route keys to settings, not {}",
                    describe(&other)
                ),
            ));
        }
    }
    Ok(throttle)
}

/// SAM Api's `MethodSettings`: `ResourcePath` (`/*`, or the path with `/` written `~1`:
/// `/~1items~1{id}`) and `HttpMethod` (`*` or a method).
fn method_settings(cx: &Context<'_>, r: &Resource) -> Result<Throttle, Error> {
    let mut throttle = Throttle::default();
    let items = match cx.property(r, "MethodSettings")? {
        None | Some(Value::Null) => return Ok(throttle),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(cx.error(
                r,
                "MethodSettings",
                format!(
                    "must be a list of method settings, not {}",
                    describe(&other)
                ),
            ));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("MethodSettings[{i}]");
        let Some(map) = item.as_object() else {
            return Err(cx.error(r, &at, format!("must be a map, not {}", describe(item))));
        };
        let field = |key: &str| {
            map.get(key)
                .and_then(text)
                .unwrap_or_else(|| "*".to_owned())
        };
        let method = field("HttpMethod").to_ascii_uppercase();
        let resource = field("ResourcePath");
        let path = match resource.as_str() {
            "/*" | "*" => "*".to_owned(),
            p if p.starts_with("/~1") => p[1..].replace("~1", "/"),
            p if p.starts_with('/') => p.to_owned(),
            p => {
                return Err(cx.error(
                    r,
                    &format!("{at}.ResourcePath"),
                    format!("must be /* or a path such as /~1items~1{{id}}, not {p:?}"),
                ));
            }
        };
        if method != "*" && RouteKey::parse(&format!("{method} /")).is_err() {
            return Err(cx.error(
                r,
                &format!("{at}.HttpMethod"),
                format!("must be * or an HTTP method, not {method:?}"),
            ));
        }
        if let Some(limit) = limit(cx, r, &at, item)? {
            throttle.routes.push((format!("{method} {path}"), limit));
        }
    }
    Ok(throttle)
}

/// A setting's `ThrottlingBurstLimit` and `ThrottlingRateLimit`; `None` when it has neither.
fn limit(
    cx: &Context<'_>,
    r: &Resource,
    at: &str,
    value: &Value,
) -> Result<Option<RateLimit>, Error> {
    let Some(map) = value.as_object() else {
        return Err(cx.error(r, at, format!("must be a map, not {}", describe(value))));
    };
    let number = |key: &str| -> Result<Option<f64>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => text(v)
                .and_then(|t| t.parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(Some)
                .ok_or_else(|| {
                    cx.error(
                        r,
                        &format!("{at}.{key}"),
                        format!("must be a number of at least 0, not {v}"),
                    )
                }),
        }
    };
    let burst = number("ThrottlingBurstLimit")?;
    let rate = number("ThrottlingRateLimit")?;
    if let Some(b) = burst
        && (b.fract() != 0.0 || b > f64::from(u32::MAX))
    {
        return Err(cx.error(
            r,
            &format!("{at}.ThrottlingBurstLimit"),
            format!("must be a whole number, not {b}"),
        ));
    }
    if burst.is_none() && rate.is_none() {
        return Ok(None);
    }
    Ok(Some(RateLimit {
        burst: burst.map_or(ACCOUNT_BURST, |b| b as u32),
        rate: rate.unwrap_or(ACCOUNT_RATE),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use coldstart_emulator::{ApiCors, HttpCors, RateLimit, RestCors};

    use crate::model::{HttpApiSpec, Stack};
    use crate::template::{TemplateOptions, parse};

    fn read(text: &str) -> Result<Stack, String> {
        parse(
            Path::new("template.yaml"),
            text,
            Path::new("/app"),
            &TemplateOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    fn api<'s>(stack: &'s Stack, name: &str) -> &'s HttpApiSpec {
        stack
            .http_apis
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no API {name}: {:?}", stack.http_apis))
    }

    const FUNCTION: &str = "
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Get:
          Type: HttpApi
          Properties:
            ApiId: !Ref Http
            Path: /items
            Method: get
        Rest:
          Type: Api
          Properties:
            RestApiId: !Ref Rest
            Path: /items
            Method: get
";

    fn template(http: &str, rest: &str) -> String {
        format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:{FUNCTION}  Http:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n{http}  Rest:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: prod\n{rest}"
        )
    }

    #[test]
    fn sam_apis_read_cors_stage_variables_and_throttling() {
        let stack = read(&template(
            "      CorsConfiguration:
        AllowOrigins: [https://app.example.com]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-request-id]
        AllowCredentials: true
        MaxAge: 300
      StageVariables:
        table: items-dev
        level: 3
      DefaultRouteSettings:
        ThrottlingBurstLimit: 10
        ThrottlingRateLimit: 5
      RouteSettings:
        GET /items:
          ThrottlingBurstLimit: 2
          ThrottlingRateLimit: 0.001
",
            "      Cors:
        AllowOrigin: \"'https://app.example.com'\"
        AllowHeaders: \"'Content-Type'\"
        MaxAge: \"'600'\"
        AllowCredentials: true
      Variables:
        table: items-prod
      MethodSettings:
        - ResourcePath: /*
          HttpMethod: '*'
          ThrottlingBurstLimit: 100
          ThrottlingRateLimit: 50
        - ResourcePath: /~1items
          HttpMethod: GET
          ThrottlingBurstLimit: 1
",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let http = api(&stack, "Http");
        assert_eq!(
            http.cors,
            Some(ApiCors::Http(HttpCors {
                allow_origins: vec!["https://app.example.com".into()],
                allow_methods: vec!["GET".into(), "POST".into()],
                allow_headers: vec!["content-type".into()],
                expose_headers: vec!["x-request-id".into()],
                allow_credentials: true,
                max_age: Some(300),
            }))
        );
        assert_eq!(http.stage_variables["table"], "items-dev");
        assert_eq!(http.stage_variables["level"], "3");
        assert_eq!(
            http.throttle.default,
            Some(RateLimit {
                burst: 10,
                rate: 5.0
            })
        );
        assert_eq!(
            http.throttle.limit_for("GET /items"),
            Some(RateLimit {
                burst: 2,
                rate: 0.001
            })
        );
        let rest = api(&stack, "Rest");
        assert_eq!(
            rest.cors,
            Some(ApiCors::Rest(RestCors {
                allow_origin: "https://app.example.com".into(),
                allow_headers: Some("Content-Type".into()),
                allow_methods: None,
                max_age: Some(600),
                allow_credentials: true,
            }))
        );
        assert_eq!(rest.stage_variables["table"], "items-prod");
        assert_eq!(
            rest.throttle.limit_for("GET /items"),
            Some(RateLimit {
                burst: 1,
                rate: 10000.0
            })
        );
        assert_eq!(
            rest.throttle.limit_for("POST /other").map(|l| l.burst),
            Some(100)
        );
    }

    #[test]
    fn cors_true_and_a_string_origin_are_sams_shorthands() {
        let stack = read(&template(
            "      CorsConfiguration: true\n",
            "      Cors: \"'*'\"\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            api(&stack, "Http").cors,
            Some(ApiCors::Http(HttpCors {
                allow_origins: vec!["*".into()],
                ..HttpCors::default()
            }))
        );
        assert_eq!(
            api(&stack, "Rest").cors,
            Some(ApiCors::Rest(RestCors {
                allow_origin: "*".into(),
                ..RestCors::default()
            }))
        );
        assert!(api(&stack, "Rest").stage_variables.is_empty());
    }

    #[test]
    fn globals_reach_the_implicit_apis_but_not_the_rest_apis_stage() {
        let stack = read(
            "Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    StageName: dev
    Cors: \"'*'\"
    Variables: { table: t }
  HttpApi:
    CorsConfiguration: true
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Get: { Type: HttpApi, Properties: { Path: /a, Method: get } }
        Rest: { Type: Api, Properties: { Path: /a, Method: get } }
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let rest = api(&stack, "ServerlessRestApi");
        assert_eq!(rest.stage, "Prod");
        assert!(matches!(&rest.cors, Some(ApiCors::Rest(c)) if c.allow_origin == "*"));
        assert_eq!(rest.stage_variables["table"], "t");
        let http = api(&stack, "ServerlessHttpApi");
        assert!(matches!(&http.cors, Some(ApiCors::Http(c)) if c.allow_origins == ["*"]));
    }

    #[test]
    fn an_api_gateway_v2_api_reads_cors_and_its_stage() {
        let stack = read(
            "Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      Code: { ZipFile: x }
      Role: arn:aws:iam::123456789012:role/r
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: api
      ProtocolType: HTTP
      Target: !GetAtt Fn.Arn
      CorsConfiguration:
        AllowOrigins: ['*']
        AllowHeaders: ['*']
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: $default
      StageVariables: { color: blue }
      RouteSettings:
        $default: { ThrottlingBurstLimit: 3, ThrottlingRateLimit: 1 }
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let a = api(&stack, "Api");
        assert!(matches!(&a.cors, Some(ApiCors::Http(c)) if c.allow_headers == ["*"]));
        assert_eq!(a.stage_variables["color"], "blue");
        assert_eq!(a.throttle.limit_for("$default").map(|l| l.burst), Some(3));
    }

    #[test]
    fn bad_values_name_the_file_resource_and_property() {
        let cases = [
            (
                template("      CorsConfiguration:\n        AllowOrigin: [x]\n", ""),
                "Resources.Http.Properties.CorsConfiguration.AllowOrigin",
            ),
            (
                template(
                    "      CorsConfiguration:\n        AllowCredentials: true\n        AllowOrigins: ['*']\n",
                    "",
                ),
                "Resources.Http.Properties.CorsConfiguration.AllowCredentials",
            ),
            (
                template("      CorsConfiguration:\n        MaxAge: soon\n", ""),
                "Resources.Http.Properties.CorsConfiguration.MaxAge",
            ),
            (
                template("", "      Cors: https://app.example.com\n"),
                "Resources.Rest.Properties.Cors",
            ),
            (
                template("", "      Cors:\n        AllowHeaders: \"'x'\"\n"),
                "Resources.Rest.Properties.Cors.AllowOrigin",
            ),
            (
                template("      StageVariables: [a]\n", ""),
                "Resources.Http.Properties.StageVariables",
            ),
            (
                template("      StageVariables: { a-b: c }\n", ""),
                "Resources.Http.Properties.StageVariables.a-b",
            ),
            (
                template(
                    "      RouteSettings:\n        FETCH /x: { ThrottlingBurstLimit: 1 }\n",
                    "",
                ),
                "Resources.Http.Properties.RouteSettings.FETCH /x",
            ),
            (
                template(
                    "      DefaultRouteSettings: { ThrottlingBurstLimit: -1 }\n",
                    "",
                ),
                "Resources.Http.Properties.DefaultRouteSettings.ThrottlingBurstLimit",
            ),
            (
                template(
                    "",
                    "      MethodSettings:\n        - ResourcePath: items\n          ThrottlingRateLimit: 1\n",
                ),
                "Resources.Rest.Properties.MethodSettings[0].ResourcePath",
            ),
        ];
        for (text, at) in cases {
            match read(&text) {
                Ok(_) => panic!("accepted:\n{text}"),
                Err(e) => assert!(e.starts_with(&format!("template.yaml: {at}:")), "{at}: {e}"),
            }
        }
    }
}

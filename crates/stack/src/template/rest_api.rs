//! CloudFormation REST APIs as [`HttpApiSpec`]s: an `AWS::ApiGateway::RestApi` with the
//! `AWS::ApiGateway::Resource` tree under its root, the `AWS::ApiGateway::Method`s on those
//! resources whose integrations are Lambda proxy (`AWS_PROXY`) integrations, and its
//! `AWS::ApiGateway::Stage` (or a `Deployment`'s `StageName`).
//!
//! Also the integration setting SAM events share with these methods: `ResponseTransferMode`
//! (`BUFFERED` or `STREAM`), and the longer integration timeout a streamed route may have.
//! Separate from `apis` because the v1 resource tree (paths built from parents) has nothing in
//! common with v2 routes and integrations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use coldstart_emulator::{PayloadVersion, RouteKey};
use serde_json::Value;

use crate::config::DEFAULT_STAGE;
use crate::error::Error;
use crate::model::HttpApiSpec;
use crate::template::Context;
use crate::template::intrinsics::{describe, text};
use crate::template::resources::{Resource, api_host, function_of};

/// The longest integration timeout of a streamed route: 15 minutes (API Gateway's "Stream the
/// integration response" guide).
const STREAMED_TIMEOUT_MS: u64 = 900_000;

/// `ResponseTransferMode`: whether it is `STREAM` (`BUFFERED`, the default, is not).
pub(crate) fn streams(v: &Value) -> Result<bool, String> {
    match text(v).as_deref() {
        Some("STREAM") => Ok(true),
        Some("BUFFERED") => Ok(false),
        other => Err(format!(
            "must be BUFFERED or STREAM, not {}",
            other.map_or_else(|| v.to_string(), |t| format!("{t:?}"))
        )),
    }
}

/// An API integration's `TimeoutInMillis`: 50 to 30,000.
pub(crate) fn integration_timeout(v: &Value) -> Result<Duration, String> {
    match text(v).and_then(|t| t.parse::<u64>().ok()) {
        Some(ms) if (50..=30_000).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "must be 50 to 30000 milliseconds, not {}",
            text(v).unwrap_or_else(|| describe(v).to_owned())
        )),
    }
}

/// A route's `TimeoutInMillis`: 50 to 30,000 ms, or up to 15 minutes when it streams.
pub(crate) fn route_timeout(v: &Value, streamed: bool) -> Result<Duration, String> {
    if !streamed {
        return integration_timeout(v);
    }
    match text(v).and_then(|t| t.parse::<u64>().ok()) {
        Some(ms) if (50..=STREAMED_TIMEOUT_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "must be 50 to {STREAMED_TIMEOUT_MS} milliseconds for a streamed route, not {}",
            text(v).unwrap_or_else(|| v.to_string())
        )),
    }
}

/// The `AWS::ApiGateway::RestApi`s with their methods as routes. Routes to the functions in
/// `left_out` are dropped; the ids of the resources used are added to `used`.
pub(crate) fn read(
    cx: &Context<'_>,
    resources: &[Resource],
    left_out: &HashSet<String>,
    used: &mut HashSet<String>,
    notices: &mut Vec<String>,
) -> Result<Vec<HttpApiSpec>, Error> {
    let mut out = Vec::new();
    let region = cx.options.region.as_str();
    for api in resources
        .iter()
        .filter(|r| r.kind == "AWS::ApiGateway::RestApi")
    {
        let Some(facts) = cx.resolver.resources.get(&api.id) else {
            continue;
        };
        let Some(api_ref) = facts.reference.as_str().map(str::to_owned) else {
            continue;
        };
        let root = facts
            .attributes
            .iter()
            .find(|(name, _)| *name == "RootResourceId")
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_owned();
        if api.properties.contains_key("Body") || api.properties.contains_key("BodyS3Location") {
            notices.push(format!(
                "{}: routes in its OpenAPI Body are not read; its AWS::ApiGateway::Method resources are",
                api.id
            ));
        }
        let parts = parts_of(cx, resources, &api_ref)?;
        let paths = paths(cx, &parts, &root)?;
        let mut routes = Vec::new();
        let mut timeouts = Vec::new();
        let mut streamed = Vec::new();
        let mut route_auth = Vec::new();
        for method in parts.iter().filter(|r| r.kind == "AWS::ApiGateway::Method") {
            used.insert(method.id.clone());
            let Some(route) = method_route(cx, method, &paths, notices)? else {
                continue;
            };
            if left_out.contains(&route.function) {
                continue;
            }
            if routes
                .iter()
                .any(|(k, _): &(String, String)| k == &route.key)
            {
                notices.push(format!(
                    "{}: route {} is given twice; the first is served",
                    method.id, route.key
                ));
                continue;
            }
            if let Some(timeout) = route.timeout {
                timeouts.push((route.key.clone(), timeout));
            }
            if route.streamed {
                streamed.push(route.key.clone());
            }
            match cx.string(method, "AuthorizationType")?.as_deref() {
                None | Some("NONE") => {}
                Some("AWS_IAM") => route_auth.push((
                    route.key.clone(),
                    coldstart_emulator::auth::RouteAuth {
                        authorizer: coldstart_emulator::AWS_IAM.to_owned(),
                        scopes: Vec::new(),
                    },
                )),
                Some("CUSTOM") | Some("COGNITO_USER_POOLS") => notices.push(format!(
                    "{}: authorizers of AWS::ApiGateway::Method resources are not emulated yet; {} is open",
                    method.id, route.key
                )),
                Some(other) => {
                    return Err(cx.error(
                        method,
                        "AuthorizationType",
                        format!(
                            "must be NONE, AWS_IAM, CUSTOM or COGNITO_USER_POOLS, not {other:?}"
                        ),
                    ));
                }
            }
            routes.push((route.key, route.function));
        }
        for part in &parts {
            used.insert(part.id.clone());
        }
        used.insert(api.id.clone());
        let (stage, stage_variables) = stage_of(cx, api, &parts, notices)?;
        out.push(HttpApiSpec {
            name: api.id.clone(),
            port: 0,
            payload_version: PayloadVersion::V1,
            rest: true,
            stage,
            routes,
            aws_host: Some(api_host(region, &api_ref)),
            cors: None,
            stage_variables,
            throttle: Default::default(),
            authorizers: Vec::new(),
            route_auth,
            timeouts,
            streamed,
        });
    }
    Ok(out)
}

/// The `AWS::ApiGateway::*` resources whose `RestApiId` is `api` (what the API's `Ref` gives).
fn parts_of<'r>(
    cx: &Context<'_>,
    resources: &'r [Resource],
    api: &str,
) -> Result<Vec<&'r Resource>, Error> {
    let mut parts = Vec::new();
    for r in resources {
        if !matches!(
            r.kind.as_str(),
            "AWS::ApiGateway::Resource"
                | "AWS::ApiGateway::Method"
                | "AWS::ApiGateway::Stage"
                | "AWS::ApiGateway::Deployment"
        ) {
            continue;
        }
        if cx.string(r, "RestApiId")?.as_deref() == Some(api) {
            parts.push(r);
        }
    }
    Ok(parts)
}

/// The path of every resource of the API by its id (what `Ref` gives; the root's is its
/// `RootResourceId`), built from `PathPart`s up to the root.
fn paths(
    cx: &Context<'_>,
    parts: &[&Resource],
    root: &str,
) -> Result<HashMap<String, String>, Error> {
    // id → (resource, parent id, path part)
    let mut tree: HashMap<String, (&Resource, String, String)> = HashMap::new();
    for r in parts
        .iter()
        .filter(|r| r.kind == "AWS::ApiGateway::Resource")
    {
        let Some(part) = cx.string(r, "PathPart")? else {
            return Err(cx.error(r, "PathPart", "a resource needs a PathPart"));
        };
        if part.is_empty() || part.contains('/') {
            return Err(cx.error(r, "PathPart", format!("{part:?} must be one path segment")));
        }
        let Some(parent) = cx.string(r, "ParentId")? else {
            return Err(cx.error(r, "ParentId", "a resource needs a ParentId"));
        };
        let id = cx
            .resolver
            .resources
            .get(&r.id)
            .and_then(|f| f.reference.as_str())
            .unwrap_or(&r.id)
            .to_owned();
        tree.insert(id, (*r, parent, part));
    }
    let mut paths = HashMap::from([(root.to_owned(), "/".to_owned())]);
    for (id, (r, _, _)) in &tree {
        let mut segments = Vec::new();
        let mut at = id.as_str();
        // Each step climbs one level; more steps than resources means the parents loop.
        for _ in 0..=tree.len() {
            if at == root {
                break;
            }
            let Some((_, parent, part)) = tree.get(at) else {
                return Err(cx.error(
                    r,
                    "ParentId",
                    format!(
                        "{at:?} is neither the API's RootResourceId nor an AWS::ApiGateway::Resource of the API"
                    ),
                ));
            };
            segments.push(part.as_str());
            at = parent;
        }
        if at != root {
            return Err(cx.error(r, "ParentId", "its parents form a loop"));
        }
        segments.reverse();
        paths.insert(id.clone(), format!("/{}", segments.join("/")));
    }
    Ok(paths)
}

/// A method served as a route.
struct MethodRoute {
    /// `GET /items/{id}`.
    key: String,
    /// The function's logical id.
    function: String,
    /// `Integration.TimeoutInMillis`.
    timeout: Option<Duration>,
    /// `Integration.ResponseTransferMode: STREAM`.
    streamed: bool,
}

/// The route of a method whose integration is a Lambda proxy integration to a function of the
/// template; `None` (with a notice) for any other integration.
fn method_route(
    cx: &Context<'_>,
    method: &Resource,
    paths: &HashMap<String, String>,
    notices: &mut Vec<String>,
) -> Result<Option<MethodRoute>, Error> {
    let Some(verb) = cx.string(method, "HttpMethod")? else {
        return Err(cx.error(method, "HttpMethod", "a method needs an HttpMethod"));
    };
    let Some(resource) = cx.string(method, "ResourceId")? else {
        return Err(cx.error(method, "ResourceId", "a method needs a ResourceId"));
    };
    let Some(path) = paths.get(&resource) else {
        return Err(cx.error(
            method,
            "ResourceId",
            format!(
                "{resource:?} is neither the API's RootResourceId nor an AWS::ApiGateway::Resource of the API"
            ),
        ));
    };
    let key = format!("{} {path}", verb.to_ascii_uppercase());
    if let Err(why) = RouteKey::parse(&key) {
        return Err(cx.error(method, "HttpMethod", why));
    }
    let integration = match cx.property(method, "Integration")? {
        None | Some(Value::Null) => {
            notices.push(format!(
                "{}: a method without an Integration is not served",
                method.id
            ));
            return Ok(None);
        }
        Some(Value::Object(i)) => i,
        Some(_) => return Err(cx.error(method, "Integration", "must be a map")),
    };
    let kind = integration.get("Type").and_then(text).unwrap_or_default();
    let streamed = match integration.get("ResponseTransferMode") {
        None | Some(Value::Null) => false,
        Some(v) => {
            streams(v).map_err(|why| cx.error(method, "Integration.ResponseTransferMode", why))?
        }
    };
    if streamed && kind != "AWS_PROXY" && kind != "HTTP_PROXY" {
        return Err(cx.error(
            method,
            "Integration.ResponseTransferMode",
            format!("STREAM needs an AWS_PROXY or HTTP_PROXY integration, not {kind:?}"),
        ));
    }
    if kind != "AWS_PROXY" {
        notices.push(format!(
            "{}: only Lambda proxy (AWS_PROXY) integrations are served; {key} is {kind:?}",
            method.id
        ));
        return Ok(None);
    }
    let uri = integration.get("Uri").and_then(text).unwrap_or_default();
    let Some(function) = function_of(&uri) else {
        notices.push(format!(
            "{}: its Integration.Uri names no Lambda function; {key} is not served",
            method.id
        ));
        return Ok(None);
    };
    if !cx
        .resolver
        .resources
        .get(function)
        .is_some_and(|f| f.kind == "AWS::Serverless::Function" || f.kind == "AWS::Lambda::Function")
    {
        notices.push(format!(
            "{}: {function} is not a function of the template; {key} is not served",
            method.id
        ));
        return Ok(None);
    }
    // API Gateway calls InvokeWithResponseStream for a streamed Lambda proxy integration, at
    // `.../2021-11-15/functions/<arn>/response-streaming-invocations`.
    let streaming_uri = uri.ends_with("/response-streaming-invocations");
    if streamed && !streaming_uri {
        notices.push(format!(
            "{}: a streamed Lambda integration's Uri ends in /response-streaming-invocations on AWS; {key} streams here",
            method.id
        ));
    } else if !streamed && streaming_uri {
        notices.push(format!(
            "{}: its Uri is a response-streaming one but ResponseTransferMode is not STREAM; {key} is buffered",
            method.id
        ));
    }
    let timeout = match integration.get("TimeoutInMillis") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            route_timeout(v, streamed)
                .map_err(|why| cx.error(method, "Integration.TimeoutInMillis", why))?,
        ),
    };
    Ok(Some(MethodRoute {
        key,
        function: function.to_owned(),
        timeout: timeout.filter(|_| !streamed),
        streamed,
    }))
}

/// The stage served: the first `AWS::ApiGateway::Stage` by logical id, else a `Deployment`'s
/// `StageName`, else [`DEFAULT_STAGE`] with a notice; and the stage's `Variables`.
fn stage_of(
    cx: &Context<'_>,
    api: &Resource,
    parts: &[&Resource],
    notices: &mut Vec<String>,
) -> Result<(String, BTreeMap<String, String>), Error> {
    let mut stages = BTreeMap::new();
    for part in parts.iter().filter(|p| p.kind == "AWS::ApiGateway::Stage") {
        let Some(name) = cx.string(part, "StageName")? else {
            return Err(cx.error(part, "StageName", "a stage needs a StageName"));
        };
        let variables = match cx.property(part, "Variables")? {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| (k.clone(), text(v).unwrap_or_default()))
                .collect(),
            Some(_) => return Err(cx.error(part, "Variables", "must be a map")),
        };
        stages.insert(part.id.clone(), (name, variables));
    }
    if stages.len() > 1 {
        notices.push(format!(
            "{}: it has {} stages; only the first is served",
            api.id,
            stages.len()
        ));
    }
    if let Some(stage) = stages.into_values().next() {
        return Ok(stage);
    }
    for part in parts
        .iter()
        .filter(|p| p.kind == "AWS::ApiGateway::Deployment")
    {
        if let Some(name) = cx.string(part, "StageName")? {
            return Ok((name, BTreeMap::new()));
        }
    }
    notices.push(format!(
        "{}: no AWS::ApiGateway::Stage; served under the stage {DEFAULT_STAGE}",
        api.id
    ));
    Ok((DEFAULT_STAGE.to_owned(), BTreeMap::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stack;
    use crate::template::TemplateOptions;
    use serde_json::json;
    use std::path::Path;

    fn read(text: &str) -> Result<Stack, String> {
        crate::template::parse(
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

    /// A CloudFormation REST API: `/chat` streams, `/items/{id}` is buffered, `OPTIONS /chat`
    /// is a MOCK integration; `{method}` is spliced into the chat method's properties.
    fn cfn(method: &str) -> String {
        format!(
            r#"
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Code: fn
      Runtime: provided.al2023
      Handler: h
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: chat
  Chat:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !GetAtt Api.RootResourceId
      PathPart: chat
  Items:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !GetAtt Api.RootResourceId
      PathPart: items
  Item:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !Ref Items
      PathPart: "{{id}}"
  ChatPost:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Chat
      HttpMethod: POST
      AuthorizationType: NONE
{method}
  ChatOptions:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Chat
      HttpMethod: OPTIONS
      Integration:
        Type: MOCK
  ItemGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Item
      HttpMethod: GET
      AuthorizationType: AWS_IAM
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        TimeoutInMillis: 10000
        Uri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Fn.Arn}}/invocations
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: ChatPost
    Properties:
      RestApiId: !Ref Api
  Prod:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref Api
      DeploymentId: !Ref Deployment
      StageName: prod
      Variables:
        color: blue
"#
        )
    }

    const STREAMED: &str = "      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        ResponseTransferMode: STREAM
        TimeoutInMillis: 900000
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${Fn.Arn}/response-streaming-invocations";

    #[test]
    fn a_cloudformation_rest_api_serves_its_methods_and_streams_what_says_stream() {
        let stack = read(&cfn(STREAMED)).unwrap_or_else(|e| panic!("{e}"));
        let api = api(&stack, "Api");
        assert!(api.rest);
        assert_eq!(api.payload_version, PayloadVersion::V1);
        assert_eq!(api.stage, "prod");
        assert_eq!(
            api.stage_variables.get("color").map(String::as_str),
            Some("blue")
        );
        let mut routes = api.routes.clone();
        routes.sort();
        assert_eq!(
            routes,
            [
                ("GET /items/{id}".to_owned(), "Fn".to_owned()),
                ("POST /chat".to_owned(), "Fn".to_owned()),
            ]
        );
        assert_eq!(api.streamed, ["POST /chat"]);
        assert_eq!(
            api.timeouts,
            [("GET /items/{id}".to_owned(), Duration::from_secs(10))]
        );
        assert_eq!(api.route_auth.len(), 1);
        assert_eq!(api.route_auth[0].0, "GET /items/{id}");
        assert!(
            stack
                .notices
                .iter()
                .any(|n| n.contains("ChatOptions") && n.contains("MOCK")),
            "{:?}",
            stack.notices
        );
        assert!(
            !stack
                .not_emulated
                .iter()
                .any(|(id, _)| id == "Api" || id == "Chat" || id == "Prod"),
            "{:?}",
            stack.not_emulated
        );
    }

    #[test]
    fn a_buffered_method_with_the_lambda_uri_is_not_streamed() {
        let buffered = "      Integration:
        Type: AWS_PROXY
        ResponseTransferMode: BUFFERED
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations";
        let stack = read(&cfn(buffered)).unwrap_or_else(|e| panic!("{e}"));
        assert!(api(&stack, "Api").streamed.is_empty());
    }

    #[test]
    fn bad_transfer_modes_and_broken_resource_trees_are_errors_at_the_property() {
        let lowercase = STREAMED.replace(
            "ResponseTransferMode: STREAM",
            "ResponseTransferMode: stream",
        );
        let e = read(&cfn(&lowercase)).err().unwrap_or_default();
        assert!(
            e.contains("Resources.ChatPost.Properties.Integration.ResponseTransferMode")
                && e.contains("must be BUFFERED or STREAM"),
            "{e}"
        );
        let mock = "      Integration:
        Type: MOCK
        ResponseTransferMode: STREAM";
        let e = read(&cfn(mock)).err().unwrap_or_default();
        assert!(
            e.contains("ChatPost.Properties.Integration.ResponseTransferMode")
                && e.contains("AWS_PROXY or HTTP_PROXY"),
            "{e}"
        );
        let long = STREAMED.replace("900000", "900001");
        let e = read(&cfn(&long)).err().unwrap_or_default();
        assert!(
            e.contains("ChatPost.Properties.Integration.TimeoutInMillis"),
            "{e}"
        );
        let orphan = cfn(STREAMED).replace("ParentId: !Ref Items", "ParentId: nowhere");
        let e = read(&orphan).err().unwrap_or_default();
        assert!(
            e.contains("template.yaml") && e.contains("Resources.Item.Properties.ParentId"),
            "{e}"
        );
        let no_verb = cfn(STREAMED).replace("      HttpMethod: POST\n", "");
        let e = read(&no_verb).err().unwrap_or_default();
        assert!(e.contains("ChatPost.Properties.HttpMethod"), "{e}");
    }

    #[test]
    fn a_sam_api_event_streams_with_response_transfer_mode() {
        let template = |event: &str, mode: &str| {
            format!(
                "
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Runtime: provided.al2023
      Handler: h
      Events:
        Chat:
          Type: {event}
          Properties:
            Path: /chat
            Method: post
            ResponseTransferMode: {mode}
        Plain:
          Type: Api
          Properties:
            Path: /plain
            Method: get
"
            )
        };
        let stack = read(&template("Api", "STREAM")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(api(&stack, "ServerlessRestApi").streamed, ["POST /chat"]);
        let e = read(&template("Api", "FAST")).err().unwrap_or_default();
        assert!(
            e.contains("Resources.Fn.Properties.Events.Chat.Properties.ResponseTransferMode")
                && e.contains("must be BUFFERED or STREAM, not \"FAST\""),
            "{e}"
        );
        let e = read(&template("HttpApi", "STREAM"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("needs a REST API"), "{e}");
    }

    #[test]
    fn transfer_modes_are_aws_names_only() {
        assert_eq!(streams(&json!("STREAM")), Ok(true));
        assert_eq!(streams(&json!("BUFFERED")), Ok(false));
        assert!(streams(&json!("stream")).is_err_and(|e| e.contains("BUFFERED or STREAM")));
        assert!(streams(&json!(true)).is_err());
    }

    #[test]
    fn a_streamed_route_may_wait_fifteen_minutes_a_buffered_one_thirty_seconds() {
        assert_eq!(
            route_timeout(&json!(900_000), true),
            Ok(Duration::from_secs(900))
        );
        assert!(route_timeout(&json!(900_001), true).is_err());
        assert!(route_timeout(&json!(60_000), false).is_err());
        assert_eq!(
            route_timeout(&json!(60_000), true),
            Ok(Duration::from_secs(60))
        );
    }
}

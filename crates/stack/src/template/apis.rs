//! APIs as [`HttpApiSpec`]s and [`WebSocketApiSpec`]s: SAM's HTTP and REST APIs (explicit, or
//! implicit for events that name none) with the routes of the functions' events, and
//! `AWS::ApiGatewayV2::Api`s (HTTP or WebSocket) with their `Route`, `Integration` and `Stage`
//! resources.
//!
//! The routes, integrations, stages and deployments used here are recorded, so they are not
//! listed as not emulated. Ports are given afterwards, with the Function URLs'.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use coldstart_emulator::auth::{Authorizer, RouteAuth};
use coldstart_emulator::{PayloadVersion, RouteKey};
use serde_json::Value;

use crate::config::DEFAULT_STAGE;
use crate::error::Error;
use crate::model::{HttpApiSpec, WebSocketApiSpec};
use crate::template::Context;
use crate::template::api_settings;
use crate::template::auth;
use crate::template::functions::HttpEvent;
use crate::template::intrinsics::text;
use crate::template::resources::{IMPLICIT_REST_API, Resource, api_host, function_of};
use crate::template::rest_api;
use crate::template::rest_api::integration_timeout;

/// The APIs of a template, without ports yet.
#[derive(Debug, Default)]
pub(crate) struct Apis {
    /// HTTP and REST APIs.
    pub(crate) http: Vec<HttpApiSpec>,
    /// WebSocket APIs.
    pub(crate) websocket: Vec<WebSocketApiSpec>,
}

/// Reads the APIs. `events` are the functions' API events; routes to the functions in
/// `left_out` are dropped; the ids of the resources used are added to `used`.
pub(crate) fn read(
    cx: &Context<'_>,
    resources: &[Resource],
    events: &[HttpEvent],
    left_out: &HashSet<String>,
    used: &mut HashSet<String>,
    notices: &mut Vec<String>,
) -> Result<Apis, Error> {
    let mut apis = Apis::default();
    let region = cx.options.region.as_str();
    let host = |id: &str| {
        cx.resolver
            .resources
            .get(id)
            .and_then(|f| f.reference.as_str())
            .map(|api| api_host(region, api))
    };

    // The parts of ApiGatewayV2 APIs, by the id of their API (what its `Ref` gives).
    let mut parts: HashMap<String, Vec<&Resource>> = HashMap::new();
    let mut integrations: HashMap<String, &Resource> = HashMap::new();
    for r in resources {
        if !matches!(
            r.kind.as_str(),
            "AWS::ApiGatewayV2::Route"
                | "AWS::ApiGatewayV2::Integration"
                | "AWS::ApiGatewayV2::Stage"
                | "AWS::ApiGatewayV2::Deployment"
                | "AWS::ApiGatewayV2::Authorizer"
        ) {
            continue;
        }
        // A part whose ApiId cannot be resolved belongs to no API coldstart serves.
        let Ok(Some(api)) = cx.string(r, "ApiId") else {
            continue;
        };
        if r.kind == "AWS::ApiGatewayV2::Integration"
            && let Some(reference) = cx
                .resolver
                .resources
                .get(&r.id)
                .and_then(|f| f.reference.as_str())
        {
            integrations.insert(reference.to_owned(), r);
        }
        parts.entry(api).or_default().push(r);
    }

    for r in resources {
        match r.kind.as_str() {
            "AWS::Serverless::HttpApi" | "AWS::Serverless::Api" => {
                let rest = r.kind == "AWS::Serverless::Api";
                let stage = match cx.string(r, "StageName")? {
                    Some(stage) => stage,
                    None if !rest => "$default".to_owned(),
                    None if r.id == IMPLICIT_REST_API => "Prod".to_owned(),
                    None => {
                        return Err(cx.error(
                            r,
                            "StageName",
                            "an AWS::Serverless::Api needs a StageName",
                        ));
                    }
                };
                if r.properties.contains_key("DefinitionBody")
                    || r.properties.contains_key("DefinitionUri")
                {
                    notices.push(format!(
                        "{}: routes in its OpenAPI definition are not read; the functions' events are",
                        r.id
                    ));
                }
                let api_auth = auth::sam(cx, r, rest, notices)?;
                let mut route_auth = Vec::new();
                let mut timeouts = Vec::new();
                let mut routes = Vec::new();
                let mut payloads = Vec::new();
                let mut streamed = Vec::new();
                for e in events.iter().filter(|e| e.api == r.id) {
                    if left_out.contains(&e.function) {
                        continue;
                    }
                    if let Some(name) = &e.authorizer
                        && !api_auth.knows(name)
                    {
                        return Err(auth::error_at(
                            cx,
                            &e.function,
                            &format!("Events.{}.Properties.Auth.Authorizer", e.name),
                            format!(
                                "{name:?} is not an authorizer of {} (nor NONE or AWS_IAM)",
                                r.id
                            ),
                        ));
                    }
                    if let Some(timeout) = e.timeout {
                        timeouts.push((e.route.clone(), timeout));
                    }
                    if let Some(name) = api_auth.route(e.authorizer.as_deref())
                        && !route_auth
                            .iter()
                            .any(|(k, _): &(String, RouteAuth)| k == &e.route)
                    {
                        route_auth.push((
                            e.route.clone(),
                            RouteAuth {
                                authorizer: name.to_owned(),
                                scopes: e.scopes.clone(),
                            },
                        ));
                    }
                    if routes.iter().any(|(k, _): &(String, String)| k == &e.route) {
                        notices.push(format!(
                            "{}: route {} is given twice; the first ({}) is served",
                            r.id,
                            e.route,
                            routes
                                .iter()
                                .find(|(k, _)| k == &e.route)
                                .map_or("", |(_, f): &(String, String)| f.as_str())
                        ));
                        continue;
                    }
                    if e.streamed {
                        streamed.push(e.route.clone());
                    }
                    routes.push((e.route.clone(), e.function.clone()));
                    payloads.push(e.payload);
                }
                let default = if rest {
                    PayloadVersion::V1
                } else {
                    PayloadVersion::V2
                };
                let payload_version = payload_of(&r.id, &payloads, default, notices);
                let settings = if rest {
                    api_settings::sam_rest(cx, r)?
                } else {
                    api_settings::sam_http(cx, r)?
                };
                apis.http.push(HttpApiSpec {
                    name: r.id.clone(),
                    port: 0,
                    payload_version,
                    rest,
                    stage,
                    routes,
                    aws_host: host(&r.id),
                    cors: settings.cors,
                    stage_variables: settings.stage_variables,
                    throttle: settings.throttle,
                    authorizers: api_auth.authorizers,
                    route_auth,
                    timeouts,
                    streamed,
                });
            }
            "AWS::ApiGatewayV2::Api" => {
                let Some(api) = cx
                    .resolver
                    .resources
                    .get(&r.id)
                    .and_then(|f| f.reference.as_str())
                    .map(str::to_owned)
                else {
                    continue;
                };
                let own: &[&Resource] = parts.get(&api).map_or(&[], Vec::as_slice);
                let protocol = cx
                    .string(r, "ProtocolType")?
                    .unwrap_or_else(|| "HTTP".into());
                let stage = stage_of(cx, r, own, used, notices)?;
                match protocol.as_str() {
                    "HTTP" => {
                        let mut routes = Vec::new();
                        let mut payloads = Vec::new();
                        // Quick create: `Target` on the API is its `$default` route.
                        if let Some(target) = cx.string(r, "Target")? {
                            match function_of(&target) {
                                Some(f) if left_out.contains(f) => {}
                                Some(f) if is_function(cx, f) => {
                                    routes.push(("$default".to_owned(), f.to_owned()));
                                    payloads.push(PayloadVersion::V2);
                                }
                                _ => notices.push(format!(
                                    "{}: its Target {target} is not a function of the template",
                                    r.id
                                )),
                            }
                        }
                        let settings = api_settings::v2_http(cx, r, own)?;
                        let authorizers = v2_authorizers(cx, own, false, used)?;
                        let mut route_auth = Vec::new();
                        let mut timeouts = Vec::new();
                        for (route, key, function, payload, _, timeout) in routes_of(
                            cx,
                            own,
                            &integrations,
                            &settings.stage_variables,
                            left_out,
                            used,
                            notices,
                        )? {
                            if let Err(why) = RouteKey::parse(&key) {
                                return Err(cx.error(route, "RouteKey", why));
                            }
                            if let Some(a) = route_auth_of(cx, route, &authorizers, notices)? {
                                route_auth.push((key.clone(), a));
                            }
                            if let Some(timeout) = timeout {
                                timeouts.push((key.clone(), timeout));
                            }
                            routes.push((key, function));
                            payloads.push(payload);
                        }
                        let payload_version =
                            payload_of(&r.id, &payloads, PayloadVersion::V2, notices);
                        apis.http.push(HttpApiSpec {
                            name: r.id.clone(),
                            port: 0,
                            payload_version,
                            rest: false,
                            stage: stage.unwrap_or_else(|| "$default".to_owned()),
                            routes,
                            aws_host: Some(api_host(region, &api)),
                            cors: settings.cors,
                            stage_variables: settings.stage_variables,
                            throttle: settings.throttle,
                            authorizers: authorizers.into_iter().map(|(_, a)| a).collect(),
                            route_auth,
                            timeouts,
                            streamed: Vec::new(),
                        });
                    }
                    "WEBSOCKET" => {
                        let route_selection = cx
                            .string(r, "RouteSelectionExpression")?
                            .unwrap_or_else(|| "$request.body.action".to_owned());
                        let authorizers = v2_authorizers(cx, own, true, used)?;
                        let mut connect_authorizer = None;
                        let mut routes = Vec::new();
                        for (route, key, function, _, two_way, _) in routes_of(
                            cx,
                            own,
                            &integrations,
                            &BTreeMap::new(),
                            left_out,
                            used,
                            notices,
                        )? {
                            if key.is_empty() {
                                return Err(cx.error(route, "RouteKey", "an empty route key"));
                            }
                            if let Some(a) = route_auth_of(cx, route, &authorizers, notices)? {
                                if key != "$connect" {
                                    return Err(cx.error(
                                        route,
                                        "AuthorizationType",
                                        "a WebSocket API authorizes only its $connect route",
                                    ));
                                }
                                connect_authorizer = authorizers
                                    .iter()
                                    .find(|(_, x)| x.name == a.authorizer)
                                    .map(|(_, x)| x.clone());
                            }
                            routes.push((key, function, two_way));
                        }
                        let stage = stage.unwrap_or_else(|| {
                            notices.push(format!(
                                "{}: no AWS::ApiGatewayV2::Stage; served under the stage {DEFAULT_STAGE}",
                                r.id
                            ));
                            DEFAULT_STAGE.to_owned()
                        });
                        apis.websocket.push(WebSocketApiSpec {
                            name: r.id.clone(),
                            port: 0,
                            stage,
                            route_selection,
                            routes,
                            idle_timeout: None,
                            max_duration: None,
                            aws_host: Some(api_host(region, &api)),
                            connect_authorizer,
                        });
                    }
                    other => {
                        return Err(cx.error(
                            r,
                            "ProtocolType",
                            format!("must be HTTP or WEBSOCKET, not {other}"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    apis.http
        .extend(rest_api::read(cx, resources, left_out, used, notices)?);
    Ok(apis)
}

/// The `AWS::ApiGatewayV2::Authorizer`s among `parts`, by their id (what `Ref` gives).
fn v2_authorizers(
    cx: &Context<'_>,
    parts: &[&Resource],
    websocket: bool,
    used: &mut HashSet<String>,
) -> Result<Vec<(String, Authorizer)>, Error> {
    let mut out = Vec::new();
    for part in parts
        .iter()
        .filter(|p| p.kind == "AWS::ApiGatewayV2::Authorizer")
    {
        used.insert(part.id.clone());
        if part
            .properties
            .get("JwtConfiguration")
            .is_some_and(|j| auth::names_a_resource(cx, j))
        {
            // A user pool of the template: its issuer exists only once deployed. Routes that
            // use it are open (`route_auth_of` finds no authorizer and says so).
            continue;
        }
        let reference = cx
            .resolver
            .resources
            .get(&part.id)
            .and_then(|f| f.reference.as_str())
            .unwrap_or(&part.id)
            .to_owned();
        out.push((reference, auth::v2(cx, part, websocket)?));
    }
    Ok(out)
}

/// A route's `AuthorizationType` and `AuthorizerId`, as the authorization it gets; `None` for an
/// open route (and for `AWS_IAM`, with a notice).
fn route_auth_of(
    cx: &Context<'_>,
    route: &Resource,
    authorizers: &[(String, Authorizer)],
    notices: &mut Vec<String>,
) -> Result<Option<RouteAuth>, Error> {
    let kind = cx.string(route, "AuthorizationType")?;
    match kind.as_deref() {
        None | Some("NONE") => Ok(None),
        Some("AWS_IAM") => Ok(Some(RouteAuth {
            authorizer: coldstart_emulator::AWS_IAM.to_owned(),
            scopes: Vec::new(),
        })),
        Some("CUSTOM") | Some("JWT") => {
            let Some(id) = cx.string(route, "AuthorizerId")? else {
                return Err(cx.error(
                    route,
                    "AuthorizerId",
                    "a route with CUSTOM or JWT authorization needs an AuthorizerId",
                ));
            };
            let Some((_, authorizer)) = authorizers.iter().find(|(r, _)| *r == id) else {
                let unchecked = cx.resolver.resources.iter().any(|(rid, f)| {
                    f.kind == "AWS::ApiGatewayV2::Authorizer"
                        && f.reference.as_str() == Some(id.as_str())
                        && rid != &route.id
                });
                if unchecked {
                    notices.push(format!(
                        "{}: its authorizer uses a user pool of this template, which exists only once deployed; the route is open",
                        route.id
                    ));
                    return Ok(None);
                }
                return Err(cx.error(
                    route,
                    "AuthorizerId",
                    format!("{id:?} names no AWS::ApiGatewayV2::Authorizer of this API"),
                ));
            };
            let scopes = match cx.property(route, "AuthorizationScopes")? {
                Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
                _ => Vec::new(),
            };
            Ok(Some(RouteAuth {
                authorizer: authorizer.name.clone(),
                scopes,
            }))
        }
        Some(other) => Err(cx.error(
            route,
            "AuthorizationType",
            format!("must be NONE, AWS_IAM, CUSTOM or JWT, not {other:?}"),
        )),
    }
}

/// The payload version most routes use; a notice when they differ.
fn payload_of(
    api: &str,
    payloads: &[PayloadVersion],
    default: PayloadVersion,
    notices: &mut Vec<String>,
) -> PayloadVersion {
    let v1 = payloads
        .iter()
        .filter(|p| **p == PayloadVersion::V1)
        .count();
    let v2 = payloads.len() - v1;
    if v1 == 0 && v2 == 0 {
        return default;
    }
    let chosen = if v1 > v2 || (v1 == v2 && default == PayloadVersion::V1) {
        PayloadVersion::V1
    } else {
        PayloadVersion::V2
    };
    if v1 > 0 && v2 > 0 {
        let name = |p| {
            if p == PayloadVersion::V1 {
                "1.0"
            } else {
                "2.0"
            }
        };
        notices.push(format!(
            "{api}: its routes mix payload versions 1.0 and 2.0; all get {}",
            name(chosen)
        ));
    }
    chosen
}

/// The stage of an ApiGatewayV2 API from its `Stage` resources (the first by logical id when
/// there are several).
fn stage_of(
    cx: &Context<'_>,
    api: &Resource,
    parts: &[&Resource],
    used: &mut HashSet<String>,
    notices: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    let mut stages = BTreeMap::new();
    for part in parts {
        match part.kind.as_str() {
            "AWS::ApiGatewayV2::Stage" => {
                let Some(name) = cx.string(part, "StageName")? else {
                    return Err(cx.error(part, "StageName", "a stage needs a StageName"));
                };
                stages.insert(part.id.clone(), name);
                used.insert(part.id.clone());
            }
            "AWS::ApiGatewayV2::Deployment" => {
                used.insert(part.id.clone());
            }
            _ => {}
        }
    }
    if stages.len() > 1 {
        notices.push(format!(
            "{}: it has {} stages; only the first, {}, is served",
            api.id,
            stages.len(),
            stages.values().next().map_or("", String::as_str)
        ));
    }
    Ok(stages.into_values().next())
}

/// A route: (its resource, key, function, payload version, two-way, integration timeout).
type Route<'r> = (
    &'r Resource,
    String,
    String,
    PayloadVersion,
    bool,
    Option<Duration>,
);

/// The routes among `parts` whose integrations lead to functions of the template.
fn routes_of<'r>(
    cx: &Context<'_>,
    parts: &[&'r Resource],
    integrations: &HashMap<String, &'r Resource>,
    stage_variables: &BTreeMap<String, String>,
    left_out: &HashSet<String>,
    used: &mut HashSet<String>,
    notices: &mut Vec<String>,
) -> Result<Vec<Route<'r>>, Error> {
    let mut routes = Vec::new();
    for route in parts
        .iter()
        .filter(|p| p.kind == "AWS::ApiGatewayV2::Route")
    {
        used.insert(route.id.clone());
        let Some(key) = cx.string(route, "RouteKey")? else {
            return Err(cx.error(route, "RouteKey", "a route needs a RouteKey"));
        };
        let Some(target) = cx.string(route, "Target")? else {
            notices.push(format!(
                "{}: a route without a Target is not served",
                route.id
            ));
            continue;
        };
        let integration_id = target.strip_prefix("integrations/").unwrap_or(&target);
        let Some(integration) = integrations.get(integration_id) else {
            return Err(cx.error(
                route,
                "Target",
                format!("{target:?} names no AWS::ApiGatewayV2::Integration of the template"),
            ));
        };
        used.insert(integration.id.clone());
        let uri = cx
            .string(integration, "IntegrationUri")?
            .unwrap_or_default();
        // `${stageVariables.name}` in the URI is the served stage's variable, as API Gateway
        // substitutes it per stage.
        let uri = with_stage_variables(&uri, stage_variables).map_err(|name| {
            cx.error(
                integration,
                "IntegrationUri",
                format!("${{stageVariables.{name}}} is not a variable of the stage"),
            )
        })?;
        let Some(function) = function_of(&uri) else {
            notices.push(format!(
                "{}: only Lambda integrations are served; {} is not one",
                route.id, integration.id
            ));
            continue;
        };
        if left_out.contains(function) {
            continue;
        }
        if !is_function(cx, function) {
            notices.push(format!(
                "{}: {function} is not a function of the template; the route is not served",
                route.id
            ));
            continue;
        }
        let payload = match cx
            .property(integration, "PayloadFormatVersion")?
            .as_ref()
            .and_then(text)
            .as_deref()
        {
            Some("1.0") | Some("1") => PayloadVersion::V1,
            _ => PayloadVersion::V2,
        };
        let two_way = route
            .properties
            .contains_key("RouteResponseSelectionExpression");
        let timeout = match cx.property(integration, "TimeoutInMillis")? {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                integration_timeout(&v)
                    .map_err(|why| cx.error(integration, "TimeoutInMillis", why))?,
            ),
        };
        routes.push((*route, key, function.to_owned(), payload, two_way, timeout));
    }
    Ok(routes)
}

/// `text` with each `${stageVariables.name}` replaced; `Err(name)` for a variable the stage
/// does not have.
fn with_stage_variables(
    text: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${stageVariables.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${stageVariables.".len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(variables.get(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `id` is a function of the template.
fn is_function(cx: &Context<'_>, id: &str) -> bool {
    cx.resolver
        .resources
        .get(id)
        .is_some_and(|f| f.kind == "AWS::Serverless::Function" || f.kind == "AWS::Lambda::Function")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_variables_are_substituted_in_integration_uris() {
        let vars = BTreeMap::from([("fn".to_owned(), "Items".to_owned())]);
        assert_eq!(
            with_stage_variables(
                "arn:aws:lambda:r:1:function:${stageVariables.fn}/invocations",
                &vars
            ),
            Ok("arn:aws:lambda:r:1:function:Items/invocations".to_owned())
        );
        assert_eq!(
            with_stage_variables("x${stageVariables.nope}", &vars),
            Err("nope".to_owned())
        );
        assert_eq!(with_stage_variables("plain", &vars), Ok("plain".to_owned()));
    }

    #[test]
    fn the_most_common_payload_version_wins_with_a_notice() {
        let mut notices = Vec::new();
        let v = payload_of(
            "Api",
            &[PayloadVersion::V1, PayloadVersion::V1, PayloadVersion::V2],
            PayloadVersion::V2,
            &mut notices,
        );
        assert_eq!(v, PayloadVersion::V1);
        assert!(notices[0].contains("mix payload versions"), "{notices:?}");
        assert_eq!(
            payload_of("Api", &[], PayloadVersion::V2, &mut Vec::new()),
            PayloadVersion::V2
        );
    }
}

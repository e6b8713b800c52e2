//! What a WebSocket API is told: its stage, routes, selection expression and limits
//! ([`WebSocketApi`]), and their validation into the plan the server runs ([`Plan`]).

use std::collections::BTreeMap;
use std::time::Duration;

use coldstart_emulator::Emulator;
use coldstart_emulator::apigw::api_id;
use coldstart_emulator::auth::{Authorizer, AuthorizerKind, Authorizers};

use crate::error::Error;
use crate::selection::Selection;
use crate::wire;

/// An API Gateway WebSocket API to serve.
#[derive(Debug, Clone)]
pub struct WebSocketApi {
    /// The API's name; its `apiId` (10 lower-case characters) is made from it.
    pub name: String,
    /// The stage: clients connect to `ws://HOST:PORT/{stage}` and the `@connections` API is at
    /// `http://HOST:PORT/{stage}/@connections/{id}`. Letters, digits, `-` and `_`.
    pub stage: String,
    /// How a message picks its route, e.g. `$request.body.action` or
    /// `${request.body.service}/${request.body.action}`. Default: `$request.body.action`.
    pub route_selection: String,
    /// Route keys (`$connect`, `$disconnect`, `$default` or custom keys) and what they invoke.
    /// Without `$connect` every connection is accepted; without `$default` a message that
    /// selects no route gets a `Forbidden` error message. Default: none.
    pub routes: BTreeMap<String, RouteTarget>,
    /// A connection with no frame from its client for this long is closed (1001) and gets its
    /// `$disconnect`. Default: 10 minutes, as API Gateway.
    pub idle_timeout: Duration,
    /// A connection open this long is closed (1001) and gets its `$disconnect`. Default:
    /// 2 hours, as API Gateway.
    pub max_duration: Duration,
    /// Largest message a client may send, its frames reassembled; a bigger one closes the
    /// connection with 1009. Default: 128 KB (131072 bytes), as API Gateway.
    pub max_message_size: usize,
    /// Largest single frame a client may send; a bigger one closes the connection with 1009.
    /// Default: 32 KB, as API Gateway (clients must fragment bigger messages).
    pub max_frame_size: usize,
    /// The `$connect` route's authorizer (a Lambda `REQUEST` authorizer): it runs before
    /// `$connect`; a refusal answers the upgrade with 401, 403 or 500, and what it allows is
    /// every later event's `requestContext.authorizer`. Default: none.
    pub connect_authorizer: Option<Authorizer>,
}

/// What a route invokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The function's name.
    pub function: String,
    /// Send the function's answer back to the client (a route response): the `body` of a
    /// `{"statusCode": …, "body": …}` answer, a string answer's text, or any other JSON answer
    /// as JSON text. Only for message routes; ignored on `$connect` and `$disconnect`.
    /// Default: false.
    pub two_way: bool,
}

impl RouteTarget {
    /// A one-way route to `function`: its answer is not sent to the client.
    pub fn new(function: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            two_way: false,
        }
    }

    /// A two-way route to `function`: its answer is sent to the client.
    pub fn two_way(function: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            two_way: true,
        }
    }
}

impl WebSocketApi {
    /// An API named `name` on `stage`, with no routes and API Gateway's defaults.
    pub fn new(name: impl Into<String>, stage: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            stage: stage.into(),
            route_selection: "$request.body.action".into(),
            routes: BTreeMap::new(),
            idle_timeout: wire::IDLE_TIMEOUT,
            max_duration: wire::MAX_DURATION,
            max_message_size: wire::MAX_MESSAGE,
            max_frame_size: wire::MAX_FRAME,
            connect_authorizer: None,
        }
    }

    /// Adds (or replaces) the route `key`.
    pub fn route(mut self, key: impl Into<String>, target: RouteTarget) -> Self {
        self.routes.insert(key.into(), target);
        self
    }

    /// Checks the API against API Gateway's rules and against the functions `emulator` serves.
    pub fn validate(&self, emulator: &Emulator) -> Result<(), Error> {
        self.plan(&emulator.function_names()).map(drop)
    }

    /// The validated API, ready to serve; `functions` are the names that can be invoked.
    pub(crate) fn plan(&self, functions: &[String]) -> Result<Plan, Error> {
        let stage_ok = !self.stage.is_empty()
            && self
                .stage
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !stage_ok {
            return Err(Error::Stage(self.stage.clone()));
        }
        let selection =
            Selection::parse(&self.route_selection).map_err(|reason| Error::RouteSelection {
                expression: self.route_selection.clone(),
                reason,
            })?;
        for (key, target) in &self.routes {
            let reserved = [wire::CONNECT, wire::DISCONNECT, wire::DEFAULT];
            if key.is_empty() || (key.starts_with('$') && !reserved.contains(&key.as_str())) {
                return Err(Error::RouteKey(key.clone()));
            }
            if !functions.contains(&target.function) {
                return Err(Error::UnknownFunction {
                    route: key.clone(),
                    function: target.function.clone(),
                });
            }
        }
        if self.idle_timeout.is_zero() || self.max_duration.is_zero() {
            return Err(Error::Limit(
                "idle_timeout and max_duration must be above zero".into(),
            ));
        }
        if self.max_message_size == 0 || self.max_frame_size == 0 {
            return Err(Error::Limit(
                "max_message_size and max_frame_size must be above zero".into(),
            ));
        }
        if self.max_frame_size > self.max_message_size {
            return Err(Error::Limit(format!(
                "max_frame_size ({}) is above max_message_size ({})",
                self.max_frame_size, self.max_message_size
            )));
        }
        let authorizers = match &self.connect_authorizer {
            None => Authorizers::default(),
            Some(a) => {
                if let AuthorizerKind::Lambda { function, .. } = &a.kind
                    && !functions.contains(function)
                {
                    return Err(Error::UnknownFunction {
                        route: format!("{} (authorizer {})", wire::CONNECT, a.name),
                        function: function.clone(),
                    });
                }
                if !matches!(a.kind, AuthorizerKind::Lambda { .. }) {
                    return Err(Error::Limit(format!(
                        "authorizer {}: a WebSocket API's authorizer is a Lambda REQUEST authorizer",
                        a.name
                    )));
                }
                Authorizers::new(vec![a.clone()]).map_err(Error::Limit)?
            }
        };
        Ok(Plan {
            api_id: api_id(&self.name),
            api: self.clone(),
            selection,
            authorizers,
        })
    }
}

/// A validated API.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) api: WebSocketApi,
    /// `requestContext.apiId`.
    pub(crate) api_id: String,
    pub(crate) selection: Selection,
    /// The `$connect` authorizer, with its cache.
    pub(crate) authorizers: Authorizers,
}

/// The route a message goes to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Chosen<'a> {
    /// The route key (`$default` when nothing else matched).
    pub(crate) key: &'a str,
    pub(crate) target: &'a RouteTarget,
}

impl Plan {
    /// The route of a `$connect`, `$disconnect` or `$default` key, if configured.
    pub(crate) fn reserved(&self, key: &str) -> Option<&RouteTarget> {
        self.api.routes.get(key)
    }

    /// The route a message goes to: the key its text selects, else `$default`; `None` when
    /// neither exists. Binary messages (`text` is `None`) always go to `$default`.
    pub(crate) fn choose(&self, text: Option<&str>) -> Option<Chosen<'_>> {
        let selected = text.and_then(|t| self.selection.select(t));
        let custom = selected
            .filter(|key| !key.starts_with('$'))
            .and_then(|key| self.api.routes.get_key_value(key.as_str()));
        let (key, target) = custom.or_else(|| self.api.routes.get_key_value(wire::DEFAULT))?;
        Some(Chosen { key, target })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions() -> Vec<String> {
        vec!["chat".to_owned()]
    }

    fn api() -> WebSocketApi {
        WebSocketApi::new("Chat App", "dev")
            .route("$connect", RouteTarget::new("chat"))
            .route("$default", RouteTarget::two_way("chat"))
            .route("join", RouteTarget::new("chat"))
    }

    #[test]
    fn defaults_are_api_gateways() {
        let api = WebSocketApi::new("chat", "prod");
        assert_eq!(api.route_selection, "$request.body.action");
        assert_eq!(api.idle_timeout, Duration::from_secs(600));
        assert_eq!(api.max_duration, Duration::from_secs(7200));
        assert_eq!(api.max_message_size, 131_072);
        assert_eq!(api.max_frame_size, 32_768);
        assert!(api.routes.is_empty());
    }

    #[test]
    fn messages_choose_their_route_or_default() {
        let plan = api().plan(&functions()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.api_id, "chatapp000");
        let key = |text: Option<&str>| plan.choose(text).map(|c| c.key.to_owned());
        assert_eq!(key(Some(r#"{"action":"join"}"#)).as_deref(), Some("join"));
        assert_eq!(
            key(Some(r#"{"action":"nope"}"#)).as_deref(),
            Some("$default")
        );
        assert_eq!(key(Some("plain text")).as_deref(), Some("$default"));
        assert_eq!(key(None).as_deref(), Some("$default"));
        // Reserved keys are never selected by a message.
        assert_eq!(
            key(Some(r#"{"action":"$connect"}"#)).as_deref(),
            Some("$default")
        );
        let no_default = WebSocketApi::new("a", "b")
            .route("join", RouteTarget::new("chat"))
            .plan(&functions())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(no_default.choose(Some(r#"{"action":"nope"}"#)).is_none());
        assert!(no_default.choose(Some(r#"{"action":"join"}"#)).is_some());
    }

    #[test]
    fn invalid_apis_are_refused() {
        let plan = |api: WebSocketApi| api.plan(&functions()).err();
        let mut bad_selection = api();
        bad_selection.route_selection = "$request.header.x".into();
        assert!(matches!(
            plan(bad_selection),
            Some(Error::RouteSelection { .. })
        ));
        assert!(matches!(
            plan(api().route("x", RouteTarget::new("nope"))),
            Some(Error::UnknownFunction { function, .. }) if function == "nope"
        ));
        assert!(matches!(
            plan(api().route("$other", RouteTarget::new("chat"))),
            Some(Error::RouteKey(_))
        ));
        for stage in ["", "a/b", "$default"] {
            assert!(matches!(
                plan(WebSocketApi::new("a", stage)),
                Some(Error::Stage(_))
            ));
        }
        let mut zero = api();
        zero.idle_timeout = Duration::ZERO;
        assert!(matches!(plan(zero), Some(Error::Limit(_))));
        let mut frames = api();
        frames.max_frame_size = frames.max_message_size + 1;
        assert!(matches!(plan(frames), Some(Error::Limit(_))));
    }
}

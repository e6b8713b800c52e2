//! CORS as API Gateway applies it, which differs by API kind:
//!
//! - **HTTP APIs** (`CorsConfiguration`): API Gateway answers a preflight (`OPTIONS` with
//!   `Origin` and `Access-Control-Request-Method`) itself with a 204 when no route takes the
//!   `OPTIONS` request — an `OPTIONS`, `ANY` or `$default` route that matches still gets it, as
//!   the developer guide's "Configuring CORS for an HTTP API with a $default route" says. To
//!   every other response of a request with an allowed `Origin` it adds the configured headers,
//!   and it drops the CORS headers the integration sent ("API Gateway ignores CORS headers
//!   returned from your backend integration").
//! - **REST APIs** (SAM's `Cors`): SAM adds an `OPTIONS` method with a mock integration to every
//!   path that has none; it answers 200 `{}` with the configured values, whatever the origin.
//!   The real methods' responses are the function's own (Lambda proxy integration).
//!
//! Kept apart from the gateway's request flow so that the rules read, and test, on their own.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use crate::body::Body;

use super::route::Router;

/// How an API answers cross-origin requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCors {
    /// An HTTP API's `CorsConfiguration`.
    Http(HttpCors),
    /// A REST API's `Cors`, as SAM turns it into `OPTIONS` mock methods.
    Rest(RestCors),
}

/// An HTTP API's `CorsConfiguration`. Lists are sent joined with commas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpCors {
    /// Origins allowed (`https://app.example.com`), or `*` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight allows (`GET`, `*`). Default: none sent.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight allows (`authorization`, `*`). Default: none sent.
    pub allow_headers: Vec<String>,
    /// Response headers the browser may read. Default: none sent.
    pub expose_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`. Default: false.
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight. Default: not sent.
    pub max_age: Option<u32>,
}

/// A REST API's `Cors` (SAM), with the quotes of SAM's values taken off (`'*'` → `*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestCors {
    /// `Access-Control-Allow-Origin`, sent as it is.
    pub allow_origin: String,
    /// `Access-Control-Allow-Headers`. Default: not sent.
    pub allow_headers: Option<String>,
    /// `Access-Control-Allow-Methods`. Default: the path's methods and `OPTIONS`, as SAM computes
    /// them (every method when the path has `ANY`).
    pub allow_methods: Option<String>,
    /// `Access-Control-Max-Age`. Default: not sent.
    pub max_age: Option<u32>,
    /// `Access-Control-Allow-Credentials: true`. Default: false.
    pub allow_credentials: bool,
}

/// Marks a response API Gateway made for a preflight, so no integration rule touches it.
#[derive(Debug, Clone, Copy)]
struct Preflight;

/// Every method, as SAM lists them for a path with `ANY` (sorted).
const ALL_METHODS: &str = "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT";

/// The answer API Gateway gives itself, without invoking a function, for a request to `path`
/// (the stage already taken off); `None` when the request goes on to a route.
pub(crate) fn preflight(
    cors: Option<&ApiCors>,
    router: &Router,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    match cors? {
        ApiCors::Http(cors) => {
            let is_preflight = method == Method::OPTIONS
                && headers.contains_key(header::ORIGIN)
                && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
            (is_preflight && router.route(Method::OPTIONS.as_str(), path).is_none())
                .then(|| cors.preflight(headers))
        }
        ApiCors::Rest(cors) => {
            if method != Method::OPTIONS {
                return None;
            }
            // A path's own OPTIONS method wins: SAM adds the mock only where there is none.
            if router
                .route(Method::OPTIONS.as_str(), path)
                .is_some_and(|m| m.route.method() == Some(Method::OPTIONS.as_str()))
            {
                return None;
            }
            let methods = router.resource_methods(path)?;
            Some(cors.preflight(&methods))
        }
    }
}

/// Applies an HTTP API's CORS rules to a response of the request whose `Origin` was `origin`.
pub(crate) fn finish(
    cors: Option<&ApiCors>,
    origin: Option<&HeaderValue>,
    mut response: Response<Body>,
) -> Response<Body> {
    if let Some(ApiCors::Http(cors)) = cors
        && response.extensions().get::<Preflight>().is_none()
    {
        cors.decorate(origin, response.headers_mut());
    }
    response
}

impl HttpCors {
    /// The `Access-Control-Allow-Origin` for `origin`: `*` when any is allowed, the origin
    /// itself when listed, else nothing.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        self.allow_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    /// API Gateway's own answer to a preflight: 204, with the configured headers when the
    /// origin is allowed and none when it is not.
    fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let mut response = Response::new(Body::full(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.extensions_mut().insert(Preflight);
        let Some(origin) = self.allow_origin(request.get(header::ORIGIN)) else {
            return response;
        };
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        put_list(
            out,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &self.allow_methods,
        );
        put_list(
            out,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &self.allow_headers,
        );
        if let Some(age) = self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response
    }

    /// Replaces the integration's CORS headers with the configured ones.
    fn decorate(&self, origin: Option<&HeaderValue>, out: &mut HeaderMap) {
        let theirs: Vec<header::HeaderName> = out
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in theirs {
            out.remove(name);
        }
        let Some(origin) = self.allow_origin(origin) else {
            return;
        };
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        put_list(
            out,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            &self.expose_headers,
        );
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

impl RestCors {
    /// The `OPTIONS` mock's answer for a path whose methods are `methods` (`None` for `ANY`).
    fn preflight(&self, methods: &[Option<&str>]) -> Response<Body> {
        let mut response = Response::new(Body::full(Bytes::from_static(b"{}")));
        response.extensions_mut().insert(Preflight);
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        put(out, header::ACCESS_CONTROL_ALLOW_ORIGIN, &self.allow_origin);
        if let Some(headers) = &self.allow_headers {
            put(out, header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
        }
        let methods = self
            .allow_methods
            .clone()
            .unwrap_or_else(|| methods_of_path(methods));
        put(out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
        if let Some(age) = self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response
    }
}

/// SAM's `Access-Control-Allow-Methods` for a path: its methods and `OPTIONS`, upper-cased,
/// sorted and without repeats; every method when one of them is `ANY` (`None`).
fn methods_of_path(methods: &[Option<&str>]) -> String {
    if methods.iter().any(Option::is_none) {
        return ALL_METHODS.to_owned();
    }
    let mut all: Vec<String> = methods
        .iter()
        .flatten()
        .map(|m| m.to_ascii_uppercase())
        .chain([Method::OPTIONS.to_string()])
        .collect();
    all.sort();
    all.dedup();
    all.join(",")
}

fn put(out: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        out.insert(name, value);
    }
}

fn put_list(out: &mut HeaderMap, name: header::HeaderName, values: &[String]) {
    if !values.is_empty() {
        put(out, name, &values.join(","));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::route::RouteKey;

    fn router(keys: &[&str]) -> Router {
        Router::new(
            keys.iter()
                .map(|k| {
                    (
                        RouteKey::parse(k).unwrap_or_else(|e| panic!("{e}")),
                        "f".to_owned(),
                    )
                })
                .collect(),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }

    fn http() -> ApiCors {
        ApiCors::Http(HttpCors {
            allow_origins: vec!["https://app.example.com".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into(), "authorization".into()],
            expose_headers: vec!["x-request-id".into()],
            allow_credentials: true,
            max_age: Some(300),
        })
    }

    const PREFLIGHT: [(&str, &str); 2] = [
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
    ];

    fn value<'a>(r: &'a Response<Body>, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn an_http_api_answers_a_preflight_no_route_takes() {
        let cors = http();
        let r = router(&["POST /items"]);
        let answer = preflight(
            Some(&cors),
            &r,
            &Method::OPTIONS,
            "/items",
            &headers(&PREFLIGHT),
        );
        let Some(answer) = answer else {
            panic!("no preflight answer")
        };
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            value(&answer, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            value(&answer, "access-control-allow-methods"),
            Some("GET,POST")
        );
        assert_eq!(
            value(&answer, "access-control-allow-headers"),
            Some("content-type,authorization")
        );
        assert_eq!(value(&answer, "access-control-max-age"), Some("300"));
        assert_eq!(
            value(&answer, "access-control-allow-credentials"),
            Some("true")
        );
        // The preflight answer keeps its headers through `finish`.
        let answer = finish(Some(&cors), None, answer);
        assert!(value(&answer, "access-control-allow-methods").is_some());
    }

    #[test]
    fn a_matching_options_any_or_default_route_takes_the_preflight() {
        let cors = http();
        for keys in [
            &["OPTIONS /items"][..],
            &["ANY /items"],
            &["ANY /{proxy+}"],
            &["$default"],
        ] {
            let r = router(keys);
            let answer = preflight(
                Some(&cors),
                &r,
                &Method::OPTIONS,
                "/items",
                &headers(&PREFLIGHT),
            );
            assert!(answer.is_none(), "{keys:?}");
        }
        // Not a preflight (no Access-Control-Request-Method): routed as usual.
        let r = router(&["POST /items"]);
        let plain = headers(&[("origin", "https://app.example.com")]);
        assert!(preflight(Some(&cors), &r, &Method::OPTIONS, "/items", &plain).is_none());
        assert!(preflight(None, &r, &Method::OPTIONS, "/items", &headers(&PREFLIGHT)).is_none());
    }

    #[test]
    fn a_disallowed_origin_gets_no_cors_headers() {
        let cors = http();
        let r = router(&["POST /items"]);
        let request = headers(&[
            ("origin", "https://evil.example.com"),
            ("access-control-request-method", "POST"),
        ]);
        let answer = preflight(Some(&cors), &r, &Method::OPTIONS, "/items", &request);
        let Some(answer) = answer else {
            panic!("no preflight answer")
        };
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        assert!(
            answer
                .headers()
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")),
            "{:?}",
            answer.headers()
        );
    }

    #[test]
    fn responses_get_the_configured_headers_instead_of_the_integrations() {
        let cors = http();
        let integration = || {
            let mut r = Response::new(Body::full(Bytes::new()));
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("https://other.example.com"),
            );
            r.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("DELETE"),
            );
            r.headers_mut()
                .insert("x-own", HeaderValue::from_static("kept"));
            r
        };
        let origin = HeaderValue::from_static("https://app.example.com");
        let r = finish(Some(&cors), Some(&origin), integration());
        assert_eq!(
            value(&r, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            value(&r, "access-control-expose-headers"),
            Some("x-request-id")
        );
        assert_eq!(value(&r, "access-control-allow-credentials"), Some("true"));
        assert_eq!(value(&r, "access-control-allow-methods"), None);
        assert_eq!(value(&r, "x-own"), Some("kept"));
        // No Origin, or a foreign one: the integration's CORS headers are dropped all the same.
        let r = finish(Some(&cors), None, integration());
        assert_eq!(value(&r, "access-control-allow-origin"), None);
        let evil = HeaderValue::from_static("https://evil.example.com");
        let r = finish(Some(&cors), Some(&evil), integration());
        assert_eq!(value(&r, "access-control-allow-origin"), None);
        // No CORS configured: the integration's answer is left alone.
        let r = finish(None, Some(&origin), integration());
        assert_eq!(
            value(&r, "access-control-allow-origin"),
            Some("https://other.example.com")
        );
    }

    #[test]
    fn a_wildcard_origin_answers_star() {
        let cors = ApiCors::Http(HttpCors {
            allow_origins: vec!["*".into()],
            ..HttpCors::default()
        });
        let origin = HeaderValue::from_static("https://anyone.example");
        let r = finish(
            Some(&cors),
            Some(&origin),
            Response::new(Body::full(Bytes::new())),
        );
        assert_eq!(value(&r, "access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn a_rest_api_mocks_options_on_every_path_without_its_own() {
        let cors = ApiCors::Rest(RestCors {
            allow_origin: "https://app.example.com".into(),
            allow_headers: Some("Content-Type,X-Api-Key".into()),
            ..RestCors::default()
        });
        let r = router(&[
            "GET /items/{id}",
            "POST /items/{id}",
            "ANY /files/{proxy+}",
            "OPTIONS /own",
            "GET /own",
        ]);
        // Any OPTIONS request, with or without Origin: the mock does not look at it.
        let Some(answer) = preflight(Some(&cors), &r, &Method::OPTIONS, "/items/7", &headers(&[]))
        else {
            panic!("no mock answer")
        };
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            value(&answer, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(
            value(&answer, "access-control-allow-methods"),
            Some("GET,OPTIONS,POST")
        );
        assert_eq!(
            value(&answer, "access-control-allow-headers"),
            Some("Content-Type,X-Api-Key")
        );
        assert_eq!(value(&answer, "access-control-allow-credentials"), None);
        let any = preflight(
            Some(&cors),
            &r,
            &Method::OPTIONS,
            "/files/a/b",
            &headers(&[]),
        );
        assert_eq!(
            any.as_ref()
                .and_then(|a| value(a, "access-control-allow-methods")),
            Some(ALL_METHODS)
        );
        // The path's own OPTIONS method, a path that does not exist, another method: no mock.
        assert!(preflight(Some(&cors), &r, &Method::OPTIONS, "/own", &headers(&[])).is_none());
        assert!(preflight(Some(&cors), &r, &Method::OPTIONS, "/nowhere", &headers(&[])).is_none());
        assert!(preflight(Some(&cors), &r, &Method::GET, "/items/7", &headers(&[])).is_none());
        // The function's own answers are left as they are.
        let origin = HeaderValue::from_static("https://app.example.com");
        let r = finish(
            Some(&cors),
            Some(&origin),
            Response::new(Body::full(Bytes::new())),
        );
        assert!(r.headers().is_empty());
    }

    #[test]
    fn sam_lists_a_paths_methods_with_options() {
        assert_eq!(
            methods_of_path(&[Some("post"), Some("GET"), Some("GET")]),
            "GET,OPTIONS,POST"
        );
        assert_eq!(methods_of_path(&[Some("GET"), None]), ALL_METHODS);
    }
}

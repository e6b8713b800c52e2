//! Cross-origin resource sharing as a Function URL applies its `Cors` settings: a browser's
//! preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by the
//! URL itself without invoking the function, and every other response to an allowed origin
//! gets the `Access-Control-*` headers, which win over any the function set ("If there are
//! conflicting headers, the configured CORS headers on the function URL take precedence",
//! Lambda developer guide, *Cross-origin resource sharing (CORS)*). An origin that is not
//! allowed gets no CORS headers, so the browser refuses the answer.
//!
//! Function URL rules only: API Gateway's CORS lives elsewhere.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};

use crate::body::Body;

/// The most origins, headers or exposed headers a `Cors` may list.
const MAX_LIST: usize = 100;
/// The most methods `AllowMethods` may list.
const MAX_METHODS: usize = 6;
/// The longest `MaxAge`, in seconds (a day).
pub const MAX_AGE_LIMIT: i64 = 86_400;
/// The methods `AllowMethods` may name (besides `*`).
const METHODS: [&str; 7] = ["GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*"];

/// A Function URL's `Cors` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlCors {
    /// Origins allowed to call the URL (`https://www.example.com`), or `*` for any.
    /// Default: none.
    pub allow_origins: Vec<String>,
    /// Methods a preflight allows (`GET`, `POST`, …, or `*`). Default: none.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight allows. Default: none.
    pub allow_headers: Vec<String>,
    /// Response headers the browser may show the caller. Default: none.
    pub expose_headers: Vec<String>,
    /// Whether cookies and other credentials may be sent. Default: false.
    pub allow_credentials: bool,
    /// How long, in seconds, a browser may cache a preflight's answer (0 to 86400).
    /// Default: not sent, which browsers take as a few seconds.
    pub max_age: Option<i64>,
}

impl UrlCors {
    /// Checks the settings against Lambda's limits; on error, names the property (as in
    /// `AWS::Lambda::Url`) and what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (name, list) in [
            ("AllowOrigins", &self.allow_origins),
            ("AllowHeaders", &self.allow_headers),
            ("ExposeHeaders", &self.expose_headers),
        ] {
            if list.len() > MAX_LIST {
                return Err((
                    name,
                    format!("at most {MAX_LIST} items, not {}", list.len()),
                ));
            }
        }
        if let Some(origin) = self
            .allow_origins
            .iter()
            .find(|o| o.is_empty() || o.len() > 253)
        {
            return Err((
                "AllowOrigins",
                format!("an origin has 1 to 253 characters, not {origin:?}"),
            ));
        }
        if self.allow_methods.len() > MAX_METHODS {
            return Err((
                "AllowMethods",
                format!(
                    "at most {MAX_METHODS} methods, not {}",
                    self.allow_methods.len()
                ),
            ));
        }
        if let Some(bad) = self
            .allow_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err((
                "AllowMethods",
                format!("must be GET, PUT, HEAD, POST, PATCH, DELETE or *, not {bad:?}"),
            ));
        }
        if let Some(bad) = self
            .allow_headers
            .iter()
            .chain(&self.expose_headers)
            .find(|h| HeaderName::from_bytes(h.as_bytes()).is_err() && h.as_str() != "*")
        {
            let name = if self.allow_headers.contains(bad) {
                "AllowHeaders"
            } else {
                "ExposeHeaders"
            };
            return Err((name, format!("not a header name: {bad:?}")));
        }
        if let Some(age) = self.max_age
            && !(0..=MAX_AGE_LIMIT).contains(&age)
        {
            return Err((
                "MaxAge",
                format!("must be 0 to {MAX_AGE_LIMIT} seconds, not {age}"),
            ));
        }
        Ok(())
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    fn allowed_origin(&self, origin: &str) -> Option<HeaderValue> {
        if self.allow_origins.iter().any(|o| o == "*") {
            // A browser refuses `*` on a request with credentials: name the origin then.
            return if self.allow_credentials {
                HeaderValue::from_str(origin).ok()
            } else {
                Some(HeaderValue::from_static("*"))
            };
        }
        self.allow_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
            .then(|| HeaderValue::from_str(origin).ok())
            .flatten()
    }
}

/// Whether `method` and `headers` make a CORS preflight.
fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The URL's own answer to a preflight request, or `None` when the request is not one (it
/// then goes to the function). An origin that is not allowed gets a 200 without CORS
/// headers.
pub(crate) fn preflight(
    cors: &UrlCors,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if !is_preflight(method, headers) {
        return None;
    }
    let mut response = Response::new(Body::full(Bytes::new()));
    *response.status_mut() = StatusCode::OK;
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let Some(allow_origin) = origin.and_then(|o| cors.allowed_origin(o)) else {
        return Some(response);
    };
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if let Some(methods) = joined(&cors.allow_methods) {
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Some(allowed) = joined(&cors.allow_headers) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    }
    if let Some(age) = cors.max_age {
        out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    if cors.allow_credentials {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    Some(response)
}

/// Adds the CORS headers for the request's `Origin` to a response, replacing the function's
/// own; leaves the response alone when there is no `Origin` or it is not allowed.
pub(crate) fn decorate(cors: &UrlCors, request: &HeaderMap, response: &mut HeaderMap) {
    let origin = request.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let Some(allow_origin) = origin.and_then(|o| cors.allowed_origin(o)) else {
        return;
    };
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ] {
        response.remove(&name);
    }
    response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if let Some(exposed) = joined(&cors.expose_headers) {
        response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed);
    }
    if cors.allow_credentials {
        response.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// A list as one header value (`a,b`), `None` when empty.
fn joined(list: &[String]) -> Option<HeaderValue> {
    if list.is_empty() {
        return None;
    }
    HeaderValue::from_str(&list.join(",")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> UrlCors {
        UrlCors {
            allow_origins: vec!["https://app.example.com".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into(), "x-api-key".into()],
            expose_headers: vec!["x-request-id".into()],
            allow_credentials: true,
            max_age: Some(600),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_every_configured_header() {
        let h = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ]);
        let r = preflight(&cors(), &Method::OPTIONS, &h);
        let Some(r) = r else {
            panic!("a preflight must be answered");
        };
        assert_eq!(r.status(), 200);
        let out = r.headers();
        assert_eq!(
            out["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(out["access-control-allow-methods"], "GET,POST");
        assert_eq!(
            out["access-control-allow-headers"],
            "content-type,x-api-key"
        );
        assert_eq!(out["access-control-max-age"], "600");
        assert_eq!(out["access-control-allow-credentials"], "true");
    }

    #[test]
    fn a_preflight_from_another_origin_gets_no_cors_headers() {
        let h = headers(&[
            ("origin", "https://evil.example.net"),
            ("access-control-request-method", "POST"),
        ]);
        let Some(r) = preflight(&cors(), &Method::OPTIONS, &h) else {
            panic!("a preflight must be answered");
        };
        assert!(
            r.headers()
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-"))
        );
    }

    #[test]
    fn plain_options_and_other_methods_go_to_the_function() {
        let no_method = headers(&[("origin", "https://app.example.com")]);
        assert!(preflight(&cors(), &Method::OPTIONS, &no_method).is_none());
        let full = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(preflight(&cors(), &Method::GET, &full).is_none());
    }

    #[test]
    fn responses_to_allowed_origins_get_cors_headers_that_win_over_the_functions() {
        let request = headers(&[("origin", "https://app.example.com")]);
        let mut response = headers(&[
            ("access-control-allow-origin", "*"),
            ("content-type", "text/plain"),
        ]);
        decorate(&cors(), &request, &mut response);
        assert_eq!(
            response["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(
            response
                .get_all("access-control-allow-origin")
                .iter()
                .count(),
            1
        );
        assert_eq!(response["access-control-expose-headers"], "x-request-id");
        assert_eq!(response["access-control-allow-credentials"], "true");
        assert_eq!(response["content-type"], "text/plain");

        let mut untouched = headers(&[("x-a", "1")]);
        decorate(
            &cors(),
            &headers(&[("origin", "https://other.example")]),
            &mut untouched,
        );
        decorate(&cors(), &HeaderMap::new(), &mut untouched);
        assert_eq!(untouched.len(), 1);
    }

    #[test]
    fn a_wildcard_origin_answers_star_unless_credentials_are_allowed() {
        let any = UrlCors {
            allow_origins: vec!["*".into()],
            ..UrlCors::default()
        };
        let request = headers(&[("origin", "http://localhost:3000")]);
        let mut response = HeaderMap::new();
        decorate(&any, &request, &mut response);
        assert_eq!(response["access-control-allow-origin"], "*");
        let with_credentials = UrlCors {
            allow_credentials: true,
            ..any
        };
        let mut response = HeaderMap::new();
        decorate(&with_credentials, &request, &mut response);
        assert_eq!(
            response["access-control-allow-origin"],
            "http://localhost:3000"
        );
    }

    #[test]
    fn check_names_the_property_that_breaks_lambdas_limits() {
        assert_eq!(cors().check(), Ok(()));
        let bad_method = UrlCors {
            allow_methods: vec!["FETCH".into()],
            ..cors()
        };
        assert_eq!(bad_method.check().map_err(|e| e.0), Err("AllowMethods"));
        let bad_age = UrlCors {
            max_age: Some(86_401),
            ..cors()
        };
        assert_eq!(bad_age.check().map_err(|e| e.0), Err("MaxAge"));
        let bad_header = UrlCors {
            expose_headers: vec!["not a header".into()],
            ..cors()
        };
        assert_eq!(bad_header.check().map_err(|e| e.0), Err("ExposeHeaders"));
    }
}

//! API Gateway route keys (`GET /items/{id}`, `ANY /{proxy+}`, `$default`) and how a request
//! picks one: exact paths beat parameters, parameters beat greedy `{proxy+}`, a method beats
//! `ANY`, and `$default` catches the rest.

use std::collections::HashMap;

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    /// The key as written, e.g. `GET /items/{id}`.
    pub key: String,
    /// `None` for `ANY`.
    method: Option<String>,
    /// Path segments; `None` for `$default`.
    segments: Option<Vec<Segment>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// HTTP methods API Gateway routes on.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

impl RouteKey {
    /// Parses `$default` or `METHOD /path`.
    pub fn parse(key: &str) -> Result<RouteKey, String> {
        if key == "$default" {
            return Ok(RouteKey {
                key: key.to_owned(),
                method: None,
                segments: None,
            });
        }
        let Some((method, path)) = key.split_once(' ') else {
            return Err(format!(
                "route key {key:?} must be \"$default\" or \"METHOD /path\""
            ));
        };
        if !METHODS.contains(&method) {
            return Err(format!("route key {key:?}: unknown method {method}"));
        }
        if !path.starts_with('/') {
            return Err(format!("route key {key:?}: the path must start with /"));
        }
        let mut segments = Vec::new();
        let parts: Vec<&str> = path[1..].split('/').filter(|s| !s.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if name.ends_with('+') => {
                    if i + 1 != parts.len() {
                        return Err(format!(
                            "route key {key:?}: a greedy {{{name}}} must be last"
                        ));
                    }
                    Segment::Greedy(name.trim_end_matches('+').to_owned())
                }
                Some(name) if !name.is_empty() => Segment::Param(name.to_owned()),
                _ => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Ok(RouteKey {
            key: key.to_owned(),
            method: (method != "ANY").then(|| method.to_owned()),
            segments: Some(segments),
        })
    }

    /// The path template (`/items/{id}`), as REST APIs report `resource`; `/` for `$default`.
    pub fn resource(&self) -> &str {
        self.key.split_once(' ').map_or("/", |(_, path)| path)
    }

    /// The route's method; `None` for `ANY` and `$default`.
    pub(crate) fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Path parameters if `method` and `path` match this route.
    fn matches(&self, method: &str, path: &str) -> Option<HashMap<String, String>> {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        self.matches_path(path)
    }

    /// Path parameters if `path` matches this route's path, whatever the method.
    fn matches_path(&self, path: &str) -> Option<HashMap<String, String>> {
        let segments = self.segments.as_ref()?;
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = HashMap::new();
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(name.clone(), parts[i..].join("/"));
                    return Some(params);
                }
                Segment::Literal(text) => {
                    if parts.get(i) != Some(&text.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i)?;
                    let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                    params.insert(name.clone(), decoded.into_owned());
                }
            }
        }
        (parts.len() == segments.len()).then_some(params)
    }

    /// Orders matching routes: the smallest is the most specific.
    fn rank(&self) -> (usize, usize, usize, bool) {
        let segments = self.segments.as_deref().unwrap_or_default();
        let greedy = segments
            .iter()
            .filter(|s| matches!(s, Segment::Greedy(_)))
            .count();
        let params = segments
            .iter()
            .filter(|s| matches!(s, Segment::Param(_)))
            .count();
        let literals = segments.len() - greedy - params;
        (greedy, params, usize::MAX - literals, self.method.is_none())
    }
}

/// The routes of one API, each to a function.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(RouteKey, String)>,
}

/// The route a request took.
#[derive(Debug)]
pub(crate) struct Matched<'a> {
    pub(crate) route: &'a RouteKey,
    pub(crate) function: &'a str,
    pub(crate) params: HashMap<String, String>,
}

impl Router {
    /// A router over `(route key, function)` pairs.
    pub fn new(routes: Vec<(RouteKey, String)>) -> Self {
        Self { routes }
    }

    pub(crate) fn route(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let best = self
            .routes
            .iter()
            .filter_map(|(route, function)| {
                route
                    .matches(method, path)
                    .map(|params| (route, function, params))
            })
            .min_by_key(|(route, _, _)| route.rank());
        if let Some((route, function, params)) = best {
            return Some(Matched {
                route,
                function,
                params,
            });
        }
        self.routes
            .iter()
            .find(|(route, _)| route.segments.is_none())
            .map(|(route, function)| Matched {
                route,
                function,
                params: HashMap::new(),
            })
    }

    /// The methods (`None` for `ANY`) of the most specific path template that matches `path`,
    /// as a REST API picks a resource before a method; `None` when no template matches.
    pub(crate) fn resource_methods(&self, path: &str) -> Option<Vec<Option<&str>>> {
        let resource = self
            .routes
            .iter()
            .filter(|(route, _)| route.matches_path(path).is_some())
            .min_by_key(|(route, _)| {
                let (greedy, params, literals, _) = route.rank();
                (greedy, params, literals)
            })?
            .0
            .resource();
        Some(
            self.routes
                .iter()
                .filter(|(route, _)| route.segments.is_some() && route.resource() == resource)
                .map(|(route, _)| route.method())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(keys: &[&str]) -> Router {
        Router::new(
            keys.iter()
                .map(|k| {
                    (
                        RouteKey::parse(k).unwrap_or_else(|e| panic!("{e}")),
                        (*k).to_owned(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn the_most_specific_route_wins() {
        let r = router(&[
            "$default",
            "ANY /{proxy+}",
            "GET /items/{id}",
            "GET /items/special",
            "ANY /items/{id}",
        ]);
        let m = r
            .route("GET", "/items/special")
            .map(|m| m.function.to_owned());
        assert_eq!(m.as_deref(), Some("GET /items/special"));
        let m = r.route("GET", "/items/42");
        assert_eq!(m.as_ref().map(|m| m.function), Some("GET /items/{id}"));
        assert_eq!(
            m.map(|m| m.params.get("id").cloned()),
            Some(Some("42".into()))
        );
        assert_eq!(
            r.route("DELETE", "/items/42").map(|m| m.function),
            Some("ANY /items/{id}")
        );
        let greedy = r.route("POST", "/a/b/c");
        assert_eq!(greedy.as_ref().map(|m| m.function), Some("ANY /{proxy+}"));
        assert_eq!(
            greedy.map(|m| m.params.get("proxy").cloned()),
            Some(Some("a/b/c".into()))
        );
        assert_eq!(r.route("GET", "/").map(|m| m.function), Some("$default"));
    }

    #[test]
    fn no_route_and_no_default_is_none() {
        let r = router(&["GET /hello"]);
        assert!(r.route("GET", "/hello").is_some());
        assert!(r.route("POST", "/hello").is_none());
        assert!(r.route("GET", "/hello/there").is_none());
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in ["GET", "FETCH /x", "GET x", "GET /{a+}/b"] {
            assert!(RouteKey::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RouteKey::parse("GET /items/{id}")
                .map(|r| r.resource().to_owned())
                .ok()
                .as_deref(),
            Some("/items/{id}")
        );
    }
}

//! Per-route throttling, as API Gateway stages apply it: a token bucket per route holding up
//! to the burst limit and refilled at the rate limit; a request that finds it empty gets 429
//! `{"message":"Too Many Requests"}` and never reaches the function.
//!
//! HTTP APIs set limits per route key (`DefaultRouteSettings`, `RouteSettings`); REST APIs per
//! method (`MethodSettings`, with `*` for any resource or method). Both are written here as
//! route-key patterns.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests admitted at once (`ThrottlingBurstLimit`); 0 refuses every request.
    pub burst: u32,
    /// Requests per second refilled (`ThrottlingRateLimit`).
    pub rate: f64,
}

/// A stage's throttling settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throttle {
    /// The limit of every route without one of its own. Default: none (unthrottled).
    pub default: Option<RateLimit>,
    /// Limits by route-key pattern: a route key (`GET /items/{id}`, `$default`), or `METHOD
    /// PATH` with `*` for either part (`* /items/{id}`, `GET *`, `* *`). The most specific
    /// pattern wins: an exact key, then a given path, then a given method.
    pub routes: Vec<(String, RateLimit)>,
}

impl Throttle {
    /// The limit of the route `key`, if it has one.
    pub fn limit_for(&self, key: &str) -> Option<RateLimit> {
        let (method, path) = key.split_once(' ').unwrap_or((key, key));
        self.routes
            .iter()
            .filter_map(|(pattern, limit)| {
                if pattern == key {
                    return Some((4, *limit));
                }
                let (m, p) = pattern.split_once(' ')?;
                let method_ok = m == "*" || m == method;
                let path_ok = p == "*" || p == path;
                (method_ok && path_ok)
                    .then_some((2 * u8::from(p != "*") + u8::from(m != "*"), *limit))
            })
            .max_by_key(|(score, _)| *score)
            .map(|(_, limit)| limit)
            .or(self.default)
    }

    /// Whether any route is throttled.
    fn is_empty(&self) -> bool {
        self.default.is_none() && self.routes.is_empty()
    }
}

/// The buckets of one served API, one per route key, made on first use.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    throttle: Throttle,
    /// Held only to take a token; never across an await.
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    filled_at: Instant,
}

impl Buckets {
    pub(crate) fn new(throttle: Throttle) -> Self {
        Self {
            throttle,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for a request to route `key`; false when the route is over its limit.
    pub(crate) fn admit(&self, key: &str) -> bool {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: &str, now: Instant) -> bool {
        if self.throttle.is_empty() {
            return true;
        }
        let Some(limit) = self.throttle.limit_for(key) else {
            return true;
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            filled_at: now,
        });
        let elapsed = now
            .saturating_duration_since(bucket.filled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.rate).min(f64::from(limit.burst));
        bucket.filled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limit(burst: u32, rate: f64) -> RateLimit {
        RateLimit { burst, rate }
    }

    #[test]
    fn the_burst_is_admitted_then_the_rate_refills() {
        let buckets = Buckets::new(Throttle {
            default: Some(limit(2, 1.0)),
            routes: Vec::new(),
        });
        let t0 = Instant::now();
        assert!(buckets.admit_at("GET /a", t0));
        assert!(buckets.admit_at("GET /a", t0));
        assert!(!buckets.admit_at("GET /a", t0), "beyond the burst");
        // Each route has its own bucket.
        assert!(buckets.admit_at("GET /b", t0));
        // Half a second refills half a token: still refused; a whole second, one request.
        assert!(!buckets.admit_at("GET /a", t0 + Duration::from_millis(500)));
        assert!(buckets.admit_at("GET /a", t0 + Duration::from_millis(1000)));
        assert!(!buckets.admit_at("GET /a", t0 + Duration::from_millis(1000)));
        // Never more than the burst, however long the wait.
        let later = t0 + Duration::from_secs(3600);
        assert!(buckets.admit_at("GET /a", later));
        assert!(buckets.admit_at("GET /a", later));
        assert!(!buckets.admit_at("GET /a", later));
    }

    #[test]
    fn a_zero_burst_refuses_everything_and_no_limit_admits_everything() {
        let zero = Buckets::new(Throttle {
            default: Some(limit(0, 100.0)),
            routes: Vec::new(),
        });
        assert!(!zero.admit("GET /a"));
        let open = Buckets::new(Throttle::default());
        assert!((0..1000).all(|_| open.admit("GET /a")));
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let t = Throttle {
            default: Some(limit(100, 100.0)),
            routes: vec![
                ("* *".into(), limit(1, 1.0)),
                ("GET *".into(), limit(2, 1.0)),
                ("* /items/{id}".into(), limit(3, 1.0)),
                ("GET /items/{id}".into(), limit(4, 1.0)),
                ("$default".into(), limit(5, 1.0)),
            ],
        };
        let burst = |key: &str| t.limit_for(key).map(|l| l.burst);
        assert_eq!(burst("GET /items/{id}"), Some(4));
        assert_eq!(burst("POST /items/{id}"), Some(3));
        assert_eq!(burst("GET /other"), Some(2));
        assert_eq!(burst("POST /other"), Some(1));
        assert_eq!(burst("$default"), Some(5));
        let only_default = Throttle {
            default: Some(limit(7, 1.0)),
            routes: vec![("GET /x".into(), limit(1, 1.0))],
        };
        assert_eq!(only_default.limit_for("GET /y").map(|l| l.burst), Some(7));
        assert_eq!(Throttle::default().limit_for("GET /y"), None);
    }
}

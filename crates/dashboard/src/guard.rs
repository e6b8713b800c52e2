//! Who may talk to the dashboard: requests whose `Host` names the dashboard by an IP address or
//! `localhost` (never another name, so a DNS-rebinding page cannot reach it) on the port it is
//! bound to, and, when they carry an `Origin`, whose origin is the dashboard itself (so no other
//! site can make a browser invoke functions through it). Loopback-bound, only loopback addresses
//! count. Everything else gets 403.

use std::net::{IpAddr, SocketAddr};

/// Why a request was refused, for the 403's message; `None`: it may pass.
pub(crate) fn refusal(
    host: Option<&str>,
    origin: Option<&str>,
    bound: SocketAddr,
) -> Option<&'static str> {
    let Some(host) = host else {
        return Some("a Host header is required");
    };
    if !authority_allowed(host, bound) {
        return Some("the Host header does not name this dashboard (DNS rebinding is refused)");
    }
    if let Some(origin) = origin {
        let same = origin
            .strip_prefix("http://")
            .is_some_and(|authority| authority_allowed(authority, bound));
        if !same {
            return Some("requests from other origins are refused");
        }
    }
    None
}

/// Whether `authority` (`host[:port]`) names the dashboard bound at `bound`.
fn authority_allowed(authority: &str, bound: SocketAddr) -> bool {
    let (host, port) = split_authority(authority);
    let port_ok = match port {
        Some(port) => port.parse::<u16>().ok() == Some(bound.port()),
        None => bound.port() == 80,
    };
    if !port_ok {
        return false;
    }
    let loopback_only = bound.ip().is_loopback();
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if loopback_only => ip.is_loopback(),
        Ok(ip) => bound.ip().is_unspecified() || ip == bound.ip() || ip.is_loopback(),
        Err(_) => false,
    }
}

/// `host` and `port` of `host[:port]` or `[v6][:port]`.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return (authority, None);
        };
        return (ip, after.strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 2999))
    }

    #[test]
    fn the_dashboards_own_names_pass() {
        for host in [
            "127.0.0.1:2999",
            "localhost:2999",
            "LOCALHOST:2999",
            "[::1]:2999",
        ] {
            assert_eq!(refusal(Some(host), None, loopback()), None, "{host}");
        }
        assert_eq!(
            refusal(
                Some("127.0.0.1:2999"),
                Some("http://localhost:2999"),
                loopback()
            ),
            None
        );
    }

    #[test]
    fn rebinding_names_other_ports_and_foreign_origins_are_refused() {
        for host in [
            "evil.example:2999",
            "127.0.0.1.nip.io:2999",
            "127.0.0.1:80",
            "127.0.0.1",
            "192.168.1.5:2999",
        ] {
            assert!(refusal(Some(host), None, loopback()).is_some(), "{host}");
        }
        assert!(refusal(None, None, loopback()).is_some());
        for origin in [
            "http://evil.example",
            "https://127.0.0.1:2999",
            "null",
            "http://127.0.0.1:3000",
        ] {
            assert!(
                refusal(Some("127.0.0.1:2999"), Some(origin), loopback()).is_some(),
                "{origin}"
            );
        }
    }

    #[test]
    fn bound_to_every_address_any_ip_literal_passes_but_no_name_but_localhost() {
        let all = SocketAddr::from(([0, 0, 0, 0], 2999));
        assert_eq!(refusal(Some("192.168.1.5:2999"), None, all), None);
        assert_eq!(refusal(Some("localhost:2999"), None, all), None);
        assert!(refusal(Some("dev.example:2999"), None, all).is_some());
    }
}

//! API Gateway's conventions shared by every front door that plays API Gateway (the HTTP and
//! REST APIs here, the WebSocket APIs of `coldstart-websocket`): API ids, query strings, and the
//! time formats of `requestContext` and of the `@connections` API.

pub use crate::clock::{clf, epoch_ms, iso_millis};

/// A stable 10-character API id made from the API's name, like API Gateway's (`chatapp000`).
pub fn api_id(name: &str) -> String {
    let mut id: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    id.push_str("0000000000");
    id.truncate(10);
    id
}

/// Decoded `key=value` pairs of a query string, in order (`+` is a space).
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn ids_queries_and_times_have_api_gateways_shape() {
        assert_eq!(api_id("chat-app"), "chatapp000");
        assert_eq!(api_id("averyveryverylongname"), "averyveryv");
        assert_eq!(
            query_pairs("a=1&a=2&b=x+y&c&d=%3D"),
            [("a", "1"), ("a", "2"), ("b", "x y"), ("c", ""), ("d", "=")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let t = UNIX_EPOCH + Duration::from_millis(1_674_162_806_344);
        assert_eq!(clf(t), "19/Jan/2023:21:13:26 +0000");
        assert_eq!(epoch_ms(t), 1_674_162_806_344);
        assert_eq!(iso_millis(t), "2023-01-19T21:13:26.344Z");
        assert_eq!(
            iso_millis(UNIX_EPOCH + Duration::from_millis(1_709_164_800_000)),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            clf(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "29/Feb/2000:00:00:00 +0000"
        );
    }
}

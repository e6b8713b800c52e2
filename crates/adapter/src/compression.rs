//! Gzip of buffered responses (`AWS_LWA_ENABLE_COMPRESSION`).
//!
//! A response is compressed only when all of these hold: the client's `Accept-Encoding` allows
//! gzip, the app did not encode it already, its content type is textual (and not an event
//! stream), it is at least [`MIN_SIZE`] bytes, its status has a body, and it does not forbid
//! transformation (`Cache-Control: no-transform`). Streamed responses are never compressed: a
//! compressor holds bytes back, which is what streaming is meant to avoid.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::response::{AppResponse, is_textual};

/// Bodies smaller than this are sent as they are: gzip's framing would outweigh the savings.
pub const MIN_SIZE: usize = 32;

/// Whether an `Accept-Encoding` request header allows gzip (`gzip` or `*` with a non-zero q).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && quality > 0.0
        })
}

/// Gzips `response` in place when the rules above allow it; returns whether it did.
pub fn gzip(response: &mut AppResponse) -> bool {
    let headers = &response.headers;
    let textual = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| is_textual(ct) && !ct.trim().starts_with("text/event-stream"));
    let no_transform = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-transform"));
    let has_body = !(response.status.is_informational()
        || response.status == StatusCode::NO_CONTENT
        || response.status == StatusCode::NOT_MODIFIED);
    if !textual
        || no_transform
        || !has_body
        || headers.contains_key(header::CONTENT_ENCODING)
        || response.body.len() < MIN_SIZE
    {
        return false;
    }
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(response.body.len() / 2),
        Compression::default(),
    );
    let Ok(compressed) = encoder
        .write_all(&response.body)
        .and_then(|()| encoder.finish())
    else {
        return false;
    };
    response.body = Bytes::from(compressed);
    let headers = &mut response.headers;
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    true
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
        );
        headers
    }

    fn response(content_type: &str, body: &str) -> AppResponse {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap_or_else(|e| panic!("{e}")),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        AppResponse {
            status: StatusCode::OK,
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts_gzip(&accept("gzip, deflate, br")));
        assert!(accepts_gzip(&accept("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&accept("*")));
        assert!(!accepts_gzip(&accept("gzip;q=0")));
        assert!(!accepts_gzip(&accept("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn textual_bodies_are_gzipped_and_round_trip() {
        let text = "hello, compressible world! ".repeat(20);
        let mut r = response("text/html; charset=utf-8", &text);
        assert!(gzip(&mut r));
        assert_eq!(r.headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(r.headers[header::VARY], "accept-encoding");
        assert!(!r.headers.contains_key(header::CONTENT_LENGTH));
        assert!(r.body.len() < text.len());
        let mut decoded = String::new();
        GzDecoder::new(&r.body[..])
            .read_to_string(&mut decoded)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded, text);
    }

    #[test]
    fn other_bodies_are_left_alone() {
        let long = "x".repeat(100);
        for mut r in [
            response("image/png", &long),
            response("text/event-stream", &long),
            response("text/plain", "short"),
        ] {
            assert!(!gzip(&mut r), "{:?}", r.headers);
        }
        let mut encoded = response("text/plain", &long);
        encoded
            .headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(!gzip(&mut encoded));
        let mut no_transform = response("text/plain", &long);
        no_transform.headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, no-transform"),
        );
        assert!(!gzip(&mut no_transform));
    }
}

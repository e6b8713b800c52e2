//! Identifiers and timestamps in the formats Lambda uses: request ids, trace ids, log stream
//! names, epoch milliseconds and ISO-8601 times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch of `t`.
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh request id: a random UUID, as Lambda's.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A fresh, unsampled X-Ray trace header: `Root=1-{time}-{random};Parent={random};Sampled=0`.
pub(crate) fn trace_id() -> String {
    let r = uuid::Uuid::new_v4().into_bytes();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut out = format!("Root=1-{secs:08x}-");
    push_hex(&mut out, &r[..12]);
    out.push_str(";Parent=");
    push_hex(&mut out, &r[8..16]);
    out.push_str(";Sampled=0");
    out
}

/// A log stream name as Lambda writes it: `2024/01/31/[$LATEST]{32 hex digits}`.
pub(crate) fn log_stream_name() -> String {
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut out = date.get(..10).unwrap_or("1970-01-01").replace('-', "/");
    out.push_str("/[$LATEST]");
    push_hex(&mut out, uuid::Uuid::new_v4().as_bytes());
    out
}

/// `2024-01-31T10:00:00.123Z`.
pub fn iso_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Common Log Format time, as API Gateway's `requestContext.time`: `21/Nov/2026:05:25:00 +0000`.
pub fn clf(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 2026-11-21T05:25:00Z
    let iso = humantime::format_rfc3339_seconds(t).to_string();
    let (Some(year), Some(month), Some(day), Some(time)) = (
        iso.get(0..4),
        iso.get(5..7),
        iso.get(8..10),
        iso.get(11..19),
    ) else {
        return iso;
    };
    let month = month
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!("{day}/{month}/{year}:{time} +0000")
}

/// Milliseconds with two decimals, as in `REPORT` lines.
pub(crate) fn ms2(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_has_xrays_shape() {
        let t = trace_id();
        let parts: Vec<&str> = t.split(';').collect();
        assert_eq!(parts.len(), 3, "{t}");
        assert!(parts[0].starts_with("Root=1-") && parts[0].len() == "Root=1-".len() + 8 + 1 + 24);
        assert_eq!(parts[1].len(), "Parent=".len() + 16);
        assert_eq!(parts[2], "Sampled=0");
    }

    #[test]
    fn log_stream_name_has_lambdas_shape() {
        let s = log_stream_name();
        assert_eq!(s.len(), "2024/01/31/[$LATEST]".len() + 32, "{s}");
        assert_eq!(&s[4..5], "/");
        assert!(s.contains("/[$LATEST]"));
    }

    #[test]
    fn clf_is_api_gateways_time_format() {
        let t = UNIX_EPOCH + Duration::from_secs(1_674_162_806);
        assert_eq!(clf(t), "19/Jan/2023:21:13:26 +0000");
    }

    #[test]
    fn ms2_has_two_decimals() {
        assert_eq!(ms2(Duration::from_micros(1224)), "1.22");
        assert_eq!(ms2(Duration::from_secs(3)), "3000.00");
    }
}

//! Identifiers and timestamps in API Gateway's formats: connection, request and message ids
//! (16 base64 characters ending in `=`), epoch milliseconds, Common Log Format and ISO-8601
//! times. Written here rather than borrowed from the emulator, whose helpers are private to it.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

/// A fresh id as API Gateway makes them: 11 random bytes in standard base64, e.g.
/// `L0SM9cOFvHcCIhw=`. Only letters and digits appear before the `=`, so ids are safe in paths
/// once `=` is encoded (`%3D`) and in JSON without escaping.
pub(crate) fn id() -> String {
    loop {
        let r = uuid::Uuid::new_v4().into_bytes();
        // Bytes 6 and 8 carry the UUID's version and variant bits; the other 14 are random.
        let bytes = [
            r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[9], r[10], r[11], r[12],
        ];
        let id = base64::engine::general_purpose::STANDARD.encode(bytes);
        if !id.contains(['+', '/']) {
            return id;
        }
    }
}

/// Milliseconds since the Unix epoch of `t`.
pub(crate) fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Common Log Format time, as `requestContext.requestTime`: `19/Jan/2023:21:13:26 +0000`.
pub(crate) fn clf(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = Civil::of(epoch_ms(t));
    let month = MONTHS.get(c.month as usize - 1).copied().unwrap_or("Jan");
    format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} +0000",
        c.day, c.year, c.hour, c.minute, c.second
    )
}

/// ISO-8601 with milliseconds, as the `@connections` API's times: `2024-01-31T10:00:00.000Z`.
pub(crate) fn iso_ms(epoch_ms: u64) -> String {
    let c = Civil::of(epoch_ms);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.milli
    )
}

/// A UTC calendar time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    milli: u64,
}

impl Civil {
    fn of(epoch_ms: u64) -> Self {
        let secs = epoch_ms / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            milli: epoch_ms % 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    #[test]
    fn ids_have_api_gateways_shape() {
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let id = id();
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.ends_with('='), "{id}");
            assert!(id[..15].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
            let decoded = base64::engine::general_purpose::STANDARD.decode(&id);
            assert_eq!(decoded.map(|d| d.len()).ok(), Some(11), "{id}");
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn times_are_formatted_as_api_gateway_does() {
        let t = UNIX_EPOCH + Duration::from_millis(1_674_162_806_344);
        assert_eq!(clf(t), "19/Jan/2023:21:13:26 +0000");
        assert_eq!(epoch_ms(t), 1_674_162_806_344);
        assert_eq!(iso_ms(1_674_162_806_344), "2023-01-19T21:13:26.344Z");
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        // A leap day, and the last millisecond of a year.
        assert_eq!(iso_ms(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(iso_ms(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(clf(leap), "29/Feb/2000:00:00:00 +0000");
    }
}

//! Identifiers in API Gateway's format: connection, request and message ids (16 base64
//! characters ending in `=`). Times and the other API Gateway formats come from
//! `coldstart_emulator::apigw`.

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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
}

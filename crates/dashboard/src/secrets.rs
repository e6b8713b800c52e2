//! Which environment values the dashboard never shows.
//!
//! The rule, documented in the README: a variable's value is hidden when its name is one of the
//! AWS credential variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_SECURITY_TOKEN`, `AWS_CONTAINER_AUTHORIZATION_TOKEN`), or when its name, upper-cased,
//! contains `SECRET`, `PASSWORD`, `PASSWD`, `TOKEN`, `KEY`, `CREDENTIAL`, `PRIVATE`, `AUTH`,
//! `SESSION`, `COOKIE` or `SIGNATURE`. The name is shown; the value becomes [`HIDDEN`]. The rule
//! errs on hiding: `MONKEY_COUNT` is hidden too.

use std::collections::BTreeMap;

/// What a hidden value is shown as.
pub const HIDDEN: &str = "(hidden)";

/// AWS's credential variables, hidden whatever the rule's words say.
const AWS_CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Words that mark a variable's name as holding a secret.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
    "SESSION",
    "COOKIE",
    "SIGNATURE",
];

/// Whether the value of the variable `name` is hidden.
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    AWS_CREDENTIALS.contains(&upper.as_str()) || SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// `env` with every secret value replaced by [`HIDDEN`].
pub fn redact(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| {
            let shown = if is_secret(k) { HIDDEN } else { v.as_str() };
            (k.clone(), shown.to_owned())
        })
        .collect()
}

/// Names a JSON preview may show although the rule's words are in them: AWS event fields
/// that hold no secret.
const SHOWN_NAMES: &[&str] = &["routeKey", "resourcePath"];

/// `text` (a JSON document, maybe cut short) with the value of every member whose name is
/// secret by [`is_secret`] replaced by `"(hidden)"`: a string, a number or a whole object or
/// array (an API event's `Authorization` and `Cookie` headers, its `cookies`, a
/// `password` field). A value cut off by the end of `text` is hidden too. Text that is not
/// JSON is returned as it is.
pub fn redact_json(text: &str) -> String {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Where the last string token began and ended, when it may be a member's name.
    let mut last_string: Option<(usize, usize)> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let end = string_end(bytes, i);
                out.push_str(&text[i..end]);
                last_string = Some((i, end));
                i = end;
            }
            b':' => {
                out.push(':');
                i += 1;
                let name = last_string.take().and_then(|(start, end)| {
                    serde_json::from_str::<String>(&text[start..end]).ok()
                });
                if !name.is_some_and(|n| is_secret(&n) && !SHOWN_NAMES.contains(&n.as_str())) {
                    continue;
                }
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    out.push(bytes[i] as char);
                    i += 1;
                }
                i = value_end(bytes, i);
                out.push_str(r#""(hidden)""#);
            }
            b if b.is_ascii_whitespace() => {
                out.push(b as char);
                i += 1;
            }
            _ => {
                last_string = None;
                let next = text[i..]
                    .char_indices()
                    .nth(1)
                    .map_or(text.len(), |(n, _)| i + n);
                out.push_str(&text[i..next]);
                i = next;
            }
        }
    }
    out
}

/// Where the JSON string opening at `start` ends (past its closing quote), or the end of
/// `bytes` when it is cut short.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Where the JSON value starting at `start` ends, or the end of `bytes` when it is cut short.
fn value_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = string_end(bytes, i);
                if depth == 0 {
                    return i;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return i,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' if depth == 0 => return i,
            b if depth == 0 && b.is_ascii_whitespace() => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_members_of_a_json_preview_are_hidden_even_when_it_is_cut_short() {
        let event = r#"{"routeKey":"GET /","headers":{"authorization":"Bearer abc","host":"x"},"cookies":["s=1","t=2"],"body":"{\"password\":\"hunter2\"}","user":{"password": 12, "name":"ann"},"n":[1,{"apiKey":{"a":[1]}}]}"#;
        let shown = redact_json(event);
        let value: serde_json::Value =
            serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: {shown}"));
        assert_eq!(value["routeKey"], "GET /");
        assert_eq!(value["headers"]["authorization"], HIDDEN);
        assert_eq!(value["headers"]["host"], "x");
        assert_eq!(value["cookies"], HIDDEN);
        assert_eq!(value["user"]["password"], HIDDEN);
        assert_eq!(value["user"]["name"], "ann");
        assert_eq!(value["n"][1]["apiKey"], HIDDEN);
        // A JSON body inside a string is text: its escaped names are not members.
        assert!(shown.contains("hunter2"), "{shown}");
        // Cut inside a secret value: nothing of it is shown.
        let cut = redact_json(r#"{"a":1,"token":"abcdef"#);
        assert_eq!(cut, r#"{"a":1,"token":"(hidden)""#);
        let cut = redact_json(r#"{"a":1,"secret":{"x":"abc"#);
        assert_eq!(cut, r#"{"a":1,"secret":"(hidden)""#);
        assert_eq!(redact_json("token=abc"), "token=abc");
        assert_eq!(redact_json("{\"é\":\"ü\"}"), "{\"é\":\"ü\"}");
    }

    #[test]
    fn credentials_and_secret_looking_names_are_hidden_and_the_rest_shown() {
        let env = BTreeMap::from([
            ("AWS_ACCESS_KEY_ID".to_owned(), "AKIA...".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "s3cr3t".to_owned()),
            ("AWS_SESSION_TOKEN".to_owned(), "tok".to_owned()),
            ("db_password".to_owned(), "hunter2".to_owned()),
            ("STRIPE_API_KEY".to_owned(), "sk_live".to_owned()),
            ("GITHUB_TOKEN".to_owned(), "ghp".to_owned()),
            ("TABLE_NAME".to_owned(), "orders".to_owned()),
            ("AWS_REGION".to_owned(), "eu-west-1".to_owned()),
        ]);
        let shown = redact(&env);
        for hidden in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "db_password",
            "STRIPE_API_KEY",
            "GITHUB_TOKEN",
        ] {
            assert_eq!(shown[hidden], HIDDEN, "{hidden}");
        }
        assert_eq!(shown["TABLE_NAME"], "orders");
        assert_eq!(shown["AWS_REGION"], "eu-west-1");
    }
}

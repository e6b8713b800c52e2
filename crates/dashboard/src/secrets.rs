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

#[cfg(test)]
mod tests {
    use super::*;

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

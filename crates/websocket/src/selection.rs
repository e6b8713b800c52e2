//! Route selection expressions: how a WebSocket API picks a route key from a message.
//!
//! API Gateway accepts `$request.body.{path}` (a JSON path into the message, e.g.
//! `$request.body.action` or `$request.body.meta.kind`) and templates that interpolate such paths
//! into text, e.g. `${request.body.service}/${request.body.action}`. Paths are dot-separated keys,
//! each optionally followed by array indices (`items[0]`). A missing path reads as the empty
//! string; strings are used as they are, other JSON values as their JSON text. A message that is
//! not JSON selects nothing (it goes to `$default`).

use serde_json::Value;

/// A parsed route selection expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied as it is.
    Literal(String),
    /// A value of the message body.
    Body(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

const BODY: &str = "request.body.";

impl Selection {
    /// Parses `expression`; the error says what is wrong with it.
    pub(crate) fn parse(expression: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        if let Some(path) = expression.strip_prefix('$').filter(|e| !e.starts_with('{')) {
            // `$request.body.a.b`: the whole expression is one path.
            parts.push(Part::Body(parse_reference(path)?));
        } else {
            let mut rest = expression;
            while let Some(start) = rest.find("${") {
                if start > 0 {
                    parts.push(Part::Literal(rest[..start].to_owned()));
                }
                let after = &rest[start + 2..];
                let end = after
                    .find('}')
                    .ok_or_else(|| "a `${` is not closed by `}`".to_owned())?;
                parts.push(Part::Body(parse_reference(&after[..end])?));
                rest = &after[end + 1..];
            }
            if !rest.is_empty() {
                parts.push(Part::Literal(rest.to_owned()));
            }
        }
        if !parts.iter().any(|p| matches!(p, Part::Body(_))) {
            return Err(
                "it must refer to the message body, as `$request.body.action` or `${request.body.action}`"
                    .into(),
            );
        }
        Ok(Selection { parts })
    }

    /// The route key `body` selects, or `None` when the body is not JSON.
    pub(crate) fn select(&self, body: &str) -> Option<String> {
        let json: Value = serde_json::from_str(body).ok()?;
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => key.push_str(text),
                Part::Body(steps) => {
                    let found = steps.iter().try_fold(&json, |value, step| match step {
                        Step::Key(k) => value.get(k.as_str()),
                        Step::Index(i) => value.get(*i),
                    });
                    match found {
                        None | Some(Value::Null) => {}
                        Some(Value::String(s)) => key.push_str(s),
                        Some(other) => key.push_str(&other.to_string()),
                    }
                }
            }
        }
        Some(key)
    }
}

/// `request.body.a.b[0]` → its steps.
fn parse_reference(reference: &str) -> Result<Vec<Step>, String> {
    let Some(path) = reference.strip_prefix(BODY) else {
        return Err(format!(
            "`{reference}`: WebSocket APIs select routes only from `request.body.…`"
        ));
    };
    let mut steps = Vec::new();
    for segment in path.split('.') {
        let (key, mut indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if key.is_empty() {
            return Err(format!("`{reference}` has an empty path segment"));
        }
        steps.push(Step::Key(key.to_owned()));
        while !indices.is_empty() {
            let index = indices
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
            let Some((index, rest)) = index else {
                return Err(format!("`{reference}` has a malformed array index"));
            };
            steps.push(Step::Index(index));
            indices = rest;
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(expression: &str, body: &str) -> Option<String> {
        Selection::parse(expression)
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
            .select(body)
    }

    #[test]
    fn a_body_path_selects_its_value() {
        let e = "$request.body.action";
        assert_eq!(select(e, r#"{"action":"join"}"#).as_deref(), Some("join"));
        assert_eq!(select(e, r#"{"other":1}"#).as_deref(), Some(""));
        assert_eq!(select(e, r#"{"action":null}"#).as_deref(), Some(""));
        assert_eq!(select(e, r#"{"action":7}"#).as_deref(), Some("7"));
        assert_eq!(select(e, r#"{"action":true}"#).as_deref(), Some("true"));
        assert_eq!(select(e, r#"["action"]"#).as_deref(), Some(""));
        assert_eq!(select(e, "not json"), None);
        let nested = "$request.body.meta.kinds[1]";
        assert_eq!(
            select(nested, r#"{"meta":{"kinds":["a","b"]}}"#).as_deref(),
            Some("b")
        );
        assert_eq!(
            select("$request.body.m", r#"{"m":{"x":1}}"#).as_deref(),
            Some(r#"{"x":1}"#)
        );
    }

    #[test]
    fn templates_interpolate_body_paths() {
        let e = "${request.body.service}/${request.body.action}";
        assert_eq!(
            select(e, r#"{"service":"chat","action":"send"}"#).as_deref(),
            Some("chat/send")
        );
        assert_eq!(
            select("${request.body.action}", r#"{"action":"x"}"#).as_deref(),
            Some("x")
        );
        assert_eq!(
            select("v1-${request.body.a}-end", r#"{"a":"b"}"#).as_deref(),
            Some("v1-b-end")
        );
        assert_eq!(select(e, r#"{"action":"send"}"#).as_deref(), Some("/send"));
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        for bad in [
            "",
            "action",
            "$request.header.x",
            "$request.body.",
            "$request.body.a..b",
            "$request.body",
            "${request.body.action",
            "${context.connectionId}",
            "$request.body.items[x]",
            "$request.body.items[0",
        ] {
            let err = Selection::parse(bad).err();
            assert!(err.is_some_and(|e| !e.is_empty()), "{bad:?} was accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_expression_and_message_select_without_a_panic(
            expression in "(\\$|\\{|\\}|request|\\.|body|action|\\[|\\]|[0-9]|/|\\PC){0,40}",
            body in "\\PC{0,80}",
        ) {
            if let Ok(selection) = Selection::parse(&expression) {
                let _ = selection.select(&body);
            }
        }

        #[test]
        fn a_body_path_selects_the_string_at_that_path(
            keys in proptest::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,8}", 1..4),
            value in "\\PC{0,20}",
        ) {
            let expression = format!("$request.body.{}", keys.join("."));
            let mut body = serde_json::Value::String(value.clone());
            for key in keys.iter().rev() {
                body = serde_json::json!({ key.as_str(): body });
            }
            proptest::prop_assert_eq!(select(&expression, &body.to_string()), Some(value));
        }

        #[test]
        fn a_message_that_is_not_json_selects_nothing(body in "[^\\[{\"0-9tfn -]\\PC{0,20}") {
            proptest::prop_assert_eq!(select("$request.body.action", &body), None);
        }
    }
}

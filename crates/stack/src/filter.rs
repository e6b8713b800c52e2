//! Lambda's event filtering (`FilterCriteria`): EventBridge-style patterns matched against an
//! event source's records. A pattern is a map whose leaves are lists of what a field may be:
//! values, `{"prefix": ..}`, `{"suffix": ..}`, `{"equals-ignore-case": ..}`,
//! `{"anything-but": ..}`, `{"exists": bool}`, `{"numeric": [">", 0, "<=", 5]}`. Every key of
//! the pattern must match (and), any item of a list may (or).

use serde_json::Value;

/// Checks that `pattern` is one Lambda accepts.
pub(crate) fn check(pattern: &Value) -> Result<(), String> {
    let Value::Object(map) = pattern else {
        return Err("a filter pattern is a JSON object".into());
    };
    for (key, v) in map {
        match v {
            Value::Object(_) => check(v)?,
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(op) = item {
                        let Some((name, _)) = op.iter().next() else {
                            return Err(format!("{key}: an empty matcher"));
                        };
                        if !matches!(
                            name.as_str(),
                            "prefix"
                                | "suffix"
                                | "equals-ignore-case"
                                | "anything-but"
                                | "exists"
                                | "numeric"
                        ) {
                            return Err(format!("{key}: unknown matcher {name:?}"));
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "{key}: a field's values are a list ([{other}]), not a single value"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `value` matches `pattern`.
pub(crate) fn matches(pattern: &Value, value: &Value) -> bool {
    let Value::Object(map) = pattern else {
        return false;
    };
    map.iter().all(|(key, p)| {
        let field = value.get(key);
        match p {
            Value::Object(_) => field.is_some_and(|f| matches(p, f)),
            Value::Array(items) => items.iter().any(|item| leaf(item, field)),
            _ => false,
        }
    })
}

/// One item of a leaf list against the field (absent: `None`). A list field matches when one of
/// its elements does.
fn leaf(item: &Value, field: Option<&Value>) -> bool {
    if let Value::Object(op) = item
        && let Some(exists) = op.get("exists")
    {
        return exists.as_bool() == Some(field.is_some());
    }
    let Some(field) = field else {
        return false;
    };
    if let Value::Array(elements) = field {
        return elements.iter().any(|e| leaf(item, Some(e)));
    }
    match item {
        Value::Object(op) => op.iter().all(|(name, arg)| match name.as_str() {
            "prefix" => text_op(field, arg, |f, a| f.starts_with(a)),
            "suffix" => text_op(field, arg, |f, a| f.ends_with(a)),
            "equals-ignore-case" => text_op(field, arg, |f, a| f.eq_ignore_ascii_case(a)),
            "anything-but" => match arg {
                Value::Array(no) => !no.contains(field),
                Value::Object(_) => !leaf(arg, Some(field)),
                v => v != field,
            },
            "numeric" => numeric(field, arg),
            _ => false,
        }),
        v => v == field,
    }
}

fn text_op(field: &Value, arg: &Value, op: impl Fn(&str, &str) -> bool) -> bool {
    matches!((field, arg), (Value::String(f), Value::String(a)) if op(f, a))
}

fn numeric(field: &Value, arg: &Value) -> bool {
    let (Some(x), Value::Array(terms)) = (field.as_f64(), arg) else {
        return false;
    };
    terms.chunks(2).all(|pair| match pair {
        [Value::String(op), n] => n.as_f64().is_some_and(|n| match op.as_str() {
            "=" => x == n,
            "<" => x < n,
            "<=" => x <= n,
            ">" => x > n,
            ">=" => x >= n,
            _ => false,
        }),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lambdas_documented_sqs_filters() {
        // Lambda developer guide, "Filtering events from an Amazon SQS event source": the
        // body's fields when it is JSON, the record's metadata otherwise.
        let record = json!({
            "messageId": "1",
            "attributes": {"ApproximateReceiveCount": "1"},
            "body": {"RequestCode": "BBBB", "Amount": 150, "Tags": ["a", "b"]},
        });
        for (pattern, expected) in [
            (json!({"body": {"RequestCode": ["BBBB"]}}), true),
            (json!({"body": {"RequestCode": ["AAAA"]}}), false),
            (json!({"body": {"RequestCode": [{"prefix": "BB"}]}}), true),
            (
                json!({"body": {"RequestCode": [{"anything-but": ["BBBB"]}]}}),
                false,
            ),
            (
                json!({"body": {"Amount": [{"numeric": [">", 100, "<=", 200]}]}}),
                true,
            ),
            (
                json!({"body": {"Amount": [{"numeric": ["<", 100]}]}}),
                false,
            ),
            (json!({"body": {"Missing": [{"exists": false}]}}), true),
            (json!({"body": {"Tags": ["b"]}}), true),
            (
                json!({"attributes": {"ApproximateReceiveCount": ["1"]}}),
                true,
            ),
        ] {
            assert!(check(&pattern).is_ok(), "{pattern}");
            assert_eq!(matches(&pattern, &record), expected, "{pattern}");
        }
        assert!(check(&json!({"body": {"a": "b"}})).is_err());
        assert!(check(&json!({"body": {"a": [{"wildcard-ish": 1}]}})).is_err());
    }
}

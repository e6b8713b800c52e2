//! Template text to a [`serde_json::Value`] tree, with CloudFormation's short tags (`!Ref`,
//! `!Sub`, `!GetAtt a.b`, ...) rewritten to their long forms (`{"Ref": ...}`, `{"Fn::Sub": ...}`).
//!
//! Everything after this module works on JSON values only, so YAML and JSON templates are
//! resolved by the same code. Syntax errors carry the line and column of the text.

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Location};

/// How deeply a template may nest (CloudFormation documents nest a dozen levels at most); deeper
/// input is refused rather than risking the stack.
const MAX_DEPTH: usize = 200;

/// Short tags and the long form's key. `!GetAtt` and `!Condition` are handled apart.
const SHORT_TAGS: [&str; 18] = [
    "Ref",
    "Sub",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "And",
    "Or",
    "Not",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
    "Transform",
    "Length",
    "ToJsonString",
];

/// Parses a YAML or JSON template; `file` names it in errors.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Value, Error> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| {
            Error::invalid(
                file,
                Location::Span {
                    line: e.line(),
                    column: e.column(),
                },
                format!("invalid JSON: {}", lowercase_first(&e.to_string())),
            )
        });
    }
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        Error::invalid(
            file,
            Location::Span {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    let Some(doc) = docs.first() else {
        return Err(Error::invalid(
            file,
            Location::File,
            "the template is empty",
        ));
    };
    convert(file, doc, 0)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_lowercase().chain(chars).collect::<String>()
    })
}

fn at(file: &Path, node: &MarkedYaml<'_>, message: String) -> Error {
    Error::invalid(
        file,
        Location::Span {
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        },
        message,
    )
}

fn convert(file: &Path, node: &MarkedYaml<'_>, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(at(
            file,
            node,
            format!("the template nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|item| convert(file, item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let key = match &key.data {
                    YamlData::Value(scalar) => scalar_key(scalar),
                    YamlData::Representation(text, _, _) => text.to_string(),
                    _ => return Err(at(file, key, "a mapping key must be a scalar".into())),
                };
                map.insert(key, convert(file, value, depth + 1)?);
            }
            Value::Object(map)
        }
        YamlData::Tagged(tag, inner) => {
            let value = convert(file, inner, depth + 1)?;
            if tag.handle != "!" {
                return Err(at(
                    file,
                    node,
                    format!("unknown tag {}{}", tag.handle, tag.suffix),
                ));
            }
            long_form(&tag.suffix, value).ok_or_else(|| {
                at(
                    file,
                    node,
                    format!(
                        "unknown tag !{}: CloudFormation has no such function",
                        tag.suffix
                    ),
                )
            })?
        }
        YamlData::Alias(_) => return Err(at(file, node, "an alias that names no anchor".into())),
        YamlData::BadValue => {
            return Err(at(file, node, "a value that does not match its tag".into()));
        }
    })
}

/// The long form of `!<name> value`, or `None` for an unknown tag.
fn long_form(name: &str, value: Value) -> Option<Value> {
    let (key, value) = match name {
        "Condition" => ("Condition".to_owned(), value),
        "GetAtt" => {
            let value = match value {
                // Logical ids have no dots: the first one separates the attribute, which may
                // have dots of its own (`Outputs.Name`).
                Value::String(s) => match s.split_once('.') {
                    Some((resource, attribute)) => Value::Array(vec![
                        Value::String(resource.to_owned()),
                        Value::String(attribute.to_owned()),
                    ]),
                    None => Value::String(s),
                },
                other => other,
            };
            ("Fn::GetAtt".to_owned(), value)
        }
        "Ref" => ("Ref".to_owned(), value),
        other if SHORT_TAGS.contains(&other) => (format!("Fn::{other}"), value),
        _ => return None,
    };
    let mut map = Map::new();
    map.insert(key, value);
    Some(Value::Object(map))
}

fn scalar_value(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number(Number::from(*i)),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

fn scalar_key(scalar: &Scalar<'_>) -> String {
    match scalar_value(scalar) {
        Value::String(s) => s,
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Value {
        parse(Path::new("t.yaml"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(text: &str) -> String {
        match parse(Path::new("t.yaml"), text) {
            Ok(v) => panic!("accepted: {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn short_tags_become_long_forms() {
        let v = yaml(
            "a: !Ref X\nb: !Sub '${X}-y'\nc: !GetAtt F.Arn\nd: !GetAtt [F, Arn]\ne: !Join [',', [a, b]]\nf: !Condition C\ng: !If [C, 1, 2]\nh: !GetAtt App.Outputs.Name\n",
        );
        assert_eq!(v["a"], json!({"Ref": "X"}));
        assert_eq!(v["b"], json!({"Fn::Sub": "${X}-y"}));
        assert_eq!(v["c"], json!({"Fn::GetAtt": ["F", "Arn"]}));
        assert_eq!(v["d"], json!({"Fn::GetAtt": ["F", "Arn"]}));
        assert_eq!(v["e"], json!({"Fn::Join": [",", ["a", "b"]]}));
        assert_eq!(v["f"], json!({"Condition": "C"}));
        assert_eq!(v["g"], json!({"Fn::If": ["C", 1, 2]}));
        assert_eq!(v["h"], json!({"Fn::GetAtt": ["App", "Outputs.Name"]}));
    }

    #[test]
    fn nested_short_tags_and_scalars_keep_their_types() {
        let v = yaml("a: !Select [0, !GetAZs '']\nb: 128\nc: true\nd: '2.0'\ne: 2.5\nf:\n");
        assert_eq!(v["a"], json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]}));
        assert_eq!(v["b"], json!(128));
        assert_eq!(v["c"], json!(true));
        assert_eq!(v["d"], json!("2.0"));
        assert_eq!(v["e"], json!(2.5));
        assert_eq!(v["f"], Value::Null);
    }

    #[test]
    fn json_text_is_read_as_json() {
        let v = yaml("{\"Resources\": {\"A\": {\"Type\": \"X\"}}}");
        assert_eq!(v["Resources"]["A"]["Type"], json!("X"));
    }

    #[test]
    fn syntax_errors_name_the_line_and_column() {
        let e = error("a: b\nc: [1, 2\n");
        assert!(e.starts_with("t.yaml:"), "{e}");
        assert!(e.contains("invalid YAML"), "{e}");
        let e = error("{\"a\": }");
        assert!(e.starts_with("t.yaml:1:"), "{e}");
        let e = error("a: 1\nb: !Reff X\n");
        assert!(e.starts_with("t.yaml:2:4:") && e.contains("!Reff"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let text = format!("a: {}1{}", "[".repeat(500), "]".repeat(500));
        let e = error(&text);
        assert!(e.contains("nests deeper") || e.contains("recursion"), "{e}");
    }
}

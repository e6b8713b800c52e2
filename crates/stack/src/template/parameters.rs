//! The `Parameters` section: each parameter's value (its override, else its `Default`), checked
//! against its `Type` and constraints, and SAM's `--parameter-overrides` syntax.
//!
//! Values are kept as CloudFormation hands them to `Ref`: a string, or a list of strings for
//! `CommaDelimitedList` and `List<...>` types.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Location};
use crate::template::intrinsics::{describe, text};

/// How a parameter's value is shaped and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    NumberList,
    List,
}

/// Reads the `Parameters` section with the command line's overrides.
///
/// An override for a parameter the template does not declare is ignored with a notice, as
/// `sam local` ignores it (`sam deploy` would have CloudFormation refuse it).
pub(crate) fn resolve(
    file: &Path,
    section: Option<&Value>,
    overrides: &[(String, String)],
    notices: &mut Vec<String>,
) -> Result<HashMap<String, Value>, Error> {
    let empty = Map::new();
    let declared = match section {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(Error::invalid(
                file,
                Location::path("Parameters"),
                format!("must be a map, not {}", describe(other)),
            ));
        }
    };
    let given: HashMap<&str, &str> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (key, _) in overrides {
        if !declared.contains_key(key) {
            notices.push(format!(
                "--parameter-overrides: {key} is not a parameter of the template; ignored"
            ));
        }
    }
    let mut values = HashMap::with_capacity(declared.len());
    for (name, declaration) in declared {
        let at = |suffix: &str, message: String| {
            let path = if suffix.is_empty() {
                format!("Parameters.{name}")
            } else {
                format!("Parameters.{name}.{suffix}")
            };
            Error::invalid(file, Location::Path(path), message)
        };
        let Value::Object(decl) = declaration else {
            return Err(at(
                "",
                format!("must be a map, not {}", describe(declaration)),
            ));
        };
        let Some(kind_name) = decl.get("Type").and_then(Value::as_str) else {
            return Err(at("Type", "a parameter needs a Type".into()));
        };
        let kind = match kind_name {
            "String" => Kind::String,
            "Number" => Kind::Number,
            "List<Number>" => Kind::NumberList,
            "CommaDelimitedList" => Kind::List,
            t if t.starts_with("AWS::SSM::Parameter::Value<") => {
                notices.push(format!(
                    "Parameters.{name}: {t} is read from SSM on AWS; locally it is the name given"
                ));
                if t.contains("List<") || t.contains("CommaDelimitedList") {
                    Kind::List
                } else {
                    Kind::String
                }
            }
            t if t.starts_with("List<AWS::") => Kind::List,
            t if t.starts_with("AWS::") => Kind::String,
            other => return Err(at("Type", format!("unknown parameter type {other}"))),
        };
        let raw: String = match given.get(name.as_str()) {
            Some(v) => (*v).to_owned(),
            None => match decl.get("Default") {
                None | Some(Value::Null) => {
                    return Err(at(
                        "",
                        "has no value: give it a Default or --parameter-overrides".into(),
                    ));
                }
                Some(Value::Array(items)) => {
                    items.iter().filter_map(text).collect::<Vec<_>>().join(",")
                }
                Some(v) => text(v).ok_or_else(|| {
                    at("Default", format!("must be a string, not {}", describe(v)))
                })?,
            },
        };
        let items: Vec<String> = match kind {
            Kind::String | Kind::Number => vec![raw.clone()],
            Kind::List | Kind::NumberList => raw.split(',').map(|s| s.trim().to_owned()).collect(),
        };
        check(name, decl, kind, &items, &at)?;
        let value = match kind {
            Kind::String | Kind::Number => Value::String(raw),
            Kind::List | Kind::NumberList => {
                Value::Array(items.into_iter().map(Value::String).collect())
            }
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Checks each item of a parameter's value against its type and constraints.
fn check(
    name: &str,
    decl: &Map<String, Value>,
    kind: Kind,
    items: &[String],
    at: &dyn Fn(&str, String) -> Error,
) -> Result<(), Error> {
    let why = |message: String| match decl.get("ConstraintDescription").and_then(Value::as_str) {
        Some(description) => format!("{message} ({description})"),
        None => message,
    };
    let allowed: Option<Vec<String>> = match decl.get("AllowedValues") {
        None => None,
        Some(Value::Array(values)) => Some(values.iter().filter_map(text).collect()),
        Some(other) => {
            return Err(at(
                "AllowedValues",
                format!("must be a list, not {}", describe(other)),
            ));
        }
    };
    let pattern = match decl.get("AllowedPattern").and_then(Value::as_str) {
        None => None,
        Some(p) => Some(
            // CloudFormation matches the whole value.
            regex_lite::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| at("AllowedPattern", format!("invalid pattern {p:?}: {e}")))?,
        ),
    };
    let number = |key: &str| -> Result<Option<f64>, Error> {
        match decl.get(key) {
            None => Ok(None),
            Some(v) => text(v)
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map(Some)
                .ok_or_else(|| at(key, format!("must be a number, not {}", describe(v)))),
        }
    };
    let (min_value, max_value) = (number("MinValue")?, number("MaxValue")?);
    let (min_length, max_length) = (number("MinLength")?, number("MaxLength")?);
    for item in items {
        if let Some(allowed) = &allowed
            && !allowed.iter().any(|a| a == item)
        {
            return Err(at(
                "",
                why(format!(
                    "{item:?} is not one of the allowed values of {name}: {}",
                    allowed.join(", ")
                )),
            ));
        }
        if let Some(pattern) = &pattern
            && !pattern.is_match(item)
        {
            return Err(at(
                "",
                why(format!(
                    "{item:?} does not match the allowed pattern {}",
                    pattern
                        .as_str()
                        .trim_start_matches("^(?:")
                        .trim_end_matches(")$")
                )),
            ));
        }
        match kind {
            Kind::Number | Kind::NumberList => {
                let Ok(n) = item.trim().parse::<f64>() else {
                    return Err(at("", format!("{item:?} is not a number")));
                };
                if min_value.is_some_and(|m| n < m) || max_value.is_some_and(|m| n > m) {
                    return Err(at(
                        "",
                        why(format!(
                            "{item} is outside {} to {}",
                            min_value.map_or("-".to_owned(), |m| m.to_string()),
                            max_value.map_or("-".to_owned(), |m| m.to_string())
                        )),
                    ));
                }
            }
            Kind::String | Kind::List => {
                let len = item.chars().count() as f64;
                if min_length.is_some_and(|m| len < m) || max_length.is_some_and(|m| len > m) {
                    return Err(at(
                        "",
                        why(format!(
                            "{item:?} is {len} characters long, outside {} to {}",
                            min_length.map_or("0".to_owned(), |m| m.to_string()),
                            max_length.map_or("-".to_owned(), |m| m.to_string())
                        )),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Splits `--parameter-overrides` arguments in both of SAM's forms: `Key=Value Key2=Value2`
/// (one argument may hold several pairs; values may be quoted with `"` or `'`) and
/// `ParameterKey=Key,ParameterValue=Value`.
pub fn parse_parameter_overrides(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for arg in args {
        let mut rest = arg.trim_start();
        while !rest.is_empty() {
            let (pair, after) = parse_pair(rest)?;
            pairs.push(pair);
            rest = after.trim_start();
        }
    }
    Ok(pairs)
}

/// One `Key=Value` or `ParameterKey=Key,ParameterValue=Value` at the start of `s`.
fn parse_pair(s: &str) -> Result<((String, String), &str), String> {
    let bad = || {
        let token = s.split_whitespace().next().unwrap_or(s);
        format!("expected Key=Value or ParameterKey=Key,ParameterValue=Value, not {token:?}")
    };
    if let Some(rest) = s.strip_prefix("ParameterKey=") {
        let (key, rest) = rest.split_once(",ParameterValue=").ok_or_else(bad)?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (value, rest) = parse_value(rest)?;
        return Ok(((key.to_owned(), value), rest));
    }
    let (key, rest) = s.split_once('=').ok_or_else(bad)?;
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(bad());
    }
    let (value, rest) = parse_value(rest)?;
    Ok(((key.to_owned(), value), rest))
}

/// A value up to the next whitespace, or quoted (`\` escapes the next character).
fn parse_value(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, first)) = chars.next() else {
        return Ok((String::new(), s));
    };
    if first != '"' && first != '\'' {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        return Ok((s[..end].to_owned(), &s[end..]));
    }
    let mut value = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            value.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == first {
            return Ok((value, &s[i + c.len_utf8()..]));
        } else {
            value.push(c);
        }
    }
    Err(format!("an unclosed quote in {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(section: Value, overrides: &[(&str, &str)]) -> Result<HashMap<String, Value>, String> {
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut notices = Vec::new();
        resolve(
            Path::new("t.yaml"),
            Some(&section),
            &overrides,
            &mut notices,
        )
        .map_err(|e| e.to_string())
    }

    fn err(section: Value, overrides: &[(&str, &str)]) -> String {
        match run(section, overrides) {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_overrides_and_types() {
        let v = run(
            json!({
                "Stage": {"Type": "String", "Default": "dev"},
                "Memory": {"Type": "Number", "Default": 256},
                "Ids": {"Type": "List<Number>", "Default": "1, 2"},
                "Names": {"Type": "CommaDelimitedList", "Default": "a,b"},
                "Vpc": {"Type": "AWS::EC2::VPC::Id", "Default": "vpc-1"},
            }),
            &[("Stage", "prod")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["Stage"], json!("prod"));
        assert_eq!(v["Memory"], json!("256"));
        assert_eq!(v["Ids"], json!(["1", "2"]));
        assert_eq!(v["Names"], json!(["a", "b"]));
        assert_eq!(v["Vpc"], json!("vpc-1"));
    }

    #[test]
    fn unknown_overrides_are_ignored_with_a_notice() {
        let mut notices = Vec::new();
        let v = resolve(
            Path::new("t.yaml"),
            Some(&json!({"A": {"Type": "String", "Default": "x"}})),
            &[("B".into(), "y".into())],
            &mut notices,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len(), 1);
        assert!(notices[0].contains("B is not a parameter"), "{notices:?}");
    }

    #[test]
    fn a_parameter_without_a_value_is_an_error_at_it() {
        let e = err(json!({"Stage": {"Type": "String"}}), &[]);
        assert!(
            e.starts_with("t.yaml: Parameters.Stage: has no value"),
            "{e}"
        );
    }

    #[test]
    fn a_value_outside_allowed_values_names_the_value() {
        let section = json!({"Arch": {"Type": "String", "Default": "x86_64", "AllowedValues": ["x86_64", "arm64"]}});
        let e = err(section, &[("Arch", "mips")]);
        assert!(
            e.starts_with("t.yaml: Parameters.Arch: \"mips\" is not one of the allowed values"),
            "{e}"
        );
    }

    #[test]
    fn allowed_pattern_matches_the_whole_value() {
        let section = json!({"Name": {"Type": "String", "AllowedPattern": "[a-z]+", "ConstraintDescription": "lowercase letters"}});
        assert!(run(section.clone(), &[("Name", "abc")]).is_ok());
        let e = err(section, &[("Name", "abc1")]);
        assert!(
            e.starts_with("t.yaml: Parameters.Name: \"abc1\" does not match")
                && e.contains("lowercase letters"),
            "{e}"
        );
        let e = err(
            json!({"N": {"Type": "String", "Default": "a", "AllowedPattern": "("}}),
            &[],
        );
        assert!(e.contains("Parameters.N.AllowedPattern"), "{e}");
    }

    #[test]
    fn numbers_and_lengths_are_checked() {
        let n = json!({"N": {"Type": "Number", "MinValue": 1, "MaxValue": 10}});
        assert!(run(n.clone(), &[("N", "5")]).is_ok());
        assert!(err(n.clone(), &[("N", "11")]).contains("Parameters.N: 11 is outside 1 to 10"));
        assert!(err(n, &[("N", "x")]).contains("is not a number"));
        let s = json!({"S": {"Type": "String", "MinLength": 2, "MaxLength": 3}});
        assert!(run(s.clone(), &[("S", "abc")]).is_ok());
        assert!(err(s.clone(), &[("S", "a")]).contains("Parameters.S: \"a\" is 1 characters long"));
        assert!(err(s, &[("S", "abcd")]).contains("outside 2 to 3"));
        let e = err(json!({"T": {"Type": "Strin", "Default": "a"}}), &[]);
        assert!(
            e.contains("Parameters.T.Type: unknown parameter type Strin"),
            "{e}"
        );
    }

    #[test]
    fn overrides_parse_in_both_sam_forms() {
        let args = vec![
            "Stage=prod Memory=256".to_owned(),
            "Greeting=\"hello world\"".to_owned(),
            "ParameterKey=Subnets,ParameterValue=a,b".to_owned(),
            "ParameterKey=Quote,ParameterValue='it is' Last=1".to_owned(),
            "Empty=".to_owned(),
        ];
        let pairs = parse_parameter_overrides(&args).unwrap_or_else(|e| panic!("{e}"));
        let expected: Vec<(String, String)> = [
            ("Stage", "prod"),
            ("Memory", "256"),
            ("Greeting", "hello world"),
            ("Subnets", "a,b"),
            ("Quote", "it is"),
            ("Last", "1"),
            ("Empty", ""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(pairs, expected);
        assert!(parse_parameter_overrides(&["novalue".to_owned()]).is_err());
        assert!(parse_parameter_overrides(&["A=\"open".to_owned()]).is_err());
        assert!(parse_parameter_overrides(&["ParameterKey=A".to_owned()]).is_err());
    }
}

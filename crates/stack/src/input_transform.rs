//! An EventBridge rule target's `InputPath` and `InputTransformer`, applied to the event it
//! sends: what the function gets instead of the whole `Scheduled Event` (EventBridge user guide,
//! "Amazon EventBridge input transformation"; API reference, `InputTransformer`).
//!
//! Paths are the JSON path subset EventBridge evaluates: `$`, dot notation (names with letters,
//! digits, dashes and underscores) and array indices. A template's `<name>` placeholders take
//! the `InputPathsMap` values and the predefined `aws.events.*` variables. Where a value goes:
//! in a template that is JSON (it starts with `{`, `[` or `"`), a placeholder inside a JSON
//! string gets a string's text (escaped, without quotes) and outside one the value as JSON
//! (a string with its quotes); in a plain-text template a string goes in as its text. A path the
//! event lacks makes no variable: its placeholder leaves nothing.

use std::collections::BTreeMap;

use serde_json::Value;

/// What a rule target sends instead of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleInput {
    /// `InputPath`: the part of the event at this path.
    Path(String),
    /// `InputTransformer`: `InputPathsMap` (variable → path) and `InputTemplate`.
    Transformer {
        paths: BTreeMap<String, String>,
        template: String,
    },
}

/// The variables EventBridge defines itself; a map may not reuse their names.
const PREDEFINED: [&str; 5] = [
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
];

/// Most `InputPathsMap` entries.
const MOST_PATHS: usize = 100;

/// A path's steps: an object key or an array index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `path` as steps, or why EventBridge would not take it.
fn steps(path: &str) -> Result<Vec<Step>, String> {
    let Some(mut rest) = path.strip_prefix('$') else {
        return Err(format!("{path:?} must start with $"));
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            let fine = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'));
            if !fine {
                return Err(format!(
                    "{path:?}: {name:?} is not a name EventBridge reads (letters, digits, -, _)"
                ));
            }
            out.push(Step::Key(name.to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after
                .find(']')
                .ok_or_else(|| format!("{path:?}: an unclosed ["))?;
            let index = after[..end].parse().map_err(|_| {
                format!(
                    "{path:?}: [{}] is not an array index (use dot notation for names)",
                    &after[..end]
                )
            })?;
            out.push(Step::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(format!(
                "{path:?}: expected . or [ after {:?}",
                &path[..path.len() - rest.len()]
            ));
        }
    }
    Ok(out)
}

/// The value at `path` in `event`, if there is one.
fn select<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    let mut at = event;
    for step in steps(path).ok()? {
        at = match step {
            Step::Key(k) => at.get(&k)?,
            Step::Index(i) => at.get(i)?,
        };
    }
    Some(at)
}

impl RuleInput {
    /// Checks the paths and the variable names, as EventBridge does when the rule is made.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::Path(path) => steps(path).map(|_| ()),
            Self::Transformer { paths, template } => {
                if paths.len() > MOST_PATHS {
                    return Err(format!(
                        "InputPathsMap has {} entries; at most {MOST_PATHS}",
                        paths.len()
                    ));
                }
                if template.is_empty() {
                    return Err("InputTemplate must not be empty".to_owned());
                }
                for (name, path) in paths {
                    if PREDEFINED.contains(&name.as_str()) || name.starts_with("AWS.") {
                        return Err(format!(
                            "InputPathsMap: {name:?} is reserved (EventBridge's own variables)"
                        ));
                    }
                    steps(path).map_err(|why| format!("InputPathsMap.{name}: {why}"))?;
                }
                Ok(())
            }
        }
    }

    /// What the target gets for `event`, sent by the rule `rule_name` (`rule_arn`) at
    /// `ingestion_time` (RFC 3339).
    pub fn apply(
        &self,
        event: &Value,
        rule_name: &str,
        rule_arn: &str,
        ingestion_time: &str,
    ) -> String {
        match self {
            Self::Path(path) => select(event, path).map_or_else(String::new, Value::to_string),
            Self::Transformer { paths, template } => {
                let mut variables: BTreeMap<&str, Value> = BTreeMap::new();
                for (name, path) in paths {
                    if let Some(v) = select(event, path) {
                        variables.insert(name, v.clone());
                    }
                }
                variables.insert("aws.events.rule-arn", Value::String(rule_arn.to_owned()));
                variables.insert("aws.events.rule-name", Value::String(rule_name.to_owned()));
                variables.insert(
                    "aws.events.event.ingestion-time",
                    Value::String(ingestion_time.to_owned()),
                );
                let mut without_detail = event.clone();
                if let Some(map) = without_detail.as_object_mut() {
                    map.remove("detail");
                }
                variables.insert("aws.events.event", without_detail);
                variables.insert("aws.events.event.json", event.clone());
                render(template, &variables)
            }
        }
    }
}

/// `template` with its placeholders filled (see the module doc for quoting).
fn render(template: &str, variables: &BTreeMap<&str, Value>) -> String {
    let json = matches!(template.trim_start().chars().next(), Some('{' | '[' | '"'));
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
            && let Some(value) = variables.get(&rest[1..end])
        {
            match value {
                Value::String(s) if !json || in_string => {
                    if json {
                        // The text a JSON string holds: escaped, without its quotes.
                        let quoted = Value::String(s.clone()).to_string();
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    } else {
                        out.push_str(s);
                    }
                }
                v => out.push_str(&v.to_string()),
            }
            rest = &rest[end + 1..];
            continue;
        }
        if c == '<'
            && let Some(end) = rest.find('>')
            && is_variable_name(&rest[1..end])
        {
            // A variable whose path the event lacks is not created: nothing is left.
            rest = &rest[end + 1..];
            continue;
        }
        if json {
            if escaped {
                escaped = false;
            } else if in_string && c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = !in_string;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Whether `name` could be a variable (so `<name>` is a placeholder, not text).
fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The EC2 event of EventBridge's input transformation examples.
    fn ec2() -> Value {
        json!({
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "123456789012",
            "time": "2015-11-11T21:29:54Z",
            "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {"instance-id": "i-0123456789", "state": "RUNNING"}
        })
    }

    fn transform(template: &str) -> String {
        let input = RuleInput::Transformer {
            paths: BTreeMap::from([
                ("instance".to_owned(), "$.detail.instance-id".to_owned()),
                ("state".to_owned(), "$.detail.state".to_owned()),
            ]),
            template: template.to_owned(),
        };
        assert_eq!(input.check(), Ok(()));
        input.apply(
            &ec2(),
            "rule",
            "arn:aws:events:us-east-1:123456789012:rule/rule",
            "2015-11-11T21:29:54Z",
        )
    }

    #[test]
    fn the_documented_templates_render_as_eventbridge_renders_them() {
        assert_eq!(
            transform("\"<instance> is in state <state>\""),
            "\"i-0123456789 is in state RUNNING\""
        );
        assert_eq!(
            transform("{\"instance\" : <instance>, \"state\": <state>}"),
            "{\"instance\" : \"i-0123456789\", \"state\": \"RUNNING\"}"
        );
        assert_eq!(
            transform("{\"instance\" : \"<instance>\", \"state\": \"<state>\"}"),
            "{\"instance\" : \"i-0123456789\", \"state\": \"RUNNING\"}"
        );
        assert_eq!(
            transform(
                "{\"instance\" : <instance>, \"state\": [9, <state>, true], \"Transformed\" : \"Yes\"}"
            ),
            "{\"instance\" : \"i-0123456789\", \"state\": [9, \"RUNNING\", true], \"Transformed\" : \"Yes\"}"
        );
        // The API reference's escaped quotes inside a JSON string.
        assert_eq!(
            transform(
                "{\"myInstance\": <instance>,\"myStatus\": \"<instance> is in state \\\"<state>\\\"\"}"
            ),
            "{\"myInstance\": \"i-0123456789\",\"myStatus\": \"i-0123456789 is in state \\\"RUNNING\\\"\"}"
        );
        // The tutorial's plain text.
        assert_eq!(
            transform("The EC2 instance <instance> has changed state to <state>."),
            "The EC2 instance i-0123456789 has changed state to RUNNING."
        );
    }

    #[test]
    fn predefined_variables_missing_paths_and_input_path() {
        assert_eq!(
            transform(
                "{\"rule\": <aws.events.rule-name>, \"at\": \"<aws.events.event.ingestion-time>\", \"gone\": \"<nothing>\"}"
            ),
            "{\"rule\": \"rule\", \"at\": \"2015-11-11T21:29:54Z\", \"gone\": \"\"}"
        );
        let whole: Value = serde_json::from_str(&transform("{\"e\": <aws.events.event>}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(whole["e"].get("detail").is_none() && whole["e"]["source"] == "aws.ec2");
        let path = RuleInput::Path("$.detail".to_owned());
        assert_eq!(
            path.apply(&ec2(), "r", "a", "t"),
            "{\"instance-id\":\"i-0123456789\",\"state\":\"RUNNING\"}"
        );
        assert_eq!(
            RuleInput::Path("$.resources[0]".to_owned()).apply(&ec2(), "r", "a", "t"),
            "\"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111\""
        );
    }

    #[test]
    fn paths_and_names_eventbridge_refuses_are_errors() {
        assert!(RuleInput::Path("detail".into()).check().is_err());
        assert!(RuleInput::Path("$['detail']".into()).check().is_err());
        let reserved = RuleInput::Transformer {
            paths: BTreeMap::from([("aws.events.rule-arn".to_owned(), "$.id".to_owned())]),
            template: "<aws.events.rule-arn>".to_owned(),
        };
        assert!(reserved.check().is_err_and(|e| e.contains("reserved")));
    }
}

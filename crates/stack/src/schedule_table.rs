//! A function's `schedule` in `coldstart.toml`: an expression (`schedule = "rate(5 minutes)"`)
//! or a table with its input, time zone and state, read into a [`ScheduleSpec`].

use std::ops::Range;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use crate::error::Error;
use crate::expression::ScheduleExpression;
use crate::model::{ScheduleKind, ScheduleSpec};

/// `schedule = "cron(0 12 * * ? *)"` or `schedule = { expression = "...", input = {...},
/// timezone = "Europe/Paris", enabled = false }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScheduleToml {
    Expression(String),
    Table(ScheduleTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleTable {
    expression: String,
    /// JSON text, or a TOML table taken as its JSON.
    input: Option<toml::Value>,
    timezone: Option<String>,
    enabled: Option<bool>,
    description: Option<String>,
}

/// The schedule of function `function`, whose key is `key` (`functions.<name>`); mistakes
/// are located at the `schedule` value.
pub(crate) fn schedule(
    key: &str,
    function: &str,
    toml: &Spanned<ScheduleToml>,
    at: &dyn Fn(Range<usize>, String) -> Error,
) -> Result<ScheduleSpec, Error> {
    let name = format!("{function}-schedule");
    let at = |message: String| at(toml.span(), message);
    let expression = |text: &str| {
        ScheduleExpression::parse(text, false).map_err(|why| at(format!("{key}.schedule: {why}")))
    };
    let mut spec = ScheduleSpec {
        name: name.clone(),
        function: function.to_owned(),
        expression: ScheduleExpression::Rate {
            value: 1,
            unit: crate::expression::RateUnit::Day,
        },
        timezone: chrono_tz::UTC,
        input: None,
        enabled: true,
        kind: ScheduleKind::Rule,
        aws_name: name,
        description: None,
        transform: None,
    };
    match toml.get_ref() {
        ScheduleToml::Expression(text) => spec.expression = expression(text)?,
        ScheduleToml::Table(t) => {
            spec.expression = expression(&t.expression)?;
            if let Some(zone) = &t.timezone {
                spec.timezone = chrono_tz::Tz::from_str(zone).map_err(|_| {
                    at(format!(
                        "{key}.schedule.timezone: {zone:?} is not a time zone of the IANA \
                         database (such as America/New_York)"
                    ))
                })?;
            }
            spec.input = match &t.input {
                None => None,
                Some(toml::Value::String(text)) => {
                    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                        return Err(at(format!("{key}.schedule.input: must be valid JSON: {e}")));
                    }
                    Some(text.clone())
                }
                Some(other) => Some(
                    serde_json::to_string(other)
                        .map_err(|e| at(format!("{key}.schedule.input: {e}")))?,
                ),
            };
            spec.enabled = t.enabled.unwrap_or(true);
            spec.description = t.description.clone();
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::{ScheduleKind, Stack};

    fn load(text: &str) -> Result<Stack, String> {
        crate::config::parse(Path::new("coldstart.toml"), text, Path::new("/app"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_schedule_is_an_expression_or_a_table() {
        let stack = load(
            "[functions.a]\nbootstrap = \"a\"\nschedule = \"rate(5 minutes)\"\n\n\
             [functions.b]\nbootstrap = \"b\"\n\
             schedule = { expression = \"cron(0 12 * * ? *)\", timezone = \"America/New_York\", input = { job = \"noon\" }, enabled = false }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let [a, b] = stack.schedules.as_slice() else {
            panic!("{:?}", stack.schedules);
        };
        assert_eq!((a.name.as_str(), a.function.as_str()), ("a-schedule", "a"));
        assert_eq!(a.expression.to_string(), "rate(5 minutes)");
        assert_eq!(a.kind, ScheduleKind::Rule);
        assert!(a.enabled && a.input.is_none());
        assert_eq!(b.timezone, chrono_tz::America::New_York);
        assert_eq!(b.input.as_deref(), Some(r#"{"job":"noon"}"#));
        assert!(!b.enabled);
    }

    #[test]
    fn a_bad_schedule_names_file_line_and_key() {
        for (text, says) in [
            (
                "[functions.a]\nbootstrap = \"a\"\nschedule = \"rate(5 minute)\"\n",
                "coldstart.toml:3:12: functions.a.schedule: rate(5 minute): with a value above 1 the unit is plural",
            ),
            (
                "[functions.a]\nbootstrap = \"a\"\nschedule = { expression = \"cron(0 12 * * ?)\" }\n",
                "coldstart.toml:3:12: functions.a.schedule: cron(0 12 * * ?): a cron expression has six fields",
            ),
            (
                "[functions.a]\nbootstrap = \"a\"\nschedule = { expression = \"rate(1 day)\", timezone = \"Nowhere\" }\n",
                "functions.a.schedule.timezone: \"Nowhere\" is not a time zone",
            ),
            (
                "[functions.a]\nbootstrap = \"a\"\nschedule = { expression = \"rate(1 day)\", input = \"{oops\" }\n",
                "functions.a.schedule.input: must be valid JSON",
            ),
        ] {
            let e = match load(text) {
                Ok(s) => panic!("accepted {:?}", s.schedules),
                Err(e) => e,
            };
            assert!(e.contains(says), "{e}\n  does not contain\n{says}");
        }
    }
}

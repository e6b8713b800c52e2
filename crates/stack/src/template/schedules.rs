//! Schedules of a template as [`ScheduleSpec`]s: SAM's `Schedule` (an EventBridge rule) and
//! `ScheduleV2` (an EventBridge Scheduler schedule) events of `AWS::Serverless::Function`s, and
//! `AWS::Events::Rule`s with a `ScheduleExpression` and `AWS::Scheduler::Schedule`s that target
//! the template's functions. Expressions, time zones, states and inputs are checked here, each
//! mistake at its property.

use std::collections::HashSet;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::expression::ScheduleExpression;
use crate::input_transform::RuleInput;
use crate::model::{FunctionSpec, ScheduleKind, ScheduleSpec};
use crate::template::Context;
use crate::template::intrinsics::{describe, text};
use crate::template::resources::{Resource, function_of};

/// Reads every schedule that targets one of `functions`; the rules and schedules read go into
/// `used` (they are emulated).
pub(crate) fn read(
    cx: &Context<'_>,
    resources: &[Resource],
    functions: &[FunctionSpec],
    used: &mut HashSet<String>,
    notices: &mut Vec<String>,
) -> Result<Vec<ScheduleSpec>, Error> {
    let runs = |name: &str| functions.iter().any(|f| f.config.name == name);
    let mut out = Vec::new();
    for r in resources {
        match r.kind.as_str() {
            "AWS::Serverless::Function" if runs(&r.id) => events(cx, r, &mut out)?,
            "AWS::Events::Rule" => {
                if cx.property(r, "ScheduleExpression")?.is_none() {
                    continue; // An event pattern: not emulated.
                }
                let before = out.len();
                rule(cx, r, &runs, &mut out, notices)?;
                if out.len() > before {
                    used.insert(r.id.clone());
                }
            }
            "AWS::Scheduler::Schedule" if scheduler(cx, r, &runs, &mut out, notices)? => {
                used.insert(r.id.clone());
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// One schedule's settings, wherever they were written.
struct Settings<'a> {
    /// The property path of the settings' map (`Events.X.Properties`, or empty for a
    /// resource's own properties).
    at: String,
    props: &'a Map<String, Value>,
}

impl Settings<'_> {
    fn path(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    fn string(&self, cx: &Context<'_>, r: &Resource, key: &str) -> Result<Option<String>, Error> {
        match self.props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => text(v).map(Some).ok_or_else(|| {
                cx.error(
                    r,
                    &self.path(key),
                    format!("must be a string, not {}", describe(v)),
                )
            }),
        }
    }

    fn expression(
        &self,
        cx: &Context<'_>,
        r: &Resource,
        key: &str,
        one_time: bool,
    ) -> Result<ScheduleExpression, Error> {
        let Some(expression) = self.string(cx, r, key)? else {
            return Err(cx.error(r, &self.path(key), "a schedule needs an expression"));
        };
        ScheduleExpression::parse(&expression, one_time)
            .map_err(|why| cx.error(r, &self.path(key), why))
    }

    fn timezone(&self, cx: &Context<'_>, r: &Resource, key: &str) -> Result<chrono_tz::Tz, Error> {
        match self.string(cx, r, key)? {
            None => Ok(chrono_tz::UTC),
            Some(zone) => chrono_tz::Tz::from_str(&zone).map_err(|_| {
                cx.error(
                    r,
                    &self.path(key),
                    format!("{zone:?} is not a time zone of the IANA database (such as America/New_York)"),
                )
            }),
        }
    }

    /// `Input`: JSON text (a map or list written in YAML is taken as its JSON).
    fn input(&self, cx: &Context<'_>, r: &Resource, key: &str) -> Result<Option<String>, Error> {
        let input = match self.props.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Object(_) | Value::Array(_))) => v.to_string(),
            Some(v) => {
                return Err(cx.error(
                    r,
                    &self.path(key),
                    format!("must be JSON text, not {}", describe(v)),
                ));
            }
        };
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&input) {
            return Err(cx.error(
                r,
                &self.path(key),
                format!("a Lambda target's input must be valid JSON: {e}"),
            ));
        }
        Ok(Some(input))
    }

    /// `State` (`ENABLED`, `DISABLED`, and for rules
    /// `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`) and SAM's `Enabled`.
    fn enabled(&self, cx: &Context<'_>, r: &Resource, rule: bool) -> Result<bool, Error> {
        let state = self.string(cx, r, "State")?;
        let enabled = match self.props.get("Enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s == "true" || s == "false" => Some(s == "true"),
            Some(v) => {
                return Err(cx.error(
                    r,
                    &self.path("Enabled"),
                    format!("must be true or false, not {}", describe(v)),
                ));
            }
        };
        match (state.as_deref(), enabled) {
            (Some(_), Some(_)) => Err(cx.error(
                r,
                &self.path("Enabled"),
                "Enabled and State cannot both be set",
            )),
            (None, e) => Ok(e.unwrap_or(true)),
            (Some("ENABLED"), None) => Ok(true),
            (Some("ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"), None) if rule => Ok(true),
            (Some("DISABLED"), None) => Ok(false),
            (Some(other), None) => Err(cx.error(
                r,
                &self.path("State"),
                format!("must be ENABLED or DISABLED, not {other}"),
            )),
        }
    }
}

/// A function's `Schedule` and `ScheduleV2` events.
fn events(cx: &Context<'_>, r: &Resource, out: &mut Vec<ScheduleSpec>) -> Result<(), Error> {
    let Some(Value::Object(events)) = cx.property(r, "Events")? else {
        return Ok(());
    };
    let empty = Map::new();
    for (name, event) in &events {
        let kind = match event.get("Type").and_then(Value::as_str) {
            Some("Schedule") => ScheduleKind::Rule,
            Some("ScheduleV2") => ScheduleKind::Scheduler,
            _ => continue,
        };
        let at = format!("Events.{name}.Properties");
        let props = match event.get("Properties") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(p)) => p,
            Some(other) => {
                return Err(cx.error(r, &at, format!("must be a map, not {}", describe(other))));
            }
        };
        let s = Settings { at, props };
        let id = format!("{}{name}", r.id);
        let (expression, timezone) = match kind {
            ScheduleKind::Rule => (s.expression(cx, r, "Schedule", false)?, chrono_tz::UTC),
            ScheduleKind::Scheduler => (
                s.expression(cx, r, "ScheduleExpression", true)?,
                s.timezone(cx, r, "ScheduleExpressionTimezone")?,
            ),
        };
        out.push(ScheduleSpec {
            aws_name: s.string(cx, r, "Name")?.unwrap_or_else(|| id.clone()),
            name: id,
            function: r.id.clone(),
            expression,
            timezone,
            input: s.input(cx, r, "Input")?,
            enabled: s.enabled(cx, r, kind == ScheduleKind::Rule)?,
            kind,
            description: s.string(cx, r, "Description")?,
            transform: None,
        });
    }
    Ok(())
}

/// A rule target's `InputPath` or `InputTransformer` (at most one of them and `Input`, as
/// EventBridge takes), checked.
fn rule_input(
    cx: &Context<'_>,
    r: &Resource,
    at: &str,
    t: &Map<String, Value>,
) -> Result<Option<RuleInput>, Error> {
    let given: Vec<&str> = ["Input", "InputPath", "InputTransformer"]
        .into_iter()
        .filter(|k| t.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if given.len() > 1 {
        return Err(cx.error(
            r,
            &format!("{at}.{}", given[1]),
            format!(
                "a target takes only one of Input, InputPath and InputTransformer, not {}",
                given.join(" and ")
            ),
        ));
    }
    let input = match given.first().copied() {
        Some("InputPath") => RuleInput::Path(t.get("InputPath").and_then(text).unwrap_or_default()),
        Some("InputTransformer") => {
            let here = format!("{at}.InputTransformer");
            let Some(Value::Object(x)) = t.get("InputTransformer") else {
                return Err(cx.error(r, &here, "must be a map"));
            };
            let Some(template) = x.get("InputTemplate").and_then(text) else {
                return Err(cx.error(r, &format!("{here}.InputTemplate"), "is required"));
            };
            let paths = match x.get("InputPathsMap") {
                None | Some(Value::Null) => Default::default(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v).unwrap_or_default()))
                    .collect(),
                Some(other) => {
                    return Err(cx.error(
                        r,
                        &format!("{here}.InputPathsMap"),
                        format!("must be a map, not {}", describe(other)),
                    ));
                }
            };
            RuleInput::Transformer { paths, template }
        }
        _ => return Ok(None),
    };
    let key = given.first().copied().unwrap_or_default();
    input
        .check()
        .map_err(|why| cx.error(r, &format!("{at}.{key}"), why))?;
    Ok(Some(input))
}

/// The function a target's `Arn` names, when it is one of the template's that runs.
fn target_function(arn: &str, runs: &impl Fn(&str) -> bool) -> Option<String> {
    function_of(arn).filter(|f| runs(f)).map(str::to_owned)
}

/// An `AWS::Events::Rule` with a `ScheduleExpression`: one spec per Lambda target.
fn rule(
    cx: &Context<'_>,
    r: &Resource,
    runs: &impl Fn(&str) -> bool,
    out: &mut Vec<ScheduleSpec>,
    notices: &mut Vec<String>,
) -> Result<(), Error> {
    let props: Map<String, Value> = r
        .properties
        .keys()
        .filter_map(|k| {
            cx.property(r, k)
                .transpose()
                .map(|v| v.map(|v| (k.clone(), v)))
        })
        .collect::<Result<_, _>>()?;
    let s = Settings {
        at: String::new(),
        props: &props,
    };
    let expression = s.expression(cx, r, "ScheduleExpression", false)?;
    let enabled = s.enabled(cx, r, true)?;
    let aws_name = s.string(cx, r, "Name")?.unwrap_or_else(|| r.id.clone());
    let description = s.string(cx, r, "Description")?;
    let targets = match props.get("Targets") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(t)) => t.clone(),
        Some(other) => {
            return Err(cx.error(
                r,
                "Targets",
                format!("must be a list, not {}", describe(other)),
            ));
        }
    };
    for (i, target) in targets.iter().enumerate() {
        let at = format!("Targets[{i}]");
        let Value::Object(t) = target else {
            return Err(cx.error(r, &at, format!("must be a map, not {}", describe(target))));
        };
        let arn = t.get("Arn").and_then(text).unwrap_or_default();
        let Some(function) = target_function(&arn, runs) else {
            notices.push(format!(
                "{}: target {} is not a function of the stack; it is not invoked",
                r.id,
                t.get("Id").and_then(text).unwrap_or_else(|| arn.clone())
            ));
            continue;
        };
        let transform = rule_input(cx, r, &at, t)?;
        let ts = Settings { at, props: t };
        out.push(ScheduleSpec {
            name: r.id.clone(),
            function,
            expression: expression.clone(),
            timezone: chrono_tz::UTC,
            input: ts.input(cx, r, "Input")?,
            enabled,
            kind: ScheduleKind::Rule,
            aws_name: aws_name.clone(),
            description: description.clone(),
            transform,
        });
    }
    Ok(())
}

/// An `AWS::Scheduler::Schedule` whose target is one of the stack's functions.
fn scheduler(
    cx: &Context<'_>,
    r: &Resource,
    runs: &impl Fn(&str) -> bool,
    out: &mut Vec<ScheduleSpec>,
    notices: &mut Vec<String>,
) -> Result<bool, Error> {
    let Some(Value::Object(target)) = cx.property(r, "Target")? else {
        return Err(cx.error(r, "Target", "a schedule needs a Target"));
    };
    let arn = target.get("Arn").and_then(text).unwrap_or_default();
    let Some(function) = target_function(&arn, runs) else {
        notices.push(format!(
            "{}: its target {arn} is not a function of the stack; it is not invoked",
            r.id
        ));
        return Ok(false);
    };
    let props: Map<String, Value> = r
        .properties
        .keys()
        .filter_map(|k| {
            cx.property(r, k)
                .transpose()
                .map(|v| v.map(|v| (k.clone(), v)))
        })
        .collect::<Result<_, _>>()?;
    let s = Settings {
        at: String::new(),
        props: &props,
    };
    let ts = Settings {
        at: "Target".into(),
        props: &target,
    };
    out.push(ScheduleSpec {
        name: r.id.clone(),
        function,
        expression: s.expression(cx, r, "ScheduleExpression", true)?,
        timezone: s.timezone(cx, r, "ScheduleExpressionTimezone")?,
        input: ts.input(cx, r, "Input")?,
        enabled: s.enabled(cx, r, false)?,
        kind: ScheduleKind::Scheduler,
        aws_name: s.string(cx, r, "Name")?.unwrap_or_else(|| r.id.clone()),
        description: s.string(cx, r, "Description")?,
        transform: None,
    });
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::model::{ScheduleKind, Stack};
    use crate::template::{TemplateOptions, parse};

    const HEAD: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Job:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: job
      Runtime: provided.al2023
      Handler: bootstrap
";

    fn read(rest: &str) -> Result<Stack, String> {
        parse(
            Path::new("template.yaml"),
            &format!("{HEAD}{rest}"),
            Path::new("/app"),
            &TemplateOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    fn ok(rest: &str) -> Stack {
        read(rest).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(rest: &str) -> String {
        match read(rest) {
            Ok(s) => panic!("accepted: {:?}", s.schedules),
            Err(e) => e,
        }
    }

    #[test]
    fn schedule_and_schedule_v2_events_become_schedules() {
        let stack = ok(r#"      Events:
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Name: nightly-job
            Description: every night
            Input: '{"mode": "full"}'
        Often:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(5 minutes)
            ScheduleExpressionTimezone: Europe/Paris
            State: DISABLED
            FlexibleTimeWindow:
              Mode: "OFF"
"#);
        let [nightly, often] = stack.schedules.as_slice() else {
            panic!("{:?}", stack.schedules);
        };
        assert_eq!(nightly.name, "JobNightly");
        assert_eq!(nightly.aws_name, "nightly-job");
        assert_eq!(nightly.function, "Job");
        assert_eq!(nightly.kind, ScheduleKind::Rule);
        assert_eq!(nightly.expression.to_string(), "cron(0 3 * * ? *)");
        assert_eq!(nightly.input.as_deref(), Some(r#"{"mode": "full"}"#));
        assert!(nightly.enabled);
        assert_eq!(nightly.description.as_deref(), Some("every night"));
        assert_eq!(often.name, "JobOften");
        assert_eq!(often.kind, ScheduleKind::Scheduler);
        assert_eq!(often.timezone, chrono_tz::Europe::Paris);
        assert!(!often.enabled);
        // Neither is left in the "not emulated yet" notices.
        assert!(
            !stack.notices.iter().any(|n| n.contains("Schedule")),
            "{:?}",
            stack.notices
        );
    }

    #[test]
    fn rules_and_scheduler_schedules_that_target_functions() {
        let stack = ok(r#"  Every:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 hour)
      State: ENABLED
      Targets:
        - Id: job
          Arn: !GetAtt Job.Arn
          Input: '{"from": "rule"}'
  Pattern:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [my.app]}
      Targets:
        - Id: job
          Arn: !GetAtt Job.Arn
  Later:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: at(2030-01-01T09:00:00)
      ScheduleExpressionTimezone: Asia/Tokyo
      FlexibleTimeWindow: {Mode: "OFF"}
      Target:
        Arn: !GetAtt Job.Arn
        RoleArn: arn:aws:iam::123456789012:role/scheduler
"#);
        let names: Vec<(&str, ScheduleKind)> = stack
            .schedules
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("Every", ScheduleKind::Rule),
                ("Later", ScheduleKind::Scheduler)
            ]
        );
        assert_eq!(
            stack.schedules[0].input.as_deref(),
            Some(r#"{"from": "rule"}"#)
        );
        let not_emulated: Vec<&str> = stack
            .not_emulated
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert!(not_emulated.contains(&"Pattern"), "{not_emulated:?}");
        assert!(!not_emulated.contains(&"Every"), "{not_emulated:?}");
        assert!(!not_emulated.contains(&"Later"), "{not_emulated:?}");
    }

    #[test]
    fn bad_schedules_are_errors_naming_file_logical_id_and_property() {
        for (rest, says) in [
            (
                "      Events:\n        E:\n          Type: Schedule\n          Properties:\n            Schedule: rate(1 minutes)\n",
                "template.yaml: Resources.Job.Properties.Events.E.Properties.Schedule: rate(1 minutes): with a value of 1 the unit is singular",
            ),
            (
                "      Events:\n        E:\n          Type: Schedule\n          Properties:\n            Schedule: cron(0 12 * * * *)\n",
                "Resources.Job.Properties.Events.E.Properties.Schedule: cron(0 12 * * * *): one of day-of-month and day-of-week must be ?",
            ),
            (
                "      Events:\n        E:\n          Type: ScheduleV2\n          Properties:\n            ScheduleExpression: rate(5 minutes)\n            ScheduleExpressionTimezone: Mars/Olympus\n",
                "Resources.Job.Properties.Events.E.Properties.ScheduleExpressionTimezone: \"Mars/Olympus\" is not a time zone",
            ),
            (
                "      Events:\n        E:\n          Type: Schedule\n          Properties:\n            Schedule: rate(5 minutes)\n            Enabled: false\n            State: DISABLED\n",
                "Resources.Job.Properties.Events.E.Properties.Enabled: Enabled and State cannot both be set",
            ),
            (
                "      Events:\n        E:\n          Type: Schedule\n          Properties:\n            Schedule: rate(5 minutes)\n            Input: '{not json'\n",
                "Resources.Job.Properties.Events.E.Properties.Input: a Lambda target's input must be valid JSON",
            ),
            (
                "  R:\n    Type: AWS::Events::Rule\n    Properties:\n      ScheduleExpression: cron(0 12 ? * MON#6 *)\n      Targets: [{Id: j, Arn: !GetAtt Job.Arn}]\n",
                "Resources.R.Properties.ScheduleExpression: cron(0 12 ? * MON#6 *): day-of-week",
            ),
            (
                "  S:\n    Type: AWS::Scheduler::Schedule\n    Properties:\n      ScheduleExpression: rate(5 minutes)\n      State: PAUSED\n      FlexibleTimeWindow: {Mode: \"OFF\"}\n      Target: {Arn: !GetAtt Job.Arn, RoleArn: r}\n",
                "Resources.S.Properties.State: must be ENABLED or DISABLED, not PAUSED",
            ),
            (
                "  R:\n    Type: AWS::Events::Rule\n    Properties:\n      ScheduleExpression: rate(1 hour)\n      Targets: [{Id: j, Arn: !GetAtt Job.Arn, Input: '{}', InputPath: $.detail}]\n",
                "Resources.R.Properties.Targets[0].InputPath: a target takes only one of Input, InputPath and InputTransformer",
            ),
            (
                "  R:\n    Type: AWS::Events::Rule\n    Properties:\n      ScheduleExpression: rate(1 hour)\n      Targets: [{Id: j, Arn: !GetAtt Job.Arn, InputPath: \"$['detail']\"}]\n",
                "Resources.R.Properties.Targets[0].InputPath: \"$['detail']\"",
            ),
            (
                "  R:\n    Type: AWS::Events::Rule\n    Properties:\n      ScheduleExpression: rate(1 hour)\n      Targets: [{Id: j, Arn: !GetAtt Job.Arn, InputTransformer: {InputPathsMap: {t: $.time}}}]\n",
                "Resources.R.Properties.Targets[0].InputTransformer.InputTemplate: is required",
            ),
            (
                "  R:\n    Type: AWS::Events::Rule\n    Properties:\n      ScheduleExpression: rate(1 hour)\n      Targets: [{Id: j, Arn: !GetAtt Job.Arn, InputTransformer: {InputPathsMap: {t: time}, InputTemplate: '<t>'}}]\n",
                "Resources.R.Properties.Targets[0].InputTransformer: InputPathsMap.t: \"time\" must start with $",
            ),
        ] {
            let e = err(rest);
            assert!(e.contains(says), "{e}\n  does not contain\n{says}");
        }
    }
}

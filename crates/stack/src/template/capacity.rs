//! Lambda Managed Instances in templates: a function's `CapacityProviderConfig` (SAM:
//! `CapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency`; CloudFormation:
//! `CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency`)
//! becomes its `max_concurrency`, and capacity provider resources (`AWS::Serverless::CapacityProvider`,
//! `AWS::Lambda::CapacityProvider`) are accepted and listed: locally there are no instances to
//! provide, only the multi-concurrent execution environments.

use coldstart_emulator::{FunctionConfig, MAX_CONCURRENCY_PER_ENVIRONMENT};
use serde_json::Value;

use super::Context;
use super::auth::error_at;
use super::resources::Resource;
use crate::error::Error;

/// The resource types of a capacity provider.
pub(crate) const PROVIDER_TYPES: [&str; 2] = [
    "AWS::Serverless::CapacityProvider",
    "AWS::Lambda::CapacityProvider",
];

/// Reads function `r`'s `CapacityProviderConfig` (`sam`: the SAM shape) into `config`.
pub(crate) fn read(
    cx: &Context<'_>,
    r: &Resource,
    sam: bool,
    config: &mut FunctionConfig,
    notices: &mut Vec<String>,
) -> Result<(), Error> {
    let Some(v) = cx.property(r, "CapacityProviderConfig")? else {
        return Ok(());
    };
    let (inner, path) = if sam {
        (Some(&v), "CapacityProviderConfig")
    } else {
        (
            v.get("LambdaManagedInstancesCapacityProviderConfig"),
            "CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig",
        )
    };
    let Some(inner) = inner.and_then(Value::as_object) else {
        let what = if sam {
            "must be a map"
        } else {
            "must hold LambdaManagedInstancesCapacityProviderConfig"
        };
        return Err(error_at(
            cx,
            &r.id,
            "CapacityProviderConfig",
            what.to_owned(),
        ));
    };
    let key = "PerExecutionEnvironmentMaxConcurrency";
    let Some(n) = inner.get(key) else {
        notices.push(format!(
            "{}: no {key}: it runs one invocation per environment locally (AWS's default depends on the runtime)",
            r.id
        ));
        return Ok(());
    };
    let most = MAX_CONCURRENCY_PER_ENVIRONMENT as i64;
    match whole(n) {
        Some(n) if (1..=most).contains(&n) => {
            config.max_concurrency = n as usize;
            Ok(())
        }
        _ => Err(error_at(
            cx,
            &r.id,
            &format!("{path}.{key}"),
            format!("must be a whole number from 1 to {most}, not {n}"),
        )),
    }
}

/// A whole number, written as a number or a string.
fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A notice for each capacity provider of the template: accepted, nothing to provide locally.
pub(crate) fn list(resources: &[Resource], notices: &mut Vec<String>) {
    for r in resources
        .iter()
        .filter(|r| PROVIDER_TYPES.contains(&r.kind.as_str()))
    {
        notices.push(format!(
            "{}: capacity provider ({}): its functions run in multi-concurrent environments locally, on no instances",
            r.id, r.kind
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::template::{TemplateOptions, parse};

    fn read(text: &str) -> Result<crate::model::Stack, String> {
        parse(
            Path::new("template.yaml"),
            text,
            Path::new("/app"),
            &TemplateOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    const TEMPLATE: &str = "
Resources:
  Fleet:
    Type: AWS::Serverless::CapacityProvider
    Properties:
      VpcConfig: {SubnetIds: [subnet-1], SecurityGroupIds: [sg-1]}
  Sam:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: sam/
      Runtime: provided.al2023
      CapacityProviderConfig:
        Arn: !GetAtt Fleet.Arn
        PerExecutionEnvironmentMaxConcurrency: 8
  Cfn:
    Type: AWS::Lambda::Function
    Properties:
      Code: cfn
      Runtime: provided.al2023
      Handler: bootstrap
      CapacityProviderConfig:
        LambdaManagedInstancesCapacityProviderConfig:
          CapacityProviderArn: !GetAtt Fleet.Arn
          PerExecutionEnvironmentMaxConcurrency: 4
  Plain:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: plain/, Runtime: provided.al2023}
";

    #[test]
    fn per_environment_concurrency_is_read_from_sam_and_cloudformation_shapes() {
        let stack = read(TEMPLATE).unwrap_or_else(|e| panic!("{e}"));
        let of = |name: &str| {
            stack
                .functions
                .iter()
                .find(|f| f.config.name == name)
                .map(|f| f.config.max_concurrency)
        };
        assert_eq!(of("Sam"), Some(8));
        assert_eq!(of("Cfn"), Some(4));
        assert_eq!(of("Plain"), Some(1));
        // The capacity provider is accepted and listed, not reported as missing.
        assert!(
            stack
                .notices
                .iter()
                .any(|n| n.starts_with("Fleet: capacity provider")),
            "{:?}",
            stack.notices
        );
        assert!(!stack.not_emulated.iter().any(|(id, _)| id == "Fleet"));
    }

    #[test]
    fn a_bad_per_environment_concurrency_names_file_resource_and_property() {
        let bad = TEMPLATE.replace(
            "PerExecutionEnvironmentMaxConcurrency: 4",
            "PerExecutionEnvironmentMaxConcurrency: 0",
        );
        let e = read(&bad).err().unwrap_or_default();
        assert!(
            e.contains("template.yaml")
                && e.contains("Resources.Cfn.Properties.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency")
                && e.contains("1 to 1600"),
            "{e}"
        );
        let bad = TEMPLATE.replace(
            "PerExecutionEnvironmentMaxConcurrency: 8",
            "PerExecutionEnvironmentMaxConcurrency: lots",
        );
        let e = read(&bad).err().unwrap_or_default();
        assert!(
            e.contains("Resources.Sam.Properties.CapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency"),
            "{e}"
        );
    }
}

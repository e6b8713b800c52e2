//! A Function URL's `AuthType` and `Cors`, as `FunctionUrlConfig` of
//! `AWS::Serverless::Function` and `AWS::Lambda::Url` declare them, read and checked against
//! Lambda's limits.

use coldstart_emulator::{UrlAuthType, UrlCors};
use serde_json::Value;

use crate::error::Error;
use crate::template::Context;
use crate::template::intrinsics::{describe, text};
use crate::template::resources::Resource;

/// `AuthType` at `path`: `NONE` (also when absent) or `AWS_IAM`.
pub(crate) fn auth_type(
    cx: &Context<'_>,
    r: &Resource,
    path: &str,
    value: Option<&Value>,
) -> Result<UrlAuthType, Error> {
    match value {
        None | Some(Value::Null) => Ok(UrlAuthType::None),
        Some(v) => match text(v).as_deref() {
            Some("NONE") => Ok(UrlAuthType::None),
            Some("AWS_IAM") => Ok(UrlAuthType::AwsIam),
            Some(other) => Err(cx.error(r, path, format!("must be NONE or AWS_IAM, not {other}"))),
            None => Err(cx.error(
                r,
                path,
                format!("must be NONE or AWS_IAM, not {}", describe(v)),
            )),
        },
    }
}

/// `Cors` at `path`, if there is one.
pub(crate) fn cors(
    cx: &Context<'_>,
    r: &Resource,
    path: &str,
    value: Option<&Value>,
) -> Result<Option<UrlCors>, Error> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(cx.error(r, path, format!("must be a map, not {}", describe(other))));
        }
    };
    let mut cors = UrlCors::default();
    for (key, v) in map {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "AllowOrigins" => cors.allow_origins = texts(cx, r, &at, v)?,
            "AllowMethods" => cors.allow_methods = texts(cx, r, &at, v)?,
            "AllowHeaders" => cors.allow_headers = texts(cx, r, &at, v)?,
            "ExposeHeaders" => cors.expose_headers = texts(cx, r, &at, v)?,
            "AllowCredentials" => {
                cors.allow_credentials = match v {
                    Value::Bool(b) => *b,
                    Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                    Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                    other => {
                        return Err(cx.error(
                            r,
                            &at,
                            format!("must be true or false, not {}", describe(other)),
                        ));
                    }
                }
            }
            "MaxAge" => {
                let age = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                cors.max_age = Some(age.ok_or_else(|| {
                    cx.error(
                        r,
                        &at,
                        format!("must be a whole number of seconds, not {}", describe(v)),
                    )
                })?);
            }
            _ => {
                return Err(cx.error(
                    r,
                    &at,
                    "not a Cors property (AllowCredentials, AllowHeaders, AllowMethods, AllowOrigins, ExposeHeaders, MaxAge)",
                ));
            }
        }
    }
    cors.check()
        .map_err(|(field, message)| cx.error(r, &format!("{path}.{field}"), message))?;
    Ok(Some(cors))
}

/// A list of strings (a single string counts as a list of one).
fn texts(cx: &Context<'_>, r: &Resource, at: &str, v: &Value) -> Result<Vec<String>, Error> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::String(_) => std::slice::from_ref(v),
        other => {
            return Err(cx.error(
                r,
                at,
                format!("must be a list of strings, not {}", describe(other)),
            ));
        }
    };
    items
        .iter()
        .map(|item| {
            text(item).ok_or_else(|| {
                cx.error(
                    r,
                    at,
                    format!("must be a list of strings, not one with {}", describe(item)),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::{Stack, UrlSpec};
    use crate::template::{TemplateOptions, parse};

    fn read(text: &str) -> Result<Stack, String> {
        parse(
            Path::new("template.yaml"),
            text,
            Path::new("/app"),
            &TemplateOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    fn url_of(text: &str) -> UrlSpec {
        let stack = read(text).unwrap_or_else(|e| panic!("{e}"));
        stack
            .function("Fn")
            .and_then(|f| f.url.clone())
            .unwrap_or_else(|| panic!("no url: {:?}", stack.functions))
    }

    fn sam(url_config: &str) -> String {
        format!(
            "
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Runtime: provided.al2023
      Handler: bootstrap
      FunctionUrlConfig:
{url_config}"
        )
    }

    fn lambda_url(properties: &str) -> String {
        format!(
            "
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {{Code: ., Runtime: provided.al2023}}
  Url:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !GetAtt Fn.Arn
{properties}"
        )
    }

    #[test]
    fn function_url_config_reads_auth_type_and_cors() {
        let url = url_of(&sam("        AuthType: AWS_IAM
        Cors:
          AllowOrigins: [https://app.example.com]
          AllowMethods: [GET, POST]
          AllowHeaders: [content-type]
          ExposeHeaders: [x-request-id]
          AllowCredentials: true
          MaxAge: 300
"));
        assert_eq!(url.auth_type, UrlAuthType::AwsIam);
        assert_eq!(
            url.cors,
            Some(UrlCors {
                allow_origins: vec!["https://app.example.com".into()],
                allow_methods: vec!["GET".into(), "POST".into()],
                allow_headers: vec!["content-type".into()],
                expose_headers: vec!["x-request-id".into()],
                allow_credentials: true,
                max_age: Some(300),
            })
        );
        let open = url_of(&sam("        AuthType: NONE\n"));
        assert_eq!(open.auth_type, UrlAuthType::None);
        assert_eq!(open.cors, None);
    }

    #[test]
    fn aws_lambda_url_reads_auth_type_and_cors() {
        let url = url_of(&lambda_url(
            "      AuthType: AWS_IAM\n      Cors: {AllowOrigins: ['*'], MaxAge: '60'}\n",
        ));
        assert_eq!(url.auth_type, UrlAuthType::AwsIam);
        let cors = url.cors.unwrap_or_default();
        assert_eq!(cors.allow_origins, ["*"]);
        assert_eq!(cors.max_age, Some(60));
    }

    #[test]
    fn bad_values_name_the_file_the_resource_and_the_property() {
        let cases = [
            (
                sam("        AuthType: IAM\n"),
                "Resources.Fn.Properties.FunctionUrlConfig.AuthType",
                "must be NONE or AWS_IAM, not IAM",
            ),
            (
                sam("        AuthType: NONE\n        Cors: {AllowMethods: [FETCH]}\n"),
                "Resources.Fn.Properties.FunctionUrlConfig.Cors.AllowMethods",
                "FETCH",
            ),
            (
                sam("        AuthType: NONE\n        Cors: {MaxAge: 100000}\n"),
                "Resources.Fn.Properties.FunctionUrlConfig.Cors.MaxAge",
                "0 to 86400",
            ),
            (
                sam("        AuthType: NONE\n        Cors: {AllowOrigin: ['*']}\n"),
                "Resources.Fn.Properties.FunctionUrlConfig.Cors.AllowOrigin",
                "not a Cors property",
            ),
            (
                sam("        AuthType: NONE\n        Cors: {AllowCredentials: maybe}\n"),
                "Resources.Fn.Properties.FunctionUrlConfig.Cors.AllowCredentials",
                "true or false",
            ),
            (
                sam("        AuthType: NONE\n        Cors: [x]\n"),
                "Resources.Fn.Properties.FunctionUrlConfig.Cors",
                "must be a map",
            ),
            (
                lambda_url("      AuthType: aws_iam\n"),
                "Resources.Url.Properties.AuthType",
                "must be NONE or AWS_IAM",
            ),
            (
                lambda_url("      AuthType: NONE\n      Cors: {ExposeHeaders: {a: b}}\n"),
                "Resources.Url.Properties.Cors.ExposeHeaders",
                "list of strings",
            ),
        ];
        for (text, at, what) in cases {
            let e = match read(&text) {
                Ok(_) => panic!("accepted:\n{text}"),
                Err(e) => e,
            };
            assert!(
                e.contains("template.yaml") && e.contains(at) && e.contains(what),
                "{e}\n(wanted {at}: {what})"
            );
        }
    }
}

//! What a Lambda authorizer answers, and how API Gateway reads it: an IAM policy
//! (`principalId`, `policyDocument`, `context`) evaluated against the method ARN — an explicit
//! `Deny` wins, then an `Allow`, and nothing matching is a denial — or, for HTTP APIs with
//! simple responses, `{"isAuthorized": bool, "context": {…}}`.

use serde_json::{Map, Value};

/// A parsed authorizer answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// `principalId`, when given.
    pub(crate) principal_id: Option<String>,
    /// What decides.
    pub(crate) decision: Decision,
    /// `context`: handed to the integration.
    pub(crate) context: Map<String, Value>,
}

/// How an answer decides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// An IAM policy's statements for `execute-api`.
    Policy(Vec<Statement>),
    /// A simple response's `isAuthorized`.
    Simple(bool),
}

/// One policy statement that applies to `execute-api:Invoke`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) allow: bool,
    pub(crate) resources: Vec<String>,
}

/// What a policy says about one ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// A statement denies it explicitly.
    ExplicitDeny,
    /// No statement allows it.
    NotAllowed,
}

/// How strict the answer's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// REST APIs, WebSockets and HTTP API payload 1.0: a policy with `principalId`; context
    /// values are strings, numbers or booleans.
    Policy,
    /// HTTP API payload 2.0 with IAM policies: context values may be any JSON.
    PolicyV2,
    /// HTTP API payload 2.0 with simple responses.
    Simple,
}

impl Answer {
    /// Reads an authorizer's JSON answer; `Err` says why API Gateway would refuse it (a 500).
    pub(crate) fn parse(body: &[u8], shape: Shape) -> Result<Answer, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("the answer is not a JSON object".into());
        };
        let context = match map.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(c)) => c.clone(),
            Some(_) => return Err("context must be an object".into()),
        };
        if shape == Shape::Policy
            && let Some((key, _)) = context.iter().find(|(_, v)| v.is_object() || v.is_array())
        {
            return Err(format!("context.{key} must be a string, number or boolean"));
        }
        let principal_id = match map.get("principalId") {
            Some(Value::String(p)) => Some(p.clone()),
            None | Some(Value::Null) => None,
            Some(other) => Some(other.to_string()),
        };
        let decision = if shape == Shape::Simple {
            match map.get("isAuthorized") {
                Some(Value::Bool(b)) => Decision::Simple(*b),
                _ => return Err("a simple response needs isAuthorized (a boolean)".into()),
            }
        } else {
            if shape == Shape::Policy && principal_id.is_none() {
                return Err("principalId is missing".into());
            }
            let document = map
                .get("policyDocument")
                .ok_or("policyDocument is missing")?;
            Decision::Policy(statements(document)?)
        };
        Ok(Answer {
            principal_id,
            decision,
            context,
        })
    }

    /// What the answer says about `arn`.
    pub(crate) fn verdict(&self, arn: &str) -> Verdict {
        match &self.decision {
            Decision::Simple(true) => Verdict::Allow,
            Decision::Simple(false) => Verdict::NotAllowed,
            Decision::Policy(statements) => evaluate(statements, arn),
        }
    }
}

/// The `execute-api` statements of a policy document.
fn statements(document: &Value) -> Result<Vec<Statement>, String> {
    let list = match document.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(item @ Value::Object(_)) => vec![item.clone()],
        _ => return Err("policyDocument.Statement is missing".into()),
    };
    let mut out = Vec::new();
    for s in &list {
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("Allow") => true,
            Some(e) if e.eq_ignore_ascii_case("Deny") => false,
            _ => return Err("a statement's Effect must be Allow or Deny".into()),
        };
        let actions = strings(s.get("Action")).ok_or("a statement needs an Action")?;
        let applies = actions.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == "*" || a == "execute-api:*" || a == "execute-api:invoke"
        });
        let resources = strings(s.get("Resource")).ok_or("a statement needs a Resource")?;
        if applies {
            out.push(Statement { allow, resources });
        }
    }
    Ok(out)
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// IAM's evaluation: an explicit deny wins; otherwise an allow; otherwise not allowed.
fn evaluate(statements: &[Statement], arn: &str) -> Verdict {
    let matching = |allow: bool| {
        statements
            .iter()
            .filter(|s| s.allow == allow)
            .any(|s| s.resources.iter().any(|r| wildcard(r, arn)))
    };
    if matching(false) {
        Verdict::ExplicitDeny
    } else if matching(true) {
        Verdict::Allow
    } else {
        Verdict::NotAllowed
    }
}

/// IAM's resource wildcards: `*` is any run of characters (slashes too), `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:api0000000/prod/GET/pets/1";

    fn policy(statements: &str) -> Answer {
        let body = format!(
            r#"{{"principalId":"u1","policyDocument":{{"Version":"2012-10-17","Statement":{statements}}},"context":{{"user":"alice","n":1}}}}"#
        );
        Answer::parse(body.as_bytes(), Shape::Policy).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("*", ARN));
        assert!(wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:api0000000/*/GET/*",
            ARN
        ));
        assert!(wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:api0000000/prod/GET/pets/?",
            ARN
        ));
        assert!(!wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:api0000000/prod/POST/*",
            ARN
        ));
        assert!(!wildcard(
            "arn:aws:execute-api:us-east-1:123456789012:api0000000/prod/GET/pets",
            ARN
        ));
    }

    #[test]
    fn an_explicit_deny_wins_and_nothing_matching_is_not_allowed() {
        let allow = policy(r#"[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]"#);
        assert_eq!(allow.verdict(ARN), Verdict::Allow);
        assert_eq!(allow.principal_id.as_deref(), Some("u1"));
        assert_eq!(allow.context["user"], "alice");
        let both = policy(
            r#"[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"},
                {"Action":["execute-api:Invoke"],"Effect":"Deny","Resource":["arn:aws:execute-api:*:*:*/*/GET/pets/*"]}]"#,
        );
        assert_eq!(both.verdict(ARN), Verdict::ExplicitDeny);
        let elsewhere = policy(
            r#"{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:us-east-1:123456789012:api0000000/prod/POST/*"}"#,
        );
        assert_eq!(elsewhere.verdict(ARN), Verdict::NotAllowed);
        let other_action = policy(r#"[{"Action":"s3:GetObject","Effect":"Allow","Resource":"*"}]"#);
        assert_eq!(other_action.verdict(ARN), Verdict::NotAllowed);
    }

    #[test]
    fn malformed_answers_are_refused_with_a_reason() {
        for (body, shape) in [
            ("not json", Shape::Policy),
            ("[]", Shape::Policy),
            (r#"{"policyDocument":{"Statement":[]}}"#, Shape::Policy),
            (r#"{"principalId":"u"}"#, Shape::Policy),
            (
                r#"{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}}"#,
                Shape::Policy,
            ),
            (
                r#"{"principalId":"u","policyDocument":{"Statement":[]},"context":{"o":{"a":1}}}"#,
                Shape::Policy,
            ),
            (r#"{"isAuthorized":"yes"}"#, Shape::Simple),
        ] {
            assert!(Answer::parse(body.as_bytes(), shape).is_err(), "{body}");
        }
        let nested = r#"{"policyDocument":{"Statement":[]},"context":{"o":{"a":1}}}"#;
        assert!(Answer::parse(nested.as_bytes(), Shape::PolicyV2).is_ok());
        let simple = Answer::parse(
            br#"{"isAuthorized":true,"context":{"a":[1]}}"#,
            Shape::Simple,
        );
        assert_eq!(simple.map(|a| a.verdict(ARN)), Ok(Verdict::Allow));
    }
}

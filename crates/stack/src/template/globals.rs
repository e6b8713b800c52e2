//! SAM's `Globals` section, merged into the properties of each `AWS::Serverless::*` resource
//! the way the SAM translator merges it.
//!
//! The rules (SAM's `globals.py`): a primitive — or an intrinsic function, which counts as one —
//! takes the resource's value; maps merge key by key, recursively, the resource winning each
//! key (so `Environment.Variables` gather both); lists are the global items followed by the
//! resource's. One exception: `Function.Architectures` is replaced, not concatenated, because a
//! function runs on exactly one architecture (the translator is adopting the same rule).

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Location};
use crate::template::intrinsics::{describe, intrinsic};

/// The sections of `Globals` and the resource type each applies to.
const SECTIONS: [(&str, &str); 5] = [
    ("Function", "AWS::Serverless::Function"),
    ("Api", "AWS::Serverless::Api"),
    ("HttpApi", "AWS::Serverless::HttpApi"),
    ("SimpleTable", "AWS::Serverless::SimpleTable"),
    ("StateMachine", "AWS::Serverless::StateMachine"),
];

/// The `Globals` section, checked.
#[derive(Debug, Default)]
pub(crate) struct Globals {
    sections: Vec<(&'static str, Map<String, Value>)>,
}

impl Globals {
    /// Reads the section (absent: no globals).
    pub(crate) fn read(file: &Path, section: Option<&Value>) -> Result<Self, Error> {
        let map = match section {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(Error::invalid(
                    file,
                    Location::path("Globals"),
                    format!("must be a map, not {}", describe(other)),
                ));
            }
        };
        let mut sections = Vec::new();
        for (name, value) in map {
            let Some((_, kind)) = SECTIONS.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
                return Err(Error::invalid(
                    file,
                    Location::Path(format!("Globals.{name}")),
                    format!("not a Globals section; SAM has {}", names.join(", ")),
                ));
            };
            let Value::Object(properties) = value else {
                return Err(Error::invalid(
                    file,
                    Location::Path(format!("Globals.{name}")),
                    format!("must be a map, not {}", describe(value)),
                ));
            };
            sections.push((*kind, properties.clone()));
        }
        Ok(Self { sections })
    }

    /// Merges the globals for resources of type `kind` into `properties`.
    pub(crate) fn apply(&self, kind: &str, properties: &mut Map<String, Value>) {
        let Some((_, global)) = self.sections.iter().find(|(k, _)| *k == kind) else {
            return;
        };
        for (key, value) in global {
            let merged = match properties.remove(key) {
                None => value.clone(),
                Some(local) if kind == "AWS::Serverless::Function" && key == "Architectures" => {
                    local
                }
                Some(local) => merge(value, local),
            };
            properties.insert(key.clone(), merged);
        }
    }
}

/// Merges a global value with a resource's, as SAM does.
pub(crate) fn merge(global: &Value, local: Value) -> Value {
    match (global, local) {
        (Value::Object(g), Value::Object(mut l)) if !is_intrinsic(g) && !is_intrinsic(&l) => {
            for (key, value) in g {
                let merged = match l.remove(key) {
                    None => value.clone(),
                    Some(local) => merge(value, local),
                };
                l.insert(key.clone(), merged);
            }
            Value::Object(l)
        }
        (Value::Array(g), Value::Array(l)) => Value::Array(g.iter().cloned().chain(l).collect()),
        (_, local) => local,
    }
}

fn is_intrinsic(map: &Map<String, Value>) -> bool {
    intrinsic(map).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(globals: Value, kind: &str, properties: Value) -> Value {
        let globals =
            Globals::read(Path::new("t.yaml"), Some(&globals)).unwrap_or_else(|e| panic!("{e}"));
        let mut properties = properties.as_object().cloned().unwrap_or_default();
        globals.apply(kind, &mut properties);
        Value::Object(properties)
    }

    #[test]
    fn primitives_take_the_resources_value() {
        let v = merged(
            json!({"Function": {"Timeout": 10, "Runtime": "provided.al2023"}}),
            "AWS::Serverless::Function",
            json!({"Timeout": 3}),
        );
        assert_eq!(v, json!({"Timeout": 3, "Runtime": "provided.al2023"}));
    }

    #[test]
    fn maps_merge_with_the_resource_winning_each_key() {
        let v = merged(
            json!({"Function": {"Environment": {"Variables": {"A": "g", "B": "g"}}}}),
            "AWS::Serverless::Function",
            json!({"Environment": {"Variables": {"B": "l", "C": "l"}}}),
        );
        assert_eq!(
            v,
            json!({"Environment": {"Variables": {"A": "g", "B": "l", "C": "l"}}})
        );
    }

    #[test]
    fn lists_are_global_items_then_the_resources() {
        let v = merged(
            json!({"Function": {"Layers": ["g"], "Architectures": ["x86_64"]}}),
            "AWS::Serverless::Function",
            json!({"Layers": ["l"], "Architectures": ["arm64"]}),
        );
        assert_eq!(v, json!({"Layers": ["g", "l"], "Architectures": ["arm64"]}));
    }

    #[test]
    fn an_intrinsic_is_a_primitive() {
        let v = merged(
            json!({"Function": {"Environment": {"Variables": {"A": "g"}}}}),
            "AWS::Serverless::Function",
            json!({"Environment": {"Fn::If": ["C", {"Variables": {}}, {"Ref": "AWS::NoValue"}]}}),
        );
        assert_eq!(
            v,
            json!({"Environment": {"Fn::If": ["C", {"Variables": {}}, {"Ref": "AWS::NoValue"}]}})
        );
    }

    #[test]
    fn sections_apply_to_their_type_only() {
        let g = json!({"HttpApi": {"StageName": "v1"}, "SimpleTable": {"SSESpecification": {}}});
        assert_eq!(
            merged(g.clone(), "AWS::Serverless::HttpApi", json!({})),
            json!({"StageName": "v1"})
        );
        assert_eq!(merged(g, "AWS::Serverless::Function", json!({})), json!({}));
        let e = Globals::read(Path::new("t.yaml"), Some(&json!({"Functions": {}})))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|e| e.starts_with("t.yaml: Globals.Functions:")),
            "{e:?}"
        );
    }
}

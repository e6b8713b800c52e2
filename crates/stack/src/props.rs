//! Property tests of the stack's hand-written readers: templates (with their intrinsic
//! functions) and `coldstart.toml` never panic on any input, and a bad value is reported at the
//! property that holds it.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::template::{self, TemplateOptions};

/// Every intrinsic and condition name the resolver knows, plus near misses.
const FUNCTIONS: &[&str] = &[
    "Ref",
    "Fn::GetAtt",
    "Fn::Sub",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::If",
    "Fn::Equals",
    "Fn::And",
    "Fn::Or",
    "Fn::Not",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::ImportValue",
    "Fn::Transform",
    "Fn::Cidr",
    "Fn::Length",
    "Fn::ToJsonString",
    "Condition",
    "Fn::Nope",
];

/// Names the values may refer to: parameters, resources, pseudo parameters, conditions.
const NAMES: &[&str] = &[
    "Stage",
    "Echo",
    "Echo.Arn",
    "AWS::Region",
    "AWS::NoValue",
    "AWS::AccountId",
    "IsProd",
    "Sizes",
    "${Stage}-${AWS::Region}",
    "${Echo.Arn}",
    "${!Literal}",
    "${",
    "10.0.0.0/16",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(NAMES).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

/// JSON trees whose maps are often one intrinsic call.
fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            (prop::sample::select(FUNCTIONS), inner.clone()).prop_map(|(name, args)| {
                let mut map = Map::new();
                map.insert(name.to_owned(), args);
                Value::Object(map)
            }),
            prop::collection::btree_map("[A-Za-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A template whose function `Echo` has `value` at `property`, and a parameter, a mapping and a
/// condition to refer to.
fn template_with(property: &str, value: &Value) -> String {
    serde_json::json!({
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
        "Mappings": {"Sizes": {"prod": {"Memory": 512}}},
        "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
        "Resources": {
            "Echo": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "echo",
                    "Handler": "bootstrap",
                    "Runtime": "provided.al2023",
                    property: value,
                }
            }
        }
    })
    .to_string()
}

fn read_template(text: &str) -> Result<crate::Stack, crate::Error> {
    template::parse(
        Path::new("template.yaml"),
        text,
        Path::new("/app"),
        &TemplateOptions::default(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_a_template_is_read_or_refused_without_a_panic(text in "\\PC{0,200}") {
        let _ = read_template(&text);
    }

    #[test]
    fn yaml_shaped_text_as_a_template_is_read_or_refused_without_a_panic(
        lines in prop::collection::vec(
            "( {0,4})(Resources|Type|Properties|Fn::Sub|!Ref|!GetAtt|!If|- |Echo|AWS::Serverless::Function|\\[|\\]|\\{|\\}|&a|\\*a|: |'|\"|#|\\|)*",
            0..12,
        )
    ) {
        let _ = read_template(&lines.join("\n"));
    }

    #[test]
    fn any_intrinsic_tree_in_a_property_is_resolved_or_named_in_the_error(
        value in tree(),
        property in prop::sample::select(&["Timeout", "MemorySize", "Environment", "Events", "FunctionUrlConfig", "Layers"][..]),
    ) {
        if let Err(e) = read_template(&template_with(property, &value)) {
            let message = e.to_string();
            prop_assert!(message.starts_with("template.yaml"), "{message}");
            prop_assert!(
                message.contains(property) || message.contains("Echo"),
                "the error names neither the resource nor {property}: {message}"
            );
        }
    }

    #[test]
    fn any_text_as_coldstart_toml_is_read_or_refused_without_a_panic(text in "\\PC{0,200}") {
        let _ = crate::config::parse(Path::new("coldstart.toml"), &text, Path::new("/app"));
    }

    #[test]
    fn any_value_of_a_function_setting_is_read_or_refused_naming_the_file(
        key in prop::sample::select(&[
            "bootstrap", "build", "timeout", "memory", "concurrency", "environment", "url",
            "handler", "idle_timeout", "watch", "async", "logging", "extensions", "layers", "nope",
        ][..]),
        value in prop::sample::select(&[
            "1", "-1", "0", "900", "901", "18446744073709551616", "1.5", "\"x\"", "\"\"", "true",
            "[]", "[1, \"a\"]", "{}", "{ port = 70000 }", "{ invoke_mode = \"NOPE\" }",
            "{ max_retry_attempts = 3 }", "{ format = \"XML\" }", "1979-05-27T07:32:00Z",
        ][..]),
    ) {
        let text = format!("[functions.f]\nbootstrap = \"b\"\n{key} = {value}\n");
        let text = if key == "bootstrap" { format!("[functions.f]\nbootstrap = {value}\n") } else { text };
        if let Err(e) = crate::config::parse(Path::new("coldstart.toml"), &text, Path::new("/app")) {
            let message = e.to_string();
            prop_assert!(message.starts_with("coldstart.toml"), "{message}");
        }
    }
}

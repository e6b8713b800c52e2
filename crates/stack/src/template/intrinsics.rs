//! Intrinsic functions and conditions: `Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::Join`, `Fn::If`,
//! ..., resolved on a [`serde_json::Value`] tree with CloudFormation's rules.
//!
//! The [`Resolver`] holds what a template's values may name — parameters, pseudo parameters,
//! mappings, evaluated conditions and each resource's [`Facts`] (what `Ref` and `Fn::GetAtt`
//! give) — and is only read while resolving, so a value is resolved once and nothing is
//! cloned per look-up. Errors name the path of the value being resolved ([`At`]), built only
//! when an error happens.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::{Error, Location};

/// The account id ARNs name (`AWS::AccountId`).
pub(crate) const ACCOUNT_ID: &str = "123456789012";
/// `AWS::Partition`.
pub(crate) const PARTITION: &str = "aws";
/// `AWS::URLSuffix`.
pub(crate) const URL_SUFFIX: &str = "amazonaws.com";

/// A path in the template (`Resources.Echo.Properties.Timeout`), as a chain of borrowed
/// segments: cheap to extend, rendered only for an error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    segment: Segment<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    /// A top-level key (`Resources`, `Parameters`, ...).
    pub(crate) fn root(key: &'a str) -> Self {
        Self {
            parent: None,
            segment: Segment::Key(key),
        }
    }

    /// The value under `key`.
    pub(crate) fn key<'b>(&'b self, key: &'b str) -> At<'b> {
        At {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    /// The item at `index`.
    pub(crate) fn index(&self, index: usize) -> At<'_> {
        At {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    /// `Resources.Echo.Properties.Layers[0]`.
    pub(crate) fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            segments.push(a.segment);
            at = a.parent;
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

/// What `Ref` and `Fn::GetAtt` give for one resource.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// The resource's type, for messages.
    pub(crate) kind: String,
    /// What `Ref` gives.
    pub(crate) reference: Value,
    /// What `Fn::GetAtt` gives, by attribute; any other attribute is an error.
    pub(crate) attributes: Vec<(&'static str, Value)>,
    /// Why the resource's facts could not be resolved, reported when it is referenced.
    pub(crate) broken: Option<String>,
}

/// What a template's values can name, and the functions that resolve them.
#[derive(Debug)]
pub(crate) struct Resolver<'t> {
    /// The template, for errors.
    pub(crate) file: &'t Path,
    /// `AWS::Region`.
    pub(crate) region: String,
    /// `AWS::StackName`.
    pub(crate) stack_name: String,
    /// Parameter values: a string, or a list of strings for list types.
    pub(crate) parameters: HashMap<String, Value>,
    /// The `Mappings` section.
    pub(crate) mappings: Map<String, Value>,
    /// Conditions evaluated so far (all of them once resources are read).
    pub(crate) conditions: HashMap<String, bool>,
    /// Resources that exist, with what `Ref` and `Fn::GetAtt` give.
    pub(crate) resources: HashMap<String, Facts>,
    /// Resources left out by their condition: logical id → condition.
    pub(crate) absent: HashMap<String, String>,
}

impl<'t> Resolver<'t> {
    /// A resolver with no parameters, conditions or resources yet.
    pub(crate) fn new(file: &'t Path, region: &str, stack_name: &str) -> Self {
        Self {
            file,
            region: region.to_owned(),
            stack_name: stack_name.to_owned(),
            parameters: HashMap::new(),
            mappings: Map::new(),
            conditions: HashMap::new(),
            resources: HashMap::new(),
            absent: HashMap::new(),
        }
    }

    /// An error at `at`.
    pub(crate) fn error(&self, at: &At<'_>, message: impl Into<String>) -> Error {
        Error::invalid(self.file, Location::Path(at.render()), message)
    }

    /// Resolves `value`; `None` when it is `AWS::NoValue` (the key or item is removed).
    pub(crate) fn resolve(&self, value: &Value, at: &At<'_>) -> Result<Option<Value>, Error> {
        match value {
            Value::Object(map) => {
                if let Some((name, args)) = intrinsic(map) {
                    return self.call(name, args, at);
                }
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve(v, &at.key(k))? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    if let Some(v) = self.resolve(v, &at.index(i))? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Resolves `value`, which must be there (`AWS::NoValue` is an error).
    pub(crate) fn value(&self, value: &Value, at: &At<'_>) -> Result<Value, Error> {
        self.resolve(value, at)?
            .ok_or_else(|| self.error(at, "AWS::NoValue cannot be used here"))
    }

    /// Resolves `value` to text: a string, or a number or boolean as written.
    pub(crate) fn string(&self, value: &Value, at: &At<'_>) -> Result<String, Error> {
        let v = self.value(value, at)?;
        text(&v).ok_or_else(|| self.error(at, format!("must be a string, not {}", describe(&v))))
    }

    /// Resolves `value` to a list of strings.
    fn strings(&self, value: &Value, at: &At<'_>) -> Result<Vec<String>, Error> {
        match self.value(value, at)? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    text(v).ok_or_else(|| {
                        self.error(
                            &at.index(i),
                            format!("must be a string, not {}", describe(v)),
                        )
                    })
                })
                .collect(),
            other => Err(self.error(at, format!("must be a list, not {}", describe(&other)))),
        }
    }

    fn call(&self, name: &str, args: &Value, at: &At<'_>) -> Result<Option<Value>, Error> {
        let at = &at.key(name);
        match name {
            "Ref" => self.reference(args, at),
            "Fn::GetAtt" => self.get_att(args, at).map(Some),
            "Fn::Sub" => self.sub(args, at).map(|s| Some(Value::String(s))),
            "Fn::Join" => {
                let [delimiter, items] = args_of::<2>(self, args, at, "[delimiter, list]")?;
                let delimiter = self.string(delimiter, &at.index(0))?;
                let items = self.strings(items, &at.index(1))?;
                Ok(Some(Value::String(items.join(&delimiter))))
            }
            "Fn::Select" => {
                let [index, items] = args_of::<2>(self, args, at, "[index, list]")?;
                let index_text = self.string(index, &at.index(0))?;
                let Ok(i) = index_text.trim().parse::<usize>() else {
                    return Err(self.error(
                        &at.index(0),
                        format!("the index must be a whole number, not {index_text:?}"),
                    ));
                };
                match self.value(items, &at.index(1))? {
                    Value::Array(list) => {
                        let len = list.len();
                        list.into_iter().nth(i).map(Some).ok_or_else(|| {
                            self.error(
                                at,
                                format!("index {i} is out of range: the list has {len} items"),
                            )
                        })
                    }
                    other => Err(self.error(
                        &at.index(1),
                        format!("must be a list, not {}", describe(&other)),
                    )),
                }
            }
            "Fn::Split" => {
                let [delimiter, source] = args_of::<2>(self, args, at, "[delimiter, string]")?;
                let delimiter = self.string(delimiter, &at.index(0))?;
                let source = self.string(source, &at.index(1))?;
                if delimiter.is_empty() {
                    return Err(self.error(&at.index(0), "the delimiter is empty"));
                }
                Ok(Some(Value::Array(
                    source
                        .split(delimiter.as_str())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                )))
            }
            "Fn::If" => {
                let [condition, then, otherwise] =
                    args_of::<3>(self, args, at, "[condition, value if true, value if false]")?;
                let chosen = if self.named_condition(condition, &at.index(0))? {
                    (then, at.index(1))
                } else {
                    (otherwise, at.index(2))
                };
                self.resolve(chosen.0, &chosen.1)
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => self
                .condition_call(name, args, at)
                .map(|b| Some(Value::Bool(b))),
            "Fn::FindInMap" => self.find_in_map(args, at).map(Some),
            "Fn::Base64" => {
                let plain = self.string(args, at)?;
                Ok(Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(plain),
                )))
            }
            "Fn::GetAZs" => {
                let region = match self.value(args, at)? {
                    Value::Null => String::new(),
                    other => text(&other).unwrap_or_default(),
                };
                let region = if region.is_empty() {
                    self.region.clone()
                } else {
                    region
                };
                Ok(Some(Value::Array(
                    ["a", "b", "c"]
                        .iter()
                        .map(|z| Value::String(format!("{region}{z}")))
                        .collect(),
                )))
            }
            "Fn::ImportValue" => Err(self.error(
                at,
                "Fn::ImportValue needs another stack's exports, which are not available locally",
            )),
            "Fn::Transform" => Err(self.error(
                at,
                "Fn::Transform runs a macro on AWS, which is not available locally",
            )),
            "Fn::Cidr" => self.cidr(args, at).map(Some),
            "Fn::Length" => match self.value(args, at)? {
                Value::Array(items) => Ok(Some(Value::from(items.len()))),
                other => Err(self.error(at, format!("must be a list, not {}", describe(&other)))),
            },
            "Fn::ToJsonString" => {
                let v = self.value(args, at)?;
                Ok(Some(Value::String(v.to_string())))
            }
            other => Err(self.error(at, format!("unknown function {other}"))),
        }
    }

    fn reference(&self, args: &Value, at: &At<'_>) -> Result<Option<Value>, Error> {
        let name = match args {
            Value::String(s) => s.clone(),
            other => self.string(other, at)?,
        };
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(v) = self.parameters.get(&name) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.pseudo(&name) {
            return Ok(Some(v));
        }
        self.resource_reference(&name, at).map(Some)
    }

    /// A pseudo parameter's value.
    fn pseudo(&self, name: &str) -> Option<Value> {
        let s = |v: String| Some(Value::String(v));
        match name {
            "AWS::Region" => s(self.region.clone()),
            "AWS::AccountId" => s(ACCOUNT_ID.to_owned()),
            "AWS::StackName" => s(self.stack_name.clone()),
            "AWS::StackId" => s(format!(
                "arn:{PARTITION}:cloudformation:{}:{ACCOUNT_ID}:stack/{}/00000000-0000-4000-8000-000000000000",
                self.region, self.stack_name
            )),
            "AWS::Partition" => s(PARTITION.to_owned()),
            "AWS::URLSuffix" => s(URL_SUFFIX.to_owned()),
            "AWS::NotificationARNs" => Some(Value::Array(Vec::new())),
            _ => None,
        }
    }

    fn facts(&self, id: &str, at: &At<'_>) -> Result<&Facts, Error> {
        if let Some(facts) = self.resources.get(id) {
            if let Some(why) = &facts.broken {
                return Err(self.error(at, format!("{id} cannot be resolved: {why}")));
            }
            return Ok(facts);
        }
        if let Some(condition) = self.absent.get(id) {
            return Err(self.error(
                at,
                format!("{id} does not exist: its condition {condition} is false"),
            ));
        }
        Err(self.error(
            at,
            format!("{id} is not a parameter, a pseudo parameter or a resource of the template"),
        ))
    }

    fn resource_reference(&self, id: &str, at: &At<'_>) -> Result<Value, Error> {
        self.facts(id, at).map(|f| f.reference.clone())
    }

    /// `Fn::GetAtt` of `id`'s `attribute`.
    fn attribute(&self, id: &str, attribute: &str, at: &At<'_>) -> Result<Value, Error> {
        let facts = self.facts(id, at)?;
        facts
            .attributes
            .iter()
            .find(|(name, _)| *name == attribute)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = facts.attributes.iter().map(|(n, _)| *n).collect();
                let known = if known.is_empty() {
                    "none is available locally".to_owned()
                } else {
                    format!("available: {}", known.join(", "))
                };
                self.error(
                    at,
                    format!(
                        "{id} ({}) has no attribute {attribute} ({known})",
                        facts.kind
                    ),
                )
            })
    }

    fn get_att(&self, args: &Value, at: &At<'_>) -> Result<Value, Error> {
        let (id, attribute) = match args {
            Value::String(s) => match s.split_once('.') {
                Some((id, attribute)) => (id.to_owned(), attribute.to_owned()),
                None => {
                    return Err(self.error(at, format!("expected Resource.Attribute, not {s:?}")));
                }
            },
            Value::Array(items) => match items.as_slice() {
                [id, attribute] => (
                    self.string(id, &at.index(0))?,
                    self.string(attribute, &at.index(1))?,
                ),
                _ => return Err(self.error(at, "expected [resource, attribute]")),
            },
            other => {
                return Err(self.error(
                    at,
                    format!("expected [resource, attribute], not {}", describe(other)),
                ));
            }
        };
        self.attribute(&id, &attribute, at)
    }

    fn sub(&self, args: &Value, at: &At<'_>) -> Result<String, Error> {
        let (template, variables) = match args {
            Value::String(s) => (s.as_str(), None),
            Value::Array(items) => match items.as_slice() {
                [Value::String(s), Value::Object(vars)] => (s.as_str(), Some(vars)),
                [Value::String(s)] => (s.as_str(), None),
                _ => return Err(self.error(at, "expected a string or [string, {variables}]")),
            },
            other => {
                return Err(self.error(
                    at,
                    format!(
                        "expected a string or [string, {{variables}}], not {}",
                        describe(other)
                    ),
                ));
            }
        };
        let vars_at = at.index(1);
        let mut resolved: HashMap<&str, String> = HashMap::new();
        if let Some(vars) = variables {
            for (k, v) in vars {
                let value = self.value(v, &vars_at.key(k))?;
                let value = match &value {
                    Value::Array(items) => join_texts(items),
                    other => text(other),
                }
                .ok_or_else(|| {
                    self.error(
                        &vars_at.key(k),
                        format!("must be a string, not {}", describe(&value)),
                    )
                })?;
                resolved.insert(k.as_str(), value);
            }
        }
        let mut out = String::with_capacity(template.len());
        for piece in sub_pieces(template) {
            match piece {
                SubPiece::Text(t) => out.push_str(t),
                SubPiece::Unclosed => {
                    return Err(self.error(at, format!("an unclosed ${{ in {template:?}")));
                }
                SubPiece::Variable(name) => {
                    if let Some(v) = resolved.get(name) {
                        out.push_str(v);
                        continue;
                    }
                    let value = match name.split_once('.') {
                        Some((id, attribute)) if !name.starts_with("AWS::") => {
                            self.attribute(id, attribute, at)?
                        }
                        _ => match self.reference(&Value::String(name.to_owned()), at)? {
                            Some(v) => v,
                            None => Value::String(String::new()),
                        },
                    };
                    let text = match &value {
                        Value::Array(items) => join_texts(items),
                        other => text(other),
                    }
                    .ok_or_else(|| {
                        self.error(
                            at,
                            format!("${{{name}}} is {}, not a string", describe(&value)),
                        )
                    })?;
                    out.push_str(&text);
                }
            }
        }
        Ok(out)
    }

    fn find_in_map(&self, args: &Value, at: &At<'_>) -> Result<Value, Error> {
        let Value::Array(items) = args else {
            return Err(self.error(at, "expected [map, top-level key, second-level key]"));
        };
        let (map, top, second, default) = match items.as_slice() {
            [m, t, s] => (m, t, s, None),
            [m, t, s, Value::Object(options)] => (m, t, s, options.get("DefaultValue")),
            _ => return Err(self.error(at, "expected [map, top-level key, second-level key]")),
        };
        let map = self.string(map, &at.index(0))?;
        let top = self.string(top, &at.index(1))?;
        let second = self.string(second, &at.index(2))?;
        let found = self
            .mappings
            .get(&map)
            .and_then(|m| m.get(&top))
            .and_then(|m| m.get(&second));
        match (found, default) {
            (Some(v), _) => self.value(v, &At::root("Mappings").key(&map).key(&top).key(&second)),
            (None, Some(d)) => self.value(d, &at.index(3).key("DefaultValue")),
            (None, None) if !self.mappings.contains_key(&map) => {
                Err(self.error(at, format!("no mapping named {map}")))
            }
            (None, None) => Err(self.error(at, format!("the mapping {map} has no {top}.{second}"))),
        }
    }

    fn cidr(&self, args: &Value, at: &At<'_>) -> Result<Value, Error> {
        let [block, count, bits] = args_of::<3>(self, args, at, "[ip block, count, cidr bits]")?;
        let block = self.string(block, &at.index(0))?;
        let count_text = self.string(count, &at.index(1))?;
        let bits_text = self.string(bits, &at.index(2))?;
        let (Ok(count), Ok(bits)) = (count_text.parse::<u32>(), bits_text.parse::<u32>()) else {
            return Err(self.error(at, "the count and the cidr bits must be whole numbers"));
        };
        cidr_subnets(&block, count, bits)
            .map(|subnets| Value::Array(subnets.into_iter().map(Value::String).collect()))
            .map_err(|why| self.error(at, why))
    }

    /// Evaluates a condition written inline (`{"Fn::Equals": [...]}`, `{"Condition": name}`).
    pub(crate) fn truth(&self, value: &Value, at: &At<'_>) -> Result<bool, Error> {
        if let Value::Object(map) = value
            && map.len() == 1
        {
            if let Some(name) = map.get("Condition") {
                return self.named_condition(name, &at.key("Condition"));
            }
            if let Some((name, args)) = intrinsic(map)
                && matches!(name, "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not")
            {
                return self.condition_call(name, args, &at.key(name));
            }
        }
        match self.value(value, at)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s == "true" => Ok(true),
            Value::String(s) if s == "false" => Ok(false),
            other => Err(self.error(at, format!("must be a condition, not {}", describe(&other)))),
        }
    }

    /// The value of the condition named by `name` (a string).
    pub(crate) fn named_condition(&self, name: &Value, at: &At<'_>) -> Result<bool, Error> {
        let Value::String(name) = name else {
            return Err(self.error(at, "must name a condition"));
        };
        self.conditions
            .get(name)
            .copied()
            .ok_or_else(|| self.error(at, format!("no condition named {name}")))
    }

    fn condition_call(&self, name: &str, args: &Value, at: &At<'_>) -> Result<bool, Error> {
        let Value::Array(items) = args else {
            return Err(self.error(at, "expected a list of conditions"));
        };
        match name {
            "Fn::Equals" => {
                let [a, b] = args_of::<2>(self, args, at, "[value, value]")?;
                let a = self.value(a, &at.index(0))?;
                let b = self.value(b, &at.index(1))?;
                Ok(loose_eq(&a, &b))
            }
            "Fn::Not" => {
                let [c] = args_of::<1>(self, args, at, "[condition]")?;
                Ok(!self.truth(c, &at.index(0))?)
            }
            _ => {
                if !(2..=10).contains(&items.len()) {
                    return Err(
                        self.error(at, format!("takes 2 to 10 conditions, not {}", items.len()))
                    );
                }
                let and = name == "Fn::And";
                for (i, c) in items.iter().enumerate() {
                    let b = self.truth(c, &at.index(i))?;
                    if b != and {
                        return Ok(!and);
                    }
                }
                Ok(and)
            }
        }
    }
}

/// The function of a one-key object (`Ref`, `Fn::*`), if it is one.
pub(crate) fn intrinsic(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    (k == "Ref" || k.starts_with("Fn::")).then_some((k.as_str(), v))
}

fn args_of<'v, const N: usize>(
    r: &Resolver<'_>,
    args: &'v Value,
    at: &At<'_>,
    shape: &str,
) -> Result<[&'v Value; N], Error> {
    let Value::Array(items) = args else {
        return Err(r.error(at, format!("expected {shape}")));
    };
    let refs: Vec<&Value> = items.iter().collect();
    <[&Value; N]>::try_from(refs)
        .map_err(|v| r.error(at, format!("expected {shape}: {N} items, not {}", v.len())))
}

/// A value as text: strings as they are, numbers and booleans as written.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn join_texts(items: &[Value]) -> Option<String> {
    items
        .iter()
        .map(text)
        .collect::<Option<Vec<_>>>()
        .map(|v| v.join(","))
}

/// `a string`, `a list`, ... for messages.
pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// `Fn::Equals` compares values as CloudFormation does, as text: `"1"` equals `1`.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| loose_eq(x, y))
        }
        _ => match (text(a), text(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SubPiece<'a> {
    Text(&'a str),
    Variable(&'a str),
    Unclosed,
}

/// Splits a `Fn::Sub` string into text and `${variables}`; `${!Literal}` is the text `${Literal}`.
fn sub_pieces(template: &str) -> Vec<SubPiece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let (before, after) = rest.split_at(start);
        if !before.is_empty() {
            pieces.push(SubPiece::Text(before));
        }
        let inner = &after[2..];
        let Some(end) = inner.find('}') else {
            pieces.push(SubPiece::Unclosed);
            return pieces;
        };
        let name = &inner[..end];
        if let Some(literal) = name.strip_prefix('!') {
            pieces.push(SubPiece::Text("${"));
            pieces.push(SubPiece::Text(literal));
            pieces.push(SubPiece::Text("}"));
        } else {
            pieces.push(SubPiece::Variable(name.trim()));
        }
        rest = &inner[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(SubPiece::Text(rest));
    }
    pieces
}

/// The references a `Fn::Sub` string makes: resource ids of `${Id}` and `${Id.Attribute}`.
pub(crate) fn sub_references(template: &str) -> impl Iterator<Item = &str> {
    sub_pieces(template).into_iter().filter_map(|p| match p {
        SubPiece::Variable(name) if !name.starts_with("AWS::") => {
            Some(name.split_once('.').map_or(name, |(id, _)| id))
        }
        _ => None,
    })
}

/// `Fn::Cidr`: `count` subnets of `2^bits` addresses each, carved from `block` in order.
fn cidr_subnets(block: &str, count: u32, bits: u32) -> Result<Vec<String>, String> {
    let (address, prefix) = block
        .split_once('/')
        .ok_or_else(|| format!("{block:?} is not an address block (a.b.c.d/n)"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| format!("{block:?} has no valid prefix length"))?;
    let (start, width, v6) = if let Ok(v4) = address.parse::<Ipv4Addr>() {
        (u128::from(u32::from(v4)), 32u32, false)
    } else if let Ok(v6) = address.parse::<Ipv6Addr>() {
        (u128::from(v6), 128u32, true)
    } else {
        return Err(format!("{address:?} is not an IP address"));
    };
    if prefix > width || bits > width - prefix || bits == 0 {
        return Err(format!(
            "{bits} cidr bits do not fit in {block} (the block has {} host bits)",
            width.saturating_sub(prefix)
        ));
    }
    let available = 1u128
        .checked_shl(width - prefix - bits)
        .unwrap_or(u128::MAX);
    if count == 0 || u128::from(count) > available {
        return Err(format!(
            "{block} holds {available} subnets of {bits} bits, not {count}"
        ));
    }
    let mask = if prefix == 0 {
        0
    } else {
        (!0u128).checked_shl(width - prefix).unwrap_or(0)
            & (!0u128).checked_shr(128 - width).unwrap_or(0)
    };
    let base = start & mask;
    let size = 1u128.checked_shl(bits).unwrap_or(0);
    Ok((0..u128::from(count))
        .map(|i| {
            let net = base + i * size;
            let addr = if v6 {
                Ipv6Addr::from(net).to_string()
            } else {
                Ipv4Addr::from(u32::try_from(net).unwrap_or_default()).to_string()
            };
            format!("{addr}/{}", width - bits)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolver() -> Resolver<'static> {
        let mut r = Resolver::new(Path::new("t.yaml"), "eu-west-1", "demo");
        r.parameters.insert("Stage".into(), json!("prod"));
        r.parameters.insert("Subnets".into(), json!(["a", "b"]));
        r.mappings = json!({"Sizes": {"prod": {"Memory": 512}}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        r.conditions.insert("IsProd".into(), true);
        r.conditions.insert("IsDev".into(), false);
        r.resources.insert(
            "Table".into(),
            Facts {
                kind: "AWS::DynamoDB::Table".into(),
                reference: json!("demo-Table"),
                attributes: vec![("Arn", json!("arn:table"))],
                broken: None,
            },
        );
        r.absent.insert("Gone".into(), "IsDev".into());
        r
    }

    fn resolve(v: Value) -> Result<Option<Value>, String> {
        resolver()
            .resolve(
                &v,
                &At::root("Resources").key("F").key("Properties").key("P"),
            )
            .map_err(|e| e.to_string())
    }

    fn ok(v: Value) -> Value {
        resolve(v)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("NoValue"))
    }

    fn err(v: Value) -> String {
        match resolve(v) {
            Ok(v) => panic!("resolved: {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn ref_gives_parameters_pseudo_parameters_and_resources() {
        assert_eq!(ok(json!({"Ref": "Stage"})), json!("prod"));
        assert_eq!(ok(json!({"Ref": "AWS::Region"})), json!("eu-west-1"));
        assert_eq!(ok(json!({"Ref": "AWS::AccountId"})), json!("123456789012"));
        assert_eq!(ok(json!({"Ref": "AWS::StackName"})), json!("demo"));
        assert_eq!(ok(json!({"Ref": "AWS::Partition"})), json!("aws"));
        assert_eq!(ok(json!({"Ref": "AWS::URLSuffix"})), json!("amazonaws.com"));
        assert_eq!(ok(json!({"Ref": "AWS::NotificationARNs"})), json!([]));
        assert!(
            ok(json!({"Ref": "AWS::StackId"})).as_str().is_some_and(
                |s| s.starts_with("arn:aws:cloudformation:eu-west-1:123456789012:stack/demo/")
            )
        );
        assert_eq!(ok(json!({"Ref": "Table"})), json!("demo-Table"));
    }

    #[test]
    fn no_value_removes_the_key_or_the_item() {
        assert_eq!(
            ok(json!({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}, 2]})),
            json!({"b": [1, 2]})
        );
        assert_eq!(
            ok(json!({"a": {"Fn::If": ["IsDev", 1, {"Ref": "AWS::NoValue"}]}})),
            json!({})
        );
    }

    #[test]
    fn unknown_ref_names_it_and_the_path() {
        let e = err(json!({"Ref": "Nope"}));
        assert!(
            e.starts_with("t.yaml: Resources.F.Properties.P.Ref: Nope is not a parameter"),
            "{e}"
        );
        let e = err(json!({"Ref": "Gone"}));
        assert!(
            e.contains("Gone does not exist: its condition IsDev is false"),
            "{e}"
        );
    }

    #[test]
    fn get_att_of_a_missing_attribute_names_resource_and_attribute() {
        assert_eq!(
            ok(json!({"Fn::GetAtt": ["Table", "Arn"]})),
            json!("arn:table")
        );
        assert_eq!(ok(json!({"Fn::GetAtt": "Table.Arn"})), json!("arn:table"));
        let e = err(json!({"Fn::GetAtt": ["Table", "StreamLabel"]}));
        assert!(
            e.starts_with("t.yaml: Resources.F.Properties.P.Fn::GetAtt:")
                && e.contains("Table (AWS::DynamoDB::Table) has no attribute StreamLabel"),
            "{e}"
        );
        let e = err(json!({"Fn::GetAtt": ["Nope", "Arn"]}));
        assert!(e.contains("Nope is not"), "{e}");
    }

    #[test]
    fn sub_replaces_variables_attributes_and_keeps_literals() {
        assert_eq!(
            ok(json!({"Fn::Sub": "${AWS::StackName}-${Stage}-${Table}-${Table.Arn}-${!Literal}"})),
            json!("demo-prod-demo-Table-arn:table-${Literal}")
        );
        assert_eq!(
            ok(json!({"Fn::Sub": ["${A}/${Stage}", {"A": {"Ref": "AWS::Region"}}]})),
            json!("eu-west-1/prod")
        );
        assert!(err(json!({"Fn::Sub": "${Missing}"})).contains("Missing is not"));
        assert!(err(json!({"Fn::Sub": "${Open"})).contains("unclosed"));
    }

    #[test]
    fn join_select_split_base64_getazs() {
        assert_eq!(
            ok(json!({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 3]]})),
            json!("a-prod-3")
        );
        assert_eq!(
            ok(json!({"Fn::Join": [",", {"Ref": "Subnets"}]})),
            json!("a,b")
        );
        assert_eq!(
            ok(json!({"Fn::Select": ["1", {"Ref": "Subnets"}]})),
            json!("b")
        );
        let e = err(json!({"Fn::Select": [2, ["a", "b"]]}));
        assert!(e.contains("index 2 is out of range"), "{e}");
        assert_eq!(
            ok(json!({"Fn::Split": [",", "a,b,,c"]})),
            json!(["a", "b", "", "c"])
        );
        assert_eq!(ok(json!({"Fn::Base64": "hello"})), json!("aGVsbG8="));
        assert_eq!(
            ok(json!({"Fn::GetAZs": ""})),
            json!(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
        );
        assert_eq!(
            ok(json!({"Fn::Select": [0, {"Fn::GetAZs": {"Ref": "AWS::Region"}}]})),
            json!("eu-west-1a")
        );
    }

    #[test]
    fn if_equals_and_or_not() {
        assert_eq!(
            ok(json!({"Fn::If": ["IsProd", "big", "small"]})),
            json!("big")
        );
        assert_eq!(
            ok(json!({"Fn::If": ["IsDev", "big", "small"]})),
            json!("small")
        );
        // The branch not taken is not resolved.
        assert_eq!(
            ok(json!({"Fn::If": ["IsProd", 1, {"Ref": "Nope"}]})),
            json!(1)
        );
        assert_eq!(
            ok(json!({"Fn::Equals": [{"Ref": "Stage"}, "prod"]})),
            json!(true)
        );
        assert_eq!(ok(json!({"Fn::Equals": ["1", 1]})), json!(true));
        assert_eq!(
            ok(
                json!({"Fn::And": [{"Condition": "IsProd"}, {"Fn::Not": [{"Condition": "IsDev"}]}]})
            ),
            json!(true)
        );
        assert_eq!(
            ok(json!({"Fn::Or": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "b"]}]})),
            json!(false)
        );
        assert!(err(json!({"Fn::If": ["Unknown", 1, 2]})).contains("no condition named Unknown"));
    }

    #[test]
    fn find_in_map_and_its_default() {
        assert_eq!(
            ok(json!({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]})),
            json!(512)
        );
        assert_eq!(
            ok(json!({"Fn::FindInMap": ["Sizes", "dev", "Memory", {"DefaultValue": 128}]})),
            json!(128)
        );
        assert!(
            err(json!({"Fn::FindInMap": ["Sizes", "dev", "Memory"]})).contains("no dev.Memory")
        );
    }

    #[test]
    fn import_value_and_unknown_functions_are_clear_errors() {
        let e = err(json!({"Fn::ImportValue": "shared-vpc"}));
        assert!(
            e.contains("Fn::ImportValue needs another stack's exports"),
            "{e}"
        );
        assert!(err(json!({"Fn::Nope": 1})).contains("unknown function Fn::Nope"));
    }

    #[test]
    fn cidr_carves_subnets() {
        assert_eq!(
            ok(json!({"Fn::Cidr": ["10.0.0.0/16", 3, 8]})),
            json!(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])
        );
        assert_eq!(
            ok(json!({"Fn::Cidr": ["2001:db8::/56", 2, 64]})),
            json!(["2001:db8::/64", "2001:db8:0:1::/64"])
        );
        assert!(err(json!({"Fn::Cidr": ["10.0.0.0/24", 3, 8]})).contains("holds 1 subnets"));
    }

    #[test]
    fn length_and_to_json_string() {
        assert_eq!(ok(json!({"Fn::Length": {"Ref": "Subnets"}})), json!(2));
        assert_eq!(
            ok(json!({"Fn::ToJsonString": {"a": {"Ref": "Stage"}}})),
            json!("{\"a\":\"prod\"}")
        );
    }

    #[test]
    fn sub_references_name_resources_only() {
        let refs: Vec<&str> = sub_references("${A}-${B.Arn}-${AWS::Region}-${!C}").collect();
        assert_eq!(refs, vec!["A", "B"]);
    }

    #[test]
    fn paths_render_keys_and_indexes() {
        let root = At::root("Resources");
        let f = root.key("F");
        let layers = f.key("Layers");
        assert_eq!(layers.index(2).render(), "Resources.F.Layers[2]");
    }
}

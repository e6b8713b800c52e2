//! DynamoDB tables (`AWS::DynamoDB::Table`, `AWS::Serverless::SimpleTable`) as
//! [`TableSpec`]s: their name (what `Ref` gives), attributes, key schema, secondary indexes
//! and TTL attribute.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::model::{IndexSpec, TableSpec};
use crate::template::Context;
use crate::template::intrinsics::{describe, text};
use crate::template::resources::Resource;

/// Reads the tables, sorted by name.
pub(crate) fn read(cx: &Context<'_>, resources: &[Resource]) -> Result<Vec<TableSpec>, Error> {
    let mut tables = Vec::new();
    for r in resources {
        let table = match r.kind.as_str() {
            "AWS::DynamoDB::Table" => table(cx, r)?,
            "AWS::Serverless::SimpleTable" => simple_table(cx, r)?,
            _ => continue,
        };
        tables.push(table);
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

/// The table's name: what its `Ref` gives.
fn name_of(cx: &Context<'_>, r: &Resource) -> Result<String, Error> {
    match cx.string(r, "TableName")? {
        Some(name) => Ok(name),
        None => Ok(format!("{}-{}", cx.options.stack_name, r.id)),
    }
}

fn simple_table(cx: &Context<'_>, r: &Resource) -> Result<TableSpec, Error> {
    let (name, kind) = match cx.property(r, "PrimaryKey")? {
        None => ("id".to_owned(), "String".to_owned()),
        Some(Value::Object(key)) => (
            key.get("Name")
                .and_then(text)
                .unwrap_or_else(|| "id".to_owned()),
            key.get("Type")
                .and_then(text)
                .unwrap_or_else(|| "String".to_owned()),
        ),
        Some(other) => {
            return Err(cx.error(
                r,
                "PrimaryKey",
                format!("must be a map, not {}", describe(&other)),
            ));
        }
    };
    let short = match kind.as_str() {
        "String" => "S",
        "Number" => "N",
        "Binary" => "B",
        other => {
            return Err(cx.error(
                r,
                "PrimaryKey.Type",
                format!("must be String, Number or Binary, not {other}"),
            ));
        }
    };
    Ok(TableSpec {
        id: r.id.clone(),
        name: name_of(cx, r)?,
        attributes: vec![(name.clone(), short.to_owned())],
        key: vec![(name, "HASH".to_owned())],
        global_indexes: Vec::new(),
        local_indexes: Vec::new(),
        ttl_attribute: None,
    })
}

fn table(cx: &Context<'_>, r: &Resource) -> Result<TableSpec, Error> {
    let mut attributes = Vec::new();
    for (i, a) in list(cx, r, "AttributeDefinitions")?.iter().enumerate() {
        let path = format!("AttributeDefinitions[{i}]");
        let name = field(cx, r, &path, a, "AttributeName")?;
        let kind = field(cx, r, &path, a, "AttributeType")?;
        if !matches!(kind.as_str(), "S" | "N" | "B") {
            return Err(cx.error(
                r,
                &format!("{path}.AttributeType"),
                format!("must be S, N or B, not {kind}"),
            ));
        }
        attributes.push((name, kind));
    }
    let key_value = cx.property(r, "KeySchema")?;
    let key = key_schema(cx, r, "KeySchema", key_value.as_ref())?;
    if key.is_empty() {
        return Err(cx.error(r, "KeySchema", "a table needs a key schema"));
    }
    let global_indexes = indexes(cx, r, "GlobalSecondaryIndexes")?;
    let local_indexes = indexes(cx, r, "LocalSecondaryIndexes")?;
    let ttl_attribute = match cx.property(r, "TimeToLiveSpecification")? {
        Some(Value::Object(ttl)) => {
            let enabled = matches!(ttl.get("Enabled"), Some(Value::Bool(true)))
                || ttl.get("Enabled").and_then(Value::as_str) == Some("true");
            if enabled {
                Some(ttl.get("AttributeName").and_then(text).ok_or_else(|| {
                    cx.error(
                        r,
                        "TimeToLiveSpecification.AttributeName",
                        "TTL needs an AttributeName",
                    )
                })?)
            } else {
                None
            }
        }
        _ => None,
    };
    Ok(TableSpec {
        id: r.id.clone(),
        name: name_of(cx, r)?,
        attributes,
        key,
        global_indexes,
        local_indexes,
        ttl_attribute,
    })
}

fn list(cx: &Context<'_>, r: &Resource, key: &str) -> Result<Vec<Value>, Error> {
    match cx.property(r, key)? {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(cx.error(r, key, format!("must be a list, not {}", describe(&other)))),
    }
}

fn field(
    cx: &Context<'_>,
    r: &Resource,
    path: &str,
    item: &Value,
    key: &str,
) -> Result<String, Error> {
    item.get(key)
        .and_then(text)
        .ok_or_else(|| cx.error(r, &format!("{path}.{key}"), format!("{key} is required")))
}

fn key_schema(
    cx: &Context<'_>,
    r: &Resource,
    path: &str,
    value: Option<&Value>,
) -> Result<Vec<(String, String)>, Error> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(cx.error(r, path, format!("must be a list, not {}", describe(other))));
        }
    };
    let mut key = Vec::new();
    for (i, k) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = field(cx, r, &at, k, "AttributeName")?;
        let kind = field(cx, r, &at, k, "KeyType")?;
        if !matches!(kind.as_str(), "HASH" | "RANGE") {
            return Err(cx.error(
                r,
                &format!("{at}.KeyType"),
                format!("must be HASH or RANGE, not {kind}"),
            ));
        }
        key.push((name, kind));
    }
    Ok(key)
}

fn indexes(cx: &Context<'_>, r: &Resource, key: &str) -> Result<Vec<IndexSpec>, Error> {
    let mut out = Vec::new();
    let empty = Map::new();
    for (i, index) in list(cx, r, key)?.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let name = field(cx, r, &path, index, "IndexName")?;
        let schema = key_schema(cx, r, &format!("{path}.KeySchema"), index.get("KeySchema"))?;
        let projection = index
            .get("Projection")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let kind = projection
            .get("ProjectionType")
            .and_then(text)
            .unwrap_or_else(|| "ALL".to_owned());
        if !matches!(kind.as_str(), "ALL" | "KEYS_ONLY" | "INCLUDE") {
            return Err(cx.error(
                r,
                &format!("{path}.Projection.ProjectionType"),
                format!("must be ALL, KEYS_ONLY or INCLUDE, not {kind}"),
            ));
        }
        let non_key_attributes = match projection.get("NonKeyAttributes") {
            Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
            _ => Vec::new(),
        };
        out.push(IndexSpec {
            name,
            key: schema,
            projection: kind,
            non_key_attributes,
        });
    }
    Ok(out)
}

//! DynamoDB tables of a stack, created on a DynamoDB-compatible endpoint (`--dynamodb-endpoint`)
//! when they are missing, with their keys, secondary indexes and TTL.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

use crate::error::Error;
use crate::model::{IndexSpec, TableSpec};
use crate::report::Reporter;

/// How many times a new table's status is read while it is `CREATING`, and how long apart.
const ACTIVE_CHECKS: u32 = 100;
const ACTIVE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// A client for `endpoint`: the user's credentials when the environment has them, else local
/// ones (a local server does not check them).
pub fn client(endpoint: &str, region: &str) -> Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http());
    let key = std::env::var("AWS_ACCESS_KEY_ID").ok();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
    config = match (key, secret) {
        (Some(key), Some(secret)) => config.credentials_provider(Credentials::new(
            key,
            secret,
            std::env::var("AWS_SESSION_TOKEN").ok(),
            None,
            "environment",
        )),
        _ => config.credentials_provider(Credentials::new(
            "coldstart-local-key",
            "coldstart-local-secret",
            None,
            None,
            "coldstart",
        )),
    };
    Client::from_conf(config.build())
}

/// Creates every table of `tables` that `endpoint` does not have yet, and waits until each is
/// active.
pub async fn create_all(
    tables: &[TableSpec],
    endpoint: &str,
    region: &str,
    report: &Reporter,
) -> Result<(), Error> {
    if tables.is_empty() {
        return Ok(());
    }
    let client = client(endpoint, region);
    for table in tables {
        create(&client, table, report)
            .await
            .map_err(|reason| Error::Table {
                table: table.name.clone(),
                endpoint: endpoint.to_owned(),
                reason,
            })?;
    }
    Ok(())
}

async fn create(client: &Client, table: &TableSpec, report: &Reporter) -> Result<(), String> {
    match client.describe_table().table_name(&table.name).send().await {
        Ok(_) => {
            report.say(format!(
                "table {} ({}) exists on the DynamoDB endpoint",
                table.name, table.id
            ));
            return Ok(());
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(describe(e)),
    }
    let mut request = client
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in &table.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for element in key_schema(&table.key)? {
        request = request.key_schema(element);
    }
    for index in &table.global_indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection(index));
        for element in key_schema(&index.key)? {
            gsi = gsi.key_schema(element);
        }
        request = request.global_secondary_indexes(gsi.build().map_err(|e| e.to_string())?);
    }
    for index in &table.local_indexes {
        let mut lsi = LocalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection(index));
        for element in key_schema(&index.key)? {
            lsi = lsi.key_schema(element);
        }
        request = request.local_secondary_indexes(lsi.build().map_err(|e| e.to_string())?);
    }
    request.send().await.map_err(describe)?;
    // A new table is CREATING for a moment; writes to it fail until it is ACTIVE.
    for _ in 0..ACTIVE_CHECKS {
        let status = client
            .describe_table()
            .table_name(&table.name)
            .send()
            .await
            .map_err(describe)?
            .table
            .and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            break;
        }
        tokio::time::sleep(ACTIVE_CHECK_EVERY).await;
    }
    if let Some(attribute) = &table.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| e.to_string())?;
        // Some local servers do not implement TTL; the table works without it.
        if let Err(e) = client
            .update_time_to_live()
            .table_name(&table.name)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            report.say(format!(
                "table {}: TTL on {attribute} not set: {}",
                table.name,
                describe(e)
            ));
        }
    }
    report.say(format!(
        "table {} ({}) created on the DynamoDB endpoint",
        table.name, table.id
    ));
    Ok(())
}

fn key_schema(key: &[(String, String)]) -> Result<Vec<KeySchemaElement>, String> {
    key.iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn projection(index: &IndexSpec) -> Projection {
    let mut projection =
        Projection::builder().projection_type(ProjectionType::from(index.projection.as_str()));
    for attribute in &index.non_key_attributes {
        projection = projection.non_key_attributes(attribute);
    }
    projection.build()
}

/// An SDK error with its service message when there is one.
fn describe<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

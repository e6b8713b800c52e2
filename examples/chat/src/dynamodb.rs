//! The production connection store: a DynamoDB table with a global secondary index on `channel`.
//!
//! Table layout (the same as `template.yaml` creates, and as [`DynamoDbStore::create_table`]
//! creates for tests and local servers):
//! - partition key `connectionId` (string);
//! - attribute `channel` (string), the partition key of the GSI (default name `channel-index`,
//!   projection `KEYS_ONLY`), so a broadcast is one `Query` rather than a `Scan` of every channel;
//! - attribute `expiresAt` (number, epoch seconds), the table's TTL attribute: API Gateway closes
//!   a connection after 2 hours and `$disconnect` is best effort, so records of connections that
//!   vanished without one expire on their own (besides being removed on the first 410).
//!
//! A GSI is eventually consistent: a connection recorded a moment ago may be missing from a
//! broadcast that starts at the same moment. Lookups by key (`channel_of`) read consistently.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus,
};

use crate::{BoxError, ConnectionStore, Error};

/// How long a record outlives its `put`: API Gateway's maximum connection duration (2 hours)
/// plus a margin.
const RECORD_TTL: Duration = Duration::from_secs(3 * 60 * 60);

/// Longest [`DynamoDbStore::create_table`] waits for the new table to become `ACTIVE`.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections in a DynamoDB table.
///
/// Cheap to clone: the SDK client is a handle to a shared connection pool.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    index: String,
}

impl DynamoDbStore {
    /// The table's partition key (string): the connection id.
    pub const CONNECTION_ID: &str = "connectionId";
    /// The channel of a connection (string); the GSI's partition key.
    pub const CHANNEL: &str = "channel";
    /// When the record expires (number, epoch seconds); the table's TTL attribute.
    pub const EXPIRES_AT: &str = "expiresAt";

    /// A store on `table`, listing channels through the GSI `index`. Makes no request.
    pub fn new(client: Client, table: impl Into<String>, index: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            index: index.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The GSI's name.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// Creates the table and its GSI (on-demand billing), as `template.yaml` does, and waits until
    /// it is `ACTIVE`. For tests and local DynamoDB-compatible servers; on AWS the template owns
    /// the table. TTL is not switched on here: local servers do not expire items.
    pub async fn create_table(&self) -> Result<(), Error> {
        self.try_create_table()
            .await
            .map_err(|source| self.error("create_table", source))
    }

    async fn try_create_table(&self) -> Result<(), BoxError> {
        let hash_key = |name: &str| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::Hash)
                .build()
        };
        let string_definition = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let by_channel = GlobalSecondaryIndex::builder()
            .index_name(&self.index)
            .key_schema(hash_key(Self::CHANNEL)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(hash_key(Self::CONNECTION_ID)?)
            .attribute_definitions(string_definition(Self::CONNECTION_ID)?)
            .attribute_definitions(string_definition(Self::CHANNEL)?)
            .global_secondary_indexes(by_channel)
            .send()
            .await?;
        self.wait_until_active().await
    }

    /// Polls DescribeTable until the table is `ACTIVE`: DynamoDB offers no other signal, and
    /// writes to a `CREATING` table fail. Backs off from 50 ms to 1 s; gives up after
    /// [`TABLE_ACTIVE_TIMEOUT`]. (The SDK's waiter starts at 20 s between polls, too slow for a
    /// local server whose tables are ready within milliseconds.)
    async fn wait_until_active(&self) -> Result<(), BoxError> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        let mut pause = Duration::from_millis(50);
        loop {
            let status = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await?
                .table
                .and_then(|table| table.table_status);
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(format!(
                    "the table is still {status:?} after {TABLE_ACTIVE_TIMEOUT:?}"
                )
                .into());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    fn error(&self, operation: &'static str, source: impl Into<BoxError>) -> Error {
        Error::DynamoDb {
            operation,
            table: self.table.clone(),
            source: source.into(),
        }
    }

    fn invalid_item(&self, attribute: &'static str) -> Error {
        Error::InvalidItem {
            table: self.table.clone(),
            attribute,
        }
    }
}

/// The string attribute `name` of `item`.
fn string_attribute<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

impl ConnectionStore for DynamoDbStore {
    async fn put(&self, connection_id: &str, channel: &str) -> Result<(), Error> {
        let expires_at = (SystemTime::now() + RECORD_TTL)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                Self::CONNECTION_ID,
                AttributeValue::S(connection_id.to_owned()),
            )
            .item(Self::CHANNEL, AttributeValue::S(channel.to_owned()))
            .item(Self::EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|source| self.error("put", source))?;
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(
                Self::CONNECTION_ID,
                AttributeValue::S(connection_id.to_owned()),
            )
            .send()
            .await
            .map_err(|source| self.error("delete", source))?;
        Ok(())
    }

    async fn list(&self, channel: &str) -> Result<Vec<String>, Error> {
        let mut items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(&self.index)
            .key_condition_expression("#channel = :channel")
            .expression_attribute_names("#channel", Self::CHANNEL)
            .expression_attribute_values(":channel", AttributeValue::S(channel.to_owned()))
            .into_paginator()
            .items()
            .send();
        let mut connections = Vec::new();
        while let Some(item) = items.next().await {
            let item = item.map_err(|source| self.error("list", source))?;
            let id = string_attribute(&item, Self::CONNECTION_ID)
                .ok_or_else(|| self.invalid_item(Self::CONNECTION_ID))?;
            connections.push(id.to_owned());
        }
        Ok(connections)
    }

    async fn channel_of(&self, connection_id: &str) -> Result<Option<String>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                Self::CONNECTION_ID,
                AttributeValue::S(connection_id.to_owned()),
            )
            .consistent_read(true)
            .projection_expression("#channel")
            .expression_attribute_names("#channel", Self::CHANNEL)
            .send()
            .await
            .map_err(|source| self.error("channel_of", source))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let channel = string_attribute(&item, Self::CHANNEL)
            .ok_or_else(|| self.invalid_item(Self::CHANNEL))?;
        Ok(Some(channel.to_owned()))
    }
}

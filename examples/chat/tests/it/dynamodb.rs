//! The DynamoDB store on a local DynamoDB-compatible server (dynalite, started per test, killed
//! when the test ends): the conformance tests, and checks that the store really talks to the
//! server through the table layout the SAM template declares.

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ProjectionType};
use chat::{ConnectionStore, DynamoDbStore};

use crate::conformance::conformance_tests;
use crate::support::{Dynalite, dynamodb_client, sdk_config, unique};

const INDEX: &str = "channel-index";

async fn open() -> (DynamoDbStore, Dynalite) {
    let server = Dynalite::start().await;
    let client = dynamodb_client(&sdk_config().await, server.endpoint());
    let store = DynamoDbStore::new(client, unique("connections"), INDEX);
    store.create_table().await.expect("create the table");
    (store, server)
}

conformance_tests!(open);

/// What the store writes is in the server, as the template's layout says: read back through a
/// second, independent client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_in_the_server_with_the_templates_layout() {
    let (store, server) = open().await;
    store.put("L0SM9cOFvHcCIhw=", "lobby").await.expect("put");

    let other = dynamodb_client(&sdk_config().await, server.endpoint());
    let table = other
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .expect("describe the table")
        .table
        .expect("a table description");
    let key = table.key_schema();
    assert_eq!(key.len(), 1);
    assert_eq!(key[0].attribute_name(), DynamoDbStore::CONNECTION_ID);
    assert_eq!(key[0].key_type(), &KeyType::Hash);
    let index = &table.global_secondary_indexes()[0];
    assert_eq!(index.index_name(), Some(INDEX));
    assert_eq!(
        index.key_schema()[0].attribute_name(),
        DynamoDbStore::CHANNEL
    );
    assert_eq!(
        index.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::KeysOnly)
    );

    let item = other
        .get_item()
        .table_name(store.table())
        .key(
            DynamoDbStore::CONNECTION_ID,
            AttributeValue::S("L0SM9cOFvHcCIhw=".into()),
        )
        .send()
        .await
        .expect("get the item")
        .item
        .expect("the item is in the server");
    assert_eq!(
        item.get(DynamoDbStore::CHANNEL)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("lobby")
    );
    let expires_at: u64 = item
        .get(DynamoDbStore::EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .expect("a numeric expiresAt");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(
        expires_at > now + 2 * 3600,
        "expiresAt {expires_at} is not 2 h past {now}"
    );

    // And the other way round: an item written by someone else is listed by the store.
    other
        .put_item()
        .table_name(store.table())
        .item(
            DynamoDbStore::CONNECTION_ID,
            AttributeValue::S("OtherWriter0Aa=".into()),
        )
        .item(DynamoDbStore::CHANNEL, AttributeValue::S("lobby".into()))
        .send()
        .await
        .expect("put through the other client");
    let mut listed = store.list("lobby").await.expect("list");
    listed.sort();
    assert_eq!(listed, ["L0SM9cOFvHcCIhw=", "OtherWriter0Aa="]);

    store.delete("L0SM9cOFvHcCIhw=").await.expect("delete");
    let scanned = other
        .scan()
        .table_name(store.table())
        .send()
        .await
        .expect("scan");
    assert_eq!(scanned.count(), 1);
}

/// An error names the operation and the table, and carries the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_fails_with_the_table_named() {
    let server = Dynalite::start().await;
    let client = dynamodb_client(&sdk_config().await, server.endpoint());
    let store = DynamoDbStore::new(client, "no-such-table", INDEX);
    let error = store
        .put("L0SM9cOFvHcCIhw=", "lobby")
        .await
        .expect_err("put must fail");
    let chain = error.chain();
    assert!(chain.contains("put on table no-such-table"), "{chain}");
    assert!(chain.contains("ResourceNotFoundException"), "{chain}");
    assert_eq!(error.to_diagnostic().error_type, "Chat.Store");
}

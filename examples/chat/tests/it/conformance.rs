//! The connection store's contract, written once: each function takes any [`ConnectionStore`]
//! and checks one behaviour. [`conformance_tests!`] turns them into one test per behaviour for a
//! backend, given an async function that opens a fresh store and whatever keeps it alive.

use std::collections::BTreeSet;

use chat::ConnectionStore;

use crate::support::unique;

/// One `#[tokio::test]` per behaviour below, on the store `$open().await` returns as
/// `(store, guard)`; the guard (a temporary directory, a server) lives until the test ends.
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance::conformance_tests!(
            $open;
            a_put_connection_is_listed_on_its_channel,
            an_unknown_channel_lists_nothing,
            channels_are_separate,
            a_second_put_moves_the_connection,
            a_put_is_idempotent,
            delete_forgets_the_connection,
            deleting_an_unknown_connection_is_not_an_error,
            many_connections_on_one_channel_are_all_listed,
            concurrent_puts_are_all_kept,
            ids_and_channels_are_stored_verbatim,
        );
    };
    ($open:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $open().await;
                $crate::conformance::$case(&store).await;
            }
        )+
    };
}
pub(crate) use conformance_tests;

/// A connection id shaped like API Gateway's (16 base64 characters ending in `=`), unique per call.
fn connection_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("L0SM{:011}=", u64::from(std::process::id()) * 100_000 + n)
}

async fn listed(store: &impl ConnectionStore, channel: &str) -> BTreeSet<String> {
    store
        .list(channel)
        .await
        .expect("list")
        .into_iter()
        .collect()
}

/// The channel's listing once it holds `expected`, or the last one read: a channel is listed
/// through a global secondary index, which DynamoDB keeps eventually consistent (a query on it
/// cannot ask for a consistent read), so writes just made may show a moment later. Bounded:
/// 40 reads, 25 ms apart.
async fn listed_eventually(
    store: &impl ConnectionStore,
    channel: &str,
    expected: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut seen = listed(store, channel).await;
    for _ in 0..40 {
        if &seen == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        seen = listed(store, channel).await;
    }
    seen
}

pub async fn a_put_connection_is_listed_on_its_channel(store: &impl ConnectionStore) {
    let (id, channel) = (connection_id(), unique("room"));
    store.put(&id, &channel).await.expect("put");
    assert_eq!(listed(store, &channel).await, BTreeSet::from([id.clone()]));
    assert_eq!(
        store.channel_of(&id).await.expect("channel_of"),
        Some(channel)
    );
}

pub async fn an_unknown_channel_lists_nothing(store: &impl ConnectionStore) {
    assert!(listed(store, &unique("empty")).await.is_empty());
    assert_eq!(
        store
            .channel_of(&connection_id())
            .await
            .expect("channel_of"),
        None
    );
}

pub async fn channels_are_separate(store: &impl ConnectionStore) {
    let (red, blue) = (unique("red"), unique("blue"));
    let (a, b, c) = (connection_id(), connection_id(), connection_id());
    store.put(&a, &red).await.expect("put");
    store.put(&b, &blue).await.expect("put");
    store.put(&c, &red).await.expect("put");
    assert_eq!(listed(store, &red).await, BTreeSet::from([a, c]));
    assert_eq!(listed(store, &blue).await, BTreeSet::from([b]));
}

pub async fn a_second_put_moves_the_connection(store: &impl ConnectionStore) {
    let (id, first, second) = (connection_id(), unique("first"), unique("second"));
    store.put(&id, &first).await.expect("put");
    store.put(&id, &second).await.expect("put again");
    assert!(listed(store, &first).await.is_empty());
    assert_eq!(listed(store, &second).await, BTreeSet::from([id.clone()]));
    assert_eq!(
        store.channel_of(&id).await.expect("channel_of"),
        Some(second)
    );
}

pub async fn a_put_is_idempotent(store: &impl ConnectionStore) {
    let (id, channel) = (connection_id(), unique("room"));
    store.put(&id, &channel).await.expect("put");
    store.put(&id, &channel).await.expect("put again");
    assert_eq!(store.list(&channel).await.expect("list"), [id]);
}

pub async fn delete_forgets_the_connection(store: &impl ConnectionStore) {
    let (id, other, channel) = (connection_id(), connection_id(), unique("room"));
    store.put(&id, &channel).await.expect("put");
    store.put(&other, &channel).await.expect("put");
    store.delete(&id).await.expect("delete");
    assert_eq!(listed(store, &channel).await, BTreeSet::from([other]));
    assert_eq!(store.channel_of(&id).await.expect("channel_of"), None);
}

pub async fn deleting_an_unknown_connection_is_not_an_error(store: &impl ConnectionStore) {
    let id = connection_id();
    store.delete(&id).await.expect("delete unknown");
    store.put(&id, &unique("room")).await.expect("put");
    store.delete(&id).await.expect("delete");
    // `$disconnect` and a 410 from `@connections` may both remove the same connection.
    store.delete(&id).await.expect("delete twice");
}

pub async fn many_connections_on_one_channel_are_all_listed(store: &impl ConnectionStore) {
    let channel = unique("crowd");
    let ids: BTreeSet<String> = (0..150).map(|_| connection_id()).collect();
    for id in &ids {
        store.put(id, &channel).await.expect("put");
    }
    assert_eq!(listed_eventually(store, &channel, &ids).await, ids);
}

pub async fn concurrent_puts_are_all_kept(store: &impl ConnectionStore) {
    let channel = unique("rush");
    let ids: Vec<String> = (0..40).map(|_| connection_id()).collect();
    let puts = ids.iter().map(|id| store.put(id, &channel));
    for result in futures_util::future::join_all(puts).await {
        result.expect("concurrent put");
    }
    let ids: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(listed_eventually(store, &channel, &ids).await, ids);
}

pub async fn ids_and_channels_are_stored_verbatim(store: &impl ConnectionStore) {
    // Characters with a meaning in URLs, SQL, DynamoDB expressions or JSON.
    let id = format!("{}+/'\"%@:#", connection_id());
    let channel = format!("{} ünïcødé 'quoted' #x :y", unique("odd"));
    store.put(&id, &channel).await.expect("put");
    assert_eq!(store.list(&channel).await.expect("list"), [id.as_str()]);
    assert_eq!(
        store.channel_of(&id).await.expect("channel_of"),
        Some(channel)
    );
}

//! The connection store: which WebSocket connections are open, and on which channel.
//!
//! [`ConnectionStore`] is what the handlers need; [`Store`] picks one of its two backends from the
//! environment: DynamoDB when `CONNECTIONS_TABLE` is set (production, and any DynamoDB-compatible
//! server through `AWS_ENDPOINT_URL_DYNAMODB`), else SQLite in a local file (the embedded default).
//! Run locally from the SAM template (`AWS_SAM_LOCAL=true`, which `coldstart up` and `sam local`
//! set), the table's name is there but no table is, unless a local DynamoDB endpoint is given:
//! then SQLite is used too.

use std::future::Future;

use aws_config::SdkConfig;

use crate::config;
use crate::{DynamoDbStore, Error, SqliteStore};

/// Records of open connections, keyed by connection id, each on one channel.
///
/// Every method is one round trip to the backend; none caches, so several processes (the `chat`
/// and `broadcast` functions, many sandboxes of each) share one view of the connections.
pub trait ConnectionStore: Send + Sync {
    /// Records `connection_id` on `channel`, replacing any earlier record of that connection.
    fn put(
        &self,
        connection_id: &str,
        channel: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Forgets `connection_id`. Forgetting an unknown connection is not an error: `$disconnect`
    /// and a 410 from `@connections` may both remove the same one.
    fn delete(&self, connection_id: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The connections on `channel`, in no particular order.
    fn list(&self, channel: &str) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// The channel of `connection_id`, or `None` if it is not recorded.
    fn channel_of(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;
}

/// The store the environment asks for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Store {
    /// The embedded store: a SQLite file shared by the app's processes.
    Sqlite(SqliteStore),
    /// The production store: a DynamoDB table with a GSI on `channel`.
    DynamoDb(DynamoDbStore),
}

impl Store {
    /// DynamoDB table `$CONNECTIONS_TABLE` (index `$CONNECTIONS_INDEX`, default `channel-index`)
    /// when the variable is set (and, under `AWS_SAM_LOCAL=true`, `AWS_ENDPOINT_URL_DYNAMODB`
    /// too), else SQLite at `$CONNECTIONS_DB` (default `$TMPDIR/coldstart-chat.sqlite3`, see
    /// [`config::sqlite_path`]).
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, Error> {
        let local_without_dynamodb = config::var(config::SAM_LOCAL).as_deref() == Some("true")
            && config::var(config::ENDPOINT_URL_DYNAMODB).is_none();
        let table = config::var(config::CONNECTIONS_TABLE).filter(|_| !local_without_dynamodb);
        match table {
            Some(table) => {
                let index = config::var(config::CONNECTIONS_INDEX)
                    .unwrap_or_else(|| config::DEFAULT_CHANNEL_INDEX.to_owned());
                let client = aws_sdk_dynamodb::Client::new(sdk);
                Ok(Self::DynamoDb(DynamoDbStore::new(client, table, index)))
            }
            None => Ok(Self::Sqlite(
                SqliteStore::open(config::sqlite_path()).await?,
            )),
        }
    }

    /// A one-line description for the function's start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(store) => format!("sqlite {}", store.path().display()),
            Self::DynamoDb(store) => {
                format!("dynamodb table {} (index {})", store.table(), store.index())
            }
        }
    }
}

impl ConnectionStore for Store {
    async fn put(&self, connection_id: &str, channel: &str) -> Result<(), Error> {
        match self {
            Self::Sqlite(store) => store.put(connection_id, channel).await,
            Self::DynamoDb(store) => store.put(connection_id, channel).await,
        }
    }

    async fn delete(&self, connection_id: &str) -> Result<(), Error> {
        match self {
            Self::Sqlite(store) => store.delete(connection_id).await,
            Self::DynamoDb(store) => store.delete(connection_id).await,
        }
    }

    async fn list(&self, channel: &str) -> Result<Vec<String>, Error> {
        match self {
            Self::Sqlite(store) => store.list(channel).await,
            Self::DynamoDb(store) => store.list(channel).await,
        }
    }

    async fn channel_of(&self, connection_id: &str) -> Result<Option<String>, Error> {
        match self {
            Self::Sqlite(store) => store.channel_of(connection_id).await,
            Self::DynamoDb(store) => store.channel_of(connection_id).await,
        }
    }
}

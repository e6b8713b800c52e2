//! The chat library's one error type, and its translation into what a failed invocation reports.
//!
//! Kept in one place so both functions report failures the same way: the variant picks the error
//! type Lambda records, the whole cause chain becomes the message (the SDK's top-level errors say
//! little on their own, the useful part is in their sources).

use std::path::PathBuf;

use coldstart_runtime::Diagnostic;

/// A boxed cause from a dependency whose error type we do not put in our public API (rusqlite is
/// 0.x, and the AWS SDK's per-operation errors are many types).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a chat operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQLite connection store could not be opened or prepared.
    #[error("cannot open the sqlite connection store at {}", path.display())]
    SqliteOpen {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: BoxError,
    },

    /// A statement on the SQLite connection store failed.
    #[error("sqlite connection store: {operation} failed")]
    Sqlite {
        /// The store operation (`put`, `delete`, `list`, `channel_of`).
        operation: &'static str,
        /// What SQLite said.
        #[source]
        source: BoxError,
    },

    /// The blocking task that ran a SQLite statement panicked or was cancelled.
    #[error("sqlite connection store: the blocking task did not finish")]
    BlockingTask(#[source] tokio::task::JoinError),

    /// A DynamoDB request of the connection store failed.
    #[error("dynamodb connection store: {operation} on table {table} failed")]
    DynamoDb {
        /// The store operation (`put`, `delete`, `list`, `channel_of`, `create_table`).
        operation: &'static str,
        /// The table's name.
        table: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },

    /// An item read from DynamoDB lacks a string attribute the store writes on every item.
    #[error(
        "dynamodb connection store: an item of table {table} has no string attribute {attribute}"
    )]
    InvalidItem {
        /// The table's name.
        table: String,
        /// The missing attribute.
        attribute: &'static str,
    },

    /// No `@connections` endpoint is known: neither configured in the environment nor derivable
    /// from the event.
    #[error(
        "no @connections endpoint: set {} (e.g. https://{{api-id}}.execute-api.{{region}}.amazonaws.com/{{stage}})",
        crate::config::ENDPOINT_URL_CONNECTIONS
    )]
    NoEndpoint,

    /// PostToConnection failed with something else than `GoneException`.
    #[error("@connections: posting to connection {connection_id} failed")]
    PostToConnection {
        /// The connection posted to.
        connection_id: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },

    /// The event lacks a field the handler needs (e.g. a WebSocket event without
    /// `requestContext.connectionId`).
    #[error("invalid event: {0}")]
    InvalidEvent(&'static str),
}

impl Error {
    /// What a failed invocation reports to Lambda: a type per failing part
    /// (`Chat.Store`, `Chat.Connections`, `Chat.Config`, `Chat.InvalidEvent`) and the whole cause
    /// chain as the message.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let error_type = match self {
            Self::SqliteOpen { .. }
            | Self::Sqlite { .. }
            | Self::BlockingTask(_)
            | Self::DynamoDb { .. }
            | Self::InvalidItem { .. } => "Chat.Store",
            Self::PostToConnection { .. } => "Chat.Connections",
            Self::NoEndpoint => "Chat.Config",
            Self::InvalidEvent(_) => "Chat.InvalidEvent",
        };
        Diagnostic::new(error_type, self.chain())
    }

    /// The message of this error followed by those of its causes, `: `-separated.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diagnostic_carries_the_cause_chain() {
        let error = Error::Sqlite {
            operation: "put",
            source: "database is locked".into(),
        };
        let diagnostic = error.to_diagnostic();
        assert_eq!(diagnostic.error_type, "Chat.Store");
        assert_eq!(
            diagnostic.error_message,
            "sqlite connection store: put failed: database is locked"
        );
    }

    #[test]
    fn no_endpoint_names_the_variable() {
        assert!(
            Error::NoEndpoint
                .to_string()
                .contains("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
        );
    }
}

//! What a function process builds once, before its first invocation: the store and the
//! `@connections` clients, both from the environment.

use crate::{Connections, Error, Store, config};

/// The chat app's long-lived parts, shared by every invocation of a process.
#[derive(Debug)]
pub struct App {
    /// Where connections are recorded.
    pub store: Store,
    /// Where messages to connections go.
    pub connections: Connections,
}

impl App {
    /// Loads the SDK configuration and builds the store ([`Store::from_env`]) and the
    /// `@connections` API ([`Connections::from_env`]).
    pub async fn from_env() -> Result<Self, Error> {
        let sdk = config::load_sdk_config().await;
        Ok(Self {
            store: Store::from_env(&sdk).await?,
            connections: Connections::from_env(&sdk),
        })
    }

    /// A one-line description for the function's start-up log.
    pub fn describe(&self) -> String {
        let endpoint = self.connections.configured().map_or(
            "from each event (https://{domainName}/{stage})",
            |endpoint| endpoint.url(),
        );
        format!("store: {}; @connections: {endpoint}", self.store.describe())
    }
}

//! What the functions read from their environment, and the AWS SDK configuration built from it.
//!
//! Nothing is hard-coded: the store, the table, the index and the `@connections` endpoint are all
//! chosen by environment variables, and the SDK finds region, credentials and endpoint overrides
//! through its standard chain (`AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`, profiles, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, ...).

use std::path::PathBuf;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// DynamoDB table of connections. When set (and not empty) the DynamoDB store is used; otherwise
/// the embedded SQLite store. Default: unset.
pub const CONNECTIONS_TABLE: &str = "CONNECTIONS_TABLE";

/// Set to `true` by `coldstart up` and `sam local` when they run the template locally.
pub const SAM_LOCAL: &str = "AWS_SAM_LOCAL";

/// The DynamoDB endpoint the SDK uses instead of AWS's (a local server).
pub const ENDPOINT_URL_DYNAMODB: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// Name of the table's global secondary index on `channel`. Default: [`DEFAULT_CHANNEL_INDEX`].
pub const CONNECTIONS_INDEX: &str = "CONNECTIONS_INDEX";

/// The index name used when [`CONNECTIONS_INDEX`] is unset.
pub const DEFAULT_CHANNEL_INDEX: &str = "channel-index";

/// SQLite database file of the embedded store. Default: [`default_sqlite_path`].
pub const CONNECTIONS_DB: &str = "CONNECTIONS_DB";

/// The file name of the SQLite store inside the temporary directory.
pub const DEFAULT_SQLITE_FILE: &str = "coldstart-chat.sqlite3";

/// The standard AWS SDK variable for the `@connections` (API Gateway Management API) endpoint:
/// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` on AWS,
/// `http://127.0.0.1:9200/staging` under `coldstart up`. Default: unset, then the generic
/// `AWS_ENDPOINT_URL`, then (for the `chat` function only) the event's
/// `https://{domainName}/{stage}`.
pub const ENDPOINT_URL_CONNECTIONS: &str = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI";

/// The standard AWS SDK switch that makes it ignore every configured endpoint URL.
const IGNORE_CONFIGURED_ENDPOINT_URLS: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// The channel of a connection or broadcast that names none (`?channel=` missing or empty).
pub const DEFAULT_CHANNEL: &str = "test";

/// Loads the SDK configuration from the environment (region, credentials, endpoint URLs, retry
/// and timeout settings), with an HTTPS client on rustls + ring: `aws-config` is built without its
/// default client to keep the dependency tree (and the cold start) small.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// The SDK's HTTP client: hyper with rustls on ring, trusting the system's root certificates;
/// plain `http://` endpoints (local servers) work too.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The value of `name`, or `None` when it is unset, empty or not Unicode.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The SQLite store's file: `$CONNECTIONS_DB`, or `coldstart-chat.sqlite3` in the temporary
/// directory (`$TMPDIR`, else `/tmp`).
///
/// The temporary directory is the one place that is writable both on Lambda (where the task root
/// is read-only) and locally whatever the working directory, and both functions of the app find
/// the same file there. A relative `CONNECTIONS_DB` is relative to the function's working
/// directory (its task root; the config's folder under `coldstart up`).
pub fn sqlite_path() -> PathBuf {
    var(CONNECTIONS_DB).map_or_else(default_sqlite_path, PathBuf::from)
}

/// `coldstart-chat.sqlite3` in the temporary directory.
pub fn default_sqlite_path() -> PathBuf {
    std::env::temp_dir().join(DEFAULT_SQLITE_FILE)
}

/// The `@connections` endpoint configured in the environment, with the SDK's precedence: the
/// service's own variable, then the generic `AWS_ENDPOINT_URL` (or a profile's `endpoint_url`),
/// neither when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`.
///
/// The SDK applies the same rules itself, but does not tell whether an endpoint came from them; we
/// need to know, because without one the SDK's default endpoint is not an `@connections` URL.
pub fn configured_connections_endpoint(sdk: &SdkConfig) -> Option<String> {
    let ignored = var(IGNORE_CONFIGURED_ENDPOINT_URLS)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    if ignored {
        return None;
    }
    var(ENDPOINT_URL_CONNECTIONS).or_else(|| sdk.endpoint_url().map(str::to_owned))
}

//! DynamoDB tables of a stack, created on a DynamoDB-compatible endpoint (`--dynamodb-endpoint`)
//! when they are missing, with their keys, secondary indexes and TTL.
//!
//! Three calls of DynamoDB's JSON protocol (`DescribeTable`, `CreateTable`, `UpdateTimeToLive`),
//! signed with SigV4 (`aws-sigv4`) and sent with hyper: the whole generated DynamoDB SDK would
//! double the time it takes to compile `coldstart` for these three calls. The chat example's
//! tests check the tables with the SDK itself.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::error::Error;
use crate::model::{IndexSpec, TableSpec};
use crate::report::Reporter;

/// How many times a new table's status is read while it is `CREATING`, and how long apart.
const ACTIVE_CHECKS: u32 = 100;
const ACTIVE_CHECK_EVERY: Duration = Duration::from_millis(50);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The JSON protocol's target prefix and content type.
const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

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
    let client = Client::new(endpoint, region);
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
    match client
        .call("DescribeTable", &json!({"TableName": table.name}))
        .await
    {
        Ok(_) => {
            report.say(format!(
                "table {} ({}) exists on the DynamoDB endpoint",
                table.name, table.id
            ));
            return Ok(());
        }
        Err(e) if e.kind == "ResourceNotFoundException" => {}
        Err(e) => return Err(e.to_string()),
    }
    client
        .call("CreateTable", &create_table(table))
        .await
        .map_err(|e| e.to_string())?;
    // A new table is CREATING for a moment; writes to it fail until it is ACTIVE.
    for _ in 0..ACTIVE_CHECKS {
        let described = client
            .call("DescribeTable", &json!({"TableName": table.name}))
            .await
            .map_err(|e| e.to_string())?;
        if described["Table"]["TableStatus"] == "ACTIVE" {
            break;
        }
        tokio::time::sleep(ACTIVE_CHECK_EVERY).await;
    }
    if let Some(attribute) = &table.ttl_attribute {
        let ttl = json!({
            "TableName": table.name,
            "TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": true}
        });
        // Some local servers do not implement TTL; the table works without it.
        if let Err(e) = client.call("UpdateTimeToLive", &ttl).await {
            report.say(format!(
                "table {}: TTL on {attribute} not set: {e}",
                table.name
            ));
        }
    }
    report.say(format!(
        "table {} ({}) created on the DynamoDB endpoint",
        table.name, table.id
    ));
    Ok(())
}

/// The `CreateTable` request of `table`, on-demand.
fn create_table(table: &TableSpec) -> Value {
    let keys = |key: &[(String, String)]| -> Vec<Value> {
        key.iter()
            .map(|(name, kind)| json!({"AttributeName": name, "KeyType": kind}))
            .collect()
    };
    let index = |index: &IndexSpec| {
        let mut projection = json!({"ProjectionType": index.projection});
        if !index.non_key_attributes.is_empty() {
            projection["NonKeyAttributes"] = json!(index.non_key_attributes);
        }
        json!({"IndexName": index.name, "KeySchema": keys(&index.key), "Projection": projection})
    };
    let mut request = json!({
        "TableName": table.name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": table.attributes.iter()
            .map(|(name, kind)| json!({"AttributeName": name, "AttributeType": kind}))
            .collect::<Vec<_>>(),
        "KeySchema": keys(&table.key),
    });
    if !table.global_indexes.is_empty() {
        request["GlobalSecondaryIndexes"] = table.global_indexes.iter().map(index).collect();
    }
    if !table.local_indexes.is_empty() {
        request["LocalSecondaryIndexes"] = table.local_indexes.iter().map(index).collect();
    }
    request
}

/// An error DynamoDB answered: its type (`ResourceNotFoundException`) and message.
#[derive(Debug)]
struct ApiError {
    kind: String,
    message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl ApiError {
    fn local(message: impl Into<String>) -> Self {
        Self {
            kind: "ClientError".into(),
            message: message.into(),
        }
    }
}

/// A DynamoDB JSON-protocol client for one endpoint.
struct Client {
    endpoint: String,
    region: String,
    /// The user's credentials when the environment has them, else local ones (a local server
    /// does not check them).
    credentials: aws_credential_types::Credentials,
}

impl Client {
    fn new(endpoint: &str, region: &str) -> Self {
        let key = std::env::var("AWS_ACCESS_KEY_ID").ok();
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok();
        let credentials = match (key, secret) {
            (Some(key), Some(secret)) => aws_credential_types::Credentials::new(
                key,
                secret,
                std::env::var("AWS_SESSION_TOKEN").ok(),
                None,
                "environment",
            ),
            _ => aws_credential_types::Credentials::new(
                "coldstart-local-key",
                "coldstart-local-secret",
                None,
                None,
                "coldstart",
            ),
        };
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            credentials,
        }
    }

    /// Calls `operation` with `body`; the answer's JSON, or the error DynamoDB answered.
    async fn call(&self, operation: &str, body: &Value) -> Result<Value, ApiError> {
        let body = Bytes::from(body.to_string());
        let uri: http::Uri = format!("{}/", self.endpoint)
            .parse()
            .map_err(|e| ApiError::local(format!("{}: {e}", self.endpoint)))?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| ApiError::local(format!("{}: no host", self.endpoint)))?;
        if uri.scheme_str() != Some("http") {
            return Err(ApiError::local(format!(
                "{}: only http:// endpoints (local servers) are supported",
                self.endpoint
            )));
        }
        let mut request = http::Request::post("/")
            .header(http::header::HOST, &authority)
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .body(body.clone())
            .map_err(|e| ApiError::local(e.to_string()))?;
        self.sign(&mut request, &format!("{}/", self.endpoint), &body)?;

        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(|e| ApiError::local(format!("{authority}: {e}")))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| ApiError::local(e.to_string()))?;
            // Ends once the answer is read and the sender dropped.
            tokio::spawn(connection);
            let response = sender
                .send_request(request.map(Full::new))
                .await
                .map_err(|e| ApiError::local(e.to_string()))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ApiError::local(e.to_string()))?
                .to_bytes();
            Ok::<_, ApiError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                ApiError::local(format!("{operation} got no answer in {CALL_TIMEOUT:?}"))
            })??;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        // `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` → the name.
        let kind = answer["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message = answer["message"]
            .as_str()
            .or_else(|| answer["Message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Err(ApiError { kind, message })
    }

    /// Adds SigV4's headers (`Authorization`, `X-Amz-Date`, …) to `request`.
    fn sign(
        &self,
        request: &mut http::Request<Bytes>,
        url: &str,
        body: &[u8],
    ) -> Result<(), ApiError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("dynamodb")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ApiError::local(e.to_string()))?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable =
            SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
                .map_err(|e| ApiError::local(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| ApiError::local(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_table_names_keys_indexes_and_on_demand_billing() {
        let table = TableSpec {
            id: "Connections".into(),
            name: "app-Connections".into(),
            attributes: vec![("id".into(), "S".into()), ("channel".into(), "S".into())],
            key: vec![("id".into(), "HASH".into())],
            global_indexes: vec![IndexSpec {
                name: "channel-index".into(),
                key: vec![("channel".into(), "HASH".into())],
                projection: "INCLUDE".into(),
                non_key_attributes: vec!["at".into()],
            }],
            local_indexes: Vec::new(),
            ttl_attribute: Some("expiresAt".into()),
        };
        let request = create_table(&table);
        assert_eq!(request["TableName"], "app-Connections");
        assert_eq!(request["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(request["KeySchema"][0]["KeyType"], "HASH");
        assert_eq!(
            request["AttributeDefinitions"][1]["AttributeName"],
            "channel"
        );
        let gsi = &request["GlobalSecondaryIndexes"][0];
        assert_eq!(gsi["IndexName"], "channel-index");
        assert_eq!(gsi["Projection"]["NonKeyAttributes"][0], "at");
        assert!(request.get("LocalSecondaryIndexes").is_none());
    }
}

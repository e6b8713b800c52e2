//! The `@connections` management API: sending a message to one WebSocket connection.
//!
//! Separate from the handlers because finding the endpoint has rules of its own: the endpoint
//! configured in the environment (`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`, or the generic
//! `AWS_ENDPOINT_URL`) wins; without one, the `chat` function derives it from the WebSocket event
//! (`https://{domainName}/{stage}`), as API Gateway's own examples do. SDK clients are built once
//! per endpoint and kept for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::{Error, config};

/// The `@connections` API of one WebSocket API stage, as configured or as found in events.
#[derive(Debug)]
pub struct Connections {
    sdk: SdkConfig,
    /// The client for the endpoint configured in the environment; `None` when there is none.
    configured: Option<Endpoint>,
    /// Clients for endpoints derived from events, by URL (a function behind one API sees one).
    derived: Mutex<HashMap<String, Endpoint>>,
}

impl Connections {
    /// The `@connections` API at the endpoint the environment configures, if any (see
    /// [`config::configured_connections_endpoint`]). Makes no request.
    pub fn from_env(sdk: &SdkConfig) -> Self {
        let configured =
            config::configured_connections_endpoint(sdk).map(|url| Endpoint::new(sdk, url));
        Self {
            sdk: sdk.clone(),
            configured,
            derived: Mutex::new(HashMap::new()),
        }
    }

    /// The `@connections` API at `url` (e.g. `http://127.0.0.1:9200/staging`), whatever the
    /// environment says.
    pub fn with_endpoint(sdk: &SdkConfig, url: impl Into<String>) -> Self {
        Self {
            sdk: sdk.clone(),
            configured: Some(Endpoint::new(sdk, url.into())),
            derived: Mutex::new(HashMap::new()),
        }
    }

    /// The endpoint configured in the environment, if any.
    pub fn configured(&self) -> Option<&Endpoint> {
        self.configured.as_ref()
    }

    /// The configured endpoint, else the one of the API that sent a WebSocket event (its
    /// `requestContext.domainName` and `stage`), else [`Error::NoEndpoint`].
    pub fn endpoint(
        &self,
        domain_name: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Endpoint, Error> {
        if let Some(endpoint) = &self.configured {
            return Ok(endpoint.clone());
        }
        let url = event_endpoint(domain_name, stage).ok_or(Error::NoEndpoint)?;
        let mut derived = self.derived.lock().unwrap_or_else(PoisonError::into_inner);
        let endpoint = derived
            .entry(url)
            .or_insert_with_key(|url| Endpoint::new(&self.sdk, url.clone()));
        Ok(endpoint.clone())
    }
}

/// `https://{domain_name}/{stage}`, or `http://` for a loopback host (an emulator without TLS).
fn event_endpoint(domain_name: Option<&str>, stage: Option<&str>) -> Option<String> {
    let domain = domain_name.filter(|domain| !domain.is_empty())?;
    let host = domain.rsplit_once(':').map_or(domain, |(host, _port)| host);
    let loopback = host == "localhost" || host.starts_with("127.") || domain.starts_with("[::1]");
    let scheme = if loopback { "http" } else { "https" };
    Some(match stage.filter(|stage| !stage.is_empty()) {
        Some(stage) => format!("{scheme}://{domain}/{stage}"),
        None => format!("{scheme}://{domain}"),
    })
}

/// What became of a message posted to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// API Gateway accepted it for the connection.
    Sent,
    /// The connection is gone (410 `GoneException`): its record should be removed.
    Gone,
}

/// One `@connections` endpoint. Cheap to clone: a handle to a shared SDK client.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    client: Client,
}

impl Endpoint {
    fn new(sdk: &SdkConfig, url: String) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(&url)
            .build();
        Self {
            url,
            client: Client::from_conf(config),
        }
    }

    /// The endpoint's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `data` to `connection_id` as one text message (PostToConnection).
    pub async fn post(
        &self,
        connection_id: &str,
        data: impl Into<Vec<u8>>,
    ) -> Result<Delivery, Error> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Delivery::Sent),
            Err(error) => {
                let gone = error
                    .as_service_error()
                    .is_some_and(|service| service.is_gone_exception())
                    // `GoneException` bodies may be empty; the status says it all.
                    || error
                        .raw_response()
                        .is_some_and(|response| response.status().as_u16() == 410);
                if gone {
                    Ok(Delivery::Gone)
                } else {
                    Err(Error::PostToConnection {
                        connection_id: connection_id.to_owned(),
                        source: error.into(),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_endpoint_is_https_on_the_domain_and_stage() {
        assert_eq!(
            event_endpoint(
                Some("abc123.execute-api.eu-west-1.amazonaws.com"),
                Some("staging")
            )
            .as_deref(),
            Some("https://abc123.execute-api.eu-west-1.amazonaws.com/staging")
        );
    }

    #[test]
    fn the_event_endpoint_of_a_loopback_emulator_is_plain_http() {
        assert_eq!(
            event_endpoint(Some("127.0.0.1:9200"), Some("staging")).as_deref(),
            Some("http://127.0.0.1:9200/staging")
        );
        assert_eq!(
            event_endpoint(Some("localhost:9200"), None).as_deref(),
            Some("http://localhost:9200")
        );
    }

    #[test]
    fn there_is_no_event_endpoint_without_a_domain() {
        assert_eq!(event_endpoint(None, Some("staging")), None);
        assert_eq!(event_endpoint(Some(""), Some("staging")), None);
    }
}

//! The AWS SDK's HTTP client for the local services coldstart talks to (the queue server of
//! `--sqs-endpoint`; coldstart itself, for `coldstart-test`'s Lambda client): plain HTTP/1.1
//! over hyper's client connections, kept alive and reused, with the SDK's connect timeout. The
//! SDK's own client brings TLS, HTTP/2 and a connection pool that a loopback server does not
//! need, and about a tenth of a fresh build's time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http::uri::{Authority, PathAndQuery, Scheme};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept (each server's, together).
const IDLE: usize = 16;

/// Senders of open connections that have no request in flight, by the server's authority.
type Idle = Mutex<Vec<(Authority, SendRequest<SdkBody>)>>;

/// The client: give it to a service's config (`.http_client(LocalHttp::default())`). Plain
/// `http://` endpoints only: an `https://` one is an error of the SDK's `user` kind.
#[derive(Debug, Clone, Default)]
pub struct LocalHttp {
    idle: Arc<Idle>,
}

impl HttpClient for LocalHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            idle: self.idle.clone(),
            connect_timeout: settings.connect_timeout(),
        })
    }
}

#[derive(Debug, Clone)]
struct Connector {
    idle: Arc<Idle>,
    connect_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let this = self.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let response = this.send(request).await?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

impl Connector {
    /// Sends `request` on an idle connection to its server, or on a new one when there is none
    /// or the idle one turns out closed before the request left.
    async fn send(
        &self,
        mut request: http::Request<SdkBody>,
    ) -> Result<http::Response<Incoming>, ConnectorError> {
        let uri = request.uri().clone();
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(ConnectorError::user(
                format!("{uri}: coldstart's SDK client speaks plain http only").into(),
            ));
        }
        let Some(authority) = uri.authority().cloned() else {
            return Err(ConnectorError::user(format!("{uri}: no host").into()));
        };
        // HTTP/1.1's origin form, and the Host the request was signed for.
        *request.uri_mut() = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))
            .into();
        if !request.headers().contains_key(http::header::HOST) {
            let host = http::HeaderValue::from_str(authority.as_str())
                .map_err(|e| ConnectorError::user(e.into()))?;
            request.headers_mut().insert(http::header::HOST, host);
        }
        let request = match self.take(&authority) {
            Some(mut sender) => match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.answered(authority, sender, response)),
                Err(mut failed) => match failed.take_message() {
                    // It never left: the server had closed the idle connection.
                    Some(request) => request,
                    None => return Err(ConnectorError::io(failed.into_error().into())),
                },
            },
            None => request,
        };
        let mut sender = self.connect(&authority).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ConnectorError::io(e.into()))?;
        Ok(self.answered(authority, sender, response))
    }

    /// Passes `response` on; its connection goes back to the idle ones once the response's
    /// body has been read (hyper closes it if the body is dropped unread).
    fn answered(
        &self,
        authority: Authority,
        mut sender: SendRequest<SdkBody>,
        response: http::Response<Incoming>,
    ) -> http::Response<Incoming> {
        let idle = self.idle.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                let mut idle = idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if idle.len() < IDLE {
                    idle.push((authority, sender));
                }
            }
        });
        response
    }

    /// An idle connection to `authority` that is still open.
    fn take(&self, authority: &Authority) -> Option<SendRequest<SdkBody>> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        idle.retain(|(_, sender)| !sender.is_closed());
        let at = idle.iter().rposition(|(a, _)| a == authority)?;
        Some(idle.swap_remove(at).1)
    }

    /// A new connection to `authority` (port 80 when it names none), within the SDK's connect
    /// timeout.
    async fn connect(&self, authority: &Authority) -> Result<SendRequest<SdkBody>, ConnectorError> {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let connect = TcpStream::connect((host, authority.port_u16().unwrap_or(80)));
        let stream = match self.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, connect).await.map_err(|_| {
                ConnectorError::timeout(
                    format!("connecting to {authority}: no answer in {limit:?}").into(),
                )
            })?,
            None => connect.await,
        }
        .map_err(|e| ConnectorError::io(e.into()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectorError::io(e.into()))?;
        // Ends when the server closes or every sender is gone.
        tokio::spawn(connection);
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server on a free port answering `ok` to everything; `keep_alive: false` closes each
    /// connection after its answer. Counts the connections it accepted.
    async fn server(keep_alive: bool) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(
                            TokioIo::new(stream),
                            service_fn(|request: http::Request<Incoming>| async move {
                                let host = request.headers()[http::header::HOST].clone();
                                let path = request.uri().to_string();
                                let body = format!("{} {path}", host.to_str().unwrap_or("?"));
                                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                    bytes::Bytes::from(body),
                                )))
                            }),
                        ),
                );
            }
        });
        (addr, accepted)
    }

    fn connector() -> Connector {
        Connector {
            idle: Arc::default(),
            connect_timeout: Some(Duration::from_secs(5)),
        }
    }

    async fn get(connector: &Connector, url: &str) -> String {
        let request = http::Request::get(url)
            .body(SdkBody::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let response = connector
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .to_bytes();
        String::from_utf8(body.to_vec()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Yields until a connection is idle again (its answer read), at most 10,000 times.
    async fn idle_again(connector: &Connector) {
        for _ in 0..10_000 {
            if !connector
                .idle
                .lock()
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the connection never became idle");
    }

    #[tokio::test]
    async fn requests_go_in_origin_form_with_the_signed_host_and_reuse_one_connection() {
        let (addr, accepted) = server(true).await;
        let connector = connector();
        let first = get(&connector, &format!("http://{addr}/queue?Action=x")).await;
        assert_eq!(first, format!("{addr} /queue?Action=x"));
        idle_again(&connector).await;
        assert_eq!(
            get(&connector, &format!("http://{addr}")).await,
            format!("{addr} /")
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_server_that_closes_after_each_answer_gets_a_new_connection_per_request() {
        let (addr, accepted) = server(false).await;
        let connector = connector();
        for n in 1..=3 {
            assert_eq!(
                get(&connector, &format!("http://{addr}/{n}")).await,
                format!("{addr} /{n}")
            );
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn https_and_unreachable_servers_are_errors_not_hangs() {
        let connector = connector();
        let https = http::Request::get("https://127.0.0.1:1/")
            .body(SdkBody::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(connector.send(https).await.expect_err("an error").is_user());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        drop(listener);
        let refused = http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(SdkBody::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(connector.send(refused).await.expect_err("an error").is_io());
    }
}

//! The Extensions API client of extension mode: register, then wait in `event/next`.
//!
//! In Lambda, the adapter sits in `/opt/extensions/` (a layer) and is started before the
//! function's bootstrap, which is the web app itself. Registering is what makes Lambda wait for
//! the adapter before it starts the bootstrap; waiting in `event/next` is what tells Lambda the
//! extension's init is done. The adapter subscribes to no events, so `next` never answers in
//! practice; should it answer `SHUTDOWN`, the adapter exits.

use std::net::SocketAddr;

use bytes::Bytes;
use coldstart_protocol::extension::{
    self, Event, NAME, NEXT_PATH, REGISTER_PATH, RegisterRequest, ShutdownReason,
};
use http::{HeaderValue, Method, Request, header};

use crate::client::{self, Body, chain};
use crate::error::Error;

/// A registered extension.
#[derive(Debug)]
pub struct Extension {
    addr: SocketAddr,
    /// `Host` of every request: `AWS_LAMBDA_RUNTIME_API`.
    host: HeaderValue,
    /// `Lambda-Extension-Identifier`, handed out by `register`.
    id: HeaderValue,
}

impl Extension {
    /// Registers with the Extensions API at `runtime_api` (`host:port`) as `name`, for no events.
    pub async fn register(runtime_api: &str, name: &str) -> Result<Self, Error> {
        let failed = |reason: String| Error::Register(reason);
        let addr = tokio::net::lookup_host(runtime_api)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| failed(format!("cannot resolve {runtime_api:?}")))?;
        let host = HeaderValue::from_str(runtime_api)
            .map_err(|_| failed(format!("{runtime_api:?} is not a host:port")))?;
        let body = serde_json::to_vec(&RegisterRequest { events: Vec::new() })
            .map_err(|e| failed(e.to_string()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(REGISTER_PATH)
            .header(header::HOST, host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(NAME, name)
            .body(Body::new(Bytes::from(body)))
            .map_err(|e| failed(e.to_string()))?;
        let (status, headers, body) = client::exchange(addr, request)
            .await
            .map_err(|e| failed(chain(&e)))?;
        if !status.is_success() {
            return Err(failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let id = headers
            .get(extension::IDENTIFIER)
            .cloned()
            .ok_or_else(|| failed(format!("no {} in the answer", extension::IDENTIFIER)))?;
        Ok(Self { addr, host, id })
    }

    /// Waits in `event/next` until Lambda sends `SHUTDOWN` (INVOKE events, which the adapter did
    /// not ask for, are skipped).
    pub async fn shutdown(&self) -> Result<ShutdownReason, Error> {
        loop {
            if let Event::Shutdown {
                shutdown_reason, ..
            } = self.next().await?
            {
                return Ok(shutdown_reason);
            }
        }
    }

    /// One `event/next`.
    async fn next(&self) -> Result<Event, Error> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(NEXT_PATH)
            .header(header::HOST, self.host.clone())
            .header(extension::IDENTIFIER, self.id.clone())
            .body(Body::new(Bytes::new()))
            .map_err(|e| Error::Extension(e.to_string()))?;
        let (status, _, body) = client::exchange(self.addr, request)
            .await
            .map_err(|e| Error::Extension(chain(&e)))?;
        if !status.is_success() {
            return Err(Error::Extension(format!(
                "event/next answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Error::Extension(format!(
                "event/next answered an event that does not parse ({e}): {}",
                String::from_utf8_lossy(&body)
            ))
        })
    }
}

/// The name to register under: the file name of the executable, as Lambda requires of external
/// extensions (Lambda starts `/opt/extensions/<name>`).
pub fn name_from_argv0(argv0: Option<&std::ffi::OsStr>) -> String {
    argv0
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "coldstart-adapter".to_owned())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn the_name_is_the_executables_file_name() {
        assert_eq!(
            name_from_argv0(Some(OsStr::new("/opt/extensions/lambda-adapter"))),
            "lambda-adapter"
        );
        assert_eq!(
            name_from_argv0(Some(OsStr::new("coldstart-adapter"))),
            "coldstart-adapter"
        );
        assert_eq!(name_from_argv0(None), "coldstart-adapter");
    }
}

//! `coldstart invoke`: a small Invoke API client for the terminal.

use std::io::{Read, Write};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use coldstart_protocol::invoke;

use crate::Failure;
use crate::args::InvokeArgs;

pub(crate) async fn invoke(args: InvokeArgs) -> Result<(), Failure> {
    let payload = payload(&args).map_err(Failure::usage)?;
    let authority = args
        .endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| {
            Failure::usage(anyhow!(
                "--endpoint must look like http://HOST:PORT, not {}",
                args.endpoint
            ))
        })?
        .to_owned();
    let name =
        percent_encoding::utf8_percent_encode(&args.function, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let mut request = Request::post(invoke::invoke_path(&name))
        .header(http::header::HOST, &authority)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(log_type) = &args.log_type {
        request = request.header(invoke::LOG_TYPE, log_type);
    }
    if let Some(kind) = &args.invocation_type {
        request = request.header(invoke::INVOCATION_TYPE, kind);
    }
    let request = request
        .body(Full::new(payload))
        .context("building the request")?;

    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .with_context(|| format!("could not connect to {authority}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .context("sending the invocation")?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();

    if let Some(tail) = parts.headers.get(invoke::LOG_RESULT) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(tail.as_bytes())
            .unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&decoded));
    }
    if !parts.status.is_success() {
        let error_type = parts
            .headers
            .get(invoke::ERROR_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("error");
        return Err(Failure::runtime(anyhow!(
            "{} {error_type}: {}",
            parts.status.as_u16(),
            String::from_utf8_lossy(&body)
        )));
    }
    if parts.headers.contains_key(invoke::FUNCTION_ERROR) {
        eprintln!("function error: {}", String::from_utf8_lossy(&body));
        return Err(Failure::silent());
    }
    if parts.status == StatusCode::OK {
        let mut out = std::io::stdout().lock();
        out.write_all(&body).context("writing the payload")?;
        out.write_all(b"\n").context("writing the payload")?;
    } else {
        eprintln!("{}", parts.status);
    }
    Ok(())
}

fn payload(args: &InvokeArgs) -> anyhow::Result<Bytes> {
    if let Some(file) = &args.file {
        return std::fs::read(file)
            .map(Bytes::from)
            .with_context(|| format!("reading {}", file.display()));
    }
    match args.payload.as_deref() {
        None => Ok(Bytes::from_static(b"{}")),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the payload from standard input")?;
            Ok(Bytes::from(buf))
        }
        Some(text) => {
            if text.trim().is_empty() {
                bail!("the payload is empty");
            }
            Ok(Bytes::from(text.to_owned()))
        }
    }
}

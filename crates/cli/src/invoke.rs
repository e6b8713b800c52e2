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
    let path = if args.stream {
        invoke::stream_invoke_path(&name)
    } else {
        invoke::invoke_path(&name)
    };
    let mut request = Request::post(path)
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
    if args.stream && parts.status == StatusCode::OK {
        return print_stream(body).await;
    }
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

/// Prints InvokeWithResponseStream's `PayloadChunk`s as they arrive, then the `InvokeComplete`
/// verdict: its log tail and error (exit 1) on standard error.
async fn print_stream(mut body: hyper::body::Incoming) -> Result<(), Failure> {
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    let mut decoder = MessageFrameDecoder::new();
    let mut buffer = bytes::BytesMut::new();
    let mut out = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the stream")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        loop {
            let message = match decoder.decode_frame(&mut buffer) {
                Ok(DecodedFrame::Complete(message)) => message,
                Ok(DecodedFrame::Incomplete) => break,
                Err(err) => return Err(Failure::runtime(anyhow!("bad event stream: {err}"))),
            };
            let event = message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            if event == invoke::EVENT_PAYLOAD_CHUNK {
                out.write_all(message.payload())
                    .context("writing the payload")?;
                out.flush().context("writing the payload")?;
            } else if event == invoke::EVENT_INVOKE_COMPLETE {
                return complete(message.payload());
            }
        }
    }
    Err(Failure::runtime(anyhow!(
        "the stream ended without InvokeComplete"
    )))
}

/// Reads `InvokeComplete`: prints its log tail, and its error with exit 1.
fn complete(payload: &[u8]) -> Result<(), Failure> {
    let verdict: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    if let Some(log) = verdict["LogResult"].as_str() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(log)
            .unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&decoded));
    }
    if let Some(code) = verdict["ErrorCode"].as_str() {
        let details = verdict["ErrorDetails"].as_str().unwrap_or_default();
        eprintln!("\nfunction error: {code}: {details}");
        return Err(Failure::silent());
    }
    println!();
    Ok(())
}

fn payload(args: &InvokeArgs) -> anyhow::Result<Bytes> {
    if let Some(name) = &args.event {
        let sample = crate::event::sample(name)?;
        let event = sample.build(&[]).map_err(|e| anyhow!(e))?;
        return Ok(Bytes::from(event.to_string()));
    }
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

//! Front-door limits at their edges: a streamed response of exactly 200 MB passes and one byte
//! more ends the stream with `Function.ResponseSizeTooLarge` (InvokeWithResponseStream) or an
//! aborted connection (a Function URL in `RESPONSE_STREAM` mode), the streamed bytes counted as
//! they come, never held; a buffered Function URL's event is held to Lambda's 6 MB.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use coldstart_protocol::limits::{MAX_STREAMED_RESPONSE, MAX_SYNC_REQUEST};
use coldstart_stack::{Endpoint, EndpointKind};

use crate::support::{PATIENCE, TemplateProject, send};

const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Big:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: chaos
      Handler: bootstrap
      Runtime: provided.al2023
      Timeout: 120
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: RESPONSE_STREAM
  Small:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: chaos
      Handler: bootstrap
      Runtime: provided.al2023
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: BUFFERED
"#;

/// How a response body ended: the bytes it carried, and the error that cut it, if any.
struct Received {
    bytes: usize,
    cut: Option<String>,
    /// For an event stream: the `InvokeComplete` JSON.
    complete: Option<Value>,
}

/// Sends `request` to `addr` and reads the body as it comes, counting it; with `event_stream`,
/// decodes it and counts the `PayloadChunk` payloads.
async fn stream_of(
    addr: SocketAddr,
    request: http::Request<Full<Bytes>>,
    event_stream: bool,
) -> (u16, Received) {
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut received = Received {
        bytes: 0,
        cut: None,
        complete: None,
    };
    let mut decoder = MessageFrameDecoder::new();
    let mut buffer = BytesMut::new();
    // Bounded by the body's end; each frame at most PATIENCE apart.
    loop {
        let frame = match tokio::time::timeout(PATIENCE, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                received.cut = Some(e.to_string());
                break;
            }
            Ok(None) => break,
            Err(_) => panic!("the stream stalled after {} bytes", received.bytes),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !event_stream {
            received.bytes += data.len();
            continue;
        }
        buffer.extend_from_slice(&data);
        while let DecodedFrame::Complete(message) = decoder
            .decode_frame(&mut buffer)
            .unwrap_or_else(|e| panic!("bad event stream: {e}"))
        {
            let kind = message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_owned());
            match kind.as_deref() {
                Some("PayloadChunk") => received.bytes += message.payload().len(),
                Some("InvokeComplete") => {
                    received.complete = serde_json::from_slice(message.payload()).ok();
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    (status, received)
}

fn size_event(size: usize) -> Bytes {
    Bytes::from(json!({"chaos": {"op": "size", "size": size}}).to_string())
}

fn post(addr: SocketAddr, path: &str, body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_passes_at_200_mb_and_ends_in_an_error_one_byte_past_it() {
    let project = TemplateProject::new("limits-stream", TEMPLATE, &[("chaos", "fx-chaos")]);
    let (running, logs) = project.serve().await;
    let invoke = running
        .endpoint(Endpoint::INVOKE_API, EndpointKind::Invoke)
        .unwrap_or_else(|| panic!("no Invoke API"))
        .addr;
    let url = running
        .endpoint("Big", EndpointKind::Url)
        .unwrap_or_else(|| panic!("no URL"))
        .addr;
    let stream_path = coldstart_protocol::invoke::stream_invoke_path("Big");

    // InvokeWithResponseStream: all of it, then InvokeComplete without an error.
    let (status, got) = stream_of(
        invoke,
        post(invoke, &stream_path, size_event(MAX_STREAMED_RESPONSE)),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got.bytes, MAX_STREAMED_RESPONSE);
    assert_eq!(got.complete, Some(json!({})), "a clean end");
    logs.wait_for(|l| l.contains(&format!("CHAOS STREAMED {MAX_STREAMED_RESPONSE} 202")))
        .await;

    // One byte more: the first 200 MB reach the caller, then InvokeComplete names the error;
    // the runtime's upload is refused with 413.
    let (status, got) = stream_of(
        invoke,
        post(invoke, &stream_path, size_event(MAX_STREAMED_RESPONSE + 1)),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        got.bytes <= MAX_STREAMED_RESPONSE,
        "{} bytes passed",
        got.bytes
    );
    let complete = got.complete.unwrap_or_else(|| panic!("no InvokeComplete"));
    assert_eq!(
        complete["ErrorCode"], "Function.ResponseSizeTooLarge",
        "{complete}"
    );
    logs.wait_for(|l| l.contains(&format!("CHAOS STREAMED {} 413", MAX_STREAMED_RESPONSE + 1)))
        .await;

    // A Function URL in RESPONSE_STREAM mode: the whole body, then a clean end...
    let (status, got) = stream_of(
        url,
        post(url, "/", size_event(MAX_STREAMED_RESPONSE)),
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (got.bytes, got.cut.as_deref()),
        (MAX_STREAMED_RESPONSE, None)
    );
    // ...and one byte more aborts the connection after what was sent: no error document.
    let (status, got) = stream_of(
        url,
        post(url, "/", size_event(MAX_STREAMED_RESPONSE + 1)),
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        got.bytes <= MAX_STREAMED_RESPONSE,
        "{} bytes passed",
        got.bytes
    );
    assert!(got.cut.is_some(), "the body ended cleanly past 200 MB");

    // The function serves on.
    let answer = send(
        invoke,
        post(
            invoke,
            &coldstart_protocol::invoke::invoke_path("Big"),
            Bytes::from(r#"{"chaos":{"op":"ok","token":"after"}}"#),
        ),
    )
    .await;
    assert_eq!(answer.json()["body"], "after");
    running.stop().await;
}

/// Lambda's 6 MB holds for the event a Function URL makes of the request (the body and its
/// envelope), so a body just under 6 MB passes, and one of 6 MB — its event over the limit — or
/// one byte more gets Lambda's 413.
#[tokio::test]
async fn a_buffered_function_url_takes_a_body_under_6_mb_and_refuses_6_mb_and_one_byte_more() {
    let project = TemplateProject::new("limits-url", TEMPLATE, &[("chaos", "fx-chaos")]);
    let (running, _logs) = project.serve().await;
    let url = running
        .endpoint("Small", EndpointKind::Url)
        .unwrap_or_else(|| panic!("no URL"))
        .addr;
    let under = send(
        url,
        post(url, "/", Bytes::from(vec![b'a'; MAX_SYNC_REQUEST - 4096])),
    )
    .await;
    assert_eq!(under.status, 200, "{:?}", under.header("content-type"));
    for size in [MAX_SYNC_REQUEST, MAX_SYNC_REQUEST + 1] {
        let refused = send(url, post(url, "/", Bytes::from(vec![b'a'; size]))).await;
        assert_eq!(refused.status, 413, "{size} bytes");
        assert_eq!(
            refused.body,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            "{size} bytes"
        );
    }
    running.stop().await;
}

//! A function for the chaos soak that speaks the Runtime API by hand, so that it can misbehave
//! in ways no runtime library allows. It prints `CHAOS API {address}` and `CHAOS PID {pid}` when
//! it starts, and
//! `CHAOS DELIVERED {request id}` for every invocation `next` hands it, then does what the event's
//! `chaos` object asks (`{"op": …, "token": …}`, at the top of the event or inside its JSON
//! `body`, as HTTP and WebSocket events carry it):
//! - `ok`: answers `{"statusCode": 200, "body": token}`;
//! - `error`: reports the error `{"errorType": "Chaos", "errorMessage": token}`;
//! - `crash`: exits with status 7 without answering;
//! - `hang`: sleeps 30 s (past any timeout the soak sets), then answers;
//! - `garbage`: answers bytes that are not JSON (`\xff\x00garbage token`);
//! - `double`: answers twice and prints `CHAOS SECOND {status}` with the status of the second;
//! - `stream`: answers in streaming mode, `token` in three chunks;
//! - `size`: streams `size` bytes of `x` (1 MiB chunks of one shared buffer, so 200 MB cost no
//!   memory) and prints `CHAOS STREAMED {size} {status of the answer}`.
//!
//! An event without `chaos` (a WebSocket `$connect` or `$disconnect`) is answered
//! `{"statusCode": 200}`.

use std::time::Duration;

use bytes::Bytes;
use coldstart_protocol::runtime as rt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Sends one request on a fresh connection to the Runtime API; the answer's status, request id
/// header and body.
async fn call<B>(api: &str, request: http::Request<B>) -> Result<(u16, String, Bytes), Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    let stream = tokio::net::TcpStream::connect(api).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get(rt::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, id, body))
}

async fn post(api: &str, path: String, body: impl Into<Bytes>) -> Result<u16, Error> {
    let request = http::Request::post(path)
        .header(http::header::HOST, api)
        .body(Full::new(body.into()))?;
    Ok(call(api, request).await?.0)
}

/// The `chaos` object of `event`, or of its JSON body.
fn chaos(event: &Value) -> Option<Value> {
    if let Some(c) = event.get("chaos") {
        return Some(c.clone());
    }
    let body: Value = serde_json::from_str(event.get("body")?.as_str()?).ok()?;
    body.get("chaos").cloned()
}

/// `size` bytes of `x` as 1 MiB frames, all sharing one buffer: nothing of the size is held.
fn chunks_of(size: usize) -> impl Iterator<Item = Result<Frame<Bytes>, Error>> {
    const MIB: usize = 1024 * 1024;
    let block = Bytes::from(vec![b'x'; MIB]);
    (0..size.div_ceil(MIB)).map(move |i| Ok(Frame::data(block.slice(..(size - i * MIB).min(MIB)))))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    println!("CHAOS API {api}");
    println!("CHAOS PID {}", std::process::id());
    loop {
        let next = http::Request::get(rt::NEXT_PATH)
            .header(http::header::HOST, &api)
            .body(Full::new(Bytes::new()))?;
        let (_, id, event) = call(&api, next).await?;
        println!("CHAOS DELIVERED {id}");
        let event: Value = serde_json::from_slice(&event).unwrap_or(Value::Null);
        let Some(chaos) = chaos(&event) else {
            post(
                &api,
                rt::response_path(&id),
                json!({"statusCode": 200}).to_string(),
            )
            .await?;
            continue;
        };
        let token = chaos["token"].as_str().unwrap_or_default().to_owned();
        let ok = json!({"statusCode": 200, "body": token}).to_string();
        match chaos["op"].as_str().unwrap_or("ok") {
            "error" => {
                let error = json!({"errorType": "Chaos", "errorMessage": token});
                post(&api, rt::error_path(&id), error.to_string()).await?;
            }
            "crash" => std::process::exit(7),
            "hang" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                post(&api, rt::response_path(&id), ok).await?;
            }
            "garbage" => {
                let garbage = [b"\xff\x00garbage ".as_slice(), token.as_bytes()].concat();
                post(&api, rt::response_path(&id), garbage).await?;
            }
            "double" => {
                post(&api, rt::response_path(&id), ok.clone()).await?;
                let second = post(&api, rt::response_path(&id), ok).await?;
                println!("CHAOS SECOND {second}");
            }
            "stream" => {
                let third = token.len() / 3;
                let chunks: Vec<Result<Frame<Bytes>, Error>> = [
                    &token[..third],
                    &token[third..2 * third],
                    &token[2 * third..],
                ]
                .into_iter()
                .map(|c| Ok(Frame::data(Bytes::from(c.to_owned()))))
                .collect();
                let request = http::Request::post(rt::response_path(&id))
                    .header(http::header::HOST, &api)
                    .header(rt::RESPONSE_MODE, rt::RESPONSE_MODE_STREAMING)
                    .header(http::header::TRANSFER_ENCODING, "chunked")
                    .body(StreamBody::new(futures_util::stream::iter(chunks)))?;
                call(&api, request).await?;
            }
            "size" => {
                let size = chaos["size"].as_u64().unwrap_or(0) as usize;
                let request = http::Request::post(rt::response_path(&id))
                    .header(http::header::HOST, &api)
                    .header(rt::RESPONSE_MODE, rt::RESPONSE_MODE_STREAMING)
                    .header(http::header::TRANSFER_ENCODING, "chunked")
                    .body(StreamBody::new(futures_util::stream::iter(chunks_of(size))))?;
                let (status, _, _) = call(&api, request).await?;
                println!("CHAOS STREAMED {size} {status}");
            }
            _ => {
                post(&api, rt::response_path(&id), ok).await?;
            }
        }
    }
}

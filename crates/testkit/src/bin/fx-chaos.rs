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
//! `{"statusCode": 200}`; a WebSocket one is printed `CHAOS WS {eventType} {connectionId}`.

use std::time::Duration;

use bytes::Bytes;
use coldstart_protocol::runtime as rt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, Error>;

/// The Runtime API over one kept-alive connection, as runtimes speak it (a connection per call
/// would leave a TIME_WAIT socket per call behind and run out of ports in a long soak).
struct Api {
    addr: String,
    sender: Option<SendRequest<Body>>,
}

impl Api {
    /// Sends `request`; the answer's status, request id header and body.
    async fn call(&mut self, request: http::Request<Body>) -> Result<(u16, String, Bytes), Error> {
        let kept = match self.sender.take() {
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let mut sender = match kept {
            Some(sender) => sender,
            None => {
                let stream = tokio::net::TcpStream::connect(&self.addr).await?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                sender
            }
        };
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let id = response
            .headers()
            .get(rt::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok((status, id, body))
    }

    fn request(
        &self,
        method: http::Method,
        path: String,
        body: Body,
    ) -> Result<http::Request<Body>, Error> {
        Ok(http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.addr)
            .body(body)?)
    }

    async fn post(&mut self, path: String, body: impl Into<Bytes>) -> Result<u16, Error> {
        let request = self.request(http::Method::POST, path, full(body))?;
        Ok(self.call(request).await?.0)
    }

    /// Posts `frames` as a streamed response to invocation `id`; the answer's status.
    async fn stream(
        &mut self,
        id: &str,
        frames: impl Iterator<Item = Result<Frame<Bytes>, Error>> + Send + Sync + 'static,
    ) -> Result<u16, Error> {
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let mut request = self.request(http::Method::POST, rt::response_path(id), body)?;
        let headers = request.headers_mut();
        headers.insert(
            rt::RESPONSE_MODE,
            http::HeaderValue::from_static(rt::RESPONSE_MODE_STREAMING),
        );
        headers.insert(
            http::header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
        let answered = self.call(request).await?.0;
        // A refused upload may leave the connection unusable: the next call opens a new one.
        self.sender = None;
        Ok(answered)
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
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
    let addr = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    println!("CHAOS API {addr}");
    println!("CHAOS PID {}", std::process::id());
    let mut api = Api { addr, sender: None };
    loop {
        let next = api.request(
            http::Method::GET,
            rt::NEXT_PATH.to_owned(),
            full(Bytes::new()),
        )?;
        let (_, id, event) = api.call(next).await?;
        println!("CHAOS DELIVERED {id}");
        let event: Value = serde_json::from_slice(&event).unwrap_or(Value::Null);
        let response = rt::response_path(&id);
        let Some(chaos) = chaos(&event) else {
            let context = &event["requestContext"];
            if let (Some(kind), Some(connection)) = (
                context["eventType"].as_str(),
                context["connectionId"].as_str(),
            ) {
                println!("CHAOS WS {kind} {connection}");
            }
            api.post(response, json!({"statusCode": 200}).to_string())
                .await?;
            continue;
        };
        let token = chaos["token"].as_str().unwrap_or_default().to_owned();
        let ok = json!({"statusCode": 200, "body": token}).to_string();
        match chaos["op"].as_str().unwrap_or("ok") {
            "error" => {
                let error = json!({"errorType": "Chaos", "errorMessage": token});
                api.post(rt::error_path(&id), error.to_string()).await?;
            }
            "crash" => std::process::exit(7),
            "hang" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                api.post(response, ok).await?;
            }
            "garbage" => {
                let garbage = [b"\xff\x00garbage ".as_slice(), token.as_bytes()].concat();
                api.post(response, garbage).await?;
            }
            "double" => {
                api.post(response.clone(), ok.clone()).await?;
                let second = api.post(response, ok).await?;
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
                api.stream(&id, chunks.into_iter()).await?;
            }
            "size" => {
                let size = chaos["size"].as_u64().unwrap_or(0) as usize;
                let status = api.stream(&id, chunks_of(size)).await?;
                println!("CHAOS STREAMED {size} {status}");
            }
            _ => {
                api.post(response, ok).await?;
            }
        }
    }
}

//! A streaming function on coldstart-runtime, its behaviour chosen by the event's `op` (or a
//! Function URL request's `?op=`):
//! `lines` (`n` lines; with `gate`, it waits after line 1 until something is written to that
//! FIFO), `http` (an HTTP prelude: status 201, headers, cookies, then a body), `fail_mid` (one
//! chunk, then an error), `crash_mid` (one chunk, then the process exits 7), `ttfb` (one chunk holding the epoch nanoseconds it was written at),
//! `bytes` (`total` bytes in `chunk`-byte writes).

use coldstart_runtime::{Context, HttpPrelude, ResponseStream};
use serde_json::Value;

#[derive(Debug)]
struct StreamFailed;

impl std::fmt::Display for StreamFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the report generator broke")
    }
}

async fn handle(event: Value, _ctx: Context, mut out: ResponseStream) -> Result<(), StreamFailed> {
    // `op` in the event, or in the query string of a Function URL request.
    let op = event
        .get("op")
        .or_else(|| event.pointer("/queryStringParameters/op"))
        .and_then(Value::as_str)
        .unwrap_or("lines");
    let fail = |_| StreamFailed;
    match op {
        "http" => {
            let prelude = HttpPrelude::new(201)
                .header("content-type", "text/plain")
                .header("x-report", "monthly")
                .cookie("session=abc; Path=/")
                .cookie("theme=dark");
            out.http(prelude).await.map_err(fail)?;
            out.write("header line\n").await.map_err(fail)?;
            out.write("body line\n").await.map_err(fail)?;
        }
        "ttfb" => {
            // The chunk carries the instant it was written (Unix epoch nanoseconds), so a reader
            // on the same machine can tell how long it took to arrive.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            out.write(now.to_string()).await.map_err(fail)?;
        }
        "bytes" => {
            // `total` bytes in `chunk`-byte writes (defaults: 100 MB in 64 KB).
            let total = event
                .get("total")
                .and_then(Value::as_u64)
                .unwrap_or(100 << 20) as usize;
            let size = event
                .get("chunk")
                .and_then(Value::as_u64)
                .unwrap_or(64 << 10) as usize;
            let chunk = bytes::Bytes::from(vec![b'x'; size.max(1)]);
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                out.write(chunk.slice(..n)).await.map_err(fail)?;
                sent += n;
            }
        }
        "crash_mid" => {
            out.write("partial").await.map_err(fail)?;
            // The chunk is on the wire; now the process dies mid-stream.
            std::process::exit(7);
        }
        "fail_mid" => {
            out.write("partial").await.map_err(fail)?;
            return Err(StreamFailed);
        }
        _ => {
            // From the event, or the query string of an API request.
            let param = |name: &str| {
                event
                    .get(name)
                    .or_else(|| event.pointer(&format!("/queryStringParameters/{name}")))
                    .cloned()
            };
            let n = param("n")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .unwrap_or(3);
            out.set_content_type("text/plain").map_err(fail)?;
            for i in 1..=n {
                out.write(format!("line {i}\n")).await.map_err(fail)?;
                if i == 1
                    && let Some(gate) = param("gate").and_then(|v| v.as_str().map(str::to_owned))
                {
                    // Reading a FIFO blocks until a writer opens and closes it.
                    let _ = tokio::task::spawn_blocking(move || std::fs::read(gate)).await;
                }
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run_streaming(handle).await
}

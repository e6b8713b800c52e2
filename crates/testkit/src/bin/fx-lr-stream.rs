//! A streaming function on the official `lambda_runtime` crate: `n` lines, one chunk each.

use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, LambdaEvent, service_fn};

async fn handle(event: LambdaEvent<serde_json::Value>) -> Result<Response<Body>, Error> {
    let n = event.payload.get("n").and_then(|v| v.as_u64()).unwrap_or(3);
    let (mut tx, rx) = channel();
    tokio::spawn(async move {
        for i in 1..=n {
            if tx.send_data(format!("line {i}\n").into()).await.is_err() {
                break;
            }
        }
    });
    Ok(Response::from(rx))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

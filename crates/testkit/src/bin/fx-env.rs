//! A function that shows its environment and calls its siblings, for stacks read from templates:
//! `{"invoke": "Other", "payload": {...}}` invokes the function `Other` through
//! `AWS_ENDPOINT_URL_LAMBDA` (as an SDK inside a function would) and answers with its answer;
//! `{"read": PATH}` answers `{"content": <the file's text>}`, `{"list": DIR}` answers
//! `{"names": [<the folder's entries, sorted>]}`; any other event gets `{"env": {...every variable...}, "event": <the event>}`.

use std::io::{Read as _, Write as _};

use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(
        |event: Value, _ctx: coldstart_runtime::Context| async move {
            if let Some(name) = event.get("invoke").and_then(Value::as_str) {
                let payload = event.get("payload").cloned().unwrap_or(Value::Null);
                return invoke(name, &payload.to_string());
            }
            if let Some(path) = event.get("read").and_then(Value::as_str) {
                let content = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                return Ok(json!({ "content": content }));
            }
            if let Some(dir) = event.get("list").and_then(Value::as_str) {
                let mut names: Vec<String> = std::fs::read_dir(dir)
                    .map_err(|e| format!("{dir}: {e}"))?
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                return Ok(json!({ "names": names }));
            }
            let env: serde_json::Map<String, Value> = std::env::vars()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Ok(json!({ "env": env, "event": event }))
        },
    )
    .await
}

/// `POST {AWS_ENDPOINT_URL_LAMBDA}/2015-03-31/functions/{name}/invocations` over a plain socket
/// (HTTP/1.0: the answer ends when the connection closes).
fn invoke(name: &str, payload: &str) -> Result<Value, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_LAMBDA")
        .map_err(|_| "AWS_ENDPOINT_URL_LAMBDA is not set".to_owned())?;
    let host = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// endpoint: {endpoint}"))?
        .trim_end_matches('/');
    let mut socket = std::net::TcpStream::connect(host).map_err(|e| format!("{host}: {e}"))?;
    let request = format!(
        "POST /2015-03-31/functions/{name}/invocations HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    socket
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{name} answered {head}: {body}"));
    }
    serde_json::from_str(body).map_err(|e| format!("{name}'s answer is not JSON: {e}"))
}

//! A streaming Function URL: a long report, sent line by line as it is produced, with its own
//! status, headers and cookie.
//!
//! `coldstart up` serves it from the repository's `coldstart.toml`; try
//! `curl -N 'http://127.0.0.1:9002/?lines=10'` and watch the lines arrive one by one. Deployed
//! with `template.yaml` (`InvokeMode: RESPONSE_STREAM`), the same binary streams on AWS.

use std::time::Duration;

use coldstart_runtime::{Context, Error, HttpPrelude, ResponseStream};
use serde_json::Value;

/// Time to "compute" one line of the report.
const LINE_WORK: Duration = Duration::from_millis(50);

async fn report(event: Value, ctx: Context, mut out: ResponseStream) -> Result<(), Error> {
    let lines: u32 = event
        .pointer("/queryStringParameters/lines")
        .and_then(Value::as_str)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
        .min(10_000);
    let prelude = HttpPrelude::new(200)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-report-lines", lines.to_string())
        .header("x-request-id", ctx.request_id.clone())
        .cookie("last-report=monthly; Path=/");
    out.http(prelude).await?;
    out.write(format!("Monthly report ({lines} lines)\n"))
        .await?;
    for line in 1..=lines {
        tokio::time::sleep(LINE_WORK).await;
        out.write(format!("line {line}: {} widgets\n", line * 7 % 100))
            .await?;
    }
    out.write("end of report\n").await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    coldstart_runtime::run_streaming(report).await
}

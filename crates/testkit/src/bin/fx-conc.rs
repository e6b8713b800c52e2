//! A multi-concurrent function on coldstart-runtime's concurrent mode (`run_concurrent`): does
//! what its event asks ([`coldstart_testkit::work`]).

use coldstart_runtime::{Context, Error};
use coldstart_testkit::work::{Order, work};

#[tokio::main]
async fn main() -> Result<(), Error> {
    coldstart_runtime::run_concurrent(|order: Order, ctx: Context| async move {
        work(order, &ctx.request_id, ctx.deadline_ms, ctx.xray_trace_id).await
    })
    .await
}

//! A multi-concurrent function on the official `lambda_runtime` crate's concurrent mode
//! (`run_concurrent`, feature `concurrency-tokio`): does what its event asks
//! ([`coldstart_testkit::work`]).

use coldstart_testkit::work::{Order, work};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run_concurrent(service_fn(|event: LambdaEvent<Order>| async move {
        let ctx = event.context;
        work(
            event.payload,
            &ctx.request_id,
            ctx.deadline,
            ctx.xray_trace_id,
        )
        .await
        .map_err(Error::from)
    }))
    .await
}

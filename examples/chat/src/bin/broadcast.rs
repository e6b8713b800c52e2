//! The `broadcast` function, behind the HTTP API route `POST /broadcast` (payload 2.0): sends the
//! request's body to every connection of `?channel=` (default `test`) through `@connections` and
//! answers `{"sent":N,"gone":M,"failed":K}` (see `chat::handle_broadcast`).
//!
//! Configured by its environment (see the library's documentation); unlike `chat` it has no
//! WebSocket event to find the `@connections` endpoint in, so it needs
//! `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` and reports an init error without it.

use chat::{App, Error, handle_broadcast};
use coldstart_runtime::events::apigw::ApiGatewayV2httpRequest;
use coldstart_runtime::{Context, Runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    let runtime = Runtime::from_env().await?;
    // Built once, before the first invocation: the store and the SDK clients live as long as the
    // process.
    let app = match App::from_env().await {
        Ok(app) if app.connections.configured().is_none() => {
            return Err(runtime.init_error(Error::NoEndpoint.to_diagnostic()).await);
        }
        Ok(app) => app,
        Err(error) => return Err(runtime.init_error(error.to_diagnostic()).await),
    };
    eprintln!("broadcast: {}", app.describe());
    let app = &app;
    runtime
        .run(
            move |request: ApiGatewayV2httpRequest, ctx: Context| async move {
                match handle_broadcast(app, request).await {
                    Ok((response, failures)) => {
                        for error in failures {
                            eprintln!("{}: {}", ctx.request_id, error.chain());
                        }
                        Ok(response)
                    }
                    Err(error) => {
                        eprintln!("{}: {}", ctx.request_id, error.chain());
                        Err(error.to_diagnostic())
                    }
                }
            },
        )
        .await
}

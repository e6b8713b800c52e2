//! The `chat` function, behind the WebSocket API's `$connect`, `$disconnect`, `$default` and
//! `broadcast` routes: records connections and their channel, echoes messages back to their
//! sender and broadcasts to the sender's channel (see `chat::handle_websocket`).
//!
//! Configured by its environment (see the library's documentation): the store is SQLite at
//! `$CONNECTIONS_DB` unless `CONNECTIONS_TABLE` names a DynamoDB table, and messages go to
//! `$AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` or, unset, to `https://{domainName}/{stage}` of each
//! event.

use chat::{App, Handled, handle_websocket};
use coldstart_runtime::events::apigw::ApiGatewayWebsocketProxyRequest;
use coldstart_runtime::{Context, Runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    let runtime = Runtime::from_env().await?;
    // Built once, before the first invocation: the store and the SDK clients live as long as the
    // process.
    let app = match App::from_env().await {
        Ok(app) => app,
        Err(error) => return Err(runtime.init_error(error.to_diagnostic()).await),
    };
    eprintln!("chat: {}", app.describe());
    let app = &app;
    runtime
        .run(
            move |event: ApiGatewayWebsocketProxyRequest, _ctx: Context| async move {
                let connection_id = event.request_context.connection_id.clone();
                let connection_id = connection_id.as_deref().unwrap_or("-");
                match handle_websocket(app, event).await {
                    Ok((response, handled)) => {
                        log(connection_id, &handled);
                        Ok(response)
                    }
                    Err(error) => {
                        eprintln!("connection {connection_id}: {}", error.chain());
                        Err(error.to_diagnostic())
                    }
                }
            },
        )
        .await
}

fn log(connection_id: &str, handled: &Handled) {
    match handled {
        Handled::Connected { channel } => {
            eprintln!("connection {connection_id}: connected to channel {channel}");
        }
        Handled::Disconnected => eprintln!("connection {connection_id}: disconnected"),
        Handled::Echoed(delivery) => eprintln!("connection {connection_id}: echo {delivery:?}"),
        Handled::Broadcast { channel, outcome } => {
            let summary = outcome.summary();
            eprintln!(
                "connection {connection_id}: broadcast to channel {channel}: {} sent, {} gone, {} failed",
                summary.sent, summary.gone, summary.failed
            );
            for error in &outcome.failed {
                eprintln!("  {}", error.chain());
            }
        }
        _ => {}
    }
}

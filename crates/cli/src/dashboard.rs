//! `--dashboard [ADDR]` of `up` and `run`: binds the dashboard, says where it is (with a warning
//! when it is reachable from other machines), and serves it beside the stack.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use coldstart_dashboard::Dashboard;
use coldstart_emulator::LogSink;
use coldstart_stack::Endpoint;

/// A dashboard being served.
pub(crate) struct Served {
    pub(crate) dashboard: Dashboard,
    /// Its `--ready-json` endpoint.
    pub(crate) endpoint: Endpoint,
    /// The server; ends once the shutdown token given to [`start`] is cancelled.
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// The address `--dashboard` without a value means: loopback, one below the port base.
pub(crate) fn default_addr(port_base: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], coldstart_dashboard::default_port(port_base)))
}

/// Binds the dashboard at `addr`, wrapping `sink`, and serves it until `shutdown`.
pub(crate) async fn start(
    addr: SocketAddr,
    sink: Arc<dyn LogSink>,
    shutdown: CancellationToken,
) -> anyhow::Result<Served> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr} for the dashboard"))?;
    let bound = listener
        .local_addr()
        .context("reading the dashboard's address")?;
    let dashboard = Dashboard::new(sink);
    let endpoint = coldstart_dashboard::endpoint(bound);
    if !bound.ip().is_loopback() {
        eprintln!(
            "coldstart: warning: the dashboard listens on {bound}, reachable from other machines: \
             anyone who reaches it can invoke your functions and read their logs"
        );
    }
    eprintln!("coldstart: dashboard at {}", endpoint.url);
    let task = tokio::spawn({
        let dashboard = dashboard.clone();
        async move {
            if let Err(e) = coldstart_dashboard::serve(dashboard, listener, shutdown).await {
                tracing::error!("dashboard: {e}");
            }
        }
    });
    Ok(Served {
        dashboard,
        endpoint,
        task,
    })
}

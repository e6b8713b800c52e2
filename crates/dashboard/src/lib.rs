//! The live dashboard of coldstart: a page, a JSON API and live updates over a running stack.
//!
//! A [`Dashboard`] wraps the stack's log sink ([`Dashboard::new`], then give
//! [`Dashboard::sink`] to the emulator), so it sees the one platform event stream every
//! sandbox publishes; [`Dashboard::attach`] tells it which emulator, functions and endpoints to
//! show, and [`serve`] serves it on a listener until a shutdown token is cancelled.
//!
//! ```no_run
//! use std::sync::Arc;
//! use coldstart_dashboard::Dashboard;
//! use coldstart_emulator::{Emulator, FunctionConfig, Settings, TracingSink};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let dashboard = Dashboard::new(Arc::new(TracingSink));
//! let echo = FunctionConfig::new("function", vec!["./bootstrap".into()]);
//! let emulator = Emulator::new(vec![echo.clone()], Settings::default(), dashboard.sink())?;
//! dashboard.attach(emulator, vec![echo], Vec::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2999").await?;
//! coldstart_dashboard::serve(dashboard, listener, CancellationToken::new()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `hub`: the tee sink: recent invocations, log lines, per-function counts, live updates.
//! - `server`: the router: assets, `/api/...`, `/api/events` (Server-Sent Events).
//! - `guard`: `Host` and `Origin` checks (no DNS rebinding, no cross-site invoke).
//! - [`secrets`]: which environment values are never shown.
//! - `client`: calls to the WebSocket APIs' `@connections` endpoints.
//! - `assets/`: the page (HTML, one JavaScript module, CSS), embedded with `include_str!`.
//!
//! # API
//! `GET /api/functions` (each with its `build` state), `GET /api/invocations?function=&status=`
//! (each with `payload` and `answer` previews), `GET /api/invocations/{requestId}`,
//! `GET /api/logs?function=&q=`, `GET /api/apis` (each with its recent `requests`),
//! `GET /api/samples`, `GET /api/samples/{service}/{event}`,
//! `POST /api/invoke` (`{"function", "payload", "mode": "RequestResponse"|"Event"|"stream"}`;
//! `stream` answers newline-delimited JSON as the function's stream arrives),
//! `GET /api/schedules`, `POST /api/schedules/{name}/fire`,
//! `GET /api/websockets`, `POST|DELETE /api/websockets/{api}/connections/{id}`,
//! `GET /api/events` (Server-Sent Events named `updates`, each a JSON array of `invocation`,
//! `log`, `build`, `apiRequest` and `lagged` updates).

mod client;
mod guard;
mod hub;
pub mod secrets;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{Emulator, FunctionConfig, LogSink};
use coldstart_stack::{Endpoint, Schedules};

pub use hub::{ApiRequest, Build, Invocation, LogLine, Stats};

/// The dashboard's default port when none is given: one below the stack's `--port-base`
/// (2999 for the default 3000), so it sits next to the stack's ports.
pub fn default_port(port_base: u16) -> u16 {
    port_base.saturating_sub(1)
}

/// A dashboard: the platform event stream it keeps, and the stack it shows. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Dashboard {
    hub: Arc<hub::Hub>,
    /// The stack shown; replaced when `up --watch` starts it again.
    target: Arc<RwLock<Option<Arc<Target>>>>,
}

#[derive(Debug, Clone)]
struct Target {
    emulator: Emulator,
    functions: Vec<FunctionConfig>,
    endpoints: Vec<Endpoint>,
    /// The stack's schedules, when it has them ([`Dashboard::attach_schedules`]).
    schedules: Option<Schedules>,
}

impl Dashboard {
    /// A dashboard that passes every log line on to `inner`.
    pub fn new(inner: Arc<dyn LogSink>) -> Self {
        Self {
            hub: hub::Hub::new(inner),
            target: Arc::new(RwLock::new(None)),
        }
    }

    /// The sink to give the emulator: it keeps what the dashboard shows and passes everything
    /// on to the inner sink.
    pub fn sink(&self) -> Arc<dyn LogSink> {
        self.hub.clone()
    }

    /// Shows `emulator`'s `functions` (their settings as started) and `endpoints` from now on.
    pub fn attach(
        &self,
        emulator: Emulator,
        functions: Vec<FunctionConfig>,
        endpoints: Vec<Endpoint>,
    ) {
        *self.target.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(Target {
            emulator,
            functions,
            endpoints,
            schedules: None,
        }));
    }

    /// Shows `schedules` (the stack's: [`coldstart_stack::Running::schedules`]) beside the
    /// stack last attached, and lets the page fire them.
    pub fn attach_schedules(&self, schedules: Schedules) {
        let mut target = self.target.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(shown) = target.as_mut() {
            let mut with = (**shown).clone();
            with.schedules = Some(schedules);
            *shown = Arc::new(with);
        }
    }

    fn target(&self) -> Option<Arc<Target>> {
        self.target
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The invocations kept, newest first.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.hub.invocations(None, None)
    }
}

/// The endpoint of a dashboard at `addr`, as `--ready-json` lists it (kind `dashboard`).
pub fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        name: "dashboard".into(),
        kind: coldstart_stack::EndpointKind::Dashboard,
        url: format!("http://{addr}/"),
        addr,
        routes: vec![(String::new(), format!("http://{addr}/"))],
        streaming: false,
    }
}

/// Serves `dashboard` on `listener` until `shutdown` is cancelled; live streams end then too.
pub async fn serve(
    dashboard: Dashboard,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let router = server::router(dashboard, bound, shutdown.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

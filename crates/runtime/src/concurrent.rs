//! The concurrent mode, for multi-concurrent execution environments (Lambda Managed Instances):
//! as many pollers as `AWS_LAMBDA_MAX_CONCURRENCY` says, each a task with its own connection
//! running the ordinary invocation loop, so that each invocation gets its own [`Context`], its
//! own panic catching and its own answer by request id.
//!
//! Apart from the one-at-a-time loop because it needs what that one does not: a handler that is
//! `Clone + Send + 'static` (each poller owns a clone), no process-wide `_X_AMZN_TRACE_ID` (the
//! invocations overlap; the trace id is on the [`Context`]), and a stop that lets every
//! invocation in progress finish.

use std::future::Future;
use std::pin::pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::runtime::{APPLICATION_JSON, decode_json, encode_json};
use crate::{Context, Diagnostic, Error, Runtime};

impl Runtime {
    /// Runs [`Config::max_concurrency`](crate::Config::max_concurrency) invocation loops at
    /// once with a JSON handler (one when `AWS_LAMBDA_MAX_CONCURRENCY` is unset), until SIGTERM:
    /// then no loop takes another invocation, every one in progress finishes and is answered,
    /// and this returns `Ok`. Returns an error when the Runtime API fails, once the other loops
    /// have finished their invocations.
    pub async fn run_concurrent<F, Fut, E, R, Err>(self, handler: F) -> Result<(), Error>
    where
        F: Fn(E, Context) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<R, Err>> + Send + 'static,
        E: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        Err: Into<Diagnostic> + Send + 'static,
    {
        self.run_concurrent_until(handler, sigterm()).await
    }

    /// [`Runtime::run_concurrent`], stopping when `shutdown` completes instead of on SIGTERM:
    /// for hosts that own the process's signals, and for tests.
    pub async fn run_concurrent_until<F, Fut, E, R, Err>(
        mut self,
        handler: F,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error>
    where
        F: Fn(E, Context) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<R, Err>> + Send + 'static,
        E: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        Err: Into<Diagnostic> + Send + 'static,
    {
        // Every loop holds a receiver; sending `true` (or dropping this) stops them all.
        let (stop, stopping) = watch::channel(false);
        self.stopping = Some(stopping);
        // The invocations overlap: no process-wide trace id.
        self.export_trace = false;
        let pollers = self.config().max_concurrency.max(1);
        let mut loops = JoinSet::new();
        for _ in 1..pollers {
            let poller = self.another().await?;
            loops.spawn(poller.serve(handler.clone(), decode_json, encode_json, APPLICATION_JSON));
        }
        loops.spawn(self.serve(handler, decode_json, encode_json, APPLICATION_JSON));
        let mut shutdown = pin!(shutdown);
        let mut stopped = false;
        let mut result = Ok(());
        loop {
            tokio::select! {
                () = &mut shutdown, if !stopped => {
                    stopped = true;
                    let _ = stop.send(true);
                }
                joined = loops.join_next() => {
                    let Some(joined) = joined else { break };
                    let ended = joined.unwrap_or_else(|e| Err(Error::Poller(e.to_string())));
                    if let Err(error) = ended {
                        // One loop's Runtime API failure stops the others (after their
                        // invocations in progress); the first failure is reported.
                        let _ = stop.send(true);
                        stopped = true;
                        if result.is_ok() {
                            result = Err(error);
                        }
                    }
                }
            }
        }
        result
    }
}

/// Connects with [`Runtime::from_env`] and runs the concurrent mode with a JSON handler; see
/// [`Runtime::run_concurrent`].
pub async fn run_concurrent<F, Fut, E, R, Err>(handler: F) -> Result<(), Error>
where
    F: Fn(E, Context) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<R, Err>> + Send + 'static,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    Err: Into<Diagnostic> + Send + 'static,
{
    Runtime::from_env().await?.run_concurrent(handler).await
}

/// Completes on SIGTERM (never, when the handler cannot be installed). The handler is installed
/// here, at once: a SIGTERM that comes before the future is first polled still counts.
fn sigterm() -> impl Future<Output = ()> {
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        match signal {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
}

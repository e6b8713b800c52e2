//! `coldstart up`: build every function of a `coldstart.toml`, then serve them all — the Invoke
//! API, each Function URL and each HTTP API — and print where.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::{
    Emulator, HttpApi, InvokeMode, RouteKey, Router, serve_function_url, serve_http_api,
    serve_invoke_api,
};

use coldstart_websocket::{RouteTarget, WebSocketApi, serve_websocket_api};

use crate::Failure;
use crate::args::UpArgs;
use crate::config::{self, AppConfig};
use crate::output::StdoutSink;
use crate::run::{check_bootstrap, settings, wait_for_signal};

pub(crate) async fn up(args: UpArgs) -> Result<(), Failure> {
    let app = config::load(&args.config).map_err(|e| Failure::usage(e.into()))?;
    if let Some((_, owner)) = app
        .ports()
        .into_iter()
        .find(|(p, _)| *p != 0 && *p == args.listen.port())
    {
        return Err(Failure::usage(anyhow!(
            "{}: {owner} uses port {}, which --listen {} takes for the Invoke API",
            args.config.display(),
            args.listen.port(),
            args.listen
        )));
    }
    if !args.no_build {
        build_all(&app).await?;
    }
    for f in &app.functions {
        check_bootstrap(Path::new(&f.config.command[0])).map_err(|e| {
            Failure::usage(anyhow!(
                "{}: functions.{}.bootstrap: {e}",
                args.config.display(),
                f.config.name
            ))
        })?;
        for extension in &f.config.extensions {
            check_bootstrap(extension).map_err(|e| {
                Failure::usage(anyhow!(
                    "{}: functions.{}.extensions: {e}",
                    args.config.display(),
                    f.config.name
                ))
            })?;
        }
    }

    let started = Instant::now();
    let configs = app
        .functions
        .iter()
        .map(|f| {
            let mut config = f.config.clone();
            config.freeze = !args.no_freeze;
            config
        })
        .collect();
    let sink = Arc::new(StdoutSink::new());
    let emulator =
        Emulator::new(configs, settings(), sink.clone()).map_err(|e| Failure::usage(e.into()))?;
    let shutdown = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    let mut table: Vec<(String, String, String)> = Vec::new();

    let invoke = bind(args.listen.to_string()).await?;
    let invoke_addr = invoke
        .local_addr()
        .context("reading the Invoke API address")?;
    servers.spawn(serve_invoke_api(emulator.clone(), invoke, shutdown.clone()));
    for f in &app.functions {
        table.push((
            f.config.name.clone(),
            "Invoke API".into(),
            format!(
                "http://{invoke_addr}/2015-03-31/functions/{}/invocations",
                f.config.name
            ),
        ));
    }
    for f in &app.functions {
        let Some((port, mode)) = f.url else { continue };
        let listener = bind(format!("{}:{port}", args.listen.ip())).await?;
        let addr = listener
            .local_addr()
            .context("reading a Function URL address")?;
        let door = match mode {
            InvokeMode::Buffered => "Function URL",
            InvokeMode::ResponseStream => "Function URL (stream)",
        };
        table.push((
            f.config.name.clone(),
            door.into(),
            format!("http://{addr}/"),
        ));
        servers.spawn(serve_function_url(
            emulator.clone(),
            f.config.name.clone(),
            mode,
            listener,
            shutdown.clone(),
        ));
    }
    for api in &app.http_apis {
        let listener = bind(format!("{}:{}", args.listen.ip(), api.port)).await?;
        let addr = listener
            .local_addr()
            .context("reading an HTTP API address")?;
        let mut routes = Vec::new();
        for (key, function) in &api.routes {
            let route = RouteKey::parse(key).map_err(|e| Failure::usage(anyhow!(e)))?;
            let shown = match key.split_once(' ') {
                Some((method, path)) => format!("{method} http://{addr}{path}"),
                None => format!("ANY http://{addr}/ ($default)"),
            };
            table.push((function.clone(), format!("http_apis.{}", api.name), shown));
            routes.push((route, function.clone()));
        }
        let http_api = HttpApi {
            name: api.name.clone(),
            payload_version: api.payload_version,
            router: Router::new(routes),
            stage: "$default".into(),
        };
        servers.spawn(serve_http_api(
            emulator.clone(),
            http_api,
            listener,
            shutdown.clone(),
        ));
    }
    for spec in &app.websocket_apis {
        let listener = bind(format!("{}:{}", args.listen.ip(), spec.port)).await?;
        let addr = listener
            .local_addr()
            .context("reading a WebSocket API address")?;
        let mut api = WebSocketApi::new(spec.name.clone(), spec.stage.clone());
        api.route_selection = spec.route_selection.clone();
        if let Some(idle) = spec.idle_timeout {
            api.idle_timeout = idle;
        }
        if let Some(max) = spec.max_duration {
            api.max_duration = max;
        }
        for (key, function, two_way) in &spec.routes {
            let target = if *two_way {
                RouteTarget::two_way(function.clone())
            } else {
                RouteTarget::new(function.clone())
            };
            api = api.route(key.clone(), target);
        }
        api.validate(&emulator).map_err(|e| {
            Failure::usage(anyhow!(
                "{}: websocket_apis.{}: {e}",
                args.config.display(),
                spec.name
            ))
        })?;
        let door = format!("websocket_apis.{}", spec.name);
        for (key, function, _) in &spec.routes {
            table.push((
                function.clone(),
                door.clone(),
                format!("{key} ws://{addr}/{}", spec.stage),
            ));
        }
        table.push((
            String::new(),
            door,
            format!(
                "@connections http://{addr}/{}/@connections/{{id}}",
                spec.stage
            ),
        ));
        let (emulator, shutdown) = (emulator.clone(), shutdown.clone());
        let name = spec.name.clone();
        servers.spawn(async move {
            if let Err(e) = serve_websocket_api(emulator, api, listener, shutdown).await {
                tracing::error!("websocket_apis.{name}: {e}");
            }
        });
    }
    print_table(&table, app.functions.len(), started.elapsed());

    let signals = tokio::spawn(wait_for_signal(shutdown.clone()));
    let watcher = args
        .watch
        .then(|| tokio::spawn(crate::watch::watch(app, emulator.clone(), shutdown.clone())));
    // Every server returns once `shutdown` is cancelled and its requests in flight are done.
    while servers.join_next().await.is_some() {}
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    emulator.shutdown(emulator.longest_timeout()).await;
    sink.close();
    signals.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: String) -> Result<TcpListener, Failure> {
    TcpListener::bind(&addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))
        .map_err(Failure::runtime)
}

/// Runs each distinct `build` command once, from the config's folder, in config order.
async fn build_all(app: &AppConfig) -> Result<(), Failure> {
    let mut seen = BTreeSet::new();
    for f in &app.functions {
        let Some(command) = &f.build else { continue };
        if !seen.insert(command.clone()) {
            continue;
        }
        eprintln!("coldstart: building {}: {command}", f.config.name);
        let started = Instant::now();
        run_build(&app.root, command).await.map_err(|e| {
            Failure::runtime(anyhow!("the build of {} failed: {e:#}", f.config.name))
        })?;
        eprintln!(
            "coldstart: built {} in {:.1} s",
            f.config.name,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Runs one build command with `sh -c` from `root`; on failure prints its output.
pub(crate) async fn run_build(root: &Path, command: &str) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("could not run `{command}`"))?;
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(anyhow!("`{command}` exited with {}", output.status));
    }
    Ok(())
}

fn print_table(rows: &[(String, String, String)], functions: usize, took: std::time::Duration) {
    let width = |i: usize| {
        rows.iter()
            .map(|r| [&r.0, &r.1, &r.2][i].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0).max(8), width(1).max(4));
    let mut out = format!(
        "coldstart: {functions} functions ready in {} ms\n\n  {:w0$}  {:w1$}  ENDPOINT\n",
        took.as_millis(),
        "FUNCTION",
        "DOOR"
    );
    for (function, door, endpoint) in rows {
        out.push_str(&format!("  {function:w0$}  {door:w1$}  {endpoint}\n"));
    }
    eprintln!("{out}");
}

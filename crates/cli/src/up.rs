//! `coldstart up`: read the stack (`coldstart.toml` or a SAM template), build it, serve it
//! through `coldstart-stack`, and print where.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::anyhow;

use coldstart_stack::{
    EndpointKind, Reporter, Running, Source, Stack, StartOptions, TemplateOptions,
};

use coldstart_emulator::LogSink;

use crate::Failure;
use crate::args::UpArgs;
use crate::output::StdoutSink;
use crate::run::{settings, wait_for_signal};

pub(crate) async fn up(args: UpArgs) -> Result<(), Failure> {
    let source = match (&args.config, &args.template) {
        (Some(config), _) => Source::Config(config.clone()),
        (None, Some(template)) => Source::Template(template.clone()),
        (None, None) => Source::find(Path::new(".")).map_err(failure)?,
    };
    let overrides = coldstart_stack::template::parse_parameter_overrides(&args.parameter_overrides)
        .map_err(|e| Failure::usage(anyhow!("--parameter-overrides: {e}")))?;
    let options = TemplateOptions {
        parameter_overrides: overrides,
        env_vars: args.env_vars.clone(),
        region: args.region.clone().unwrap_or_else(|| settings().region),
        stack_name: args.stack_name.clone(),
        port_base: args.port_base,
        adapter: adapter(),
    };
    let is_config = matches!(source, Source::Config(_));
    let async_retry_delay = args.async_retry_delay;
    let load = move || {
        let mut stack = source.load(&options)?;
        if is_config {
            stack.settings = settings();
        }
        stack.settings.async_retry_delay = async_retry_delay;
        stack.settings.async_records =
            Some(stack.root.join(".coldstart").join("async-records.jsonl"));
        Ok(stack)
    };
    let mut stack = load().map_err(failure)?;
    let report = Reporter::new(|line| eprintln!("coldstart: {line}"));
    let sink = Arc::new(StdoutSink::new(args.ready_json));
    let stop = tokio_util::sync::CancellationToken::new();
    let signals = tokio::spawn(wait_for_signal(stop.clone()));
    // The dashboard outlives restarts under --watch: it is shown each new stack.
    let dashboard = match args.dashboard {
        Some(addr) => {
            let addr = addr.unwrap_or_else(|| crate::dashboard::default_addr(args.port_base));
            Some(crate::dashboard::start(addr, sink.clone(), stop.clone()).await?)
        }
        None => None,
    };
    let logs: Arc<dyn LogSink> = match &dashboard {
        Some(served) => served.dashboard.sink(),
        None => sink.clone(),
    };
    let load: Arc<dyn Fn() -> Result<Stack, coldstart_stack::Error> + Send + Sync> = Arc::new(load);
    let mut first = true;
    // Served until a signal; under --watch, started again when the stack's shape changes.
    loop {
        let (running, building) = serve(
            &stack,
            &args,
            &report,
            logs.clone(),
            first,
            dashboard.as_ref(),
        )
        .await?;
        first = false;
        let (restart, mut restarts) = tokio::sync::mpsc::unbounded_channel();
        let watcher = args.watch.then(|| {
            tokio::spawn(coldstart_stack::watch::watch(
                coldstart_stack::watch::Watch {
                    load: load.clone(),
                    reloader: running.reloader(),
                    emulator: running.emulator.clone(),
                    shutdown: running.shutdown_token(),
                    report: report.clone(),
                    restart: restart.clone(),
                },
            ))
        });
        // `restart` lives here, so `recv` waits (for ever without --watch).
        let next = tokio::select! {
            () = stop.cancelled() => None,
            next = restarts.recv() => next,
        };
        drop(restart);
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        // Servers finish the requests in flight, then every sandbox stops.
        running.stop().await;
        if let Some(building) = building {
            building.abort();
        }
        match next {
            Some(next) => stack = next,
            None => break,
        }
    }
    if let Some(served) = dashboard {
        // `stop` is cancelled: its server finishes its requests and ends its live streams.
        let _ = served.task.await;
    }
    sink.close();
    signals.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Builds the layers, starts `stack`, prints where it serves (and the `--ready-json` line the
/// first time), and starts building its functions while it serves: returns the running stack
/// and that build's task.
async fn serve(
    stack: &Stack,
    args: &UpArgs,
    report: &Reporter,
    sink: Arc<dyn LogSink>,
    first: bool,
    dashboard: Option<&crate::dashboard::Served>,
) -> Result<(Running, Option<tokio::task::JoinHandle<()>>), Failure> {
    for notice in &stack.notices {
        report.say(notice);
    }
    if !stack.not_emulated.is_empty() {
        let list: Vec<String> = stack
            .not_emulated
            .iter()
            .map(|(id, kind)| format!("{id} ({kind})"))
            .collect();
        report.say(format!("not emulated: {}", list.join(", ")));
    }
    // Layers first (they are merged into the functions' /opt when the stack starts); the
    // functions' own builds run once it serves, each function `Pending` until its build is done.
    let pending: Vec<String> = if args.no_build {
        Vec::new()
    } else {
        coldstart_stack::build::build_layers(stack, report)
            .await
            .map_err(failure)?;
        coldstart_stack::build::function_steps(stack)
            .into_iter()
            .flat_map(|step| step.names)
            .collect()
    };

    let started = Instant::now();
    let mut start = StartOptions::new(sink);
    start.listen = args.listen;
    start.freeze = !args.no_freeze;
    start.dynamodb_endpoint = args.dynamodb_endpoint.clone();
    start.report = report.clone();
    start.pending = pending.clone();
    start.async_store = Some(stack.root.join(".coldstart").join("async-queue.sqlite"));
    start.schedules = !args.no_schedules;
    start.sqs_endpoint = args.sqs_endpoint.clone();
    let running = coldstart_stack::start(stack, start)
        .await
        .map_err(failure)?;
    print_table(stack, &running, started.elapsed());
    let mut endpoints = running.endpoints.clone();
    if let Some(served) = dashboard {
        served.dashboard.attach(
            running.emulator.clone(),
            running.functions.clone(),
            running.endpoints.clone(),
        );
        served.dashboard.attach_schedules(running.schedules.clone());
        endpoints.push(served.endpoint.clone());
    }
    crate::output::schedules(&running.schedules.list(), args.no_schedules);
    if args.ready_json && first {
        coldstart_stack::answering(&endpoints.iter().collect::<Vec<_>>())
            .await
            .map_err(failure)?;
        crate::output::ready_line(&endpoints);
    }

    let building = (!pending.is_empty()).then(|| {
        report.say(format!(
            "building {} while the rest serves; they answer 409 until built",
            pending.join(", ")
        ));
        tokio::spawn(coldstart_stack::activate(
            stack.clone(),
            running.emulator.clone(),
            running.functions.clone(),
            report.clone(),
        ))
    });
    Ok((running, building))
}

/// Mistakes in the user's files exit 2, the rest 1.
fn failure(error: coldstart_stack::Error) -> Failure {
    if error.is_usage() {
        Failure::usage(error.into())
    } else {
        Failure::runtime(error.into())
    }
}

/// `coldstart-adapter` beside this executable: it serves the AWS Lambda Web Adapter's layer.
fn adapter() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let adapter = exe.parent()?.join("coldstart-adapter");
    adapter.is_file().then_some(adapter)
}

fn print_table(stack: &Stack, running: &Running, took: std::time::Duration) {
    let toml = matches!(stack.source.extension(), Some(e) if e == "toml");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for endpoint in &running.endpoints {
        let door = match endpoint.kind {
            EndpointKind::Invoke => "Invoke API".to_owned(),
            EndpointKind::Url if endpoint.streaming => "Function URL (stream)".to_owned(),
            EndpointKind::Url => "Function URL".to_owned(),
            EndpointKind::HttpApi | EndpointKind::RestApi if toml => {
                format!("http_apis.{}", endpoint.name)
            }
            EndpointKind::WebSocket if toml => format!("websocket_apis.{}", endpoint.name),
            EndpointKind::HttpApi => format!("HTTP API {}", endpoint.name),
            EndpointKind::RestApi => format!("REST API {}", endpoint.name),
            EndpointKind::WebSocket => format!("WebSocket API {}", endpoint.name),
            EndpointKind::Dashboard => "Dashboard".to_owned(),
        };
        for (function, shown) in &endpoint.routes {
            rows.push((function.clone(), door.clone(), shown.clone()));
        }
    }
    let width = |i: usize| {
        rows.iter()
            .map(|r| [&r.0, &r.1, &r.2][i].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0).max(8), width(1).max(4));
    let mut out = format!(
        "coldstart: {} functions ready in {} ms\n\n  {:w0$}  {:w1$}  ENDPOINT\n",
        stack.functions.len(),
        took.as_millis(),
        "FUNCTION",
        "DOOR"
    );
    for (function, door, endpoint) in &rows {
        out.push_str(&format!("  {function:w0$}  {door:w1$}  {endpoint}\n"));
    }
    if !running.outputs.is_empty() {
        out.push_str("\n  OUTPUTS\n");
        for output in &running.outputs {
            out.push_str(&format!("  {} = {}\n", output.name, output.value));
        }
    }
    eprintln!("{out}");
}

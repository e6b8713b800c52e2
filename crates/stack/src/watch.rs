//! `coldstart up --watch`: rebuild a function when its sources change and replace its sandboxes
//! between invocations; read the stack's file again when it changes.
//!
//! File events arrive from `notify` on its own thread and are forwarded to a channel. After the
//! first event of a burst, events keep arriving for a short settle period (an editor saving, a
//! `git checkout`); then each affected build runs once and its functions get new sandboxes.
//!
//! A changed template (or `coldstart.toml`) is read again. When only functions' settings
//! changed, the changed functions are rebuilt (if they have a build) and reconfigured in place
//! ([`Reloader::reload`]); the rest keep their warm sandboxes. When the stack's shape changed
//! (functions, URLs, APIs, tables, layers) or a layer's sources changed, the new stack goes to
//! the caller to be started again. A template that no longer reads is reported and the running
//! stack keeps serving.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::Emulator;

use crate::build;
use crate::error::Error;
use crate::model::{Build, FunctionSpec, Stack};
use crate::report::Reporter;
use crate::start::{Reload, Reloader};

/// How long a burst of file events may take to settle before rebuilding.
const SETTLE: Duration = Duration::from_millis(200);

/// What [`watch`] works with.
pub struct Watch {
    /// Reads the stack's file again (with the options `up` was given).
    pub load: std::sync::Arc<dyn Fn() -> Result<Stack, Error> + Send + Sync>,
    /// The running stack's reloader ([`crate::Running::reloader`]).
    pub reloader: Reloader,
    /// The running stack's emulator.
    pub emulator: Emulator,
    /// Watching ends when this is cancelled.
    pub shutdown: CancellationToken,
    /// Where progress lines go.
    pub report: Reporter,
    /// Where a stack that must be started again goes; watching ends after sending one.
    pub restart: mpsc::UnboundedSender<Stack>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// The folders a stack's watch covers: each function's sources, each layer's sources, and the
/// stack file's own folder (not recursively).
fn roots(stack: &Stack) -> BTreeSet<(PathBuf, RecursiveMode)> {
    let mut roots = BTreeSet::new();
    for f in &stack.functions {
        for root in &f.watch {
            roots.insert((root.clone(), RecursiveMode::Recursive));
        }
    }
    for layer in &stack.layers {
        roots.insert((layer_sources(layer), RecursiveMode::Recursive));
    }
    if let Some(folder) = stack.source.parent() {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        roots.insert((folder.to_path_buf(), RecursiveMode::NonRecursive));
    }
    roots
}

/// Where a layer's sources are: its build's folder, or its content.
fn layer_sources(layer: &crate::model::LayerSpec) -> PathBuf {
    match &layer.build {
        Some(Build::Command { dir, .. })
        | Some(Build::Makefile { dir, .. })
        | Some(Build::Cargo { dir, .. }) => dir.clone(),
        Some(Build::CargoWorkspace { root, .. }) => root.clone(),
        Some(Build::Pip { .. } | Build::Npm { .. }) | None => layer.content.clone(),
    }
}

/// Is `path` the stack's file? Compared by file name within the same folder, since editors
/// often save by writing a new file and renaming it.
fn is_source(source: &Path, path: &Path) -> bool {
    let canonical = |p: &Path| {
        p.parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .and_then(|d| d.canonicalize().ok())
    };
    path.file_name() == source.file_name() && canonical(path) == canonical(source)
}

/// Watches the stack's files until `shutdown` is cancelled or the stack must start again.
pub async fn watch(w: Watch) {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in event.paths {
            // The receiver is gone only at shutdown.
            let _ = tx.send(path);
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(err) => {
            tracing::error!(%err, "cannot watch for changes");
            return;
        }
    };
    let mut app = w.reloader.stack();
    let mut watching = BTreeSet::new();
    add_roots(&mut watcher, &mut watching, &app, &w.report);
    loop {
        let first = tokio::select! {
            () = w.shutdown.cancelled() => return,
            path = rx.recv() => match path { Some(p) => p, None => return },
        };
        let mut changed = vec![first];
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                () = &mut settle => break,
                path = rx.recv() => match path { Some(p) => changed.push(p), None => return },
            }
        }
        if changed.iter().any(|p| is_source(&app.source, p)) {
            match reread(&w, &app).await {
                Reread::Keep => {}
                Reread::Applied(new) => {
                    app = *new;
                    add_roots(&mut watcher, &mut watching, &app, &w.report);
                }
                Reread::Restart => return,
            }
        }
        if let Some(layer) = app
            .layers
            .iter()
            .find(|l| changed.iter().any(|p| watched(&[layer_sources(l)], p)))
        {
            w.report.say(format!(
                "the layer {} changed: starting the stack again",
                layer.name
            ));
            let _ = w.restart.send(app.clone());
            return;
        }
        let affected: Vec<&FunctionSpec> = app
            .functions
            .iter()
            .filter(|f| changed.iter().any(|p| watched(&f.watch, p)))
            .collect();
        rebuild(&affected, &w.emulator, &w.report).await;
    }
}

/// Watches the roots of `stack` not watched yet.
fn add_roots(
    watcher: &mut notify::RecommendedWatcher,
    watching: &mut BTreeSet<(PathBuf, RecursiveMode)>,
    stack: &Stack,
    report: &Reporter,
) {
    for (root, mode) in roots(stack) {
        if watching.contains(&(root.clone(), mode)) {
            continue;
        }
        match watcher.watch(&root, mode) {
            Ok(()) => {
                if mode == RecursiveMode::Recursive {
                    report.say(format!("watching {}", root.display()));
                }
                watching.insert((root, mode));
            }
            Err(err) => tracing::warn!(%err, "cannot watch {}", root.display()),
        }
    }
}

/// What re-reading the stack's file came to.
enum Reread {
    /// Keep serving as before (unchanged, unreadable, or a build failed).
    Keep,
    /// The changed functions were reconfigured: this is the stack now.
    Applied(Box<Stack>),
    /// The new stack was sent to be started again.
    Restart,
}

/// Reads the stack's file again and applies it: reconfigures changed functions in place, or
/// sends the new stack to be started again when its shape changed.
async fn reread(w: &Watch, app: &Stack) -> Reread {
    let source = app.source.display();
    let new = match (w.load)() {
        Ok(new) => new,
        Err(err) => {
            w.report.say(format!(
                "{err}
{source} changed but does not read: still serving the stack as it was"
            ));
            return Reread::Keep;
        }
    };
    if let Some(why) = w.reloader.reload_check(&new) {
        w.report
            .say(format!("{source} changed: {why}; starting the stack again"));
        let _ = w.restart.send(new);
        return Reread::Restart;
    }
    // Functions whose entry changed and that have a build are built first; a failed build
    // keeps the whole stack as it was.
    let changed: Vec<&FunctionSpec> = new
        .functions
        .iter()
        .filter(|f| {
            app.functions
                .iter()
                .find(|o| o.config.name == f.config.name)
                != Some(f)
        })
        .collect();
    let mut built: Vec<&Build> = Vec::new();
    for f in &changed {
        let Some(b) = &f.build else { continue };
        if built.contains(&b) {
            continue;
        }
        built.push(b);
        w.report
            .say(format!("{} changed: {}", f.config.name, build::describe(b)));
        build::tell(&w.emulator, &f.config.name, build::BuildState::Building);
        if let Err(why) = build::run(b).await {
            let why = format!("the build of {} failed: {why}", f.config.name);
            build::tell(&w.emulator, &f.config.name, build::BuildState::Failed(&why));
            w.report
                .say(format!("{why}\nstill serving the stack as it was"));
            return Reread::Keep;
        }
        build::tell(&w.emulator, &f.config.name, build::BuildState::Built);
    }
    match w.reloader.reload(&new) {
        Ok(Reload::Unchanged) => {
            w.report
                .say(format!("{source} changed: no function's settings changed"));
            Reread::Applied(Box::new(new))
        }
        Ok(Reload::Reconfigured(names)) => {
            for name in &names {
                w.emulator
                    .set_state(name, coldstart_emulator::State::Active);
            }
            w.report.say(format!(
                "{source} changed: {} reloaded with the new settings",
                names.join(", ")
            ));
            Reread::Applied(Box::new(new))
        }
        Ok(Reload::Restart(why)) => {
            w.report
                .say(format!("{source} changed: {why}; starting the stack again"));
            let _ = w.restart.send(new);
            Reread::Restart
        }
        Err(err) => {
            w.report.say(format!(
                "{err}
still serving the stack as it was"
            ));
            Reread::Keep
        }
    }
}

/// Runs each affected build once; replaces the sandboxes of the functions whose build passed
/// (or that have none). A failed build keeps the running version.
async fn rebuild(affected: &[&FunctionSpec], emulator: &Emulator, report: &Reporter) {
    let mut built: Vec<(&crate::model::Build, bool)> = Vec::new();
    for f in affected {
        let name = &f.config.name;
        let ok = match &f.build {
            None => true,
            Some(b) => match built.iter().find(|(c, _)| *c == b) {
                Some((_, ok)) => *ok,
                None => {
                    report.say(format!("{name} changed: {}", build::describe(b)));
                    build::tell(emulator, name, build::BuildState::Building);
                    let started = Instant::now();
                    let ok = match build::run(b).await {
                        Ok(()) => {
                            build::tell(emulator, name, build::BuildState::Built);
                            report.say(format!(
                                "built {name} in {:.1} s",
                                started.elapsed().as_secs_f64()
                            ));
                            true
                        }
                        Err(why) => {
                            let why = format!("the build of {name} failed: {why}");
                            build::tell(emulator, name, build::BuildState::Failed(&why));
                            report.say(why);
                            false
                        }
                    };
                    built.push((b, ok));
                    ok
                }
            },
        };
        if ok {
            // A function whose first build failed becomes invocable.
            emulator.set_state(name, coldstart_emulator::State::Active);
            emulator.replace_sandboxes(name);
            report.say(format!("{name} reloaded: new invocations run the new code"));
        } else {
            report.say(format!(
                "the build of {name} failed; still serving the previous version"
            ));
        }
    }
}

/// Is `path` under one of `roots`, and not inside a `target/` or `node_modules/` folder (what
/// builds write) or a hidden entry?
fn watched(roots: &[PathBuf], path: &Path) -> bool {
    roots.iter().any(|root| {
        path.strip_prefix(root).is_ok_and(|rel| {
            rel.components().all(|c| match c {
                Component::Normal(name) => {
                    let name = name.to_string_lossy();
                    name != "target" && name != "node_modules" && !name.starts_with('.')
                }
                _ => true,
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_target_and_hidden_entries() {
        let roots = vec![PathBuf::from("/app")];
        assert!(watched(&roots, Path::new("/app/src/main.rs")));
        assert!(!watched(&roots, Path::new("/app/target/release/echo")));
        assert!(!watched(&roots, Path::new("/app/.git/index")));
        assert!(!watched(&roots, Path::new("/other/file")));
    }
}

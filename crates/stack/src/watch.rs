//! `coldstart up --watch`: rebuild a function when its sources change and replace its sandboxes
//! between invocations.
//!
//! File events arrive from `notify` on its own thread and are forwarded to a channel. After the
//! first event of a burst, events keep arriving for a short settle period (an editor saving, a
//! `git checkout`); then each affected build runs once and its functions get new sandboxes.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use coldstart_emulator::Emulator;

use crate::build;
use crate::model::{FunctionSpec, Stack};
use crate::report::Reporter;

/// How long a burst of file events may take to settle before rebuilding.
const SETTLE: Duration = Duration::from_millis(200);

/// Watches the functions' sources until `shutdown` is cancelled.
pub async fn watch(app: Stack, emulator: Emulator, shutdown: CancellationToken, report: Reporter) {
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
    let roots: BTreeSet<&PathBuf> = app.functions.iter().flat_map(|f| &f.watch).collect();
    for root in roots {
        match watcher.watch(root, RecursiveMode::Recursive) {
            Ok(()) => report.say(format!("watching {}", root.display())),
            Err(err) => tracing::warn!(%err, "cannot watch {}", root.display()),
        }
    }
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
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
        if changed.contains(&app.source) {
            // The emulator's functions are fixed when it starts: new settings need a new `up`.
            report.say(format!(
                "{} changed: functions are rebuilt and reloaded from their sources, but new \
                 settings, functions or APIs take a restart of `coldstart up`",
                app.source.display()
            ));
        }
        let affected: Vec<&FunctionSpec> = app
            .functions
            .iter()
            .filter(|f| changed.iter().any(|p| watched(&f.watch, p)))
            .collect();
        rebuild(&affected, &emulator, &report).await;
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
                    let started = Instant::now();
                    let ok = match build::run(b).await {
                        Ok(()) => {
                            report.say(format!(
                                "built {name} in {:.1} s",
                                started.elapsed().as_secs_f64()
                            ));
                            true
                        }
                        Err(why) => {
                            report.say(format!("the build of {name} failed: {why}"));
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

/// Is `path` under one of `roots`, and not inside a `target/` folder or a hidden entry?
fn watched(roots: &[PathBuf], path: &Path) -> bool {
    roots.iter().any(|root| {
        path.strip_prefix(root).is_ok_and(|rel| {
            rel.components().all(|c| match c {
                Component::Normal(name) => {
                    let name = name.to_string_lossy();
                    name != "target" && !name.starts_with('.')
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

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

use crate::config::{AppConfig, FunctionSpec};

/// How long a burst of file events may take to settle before rebuilding.
const SETTLE: Duration = Duration::from_millis(200);

/// Watches the functions' sources until `shutdown` is cancelled.
pub(crate) async fn watch(app: AppConfig, emulator: Emulator, shutdown: CancellationToken) {
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
            Ok(()) => eprintln!("coldstart: watching {}", root.display()),
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
        let affected: Vec<&FunctionSpec> = app
            .functions
            .iter()
            .filter(|f| changed.iter().any(|p| watched(&f.watch, p)))
            .collect();
        rebuild(&app, &affected, &emulator).await;
    }
}

/// Runs each affected build once; replaces the sandboxes of the functions whose build passed
/// (or that have none). A failed build keeps the running version.
async fn rebuild(app: &AppConfig, affected: &[&FunctionSpec], emulator: &Emulator) {
    let mut built: Vec<(&str, bool)> = Vec::new();
    for f in affected {
        let ok = match &f.build {
            None => true,
            Some(command) => match built.iter().find(|(c, _)| c == command) {
                Some((_, ok)) => *ok,
                None => {
                    eprintln!("coldstart: {} changed: {command}", f.config.name);
                    let started = Instant::now();
                    let ok = crate::up::run_build(&app.root, command).await.is_ok();
                    if ok {
                        eprintln!(
                            "coldstart: built {} in {:.1} s",
                            f.config.name,
                            started.elapsed().as_secs_f64()
                        );
                    }
                    built.push((command, ok));
                    ok
                }
            },
        };
        if ok {
            emulator.replace_sandboxes(&f.config.name);
            eprintln!(
                "coldstart: {} reloaded: new invocations run the new code",
                f.config.name
            );
        } else {
            eprintln!(
                "coldstart: the build of {} failed; still serving the previous version",
                f.config.name
            );
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

//! Builds: what makes a function's or layer's code before the stack is served.
//!
//! The kinds [`Build`] names: a `coldstart.toml` shell command, `make build-<Id>` with
//! `ARTIFACTS_DIR` (SAM's `BuildMethod: makefile`), `cargo build --release` with the binary
//! copied to `bootstrap` (SAM's `BuildMethod: rust-cargolambda`), and the pip and npm installs of
//! managed runtimes. Each distinct build runs once.
//! Progress goes out as `tracing` events; a failed build's own output is in its error.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::Error;
use crate::model::{Build, NpmInstall, PipInstall, Stack};
use crate::report::Reporter;

/// How much of a failed build's output its error keeps (the end, where the error is).
const OUTPUT_TAIL: usize = 8 * 1024;

/// Where a function's build is, as the log sink (a dashboard) is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildState<'a> {
    /// It runs now.
    Building,
    /// It passed.
    Built,
    /// It failed, for this reason (only its first line is told).
    Failed(&'a str),
}

/// Tells the log sink of `emulator` that `function`'s build is in `state`, as a
/// [`coldstart_emulator::notes::BUILD`] event on its platform event stream.
pub fn tell(emulator: &coldstart_emulator::Emulator, function: &str, state: BuildState<'_>) {
    use coldstart_emulator::notes;
    emulator.note(function, || {
        let (status, error) = match state {
            BuildState::Building => ("building", None),
            BuildState::Built => ("built", None),
            BuildState::Failed(why) => ("failed", why.lines().find(|l| !l.trim().is_empty())),
        };
        notes::event(
            notes::BUILD,
            serde_json::json!({ "status": status, "error": error }),
        )
    });
}

/// One build of a stack: what it makes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The functions and layers it makes, by name.
    pub names: Vec<String>,
    /// The build.
    pub build: Build,
}

/// The distinct builds of a stack, layers first, each with what it makes.
pub fn steps(stack: &Stack) -> Vec<Step> {
    let builds = stack
        .layers
        .iter()
        .filter_map(|l| l.build.as_ref().map(|b| (&l.name, b)))
        .chain(
            stack
                .functions
                .iter()
                .filter_map(|f| f.build.as_ref().map(|b| (&f.config.name, b))),
        );
    let mut steps: Vec<Step> = Vec::new();
    for (name, build) in builds {
        match steps.iter_mut().find(|s| &s.build == build) {
            Some(step) => step.names.push(name.clone()),
            None => steps.push(Step {
                names: vec![name.clone()],
                build: build.clone(),
            }),
        }
    }
    let layers: Vec<&String> = stack.layers.iter().map(|l| &l.name).collect();
    one_cargo_build_a_workspace(steps, |step| {
        !step.names.iter().any(|n| layers.contains(&n))
    })
}

/// Merges the [`Build::Cargo`] steps (for which `mergeable` holds) whose crates share a Cargo
/// workspace into one [`Build::CargoWorkspace`] step, where the first of them was.
fn one_cargo_build_a_workspace(steps: Vec<Step>, mergeable: impl Fn(&Step) -> bool) -> Vec<Step> {
    let mut merged: Vec<Step> = Vec::new();
    for step in steps {
        let root = match &step.build {
            Build::Cargo { dir, .. } if mergeable(&step) => workspace_root(dir),
            _ => None,
        };
        let Some(root) = root else {
            merged.push(step);
            continue;
        };
        let same = merged
            .iter_mut()
            .find(|s| matches!(&s.build, Build::CargoWorkspace { root: r, .. } if *r == root));
        match same {
            Some(group) => {
                group.names.extend(step.names);
                if let Build::CargoWorkspace { builds, .. } = &mut group.build {
                    builds.push(step.build);
                }
            }
            None => merged.push(Step {
                names: step.names,
                build: Build::CargoWorkspace {
                    root,
                    builds: vec![step.build],
                },
            }),
        }
    }
    // A workspace with one crate to build runs as that crate's own build.
    for step in &mut merged {
        if let Build::CargoWorkspace { builds, .. } = &mut step.build
            && builds.len() == 1
        {
            step.build = builds.remove(0);
        }
    }
    merged
}

/// The root of the Cargo workspace of the crate in `dir`: the nearest folder above it whose
/// `Cargo.toml` has a `[workspace]`, else the crate's own folder; `None` without a `Cargo.toml`.
fn workspace_root(dir: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let has_workspace = |d: &Path| manifest(d).is_some_and(|t| t.contains_key("workspace"));
    match dir.ancestors().find(|d| has_workspace(d)) {
        Some(root) => Some(root.to_owned()),
        None => dir.join("Cargo.toml").is_file().then_some(dir),
    }
}

/// The `Cargo.toml` in `dir`, parsed; `None` when there is none or it does not parse.
fn manifest(dir: &Path) -> Option<toml::Table> {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()?
        .parse()
        .ok()
}

/// The profile coldstart's own cargo builds use in the workspace at `root`: `local` where its
/// `Cargo.toml` defines `[profile.local]` (fast to compile, see the repository's), else
/// `release`.
pub fn cargo_profile(root: &Path) -> &'static [&'static str] {
    let local =
        manifest(root).is_some_and(|t| t.get("profile").and_then(|p| p.get("local")).is_some());
    if local {
        &["--profile", "local"]
    } else {
        &["--release"]
    }
}

/// The name of the package whose manifest is in `dir`.
fn package_name(dir: &Path) -> Result<String, String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("cannot parse {}: {e}", manifest.display()))?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{} names no package", manifest.display()))
}

/// Runs every build of `stack` once, in order; stops at the first failure.
pub async fn build_all(stack: &Stack, report: &Reporter) -> Result<(), Error> {
    for step in steps(stack) {
        run_step(&step, report).await?;
    }
    Ok(())
}

/// Runs the builds that make layers (a function's layers are merged when the stack starts,
/// so they come first); stops at the first failure.
pub async fn build_layers(stack: &Stack, report: &Reporter) -> Result<(), Error> {
    let layers: Vec<&str> = stack.layers.iter().map(|l| l.name.as_str()).collect();
    for step in steps(stack)
        .into_iter()
        .filter(|s| s.names.iter().any(|n| layers.contains(&n.as_str())))
    {
        run_step(&step, report).await?;
    }
    Ok(())
}

/// The builds that make only functions, in order: what [`build_layers`] leaves.
pub fn function_steps(stack: &Stack) -> Vec<Step> {
    let layers: Vec<&str> = stack.layers.iter().map(|l| l.name.as_str()).collect();
    steps(stack)
        .into_iter()
        .filter(|s| !s.names.iter().any(|n| layers.contains(&n.as_str())))
        .collect()
}

/// Runs one build with its progress lines.
pub async fn run_step(step: &Step, report: &Reporter) -> Result<(), Error> {
    run_step_with(step, report, &mut |_| {}).await
}

/// [`run_step`], giving `on_executable` each executable a cargo build links as soon as it is
/// linked (see [`run_streaming`]).
pub async fn run_step_with(
    step: &Step,
    report: &Reporter,
    on_executable: &mut (dyn FnMut(&Path) + Send),
) -> Result<(), Error> {
    let name = step.names.join(", ");
    report.say(format!("building {name}: {}", describe(&step.build)));
    let started = Instant::now();
    run_streaming(&step.build, report, on_executable)
        .await
        .map_err(|reason| Error::Build {
            name: name.clone(),
            reason,
        })?;
    report.say(format!(
        "built {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// A build as a command line, for progress lines.
pub fn describe(build: &Build) -> String {
    match build {
        Build::Command { command, .. } => command.clone(),
        Build::Makefile { dir, target, .. } => {
            format!("make -C {} build-{target}", dir.display())
        }
        Build::Cargo { dir, binary, .. } => {
            let profile = workspace_root(dir).map_or(&["--release"][..], |r| cargo_profile(&r));
            match binary {
                Some(bin) => format!(
                    "cargo build {} --bin {bin} ({})",
                    profile.join(" "),
                    dir.display()
                ),
                None => format!("cargo build {} ({})", profile.join(" "), dir.display()),
            }
        }
        Build::CargoWorkspace { root, builds } => {
            let packages: Vec<String> = builds
                .iter()
                .filter_map(|b| match b {
                    Build::Cargo { dir, .. } => package_name(dir).ok(),
                    _ => None,
                })
                .map(|p| format!("-p {p}"))
                .collect();
            format!(
                "cargo build {} {} ({})",
                cargo_profile(root).join(" "),
                packages.join(" "),
                root.display()
            )
        }
        Build::Pip { installs, .. } => {
            let what: Vec<String> = installs.iter().map(|i| i.args.join(" ")).collect();
            format!("pip install {} (once, cached)", what.join("; "))
        }
        Build::Npm { installs } => {
            let what: Vec<String> = installs
                .iter()
                .map(|i| match i {
                    NpmInstall::Client { package, .. } => format!("npm install {package}"),
                    NpmInstall::Packages { code, .. } => {
                        format!("npm ci ({})", code.join("package.json").display())
                    }
                })
                .collect();
            format!("{} (once, cached)", what.join("; "))
        }
    }
}

/// Runs one build. On failure the error holds the end of its output.
pub async fn run(build: &Build) -> Result<(), String> {
    run_reporting(build, &Reporter::default()).await
}

/// Runs one build, saying on `report` how a long one (the Node.js runtime client's native
/// addon) gets on. On failure the error holds the end of its output.
pub async fn run_reporting(build: &Build, report: &Reporter) -> Result<(), String> {
    run_streaming(build, report, &mut |_| {}).await
}

/// [`run_reporting`], giving `on_executable` the path of each executable as soon as cargo has
/// linked it, for a `Build::Command` that is one plain `cargo build` (see [`cargo_json`]):
/// a caller serves each function of a shared build without waiting for the slowest binary.
pub async fn run_streaming(
    build: &Build,
    report: &Reporter,
    on_executable: &mut (dyn FnMut(&Path) + Send),
) -> Result<(), String> {
    match build {
        Build::Command { command, dir } => {
            let json = cargo_json(command);
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c")
                .arg(json.as_deref().unwrap_or(command))
                .current_dir(dir);
            output_with(cmd, command, |line| {
                if let Some(linked) = json.as_ref().and_then(|_| linked_executable(line)) {
                    on_executable(Path::new(&linked.executable));
                }
            })
            .await
            .map(drop)
        }
        Build::Makefile {
            dir,
            target,
            artifacts,
        } => {
            fresh_dir(artifacts)?;
            let mut cmd = tokio::process::Command::new("make");
            cmd.arg(format!("build-{target}"))
                .current_dir(dir)
                .env("ARTIFACTS_DIR", artifacts);
            output_of(cmd, &format!("make build-{target}"))
                .await
                .map(drop)
        }
        Build::Cargo {
            dir,
            binary,
            artifacts,
        } => {
            fresh_dir(artifacts)?;
            let profile = workspace_root(dir).map_or(&["--release"][..], |r| cargo_profile(&r));
            let mut cmd = tokio::process::Command::new("cargo");
            cmd.arg("build")
                .args(profile)
                .arg(CARGO_MESSAGES)
                .current_dir(dir);
            if let Some(bin) = binary {
                cmd.args(["--bin", bin]);
            }
            let shown = format!("cargo build {}", profile.join(" "));
            let stdout = output_of(cmd, &shown).await?;
            let executable = executable_of(&stdout, binary.as_deref())?;
            std::fs::copy(&executable, artifacts.join("bootstrap"))
                .map_err(|e| format!("cannot copy {executable} to {}: {e}", artifacts.display()))?;
            Ok(())
        }
        Build::CargoWorkspace { root, builds } => {
            cargo_workspace(root, builds, on_executable).await
        }
        Build::Pip {
            interpreter,
            installs,
        } => pip_install(interpreter, installs).await,
        Build::Npm { installs } => {
            for install in installs {
                match install {
                    NpmInstall::Client { package, target } => {
                        npm_client(package, target, report).await?;
                    }
                    NpmInstall::Packages { code, hash } => npm_packages(code, hash).await?,
                }
            }
            Ok(())
        }
    }
}

/// Runs the builds of a [`Build::CargoWorkspace`] as one `cargo build -p A -p B …`, copying
/// each crate's binary (the named one, else its first) to its `bootstrap` as soon as cargo
/// links it, and giving `on_executable` that `bootstrap`.
async fn cargo_workspace(
    root: &Path,
    builds: &[Build],
    on_executable: &mut (dyn FnMut(&Path) + Send),
) -> Result<(), String> {
    // Per crate: its manifest, the binary it wants, where it goes, and whether it is there.
    let mut wanted: Vec<(PathBuf, Option<&str>, &Path, bool)> = Vec::new();
    let profile = cargo_profile(root);
    let mut cmd = tokio::process::Command::new("cargo");
    cmd.arg("build")
        .args(profile)
        .arg(CARGO_MESSAGES)
        .current_dir(root);
    for build in builds {
        let Build::Cargo {
            dir,
            binary,
            artifacts,
        } = build
        else {
            continue;
        };
        fresh_dir(artifacts)?;
        cmd.args(["-p", &package_name(dir)?]);
        let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))
            .map_err(|e| format!("cannot read {}: {e}", dir.join("Cargo.toml").display()))?;
        wanted.push((manifest, binary.as_deref(), artifacts, false));
    }
    let shown = format!("cargo build {}", profile.join(" "));
    let mut copy_failed: Option<String> = None;
    output_with(cmd, &shown, |line| {
        let Some(linked) = linked_executable(line) else {
            return;
        };
        for (manifest, binary, artifacts, done) in &mut wanted {
            let mine = linked.manifest.as_deref() == Some(manifest.as_path())
                && binary.is_none_or(|b| b == linked.target);
            if *done || !mine {
                continue;
            }
            let bootstrap = artifacts.join("bootstrap");
            match std::fs::copy(&linked.executable, &bootstrap) {
                Ok(_) => on_executable(&bootstrap),
                Err(e) => {
                    copy_failed.get_or_insert(format!(
                        "cannot copy {} to {}: {e}",
                        linked.executable,
                        bootstrap.display()
                    ));
                }
            }
            *done = true;
        }
    })
    .await?;
    if let Some(failed) = copy_failed {
        return Err(failed);
    }
    match wanted.iter().find(|w| !w.3) {
        Some((manifest, binary, ..)) => Err(format!(
            "cargo built no binary{} for {}",
            binary.map(|b| format!(" named {b}")).unwrap_or_default(),
            manifest.display()
        )),
        None => Ok(()),
    }
}

/// What cargo prints, one JSON message a line, when coldstart asks it to: diagnostics still
/// rendered for people on standard error.
const CARGO_MESSAGES: &str = "--message-format=json-render-diagnostics";

/// A `build` command that is one plain `cargo build` (no shell syntax, no message format of its
/// own), with [`CARGO_MESSAGES`] added so that each binary is known as soon as it is linked;
/// `None` for any other command, which runs as it is.
pub fn cargo_json(command: &str) -> Option<String> {
    let mut words = command.split_whitespace();
    let plain = words.next() == Some("cargo")
        && words.next() == Some("build")
        && !command.contains(|c: char| ";&|<>$`()\\'\"\n".contains(c))
        && !command.contains("--message-format");
    plain.then(|| format!("{} {CARGO_MESSAGES}", command.trim_end()))
}

/// A binary cargo has just linked, from one of its JSON messages.
#[derive(Debug, PartialEq, Eq)]
struct Linked {
    /// The binary target's name.
    target: String,
    /// The executable's path.
    executable: String,
    /// The `Cargo.toml` of its package.
    manifest: Option<PathBuf>,
}

/// The binary a line of cargo's JSON messages says it has just linked.
fn linked_executable(line: &str) -> Option<Linked> {
    if !line.starts_with('{') {
        return None;
    }
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    Some(Linked {
        executable: message["executable"].as_str()?.to_owned(),
        target: message["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        manifest: message["manifest_path"].as_str().map(PathBuf::from),
    })
}

/// Tells apart the builds one process runs at once (tests start stacks in parallel threads).
static BUILD_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A fresh folder name beside a target: `.partial-<pid>-<n>-<name>`.
fn partial_beside(target: &Path) -> PathBuf {
    let parent = target.parent().unwrap_or(Path::new("."));
    parent.join(format!(
        ".partial-{}-{}-{}",
        std::process::id(),
        BUILD_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        target
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ))
}

/// Installs the runtime client `package` into `target` unless it is there. Compiling its addon
/// takes minutes, so one process builds it under an exclusive file lock while the
/// others wait, then find it done; the install goes to a sibling folder renamed into place, so
/// that a `target` that exists is whole even when a build is killed. The lock is on
/// `.<target name>.lock` beside it.
async fn npm_client(package: &str, target: &Path, report: &Reporter) -> Result<(), String> {
    if target.is_dir() {
        return Ok(());
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let lock_path = parent.join(format!(
        ".{}.lock",
        target
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    // Held until this function returns; the kernel releases it if the process dies.
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| format!("waiting for {}: {e}", lock_path.display()))?
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if target.is_dir() {
        return Ok(());
    }
    // Under the lock, another process's partial install is one that died: its space goes back.
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(".partial-") && file.ends_with(&format!("-{name}")) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let partial = partial_beside(target);
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    report.say(format!(
        "preparing {package} once for this machine: it compiles curl, aws-lambda-cpp and a Node addon (a minute or two)"
    ));
    let mut cmd = tokio::process::Command::new("npm");
    cmd.args([
        "install",
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--foreground-scripts",
        "--loglevel=error",
        "--prefix",
    ])
    .arg(&partial)
    .arg(package);
    let shown = format!("npm install {package}");
    let phases = [
        ("> aws-lambda-ric@", "preinstall", "building curl (1/3)"),
        ("-- The CXX compiler", "", "building aws-lambda-cpp (2/3)"),
        (
            "> aws-lambda-ric@",
            "build:gyp",
            "compiling the Node addon (3/3)",
        ),
    ];
    let mut next = 0;
    let result = output_with(cmd, &shown, |line| {
        if let Some((start, has, what)) = phases.get(next)
            && line.starts_with(start)
            && line.contains(has)
        {
            report.say(format!("{package}: {what}"));
            next += 1;
        }
    })
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    let renamed = std::fs::rename(&partial, target);
    drop(lock);
    if let Err(e) = renamed {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!(
            "cannot move the install to {}: {e}",
            target.display()
        ));
    }
    Ok(())
}

/// The file in a `node_modules` that says which lock file it was installed from.
pub const NPM_STAMP: &str = ".coldstart-lock";

/// Installs `code`'s `package.json` into `code/node_modules` unless that folder came from the
/// same lock file (its stamp holds `hash`) or is the user's own (no stamp). npm runs in a
/// sibling folder under `.coldstart/`; the result replaces `node_modules` by renames.
async fn npm_packages(code: &Path, hash: &str) -> Result<(), String> {
    let modules = code.join("node_modules");
    if modules.is_dir() {
        match std::fs::read_to_string(modules.join(NPM_STAMP)) {
            Ok(stamp) if stamp.trim() == hash => return Ok(()),
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    let partial = partial_beside(&code.join(".coldstart").join("node_modules"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let locked = code.join("package-lock.json").is_file();
    for name in ["package.json", "package-lock.json"] {
        if code.join(name).is_file() {
            std::fs::copy(code.join(name), partial.join(name))
                .map_err(|e| format!("cannot copy {name} to {}: {e}", partial.display()))?;
        }
    }
    let verb = if locked { "ci" } else { "install" };
    let mut cmd = tokio::process::Command::new("npm");
    cmd.args([
        verb,
        "--omit=dev",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ])
    .current_dir(&partial);
    let shown = format!("npm {verb} --omit=dev ({})", code.display());
    let installed = output_of(cmd, &shown).await.and_then(|_| {
        let fresh = partial.join("node_modules");
        std::fs::create_dir_all(&fresh)
            .and_then(|()| std::fs::write(fresh.join(NPM_STAMP), hash))
            .map_err(|e| format!("cannot write {}: {e}", fresh.display()))?;
        // A stale install we made goes aside first; a finished one from another process is as good.
        if modules.is_dir() {
            let _ = std::fs::rename(&modules, partial.join("stale"));
        }
        match std::fs::rename(&fresh, &modules) {
            Ok(()) => Ok(()),
            Err(_) if modules.join(NPM_STAMP).is_file() => Ok(()),
            Err(e) => Err(format!(
                "cannot move the install to {}: {e}",
                modules.display()
            )),
        }
    });
    let _ = std::fs::remove_dir_all(&partial);
    // The staging folder's parent, `.coldstart/`, goes too when nothing else is in it.
    let _ = std::fs::remove_dir(code.join(".coldstart"));
    installed
}

/// Runs the installs of a `Build::Pip` that are not complete yet: each into a fresh sibling
/// folder, renamed to its target when pip succeeds, so that a target that exists is whole.
async fn pip_install(interpreter: &Path, installs: &[PipInstall]) -> Result<(), String> {
    for install in installs {
        if install.target.is_dir() {
            continue;
        }
        let parent = install.target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let partial = partial_beside(&install.target);
        let _ = std::fs::remove_dir_all(&partial);
        let mut cmd = tokio::process::Command::new(interpreter);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(&partial);
        if let Some(platform) = &install.platform {
            cmd.args(["--platform", platform, "--only-binary=:all:"]);
        }
        cmd.args(&install.args);
        let shown = format!("pip install {}", install.args.join(" "));
        let result = output_of(cmd, &shown).await;
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        // Another `up` may have finished the same install meanwhile: theirs is as good.
        if let Err(e) = std::fs::rename(&partial, &install.target) {
            let _ = std::fs::remove_dir_all(&partial);
            if !install.target.is_dir() {
                return Err(format!(
                    "cannot move the install to {}: {e}",
                    install.target.display()
                ));
            }
        }
    }
    Ok(())
}

/// Empties (or makes) a build's artifacts folder, so a build never serves stale files.
fn fresh_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot empty {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Runs `cmd` to its end with no input; returns its standard output, or on failure the end of
/// everything it printed.
///
/// The build runs in a process group of its own, killed with everything in it when the build
/// ends or is dropped (`up` stopped mid-build), or when coldstart dies (see
/// [`coldstart_emulator::GroupGuard`]): a compiler or a `sleep` under the build's shell does
/// not outlive it.
async fn output_of(cmd: tokio::process::Command, shown: &str) -> Result<String, String> {
    output_with(cmd, shown, |_| {}).await
}

/// [`output_of`], with each line of standard output given to `on_line` as it comes.
async fn output_with(
    mut cmd: tokio::process::Command,
    shown: &str,
    mut on_line: impl FnMut(&str),
) -> Result<String, String> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    let _group = child.id().map(coldstart_emulator::GroupGuard::new);
    let failed = |e: std::io::Error| format!("could not run `{shown}`: {e}");
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(format!("could not run `{shown}`: no pipes"));
    };
    // Both pipes drained at once, so that neither fills up and stalls the build.
    let read_stdout = async {
        let mut reader = tokio::io::BufReader::new(stdout);
        let (mut all, mut line) = (String::new(), Vec::new());
        // By bytes: a tool's output need not be UTF-8.
        while reader.read_until(b'\n', &mut line).await? > 0 {
            let text = String::from_utf8_lossy(&line);
            on_line(text.trim_end());
            all.push_str(&text);
            line.clear();
        }
        Ok::<_, std::io::Error>(all)
    };
    let read_stderr = async {
        let mut all = Vec::new();
        stderr.read_to_end(&mut all).await.map(|_| all)
    };
    let (stdout, stderr) = tokio::try_join!(read_stdout, read_stderr).map_err(failed)?;
    let status = child.wait().await.map_err(failed)?;
    if status.success() {
        return Ok(stdout);
    }
    let mut printed = stdout;
    printed.push_str(&String::from_utf8_lossy(&stderr));
    let start = printed.len().saturating_sub(OUTPUT_TAIL);
    let start = (start..printed.len())
        .find(|&i| printed.is_char_boundary(i))
        .unwrap_or(printed.len());
    Err(format!(
        "`{shown}` exited with {}:\n{}",
        status,
        printed[start..].trim_end()
    ))
}

/// The executable a `cargo build --message-format=json` produced: the one named `binary`, else
/// the only one.
fn executable_of(stdout: &str, binary: Option<&str>) -> Result<String, String> {
    let mut found: Vec<(String, String)> = stdout
        .lines()
        .filter_map(linked_executable)
        .map(|l| (l.target, l.executable))
        .collect();
    match binary {
        Some(bin) => found
            .into_iter()
            .find(|(name, _)| name == bin)
            .map(|(_, path)| path)
            .ok_or_else(|| format!("cargo built no binary named {bin}")),
        None if found.len() == 1 => Ok(found.remove(0).1),
        None if found.is_empty() => Err("cargo built no binary".into()),
        None => Err(format!(
            "cargo built {} binaries ({}): name one with Metadata.BuildProperties.Binary",
            found.len(),
            found
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::model::LayerSpec;

    fn command(c: &str) -> Build {
        Build::Command {
            command: c.into(),
            dir: PathBuf::from("/app"),
        }
    }

    #[test]
    fn a_build_shared_by_two_functions_runs_once_and_layers_go_first() {
        let mut stack = Stack::default();
        for (name, build) in [("a", "make x"), ("b", "make y"), ("c", "make x")] {
            let mut f = crate::model::FunctionSpec {
                config: coldstart_emulator::FunctionConfig::new(name, vec!["b".into()]),
                build: Some(command(build)),
                url: None,
                watch: Vec::new(),
                layers: Vec::new(),
            };
            f.config.name = name.into();
            stack.functions.push(f);
        }
        stack.layers.push(LayerSpec {
            name: "L".into(),
            content: PathBuf::from("/app/.coldstart/build/L"),
            build: Some(command("make l")),
        });
        let steps = steps(&stack);
        let names: Vec<Vec<String>> = steps.iter().map(|s| s.names.clone()).collect();
        assert_eq!(
            names,
            vec![
                vec!["L".to_owned()],
                vec!["a".into(), "c".into()],
                vec!["b".into()]
            ]
        );
    }

    #[test]
    fn the_cargo_builds_of_one_workspace_are_one_step_in_its_local_profile() {
        let base = std::env::temp_dir().join(format!("coldstart-ws-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let write = |path: &str, text: &str| {
            let path = base.join(path);
            std::fs::create_dir_all(path.parent().unwrap_or(&base))
                .and_then(|()| std::fs::write(&path, text))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        };
        write(
            "ws/Cargo.toml",
            "[workspace]\nmembers = [\"a\", \"b\"]\n[profile.local]\ninherits = \"release\"\n",
        );
        write("ws/a/Cargo.toml", "[package]\nname = \"pa\"\n");
        write("ws/b/Cargo.toml", "[package]\nname = \"pb\"\n");
        write("solo/Cargo.toml", "[package]\nname = \"solo\"\n");
        let mut stack = Stack::default();
        for (name, dir, binary) in [
            ("A", "ws/a", None),
            ("S", "solo", None),
            ("B", "ws/b", Some("x")),
        ] {
            stack.functions.push(crate::model::FunctionSpec {
                config: coldstart_emulator::FunctionConfig::new(name, vec!["b".into()]),
                build: Some(Build::Cargo {
                    dir: base.join(dir),
                    binary: binary.map(str::to_owned),
                    artifacts: base.join(".coldstart/build").join(name),
                }),
                url: None,
                watch: Vec::new(),
                layers: Vec::new(),
            });
        }
        let steps = steps(&stack);
        let names: Vec<&[String]> = steps.iter().map(|s| s.names.as_slice()).collect();
        assert_eq!(
            names,
            [&["A".to_owned(), "B".to_owned()][..], &["S".to_owned()]]
        );
        let ws = std::fs::canonicalize(base.join("ws")).unwrap_or_default();
        assert!(
            matches!(&steps[0].build, Build::CargoWorkspace { root, builds } if *root == ws && builds.len() == 2),
            "{:?}",
            steps[0].build
        );
        assert_eq!(
            describe(&steps[0].build),
            format!("cargo build --profile local -p pa -p pb ({})", ws.display())
        );
        // A crate of its own, without a `[profile.local]`: its own build, in release.
        assert!(matches!(steps[1].build, Build::Cargo { .. }));
        assert!(describe(&steps[1].build).starts_with("cargo build --release ("));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn picks_the_named_or_only_executable_from_cargos_messages() {
        let out = r#"{"reason":"compiler-artifact","target":{"name":"lib"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"echo"},"executable":"/t/release/echo"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(executable_of(out, None).as_deref(), Ok("/t/release/echo"));
        assert_eq!(
            executable_of(out, Some("echo")).as_deref(),
            Ok("/t/release/echo")
        );
        assert!(executable_of(out, Some("other")).is_err());
        assert!(executable_of("", None).is_err());
    }

    #[test]
    fn only_a_plain_cargo_build_gets_json_messages() {
        assert_eq!(
            cargo_json("cargo build --profile local -p echo -p chat ").as_deref(),
            Some(
                "cargo build --profile local -p echo -p chat --message-format=json-render-diagnostics"
            )
        );
        for other in [
            "make build",
            "cargo test",
            "cargo build && cp target/release/x bootstrap",
            "cargo build --message-format=short",
            "cargo build -p \"a b\"",
        ] {
            assert_eq!(cargo_json(other), None, "{other}");
        }
    }

    #[test]
    fn an_executable_is_known_from_its_artifact_message_only() {
        let bin =
            r#"{"reason":"compiler-artifact","target":{"name":"a"},"executable":"/t/local/a"}"#;
        let lib = r#"{"reason":"compiler-artifact","target":{"name":"l"},"executable":null}"#;
        let done = r#"{"reason":"build-finished","success":true}"#;
        assert_eq!(
            linked_executable(bin).map(|l| (l.target, l.executable)),
            Some(("a".to_owned(), "/t/local/a".to_owned()))
        );
        for other in [lib, done, "   Compiling a v0.1.0", "{not json"] {
            assert_eq!(linked_executable(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn a_failed_build_returns_its_own_output() {
        let dir = std::env::temp_dir();
        let build = Build::Command {
            command: "echo compiling; echo 'error: no such thing' >&2; exit 3".into(),
            dir,
        };
        let err = run(&build).await.err().unwrap_or_default();
        assert!(err.contains("exited with exit status: 3"), "{err}");
        assert!(
            err.contains("compiling") && err.contains("error: no such thing"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn package_json_is_installed_again_only_when_its_lock_changes_and_a_users_modules_stay() {
        let code = std::env::temp_dir().join(format!("coldstart-npm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&code);
        std::fs::create_dir_all(&code).unwrap_or_else(|e| panic!("{e}"));
        // No dependencies: npm needs no registry for it.
        std::fs::write(code.join("package.json"), r#"{"name":"t","private":true}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let modules = code.join("node_modules");
        let stamp = || std::fs::read_to_string(modules.join(NPM_STAMP)).unwrap_or_default();

        assert_eq!(npm_packages(&code, "aaa").await, Ok(()));
        assert_eq!(stamp(), "aaa");
        assert!(
            !code.join(".coldstart").exists(),
            "the staging folder is gone"
        );
        std::fs::write(modules.join("mark"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(npm_packages(&code, "aaa").await, Ok(()));
        assert!(
            modules.join("mark").exists(),
            "the same lock: not installed again"
        );
        assert_eq!(npm_packages(&code, "bbb").await, Ok(()));
        assert_eq!(stamp(), "bbb");
        assert!(
            !modules.join("mark").exists(),
            "another lock: installed afresh"
        );

        std::fs::remove_file(modules.join(NPM_STAMP)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(npm_packages(&code, "ccc").await, Ok(()));
        assert_eq!(
            stamp(),
            "",
            "a node_modules coldstart did not make is left alone"
        );
        let _ = std::fs::remove_dir_all(&code);
    }

    #[tokio::test]
    async fn a_makefile_build_gets_a_fresh_artifacts_dir() {
        let dir = std::env::temp_dir().join(format!("coldstart-mk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.join("Makefile"),
            "build-Fn:\n\ttest ! -e $(ARTIFACTS_DIR)/stale\n\tprintf '#!/bin/sh\\n' > $(ARTIFACTS_DIR)/bootstrap\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let artifacts = dir.join(".coldstart/build/Fn");
        std::fs::create_dir_all(&artifacts).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(artifacts.join("stale"), "old").unwrap_or_else(|e| panic!("{e}"));
        let build = Build::Makefile {
            dir: dir.clone(),
            target: "Fn".into(),
            artifacts: artifacts.clone(),
        };
        let result = run(&build).await;
        assert_eq!(result, Ok(()));
        assert!(artifacts.join("bootstrap").is_file());
        assert!(!artifacts.join("stale").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Layers: each function's layers merged, in order, into one folder that stands for its `/opt`.
//!
//! In Lambda a function's layers are unpacked into `/opt` in the order the function lists them
//! (a later layer's file wins), `/opt/bin` is on `PATH`, `/opt/lib` on `LD_LIBRARY_PATH`, and
//! every file in `/opt/extensions` is started as an external extension. Locally the merge goes to
//! `.coldstart/opt/<function>/` beside the template. Where the platform allows mount namespaces
//! (see [`coldstart_emulator::opt_mount_available`]) that folder is bound read-only at a real
//! `/opt` in each sandbox; elsewhere the environment points at the folder instead. The startup
//! log says which.

use std::path::{Path, PathBuf};

use coldstart_emulator::FunctionConfig;
use coldstart_protocol::extension::MAX_EXTENSIONS;

use crate::error::{Error, Location};
use crate::model::{FunctionSpec, Stack};
use crate::report::Reporter;

/// Merges `function`'s layers into its `/opt` folder and points `config` at it: extensions from
/// `extensions/`, `bin/` first on `PATH`, `lib/` first on `LD_LIBRARY_PATH`.
pub fn attach(
    stack: &Stack,
    function: &FunctionSpec,
    config: &mut FunctionConfig,
    report: &Reporter,
) -> Result<(), Error> {
    let name = &function.config.name;
    let opt = stack.root.join(".coldstart").join("opt").join(name);
    let io = |what: String| move |source| Error::Io { what, source };
    match std::fs::remove_dir_all(&opt) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("cannot empty {}", opt.display()))(e)),
    }
    std::fs::create_dir_all(&opt).map_err(io(format!("cannot create {}", opt.display())))?;
    for layer in &function.layers {
        let Some(spec) = stack.layers.iter().find(|l| &l.name == layer) else {
            return Err(Error::invalid(
                &stack.source,
                Location::path(format!("Resources.{name}.Properties.Layers")),
                format!("no layer named {layer}"),
            ));
        };
        copy_tree(&spec.content, &opt).map_err(io(format!(
            "cannot copy the layer {layer} ({}) into {}",
            spec.content.display(),
            opt.display()
        )))?;
    }

    let mut extensions = files_in(&opt.join("extensions"));
    extensions.sort();
    config.extensions.extend(extensions);
    if config.extensions.len() > MAX_EXTENSIONS {
        return Err(Error::invalid(
            &stack.source,
            Location::path(format!("Resources.{name}.Properties.Layers")),
            format!(
                "the layers bring {} extensions; Lambda starts at most {MAX_EXTENSIONS}",
                config.extensions.len()
            ),
        ));
    }
    // Seen from the sandbox: a real `/opt` when it can be mounted, else the folder itself.
    let mounted = coldstart_emulator::opt_mount_available();
    let seen = if mounted {
        PathBuf::from(coldstart_emulator::OPT)
    } else {
        opt.clone()
    };
    for (key, sub) in [("PATH", "bin"), ("LD_LIBRARY_PATH", "lib")] {
        if opt.join(sub).is_dir() {
            prepend(&mut config.environment, key, &seen.join(sub));
        }
    }
    python_layers(config, &opt, &seen);
    node_layers(config, &opt, &seen);
    config.sandbox_port = config.sandbox_port || crate::config::wants_sandbox_port(config);
    let layers = function.layers.join(", ");
    if mounted {
        config.opt = Some(opt.clone());
        report.say(format!(
            "{name}: layers {layers} mounted read-only at /opt (a mount namespace per sandbox; merged in {})",
            opt.display()
        ));
    } else {
        report.say(format!(
            "{name}: layers {layers} merged into {} (no mount namespaces here, so not at /opt: PATH, LD_LIBRARY_PATH and the extensions point there)",
            opt.display()
        ));
    }
    Ok(())
}

/// A Python function's (one whose `PYTHONPATH` coldstart set, ending with the runtime client):
/// the layers' `python/lib/python3.*/site-packages` and `python/` go after its code and packages
/// and before the runtime client, as in Lambda.
fn python_layers(config: &mut FunctionConfig, opt: &Path, seen: &Path) {
    let python = opt.join("python");
    let Some(path) = config.environment.get_mut(crate::managed::PYTHONPATH) else {
        return;
    };
    if !python.is_dir() {
        return;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(python.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .filter_map(|p| p.strip_prefix(opt).ok().map(|rel| seen.join(rel)))
        .collect();
    dirs.sort();
    dirs.push(seen.join("python"));
    let mut parts: Vec<String> = path.split(':').map(str::to_owned).collect();
    let at = parts.len().saturating_sub(1);
    parts.splice(at..at, dirs.iter().map(|d| d.display().to_string()));
    *path = parts.join(":");
}

/// A Node.js function's (one whose `NODE_PATH` coldstart set): the layers'
/// `nodejs/node<N>/node_modules` (N: its runtime's major) then `nodejs/node_modules` go first,
/// in the order of Lambda's bootstrap for `nodejs<N>.x`.
fn node_layers(config: &mut FunctionConfig, opt: &Path, seen: &Path) {
    let major = config
        .environment
        .get(coldstart_protocol::env::EXECUTION_ENV)
        .and_then(|e| e.strip_prefix("AWS_Lambda_nodejs"))
        .and_then(|v| v.strip_suffix(".x"))
        .map(str::to_owned);
    let (Some(major), Some(path)) = (major, config.environment.get_mut(crate::managed::NODE_PATH))
    else {
        return;
    };
    let dirs: Vec<String> = [
        format!("nodejs/node{major}/node_modules"),
        "nodejs/node_modules".into(),
    ]
    .iter()
    .filter(|rel| opt.join(rel).is_dir())
    .map(|rel| seen.join(rel).display().to_string())
    .collect();
    if !dirs.is_empty() {
        *path = format!("{}:{path}", dirs.join(":"));
    }
}

/// Puts `dir` first on the search path `key` (the function's own value, else the host's).
fn prepend(env: &mut std::collections::BTreeMap<String, String>, key: &str, dir: &Path) {
    let rest = env
        .get(key)
        .cloned()
        .or_else(|| std::env::var(key).ok())
        .filter(|v| !v.is_empty());
    let value = match rest {
        Some(rest) => format!("{}:{rest}", dir.display()),
        None => dir.display().to_string(),
    };
    env.insert(key.to_owned(), value);
}

/// The files (not folders) directly in `dir`; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect()
}

/// Copies `from`'s content into `to`, replacing files of the same name (permissions kept).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            if target.exists() {
                std::fs::remove_file(&target)?;
            }
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LayerSpec;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str, mode: u32) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn later_layers_win_and_extensions_bin_and_lib_are_wired() {
        let root = std::env::temp_dir().join(format!("coldstart-layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(&root.join("one/bin/tool"), "one", 0o755);
        write(&root.join("one/extensions/ext"), "#!/bin/sh\n", 0o755);
        write(&root.join("two/bin/tool"), "two", 0o755);
        write(&root.join("two/lib/libx.so"), "", 0o644);
        let mut stack = Stack {
            root: root.clone(),
            source: root.join("template.yaml"),
            ..Stack::default()
        };
        for name in ["one", "two"] {
            stack.layers.push(LayerSpec {
                name: name.into(),
                content: root.join(name),
                build: None,
            });
        }
        let function = FunctionSpec {
            config: FunctionConfig::new("Fn", vec!["bootstrap".into()]),
            build: None,
            url: None,
            watch: Vec::new(),
            layers: vec!["one".into(), "two".into()],
        };
        let mut config = function.config.clone();
        attach(&stack, &function, &mut config, &Reporter::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let opt = root.join(".coldstart/opt/Fn");
        assert_eq!(
            std::fs::read_to_string(opt.join("bin/tool")).unwrap_or_default(),
            "two"
        );
        assert_eq!(config.extensions, vec![opt.join("extensions/ext")]);
        let seen = if coldstart_emulator::opt_mount_available() {
            assert_eq!(config.opt.as_deref(), Some(opt.as_path()));
            PathBuf::from("/opt")
        } else {
            assert_eq!(config.opt, None);
            opt.clone()
        };
        assert!(
            config.environment["PATH"].starts_with(&format!("{}:", seen.join("bin").display())),
            "{}",
            config.environment["PATH"]
        );
        assert!(
            config.environment["LD_LIBRARY_PATH"]
                .starts_with(&seen.join("lib").display().to_string())
        );
        assert!(
            config.sandbox_port,
            "a function with extensions gets a port per sandbox"
        );

        let missing = FunctionSpec {
            layers: vec!["nope".into()],
            ..function
        };
        let err = attach(&stack, &missing, &mut config, &Reporter::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("Resources.Fn.Properties.Layers") && err.contains("nope"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// `function`'s environment after it is attached with one layer, `deps`, holding `files`
    /// (empty); and how the layer's folder is seen from the sandbox.
    fn with_deps_layer(
        test: &str,
        function: &str,
        files: &[&str],
        env: &[(&str, &str)],
    ) -> (std::collections::BTreeMap<String, String>, PathBuf) {
        let root = std::env::temp_dir().join(format!("coldstart-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in files {
            write(&root.join("deps").join(file), "", 0o644);
        }
        let mut stack = Stack {
            root: root.clone(),
            source: root.join("template.yaml"),
            ..Stack::default()
        };
        stack.layers.push(LayerSpec {
            name: "deps".into(),
            content: root.join("deps"),
            build: None,
        });
        let mut config = FunctionConfig::new(function, vec!["runtime".into()]);
        for (key, value) in env {
            config
                .environment
                .insert((*key).to_owned(), (*value).to_owned());
        }
        let spec = FunctionSpec {
            config: config.clone(),
            build: None,
            url: None,
            watch: Vec::new(),
            layers: vec!["deps".into()],
        };
        attach(&stack, &spec, &mut config, &Reporter::default()).unwrap_or_else(|e| panic!("{e}"));
        let seen = if coldstart_emulator::opt_mount_available() {
            PathBuf::from("/opt")
        } else {
            root.join(".coldstart/opt").join(function)
        };
        let _ = std::fs::remove_dir_all(&root);
        (config.environment, seen)
    }

    #[test]
    fn a_python_functions_layers_come_between_its_packages_and_the_runtime_client() {
        let (env, seen) = with_deps_layer(
            "pylayers",
            "Py",
            &[
                "python/shared.py",
                "python/lib/python3.12/site-packages/pkg.py",
            ],
            &[("PYTHONPATH", "/code:/reqs:/ric")],
        );
        assert_eq!(
            env["PYTHONPATH"],
            format!(
                "/code:/reqs:{}:{}:/ric",
                seen.join("python/lib/python3.12/site-packages").display(),
                seen.join("python").display()
            )
        );
    }

    #[test]
    fn a_node_functions_layers_go_first_on_node_path_versioned_folder_before_the_plain_one() {
        let (env, seen) = with_deps_layer(
            "nodelayers",
            "Js",
            &[
                "nodejs/node_modules/a/index.js",
                "nodejs/node22/node_modules/b/index.js",
                "nodejs/node20/node_modules/c/index.js",
            ],
            &[
                ("NODE_PATH", "/ric/node_modules:/code"),
                ("AWS_EXECUTION_ENV", "AWS_Lambda_nodejs22.x"),
            ],
        );
        // Lambda's nodejs22.x bootstrap: node22's folder, the plain one, the runtime's, the code.
        assert_eq!(
            env["NODE_PATH"],
            format!(
                "{}:{}:/ric/node_modules:/code",
                seen.join("nodejs/node22/node_modules").display(),
                seen.join("nodejs/node_modules").display()
            )
        );
    }
}

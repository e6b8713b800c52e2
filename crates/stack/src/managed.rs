//! Managed runtimes without Docker: a `Runtime: python3.12` or `nodejs20.x` function runs on an
//! interpreter installed on the machine, with AWS's official runtime interface client
//! (`awslambdaric`, `aws-lambda-ric`) prepared once per machine in coldstart's cache folder, and
//! its `requirements.txt` or `package.json` installed once per distinct file.
//!
//! The function's bootstrap is `python3.X -m awslambdaric <Handler>`, run from its code folder
//! with `PYTHONPATH` as in Lambda: the code, then its packages, then layers' `python/`, then the
//! runtime's own packages. The pip installs are the function's [`Build`] (`Build::Pip`, run by
//! [`crate::build`]): `up` runs them with the other builds, `--no-build` skips them, and a
//! complete install is never redone (each goes to a folder of its own, renamed into place when
//! pip succeeds).
//!
//! A Node.js function runs `node <aws-lambda-ric>/bin/index.mjs <Handler>` from its code folder,
//! with `NODE_PATH` as Lambda's bootstrap sets it (see [`node_function`]). Its installs are a
//! `Build::Npm`: the client (whose native addon takes a minute or two to compile, once per
//! machine and Node major, under a lock so that concurrent `up`s build it once), then the
//! function's `package.json` into its own `node_modules` (see [`crate::model::NpmInstall`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::{Build, NpmInstall, PipInstall};

/// The version of `awslambdaric` coldstart prepares (AWS's, from PyPI).
pub const PYTHON_RIC: &str = "awslambdaric==4.2.2";

/// Python versions whose `Runtime` names AWS lists (python3.9 to python3.14).
const PYTHON_MINORS: std::ops::RangeInclusive<u32> = 9..=14;

/// The version of `aws-lambda-ric` coldstart prepares (AWS's, from npm). 3.3.0 is the newest
/// that runs on Node 18 and 20 (4.x needs Node 22).
pub const NODE_RIC: &str = "aws-lambda-ric@3.3.0";

/// Node.js majors whose `Runtime` names AWS lists (nodejs18.x to nodejs24.x).
const NODE_MAJORS: [u32; 4] = [18, 20, 22, 24];

/// The managed runtimes coldstart runs, for messages.
pub const MANAGED_RUNTIMES: &str = "python3.9 to python3.14, nodejs18.x to nodejs24.x";

/// A managed runtime a function names in `Runtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Managed {
    /// `python3.N`: the minor version N.
    Python(u32),
    /// `nodejsN.x`: the major version N.
    Node(u32),
}

impl Managed {
    /// The runtime `name` names, when coldstart runs it without a bootstrap.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(major) = name
            .strip_prefix("nodejs")
            .and_then(|v| v.strip_suffix(".x"))
        {
            let major: u32 = major.parse().ok()?;
            return NODE_MAJORS.contains(&major).then_some(Self::Node(major));
        }
        let minor: u32 = name.strip_prefix("python3.")?.parse().ok()?;
        PYTHON_MINORS
            .contains(&minor)
            .then_some(Self::Python(minor))
    }

    /// Its `Runtime` name: `python3.12`, `nodejs20.x`.
    pub fn name(&self) -> String {
        match self {
            Self::Python(minor) => format!("python3.{minor}"),
            Self::Node(major) => format!("nodejs{major}.x"),
        }
    }

    /// What its `Handler` looks like, for messages.
    pub fn handler_shape(&self) -> &'static str {
        match self {
            Self::Python(_) => "module.function",
            Self::Node(_) => "file.function",
        }
    }
}

/// A function's instruction set, as `Architectures` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `x86_64`.
    X86_64,
    /// `arm64`.
    Arm64,
}

impl Arch {
    /// The `Architectures` entry `name` (`x86_64`, `arm64`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "x86_64" => Some(Self::X86_64),
            "arm64" => Some(Self::Arm64),
            _ => None,
        }
    }

    /// This machine's, when it is one Lambda has.
    pub fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::X86_64),
            "aarch64" => Some(Self::Arm64),
            _ => None,
        }
    }

    /// Its `Architectures` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The manylinux platform tag pip installs its wheels for.
    fn wheel_platform(self) -> &'static str {
        match self {
            Self::X86_64 => "manylinux2014_x86_64",
            Self::Arm64 => "manylinux2014_aarch64",
        }
    }
}

/// What a managed function runs: its bootstrap's argv, the variables the runtime sets
/// (`PYTHONPATH` or `NODE_PATH`, `AWS_EXECUTION_ENV`), and the installs that prepare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFunction {
    pub argv: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub build: Build,
}

/// The function of `runtime` with code in `code` and `handler`, on this machine: its program,
/// with the lines to show (a stand-in version, a foreign architecture's wheels); `Err(line)` when
/// it cannot run here (no interpreter, or no tools to build the runtime client), for the caller
/// to leave it out and serve the rest.
pub fn managed_function(
    runtime: &Managed,
    code: &Path,
    handler: &str,
    arch: Option<Arch>,
) -> Result<(ManagedFunction, Vec<String>), String> {
    let mut notices = Vec::new();
    let execution_env = (
        coldstart_protocol::env::EXECUTION_ENV.to_owned(),
        format!("AWS_Lambda_{}", runtime.name()),
    );
    match runtime {
        Managed::Python(minor) => {
            let (interpreter, stand_in) = python_for(*minor)?;
            notices.extend(stand_in);
            let mut f = python_function(&interpreter, code, handler);
            if let (Some(arch), Some(host)) = (arch, Arch::host())
                && arch != host
                && let Build::Pip { installs, .. } = &mut f.build
                && let Some(requirements) = installs.get_mut(1)
            {
                requirements.platform = Some(arch.wheel_platform().to_owned());
                let target = requirements.target.with_extension(arch.name());
                if let Some(p) = f
                    .search_path
                    .iter_mut()
                    .find(|p| **p == requirements.target)
                {
                    p.clone_from(&target);
                }
                requirements.target = target;
                notices.push(format!(
                    "Architectures {} differs from this machine's ({}): requirements.txt is installed with pip --platform {} --only-binary=:all:, as sam build does; packages with native code will not import here",
                    arch.name(),
                    host.name(),
                    arch.wheel_platform()
                ));
            }
            let environment = vec![(PYTHONPATH.to_owned(), f.search_path_var()), execution_env];
            Ok((
                ManagedFunction {
                    argv: f.argv,
                    environment,
                    build: f.build,
                },
                notices,
            ))
        }
        Managed::Node(major) => {
            let (node, stand_in) = node_for(*major)?;
            notices.extend(stand_in);
            let f = node_function(&node, code, handler);
            if !f.client_ready() {
                let missing = missing_tools(ADDON_TOOLS);
                if !missing.is_empty() {
                    return Err(format!(
                        "{} needs {NODE_RIC}, whose native addon is built once per machine, and building it needs {} (Debian: apt-get install cmake autoconf automake libtool g++ make), missing here",
                        runtime.name(),
                        missing.join(", ")
                    ));
                }
            }
            let environment = vec![(NODE_PATH.to_owned(), f.search_path_var()), execution_env];
            Ok((
                ManagedFunction {
                    argv: f.argv,
                    environment,
                    build: f.build,
                },
                notices,
            ))
        }
    }
}

/// An interpreter found on the machine for a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// What to run: `python3.12`, or `python3` when only another version is installed.
    pub program: PathBuf,
    /// Its minor version.
    pub minor: u32,
}

/// The variable a Python function's search path goes in.
pub const PYTHONPATH: &str = "PYTHONPATH";

/// The interpreter for `python3.{minor}`, and the line to show when another version stands in
/// for it; `Err(line)` when no Python 3 runs here.
pub fn python_for(minor: u32) -> Result<(Interpreter, Option<String>), String> {
    let interpreter = find_python(minor).ok_or_else(|| {
        format!(
            "python3.{minor} needs Python 3 (python3.{minor} or python3 on PATH) and none runs here"
        )
    })?;
    let stand_in = (interpreter.minor != minor).then(|| {
        stand_in_line(
            &format!("python3.{minor}"),
            &interpreter.program,
            &format!("Python 3.{}", interpreter.minor),
            "the nearest installed",
        )
    });
    Ok((interpreter, stand_in))
}

/// The line that says `runtime` runs on another version: `program` (`version`).
fn stand_in_line(runtime: &str, program: &Path, version: &str, which: &str) -> String {
    format!(
        "{runtime} is not installed here; it runs on {} ({version}), {which}",
        program.display()
    )
}

/// The interpreter for `python3.{minor}`: `python3.{minor}` itself, else `python3` (whatever its
/// version: the caller warns when it differs). `None` when neither runs.
pub fn find_python(minor: u32) -> Option<Interpreter> {
    [format!("python3.{minor}"), "python3".to_owned()]
        .into_iter()
        .find_map(|program| {
            let minor = python_minor(&program)?;
            Some(Interpreter {
                program: PathBuf::from(program),
                minor,
            })
        })
}

/// The minor version `program --version` reports (`Python 3.11.7` → 11).
fn python_minor(program: &str) -> Option<u32> {
    let output = Command::new(program).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let version = text.trim().strip_prefix("Python 3.")?;
    version.split('.').next()?.parse().ok()
}

/// coldstart's cache folder: `$COLDSTART_CACHE`, else `$XDG_CACHE_HOME/coldstart`, else
/// `~/.cache/coldstart`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COLDSTART_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("coldstart")
}

/// What a function on a runtime client runs and needs: its bootstrap's argv, the entries of
/// its module search path (`PYTHONPATH`, `NODE_PATH`), and the installs that prepare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFunction {
    pub argv: Vec<String>,
    pub search_path: Vec<PathBuf>,
    pub build: Build,
}

impl ClientFunction {
    /// Its search path, as the variable's value.
    pub fn search_path_var(&self) -> String {
        let paths: Vec<String> = self
            .search_path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        paths.join(":")
    }

    /// Whether its runtime client is prepared already (its build has nothing to compile).
    pub fn client_ready(&self) -> bool {
        match &self.build {
            Build::Npm { installs } => installs.iter().all(|i| match i {
                NpmInstall::Client { target, .. } => target.is_dir(),
                NpmInstall::Packages { .. } => true,
            }),
            _ => true,
        }
    }
}

/// A Python function with code in `code` and `handler` (`module.function`), on `interpreter`.
/// `requirements.txt` beside the code is installed into a cache folder named by its content's
/// hash (so an unchanged file is installed once). Layers' `python/` folders go in before the
/// runtime client when the stack starts (they are merged then).
pub fn python_function(interpreter: &Interpreter, code: &Path, handler: &str) -> ClientFunction {
    let tag = format!("python3.{}", interpreter.minor);
    let runtimes = cache_dir().join("runtimes").join(&tag);
    let ric = runtimes.join(PYTHON_RIC.replace("==", "-"));
    let mut installs = vec![PipInstall {
        args: vec![PYTHON_RIC.to_owned()],
        target: ric.clone(),
        platform: None,
    }];
    let mut python_path = vec![code.to_path_buf()];
    let requirements = code.join("requirements.txt");
    if let Ok(content) = std::fs::read(&requirements) {
        let target = runtimes
            .join("requirements")
            .join(format!("{:016x}", fnv1a(&content)));
        installs.push(PipInstall {
            args: vec!["-r".into(), requirements.to_string_lossy().into_owned()],
            target: target.clone(),
            platform: None,
        });
        python_path.push(target);
    }
    python_path.push(ric);
    ClientFunction {
        argv: vec![
            interpreter.program.to_string_lossy().into_owned(),
            "-m".into(),
            "awslambdaric".into(),
            handler.to_owned(),
        ],
        search_path: python_path,
        build: Build::Pip {
            interpreter: interpreter.program.clone(),
            installs,
        },
    }
}

/// The variable a Node.js function's search path goes in.
pub const NODE_PATH: &str = "NODE_PATH";

/// The programs `aws-lambda-ric`'s install runs to build its native addon (curl and
/// aws-lambda-cpp from source, then the addon with node-gyp).
const ADDON_TOOLS: &[&str] = &[
    "npm",
    "cmake",
    "autoconf",
    "automake",
    "libtoolize",
    "g++",
    "make",
];

/// The programs of `tools` that are not on `PATH`.
fn missing_tools(tools: &[&'static str]) -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    tools
        .iter()
        .copied()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .collect()
}

/// The `node` found on the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What to run.
    pub program: PathBuf,
    /// Its major version.
    pub major: u32,
}

/// The `node` for `nodejs{major}.x`, and the line to show when its version differs; `Err(line)`
/// when no `node` runs here.
pub fn node_for(major: u32) -> Result<(Node, Option<String>), String> {
    let node = node_major("node")
        .map(|found| Node {
            program: PathBuf::from("node"),
            major: found,
        })
        .ok_or_else(|| {
            format!("nodejs{major}.x needs Node.js (node on PATH) and none runs here")
        })?;
    let stand_in = (node.major != major).then(|| {
        stand_in_line(
            &format!("nodejs{major}.x"),
            &node.program,
            &format!("Node.js {}", node.major),
            "the one installed",
        )
    });
    Ok((node, stand_in))
}

/// The major version `program --version` reports (`v20.11.1` → 20).
fn node_major(program: &str) -> Option<u32> {
    let output = Command::new(program).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// A Node.js function with code in `code` and `handler` (`file.function`, the file `.js`, `.mjs`
/// or `.cjs`), on `node`.
///
/// `NODE_PATH` is Lambda's bootstrap's: the layers' `nodejs/node<N>/node_modules` and
/// `nodejs/node_modules` (put in front when the stack starts, see [`crate::layers`]), the
/// runtime's `node_modules`, then the code folder. The code's own `node_modules` comes before all
/// of them by Node's resolution from the handler's folder, as on AWS (and ES modules, which
/// ignore `NODE_PATH`, find it the same way): `package.json` is installed there.
pub fn node_function(node: &Node, code: &Path, handler: &str) -> ClientFunction {
    let client = cache_dir()
        .join("runtimes")
        .join(format!("node{}", node.major))
        .join(NODE_RIC.replace('@', "-"));
    let modules = client.join("node_modules");
    let mut installs = vec![NpmInstall::Client {
        package: NODE_RIC.to_owned(),
        target: client.clone(),
    }];
    let lock = ["package-lock.json", "package.json"]
        .into_iter()
        .find_map(|name| std::fs::read(code.join(name)).ok());
    if let Some(content) = lock {
        installs.push(NpmInstall::Packages {
            code: code.to_path_buf(),
            hash: format!("{:016x}", fnv1a(&content)),
        });
    }
    ClientFunction {
        argv: vec![
            node.program.to_string_lossy().into_owned(),
            modules
                .join("aws-lambda-ric/bin/index.mjs")
                .to_string_lossy()
                .into_owned(),
            handler.to_owned(),
        ],
        search_path: vec![modules, code.to_path_buf()],
        build: Build::Npm { installs },
    }
}

/// FNV-1a, 64 bits: names a requirements file's install folder by its content.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_runtimes_aws_lists_are_managed_and_others_are_not() {
        assert_eq!(Managed::parse("python3.12"), Some(Managed::Python(12)));
        assert_eq!(Managed::parse("python3.9"), Some(Managed::Python(9)));
        assert_eq!(Managed::parse("python3.8"), None, "deprecated by AWS");
        assert_eq!(Managed::parse("python2.7"), None);
        assert_eq!(Managed::parse("provided.al2023"), None);
        assert_eq!(Managed::parse("python3.x"), None);
        assert_eq!(Managed::parse("nodejs20.x"), Some(Managed::Node(20)));
        assert_eq!(Managed::parse("nodejs18.x"), Some(Managed::Node(18)));
        assert_eq!(Managed::parse("nodejs24.x"), Some(Managed::Node(24)));
        assert_eq!(Managed::parse("nodejs16.x"), None, "deprecated by AWS");
        assert_eq!(Managed::parse("nodejs21.x"), None, "never a Lambda runtime");
        assert_eq!(Managed::parse("nodejs20"), None);
        assert_eq!(Managed::Node(22).name(), "nodejs22.x");
    }

    #[test]
    fn a_node_functions_path_is_lambdas_runtime_modules_then_code_and_its_lock_names_its_install() {
        let code = std::env::temp_dir().join(format!("managed-node-{}", std::process::id()));
        std::fs::create_dir_all(&code).unwrap_or_else(|e| panic!("{e}"));
        let node = Node {
            program: PathBuf::from("node"),
            major: 20,
        };
        let bare = node_function(&node, &code, "index.handler");
        let ric = cache_dir().join("runtimes/node20/aws-lambda-ric-3.3.0");
        assert_eq!(
            bare.argv,
            [
                "node".to_owned(),
                ric.join("node_modules/aws-lambda-ric/bin/index.mjs")
                    .display()
                    .to_string(),
                "index.handler".to_owned()
            ]
        );
        assert_eq!(
            bare.search_path_var(),
            format!("{}:{}", ric.join("node_modules").display(), code.display())
        );
        assert_eq!(
            bare.build,
            Build::Npm {
                installs: vec![NpmInstall::Client {
                    package: NODE_RIC.into(),
                    target: ric.clone()
                }]
            },
            "no package.json: only the runtime client"
        );

        std::fs::write(
            code.join("package.json"),
            r#"{"dependencies":{"ms":"2.1.3"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let unlocked = node_function(&node, &code, "index.handler");
        std::fs::write(code.join("package-lock.json"), r#"{"lockfileVersion":3}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let locked = node_function(&node, &code, "index.handler");
        let hash = |f: &ClientFunction| match &f.build {
            Build::Npm { installs } => match installs.get(1) {
                Some(NpmInstall::Packages { code: c, hash }) if *c == code => hash.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_ne!(
            hash(&unlocked),
            hash(&locked),
            "the lock file, when there is one"
        );
        assert_eq!(hash(&locked), hash(&node_function(&node, &code, "x.y")));
        let _ = std::fs::remove_dir_all(&code);
    }

    #[test]
    fn another_node_version_stands_in_with_a_line_naming_both() {
        let Some(installed) = node_major("node") else {
            return; // No Node.js here: nothing to stand in.
        };
        let other = if installed == 22 { 20 } else { 22 };
        let (node, line) = node_for(other).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(node.major, installed);
        let line = line.unwrap_or_default();
        assert!(
            line.contains(&format!("nodejs{other}.x is not installed"))
                && line.contains(&format!("Node.js {installed}")),
            "{line}"
        );
        assert_eq!(node_for(installed).map(|(_, line)| line), Ok(None));
    }

    #[test]
    fn a_python_function_of_another_architecture_gets_that_architectures_wheels() {
        let code = std::env::temp_dir().join(format!("managed-arch-{}", std::process::id()));
        std::fs::create_dir_all(&code).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(code.join("requirements.txt"), "six==1.16.0\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let (Some(host), Ok(_)) = (Arch::host(), python_for(12)) else {
            return; // No Python, or a machine Lambda has no architecture for.
        };
        let other = if host == Arch::X86_64 {
            Arch::Arm64
        } else {
            Arch::X86_64
        };
        let (same, lines) =
            managed_function(&Managed::Python(12), &code, "app.handler", Some(host))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            lines.iter().all(|l| !l.contains("Architectures")),
            "{lines:?}"
        );
        let (foreign, lines) =
            managed_function(&Managed::Python(12), &code, "app.handler", Some(other))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("--platform {}", other.wheel_platform()))),
            "{lines:?}"
        );
        let requirements = |f: &ManagedFunction| match &f.build {
            Build::Pip { installs, .. } => installs[1].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(requirements(&same).platform, None);
        assert_eq!(
            requirements(&foreign).platform.as_deref(),
            Some(other.wheel_platform())
        );
        assert_ne!(requirements(&same).target, requirements(&foreign).target);
        let path = |f: &ManagedFunction| {
            f.environment
                .iter()
                .find(|(k, _)| k == PYTHONPATH)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert!(
            path(&foreign).contains(&requirements(&foreign).target.display().to_string()),
            "the path names the install it gets"
        );
        assert!(
            foreign
                .environment
                .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.12".into()))
        );
        let _ = std::fs::remove_dir_all(&code);
    }

    #[test]
    fn a_python_functions_path_puts_code_then_packages_then_the_runtime_client() {
        let code = std::env::temp_dir().join(format!("managed-test-{}", std::process::id()));
        std::fs::create_dir_all(&code).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(code.join("requirements.txt"), "six==1.16.0\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let interpreter = Interpreter {
            program: PathBuf::from("python3"),
            minor: 11,
        };
        let f = python_function(&interpreter, &code, "app.handler");
        assert_eq!(f.argv, ["python3", "-m", "awslambdaric", "app.handler"]);
        assert_eq!(f.search_path[0], code);
        assert!(f.search_path[1].starts_with(cache_dir().join("runtimes/python3.11/requirements")));
        assert!(f.search_path[2].ends_with("awslambdaric-4.2.2"));
        // The same file, the same folder: installed once.
        let again = python_function(&interpreter, &code, "app.handler");
        assert_eq!(again.search_path[1], f.search_path[1]);
        let _ = std::fs::remove_dir_all(&code);
    }
}

//! Managed runtimes without Docker: a `Runtime: python3.12` function runs on an interpreter
//! installed on the machine, with AWS's official runtime interface client (`awslambdaric`)
//! prepared once per machine in coldstart's cache folder, and its `requirements.txt` installed
//! once per distinct file.
//!
//! The function's bootstrap is `python3.X -m awslambdaric <Handler>`, run from its code folder
//! with `PYTHONPATH` as in Lambda: the code, then its packages, then layers' `python/`, then the
//! runtime's own packages. The pip installs are the function's [`Build`] (`Build::Pip`, run by
//! [`crate::build`]): `up` runs them with the other builds, `--no-build` skips them, and a
//! complete install is never redone (each goes to a folder of its own, renamed into place when
//! pip succeeds).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::{Build, PipInstall};

/// The version of `awslambdaric` coldstart prepares (AWS's, from PyPI).
pub const PYTHON_RIC: &str = "awslambdaric==4.2.2";

/// Python versions whose `Runtime` names AWS lists (python3.9 to python3.14).
const PYTHON_MINORS: std::ops::RangeInclusive<u32> = 9..=14;

/// A managed runtime a function names in `Runtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Managed {
    /// `python3.N`: the minor version N.
    Python(u32),
}

impl Managed {
    /// The runtime `name` names, when coldstart runs it without a bootstrap.
    pub fn parse(name: &str) -> Option<Self> {
        let minor: u32 = name.strip_prefix("python3.")?.parse().ok()?;
        PYTHON_MINORS
            .contains(&minor)
            .then_some(Self::Python(minor))
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
        format!(
            "python3.{minor} is not installed here; it runs on {} (Python 3.{}), the nearest installed",
            interpreter.program.display(),
            interpreter.minor
        )
    });
    Ok((interpreter, stand_in))
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

/// What a Python function runs and needs: its bootstrap's argv, its `PYTHONPATH` entries, and
/// the installs that prepare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonFunction {
    pub argv: Vec<String>,
    pub python_path: Vec<PathBuf>,
    pub build: Build,
}

impl PythonFunction {
    /// Its `PYTHONPATH` value.
    pub fn python_path_var(&self) -> String {
        let paths: Vec<String> = self
            .python_path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        paths.join(":")
    }
}

/// A Python function with code in `code` and `handler` (`module.function`), on `interpreter`.
/// `requirements.txt` beside the code is installed into a cache folder named by its content's
/// hash (so an unchanged file is installed once). Layers' `python/` folders go in before the
/// runtime client when the stack starts (they are merged then).
pub fn python_function(interpreter: &Interpreter, code: &Path, handler: &str) -> PythonFunction {
    let tag = format!("python3.{}", interpreter.minor);
    let runtimes = cache_dir().join("runtimes").join(&tag);
    let ric = runtimes.join(PYTHON_RIC.replace("==", "-"));
    let mut installs = vec![PipInstall {
        args: vec![PYTHON_RIC.to_owned()],
        target: ric.clone(),
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
        });
        python_path.push(target);
    }
    python_path.push(ric);
    PythonFunction {
        argv: vec![
            interpreter.program.to_string_lossy().into_owned(),
            "-m".into(),
            "awslambdaric".into(),
            handler.to_owned(),
        ],
        python_path,
        build: Build::Pip {
            interpreter: interpreter.program.clone(),
            installs,
        },
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
        assert_eq!(f.python_path[0], code);
        assert!(f.python_path[1].starts_with(cache_dir().join("runtimes/python3.11/requirements")));
        assert!(f.python_path[2].ends_with("awslambdaric-4.2.2"));
        // The same file, the same folder: installed once.
        let again = python_function(&interpreter, &code, "app.handler");
        assert_eq!(again.python_path[1], f.python_path[1]);
        let _ = std::fs::remove_dir_all(&code);
    }
}

//! What the adapter bench runs: the release binaries it needs, and the `coldstart.toml` it
//! writes in a temporary folder for `coldstart up`.
//!
//! Three functions, each with `concurrency = 1` (one sandbox) and a Function URL on port 0: the
//! web app behind coldstart-adapter with a BUFFERED URL, the same with a RESPONSE_STREAM URL, and
//! the plain Rust echo function, which splits the adapter path's cost into the emulator's share
//! and the adapter's.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The web app behind the adapter, buffered (`AWS_LWA_INVOKE_MODE=buffered`, a BUFFERED URL).
pub const WEB: &str = "web";
/// The web app behind the adapter, streamed (`AWS_LWA_INVOKE_MODE=response_stream`, a
/// RESPONSE_STREAM URL).
pub const WEB_STREAM: &str = "web-stream";
/// The plain Rust echo function (coldstart-runtime), with a BUFFERED URL.
pub const ECHO: &str = "echo";
/// The web app's readiness path (as in the repository's `coldstart.toml`).
const READINESS_PATH: &str = "/health";

/// The release binaries, next to this executable (`target/release`), canonical so that they
/// compare equal to `/proc/PID/exe`.
#[derive(Debug)]
pub struct Binaries {
    pub coldstart: PathBuf,
    /// examples/web: the axum app.
    pub web: PathBuf,
    pub adapter: PathBuf,
    /// The plain Rust echo function.
    pub echo: PathBuf,
}

impl Binaries {
    pub fn find() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating bench-adapter")?;
        let dir = exe.parent().context("bench-adapter has no folder")?;
        let binary = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            if !path.is_file() {
                bail!(
                    "{} is missing; build it with `cargo build --release -p coldstart -p web \
                     -p coldstart-adapter -p echo --bins` (or run bench/adapter.sh)",
                    path.display()
                );
            }
            path.canonicalize()
                .with_context(|| format!("resolving {}", path.display()))
        };
        Ok(Self {
            coldstart: binary("coldstart")?,
            web: binary("web")?,
            adapter: binary("coldstart-adapter")?,
            echo: binary("echo")?,
        })
    }
}

/// A folder under the system's temporary folder holding one `coldstart.toml`; removed on drop.
#[derive(Debug)]
pub struct ConfigDir {
    dir: PathBuf,
    /// The `coldstart.toml` in it.
    pub config: PathBuf,
}

impl ConfigDir {
    /// Writes the config of the three functions. Every path is absolute and there is no `build`
    /// key: `up` builds nothing and runs from any folder.
    pub fn write(bins: &Binaries) -> anyhow::Result<Self> {
        let toml = config_toml(bins)?;
        let dir = Self::folder();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Owned from here, so an error below still removes the folder.
        let made = Self {
            config: dir.join("coldstart.toml"),
            dir,
        };
        std::fs::write(&made.config, toml)
            .with_context(|| format!("writing {}", made.config.display()))?;
        Ok(made)
    }
}

impl ConfigDir {
    /// This process's folder: `bench-adapter-PID` under the temporary folder.
    pub fn folder() -> PathBuf {
        std::env::temp_dir().join(format!("bench-adapter-{}", std::process::id()))
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The config's text.
fn config_toml(bins: &Binaries) -> anyhow::Result<String> {
    let web = toml_string(utf8(&bins.web)?);
    let adapter = toml_string(utf8(&bins.adapter)?);
    let echo = toml_string(utf8(&bins.echo)?);
    let web_function = |name: &str, lwa_mode: &str, url_mode: &str| {
        format!(
            "[functions.{name}]\n\
             bootstrap = {web}\n\
             extensions = [{adapter}]\n\
             concurrency = 1\n\
             environment = {{ AWS_LWA_INVOKE_MODE = \"{lwa_mode}\", \
             AWS_LWA_READINESS_CHECK_PATH = \"{READINESS_PATH}\" }}\n\
             url = {{ port = 0, invoke_mode = \"{url_mode}\" }}\n"
        )
    };
    Ok(format!(
        "{}\n{}\n[functions.{ECHO}]\nbootstrap = {echo}\nconcurrency = 1\n\
         url = {{ port = 0, invoke_mode = \"BUFFERED\" }}\n",
        web_function(WEB, "buffered", "BUFFERED"),
        web_function(WEB_STREAM, "response_stream", "RESPONSE_STREAM"),
    ))
}

fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_serves_three_functions_from_absolute_paths() {
        let bins = Binaries {
            coldstart: "/t/coldstart".into(),
            web: "/t/web".into(),
            adapter: "/t/coldstart-adapter".into(),
            echo: "/t/echo".into(),
        };
        let toml = config_toml(&bins).expect("UTF-8 paths");
        assert_eq!(
            toml,
            "[functions.web]\n\
             bootstrap = \"/t/web\"\n\
             extensions = [\"/t/coldstart-adapter\"]\n\
             concurrency = 1\n\
             environment = { AWS_LWA_INVOKE_MODE = \"buffered\", \
             AWS_LWA_READINESS_CHECK_PATH = \"/health\" }\n\
             url = { port = 0, invoke_mode = \"BUFFERED\" }\n\
             \n\
             [functions.web-stream]\n\
             bootstrap = \"/t/web\"\n\
             extensions = [\"/t/coldstart-adapter\"]\n\
             concurrency = 1\n\
             environment = { AWS_LWA_INVOKE_MODE = \"response_stream\", \
             AWS_LWA_READINESS_CHECK_PATH = \"/health\" }\n\
             url = { port = 0, invoke_mode = \"RESPONSE_STREAM\" }\n\
             \n\
             [functions.echo]\n\
             bootstrap = \"/t/echo\"\n\
             concurrency = 1\n\
             url = { port = 0, invoke_mode = \"BUFFERED\" }\n"
        );
    }
}

//! What the adapter bench runs: the release binaries it needs, and the `coldstart.toml` it
//! writes in a temporary folder for `coldstart up`.
//!
//! Three functions, each with `concurrency = 1` (one sandbox) and a Function URL on port 0: the
//! web app behind coldstart-adapter with a BUFFERED URL, the same with a RESPONSE_STREAM URL, and
//! the plain Rust echo function, which splits the adapter path's cost into the emulator's share
//! and the adapter's.

use std::path::PathBuf;

use crate::process::Release;
use crate::up::{ConfigDir, temp_folder, toml_string, utf8};

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
    /// Finds them in the folder of this executable.
    pub fn find() -> anyhow::Result<Self> {
        let release = Release::find(
            "`cargo build --release -p coldstart -p web -p coldstart-adapter -p echo --bins` (or \
             run bench/adapter.sh)",
        )?;
        Ok(Self {
            coldstart: release.binary("coldstart")?,
            web: release.binary("web")?,
            adapter: release.binary("coldstart-adapter")?,
            echo: release.binary("echo")?,
        })
    }
}

/// Writes the config of the three functions in [`folder`]. Every path is absolute and there is no
/// `build` key: `up` builds nothing and runs from any folder.
pub fn write_config(bins: &Binaries) -> anyhow::Result<ConfigDir> {
    let toml = config_toml(bins)?;
    let dir = ConfigDir::create(folder())?;
    dir.write(&toml)?;
    Ok(dir)
}

/// This process's config folder: `bench-adapter-PID` under the temporary folder (named, so that
/// the interrupt guard can remove it).
pub fn folder() -> PathBuf {
    temp_folder("bench-adapter")
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
        let web = "[functions.web]\n\
                   bootstrap = \"/t/web\"\n\
                   extensions = [\"/t/coldstart-adapter\"]\n\
                   concurrency = 1\n\
                   environment = { AWS_LWA_INVOKE_MODE = \"buffered\", \
                   AWS_LWA_READINESS_CHECK_PATH = \"/health\" }\n\
                   url = { port = 0, invoke_mode = \"BUFFERED\" }\n";
        // The streamed web function differs from the buffered one in its name and modes only.
        let web_stream = web
            .replace("web]", "web-stream]")
            .replace("buffered", "response_stream")
            .replace("BUFFERED", "RESPONSE_STREAM");
        let echo = "[functions.echo]\n\
                    bootstrap = \"/t/echo\"\n\
                    concurrency = 1\n\
                    url = { port = 0, invoke_mode = \"BUFFERED\" }\n";
        assert_eq!(toml, format!("{web}\n{web_stream}\n{echo}"));
    }
}

//! Which file describes the stack: `--config`, `--template`, or what is in the folder.
//!
//! The contract (design.md): with neither flag, `coldstart.toml` in the folder, else
//! `template.yaml`, `template.yml`, `template.json`.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::model::Stack;
use crate::template::{self, TemplateOptions};

/// The files looked for, in order, when none is named.
pub const LOOKED_FOR: [&str; 4] = [
    "coldstart.toml",
    "template.yaml",
    "template.yml",
    "template.json",
];

/// A stack's file and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A `coldstart.toml`.
    Config(PathBuf),
    /// A SAM/CloudFormation template.
    Template(PathBuf),
}

impl Source {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Config(p) | Self::Template(p) => p,
        }
    }

    /// The first of [`LOOKED_FOR`] in `dir`.
    pub fn find(dir: &Path) -> Result<Self, Error> {
        for name in LOOKED_FOR {
            // `template.yaml`, not `./template.yaml`, in messages about the current folder.
            let path = if dir == Path::new(".") {
                PathBuf::from(name)
            } else {
                dir.join(name)
            };
            if path.is_file() {
                return Ok(if name == "coldstart.toml" {
                    Self::Config(path)
                } else {
                    Self::Template(path)
                });
            }
        }
        Err(Error::NotFound(format!(
            "no stack to serve in {}: looked for {}; name one with --config FILE or --template FILE",
            dir.display(),
            LOOKED_FOR.join(", ")
        )))
    }

    /// Reads the stack.
    pub fn load(&self, options: &TemplateOptions) -> Result<Stack, Error> {
        match self {
            Self::Config(path) => {
                let mut stack = crate::config::load(path)?;
                // `--port-base 0` means free ports for a configuration's fixed ones too.
                if options.port_base == 0 {
                    stack.free_every_port();
                }
                Ok(stack)
            }
            Self::Template(path) => template::load(path, options),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_wins_over_a_template_and_yaml_over_json() {
        let dir = std::env::temp_dir().join(format!("coldstart-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let err = Source::find(&dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("coldstart.toml, template.yaml, template.yml, template.json"),
            "{err}"
        );
        std::fs::write(dir.join("template.json"), "{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Source::find(&dir).ok(),
            Some(Source::Template(dir.join("template.json")))
        );
        std::fs::write(dir.join("template.yaml"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Source::find(&dir).ok(),
            Some(Source::Template(dir.join("template.yaml")))
        );
        std::fs::write(dir.join("coldstart.toml"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Source::find(&dir).ok(),
            Some(Source::Config(dir.join("coldstart.toml")))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn port_base_zero_frees_a_configurations_fixed_ports() {
        let dir = std::env::temp_dir().join(format!("coldstart-ports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("coldstart.toml");
        std::fs::write(
            &path,
            "[functions.items]\nbootstrap = \"b\"\nurl = { port = 9101 }\n\
             [http_apis.api]\nport = 9100\nroutes = { \"GET /items\" = \"items\" }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let source = Source::Config(path);
        let load = |port_base| {
            source
                .load(&TemplateOptions {
                    port_base,
                    ..TemplateOptions::default()
                })
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let fixed: Vec<u16> = load(3000).ports().iter().map(|(p, _)| *p).collect();
        assert_eq!(fixed, [9101, 9100]);
        assert!(load(0).ports().is_empty(), "every port free");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

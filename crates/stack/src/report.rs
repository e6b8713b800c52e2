//! Progress a person watches (builds, reloads, layers, tables): the library says it through a
//! [`Reporter`]; the CLI prints it as `coldstart: …` lines, tests and other hosts choose.

use std::sync::Arc;

/// Where progress lines go. Cheap to clone.
#[derive(Clone)]
pub struct Reporter(Arc<dyn Fn(&str) + Send + Sync>);

impl Reporter {
    /// Lines go to `f`.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Lines become `tracing` events at info level (the default).
    pub fn tracing() -> Self {
        Self::new(|line| tracing::info!(target: "coldstart", "{line}"))
    }

    /// Says one line.
    pub fn say(&self, line: impl AsRef<str>) {
        (self.0)(line.as_ref());
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Self::tracing()
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

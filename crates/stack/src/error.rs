//! What can go wrong reading, building and starting a stack.
//!
//! [`Error::Invalid`] is a mistake in the user's file (the CLI exits 2): it always names the file
//! and where in it — a line and column, or a template's logical id and property path. The other
//! variants happen while building or serving (exit 1).

use std::fmt;
use std::path::PathBuf;

/// Where in a stack's file a mistake is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The whole file (it cannot be read, or nothing more precise is known).
    File,
    /// A line and column, both 1-based.
    Span {
        /// The line.
        line: usize,
        /// The column.
        column: usize,
    },
    /// A path of keys: `Resources.EchoFunction.Properties.Timeout`, `Parameters.Stage`.
    Path(String),
}

impl Location {
    /// A path location.
    pub fn path(path: impl Into<String>) -> Self {
        Self::Path(path.into())
    }
}

/// An error reading, building or starting a stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A mistake in the stack's file.
    #[error("{}{}: {message}", file.display(), Located(location))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where in it.
        location: Location,
        /// What is wrong, in lowercase, naming the key where it helps.
        message: String,
    },
    /// No stack file where one was looked for.
    #[error("{0}")]
    NotFound(String),
    /// A function's or layer's build failed.
    #[error("the build of {name} failed: {reason}")]
    Build {
        /// The function or layer.
        name: String,
        /// Why (the build's own output was printed).
        reason: String,
    },
    /// A listener could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The emulator refused the stack's functions.
    #[error(transparent)]
    Emulator(#[from] coldstart_emulator::Error),
    /// A DynamoDB table could not be created on the endpoint.
    #[error("could not create the table {table} on {endpoint}: {reason}")]
    Table {
        /// The table's name.
        table: String,
        /// The DynamoDB endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// Another I/O failure (preparing `.coldstart/`, copying a layer).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file where queued `Event` invocations are kept across a stop cannot be read or
    /// written.
    #[error("the queued Event invocations in {} cannot be read or written", path.display())]
    AsyncStore {
        /// The file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An SQS queue could not be created on the endpoint.
    #[error("could not create the queue {queue} on {endpoint}: {reason}")]
    Queue {
        /// The queue's name.
        queue: String,
        /// The SQS endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A schedule could not be fired.
    #[error("schedule {name}: {reason}")]
    Schedule {
        /// The schedule.
        name: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// A mistake in `file` at `location`.
    pub fn invalid(
        file: impl Into<PathBuf>,
        location: Location,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            file: file.into(),
            location,
            message: message.into(),
        }
    }

    /// Whether this is a mistake in the user's input (the CLI exits 2) rather than a failure
    /// while building or serving (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Invalid { .. } | Self::NotFound(_))
    }
}

/// Renders a location after the file name: `:3:11`, `: Resources.X.Properties.Y`, or nothing.
struct Located<'a>(&'a Location);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Location::File => Ok(()),
            Location::Span { line, column } => write!(f, ":{line}:{column}"),
            Location::Path(path) => write!(f, ": {path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_file_and_where() {
        let span = Error::invalid(
            "coldstart.toml",
            Location::Span {
                line: 3,
                column: 11,
            },
            "bad",
        );
        assert_eq!(span.to_string(), "coldstart.toml:3:11: bad");
        let path = Error::invalid(
            "template.yaml",
            Location::path("Resources.Echo.Properties.Timeout"),
            "must be 1 to 900",
        );
        assert_eq!(
            path.to_string(),
            "template.yaml: Resources.Echo.Properties.Timeout: must be 1 to 900"
        );
        assert!(path.is_usage());
    }
}

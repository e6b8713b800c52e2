//! What every results table shares: its header (title, machine, mode), the binary-size section,
//! the formatting of its cells, and printing the table and writing it to its results file.
//!
//! The tables are plain text with a stable layout, committed under `bench/results/` and compared
//! in diffs: what they share is written here once, so that they stay alike.

use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use http::StatusCode;

use crate::client::Latency;
use crate::stats::micros;

/// Where and with what the figures were measured.
#[derive(Debug)]
pub struct Machine {
    date: String,
    nproc: String,
    cpu: String,
    rustc: String,
}

impl Machine {
    /// Reads the date, CPU count and model, and the `rustc` on `PATH` (the one that built us when
    /// run through the bench's script).
    pub fn detect() -> Self {
        Self {
            date: first_line(&["date", "-u", "+%Y-%m-%d %H:%M:%S UTC"]),
            nproc: std::thread::available_parallelism()
                .map_or_else(|_| "unknown".into(), |n| n.to_string()),
            cpu: cpu_model(),
            rustc: first_line(&["rustc", "--version"]),
        }
    }

    /// The first lines of a table: `title`, underlined; where it ran; the mode (`quick` or full);
    /// then the bench's own `rows`, `KEY      value`, where a key of `""` continues the row
    /// before.
    pub fn header(
        &self,
        f: &mut fmt::Formatter<'_>,
        title: &str,
        quick: bool,
        rows: &[(&str, String)],
    ) -> fmt::Result {
        writeln!(f, "{title}")?;
        writeln!(f, "{}", "=".repeat(title.len()))?;
        let mode = if quick {
            "--quick (every count cut by 10x: a smoke test, not a result)"
        } else {
            "full"
        };
        let machine = [
            ("date", self.date.as_str()),
            ("nproc", &self.nproc),
            ("cpu", &self.cpu),
            ("rustc", &self.rustc),
            ("mode", mode),
        ];
        let rows = rows.iter().map(|(key, value)| (*key, value.as_str()));
        for (key, value) in machine.into_iter().chain(rows) {
            writeln!(f, "{key:<8} {value}")?;
        }
        Ok(())
    }
}

/// The size of one binary on disk: a row of [`sizes`].
#[derive(Debug)]
pub struct Size {
    pub label: String,
    pub bytes: u64,
}

impl Size {
    /// Reads the size of the file at `path`.
    pub fn of(label: impl Into<String>, path: &Path) -> anyhow::Result<Self> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            label: label.into(),
            bytes: meta.len(),
        })
    }
}

/// The binary-size section: bytes and MiB of each binary, after labels `width` wide.
pub fn sizes(f: &mut fmt::Formatter<'_>, width: usize, sizes: &[Size]) -> fmt::Result {
    writeln!(f)?;
    writeln!(f, "Binary size (release profile)")?;
    writeln!(f, "{:<width$} {:>10} {:>8}", "", "bytes", "MiB")?;
    for size in sizes {
        writeln!(
            f,
            "{:<width$} {:>10} {:>8.2}",
            size.label,
            size.bytes,
            mib(size.bytes)
        )?;
    }
    Ok(())
}

/// A table of sequential latencies (us), rows labelled in a column `width` wide: p50, p99 and mean
/// of the measured requests, p50 of each block's first request, the answers other than 200, and a
/// column of the bench's own, titled `last`, whose cell each row brings.
pub fn latencies<'a>(
    f: &mut fmt::Formatter<'_>,
    width: usize,
    last: &str,
    rows: impl IntoIterator<Item = (&'a Latency, String)>,
) -> fmt::Result {
    writeln!(
        f,
        "{:<width$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "", "p50", "p99", "mean", "1st p50", "non-200", last
    )?;
    for (row, cell) in rows {
        let s = &row.summary;
        writeln!(
            f,
            "{:<width$} {:>8} {:>8} {:>8} {:>8} {:>8} {cell:>10}",
            row.label,
            micros(s.p50),
            micros(s.p99),
            micros(s.mean),
            micros(row.firsts.p50),
            failures(row.failures, row.failure_status),
        )?;
    }
    Ok(())
}

/// The last section, `Notes (WHAT)`, one line per note; nothing when there are none.
pub fn notes(f: &mut fmt::Formatter<'_>, what: &str, notes: &[String]) -> fmt::Result {
    if notes.is_empty() {
        return Ok(());
    }
    writeln!(f)?;
    writeln!(f, "Notes ({what})")?;
    for note in notes {
        writeln!(f, "  {note}")?;
    }
    Ok(())
}

/// Prints `results` on stdout and writes the same text to `path`, creating its folder if need be.
pub fn publish(results: &impl fmt::Display, path: &Path) -> anyhow::Result<()> {
    let table = results.to_string();
    print!("{table}");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, table).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("written to {}", path.display());
    Ok(())
}

/// `3 (502)`: a count of unwanted answers with the status of the last one, when there were any.
pub fn failures(count: usize, status: Option<StatusCode>) -> String {
    match status {
        Some(status) if count > 0 => format!("{count} ({})", status.as_u16()),
        _ => count.to_string(),
    }
}

/// Bytes in MB (10^6 bytes).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// How a figure compares with its target.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The first line a command prints, or `unknown`.
pub fn first_line(argv: &[&str]) -> String {
    let Some((program, args)) = argv.split_first() else {
        return "unknown".into();
    };
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The `model name` of the first CPU in `/proc/cpuinfo`.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.strip_prefix("model name"))
        .find_map(|rest| rest.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use http::StatusCode;

    use super::{Machine, Size, failures, sizes};

    /// Formats what `write` writes.
    struct Written<F>(F);

    impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Written<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (self.0)(f)
        }
    }

    #[test]
    fn the_header_underlines_the_title() {
        let machine = Machine {
            date: "2026-11-21 07:00:00 UTC".into(),
            nproc: "2".into(),
            cpu: "a CPU".into(),
            rustc: "rustc 1.95.0".into(),
        };
        let rows = [("peer", "none".to_owned()), ("", "at all".to_owned())];
        let header =
            Written(|f: &mut fmt::Formatter<'_>| machine.header(f, "a bench", true, &rows));
        assert_eq!(
            header.to_string(),
            "a bench\n=======\ndate     2026-11-21 07:00:00 UTC\nnproc    2\ncpu      a CPU\n\
             rustc    rustc 1.95.0\n\
             mode     --quick (every count cut by 10x: a smoke test, not a result)\n\
             peer     none\n         at all\n"
        );
    }

    #[test]
    fn sizes_are_in_bytes_and_mib() {
        let rows = [Size {
            label: "echo".into(),
            bytes: 3 << 20,
        }];
        let section = Written(|f: &mut fmt::Formatter<'_>| sizes(f, 6, &rows));
        assert_eq!(
            section.to_string(),
            "\nBinary size (release profile)\n            bytes      MiB\necho      3145728     3.00\n"
        );
    }

    #[test]
    fn failures_show_the_last_status() {
        assert_eq!(failures(0, Some(StatusCode::BAD_GATEWAY)), "0");
        assert_eq!(failures(3, Some(StatusCode::BAD_GATEWAY)), "3 (502)");
        assert_eq!(failures(3, None), "3");
    }
}

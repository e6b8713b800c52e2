//! The one results format: a header (scenario, date, `nproc`, CPU, `rustc`, mode, the scenario's
//! setup), then tables of one shape (a title, lines about how it was measured, labelled rows
//! of right-aligned cells, lines of ratios and goals after), then notes. Written to
//! `bench/results/SCENARIO.txt`, or to `bench/results/quick/` (not committed) with `--quick`, so
//! a smoke test never overwrites a result.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use http::StatusCode;

use crate::core::http::Latency;
use crate::core::stats::{Summary, micros, millis};

/// Width of the row labels.
const LABEL: usize = 44;
/// Narrowest column.
const CELL: usize = 8;

/// One table of a report.
#[derive(Debug, Default)]
pub struct Table {
    pub title: String,
    /// How it was measured, under the title.
    pub about: Vec<String>,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
    /// Ratios and goals, under the rows.
    pub after: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// Adds a line under the title.
    pub fn about(mut self, line: impl Into<String>) -> Self {
        self.about.push(line.into());
        self
    }

    pub fn row(&mut self, label: impl Into<String>, cells: Vec<String>) {
        self.rows.push((label.into(), cells));
    }

    /// Adds a line under the rows.
    pub fn line(&mut self, line: impl Into<String>) {
        self.after.push(line.into());
    }

    /// One row per label of `median` and `p90` in ms, of that column of `runs` (each run's
    /// figures in the labels' order); returns the medians.
    pub fn median_rows<const N: usize>(
        &mut self,
        labels: [&str; N],
        runs: &[[Duration; N]],
    ) -> anyhow::Result<[Duration; N]> {
        let mut medians = [Duration::ZERO; N];
        for (i, label) in labels.into_iter().enumerate() {
            let s = Summary::of(runs.iter().map(|run| run[i]).collect()).context("no runs")?;
            self.row(label, vec![millis(s.p50), millis(s.p90)]);
            medians[i] = s.p50;
        }
        Ok(medians)
    }

    /// Adds `what  FIGURE  goal GOAL: met|MISSED` under the rows.
    pub fn goal(&mut self, what: &str, figure: String, goal: &str, met: bool) {
        self.after.push(format!(
            "{what:<50} {figure:>9}  goal {goal}: {}",
            verdict(met)
        ));
    }

    /// The latency table (us) of sequential requests: p50, p99, mean, the p50 of each block's
    /// first request, non-200s, mismatches, and p50 over the floor's when there is one.
    pub fn latency(title: impl Into<String>, rows: &[&Latency], floor: Option<&Latency>) -> Self {
        let mut columns = vec!["p50", "p99", "mean", "1st p50", "non-200", "mismatches"];
        if floor.is_some() {
            columns.push("x floor");
        }
        let mut table = Self::new(title, &columns);
        for row in rows {
            let s = &row.summary;
            let mut cells = vec![
                micros(s.p50),
                micros(s.p99),
                micros(s.mean),
                if row.firsts.count > 0 {
                    micros(row.firsts.p50)
                } else {
                    "-".into()
                },
                failures(row.failures, row.failure_status),
                row.mismatches.to_string(),
            ];
            if let Some(floor) = floor {
                cells.push(format!("{:.2}x", ratio(s.p50, floor.summary.p50)));
            }
            table.row(row.label.clone(), cells);
        }
        table
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n{}", self.title)?;
        for line in &self.about {
            writeln!(f, "  {line}")?;
        }
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                let cells = self
                    .rows
                    .iter()
                    .filter_map(|(_, c)| c.get(i))
                    .map(|c| c.len());
                cells
                    .chain([self.columns[i].len(), CELL])
                    .max()
                    .unwrap_or(CELL)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, label: &str, cells: &[String]| {
            write!(f, "{label:<LABEL$}")?;
            for (cell, width) in cells.iter().zip(&widths) {
                write!(f, " {cell:>width$}")?;
            }
            writeln!(f)
        };
        if !self.columns.is_empty() {
            line(f, "", &self.columns)?;
        }
        for (label, cells) in &self.rows {
            line(f, label, cells)?;
        }
        for line in &self.after {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What one scenario measured, in the one format.
#[derive(Debug)]
pub struct Report {
    /// The scenario, which names the file.
    pub scenario: &'static str,
    pub quick: bool,
    /// `KEY value` rows after the machine's: the peers, the setup.
    pub setup: Vec<(&'static str, String)>,
    pub tables: Vec<Table>,
    /// What the servers printed (warnings, errors), why connections broke.
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str, quick: bool) -> Self {
        Self {
            scenario,
            quick,
            setup: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds `lines` to the notes, each after `what: `.
    pub fn note(&mut self, what: &str, lines: impl IntoIterator<Item = String>) {
        self.notes
            .extend(lines.into_iter().map(|l| format!("{what}: {l}")));
    }

    /// Where it goes: `bench/results/SCENARIO.txt`, or `bench/results/quick/` with `--quick`.
    pub fn path(&self) -> PathBuf {
        let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let dir = if self.quick {
            results.join("quick")
        } else {
            results
        };
        dir.join(format!("{}.txt", self.scenario))
    }

    /// Prints it with the machine's header and writes it to [`Report::path`].
    pub fn publish(&self) -> anyhow::Result<()> {
        let text = format!(
            "{}{self}",
            Machine::detect().header(self.scenario, self.quick)
        );
        print!("{text}");
        let path = self.path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("written to {}", path.display());
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.setup {
            for (n, line) in value.lines().enumerate() {
                writeln!(f, "{:<8} {line}", if n == 0 { key } else { &"" })?;
            }
        }
        for table in &self.tables {
            write!(f, "{table}")?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nNotes")?;
            for note in &self.notes {
                writeln!(f, "  {note}")?;
            }
        }
        Ok(())
    }
}

/// Where and with what the figures were measured.
#[derive(Debug)]
pub struct Machine {
    pub date: String,
    pub nproc: String,
    pub cpu: String,
    pub rustc: String,
}

impl Machine {
    pub fn detect() -> Self {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = info
            .lines()
            .filter_map(|line| line.strip_prefix("model name"))
            .find_map(|rest| Some(rest.split_once(':')?.1.trim().to_owned()));
        Self {
            date: first_line(&["date", "-u", "+%Y-%m-%d %H:%M:%S UTC"]),
            nproc: std::thread::available_parallelism().map_or("unknown".into(), |n| n.to_string()),
            cpu: cpu.unwrap_or_else(|| "unknown".into()),
            rustc: first_line(&["rustc", "--version"]),
        }
    }

    /// The header every results file starts with.
    pub fn header(&self, scenario: &str, quick: bool) -> String {
        let title = format!("coldstart bench: {scenario}");
        let mode = if quick {
            "--quick (counts cut: a smoke test, not a result)"
        } else {
            "full"
        };
        format!(
            "{title}\n{}\ndate     {}\nnproc    {}\ncpu      {}\nrustc    {}\nmode     {mode}\n",
            "=".repeat(title.len()),
            self.date,
            self.nproc,
            self.cpu,
            self.rustc
        )
    }
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
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `3 (502)`: a count of unwanted answers with the last status, when there were any.
pub fn failures(count: usize, status: Option<StatusCode>) -> String {
    match status {
        Some(status) if count > 0 => format!("{count} ({})", status.as_u16()),
        _ => count.to_string(),
    }
}

/// How a figure compares with its goal.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// `ours / theirs`.
pub fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64().max(1e-12)
}

/// Bytes in MB (10^6 bytes).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The binary-size table: bytes and MiB of each `(label, path)`.
pub fn sizes(files: &[(&str, &Path)]) -> anyhow::Result<Table> {
    let mut table = Table::new("Binary size (release profile)", &["bytes", "MiB"]);
    for (label, path) in files {
        let bytes = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let mib = bytes as f64 / (1024.0 * 1024.0);
        table.row(*label, vec![bytes.to_string(), format!("{mib:.2}")]);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_the_same_shape() {
        let mut table = Table::new("Title (us)", &["p50", "non-200"]).about("how");
        table.row(
            "a row",
            vec!["12.5".into(), failures(3, Some(StatusCode::BAD_GATEWAY))],
        );
        table.goal("p50", "12.5".into(), "<= 20", true);
        let text = table.to_string();
        let label = format!("{:<LABEL$}", "a row");
        assert_eq!(
            text,
            format!(
                "\nTitle (us)\n  how\n{:<LABEL$}      p50  non-200\n{label}     12.5  3 (502)\n  \
                 {:<50}      12.5  goal <= 20: met\n",
                "", "p50"
            )
        );
    }

    #[test]
    fn a_header_names_the_scenario_and_the_machine() {
        let machine = Machine {
            date: "d".into(),
            nproc: "2".into(),
            cpu: "c".into(),
            rustc: "r".into(),
        };
        assert_eq!(
            machine.header("url", false),
            "coldstart bench: url\n====================\ndate     d\nnproc    2\ncpu      c\n\
             rustc    r\nmode     full\n"
        );
        let report = Report::new("url", true);
        assert!(report.path().ends_with("bench/results/quick/url.txt"));
    }
}

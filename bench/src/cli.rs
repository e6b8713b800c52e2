//! The command line every bench takes, and how its `main` ends: `--quick`, `-h`/`--help`, and
//! `--peer DIR` for a bench whose peer is installed in a folder; the table is printed and written
//! to its results file; an error is printed with its whole chain after the program's name, and
//! ends the bench with exit code 1.
//!
//! One definition, so that the three benches agree on their flags, their usage text, their
//! results files and their exit codes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::table;

/// What `--quick` does, in the help text.
const QUICK_HELP: &str = "cut every count by 10x (a smoke test)";

/// One bench's command line, and where its table goes.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// The program, in the usage line and before an error.
    name: &'static str,
    /// The results file's name, in `bench/results/`.
    results: &'static str,
    /// What `--peer DIR` does, in the help text, for a bench that takes it; `None`: it does not.
    peer: Option<&'static str>,
}

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `--quick`: every count cut by 10x, a smoke test rather than a result.
    pub quick: bool,
    /// `--peer DIR`: where the optional peer is installed.
    pub peer: Option<PathBuf>,
}

impl Command {
    /// The bench `name`, which writes its table to `bench/results/RESULTS`.
    pub const fn new(name: &'static str, results: &'static str) -> Self {
        Self {
            name,
            results,
            peer: None,
        }
    }

    /// The same bench, taking `--peer DIR` too, which does what `help` says.
    pub const fn with_peer(self, help: &'static str) -> Self {
        Self {
            peer: Some(help),
            ..self
        }
    }

    /// The program's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where the table is written: `bench/results/RESULTS`.
    pub fn results(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(self.results)
    }

    /// The bench's `main`: parses this process's arguments and runs `run` with them, then prints
    /// the table it returns and writes it to [`Command::results`] ([`table::publish`]); or prints
    /// the help when asked for it. An error (a bad argument, a failed run, an unwritable file) is
    /// printed on stderr, `NAME: ` and the whole chain, and makes the exit code 1.
    pub fn main<R: fmt::Display>(&self, run: impl FnOnce(Args) -> anyhow::Result<R>) -> ExitCode {
        let result = match self.parse(std::env::args().skip(1)) {
            Ok(Some(args)) => {
                run(args).and_then(|results| table::publish(&results, &self.results()))
            }
            Ok(None) => {
                println!("{}", self.help());
                Ok(())
            }
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{}: {err:#}", self.name);
                ExitCode::FAILURE
            }
        }
    }

    /// Reads `args` (without the program); `None` when they ask for the help. An unknown argument
    /// is an error that ends with the usage line.
    pub fn parse(&self, args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => parsed.quick = true,
                "--peer" if self.peer.is_some() => {
                    parsed.peer = Some(args.next().context("--peer needs a folder")?.into());
                }
                "-h" | "--help" => return Ok(None),
                other => bail!("unknown argument `{other}`\n{}", self.usage()),
            }
        }
        Ok(Some(parsed))
    }

    /// `usage: NAME [--quick] [--peer DIR]`.
    pub fn usage(&self) -> String {
        let flags: String = self
            .options()
            .iter()
            .map(|(flag, _)| format!(" [{flag}]"))
            .collect();
        format!("usage: {}{flags}", self.name)
    }

    /// The usage line, then one line per option with what it does.
    pub fn help(&self) -> String {
        let options = self.options();
        let width = options
            .iter()
            .map(|(flag, _)| flag.len())
            .max()
            .unwrap_or(0);
        let mut help = self.usage();
        for (flag, what) in options {
            help.push_str(&format!("\n  {flag:<width$}  {what}"));
        }
        help
    }

    /// Every option, with what it does.
    fn options(&self) -> Vec<(&'static str, &'static str)> {
        let mut options = vec![("--quick", QUICK_HELP)];
        if let Some(peer) = self.peer {
            options.push(("--peer DIR", peer));
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, Command};

    const PLAIN: Command = Command::new("bench-plain", "plain.txt");
    const WITH_PEER: Command =
        Command::new("bench-peer", "peer.txt").with_peer("also measure the peer in DIR");

    fn parse(command: Command, args: &[&str]) -> anyhow::Result<Option<Args>> {
        command.parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn the_help_aligns_every_option() {
        assert_eq!(
            PLAIN.help(),
            "usage: bench-plain [--quick]\n  --quick  cut every count by 10x (a smoke test)"
        );
        assert_eq!(
            WITH_PEER.help(),
            "usage: bench-peer [--quick] [--peer DIR]\n  \
             --quick     cut every count by 10x (a smoke test)\n  \
             --peer DIR  also measure the peer in DIR"
        );
    }

    #[test]
    fn arguments_are_read_in_order() {
        let quick = Args {
            quick: true,
            peer: None,
        };
        assert_eq!(parse(PLAIN, &[]).ok().flatten(), Some(Args::default()));
        assert_eq!(parse(PLAIN, &["--quick"]).ok().flatten(), Some(quick));
        assert_eq!(
            parse(WITH_PEER, &["--peer", "dir", "--quick"])
                .ok()
                .flatten(),
            Some(Args {
                quick: true,
                peer: Some("dir".into())
            })
        );
        // The help wins over what follows it, not over what comes before it.
        assert!(matches!(parse(PLAIN, &["-h", "--bogus"]), Ok(None)));
        assert!(parse(PLAIN, &["--bogus", "--help"]).is_err());
    }

    #[test]
    fn results_go_to_the_results_folder() {
        assert!(PLAIN.results().ends_with("bench/results/plain.txt"));
    }

    #[test]
    fn wrong_arguments_say_why() {
        let error =
            |command: Command, args: &[&str]| parse(command, args).err().map(|e| e.to_string());
        assert_eq!(
            error(PLAIN, &["--peer", "dir"]).as_deref(),
            Some("unknown argument `--peer`\nusage: bench-plain [--quick]")
        );
        assert_eq!(
            error(WITH_PEER, &["--peer"]).as_deref(),
            Some("--peer needs a folder")
        );
    }
}

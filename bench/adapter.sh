#!/usr/bin/env bash
# The adapter benchmark in one command, from anywhere in the repository:
#
#   bench/adapter.sh            # the full run (under a minute after the build; keep the machine quiet)
#   bench/adapter.sh --quick    # every count cut by 10x: a smoke test
#
# Builds the release binaries it needs (coldstart, the web example, coldstart-adapter, the echo
# function and the bench), then runs bench-adapter, which prints the table and writes it to
# bench/results/adapter.txt. Every process it starts is killed by process group when it ends, also
# on an error or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Only the binaries this bench runs: `--bins` would also build the other benches.
cargo build --release -p coldstart -p web -p coldstart-adapter -p echo -p coldstart-bench \
    --bin coldstart --bin web --bin coldstart-adapter --bin echo --bin bench-adapter

exec target/release/bench-adapter "$@"

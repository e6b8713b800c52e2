#!/usr/bin/env bash
# The template benchmark in one command, from anywhere in the repository:
#
#   bench/template.sh            # reading a 1,000-resource template, and `up --no-build` on the chat
#   bench/template.sh --quick    # fewer runs: a smoke test
#
# Builds the release binaries, then runs bench-template, which writes bench/results/template.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p coldstart -p coldstart-bench --bin coldstart --bin bench-template
target/release/bench-template "$@"

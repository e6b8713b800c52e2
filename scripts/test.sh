#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit, end-to-end and doc tests.
# Everything runs on loopback; no Docker, no network beyond crates.io for the first build.
set -euo pipefail
cd "$(dirname "$0")/.."

# The bash runtime example and the shell fixtures need curl.
if ! command -v curl >/dev/null 2>&1; then
  echo "installing curl (needed by the shell runtimes under test)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq curl; else sudo apt-get install -y -qq curl; fi
fi

# The SAM templates beside the examples must stay deployable: cfn-lint (with the SAM translator)
# checks them.
if ! command -v cfn-lint >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check cfn-lint
fi
cfn-lint examples/*/template.yaml

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Servers the tests start themselves (dynalite for the chat store tests).
scripts/test-tools.sh

cargo test --workspace --locked

# A user's crate outside the workspace, depending on coldstart-test by path.
scripts/test-outside-crate.sh

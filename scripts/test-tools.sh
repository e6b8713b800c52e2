#!/usr/bin/env bash
# Installs the servers the tests start themselves: headless Chromium and chromedriver (the
# dashboard's browser tests), and dynalite, a local DynamoDB-compatible server for
# the chat example's store tests (tools/dynamodb, versions pinned by its package-lock.json).
# Idempotent: a second run with the same lock file does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium and its WebDriver for the dashboard's browser tests (crates/dashboard).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver for the dashboard's browser tests"
  sudo_=""
  if [ "$(id -u)" != 0 ]; then sudo_=sudo; fi
  $sudo_ apt-get install -y --no-install-recommends chromium chromium-driver
fi

dir=tools/dynamodb
stamp=$dir/node_modules/.coldstart-lock   # copy of the lock file the installed tree came from

if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is needed to install dynalite (tools/dynamodb) for the chat store tests; install Node.js 20 or later" >&2
    exit 1
  fi
done

echo "installing dynalite into $dir/node_modules"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
cp "$dir/package-lock.json" "$stamp"

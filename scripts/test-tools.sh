#!/usr/bin/env bash
# Installs the servers the tests start themselves: dynalite, a local DynamoDB-compatible server for
# the chat example's store tests (tools/dynamodb, versions pinned by its package-lock.json).
# Idempotent: a second run with the same lock file does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

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

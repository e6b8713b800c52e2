#!/usr/bin/env bash
# A user's crate outside the workspace (made from crates/test/outside/) depends on coldstart-test
# by path, serves its own function and an example's template in its tests, and a test that
# panics with a stack running leaves no process behind.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$repo/crates/test/outside/." "$work/"
sed "s#@REPO@#$repo#g" "$work/Cargo.toml.in" >"$work/Cargo.toml"
rm "$work/Cargo.toml.in"
# The workspace's lock: the same versions, so the workspace's build is reused.
cp "$repo/Cargo.lock" "$work/Cargo.lock"
export COLDSTART_REPO="$repo" OUTSIDE_PIDS="$work/pids"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" \
  cargo test --offline --manifest-path "$work/Cargo.toml"

if [ ! -s "$OUTSIDE_PIDS" ]; then
  echo "the panicking test recorded no sandbox pid" >&2
  exit 1
fi
for pid in $(cat "$OUTSIDE_PIDS"); do
  # A zombie waiting for init to reap it is gone too.
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  if [ -n "$state" ] && [ "$state" != Z ]; then
    echo "sandbox $pid outlived the test that panicked" >&2
    exit 1
  fi
done
echo "outside crate: tests passed, no process left behind"

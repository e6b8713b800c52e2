#!/usr/bin/env bash
# The WebSocket benchmark in one command, from anywhere in the repository:
#
#   bench/websocket.sh               # the full run (a minute or two; keep the machine quiet)
#   bench/websocket.sh --quick       # every count cut by 10x: a smoke test
#   bench/websocket.sh --with-peer   # also serverless-offline (installs it with `npm ci` first)
#
# Builds the release binaries (coldstart, the chat example's chat and broadcast, the bench), raises
# the open files limit as far as the hard limit allows (10,000 connections need 10,000 sockets on
# each side), then runs bench-websocket, which writes bench/results/websocket.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
peer_dir=bench/peers/serverless-offline

args=()
with_peer=false
for arg in "$@"; do
    case $arg in
        --with-peer) with_peer=true ;;
        *) args+=("$arg") ;;
    esac
done

cargo build --release -p coldstart -p chat -p coldstart-bench --bins

# The soft limit up to the hard one; the bench and the coldstart it starts inherit it.
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt 10500 ]]; then
    echo "note: ulimit -n is $(ulimit -n): fewer than the 10,000 connections may open" >&2
fi

if $with_peer; then
    # The peer never fails the bench: without Node.js or its packages, the table says skipped.
    # Without Node.js or its packages, the bench finds no serverless.js and says so.
    if ! command -v npm >/dev/null; then
        echo "peer: npm is not installed; serverless-offline will be skipped" >&2
    elif ! (cd "$peer_dir" && npm ci --no-audit --no-fund --loglevel=error); then
        echo "peer: npm ci failed in $peer_dir; serverless-offline will be skipped" >&2
        rm -rf "$peer_dir/node_modules"
    fi
    args+=(--peer "$peer_dir")
fi

exec target/release/bench-websocket "${args[@]}"

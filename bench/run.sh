#!/usr/bin/env bash
# The benchmarks in one command, from anywhere in the repository:
#
#   bench/run.sh                      # every scenario, full counts (minutes; keep the machine quiet)
#   bench/run.sh --quick              # every scenario, counts cut: a smoke test (bench/results/quick/)
#   bench/run.sh [--quick] url up     # some scenarios: invoke url up stream adapter websocket template harness managed dashboard concurrent sqs
#   bench/run.sh --with-peer websocket   # first installs serverless-offline (npm ci) for the peer rows
#
# Builds every release binary the scenarios run, once, then runs coldstart-bench (in
# ${CARGO_TARGET_DIR:-target}/release) for each scenario. Peers are measured where installed
# (cargo-lambda, serverless-offline, boto3): a missing one is a `skipped` line, never a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=()
scenarios=()
with_peer=false
for arg in "$@"; do
    case $arg in
        --quick) quick=(--quick) ;;
        --with-peer) with_peer=true ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) scenarios+=("$arg") ;;
    esac
done
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(all)

cargo build --release --locked -p coldstart -p coldstart-bench -p coldstart-testkit -p coldstart-adapter \
    -p echo -p web -p chat --bin coldstart --bin coldstart-bench --bin fx-lr-echo --bin fx-stream --bin fx-telemetry \
    --bin coldstart-adapter --bin echo --bin echo-concurrent --bin web --bin chat --bin broadcast

if ! python3 -c 'import boto3' 2>/dev/null; then
    python3 -m pip install --quiet boto3 || echo "boto3 could not be installed: its rows will be skipped" >&2
fi
if $with_peer; then
    (cd bench/peers/serverless-offline && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "npm ci failed: serverless-offline will be skipped" >&2
fi
# 10,000 WebSocket connections need 10,000 sockets on each side: the soft limit up to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bench="${CARGO_TARGET_DIR:-target}/release/coldstart-bench"
status=0
for scenario in "${scenarios[@]}"; do
    "$bench" "${quick[@]}" "$scenario" || status=1
done
exit $status

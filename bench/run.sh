#!/usr/bin/env bash
# The invoke benchmark in one command, from anywhere in the repository:
#
#   bench/run.sh            # the full run (a few minutes; keep the machine quiet)
#   bench/run.sh --quick    # every count cut by 10x: a smoke test
#
# Builds the release binaries, runs coldstart-bench (which writes bench/results/invoke.txt), then
# serves target/release/echo with `coldstart run` and appends the boto3 figures to the same file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
results=bench/results/invoke.txt
# How long `coldstart run` may take to print its banner, in tenths of a second.
ready_tenths=100

cargo build --release -p coldstart -p echo -p coldstart-testkit -p coldstart-bench --bins

if ! python3 -c 'import boto3' 2>/dev/null; then
    python3 -m pip install --quiet boto3
fi

target/release/coldstart-bench "$@"

# boto3 against a coldstart of our own; cleaned up however the script ends.
banner=$(mktemp)
coldstart_pid=
cleanup() {
    if [[ -n $coldstart_pid ]]; then
        # SIGTERM: coldstart stops its sandboxes (their own process groups) before exiting.
        kill "$coldstart_pid" 2>/dev/null || true
        wait "$coldstart_pid" 2>/dev/null || true
    fi
    rm -f "$banner"
}
trap cleanup EXIT

COLDSTART_LOG=warn target/release/coldstart run --listen 127.0.0.1:0 -- target/release/echo \
    </dev/null >/dev/null 2>"$banner" &
coldstart_pid=$!

addr=
for ((i = 0; i < ready_tenths; i++)); do
    addr=$(sed -n 's|^coldstart: serving .* at http://\([0-9.]*:[0-9]*\)/.*|\1|p' "$banner")
    [[ -n $addr ]] && break
    if ! kill -0 "$coldstart_pid" 2>/dev/null; then
        echo "coldstart run exited before serving:" >&2
        cat "$banner" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $addr ]]; then
    echo "coldstart run printed no banner within $((ready_tenths / 10)) s:" >&2
    cat "$banner" >&2
    exit 1
fi

python3 bench/boto3_invoke.py "http://$addr" | tee -a "$results"

if [[ -s $banner ]] && grep -v '^coldstart: serving ' "$banner" >&2; then
    echo "(the lines above are what coldstart printed on stderr during the boto3 run)" >&2
fi

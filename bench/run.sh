#!/usr/bin/env bash
# The invoke benchmark in one command, from anywhere in the repository:
#
#   bench/run.sh            # the full run (a few minutes; keep the machine quiet)
#   bench/run.sh --quick    # every count cut by 10x: a smoke test
#
# Builds the release binaries, runs coldstart-bench (which writes bench/results/invoke.txt), then
# serves target/release/echo with `coldstart run` and, when `cargo lambda` is installed, the test
# kit's fx-lr-echo with `cargo lambda watch`, and appends the boto3 figures of both to the same file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
results=bench/results/invoke.txt
# How long `coldstart run` may take to print its banner, in tenths of a second.
ready_tenths=100
# How long `cargo lambda watch` may take to answer its first invoke (it compiles first), in seconds.
peer_ready_seconds=120
# How long `cargo lambda watch` gets to exit after SIGTERM, in tenths of a second.
peer_grace_tenths=50

cargo build --release -p coldstart -p echo -p coldstart-testkit -p coldstart-bench --bins

if ! python3 -c 'import boto3' 2>/dev/null; then
    python3 -m pip install --quiet boto3
fi

target/release/coldstart-bench "$@"

# boto3 against a coldstart of our own; cleaned up however the script ends.
banner=$(mktemp)
peer_log=$(mktemp)
coldstart_pid=
peer_pid=
stop_peer() {
    [[ -n $peer_pid ]] || return 0
    # cargo-lambda runs each function instance in a process group of its own: SIGTERM lets it
    # stop them; any that outlive it are killed by group below.
    local instances
    instances=$(pgrep -P "$peer_pid" || true)
    kill -TERM -- "-$peer_pid" 2>/dev/null || true
    for ((i = 0; i < peer_grace_tenths; i++)); do
        kill -0 "$peer_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$peer_pid" 2>/dev/null || true
    wait "$peer_pid" 2>/dev/null || true
    for instance in $instances; do
        kill -KILL -- "-$instance" 2>/dev/null || true
    done
    peer_pid=
}
cleanup() {
    if [[ -n $coldstart_pid ]]; then
        # SIGTERM: coldstart stops its sandboxes (their own process groups) before exiting.
        kill "$coldstart_pid" 2>/dev/null || true
        wait "$coldstart_pid" 2>/dev/null || true
    fi
    stop_peer
    rm -f "$banner" "$peer_log"
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

# The peer: `cargo lambda watch` serving fx-lr-echo, if cargo-lambda is installed.
peer_args=()
if peer_version=$(cargo lambda --version 2>&1); then
    # A free loopback port: bound on 127.0.0.1:0 and released for cargo-lambda, which takes a port
    # number, not a listener.
    peer_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Job control on: the background job gets a process group of its own, led by $peer_pid.
    set -m
    RUST_LOG=warn cargo lambda watch -q --release --ignore-changes -p coldstart-testkit \
        --bin fx-lr-echo -A 127.0.0.1 -P "$peer_port" </dev/null >/dev/null 2>"$peer_log" &
    peer_pid=$!
    set +m
    peer_url="http://127.0.0.1:$peer_port"
    # Ready once an invoke answers (it prints no line that says so): a bounded retry that gives
    # up early if cargo-lambda exits.
    if python3 - "$peer_url" "$peer_ready_seconds" "$peer_pid" <<'PY'; then
import os, sys, time, urllib.request
url, limit, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    request = urllib.request.Request(
        url + "/2015-03-31/functions/fx-lr-echo/invocations", data=b"{}",
        headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    time.sleep(0.2)
sys.exit(1)
PY
        peer_args=(--peer "$peer_url")
    else
        echo "boto3: cargo-lambda peer skipped (cargo lambda watch did not answer within" \
            "$peer_ready_seconds s; its stderr follows)" | tee -a "$results"
        cat "$peer_log" >&2
        stop_peer
    fi
else
    echo "boto3: cargo-lambda peer skipped (\`cargo lambda --version\` failed: ${peer_version%%$'\n'*})" |
        tee -a "$results"
fi

python3 bench/boto3_invoke.py "http://$addr" "${peer_args[@]}" | tee -a "$results"
stop_peer

if [[ -s $banner ]] && grep -v '^coldstart: serving ' "$banner" >&2; then
    echo "(the lines above are what coldstart printed on stderr during the boto3 run)" >&2
fi
if [[ -s $peer_log ]] && grep -v 'AWS_LAMBDA_MAX_CONCURRENCY is set to' "$peer_log" >&2; then
    echo "(the lines above are what cargo lambda watch printed on stderr during the boto3 run)" >&2
fi

#!/usr/bin/env python3
"""Sequential boto3 Lambda invokes against a local endpoint: does the server stall real clients?

Usage: python3 bench/boto3_invoke.py http://127.0.0.1:PORT [--peer http://127.0.0.1:PORT2]

The first endpoint is `coldstart run` (function `function`); --peer is `cargo lambda watch` serving
`fx-lr-echo`, measured right after it with the same calls (no target: a reference).

Python's http.client writes the request headers and the body in two send() calls. A server that
leaves Nagle's algorithm on (no TCP_NODELAY) or delays its ACK then stalls each request for ~40 ms.
The target is p99 <= 5 ms. Prints a small plain-text section for bench/results/invoke.txt.
"""

import argparse
import json
import math
import platform
import sys
import time

import boto3
import botocore.exceptions
from botocore.config import Config

WARMUP = 50
CALLS = 500
PAYLOAD_LEN = 100
SLOW_MS = 5.0
TARGET_P99_MS = 5.0
FUNCTION = "function"
LABEL = "coldstart + coldstart-runtime echo"
PEER_FUNCTION = "fx-lr-echo"
PEER_LABEL = "cargo-lambda watch + lambda_runtime echo"


def payload() -> bytes:
    """A 100-byte JSON object that an echo function returns byte for byte (as coldstart-bench's)."""
    head, tail = b'{"message":"', b'"}'
    return head + b"x" * (PAYLOAD_LEN - len(head) - len(tail)) + tail


def percentile(sorted_ms, p):
    """Nearest rank, as coldstart-bench's stats module."""
    rank = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def measure(endpoint, function, body):
    """WARMUP unmeasured calls, then CALLS measured: (sorted latencies in ms, errors, mismatches)."""
    client = boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    latencies_ms = []
    errors = mismatches = 0
    for i in range(WARMUP + CALLS):
        started = time.perf_counter()
        try:
            response = client.invoke(FunctionName=function, Payload=body)
            answer = response["Payload"].read()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            answer, response = None, None
            if i >= WARMUP:
                errors += 1
                print(f"boto3 invoke of {function} failed: {err}", file=sys.stderr)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        if i < WARMUP:
            continue
        latencies_ms.append(elapsed_ms)
        if response is not None and (
            response["StatusCode"] != 200 or "FunctionError" in response or answer != body
        ):
            mismatches += 1
    latencies_ms.sort()
    return latencies_ms, errors, mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description="Sequential boto3 invokes against a local endpoint.")
    parser.add_argument("endpoint", help="coldstart run's http://127.0.0.1:PORT")
    parser.add_argument("--peer", metavar="URL", help="cargo lambda watch's http://127.0.0.1:PORT")
    args = parser.parse_args()
    body = payload()
    assert len(body) == PAYLOAD_LEN and json.loads(body)

    targets = [(LABEL, args.endpoint, FUNCTION)]
    if args.peer:
        targets.append((PEER_LABEL, args.peer, PEER_FUNCTION))
    rows = [(label, *measure(endpoint, function, body)) for label, endpoint, function in targets]

    print()
    print(
        f"boto3 invoke: {CALLS} sequential calls after {WARMUP} warm-up, {PAYLOAD_LEN}-byte JSON "
        f"(python {platform.python_version()}, boto3 {boto3.__version__}; ms)"
    )
    print(f"{'':<40} {'p50':>8} {'p99':>8} {'max':>8} {'>5 ms':>6} {'errors':>6} {'mismatches':>10}")
    for label, latencies_ms, errors, mismatches in rows:
        p50, p99 = percentile(latencies_ms, 50), percentile(latencies_ms, 99)
        slow = sum(1 for ms in latencies_ms if ms > SLOW_MS)
        print(
            f"{label:<40} {p50:>8.2f} {p99:>8.2f} "
            f"{latencies_ms[-1]:>8.2f} {slow:>6} {errors:>6} {mismatches:>10}"
        )
    ours_p99 = percentile(rows[0][1], 99)
    verdict = "met" if ours_p99 <= TARGET_P99_MS else "MISSED"
    print(f"  coldstart p99 target <= {TARGET_P99_MS:g} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

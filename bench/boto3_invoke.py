#!/usr/bin/env python3
"""Sequential boto3 Lambda invokes against a local endpoint: does the server stall real clients?

Usage: python3 bench/boto3_invoke.py http://127.0.0.1:PORT [--peer http://127.0.0.1:PORT2]

The first endpoint is `coldstart run` (function `function`); --peer is `cargo lambda watch` serving
`fx-lr-echo`, measured right after it with the same calls (no target: a reference).

Python's http.client writes the request headers and the body in two send() calls. A server that
leaves Nagle's algorithm on (no TCP_NODELAY) or delays its ACK then stalls each request for ~40 ms.
Prints one JSON line of versions, then one per target with its latencies in ms:
`coldstart-bench invoke` summarises them like every other figure.
"""

import argparse
import json
import platform
import sys
import time

import boto3
import botocore.exceptions
from botocore.config import Config

WARMUP = 50
CALLS = 500
PAYLOAD_LEN = 100
FUNCTION = "function"
LABEL = "coldstart + coldstart-runtime echo"
PEER_FUNCTION = "fx-lr-echo"
PEER_LABEL = "cargo-lambda watch + lambda_runtime echo"


def payload() -> bytes:
    """A 100-byte JSON object that an echo function returns byte for byte (as coldstart-bench's)."""
    head, tail = b'{"message":"', b'"}'
    return head + b"x" * (PAYLOAD_LEN - len(head) - len(tail)) + tail


def measure(endpoint, function, body, warmup, calls):
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
    for i in range(warmup + calls):
        started = time.perf_counter()
        try:
            response = client.invoke(FunctionName=function, Payload=body)
            answer = response["Payload"].read()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            answer, response = None, None
            if i >= warmup:
                errors += 1
                print(f"boto3 invoke of {function} failed: {err}", file=sys.stderr)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        if i < warmup:
            continue
        latencies_ms.append(elapsed_ms)
        if response is not None and (
            response["StatusCode"] != 200 or "FunctionError" in response or answer != body
        ):
            mismatches += 1
    return latencies_ms, errors, mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description="Sequential boto3 invokes against a local endpoint.")
    parser.add_argument("endpoint", help="coldstart run's http://127.0.0.1:PORT")
    parser.add_argument("--peer", metavar="URL", help="cargo lambda watch's http://127.0.0.1:PORT")
    parser.add_argument("--quick", action="store_true", help="a tenth of the calls")
    args = parser.parse_args()
    warmup, calls = (WARMUP // 10, CALLS // 10) if args.quick else (WARMUP, CALLS)
    body = payload()
    assert len(body) == PAYLOAD_LEN and json.loads(body)

    targets = [(LABEL, args.endpoint, FUNCTION)]
    if args.peer:
        targets.append((PEER_LABEL, args.peer, PEER_FUNCTION))
    versions = {"python": platform.python_version(), "boto3": boto3.__version__, "calls": calls, "warmup": warmup}
    print(json.dumps(versions))
    for label, endpoint, function in targets:
        latencies_ms, errors, mismatches = measure(endpoint, function, body, warmup, calls)
        print(json.dumps({"label": label, "ms": latencies_ms, "errors": errors, "mismatches": mismatches}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

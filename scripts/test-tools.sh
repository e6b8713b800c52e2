#!/usr/bin/env bash
# Installs the servers and tools the tests start themselves: headless Chromium and chromedriver
# (the dashboard's browser tests); moto's server, an SQS-compatible one for the queue tests
# (coldstart-test's), and jq, which their shell fixture uses; and dynalite, a local
# DynamoDB-compatible server for the chat example's store tests (tools/dynamodb, versions pinned
# by its package-lock.json); and the compilers and autotools that AWS's Node.js runtime client
# (aws-lambda-ric) needs to build its native addon, which the first Node.js test builds once into
# coldstart's cache (1 to 2 minutes on a 2-core machine: 63 s with npm's download cache warm,
# 1m40s cold; later runs reuse it). Idempotent: a second run with everything in place does
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_=""
if [ "$(id -u)" != 0 ]; then sudo_=sudo; fi
apt_updated=false
apt_install() {
  if ! $apt_updated; then $sudo_ apt-get update -qq; apt_updated=true; fi
  $sudo_ apt-get install -y -qq --no-install-recommends "$@"
}

# Headless Chromium and its WebDriver for the dashboard's browser tests (crates/dashboard).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver for the dashboard's browser tests"
  apt_install chromium chromium-driver
fi

# The native addon of aws-lambda-ric (coldstart-test's node tests): curl and aws-lambda-cpp from
# source with autotools and cmake, then node-gyp.
for tool in cmake autoconf automake libtoolize g++ make; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "installing cmake, autoconf, automake, libtool, g++ and make for aws-lambda-ric's native addon"
    apt_install cmake autoconf automake libtool g++ make
    break
  fi
done

# moto's server (PyPI), pinned.
MOTO_VERSION=5.2.1
if ! command -v moto_server >/dev/null 2>&1 \
  || [ "$(python3 -m pip show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$MOTO_VERSION" ]; then
  echo "installing moto[server] $MOTO_VERSION (an SQS-compatible server for the queue tests)"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
if ! command -v jq >/dev/null 2>&1; then
  echo "installing jq (the SQS shell fixture's JSON tool)"
  apt_install jq
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

#!/usr/bin/env bash
# Gatehouse as a `../shared/bench/run.sh --candidate` with routes that do no
# authentication: the no-auth floor, to compare with the harness's `nginx` row.
# Uses only the BENCH_* variables the harness exports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${GATEHOUSE_BIN:-$here/../.build-release/release/gatehouse}
conf=${BENCH_WORKDIR:-$(mktemp -d)}/gatehouse-noauth.conf
cat >"$conf" <<CONF
[server]
listen = "${BENCH_HOST:-127.0.0.1}:${BENCH_PORT:?}"
event_loops = ${BENCH_THREADS:-1}
upstream_threads = 1
[admin]
listen = "off"
[logs]
access = "off"
denials = "off"
[[routes]]
name = "all"
path = "/"
upstream = "${BENCH_UPSTREAM:?}"
auth = "none"
CONF
exec "$bin" serve --config "$conf"

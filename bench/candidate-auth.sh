#!/usr/bin/env bash
# Gatehouse as a `bench/compare/run.sh --candidate`, verifying every JWT like the HAProxy
# anchor (RS256/ES256 keys with kids, HS256 secret, issuer and audience from BENCH_*).
# Uses only the BENCH_* variables the harness exports.
set -euo pipefail
source "$(dirname "$0")/gatehouse-common.sh"
conf=$work/gatehouse-auth.conf
{ server_sections; cat <<CONF
[[issuers]]
issuer = "${BENCH_ISSUER:?}"
audiences = ["${BENCH_AUDIENCE:?}"]
algorithms = ["RS256", "ES256", "HS256"]
keys = [{ path = "${BENCH_RSA_PUB:?}", kid = "${BENCH_RSA_KID:?}" }, { path = "${BENCH_EC_PUB:?}", kid = "${BENCH_EC_KID:?}" }]
hs256_secret_file = "${BENCH_HS_SECRET:?}"
leeway = "0s"
# The harness's own per-subject limit (configured high enough never to be reached), and
# no lock-out: its conformance checks send many bad tokens from 127.0.0.1.
[rate_limits]
default = { requests = ${BENCH_RATE_LIMIT:-1000000}, per = "${BENCH_RATE_PERIOD:-10s}" }
[rate_limits.auth_failures]
max = 1000000
per = "1m"
block = "1s"
[api_keys]
store = "$work/gatehouse-keys.db"
[[routes]]
name = "mcp"
path = "${BENCH_SCOPE_PREFIX:-/mcp}"
upstream = "${BENCH_UPSTREAM:?}${BENCH_SCOPE_PREFIX:-/mcp}"
scopes = ["${BENCH_REQUIRED_SCOPE:-mcp:read}"]
[[routes]]
name = "all"
path = "/"
upstream = "${BENCH_UPSTREAM:?}"
CONF
} >"$conf"
exec "$bin" serve --config "$conf"

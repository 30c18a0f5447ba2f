#!/usr/bin/env bash
# Gatehouse as a `bench/compare/run.sh --candidate` with routes that do no
# authentication: the no-auth floor, to compare with the harness's `nginx` row.
# Uses only the BENCH_* variables the harness exports.
set -euo pipefail
source "$(dirname "$0")/gatehouse-common.sh"
conf=$work/gatehouse-noauth.conf
{ server_sections; cat <<CONF
[[routes]]
name = "all"
path = "/"
upstream = "${BENCH_UPSTREAM:?}"
auth = "none"
CONF
} >"$conf"
exec "$bin" serve --config "$conf"

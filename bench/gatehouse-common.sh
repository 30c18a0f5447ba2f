# Shared by the bench candidates: where the binary is, and the [server] / [admin] / [logs]
# part of a candidate config built from the harness's BENCH_* variables (logs off, so the
# figures measure the request path).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${GATEHOUSE_BIN:-$here/../.build-release/release/gatehouse}
work=${BENCH_WORKDIR:-$(mktemp -d)}

server_sections() {
    cat <<CONF
[server]
listen = "${BENCH_HOST:-127.0.0.1}:${BENCH_PORT:?}"
event_loops = ${BENCH_THREADS:-1}
[admin]
listen = "off"
[logs]
access = "off"
denials = "off"
CONF
}

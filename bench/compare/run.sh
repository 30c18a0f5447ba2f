#!/usr/bin/env bash
# Side-by-side benchmark of a JWT auth reverse proxy, with HAProxy 2.6 as the anchor.
# See README.md next to this file.  Everything listens on 127.0.0.1 only.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$HERE/lib
CONF=$HERE/conf

# ---------------------------------------------------------------- defaults --
ALGS=RS256                 # comma list of RS256,ES256,HS256
VARIANTS=single,many,fresh # single = 1 token; many = NTOKENS distinct subs, rotated;
                           # fresh = a token never seen before on every request (ES256/HS256)
NTOKENS=1000
FRESH_RATE=25000           # fresh pool size = FRESH_RATE x (warm-up + duration) x rounds (+2)
FRESH_TOKENS=""            # explicit fresh pool size (overrides FRESH_RATE; also enables RS256)
DURATION_S=10
WARMUP_S=2
CONNS=50
WRK_THREADS=1
WRK_TIMEOUT_S=5
ROUNDS=1
PROXY_THREADS=1            # haproxy nbthread and nginx-proxy worker_processes
UPSTREAM_WORKERS=1
PIN=off                    # off | split (wrk on CPU 0, all servers on the other CPUs)
RATE_LIMIT=1000000         # per sub, per RATE_PERIOD (configured, not reached)
RATE_PERIOD=10s
BASE_PORT=18400
BENCH_PATH=/mcp
TARGETS=upstream,nginx,haproxy
CANDIDATE_CMD=""
CANDIDATE_NAME=candidate
CANDIDATE_TIMEOUT_S=30
CANDIDATE_STRICT=0
JSON_OUT=""
MAX_BG_BUSY=15             # "quiet" = machine at most this % busy (all CPUs) while idle
WAIT_QUIET_S=0             # before each run, wait up to this long for "quiet"
MAX_FOREIGN=5              # foreign CPU during a run, % of all CPUs => run flagged noisy
RETRY_NOISY=0              # re-run a noisy run up to N times
KEEP_TMP=0
RUN_CHECKS=1
CHECKS_ONLY=0
TOKEN_TTL_S=21600          # bench tokens expire after 6 h (long --rounds/--wait-quiet runs)
ISSUER=https://auth.example.test
AUDIENCE=mcp-gateway
REQUIRED_SCOPE=mcp:read
SCOPE_PREFIX=/mcp

usage() {
    cat <<EOF
usage: $0 [options]

Benchmarks, with wrk and the same token(s), side by side:
  upstream   nginx upstream hit directly (ceiling)
  nginx      nginx as a plain reverse proxy, no auth (floor for one proxy hop)
  haproxy    HAProxy 2.6 verifying the JWT (the anchor; ratios are vs this row)
  candidate  the product under test, if --candidate is given

Load:
  --alg LIST             RS256,ES256,HS256 (comma list)             [$ALGS]
  --variants LIST        single,many,fresh                           [$VARIANTS]
                         fresh = every request carries a token the target has
                         never seen (cache misses); ES256/HS256 only, unless
                         --fresh-tokens is given (RS256 minting is slow)
  --tokens N             distinct tokens (subs) for 'many'; also the number of
                         subs the fresh tokens cycle through         [$NTOKENS]
  --fresh-rate R         req/s ceiling the fresh pool is sized for: R x
                         (warm-up + duration) x rounds tokens per alg [$FRESH_RATE]
  --fresh-tokens N       fresh pool size per alg (overrides --fresh-rate)
  --duration S           seconds per measured run                    [$DURATION_S]
  --warmup S             unrecorded warm-up seconds per run (0 = off)[$WARMUP_S]
  --connections N        wrk -c                                      [$CONNS]
  --wrk-threads N        wrk -t                                      [$WRK_THREADS]
  --rounds N             repeat every run N times, report medians    [$ROUNDS]
  --targets LIST         subset of upstream,nginx,haproxy            [$TARGETS]
  --path P               request path                                [$BENCH_PATH]
Proxies:
  --proxy-threads N      haproxy nbthread = nginx-proxy workers      [$PROXY_THREADS]
  --upstream-workers N   upstream nginx workers                      [$UPSTREAM_WORKERS]
  --rate-limit N         haproxy per-sub limit per $RATE_PERIOD      [$RATE_LIMIT]
  --base-port P          ports P..P+4 on 127.0.0.1                   [$BASE_PORT]
  --pin off|split        split: wrk pinned to CPU 0, upstream + proxies +
                         candidate to the remaining CPUs (taskset); steadier
                         numbers, "proxy+upstream on N-1 cores"      [$PIN]
Candidate:
  --candidate 'CMD'      shell command that starts the product under test in the
                         foreground, listening on 127.0.0.1:\$BENCH_PORT (see README
                         for all BENCH_* variables it receives)
  --candidate-name NAME  label in the table                          [$CANDIDATE_NAME]
  --candidate-timeout S  wait this long for its port                 [$CANDIDATE_TIMEOUT_S]
  --candidate-strict     abort if the candidate fails a conformance check
Output / misc:
  --json PATH            also write results as JSON
  --no-checks            skip the conformance checks (curl)
  --checks-only          run the conformance checks, no load
  --max-foreign PCT      flag a run as noisy if processes outside this bench used
                         >= PCT % of all CPUs during it              [$MAX_FOREIGN]
  --retry-noisy N        re-run a noisy run up to N times            [$RETRY_NOISY]
  --wait-quiet S         before each run, wait up to S s until the idle machine
                         is at most --max-bg-busy % busy             [$WAIT_QUIET_S]
  --max-bg-busy PCT      threshold for --wait-quiet                  [$MAX_BG_BUSY]
  --token-ttl S          lifetime of the bench tokens                [$TOKEN_TTL_S]
  --keep-tmp             keep the temp work dir (keys, configs, logs; also kept on failure)
  -h, --help
EOF
}

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

VALUE_OPTS="--alg --algs --variants --tokens --fresh-rate --fresh-tokens --duration --warmup --connections --wrk-threads --rounds --targets --path
 --proxy-threads --upstream-workers --rate-limit --base-port --pin --candidate --candidate-name --candidate-timeout
 --json --max-bg-busy --wait-quiet --max-foreign --retry-noisy --token-ttl -c -t"
VALUE_OPTS=${VALUE_OPTS//$'\n'/ }
while (($#)); do
    case $1 in
        -h|--help|--candidate-strict|--no-checks|--checks-only|--keep-tmp) ;;
        *) if (($# < 2)) && [[ " $VALUE_OPTS " == *" $1 "* ]]; then die "option $1 needs a value"; fi ;;
    esac
    case $1 in
        --alg|--algs) ALGS=$2; shift ;;
        --variants) VARIANTS=$2; shift ;;
        --tokens) NTOKENS=$2; shift ;;
        --fresh-rate) FRESH_RATE=$2; shift ;;
        --fresh-tokens) FRESH_TOKENS=$2; shift ;;
        --duration) DURATION_S=${2%s}; shift ;;
        --warmup) WARMUP_S=${2%s}; shift ;;
        --connections|-c) CONNS=$2; shift ;;
        --wrk-threads|-t) WRK_THREADS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --targets) TARGETS=$2; shift ;;
        --path) BENCH_PATH=$2; shift ;;
        --proxy-threads) PROXY_THREADS=$2; shift ;;
        --upstream-workers) UPSTREAM_WORKERS=$2; shift ;;
        --rate-limit) RATE_LIMIT=$2; shift ;;
        --base-port) BASE_PORT=$2; shift ;;
        --pin) PIN=$2; shift ;;
        --candidate) CANDIDATE_CMD=$2; shift ;;
        --candidate-name) CANDIDATE_NAME=$2; shift ;;
        --candidate-timeout) CANDIDATE_TIMEOUT_S=${2%s}; shift ;;
        --candidate-strict) CANDIDATE_STRICT=1 ;;
        --json) JSON_OUT=$2; shift ;;
        --max-bg-busy) MAX_BG_BUSY=$2; shift ;;
        --wait-quiet) WAIT_QUIET_S=${2%s}; shift ;;
        --max-foreign) MAX_FOREIGN=$2; shift ;;
        --retry-noisy) RETRY_NOISY=$2; shift ;;
        --no-checks) RUN_CHECKS=0 ;;
        --checks-only) CHECKS_ONLY=1 ;;
        --keep-tmp) KEEP_TMP=1 ;;
        --token-ttl) TOKEN_TTL_S=${2%s}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

for v in NTOKENS FRESH_RATE DURATION_S WARMUP_S CONNS WRK_THREADS ROUNDS PROXY_THREADS UPSTREAM_WORKERS RATE_LIMIT BASE_PORT CANDIDATE_TIMEOUT_S MAX_BG_BUSY WAIT_QUIET_S MAX_FOREIGN RETRY_NOISY TOKEN_TTL_S; do
    is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
done
((DURATION_S >= 1 && DURATION_S <= 600)) || die "--duration must be 1..600 s"
((CONNS >= 1 && CONNS <= 2000)) || die "--connections must be 1..2000"
((NTOKENS >= 2)) || die "--tokens must be >= 2"
if [[ -n $FRESH_TOKENS ]]; then
    is_uint "$FRESH_TOKENS" && ((FRESH_TOKENS >= 3)) || die "--fresh-tokens must be an integer >= 3"
    FRESH_N=$FRESH_TOKENS
else
    ((FRESH_RATE >= 1)) || die "--fresh-rate must be >= 1"
    # +2: line 1 and the last line are kept for the preflight requests, never sent by wrk
    FRESH_N=$((FRESH_RATE * (WARMUP_S + DURATION_S) * ROUNDS + 2))
fi
# wrk holds the pool in memory (~500 B/token) and reads ~250k lines/s before it starts
((FRESH_N <= 2000000)) || die "fresh pool of $FRESH_N tokens per alg is too large (max 2,000,000): lower --fresh-rate/--fresh-tokens, --duration or --rounds"
((FRESH_N <= 1000000)) || echo "run.sh: WARNING: fresh pool of $FRESH_N tokens per alg: minting may take over a minute" >&2
((ROUNDS >= 1)) || die "--rounds must be >= 1"
[[ $BENCH_PATH == /* ]] || die "--path must start with /"
[[ $PIN =~ ^(off|split)$ ]] || die "--pin must be off or split"
IFS=, read -r -a ALG_LIST <<<"$ALGS"
IFS=, read -r -a VARIANT_LIST <<<"$VARIANTS"
IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
for a in "${ALG_LIST[@]}"; do [[ $a =~ ^(RS256|ES256|HS256)$ ]] || die "unsupported alg '$a'"; done
for v in "${VARIANT_LIST[@]}"; do [[ $v =~ ^(single|many|fresh)$ ]] || die "unknown variant '$v'"; done
# fresh: ES256 and HS256 by default; RS256 only with an explicit --fresh-tokens (python
# signs ~2,000 RS256 tokens/s per core: a pool sized for --fresh-rate would take minutes).
fresh_on() { [[ " ${VARIANT_LIST[*]} " == *" fresh "* ]] && { [[ $1 != RS256 ]] || [[ -n $FRESH_TOKENS ]]; }; }
for t in "${TARGET_LIST[@]}"; do [[ $t =~ ^(upstream|nginx|haproxy)$ ]] || die "unknown target '$t' (the candidate is added by --candidate)"; done
[[ -n $CANDIDATE_CMD ]] && TARGET_LIST+=(candidate)
[[ -n $JSON_OUT ]] && JSON_OUT=$(realpath -m "$JSON_OUT")

# ------------------------------------------------------------ tool checks --
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found. $2"; }
APT="Install with: apt-get update && apt-get install -y haproxy nginx wrk curl"
need haproxy "$APT"
need nginx "$APT"
need wrk "$APT"
need curl "$APT"
need python3 "Python 3.9+ is required."
need setsid "(util-linux)"
need timeout "(coreutils)"
PIN_SRV=() PIN_WRK=()
if [[ $PIN == split ]]; then
    need taskset "(util-linux)"
    NCPU=$(nproc)
    ((NCPU >= 2)) || die "--pin split needs at least 2 CPUs"
    PIN_WRK=(taskset -c 0)
    if ((NCPU == 2)); then PIN_SRV=(taskset -c 1); else PIN_SRV=(taskset -c "1-$((NCPU - 1))"); fi
fi
python3 -c 'import cryptography' 2>/dev/null || die "python3 module 'cryptography' missing: pip install cryptography"
# (no "cmd | grep -q" / "| head" under pipefail: an early-closing reader => SIGPIPE => false failure)
HAPROXY_VV=$(haproxy -vv 2>&1) || die "'haproxy -vv' failed"
[[ $HAPROXY_VV == *USE_OPENSSL=1* ]] || die "haproxy was built without OpenSSL (jwt_verify unavailable)"
HAPROXY_VER=${HAPROXY_VV%%$'\n'*}
[[ $HAPROXY_VER =~ version\ ([0-9]+)\.([0-9]+) ]] || die "cannot parse haproxy version: $HAPROXY_VER"
((BASH_REMATCH[1] > 2 || BASH_REMATCH[2] >= 5)) || die "haproxy >= 2.5 needed for jwt_verify ($HAPROXY_VER)"

UP_PORT=$BASE_PORT
NGX_PORT=$((BASE_PORT + 1))
HAP_PORT=$((BASE_PORT + 2))
CAND_PORT=$((BASE_PORT + 3))
RL_PORT=$((BASE_PORT + 4))
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $UP_PORT $NGX_PORT $HAP_PORT $CAND_PORT $RL_PORT; do
    port_open "$p" && die "127.0.0.1:$p is already in use (choose another --base-port)"
done

# --------------------------------------------------- process bookkeeping --
PIDS=() PGRP=() PNAMES=() PLOGS=()
WORK=""
FAILED=1
alive() { [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# start_proc NAME LOG GROUP CMD...   (GROUP=1: own session/process group)
start_proc() {
    local name=$1 logf=$2 grp=$3
    shift 3
    if [[ $grp == 1 ]]; then
        setsid "$@" >"$logf" 2>&1 </dev/null &
    else
        "$@" >"$logf" 2>&1 </dev/null &
    fi
    LAST_PID=$!
    PIDS+=("$LAST_PID") PGRP+=("$grp") PNAMES+=("$name") PLOGS+=("$logf")
}

group_alive() { ps -e -o pgid= | awk -v g="$1" '$1 == g { f = 1 } END { exit !f }'; }

stop_idx() {
    local i=$1 pid=${PIDS[$1]} grp=${PGRP[$1]} name=${PNAMES[$1]} n
    [[ -n $pid ]] || return 0
    if [[ $grp == 1 ]]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do group_alive "$pid" || break; sleep 0.1; done
        if group_alive "$pid"; then
            echo "run.sh: $name (process group $pid) ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
    else
        kill -TERM "$pid" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            echo "run.sh: $name (pid $pid) ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    PIDS[$i]=""
}

stop_pid() {  # stop one started process by its pid
    local i
    for i in "${!PIDS[@]}"; do [[ ${PIDS[$i]} == "$1" ]] && stop_idx "$i"; done
    return 0
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_idx "$i"; done
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP_TMP)) || ((FAILED)); then
            echo "run.sh: work dir kept: $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

tail_log() { echo "---- last lines of $1:" >&2; tail -n 20 "$1" >&2 || true; }

# wait_port PORT PID NAME LOG TIMEOUT_S
wait_port() {
    local port=$1 pid=$2 name=$3 logf=$4 t=$5 n
    for ((n = 0; n < t * 10; n++)); do
        port_open "$port" && return 0
        if ! alive "$pid" && ! group_alive "$pid"; then
            tail_log "$logf"
            die "$name exited before listening on 127.0.0.1:$port"
        fi
        sleep 0.1
    done
    tail_log "$logf"
    die "$name did not listen on 127.0.0.1:$port within ${t}s"
}

# -------------------------------------------------------------- work dir --
WORK=$(mktemp -d /tmp/authbench.XXXXXX)
chmod 755 "$WORK"  # nginx workers (user nobody) read pub/ and run/
PRIV=$WORK/keys PUB=$WORK/pub TOK=$WORK/tokens RES=$WORK/results
mkdir -p "$WORK/logs" "$WORK/run/nginx-upstream-tmp" "$WORK/run/nginx-proxy-tmp" "$TOK" "$RES"
chmod 755 "$WORK/run" "$WORK/logs"
log "work dir $WORK"

# ---------------------------------------------------------- keys, tokens --
python3 "$LIB/jwt_tool.py" keys --priv-dir "$PRIV" --pub-dir "$PUB"
mint() { python3 "$LIB/jwt_tool.py" mint --priv-dir "$PRIV" --exp-in "$TOKEN_TTL_S" "$@"; }
for alg in "${ALG_LIST[@]}"; do
    mint --alg "$alg" --out "$TOK/$alg.single.txt"
    if [[ " ${VARIANT_LIST[*]} " == *" many "* ]]; then
        mint --alg "$alg" --count "$NTOKENS" --out "$TOK/$alg.many.txt"
    fi
done
log "keys and tokens ready (algs: ${ALG_LIST[*]}; $NTOKENS-token sets for 'many')"
FRESH_ALGS=()
for alg in "${ALG_LIST[@]}"; do
    if fresh_on "$alg"; then
        t0=$SECONDS
        # token i: sub user-(i mod NTOKENS), iat now-(i div NTOKENS): all distinct
        mint --alg "$alg" --count "$FRESH_N" --subs "$NTOKENS" --jobs "$(nproc)" --out "$TOK/$alg.fresh.txt"
        FRESH_ALGS+=("$alg")
        log "fresh pool $alg: $FRESH_N tokens minted in $((SECONDS - t0)) s ($(du -m "$TOK/$alg.fresh.txt" | cut -f1) MB)"
    elif [[ " ${VARIANT_LIST[*]} " == *" fresh "* ]]; then
        log "fresh variant skipped for $alg (signing a pool this size is too slow; give --fresh-tokens N to force it)"
    fi
done

# ---------------------------------------------------------------- configs --
render() { python3 "$LIB/util.py" render "$@"; }
render "$CONF/nginx-upstream.conf.in" "$WORK/nginx-upstream.conf" \
    WORK="$WORK" UPSTREAM_PORT="$UP_PORT" PUB_DIR="$PUB" SCOPE_PREFIX="$SCOPE_PREFIX" WORKERS="$UPSTREAM_WORKERS"
render "$CONF/nginx-proxy.conf.in" "$WORK/nginx-proxy.conf" \
    WORK="$WORK" UPSTREAM_PORT="$UP_PORT" PORT="$NGX_PORT" WORKERS="$PROXY_THREADS"
haproxy_cfg() {  # OUT PORT RATE_LIMIT
    render "$CONF/haproxy.cfg.in" "$1" \
        NBTHREAD="$PROXY_THREADS" PORT="$2" UPSTREAM_PORT="$UP_PORT" \
        RSA_PUB="$PUB/rsa_pub.pem" EC_PUB="$PUB/ec_pub.pem" HS_SECRET="$(cat "$PRIV/hs256.secret")" \
        RSA_KID=bench-rsa-1 EC_KID=bench-ec-1 HS_KID=bench-hs-1 \
        ISSUER="$ISSUER" AUDIENCE="$AUDIENCE" REQUIRED_SCOPE="$REQUIRED_SCOPE" SCOPE_PREFIX="$SCOPE_PREFIX" \
        RATE_LIMIT="$3" RATE_PERIOD="$RATE_PERIOD"
}
haproxy_cfg "$WORK/haproxy.cfg" "$HAP_PORT" "$RATE_LIMIT"
nginx -t -q -c "$WORK/nginx-upstream.conf" -p "$WORK" 2>"$WORK/logs/nginx-t.log" || { tail_log "$WORK/logs/nginx-t.log"; die "nginx upstream config invalid"; }
nginx -t -q -c "$WORK/nginx-proxy.conf" -p "$WORK" 2>"$WORK/logs/nginx-t.log" || { tail_log "$WORK/logs/nginx-t.log"; die "nginx proxy config invalid"; }
haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/logs/haproxy-c.log" 2>&1 || { tail_log "$WORK/logs/haproxy-c.log"; die "haproxy config invalid"; }

# ---------------------------------------------------------------- servers --
start_proc upstream "$WORK/logs/upstream.out" 0 "${PIN_SRV[@]}" nginx -c "$WORK/nginx-upstream.conf" -p "$WORK" -g 'daemon off;'
UP_PID=$LAST_PID
wait_port "$UP_PORT" "$UP_PID" "upstream nginx" "$WORK/logs/upstream.out" 10
start_proc nginx-proxy "$WORK/logs/nginx-proxy.out" 0 "${PIN_SRV[@]}" nginx -c "$WORK/nginx-proxy.conf" -p "$WORK" -g 'daemon off;'
NGX_PID=$LAST_PID
wait_port "$NGX_PORT" "$NGX_PID" "nginx proxy" "$WORK/logs/nginx-proxy.out" 10
start_proc haproxy "$WORK/logs/haproxy.out" 0 "${PIN_SRV[@]}" haproxy -db -f "$WORK/haproxy.cfg"
HAP_PID=$LAST_PID
wait_port "$HAP_PORT" "$HAP_PID" "haproxy" "$WORK/logs/haproxy.out" 10
log "upstream :$UP_PORT (pid $UP_PID)  nginx-proxy :$NGX_PORT (pid $NGX_PID)  haproxy :$HAP_PORT (pid $HAP_PID, nbthread $PROXY_THREADS)${PIN_SRV:+  pinned: wrk CPU 0, servers CPUs ${PIN_SRV[2]}}"

CAND_PID=""
if [[ -n $CANDIDATE_CMD ]]; then
    log "starting candidate '$CANDIDATE_NAME': $CANDIDATE_CMD"
    start_proc "$CANDIDATE_NAME" "$WORK/logs/candidate.out" 1 "${PIN_SRV[@]}" env \
        BENCH_PORT="$CAND_PORT" BENCH_HOST=127.0.0.1 \
        BENCH_UPSTREAM="http://127.0.0.1:$UP_PORT" \
        BENCH_RSA_PUB="$PUB/rsa_pub.pem" BENCH_EC_PUB="$PUB/ec_pub.pem" \
        BENCH_HS_SECRET="$PRIV/hs256.secret" \
        BENCH_JWKS="$PUB/jwks.json" BENCH_JWKS_URL="http://127.0.0.1:$UP_PORT/.well-known/jwks.json" \
        BENCH_RSA_KID=bench-rsa-1 BENCH_EC_KID=bench-ec-1 BENCH_HS_KID=bench-hs-1 \
        BENCH_ISSUER="$ISSUER" BENCH_AUDIENCE="$AUDIENCE" \
        BENCH_REQUIRED_SCOPE="$REQUIRED_SCOPE" BENCH_SCOPE_PREFIX="$SCOPE_PREFIX" \
        BENCH_RATE_LIMIT="$RATE_LIMIT" BENCH_RATE_PERIOD="$RATE_PERIOD" \
        BENCH_THREADS="$PROXY_THREADS" BENCH_WORKDIR="$WORK" \
        bash -c "$CANDIDATE_CMD"
    CAND_PID=$LAST_PID
    wait_port "$CAND_PORT" "$CAND_PID" "candidate '$CANDIDATE_NAME'" "$WORK/logs/candidate.out" "$CANDIDATE_TIMEOUT_S"
    log "candidate listening on :$CAND_PORT (process group $CAND_PID)"
fi

# ----------------------------------------------------- conformance checks --
CHECKS_TSV=$WORK/checks.tsv
: >"$CHECKS_TSV"
export JWT_TOOL=$LIB/jwt_tool.py PRIV_DIR=$PRIV PUB_DIR=$PUB SCOPE_PREFIX ISSUER AUDIENCE

rate_limit_check() {
    # Same template, limit 5 per period, separate port: proves the stick table
    # keyed on the sub claim really limits, per identity.
    local cfg=$WORK/haproxy-ratelimit.cfg codes="" i code ok=1 tok tok2
    haproxy_cfg "$cfg" "$RL_PORT" 5
    start_proc haproxy-ratelimit "$WORK/logs/haproxy-ratelimit.out" 0 "${PIN_SRV[@]}" haproxy -db -f "$cfg"
    local pid=$LAST_PID
    wait_port "$RL_PORT" "$pid" "haproxy (rate-limit check)" "$WORK/logs/haproxy-ratelimit.out" 10
    tok=$(head -1 "$TOK/${ALG_LIST[0]}.single.txt")
    tok2=$(mint --alg RS256 --sub other-user)
    for i in 1 2 3 4 5 6 7 8; do
        code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "http://127.0.0.1:$RL_PORT$BENCH_PATH") || code=000
        codes+="$code "
    done
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok2" "http://127.0.0.1:$RL_PORT$BENCH_PATH") || code=000
    stop_pid "$pid"
    [[ $codes == "200 200 200 200 200 429 429 429 " && $code == 200 ]] || ok=0
    local res=PASS
    ((ok)) || res=FAIL
    printf '  %-4s %-44s expected %-9s got %s\n' "$res" "rate limit 5/$RATE_PERIOD per sub" "5x200,429" "${codes}| other sub: $code"
    printf 'haproxy\t%s\t%s\t%s\t%s\n' "rate limit 5/$RATE_PERIOD per sub" "5x200 then 429; other sub 200" "${codes}/ $code" "$res" >>"$CHECKS_TSV"
    ((ok))
}

if ((RUN_CHECKS)); then
    hap_fail=0
    bash "$LIB/checks.sh" haproxy "http://127.0.0.1:$HAP_PORT" "$CHECKS_TSV" || hap_fail=1
    rate_limit_check || hap_fail=1
    ((hap_fail == 0)) || die "the HAProxy anchor failed conformance checks: the harness is broken (see above)"
    if [[ -n $CAND_PID ]]; then
        if ! bash "$LIB/checks.sh" "$CANDIDATE_NAME" "http://127.0.0.1:$CAND_PORT" "$CHECKS_TSV"; then
            ((CANDIDATE_STRICT)) && die "candidate '$CANDIDATE_NAME' failed conformance checks (--candidate-strict)"
            echo "run.sh: WARNING: candidate '$CANDIDATE_NAME' failed some conformance checks; benchmarking anyway" >&2
        fi
    fi
fi

# ------------------------------------------------------------------- meta --
META=$WORK/meta.env
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host_kernel=$(uname -r)"
    echo "nproc=$(nproc)"
    echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "haproxy_version=$HAPROXY_VER"
    v=$(nginx -v 2>&1) || true
    echo "nginx_version=${v%%$'\n'*}"
    v=$(wrk -v 2>&1) || true
    v=${v%%$'\n'*}
    echo "wrk_version=${v%% Copyright*}"
    echo "algs=$ALGS"
    echo "variants=$VARIANTS"
    echo "ntokens=$NTOKENS"
    echo "fresh_algs=${FRESH_ALGS[*]}"
    echo "fresh_tokens=$FRESH_N"
    echo "fresh_rate=${FRESH_TOKENS:+(--fresh-tokens given)}${FRESH_TOKENS:-$FRESH_RATE}"
    echo "duration_s=$DURATION_S"
    echo "warmup_s=$WARMUP_S"
    echo "connections=$CONNS"
    echo "wrk_threads=$WRK_THREADS"
    echo "rounds=$ROUNDS"
    echo "proxy_threads=$PROXY_THREADS"
    echo "upstream_workers=$UPSTREAM_WORKERS"
    echo "pin=$PIN${PIN_SRV:+ (wrk: CPU 0; servers: CPUs ${PIN_SRV[2]})}"
    echo "rate_limit=$RATE_LIMIT/$RATE_PERIOD"
    echo "bench_path=$BENCH_PATH"
    echo "max_bg_busy_pct=$MAX_BG_BUSY"
    echo "max_foreign_pct=$MAX_FOREIGN"
    echo "retry_noisy=$RETRY_NOISY"
    echo "wait_quiet_s=$WAIT_QUIET_S"
    echo "candidate_name=${CANDIDATE_CMD:+$CANDIDATE_NAME}"
    echo "candidate_cmd=$CANDIDATE_CMD"
} >"$META"

REPORT_ARGS=(--runs "$WORK/runs.tsv" --meta "$META" --checks "$CHECKS_TSV" --haproxy-cfg "$WORK/haproxy.cfg")
[[ -n $JSON_OUT ]] && REPORT_ARGS+=(--json "$JSON_OUT")

if ((CHECKS_ONLY)); then
    log "--checks-only: done"
    FAILED=0
    exit 0
fi

# ------------------------------------------------------------------ bench --
target_port() { case $1 in upstream) echo "$UP_PORT" ;; nginx) echo "$NGX_PORT" ;; haproxy) echo "$HAP_PORT" ;; candidate) echo "$CAND_PORT" ;; esac; }
target_pid() { case $1 in upstream) echo "$UP_PID" ;; nginx) echo "$NGX_PID" ;; haproxy) echo "$HAP_PID" ;; candidate) echo "$CAND_PID" ;; esac; }
target_label() { case $1 in upstream) echo "upstream (direct)" ;; nginx) echo "nginx proxy (no auth)" ;; haproxy) echo "haproxy 2.6 jwt (anchor)" ;; candidate) echo "$CANDIDATE_NAME" ;; esac; }

: >"$WORK/runs.tsv"
WRK_ENV=()  # extra VAR=value for wrk_auth.lua (the fresh variant)
run_wrk() {  # URL TOKFILE SECONDS RESULT_FILE LOG
    local load_s=0  # fresh: time for wrk to read its part of the pool before the clock starts
    ((${#WRK_ENV[@]} == 0)) || load_s=$((FRESH_N / 50000 + 1))
    env BENCH_TOKENS_FILE="$2" BENCH_RESULT_FILE="$4" BENCH_WRK_THREADS="$WRK_THREADS" "${WRK_ENV[@]}" \
        timeout --kill-after=5 $(($3 + WRK_TIMEOUT_S + 20 + load_s)) \
        "${PIN_WRK[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$3s" --timeout "${WRK_TIMEOUT_S}s" -s "$LIB/wrk_auth.lua" "$1" >"$5" 2>&1
}
# wait_quiet: sample the machine 1 s at a time while the bench is idle, until
# it is at most MAX_BG_BUSY % busy or WAIT_QUIET_S has passed; sets BG.
wait_quiet() {
    local deadline=$((SECONDS + WAIT_QUIET_S))
    while :; do
        BG=$(python3 "$LIB/util.py" busy 1)
        if [[ ${BG%.*} -le $MAX_BG_BUSY || $SECONDS -ge $deadline ]]; then return 0; fi
    done
}
preflight() {  # URL TOKEN -> prints http code
    curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "$1" || echo 000
}
# foreign load in % of all CPUs between two "util.py snap" lines
foreign_pct() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[1] - x[1]; f = (y[2] - x[2]) - (y[3] - x[3]); if (f < 0) f = 0;
        printf "%.1f", (t > 0 ? 100 * f / t : 0) }'
}

# variant_on ALG VARIANT: whether this scenario runs (fresh only for FRESH_ALGS)
variant_on() { [[ $2 != fresh || " ${FRESH_ALGS[*]} " == *" $1 "* ]]; }
nscen=0
for alg in "${ALG_LIST[@]}"; do for variant in "${VARIANT_LIST[@]}"; do variant_on "$alg" "$variant" && nscen=$((nscen + 1)); done; done
total=$((ROUNDS * nscen * ${#TARGET_LIST[@]}))
# fresh: per alg and target, the next unused line of $TOK/$alg.fresh.txt (1-based);
# lines 2..N-1 are the pool (1 and N are the preflight tokens).  Warm-up, measured
# run, retries and rounds all advance it, so a verifying target never gets a token twice.
declare -A FRESH_NEXT=()
# fresh_next JSON -> prints the "next" line recorded by wrk_auth.lua's done(), or nothing
fresh_next() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['fresh']['next'])" "$1" 2>/dev/null || true; }
eta=$((total * (DURATION_S + WARMUP_S + 3)))
log "benchmark: $total runs of ${DURATION_S}s (+${WARMUP_S}s warm-up), about $((eta / 60)) min $((eta % 60)) s"
b=$(python3 "$LIB/util.py" busy 1)
if [[ ${b%.*} -gt $MAX_BG_BUSY ]]; then
    echo "run.sh: WARNING: the machine is already ${b}% busy (all CPUs) with foreign load; numbers may be skewed." >&2
    ps -eo pid,pcpu,comm --sort=-pcpu | sed -n 2,6p >&2 || true
fi
n=0
for ((round = 1; round <= ROUNDS; round++)); do
    for alg in "${ALG_LIST[@]}"; do
        for variant in "${VARIANT_LIST[@]}"; do
            variant_on "$alg" "$variant" || continue
            tokf=$TOK/$alg.$variant.txt
            ntok=$(wc -l <"$tokf")
            for target in "${TARGET_LIST[@]}"; do
                n=$((n + 1))
                url="http://127.0.0.1:$(target_port "$target")$BENCH_PATH"
                pid=$(target_pid "$target")
                tag=$alg.$variant.$target.r$round
                attempt=0
                while :; do
                    status=ok cpu_t=0 cpu_u=0 BG=0 fgn=0
                    for tk in "$(head -1 "$tokf")" "$(tail -1 "$tokf")"; do
                        code=$(preflight "$url" "$tk")
                        [[ $code == 200 ]] || { status="preflight-HTTP-$code"; break; }
                    done
                    if [[ $status == ok ]] && ! alive "$pid" && ! group_alive "$pid"; then status="process-died"; fi
                    [[ $status == ok ]] || break
                    wait_quiet
                    WRK_ENV=()
                    if [[ $variant == fresh ]]; then
                        # the no-auth rows never read the token: they may start over (counted,
                        # shown), and load at most 200k tokens (same per-request cost, less memory)
                        if [[ $target == upstream || $target == nginx ]]; then
                            WRK_ENV=(BENCH_FRESH=1 BENCH_FRESH_FIRST=2 BENCH_FRESH_LAST=$((ntok - 1 < 200001 ? ntok - 1 : 200001)) BENCH_FRESH_WRAP=1)
                        else
                            WRK_ENV=(BENCH_FRESH=1 BENCH_FRESH_FIRST="${FRESH_NEXT[$alg.$target]:-2}" BENCH_FRESH_LAST=$((ntok - 1)) BENCH_FRESH_WRAP=0)
                            ((${FRESH_NEXT[$alg.$target]:-2} <= ntok - 1)) || { status="fresh-pool-exhausted"; break; }
                        fi
                    fi
                    if ((WARMUP_S > 0)); then
                        if [[ $variant == fresh ]]; then
                            run_wrk "$url" "$tokf" "$WARMUP_S" "$RES/$tag.warmup.json" "$WORK/logs/wrk.$tag.warmup.log" || true
                            if [[ $target != upstream && $target != nginx ]]; then
                                nx=$(fresh_next "$RES/$tag.warmup.json")
                                # no summary => unknown how many tokens went out: skip the rest of the pool
                                FRESH_NEXT[$alg.$target]=${nx:-$ntok}
                                [[ -n $nx ]] || { status="warmup-failed"; tail_log "$WORK/logs/wrk.$tag.warmup.log"; break; }
                                ((nx <= ntok - 1)) || { status="fresh-pool-exhausted"; break; }
                                WRK_ENV=(BENCH_FRESH=1 BENCH_FRESH_FIRST="$nx" BENCH_FRESH_LAST=$((ntok - 1)) BENCH_FRESH_WRAP=0)
                            fi
                        else
                            run_wrk "$url" "$tokf" "$WARMUP_S" /dev/null "$WORK/logs/wrk.$tag.warmup.log" || true
                        fi
                    fi
                    s0=$(python3 "$LIB/util.py" snap $$ "$pid" "$UP_PID")
                    if run_wrk "$url" "$tokf" "$DURATION_S" "$RES/$tag.json" "$WORK/logs/wrk.$tag.log" && [[ -s $RES/$tag.json ]]; then
                        s1=$(python3 "$LIB/util.py" snap $$ "$pid" "$UP_PID")
                        read -r _ _ _ c0t c0u <<<"$s0"
                        read -r _ _ _ c1t c1u <<<"$s1"
                        cpu_t=$(awk -v a="$c0t" -v b="$c1t" 'BEGIN { printf "%.2f", b - a }')
                        cpu_u=$(awk -v a="$c0u" -v b="$c1u" 'BEGIN { printf "%.2f", b - a }')
                        fgn=$(foreign_pct "$s0" "$s1")
                    else
                        status="wrk-failed"
                        tail_log "$WORK/logs/wrk.$tag.log"
                        [[ $variant == fresh ]] && FRESH_NEXT[$alg.$target]=$ntok  # unknown use: pool closed
                        break
                    fi
                    if [[ $variant == fresh && $target != upstream && $target != nginx ]]; then
                        nx=$(fresh_next "$RES/$tag.json")
                        FRESH_NEXT[$alg.$target]=${nx:-$ntok}
                    fi
                    if [[ ${fgn%.*} -ge $MAX_FOREIGN ]] && ((attempt < RETRY_NOISY)); then
                        attempt=$((attempt + 1))
                        log "[$n/$total] $alg $variant $target: foreign load ${fgn}% during the run, retry $attempt/$RETRY_NOISY"
                        continue
                    fi
                    break
                done
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$alg" "$variant" "$ntok" "$target" \
                    "$(target_label "$target")" "$status" "$RES/$tag.json" "$cpu_t" "$cpu_u" "$BG" "$fgn" >>"$WORK/runs.tsv"
                if [[ $status == ok ]]; then
                    summary=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); f=r.get('fresh'); print(f\"{r['requests']/(r['duration_us']/1e6):,.0f} req/s  p50 {r['latency_us']['p50']/1000:.2f} ms  p99 {r['latency_us']['p99']/1000:.2f} ms  non-2xx {r['errors']['status']}\" + (f\"  fresh lines {f['first']}.. used {f['used']:,}\" + (f\", {f['beyond']:,} beyond the pool ({'wrapped' if f['wrap'] else 'STOPPED: pool exhausted'})\" if f['beyond'] else '') if f else ''))" "$RES/$tag.json")
                    summary+="  (foreign load ${fgn}%)"
                    [[ ${fgn%.*} -ge $MAX_FOREIGN ]] && summary+="  [WARNING: noisy]"
                else
                    summary=$status
                fi
                log "[$n/$total] round $round $alg $variant ($ntok tok) $target: $summary"
            done
        done
    done
done

python3 "$LIB/report.py" "${REPORT_ARGS[@]}"
FAILED=0

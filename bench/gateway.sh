#!/usr/bin/env bash
# Load benchmark of the gateway: requests/s and p50/p99 of one authenticated,
# rate-limited core route called three ways in the same run,
#
#   direct    client → core, with an internal token (what the gateway forwards);
#   nginx     client → Debian's nginx → core (keep-alive upstream), nginx setting
#             the same internal token: a proxy that authenticates nothing;
#   gateway   client → gateway → core, with the tenant's API key: authentication
#             (cached verification), scope and tenant checks, the tenant and key
#             rate limits (GCRA; one Redis script per call when distributed), the
#             audit event, then the forward with the internal token;
#
# first at peak (wrk, closed loop), then at half of the gateway's peak rate (an
# open-loop fixed-rate generator, bench/loadgen), for each shape. The three arms
# take turns, a few rounds over, and the figures compared are each arm's median
# over its rounds: on shared cores one arm's bad second then weighs as little as
# another's.
#
# Arms taking turns still meet different moments of the host, and on shared
# cores its bad moments move a p99 by milliseconds. So at half of the peak the
# nginx and gateway arms also run paired: the same load, with a trickle of
# probes sent straight to core at the same time (a tenth of the rate, on
# connections of their own). Both see the same moments, and the arm's p99 less
# the probes' p99 is what the proxy added; the figure given is the median of
# the rounds' differences.
#
#   embedded      one process, SQLite, in-process bus; every service also listens
#                 on its own port so core can be called directly and the internal
#                 token obtained from auth (the build is the embedded one: the
#                 gateway calls core and auth in process);
#   distributed   auth, tenant, config, core and gateway as five processes over
#                 Postgres (a fresh database per run) and Redis (a fresh bus
#                 namespace per run).
#
# Usage: bench/gateway.sh [embedded|distributed|all]     (default: all)
# Environment:
#   BENCH_ROUTE        crawl (GET /v1/crawl?limit=1, default) or extract
#                      (POST /v1/content/extract, a 300-byte page: the metered path)
#   BENCH_DURATION     seconds measured per arm and round (default 10)
#   BENCH_ROUNDS       rounds of the three arms at each load (default 3)
#   BENCH_WARMUP       seconds of warm-up before each arm (default 3)
#   BENCH_CONNECTIONS  connections (default 64); BENCH_THREADS wrk threads (default 2)
#   BENCH_LOADS        fixed rates to run after the peak, as fractions of the
#                      gateway's peak (default 0.5; the first one gives the ratios)
#   BENCH_PROBES       the probes' share of the paired arms' rate (default 0.1;
#                      at least 50/s, on 8 connections)
#   BENCH_OUT          directory for the raw results (default target/bench)
#   BENCH_PROFILE=1    after the measured arms, profile the gateway arm at peak with
#                      perf (call graphs of the gateway's process) into BENCH_OUT;
#                      BENCH_PROFILE_ARM=direct|nginx profiles core's under that arm
#   ANNO_BIN           an anno binary to measure instead of building target/release/anno
#   ANNO_BENCH_POSTGRES_URL  default postgres://postgres@127.0.0.1:5432/postgres
#   ANNO_BENCH_REDIS_URL     default redis://127.0.0.1:6379
# Installs wrk, nginx, jq and curl with apt-get when missing. Details and figures:
# docs/benchmarks.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHAPES=${1:-all}
ROUTE_NAME=${BENCH_ROUTE:-crawl}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
LOADS=${BENCH_LOADS:-0.5}
PROBES=${BENCH_PROBES:-0.1}
PROBE_CONNECTIONS=8
OUT=${BENCH_OUT:-$ROOT/target/bench}
POSTGRES_URL=${ANNO_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${ANNO_BENCH_REDIS_URL:-redis://127.0.0.1:6379}

case "$SHAPES" in
    all) SHAPES="embedded distributed" ;;
    embedded | distributed) ;;
    *)
        echo "usage: $0 [embedded|distributed|all]" >&2
        exit 2
        ;;
esac

case "$ROUTE_NAME" in
    crawl)
        METHOD=GET
        ROUTE_PATH='/v1/crawl?limit=1'
        BODY=''
        CONTENT_TYPE=''
        ;;
    extract)
        METHOD=POST
        ROUTE_PATH='/v1/content/extract?url=https%3A%2F%2Fbench.example%2Fa&format=text'
        BODY='<!doctype html><html><head><title>Bench</title></head><body><article><h1>A page</h1><p>Anno turns web pages into clean, structured, token-lean content for AI agents. This paragraph is what it keeps.</p><p>And this one.</p></article></body></html>'
        CONTENT_TYPE='text/html; charset=utf-8'
        ;;
    *)
        echo "BENCH_ROUTE is crawl or extract, not $ROUTE_NAME" >&2
        exit 2
        ;;
esac

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
    echo "bench: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- tools

install_missing() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v jq >/dev/null || missing+=(jq)
    command -v curl >/dev/null || missing+=(curl)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

build() {
    if [ -n "${ANNO_BIN:-}" ]; then
        ANNO=$ANNO_BIN
        log "building the fixed-rate load generator; measuring $ANNO"
    else
        log "building anno (release) and the fixed-rate load generator"
        (cd "$ROOT" && cargo build --release -p anno --quiet)
        ANNO="$ROOT/target/release/anno"
    fi
    CARGO_TARGET_DIR="$ROOT/target/loadgen" cargo build --release --quiet \
        --manifest-path "$ROOT/bench/loadgen/Cargo.toml"
    LOADGEN="$ROOT/target/loadgen/release/anno-loadgen"
}

# ---------------------------------------------------------------- processes

WORK=$(mktemp -d /tmp/anno-bench.XXXXXX)
chmod 755 "$WORK" # nginx's workers (nobody) reach their temp directories under it
PIDS=()
DATABASE=''
NAMESPACE=''

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    if [ -n "$DATABASE" ]; then
        psql "$POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null 2>&1 || true
        DATABASE=''
    fi
    if [ -n "$NAMESPACE" ]; then
        redis-cli -u "$REDIS_URL" --scan --pattern "$NAMESPACE:*" 2>/dev/null |
            xargs -r -n 500 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
        NAMESPACE=''
    fi
}

cleanup() {
    local status=$?
    stop_all
    if [ "$status" -ne 0 ]; then
        echo "bench: failed; logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USED_PORTS=' '
# A free loopback port (nothing answers on it, and this run has not handed it out).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        case "$USED_PORTS" in *" $port "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            USED_PORTS="$USED_PORTS$port "
            echo "$port"
            return
        fi
    done
}

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

wait_ready() {
    local url=$1 pid=$2 logfile=$3
    for _ in $(seq 1 600); do
        if curl -sf -o /dev/null --max-time 2 "$url/ready"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2
            die "the process behind $url stopped"
        fi
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2
    die "$url was not ready within 60 s"
}

# Starts `anno serve` with the given services in the background, with the
# settings in ENV (and no other ANNO_ variable); waits until it is ready.
start_anno() {
    local name=$1 port=$2
    shift 2
    local args=() service
    for service in "$@"; do
        args+=(--service "$service")
    done
    # shellcheck disable=SC2046 # one `-u NAME` per inherited ANNO_ variable
    env $(env | sed -n 's/^\(ANNO_[A-Z0-9_]*\)=.*/-u \1/p') "${ENV[@]}" \
        "$ANNO" serve "${args[@]}" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    COMPONENT[$name]=$pid
    wait_ready "http://127.0.0.1:$port" "$pid" "$WORK/$name.log"
}

# The settings every anno process of a shape shares, into ENV.
common_env() {
    ENV=(
        ANNO_DATA_DIR="$WORK/$SHAPE"
        ANNO_ADMIN_KEY="$ADMIN_KEY"
        ANNO_LOG_FORMAT=text
        # Long enough that the internal token given to wrk and nginx outlives the run.
        ANNO_AUTH__INTERNAL_TOKEN_TTL_SECONDS=86400
        ANNO_LISTEN="127.0.0.1:$GATEWAY_PORT"
    )
    local service upper
    for service in auth tenant config core; do
        upper=$(tr '[:lower:]' '[:upper:]' <<<"$service")
        ENV+=(
            "ANNO_SERVICES__${upper}__LISTEN=127.0.0.1:$(port_of "$service")"
            "ANNO_SERVICES__${upper}__URL=http://127.0.0.1:$(port_of "$service")"
        )
    done
}

port_of() {
    case "$1" in
        gateway) echo "$GATEWAY_PORT" ;;
        auth) echo "$AUTH_PORT" ;;
        tenant) echo "$TENANT_PORT" ;;
        config) echo "$CONFIG_PORT" ;;
        core) echo "$CORE_PORT" ;;
    esac
}

allocate_ports() {
    GATEWAY_PORT=$(free_port)
    AUTH_PORT=$(free_port)
    TENANT_PORT=$(free_port)
    CONFIG_PORT=$(free_port)
    CORE_PORT=$(free_port)
    NGINX_PORT=$(free_port)
}

declare -A COMPONENT # component name → pids whose CPU time is its own

start_embedded() {
    allocate_ports
    COMPONENT=()
    common_env
    start_anno anno "$GATEWAY_PORT" gateway auth tenant config core
}

start_distributed() {
    allocate_ports
    DATABASE="anno_bench_$(date +%s)_$(hex 3)"
    NAMESPACE="anno-bench-$(hex 4)"
    psql "$POSTGRES_URL" -q -c "CREATE DATABASE \"$DATABASE\"" >/dev/null
    local database_url="${POSTGRES_URL%/*}/$DATABASE"
    COMPONENT=()
    common_env
    ENV+=(
        ANNO_DATABASE_URL="$database_url"
        ANNO_REDIS_URL="$REDIS_URL"
        ANNO_BUS_NAMESPACE="$NAMESPACE"
        ANNO_KEY_PEPPER="$PEPPER"
        ANNO_SERVICE_SECRET="$PEPPER-service"
    )
    local service
    # Auth first: the others fetch its keys; the gateway last: it checks them all.
    for service in auth tenant config core gateway; do
        start_anno "$service" "$(port_of "$service")" "$service"
    done
}

# Onboards an enterprise tenant whose limits run on every call but never refuse,
# and gets an internal token for its key from auth. Sets API_KEY and TOKEN.
onboard() {
    local gateway="http://127.0.0.1:$GATEWAY_PORT" suffix created tenant_id
    suffix=$(hex 4)
    created=$(curl -sf -X POST "$gateway/v1/admin/tenants" \
        -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        -d "{\"name\":\"Bench $suffix\",\"domain\":\"bench-$suffix.example.com\",\"contactEmail\":\"ops@bench-$suffix.example.com\",\"plan\":\"enterprise\"}") ||
        die "onboarding the bench tenant failed"
    tenant_id=$(jq -r .tenant.id <<<"$created")
    API_KEY=$(jq -r .apiKey.key <<<"$created")
    curl -sf -o /dev/null -X PATCH "$gateway/v1/admin/tenants/$tenant_id" \
        -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        -d '{"limits":{"tenantRatePerSecond":1000000,"tenantBurst":1000000,"keyRatePerSecond":1000000,"keyBurst":1000000,"concurrentRequests":10000,"unitsPerMinute":1000000000}}' ||
        die "raising the bench tenant's limits failed"
    # What the gateway does on a cache miss: auth's verify endpoint answers the
    # principal and an internal token for it.
    TOKEN=$(curl -sf -X POST "http://127.0.0.1:$AUTH_PORT/internal/v1/verify" \
        -H 'Content-Type: application/json' -d "{\"credential\":\"$API_KEY\"}" | jq -r .token) ||
        die "getting an internal token from auth failed"
    if [ -z "$TOKEN" ] || [ "$TOKEN" = null ]; then
        die "auth gave no internal token"
    fi
}

start_nginx() {
    local dir="$WORK/nginx-$1"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/gateway.sh: a plain reverse proxy in front of core.
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream core {
        server 127.0.0.1:$CORE_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
        location / {
            proxy_pass http://core;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Whatever the client sent, core gets the internal token.
            proxy_set_header Authorization "Bearer $TOKEN";
        }
    }
}
EOF
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/health"; then
            COMPONENT[nginx]=$pid
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/error.log" >&2 || true
    die "nginx did not start"
}

# ---------------------------------------------------------------- measuring

# The URL and credential of an arm.
arm_url() {
    case "$1" in
        direct) echo "http://127.0.0.1:$CORE_PORT$ROUTE_PATH" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT$ROUTE_PATH" ;;
        gateway) echo "http://127.0.0.1:$GATEWAY_PORT$ROUTE_PATH" ;;
    esac
}
arm_credential() {
    case "$1" in
        direct) echo "$TOKEN" ;;
        nginx | gateway) echo "$API_KEY" ;;
    esac
}

# The header arguments of an arm, for curl, wrk and the load generator alike.
arm_headers() {
    HEADERS=(-H "Authorization: Bearer $(arm_credential "$1")")
    if [ -n "$CONTENT_TYPE" ]; then
        HEADERS+=(-H "Content-Type: $CONTENT_TYPE")
    fi
}

# One request through an arm must answer 2xx before it is measured.
check_arm() {
    local arm=$1 status
    arm_headers "$arm"
    local body=()
    [ -z "$BODY" ] || body=(--data-binary "$BODY")
    status=$(curl -s -o "$WORK/check-$arm.body" -w '%{http_code}' -X "$METHOD" "${HEADERS[@]}" "${body[@]}" \
        "$(arm_url "$arm")")
    case "$status" in
        2??) ;;
        *)
            cat "$WORK/check-$arm.body" >&2
            die "$arm answered $status"
            ;;
    esac
}

# CPU time (clock ticks, utime + stime) of the given pids and their threads;
# for a pid given as +PID, also that of its children that have exited (cutime +
# cstime: Postgres backends come and go).
cpu_ticks() {
    local total=0 pid stat
    for pid in "$@"; do
        stat=$(cat "/proc/${pid#+}/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))
        [ "${pid:0:1}" != + ] || total=$((total + ${14} + ${15}))
    done
    echo "$total"
}

# The pids of each component whose CPU is reported, nginx's workers and the
# backing servers included.
component_pids() {
    local name=$1
    case "$name" in
        nginx) echo "${COMPONENT[nginx]} $(pgrep -P "${COMPONENT[nginx]}" | tr '\n' ' ')" ;;
        redis) pgrep -x redis-server | tr '\n' ' ' ;;
        # The postmaster (and the backends that exited), then the live backends.
        postgres) echo "+$(pgrep -o -x postgres) $(pgrep -x postgres | tr '\n' ' ')" ;;
        *) echo "${COMPONENT[$name]}" ;;
    esac
}

components() {
    local names=("${!COMPONENT[@]}")
    if [ "$SHAPE" = distributed ]; then
        names+=(redis postgres)
    fi
    printf '%s\n' "${names[@]}" | sort
}

declare -A CPU_BEFORE
cpu_start() {
    local name
    for name in $(components); do
        # shellcheck disable=SC2046
        CPU_BEFORE[$name]=$(cpu_ticks $(component_pids "$name"))
    done
}

# `name=µs/request …` of the CPU each component used since cpu_start.
cpu_per_request() {
    local requests=$1 name now ticks_per_second out=''
    ticks_per_second=$(getconf CLK_TCK)
    for name in $(components); do
        # shellcheck disable=SC2046
        now=$(cpu_ticks $(component_pids "$name"))
        out+="$name=$(((now - ${CPU_BEFORE[$name]}) * 1000000 / ticks_per_second / (requests > 0 ? requests : 1))) "
    done
    echo "$out"
}

# RESULT line → value of one key.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

RESULTS=()
# Runs one arm; appends "shape arm load rps p50 p99 errors cpu…" to RESULTS.
measure() {
    local arm=$1 load=$2 url result client_cpu line
    url=$(arm_url "$arm")
    arm_headers "$arm"
    export BENCH_METHOD="$METHOD" BENCH_BODY="$BODY"
    local timing="$WORK/time" TIMEFORMAT='%U %S'
    if [ "$load" = peak ]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$ROOT/bench/wrk-report.lua" "${HEADERS[@]}" "$url" >/dev/null
        cpu_start
        { time wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$ROOT/bench/wrk-report.lua" \
            "${HEADERS[@]}" "$url" >"$WORK/out"; } 2>"$timing"
    else
        cpu_start
        local body=()
        [ -z "$BODY" ] || body=(--body "$BODY")
        # The load generator's warm-up is part of its run: CPU is counted over both.
        { time "$LOADGEN" --url "$url" "${HEADERS[@]}" --method "$METHOD" "${body[@]}" --rate "$load" \
            --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" >"$WORK/out"; } 2>"$timing"
    fi
    result=$(grep -m1 '^RESULT ' "$WORK/out") || {
        cat "$WORK/out" >&2
        die "$arm: no result"
    }
    local requests
    requests=$(field "$result" requests)
    if [ "$load" != peak ]; then
        # CPU was counted over warm-up and measurement: per request of both.
        requests=$(awk -v r="$load" -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", r * (d + w) }')
    fi
    local cpu
    cpu=$(cpu_per_request "$requests")
    client_cpu=$(awk -v n="$requests" '{ printf "%d", ($1 + $2) * 1e6 / (n > 0 ? n : 1) }' "$timing")
    line="$SHAPE $arm $load $(field "$result" rps) $(field "$result" p50_us) $(field "$result" p99_us) $(($(field "$result" non2xx) + $(field "$result" errors))) ${cpu}client=$client_cpu"
    RESULTS+=("$line")
    echo "$line" >>"$RAW"
    printf '  %-8s %-8s %7s req/s  p50 %6.2f ms  p99 %6.2f ms  (cpu µs/req: %s)\n' "$arm" "$load" \
        "$(field "$result" rps)" "$(awk -v u="$(field "$result" p50_us)" 'BEGIN{print u/1000}')" \
        "$(awk -v u="$(field "$result" p99_us)" 'BEGIN{print u/1000}')" "${cpu}client=$client_cpu" >&2
}

PAIRED=()
# Runs one arm at a fixed rate with direct probes beside it; appends "shape arm
# rate p50 p99 probe_p50 probe_p99 errors" to PAIRED.
measure_paired() {
    local arm=$1 rate=$2 probe_rate result probe line
    probe_rate=$(awk -v r="$rate" -v s="$PROBES" 'BEGIN { p = int(r * s); print (p < 50 ? 50 : p) }')
    local request=(--method "$METHOD")
    [ -z "$BODY" ] || request+=(--body "$BODY")
    arm_headers "$arm"
    local arm_target=(--url "$(arm_url "$arm")" "${HEADERS[@]}" "${request[@]}" --rate "$rate" --connections "$CONNECTIONS")
    arm_headers direct
    local probe_target=(--url "$(arm_url direct)" "${HEADERS[@]}" "${request[@]}" --rate "$probe_rate" \
        --connections "$PROBE_CONNECTIONS")
    "$LOADGEN" --duration "$DURATION" --warmup "$WARMUP" "${arm_target[@]}" "${probe_target[@]}" >"$WORK/out"
    if ! result=$(grep '^RESULT target=1 ' "$WORK/out") || ! probe=$(grep '^RESULT target=2 ' "$WORK/out"); then
        cat "$WORK/out" >&2
        die "$arm with probes: no result"
    fi
    line="$SHAPE $arm $rate $(field "$result" p50_us) $(field "$result" p99_us) $(field "$probe" p50_us) $(field "$probe" p99_us) $(($(field "$result" non2xx) + $(field "$result" errors) + $(field "$probe" non2xx) + $(field "$probe" errors)))"
    PAIRED+=("$line")
    echo "paired $line" >>"$RAW"
    printf '  %-8s %-8s p50 %6.2f ms  p99 %6.2f ms;  direct probes at %s/s beside it: p50 %6.2f ms  p99 %6.2f ms;  added p99 %6.2f ms\n' \
        "$arm" "$rate" "$(ms "$(field "$result" p50_us)")" "$(ms "$(field "$result" p99_us)")" "$probe_rate" \
        "$(ms "$(field "$probe" p50_us)")" "$(ms "$(field "$probe" p99_us)")" \
        "$(ms $(($(field "$result" p99_us) - $(field "$probe" p99_us))))" >&2
}

# awk: sorts x[1..n] in place (a handful of rounds: insertion sort) and returns its median.
AWK_MEDIAN='
    function median(x, n,   j, k, t) {
        for (j = 2; j <= n; j++) for (k = j; k > 1 && x[k - 1] > x[k]; k--) { t = x[k]; x[k] = x[k - 1]; x[k - 1] = t }
        return n % 2 ? x[(n + 1) / 2] : int((x[n / 2] + x[n / 2 + 1]) / 2)
    }'

# "median min max" over the rounds of an arm's paired p99 less its probes' (µs).
paired_added() {
    printf '%s\n' "${PAIRED[@]}" | awk -v s="$1" -v a="$2" "$AWK_MEDIAN"'
        $1 == s && $2 == a { x[++n] = $5 - $7 }
        END { if (n) { m = median(x, n); print m, x[1], x[n] } }'
}

# The figures of one arm from RESULTS ("peak", or the first fixed rate: "half"):
# "rps p50 p99 errors", each the median over the arm's rounds (errors: the sum).
lookup() {
    local shape=$1 arm=$2 load=$3
    [ "$load" != half ] || load=${HALF[$shape]}
    printf '%s\n' "${RESULTS[@]}" | awk -v s="$shape" -v a="$arm" -v l="$load" "$AWK_MEDIAN"'
        $1 == s && $2 == a && $3 == l { n++; rps[n] = $4; p50[n] = $5; p99[n] = $6; errors += $7 }
        END { if (n) print median(rps, n), median(p50, n), median(p99, n), errors }'
}

declare -A HALF # shape → the first fixed rate it ran at

# The three arms in turn at one load, ROUNDS times.
rounds() {
    local arm
    for _ in $(seq 1 "$ROUNDS"); do
        for arm in direct nginx gateway; do
            measure "$arm" "$1"
        done
    done
}

run_shape() {
    SHAPE=$1
    ADMIN_KEY="bench-admin-$(hex 16)"
    PEPPER="bench-pepper-$(hex 24)"
    log "$SHAPE: starting the platform"
    "start_$SHAPE"
    onboard
    start_nginx "$SHAPE"
    local arm
    for arm in direct nginx gateway; do
        check_arm "$arm"
    done
    log "$SHAPE: $METHOD ${ROUTE_PATH%%\?*} at peak: wrk -t$THREADS -c$CONNECTIONS, ${WARMUP} s warm-up, ${DURATION} s measured, $ROUNDS rounds"
    rounds peak
    local peak fraction rate
    peak=$(lookup "$SHAPE" gateway peak | cut -d' ' -f1)
    for fraction in $LOADS; do
        rate=$(awk -v p="$peak" -v f="$fraction" 'BEGIN { printf "%d", p * f }')
        [ -n "${HALF[$SHAPE]:-}" ] || HALF[$SHAPE]=$rate
        log "$SHAPE: at $fraction of the gateway's peak, $rate req/s (open loop, $CONNECTIONS connections, $ROUNDS rounds)"
        rounds "$rate"
    done
    log "$SHAPE: paired at ${HALF[$SHAPE]} req/s, direct probes beside each arm ($ROUNDS rounds)"
    for _ in $(seq 1 "$ROUNDS"); do
        for arm in nginx gateway; do
            measure_paired "$arm" "${HALF[$SHAPE]}"
        done
    done
    if [ "${BENCH_PROFILE:-0}" = 1 ]; then
        profile
    fi
    stop_all
}

# The gateway arm at peak again, unmeasured, under perf with call graphs: where
# the gateway's process (embedded: the one process) spends its CPU, inclusive
# of callees for the platform's own functions, and by symbol.
profile() {
    command -v perf >/dev/null || {
        log "perf is not installed: no profile"
        return
    }
    local arm=${BENCH_PROFILE_ARM:-gateway}
    local data="$OUT/perf-$SHAPE-$arm-$STAMP.data" report="$OUT/perf-$SHAPE-$arm-$STAMP.txt" pid
    pid=${COMPONENT[gateway]:-${COMPONENT[anno]}}
    [ "$arm" = gateway ] || pid=${COMPONENT[core]:-${COMPONENT[anno]}}
    log "$SHAPE: profiling the $arm arm at peak (perf, ${DURATION} s, pid $pid)"
    arm_headers "$arm"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((DURATION + 2))s" -s "$ROOT/bench/wrk-report.lua" "${HEADERS[@]}" \
        "$(arm_url "$arm")" >/dev/null &
    local load=$!
    sleep 1
    # shellcheck disable=SC2086 # BENCH_PERF_ARGS is a list of arguments
    perf record -q ${BENCH_PERF_ARGS:---call-graph dwarf,16384 -F 149} -p "$pid" -o "$data" -- sleep "$DURATION" \
        >/dev/null 2>&1 || true
    wait "$load" || true
    {
        echo "# perf: $SHAPE, pid $pid under the $arm arm at peak, $METHOD $ROUTE_PATH"
        echo "# by shared object (self)"
        perf_table "$data" "--no-children --sort dso" 8
        echo
        echo "# some functions with what they call (children, self); async frames unwind only in part"
        perf_table "$data" "--children --sort symbol -g none" 100000 >"$WORK/children"
        local key
        for key in 'Dispatcher<D,Bs,I,T>::poll_catch' 'anno_gateway::proxy::forward' 'anno_gateway::limit::admit' \
            'anno_limits::' 'redis::' 'anno_audit::recorder::Recorder::record' 'anno_bus::stream::consume' \
            'anno_audit::store::AuditStore::append' 'anno_api::token::Caller' 'jsonwebtoken::decoding::decode' \
            'anno_core::crawl::handlers::list' 'ConnectionWorker::ping' 'anno_telemetry::http_metrics'; do
            grep -m1 -F "$key" "$WORK/children" || true
        done
        echo
        echo "# by symbol (self)"
        perf_table "$data" "--no-children --sort dso,symbol -g none" 40
    } >"$report"
    log "$SHAPE: profile in $report (data: $data)"
}

# The first rows of a flat perf report, without its padding.
perf_table() {
    # shellcheck disable=SC2086 # $2: perf report's sort arguments
    perf report -i "$1" --no-inline $2 --stdio 2>/dev/null |
        awk -v rows="$3" '/^ +[0-9.]+%/ { sub(/ +- +- *$/, ""); gsub(/  +/, " "); print substr($0, 1, 200); if (++n == rows) exit }' || true
}

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

report() {
    local shape arm load rps p50 p99 errors line
    echo
    echo "Gateway benchmark: $METHOD ${ROUTE_PATH}, $(nproc) cores shared by the servers and the load generator;"
    echo "$ROUNDS rounds of ${DURATION} s an arm at each load, the arms in turn; the ratios are of the arms' medians"
    echo
    printf '| %-11s | %-7s | %-13s | %9s | %8s | %8s | %6s |\n' shape arm load 'req/s' 'p50 ms' 'p99 ms' errors
    echo '|-------------|---------|---------------|----------:|---------:|---------:|-------:|'
    for line in "${RESULTS[@]}"; do
        read -r shape arm load rps p50 p99 errors _ <<<"$line"
        [ "$load" = peak ] && load="peak, ${CONNECTIONS} conn" || load="$load/s fixed"
        printf '| %-11s | %-7s | %-13s | %9s | %8s | %8s | %6s |\n' "$shape" "$arm" "$load" "$rps" "$(ms "$p50")" \
            "$(ms "$p99")" "$errors"
    done
    echo
    echo "Medians over the rounds:"
    echo
    printf '| %-11s | %-7s | %-13s | %9s | %8s | %8s | %6s |\n' shape arm load 'req/s' 'p50 ms' 'p99 ms' errors
    echo '|-------------|---------|---------------|----------:|---------:|---------:|-------:|'
    local key shown=' '
    for line in "${RESULTS[@]}"; do
        read -r shape arm load _ <<<"$line"
        key="$shape/$arm/$load"
        case "$shown" in *" $key "*) continue ;; esac
        shown="$shown$key "
        read -r rps p50 p99 errors <<<"$(lookup "$shape" "$arm" "$load")"
        [ "$load" = peak ] && load="peak, ${CONNECTIONS} conn" || load="$load/s fixed"
        printf '| %-11s | %-7s | %-13s | %9s | %8s | %8s | %6s |\n' "$shape" "$arm" "$load" "$rps" "$(ms "$p50")" \
            "$(ms "$p99")" "$errors"
    done
    echo
    for shape in $SHAPES; do
        local g n d gh nh dh
        read -r g _ _ _ <<<"$(lookup "$shape" gateway peak)"
        read -r n _ _ _ <<<"$(lookup "$shape" nginx peak)"
        read -r d _ _ _ <<<"$(lookup "$shape" direct peak)"
        read -r _ _ gh _ <<<"$(lookup "$shape" gateway half)"
        read -r _ _ nh _ <<<"$(lookup "$shape" nginx half)"
        read -r _ _ dh _ <<<"$(lookup "$shape" direct half)"
        local goal='≥ 1.00'
        [ "$shape" = distributed ] && goal='≥ 0.50'
        echo "$shape: gateway/nginx throughput $(ratio "$g" "$n") (goal $goal), gateway/direct $(ratio "$g" "$d"), nginx/direct $(ratio "$n" "$d");"
        local p99_goal=' (goal < 1 ms)'
        [ "$shape" = embedded ] || p99_goal=''
        echo "$shape: added p99 at ${HALF[$shape]} req/s (the first fixed rate), arms in turn: gateway $(ms $((gh - dh))) ms, nginx $(ms $((nh - dh))) ms"
        local ga gmin gmax na nmin nmax
        read -r ga gmin gmax <<<"$(paired_added "$shape" gateway)"
        read -r na nmin nmax <<<"$(paired_added "$shape" nginx)"
        echo "$shape: added p99 at ${HALF[$shape]} req/s, paired with direct probes at the same moments (median of rounds; range): gateway $(ms "$ga") ms ($(ms "$gmin") to $(ms "$gmax"))$p99_goal, nginx $(ms "$na") ms ($(ms "$nmin") to $(ms "$nmax"))"
    done
    echo
    echo "CPU per request (µs: user + system time of each process over the arm, divided by its requests):"
    echo
    local cpu
    for line in "${RESULTS[@]}"; do
        read -r shape arm load _ _ _ _ cpu <<<"$line"
        printf '  %-11s %-7s %-6s %s\n' "$shape" "$arm" "$load" "$cpu"
    done
    echo
    echo "Paired at half of the peak: each arm and the direct probes sent beside it (p50 and p99, ms):"
    echo
    printf '| %-11s | %-7s | %-9s | %8s | %8s | %12s | %12s | %9s | %6s |\n' shape arm 'req/s' 'p50' 'p99' 'probes p50' \
        'probes p99' 'added p99' errors
    echo '|-------------|---------|----------:|---------:|---------:|-------------:|-------------:|----------:|-------:|'
    local probe_p50 probe_p99
    for line in "${PAIRED[@]}"; do
        read -r shape arm load p50 p99 probe_p50 probe_p99 errors <<<"$line"
        printf '| %-11s | %-7s | %9s | %8s | %8s | %12s | %12s | %9s | %6s |\n' "$shape" "$arm" "$load" "$(ms "$p50")" \
            "$(ms "$p99")" "$(ms "$probe_p50")" "$(ms "$probe_p99")" "$(ms $((p99 - probe_p99)))" "$errors"
    done
    echo
    echo "Raw figures: $RAW"
}

main() {
    install_missing
    build
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
        log "warning: load average $load before the run: other work shares these $(nproc) cores"
    fi
    mkdir -p "$OUT"
    STAMP=$(date +%Y%m%dT%H%M%S)
    RAW="$OUT/gateway-$STAMP.txt"
    {
        echo "# $(date -u +%FT%TZ) $METHOD $ROUTE_PATH; $(nproc) × $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)"
        if [ -n "${ANNO_BIN:-}" ]; then
            echo "# anno: $ANNO_BIN; load average before: $load"
        else
            echo "# anno: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown); load average before: $load"
        fi
        echo "# shape arm load rps p50_us p99_us errors cpu_us_per_request…"
    } >"$RAW"
    for shape in $SHAPES; do
        run_shape "$shape"
    done
    report
}

main

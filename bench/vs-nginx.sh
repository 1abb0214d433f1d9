#!/usr/bin/env bash
# Switchyard vs nginx vs HAProxy as reverse proxies: one worker each, the proxy alone on its own
# core, the same backend behind all three with the same upstream keep-alive policy, the same
# load. Measures, for each proxy (see bench/README.md for the method in full):
#   1. closed loop (wrk, 1 thread, CONNS keep-alive connections): CPU µs per request (utime +
#      stime from /proc ÷ requests) and rps, for each body size in SIZES;
#   2. memory: RSS idle before any load, peak during the 1 MiB runs (VmHWM), idle after them;
#   3. open loop (oha at fixed rates, latency-corrected, 1 KiB): p50 and p99, also directly
#      against the backend as a floor;
#   4. serial hop cost: one connection, one request at a time (wrk -c1): median latency through
#      each proxy minus the same measured directly against the backend.
# All proxies stay up for the whole run (idle while another is measured); the measured runs are
# interleaved switchyard, nginx, haproxy, switchyard, … and the tables show medians over REPS.
#
# Knobs (environment):
#   DURATION=8 (s per closed-loop run), REPS=3, CONNS=64, SIZES="1k 64k 1m", WARMUP=2 (s per size
#   and proxy, unmeasured), TENANTS=16, UPSTREAM_KEEPALIVE=64 (idle connections each proxy keeps
#   to the backend), UPSTREAM_IDLE=60 (s before an idle one is closed),
#   RATES="5000 10000 20000" (open loop, req/s), OPEN_DURATION=$DURATION, OPEN_DIRECT=1 (also run
#   the open loop straight at the backend), OPEN_TENANTS=host|header (see README),
#   SERIAL_DURATION=5, IDLE_AFTER=5 (s after the 1 MiB runs before the idle-after RSS),
#   PEERS="switchyard nginx haproxy", PHASES="closed open serial" (add "syscalls" for system
#   calls per request, counted with perf in separate runs), QUICK=1 (short smoke run),
#   PIN=1 with PROXY_CPUS / BACKEND_CPUS / WRK_CPUS (WRK_CPUS also pins oha), NICE=-10 (run
#   every process of the bench at that nice level: less interference on a shared machine),
#   SWITCHYARD_BIN + BACKEND_BIN (measure given binaries), NO_BUILD=1, OHA_BIN,
#   NGINX_PROXY_EXTRA="directives;", NGINX_MAX_TEMP_FILE=0 (1024m: nginx's disk spooling default),
#   HAPROXY_SERVER_EXTRA="server options",
#   OUT=FILE (copy of the per-run TSV), KEEP=1 (keep the work dir with every raw output).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
    DURATION=${DURATION:-3} REPS=${REPS:-1} WARMUP=${WARMUP:-1}
    SERIAL_DURATION=${SERIAL_DURATION:-2} IDLE_AFTER=${IDLE_AFTER:-3}
fi
DURATION=${DURATION:-8}
REPS=${REPS:-3}
CONNS=${CONNS:-64}
SIZES=${SIZES:-"1k 64k 1m"}
WARMUP=${WARMUP:-2}
TENANTS=${TENANTS:-16}
UPSTREAM_KEEPALIVE=${UPSTREAM_KEEPALIVE:-64}
UPSTREAM_IDLE=${UPSTREAM_IDLE:-60}
RATES=${RATES:-"5000 10000 20000"}
OPEN_DURATION=${OPEN_DURATION:-$DURATION}
OPEN_DIRECT=${OPEN_DIRECT:-1}
OPEN_TENANTS=${OPEN_TENANTS:-host}
SERIAL_DURATION=${SERIAL_DURATION:-5}
IDLE_AFTER=${IDLE_AFTER:-5}
PEERS=${PEERS:-"switchyard nginx haproxy"}
PHASES=${PHASES:-"closed open serial"}
NGINX_PROXY_EXTRA=${NGINX_PROXY_EXTRA:-}
NGINX_MAX_TEMP_FILE=${NGINX_MAX_TEMP_FILE:-0}
HAPROXY_SERVER_EXTRA=${HAPROXY_SERVER_EXTRA:-}
MEM_SIZE=1m

has() { case " $2 " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
case "$OPEN_TENANTS" in host | header) ;; *) die "OPEN_TENANTS must be host or header" ;; esac

ensure_packages nginx haproxy wrk curl jq
has syscalls "$PHASES" && ensure_packages perf
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
release_binaries "$REPO"
has open "$PHASES" && ensure_oha "$REPO"
plan_cpus

start_work vs-nginx
LOAD_START=$(loadavg)
log "load average at start: $LOAD_START"

BACKEND_PORT=$(free_port)
declare -A PORT PIDS_OF
PORT[switchyard]=$(free_port)
GW_ADMIN_PORT=$(free_port)
PORT[nginx]=$(free_port)
PORT[haproxy]=$(free_port)
PORT[direct]=$BACKEND_PORT

# --- backend -------------------------------------------------------------------------------
pinned "$BACKEND_CPUS" "$BACKEND_BIN" --listen "127.0.0.1:$BACKEND_PORT" --workers 1 \
    >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$BACKEND_PORT/1k" 10 || die "backend did not start (see $WORK/backend.log)"

# --- Switchyard ----------------------------------------------------------------------------
# The config is switchyard_bench_config (lib.sh): a full tenant + route + sticky-bucket decision
# on every request, two pools of the same backend, each keeping up to UPSTREAM_KEEPALIVE idle
# connections for UPSTREAM_IDLE seconds, like nginx's `keepalive` and HAProxy's pool-max-conn.
start_switchyard() {
    local dir=$WORK/switchyard
    mkdir -p "$dir"
    switchyard_bench_config "${PORT[switchyard]}" "$GW_ADMIN_PORT" "$BACKEND_PORT" \
        "$UPSTREAM_KEEPALIVE" "$UPSTREAM_IDLE" >"$dir/switchyard.toml"
    "$SWITCHYARD_BIN" check --config "$dir/switchyard.toml" >&2 || die "switchyard config rejected"
    pinned "$PROXY_CPUS" "$SWITCHYARD_BIN" run --config "$dir/switchyard.toml" >"$dir/out.log" 2>&1 &
    PIDS+=($!)
    PIDS_OF[switchyard]=$!
    wait_http "http://127.0.0.1:${PORT[switchyard]}/api/bench/1k" 15 \
        || die "switchyard did not start (see $dir/out.log)"
}

# --- nginx ---------------------------------------------------------------------------------
# Its own prefix: config, pid, logs and temp paths under $WORK/nginx; never /etc/nginx or port
# 80. One worker; upstream keep-alive over HTTP/1.1 (`keepalive`, `proxy_http_version 1.1`,
# an empty Connection header); keepalive_requests raised on both sides so nothing recycles
# connections during a run (Switchyard and HAProxy do not); proxy_max_temp_file_size 0 so
# large responses stream through memory buffers instead of being spooled to disk (the other
# two never touch the disk). Buffer sizes are nginx's defaults; NGINX_PROXY_EXTRA adds to them.
start_nginx() {
    local nx=$WORK/nginx
    mkdir -p "$nx/logs" "$nx/tmp"
    cat >"$nx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $nx/nginx.pid;
error_log $nx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $nx/tmp/body;
    proxy_temp_path $nx/tmp/proxy;
    fastcgi_temp_path $nx/tmp/fastcgi;
    uwsgi_temp_path $nx/tmp/uwsgi;
    scgi_temp_path $nx/tmp/scgi;
    keepalive_requests 1000000;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive $UPSTREAM_KEEPALIVE;
        keepalive_timeout ${UPSTREAM_IDLE}s;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size $NGINX_MAX_TEMP_FILE;
            $NGINX_PROXY_EXTRA
        }
    }
}
EOF
    "$NGINX" -t -q -p "$nx" -c "$nx/nginx.conf" -e "$nx/logs/error.log" >&2 || die "nginx config rejected"
    pinned "$PROXY_CPUS" "$NGINX" -p "$nx" -c "$nx/nginx.conf" -e "$nx/logs/error.log" \
        >"$nx/out.log" 2>&1 &
    PIDS+=($!)
    local master=$!
    wait_http "http://127.0.0.1:${PORT[nginx]}/api/bench/1k" 10 \
        || die "nginx did not start (see $nx/logs/error.log)"
    PIDS_OF[nginx]=$(with_children "$master" | tr '\n' ' ')
    [ "$(wc -w <<<"${PIDS_OF[nginx]}")" -ge 2 ] || die "nginx worker not found"
}

# --- HAProxy -------------------------------------------------------------------------------
# Foreground (-db), no master process, one thread. No `log` line, so nothing is logged.
# Upstream: keep-alive with `http-reuse always` (any idle connection serves any request, as
# in nginx's and Switchyard's pools), at most UPSTREAM_KEEPALIVE idle connections
# (pool-max-conn), purged after UPSTREAM_IDLE s. Buffers are HAProxy's defaults (16 KiB).
start_haproxy() {
    local hx=$WORK/haproxy
    mkdir -p "$hx"
    cat >"$hx/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive ${UPSTREAM_IDLE}s

frontend bench
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend backend

backend backend
    server backend 127.0.0.1:$BACKEND_PORT pool-max-conn $UPSTREAM_KEEPALIVE pool-purge-delay ${UPSTREAM_IDLE}s $HAPROXY_SERVER_EXTRA
EOF
    "$HAPROXY" -c -q -f "$hx/haproxy.cfg" >&2 || die "haproxy config rejected"
    pinned "$PROXY_CPUS" "$HAPROXY" -db -f "$hx/haproxy.cfg" >"$hx/out.log" 2>&1 &
    PIDS+=($!)
    local pid=$!
    wait_http "http://127.0.0.1:${PORT[haproxy]}/api/bench/1k" 10 \
        || die "haproxy did not start (see $hx/out.log)"
    PIDS_OF[haproxy]=$(with_children "$pid" | tr '\n' ' ')
}

for peer in $PEERS; do
    case "$peer" in
        switchyard) start_switchyard ;;
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
        *) die "unknown peer $peer (PEERS takes switchyard, nginx, haproxy)" ;;
    esac
done
sleep 1

# --- helpers -------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
RAW=$WORK/raw.tsv
printf 'phase\tkey\tpeer\trep\trequests\trps\tp50_ms\tp99_ms\tcpu_us_per_req\terrors\thwm_mib\tbackend_conns\tuser_us_per_req\tbusy_pct\trunq_pct\n' >"$RAW"

# shellcheck disable=SC2086
peer_cpu() { sum_over cpu_ticks ${PIDS_OF[$1]}; }
# shellcheck disable=SC2086
peer_user() { sum_over user_ticks ${PIDS_OF[$1]}; }
# "RUN_NS WAIT_NS WALL_NS" of a peer (all processes and threads), for busy_runq.
peer_sched() {
    local p
    for p in ${PIDS_OF[$1]}; do sched_ns "$p"; done | awk -v t="$(date +%s%N)" '{ r += $1; w += $2 } END { printf "%.0f %.0f %.0f\n", r, w, t }'
}
# busy_runq "BEFORE" "AFTER" → "BUSY_PCT\tRUNQ_PCT": share of the wall time the peer spent on a
# CPU, and runnable but waiting for one (a core shared with other work shows up here).
busy_runq() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); w = y[3] - x[3]
        printf "%.1f\t%.1f", (y[1] - x[1]) / w * 100, (y[2] - x[2]) / w * 100 }'
}
# shellcheck disable=SC2086
peer_rss() { sum_over rss_kb ${PIDS_OF[$1]}; }
# shellcheck disable=SC2086
peer_hwm() { sum_over hwm_kb ${PIDS_OF[$1]}; }
peer_reset_hwm() { local p; for p in ${PIDS_OF[$1]}; do reset_hwm "$p"; done; }
# Established connections from the peer's processes to the backend.
peer_backend_conns() {
    local users p n=0
    users=$(ss -Htnp state established "( dport = :$BACKEND_PORT )" 2>/dev/null)
    for p in ${PIDS_OF[$1]}; do n=$((n + $(grep -c "pid=$p," <<<"$users"))); done
    echo "$n"
}
kv() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<" $2"; }

declare -A IDLE_BEFORE IDLE_AFTER_KB
for peer in $PEERS; do IDLE_BEFORE[$peer]=$(peer_rss "$peer"); done

write_wrk_script "$WORK/load.lua"

# wrk_run PEER SIZE SECONDS CONNS: sets BENCH to wrk's BENCH line (raw output appended to
# wrk.log). Not meant for $(…): the shell must wait in run_load, where a signal interrupts it.
wrk_run() {
    local out=$WORK/wrk.out
    run_load "$out" "$WRK_CPUS" timeout -k 5 $(($3 + 30)) \
        wrk -t1 -c"$4" -d"${3}s" --timeout 5s --latency -s "$WORK/load.lua" \
        "http://127.0.0.1:${PORT[$1]}/api/bench/$2" -- "/api/bench/$2" "$TENANTS"
    { echo "== $1 $2 ${3}s c$4"; cat "$out"; } >>"$WORK/wrk.log"
    BENCH=$(grep '^BENCH' "$out" | tail -1)
}

# closed PEER SIZE REP: one measured wrk run → a row in RAW
closed() {
    local peer=$1 size=$2 rep=$3 before after ubefore uafter sbefore safter line n d errs sampler
    peer_reset_hwm "$peer"
    # Connections to the backend, counted half-way through the run (after it, a proxy may have
    # closed those whose response the client abandoned when wrk stopped).
    rm -f "$WORK/conns"
    (sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')" && peer_backend_conns "$peer" >"$WORK/conns") &
    sampler=$!
    before=$(peer_cpu "$peer") ubefore=$(peer_user "$peer") sbefore=$(peer_sched "$peer")
    wrk_run "$peer" "$size" "$DURATION" "$CONNS"
    line=$BENCH
    after=$(peer_cpu "$peer") uafter=$(peer_user "$peer") safter=$(peer_sched "$peer")
    wait "$sampler"
    [ -n "$line" ] || die "wrk gave no result for $peer $size (see $WORK/wrk.log, KEEP=1)"
    n=$(kv requests "$line") d=$(kv duration_us "$line")
    errs=$(($(kv errors "$line") + $(kv status "$line")))
    [ "$n" -gt 0 ] || die "no requests served by $peer for $size"
    [ "$errs" -eq 0 ] || log "warning: $peer $size rep $rep: $errs failed requests"
    awk -v k="$size" -v p="$peer" -v r="$rep" -v n="$n" -v d="$d" -v p50="$(kv p50_us "$line")" \
        -v p99="$(kv p99_us "$line")" -v t=$((after - before)) -v hz="$CLK_TCK" -v e="$errs" \
        -v hwm="$(peer_hwm "$peer")" -v c="$(cat "$WORK/conns" 2>/dev/null || echo 0)" -v u=$((uafter - ubefore)) \
        -v br="$(busy_runq "$sbefore" "$safter")" \
        'BEGIN { printf "closed\t%s\t%s\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.2f\t%d\t%.1f\t%d\t%.2f\t%s\n",
                 k, p, r, n, n / (d / 1e6), p50 / 1000, p99 / 1000, t / hz * 1e6 / n, e, hwm / 1024, c, u / hz * 1e6 / n, br }' >>"$RAW"
}

# The URLs oha sends: with OPEN_TENANTS=host, 16 host names tenant-N.bench.test, each mapped to
# the peer's port with --connect-to (oha picks one at random per request); with header, one URL
# and a fixed x-tenant-id.
oha_target_args() {
    local port=${PORT[$1]} t
    OHA_ARGS=()
    if [ "$OPEN_TENANTS" = host ]; then
        : >"$WORK/urls-$1.txt"
        for t in $(seq 1 "$TENANTS"); do
            echo "http://tenant-$t.bench.test:$port/api/bench/1k" >>"$WORK/urls-$1.txt"
            OHA_ARGS+=(--connect-to "tenant-$t.bench.test:$port:127.0.0.1:$port")
        done
        OHA_ARGS+=(--urls-from-file "$WORK/urls-$1.txt")
    else
        OHA_ARGS+=(-H "x-tenant-id: tenant-1" "http://127.0.0.1:$port/api/bench/1k")
    fi
}

# open PEER RATE REP: one fixed-rate oha run (latency-corrected) → a row in RAW
open_run() {
    local peer=$1 rate=$2 rep=$3 before=0 after=0 json=$WORK/oha-$1-$2-$3.json row
    oha_target_args "$peer"
    local sbefore="0 0 1" safter="0 0 1"
    [ "$peer" = direct ] || before=$(peer_cpu "$peer") sbefore=$(peer_sched "$peer")
    rm -f "$json"
    run_load "$WORK/oha.out" "$WRK_CPUS" timeout -k 5 $((OPEN_DURATION + 30)) \
        "$OHA" --no-tui --output-format json -o "$json" --worker-threads 1 -c "$CONNS" -q "$rate" \
        --latency-correction -z "${OPEN_DURATION}s" -t 10s "${OHA_ARGS[@]}"
    { echo "== $peer $rate/s rep $rep"; cat "$WORK/oha.out"; } >>"$WORK/oha.log"
    [ "$peer" = direct ] || after=$(peer_cpu "$peer") safter=$(peer_sched "$peer")
    row=$(jq -r --arg dur "$OPEN_DURATION" '
        ([.statusCodeDistribution[]] | add // 0) as $ok
        | ([.errorDistribution | to_entries[] | select(.key | test("deadline") | not) | .value] | add // 0) as $err
        | [$ok, ($ok / ($dur | tonumber)), .latencyPercentiles.p50 * 1000, .latencyPercentiles.p99 * 1000, $err]
        | @tsv' "$json" 2>/dev/null) || die "oha gave no result for $peer at $rate/s (see $json, KEEP=1)"
    awk -F'\t' -v k="$rate" -v p="$peer" -v r="$rep" -v t=$((after - before)) -v hz="$CLK_TCK" \
        -v br="$(if [ "$peer" = direct ]; then printf 'nan\tnan'; else busy_runq "$sbefore" "$safter"; fi)" \
        '{ n = $1; cpu = (p == "direct" || n == 0) ? "nan" : sprintf("%.2f", t / hz * 1e6 / n)
           printf "open\t%s\t%s\t%d\t%d\t%.0f\t%.3f\t%.3f\t%s\t%d\tnan\t0\tnan\t%s\n", k, p, r, n, $2, $3, $4, cpu, $5, br }' \
        <<<"$row" >>"$RAW"
    local achieved
    achieved=$(awk -F'\t' '{ print $2 }' <<<"$row")
    awk -v a="$achieved" -v q="$rate" 'BEGIN { exit !(a < 0.97 * q) }' \
        && log "warning: $peer at $rate/s: only $(printf '%.0f' "$achieved")/s completed (the generator or the proxy fell behind)"
}

# serial PEER REP: one connection, one request at a time → a row in RAW
serial() {
    local peer=$1 rep=$2 line
    wrk_run "$peer" 1k "$SERIAL_DURATION" 1
    line=$BENCH
    [ -n "$line" ] || die "wrk gave no result for serial $peer"
    awk -v p="$peer" -v r="$rep" -v n="$(kv requests "$line")" -v d="$(kv duration_us "$line")" \
        -v p50="$(kv p50_us "$line")" -v p99="$(kv p99_us "$line")" \
        -v e=$(($(kv errors "$line") + $(kv status "$line"))) \
        'BEGIN { printf "serial\t1k\t%s\t%d\t%d\t%.0f\t%.3f\t%.3f\tnan\t%d\tnan\t0\tnan\tnan\tnan\n",
                 p, r, n, n / (d / 1e6), p50 / 1000, p99 / 1000, e }' >>"$RAW"
}

# --- runs ----------------------------------------------------------------------------------
log "pinning: proxy=${PROXY_CPUS:-any} backend=${BACKEND_CPUS:-any} load generator=${WRK_CPUS:-any} (nproc $(nproc))"
log "ports: backend $BACKEND_PORT, switchyard ${PORT[switchyard]} (admin $GW_ADMIN_PORT), nginx ${PORT[nginx]}, haproxy ${PORT[haproxy]}; work dir $WORK"

if has closed "$PHASES"; then
    for size in $SIZES; do
        log "closed loop, $size: warm-up ${WARMUP}s each"
        for peer in $PEERS; do wrk_run "$peer" "$size" "$WARMUP" "$CONNS"; done
        for rep in $(seq 1 "$REPS"); do
            log "closed loop, $size, rep $rep/$REPS: $PEERS (${DURATION}s each)"
            for peer in $PEERS; do closed "$peer" "$size" "$rep"; done
        done
        if [ "$size" = "$MEM_SIZE" ]; then
            log "idle ${IDLE_AFTER}s after the $size runs"
            sleep "$IDLE_AFTER"
            for peer in $PEERS; do IDLE_AFTER_KB[$peer]=$(peer_rss "$peer"); done
        fi
    done
fi

if has open "$PHASES"; then
    OPEN_PEERS=$PEERS
    [ "$OPEN_DIRECT" = 1 ] && OPEN_PEERS="$PEERS direct"
    for rate in $RATES; do
        for rep in $(seq 1 "$REPS"); do
            log "open loop, $rate req/s, rep $rep/$REPS: $OPEN_PEERS (${OPEN_DURATION}s each)"
            for peer in $OPEN_PEERS; do open_run "$peer" "$rate" "$rep"; done
        done
    done
fi

if has serial "$PHASES"; then
    for rep in $(seq 1 "$REPS"); do
        log "serial, rep $rep/$REPS: direct $PEERS (${SERIAL_DURATION}s each)"
        for peer in direct $PEERS; do serial "$peer" "$rep"; done
    done
fi
# Optional: system calls per request (PHASES=… syscalls). One wrk run per proxy (1 KiB, not
# part of the other figures) with `perf stat` counting PERF_PROXY_EVENTS (lib.sh) for the
# proxy's processes; tracepoint counting slows the proxy a little, so it runs on its own.
if has syscalls "$PHASES"; then
    for peer in $PEERS; do
        log "syscalls: $peer (${DURATION}s)"
        # shellcheck disable=SC2086
        pids=$(tr ' ' ',' <<<"${PIDS_OF[$peer]}" | sed 's/,*$//')
        perf stat -x, -e "$PERF_PROXY_EVENTS" -p "$pids" -o "$WORK/syscalls-$peer.csv" \
            -- sleep $((DURATION + 4)) &
        PERF_PID=$!
        PIDS+=("$PERF_PID")
        sleep 2
        wrk_run "$peer" 1k "$DURATION" "$CONNS"
        wait "$PERF_PID"
        kv requests "$BENCH" >"$WORK/syscalls-$peer.requests"
    done
fi
LOAD_END=$(loadavg)
log "load average at end: $LOAD_END"
[ -n "${OUT:-}" ] && cp "$RAW" "$OUT"

# --- report --------------------------------------------------------------------------------
# Table cells padded by characters (bash's printf pads by bytes, and "µs" is two): ${#s} counts
# characters in a UTF-8 locale.
export LC_ALL=C.UTF-8
lpad() { local s=$2; printf '%s%*s' "$s" $(($1 - ${#s})) ''; }
# col PHASE KEY PEER COLUMN → median over reps
col() {
    awk -F'\t' -v ph="$1" -v k="$2" -v p="$3" -v c="$4" \
        'NR > 1 && $1 == ph && $2 == k && $3 == p && $c != "nan" { print $c }' "$RAW" | median
}
colmax() {
    awk -F'\t' -v ph="$1" -v k="$2" -v p="$3" -v c="$4" \
        'NR > 1 && $1 == ph && $2 == k && $3 == p && $c != "nan" { if (!n++ || $c > m) m = $c } END { print n ? m : "nan" }' "$RAW"
}
# Serial added latency: per rep, p50 through PEER minus p50 direct; median over reps (µs).
hop_us() {
    awk -F'\t' -v p="$1" 'NR > 1 && $1 == "serial" { v[$3, $4] = $7 }
        END { for (k in v) { split(k, a, SUBSEP); if (a[1] == p && ("direct", a[2]) in v) print (v[k] - v["direct", a[2]]) * 1000 } }' "$RAW" | median
}
mib() { awk -v k="$1" 'BEGIN { if (k == "" || k == "nan") print "nan"; else printf "%.1f", k / 1024 }'; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "" || v == "nan") print "n/a"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
human_rate() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

# row LABEL FORMAT KIND ARGS…: one line of the summary table, a cell per peer and the ratio
# switchyard / nginx. KIND: closed|open|hop|rss.
row() {
    local label=$1 f=$2 kind=$3 peer v cells=()
    shift 3
    declare -A val
    for peer in $PEERS; do
        case "$kind" in
            closed | open) v=$(col "$kind" "$1" "$peer" "$2") ;;
            hop) v=$(hop_us "$peer") ;;
        esac
        val[$peer]=$v
        cells+=("$(fmt "$v" "$f")")
    done
    printf '| %s |' "$(lpad 58 "$label")"
    for v in "${cells[@]}"; do printf ' %20s |' "$v"; done
    printf ' %14s |\n' "$(ratio "${val[switchyard]:-}" "${val[nginx]:-}")"
}

declare -A NAMES=([switchyard]=Switchyard [nginx]="nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')" [haproxy]="HAProxy $("$HAPROXY" -v | sed -n '1s/^HAProxy version \([0-9.]*\).*/\1/p')")
size_name() { case "$1" in 1k) echo "1 KiB" ;; 64k) echo "64 KiB" ;; 1m) echo "1 MiB" ;; *) echo "$1" ;; esac; }

echo
echo "Switchyard $("$SWITCHYARD_BIN" --version 2>/dev/null | sed 's/^switchyard //') ($SWITCHYARD_BIN) vs ${NAMES[nginx]} vs ${NAMES[haproxy]}; $(nproc) CPUs, $(uname -r)"
echo "proxy on CPU ${PROXY_CPUS:-any}; backend (1 worker) on ${BACKEND_CPUS:-any}; wrk/oha on ${WRK_CPUS:-any}; nice ${NICE:-0}; upstream keep-alive: up to $UPSTREAM_KEEPALIVE idle, ${UPSTREAM_IDLE}s"
echo "closed loop: wrk 1 thread, $CONNS connections, ${DURATION}s; open loop: oha -c $CONNS -q RATE --latency-correction, ${OPEN_DURATION}s, tenants by $OPEN_TENANTS; serial: wrk -c1, ${SERIAL_DURATION}s"
echo "$REPS interleaved reps, medians; $TENANTS tenants rotated; load average at start $LOAD_START, at end $LOAD_END"
[ -n "$NGINX_PROXY_EXTRA" ] && echo "nginx extra: $NGINX_PROXY_EXTRA"
[ -n "$HAPROXY_SERVER_EXTRA" ] && echo "haproxy server extra: $HAPROXY_SERVER_EXTRA"
echo
printf '| %-58s |' ""
for peer in $PEERS; do printf ' %20s |' "${NAMES[$peer]}"; done
printf ' %14s |\n' "Sy / nginx"
printf '|%s|' "$(printf -- '-%.0s' $(seq 1 60))"
for _ in $PEERS; do printf -- '---------------------:|'; done
printf -- '---------------:|\n'
if has closed "$PHASES"; then
    for size in $SIZES; do row "CPU µs/request, $(size_name "$size")" '%.1f' closed "$size" 9; done
    for size in $SIZES; do row "rps, $(size_name "$size") (closed loop)" '%.0f' closed "$size" 6; done
fi
if has open "$PHASES"; then
    for rate in $RATES; do
        row "p50 ms at a fixed $(human_rate "$rate") req/s, 1 KiB (oha, corrected)" '%.2f' open "$rate" 7
        row "p99 ms at a fixed $(human_rate "$rate") req/s, 1 KiB (oha, corrected)" '%.2f' open "$rate" 8
    done
fi
has serial "$PHASES" && row "one connection, serial: added latency per hop (µs)" '%+.0f' hop
if has closed "$PHASES" && has "$MEM_SIZE" "$SIZES"; then
    printf '| %s |' "$(lpad 58 "RSS MiB idle before / peak / idle after ($(size_name "$MEM_SIZE") bodies)")"
    for peer in $PEERS; do
        printf ' %20s |' "$(mib "${IDLE_BEFORE[$peer]}") / $(colmax closed "$MEM_SIZE" "$peer" 11) / $(mib "${IDLE_AFTER_KB[$peer]:-nan}")"
    done
    if has switchyard "$PEERS" && has nginx "$PEERS"; then
        printf ' %14s |\n' "$(ratio "${IDLE_BEFORE[switchyard]}" "${IDLE_BEFORE[nginx]}")/$(ratio "$(colmax closed "$MEM_SIZE" switchyard 11)" "$(colmax closed "$MEM_SIZE" nginx 11)")/$(ratio "${IDLE_AFTER_KB[switchyard]}" "${IDLE_AFTER_KB[nginx]}")"
    else
        printf ' %14s |\n' n/a
    fi
fi

# Details: every closed-loop and open-loop cell with wrk's/oha's own latency figures.
if has closed "$PHASES"; then
    echo
    echo "closed loop (wrk -c$CONNS; p50/p99 are wrk's, i.e. mostly queueing behind $CONNS connections):"
    printf '| %-6s | %-10s | %8s | %8s | %8s | %s | %s | %6s | %9s | %23s |\n' size peer rps "p50 ms" "p99 ms" "CPU µs/req" "of it user" "runq %" "peak MiB" "backend conns (mid-run)"
    printf '|--------|------------|---------:|---------:|---------:|-----------:|-----------:|-------:|----------:|------------------------:|\n'
    for size in $SIZES; do
        for peer in $PEERS; do
            printf '| %-6s | %-10s | %8.0f | %8.3f | %8.3f | %10.1f | %10.1f | %6.0f | %9.1f | %23s |\n' "$size" "$peer" \
                "$(col closed "$size" "$peer" 6)" "$(col closed "$size" "$peer" 7)" "$(col closed "$size" "$peer" 8)" \
                "$(col closed "$size" "$peer" 9)" "$(col closed "$size" "$peer" 13)" "$(col closed "$size" "$peer" 15)" \
                "$(colmax closed "$size" "$peer" 11)" "$(colmax closed "$size" "$peer" 12)"
        done
    done
fi
if has open "$PHASES"; then
    echo
    echo "open loop (oha, 1 KiB, latency-corrected; 'direct' = straight to the backend, no proxy):"
    printf '| %-7s | %-10s | %9s | %8s | %8s | %s | %6s | %6s | %6s |\n' "req/s" peer "done/s" "p50 ms" "p99 ms" "CPU µs/req" "busy %" "runq %" errors
    printf '|--------:|------------|----------:|---------:|---------:|-----------:|-------:|-------:|-------:|\n'
    for rate in $RATES; do
        for peer in $OPEN_PEERS; do
            printf '| %7s | %-10s | %9.0f | %8.3f | %8.3f | %10s | %6s | %6s | %6s |\n' "$rate" "$peer" \
                "$(col open "$rate" "$peer" 6)" "$(col open "$rate" "$peer" 7)" "$(col open "$rate" "$peer" 8)" \
                "$(fmt "$(col open "$rate" "$peer" 9)" '%.1f')" "$(fmt "$(col open "$rate" "$peer" 14)" '%.0f')" \
                "$(fmt "$(col open "$rate" "$peer" 15)" '%.0f')" "$(col open "$rate" "$peer" 10)"
        done
    done
fi
if has serial "$PHASES"; then
    echo
    echo "serial (wrk -c1, 1 KiB): p50 µs per target; added = p50 through the proxy − p50 direct, per rep, median"
    for peer in direct $PEERS; do
        printf '  %-10s p50 %7.1f µs   p99 %7.1f µs   %6.0f req/s\n' "$peer" \
            "$(awk -v v="$(col serial 1k "$peer" 7)" 'BEGIN { print v * 1000 }')" \
            "$(awk -v v="$(col serial 1k "$peer" 8)" 'BEGIN { print v * 1000 }')" "$(col serial 1k "$peer" 6)"
    done
fi
if has syscalls "$PHASES"; then
    echo
    echo "per request (1 KiB, wrk -c$CONNS, perf stat on the proxy's processes): system calls (those at 0.05"
    echo "and more by name), packets sent (net_dev_queue, loopback), wake-ups of other tasks (sched_waking),"
    echo "context switches (sched_switch)"
    for peer in $PEERS; do
        awk -F, -v n="$(cat "$WORK/syscalls-$peer.requests")" -v p="$peer" '
            $3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 { name = $3; sub(/^syscalls:sys_enter_/, "", name)
                c[name] = $1 / n; total += $1 / n }
            $3 == "net:net_dev_queue" { pk = $1 / n }
            $3 == "sched:sched_waking" { wk = $1 / n }
            $3 == "sched:sched_switch" { sw = $1 / n }
            END { line = sprintf("  %-10s packets %.2f, wake-ups %.2f, switches %.2f, syscalls %.2f:", p, pk, wk, sw, total)
                  for (k in c) if (c[k] >= 0.05) line = line sprintf(" %s %.2f", k, c[k]); print line }' \
            "$WORK/syscalls-$peer.csv"
    done
fi
total_errs=$(awk -F'\t' 'NR > 1 { e += $10 } END { print e + 0 }' "$RAW")
[ "$total_errs" -eq 0 ] || echo "WARNING: $total_errs failed requests in total; see the raw TSV (OUT=FILE) and the logs (KEEP=1)"

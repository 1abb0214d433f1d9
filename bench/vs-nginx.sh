#!/usr/bin/env bash
# Switchyard vs nginx as a reverse proxy, side by side on loopback, same backend, same load.
#
# Both proxies run at once (idle while the other is measured); runs are interleaved
# gw, nginx, gw, nginx, … so drift (thermal, noisy neighbours) hits both alike. The figure that
# matters on a small machine is the proxy's CPU time per request; rps and latency also depend on
# how the backend and wrk share the remaining cores. See bench/README.md.
#
# Knobs (environment): DURATION=8 (s per run), REPS=3, CONNS=64, SIZES="1k 64k 1m",
# WARMUP=2 (s per size and proxy, unmeasured), TENANTS=16 (x-tenant-id values rotated by wrk),
# BACKEND_WORKERS=1, PIN=1 with PROXY_CPUS / BACKEND_CPUS / WRK_CPUS, KEEP=1 keeps the temp dir,
# OUT=FILE copies the raw per-run TSV there, NO_BUILD=1 skips cargo build (binaries must exist),
# NGINX_PROXY_EXTRA="directives;" adds to nginx's proxy location.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

DURATION=${DURATION:-8}
REPS=${REPS:-3}
CONNS=${CONNS:-64}
SIZES=${SIZES:-"1k 64k 1m"}
WARMUP=${WARMUP:-2}
TENANTS=${TENANTS:-16}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
# Extra directives for nginx's proxy location, e.g. "proxy_buffering off;" or
# "proxy_buffers 8 64k;" to compare against a tuned nginx (the default is nginx's defaults).
NGINX_PROXY_EXTRA=${NGINX_PROXY_EXTRA:-}

ensure_packages nginx wrk curl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ "${NO_BUILD:-0}" = 1 ]; then
    T=${CARGO_TARGET_DIR:-$REPO/target}
    SWITCHYARD_BIN=$T/release/switchyard BACKEND_BIN=$T/release/examples/backend
else
    build_release "$REPO"
fi
plan_cpus

start_work vs-nginx

BACKEND_PORT=$(free_port)
GW_PORT=$(free_port)
GW_ADMIN_PORT=$(free_port)
NGINX_PORT=$(free_port)

# --- backend -------------------------------------------------------------------------------
pinned "$BACKEND_CPUS" "$BACKEND_BIN" --listen "127.0.0.1:$BACKEND_PORT" --workers "$BACKEND_WORKERS" \
    >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$BACKEND_PORT/1k" 10 || die "backend did not start (see $WORK/backend.log)"

# --- gateway -------------------------------------------------------------------------------
# Every request goes through tenant extraction (header source), route matching and the sticky
# bucket (percent = 50 between two upstreams that are the same backend). No shadow, no debug
# headers: the plain forwarding path.
mkdir -p "$WORK/gw"
cat >"$WORK/gw/switchyard.toml" <<EOF
[listen]
http = "127.0.0.1:$GW_PORT"
workers = 1

[admin]
listen = "127.0.0.1:$GW_ADMIN_PORT"
debug_headers = false

[tenant]
sources = [{ header = "x-tenant-id" }]
unknown = "default"

[upstreams.legacy]
origins = ["http://127.0.0.1:$BACKEND_PORT"]

[upstreams.new]
origins = ["http://127.0.0.1:$BACKEND_PORT"]

[default]
upstream = "legacy"

[[routes]]
name = "bench"
path = "/api/{*rest}"
legacy = "legacy"
new = "new"
percent = 50

[shadow]
enabled = false

[store]
url = "sqlite://switchyard.db"
EOF
"$SWITCHYARD_BIN" check --config "$WORK/gw/switchyard.toml" >&2 || die "gateway config rejected"
pinned "$PROXY_CPUS" "$SWITCHYARD_BIN" run --config "$WORK/gw/switchyard.toml" >"$WORK/gw.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/api/bench/1k" 15 || die "gateway did not start (see $WORK/gw.log)"

# --- nginx ---------------------------------------------------------------------------------
# Its own prefix: config, pid, logs and temp paths all under $WORK/nginx; never /etc/nginx or
# port 80. keepalive_requests is raised on both sides so neither proxy recycles connections
# during a run (the gateway does not); proxy_max_temp_file_size 0 keeps nginx from spooling
# 1 MiB responses to disk (it streams, as the gateway does).
NX=$WORK/nginx
mkdir -p "$NX/logs" "$NX/tmp"
cat >"$NX/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $NX/nginx.pid;
error_log $NX/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $NX/tmp/body;
    proxy_temp_path $NX/tmp/proxy;
    fastcgi_temp_path $NX/tmp/fastcgi;
    uwsgi_temp_path $NX/tmp/uwsgi;
    scgi_temp_path $NX/tmp/scgi;
    keepalive_requests 1000000;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_max_temp_file_size 0;
            $NGINX_PROXY_EXTRA
        }
    }
}
EOF
"$NGINX" -t -q -p "$NX" -c "$NX/nginx.conf" -e "$NX/logs/error.log" >&2 || die "nginx config rejected"
pinned "$PROXY_CPUS" "$NGINX" -p "$NX" -c "$NX/nginx.conf" -e "$NX/logs/error.log" \
    >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/api/bench/1k" 10 || die "nginx did not start (see $NX/logs/error.log)"
NGINX_WORKERS=$(cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null)
[ -n "$NGINX_WORKERS" ] || die "nginx worker not found"

# --- load ----------------------------------------------------------------------------------
# Requests are built once in init() and rotated, so the Lua cost per request is a table lookup.
cat >"$WORK/load.lua" <<'EOF'
local reqs, i = {}, 0
function init(args)
  local path, tenants = args[1], tonumber(args[2])
  for t = 1, tenants do
    reqs[t] = wrk.format("GET", path, { ["x-tenant-id"] = "tenant-" .. t })
  end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d status=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

CLK_TCK=$(getconf CLK_TCK)
RAW=$WORK/raw.tsv
printf 'size\tproxy\trep\trequests\trps\tp50_ms\tp99_ms\tcpu_us_per_req\trss_mib\terrors\n' >"$RAW"

GW_IDLE_RSS=$(rss_kb "$GW_PID")
NGINX_IDLE_RSS=$(sum_over rss_kb "$NGINX_PID" $NGINX_WORKERS)

# run_wrk PORT SIZE SECONDS → prints the BENCH line
run_wrk() {
    local out
    out=$(pinned "$WRK_CPUS" timeout -k 5 $(($3 + 30)) wrk -t1 -c"$CONNS" -d"${3}s" --timeout 5s --latency \
        -s "$WORK/load.lua" "http://127.0.0.1:$1/api/bench/$2" -- "/api/bench/$2" "$TENANTS" 2>&1)
    echo "$out" >>"$WORK/wrk.log"
    echo "$out" | grep '^BENCH' | tail -1
}

# measure SIZE PROXY REP PORT PIDS…
measure() {
    local size=$1 proxy=$2 rep=$3 port=$4
    shift 4
    local before after line requests dur p50 p99 errs status
    before=$(sum_over cpu_ticks "$@")
    line=$(run_wrk "$port" "$size" "$DURATION")
    after=$(sum_over cpu_ticks "$@")
    [ -n "$line" ] || die "wrk produced no result for $proxy $size (see $WORK/wrk.log)"
    requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
    dur=$(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' <<<"$line")
    p50=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")
    p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
    errs=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
    status=$(sed -n 's/.* status=\([0-9]*\).*/\1/p' <<<"$line")
    [ "$requests" -gt 0 ] || die "no requests served by $proxy for $size"
    if [ $((errs + status)) -gt 0 ]; then
        log "warning: $proxy $size rep $rep: $errs socket errors, $status non-2xx/3xx responses"
    fi
    awk -v s="$size" -v p="$proxy" -v r="$rep" -v n="$requests" -v d="$dur" -v p50="$p50" -v p99="$p99" \
        -v ticks=$((after - before)) -v hz="$CLK_TCK" -v rss="$(sum_over rss_kb "$@")" -v e=$((errs + status)) \
        'BEGIN { printf "%s\t%s\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.2f\t%.1f\t%d\n",
                 s, p, r, n, n / (d / 1e6), p50 / 1000, p99 / 1000, ticks / hz * 1e6 / n, rss / 1024, e }' >>"$RAW"
}

log "pinning: proxy=${PROXY_CPUS:-any} backend=${BACKEND_CPUS:-any} wrk=${WRK_CPUS:-any} (nproc $(nproc))"
log "ports: backend $BACKEND_PORT, gateway $GW_PORT (admin $GW_ADMIN_PORT), nginx $NGINX_PORT; work dir $WORK"
for size in $SIZES; do
    log "size $size: warm-up ${WARMUP}s each"
    run_wrk "$GW_PORT" "$size" "$WARMUP" >/dev/null
    run_wrk "$NGINX_PORT" "$size" "$WARMUP" >/dev/null
    for rep in $(seq 1 "$REPS"); do
        log "size $size rep $rep/$REPS: gateway, nginx (${DURATION}s each)"
        measure "$size" gateway "$rep" "$GW_PORT" "$GW_PID"
        measure "$size" nginx "$rep" "$NGINX_PORT" "$NGINX_PID" $NGINX_WORKERS
    done
done
[ -n "${OUT:-}" ] && cp "$RAW" "$OUT"

# --- report --------------------------------------------------------------------------------
col() { awk -F'\t' -v s="$1" -v p="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == p { print $c }' "$RAW" | median; }
echo
echo "Switchyard $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) vs $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(nproc) CPUs, $(uname -r)"
echo "wrk: 1 thread, $CONNS connections, HTTP/1.1 keep-alive, ${DURATION}s x $REPS reps interleaved, medians; $TENANTS tenants rotated"
[ -n "$NGINX_PROXY_EXTRA" ] && echo "nginx extra: $NGINX_PROXY_EXTRA"
echo "pinning: proxy on CPU ${PROXY_CPUS:-any}, backend on ${BACKEND_CPUS:-any} ($BACKEND_WORKERS worker), wrk on ${WRK_CPUS:-any}"
echo "idle RSS: gateway $(awk -v k="$GW_IDLE_RSS" 'BEGIN { printf "%.1f", k / 1024 }') MiB, nginx (master+worker) $(awk -v k="$NGINX_IDLE_RSS" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
echo
printf '| %-4s | %-7s | %9s | %8s | %8s | %11s | %8s |\n' size proxy rps "p50 ms" "p99 ms" "CPU µs/req" "RSS MiB"
printf '|------|---------|-----------|----------|----------|-------------|----------|\n'
for size in $SIZES; do
    for proxy in gateway nginx; do
        printf '| %-4s | %-7s | %9.0f | %8.3f | %8.3f | %11.1f | %8.1f |\n' "$size" "$proxy" \
            "$(col "$size" $proxy 5)" "$(col "$size" $proxy 6)" "$(col "$size" $proxy 7)" \
            "$(col "$size" $proxy 8)" "$(col "$size" $proxy 9)"
    done
done
echo
echo "gateway / nginx (medians; CPU and p99: lower is better, rps: higher is better)"
printf '| %-4s | %10s | %6s | %6s |\n' size "CPU/req" rps p99
printf '|------|------------|--------|--------|\n'
for size in $SIZES; do
    awk -v s="$size" -v gc="$(col "$size" gateway 8)" -v nc="$(col "$size" nginx 8)" \
        -v gr="$(col "$size" gateway 5)" -v nr="$(col "$size" nginx 5)" \
        -v gp="$(col "$size" gateway 7)" -v np="$(col "$size" nginx 7)" \
        'function r(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
         BEGIN { printf "| %-4s | %10s | %6s | %6s |\n", s, r(gc, nc), r(gr, nr), r(gp, np) }'
done
total_errs=$(awk -F'\t' 'NR > 1 { e += $10 } END { print e + 0 }' "$RAW")
[ "$total_errs" -eq 0 ] || echo "WARNING: $total_errs failed requests in total; see the raw TSV (OUT=FILE) and wrk.log (KEEP=1)"

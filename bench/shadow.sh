#!/usr/bin/env bash
# Shadow cost on the primary: the same gateway config with and without `shadow = { percent = 100 }`
# towards a new side that answers in 500 ms, both gateways up at once, wrk runs interleaved
# (off, on, off, on, …), medians of p50/p99 and their ratio; plus the peak RSS of the shadowing
# gateway while its shadow queue overflows (closed-loop load far above what a 500 ms upstream
# with 64 shadow requests in flight can absorb: the bounded queue must skip, not grow).
# Loopback only; every run bounded in time. Usage: bench/shadow.sh  (DURATION=8 REPS=3 CONNS=16;
# SWITCHYARD_BIN + BACKEND_BIN or NO_BUILD=1 as in bench/lib.sh release_binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${DURATION:-8}
REPS=${REPS:-3}
CONNS=${CONNS:-16}
ensure_packages wrk curl
release_binaries "$(pwd)"
start_work shadow

FAST=$(free_port); SLOW=$(free_port)
"$BACKEND_BIN" --listen "127.0.0.1:$FAST" >"$WORK/fast.log" 2>&1 & PIDS+=($!)
"$BACKEND_BIN" --listen "127.0.0.1:$SLOW" --delay-ms 500 --workers 1 >"$WORK/slow.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$FAST/1k" 10 || die "backend did not start"
wait_http "http://127.0.0.1:$SLOW/1k" 10 || die "slow backend did not start"

gateway() { # NAME SHADOW_LINE -> starts a gateway, sets PORT_<NAME> and PID_<NAME>
    local name=$1 shadow=$2 port admin
    port=$(free_port); admin=$(free_port)
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name/gw.toml" <<TOML
[listen]
http = "127.0.0.1:$port"
workers = 1

[admin]
listen = "127.0.0.1:$admin"

[tenant]
sources = [{ header = "x-tenant-id" }]

[upstreams.legacy]
origins = ["http://127.0.0.1:$FAST"]

[upstreams.slow]
origins = ["http://127.0.0.1:$SLOW"]
timeout = "5s"

[[routes]]
name = "bench"
path = "/api/{*rest}"
legacy = "legacy"
new = "slow"
$shadow

[store]
url = "sqlite://$WORK/$name/store.db"
TOML
    "$SWITCHYARD_BIN" run --config "$WORK/$name/gw.toml" >"$WORK/$name/log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/api/x/1k" 10 || die "gateway $name did not start"
    printf -v "PORT_$name" '%s' "$port"
    printf -v "PID_$name" '%s' "$pid"
}
gateway off ""
gateway on 'shadow = { percent = 100, methods = ["GET"], timeout = "2s", self_check_percent = 0 }'
IDLE_RSS_ON=$(rss_kb "$PID_on")

run() { # PORT -> "p50_us p99_us requests"
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -H 'x-tenant-id: acme' \
        "http://127.0.0.1:$1/api/bench/1k" 2>&1 | awk '
        function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
        $1=="50%" { p50=us($2) } $1=="99%" { p99=us($2) } /requests in/ { req=$1 }
        END { printf "%d %d %d\n", p50, p99, req }'
}

printf 'rep\tmode\tp50_us\tp99_us\trequests\n' >"$WORK/raw.tsv"
PEAK=0
for rep in $(seq 1 "$REPS"); do
    for mode in off on; do
        port_var="PORT_$mode"
        if [ "$mode" = on ]; then
            ( while sleep 0.5; do rss_kb "$PID_on"; done ) >"$WORK/rss.$rep" & SAMPLER=$!
        fi
        read -r p50 p99 req < <(run "${!port_var}")
        if [ "$mode" = on ]; then
            kill "$SAMPLER" 2>/dev/null || true
            p=$(sort -n "$WORK/rss.$rep" | tail -n 1); [ "${p:-0}" -gt "$PEAK" ] && PEAK=$p
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$rep" "$mode" "$p50" "$p99" "$req" >>"$WORK/raw.tsv"
    done
done

med() { awk -F'\t' -v m="$1" -v c="$2" '$2==m { print $c }' "$WORK/raw.tsv" | median; }
OFF50=$(med off 3); OFF99=$(med off 4); ON50=$(med on 3); ON99=$(med on 4)
OFFREQ=$(med off 5); ONREQ=$(med on 5)
SKIPS=$(curl -s "http://127.0.0.1:$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$WORK/on/gw.toml")/metrics" \
    | awk '/^switchyard_shadow_skipped_total/ { s += $2 } END { print s+0 }')
echo
echo "shadow cost on the primary (1 KiB GET, wrk 1 thread / $CONNS conns, ${DURATION}s x $REPS, medians)"
printf '%-12s %10s %10s %12s\n' mode p50_us p99_us requests
printf '%-12s %10s %10s %12s\n' "shadow off" "$OFF50" "$OFF99" "$OFFREQ"
printf '%-12s %10s %10s %12s\n' "shadow 100%" "$ON50" "$ON99" "$ONREQ"
awk -v a="$ON50" -v b="$OFF50" -v c="$ON99" -v d="$OFF99" 'BEGIN { printf "ratio on/off: p50 %.3f  p99 %.3f\n", a/b, c/d }'
echo "shadowing gateway RSS: idle $((IDLE_RSS_ON / 1024)) MiB, peak under overload $((PEAK / 1024)) MiB; shadow comparisons skipped: $SKIPS"

#!/usr/bin/env bash
# Soak: mixed traffic for a long time while everything around the gateway moves, and what it
# costs over time. For SOAK_MINUTES (30) minutes:
#   - three fixed-rate oha streams: GET 1 KiB on a route served by legacy and shadowed to the
#     new side; GET 64 KiB on a route cut over to the new side with fallback to legacy; POST
#     4 KiB bodies on that route (buffered, so a failed new side falls back for them too);
#   - a config write every RELOAD_EVERY (5) seconds, alternating the shadow percent 100 ↔ 50
#     (picked up by the file watcher; each one a new generation);
#   - the new side cycling every FLAP_EVERY (20) seconds through normal → slow (DELAY_MS, 300 ms
#     per answer) → down (killed) → restarted: the shadow target flaps and slows, and the split
#     route's upstream restarts under load.
# The legacy backend stays up: the gateway can hide a failed new side, not a failed legacy.
# Every SAMPLE_EVERY (10) seconds the gateway's RSS and open fds go to a CSV. At the end:
# requests sent, failed requests the client did not cause (any non-2xx or transport error;
# goal 0), RSS and fds first / max / last, reloads applied, shadow outcomes.
# Loopback only, bounded by SOAK_MINUTES; every process it starts is stopped by PID on exit.
# Usage: bench/soak.sh   (SOAK_MINUTES=2 for a smoke run; RATE_GET, RATE_SPLIT, RATE_POST;
# SWITCHYARD_BIN + BACKEND_BIN or NO_BUILD=1 as in bench/lib.sh; OHA_BIN; KEEP=1)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

SOAK_MINUTES=${SOAK_MINUTES:-30}
RELOAD_EVERY=${RELOAD_EVERY:-5}
FLAP_EVERY=${FLAP_EVERY:-20}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
DELAY_MS=${DELAY_MS:-300}
RATE_GET=${RATE_GET:-400}
RATE_SPLIT=${RATE_SPLIT:-200}
RATE_POST=${RATE_POST:-50}
DURATION=$((SOAK_MINUTES * 60))

ensure_packages curl jq
release_binaries "$(pwd)"
ensure_oha "$(pwd)"
start_work soak

LEGACY=$(free_port); NEW=$(free_port); PORT=$(free_port); ADMIN=$(free_port)
"$BACKEND_BIN" --listen "127.0.0.1:$LEGACY" --workers 1 >"$WORK/legacy.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$LEGACY/1k" 10 || die "legacy backend did not start"

NEW_PID=
start_new() { # [DELAY_MS]
    "$BACKEND_BIN" --listen "127.0.0.1:$NEW" --workers 1 --delay-ms "${1:-0}" \
        >>"$WORK/new.log" 2>&1 &
    NEW_PID=$!
    PIDS+=("$NEW_PID")
    wait_http "http://127.0.0.1:$NEW/1k" 10 || die "new backend did not start"
}
stop_new() {
    [ -n "$NEW_PID" ] || return 0
    kill -TERM "$NEW_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$NEW_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NEW_PID" 2>/dev/null || true
    wait "$NEW_PID" 2>/dev/null || true
    NEW_PID=
}
start_new

write_config() { # SHADOW_PERCENT: written beside and renamed into place, as an editor would
    cat >"$WORK/gw.toml.tmp" <<TOML
[listen]
http = "127.0.0.1:$PORT"
workers = 1

[admin]
listen = "127.0.0.1:$ADMIN"

[tenant]
sources = [{ header = "x-tenant-id" }]

[upstreams.legacy]
origins = ["http://127.0.0.1:$LEGACY"]
timeout = "5s"

[upstreams.new]
origins = ["http://127.0.0.1:$NEW"]
timeout = "2s"

[[routes]]
name = "shadowed"
path = "/api/shadowed/{*rest}"
legacy = "legacy"
new = "new"
shadow = { percent = $1 }

[[routes]]
name = "split"
path = "/api/split/{*rest}"
legacy = "legacy"
new = "new"
state = "new"
fallback = true

[store]
url = "sqlite://store.db"
TOML
    mv "$WORK/gw.toml.tmp" "$WORK/gw.toml"
}
write_config 100
"$SWITCHYARD_BIN" check --config "$WORK/gw.toml" >&2 || die "the soak config does not validate"
"$SWITCHYARD_BIN" run --config "$WORK/gw.toml" >"$WORK/gateway.log" 2>&1 & GW=$!
PIDS+=("$GW")
wait_http "http://127.0.0.1:$PORT/api/split/1k" 10 -H 'x-tenant-id: t-1' || die "gateway did not start"

log "soak: ${SOAK_MINUTES} min; GET ${RATE_GET}/s shadowed, GET 64k ${RATE_SPLIT}/s and POST ${RATE_POST}/s on the new side with fallback; reload every ${RELOAD_EVERY}s; new side flaps every ${FLAP_EVERY}s; load $(loadavg)"

head -c 4096 /dev/urandom | base64 -w0 | head -c 4096 >"$WORK/post.body"
LOADS=()
stream() { # NAME RATE OHA-ARGS… (one tenant per stream: oha cannot vary a header per request)
    local name=$1 rate=$2
    shift 2
    "$OHA" --no-tui --output-format json -o "$WORK/$name.json" -c 16 -q "$rate" \
        --latency-correction -z "${DURATION}s" -t 10s "$@" >"$WORK/$name.out" 2>&1 &
    PIDS+=($!)
    LOADS+=($!)
}
stream get "$RATE_GET" -H 'x-tenant-id: tenant-1' "http://127.0.0.1:$PORT/api/shadowed/1k"
stream split "$RATE_SPLIT" -H 'x-tenant-id: tenant-2' "http://127.0.0.1:$PORT/api/split/64k"
stream post "$RATE_POST" -H 'x-tenant-id: tenant-3' -m POST -D "$WORK/post.body" \
    -T application/octet-stream "http://127.0.0.1:$PORT/api/split/echo"

echo "seconds,rss_kb,fds,generation" >"$WORK/samples.csv"
sample() {
    local fds gen
    fds=$(find "/proc/$GW/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    gen=$(curl -s --max-time 2 "http://127.0.0.1:$ADMIN/metrics" \
        | awk '$1 == "switchyard_config_generation" {print $2}')
    echo "$1,$(rss_kb "$GW"),$fds,${gen:-?}" >>"$WORK/samples.csv"
}

start=$SECONDS
next_reload=$RELOAD_EVERY next_flap=$FLAP_EVERY next_sample=0 percent=100 phase=0
while [ $((SECONDS - start)) -lt "$DURATION" ]; do
    kill -0 "$GW" 2>/dev/null || die "the gateway exited (see $WORK/gateway.log, KEEP=1)"
    now=$((SECONDS - start))
    if [ "$now" -ge "$next_sample" ]; then sample "$now"; next_sample=$((now + SAMPLE_EVERY)); fi
    if [ "$now" -ge "$next_reload" ]; then
        percent=$((percent == 100 ? 50 : 100))
        write_config "$percent"
        next_reload=$((now + RELOAD_EVERY))
    fi
    if [ "$now" -ge "$next_flap" ]; then
        case $((phase % 3)) in
            0) stop_new; start_new "$DELAY_MS" ;; # slow
            1) stop_new ;;                         # down
            2) start_new ;;                        # back, normal speed
        esac
        phase=$((phase + 1))
        next_flap=$((now + FLAP_EVERY))
    fi
    sleep 1
done
[ -n "$NEW_PID" ] || start_new
for pid in "${LOADS[@]}"; do wait "$pid" || true; done
sample "$((SECONDS - start))"

metrics=$(curl -s --max-time 5 "http://127.0.0.1:$ADMIN/metrics")
counter() { # METRIC LABEL-FILTER → the sum of the matching series
    awk -v m="$1" -v f="$2" 'index($1, m "{") == 1 && index($1, f) {s += $2} END {print s + 0}' \
        <<<"$metrics"
}

echo
echo "== soak: ${SOAK_MINUTES} min, Switchyard $("$SWITCHYARD_BIN" --version 2>/dev/null || echo '?'), load $(loadavg)"
printf '%-34s %10s %10s %10s\n' stream sent ok failed
total_failed=0
for name in get split post; do
    # Requests still in flight when oha's -z deadline hits are its own cancellations, not
    # failures (reported as "deadline" errors).
    read -r ok failed < <(jq -r '
        ([.statusCodeDistribution | to_entries[] | select(.key | startswith("2")) | .value] | add // 0) as $ok
        | ([.statusCodeDistribution | to_entries[] | select(.key | startswith("2") | not) | .value] | add // 0) as $bad
        | ([.errorDistribution | to_entries[] | select(.key | test("deadline") | not) | .value] | add // 0) as $err
        | "\($ok) \($bad + $err)"' "$WORK/$name.json" 2>/dev/null || echo "0 ?")
    [ "$failed" = "?" ] && die "oha gave no result for $name (see $WORK/$name.out, KEEP=1)"
    printf '%-34s %10s %10s %10s\n' "$name" $((ok + failed)) "$ok" "$failed"
    total_failed=$((total_failed + failed))
    jq -r '.errorDistribution | to_entries[] | "    error: \(.value) × \(.key)"' "$WORK/$name.json" 2>/dev/null || true
    jq -r '.statusCodeDistribution | to_entries[] | select(.key | startswith("2") | not) | "    status \(.key): \(.value)"' "$WORK/$name.json" 2>/dev/null || true
done
echo "failed requests the client did not cause: $total_failed (goal 0)"
echo
awk -F, 'NR == 2 {r0 = $2; f0 = $3} NR > 1 {if ($2 > rmax) rmax = $2; if ($3 > fmax) fmax = $3; r = $2; f = $3; n++}
    END {printf "RSS MiB first / max / last: %.1f / %.1f / %.1f (%d samples)\nopen fds first / max / last: %d / %d / %d\n",
        r0 / 1024, rmax / 1024, r / 1024, n, f0, fmax, f}' "$WORK/samples.csv"
echo "reloads: ok $(counter switchyard_config_reloads_total 'result="ok"'), error $(counter switchyard_config_reloads_total 'result="error"')"
echo "fallbacks: $(counter switchyard_fallbacks_total '')"
echo "upstream errors: $(awk 'index($1, "switchyard_upstream_errors_total{") == 1 {l = $1; sub(/^[^{]*/, "", l); printf "%s %d  ", l, $2}' <<<"$metrics")"
echo "shadow: $(awk 'index($1, "switchyard_shadow_total{") == 1 {sub(/.*result="/, "", $1); sub(/".*/, "", $1); s[$1] += $2}
    END {for (k in s) printf "%s %d  ", k, s[k]}' <<<"$metrics")"
echo "shadow skipped: $(counter switchyard_shadow_skipped_total '')"
echo "samples: $WORK/samples.csv (KEEP=1 keeps it)"
cp "$WORK/samples.csv" "${SOAK_CSV:-/dev/null}" 2>/dev/null || true

#!/usr/bin/env bash
# Switchyard live reload: how long from a config file write to the first request served on the
# new rules, and what 1,000 reloads do to memory.
#
# 1. Latency: rewrite the config (write a temp file, rename it over the old one — what editors
#    and Kubernetes ConfigMap swaps do), then poll with curl until the response header
#    `x-switchyard-generation` moves past the old generation. LAT_REPS samples, alternating two
#    rule sets (A: nobody on new, B: half the tenants on new), so every write is a real change.
#    The figure includes the watcher's debounce (150 ms in src/live/watch.rs) by design: it is
#    what an operator waits. Resolution is one curl round (a few ms).
# 2. Memory: VmRSS at start, after 10 reloads and after RSS_RELOADS (1,000) reloads, each reload
#    waited for through the header before the next write. RSS_TRIGGER=file (default) waits for
#    the file watch each time (~0.2 s a reload); RSS_TRIGGER=hup sends SIGHUP after each write
#    (no debounce, much faster; the file watch then sees identical content and makes no new
#    generation).
#
# Each rule set has ROUTES routes (default 50) so a reload compiles something real.
# Knobs: LAT_REPS=20, RSS_RELOADS=1000, ROUTES=50, RSS_TRIGGER=file|hup, KEEP=1, NO_BUILD=1,
# SWITCHYARD_BIN + BACKEND_BIN (measure given binaries).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

LAT_REPS=${LAT_REPS:-20}
RSS_RELOADS=${RSS_RELOADS:-1000}
ROUTES=${ROUTES:-50}
RSS_TRIGGER=${RSS_TRIGGER:-file}
# Every wait for a generation is bounded; a reload that never lands fails the run.
WAIT_SECS=${WAIT_SECS:-10}

ensure_packages curl
release_binaries "$REPO"

start_work reload

BACKEND_PORT=$(free_port)
GW_PORT=$(free_port)
GW_ADMIN_PORT=$(free_port)
# The config lives in its own directory: the gateway watches that directory, so the store (which
# writes on every reload: generation history) is kept elsewhere, or each of its writes would wake
# the watcher for a no-op reload.
mkdir -p "$WORK/etc" "$WORK/state"
CONF=$WORK/etc/switchyard.toml

# ruleset A|B → the config text on stdout
ruleset() {
    local percent tenants i
    if [ "$1" = A ]; then percent=0 tenants='[]'; else percent=50 tenants='["acme"]'; fi
    cat <<EOF
# rule set $1
[listen]
http = "127.0.0.1:$GW_PORT"
workers = 1

[admin]
listen = "127.0.0.1:$GW_ADMIN_PORT"
debug_headers = true

[tenant]
sources = [{ header = "x-tenant-id" }]

[upstreams.legacy]
origins = ["http://127.0.0.1:$BACKEND_PORT"]

[upstreams.new]
origins = ["http://127.0.0.1:$BACKEND_PORT"]

[default]
upstream = "legacy"

[shadow]
enabled = false

[store]
url = "sqlite://$WORK/state/switchyard.db"
EOF
    for i in $(seq 0 $((ROUTES - 1))); do
        cat <<EOF

[[routes]]
name = "r$i"
path = ["/api/r$i", "/api/r$i/{*rest}"]
legacy = "legacy"
new = "new"
tenants = $tenants
percent = $percent
EOF
    done
}

# write_config A|B: write next to the file, then rename over it (atomic, like editors and k8s).
write_config() {
    ruleset "$1" >"$CONF.tmp" && mv -f "$CONF.tmp" "$CONF"
}

PROBE="http://127.0.0.1:$GW_PORT/api/r0/1k"
generation() {
    curl -s --max-time 2 -o /dev/null -D - -H 'x-tenant-id: acme' "$PROBE" |
        awk 'tolower($1) == "x-switchyard-generation:" { gsub("\r", "", $2); print $2 }'
}

# wait_generation_above G → prints the new generation; fails after WAIT_SECS.
wait_generation_above() {
    local old=$1 g deadline=$((SECONDS + WAIT_SECS))
    while [ "$SECONDS" -lt "$deadline" ]; do
        g=$(generation)
        if [ -n "$g" ] && [ "$g" -gt "$old" ]; then echo "$g"; return 0; fi
    done
    return 1
}

"$BACKEND_BIN" --listen "127.0.0.1:$BACKEND_PORT" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$BACKEND_PORT/1k" 10 || die "backend did not start"

write_config A
"$SWITCHYARD_BIN" check --config "$CONF" >&2 || die "config rejected"
RUST_LOG=${RUST_LOG:-warn} "$SWITCHYARD_BIN" run --config "$CONF" >"$WORK/gw.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "$PROBE" 15 || die "gateway did not start (see $WORK/gw.log)"
GEN=$(generation)
[ -n "$GEN" ] || die "no x-switchyard-generation header (debug_headers = true is set; see $WORK/gw.log)"
RSS_START=$(rss_kb "$GW_PID")

# --- 1. write → first request on the new generation ----------------------------------------
log "latency: $LAT_REPS reloads through the file watch ($ROUTES routes per rule set)"
: >"$WORK/latency_ms"
next=B
for rep in $(seq 1 "$LAT_REPS"); do
    t0=$EPOCHREALTIME
    write_config "$next"
    GEN=$(wait_generation_above "$GEN") || die "reload $rep not served within ${WAIT_SECS}s"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >>"$WORK/latency_ms"
    if [ "$next" = B ]; then next=A; else next=B; fi
    # Let the debounce window close, so the next write is measured on its own.
    sleep 0.3
done
LAT_MEDIAN=$(median <"$WORK/latency_ms")
LAT_MIN=$(sort -g "$WORK/latency_ms" | head -1)
LAT_MAX=$(sort -g "$WORK/latency_ms" | tail -1)

# --- 2. RSS after 10 and after RSS_RELOADS reloads -------------------------------------------
log "memory: $RSS_RELOADS reloads (trigger: $RSS_TRIGGER)"
reload_once() {
    write_config "$next"
    [ "$RSS_TRIGGER" = hup ] && kill -HUP "$GW_PID"
    GEN=$(wait_generation_above "$GEN") || die "reload not served within ${WAIT_SECS}s (generation $GEN)"
    if [ "$next" = B ]; then next=A; else next=B; fi
}
GEN_BEFORE=$GEN
for i in $(seq 1 10); do reload_once; done
RSS_10=$(rss_kb "$GW_PID")
t0=$SECONDS
for i in $(seq 11 "$RSS_RELOADS"); do
    reload_once
    [ $((i % 100)) = 0 ] && log "  $i reloads, generation $GEN, RSS $(($(rss_kb "$GW_PID") / 1024)) MiB"
done
RSS_N=$(rss_kb "$GW_PID")
RELOADS_DONE=$((GEN - GEN_BEFORE))

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "Switchyard $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null): live reload, $ROUTES routes per rule set, $(nproc) CPUs"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| config write → first request on the new generation, median of $LAT_REPS | $LAT_MEDIAN ms (min $LAT_MIN, max $LAT_MAX) |"
echo "| RSS at start | $(mib "$RSS_START") MiB |"
echo "| RSS after 10 reloads | $(mib "$RSS_10") MiB |"
echo "| RSS after $RSS_RELOADS reloads ($RELOADS_DONE generations, $RSS_TRIGGER-triggered, $((SECONDS - t0)) s) | $(mib "$RSS_N") MiB |"
echo "| growth from 10 to $RSS_RELOADS reloads | $(awk -v a="$RSS_10" -v b="$RSS_N" 'BEGIN { printf "%+.1f MiB", (b - a) / 1024 }') |"

#!/usr/bin/env bash
# Where Switchyard's time goes under the vs-nginx load: the same gateway config, backend and
# pinning as bench/vs-nginx.sh, driven either by wrk (MODE=closed: 64 keep-alive connections,
# 1 KiB) or by oha at a fixed rate (MODE=rate, RATE=20000, latency-corrected), while perf samples
# the gateway process. Writes into OUTDIR (default target/bench/profile-MODE):
#   perf.data, self.txt (symbols by self time), children.txt (by inclusive time),
#   callers.txt (call graphs of the hottest symbols), stat.txt (perf stat over 3 s: task-clock,
#   context switches, system calls by name, packets sent, wake-ups of other tasks),
#   threads.txt (per gateway thread over the window: % of the time on a CPU, % runnable but
#   waiting for a CPU — time other work on the core took —, voluntary and involuntary switches),
#   load.txt (what wrk/oha reported), and with SCHED=1 sched.txt (perf sched: wake-up latency
#   and run-queue delay per thread over a short window).
# Hardware counters are often missing in VMs; the sampling event is cpu-clock, which always works.
#
# Knobs: MODE=closed|rate, RATE=20000, SIZE=1k, CONNS=64, WINDOW=10 (s of sampling; the load
# runs WINDOW + 15), FREQ=999 (samples/s), CALLGRAPH=dwarf|fp|none, SCHED=0|1, OUTDIR,
# PIN / PROXY_CPUS / BACKEND_CPUS / WRK_CPUS, SWITCHYARD_BIN + BACKEND_BIN or NO_BUILD=1, OHA_BIN.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

MODE=${MODE:-closed}
RATE=${RATE:-20000}
SIZE=${SIZE:-1k}
CONNS=${CONNS:-64}
WINDOW=${WINDOW:-10}
FREQ=${FREQ:-999}
CALLGRAPH=${CALLGRAPH:-dwarf}
SCHED=${SCHED:-0}
TENANTS=16
case "$MODE" in closed | rate) ;; *) die "MODE must be closed or rate" ;; esac
OUTDIR=${OUTDIR:-$REPO/target/bench/profile-$MODE}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

ensure_packages wrk curl jq perf
release_binaries "$REPO"
[ "$MODE" = rate ] && ensure_oha "$REPO"
plan_cpus
start_work profile
log "load average at start: $(loadavg)"

BACKEND_PORT=$(free_port)
GW_PORT=$(free_port)
GW_ADMIN_PORT=$(free_port)

pinned "$BACKEND_CPUS" "$BACKEND_BIN" --listen "127.0.0.1:$BACKEND_PORT" --workers 1 \
    >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$BACKEND_PORT/1k" 10 || die "backend did not start"

mkdir -p "$WORK/gw"
switchyard_bench_config "$GW_PORT" "$GW_ADMIN_PORT" "$BACKEND_PORT" 64 60 >"$WORK/gw/switchyard.toml"
pinned "$PROXY_CPUS" "$SWITCHYARD_BIN" run --config "$WORK/gw/switchyard.toml" >"$WORK/gw/out.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/api/bench/$SIZE" 15 || die "switchyard did not start"
write_wrk_script "$WORK/load.lua"

# Warm the pools, then start the measured load in the background.
run_load "$WORK/warmup.txt" "$WRK_CPUS" timeout 20 wrk -t1 -c"$CONNS" -d2s -s "$WORK/load.lua" \
    "http://127.0.0.1:$GW_PORT/api/bench/$SIZE" -- "/api/bench/$SIZE" "$TENANTS"
LOAD_SECS=$((WINDOW + 15))
if [ "$MODE" = closed ]; then
    pinned "$WRK_CPUS" timeout -k 5 $((LOAD_SECS + 30)) wrk -t1 -c"$CONNS" -d"${LOAD_SECS}s" --latency \
        -s "$WORK/load.lua" "http://127.0.0.1:$GW_PORT/api/bench/$SIZE" -- "/api/bench/$SIZE" "$TENANTS" \
        >"$OUTDIR/load.txt" 2>&1 &
else
    args=()
    : >"$WORK/urls.txt"
    for t in $(seq 1 "$TENANTS"); do
        echo "http://tenant-$t.bench.test:$GW_PORT/api/bench/$SIZE" >>"$WORK/urls.txt"
        args+=(--connect-to "tenant-$t.bench.test:$GW_PORT:127.0.0.1:$GW_PORT")
    done
    pinned "$WRK_CPUS" timeout -k 5 $((LOAD_SECS + 30)) "$OHA" --no-tui --output-format json \
        -o "$OUTDIR/load.txt" --worker-threads 1 -c "$CONNS" -q "$RATE" --latency-correction \
        -z "${LOAD_SECS}s" -t 10s "${args[@]}" --urls-from-file "$WORK/urls.txt" >"$WORK/oha.out" 2>&1 &
fi
LOAD=$!
PIDS+=("$LOAD")
sleep 2

# Per-thread CPU ticks and context switches, before and after the window.
thread_snapshot() {
    local t stat comm
    for t in /proc/"$GW_PID"/task/*; do
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        comm=${stat#*(}
        comm=${comm%%)*}
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        # schedstat: ns on a CPU, ns runnable but waiting for a CPU, timeslices.
        printf '%s\t%s\t%d\t%s\t%s\t%s\n' "${t##*/}" "${comm// /_}" $((${12} + ${13})) \
            "$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status")" \
            "$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status")" \
            "$(tr ' ' '\t' <"$t/schedstat" | cut -f1,2)"
    done
}
load_running() { kill -0 "$LOAD" 2>/dev/null || die "the load generator ended early (see $OUTDIR/load.txt)"; }
load_running
thread_snapshot >"$WORK/threads.before"
T_BEFORE=$(date +%s.%N)

case "$CALLGRAPH" in
    dwarf) cg=(--call-graph "dwarf,32768") ;;
    fp) cg=(--call-graph fp) ;;
    none) cg=() ;;
    *) die "CALLGRAPH must be dwarf, fp or none" ;;
esac
log "perf record: ${WINDOW}s at ${FREQ} Hz on PID $GW_PID (${CALLGRAPH} call graphs)"
timeout -k 5 $((WINDOW + 60)) perf record -q -e cpu-clock -F "$FREQ" "${cg[@]}" -p "$GW_PID" \
    -o "$OUTDIR/perf.data" -- sleep "$WINDOW" 2>"$OUTDIR/perf-record.log"
thread_snapshot >"$WORK/threads.after"
T_AFTER=$(date +%s.%N)
load_running
# System calls, packets, wake-ups and context switches of the gateway.
timeout -k 5 60 perf stat -e "task-clock,context-switches,cpu-migrations,page-faults,$PERF_PROXY_EVENTS" \
    -p "$GW_PID" -- sleep 3 2>&1 | awk '$1 != "0" && $1 != "<not"' >"$OUTDIR/stat.txt"
load_running

if [ "$SCHED" = 1 ]; then
    # Scheduler events are recorded machine-wide (perf sched has no per-process mode); keep the
    # window short.
    log "perf sched record: 2s"
    timeout -k 5 60 perf sched record -o "$WORK/sched.data" -- sleep 2 >/dev/null 2>&1
fi
wait "$LOAD" 2>/dev/null
log "load average at end: $(loadavg)"

# --- reports --------------------------------------------------------------------------------
join -t $'\t' <(sort "$WORK/threads.before") <(sort "$WORK/threads.after") |
    awk -F'\t' -v s="$(awk -v a="$T_BEFORE" -v b="$T_AFTER" 'BEGIN { print b - a }')" '
        BEGIN { printf "%-8s %-18s %7s %7s %12s %14s\n", "tid", "name", "cpu %", "runq %", "voluntary/s", "involuntary/s" }
        { printf "%-8s %-18s %7.1f %7.1f %12.0f %14.0f\n", $1, $2, ($12 - $6) / s / 1e7, ($13 - $7) / s / 1e7, ($10 - $4) / s, ($11 - $5) / s }' \
        >"$OUTDIR/threads.txt"
# perf pads its columns to the longest symbol; strip that and the comment lines.
clean() { grep -v '^#' | sed -E '/^$/d; s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//'; }
perf report -i "$OUTDIR/perf.data" --no-children --sort dso,symbol -g none --percent-limit 0.1 --stdio \
    2>/dev/null | clean >"$OUTDIR/self.txt"
perf report -i "$OUTDIR/perf.data" --sort dso --no-children -g none --stdio 2>/dev/null | clean >"$OUTDIR/dso.txt"
if [ "$CALLGRAPH" != none ]; then
    perf report -i "$OUTDIR/perf.data" --no-inline --children --sort symbol -g none --percent-limit 1 --stdio \
        2>/dev/null | clean >"$OUTDIR/children.txt"
    perf report -i "$OUTDIR/perf.data" --no-inline --no-children --sort symbol -g caller,0.5,callee,function,percent \
        --percent-limit 1.5 --stdio 2>/dev/null | sed -E 's/[[:space:]]+$//' >"$OUTDIR/callers.txt"
fi
if [ "$SCHED" = 1 ]; then
    perf sched latency -i "$WORK/sched.data" --sort max 2>/dev/null >"$OUTDIR/sched.txt"
    perf sched timehist -i "$WORK/sched.data" -s 2>/dev/null | tail -60 >>"$OUTDIR/sched.txt"
fi
log "wrote $OUTDIR"
echo "--- threads ($OUTDIR/threads.txt)"
cat "$OUTDIR/threads.txt"
echo "--- where the time goes by binary ($OUTDIR/dso.txt)"
cat "$OUTDIR/dso.txt"
echo "--- top symbols by self time ($OUTDIR/self.txt)"
head -30 "$OUTDIR/self.txt" | cut -c1-160

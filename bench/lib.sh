# Shared helpers for the Switchyard bench scripts (sourced, not run).
# Everything here stays on loopback and is bounded in time.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# A TCP port no socket uses: random below the kernel's ephemeral range (so an outgoing
# connection cannot take it while a backend is down and being restarted), checked with ss.
# Ports handed out in this run are remembered so two calls never return the same one.
_PICKED_PORTS=" "
free_port() {
    local p i low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 21000 ] || low=61000
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % (low - 20000)))
        case "$_PICKED_PORTS" in *" $p "*) continue ;; esac
        if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
            _PICKED_PORTS="$_PICKED_PORTS$p "
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# wait_http URL SECONDS [CURL ARGS…]: poll until the URL answers at all (any status).
wait_http() {
    local url=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if curl -s -o /dev/null --max-time 1 "$@" "$url"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# utime+stime of one process (all its threads), in clock ticks. The comm field may hold spaces,
# so everything up to the last ") " is dropped first; utime and stime are then fields 12 and 13.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

# utime of one process (all its threads) in clock ticks: the user-space part of cpu_ticks.
user_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo "${12}"
}

# "RUN_NS WAIT_NS" of one process summed over its threads (/proc/PID/task/*/schedstat): time on
# a CPU, and time runnable but waiting for one (the core was busy with something else).
sched_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ r += $1; w += $2 } END { printf "%.0f %.0f\n", r, w }'
}

# VmRSS (kB) of one process; 0 when it is gone.
rss_kb() {
    awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# VmHWM (kB): the peak RSS since start or since the last reset_hwm; 0 when the process is gone.
hwm_kb() {
    awk '/^VmHWM:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# Reset VmHWM to the current RSS (Linux >= 4.0: writing 5 to clear_refs).
reset_hwm() {
    echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true
}

# A process and its direct children (nginx: master and workers), one PID a line.
with_children() {
    local pid=$1
    echo "$pid"
    cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Sum of a function over several PIDs: sum_over cpu_ticks PID…
sum_over() {
    local fn=$1 total=0 pid
    shift
    for pid in "$@"; do total=$((total + $($fn "$pid"))); done
    echo "$total"
}

# Median of the numbers on stdin (one a line); mean of the middle two for an even count.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Build the gateway and the bench backend in release mode; sets SWITCHYARD_BIN and BACKEND_BIN.
build_release() {
    local repo=$1 target
    target=${CARGO_TARGET_DIR:-$repo/target}
    log "building release binaries (cargo build --release --bin switchyard --example backend)"
    (cd "$repo" && timeout 1800 cargo build --release --bin switchyard --example backend) >&2 \
        || die "cargo build failed"
    SWITCHYARD_BIN=$target/release/switchyard
    BACKEND_BIN=$target/release/examples/backend
    [ -x "$SWITCHYARD_BIN" ] || die "missing $SWITCHYARD_BIN"
    [ -x "$BACKEND_BIN" ] || die "missing $BACKEND_BIN"
}

# The binaries to measure. SWITCHYARD_BIN and BACKEND_BIN, when both are set, are used as they
# are (e.g. a release kept from an earlier commit); NO_BUILD=1 takes them from the cargo target
# dir without building; otherwise build_release.
release_binaries() {
    local repo=$1 target
    if [ -n "${SWITCHYARD_BIN:-}" ] || [ -n "${BACKEND_BIN:-}" ]; then
        if [ -z "${SWITCHYARD_BIN:-}" ] || [ -z "${BACKEND_BIN:-}" ]; then
            die "set both SWITCHYARD_BIN and BACKEND_BIN, or neither"
        fi
    elif [ "${NO_BUILD:-0}" = 1 ]; then
        target=${CARGO_TARGET_DIR:-$repo/target}
        SWITCHYARD_BIN=$target/release/switchyard
        BACKEND_BIN=$target/release/examples/backend
    else
        build_release "$repo"
    fi
    [ -x "$SWITCHYARD_BIN" ] || die "missing $SWITCHYARD_BIN"
    [ -x "$BACKEND_BIN" ] || die "missing $BACKEND_BIN"
    log "switchyard: $SWITCHYARD_BIN; backend: $BACKEND_BIN"
}

# switchyard_bench_config PORT ADMIN_PORT BACKEND_PORT MAX_IDLE IDLE_SECS → the gateway config
# of the proxy benches on stdout. Every request goes through tenant extraction (x-tenant-id, or
# for clients that cannot vary a header per request the host name tenant-N.bench.test), route
# matching and the sticky bucket (percent = 50 between two upstreams that are the same backend).
# No shadow, no debug headers, logging at the default level (nothing is logged per request).
# Each pool keeps up to MAX_IDLE idle connections for IDLE_SECS. The SQLite store lands beside
# the config file.
switchyard_bench_config() {
    local pool="idle_timeout = \"${5}s\"
max_idle_per_origin = $4"
    cat <<EOF
[listen]
http = "127.0.0.1:$1"
workers = 1

[admin]
listen = "127.0.0.1:$2"
debug_headers = false

[tenant]
sources = [{ header = "x-tenant-id" }, { host = "{tenant}.bench.test" }]
unknown = "default"

[upstreams.legacy]
origins = ["http://127.0.0.1:$3"]
$pool

[upstreams.new]
origins = ["http://127.0.0.1:$3"]
$pool

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
}

# write_wrk_script FILE: the wrk script of the proxy benches. It rotates TENANTS x-tenant-id
# values over one path (wrk arguments after --: PATH TENANTS). Requests are built once in
# init(), so the Lua cost per request is a table lookup; done() prints one BENCH line with exact
# counts and percentiles.
write_wrk_script() {
    cat >"$1" <<'EOF'
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
}

# Tracepoints for `perf stat` on a proxy: the system calls a proxy makes (counting all 300-odd
# syscalls:sys_enter_* takes seconds to set up), packets sent, wake-ups of other tasks, switches.
PERF_PROXY_EVENTS=$(printf 'syscalls:sys_enter_%s,' read readv recvfrom recvmsg write writev sendto sendmsg \
    splice epoll_wait epoll_pwait epoll_ctl futex sched_yield clock_nanosleep accept4 connect close getsockopt \
    setsockopt clock_gettime)net:net_dev_queue,sched:sched_waking,sched:sched_switch

# Debian packages the benches need, installed only when missing. Services are kept from starting
# during the install (a temporary policy-rc.d when none exists), so the packaged nginx and
# HAProxy never bind port 80 or run from /etc; the benches start their own from a temp dir.
ensure_packages() {
    local missing=() cmd pkg
    for cmd in "$@"; do
        case "$cmd" in
            nginx | haproxy) command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing+=("$cmd") ;;
            *) command -v "$cmd" >/dev/null || missing+=("$cmd") ;;
        esac
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; install them (apt-get install nginx-light haproxy wrk curl jq) or run as root"
    local pkgs=()
    for cmd in "${missing[@]}"; do
        case "$cmd" in
            nginx)
                # nginx-light is the smallest flavour in Debian 12; later releases only ship nginx.
                if apt-cache show nginx-light >/dev/null 2>&1; then pkg=nginx-light; else pkg=nginx; fi ;;
            perf) pkg=linux-perf ;;
            *) pkg=$cmd ;;
        esac
        pkgs+=("$pkg")
    done
    log "installing ${pkgs[*]}"
    local policy_made=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_made=1
    fi
    timeout 600 apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
    local rc=$?
    [ "$policy_made" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || die "apt-get install ${pkgs[*]} failed"
}

# CPU sets for the proxy, the backend and the load generator. The proxy gets CPU 0 to itself;
# the backend and wrk share the rest (CPU 1 on a 2-core machine). Override with PROXY_CPUS,
# BACKEND_CPUS, WRK_CPUS (taskset -c lists); PIN=0 disables pinning.
plan_cpus() {
    local n
    n=$(nproc)
    PIN=${PIN:-1}
    if [ "$PIN" = 0 ] || [ "$n" -lt 2 ] || ! command -v taskset >/dev/null; then
        PROXY_CPUS=${PROXY_CPUS:-} BACKEND_CPUS=${BACKEND_CPUS:-} WRK_CPUS=${WRK_CPUS:-}
        PIN=0
        return
    fi
    PROXY_CPUS=${PROXY_CPUS:-0}
    if [ "$n" -ge 3 ]; then
        BACKEND_CPUS=${BACKEND_CPUS:-1}
        WRK_CPUS=${WRK_CPUS:-2}
    else
        BACKEND_CPUS=${BACKEND_CPUS:-1}
        WRK_CPUS=${WRK_CPUS:-1}
    fi
}

# pinned CPUS CMD…: run CMD on the CPU list (exec, so $! is CMD's own PID). With NICE set (e.g.
# NICE=-10, root only) CMD also runs at that nice level, so that other work on a shared machine
# takes less of the pinned cores; it applies to every process a bench starts.
pinned() {
    local cpus=$1
    shift
    if [ -n "${NICE:-}" ] && [ "${NICE:-0}" != 0 ]; then set -- nice -n "$NICE" "$@"; fi
    if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}

# start_work NAME: a temp work dir in $WORK and an empty PIDS array; on exit every PID in PIDS
# (and a load generator still running under run_load) gets TERM, then KILL after 5 s, and the
# dir is removed (KEEP=1 keeps it).
start_work() {
    WORK=$(mktemp -d "/tmp/switchyard-$1.XXXXXX")
    PIDS=()
    LOAD_PID=
    trap _stop_work EXIT
    trap 'exit 130' INT TERM
}

# run_load OUT CPUS CMD…: run a load generator pinned to CPUS with stdout+stderr to OUT and wait
# for it. It runs in the background so that a signal to the script interrupts the wait at once
# (the EXIT trap then stops it) instead of waiting for the generator to finish.
run_load() {
    local out=$1 cpus=$2 rc
    shift 2
    pinned "$cpus" "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=
    return "$rc"
}

_stop_work() {
    local pid
    [ -n "${LOAD_PID:-}" ] && PIDS+=("$LOAD_PID")
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

# oha (a load generator with a fixed-rate mode that corrects for coordinated omission): OHA_BIN,
# else on PATH, else built once into target/bench-tools with cargo install --locked. Sets OHA.
ensure_oha() {
    local repo=$1 root
    root=${CARGO_TARGET_DIR:-$repo/target}/bench-tools
    if [ -n "${OHA_BIN:-}" ]; then
        OHA=$OHA_BIN
    elif command -v oha >/dev/null; then
        OHA=$(command -v oha)
    elif [ -x "$root/bin/oha" ]; then
        OHA=$root/bin/oha
    else
        log "building oha into $root (cargo install oha --locked; a few minutes, once)"
        timeout 3000 cargo install oha --locked --root "$root" >&2 || die "cargo install oha failed"
        OHA=$root/bin/oha
    fi
    [ -x "$OHA" ] || die "missing $OHA"
}

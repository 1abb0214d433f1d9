# Shared helpers for the Switchyard bench scripts (sourced, not run).
# Everything here stays on loopback and is bounded in time.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# A TCP port nobody listens on: random in 20000-60999, checked with ss. Ports handed out in this
# run are remembered so two calls never return the same one.
_PICKED_PORTS=" "
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 41000))
        case "$_PICKED_PORTS" in *" $p "*) continue ;; esac
        if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
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

# VmRSS (kB) of one process; 0 when it is gone.
rss_kb() {
    awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

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

# Debian packages the benches need, installed only when missing. Services are kept from starting
# during the install (a temporary policy-rc.d when none exists), so the packaged nginx never
# binds port 80 or runs from /etc/nginx; the benches start their own nginx from a temp prefix.
ensure_packages() {
    local missing=() cmd pkg
    for cmd in "$@"; do
        case "$cmd" in
            nginx) command -v nginx >/dev/null || command -v /usr/sbin/nginx >/dev/null || missing+=(nginx) ;;
            *) command -v "$cmd" >/dev/null || missing+=("$cmd") ;;
        esac
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; install them (apt-get install nginx-light wrk curl) or run as root"
    local pkgs=()
    for cmd in "${missing[@]}"; do
        case "$cmd" in
            nginx)
                # nginx-light is the smallest flavour in Debian 12; later releases only ship nginx.
                if apt-cache show nginx-light >/dev/null 2>&1; then pkg=nginx-light; else pkg=nginx; fi ;;
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

# pinned CPUS CMD…: run CMD on the CPU list (exec, so $! is CMD's own PID).
pinned() {
    local cpus=$1
    shift
    if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}

# start_work NAME: a temp work dir in $WORK and an empty PIDS array; on exit every PID in PIDS
# gets TERM, then KILL after 5 s, and the dir is removed (KEEP=1 keeps it).
start_work() {
    WORK=$(mktemp -d "/tmp/switchyard-$1.XXXXXX")
    PIDS=()
    trap _stop_work EXIT
    trap 'exit 130' INT TERM
}

_stop_work() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: libFuzzer (through libfuzzer-sys) with LLVM's
# sanitizer-coverage instrumentation, switched on with stable `-C` flags. Only the sanitizers
# need nightly; Rust's own checks (bounds, overflow, debug assertions) stay on.
#
#   fuzz/run.sh build                  build every target
#   fuzz/run.sh TARGET [SECONDS]       fuzz one target (default 60 s)
#   fuzz/run.sh smoke [SECONDS]        every target for SECONDS each (default 20)
#   fuzz/run.sh merge TARGET           fold the finds of earlier runs into the committed corpus
#
# Targets: config tenant matcher diff framing (entry points in src/fuzzing.rs). Seeds are read
# from fuzz/corpus/TARGET (committed, never written by a run); new finds go to
# target/fuzz-finds/TARGET; crashing inputs to fuzz/artifacts/TARGET. A crash is fixed, then its
# input is committed under fuzz/regressions/TARGET, where `cargo test --test fuzz` replays it.
# Builds go to the workspace's target/ (under the host triple, apart from the debug builds).
set -euo pipefail
cd "$(dirname "$0")"
TARGETS="config tenant matcher diff framing"
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-../target}
finds() { echo "$CARGO_TARGET_DIR/fuzz-finds/$1"; }
bin() { echo "$CARGO_TARGET_DIR/$triple/release/$1"; }

build() { cargo build --release --target "$triple" --bins; }

run() { # TARGET SECONDS
  local t=$1 secs=$2 dict=()
  mkdir -p "$(finds "$t")" "artifacts/$t" "corpus/$t" "regressions/$t"
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  echo "== fuzz $t for ${secs}s"
  "$(bin "$t")" "$(finds "$t")" "corpus/$t" "regressions/$t" "${dict[@]}" \
    -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|panicked|thread)' || true
  # libFuzzer's exit status is lost in the pipe; a crash leaves an artifact.
  if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/timeout-*" >/dev/null; then
    echo "FAIL: $t found a crash or timeout: $(ls "artifacts/$t")"
    return 1
  fi
}

case "${1:-}" in
  build) build ;;
  smoke)
    build
    status=0
    for t in $TARGETS; do run "$t" "${2:-20}" || status=1; done
    exit $status ;;
  merge)
    t=${2:?target}
    "$(bin "$t")" -merge=1 "corpus/$t" "$(finds "$t")" ;;
  config|tenant|matcher|diff|framing)
    build
    run "$1" "${2:-60}" ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# The test suite under sanitizers (issue 7): `scripts/sanitize.sh [asan|tsan|all]`, `make sanitize`.
#
# asan: the whole ctest suite in build-asan/ with PMT_SANITIZE=address,undefined: trace/, the
#   analyzer, the unit tests and the tools that read traces (pmt_dump, pmt_stress_check) are
#   built with -fsanitize=address,undefined -fno-sanitize-recover=undefined, leak detection on.
#   libpymemtrace.so stays uninstrumented there: it replaces malloc, which the ASan runtime owns,
#   and ASan must be the first library of a process, which a library preloaded into an ordinary
#   Python cannot be. The interposer's own code is checked instead by tests/sanitize: all of
#   preload/*.cpp (hooks, recorder, writer, encoder, sampler, fork handling) compiled into one
#   ASan program whose hooks forward to ASan's allocator, driven by the stress test (without
#   forks: ASan's allocator has no fork handler, a child forked mid-allocation deadlocks in it).
# tsan: the interposer's concurrency (per-thread buffers and their ownership flag, the writer's
#   collection, the throttle, fork handlers, the sampler) in build-tsan/: the same program built
#   with -fsanitize=thread; 8 threads record while the writer collects and the main thread forks.
#   Built with clang 16 (scripts/setup-deps.sh installs it; this script too when missing): our
#   fork child starts its writer thread, which gcc 12's and clang 14's TSan runtimes abort ("dup
#   thread with used id": they keep the parent's dead threads registered); clang 16's forgets
#   them at fork. clang 16's TSan does not lock its malloc allocator at fork (LLVM 19 does), so
#   a child could block forever in malloc on a lock another thread held at fork: the sanitized
#   program's fork waits for the allocator to be idle, as glibc's fork does
#   (tests/sanitize/fork_gate.c has the evidence). In both sanitized programs our threads keep
#   the process's descriptor table (tests/sanitize/shared_fds.c): the sanitizer's log and
#   symbolizer descriptors are in it, and TSan tracks descriptors by number.
#
# Every sanitized process writes its reports to <build dir>/sanitizer-logs/<tool>.<pid>
# (log_path), so a report from a process whose exit status or stderr a test does not look at
# still fails the run; the script prints them. Exit 0 only when both suites pass, report-free.
# Environment: JOBS (2), ASAN_DIR (build-asan), TSAN_DIR (build-tsan), CTEST_ARGS (extra).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${JOBS:-2}
ASAN_DIR=${ASAN_DIR:-$ROOT/build-asan}
TSAN_DIR=${TSAN_DIR:-$ROOT/build-tsan}
WHAT=${1:-all}
case $WHAT in asan | tsan | all) ;; *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;; esac

status=0
summary=()

# Prints the reports left in $1 (one log file per reporting process); fails when there is one.
check_logs() {
    local dir=$1 files
    files=$(find "$dir" -type f -size +0 2>/dev/null | sort || true)
    [ -z "$files" ] && return 0
    echo "sanitizer reports ($(echo "$files" | wc -l) processes):" >&2
    for f in $files; do
        echo "=== $f" >&2
        head -60 "$f" >&2
    done
    return 1
}

# Reports name source lines only with a symbolizer; the sanitizers reject a relative symlink.
SYMBOLIZER=$(readlink -f "$(command -v llvm-symbolizer || true)" || true)
sym_opt() { [ -n "$SYMBOLIZER" ] && echo ":external_symbolizer_path=$SYMBOLIZER" || true; }

# run_suite NAME BUILD_DIR CMAKE_SANITIZE TARGETS CTEST_SELECTION [CMAKE_ARGS...]
run_suite() {
    local name=$1 dir=$2 kind=$3 targets=$4 select=$5 start=$SECONDS
    shift 5
    local logs=$dir/sanitizer-logs
    echo "== $name: configure and build in $dir"
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPMT_SANITIZE="$kind" \
        -DPMT_BUILD_BENCH=OFF "$@" >/dev/null
    # shellcheck disable=SC2086
    cmake --build "$dir" -j"$JOBS" $targets
    rm -rf "$logs" && mkdir -p "$logs"
    local built=$((SECONDS - start)) rc=0
    echo "== $name: ctest"
    # shellcheck disable=SC2086
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" $select ${CTEST_ARGS:-}) | tee "$dir/sanitize-ctest.log" || rc=1
    check_logs "$logs" || rc=1
    local line
    line=$(grep -E "tests passed|tests failed" "$dir/sanitize-ctest.log" | tail -1 || true)
    summary+=("$name: ${line:-no ctest summary}; reports: $(find "$logs" -type f -size +0 | wc -l); build ${built}s, total $((SECONDS - start))s")
    [ $rc -eq 0 ] || status=1
}

if [ "$WHAT" != tsan ]; then
    logs=$ASAN_DIR/sanitizer-logs
    # verify_asan_link_order=0: test_run gives the command a user's LD_PRELOAD (libm) to pass on
    # to the traced program; ASan would refuse to start the sanitized command itself with it.
    export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:verify_asan_link_order=0:log_path=$logs/asan$(sym_opt)"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan$(sym_opt)"
    export LSAN_OPTIONS="log_path=$logs/lsan"
    run_suite asan "$ASAN_DIR" address,undefined "" ""
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi
if [ "$WHAT" != asan ]; then
    if ! command -v clang++-16 >/dev/null; then
        echo "== tsan: installing clang-16 (scripts/setup-deps.sh lists it; its TSan runtime supports threads started after fork)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang-16 \
            libclang-rt-16-dev >/dev/null
    fi
    export TSAN_OPTIONS="log_path=$TSAN_DIR/sanitizer-logs/tsan$(sym_opt)"
    run_suite tsan "$TSAN_DIR" thread "--target pmt_san_stress pmt_stress_check" "-L thread" \
        -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16
    unset TSAN_OPTIONS
fi

printf '%s\n' "${summary[@]}"
exit $status

#!/bin/sh
# Builds the libFuzzer target with clang (ASan+UBSan, coverage on trace/ and analyzer/) in its
# own build directory, makes a seed corpus from real traces, replays the kept crash inputs
# (tests/fuzz/regress/) and fuzzes.  Usage: run.sh [-runs=N | -max_total_time=S] [more libFuzzer
# flags].  PMT_BUILD_DIR: a normal build (libpymemtrace.so, native test programs) for the seeds;
# PMT_FUZZ_BUILD: where the clang build goes.  Exit 0 when no input crashed.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${PMT_FUZZ_BUILD:-$SRC/build-fuzz}
REL=${PMT_BUILD_DIR:-$SRC/build}
command -v clang++ >/dev/null || { echo "run.sh: clang++ not found" >&2; exit 2; }
[ -f "$REL/lib/libpymemtrace.so" ] || { echo "run.sh: no $REL/lib/libpymemtrace.so (set PMT_BUILD_DIR)" >&2; exit 2; }

FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" -DPMT_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$BUILD" --target fuzz_trace fuzz_seed -j2 >/dev/null
FUZZ=$BUILD/bin/fuzz_trace

# Seeds: small real traces (C programs with every hooked call, threads, a Python run, a
# SIGKILLed Python run), stored uncompressed and as written (zstd stream), plus the committed ones.
CORPUS=$BUILD/fuzz-corpus
SEEDS=$BUILD/fuzz-seeds
mkdir -p "$CORPUS" "$SEEDS" "$BUILD/fuzz-artifacts"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
trace() {  # trace NAME CMD...
  name=$1; shift
  env LD_PRELOAD="$REL/lib/libpymemtrace.so" PYMEMTRACE_OUTPUT="$T/$name.pmt" PYMEMTRACE_QUIET=1 \
    PYMEMTRACE_FLUSH_INTERVAL_MS=5 "$@" >/dev/null 2>&1 || true
}
trace alloc_all "$REL/bin/native_alloc_all"
trace thread_exit "$REL/bin/native_thread_exit"
trace py /usr/bin/python3 -c "x = [bytearray(100000) for i in range(3)]; del x[0]"
env LD_PRELOAD="$REL/lib/libpymemtrace.so" PYMEMTRACE_OUTPUT="$T/killed.pmt" PYMEMTRACE_QUIET=1 \
  PYMEMTRACE_FLUSH_INTERVAL_MS=5 /usr/bin/python3 -c "
import os, signal, time
x = [bytearray(50000) for i in range(20)]
time.sleep(0.05)
os.kill(os.getpid(), signal.SIGKILL)" >/dev/null 2>&1 || true
for f in "$T"/*.pmt; do
  [ -f "$f" ] || continue
  b=$(basename "$f" .pmt)
  "$BUILD/bin/fuzz_seed" "$f" "$SEEDS/$b-small" 1024 || true
  "$BUILD/bin/fuzz_seed" "$f" "$SEEDS/$b" 4096 || true
  "$BUILD/bin/fuzz_seed" "$f" "$SEEDS/$b-stored" 4096 keep || true
done
"$BUILD/bin/fuzz_seed" --streams "$SEEDS"  # version-3 and -4 files and stream payloads (StreamEncoder)
cp "$HERE"/seeds/* "$SEEDS/" 2>/dev/null || true

# Every input that ever crashed the target must now run cleanly.
if ls "$HERE"/regress/* >/dev/null 2>&1; then
  "$FUZZ" -rss_limit_mb=2048 -timeout=20 "$HERE"/regress/* 2>"$BUILD/fuzz-regress.log" ||
    { tail -30 "$BUILD/fuzz-regress.log" >&2; echo "run.sh: a kept crash input fails again" >&2; exit 1; }
  echo "regression inputs: $(ls "$HERE"/regress | wc -l) ok"
fi

"$FUZZ" "$CORPUS" "$SEEDS" -max_len=4096 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$BUILD/fuzz-artifacts/" "$@"

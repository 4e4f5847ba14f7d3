#!/bin/bash
# Runs real test suites with and without the interposer and prints their counts side by side:
# numpy's own suite (numpy.test()) and a CPython regression subset (Debian's
# libpython3.11-testsuite), both on /usr/bin/python3. A suite is "identical" when its counts
# (passed, failed, errors, skipped, xfail) are the same in both runs.
# Usage: scripts/suites-compare.sh [--quick] [--no-numpy] [--tests "test_a test_b"]
#   --quick: test_mmap test_weakref test_gc only, no numpy (the CI subset).
# PMT_BUILD_DIR: the build with lib/libpymemtrace.so (default: build). Exit 1 when any differ.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${PMT_BUILD_DIR:-$HERE/../build}
LIB=$(cd "$BUILD/lib" 2>/dev/null && pwd)/libpymemtrace.so
PY=/usr/bin/python3
TESTS="test_mmap test_threading test_multiprocessing_fork test_multiprocessing_spawn test_subprocess test_signal test_gc test_weakref test_capi"
NUMPY=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) TESTS="test_mmap test_weakref test_gc"; NUMPY=0 ;;
    --no-numpy) NUMPY=0 ;;
    --tests) TESTS=$2; shift ;;
    *) echo "suites-compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -f "$LIB" ] || { echo "suites-compare.sh: no $LIB (set PMT_BUILD_DIR)" >&2; exit 2; }

# The suites' own dependencies (also in scripts/setup-deps.sh).
missing=""
for p in python3-pytest python3-hypothesis libpython3.11-testsuite; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y $missing >/dev/null ||
    { echo "suites-compare.sh: cannot install$missing" >&2; exit 2; }
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# run NAME MODE CMD...: runs CMD (MODE "plain" or "traced") with its output in $WORK/NAME.MODE
run() {
  local name=$1 mode=$2; shift 2
  local out=$WORK/$name.$mode
  if [ "$mode" = traced ]; then
    mkdir -p "$WORK/traces"
    (cd "$WORK" && env LD_PRELOAD="$LIB" PYMEMTRACE_OUTPUT="$WORK/traces/" PYMEMTRACE_QUIET=1 \
      timeout 3600 "$@" >"$out" 2>&1 </dev/null)
    echo $? >"$out.rc"
    echo "$(ls "$WORK/traces" | wc -l)" >"$out.traces"
    rm -rf "$WORK/traces"
  else
    (cd "$WORK" && timeout 3600 "$@" >"$out" 2>&1 </dev/null)
    echo $? >"$out.rc"
  fi
}

# counts FILE KIND: "passed failed errors skipped xfail" from pytest's or unittest's summary.
counts() {
  "$PY" - "$1" "$2" <<'PYEOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
c = dict(passed=0, failed=0, errors=0, skipped=0, xfail=0)
if sys.argv[2] == "pytest":
    m = re.findall(r"^=+ (.*\d+ (?:passed|failed).*) in [\d.]+s", text, re.M)
    for n, what in re.findall(r"(\d+) (\w+)", m[-1] if m else ""):
        key = {"passed": "passed", "failed": "failed", "error": "errors", "errors": "errors",
               "skipped": "skipped", "xfailed": "xfail", "xpassed": "xfail"}.get(what)
        if key: c[key] += int(n)
else:
    ran = sum(int(x) for x in re.findall(r"^Ran (\d+) tests?", text, re.M))
    for res in re.findall(r"^(?:OK|FAILED) \((.*)\)$", text, re.M):
        for what, n in re.findall(r"(\w+)=(\d+)", res):
            key = {"failures": "failed", "errors": "errors", "skipped": "skipped",
                   "expected_failures": "xfail", "unexpected_successes": "xfail"}.get(what)
            if key: c[key] += int(n)
    c["passed"] = ran - c["failed"] - c["errors"] - c["skipped"] - c["xfail"]
print(" ".join(str(c[k]) for k in ("passed", "failed", "errors", "skipped", "xfail")))
PYEOF
}

SUITES=""
if [ "$NUMPY" = 1 ]; then
  for mode in plain traced; do
    run numpy $mode "$PY" -c "import sys, numpy; sys.exit(0 if numpy.test(extra_argv=['-p', 'no:cacheprovider', '--continue-on-collection-errors']) else 1)"
  done
  SUITES="numpy"
fi
for t in $TESTS; do
  for mode in plain traced; do
    run "$t" $mode "$PY" -m test -v --timeout 1200 "$t"
  done
  SUITES="$SUITES $t"
done

printf "%-28s %-34s %-34s %s\n" suite "without (pass fail err skip xfail rc)" "with preload (same, traces)" identical
status=0
for s in $SUITES; do
  kind=unittest; [ "$s" = numpy ] && kind=pytest
  a=$(counts "$WORK/$s.plain" $kind) b=$(counts "$WORK/$s.traced" $kind)
  ra=$(cat "$WORK/$s.plain.rc") rb=$(cat "$WORK/$s.traced.rc")
  same=yes; { [ "$a" != "$b" ] || [ "$ra" != "$rb" ]; } && { same=no; status=1; }
  printf "%-28s %-34s %-34s %s\n" "$s" "$a rc=$ra" "$b rc=$rb $(cat "$WORK/$s.traced.traces")" $same
  if [ $same = no ]; then
    mkdir -p "${PMT_SUITES_KEEP:-/tmp}/pmt-suites"
    cp "$WORK/$s.plain" "$WORK/$s.traced" "${PMT_SUITES_KEEP:-/tmp}/pmt-suites/"
  fi
done
exit $status

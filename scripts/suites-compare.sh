#!/bin/bash
# Runs real test suites with and without the interposer and prints their counts side by side:
# numpy's own suite (numpy.test()) and a CPython regression subset (Debian's
# libpython3.11-testsuite), both on /usr/bin/python3. Debian's testsuite package lacks
# Lib/test/test_capi/ (a package directory it does not ship): a test it lacks runs on
# PMT_ALT_PYTHON (default: pyenv's 3.11.7, whose test package is complete) when that has it.
# A suite is "identical" when its counts (passed, failed, errors, skipped, xfail) and exit
# status are the same in both runs. Wall times are printed per run.
# Usage: scripts/suites-compare.sh [--quick] [--no-numpy] [--tests "test_a test_b"]
#   --quick: test_mmap test_weakref test_gc only, no numpy (the CI subset).
# PMT_BUILD_DIR: the build with lib/libpymemtrace.so (default: build); PMT_SUITES_LOGS: a
# directory that receives every run's output. Exit 1 when any differ.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${PMT_BUILD_DIR:-$HERE/../build}
LIB=$(cd "$BUILD/lib" 2>/dev/null && pwd)/libpymemtrace.so
PY=/usr/bin/python3
ALT_PY=${PMT_ALT_PYTHON:-/root/.pyenv/versions/3.11.7/bin/python3}
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
  local out=$WORK/$name.$mode start=$SECONDS
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
  echo $((SECONDS - start)) >"$out.wall"
  [ -n "${PMT_SUITES_LOGS:-}" ] && mkdir -p "$PMT_SUITES_LOGS" && cp "$out" "$PMT_SUITES_LOGS/"
  return 0
}

# python_for TEST: the interpreter whose test package has TEST (Debian's first).
has_test() { "$1" -c "import importlib.util as u, sys; sys.exit(u.find_spec('test.' + sys.argv[1]) is None)" "$2" 2>/dev/null; }
python_for() {
  if has_test "$PY" "$1" || ! [ -x "$ALT_PY" ] || ! has_test "$ALT_PY" "$1"; then echo "$PY"; else echo "$ALT_PY"; fi
}

# counts FILE KIND: "passed failed errors skipped xfail" from pytest's or unittest's summary.
counts() {
  "$PY" - "$1" "$2" <<'PYEOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
c = dict(passed=0, failed=0, errors=0, skipped=0, xfail=0)
if sys.argv[2] == "pytest":
    # "== 3 passed in 1.0s ==", or without the rules under -q (numpy.test passes -q).
    m = re.findall(r"^=*\s*(\d+ \w+.*) in [\d.]+s", text, re.M)
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
declare -A INTERP
for t in $TESTS; do
  py=$(python_for "$t")
  INTERP[$t]=$("$py" -c "import platform; print(platform.python_version())")
  for mode in plain traced; do
    run "$t" $mode "$py" -m test -v --timeout 1200 "$t"
  done
  SUITES="$SUITES $t"
done
INTERP[numpy]=$("$PY" -c "import platform; print(platform.python_version())")

printf "%-36s %-38s %-42s %s\n" "suite (python)" "without (pass fail err skip xfail rc, s)" \
  "with preload (same, traces)" identical
status=0
for s in $SUITES; do
  kind=unittest; [ "$s" = numpy ] && kind=pytest
  a=$(counts "$WORK/$s.plain" $kind) b=$(counts "$WORK/$s.traced" $kind)
  ra=$(cat "$WORK/$s.plain.rc") rb=$(cat "$WORK/$s.traced.rc")
  same=yes; { [ "$a" != "$b" ] || [ "$ra" != "$rb" ]; } && { same=no; status=1; }
  wa=$(cat "$WORK/$s.plain.wall") wb=$(cat "$WORK/$s.traced.wall")
  printf "%-36s %-38s %-42s %s\n" "$s (${INTERP[$s]})" "$a rc=$ra ${wa}s" \
    "$b rc=$rb ${wb}s $(cat "$WORK/$s.traced.traces") traces" $same
  if [ $same = no ]; then
    mkdir -p "${PMT_SUITES_KEEP:-/tmp}/pmt-suites"
    cp "$WORK/$s.plain" "$WORK/$s.traced" "${PMT_SUITES_KEEP:-/tmp}/pmt-suites/"
  fi
done
exit $status

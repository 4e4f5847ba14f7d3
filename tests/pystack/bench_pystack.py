"""ns per python_stack_id() call at Python stack depths 5, 20 and 50 (the probe library's timer).

usage: PMT_PYSTACK_PROBE=build/lib/libpmt_pystack_probe.so python3 tests/pystack/bench_pystack.py
"unchanged": the stack did not move since the previous call (the outer frames are compared with
the previous walk, nothing is hashed); "innermost line alternating": two call sites in turn, so
the innermost frame resolves through the tables (timed with the TSC around each call);
"every level hashed": the previous walk is forgotten before each call, so each frame goes
through the location and stack tables.
"""
import ctypes
import os
import sys

lib = ctypes.PyDLL(os.environ["PMT_PYSTACK_PROBE"])
lib.pmt_probe_bench.restype = ctypes.c_double
lib.pmt_probe_bench.argtypes = [ctypes.c_int, ctypes.c_int]
lib.pmt_probe_timed_result.restype = ctypes.c_double
ITERATIONS = 200_000


def depth():
    n, f = 0, sys._getframe(1)
    while f is not None:
        n, f = n + 1, f.f_back
    return n


def at_depth(d):
    if depth() < d:
        return at_depth(d)
    # depth() counts this frame's callers plus this frame
    fixed = [min(lib.pmt_probe_bench(ITERATIONS, mode) for _ in range(5)) for mode in (0, 1)]
    return fixed + [alternating()]


def alternating():
    """Two call sites in turn: the innermost frame's line changes on every call."""
    timed = lib.pmt_probe_timed
    timed()
    lib.pmt_probe_timed_result()
    best = float("inf")
    for _ in range(5):
        for _ in range(ITERATIONS // 20):
            timed()
            timed()
        best = min(best, lib.pmt_probe_timed_result())
    return best


print(f"python {sys.version.split()[0]} ({sys.executable})")
for d in (5, 20, 50):
    unchanged, hashed, alternate = at_depth(d)
    print(f"depth {d:3}: unchanged {unchanged:6.1f} ns/call, innermost line alternating"
          f" {alternate:6.1f}, every level hashed {hashed:7.1f}")

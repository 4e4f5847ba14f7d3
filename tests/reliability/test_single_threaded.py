# glibc's single-thread mode (preload/own_heap.hpp): a program with one thread of its own runs
# glibc's malloc and free without their locks (__libc_single_threaded). Our threads no longer
# take that from it: nothing of ours is in glibc's heap and they take no pthread mutex, so the
# flag is set back after they start. A thread of the program's own clears it as before, and so
# does a set*id call (glibc then changes every thread's credentials, ours too). Where our heap
# cannot be reserved (an address-space limit), the flag is left to glibc. Each case also runs
# an allocation-heavy loop while the writer works and checks the trace's ground truth. The
# program's own blocks never come from our heap, Python's allocator domains traced or not.
import json
import os
import resource
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")
PY = "/usr/bin/python3"

# Prints the flag at start, after ~200 k malloc/free pairs above glibc's tcache sizes (the
# writer collects meanwhile), then after `then`; keeps 40 MB alive at line 14 for the peak.
SCRIPT = """\
import ctypes, os, sys, threading
flag = ctypes.c_char.in_dll(ctypes.CDLL(None), "__libc_single_threaded")
seen = [flag.value[0]]
def churn():
    n = 0
    for i in range(200_000):
        n += len(bytes(2000 + i % 512))
    return n
churn()
seen.append(flag.value[0])
exec(sys.argv[1])
seen.append(flag.value[0])
churn()
keep = bytearray(40_000_000)
print(seen)
"""


def traced(then, trace, **kw):
    env = dict(os.environ, PYMEMTRACE_QUIET="1", LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=trace)
    return subprocess.run([PY, "-c", SCRIPT, then], env=env, capture_output=True, text=True,
                          timeout=120, **kw)


class SingleThreadModeTest(unittest.TestCase):
    def run_case(self, then, **kw):
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "t.pmt")
            p = traced(then, trace, **kw)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            r = subprocess.run([PMT, "report", "--json", trace], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            report = json.loads(r.stdout)
            top = report["at_peak"][0]
            self.assertEqual((top["file"], top["line"]), ("<string>", 14))
            self.assertGreaterEqual(top["bytes"], 40_000_000)
            self.assertLess(top["bytes"], 40_100_000)
            self.assertGreater(report["totals"]["allocations"], 400_000)
            return json.loads(p.stdout)

    def test_a_program_with_one_thread_keeps_glibcs_single_thread_mode(self):
        self.assertEqual(self.run_case("pass"), [1, 1, 1])

    def test_a_thread_of_the_program_ends_it(self):
        then = "t = threading.Thread(target=churn); t.start(); t.join()"
        self.assertEqual(self.run_case(then), [1, 1, 0])

    def test_a_credentials_call_ends_it(self):
        # Same ids: allowed for anyone, and glibc still runs its every-thread path.
        self.assertEqual(self.run_case("os.setgid(os.getgid())"), [1, 1, 0])

    def test_a_fork_child_has_it_and_its_own_trace(self):
        then = ("pid = os.fork()\n"
                "if pid == 0:\n"
                "    churn(); os._exit(10 + flag.value[0])\n"
                "_, status = os.waitpid(pid, 0)\n"
                "assert os.waitstatus_to_exitcode(status) == 11, status\n")
        self.assertEqual(self.run_case(then), [1, 1, 1])

    def test_without_our_heap_the_flag_is_glibcs(self):
        # An address-space limit: our heap is not reserved, our threads use glibc's malloc,
        # and glibc's multi-thread mode stays on from their start.
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY))

        self.assertEqual(self.run_case("pass", preexec_fn=limit), [0, 0, 0])


# Finds our heap (the one 8 GiB anonymous mapping) and prints how many of the program's
# blocks of various sizes (pymalloc passes those above 512 bytes to malloc) lie inside it.
OWN_HEAP = """\
import ctypes
heap = []
for line in open("/proc/self/maps"):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if hi - lo == 8 << 30 and len(f) == 5:
        heap.append((lo, hi))
keep = [bytearray(n) for n in (600, 4000, 100_000) for _ in range(200)]
inside = 0
for b in keep:
    a = ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))
    inside += any(lo <= a < hi for lo, hi in heap)
print(len(heap), len(keep), inside)
"""


class OwnHeapTest(unittest.TestCase):
    def test_the_programs_blocks_never_come_from_our_heap(self):
        for settings in ({}, {"PYMEMTRACE_PYTHON_ALLOCATORS": "1"}):
            with self.subTest(**settings), tempfile.TemporaryDirectory() as d:
                env = dict(os.environ, PYMEMTRACE_QUIET="1", LD_PRELOAD=LIB,
                           PYMEMTRACE_OUTPUT=os.path.join(d, "t.pmt"), **settings)
                p = subprocess.run([PY, "-c", OWN_HEAP], env=env, capture_output=True,
                                   text=True, timeout=120)
                self.assertEqual((p.returncode, p.stderr), (0, ""))
                self.assertEqual(p.stdout.split(), ["1", "600", "0"])


if __name__ == "__main__":
    unittest.main()

# Interposer behaviour on C programs whose allocations are known by construction: every hooked
# function recorded with its kind and size, errno and exit status untouched, fork while threads
# allocate, exec (failed and successful, same pid), vfork, short-lived threads, SIGKILL.
# Traces are read back with pmt_dump (pmt::TraceReader only). Run by ctest (see CMakeLists.txt).
import glob
import os
import re
import subprocess
import tempfile
import types
import unittest
import unittest.mock

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
BIN = os.path.join(BUILD, "bin")
PAGE = os.sysconf("SC_PAGE_SIZE")


def dump(path, events=False):
    """Parses pmt_dump's output: header fields, per-type counts, end summary, events."""
    argv = [os.path.join(BIN, "pmt_dump"), path] + (["--events"] if events else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    info = {"events": [], "counts": {}}
    for line in out.splitlines():
        if line.startswith("pid "):
            f = line.split()
            info["pid"], info["ppid"], info["forked"] = int(f[1]), int(f[3]), int(f[5])
        elif line.startswith("events "):
            f = line.split()
            info["total"], info["ordered"], info["truncated"] = int(f[1]), f[3] == "1", f[5] == "1"
        elif line.startswith("end: "):
            info["end"] = True
            info["lost"] = int(re.search(r" lost (\d+)", line)[1])
        elif re.match(r"^\s*\d+ tid=", line):  # %12 leaves no space from 100 s on
            m = re.match(r"\s*(\d+) tid=(\d+) (\w+)\s+kind=(\w+) addr=(\S+) size=(\d+)", line)
            info["events"].append({"t": int(m[1]), "tid": int(m[2]), "type": m[3], "kind": m[4],
                                   "addr": int(m[5], 16), "size": int(m[6])})
        elif re.match(r"^[a-z]+ \d+$", line):
            name, n = line.split()
            info["counts"][name] = int(n)
    return info


class Traced:
    """Runs argv under the interposer, traces going to a fresh directory."""

    def __init__(self, test, argv, extra_env=None, **kw):
        tmp = tempfile.TemporaryDirectory(prefix="pmt-native-")
        test.addCleanup(tmp.cleanup)
        env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=tmp.name, PYMEMTRACE_QUIET="1",
                   **(extra_env or {}))
        self.proc = subprocess.run(argv, env=env, capture_output=True, text=True, **kw)
        self.traces = sorted(glob.glob(os.path.join(tmp.name, "*.pmt")))


class NativeTests(unittest.TestCase):
    def test_every_hooked_function_is_recorded_with_its_kind_and_size(self):
        prog = os.path.join(BIN, "native_alloc_all")
        plain = subprocess.run([prog], capture_output=True, text=True)
        run = Traced(self, [prog])
        self.assertEqual(run.proc.returncode, 0, run.proc.stdout)  # errno survived the hooks
        self.assertEqual(run.proc.stdout, plain.stdout)
        self.assertEqual(run.proc.stderr, "")
        self.assertEqual(len(run.traces), 1)
        info = dump(run.traces[0], events=True)
        self.assertTrue(info.get("end") and not info["truncated"] and info["ordered"])
        allocs = [(e["kind"], e["size"]) for e in info["events"] if e["type"] == "alloc"]
        expected = [("malloc", 1000), ("calloc", 1000), ("realloc", 5000),
                    ("reallocarray", 7000), ("posix_memalign", 11000), ("aligned_alloc", 3328),
                    ("memalign", 17000), ("valloc", 19000), ("pvalloc", 23000)]
        for item in expected:
            self.assertIn(item, allocs)
        self.assertIn(3000, [e["size"] for e in info["events"] if e["type"] == "alloc"])
        maps = [e for e in info["events"] if e["type"] in ("mmap", "munmap", "mremap")]
        self.assertEqual([(e["type"], e["size"]) for e in maps],
                         [("mmap", 64 * PAGE), ("munmap", 16 * PAGE), ("mremap", 96 * PAGE),
                          ("munmap", 96 * PAGE)])
        self.assertEqual(maps[1]["addr"], maps[0]["addr"] + 48 * PAGE)  # the partial unmap
        # Every block the program made was freed: each allocated address is freed later.
        freed = {e["addr"] for e in info["events"] if e["type"] == "free"}
        for e in info["events"]:
            if e["type"] == "alloc" and e["size"] in dict(expected).values():
                self.assertIn(e["addr"], freed)

    def test_our_own_initialisation_is_not_in_the_trace(self):
        # libstdc++'s initialisers in libpymemtrace.so run after our constructor and malloc
        # (its exception pool, 72,704 bytes with GCC 12): ours, never the program's.
        prog = os.path.join(BIN, "native_own_init")
        for args, expected in (([], []), (["one"], [("malloc", 12345)])):
            run = Traced(self, [prog] + args)
            self.assertEqual((run.proc.returncode, run.proc.stdout, run.proc.stderr), (0, "", ""))
            self.assertEqual(len(run.traces), 1)
            info = dump(run.traces[0], events=True)
            self.assertTrue(info.get("end") and not info["truncated"])
            heap = [e for e in info["events"] if e["type"] not in ("rss",)]
            self.assertEqual([(e["kind"], e["size"]) for e in heap], expected, heap)

    def test_python_has_no_block_of_ours_and_keeps_its_own_libstdcxx_pool(self):
        # /usr/bin/python3 does not load libstdc++: a 72,704-byte block is ours. A libstdc++.so
        # the program loads later makes its own pool, the program's: traced, with its stack.
        for code, pools in (("pass", 0), ("import ctypes; ctypes.CDLL('libstdc++.so.6')", 1)):
            run = Traced(self, ["/usr/bin/python3", "-c", code])
            self.assertEqual((run.proc.returncode, run.proc.stderr), (0, ""))
            info = dump(run.traces[0], events=True)
            self.assertTrue(info.get("end") and not info["truncated"])
            self.assertGreater(info["counts"].get("alloc", 0), 100)  # the interpreter's own
            out = subprocess.run([os.path.join(BIN, "pmt_dump"), run.traces[0], "--events"],
                                 capture_output=True, text=True, check=True).stdout
            blocks = [ln for ln in out.splitlines() if " alloc " in ln and "size=72704 " in ln]
            self.assertEqual(len(blocks), pools, blocks)
            for line in blocks:
                self.assertIn("CDLL.__init__", line)

    def test_fork_while_threads_allocate_neither_deadlocks_nor_loses_children(self):
        run = Traced(self, [os.path.join(BIN, "native_fork_stress")], timeout=300)
        self.assertEqual((run.proc.returncode, run.proc.stdout), (0, "ok\n"))
        self.assertEqual(len(run.traces), 41)
        infos = [dump(t) for t in run.traces]
        parents = [i for i in infos if not i["forked"]]
        self.assertEqual(len(parents), 1)
        for child in (i for i in infos if i["forked"]):
            self.assertEqual(child["ppid"], parents[0]["pid"])
            self.assertTrue(child.get("end"), "child ended with exit/_exit: trace complete")
            self.assertGreaterEqual(child["counts"].get("alloc", 0), 2)  # its own and its thread's
        self.assertTrue(parents[0].get("end") and parents[0]["ordered"])

    def test_exec_keeps_the_pid_and_a_failed_exec_keeps_tracing(self):
        run = Traced(self, [os.path.join(BIN, "native_exec_chain"), "2"])
        self.assertEqual((run.proc.returncode, run.proc.stdout), (0, "done 0\n"))
        chain = [dump(t, events=True) for t in run.traces]
        pids = [i["pid"] for i in chain]
        main_pid = max(set(pids), key=pids.count)
        same = [i for i in chain if i["pid"] == main_pid]
        self.assertEqual(len(same), 3, run.traces)  # exec'd twice: .pmt, .1.pmt, .2.pmt
        for info in same:
            self.assertTrue(info.get("end") and not info["truncated"])
        with_777 = [i for i in same if any(e["size"] == 777 for e in i["events"])]
        self.assertEqual(len(with_777), 2)  # recorded after each failed exec
        vforked = [i for i in chain if i["pid"] != main_pid]
        self.assertEqual(len(vforked), 1)  # /bin/true, exec'd from the vfork child
        self.assertEqual(vforked[0]["ppid"], main_pid)

    def test_short_lived_threads_lose_no_events(self):
        run = Traced(self, [os.path.join(BIN, "native_thread_exit")])
        self.assertEqual((run.proc.returncode, run.proc.stdout), (0, "threads 300\n"))
        info = dump(run.traces[0])
        # Each thread: 100 malloc/free pairs, one malloc handed on and one free of the last.
        self.assertGreaterEqual(info["counts"]["alloc"], 300 * 101 + 1)
        self.assertGreaterEqual(info["counts"]["free"], 300 * 101 + 1)
        self.assertTrue(info.get("end") and info["ordered"])

    def test_a_lone_thread_collected_without_membarrier_loses_and_reorders_nothing(self):
        # ~48 MB of records: the writer wakes every MiB and, while the main thread is the only
        # program thread, takes its full buffers without membarrier, and the sampler's (RSS
        # every 2 ms) with full barriers; the hand-off from a second thread halfway sends it back
        # to membarrier. Every block of the program's size range must be allocated once, freed
        # after its allocation (no unknown free) and the live rest must match to the byte; the
        # RSS samples must keep their own times (one collected late would be delivered at the
        # running time, as its neighbours are).
        run = Traced(self, [os.path.join(BIN, "native_lone_thread"), "1000000"],
                     extra_env={"PYMEMTRACE_RSS_INTERVAL_MS": "2"})
        self.assertEqual(run.proc.returncode, 0, run.proc.stderr)
        m = re.match(r"allocs (\d+) frees (\d+) live (\d+) maps (\d+)$", run.proc.stdout.strip())
        allocs, frees, live_bytes, maps = (int(x) for x in m.groups())
        self.assertEqual(len(run.traces), 1)
        info = dump(run.traces[0], events=True)
        self.assertTrue(info.get("end") and info["ordered"] and not info["truncated"])
        ours = lambda size: 3001 <= size <= 3999 and size % 2 == 1  # noqa: E731
        live, seen_allocs, seen_frees, unknown, tids = {}, 0, 0, 0, set()
        for e in info["events"]:
            if e["type"] == "alloc":
                live[e["addr"]] = e["size"]
                if ours(e["size"]):
                    seen_allocs += 1
                    tids.add(e["tid"])
            elif e["type"] == "free":
                size = live.pop(e["addr"], None)
                if size is None:
                    unknown += 1
                elif ours(size):
                    seen_frees += 1
        kept = sum(n for n in live.values() if ours(n))
        self.assertEqual((seen_allocs, seen_frees, kept), (allocs, frees, live_bytes))
        self.assertEqual(len(tids), 2)
        self.assertEqual(unknown, 0)
        mapped = [e for e in info["events"] if e["type"] == "mmap" and e["size"] == 4096]
        self.assertGreaterEqual(len(mapped), maps)
        rss_times = [e["t"] for e in info["events"] if e["type"] == "rss"]
        self.assertGreater(len(rss_times), 40)
        self.assertGreater(len(set(rss_times)), 0.9 * len(rss_times))

    def test_a_free_takes_its_allocations_time_only_as_a_pair_within_a_tick(self):
        # A lone thread's free may take the time of its block's allocation when that is the
        # thread's latest record and the sampler has not ticked (fast_free_time). After a 40 ms
        # sleep (four ticks) the free must read the clock: >= 35 ms after its malloc. Frees that
        # follow other frees (256, 25 us apart) or another block's malloc (3 ms later, 20
        # times) keep their own times: the burst spans >= 3.7 ms, each late free is >= 1.9 ms
        # after the other malloc (less the trace's ~1.05 ms precision, FORMAT.md "Ticks"). A
        # build whose frees reuse the latest reading within a tick fails the last two, the
        # 20-fold one whenever no tick falls in a 3 ms sleep; one that always reuses, all three.
        run = Traced(self, [os.path.join(BIN, "native_free_time")])
        self.assertEqual((run.proc.returncode, run.proc.stdout), (0, "ok\n"), run.proc.stderr)
        info = dump(run.traces[0], events=True)
        self.assertTrue(info.get("end") and info["ordered"])
        sizes, alloc_t, free_t = {}, {}, {}
        for e in info["events"]:
            if e["type"] == "alloc" and 1001 <= e["size"] <= 1005:
                sizes[e["addr"]] = e["size"]
                alloc_t.setdefault(e["size"], []).append(e["t"])
            elif e["type"] == "free" and e["addr"] in sizes:
                free_t.setdefault(sizes.pop(e["addr"]), []).append(e["t"])
        self.assertEqual((len(alloc_t[1001]), len(free_t[1001])), (1, 1))
        self.assertGreaterEqual(free_t[1001][0] - alloc_t[1001][0], 35_000_000)
        self.assertEqual(len(free_t[1002]), 256)
        self.assertGreaterEqual(free_t[1002][-1] - free_t[1002][0], 3_700_000)
        self.assertLess(free_t[1002][-1] - free_t[1002][0], 20_000_000)
        self.assertEqual((len(free_t[1004]), len(alloc_t[1005])), (20, 20))
        for t_free, t_other in zip(free_t[1004], alloc_t[1005]):
            self.assertGreaterEqual(t_free - t_other, 1_900_000)

    def test_calls_of_a_signal_handler_that_interrupted_a_hook_are_recorded(self):
        # SIGALRM every 200 us lands inside a malloc/free hook much of the time; the handler's
        # mmap/munmap then go through the side ring (preload/side_ring.hpp). One pair per
        # signal fits: every call is in the trace. Twenty pairs (40 events) overflow the
        # 32-slot ring: what is not in the trace is counted as lost in the End chunk.
        length = 3 * PAGE
        for pairs in (1, 20):
            run = Traced(self, [os.path.join(BIN, "native_signal_nested"), "0.6", str(pairs)])
            self.assertEqual(run.proc.returncode, 0, run.proc.stderr)
            signals, maps, unmaps = map(int, re.match(r"signals (\d+) maps (\d+) unmaps (\d+)\n$",
                                                      run.proc.stdout).groups())
            self.assertGreater(signals, 100)
            self.assertEqual((maps, unmaps), (signals * pairs, signals * pairs))
            info = dump(run.traces[0])
            self.assertTrue(info.get("end") and info["ordered"])
            # Millions of malloc/free events: count the handler's mappings without parsing all.
            out = subprocess.run([os.path.join(BIN, "pmt_dump"), run.traces[0], "--events"],
                                 capture_output=True, text=True, check=True).stdout
            size = " size=%d " % length
            got = {t: sum(1 for line in out.splitlines() if (" %s " % t) in line and size in line)
                   for t in ("mmap", "munmap")}
            if pairs == 1:
                self.assertEqual((got["mmap"], got["munmap"], info["lost"]), (maps, unmaps, 0))
            else:
                self.assertGreater(info["lost"], 0)
                self.assertEqual(got["mmap"] + got["munmap"] + info["lost"], maps + unmaps)

    def test_exit_status_and_signals_pass_through(self):
        self.assertEqual(Traced(self, ["sh", "-c", "exit 42"]).proc.returncode, 42)
        self.assertEqual(Traced(self, ["sh", "-c", "kill -9 $$"]).proc.returncode, -9)
        self.assertEqual(Traced(self, ["sh", "-c", "kill -SEGV $$"]).proc.returncode, -11)

    def test_a_killed_process_leaves_a_readable_truncated_trace(self):
        script = "head -c 50000000 /dev/zero | tr '\\0' a | wc -c; kill -9 $$"
        run = Traced(self, ["sh", "-c", script])
        self.assertEqual(run.proc.returncode, -9)
        killed = [i for i in map(dump, run.traces) if i["truncated"]]
        self.assertEqual(len(killed), 1)  # the shell; its children ended normally

    def test_a_program_closing_our_descriptors_sees_no_message_and_low_fds_stay_free(self):
        # subprocess with preexec_fn forks (no vfork) and closes every fd > 2 before exec:
        # the fork child's trace descriptor disappears under it.
        script = ("import subprocess, os\n"
                  "r = subprocess.run(['sh', '-c', 'echo err >&2'], capture_output=True,\n"
                  "                   text=True, preexec_fn=lambda: None)\n"
                  "print(repr(r.stderr), os.open('/dev/null', os.O_RDONLY))\n")
        run = Traced(self, ["/usr/bin/python3", "-c", script])
        self.assertEqual((run.proc.returncode, run.proc.stdout), (0, "'err\\n' 3\n"))

    def test_an_event_older_than_the_flush_interval_survives_sigkill(self):
        script = ("import os, signal, time\n"
                  "b = bytearray(12_345_678)\n"
                  "time.sleep(0.15)\n"
                  "os.kill(os.getpid(), signal.SIGKILL)\n")
        run = Traced(self, ["/usr/bin/python3", "-c", script])
        self.assertEqual(run.proc.returncode, -9)
        info = dump(run.traces[0], events=True)
        self.assertTrue(info["truncated"])
        sizes = [e["size"] for e in info["events"] if e["type"] == "alloc"]
        self.assertTrue(any(12_345_678 <= n <= 12_345_678 + 64 for n in sizes))

    def check_handoff(self, run):
        """native_handoff's trace: every free finds its block live (no "unknown" free) and the
        program's blocks are all gone at the end: exact live bytes across threads."""
        self.assertEqual((run.proc.returncode, run.proc.stdout), (0, "100000\n"), run.proc.stderr)
        self.assertEqual(len(run.traces), 1)
        info = dump(run.traces[0], events=True)
        self.assertTrue(info.get("end") and not info["truncated"])
        live, unknown, freed = {}, 0, 0
        for e in info["events"]:
            if e["type"] == "alloc":
                live[e["addr"]] = e["size"]
            elif e["type"] == "free":
                if live.pop(e["addr"], None) is None:
                    unknown += 1
                else:
                    freed += 1
        self.assertEqual(unknown, 0)
        self.assertGreaterEqual(freed, 100000)
        self.assertEqual([n for n in live.values() if 64 <= n <= 160 and n % 16 == 0], [])

    def test_a_block_freed_by_another_thread_is_delivered_after_its_malloc(self):
        # Producer/consumer hand-off: the free often follows the malloc within a microsecond
        # on another thread.
        self.check_handoff(Traced(self, [os.path.join(BIN, "native_handoff")]))

    def test_without_membarrier_from_the_start_the_locked_fallback_keeps_the_order(self):
        # A seccomp filter refuses membarrier before the interposer loads: its threads mark
        # their buffers with locked stores instead (preload/recorder.cpp).
        tmp = tempfile.TemporaryDirectory(prefix="pmt-native-")
        self.addCleanup(tmp.cleanup)
        env = dict(os.environ, PYMEMTRACE_OUTPUT=tmp.name, PYMEMTRACE_QUIET="1")
        env.pop("LD_PRELOAD", None)
        run = types.SimpleNamespace()
        run.proc = subprocess.run([os.path.join(BIN, "native_deny_membarrier"), LIB,
                                   os.path.join(BIN, "native_handoff")],
                                  env=env, capture_output=True, text=True)
        run.traces = sorted(glob.glob(os.path.join(tmp.name, "*.pmt")))
        self.check_handoff(run)

    def test_membarrier_refused_mid_run_keeps_the_order(self):
        # The program makes membarrier fail for all its threads 50 ms in, while the hand-off
        # runs (~150 ms traced): writer cycles before and after the switch to the fallback.
        self.check_handoff(Traced(self, [os.path.join(BIN, "native_handoff"), "50"]))

    def test_an_allocator_preloaded_before_us_neither_deadlocks_nor_breaks_the_trace(self):
        # jemalloc's malloc comes first, so the interposer sees only the mmaps it makes while
        # holding its own lock; our stack walker's caches must not call back into it (hung
        # every time before they came from the allocator after ours).
        libdir = "/usr/lib/x86_64-linux-gnu"
        tried = 0
        for name in ("libjemalloc.so.2", "libmimalloc.so.2"):
            first = os.path.join(libdir, name)
            if not os.path.exists(first):
                continue
            tried += 1
            with tempfile.TemporaryDirectory(prefix="pmt-native-") as tmp:
                env = dict(os.environ, LD_PRELOAD=first + " " + LIB, PYMEMTRACE_OUTPUT=tmp,
                           PYMEMTRACE_QUIET="1")
                proc = subprocess.run([os.path.join(BIN, "native_allocator_first")], env=env,
                                      capture_output=True, text=True, timeout=60)
                self.assertEqual((proc.returncode, proc.stderr), (0, ""), name)
                traces = glob.glob(os.path.join(tmp, "*.pmt"))
                self.assertEqual(len(traces), 1, name)
                info = dump(traces[0])
                self.assertTrue(info.get("end"), name)  # finished, not cut short
                self.assertFalse(info["truncated"], name)
        if not tried:
            self.skipTest("neither jemalloc nor mimalloc is installed")

    def test_an_unwritable_output_runs_the_program_untraced(self):
        env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT="/nonexistent/dir/x.pmt")
        proc = subprocess.run(["sh", "-c", "echo hi; exit 3"], env=env, capture_output=True,
                              text=True)
        self.assertEqual((proc.returncode, proc.stdout), (3, "hi\n"))
        self.assertEqual(len(proc.stderr.splitlines()), 1)
        self.assertIn("running untraced", proc.stderr)

    def test_trace_times_follow_clock_monotonic_before_and_after_the_clock_switch(self):
        # The interposer starts on CLOCK_MONOTONIC and may switch to the TSC 50 ms in
        # (runtime.hpp). Blocks of known sizes are allocated between time.monotonic_ns()
        # readings 0.2 s apart: each distance between their trace times must lie within the
        # distances the program measured (up to 5 us: the switch's margin and rate error).
        script = ("import time\n"
                  "marks, keep = [], []\n"
                  "for i in range(4):\n"
                  "    a = time.monotonic_ns()\n"
                  "    keep.append(bytearray(3_333_000 + 1000 * i))\n"
                  "    marks.append((a, time.monotonic_ns()))\n"
                  "    time.sleep(0.2)\n"
                  "print(marks)\n")
        for clock in ("", "monotonic", "report"):
            with self.subTest(clock=clock or "default"):
                with unittest.mock.patch.dict(os.environ, PYMEMTRACE_CLOCK=clock):
                    run = Traced(self, ["/usr/bin/python3", "-c", script])
                self.assertEqual(run.proc.returncode, 0, run.proc.stderr)
                said = [l for l in run.proc.stderr.splitlines() if "trace clock:" in l]
                if clock == "report" and os.uname().machine == "x86_64":
                    self.assertEqual(len(said), 1, run.proc.stderr)
                    self.check_clock_report(said[0])
                else:
                    self.assertEqual(said, [])
                marks = eval(run.proc.stdout)
                info = dump(run.traces[0], events=True)
                times = []
                for i in range(4):
                    n = 3_333_000 + 1000 * i
                    found = [e["t"] for e in info["events"]
                             if e["type"] == "alloc" and n <= e["size"] <= n + 64]
                    self.assertEqual(len(found), 1, n)
                    times.append(found[0])
                for i in range(4):
                    for j in range(i + 1, 4):
                        lo = marks[j][0] - marks[i][1] - 5000
                        hi = marks[j][1] - marks[i][0] + 5000
                        self.assertTrue(lo <= times[j] - times[i] <= hi,
                                        (i, j, lo, times[j] - times[i], hi))

    def check_clock_report(self, line):
        # With an invariant TSC read by the kernel's clocksource (the TSC, or a paravirtual
        # clock such as kvm-clock) the writer checks every CPU and switches, or names the CPU
        # whose TSC disagrees: it never leaves such a machine unchecked.
        try:
            with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
                source = f.read().strip()
            with open("/proc/cpuinfo") as f:
                flags = set(next(l for l in f if l.startswith("flags")).split(":")[1].split())
        except (OSError, StopIteration):
            return
        tsc_source = source in ("tsc", "kvm-clock", "xen", "hyperv_clocksource_tsc_page")
        if not (tsc_source and {"constant_tsc", "nonstop_tsc"} <= flags):
            self.assertIn("CLOCK_MONOTONIC (clocksource", line)
            return
        m = re.search(r"the TSC from ([0-9.]+) s \(clocksource (\S+); (\d+) CPUs agree", line)
        if m:
            self.assertGreaterEqual(float(m.group(1)), 0.05, line)
            self.assertEqual(m.group(2), source)
            self.assertEqual(int(m.group(3)), len(os.sched_getaffinity(0)), line)
        else:
            self.assertRegex(line, r"CLOCK_MONOTONIC \(clocksource \S+; CPU \d+: ")


if __name__ == "__main__":
    unittest.main()

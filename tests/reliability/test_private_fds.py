# Our threads run on descriptor tables of their own (preload/private_fds.cpp): a program that
# lists its descriptors at any instant sees only those it opened, never the trace the writer
# opens for a write cycle or the /proc/self/stat the sampler opens for a sample (CPython's
# test_multiprocessing_spawn.test_child_fd_inflation counted one extra 1 run in 6). Messages
# of our threads still reach the program's stderr, and exit handlers run with the program's
# descriptors when the sampler ends a process whose last thread exited (test_stress.py).
# A thread of ours waiting for another one to start the anchor sleeps: it used to spin on
# sched_yield, a whole core for as long as pthread_create was stuck (25 minutes once, in a
# deadlocked process).
import os
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PY = "/usr/bin/python3"

# Lists /proc/self/fd as fast as it can for SECONDS while allocating enough for the writer to
# have work every cycle; prints every listing that differs from the first one.
WATCH = """
import os, sys, time
seconds = float(sys.argv[1])
first = sorted(os.listdir('/proc/self/fd'))
seen, n, end = {}, 0, time.monotonic() + seconds
while time.monotonic() < end:
    junk = [bytearray(200) for _ in range(200)]
    for _ in range(20):
        now = sorted(os.listdir('/proc/self/fd'))
        n += 1
        if now != first:
            seen[tuple(now)] = seen.get(tuple(now), 0) + 1
print(n, first)
for k, v in seen.items():
    print('extra', v, k)
"""


def traced(argv, out, settings=None, **kw):
    env = dict(os.environ, PYMEMTRACE_QUIET="1", LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=out,
               **(settings or {}))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, **kw)


class PrivateDescriptorTest(unittest.TestCase):
    def test_a_program_listing_its_descriptors_never_sees_ours(self):
        # 1 ms samples: the sampler's window is as frequent as it gets.
        with tempfile.TemporaryDirectory() as d:
            p = traced([PY, "-c", WATCH, "4"], os.path.join(d, "t.pmt"),
                       {"PYMEMTRACE_RSS_INTERVAL_MS": "1"})
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            lines = p.stdout.splitlines()
            self.assertGreater(int(lines[0].split()[0]), 10000, "enough listings to matter")
            self.assertEqual(lines[1:], [], "descriptors the program did not open")

    def test_a_spawned_child_sees_only_its_own_descriptors(self):
        # The child of a traced parent starts traced too (its own writer and sampler).
        code = ("import subprocess, sys\n"
                "r = subprocess.run([sys.executable, '-c', sys.argv[1], '2'],"
                " capture_output=True, text=True)\n"
                "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n")
        with tempfile.TemporaryDirectory() as d:
            p = traced([PY, "-c", code, WATCH], d + "/")
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertEqual(p.stdout.splitlines()[1:], [])
            self.assertEqual(len(os.listdir(d)), 2, "parent and child traces")

    def test_a_message_of_the_writer_reaches_the_programs_stderr(self):
        # With no descriptor left to open, the writer cannot open its trace again: its one
        # line must appear on the program's stderr (fd 2 of the writer's own table is empty),
        # and the program goes on untraced.
        code = ("import resource, sys, time\n"
                "keep = [bytearray(1000) for _ in range(1000)]\n"
                "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
                "resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))\n"
                "keep += [bytearray(1000) for _ in range(1000)]\n"
                "time.sleep(0.4)\n"
                "print('done', len(keep))\n")
        with tempfile.TemporaryDirectory() as d:
            p = traced([PY, "-c", code], os.path.join(d, "t.pmt"))
            self.assertEqual((p.returncode, p.stdout), (0, "done 2000\n"))
            self.assertRegex(p.stderr, r"^pymemtrace: cannot open the trace again "
                                       r"\(Too many open files\); tracing stopped")

    def test_a_pipe_closed_by_the_program_reaches_eof(self):
        # No thread of ours holds the write end: the reader sees EOF when the program closes
        # it, while the writer and sampler keep running.
        code = ("import os, time\n"
                "r, w = os.pipe()\n"
                "time.sleep(0.25)\n"
                "keep = [bytearray(1000) for _ in range(5000)]\n"
                "os.write(w, b'x'); os.close(w)\n"
                "t = time.monotonic()\n"
                "print(os.read(r, 10), os.read(r, 10), time.monotonic() - t < 0.05)\n")
        with tempfile.TemporaryDirectory() as d:
            p = traced([PY, "-c", code], os.path.join(d, "t.pmt"))
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "b'x' b'' True\n", ""))


# Preloaded before the interposer: the first thread a thread other than the main one creates
# (the anchor: our writer or sampler starts it) is created a second late.
SLOW_ANCHOR = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>
static atomic_int g_calls;
int pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*f)(void*), void* arg) {
    int (*real)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*) =
        (int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*))dlsym(
            RTLD_NEXT, "pthread_create");
    if (syscall(SYS_gettid) != getpid() && atomic_fetch_add(&g_calls, 1) == 0) sleep(1);
    return real(t, a, f, arg);
}
"""


class SamplerTest(unittest.TestCase):
    def test_the_sampler_records_the_rss_every_interval(self):
        # The sampler's rss records (its own thread state, without a Python stack cache): one
        # per 10 ms tick, the 40 MB held showing in them.
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "t.pmt")
            code = "import time\nb = bytearray(40_000_000)\ntime.sleep(0.4)\n"
            p = traced([PY, "-c", code], trace)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            dump = subprocess.run([os.path.join(BUILD, "bin", "pmt_dump"), trace, "--events"],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(dump.returncode, 0, dump.stderr)
            rss = [int(line.split("size=")[1].split()[0]) for line in dump.stdout.splitlines()
                   if " rss " in line]
            self.assertGreaterEqual(len(rss), 20)
            self.assertGreater(max(rss), 40_000_000)
            self.assertLess(min(rss), 40_000_000)  # the first, taken before the bytearray


@unittest.skipUnless(shutil.which("cc"), "needs a C compiler")
class AnchorWaitTest(unittest.TestCase):
    def test_waiting_for_the_anchor_costs_no_cpu(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "slow.c")
            shim = os.path.join(d, "libslow.so")
            with open(src, "w") as f:
                f.write(SLOW_ANCHOR)
            subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", shim, src, "-ldl"],
                           check=True)
            env = dict(os.environ, PYMEMTRACE_QUIET="1", LD_PRELOAD=shim + ":" + LIB,
                       PYMEMTRACE_OUTPUT=os.path.join(d, "t.pmt"))
            # Output small enough for the pipes: reaped by wait4 for its CPU time.
            p = subprocess.Popen([PY, "-c", "import time; time.sleep(1.5); print('done')"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, status, ru = os.wait4(p.pid, 0)
            out, err = p.stdout.read(), p.stderr.read()
            p.stdout.close()
            p.stderr.close()
            p.returncode = os.waitstatus_to_exitcode(status)
            self.assertEqual((p.returncode, out, err), (0, b"done\n", b""))
            self.assertTrue(os.path.exists(os.path.join(d, "t.pmt")))
            # One of our threads waited about a second for the anchor; untraced, the program
            # takes ~0.02 s of CPU. A spinning wait took 0.5-1 s.
            self.assertLess(ru.ru_utime + ru.ru_stime, 0.3, "CPU seconds of the traced program")


if __name__ == "__main__":
    unittest.main()

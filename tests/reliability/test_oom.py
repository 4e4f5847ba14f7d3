# Out of memory: a Python job that keeps allocating is stopped by a memory cgroup (the kernel's
# OOM killer sends SIGKILL) or by `ulimit -v` (malloc fails, MemoryError). Either way the trace
# must be readable and the report's first line at the peak must be the line that was
# allocating when the process died.
import json
import os
import resource
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")
CGROOT = "/sys/fs/cgroup/memory"
JOB = """import sys
keep = []
small = [str(i) for i in range(1000)]
while True:
    keep.append(b"x" * (8 << 20))  # line 5: the allocating line
"""


def report(trace):
    p = subprocess.run([PMT, "report", "--json", trace], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


class OomTest(unittest.TestCase):
    def run_job(self, d, preexec=None, prefix=()):
        job = os.path.join(d, "job.py")
        with open(job, "w") as f:
            f.write(JOB)
        trace = os.path.join(d, "t.pmt")
        env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=trace, PYMEMTRACE_QUIET="1")
        p = subprocess.run(list(prefix) + ["/usr/bin/python3", job], env=env, timeout=300,
                           capture_output=True, text=True, preexec_fn=preexec)
        return job, trace, p

    def check_line(self, job, rep):
        top = rep["at_peak"][0]
        self.assertEqual((top["file"], top["line"]), (job, 5))
        self.assertGreater(rep["peak"]["bytes"], 100 << 20)

    @unittest.skipUnless(os.access(CGROOT, os.W_OK), "no writable memory cgroup (v1)")
    def test_killed_by_the_oom_killer_in_a_cgroup(self):
        cg = os.path.join(CGROOT, "pmt_oom_%d" % os.getpid())
        os.mkdir(cg)
        try:
            with open(os.path.join(cg, "memory.limit_in_bytes"), "w") as f:
                f.write(str(300 << 20))
            sw = os.path.join(cg, "memory.memsw.limit_in_bytes")
            if os.path.exists(sw):
                with open(sw, "w") as f:
                    f.write(str(300 << 20))
            with open(os.path.join(cg, "memory.swappiness"), "w") as f:
                f.write("0")

            def enter():
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

            with tempfile.TemporaryDirectory() as d:
                job, trace, p = self.run_job(d, preexec=enter)
                self.assertEqual(p.returncode, -9, p.stderr)
                rep = report(trace)
                self.assertTrue(rep["trace"]["truncated"])
                self.check_line(job, rep)
        finally:
            os.rmdir(cg)

    def test_memory_error_under_ulimit_v(self):
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

        with tempfile.TemporaryDirectory() as d:
            job, trace, p = self.run_job(d, preexec=limit)
            self.assertEqual(p.returncode, 1)
            self.assertIn("MemoryError", p.stderr)
            self.check_line(job, report(trace))


if __name__ == "__main__":
    unittest.main()

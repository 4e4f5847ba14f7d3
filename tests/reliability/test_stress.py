# Stress under the interposer (stress.c): 8 threads allocating and freeing while the main
# thread forks and a signal handler maps pages. No deadlock within the timeout; in the parent's
# trace and in every child's, the counts of the stress blocks and their live bytes at the end
# are exactly what the program counted itself (stress_check reads the traces).
# PMT_STRESS_BLOCKS: blocks per thread (default 1000000); PMT_STRESS_FORKS (default 50).
import json
import os
import subprocess
import tempfile
import unittest

from stress_traces import check_stress_run

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
BIN = os.path.join(BUILD, "bin")


class StressTest(unittest.TestCase):
    def test_counts_match_exactly_under_threads_forks_and_signals(self):
        blocks = int(os.environ.get("PMT_STRESS_BLOCKS", "1000000"))
        forks = int(os.environ.get("PMT_STRESS_FORKS", "50"))
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=d + "/",
                       PYMEMTRACE_QUIET="1")
            p = subprocess.run([os.path.join(BIN, "pmt_stress"), str(blocks), str(forks)],
                               env=env, capture_output=True, text=True, timeout=900)
            check_stress_run(self, p, d, blocks, forks, os.path.join(BIN, "pmt_stress_check"))


class LastThreadTest(unittest.TestCase):
    # The interposer's own threads must not keep a process alive after the program's last
    # thread exits (CPython's test_threading, ThreadJoinOnShutdown.test_3, hung on this).
    def test_process_ends_when_its_last_thread_exits(self):
        self.check_last_thread_exit({})

    def test_process_ends_when_its_last_thread_exits_with_rss_sampling_off(self):
        # The check that ends the process must not depend on the RSS sampler being on.
        self.check_last_thread_exit({"PYMEMTRACE_RSS_INTERVAL_MS": "0"})

    def test_a_child_forked_from_a_thread_ends_when_that_thread_returns(self):
        # In the child the forking thread is the only one; when it returns the child must end.
        code = ("import os, threading\n"
                "def f():\n"
                "    pid = os.fork()\n"
                "    if pid: print(os.waitpid(pid, 0)[1], flush=True)\n"
                "t = threading.Thread(target=f); t.start(); t.join()\n")
        env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_QUIET="1")
        with tempfile.TemporaryDirectory() as d:
            env["PYMEMTRACE_OUTPUT"] = d + "/"
            p = subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "0\n", ""))

    def check_last_thread_exit(self, settings):
        env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_QUIET="1", **settings)
        with tempfile.TemporaryDirectory() as d:
            env["PYMEMTRACE_OUTPUT"] = d + "/"
            p = subprocess.Popen([os.path.join(BIN, "pmt_last_thread_exit")], env=env,
                                 stdout=subprocess.PIPE)
            try:
                out, _ = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()  # SIGKILL: our threads block every other signal
                p.communicate()
                self.fail("the process did not end after its last thread exited")
            self.assertEqual((p.returncode, out), (0, b"worker done\n"))
            traces = os.listdir(d)
            self.assertEqual(len(traces), 1, traces)
            rep = subprocess.run([os.path.join(BIN, "pymemtrace"), "report", "--json",
                                  os.path.join(d, traces[0])], capture_output=True, text=True)
            self.assertEqual(rep.returncode, 0, rep.stderr)
            self.assertFalse(json.loads(rep.stdout)["trace"]["truncated"], "exit(0) ends it")


if __name__ == "__main__":
    unittest.main()

# Runs pmt_san_stress (tests/sanitize/CMakeLists.txt: the interposer's sources and stress.c in
# one ASan+UBSan or TSan program) and checks that no sanitizer reported anything, in the parent
# or in any fork child, and that every trace holds exactly the events the program counted.
# PMT_SAN_BLOCKS: blocks per thread; PMT_SAN_FORKS: forks; PMT_SAN_VAR/PMT_SAN_OPTIONS: the
# sanitizer's options this test needs (all set by CTest per sanitizer).
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reliability"))
from stress_traces import check_stress_run  # noqa: E402 (shared with test_stress.py)

BIN = os.path.join(os.environ.get("PMT_BUILD_DIR", "../../build-asan"), "bin")
REPORT_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                  "ThreadSanitizer:", "runtime error:", "SUMMARY:")


class SanitizedStressTest(unittest.TestCase):
    def test_threads_forks_and_signals_report_nothing_and_count_exactly(self):
        blocks = int(os.environ.get("PMT_SAN_BLOCKS", "30000"))
        forks = int(os.environ.get("PMT_SAN_FORKS", "10"))
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, PYMEMTRACE_OUTPUT=d + "/", PYMEMTRACE_QUIET="1")
            var = os.environ.get("PMT_SAN_VAR")
            if var:  # ours first: what the caller set (log_path) is kept and wins
                env[var] = ":".join(filter(None, (os.environ["PMT_SAN_OPTIONS"],
                                                  os.environ.get(var))))
            p = subprocess.run([os.path.join(BIN, "pmt_san_stress"), str(blocks), str(forks)],
                               env=env, capture_output=True, text=True, timeout=800)
            for marker in REPORT_MARKERS:
                self.assertNotIn(marker, p.stderr, p.stderr[-20000:])
            # The sanitized pmt_stress_check reads each trace (the caller's options: log_path).
            check_stress_run(self, p, d, blocks, forks, os.path.join(BIN, "pmt_stress_check"))


if __name__ == "__main__":
    unittest.main()

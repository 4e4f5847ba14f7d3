# Runs pmt_san_stress (tests/sanitize/CMakeLists.txt: the interposer's sources and stress.c in
# one ASan+UBSan or TSan program) and checks that no sanitizer reported anything, in the parent
# or in any fork child, and that every trace holds exactly the events the program counted.
# PMT_SAN_BLOCKS: blocks per thread; PMT_SAN_FORKS: forks; PMT_SAN_VAR/PMT_SAN_OPTIONS: the
# sanitizer's options this test needs (all set by CTest per sanitizer).
import glob
import os
import re
import subprocess
import tempfile
import unittest

BIN = os.path.join(os.environ.get("PMT_BUILD_DIR", "../../build-asan"), "bin")
REPORT_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                  "ThreadSanitizer:", "runtime error:", "SUMMARY:")


def counts(line):
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line)}


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
            self.assertEqual(p.returncode, 0, p.stderr[-5000:])
            lines = p.stdout.splitlines()
            parent = counts(lines[-1])
            self.assertEqual(parent["allocs"], 8 * blocks + 100 * forks)
            self.assertEqual(parent["children"], forks, "a child failed (sanitizer exit code?)")
            child_lives = [counts(l)["live"] for l in lines if l.startswith("child")]
            self.assertEqual(len(child_lives), forks)
            traces = glob.glob(d + "/*.pmt")
            self.assertEqual(len(traces), forks + 1)
            parents = 0
            for t in traces:
                c = subprocess.run([os.path.join(BIN, "pmt_stress_check"), t], env=os.environ,
                                   capture_output=True, text=True)
                self.assertEqual(c.returncode, 0, c.stderr)
                got = counts(c.stdout)
                self.assertEqual(got["truncated"], 0, t)
                if got["forked"]:
                    self.assertEqual((got["allocs"], got["frees"], got["maps"]), (1000, 900, 0))
                    self.assertIn(got["live"], child_lives, t)
                    continue
                parents += 1
                for k in ("allocs", "frees", "live"):
                    self.assertEqual(got[k], parent[k], k)
                # A handler that interrupts one of our hooks is passed through: pairs only.
                self.assertLessEqual(got["maps"], parent["maps"])
                self.assertEqual(got["unmaps"], got["maps"])
            self.assertEqual(parents, 1)


if __name__ == "__main__":
    unittest.main()

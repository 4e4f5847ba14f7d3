# A library loaded after the interposer started (dlopen through ctypes, as Python does for
# every extension module) is traced like any other: its malloc and free reach our hooks, and
# the block it allocates is attributed to the Python line that called into it.
import json
import os
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")
EXT = r"""
#include <stdlib.h>
#include <string.h>
static void* kept;
void grab(size_t n) { kept = malloc(n); memset(kept, 1, n); }
void drop(void) { free(kept); kept = 0; }
"""
JOB = """import ctypes, sys
big = bytearray(1000)
lib = ctypes.CDLL(sys.argv[1])
lib.grab(ctypes.c_size_t(54321987))  # line 4
lib.drop()
"""


class DlopenTest(unittest.TestCase):
    def test_a_library_loaded_after_start_is_traced(self):
        with tempfile.TemporaryDirectory() as d:
            src, so = os.path.join(d, "ext.c"), os.path.join(d, "libext.so")
            with open(src, "w") as f:
                f.write(EXT)
            subprocess.run(["cc", "-shared", "-fPIC", "-O1", src, "-o", so], check=True)
            job, trace = os.path.join(d, "job.py"), os.path.join(d, "t.pmt")
            with open(job, "w") as f:
                f.write(JOB)
            env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=trace,
                       PYMEMTRACE_QUIET="1")
            subprocess.run(["/usr/bin/python3", job, so], env=env, check=True, timeout=120)
            p = subprocess.run([PMT, "report", "--json", trace], capture_output=True,
                               text=True, check=True)
            rep = json.loads(p.stdout)
            top = rep["at_peak"][0]
            self.assertEqual((top["file"], top["line"], top["bytes"]), (job, 4, 54321987))
            # Freed through the same library: nothing of it is live at the end.
            self.assertGreaterEqual(rep["peak"]["bytes"], 54321987)


if __name__ == "__main__":
    unittest.main()

# The interposer holds no descriptor open in the program's table while the program runs
# (CPython's test_subprocess.test_pass_fds_redirected lists every descriptor of a traced
# child): the writer opens its trace again for each write cycle, by absolute path, and writes
# only if it is still the file it created, or, on a table of its own, keeps its descriptor and
# checks each cycle that the path still names the file; the sampler reads /proc/self/statm.
import json
import os
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")
DUMP = os.path.join(BUILD, "bin", "pmt_dump")
PY = "/usr/bin/python3"

# Allocates, lets several write cycles (100 ms) and samples (10 ms) pass, then lists every
# open descriptor the way fd_status.py does (fstat over the whole range).
LIST_FDS = """
import os, time
keep = [bytearray(100_000) for _ in range(50)]
time.sleep(0.35)
fds = []
for fd in range(os.sysconf("SC_OPEN_MAX")):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
print(fds)
"""


def run(argv, out=None, settings=None, **kw):
    env = dict(os.environ, PYMEMTRACE_QUIET="1", **(settings or {}))
    if out is not None:
        env.update(LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=out)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kw)


def report(trace):
    p = subprocess.run([PMT, "report", "--json", trace], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return json.loads(p.stdout)


class DescriptorTest(unittest.TestCase):
    def test_the_program_sees_only_its_own_descriptors(self):
        with tempfile.TemporaryDirectory() as d:
            for settings in ({}, {"PYMEMTRACE_RSS_INTERVAL_MS": "1"}):
                plain = run([PY, "-c", LIST_FDS])
                trace = os.path.join(d, "t%d.pmt" % len(settings))
                traced = run([PY, "-c", LIST_FDS], trace, settings)
                self.assertEqual(plain.returncode, 0, plain.stderr)
                self.assertEqual((traced.returncode, traced.stdout, traced.stderr),
                                 (0, plain.stdout, ""))
                info = report(trace)["trace"]
                self.assertFalse(info["truncated"])

    def test_the_trace_survives_a_change_of_directory(self):
        # A relative output name is made absolute when the file is created.
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "elsewhere"))
            code = ("import os, time\nos.chdir('elsewhere')\n"
                    "b = bytearray(12_345_678)\ntime.sleep(0.25)\n")
            p = run([PY, "-c", code], "t.pmt", cwd=d)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertEqual(os.listdir(os.path.join(d, "elsewhere")), [])
            rep = report(os.path.join(d, "t.pmt"))
            self.assertFalse(rep["trace"]["truncated"])
            # The allocation made after the chdir (line 3) is in the trace.
            self.assertTrue(any(e["line"] == 3 and e["bytes"] >= 12_345_678
                                for e in rep["at_peak"]), rep["at_peak"])

    def replace_trace_while_running(self, make_replacement, check):
        # The program puts something else at its trace's path, then goes on allocating: the
        # writer must stop tracing without a word and never write to the replacement.
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "t.pmt")
            code = ("import os, sys, time\n"
                    "time.sleep(0.15)\n"
                    "exec(sys.argv[1])\n"
                    "keep = [bytearray(1000) for _ in range(20000)]\n"
                    "time.sleep(0.3)\nprint('done')\n")
            p = run([PY, "-c", code, make_replacement], trace, cwd=d)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "done\n", ""))
            check(d)

    def assert_holds(self, path, text):
        with open(path) as f:
            self.assertEqual(f.read(), text)

    def test_a_trace_replaced_by_another_file_is_never_written(self):
        self.replace_trace_while_running(
            "open('other', 'w').write('keep me\\n'); os.rename('other', 't.pmt')",
            lambda d: self.assert_holds(os.path.join(d, "t.pmt"), "keep me\n"))

    def test_a_trace_replaced_by_a_symlink_is_not_followed(self):
        self.replace_trace_while_running(
            "open('victim', 'w').write('keep me\\n'); os.unlink('t.pmt');"
            " os.symlink('victim', 't.pmt')",
            lambda d: self.assert_holds(os.path.join(d, "victim"), "keep me\n"))

    def test_a_trace_moved_away_gets_nothing_more(self):
        # Moved (same file, another name): the path no longer names it, so tracing stops at
        # the next cycle, as when a reopen finds nothing there; a descriptor kept open by the
        # writer must not go on writing the events that follow (the 12,345,678 bytes block),
        # and the trace reads as truncated.
        with tempfile.TemporaryDirectory() as d:
            code = ("import os, time\n"
                    "keep = [bytearray(1000) for _ in range(2000)]\n"
                    "time.sleep(0.25)\n"
                    "os.rename('t.pmt', 'moved.pmt')\n"
                    "b = bytearray(12_345_678)\n"
                    "time.sleep(0.3)\nprint('done')\n")
            p = run([PY, "-c", code], os.path.join(d, "t.pmt"), cwd=d)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "done\n", ""))
            self.assertEqual(sorted(os.listdir(d)), ["moved.pmt"])
            dump = subprocess.run([DUMP, os.path.join(d, "moved.pmt"), "--events"],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(dump.returncode, 0, dump.stderr)
            self.assertIn("truncated 1", dump.stdout)
            sizes = [int(line.split("size=")[1].split()[0]) for line in dump.stdout.splitlines()
                     if " alloc " in line and "size=" in line]
            self.assertGreaterEqual(sizes.count(1001), 2000)  # written before the move
            self.assertEqual([n for n in sizes if n >= 12_345_678], [])

    def test_a_trace_replaced_by_a_fifo_does_not_block(self):
        # Opening a FIFO for writing waits for a reader unless O_NONBLOCK: there is none here.
        self.replace_trace_while_running(
            "os.unlink('t.pmt'); os.mkfifo('t.pmt')",
            lambda d: self.assertTrue(os.path.exists(os.path.join(d, "t.pmt"))))


if __name__ == "__main__":
    unittest.main()

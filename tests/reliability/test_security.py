# Security checks of the interposer and the analyzer (issue 7): trace files are created 0600
# with O_EXCL|O_NOFOLLOW (a symlink planted at the path is refused, its target untouched);
# PYMEMTRACE_* variables are ignored in a setuid process (secure_getenv); the analyzer reads
# source text only from regular files named in a trace (a FIFO or /dev/zero named as a
# Python file must not hang it or make it grow without bound).
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")


def traced(argv, out, **kw):
    env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=out, PYMEMTRACE_QUIET="1")
    return subprocess.run(argv, env=env, capture_output=True, timeout=120, **kw)


class TraceFileTest(unittest.TestCase):
    def test_trace_is_private_to_its_owner(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.pmt")
            old = os.umask(0)
            try:
                self.assertEqual(traced(["/bin/true"], path).returncode, 0)
            finally:
                os.umask(old)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_a_symlink_at_the_path_is_not_followed(self):
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "victim")
            with open(target, "w") as f:
                f.write("keep me\n")
            link = os.path.join(d, "t.pmt")
            os.symlink(target, link)
            p = traced(["/bin/true"], link)
            self.assertEqual(p.returncode, 0)
            self.assertTrue(os.path.islink(link))
            with open(target) as f:
                self.assertEqual(f.read(), "keep me\n")
            # The trace went to a fresh name beside it (never through the link).
            others = [n for n in os.listdir(d) if n not in ("victim", "t.pmt")]
            for n in others:
                self.assertFalse(os.path.islink(os.path.join(d, n)))

    def test_a_dangling_symlink_is_not_followed_either(self):
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "created-through-link")
            link = os.path.join(d, "t.pmt")
            os.symlink(target, link)
            self.assertEqual(traced(["/bin/true"], link).returncode, 0)
            self.assertFalse(os.path.exists(target))


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv") and shutil.which("cc"),
                     "needs root, setpriv and a C compiler to make a setuid program")
class SetuidTest(unittest.TestCase):
    def test_setuid_process_ignores_the_output_variable(self):
        # The library must be loaded for the check to mean anything, and the dynamic loader
        # ignores LD_PRELOAD paths in a setuid process: the program links it (absolute rpath).
        d = tempfile.mkdtemp()
        try:
            os.chmod(d, 0o777)
            lib = os.path.join(d, "libpymemtrace.so")
            shutil.copy(LIB, lib)
            src = os.path.join(d, "probe.c")
            with open(src, "w") as f:
                f.write('#include <stdlib.h>\nint main(void){free(malloc(100));return 0;}\n')
            exe = os.path.join(d, "probe")
            subprocess.run(["cc", src, "-o", exe, "-L" + d, "-lpymemtrace",
                            "-Wl,--no-as-needed,-rpath," + d], check=True)
            os.chmod(exe, 0o4755)
            run_dir = os.path.join(d, "cwd")
            os.mkdir(run_dir)
            os.chmod(run_dir, 0o777)
            chosen = os.path.join(d, "chosen.pmt")
            env = dict(os.environ, PYMEMTRACE_OUTPUT=chosen, PYMEMTRACE_QUIET="1")
            env.pop("LD_PRELOAD", None)
            # Control: not setuid-executed (root runs it), the variable is honoured.
            p = subprocess.run([exe], env=env, cwd=run_dir, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.exists(chosen))
            os.unlink(chosen)
            # setuid root, run by nobody: the variable is ignored (default name in the cwd).
            p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                exe], env=env, cwd=run_dir, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(chosen))
            made = [n for n in os.listdir(run_dir) if n.startswith("pymemtrace-")]
            self.assertEqual(len(made), 1, os.listdir(run_dir))
        finally:
            shutil.rmtree(d)


class AnalyzerInputTest(unittest.TestCase):
    def test_special_files_named_as_sources_are_not_read(self):
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "fifo.py")
            os.mkfifo(fifo)
            code = ("import sys\n"
                    "for name in ('/dev/zero', sys.argv[1]):\n"
                    "    exec(compile('x = bytearray(30000000)\\ny = bytearray(20000000)', "
                    "name, 'exec'))\n")
            trace = os.path.join(d, "t.pmt")
            self.assertEqual(traced(["/usr/bin/python3", "-c", code, fifo], trace).returncode, 0)
            for cmd in (["report"], ["html", "-o", os.path.join(d, "r.html")]):
                p = subprocess.run([PMT] + cmd + [trace], capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
            p = subprocess.run([PMT, "report", trace], capture_output=True, text=True, timeout=60)
            self.assertIn("/dev/zero", p.stdout)

    def test_bytes_that_are_not_utf8_never_break_json(self):
        # argv is bytes, not text: a file name in Latin-1 reaches every JSON output.
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "t.pmt")
            self.assertEqual(traced([b"/bin/true", b"caf\xe9"], trace).returncode, 0)
            p = subprocess.run([PMT, "report", "--json", trace], capture_output=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = subprocess.run([PMT, "compare", "--allocators", "glibc", "--format", "json",
                                "--", "/bin/true", b"caf\xe9"], capture_output=True, cwd=d,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()

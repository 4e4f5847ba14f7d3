# The shape of libpymemtrace.so (CMakeLists.txt, preload/exports.map): it exports only the C
# hooks the sources mark PMT_EXPORT (no C++ symbol, no template instantiation of the standard
# library, nothing of zstd or lz4, which a program's own copies would otherwise bind to), and
# when built with PMT_PRELOAD_STATIC_DEPS it needs no shared library but libc (each one more
# costs every traced process dynamic-linker work at start and at every later symbol lookup).
# A C++ program that throws and catches with its own libstdc++ runs unchanged under it.
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "../.."))
BUILD = os.environ.get("PMT_BUILD_DIR", os.path.join(SRC, "build"))
LIB = os.path.join(BUILD, "lib", "libpymemtrace.so")
PMT = os.path.join(BUILD, "bin", "pymemtrace")


def exported_hooks_in_sources():
    names = set()
    for path in glob.glob(os.path.join(SRC, "preload", "*.cpp")):
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r"PMT_EXPORT[^(;{]*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
            names.add(m.group(1))
    return names


def static_deps_build():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            m = re.search(r"^PMT_PRELOAD_STATIC_DEPS:BOOL=(\S+)", f.read(), re.M)
    except OSError:
        return False
    return bool(m) and m.group(1).upper() in ("ON", "1", "TRUE", "YES")


@unittest.skipUnless(shutil.which("readelf"), "needs readelf")
class LibraryShapeTest(unittest.TestCase):
    def test_exports_only_the_hooks(self):
        out = subprocess.run(["readelf", "--dyn-syms", "-W", LIB], capture_output=True,
                             text=True, check=True).stdout
        exported = set()
        for line in out.splitlines():
            f = line.split()
            # Num: Value Size Type Bind Vis Ndx Name
            if len(f) >= 8 and f[0].endswith(":") and f[6] != "UND" and f[4] in ("GLOBAL", "WEAK"):
                exported.add(f[7].split("@")[0])
        hooks = exported_hooks_in_sources()
        self.assertIn("malloc", hooks)  # the pattern still finds the hooks
        self.assertEqual(exported - hooks, set(), "exported beyond the PMT_EXPORT hooks")
        self.assertIn("malloc", exported)
        self.assertIn("free", exported)

    @unittest.skipUnless(static_deps_build(), "built without PMT_PRELOAD_STATIC_DEPS")
    def test_needs_only_libc(self):
        out = subprocess.run(["readelf", "-d", "-W", LIB], capture_output=True, text=True,
                             check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
        self.assertTrue(needed)
        for lib in needed:
            self.assertTrue(re.match(r"(libc|libm|libdl|libpthread|ld-linux[-\w]*)\.so", lib), lib)


@unittest.skipUnless(shutil.which("c++"), "needs a C++ compiler")
class CxxProgramTest(unittest.TestCase):
    PROGRAM = r"""
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>
static int depth(int n) {
    if (n == 0) throw std::runtime_error("bottom " + std::to_string(n));
    std::vector<std::string> v(4, std::string(40, 'x'));
    return depth(n - 1) + static_cast<int>(v.size());
}
int main() {
    int caught = 0;
    for (int i = 0; i < 2000; ++i) {
        try { depth(i % 50); } catch (const std::exception& e) { caught += e.what()[0] == 'b'; }
    }
    std::printf("caught %d\n", caught);
    return caught == 2000 ? 3 : 1;
}
"""

    def test_exceptions_and_strings_of_the_program(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "p.cpp")
            exe = os.path.join(d, "p")
            with open(src, "w") as f:
                f.write(self.PROGRAM)
            subprocess.run(["c++", "-O1", "-o", exe, src], check=True)
            trace = os.path.join(d, "t.pmt")
            env = dict(os.environ, LD_PRELOAD=LIB, PYMEMTRACE_OUTPUT=trace,
                       PYMEMTRACE_QUIET="1")
            p = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (3, "caught 2000\n", ""))
            r = subprocess.run([PMT, "report", trace], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("truncated", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()

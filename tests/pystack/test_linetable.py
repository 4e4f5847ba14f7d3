"""The walker's co_linetable decoder (preload/pystack_tables.hpp) against PyCode_Addr2Line.

Ground truth is the interpreter's own PyCode_Addr2Line, called through ctypes for every
instruction offset of every code object (recursively through co_consts) compiled from the
standard library's sources. The decoder is asked in increasing order (the walker's common case:
its cursor continues), decreasing order and a random order (the cursor restarts).
"""
import ctypes
import os
import random
import sys
import sysconfig
import unittest

PROBE = ctypes.CDLL(os.environ["PMT_PYSTACK_PROBE"])
IntArray = ctypes.POINTER(ctypes.c_int)
PROBE.pmt_probe_lines.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, IntArray,
                                  ctypes.c_int, IntArray]
PROBE.pmt_probe_lines.restype = None
ADDR2LINE = ctypes.pythonapi.PyCode_Addr2Line
ADDR2LINE.argtypes = [ctypes.py_object, ctypes.c_int]
ADDR2LINE.restype = ctypes.c_int

# A spread of the standard library: the top-level modules plus a few packages.
PACKAGES = ("json", "email", "asyncio", "importlib", "collections", "concurrent", "xml",
            "unittest", "http", "logging", "encodings", "re", "sqlite3", "urllib")


def stdlib_sources():
    root = sysconfig.get_paths()["stdlib"]
    paths = [os.path.join(root, name) for name in sorted(os.listdir(root)) if name.endswith(".py")]
    for package in PACKAGES:
        for directory, _, files in sorted(os.walk(os.path.join(root, package))):
            paths += [os.path.join(directory, f) for f in sorted(files) if f.endswith(".py")]
    return paths


def code_objects(code):
    todo = [code]
    while todo:
        c = todo.pop()
        yield c
        todo += [k for k in c.co_consts if isinstance(k, type(code))]


def truth(code, n):
    return [ADDR2LINE(code, 2 * i) for i in range(n)]


def decoded(code, offsets):
    n = len(offsets)
    table = code.co_linetable
    out = (ctypes.c_int * max(n, 1))()
    PROBE.pmt_probe_lines(table, len(table), code.co_firstlineno,
                          (ctypes.c_int * max(n, 1))(*offsets), n, out)
    return list(out[:n])


def entry_kinds(table):
    """Location kinds (bits 3-6 of each entry's first byte) used by a line table."""
    return {b >> 3 & 15 for b in table if b & 128}


@unittest.skipUnless(sys.version_info[:2] == (3, 11), "the decoder knows 3.11's format only")
class LineTableTest(unittest.TestCase):
    def test_every_offset_of_the_stdlib(self):
        rng = random.Random(11)
        kinds = set()
        codes = offsets = no_line = 0
        for path in stdlib_sources():
            with open(path, "rb") as f:
                source = f.read()
            try:
                module = compile(source, path, "exec", dont_inherit=True)
            except SyntaxError:  # e.g. lib2to3 test data; nothing to compare
                continue
            for code in code_objects(module):
                n = len(code.co_code) // 2
                expected = truth(code, n)
                ascending = list(range(n))
                got = decoded(code, ascending)
                if got != expected:
                    bad = next(i for i in range(n) if got[i] != expected[i])
                    self.fail(f"{path} {code.co_qualname} offset {bad}: decoder {got[bad]}, "
                              f"PyCode_Addr2Line {expected[bad]}")
                descending = ascending[::-1]
                self.assertEqual(decoded(code, descending), expected[::-1], code)
                shuffled = ascending[:]
                rng.shuffle(shuffled)
                self.assertEqual(decoded(code, shuffled), [expected[i] for i in shuffled], code)
                kinds |= entry_kinds(code.co_linetable)
                codes += 1
                offsets += n
                no_line += expected.count(-1)
        # The set covers every entry form (short 0-9, one-line 10-12, no-column 13, long 14,
        # none 15), "no line" offsets, and is large.
        self.assertEqual(kinds, set(range(16)))
        self.assertGreater(no_line, 0)
        self.assertGreater(codes, 10000)
        print(f"{codes} code objects, {offsets} offsets, {no_line} without a line",
              file=sys.stderr)

    def test_edge_tables(self):
        # Lines far from co_firstlineno both ways, and lines that go back.
        src = "def f(x):\n" + "    x += 1\n" * 3 + "\n" * 5000 + "    return (x +\n" \
              "        1)\n"
        for first in (1, 70000):
            module = compile("\n" * (first - 1) + src + "def g():\n    pass\n", "edge", "exec")
            for code in code_objects(module):
                n = len(code.co_code) // 2
                self.assertEqual(decoded(code, list(range(n))), truth(code, n))
        # An empty table: every offset has no line.
        code = compile("pass", "empty", "exec").replace(co_linetable=b"")
        n = len(code.co_code) // 2
        self.assertEqual(decoded(code, list(range(n))), [-1] * n)
        self.assertEqual(truth(code, n), [-1] * n)


if __name__ == "__main__":
    unittest.main()

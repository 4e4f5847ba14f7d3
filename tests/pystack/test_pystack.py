"""The Python stack walker (preload/python_stack.cpp) against this script's own source lines.

The probe library (PMT_PYSTACK_PROBE) is loaded twice: through ctypes.CDLL, which releases the
GIL around each call (as numpy does around its allocations), and through ctypes.PyDLL, which
keeps it. Expected lines come from the "# L:name" markers in this file.
"""
import ctypes
import gc
import os
import subprocess
import sys
import threading
import unittest

PROBE_PATH = os.environ["PMT_PYSTACK_PROBE"]
RELEASED = ctypes.CDLL(PROBE_PATH)  # the GIL is released during calls
HELD = ctypes.PyDLL(PROBE_PATH)  # the GIL is held during calls
for lib in (RELEASED, HELD):
    lib.pmt_probe_stack.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.pmt_probe_stack.restype = ctypes.c_int
    lib.pmt_probe_last_id.restype = ctypes.c_uint64
    lib.pmt_probe_definitions.restype = ctypes.c_uint64
    lib.pmt_probe_native_thread.restype = ctypes.c_uint64
    lib.pmt_probe_version.restype = ctypes.c_char_p
    lib.pmt_probe_bench.restype = ctypes.c_double
    lib.pmt_probe_bench.argtypes = [ctypes.c_int, ctypes.c_int]

# The interposer initialises the walker before Python starts; the nearest a loaded library gets
# is initialising with the GIL held, which lets it install its code-creation audit hook.
# PMT_PYSTACK_LATE_INIT=1 initialises without the GIL instead: no hook, the slower checks.
LATE_INIT = os.environ.get("PMT_PYSTACK_LATE_INIT") == "1"
(RELEASED if LATE_INIT else HELD).pmt_probe_init()

with open(__file__, encoding="utf-8") as f:
    SOURCE = f.read().splitlines()
THIS_FILE = sys._getframe().f_code.co_filename


def line_of(tag):
    """Line number of the '# L:tag' marker (ground truth by construction)."""
    hits = [i + 1 for i, text in enumerate(SOURCE) if text.rstrip().endswith("# L:" + tag)]
    assert len(hits) == 1, tag
    return hits[0]


def probe(lib=RELEASED):
    """This thread's frames as [(file, function, line)], innermost (this function) first."""
    buf = ctypes.create_string_buffer(1 << 20)
    n = lib.pmt_probe_stack(buf, len(buf))  # L:probe
    text = buf.value.decode("utf-8")
    if n < 0:
        raise AssertionError("probe failed: " + text)
    frames = [tuple(row.split("\t")) for row in text.splitlines()]
    assert len(frames) == n
    return [(f, fn, int(line)) for f, fn, line in frames]


def here(function, tag):
    return (THIS_FILE, function, line_of(tag))


def inner(lib):
    return probe(lib)  # L:inner


def middle(lib):
    return inner(lib)  # L:middle


def outer(lib):
    return middle(lib)  # L:outer


def recurse(n):
    if n == 0:
        return probe()
    return recurse(n - 1)  # L:recurse


def gen():
    yield probe()  # L:gen


def consume():
    return next(gen())  # L:consume


async def coro():
    return probe()  # L:coro


def drive():
    c = coro()
    try:
        c.send(None)  # L:drive
    except StopIteration as stop:
        return stop.value


class Klass:
    def method(self):
        return probe()  # L:method


def größe():
    return probe()  # L:latin1


def 函数():
    return probe()  # L:cjk


class StackWalker(unittest.TestCase):
    def test_python_is_detected(self):
        self.assertEqual(RELEASED.pmt_probe_init(), 1)
        self.assertEqual(RELEASED.pmt_probe_watched(), 0 if LATE_INIT else 1)
        v = sys.version_info
        self.assertEqual(RELEASED.pmt_probe_version().decode(), f"{v[0]}.{v[1]}.{v[2]}")

    def test_nested_calls_innermost_first_gil_released(self):
        frames = outer(RELEASED)
        expected = [here("probe", "probe"), here("inner", "inner"), here("middle", "middle"),
                    here("outer", "outer")]
        self.assertEqual(frames[:4], expected)
        self.assertEqual(frames[4][1], "StackWalker.test_nested_calls_innermost_first_gil_released")
        self.assertIn(frames[-1][1], ("<module>", "_run_module_as_main"))  # -m runs via runpy

    def test_gil_held_and_released_give_the_same_stack(self):
        ids, results = [], []
        for lib in (RELEASED, HELD, RELEASED, HELD):
            results.append(outer(lib))  # L:both
            ids.append(RELEASED.pmt_probe_last_id())
        self.assertTrue(all(r == results[0] for r in results))
        self.assertEqual(results[0][4], here("StackWalker.test_gil_held_and_released_give_the_same_stack", "both"))
        self.assertEqual(len(set(ids)), 1, "one stack, one id")

    def test_an_unchanged_stack_defines_nothing_new(self):
        for _ in range(3):
            outer(RELEASED)  # L:repeat
            if _ == 0:
                before = RELEASED.pmt_probe_definitions()
        self.assertEqual(RELEASED.pmt_probe_definitions(), before)

    def test_each_line_of_a_function_has_its_own_location(self):
        a = probe()  # L:first
        b = probe()  # L:second
        fn = "StackWalker.test_each_line_of_a_function_has_its_own_location"
        self.assertEqual(a[1], here(fn, "first"))
        self.assertEqual(b[1], here(fn, "second"))
        self.assertEqual(a[2:], b[2:])

    def test_qualified_names_of_methods(self):
        self.assertEqual(Klass().method()[1], here("Klass.method", "method"))

    def test_generators_and_coroutines(self):
        frames = consume()
        self.assertEqual(frames[1:3], [here("gen", "gen"), here("consume", "consume")])
        frames = drive()
        self.assertEqual(frames[1:3], [here("coro", "coro"), here("drive", "drive")])

    def test_deep_stacks_keep_the_innermost_128_frames(self):
        frames = recurse(300)
        self.assertEqual(len(frames), 128)
        self.assertEqual(frames[0], here("probe", "probe"))
        self.assertEqual(frames[1][1:], ("recurse", line_of("recurse") - 1))
        self.assertTrue(all(f == here("recurse", "recurse") for f in frames[2:]))

    def test_python_threads_see_their_own_frames(self):
        results = {}

        def worker(k, lib):
            got = []
            for _ in range(200):
                got.append(outer(lib))  # L:worker
            results[k] = got

        threads = [threading.Thread(target=worker, args=(k, (RELEASED, HELD)[k % 2]))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fn = "StackWalker.test_python_threads_see_their_own_frames.<locals>.worker"
        for k in range(4):
            for frames in results[k]:
                self.assertEqual(frames[3:5], [here("outer", "outer"), here(fn, "worker")])
                self.assertEqual([f[1] for f in frames[5:]],
                                 ["Thread.run", "Thread._bootstrap_inner", "Thread._bootstrap"])
                self.assertTrue(frames[5][0].endswith("threading.py"))

    def test_threads_created_by_c_code_have_no_stack(self):
        self.assertEqual(RELEASED.pmt_probe_native_thread(), 0)

    def test_c_threads_calling_back_into_python(self):
        got = []

        @ctypes.CFUNCTYPE(None)
        def callback():
            got.append(probe())  # L:callback

        for _ in range(3):  # a new thread state each time
            RELEASED.pmt_probe_in_native_thread(callback)
        fn = "StackWalker.test_c_threads_calling_back_into_python.<locals>.callback"
        self.assertEqual(got, [[here("probe", "probe"), here(fn, "callback")]] * 3)

    def test_non_ascii_names_and_files(self):
        self.assertEqual(größe()[1], here("größe", "latin1"))
        self.assertEqual(函数()[1], here("函数", "cjk"))
        code = compile("def f():\n    return probe()\nr = f()\n", "emoji_😀_файл.py", "exec")
        scope = {"probe": probe}
        exec(code, scope)
        self.assertEqual(scope["r"][1:3], [("emoji_😀_файл.py", "f", 2), ("emoji_😀_файл.py", "<module>", 3)])

    def test_a_reused_code_object_address_gets_its_own_names(self):
        # Each round's code objects die before the next round compiles new ones, so the
        # allocator hands their addresses out again; names must follow the new objects.
        for i in range(300):
            src = f"def f{i}():\n" + "    pass\n" * (i % 3) + f"    return probe()\nr = f{i}()\n"
            scope = {"probe": probe}
            exec(compile(src, f"generated_{i}.py", "exec"), scope)
            frames = scope["r"]
            self.assertEqual(frames[1], (f"generated_{i}.py", f"f{i}", 2 + i % 3))
            self.assertEqual(frames[2], (f"generated_{i}.py", "<module>", 3 + i % 3))
            del scope, frames
            gc.collect()

    def test_a_replaced_caller_between_frames_that_stay(self):
        # Each round compiles (a new code generation) a caller in the middle of the stack whose
        # code object may take the dead one's address, while the frames inside it (inner,
        # probe) and outside it (this test) keep theirs: the walk after a new generation
        # reuses the outer frames' ids but must not reuse the inner frames' stack ids.
        for i in range(300):
            src = f"def mid{i}(lib):\n" + "    pass\n" * (i % 3) + "    return inner(lib)\n"
            scope = {"inner": inner}
            exec(compile(src, f"mid_{i}.py", "exec"), scope)
            for lib in (RELEASED, HELD):
                frames = scope[f"mid{i}"](lib)  # L:mid
                fn = "StackWalker.test_a_replaced_caller_between_frames_that_stay"
                self.assertEqual(frames[1:4], [here("inner", "inner"),
                                               (f"mid_{i}.py", f"mid{i}", 2 + i % 3),
                                               here(fn, "mid")])
            del scope, frames
            gc.collect()

    def test_a_forked_child_defines_everything_again(self):
        outer(RELEASED)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                RELEASED.pmt_probe_after_fork()
                frames = outer(RELEASED)  # L:child
                fn = "StackWalker.test_a_forked_child_defines_everything_again"
                ok = frames[4] == here(fn, "child") and RELEASED.pmt_probe_last_id() == len(frames)
                code = 0 if ok else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)

    def test_daemon_threads_walking_while_the_interpreter_finalizes(self):
        # Daemon threads take stacks without the GIL, nonstop, while the main thread exits:
        # finalization frees their thread states under them. No crash, exit status kept.
        script = (
            "import ctypes, threading, time\n"
            f"lib = ctypes.CDLL({PROBE_PATH!r})\n"
            "def spin():\n"
            "    while True:\n"
            "        lib.pmt_probe_spin(1000)\n"
            "for _ in range(3):\n"
            "    threading.Thread(target=spin, daemon=True).start()\n"
            "time.sleep(0.05)\n"
            "raise SystemExit(7)\n")
        for _ in range(10):
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
            self.assertEqual((run.returncode, run.stderr), (7, ""))


if __name__ == "__main__":
    unittest.main()

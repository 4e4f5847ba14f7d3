# Shared helpers of the end-to-end tests: locate the build (PMT_BUILD_DIR, PMT_SOURCE_DIR set by
# ctest), run a program under libpymemtrace.so with its trace going to a fresh temp directory,
# run `pymemtrace report --json` on a trace, and read ground truth (marked lines) from scripts.
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("PMT_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD_DIR = os.environ.get("PMT_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
LIB = os.path.join(BUILD_DIR, "lib", "libpymemtrace.so")
CLI = os.path.join(BUILD_DIR, "bin", "pymemtrace")
SCRIPTS = os.path.join(HERE, "scripts")

# numpy is installed for Debian's interpreter only (FACTS.md).
SYSTEM_PYTHON = "/usr/bin/python3"

MB = 1 << 20


def require_build(test):
    """Fails (not skips) the test when the library or the command is missing: a missing
    artefact is a broken build, not an unsupported platform."""
    for path in (LIB, CLI):
        if not os.path.exists(path):
            test.fail(f"{path} does not exist: build the project first (make build)")


def other_python():
    """The real executable of the `python3` first on PATH (pyenv's shim resolved), or None when
    it is absent or is the system interpreter itself."""
    found = shutil.which("python3")
    if found is None:
        return None
    try:
        real = subprocess.run(
            [found, "-c", "import sys; print(sys.executable)"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    if not real or os.path.realpath(real) == os.path.realpath(SYSTEM_PYTHON):
        return None
    return real


def script(name):
    return os.path.join(SCRIPTS, name)


def marked_lines(path):
    """Ground truth by construction: {marker: line number} for every `# LINE:<marker>` comment
    in the script, so the tests never hard-code line numbers."""
    lines = {}
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if "# LINE:" in text:
                lines[text.split("# LINE:", 1)[1].split()[0]] = number
    return lines


class Traced:
    """The outcome of one traced run: exit code, output, and the traces it left."""

    def __init__(self, proc, out_dir):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.out_dir = out_dir
        self.traces = sorted(glob.glob(os.path.join(out_dir, "*.pmt")))

    def only_trace(self, test):
        test.assertEqual(
            len(self.traces), 1,
            f"expected one trace in {self.out_dir}, found {self.traces}; stderr:\n{self.stderr}")
        return self.traces[0]


def preload_env(out_dir, quiet=True, extra=None):
    env = dict(os.environ)
    env["LD_PRELOAD"] = LIB
    env["PYMEMTRACE_OUTPUT"] = out_dir
    if quiet:
        env["PYMEMTRACE_QUIET"] = "1"
    else:
        env.pop("PYMEMTRACE_QUIET", None)
    if extra:
        env.update(extra)
    return env


def run_traced(test, argv, quiet=True, env_extra=None, timeout=300, text=True):
    """Runs argv under the interposer, traces going to a temp dir removed after the test."""
    require_build(test)
    out_dir = tempfile.mkdtemp(prefix="pmt-e2e-")
    test.addCleanup(shutil.rmtree, out_dir, True)
    proc = subprocess.run(
        argv, env=preload_env(out_dir, quiet, env_extra), capture_output=True, text=text,
        timeout=timeout)
    return Traced(proc, out_dir)


def run_python(test, name, *args, python=SYSTEM_PYTHON, **kw):
    """Runs tests/e2e/scripts/<name> with the given interpreter under the interposer."""
    return run_traced(test, [python, script(name), *map(str, args)], **kw)


def cli(*args, timeout=300):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


def report_json(test, trace):
    """`pymemtrace report --json TRACE`, parsed; fails the test with the command's stderr."""
    proc = cli("report", "--json", trace)
    test.assertEqual(proc.returncode, 0,
                     f"pymemtrace report --json {trace} exited {proc.returncode}: {proc.stderr}")
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        test.fail(f"report --json is not JSON ({e}): {proc.stdout[:500]!r}")
    test.assertEqual(report.get("schema"), "pymemtrace-report/1")
    return report


def at_line(report, path, line):
    """The at_peak entry for file:line (matched by file name, since the interpreter records the
    path as given on its command line), or None."""
    base = os.path.basename(path)
    for entry in report.get("at_peak", []):
        if entry.get("line") == line and entry.get("file") and \
                os.path.basename(entry["file"]) == base:
            return entry
    return None


def describe_at_peak(report, limit=8):
    rows = [f"  {e.get('bytes')} B in {e.get('blocks')} blocks at {e.get('file')}:{e.get('line')} "
            f"({e.get('function')})" for e in report.get("at_peak", [])[:limit]]
    return "at_peak:\n" + "\n".join(rows)


class E2ETest(unittest.TestCase):
    """Base class: fails early with a clear message when the build is missing."""

    def setUp(self):
        require_build(self)

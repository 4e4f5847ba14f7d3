# The command's contract with users: bad input (a corrupt trace, a file that is not a trace, a
# wrong flag) is exit 2 with a short error; `run` passes the exit code through and leaves the
# trace where -o says.
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

import pmt_e2e as e2e


class CommandLine(e2e.E2ETest):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="pmt-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def small_trace(self):
        """A real trace (of sh), copied into this test's dir."""
        run = e2e.run_traced(self, ["sh", "-c", "echo hi"])
        self.assertEqual(run.returncode, 0)
        path = os.path.join(self.dir, "small.pmt")
        shutil.copy(run.only_trace(self), path)
        return path

    def assert_bad_input(self, path):
        proc = e2e.cli("report", path)
        self.assertEqual(proc.returncode, 2, f"stdout {proc.stdout!r} stderr {proc.stderr!r}")
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"one-line error expected, got {proc.stderr!r}")
        self.assertIn(os.path.basename(path), lines[0], "the error names the file")
        proc = e2e.cli("report", "--json", path)
        self.assertEqual(proc.returncode, 2, proc.stderr)

    def flip(self, path, offset):
        with open(path, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x5A]))

    def test_a_flipped_byte_in_the_header_is_an_error(self):
        path = self.small_trace()
        self.flip(path, 17)  # inside the header payload, covered by the header's CRC
        self.assert_bad_input(path)

    def test_a_flipped_byte_in_a_chunk_is_an_error(self):
        path = self.small_trace()
        with open(path, "rb") as f:
            data = f.read()
        (header_len,) = struct.unpack_from("<I", data, 12)
        chunk = 16 + header_len + 4  # FORMAT.md: fixed header, payload, CRC
        self.assertEqual(data[chunk:chunk + 4], b"PMCK")
        (stored,) = struct.unpack_from("<I", data, chunk + 8)
        self.assertLessEqual(chunk + 20 + stored, len(data), "the first chunk is complete")
        self.flip(path, chunk + 20 + stored // 2)
        self.assert_bad_input(path)

    def test_a_file_that_is_not_a_trace_is_an_error(self):
        path = os.path.join(self.dir, "passwd.pmt")
        shutil.copy("/etc/passwd", path)
        self.assert_bad_input(path)

    def test_a_missing_file_is_an_error(self):
        self.assert_bad_input(os.path.join(self.dir, "nowhere.pmt"))

    def test_run_passes_the_exit_code_through_and_writes_the_trace(self):
        out = os.path.join(self.dir, "out.pmt")
        proc = subprocess.run(
            [e2e.CLI, "run", "-o", out, "--", "python3", "-c", "import sys; sys.exit(7)"],
            capture_output=True, text=True, timeout=120, cwd=self.dir)
        self.assertEqual(proc.returncode, 7, proc.stderr)
        self.assertTrue(os.path.exists(out), f"no trace at {out}; stderr {proc.stderr!r}")
        report = e2e.report_json(self, out)
        self.assertIn("-c", report["trace"]["argv"])

    def test_run_finds_the_library_next_to_itself(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYMEMTRACE")}
        env.pop("LD_PRELOAD", None)
        proc = subprocess.run(
            [e2e.CLI, "run", "--", e2e.SYSTEM_PYTHON, "-c", "print('ok')"],
            capture_output=True, text=True, timeout=120, cwd=self.dir, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("ok", proc.stdout)
        traces = [f for f in os.listdir(self.dir) if f.endswith(".pmt")]
        self.assertEqual(len(traces), 1, f"{traces}; stderr {proc.stderr!r}")

    def test_a_wrong_flag_is_exit_2(self):
        for argv in (["--no-such-flag"], ["report", "--no-such-flag", "x.pmt"],
                     ["run", "--no-such-flag", "--", "true"]):
            proc = e2e.cli(*argv)
            self.assertEqual(proc.returncode, 2, f"{argv}: {proc.stderr!r}")
            self.assertNotEqual(proc.stderr.strip(), "", argv)


if __name__ == "__main__":
    unittest.main()

# `pymemtrace run` behaves like a shell running the command under the interposer: exit codes and
# signals as a shell reports them (127 not found, 128+N killed), stdin/stdout passed through,
# signals sent to it forwarded, the user's LD_PRELOAD kept after ours, the library found in
# ../lib of both the build tree and an installed-shaped copy, a clear error when it is missing.
import os
import pty
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import pmt_e2e as e2e


class Run(e2e.E2ETest):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="pmt-run-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_cli(self, *args, cli=None, env=None, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        return subprocess.run([cli or e2e.CLI, "run", *args], cwd=self.dir, env=env, **kw)

    def test_a_command_that_does_not_exist_is_exit_127_with_one_line(self):
        proc = self.run_cli("--", "pmt-no-such-command-xyz", "arg")
        self.assertEqual(proc.returncode, 127, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn("pmt-no-such-command-xyz", lines[0])
        self.assertIn("not found", lines[0])

    def test_a_file_that_is_not_executable_is_exit_126(self):
        path = os.path.join(self.dir, "not-executable.sh")
        with open(path, "w") as f:
            f.write("echo hi\n")
        os.chmod(path, 0o644)
        proc = self.run_cli("--", path)
        self.assertEqual(proc.returncode, 126, proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_stdin_and_stdout_pass_through_and_quiet_says_nothing(self):
        proc = self.run_cli("-q", "--", "cat", input="line one\nline two\n")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "line one\nline two\n")
        self.assertEqual(proc.stderr, "")

    def test_options_after_the_command_name_belong_to_the_command(self):
        out = os.path.join(self.dir, "t.pmt")
        proc = self.run_cli("-o", out, e2e.SYSTEM_PYTHON, "-c", "import sys; print(sys.argv[1:])",
                            "-o", "x", "-q")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "['-o', 'x', '-q']")
        self.assertTrue(os.path.exists(out))

    def test_an_output_ending_in_a_slash_is_a_directory_made_for_the_traces(self):
        out = os.path.join(self.dir, "traces", "deeper") + "/"
        proc = self.run_cli("-o", out, "--", "sh", "-c", "true")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        traces = os.listdir(out)
        self.assertEqual(len(traces), 1, traces)
        self.assertRegex(traces[0], r"^pymemtrace-\d+\.pmt$")
        self.assertIn(os.path.join(out, traces[0]), proc.stderr, "the exit line names the trace")

    def test_a_killed_child_gives_128_plus_the_signal_and_names_its_trace(self):
        out = os.path.join(self.dir, "killed.pmt")
        code = "import os, signal; x = bytearray(10**6); os.kill(os.getpid(), signal.SIGKILL)"
        proc = self.run_cli("-o", out, "--", e2e.SYSTEM_PYTHON, "-c", code)
        self.assertEqual(proc.returncode, 128 + signal.SIGKILL, proc.stderr)
        self.assertIn("SIGKILL", proc.stderr)
        self.assertIn(out, proc.stderr, "the trace of a killed process is named by run")
        self.assertTrue(os.path.exists(out))

    def test_sigterm_sent_to_run_reaches_the_child(self):
        ready = os.path.join(self.dir, "ready")
        code = (
            "import signal, sys, time, pathlib\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
            f"pathlib.Path({ready!r}).write_text('1')\n"
            "time.sleep(60)\n")
        proc = subprocess.Popen([e2e.CLI, "run", "-q", "--", e2e.SYSTEM_PYTHON, "-c", code],
                                cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(ready), "the child never started")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 42, f"the child's handler exit code; stderr {err!r}")

    def test_ctrl_c_on_a_terminal_reaches_the_child_exactly_once(self):
        # The terminal sends SIGINT to the whole foreground group: run must not send it again,
        # and must itself survive to pass the child's exit status through.
        ready = os.path.join(self.dir, "ready")
        code = (
            "import signal, sys, time, pathlib\n"
            "n = [0]\n"
            "signal.signal(signal.SIGINT, lambda *a: n.__setitem__(0, n[0] + 1))\n"
            f"pathlib.Path({ready!r}).write_text('1')\n"
            "t = time.time()\n"
            "while not n[0] and time.time() - t < 30: time.sleep(0.01)\n"
            "time.sleep(0.5)\n"
            "sys.exit(10 + n[0])\n")
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(self.dir)
            os.execv(e2e.CLI, [e2e.CLI, "run", "-q", "--", e2e.SYSTEM_PYTHON, "-c", code])
        deadline = time.monotonic() + 30
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.write(fd, b"\x03")  # ^C typed on the terminal
        while True:
            try:
                if not os.read(fd, 1024):
                    break
            except OSError:
                break
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 11, "one SIGINT, exit passed through")

    def test_a_signal_ignored_by_runs_parent_stays_ignored_in_the_child(self):
        # As under nohup: SIGHUP ignored before run starts must be ignored by the command too.
        child = 'kill -HUP $$; echo survived'
        proc = subprocess.run(
            ["sh", "-c", f'trap "" HUP; exec "$0" run -q -- sh -c \'{child}\'', e2e.CLI],
            capture_output=True, text=True, timeout=60, cwd=self.dir)
        self.assertEqual((proc.returncode, proc.stdout), (0, "survived\n"), proc.stderr)
        proc = self.run_cli("-q", "--", "sh", "-c", child)
        self.assertEqual(proc.returncode, 128 + signal.SIGHUP, "not ignored: the child dies")

    def test_the_users_ld_preload_is_kept_after_ours(self):
        theirs = "/lib/x86_64-linux-gnu/libm.so.6"
        env = dict(os.environ, LD_PRELOAD=theirs)
        out = os.path.join(self.dir, "env.pmt")
        proc = self.run_cli("-q", "-o", out, "--", "sh", "-c",
                            'echo "$LD_PRELOAD"; echo "$PYMEMTRACE_OUTPUT"', env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        preload, output = proc.stdout.strip().splitlines()
        parts = preload.split(":")
        self.assertEqual(os.path.realpath(parts[0]), os.path.realpath(e2e.LIB))
        self.assertEqual(parts[1:], [theirs])
        self.assertEqual(output, out)

    def test_an_installed_tree_finds_its_library_in_lib(self):
        prefix = os.path.join(self.dir, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        os.makedirs(os.path.join(prefix, "lib"))
        cli = os.path.join(prefix, "bin", "pymemtrace")
        shutil.copy2(e2e.CLI, cli)
        shutil.copy2(e2e.LIB, os.path.join(prefix, "lib", "libpymemtrace.so"))
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        proc = self.run_cli("-q", "--", "sh", "-c", 'echo "$LD_PRELOAD"', cli=cli, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), os.path.join(prefix, "lib", "libpymemtrace.so"))
        self.assertTrue([f for f in os.listdir(self.dir) if f.endswith(".pmt")],
                        "the installed copy wrote a trace")

    def test_a_missing_library_is_one_line_and_exit_2(self):
        lonely = os.path.join(self.dir, "lonely", "bin")
        os.makedirs(lonely)
        cli = os.path.join(lonely, "pymemtrace")
        shutil.copy2(e2e.CLI, cli)
        proc = self.run_cli("--", "true", cli=cli)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn("libpymemtrace.so", lines[0])

    def test_no_command_is_a_usage_error(self):
        proc = self.run_cli()
        self.assertEqual(proc.returncode, 2, proc.stderr)


if __name__ == "__main__":
    unittest.main()

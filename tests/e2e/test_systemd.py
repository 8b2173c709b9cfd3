"""End-to-end: roost under systemd, without systemd.

CI has no systemd as PID 1, so the test plays its part:
  - the journal: systemd sets JOURNAL_STREAM=DEV:INODE of the stream it gave
    as stderr; roost then starts each line with its syslog priority ("<3>")
    so `journalctl -p err` works, and keeps its timestamped lines otherwise
    (a JOURNAL_STREAM inherited by a process whose stderr went elsewhere).
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from roostlib import main, roost_bin, roost_only, roost_yaml

PRIO_RE = re.compile(r"^<([0-7])>(error|warning|notice|info|debug) ")
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warning|notice|info|debug) ")


def run_with_stderr_pipe(args, journal_stream, cwd, timeout=10):
    """Run roost with stderr on a pipe; JOURNAL_STREAM is computed from that
    pipe's dev:ino by journal_stream(st) (None: unset). Returns (rc, lines)."""
    r, w = os.pipe()
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    value = journal_stream(os.fstat(w))
    if value is not None:
        env["JOURNAL_STREAM"] = value
    try:
        proc = subprocess.Popen([roost_bin()] + args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=w, cwd=cwd, env=env)
    finally:
        os.close(w)
    out = []
    reader = threading.Thread(target=lambda: out.append(_read_all(r)), daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("roost %s did not exit within %d s" % (" ".join(args), timeout))
    reader.join(timeout=5)
    os.close(r)
    return rc, (out[0] if out else b"").decode("utf-8", "replace").splitlines()


def _read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


@roost_only("roost's journal output")
class JournalPrefixTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-e2e-journal-")
        self.addCleanup(self.tmp.cleanup)

    def failing_start(self, journal_stream):
        """A config whose second listener's port is taken by the first: an
        info line ('listening on'), then an error line, then exit 1."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            text = roost_yaml(port=0).replace(
                "allow_anonymous", "  - port: %d\n    bind: 127.0.0.1\nallow_anonymous" % port, 1)
            path = os.path.join(self.tmp.name, "roost.yaml")
            with open(path, "w") as f:
                f.write(text)
            return run_with_stderr_pipe(["-c", path], journal_stream, self.tmp.name)

    def test_priority_prefix_when_stderr_is_the_journal(self):
        rc, lines = self.failing_start(lambda st: "%d:%d" % (st.st_dev, st.st_ino))
        self.assertEqual(rc, 1, "\n".join(lines))
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, PRIO_RE, "\n".join(lines))
        prios = {PRIO_RE.match(l).group(2): int(PRIO_RE.match(l).group(1)) for l in lines}
        # syslog(3): LOG_ERR 3, LOG_NOTICE 5, LOG_INFO 6
        self.assertEqual(prios.get("error"), 3, "\n".join(lines))
        self.assertEqual(prios.get("notice"), 5, "\n".join(lines))
        self.assertEqual(prios.get("info"), 6, "\n".join(lines))
        self.assertTrue(any(re.match(r"^<3>error cannot listen", l) for l in lines), lines)

    def test_timestamps_when_journal_stream_names_another_file(self):
        rc, lines = self.failing_start(lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1))
        self.assertEqual(rc, 1, "\n".join(lines))
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, STAMP_RE, "\n".join(lines))

    def test_timestamps_without_journal_stream(self):
        rc, lines = self.failing_start(lambda st: None)
        self.assertEqual(rc, 1)
        for line in lines:
            self.assertRegex(line, STAMP_RE, "\n".join(lines))


if __name__ == "__main__":
    main()

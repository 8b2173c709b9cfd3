"""End-to-end: roost under systemd, without systemd.

CI has no systemd as PID 1, so the test plays its part:
  - the journal: systemd sets JOURNAL_STREAM=DEV:INODE of the stream it gave
    as stderr; roost then starts each line with its syslog priority ("<3>")
    so `journalctl -p err` works, and keeps its timestamped lines otherwise
    (a JOURNAL_STREAM inherited by a process whose stderr went elsewhere).
  - Type=notify: the test owns the NOTIFY_SOCKET (an AF_UNIX datagram
    socket) and checks READY=1 once the port accepts connections, STATUS=
    with the connection count (changing when a client connects, at most
    about once a second), WATCHDOG=1 every half WATCHDOG_USEC only when that
    is set, STOPPING=1 on SIGTERM. A build without libsystemd
    (ROOST_SYSTEMD=no from configure) must send nothing at all.
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

from unittest import mock

from roostlib import Broker, RawClient, free_port, main, roost_bin, roost_only, roost_yaml

HAVE_SYSTEMD = os.environ.get("ROOST_SYSTEMD", "yes") != "no"

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
def for_build(applies):
    """A test of one build variant (with or without libsystemd, chosen at
    configure time as Makefile.am selects sdnotify.c or sdnotify_none.c):
    the other build does not define it at all, so nothing is skipped."""
    return lambda fn: fn if applies else None


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


class NotifySocket:
    """systemd's side of sd_notify: a datagram socket, every message kept
    with its arrival time; on READY=1 it tries the broker's port at once."""

    def __init__(self, path, port):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.port = port
        self.msgs = []          # (monotonic time, "KEY=value")
        self.ready_connect = None
        self.cond = threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode().splitlines():
                if line == "READY=1" and self.ready_connect is None:
                    self.ready_connect = self._try_connect()
                with self.cond:
                    self.msgs.append((now, line))
                    self.cond.notify_all()

    def _try_connect(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return "connected"
        except OSError as e:
            return "refused: %s" % e

    def values(self, key, since=0.0):
        with self.cond:
            return [v[len(key) + 1:] for t, v in self.msgs if v.startswith(key + "=") and t >= since]

    def wait_for(self, key, pred=lambda v: True, timeout=5.0, since=0.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, v in self.msgs:
                    if t >= since and v.startswith(key + "=") and pred(v[len(key) + 1:]):
                        return v[len(key) + 1:]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s= (matching) within %.1f s; got %r"
                                         % (key, timeout, self.msgs))
                self.cond.wait(left)

    def close(self):
        self.done = True
        self.thread.join(timeout=2)
        self.sock.close()


def client_count(status):
    m = re.search(r"(\d+) client connections?", status)
    assert m, "STATUS=%r does not mention client connections" % status
    return int(m.group(1))


@roost_only("roost's systemd notifications")
class NotifyTest(unittest.TestCase):

    def start(self, watchdog_usec=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-e2e-notify-")
        self.addCleanup(self.tmp.cleanup)
        port = free_port()
        self.notify = NotifySocket(os.path.join(self.tmp.name, "notify"), port)
        self.addCleanup(self.notify.close)
        env = {"NOTIFY_SOCKET": os.path.join(self.tmp.name, "notify")}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        with mock.patch.dict(os.environ, env):
            os.environ.pop("WATCHDOG_PID", None)
            if not watchdog_usec:
                os.environ.pop("WATCHDOG_USEC", None)
            self.broker = Broker(args=["-p", str(port)])
            self.broker.start()
        self.addCleanup(self.broker.stop)
        return self.broker

    def connect(self, cid):
        c = RawClient(self.broker.port)
        c.connect(cid)
        self.addCleanup(c.close)
        return c

    @for_build(HAVE_SYSTEMD)
    def test_ready_once_the_port_accepts_connections(self):
        self.start()
        self.notify.wait_for("READY")
        self.assertEqual(self.notify.ready_connect, "connected",
                         "READY=1 came before the listener accepted connections")

    @for_build(HAVE_SYSTEMD)
    def test_status_counts_clients_and_changes_on_connect(self):
        self.start()
        self.notify.wait_for("READY")
        first = self.notify.wait_for("STATUS")
        self.assertEqual(client_count(first), 0, first)
        self.connect("sd-1")
        later = self.notify.wait_for("STATUS", lambda v: client_count(v) == 1, timeout=3)
        self.assertIn("client", later)

    @for_build(HAVE_SYSTEMD)
    def test_status_at_most_about_once_a_second(self):
        self.start()
        self.notify.wait_for("READY")
        self.notify.wait_for("STATUS")
        t0 = time.monotonic()
        clients = [self.connect("burst-%d" % i) for i in range(10)]
        for c in clients[:4]:
            c.close()
        burst = time.monotonic() - t0
        # The final count (6) arrives within about a second of the burst ...
        self.notify.wait_for("STATUS", lambda v: client_count(v) == 6, timeout=3, since=t0)
        time.sleep(0.3)
        n = len(self.notify.values("STATUS", since=t0))
        # ... and 14 changes in `burst` seconds gave one update per second
        # started, plus the one at the first change.
        self.assertLessEqual(n, int(burst) + 2, (burst, self.notify.msgs))
        # Nothing changes: no more updates.
        mark = time.monotonic()
        time.sleep(1.3)
        self.assertEqual(self.notify.values("STATUS", since=mark), [])

    @for_build(HAVE_SYSTEMD)
    def test_watchdog_pings_every_half_interval(self):
        self.start(watchdog_usec=200000)
        self.notify.wait_for("READY")
        mark = time.monotonic()
        time.sleep(1.0)
        pings = self.notify.values("WATCHDOG", since=mark)
        self.assertTrue(all(v == "1" for v in pings), pings)
        # One per 100 ms; a loaded CI machine may be late, never silent.
        self.assertGreaterEqual(len(pings), 4, self.notify.msgs)
        self.assertLessEqual(len(pings), 12, self.notify.msgs)

    @for_build(HAVE_SYSTEMD)
    def test_no_watchdog_without_watchdog_usec(self):
        self.start()
        self.notify.wait_for("READY")
        time.sleep(1.0)
        self.assertEqual(self.notify.values("WATCHDOG"), [])

    def wakeups(self, seconds):
        """Times the broker's event loop thread went to sleep and woke up
        (voluntary context switches) during `seconds` of idleness."""
        def count():
            with open("/proc/%d/status" % self.broker.proc.pid) as f:
                return int(re.search(r"(?m)^voluntary_ctxt_switches:\s*(\d+)", f.read()).group(1))
        before = count()
        time.sleep(seconds)
        return count() - before

    def test_idle_broker_never_wakes_up_without_watchdog(self):
        self.start()
        if HAVE_SYSTEMD:
            self.notify.wait_for("READY")
            self.notify.wait_for("STATUS")
        # Past the STATUS= rate limit's one-shot timer (at most 1 s), and the
        # startup's last deferred callbacks: from then on nothing is due.
        time.sleep(1.5)
        self.assertLessEqual(self.wakeups(2.0), 2, self.notify.msgs)

    @for_build(HAVE_SYSTEMD)
    def test_watchdog_wakes_the_loop(self):
        self.start(watchdog_usec=200000)
        self.notify.wait_for("READY")
        self.assertGreaterEqual(self.wakeups(1.5), 5)

    @for_build(HAVE_SYSTEMD)
    def test_stopping_on_sigterm(self):
        self.start()
        self.notify.wait_for("READY")
        self.assertEqual(self.broker.stop(signal.SIGTERM), 0)
        self.notify.wait_for("STOPPING", timeout=2)

    @for_build(not HAVE_SYSTEMD)
    def test_nothing_sent_without_libsystemd(self):
        b = self.start(watchdog_usec=200000)
        b.client("no-sd").ping()
        time.sleep(1.0)
        self.assertEqual(self.notify.msgs, [])


if __name__ == "__main__":
    main()

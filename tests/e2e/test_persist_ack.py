"""Acknowledged means stored, end to end, with a write that really fails:
roost runs under RLIMIT_FSIZE (SIGXFSZ ignored, so the write returns EFBIG
as on a full disk) and a retained QoS 1 message too big for the limit
cannot be written. Its publisher must not get a PUBACK (the connection is
closed unacknowledged, so the client sends again), the broker keeps serving,
and after a restart nothing that was acknowledged is missing.
"""
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest

import roostlib
from roostlib import Broker, Closed, PacketTimeout, PUBACK, publish_packet

FSIZE = 3 << 20           # bytes any one file of roost may grow to
BIG = 6 << 20             # a retained payload that cannot fit


def limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))


class LimitedBroker(Broker):
    """roost started with RLIMIT_FSIZE set (preexec_fn)."""

    def _spawn(self, argv):
        self.lines = []
        self._eof = False
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=self._tmp.name, preexec_fn=limited)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()


def yaml(db):
    return ("listeners:\n  - port: 0\n    bind: 127.0.0.1\n"
            "persistence:\n  path: %s\n"
            "http:\n  port: -1\nlog:\n  level: info\n" % db)


@roostlib.roost_only("RLIMIT_FSIZE on roost's own store")
class FileSizeLimitTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="roost-fsize-")
        self.db = os.path.join(self.dir, "roost.db")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_unwritable_qos1_retained_not_acknowledged_nothing_acked_lost(self):
        b = LimitedBroker(config_text=yaml(self.db))
        b.start()
        self.addCleanup(lambda: b.stop(check=False) if b.alive() else None)
        acked = []
        c = b.client("small-before")
        for i in range(5):
            c.publish("keep/%d" % i, b"v%d" % i, qos=1, retain=True)   # PUBACK checked
            acked.append(("keep/%d" % i, b"v%d" % i))
        c.disconnect()
        big = b.client("big-publisher")
        mark = b.log_mark()
        big.send(publish_packet("camera/snapshot", b"J" * BIG, qos=1, retain=True, pid=9))
        got = None
        try:
            got = big.recv_packet(timeout=20)
        except Closed:
            pass                           # closed unacknowledged: what we want
        except PacketTimeout:
            self.fail("neither PUBACK nor a closed connection within 20 s")
        self.assertIsNone(got, "the broker acknowledged a message it could not store: %r" % (got,))
        b.wait_for_log(r"store .*(a write of this batch failed|commit)", timeout=5, since=mark)
        # The next batch is clean: the broker keeps storing and acknowledging.
        c = b.client("small-after")
        c.publish("keep/after", b"after", qos=1, retain=True)
        acked.append(("keep/after", b"after"))
        c.disconnect()
        b.stop(sig=signal.SIGKILL, check=False)
        b2 = Broker(config_text=yaml(self.db))
        b2.start()
        self.addCleanup(lambda: b2.stop(check=False) if b2.alive() else None)
        r = b2.client("reader")
        r.subscribe([("keep/#", 0)])
        have = {(m.topic, m.payload) for m in r.drain_publishes(idle=0.7)}
        self.assertEqual(sorted(set(acked) - have), [], "acknowledged retained messages lost")
        r.subscribe([("camera/#", 0)])
        for m in r.drain_publishes(idle=0.5):
            self.fail("the unacknowledged big message was stored anyway: %s" % m.topic)
        b2.stop()


if __name__ == "__main__":
    roostlib.main()

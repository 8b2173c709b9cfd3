"""The daemon core under resource pressure: out of file descriptors, accept
pauses instead of spinning. Loopback only; every loop bounded."""
import os
import re
import resource
import socket
import time
import unittest

import roostlib

# Under AddressSanitizer freed memory sits in a quarantine and would count
# as growth in the RSS bound below (as in test_abuse).
os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")
from roostlib import Broker, CONNACK, roost_bin, Closed, PacketTimeout, RawClient, connect_packet, rss_kb, varint


def conf(extra=""):
    return ("listeners:\n  - port: 0\n    bind: 127.0.0.1\nallow_anonymous: true\n"
            "http: {port: -1}\npersistence: {enabled: false}\nlog: {level: info}\n" + extra)


def cpu_seconds(pid):
    """User + system CPU time of the process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(clients, timeout):
    """Split clients into those that got their CONNACK within timeout and the rest."""
    got, waiting = [], []
    deadline = time.monotonic() + timeout
    for c in clients:
        try:
            p = c.recv_packet(timeout=max(0.05, deadline - time.monotonic()))
            (got if p.type == CONNACK else waiting).append(c)
        except (PacketTimeout, Closed):
            waiting.append(c)
    return got, waiting


class DefaultBindBroker(Broker):
    """A broker whose listener sets no bind: it reports "[::]:PORT"."""

    def _start_roost(self):
        self.config_path = os.path.join(self._tmp.name, "roost.yaml")
        with open(self.config_path, "w") as f:
            f.write(conf().replace("    bind: 127.0.0.1\n", ""))
        self._spawn([roost_bin(), "-c", self.config_path])
        m = self.wait_for_log(r"listening on \[::\]:(\d+) \(IPv6 and IPv4\)", self.START_TIMEOUT,
                              what="the default dual-stack listener")
        self.port = int(m.group(1))


class CoreTest(unittest.TestCase):
    def start(self, extra=""):
        b = Broker(config_text=conf(extra))
        b.start()
        self.addCleanup(b.stop)
        return b

    def clients(self, b, n, prefix):
        out = []
        for i in range(n):
            c = RawClient(b.port)
            self.addCleanup(c.close)
            c.send(connect_packet("%s%d" % (prefix, i)))
            out.append(c)
        return out

    def test_out_of_descriptors_pauses_accept_without_spinning(self):
        b = self.start()
        # Few descriptors: the kernel still completes the handshakes (the
        # backlog is 1024), roost cannot accept them all.
        resource.prlimit(b.proc.pid, resource.RLIMIT_NOFILE, (48, 48))
        mark = b.log_mark()
        conns = self.clients(b, 80, "fd")
        b.wait_for_log(r"accept failed", since=mark, what="the accept failure")
        got, waiting = answered(conns, 2.0)
        self.assertTrue(got, "no connection was accepted at all")
        self.assertTrue(waiting, "every connection was accepted: the limit did not bite")
        # Paused, the broker is idle: before the fix accept failed in a busy
        # loop (a full core and a log line per attempt).
        cpu0, lines0 = cpu_seconds(b.proc.pid), b.log_mark()
        time.sleep(3.0)
        cpu = cpu_seconds(b.proc.pid) - cpu0
        lines = b.log_mark() - lines0
        self.assertLess(cpu, 0.5, "roost used %.2f s of CPU in 3 s while out of descriptors" % cpu)
        self.assertLess(lines, 10, "roost logged %d lines in 3 s while out of descriptors" % lines)
        self.assertEqual(len([l for l in b.lines[mark:] if "accept failed" in l]), 1)
        # Descriptors given back: the waiting connections are accepted.
        mark = b.log_mark()
        for c in got[:10]:
            c.close()
        late, _ = answered(waiting, 5.0)
        self.assertGreaterEqual(len(late), 5, "only %d waiting connections were accepted after "
                                "10 closed" % len(late))
        b.wait_for_log(r"accepting connections again", since=mark)
        for c in got + waiting:
            c.close()

    def test_connect_larger_than_max_connect_size_closed_from_its_header(self):
        """limits.max_connect_size: a CONNECT announcing 10 MB is refused from
        its fixed header; the broker does not buffer the body first."""
        b = self.start()
        rss0 = rss_kb(b.proc.pid)
        mark = b.log_mark()
        clients = []
        for i in range(8):
            c = RawClient(b.port)
            self.addCleanup(c.close)
            # Fixed header of a 10 MB CONNECT, then the start of its body.
            c.send(b"\x10" + varint(10 * 1024 * 1024) + b"\x00\x04MQTT\x04\x02\x00\x3c"
                   + b"x" * 65536, allow_closed=True)
            clients.append(c)
        for c in clients:
            with self.assertRaises(Closed):
                # Keep sending the body: the broker has closed, so this ends
                # in a reset / EOF quickly instead of 10 MB being taken in.
                for _ in range(120):  # 7.5 MB: less than announced
                    c.send(b"y" * 65536)
                c.recv_packet(timeout=5.0)
        b.wait_for_log(r"CONNECT of 10485760 bytes before CONNACK exceeds limits\.max_connect_size "
                       r"\(262144\)", since=mark)
        grew = rss_kb(b.proc.pid) - rss0
        self.assertLess(grew, 8 * 1024, "RSS grew by %d kB for 8 oversized CONNECTs" % grew)
        # A CONNECT within the limit (the largest will MQTT allows fits) is accepted.
        c = b.raw()
        c.send(connect_packet("big-will", will=roostlib.Will("w/t", b"z" * 65535)))
        c.expect(CONNACK)

    def test_default_listener_is_dual_stack(self):
        """No bind: "::" with IPV6_V6ONLY off, so IPv4 and IPv6 clients connect."""
        b = DefaultBindBroker()
        b.start()
        self.addCleanup(b.stop)
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(5.0)
                s.connect((host, b.port))
                s.sendall(connect_packet("dual-%d" % family))
                got = b""
                while len(got) < 4:
                    chunk = s.recv(4 - len(got))
                    self.assertTrue(chunk, "closed before CONNACK over %s" % host)
                    got += chunk
                self.assertEqual(got, b"\x20\x02\x00\x00", "CONNACK over %s" % host)
                port = s.getsockname()[1]
            # An IPv4 client (::ffff:127.0.0.1 to the socket) is logged as IPv4.
            want = "127.0.0.1:%d" % port if family == socket.AF_INET else "[::1]:%d" % port
            b.wait_for_log(r"client dual-%d \(%s\) connected" % (family, re.escape(want)))


if __name__ == "__main__":
    roostlib.main()

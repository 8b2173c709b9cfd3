"""Abuse: under a flood of malformed, silent and non-reading connections,
honest clients keep working, and the broker never buffers without bound.
Every attack loop is bounded in count and time and targets loopback only."""
import os
import socket
import threading
import time
import unittest

import roostlib
from roostlib import Broker, connect_packet, publish_packet, subscribe_packet, rss_kb


# Under AddressSanitizer, freed memory sits in a quarantine (256 MB by
# default) and would count as growth here; keep it small so the RSS bounds
# below measure the broker, not the sanitizer.
os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")


def conf(extra=""):
    return ("listeners:\n  - port: 0\n    bind: 127.0.0.1\nallow_anonymous: true\n"
            "limits:\n  connect_timeout: 1\n  max_packet_size: 65536\n%s"
            "http: {port: -1}\npersistence: {enabled: false}\nlog: {level: info}\n" % extra)


class AbuseTest(unittest.TestCase):
    def start(self, extra=""):
        b = Broker(config_text=conf(extra))
        b.start()
        self.addCleanup(b.stop)
        return b

    def honest_round_trip(self, b, n=50, deadline=10.0):
        """An honest subscriber gets everything an honest publisher sends."""
        sub = b.client("honest-sub-%d" % time.monotonic_ns())
        sub.subscribe([("honest/#", 1)])
        pub = b.client("honest-pub-%d" % time.monotonic_ns())
        t0 = time.monotonic()
        for i in range(n):
            pub.publish("honest/t", str(i).encode(), qos=1, timeout=deadline)
        got = [int(sub.recv_publish(timeout=deadline).payload) for _ in range(n)]
        self.assertEqual(got, list(range(n)))
        sub.disconnect()
        pub.disconnect()
        return time.monotonic() - t0

    def test_flood_of_malformed_and_silent_connections(self):
        b = self.start()
        stop = threading.Event()
        counts = {"garbage": 0, "silent": 0, "slowloris": 0}
        silent = []

        def garbage():
            payloads = [b"\xff" * 64, b"\x10\xff\xff\xff\xff\x7f", b"\x30\x05\x00\x03a+b",
                        os.urandom(200), b"\x82\x00", connect_packet("g")[:7]]
            i = 0
            while not stop.is_set() and i < 600:
                try:
                    s = socket.create_connection(("127.0.0.1", b.port), timeout=2)
                    s.sendall(payloads[i % len(payloads)])
                    s.close()
                    counts["garbage"] += 1
                except OSError:
                    pass
                i += 1

        def slow():
            # Connections that never complete a CONNECT: closed after connect_timeout.
            for i in range(150):
                if stop.is_set():
                    break
                try:
                    s = socket.create_connection(("127.0.0.1", b.port), timeout=2)
                    if i % 2:
                        s.sendall(connect_packet("slow")[:5])   # slowloris: half a CONNECT
                        counts["slowloris"] += 1
                    else:
                        counts["silent"] += 1
                    silent.append(s)
                except OSError:
                    pass

        threads = [threading.Thread(target=garbage, daemon=True), threading.Thread(target=slow, daemon=True)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):                       # honest traffic during the attack
                self.honest_round_trip(b, deadline=10)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=20)
        self.assertGreater(counts["garbage"], 50)
        # The silent and half-CONNECT connections are all closed by the broker.
        deadline = time.monotonic() + 5
        still_open = len(silent)
        while still_open and time.monotonic() < deadline:
            still_open = 0
            for s in silent:
                s.settimeout(0.05)
                try:
                    if s.recv(1) != b"":
                        still_open += 1
                except socket.timeout:
                    still_open += 1
                except OSError:
                    pass
        for s in silent:
            s.close()
        self.assertEqual(still_open, 0, "connections without CONNECT outlived connect_timeout")
        self.honest_round_trip(b)

    def test_subscriber_that_stops_reading_is_cut_off(self):
        b = self.start("  slow_client_timeout: 2\n")
        lazy = socket.create_connection(("127.0.0.1", b.port))
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.sendall(connect_packet("lazy", keepalive=0))
        lazy.sendall(subscribe_packet(1, [("fire/#", 1)]))
        time.sleep(0.3)                              # CONNACK, SUBACK: never read
        pub = b.client("firehose")
        payload = b"x" * 8192
        before = rss_kb(b.proc.pid)
        for i in range(3000):                        # 24 MB at QoS 0, then QoS 1
            pub.publish("fire/hose", payload, qos=0 if i < 2000 else 1, wait=False)
        pub.send(roostlib.PINGREQ_BYTES)             # skip the PUBACKs, wait for PINGRESP
        deadline = time.monotonic() + 30
        while pub.recv_packet(timeout=max(0.1, deadline - time.monotonic())).type != roostlib.PINGRESP:
            pass
        b.wait_for_log(r"client lazy .* is not reading", timeout=20)
        for i in range(30):                          # keep the pressure on past the timeout
            pub.publish("fire/hose", payload, qos=0)
            time.sleep(0.1)
        b.wait_for_log(r"client lazy .*closed: not reading", timeout=10)
        grown = rss_kb(b.proc.pid) - before
        self.assertLess(grown, 64 * 1024, "broker RSS grew by %d KiB for a client that does not read" % grown)
        lazy.close()
        self.honest_round_trip(b)

    def test_publisher_that_never_reads_its_acks_is_throttled(self):
        b = self.start()
        s = socket.create_connection(("127.0.0.1", b.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(connect_packet("no-acks", keepalive=0))
        batch = b"".join(publish_packet("acks/t", b"p", qos=1, pid=(i % 65535) + 1) for i in range(5000))
        sent = 0
        s.settimeout(0.5)
        start = time.monotonic()
        before = rss_kb(b.proc.pid)
        try:
            while time.monotonic() - start < 8 and sent < 400:   # bounded: at most ~400 x 5000 packets
                s.sendall(batch)
                sent += 1
        except (socket.timeout, OSError):
            pass                                     # the broker stopped reading: back-pressure
        grown = rss_kb(b.proc.pid) - before
        self.assertLess(grown, 64 * 1024, "RSS grew by %d KiB for a publisher that reads nothing" % grown)
        self.assertLess(sent, 400, "the broker kept reading from a client that reads nothing")
        s.close()
        self.honest_round_trip(b)


if __name__ == "__main__":
    roostlib.main()

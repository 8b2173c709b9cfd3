#!/usr/bin/env python3
"""The embedded defaults as a household meets them (issue 10): `broker/roost`
with NO arguments from an empty directory, then exactly the command Home
Assistant's MQTT page suggests,

    mosquitto_pub -h 127.0.0.1 -t home-assistant/switch/1/on -m "Switch is ON"

which must succeed and show up as an event on the HTTP API's /api/stream
(no token needed from this machine).  The defaults use the fixed ports 1883
(MQTT) and 8124 (HTTP API): a test fails with a clear message when either is
taken.

A client on the LAN must be refused.  To get a peer address that is not
loopback without leaving the machine, the test makes its own network
namespace joined to ours by a veth pair with addresses in 198.18.0.0/15
(RFC 2544, benchmarking; never routed) and runs mosquitto_pub inside it.
"""

import os
import shutil
import socket
import subprocess
import time
import unittest

import roostlib
from roostlib import Broker, main
from test_http_api import EventStream

WAIT = 5.0
PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
IP = shutil.which("ip") or "/usr/sbin/ip"
MQTT_PORT, HTTP_PORT = 1883, 8124
SEED = ["-t", "home-assistant/switch/1/on", "-m", "Switch is ON"]


def port_problem():
    """Why the default ports cannot be used now, or None."""
    for fam, addr, port, what in ((socket.AF_INET, "0.0.0.0", MQTT_PORT, "MQTT"),
                                  (socket.AF_INET, "127.0.0.1", HTTP_PORT, "HTTP API")):
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, port))
            except OSError as e:
                return ("port %d (the default %s port) is taken on this machine (%s): stop "
                        "whatever listens there (`ss -ltnp 'sport = :%d'`) and rerun"
                        % (port, what, e.strerror, port))
    return None


class DefaultsBroker(Broker):
    """roost started as a user starts it: no arguments, or only `extra`
    arguments, in an empty working directory (self.dir)."""

    def __init__(self, args=()):
        super().__init__(args=args)
        self.dir = self._tmp.name

    def _start_roost(self):
        self._spawn([roostlib.roost_bin()] + self.args)
        m = self.wait_for_log(r"(?<!http )listening on \S+:(\d+)", self.START_TIMEOUT,
                              what="roost to report its MQTT listener")
        self.port = int(m.group(1))
        self.wait_for_log(r"http listening on 127\.0\.0\.1:%d" % HTTP_PORT, self.START_TIMEOUT,
                          what="the HTTP API on its default port")


class Netns:
    """A network namespace joined to ours by a veth pair: ours is .host,
    the namespace's end is .peer (a LAN address as far as roost can tell).
    Always torn down by close()."""

    def __init__(self):
        n = os.getpid() % 16384         # unique per test process: parallel runs do not clash
        base = (198 << 24) | (18 << 16) | (n * 4)
        quad = lambda v: socket.inet_ntoa(v.to_bytes(4, "big"))
        self.name = "roost-e2e-%d" % os.getpid()
        self.veth = "rve%d" % os.getpid()
        self.host, self.peer = quad(base + 1), quad(base + 2)
        self.made = []
        try:
            self._ip("netns", "add", self.name)
            self.made.append("netns")
            self._ip("link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "p")
            self.made.append("link")
            self._ip("link", "set", self.veth + "p", "netns", self.name)
            self._ip("addr", "add", self.host + "/30", "dev", self.veth)
            self._ip("link", "set", self.veth, "up")
            self.run(IP, "addr", "add", self.peer + "/30", "dev", self.veth + "p")
            self.run(IP, "link", "set", self.veth + "p", "up")
        except BaseException:
            self.close()
            raise

    def _ip(self, *args):
        r = subprocess.run([IP] + list(args), capture_output=True, text=True, timeout=WAIT)
        if r.returncode != 0:
            raise AssertionError("`ip %s` failed (exit %d): %s -- this test needs root and "
                                 "network namespaces (ip netns)" % (" ".join(args), r.returncode,
                                                                    r.stderr.strip()))

    def run(self, *argv, check=True):
        r = subprocess.run([IP, "netns", "exec", self.name] + list(argv), capture_output=True,
                           text=True, timeout=15)
        if check and r.returncode != 0:
            raise AssertionError("%s in %s failed: %s" % (argv[0], self.name, r.stderr))
        return r

    def close(self):
        if "link" in self.made:
            subprocess.run([IP, "link", "del", self.veth], capture_output=True, timeout=WAIT)
        if "netns" in self.made:
            subprocess.run([IP, "netns", "del", self.name], capture_output=True, timeout=WAIT)
        self.made = []


class DefaultsTest(unittest.TestCase):
    def setUp(self):
        problem = port_problem()
        if problem:
            self.fail(problem)

    def start(self, args=()):
        b = DefaultsBroker(args)
        b.start()
        self.addCleanup(b.stop)
        return b

    def stream(self):
        s = EventStream(HTTP_PORT, "?restrict=mqtt_message_received")
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)     # no token: this machine
        self.assertEqual(s.next_message(), "ping")
        return s

    def seed(self, host):
        """The seed's command, exactly (no -p, no -u: the defaults)."""
        return subprocess.run([PUB, "-h", host] + SEED, capture_output=True, text=True,
                              timeout=15)

    def assert_seed_event(self, b, host):
        s = self.stream()
        r = self.seed(host)
        self.assertEqual(r.returncode, 0, "mosquitto_pub -h %s failed: %s\n%s"
                         % (host, r.stderr, b.tail()))
        ev = s.next_event(timeout=WAIT)
        self.assertEqual(ev["event_type"], "mqtt_message_received")
        self.assertEqual(ev["data"], {"topic": "home-assistant/switch/1/on",
                                      "payload": "Switch is ON", "qos": 0, "retain": False})

    def test_seed_command_on_the_embedded_defaults(self):
        b = self.start()
        b.wait_for_log(r"anonymous: this machine only; LAN clients need a user: roost passwd NAME")
        self.assertEqual(b.port, MQTT_PORT)
        self.assert_seed_event(b, "127.0.0.1")

    # The default listener is dual-stack ("::" with IPV6_V6ONLY off).
    def test_seed_command_over_ipv6_loopback(self):
        b = self.start()
        self.assert_seed_event(b, "::1")

    def test_lan_client_refused_on_the_defaults(self):
        ns = Netns()
        self.addCleanup(ns.close)
        b = self.start()
        r = ns.run(PUB, "-h", ns.host, *SEED, check=False)
        self.assertNotEqual(r.returncode, 0, "a LAN client was admitted anonymously")
        self.assertIn("not authorised", r.stderr)
        b.wait_for_log(r"\(%s:\d+\): CONNECT from client id '.*' refused \(0x05\): anonymous "
                       r"clients are accepted from this machine only; set allow_anonymous: true"
                       % ns.peer.replace(".", r"\."), WAIT)
        # The same machine still gets in at the same time.
        self.assert_seed_event(b, "127.0.0.1")

    def test_lan_client_admitted_with_allow_anonymous_true(self):
        ns = Netns()
        self.addCleanup(ns.close)
        cfg = os.path.join(roostlib.SRCDIR, "etc", "roost.yaml")
        b = DefaultsBroker(["-c", "roost.yaml"])    # the shipped file, plus one line
        with open(cfg) as f, open(os.path.join(b.dir, "roost.yaml"), "w") as out:
            out.write(f.read() + "\nallow_anonymous: true\n")
        b.start()
        self.addCleanup(b.stop)
        b.wait_for_log(r"anonymous: everyone \(allow_anonymous: true\)")
        s = self.stream()
        ns.run(PUB, "-h", ns.host, *SEED)
        self.assertEqual(s.next_event(timeout=WAIT)["data"]["payload"], "Switch is ON")


if __name__ == "__main__":
    main()

"""End-to-end: roost's command line, configuration checking and signals.

  roost -c FILE [-p PORT]      run; -p overrides the listener port
  roost --test-config -c FILE  exit 0 when valid, else print every error as
                               FILE:LINE: message on stderr and exit 2
  SIGTERM / SIGINT             graceful shutdown, exit 0, a shutdown log line
"""

import os
import re
import signal
import subprocess
import tempfile
import unittest

from roostlib import (SRCDIR, Broker, BrokerTestCase, free_port, main, roost_bin, roost_only,
                      roost_yaml)

RUN_TIMEOUT = 10

BAD_CONFIG = """\
listeners:
  - port: 0
    bind: 127.0.0.1
allow_anonymous: true
limits:
  max_inflight_mesages: 10
  max_connections: 100
  connect_timeout: soon
  max_keepalive: 70000
log:
  level: info
"""
# line 6: unknown key, close to max_inflight_messages
# line 8: wrong type (not an integer)
# line 9: out of range (0..65535)
BAD_LINES = (6, 8, 9)

SYNTAX_ERROR = """\
listeners:
  - port: 0
    bind: 127.0.0.1
allow_anonymous: true
limits:
  max_packet_size: 1024
   max_connections: 3
log:
  level: info
"""
# libyaml: "mapping values are not allowed in this context" at line 7.

ALL_KEYS = """\
listeners:
  - port: 0
    bind: 127.0.0.1
allow_anonymous: true
limits:
  max_packet_size: 65536
  max_queued_messages: 100
  max_queued_bytes: 1048576
  max_inflight_messages: 20
  max_connections: -1
  connect_timeout: 5
  max_keepalive: 300
  max_subscriptions: 50
log:
  level: debug
"""

SHUTDOWN_RE = r"(?i)\b(shut\s*(ting\s*)?down|shutdown|terminat\w*|exiting|stopp(ed|ing))\b"


def error_lines(stderr, name):
    """{line: message} for every 'NAME:LINE: message' (with or without a directory)."""
    out = {}
    for m in re.finditer(r"(?:^|[\s/])%s:(\d+): (.*)$" % re.escape(name), stderr, re.M):
        out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


@roost_only("roost's own command line and configuration file")
class ConfigCheckTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-e2e-cfg-")
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_roost(self, *args):
        try:
            return subprocess.run([roost_bin()] + list(args), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT,
                                  cwd=self.tmp.name)
        except subprocess.TimeoutExpired:
            self.fail("roost %s did not exit within %d s" % (" ".join(args), RUN_TIMEOUT))

    def assert_ok(self, path):
        r = self.run_roost("--test-config", "-c", path)
        self.assertEqual(r.returncode, 0, "--test-config %s failed:\n%s" % (path, r.stderr))
        self.assertEqual(error_lines(r.stderr, os.path.basename(path)), {}, r.stderr)

    def test_shipped_example_config_is_valid(self):
        path = os.path.join(SRCDIR, "etc", "roost.yaml")
        self.assertTrue(os.path.isfile(path), "%s is missing" % path)
        self.assert_ok(path)

    def test_generated_test_config_is_valid(self):
        self.assert_ok(self.write("gen.yaml", roost_yaml({"max_packet_size": 1024})))

    def test_every_documented_key_accepted(self):
        self.assert_ok(self.write("all.yaml", ALL_KEYS))

    def test_three_errors_each_reported_with_file_line_and_suggestion(self):
        path = self.write("roost-bad.yaml", BAD_CONFIG)
        r = self.run_roost("--test-config", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        errs = error_lines(r.stderr, "roost-bad.yaml")
        self.assertEqual(sorted(errs), list(BAD_LINES),
                         "expected errors at lines %s, got:\n%s" % (BAD_LINES, r.stderr))
        self.assertIn("did you mean 'max_inflight_messages'", " ".join(errs[6]), r.stderr)

    def test_unknown_top_level_key_is_an_error(self):
        path = self.write("unknown.yaml", roost_yaml() + "frobnicate: 1\n")
        r = self.run_roost("--test-config", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        n = len(roost_yaml().splitlines()) + 1
        self.assertIn(n, error_lines(r.stderr, "unknown.yaml"), r.stderr)

    def test_yaml_syntax_error_reported_with_its_line(self):
        path = self.write("syntax.yaml", SYNTAX_ERROR)
        r = self.run_roost("--test-config", "-c", path)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(7, error_lines(r.stderr, "syntax.yaml"), r.stderr)

    def test_daemon_refuses_to_start_with_invalid_config(self):
        path = self.write("roost-bad.yaml", BAD_CONFIG)
        r = self.run_roost("-c", path)
        self.assertNotEqual(r.returncode, 0, "roost ran with an invalid config")
        self.assertTrue(error_lines(r.stderr, "roost-bad.yaml"), r.stderr)

    def test_missing_config_file_is_a_clear_error(self):
        path = os.path.join(self.tmp.name, "no-such-dir", "roost.yaml")
        for args in (["-c", path], ["--test-config", "-c", path]):
            with self.subTest(args=args[:-1]):
                r = self.run_roost(*args)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(path, r.stderr, "the message must name the missing file")
                self.assertNotIn("Sanitizer", r.stderr)

    def test_p_overrides_the_configured_port(self):
        port = free_port()
        b = Broker(args=["-p", str(port)])
        b.start()
        self.addCleanup(b.stop)
        self.assertEqual(b.port, port)
        b.client("on-p-port").ping()


class SignalTest(BrokerTestCase):
    """Graceful shutdown with live clients, sessions and messages in flight."""

    def _busy(self):
        sub = self.client("sig-sub", clean=False)
        sub.subscribe(("sig/t", 1))
        pub = self.client("sig-pub")
        pub.publish("sig/t", b"unacked", qos=1)
        sub.recv_publish(ack=False)            # leave a message inflight
        pub.publish("sig/retained", b"r", qos=1, retain=True)
        self.raw()                              # and a connection without CONNECT

    def _stop_with(self, sig):
        self._busy()
        mark = self.broker.log_mark()
        rc = self.broker.stop(sig)              # asserts exit 0, no sanitizer report
        self.assertEqual(rc, 0)
        self.assertIsNotNone(self.broker.find_log(SHUTDOWN_RE, since=mark),
                             "no shutdown line after signal %d\n%s" % (sig, self.broker.tail()))

    def test_sigterm_graceful_shutdown_exit_0(self):
        self._stop_with(signal.SIGTERM)

    def test_sigint_graceful_shutdown_exit_0(self):
        self._stop_with(signal.SIGINT)


if __name__ == "__main__":
    main()

"""End-to-end: roost's command line, configuration checking and signals.

  roost -c FILE [-p PORT]      run; -p overrides the listener port
  roost --test-config -c FILE  exit 0 when valid, else print every error as
                               FILE:LINE: message on stderr and exit 2; also
                               loads the password and ACL files, the TLS
                               certificates and keys, and checks the store's
                               directory is writable (FILE: message)
  roost --help / --version     usage with every subcommand; the version
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


def openssl(*argv):
    r = subprocess.run(("openssl",) + argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed:\n%s" % (" ".join(argv), r.stderr)


@roost_only("roost's own command line")
class HelpVersionTest(unittest.TestCase):

    def run_roost(self, *args):
        return subprocess.run([roost_bin()] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT)

    def test_help_lists_every_subcommand(self):
        r = self.run_roost("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for cmd in ("passwd", "backup", "import-mosquitto"):
            self.assertRegex(r.stdout, r"(?m)^\s+%s\b" % re.escape(cmd), r.stdout)
        for opt in ("--config", "--port", "--test-config", "--help", "--version"):
            self.assertIn(opt, r.stdout)

    def test_unknown_option_prints_usage_and_exits_2(self):
        r = self.run_roost("--frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: roost", r.stderr)

    def test_version(self):
        r = self.run_roost("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^roost \d+\.\d+\.\d+\n$")


@roost_only("roost's --test-config")
class TestConfigFilesTest(unittest.TestCase):
    """--test-config loads what the configuration points at."""

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.TemporaryDirectory(prefix="roost-e2e-cfgtls-")
        d = cls.certdir.name
        for name in ("a", "b"):
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=roost-test-%s" % name, "-keyout", os.path.join(d, name + ".key"),
                    "-out", os.path.join(d, name + ".crt"))

    @classmethod
    def tearDownClass(cls):
        cls.certdir.cleanup()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-e2e-cfgfiles-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.pw = self.write("passwd", "")
        r = subprocess.run([roost_bin(), "passwd", "-c", "-b", self.pw, "alice", "wonderland"],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.acl = self.write("acl", "user alice\ntopic readwrite home/#\n")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def crt(self, name):
        return os.path.join(self.certdir.name, name)

    def config(self, cert="a.crt", key="a.key", store=None, persistence=True):
        store = store or os.path.join(self.dir, "roost.db")
        return self.write("roost.yaml", roost_yaml(extra=(
            "password_file: %s\nacl_file: %s\n"
            "persistence:\n  enabled: %s\n  path: %s\n") % (
                self.pw, self.acl, "true" if persistence else "false", store)).replace(
            "    bind: 127.0.0.1\n",
            "    bind: 127.0.0.1\n    certfile: %s\n    keyfile: %s\n" % (self.crt(cert), self.crt(key)), 1))

    def check(self, path):
        return subprocess.run([roost_bin(), "--test-config", "-c", path], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=self.dir)

    def assert_problem(self, r, file, pattern, line=None):
        self.assertEqual(r.returncode, 2, "expected exit 2:\n" + r.stderr)
        where = "%s:%d" % (file, line) if line else file
        self.assertRegex(r.stderr, r"(?m)^%s: .*%s" % (re.escape(where), pattern), r.stderr)

    def test_everything_loads(self):
        r = self.check(self.config())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration ok", r.stdout)

    def test_password_file_error_with_its_line(self):
        with open(self.pw, "a") as f:
            f.write("bob:$7$broken\n")
        self.assert_problem(self.check(self.config()), self.pw, "", line=2)

    def test_acl_file_error_with_its_line(self):
        with open(self.acl, "a") as f:
            f.write("frobnicate home/x\n")
        self.assert_problem(self.check(self.config()), self.acl, "frobnicate", line=3)

    def test_listener_acl_file_error_with_its_line(self):
        bad = self.write("listener.acl", "topic read x\nfrobnicate y\n")
        text = open(self.config()).read().replace(
            "    bind: 127.0.0.1\n", "    bind: 127.0.0.1\n    acl_file: %s\n" % bad, 1)
        self.assert_problem(self.check(self.write("roost.yaml", text)), bad, "frobnicate", line=2)

    def test_default_passwd_beside_the_store_is_checked(self):
        # No password_file: the default `passwd` beside the store is read
        # when it exists (a missing one means no users, and is no problem).
        store = os.path.join(self.dir, "state", "roost.db")
        os.makedirs(os.path.dirname(store))
        text = open(self.config(store=store)).read().replace("password_file: %s\n" % self.pw, "")
        cfg = self.write("roost.yaml", text)
        self.assertEqual(self.check(cfg).returncode, 0)
        passwd = os.path.join(self.dir, "state", "passwd")
        with open(passwd, "w") as f:
            f.write("alice:$7$broken\n")
        self.assert_problem(self.check(cfg), passwd, "", line=1)

    def test_key_that_does_not_match_the_certificate(self):
        self.assert_problem(self.check(self.config(key="b.key")), self.crt("b.key"),
                            "does not match .*%s" % re.escape(self.crt("a.crt")))

    def test_certificate_that_is_not_pem(self):
        bad = self.write("bad.crt", "not a certificate\n")
        r = self.check(self.config(cert=bad))
        self.assert_problem(r, bad, "certificate")

    def test_missing_key_file(self):
        r = self.check(self.config(key="missing.key"))
        self.assert_problem(r, self.crt("missing.key"), "No such file")

    def test_store_directory_missing(self):
        store = os.path.join(self.dir, "gone", "deeper", "roost.db")
        r = self.check(self.config(store=store))
        self.assert_problem(r, os.path.dirname(store), "not writable")

    def test_store_directory_not_checked_when_persistence_off(self):
        store = os.path.join(self.dir, "gone", "deeper", "roost.db")
        r = self.check(self.config(store=store, persistence=False))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_every_problem_listed_at_once(self):
        with open(self.acl, "a") as f:
            f.write("frobnicate home/x\n")
        store = os.path.join(self.dir, "gone", "deeper", "roost.db")
        r = self.check(self.config(key="b.key", store=store))
        self.assertEqual(r.returncode, 2, r.stderr)
        for what in (self.acl + ":3:", self.crt("b.key") + ":", os.path.dirname(store) + ":"):
            self.assertIn(what, r.stderr)


class ManPageTest(unittest.TestCase):
    """man/roost.8 and man/roost.yaml.5 stay accurate: every key of the
    table in broker/config.c and every option and command of --help is
    documented, and groff renders both without a warning."""

    def read(self, *parts):
        with open(os.path.join(SRCDIR, *parts), encoding="utf-8") as f:
            return f.read()

    def test_every_config_key_in_roost_yaml_5(self):
        table = self.read("broker", "config.c")
        keys = re.findall(r'DEF_\w+\(\s*roost_(?:\w+_)?config\s*,\s*"([a-z_.]+)"', table)
        self.assertGreater(len(keys), 30, "could not read the key table")
        man = self.read("man", "roost.yaml.5")
        documented = set(re.findall(r"(?m)^\.(?:B|TQ\n\.B) ([a-z_.]+)$", man))
        missing = [k for k in keys if k not in documented and k.split(".")[-1] not in documented]
        self.assertEqual(missing, [], "keys missing from man/roost.yaml.5")

    def test_every_config_key_in_etc_roost_yaml(self):
        # etc/roost.yaml documents every key: each appears there, set or as
        # a commented line "# key: default", under its section.
        table = self.read("broker", "config.c")
        keys = re.findall(r'DEF_\w+\(\s*roost_(?:\w+_)?config\s*,\s*"([a-z_.]+)"', table)
        text = self.read("etc", "roost.yaml")
        missing = []
        for k in keys:
            *section, name = k.split(".")
            if section and not re.search(r"(?m)^#? ?%s:" % re.escape(section[0]), text):
                missing.append(k)
            elif not re.search(r"(?m)^[ #]*-? ?%s:" % re.escape(name), text):
                missing.append(k)
        self.assertEqual(missing, [], "keys not documented in etc/roost.yaml")

    def test_every_option_and_command_in_roost_8(self):
        r = subprocess.run([roost_bin(), "--help"], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        man = self.read("man", "roost.8").replace("\\-", "-")
        opts = set(re.findall(r"--[a-z-]+", r.stdout))
        cmds = set(re.findall(r"(?m)^  ([a-z][a-z-]+) ", r.stdout))
        self.assertTrue(opts and cmds, r.stdout)
        for word in sorted(opts | cmds):
            self.assertIn(word, man, "%s is in --help but not in man/roost.8" % word)

    def test_groff_renders_without_warnings(self):
        for page in ("roost.8", "roost.yaml.5"):
            with self.subTest(page=page):
                r = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(SRCDIR, "man", page)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual((r.returncode, r.stderr), (0, ""))


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

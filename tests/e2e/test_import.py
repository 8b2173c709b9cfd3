"""End-to-end: `roost import-mosquitto`, with files the real Debian mosquitto
writes during the test.

  --db FILE [-c roost.yaml]  Mosquitto's retained messages and persistent
                             sessions (subscriptions, queued QoS 1/2) into
                             roost's store; a broken, foreign or unread file,
                             or a store in use, exits 2 and writes nothing.

Mosquitto drops privileges to user `mosquitto` when started as root: its
persistence directory is given to that user.
"""

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from roostlib import (HOST, MOSQUITTO_BIN, PUBREL, Broker, RawClient, free_port, main,
                      pubcomp_packet, pubrec_packet, roost_bin, roost_only)

RUN_TIMEOUT = 20

# Home Assistant discovery configs, availability, and the edge cases: a
# binary payload with every byte value, empty topic levels, QoS 1 retained.
RETAINED = {
    "homeassistant/sensor/kitchen_temp/config":
        b'{"name":"Kitchen temperature","state_topic":"home/kitchen/temp",'
        b'"unit_of_measurement":"\xc2\xb0C","device_class":"temperature",'
        b'"unique_id":"kitchen_temp_1","availability_topic":"home/kitchen/status"}',
    "homeassistant/binary_sensor/front_door/config":
        b'{"name":"Front door","state_topic":"home/door/state","device_class":"door"}',
    "home/kitchen/status": b"online",
    "blobs/raw": bytes(range(256)) * 4,
    "a//b/": b"empty levels",
}
RETAINED_QOS1 = {"home/kitchen/status"}
SESSION = "ha-persist"
SUBS = [("home/#", 1), ("alarm/#", 2)]
QUEUED = [("home/q/1", b"one", 1), ("alarm/siren", b"on", 2), ("home/q/2", b"\x00two\xff", 1),
          ("home/q/3", b"three", 1)]


def run_import(*args):
    return subprocess.run([roost_bin(), "import-mosquitto"] + list(args), capture_output=True,
                          timeout=RUN_TIMEOUT, text=True)


def digest(path):
    """Bytes of the store's files (database and WAL), to prove them untouched."""
    h = hashlib.sha256()
    for suffix in ("", "-wal"):
        if os.path.exists(path + suffix):
            with open(path + suffix, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


class Mosquitto:
    """Debian's mosquitto on free loopback ports; make_conf(port) returns the
    text of its configuration. Started in workdir (Mosquitto resolves
    relative paths against its working directory). stop() sends SIGTERM, on
    which it writes its db."""

    def __init__(self, workdir, make_conf):
        self.workdir = workdir
        self.make_conf = make_conf
        self.proc = None

    def start(self):
        for attempt in range(3):
            self.port = free_port()
            self.conf = os.path.join(self.workdir, "mosquitto.conf")
            with open(self.conf, "w") as f:
                f.write(self.make_conf(self.port))
            self.log_path = os.path.join(self.workdir, "mosquitto.log")
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if re.search(r"mosquitto version \S+ running", self.text()):
                    return self
                time.sleep(0.05)
            self.stop()
            if "in use" not in self.text() or attempt == 2:
                raise AssertionError("mosquitto did not start on %s:\n%s" % (self.conf, self.text()))
        return self

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        return self.proc.returncode


def mosquitto_writable_dir(parent, name):
    """A directory Mosquitto can write after dropping to user mosquitto."""
    path = os.path.join(parent, name)
    os.mkdir(path)
    if os.geteuid() == 0:
        os.chmod(parent, 0o755)
        try:
            pw = pwd.getpwnam("mosquitto")
            os.chown(path, pw.pw_uid, pw.pw_gid)
        except KeyError:
            pass
    return path


def roost_config(store):
    return ("listeners:\n  - port: 0\n    bind: %s\nallow_anonymous: true\n"
            "persistence:\n  path: %s\nlog:\n  level: debug\nhttp:\n  port: -1\n" % (HOST, store))


@roost_only("imports into roost's store")
class ImportDb(unittest.TestCase):
    """One mosquitto.db written by the real mosquitto for the whole class."""

    @classmethod
    def setUpClass(cls):
        if not os.access(MOSQUITTO_BIN, os.X_OK):
            raise unittest.SkipTest("needs Debian's mosquitto at %s" % MOSQUITTO_BIN)
        cls.tmp = tempfile.TemporaryDirectory(prefix="roost-import-")
        cls.addClassCleanup(cls.tmp.cleanup)
        mdir = mosquitto_writable_dir(cls.tmp.name, "mosq")
        m = Mosquitto(cls.tmp.name, lambda port: "\n".join([
            "listener %d %s" % (port, HOST), "allow_anonymous true", "persistence true",
            "persistence_location %s/" % mdir, "max_queued_messages 100",
            "log_dest stderr", "log_type all"]) + "\n").start()
        try:
            pub = RawClient(m.port)
            pub.connect("publisher")
            for topic, payload in RETAINED.items():
                pub.publish(topic, payload, qos=1 if topic in RETAINED_QOS1 else 0, retain=True)
            # The persistent session subscribes (and gets the retained
            # messages it matches while online), then goes away.
            s = RawClient(m.port)
            s.connect(SESSION, clean=False)
            s.subscribe(SUBS)
            s.drain_publishes(idle=0.5)
            s.disconnect()   # closed by mosquitto: the session is offline from here
            for topic, payload, qos in QUEUED:
                pub.publish(topic, payload, qos=qos)
            cls.inflight_pids = cls.leave_inflight(m.port, pub)
            pub.disconnect(wait_closed=False)
            time.sleep(0.2)
        finally:
            rc = m.stop()
        assert rc == 0, "mosquitto exited %s:\n%s" % (rc, m.text())
        cls.db = os.path.join(mdir, "mosquitto.db")
        assert os.path.exists(cls.db), "mosquitto wrote no db:\n" + m.text()

    @staticmethod
    def leave_inflight(port, pub):
        """Two sessions that drop their connection mid-flow: a QoS 1 PUBLISH
        not acknowledged, a QoS 2 one acknowledged with PUBREC (Mosquitto
        sent PUBREL, no PUBCOMP came). Returns their packet ids."""
        pids = {}
        for client_id, qos in (("inflight-1", 1), ("inflight-2", 2)):
            c = RawClient(port)
            c.connect(client_id, clean=False)
            c.subscribe(("flight/%d" % qos, qos))
            pub.publish("flight/%d" % qos, b"in flight %d" % qos, qos=qos)
            m = c.recv_publish(ack=False)
            if qos == 2:
                c.send(pubrec_packet(m.pid))
                c.expect_ack(PUBREL, m.pid)
            pids[client_id] = m.pid
            c.abort()
        time.sleep(0.2)
        return pids

    def setUp(self):
        self.work = tempfile.TemporaryDirectory(prefix="roost-import-store-")
        self.addCleanup(self.work.cleanup)
        self.store = os.path.join(self.work.name, "roost.db")
        self.yaml = os.path.join(self.work.name, "roost.yaml")
        with open(self.yaml, "w") as f:
            f.write(roost_config(self.store))

    def broker(self):
        b = Broker(config_text=roost_config(self.store))
        b.start()
        self.addCleanup(b.stop)
        return b

    def raw(self, b):
        c = RawClient(b.port)
        self.addCleanup(c.close)
        return c

    def test_retained_and_persistent_session_survive_the_move(self):
        r = run_import("--db", self.db, "-c", self.yaml)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%d retained messages, 3 sessions with 4 subscriptions, 4 queued and 2 inflight"
                      % len(RETAINED), r.stdout)
        b = self.broker()
        # Retained: byte-exact, with RETAIN 1 to a new subscription [MQTT-3.3.1-6].
        c = self.raw(b)
        c.connect("checker")
        c.subscribe(("#", 1))
        got = {m.topic: m for m in c.drain_publishes(idle=0.7)}
        self.assertEqual(sorted(got), sorted(RETAINED))
        for topic, payload in RETAINED.items():
            self.assertEqual(got[topic].payload, payload, topic)
            self.assertTrue(got[topic].retain, topic)
            self.assertEqual(got[topic].qos, 1 if topic in RETAINED_QOS1 else 0, topic)
        # The session: present [MQTT-3.2.2-2], its queued messages in order at
        # their QoS, then its subscriptions still deliver.
        s = self.raw(b)
        s.connect(SESSION, clean=False, expect_sp=1)
        for topic, payload, qos in QUEUED:
            s.expect_publish(topic=topic, payload=payload, qos=qos, retain=False)
        c.publish("alarm/live", b"after", qos=2)
        s.expect_publish(topic="alarm/live", payload=b"after", qos=2)
        s.expect_no_publish()

    def test_inflight_messages_resume_with_their_packet_ids(self):
        r = run_import("--db", self.db, "-c", self.yaml)
        self.assertEqual(r.returncode, 0, r.stderr)
        b = self.broker()
        # [MQTT-4.4.0-1] on a resumed session, unacknowledged PUBLISH and
        # PUBREL packets are sent again with their original packet ids.
        s = self.raw(b)
        s.connect("inflight-1", clean=False, expect_sp=1)
        m = s.expect_publish(topic="flight/1", payload=b"in flight 1", qos=1, ack=False)
        self.assertTrue(m.dup, "[MQTT-3.3.1-1] a resent PUBLISH has DUP 1")
        self.assertEqual(m.pid, self.inflight_pids["inflight-1"])
        s.ack(m)
        s.expect_no_publish()
        s2 = self.raw(b)
        s2.connect("inflight-2", clean=False, expect_sp=1)
        s2.expect_ack(PUBREL, self.inflight_pids["inflight-2"])
        s2.send(pubcomp_packet(self.inflight_pids["inflight-2"]))
        s2.expect_no_publish()

    def test_import_twice_changes_nothing(self):
        r = run_import("--db", self.db, "-c", self.yaml)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_import("--db", self.db, "-c", self.yaml)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 sessions", r.stdout)
        self.assertIn("3 sessions the store already had", r.stderr)
        b = self.broker()
        s = self.raw(b)
        s.connect(SESSION, clean=False, expect_sp=1)
        for topic, payload, qos in QUEUED:
            s.expect_publish(topic=topic, payload=payload, qos=qos)
        s.expect_no_publish()

    def refused(self, path, message):
        """Import of path exits 2 naming the file and message; store untouched."""
        r = run_import("--db", self.db, "-c", self.yaml)
        self.assertEqual(r.returncode, 0, r.stderr)
        before = digest(self.store)
        r = run_import("--db", path, "-c", self.yaml)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(path, r.stderr)
        self.assertRegex(r.stderr, message)
        self.assertEqual(digest(self.store), before, "the store changed")
        return r

    def test_truncated_db_refused_with_offset(self):
        with open(self.db, "rb") as f:
            data = f.read()
        bad = os.path.join(self.work.name, "truncated.db")
        with open(bad, "wb") as f:
            f.write(data[:len(data) - 3])
        self.refused(bad, r"offset \d+: .*truncated.*nothing imported")

    def test_non_db_file_refused(self):
        self.refused(self.yaml, r"offset 0: not a mosquitto\.db")

    def test_unread_version_refused(self):
        with open(self.db, "rb") as f:
            data = bytearray(f.read())
        data[19:23] = (4).to_bytes(4, "big")
        bad = os.path.join(self.work.name, "v4.db")
        with open(bad, "wb") as f:
            f.write(data)
        self.refused(bad, r"format version 4")

    def test_missing_db_refused(self):
        self.refused(os.path.join(self.work.name, "nope.db"), r"No such file")

    def test_store_in_use_refused(self):
        b = self.broker()
        r = run_import("--db", self.db, "-c", self.yaml)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("in use", r.stderr)
        c = self.raw(b)
        c.connect("checker")
        c.subscribe(("#", 0))
        self.assertEqual(c.drain_publishes(idle=0.5), [])


# A household's mosquitto.conf (Debian layout), on free loopback ports.
HOUSEHOLD_CONF = """\
# Place your local configuration in {d}/conf.d/
per_listener_settings true
persistence true
persistence_location {mdir}/
log_dest stderr
log_type all

# LAN clients with a password
listener {p1} 127.0.0.1
allow_anonymous false
password_file passwd
acl_file {d}/acl

# MQTT over TLS, client certificates
listener {p2} 127.0.0.1
certfile {d}/server.pem
keyfile {d}/server.key
cafile {d}/ca.pem
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
password_file passwd

# the dashboard's websockets
listener {p3} 127.0.0.1
protocol websockets
allow_anonymous true

include_dir {d}/conf.d

connection cloud
address 127.0.0.1:{p4}
topic home/# out 1
remote_clientid roost-import-test
"""
INCLUDED_CONF = "max_queued_messages 5000\nmax_inflight_messages 40\nmax_keepalive 300\n"


def line_of(text, needle):
    return text.splitlines().index(needle) + 1


def test_config(path):
    return subprocess.run([roost_bin(), "--test-config", "-c", path], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


@roost_only("converts to roost's configuration")
class ImportConf(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-import-conf-")
        self.addCleanup(self.tmp.cleanup)
        self.d = self.tmp.name
        os.chmod(self.d, 0o755)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def household(self):
        """The files the household conf names: users, ACL, certificates."""
        subprocess.run([roost_bin(), "passwd", "-c", "-b", os.path.join(self.d, "passwd"), "alice", "wonder"],
                       check=True, capture_output=True, timeout=RUN_TIMEOUT)
        os.chmod(os.path.join(self.d, "passwd"), 0o644)   # mosquitto reads it as user mosquitto
        self.write("acl", "user alice\ntopic readwrite home/#\n")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", os.path.join(self.d, "server.key"),
                        "-out", os.path.join(self.d, "server.pem")],
                       check=True, capture_output=True, timeout=RUN_TIMEOUT)
        os.chmod(os.path.join(self.d, "server.key"), 0o644)
        shutil.copy(os.path.join(self.d, "server.pem"), os.path.join(self.d, "ca.pem"))
        os.mkdir(os.path.join(self.d, "conf.d"))
        self.write("conf.d/household.conf", INCLUDED_CONF)
        self.write("conf.d/README", "not a .conf file: Mosquitto skips it\nnonsense here\n")
        mdir = mosquitto_writable_dir(self.d, "mosq")
        self.ports = {}

        def make(port):
            self.ports = {"p1": port, "p2": free_port(), "p3": free_port(), "p4": free_port()}
            return HOUSEHOLD_CONF.format(d=self.d, mdir=mdir, **self.ports)
        return Mosquitto(self.d, make), mdir

    def test_household_conf_becomes_a_config_roost_accepts(self):
        if not os.access(MOSQUITTO_BIN, os.X_OK):
            self.skipTest("needs Debian's mosquitto at %s" % MOSQUITTO_BIN)
        m, mdir = self.household()
        # Precondition: the real Mosquitto accepts the file (it has no
        # test flag: it must start and listen).
        m.start()
        self.assertEqual(m.stop(), 0, m.text())
        conf_text = open(m.conf).read()
        r = run_import(m.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        bridge = line_of(conf_text, "connection cloud")
        self.assertNotIn("protocol websockets", r.stderr)   # carried over now
        self.assertIn("%s:%d: warning: bridge 'cloud' not carried over" % (m.conf, bridge), r.stderr)
        self.assertIn("%s:%d: note: log_dest" % (m.conf, line_of(conf_text, "log_dest stderr")), r.stderr)
        self.assertNotIn("README", r.stderr)
        out = self.write("roost.yaml", r.stdout)
        t = test_config(out)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr + r.stdout)

        import yaml
        y = yaml.safe_load(r.stdout)
        ls = y["listeners"]
        self.assertEqual([l["port"] for l in ls], [self.ports["p1"], self.ports["p2"], self.ports["p3"]])
        self.assertEqual([l.get("protocol", "mqtt") for l in ls], ["mqtt", "mqtt", "websockets"])
        self.assertEqual(ls[2]["bind"], "127.0.0.1")
        self.assertEqual(ls[1]["certfile"], os.path.join(self.d, "server.pem"))
        self.assertEqual(ls[1]["keyfile"], os.path.join(self.d, "server.key"))
        self.assertEqual(ls[1]["cafile"], os.path.join(self.d, "ca.pem"))
        self.assertIs(ls[1]["require_certificate"], True)
        self.assertIs(ls[1]["use_identity_as_username"], True)
        self.assertEqual(y["limits"], {"max_queued_messages": 5000, "max_inflight_messages": 40,
                                       "max_keepalive": 300})
        self.assertEqual(y["persistence"], {"enabled": True, "path": os.path.join(mdir, "roost.db")})
        self.assertIn("roost import-mosquitto --db %s/mosquitto.db" % mdir, r.stdout)
        passwd = os.path.join(self.d, "passwd")   # relative in the conf: beside it
        if "allow_anonymous" in ls[0]:
            # This roost has per-listener security: each listener as in Mosquitto.
            self.assertEqual([l.get("allow_anonymous") for l in ls], [False, False, True])
            self.assertEqual([l.get("password_file") for l in ls], [passwd, passwd, None])
            self.assertEqual(ls[0]["acl_file"], os.path.join(self.d, "acl"))
        else:
            self.assertIn("%s:2: warning: per_listener_settings" % m.conf, r.stderr)
            self.assertIs(y["allow_anonymous"], False)
            self.assertEqual(y["password_file"], passwd)
            self.assertEqual(y["acl_file"], os.path.join(self.d, "acl"))

        # And it serves: anonymous refused, alice admitted on the first listener.
        with open(out) as f:
            text = f.read()
        b = Broker(config_text=text.replace("enabled: true", "enabled: false"))
        b.start()
        self.addCleanup(b.stop)
        c = RawClient(self.ports["p1"])
        self.addCleanup(c.close)
        c.connect("anon", expect_rc=5)
        a = RawClient(self.ports["p1"])
        self.addCleanup(a.close)
        a.connect("alice-1", username="alice", password="wonder")

    def test_no_listener_is_loopback_only_and_anonymous(self):
        conf = self.write("mosquitto.conf", "# Mosquitto 2.0, nothing configured\npersistence false\n")
        r = run_import(conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        import yaml
        y = yaml.safe_load(r.stdout)
        self.assertEqual(y["listeners"], [{"port": 1883, "bind": "127.0.0.1"}, {"port": 1883, "bind": "::1"}])
        self.assertIs(y["allow_anonymous"], True)
        self.assertIn("only this machine can connect", r.stdout)
        self.assertEqual(test_config(self.write("roost.yaml", r.stdout)).returncode, 0)

    def test_allow_anonymous_not_set_means_false(self):
        conf = self.write("mosquitto.conf", "listener 1883\n")
        r = run_import(conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        import yaml
        self.assertIs(yaml.safe_load(r.stdout)["allow_anonymous"], False)
        self.assertIn("not set: false in Mosquitto 2.0", r.stdout)

    def test_include_dir_in_mosquittos_order(self):
        # Mosquitto sorts case-insensitively: a.conf, B.conf, c.conf (ASCII
        # would put B first); the last value read wins.
        os.mkdir(os.path.join(self.d, "inc"))
        self.write("inc/B.conf", "max_keepalive 200\nmax_queued_messages 7\n")
        self.write("inc/a.conf", "max_keepalive 100\n")
        self.write("inc/c.conf", "max_queued_messages 9\n")
        self.write("inc/d.conf.disabled", "max_keepalive 1\n")
        conf = self.write("mosquitto.conf", "listener 1883\ninclude_dir inc\n")
        r = run_import(conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        import yaml
        self.assertEqual(yaml.safe_load(r.stdout)["limits"], {"max_keepalive": 200, "max_queued_messages": 9})
        self.assertIn("%s/inc/B.conf:1" % self.d, r.stdout)

    def test_unknown_option_is_a_warning_with_its_line(self):
        conf = self.write("mosquitto.conf", "listener 1883\n\nfrobnicate yes\n")
        r = run_import(conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s:3: warning: frobnicate" % conf, r.stderr)

    def test_broken_files_exit_2_with_file_and_line(self):
        cases = [
            ("listener 1883\nmax_queued_messages lots\n", 2, "not a number"),
            ("allow_anonymous maybe\n", 1, "not a boolean"),
            ("listener 70000\n", 1, "out of the range"),
            ("password_file /a\npassword_file /b\n", 2, "duplicate"),
            ("address 127.0.0.1\n", 1, "outside a 'connection'"),
            ("listener 1883\npassword_file\n", 2, "empty"),
        ]
        for text, line, message in cases:
            conf = self.write("bad.conf", text)
            r = run_import(conf)
            self.assertEqual(r.returncode, 2, (text, r.stdout, r.stderr))
            self.assertIn("%s:%d: " % (conf, line), r.stderr, text)
            self.assertIn(message, r.stderr, text)
            self.assertEqual(r.stdout, "", text)

    def test_unreadable_file_exits_2(self):
        r = run_import(os.path.join(self.d, "missing.conf"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.conf: No such file", r.stderr)


if __name__ == "__main__":
    main()

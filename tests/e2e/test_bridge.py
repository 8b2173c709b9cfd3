"""End-to-end: bridges (issue 13) against real upstreams started by the tests.

Upstreams on loopback ephemeral ports: Debian's mosquitto (`mosquitto -c conf`)
and aedes from npm (tests/e2e/aedes_broker.js, installed into a test-local
folder).  Covers: out/in/both with prefixes, QoS 1 end to end, retained
messages both ways, no loops (exact copies counted on each side), the
connection state topics, the durable outbound queue (200 numbered QoS 1
messages published while the upstream is down arrive in order; also after a
kill -9 of roost right after the last PUBACK: "acknowledged means queued"),
TLS with a CA made by the test, and a refused CONNACK logged once.

Every wait is bounded.
"""

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from roostlib import HOST, Broker, PacketTimeout, RawClient, free_port, is_mosquitto, main, roost_yaml

WAIT = 15.0
MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
HERE = os.path.dirname(os.path.abspath(__file__))


def wait_port(port, proc, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Mosquitto:
    """Debian's mosquitto on a fixed loopback port, restartable on it.
    persistence: keep sessions across a SIGTERM restart (outage tests)."""

    def __init__(self, allow_anonymous=True, persistence=False, tls=None):
        self.port = free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-bridge-mosq-")
        self.conf = os.path.join(self.tmp.name, "mosquitto.conf")
        # mosquitto started as root drops to user "mosquitto", which cannot
        # read this private folder (keys, persistence): stay who we are.
        lines = ["user %s" % getpass.getuser(), "listener %d %s" % (self.port, HOST),
                 "allow_anonymous %s" % ("true" if allow_anonymous else "false")]
        if tls:
            lines += ["cafile %s" % tls["cafile"], "certfile %s" % tls["certfile"],
                      "keyfile %s" % tls["keyfile"]]
        if persistence:
            lines += ["persistence true", "persistence_location %s/" % self.tmp.name,
                      "autosave_interval 1"]
        else:
            lines.append("persistence false")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        for _ in range(20):
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_port(self.port, self.proc, "mosquitto"):
                return self
            self.kill()
            time.sleep(0.2)   # the port still held by the previous one: retry
        raise AssertionError("mosquitto did not start on port %d" % self.port)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def kill(self):
        self.stop(signal.SIGKILL)

    def close(self):
        self.kill()
        self.tmp.cleanup()


class Aedes:
    """aedes (npm) through tests/e2e/aedes_broker.js: from tests/e2e/node_modules
    (tests/e2e/package.json), $AEDES_DIR, or installed once into the build tree."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    @staticmethod
    def install():
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            raise AssertionError("node and npm are required for the aedes upstream "
                                 "(Debian packages nodejs npm)")
        # tools/install-deps installs it with tests/e2e/package.json; else
        # $AEDES_DIR, else a folder of the build tree (npm install, once).
        if os.path.isdir(os.path.join(HERE, "node_modules", "aedes")):
            return node, HERE
        d = os.environ.get("AEDES_DIR") or os.path.join(os.getcwd(), "tests", "e2e", "aedes")
        if not os.path.isdir(os.path.join(d, "node_modules", "aedes")):
            os.makedirs(d, exist_ok=True)
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", d, "aedes@0.51"],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise AssertionError("npm install aedes failed:\n" + r.stderr[-2000:])
        return node, d

    def start(self):
        node, d = self.install()
        env = dict(os.environ, NODE_PATH=os.path.join(d, "node_modules"))
        self.proc = subprocess.Popen([node, os.path.join(HERE, "aedes_broker.js"), str(self.port), HOST],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
        if not wait_port(self.port, self.proc, "aedes"):
            self.close()
            raise AssertionError("aedes did not start on port %d" % self.port)
        return self

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def bridge_yaml(port, topics, name="up", extra="", address=None, **keys):
    out = ["bridges:", "  - name: %s" % name,
           "    address: %s" % (address or HOST), "    port: %d" % port,
           "    client_id: roost-test-%s" % name, "    keepalive: 5"]
    for k, v in keys.items():
        out.append("    %s: %s" % (k, v))
    out.append("    topics:")
    for t in topics:
        out.append("      - {%s}" % ", ".join('%s: "%s"' % (k, v) if isinstance(v, str) else
                                            "%s: %s" % (k, v) for k, v in t.items()))
    return "\n".join(out) + "\n" + extra


def make_ca(d, name="ca"):
    """A CA and a server certificate for 127.0.0.1/localhost, with openssl."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    ca, cakey = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=roost test " + name,
        "-keyout", cakey, "-out", ca)
    key, csr, crt = (os.path.join(d, name + "-server" + s) for s in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-days", "2",
        "-extfile", ext, "-out", crt)
    return {"cafile": ca, "certfile": crt, "keyfile": key}


@unittest.skipIf(is_mosquitto(), "roost only: bridges")
class BridgeTest(unittest.TestCase):

    def setUp(self):
        self.broker = None

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before and self.broker:
            import sys
            sys.stderr.write("\n%s: %s\n" % (self.id(), self.broker.tail(60)))
        return out

    # -- helpers -------------------------------------------------------------

    def mosquitto(self, **kw):
        m = Mosquitto(**kw)
        self.addCleanup(m.close)
        return m.start()

    def aedes(self):
        a = Aedes()
        self.addCleanup(a.close)
        return a.start()

    def roost(self, text, wait_up=True, name="up"):
        b = Broker(config_text=roost_yaml(extra=text))
        b.start()
        self.addCleanup(b.stop)
        self.broker = b
        if wait_up:
            b.wait_for_log(r"bridge %s: connected to broker" % name, WAIT)
        return b

    def client(self, port, cid, subs=(), clean=True):
        c = RawClient(port, timeout=WAIT)
        self.addCleanup(c.close)
        c.connect(cid, clean=clean)
        if subs:
            c.subscribe(list(subs))
        return c

    def got(self, c, idle=1.0):
        return [(m.topic, m.payload, m.qos) for m in c.drain_publishes(idle=idle)]

    # -- 1. directions, prefixes, QoS 1, exactly one copy each side -----------

    TOPICS = [
        {"pattern": "sensors/#", "direction": "out", "qos": 1, "remote_prefix": "home1/"},
        {"pattern": "cmd/#", "direction": "in", "qos": 1, "local_prefix": "local/",
         "remote_prefix": "home1/"},
        {"pattern": "both/#", "direction": "both", "qos": 1, "local_prefix": "", "remote_prefix": "h/"},
    ]

    def check_directions(self, up_port, **keys):
        b = self.roost(bridge_yaml(up_port, self.TOPICS, notifications="false", **keys))
        remote = self.client(up_port, "remote-sub", [("home1/#", 1), ("h/#", 1)])
        local = self.client(b.port, "local-sub", [("local/#", 1), ("both/#", 1), ("sensors/#", 1)])
        lp = self.client(b.port, "local-pub")
        rp = self.client(up_port, "remote-pub")
        time.sleep(0.3)
        # out, QoS 1 end to end; remote_prefix prepended
        lp.publish("sensors/t1", b"21.5", qos=1)
        # in: remote_prefix replaced by local_prefix
        rp.publish("home1/cmd/light", b"on", qos=1)
        # both, from each side
        lp.publish("both/a", b"from-local", qos=1)
        rp.publish("h/both/b", b"from-remote", qos=1)
        # not bridged: no topic matches
        lp.publish("other/x", b"no", qos=1)
        rp.publish("home1/sensors/ignored", b"in-direction-not-configured", qos=1)
        r = sorted(self.got(remote, 1.5))
        loc = sorted(self.got(local, 0.5))
        # Exactly one copy on each side: no loops, publish once.
        self.assertEqual(r, sorted([("home1/sensors/t1", b"21.5", 1), ("h/both/a", b"from-local", 1),
                                    ("h/both/b", b"from-remote", 1),
                                    ("home1/cmd/light", b"on", 1),
                                    ("home1/sensors/ignored", b"in-direction-not-configured", 1)]))
        self.assertEqual(loc, sorted([("sensors/t1", b"21.5", 1), ("local/cmd/light", b"on", 1),
                                      ("both/a", b"from-local", 1), ("both/b", b"from-remote", 1)]))
        return b

    def test_01_mosquitto_out_in_both_with_prefixes_exact_copies(self):
        m = self.mosquitto()
        b = self.check_directions(m.port)
        b.stop()
        self.assertIsNotNone(b.find_log(r"bridge up: 2 sent, 2 received, 0 queued, 0 dropped, 0 echoes dropped"), b.tail())

    # -- 2. retained both ways, state topics ----------------------------------

    def test_02_mosquitto_retained_both_ways_and_state_topics(self):
        m = self.mosquitto()
        rp = self.client(m.port, "remote-pub")
        rp.publish("home1/cmd/mode", b"away", qos=1, retain=True)   # before the bridge exists
        b = self.roost(bridge_yaml(m.port, self.TOPICS))
        lp = self.client(b.port, "local-pub")
        lp.publish("sensors/kept", b"k1", qos=1, retain=True)
        time.sleep(1.0)
        # the upstream keeps the retained message that came over the bridge
        late = self.client(m.port, "late-remote", [("home1/sensors/#", 1)])
        msg = late.expect_publish("home1/sensors/kept", b"k1", retain=True)
        # the local broker keeps the upstream's retained message
        late_l = self.client(b.port, "late-local", [("local/cmd/#", 1)])
        late_l.expect_publish("local/cmd/mode", b"away", retain=True)
        # state: locally $SYS/broker/connection/<name>/state, upstream the birth
        st = self.client(b.port, "state-local", [("$SYS/broker/connection/up/state", 0)])
        st.expect_publish("$SYS/broker/connection/up/state", b"1", retain=True)
        ust = self.client(m.port, "state-remote", [("$SYS/broker/connection/roost-test-up/state", 1)])
        ust.expect_publish("$SYS/broker/connection/roost-test-up/state", b"1", retain=True)
        # roost goes: the upstream sees 0 (retained), and so does a newcomer
        b.stop()
        ust.expect_publish("$SYS/broker/connection/roost-test-up/state", b"0")
        again = self.client(m.port, "state-remote-2", [("$SYS/broker/connection/roost-test-up/state", 1)])
        again.expect_publish("$SYS/broker/connection/roost-test-up/state", b"0", retain=True)
        self.assertEqual(msg.qos, 1)

    def test_03_outgoing_retain_false_clears_the_flag(self):
        m = self.mosquitto()
        b = self.roost(bridge_yaml(m.port, self.TOPICS, outgoing_retain="false"))
        self.client(b.port, "local-pub").publish("sensors/r", b"v", qos=1, retain=True)
        time.sleep(1.0)
        late = self.client(m.port, "late-remote", [("home1/sensors/#", 1)])
        self.assertEqual(self.got(late, 0.8), [])   # nothing retained upstream

    # -- 3. the durable queue ---------------------------------------------------

    def outage(self, kill_roost):
        store = tempfile.TemporaryDirectory(prefix="roost-bridge-store-")
        self.addCleanup(store.cleanup)
        m = self.mosquitto(persistence=True)
        # A persistent subscriber on the upstream, so it gets what arrives
        # while it reconnects after the upstream's restart.
        sub = self.client(m.port, "remote-sub", [("home1/#", 1)], clean=False)
        text = bridge_yaml(m.port, self.TOPICS, notifications="false") + \
            "persistence:\n  path: %s/roost.db\n" % store.name
        b = self.roost(text)
        sub.close()
        m.stop()     # SIGTERM: mosquitto saves the sessions
        b.wait_for_log(r"bridge up: lost the connection to broker", WAIT)
        pub = self.client(b.port, "local-pub")
        n = 200
        for i in range(n):
            pub.publish("sensors/seq", b"%03d" % i, qos=1)   # each PUBACK received
        if kill_roost:
            # right after the last PUBACK: acknowledged means queued
            b.stop(sig=signal.SIGKILL, check=False)
            b = self.roost(text, wait_up=False)
            b.wait_for_log(r"bridge up: 200 queued messages from before the restart", WAIT)
        time.sleep(3.0)   # the upstream stays down for a while
        m.start()
        b.wait_for_log(r"bridge up: (re)?connected to broker", 30)
        sub = self.client(m.port, "remote-sub", clean=False)
        got = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(set(got)) < n:
            try:
                got.append(sub.recv_publish(timeout=2.0).payload)
            except PacketTimeout:
                pass
        want = [b"%03d" % i for i in range(n)]
        collapsed = [p for i, p in enumerate(got) if i == 0 or p != got[i - 1]]
        self.assertEqual(collapsed, want, "sent %d, delivered %d distinct" % (n, len(set(got))))
        print("outage%s: sent %d, delivered %d (distinct %d), lost %d, duplicates %d"
              % (" + kill -9" if kill_roost else "", n, len(got), len(set(got)),
                 n - len(set(got) & set(want)), len(got) - len(set(got))))
        time.sleep(1.0)   # the last PUBACKs reach roost after the subscriber had the messages
        b.stop()
        self.assertIsNotNone(b.find_log(r"bridge up: \d+ sent, 0 received, 0 queued, 0 dropped"), b.tail())

    def test_04_upstream_down_200_qos1_arrive_in_order(self):
        self.outage(kill_roost=False)

    def test_05_kill9_during_the_outage_still_all_arrive(self):
        self.outage(kill_roost=True)

    def test_06_queue_bound_drops_the_oldest_counted(self):
        m = self.mosquitto(persistence=True)
        sub = self.client(m.port, "remote-sub", [("home1/#", 1)], clean=False)
        b = self.roost(bridge_yaml(m.port, self.TOPICS, notifications="false", max_queued_messages=5))
        sub.close()
        m.stop()
        b.wait_for_log(r"bridge up: lost the connection", WAIT)
        pub = self.client(b.port, "local-pub")
        for i in range(12):
            pub.publish("sensors/seq", b"%02d" % i, qos=1)
        b.wait_for_log(r"bridge up: outbound queue full \(5 messages, max_queued_messages\): dropped the "
                       r"oldest; 4 dropped so far", WAIT)
        m.start()
        sub = self.client(m.port, "remote-sub", clean=False)
        got = [x[1] for x in self.got(sub, 3.0)]
        self.assertEqual(got, [b"%02d" % i for i in range(7, 12)])

    # -- 4. refused, TLS ---------------------------------------------------------

    def test_07_wrong_credentials_logged_once_as_configuration_error(self):
        m = self.mosquitto(allow_anonymous=False)
        b = self.roost(bridge_yaml(m.port, self.TOPICS, username="nobody", password="wrong"), wait_up=False)
        b.wait_for_log(r"error bridge up: broker 127\.0\.0\.1:%d refused the connection \(CONNACK 5, "
                       r"not authorised: check bridges\[0\]\.username" % m.port, WAIT)
        b.wait_for_log(r"retrying in 60 s", WAIT)
        time.sleep(1.0)
        self.assertEqual(len([x for x in b.lines if "refused the connection" in x]), 1)

    def test_08_tls_with_a_ca_made_by_the_test(self):
        d = tempfile.TemporaryDirectory(prefix="roost-bridge-tls-")
        self.addCleanup(d.cleanup)
        tls = make_ca(d.name)
        m = self.mosquitto(tls=tls)
        b = self.roost(bridge_yaml(m.port, self.TOPICS, notifications="false",
                                   tls="{cafile: %s}" % tls["cafile"]))
        remote = self.client_tls(m.port, tls, "remote-sub", "home1/#")
        self.client(b.port, "local-pub").publish("sensors/tls", b"secret", qos=1)
        self.assertEqual(remote.recv().strip(), "home1/sensors/tls secret")
        # host name verification: "localhost" is in the certificate, so is 127.0.0.1;
        # another CA is refused with the reason
        other = make_ca(d.name, "other")
        b2 = self.roost(bridge_yaml(m.port, self.TOPICS, name="bad", notifications="false",
                                    tls="{cafile: %s}" % other["cafile"]), wait_up=False)
        b2.wait_for_log(r"bridge bad: cannot connect to broker 127\.0\.0\.1:%d \(TLS: certificate of "
                        r"127\.0\.0\.1:%d not accepted: " % (m.port, m.port), WAIT)

    def client_tls(self, port, tls, cid, topic):
        """mosquitto_sub over TLS (the python raw client speaks plain TCP)."""
        p = subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(port), "--cafile", tls["cafile"],
                              "-i", cid, "-t", topic, "-q", "1", "-v", "-C", "1", "-W", str(int(WAIT))],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        time.sleep(0.5)

        class Sub:
            def recv(self_):
                out, _ = p.communicate(timeout=WAIT + 5)
                return out
        return Sub()

    # -- 5. aedes (another implementation) ----------------------------------------

    def test_09_aedes_out_in_both_with_prefixes_exact_copies(self):
        """aedes 0.51 drops a bridge-flagged connection when it skips one of
        the bridge's own messages: try_private false, and roost's echo filter
        drops the copy of both/a that aedes sends straight back."""
        a = self.aedes()
        b = self.check_directions(a.port, try_private="false")
        b.stop()
        self.assertIsNotNone(b.find_log(r"bridge up: 2 sent, 2 received, 0 queued, 0 dropped, 1 echoes dropped"),
                             b.tail())

    def test_10_protocol_version_5_is_refused_not_yet(self):
        path = os.path.join(tempfile.mkdtemp(prefix="roost-bridge-cfg-"), "roost.yaml")
        with open(path, "w") as f:
            f.write(roost_yaml(extra=bridge_yaml(1883, self.TOPICS, protocol_version=5)))
        from roostlib import roost_bin
        r = subprocess.run([roost_bin(), "-c", path, "--test-config"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr, r"roost\.yaml:\d+: bridges\[0\]\.protocol_version: 5: MQTT 5 bridges "
                                   r"are not supported yet")
        shutil.rmtree(os.path.dirname(path))


if __name__ == "__main__":
    main()

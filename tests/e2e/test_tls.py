"""TLS listeners: real clients (mosquitto_pub/sub --cafile, openssl s_client,
paho-mqtt with TLS), minimum TLS 1.2, client certificates, the certificate's
CN as user name, and certificates re-read on SIGHUP without dropping anyone.
Certificates are generated here with the openssl CLI, never committed."""
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as paho

import roostlib
from roostlib import Broker


def run(*argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)


class Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""

    def __init__(self, d):
        self.d = d
        self.ca_key, self.ca = self.p("ca.key"), self.p("ca.pem")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=roost test CA", "-keyout", self.ca_key, "-out", self.ca, check=True)
        self.server_key, self.server = self.issue("server", "127.0.0.1", san="IP:127.0.0.1")
        self.client_key, self.client = self.issue("client", "device-7")

    def p(self, name):
        return os.path.join(self.d, name)

    def issue(self, name, cn, san=None):
        key, csr, pem = self.p(name + ".key"), self.p(name + ".csr"), self.p(name + ".pem")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
            "-keyout", key, "-out", csr, check=True)
        ext = self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % san if san else "basicConstraints=CA:FALSE\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
            "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", pem, check=True)
        return key, pem


def tls_yaml(certs, extra="", log="debug"):
    return ("listeners:\n  - port: 0\n    bind: 127.0.0.1\n"
            "    certfile: %s\n    keyfile: %s\n    cafile: %s\n%s"
            "allow_anonymous: true\nhttp: {port: -1}\npersistence: {enabled: false}\n"
            "log: {level: %s}\n" % (certs.server, certs.server_key, certs.ca, extra, log))


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roost-tls-")
        cls.certs = Certs(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def start(self, extra=""):
        b = Broker(config_text=tls_yaml(self.certs, extra))
        b.start()
        self.addCleanup(b.stop)
        self.assertIsNotNone(b.find_log(r"listening on 127\.0\.0\.1:\d+ \(TLS\)"))
        return b

    def test_mosquitto_clients_over_tls(self):
        b = self.start()
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile",
                                self.certs.ca, "-t", "tls/#", "-C", "1", "-W", "10", "-v", "-q", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        b.wait_for_log(r"connected: MQTT", timeout=10)
        r = run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", self.certs.ca,
                "-t", "tls/a", "-m", "secret", "-q", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = sub.communicate(timeout=15)
        self.assertEqual(out.strip(), "tls/a secret", err)

    def test_plain_mqtt_on_tls_port_is_refused(self):
        b = self.start()
        c = b.raw()
        c.send(roostlib.connect_packet("plain"))
        c.expect_closed(timeout=5, allow_packets=False)
        b.wait_for_log(r"closed: TLS error", timeout=5)

    def test_minimum_tls_1_2(self):
        b = self.start()
        ok = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile", self.certs.ca,
                 "-tls1_2", "-brief", input="")
        self.assertIn("Verification: OK", ok.stdout + ok.stderr)
        old = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-tls1_1", "-brief",
                  "-cipher", "DEFAULT@SECLEVEL=0", input="")
        self.assertNotIn("Protocol version: TLSv1.1", old.stdout + old.stderr)
        self.assertNotEqual(old.returncode, 0)

    def test_tls_version_1_3_only(self):
        b = self.start("    tls_version: tlsv1.3\n")
        r12 = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile", self.certs.ca,
                  "-tls1_2", "-brief", input="")
        self.assertNotEqual(r12.returncode, 0)
        r13 = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile", self.certs.ca,
                  "-tls1_3", "-brief", input="")
        self.assertIn("TLSv1.3", r13.stdout + r13.stderr)

    def paho_client(self, port, cid, certfile=None, keyfile=None):
        c = paho.Client(client_id=cid, protocol=paho.MQTTv311)
        c.tls_set(ca_certs=self.certs.ca, certfile=certfile, keyfile=keyfile,
                  tls_version=ssl.PROTOCOL_TLS_CLIENT)
        got = threading.Event()
        c.on_connect = lambda cl, u, f, rc: got.set() if rc == 0 else None
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.addCleanup(c.loop_stop)
        self.assertTrue(got.wait(10), "paho did not connect over TLS")
        return c

    def test_paho_over_tls(self):
        b = self.start()
        received = []
        done = threading.Event()
        sub = self.paho_client(b.port, "paho-sub")

        def on_message(cl, u, m):
            received.append((m.topic, m.payload, m.qos))
            done.set()
        sub.on_message = on_message
        subscribed = threading.Event()
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.subscribe("paho/#", qos=2)
        self.assertTrue(subscribed.wait(10))
        pub = self.paho_client(b.port, "paho-pub")
        pub.publish("paho/x", b"over tls", qos=2).wait_for_publish()
        self.assertTrue(done.wait(10))
        self.assertEqual(received, [("paho/x", b"over tls", 2)])
        pub.disconnect()
        sub.disconnect()

    def test_require_certificate(self):
        b = self.start("    require_certificate: true\n")
        nocert = run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", self.certs.ca,
                     "-t", "x", "-m", "1")
        self.assertNotEqual(nocert.returncode, 0)
        withcert = run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", self.certs.ca,
                       "--cert", self.certs.client, "--key", self.certs.client_key, "-t", "x", "-m", "1")
        self.assertEqual(withcert.returncode, 0, withcert.stderr)

    def test_use_identity_as_username(self):
        b = self.start("    use_identity_as_username: true\n")
        r = run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", self.certs.ca,
                "--cert", self.certs.client, "--key", self.certs.client_key, "-i", "cn-client",
                "-t", "x", "-m", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        b.wait_for_log(r"client cn-client .*connected: .*user device-7", timeout=5)

    def test_sighup_reloads_certificate_without_dropping_clients(self):
        work = tempfile.mkdtemp(prefix="roost-tls-reload-")
        self.addCleanup(shutil.rmtree, work, True)
        cert, key = os.path.join(work, "s.pem"), os.path.join(work, "s.key")
        shutil.copy(self.certs.server, cert)
        shutil.copy(self.certs.server_key, key)
        text = tls_yaml(self.certs).replace(self.certs.server + "\n", cert + "\n") \
                                   .replace(self.certs.server_key + "\n", key + "\n")
        b = Broker(config_text=text)
        b.start()
        self.addCleanup(b.stop)
        before = self.paho_client(b.port, "stays")
        serial0 = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile",
                      self.certs.ca, input="").stdout
        new_key, new_cert = self.certs.issue("server2", "127.0.0.1", san="IP:127.0.0.1")
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        mark = b.log_mark()
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"certificate reloaded", timeout=5, since=mark)
        fingerprint = run("openssl", "x509", "-in", new_cert, "-noout", "-serial").stdout.strip()
        after = run("openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile",
                    self.certs.ca, "-showcerts", input="")
        served = run("openssl", "x509", "-noout", "-serial", input=after.stdout).stdout.strip()
        self.assertEqual(served, fingerprint, "new connections must get the new certificate")
        self.assertNotEqual(serial0, after.stdout)
        # The client connected before the reload still works.
        got = threading.Event()
        before.on_message = lambda *a: got.set()
        before.subscribe("still/here", qos=1)
        time.sleep(0.3)
        before.publish("still/here", b"1", qos=1)
        self.assertTrue(got.wait(10), "the client connected before SIGHUP was dropped")
        # A broken certificate on reload keeps the old one.
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        mark = b.log_mark()
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"reload failed, keeping the old certificate", timeout=5, since=mark)
        ok = run("mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", self.certs.ca,
                 "-t", "x", "-m", "1")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        before.disconnect()

    def test_bad_key_refuses_to_start_with_clear_error(self):
        text = tls_yaml(self.certs).replace(self.certs.server_key, self.certs.client_key)
        cfg = os.path.join(self.dir, "bad.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        r = run(roostlib.roost_bin(), "-c", cfg)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot be used with", r.stderr)


if __name__ == "__main__":
    roostlib.main()

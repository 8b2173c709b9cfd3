"""End-to-end: the hub connector (issue 3, items 1, 2 and 5).

MQTT messages on the configured filters become `mqtt_message_received`
events delivered to Home Assistant's REST API — here a fake one (fake_ha.py)
on a loopback port started by each test.  Covers: the event body (text,
binary → payload_base64, qos, retain), filters, overlapping filters, ordered
at-least-once delivery across an outage (refused, 500, silent), the bounded
spool dropping the oldest, 401, 400, https (CA file, no CA, verify_tls:
false), bad configurations, and the external-broker mode against Debian's
mosquitto (reconnect + resubscribe, CONNACK refusal).

Every test starts its own roost (http: port -1, so tests never collide on
8124) with a small hub.retry_max, and every wait is bounded.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from fake_ha import FakeHA, make_cert
from roostlib import (HOST, SANITIZER_RE, Broker, free_port, is_mosquitto, main, roost_bin,
                      roost_yaml)

WAIT = 10.0
PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
SWITCH_ON = {"topic": "home-assistant/switch/1/on", "payload": "Switch is ON", "qos": 0,
             "retain": False}


def yaml_section(name, keys):
    out = ["%s:" % name]
    for k, v in keys.items():
        if isinstance(v, (list, tuple)):
            out.append("  %s:" % k)
            out += ['    - "%s"' % x for x in v]
        elif isinstance(v, bool):
            out.append("  %s: %s" % (k, "true" if v else "false"))
        elif isinstance(v, str):
            out.append('  %s: "%s"' % (k, v))
        else:
            out.append("  %s: %s" % (k, v))
    return "\n".join(out) + "\n"


def config_text(hub=None, mqtt=None):
    extra = yaml_section("http", {"port": -1})
    if mqtt:
        extra += yaml_section("mqtt", mqtt)
    if hub:
        extra += yaml_section("hub", hub)
    return roost_yaml(extra=extra)


def mosquitto_pub(port, topic, message=None, qos=0, retain=False, file=None):
    argv = [PUB, "-h", HOST, "-p", str(port), "-t", topic, "-q", str(qos)]
    argv += ["-f", file] if file else ["-m", message]
    if retain:
        argv.append("-r")
    subprocess.run(argv, check=True, timeout=15, stdout=subprocess.DEVNULL)


class Mosquitto:
    """Debian's mosquitto on a fixed loopback port (restartable on it)."""

    def __init__(self, port=None, allow_anonymous=True):
        self.port = port or free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="roost-mosq-")
        self.conf = os.path.join(self.tmp.name, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d %s\nallow_anonymous %s\npersistence false\n"
                    % (self.port, HOST, "true" if allow_anonymous else "false"))
        self.proc = None

    def start(self):
        deadline = time.monotonic() + WAIT
        while True:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection((HOST, self.port), timeout=0.5).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            if self.proc.poll() is None or time.monotonic() >= deadline:
                self.kill()
                raise AssertionError("mosquitto did not start on port %d" % self.port)
            time.sleep(0.2)   # exited (port still held by the previous one?): retry

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def close(self):
        self.kill()
        self.tmp.cleanup()


@unittest.skipIf(is_mosquitto(), "roost only: the hub connector")
class ConnectorTest(unittest.TestCase):

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

    def fake_ha(self, **kw):
        ha = FakeHA(**kw).start()
        self.addCleanup(ha.stop)
        return ha

    def roost(self, ha=None, url=None, mqtt=None, **hub):
        """Start roost delivering to `ha` (or `url`); hub keys override."""
        hub_keys = None
        if ha or url:
            hub_keys = {"url": url or ha.url(), "token": "test-token", "retry_max": 2,
                        "timeout": 2}
            hub_keys.update(hub)
        b = Broker(config_text=config_text(hub_keys, mqtt))
        b.start()
        self.addCleanup(b.stop)
        self.broker = b
        return b

    def publisher(self, b, cid="pub"):
        return b.client(cid)

    def assert_no_more(self, ha, n, window=0.5):
        time.sleep(window)
        got = ha.snapshot()
        self.assertEqual(len(got), n, "expected exactly %d event(s), got %r" % (n, got))

    def assert_in_order(self, events, expected):
        """At-least-once, in order: equal to expected once consecutive
        repeats (a retried in-flight event) are collapsed; at most one."""
        payloads = [e.data["payload"] for e in events]
        collapsed = [p for i, p in enumerate(payloads) if i == 0 or p != payloads[i - 1]]
        self.assertEqual(collapsed, expected)
        self.assertLessEqual(len(payloads) - len(collapsed), 1, "more than one repeat: %r"
                             % payloads)

    # -- 1. subscribe and fire, delivered --------------------------------------

    def test_01_switch_on_gives_exactly_one_event(self):
        ha = self.fake_ha()
        b = self.roost(ha)
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        ev = ha.wait_events(1, WAIT)[0]
        self.assertEqual(ev.path, "/api/events/mqtt_message_received")
        self.assertEqual(ev.data, SWITCH_ON)
        self.assertEqual(list(ev.data), ["topic", "payload", "qos", "retain"])
        self.assertEqual(ev.headers["authorization"], "Bearer test-token")
        self.assertEqual(ev.headers["content-type"], "application/json")
        self.assertEqual(ev.headers["host"], "%s:%d" % (HOST, ha.port))
        self.assert_no_more(ha, 1)
        b.wait_for_log(r"delivering events to Home Assistant at http://127\.0\.0\.1:%d" % ha.port)

    def test_02_payload_text_binary_qos_retain(self):
        ha = self.fake_ha()
        b = self.roost(ha)
        c = self.publisher(b)
        c.publish("home-assistant/text", "caf\u00e9 \"quoted\"\n".encode(), qos=1)
        c.publish("home-assistant/bin", b"\xff\x00\x80abc", qos=2)
        c.publish("home-assistant/retained", b"kept", qos=1, retain=True)
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(b"\xc0\xaf overlong")   # not UTF-8: base64
            f.flush()
            mosquitto_pub(b.port, "home-assistant/overlong", file=f.name)
        evs = ha.wait_events(4, WAIT)
        self.assertEqual(evs[0].data, {"topic": "home-assistant/text",
                                       "payload": "caf\u00e9 \"quoted\"\n", "qos": 1,
                                       "retain": False})
        self.assertEqual(evs[1].data, {"topic": "home-assistant/bin", "payload_base64": "/wCAYWJj",
                                       "qos": 2, "retain": False})
        self.assertEqual(evs[2].data, {"topic": "home-assistant/retained", "payload": "kept",
                                       "qos": 1, "retain": True})
        self.assertEqual(evs[3].data, {"topic": "home-assistant/overlong",
                                       "payload_base64": "wK8gb3Zlcmxvbmc=", "qos": 0,
                                       "retain": False})
        self.assert_no_more(ha, 4)

    def test_03_topics_outside_the_filters_fire_nothing(self):
        ha = self.fake_ha()
        b = self.roost(ha)
        c = self.publisher(b)
        for t in ("other/topic", "home-assistantX/a", "Home-Assistant/a", "$SYS/x",
                  "homeassistant/status"):
            c.publish(t, b"nope", qos=1)
        c.publish("home-assistant/marker", b"last", qos=1)
        evs = ha.wait_events(1, WAIT)
        self.assertEqual(evs[0].data["topic"], "home-assistant/marker")
        self.assert_no_more(ha, 1)

    def test_04_overlapping_filters_fire_one_event(self):
        ha = self.fake_ha()
        b = self.roost(ha, mqtt={"topics": ["home-assistant/#", "home-assistant/+/1/on",
                                            "sensors/+"],
                                 "event_type": "roost_test_event"})
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        mosquitto_pub(b.port, "sensors/t1", "21.5")
        evs = ha.wait_events(2, WAIT)
        self.assertEqual([e.path for e in evs], ["/api/events/roost_test_event"] * 2)
        self.assertEqual(evs[0].data, SWITCH_ON)
        self.assertEqual(evs[1].data["topic"], "sensors/t1")
        self.assert_no_more(ha, 2)

    # -- 2. delivery: ordered, at-least-once, bounded ---------------------------

    def test_05_ha_down_then_up_every_event_in_order(self):
        ha = self.fake_ha()
        b = self.roost(ha)
        c = self.publisher(b)
        c.publish("home-assistant/seq", b"warmup", qos=1)
        ha.wait_events(1, WAIT)                # a persistent connection is open
        ha.go_down()
        mark = b.log_mark()
        expected = ["m%02d" % i for i in range(10)]
        for p in expected[:5]:
            c.publish("home-assistant/seq", p.encode(), qos=1)
        b.wait_for_log(r"Home Assistant at http://\S+ is not reachable .*holding events in the "
                       r"spool", WAIT, since=mark)
        # Back, but answering 500 for a while; then well.
        ha.set_mode("fail")
        ha.come_back()
        for p in expected[5:]:
            c.publish("home-assistant/seq", p.encode(), qos=0)
        n = ha.requests
        ha.wait_requests(n + 1, WAIT)
        self.assertEqual(len(ha.snapshot()), 1, "nothing may be recorded while HA answers 500")
        ha.set_mode("ok")
        evs = ha.wait_events(11, WAIT)
        self.assert_in_order(evs[1:], expected)
        b.wait_for_log(r"accepts events again: \d+ events held meanwhile, \d+ left to deliver",
                       WAIT, since=mark)
        # One warning for the outage, not one per retry.
        self.assertEqual(len([l for l in b.lines[mark:] if "warning Home Assistant" in l]), 1,
                         b.tail())

    def test_05b_spool_survives_kill9(self):
        """The spool is in the durable store: events of acknowledged QoS 1
        messages that HA never confirmed are delivered after a kill -9."""
        import shutil, signal, tempfile
        d = tempfile.mkdtemp(prefix="roost-spool-")
        self.addCleanup(shutil.rmtree, d, True)
        ha = self.fake_ha()
        ha.go_down()
        hub = {"url": ha.url(), "token": "test-token", "retry_max": 1, "timeout": 2}
        text = config_text(hub) + "persistence:\n  path: %s/roost.db\n" % d
        b = Broker(config_text=text)
        b.start()
        c = b.client("spool-pub")
        expected = ["k%02d" % i for i in range(8)]
        for p in expected:
            c.publish("home-assistant/spool", p.encode(), qos=1)   # PUBACK: stored
        b.stop(sig=signal.SIGKILL, check=False)
        ha.come_back()
        b = Broker(config_text=text)
        b.start()
        self.addCleanup(b.stop)
        self.broker = b
        b.wait_for_log(r"8 events spooled before the restart", WAIT)
        evs = ha.wait_events(8, WAIT)
        self.assert_in_order(evs, expected)

    def test_05c_log_says_what_happened_to_waiting_events(self):
        """Honest messages (issue 9): one event waited through an outage;
        the recovery line counts it, and the stop line says where the
        queued ones go, for a durable and for a memory-only spool."""
        ha = self.fake_ha()
        ha.go_down()
        b = self.roost(ha, retry_max=1)
        mark = b.log_mark()
        self.publisher(b).publish("home-assistant/one", b"waiting", qos=1)
        b.wait_for_log(r"is not reachable .*holding events in the spool \(1 queued\)", WAIT,
                       since=mark)
        ha.come_back()
        ha.wait_events(1, WAIT)
        b.wait_for_log(r"accepts events again: 1 event held meanwhile, 0 left to deliver", WAIT,
                       since=mark)
        ha.go_down()
        self.publisher(b, "pub2").publish("home-assistant/one", b"left", qos=1)
        b.wait_for_log(r"is not reachable", WAIT, since=mark)
        b.stop()
        self.assertIsNotNone(b.find_log(r"1 delivered, 1 queued \(kept in the store for the next "
                                        r"start\)"), b.tail())
        self.assertIsNone(b.find_log(r"not kept across restarts"))
        # Without the store the same events are lost, and the line says so.
        hub = {"url": ha.url(), "token": "test-token", "retry_max": 1, "timeout": 2}
        m = Broker(config_text=config_text(hub) + "persistence:\n  enabled: false\n")
        m.start()
        self.addCleanup(m.stop)
        m.client("pub3").publish("home-assistant/one", b"gone", qos=1)
        m.wait_for_log(r"is not reachable", WAIT)
        m.stop()
        self.assertIsNotNone(m.find_log(r"0 delivered, 1 queued \(lost: persistence is off\)"),
                             m.tail())

    def test_06_spool_overflow_drops_the_oldest(self):
        ha = self.fake_ha()
        ha.go_down()
        b = self.roost(ha, spool_max=5)
        c = self.publisher(b)
        for i in range(12):
            c.publish("home-assistant/seq", ("e%02d" % i).encode(), qos=1)
        b.wait_for_log(r"warning hub spool full \(5 events, hub\.spool_max\): dropped the oldest "
                       r"event; 4 dropped so far", WAIT)
        ha.come_back()
        evs = ha.wait_events(5, WAIT)
        self.assert_in_order(evs, ["e%02d" % i for i in range(7, 12)])
        self.assert_no_more(ha, len(evs))
        b.stop()
        self.assertIsNotNone(b.find_log(r"Home Assistant: 5 delivered, 0 queued .*, 7 dropped "
                                        r"\(spool full or no memory\)"), b.tail())

    def test_07_silent_ha_times_out_and_the_event_is_retried(self):
        ha = self.fake_ha()
        ha.set_mode("silent")
        b = self.roost(ha, timeout=1)
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        b.wait_for_log(r"not reachable \(no answer within hub\.timeout\)", WAIT)
        ha.set_mode("ok")
        evs = ha.wait_events(1, WAIT)
        self.assertEqual(evs[0].data, SWITCH_ON)
        self.assert_no_more(ha, 1)

    def test_07b_keepalive_closed_under_a_request_is_retried_at_once(self):
        ha = self.fake_ha()
        b = self.roost(ha)
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "first")
        ha.wait_events(1, WAIT)                # the connection is now kept open
        ha.set_mode("drop_once")
        t0 = time.monotonic()
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "second")
        evs = ha.wait_events(2, WAIT)
        self.assertEqual(evs[1].data["payload"], "second")
        self.assertLess(time.monotonic() - t0, 0.9, "retried without the 1 s backoff")
        self.assertIsNone(b.find_log(r"not reachable"), b.tail())
        self.assert_no_more(ha, 2)

    def test_08_unauthorized_is_a_configuration_error_and_events_wait(self):
        ha = self.fake_ha(token="the-right-token")
        b = self.roost(ha, token="a-wrong-token")
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        b.wait_for_log(r"error Home Assistant refused the token \(401\): check hub\.token in "
                       r"\S+roost\.yaml .*long-lived access token", WAIT)
        self.assertEqual(ha.snapshot(), [])
        ha.token = "a-wrong-token"                # "the user fixed it on HA's side"
        evs = ha.wait_events(1, WAIT)
        self.assertEqual(evs[0].data, SWITCH_ON)
        b.wait_for_log(r"accepts events again", WAIT)

    def test_09_an_event_ha_rejects_is_dropped_and_the_next_goes_on(self):
        ha = self.fake_ha()
        ha.reject(lambda ev: ev.data["topic"].endswith("/bad"))
        b = self.roost(ha)
        c = self.publisher(b)
        c.publish("home-assistant/bad", b"x", qos=1)
        c.publish("home-assistant/good", b"y", qos=1)
        evs = ha.wait_events(1, WAIT)
        self.assertEqual(evs[0].data["topic"], "home-assistant/good")
        b.wait_for_log(r"rejected an event with 400 \(.*Event rejected by the test.*\): dropped it "
                       r"\(1 rejected so far\)", WAIT)
        self.assert_no_more(ha, 1)

    # -- https --------------------------------------------------------------------

    def tls_ha(self):
        tmp = tempfile.TemporaryDirectory(prefix="roost-tls-")
        self.addCleanup(tmp.cleanup)
        cert, key = make_cert(tmp.name)
        return self.fake_ha(tls=(cert, key)), cert

    def test_10_https_with_the_ca_file(self):
        ha, cert = self.tls_ha()
        b = self.roost(url=ha.url("localhost"), cafile=cert)   # name: SNI + host check
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        self.assertEqual(ha.wait_events(1, WAIT)[0].data, SWITCH_ON)
        b.stop()
        b2 = self.roost(url=ha.url(HOST), cafile=cert)          # address: IP SAN check
        mosquitto_pub(b2.port, "home-assistant/switch/1/on", "again")
        self.assertEqual(ha.wait_events(2, WAIT)[1].data["payload"], "again")

    def test_11_https_without_the_ca_is_refused(self):
        ha, cert = self.tls_ha()
        b = self.roost(url=ha.url("localhost"))
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        b.wait_for_log(r"TLS certificate of localhost not accepted: self[- ]signed certificate",
                       WAIT)
        self.assert_no_more(ha, 0)

    def test_12_https_verify_tls_false(self):
        ha, cert = self.tls_ha()
        b = self.roost(url=ha.url("localhost"), verify_tls=False)
        b.wait_for_log(r"warning hub\.verify_tls is false", WAIT)
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        self.assertEqual(ha.wait_events(1, WAIT)[0].data, SWITCH_ON)

    # -- configuration ------------------------------------------------------------

    def run_bad_config(self, hub=None, mqtt=None):
        with tempfile.TemporaryDirectory(prefix="roost-bad-") as d:
            path = os.path.join(d, "roost.yaml")
            with open(path, "w") as f:
                f.write(config_text(hub, mqtt))
            p = subprocess.run([roost_bin(), "-c", path], cwd=d, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=WAIT)
        err = p.stderr.decode("utf-8", "replace")
        # The failure path frees what start() built (ASan builds check leaks).
        self.assertIsNone(SANITIZER_RE.search(err), err)
        return p.returncode, err

    def test_13_bad_hub_configuration_stops_the_daemon(self):
        rc, err = self.run_bad_config(hub={"url": "http://127.0.0.1:9"})
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"hub\.url is set but hub\.token is missing")
        rc, err = self.run_bad_config(hub={"url": "ftp://ha.local", "token": "t"})
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"hub\.url 'ftp://ha\.local': the scheme must be http or https")
        rc, err = self.run_bad_config(hub={"url": "https://ha.local", "token": "t",
                                           "cafile": "/nonexistent/ca.pem"})
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"hub\.cafile '/nonexistent/ca\.pem': cannot load CA certificates")
        rc, err = self.run_bad_config(mqtt={"topics": ["home-assistant/#", "bad/#/filter"]})
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"mqtt\.topics: 'bad/#/filter' is not a valid topic filter")
        rc, err = self.run_bad_config(mqtt={"broker": "127.0.0.1", "password": "p"})
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"mqtt\.password is set without mqtt\.username")

    def test_14_without_hub_url_events_are_fired_not_delivered(self):
        b = self.roost()
        b.wait_for_log(r"hub connector: 1 topic filter on the embedded broker fire "
                       r"mqtt_message_received events; no hub\.url", WAIT)
        mosquitto_pub(b.port, "home-assistant/switch/1/on", "Switch is ON")
        time.sleep(0.2)
        b.stop()
        self.assertIsNotNone(b.find_log(r"hub connector: 1 events fired"), b.tail())

    # -- 5. external broker ---------------------------------------------------------

    def mosquitto(self, **kw):
        m = Mosquitto(**kw)
        self.addCleanup(m.close)
        return m.start()

    def test_15_external_broker_reconnects_and_resubscribes(self):
        mosq = self.mosquitto()
        ha = self.fake_ha()
        b = self.roost(ha, mqtt={"broker": HOST, "port": mosq.port, "keepalive": 5,
                                 "client_id": "roost-hub-test"})
        b.wait_for_log(r"mqtt: connected to broker 127\.0\.0\.1:%d as roost-hub-test, subscribed "
                       r"to 1 of 1 topic filters" % mosq.port, WAIT)
        mosquitto_pub(mosq.port, "home-assistant/switch/1/on", "Switch is ON")
        self.assertEqual(ha.wait_events(1, WAIT)[0].data, SWITCH_ON)
        mosquitto_pub(mosq.port, "home-assistant/q2", "two", qos=2)
        mosquitto_pub(mosq.port, "home-assistant/q1", "one", qos=1, retain=True)
        evs = ha.wait_events(3, WAIT)
        self.assertEqual(evs[1].data, {"topic": "home-assistant/q2", "payload": "two", "qos": 2,
                                       "retain": False})
        self.assertEqual(evs[2].data, {"topic": "home-assistant/q1", "payload": "one", "qos": 1,
                                       "retain": False})   # live delivery: retain flag cleared
        # The embedded broker is not the source in this mode.
        mosquitto_pub(b.port, "home-assistant/embedded", "not me")
        self.assert_no_more(ha, 3)
        # Kill the broker, bring it back on the same port: reconnect + resubscribe.
        mark = b.log_mark()
        mosq.kill()
        b.wait_for_log(r"mqtt: lost the connection to broker 127\.0\.0\.1:%d" % mosq.port, WAIT,
                       since=mark)
        mosq.start()
        b.wait_for_log(r"mqtt: reconnected to broker 127\.0\.0\.1:%d" % mosq.port, 15,
                       since=mark)
        mosquitto_pub(mosq.port, "home-assistant/switch/1/on", "back")
        evs = ha.wait_events(4, WAIT)
        # (mosquitto was killed: its retained q1 is gone, nothing else comes)
        self.assertEqual(evs[3].data, dict(SWITCH_ON, payload="back"))
        self.assert_no_more(ha, 4)

    def test_16_external_broker_refusing_the_connection(self):
        mosq = self.mosquitto(allow_anonymous=False)
        b = self.roost(mqtt={"broker": HOST, "port": mosq.port})
        b.wait_for_log(r"error mqtt: broker 127\.0\.0\.1:%d refused the connection \(CONNACK 5, "
                       r"not authorised" % mosq.port, WAIT)
        b.wait_for_log(r"retrying in 60 s", WAIT)


if __name__ == "__main__":
    main()

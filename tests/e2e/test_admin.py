"""The JSON endpoints behind the status page (connector/http_admin.c): is my
device connected, what is retained on this topic, clear a stale retained
message, disconnect a client, remove a session; and the checks that keep a
web page elsewhere from using them (Host, Origin, simple-form types).
"""
import http.client
import json
import unittest

import roostlib
from roostlib import HOST, Broker, Closed, Will


def admin_yaml(token=None):
    extra = "http:\n  port: 0\n  bind: %s\n" % HOST
    if token:
        extra += "  token: %s\n" % json.dumps(token)
    extra += "persistence:\n  enabled: false\n"
    return roostlib.roost_yaml(log_level="info", extra=extra)


@roostlib.roost_only("roost's HTTP API")
class AdminTest(unittest.TestCase):
    def start(self, token=None):
        b = Broker(config_text=admin_yaml(token))
        b.start()
        self.addCleanup(b.stop)
        self.http_port = int(b.wait_for_log(r"http listening on 127\.0\.0\.1:(\d+)").group(1))
        return b

    def call(self, method, path, headers=None, token=None):
        c = http.client.HTTPConnection(HOST, self.http_port, timeout=5)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        c.request(method, path, headers=h)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, json.loads(body) if body else None

    def clients(self):
        status, body = self.call("GET", "/api/clients")
        self.assertEqual(status, 200)
        return {c["client_id"]: c for c in body}

    def test_clients_disconnect_and_session_removal(self):
        b = self.start()
        watch = b.client("watch")
        watch.subscribe([("wills/#", 0)])
        dev = b.client("dev/1", clean=False, will=Will("wills/dev-1", b"gone"))
        dev.subscribe([("cmd/dev-1", 1)])
        cl = self.clients()
        self.assertTrue(cl["dev/1"]["connected"])
        self.assertEqual(cl["dev/1"]["protocol_version"], "3.1.1")
        self.assertTrue(cl["dev/1"]["persistent"])
        self.assertEqual(cl["dev/1"]["subscriptions"], 1)
        self.assertRegex(cl["dev/1"]["address"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(self.call("DELETE", "/api/sessions/dev%2F1")[0], 409)   # online
        # Like a network drop: the will is published, the session kept.
        self.assertEqual(self.call("POST", "/api/clients/dev%2F1/disconnect")[0], 200)
        watch.expect_publish(topic="wills/dev-1", payload=b"gone")
        with self.assertRaises(Closed):
            dev.recv_packet(timeout=3)
        cl = self.clients()
        self.assertFalse(cl["dev/1"]["connected"])
        self.assertEqual(self.call("POST", "/api/clients/dev%2F1/disconnect")[0], 404)
        self.assertEqual(self.call("DELETE", "/api/sessions/dev%2F1")[0], 200)
        self.assertNotIn("dev/1", self.clients())
        self.assertEqual(self.call("DELETE", "/api/sessions/dev%2F1")[0], 404)

    def test_retained_listed_and_cleared(self):
        b = self.start()
        p = b.client("p")
        p.publish("homeassistant/sensor/old/config", b'{"name": "old"}', qos=1, retain=True)
        p.publish("bin/x", b"\x00\xff", qos=1, retain=True)
        status, got = self.call("GET", "/api/retained?filter=homeassistant/%23")
        self.assertEqual(status, 200)
        self.assertEqual([(r["topic"], r["payload"]) for r in got],
                         [("homeassistant/sensor/old/config", '{"name": "old"}')])
        status, got = self.call("GET", "/api/retained")
        by_topic = {r["topic"]: r for r in got}
        self.assertEqual(by_topic["bin/x"]["payload_hex"], "00ff")
        self.assertEqual([t for t in by_topic if t.startswith("$")], [])   # '#' [MQTT-4.7.2-1]
        self.assertEqual(self.call("GET", "/api/retained?filter=a/%23/b")[0], 400)

        sub = b.client("sub")
        sub.subscribe([("homeassistant/#", 0)])
        sub.expect_publish(topic="homeassistant/sensor/old/config", retain=True)
        status, _ = self.call("DELETE", "/api/retained/homeassistant/sensor/old/config")
        self.assertEqual(status, 200)
        m = sub.expect_publish(topic="homeassistant/sensor/old/config")    # [MQTT-3.3.1-10]
        self.assertEqual(m.payload, b"")
        late = b.client("late")
        late.subscribe([("homeassistant/#", 0)])
        late.expect_no_publish(0.5)
        self.assertEqual(self.call("DELETE", "/api/retained/$SYS/broker/version")[0], 403)

    def test_status(self):
        b = self.start()
        b.client("a")
        b.client("b")
        status, st = self.call("GET", "/api/status")
        self.assertEqual(status, 200)
        self.assertEqual(st["clients_connected"], 2)
        self.assertGreaterEqual(st["uptime_seconds"], 0)

    def test_host_origin_and_form_checks(self):
        b = self.start(token="tok")
        self.assertEqual(self.call("GET", "/api/clients")[0], 401)
        self.assertEqual(self.call("GET", "/api/clients", token="tok")[0], 200)
        # DNS rebinding: a name that resolves here is not this server.
        self.assertEqual(self.call("GET", "/api/clients", {"Host": "evil.example:%d" % self.http_port},
                                   token="tok")[0], 403)
        self.assertEqual(self.call("GET", "/api/clients", {"Host": "localhost:%d" % self.http_port},
                                   token="tok")[0], 200)
        here = "http://%s:%d" % (HOST, self.http_port)
        self.assertEqual(self.call("GET", "/api/status", {"Origin": "http://evil.example"}, token="tok")[0], 403)
        self.assertEqual(self.call("GET", "/api/status", {"Origin": here}, token="tok")[0], 200)
        b.client("victim")
        self.assertEqual(self.call("POST", "/api/clients/victim/disconnect", {"Content-Type": "text/plain"},
                                   token="tok")[0], 415)
        self.assertTrue(self.clients_of(b)["victim"]["connected"])

    def clients_of(self, b):
        status, body = self.call("GET", "/api/clients", token="tok")
        return {c["client_id"]: c for c in body}


if __name__ == "__main__":
    roostlib.main()

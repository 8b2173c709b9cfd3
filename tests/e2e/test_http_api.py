#!/usr/bin/env python3
"""End-to-end: roost's HTTP API (connector/http_api.c) and the example
component (connector/mqtt_example.c).

Every test starts its own roost with `http: {port: 0}` (an ephemeral port, so
parallel tests never collide) and finds the port in the log line
"http listening on 127.0.0.1:PORT".  Clients are Python's http.client, a raw
socket for the server-sent event stream (chunked transfer decoded here, so
every read has a deadline), roostlib's byte-exact MQTT client, and Debian's
mosquitto_pub / mosquitto_sub.

  api        GET /api/, 404, 405, Content-Type
  publish    POST /api/services/mqtt/publish (and mqtt_send): delivered,
             qos and retain honoured; every bad request a 4xx JSON message
  auth       Bearer token; refusing to serve a non-loopback bind without one
  events     POST /api/events/<type>; GET /api/stream with restrict, ping,
             closed and slow clients
  example    mqtt_example: state from MQTT, GET /api/states/..., set_state
"""

import http.client
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

from roostlib import HOST, Broker, main, roost_yaml

WAIT = 5.0
SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
# mosquitto_sub's -d lines go through stdio: line-buffer them so the SUBACK
# line is seen when it is printed, not at exit.
STDBUF = [shutil.which("stdbuf"), "-oL"] if shutil.which("stdbuf") else []
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
MAX_BODY = 1024 * 1024
EXAMPLE_TOPIC = "home-assistant/mqtt_example"
EXAMPLE_ENTITY = "mqtt_example.state"


def http_yaml(port=0, bind=HOST, token=None, extra="", http=None):
    out = ["http:", "  port: %d" % port, "  bind: %s" % bind]
    if token is not None:
        out.append("  token: %s" % json.dumps(token))
    out += ["  %s: %s" % kv for kv in (http or {}).items()]
    return roost_yaml(extra="\n".join(out) + "\n" + extra)


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:200])


class Api:
    """Requests to roost's HTTP API, one connection each, bounded."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, headers=None, token=None, timeout=WAIT):
        hdrs = {}
        tok = self.token if token is None else token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        hdrs.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def publish(self, topic, payload=None, qos=None, retain=None, path="publish"):
        data = {"topic": topic}
        for k, v in (("payload", payload), ("qos", qos), ("retain", retain)):
            if v is not None:
                data[k] = v
        return self.post("/api/services/mqtt/" + path, data)


def raw_request(port, head, timeout=WAIT):
    """Send bytes, read one answer (headers and a Content-Length body)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(head)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed without an answer: %r" % data)
            data += chunk
        top, body = data.split(b"\r\n\r\n", 1)
        lines = top.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        # HTTP/1.0 without keep-alive: the body ends where the connection does.
        n = int(headers.get("content-length", str(1 << 30)))
        while len(body) < n:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return Reply(int(lines[0].split()[1]), headers, body[:n])
    finally:
        s.close()


def closed_within(sock, seconds):
    """Seconds until roost closed sock (reading and dropping what it sends),
    or None when it is still open after `seconds`."""
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except socket.timeout:
            return None
        except ConnectionError:
            return time.monotonic() - start
    return None


class EventStream:
    """GET /api/stream on a raw socket: headers, then chunked transfer
    decoded incrementally, then server-sent events split on blank lines.
    Every read has a deadline."""

    def __init__(self, port, query="", token=None, rcvbuf=None, timeout=WAIT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        self.sock.sendall(("GET /api/stream%s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
                           % (query, HOST, auth)).encode())
        self.raw = b""     # bytes from the socket not decoded yet
        self.data = b""    # decoded body bytes not consumed yet
        self.eof = False
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            self._recv(deadline)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("nothing more from /api/stream within the timeout "
                                 "(undecoded: %r, decoded: %r)" % (self.raw[-200:], self.data[-200:]))
        if self.eof:
            raise ConnectionError("stream closed by roost")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        if not chunk:
            self.eof = True
            raise ConnectionError("stream closed by roost")
        self.raw += chunk

    def _decode(self):
        if not self.chunked:
            self.data += self.raw
            self.raw = b""
            return
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            assert rest[size:size + 2] == b"\r\n", "bad chunk framing"
            self.data += rest[:size]
            self.raw = rest[size + 2:]
            if size == 0:
                self.eof = True
                return

    def next_message(self, timeout=WAIT):
        """The next server-sent event's data text ("ping" or JSON)."""
        deadline = time.monotonic() + timeout
        while True:
            self._decode()
            if b"\n\n" in self.data:
                msg, self.data = self.data.split(b"\n\n", 1)
                lines = msg.decode("utf-8").split("\n")
                assert all(l.startswith("data: ") for l in lines), "not SSE data lines: %r" % msg
                return "\n".join(l[6:] for l in lines)
            self._recv(deadline)

    def next_event(self, timeout=WAIT):
        """The next event (pings skipped), parsed."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.next_message(max(0.01, deadline - time.monotonic()))
            if m != "ping":
                return json.loads(m)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class MosquittoSub:
    """mosquitto_sub -v on one topic; ready() returns once SUBACK arrived."""

    def __init__(self, port, topic, count=1, qos=0):
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(
            STDBUF + [SUB, "-d", "-h", HOST, "-p", str(port), "-t", topic, "-q", str(qos),
                      "-C", str(count), "-W", "5", "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _next(self, deadline):
        try:
            return self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("mosquitto_sub said nothing in time")

    def ready(self):
        deadline = time.monotonic() + WAIT
        while True:
            line = self._next(deadline)
            assert line is not None, "mosquitto_sub exited before SUBACK"
            if "received SUBACK" in line:
                return

    def messages(self):
        """The "topic payload" lines, once mosquitto_sub has exited."""
        out = []
        deadline = time.monotonic() + 10
        while True:
            line = self._next(deadline)
            if line is None:
                break
            if not line.startswith("Client ") and not line.startswith("Subscribed"):
                out.append(line)
        rc = self.proc.wait(timeout=5)
        assert rc == 0, "mosquitto_sub exit %d (timed out?); lines: %r" % (rc, out)
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc.stdout.close()


# --------------------------------------------------------------------------
# Base
# --------------------------------------------------------------------------

class HttpTestCase(unittest.TestCase):
    """One roost per test with the HTTP API on an ephemeral loopback port."""

    token = None

    def setUp(self):
        self.broker, self.api = self.start_roost(token=self.token)

    def start_roost(self, **kw):
        b = Broker(config_text=http_yaml(**kw))
        b.start()
        self.addCleanup(b.stop)
        m = b.wait_for_log(r"http listening on (?:127\.0\.0\.1|0\.0\.0\.0):(\d+)", WAIT,
                           what="the HTTP API's port")
        return b, Api(int(m.group(1)), kw.get("token"))

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        b = getattr(self, "broker", None)
        if result and len(result.failures) + len(result.errors) > before and b:
            import sys
            sys.stderr.write("\n%s: %s\n" % (self.id(), b.tail(40)))
        return out

    def stream(self, query="", **kw):
        s = EventStream(self.api.port, query, token=self.api.token, **kw)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        # As Home Assistant: a ping first, so the client knows it is live.
        self.assertEqual(s.next_message(), "ping")
        return s

    def mqtt_sub(self, topic, **kw):
        s = MosquittoSub(self.broker.port, topic, **kw)
        self.addCleanup(s.kill)
        s.ready()
        return s

    def assert_message(self, reply, status, text=None):
        """reply has `status` and a JSON {"message"} body (containing text)."""
        self.assertEqual(reply.status, status, reply)
        self.assertEqual(reply.headers.get("content-type"), "application/json", reply)
        body = reply.json()
        self.assertIsInstance(body, dict, reply)
        self.assertIsInstance(body.get("message"), str, reply)
        if text is not None:
            self.assertIn(text, body["message"])
        return body["message"]


# --------------------------------------------------------------------------
# api: status, 404, 405
# --------------------------------------------------------------------------

class ApiTest(HttpTestCase):

    def test_api_status(self):
        r = self.api.get("/api/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"message": "API running."})

    def test_unknown_path_404(self):
        for path in ("/nope", "/api", "/api/nope", "/api/services/mqtt/nope",
                     "/api/states/unknown.entity"):
            self.assert_message(self.api.get(path), 404, "Not found")

    def test_wrong_method_405(self):
        r = self.api.get("/api/services/mqtt/publish")
        self.assert_message(r, 405)
        self.assertEqual(r.headers.get("allow"), "POST")
        self.assert_message(self.api.post("/api/", {}), 405)
        self.assert_message(self.api.call("PUT", "/api/stream", "x"), 405)
        self.assert_message(self.api.call("DELETE", "/api/events/x"), 405)


# --------------------------------------------------------------------------
# publish
# --------------------------------------------------------------------------

class PublishTest(HttpTestCase):

    def test_publish_reaches_mosquitto_sub(self):
        sub = self.mqtt_sub("http/test/topic")
        r = self.api.publish("http/test/topic", "hello from http")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        # Home Assistant answers a service call with the states it changed.
        self.assertEqual(r.json(), [])
        self.assertEqual(sub.messages(), ["http/test/topic hello from http"])

    def test_mqtt_send_alias(self):
        sub = self.mqtt_sub("http/alias")
        r = self.api.publish("http/alias", "via mqtt_send", path="mqtt_send")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sub.messages(), ["http/alias via mqtt_send"])

    def test_publish_qos_honoured(self):
        c = self.broker.client("qos-watcher")
        self.assertEqual(c.subscribe([("http/qos", 2)]), [2])
        for qos in (0, 1, 2):
            r = self.api.publish("http/qos", "q%d" % qos, qos=qos)
            self.assertEqual(r.status, 200, r)
            c.expect_publish(topic="http/qos", payload="q%d" % qos, qos=qos, retain=False)
        # Default qos is 0.
        self.api.publish("http/qos", "default")
        c.expect_publish(topic="http/qos", payload="default", qos=0)

    def test_publish_retain_honoured(self):
        self.assertEqual(self.api.publish("http/retained", "kept", qos=1, retain=True).status, 200)
        self.assertEqual(self.api.publish("http/not_retained", "gone").status, 200)
        c = self.broker.client("late")
        c.subscribe([("http/retained", 1), ("http/not_retained", 1)])
        # [MQTT-3.3.1-6] a retained message sent on subscribe carries RETAIN 1.
        c.expect_publish(topic="http/retained", payload="kept", qos=1, retain=True)
        c.expect_no_publish(0.3)

    def test_publish_defaults_and_number_payload(self):
        c = self.broker.client("watcher")
        c.subscribe([("http/#", 0)])
        self.assertEqual(self.api.post("/api/services/mqtt/publish",
                                       {"topic": "http/empty"}).status, 200)
        c.expect_publish(topic="http/empty", payload=b"", qos=0, retain=False)
        # A number payload is sent as its text (Home Assistant's cv.string).
        self.assertEqual(self.api.publish("http/num", 21.5).status, 200)
        c.expect_publish(topic="http/num", payload="21.5")
        self.assertEqual(self.api.publish("http/utf8", "Küche ☀").status, 200)
        c.expect_publish(topic="http/utf8", payload="Küche ☀".encode())

    def test_bad_publish_requests_get_400_json(self):
        p = "/api/services/mqtt/publish"
        cases = [
            (b"{not json", "Data should be valid JSON"),
            (b'{"topic": "a"} trailing', "Data should be valid JSON"),
            (b'["a", "b"]', "Data should be a JSON object"),
            (b'"a/b"', "Data should be a JSON object"),
            (b"", "topic is required"),
            (b'{"payload": "x"}', "topic is required"),
            (b'{"topic": 7}', "topic must be a string"),
            (b'{"topic": ""}', "not a valid MQTT topic"),
            (b'{"topic": "a/#"}', "not a valid MQTT topic"),
            (b'{"topic": "a/+/b"}', "not a valid MQTT topic"),
            (b'{"topic": "#"}', "not a valid MQTT topic"),
            (b'{"topic": "a\xff"}', "not a valid MQTT topic"),
            (b'{"topic": "t", "qos": 3}', "qos must be"),
            (b'{"topic": "t", "qos": -1}', "qos must be"),
            (b'{"topic": "t", "qos": "1"}', "qos must be"),
            (b'{"topic": "t", "qos": 0.5}', "qos must be"),
            (b'{"topic": "t", "retain": "yes"}', "retain must be"),
            (b'{"topic": "t", "retain": 1}', "retain must be"),
            (b'{"topic": "t", "payload": true}', "payload must be a string"),
            (b'{"topic": "t", "payload": [1]}', "payload must be a string"),
            (b'{"topic": "t", "retian": true}', "extra key not allowed"),
            # JSON leaves duplicate keys undefined; cJSON would keep both.
            (b'{"topic": "t", "topic": "$SYS/x"}', "Data has the key 'topic' more than once"),
            (b'{"topic": "t", "qos": 0, "payload": "x", "qos": 2}', "key 'qos' more than once"),
        ]
        c = self.broker.client("nothing-expected")
        c.subscribe([("#", 0)])
        for body, text in cases:
            with self.subTest(body=body):
                self.assert_message(self.api.post(p, body), 400, text)
        # None of them published anything.
        c.expect_no_publish(0.3)

    def test_body_over_limit_413(self):
        big = json.dumps({"topic": "t", "payload": "x" * (2 * MAX_BODY)})
        self.assert_message(self.api.post("/api/services/mqtt/publish", big), 413, "too large")
        # Far over the limit, roost refuses on the Content-Length alone,
        # before reading the body, and in JSON (not evhttp's HTML page).
        r = raw_request(self.api.port, b"POST /api/services/mqtt/publish HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 100000000\r\n\r\n")
        self.assert_message(r, 413, "Request body too large (limit 1048576 bytes)")
        # The server is still fine.
        self.assertEqual(self.api.get("/api/").status, 200)


# --------------------------------------------------------------------------
# auth
# --------------------------------------------------------------------------

class TokenTest(HttpTestCase):
    token = "s3cret-token-for-tests"

    def test_token_required_even_on_loopback(self):
        for tok in ("", "wrong", self.token + "x", self.token[:-1]):
            with self.subTest(token=tok):
                r = self.api.get("/api/", token=tok)  # "": no Authorization header
                self.assertEqual(r.status, 401, r)
                self.assertEqual(r.json(), {"message": "Unauthorized"})
        r = self.api.get("/api/", headers={"Authorization": "Basic " + self.token})
        self.assertEqual(r.status, 401)
        self.assertEqual(self.api.get("/api/").json(), {"message": "API running."})

    def test_token_guards_every_route(self):
        anon = Api(self.api.port)
        for method, path in (("POST", "/api/services/mqtt/publish"), ("POST", "/api/events/x"),
                             ("GET", "/api/stream"), ("GET", "/api/states/" + EXAMPLE_ENTITY),
                             ("POST", "/api/services/mqtt_example/set_state"),
                             ("GET", "/unknown")):
            with self.subTest(path=path):
                self.assert_message(anon.call(method, path, "{}"), 401, "Unauthorized")
        c = self.broker.client("w")
        c.subscribe([("tok/t", 0)])
        self.assertEqual(self.api.publish("tok/t", "with token").status, 200)
        c.expect_publish(topic="tok/t", payload="with token")
        s = self.stream()
        self.api.post("/api/events/authorised")
        self.assertEqual(s.next_event()["event_type"], "authorised")


class BindTest(unittest.TestCase):

    def test_non_loopback_bind_without_token_refuses_to_start(self):
        b = Broker(config_text=http_yaml(bind="0.0.0.0"))
        b.start()   # the MQTT listener opens first
        try:
            b.wait_for_log(r"http: .*0\.0\.0\.0.* not a loopback address.*http\.token", WAIT,
                           what="the refusal")
            rc = b.proc.wait(timeout=10)
        finally:
            rc = b.stop(check=False)
        self.assertNotEqual(rc, 0)
        self.assertIsNotNone(b.find_log(r"component http_api failed to start"))
        self.assertEqual(b.sanitizer_lines(), [])

    def test_non_loopback_bind_with_token_starts(self):
        b = Broker(config_text=http_yaml(bind="0.0.0.0", token="tok"))
        b.start()
        self.addCleanup(b.stop)
        m = b.wait_for_log(r"http listening on 0\.0\.0\.0:(\d+)", WAIT)
        api = Api(int(m.group(1)), "tok")
        self.assertEqual(api.get("/api/").status, 200)
        self.assertEqual(api.get("/api/", token="nope").status, 401)

    def test_port_in_use_broker_keeps_serving_mqtt(self):
        # The HTTP API is optional (component.h): a taken port is logged
        # with the key to change, and MQTT is served without the API.
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        b = Broker(config_text=http_yaml(port=port))
        b.start()
        self.addCleanup(b.stop)
        b.wait_for_log(r"http\.port %d is in use: set http\.port to another port or -1 to "
                       r"turn the HTTP API off" % port, WAIT)
        b.wait_for_log(r"component http_api could not start .*roost runs without it", WAIT)
        # The components after it start, without its routes.
        b.wait_for_log(r"mqtt_example: .*no HTTP API", WAIT)
        c = b.client("still-served")
        c.subscribe([("port/taken", 1)])
        c.publish("port/taken", "mqtt works", qos=1)
        c.expect_publish(topic="port/taken", payload="mqtt works", qos=1)
        self.assertIsNone(b.find_log(r"http listening"))
        self.assertTrue(b.alive())

    def test_http_disabled(self):
        b = Broker(config_text=http_yaml(port=-1))
        b.start()
        self.addCleanup(b.stop)
        # The example component keeps working without routes.
        b.wait_for_log(r"mqtt_example: .*no HTTP API", WAIT)
        self.assertIsNone(b.find_log(r"http listening"))
        c = b.client("w")
        c.subscribe([(EXAMPLE_TOPIC, 0)])
        c.publish(EXAMPLE_TOPIC, "still works")
        c.expect_publish(topic=EXAMPLE_TOPIC, payload="still works")


# --------------------------------------------------------------------------
# events and the stream
# --------------------------------------------------------------------------

class EventTest(HttpTestCase):

    def test_fired_event_appears_on_stream(self):
        s = self.stream()
        self.assertEqual(s.headers.get("content-type"), "text/event-stream")
        r = self.api.post("/api/events/my_event", {"answer": 42, "who": "test"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"message": "Event my_event fired."})
        ev = s.next_event()
        self.assertEqual(set(ev), {"event_type", "data", "origin", "time_fired"})
        self.assertEqual(ev["event_type"], "my_event")
        self.assertEqual(ev["data"], {"answer": 42, "who": "test"})
        # Home Assistant marks events fired through its REST API as REMOTE.
        self.assertEqual(ev["origin"], "REMOTE")
        self.assertRegex(ev["time_fired"], TIME_RE)

    def test_event_without_body_has_empty_data(self):
        s = self.stream()
        self.assertEqual(self.api.post("/api/events/bare").status, 200)
        ev = s.next_event()
        self.assertEqual((ev["event_type"], ev["data"]), ("bare", {}))

    def test_stream_restrict(self):
        s = self.stream("?restrict=wanted,also_wanted")
        every = self.stream()
        for t in ("unwanted", "wanted", "wanted_not", "also_wanted"):
            self.assertEqual(self.api.post("/api/events/" + t).status, 200)
        self.assertEqual(s.next_event()["event_type"], "wanted")
        self.assertEqual(s.next_event()["event_type"], "also_wanted")
        self.assertEqual([every.next_event()["event_type"] for _ in range(4)],
                         ["unwanted", "wanted", "wanted_not", "also_wanted"])

    def test_bad_event_requests_get_400_json(self):
        cases = [
            ("/api/events/", b"", "invalid event type"),
            ("/api/events/a/b", b"", "invalid event type"),
            ("/api/events/a%20b", b"", "invalid event type"),
            ("/api/events/" + "e" * 65, b"", "invalid event type"),
            ("/api/events/ok", b"[1]", "Event data should be a JSON object"),
            ("/api/events/ok", b"{bad", "Event data should be valid JSON"),
        ]
        s = self.stream()
        for path, body, text in cases:
            with self.subTest(path=path, body=body):
                self.assert_message(self.api.post(path, body), 400, text)
        # Nothing was fired: the next event is the one fired now.
        self.api.post("/api/events/marker")
        self.assertEqual(s.next_event()["event_type"], "marker")

    def test_closed_stream_client_is_unregistered(self):
        s = self.stream()
        mark = self.broker.log_mark()
        s.close()
        self.broker.wait_for_log(r"http: event stream of 127\.0\.0\.1:\d+ closed", WAIT, since=mark)
        # Firing afterwards touches no freed stream (ASan would tell).
        for i in range(3):
            self.assertEqual(self.api.post("/api/events/after_close_%d" % i).status, 200)
        self.assertEqual(self.api.get("/api/").status, 200)

    def test_slow_stream_client_is_disconnected(self):
        # A client that never reads: once more than 1 MiB waits in roost's
        # output buffer for it, roost closes it rather than buffer on.
        s = self.stream(rcvbuf=4096)
        mark = self.broker.log_mark()
        pad = "x" * (256 * 1024)
        for i in range(64):      # at most 16 MiB: bounded even if it failed
            self.assertEqual(self.api.post("/api/events/flood", {"pad": pad, "i": i}).status, 200)
            if self.broker.find_log(r"closing event stream .*not reading", since=mark):
                break
        self.broker.wait_for_log(r"closing event stream of 127\.0\.0\.1:\d+: client is not reading",
                                 WAIT, since=mark)
        # The connection is gone: draining it ends in EOF, not in more events.
        deadline = time.monotonic() + 10
        with self.assertRaises(ConnectionError):
            while time.monotonic() < deadline:
                s.next_message(timeout=2)
        # And the API carries on for everyone else.
        other = self.stream()
        self.api.post("/api/events/still_alive")
        self.assertEqual(other.next_event()["event_type"], "still_alive")

    def test_shutdown_with_open_stream_and_idle_connection(self):
        s = self.stream()
        idle = http.client.HTTPConnection(HOST, self.api.port, timeout=WAIT)
        self.addCleanup(idle.close)
        idle.request("GET", "/api/")
        self.assertEqual(idle.getresponse().read(), b'{"message":"API running."}')
        # Kept alive, open, when roost stops: exit 0, nothing leaked.
        self.broker.stop()
        with self.assertRaises(ConnectionError):
            while True:
                s.next_message(timeout=WAIT)

    def test_mqtt_message_received_on_stream(self):
        """The hub connector fires one event per message on home-assistant/#."""
        s = self.stream("?restrict=mqtt_message_received")
        subprocess.run([PUB, "-h", HOST, "-p", str(self.broker.port), "-t",
                        "home-assistant/switch/1/on", "-m", "Switch is ON"],
                       check=True, timeout=WAIT)
        ev = s.next_event()
        self.assertEqual(ev["event_type"], "mqtt_message_received")
        self.assertEqual(ev["data"], {"topic": "home-assistant/switch/1/on",
                                      "payload": "Switch is ON", "qos": 0, "retain": False})
        self.assertRegex(ev["time_fired"], TIME_RE)


# --------------------------------------------------------------------------
# limits: everything bounded, before authentication too (issue 9)
# --------------------------------------------------------------------------

GET_API = b"GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n"


def keepalive_get(sock):
    """GET /api/ on an open keep-alive connection; the answer's status."""
    sock.sendall(GET_API)
    data = b""
    deadline = time.monotonic() + WAIT
    while not data.endswith(b'{"message":"API running."}'):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed: %r" % data)
        data += chunk
    return int(data.split()[1])


class LimitsTest(HttpTestCase):

    def start(self, **http):
        self.broker, self.api = self.start_roost(http=http, token=self.token)

    def setUp(self):
        pass  # each test starts its own roost with its limits

    def connect(self):
        s = socket.create_connection((HOST, self.api.port), timeout=WAIT)
        self.addCleanup(s.close)
        return s

    def test_65th_connection_refused_first_64_served(self):
        self.start()   # http.max_connections defaults to 64
        first = [self.connect() for _ in range(64)]
        # Each served once, so each is surely accepted before the 65th.
        for s in first:
            self.assertEqual(keepalive_get(s), 200)
        mark = self.broker.log_mark()
        extra = self.connect()
        self.assertIsNotNone(closed_within(extra, WAIT), "the 65th connection stayed open")
        self.broker.wait_for_log(r"http: closed a new connection from 127\.0\.0\.1:\d+: "
                                 r"http\.max_connections \(64\) are open; 1 refused so far",
                                 WAIT, since=mark)
        # The 64 are still served, on the same connections.
        for s in first:
            self.assertEqual(keepalive_get(s), 200)
        # One gone makes room for one more.
        first.pop().close()
        deadline = time.monotonic() + WAIT
        while True:
            s = self.connect()
            try:
                self.assertEqual(keepalive_get(s), 200)
                break
            except (ConnectionError, OSError):
                self.assertLess(time.monotonic(), deadline, "no room after a close")
                time.sleep(0.05)

    def test_slowloris_head_closed_after_header_timeout(self):
        self.start(header_timeout=1)
        other = self.connect()
        s = self.connect()
        mark = self.broker.log_mark()
        start = time.monotonic()
        closed = None
        # One byte every 0.2 s: never idle, never a whole head.
        for b in b"GET /api/ HTTP/1.1\r\nX-Slow: " + b"a" * 40:
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = time.monotonic() - start
                break
            if closed_within(s, 0.2) is not None:
                closed = time.monotonic() - start
                break
        self.assertIsNotNone(closed, "a head sent a byte at a time was never cut off")
        self.assertGreaterEqual(closed, 0.9)
        self.assertLess(closed, 3.0)
        self.broker.wait_for_log(r"request head not received within http\.header_timeout \(1 s\)",
                                 WAIT, since=mark)
        # Others are served meanwhile and after.
        self.assertEqual(keepalive_get(other), 200)

    def test_slow_body_closed_after_body_timeout(self):
        self.start(body_timeout=1)
        s = self.connect()
        s.sendall(b"POST /api/events/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        t = closed_within(s, 4)
        self.assertIsNotNone(t, "an unfinished body was waited for forever")
        self.assertGreaterEqual(t, 0.8)
        self.broker.wait_for_log(r"request body not received within http\.body_timeout \(1 s\)",
                                 WAIT)

    def test_idle_connection_closed_after_idle_timeout(self):
        self.start(idle_timeout=1)
        silent = self.connect()
        used = self.connect()
        self.assertEqual(keepalive_get(used), 200)
        for s in (silent, used):
            t = closed_within(s, 4)
            self.assertIsNotNone(t, "an idle connection stayed open")
        # A stream is quiet by nature: the idle timeout does not apply to it.
        stream = self.stream()
        time.sleep(1.5)
        self.api.post("/api/events/still_streaming")
        self.assertEqual(stream.next_event()["event_type"], "still_streaming")

    def test_17th_stream_refused(self):
        self.start()   # http.max_streams defaults to 16
        streams = [self.stream() for _ in range(16)]
        r = self.api.get("/api/stream")
        self.assert_message(r, 503, "Too many event streams (http.max_streams is 16)")
        self.broker.wait_for_log(r"http: refused an event stream: http\.max_streams \(16\)", WAIT)
        # Those open still get events; one closed makes room.
        self.api.post("/api/events/to_all")
        for st in streams:
            self.assertEqual(st.next_event()["event_type"], "to_all")
        mark = self.broker.log_mark()
        streams.pop().close()
        self.broker.wait_for_log(r"event stream of .* closed", WAIT, since=mark)
        self.stream()

    def test_every_refusal_is_json(self):
        self.start()
        cases = [
            (b"POST /api/events/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"1\r\na\r\n0\r\n\r\n", 411, "Content-Length"),
            (b"GET /api/ HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header line"),
            (b"GET /api/ HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "malformed header line"),
            (b"BREW /api/ HTTP/1.1\r\n\r\n", 501, "Method not implemented"),
            (b"GET /api/ HTTP/3.0\r\n\r\n", 505, "HTTP version not supported"),
            (b"GET /api/ HTTP/1.1\r\nExpect: nothing\r\n\r\n", 417, "100-continue"),
            (b"GET /api/ HTTP/1.1\r\nX: " + b"y" * (70 * 1024) + b"\r\n\r\n", 431, "too large"),
            (b"POST /api/events/x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
             400, "more than one Content-Length"),
        ]
        for raw, status, text in cases:
            with self.subTest(status=status, text=text):
                self.assert_message(raw_request(self.api.port, raw), status, text)
        # TRACE and CONNECT are known methods, answered as any wrong method.
        self.assert_message(raw_request(self.api.port, b"TRACE /api/ HTTP/1.1\r\n\r\n"), 405)
        # Pipelined: the request after an admitted one is judged on its own.
        s = self.connect()
        s.sendall(GET_API + b"GET /api/ HTTP/1.1\r\nExpect: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + WAIT
        while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"}"):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(4096)
            self.assertTrue(chunk, data)
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data)
        self.assertIn(b"HTTP/1.1 417 ", data)
        # A refused request with a known length keeps its connection.
        s.sendall(b"POST /api/events/x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n")
        s.sendall(b"z" * 2000000)
        data = b""
        while not data.endswith(b"bytes)\"}"):
            chunk = s.recv(4096)
            self.assertTrue(chunk, data)
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data)
        self.assertEqual(keepalive_get(s), 200)

    def test_connection_close_answer_arrives(self):
        # evhttp closes right after an answer to "Connection: close" or
        # HTTP/1.0: the whole answer must be on the wire first.
        self.start()
        for raw in (b"GET /api/ HTTP/1.1\r\nConnection: close\r\n\r\n",
                    b"GET /api/ HTTP/1.0\r\n\r\n"):
            with self.subTest(raw=raw):
                r = raw_request(self.api.port, raw)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.json(), {"message": "API running."})


class TokenGateTest(LimitsTest.__base__):
    token = "gate-token"

    def test_401_before_the_body_is_read(self):
        # Headers announcing 100 MB and no token: 401 at once, the body never
        # sent (roost would otherwise wait for it, or buffer it).
        r = raw_request(self.api.port, b"POST /api/services/mqtt/publish HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 100000000\r\n\r\n", timeout=2)
        self.assert_message(r, 401, "Unauthorized")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        # The same with the right token is admitted: roost waits for its body.
        s = socket.create_connection((HOST, self.api.port), timeout=WAIT)
        self.addCleanup(s.close)
        s.sendall(b"POST /api/services/mqtt/publish HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer gate-token\r\nContent-Length: 100\r\n\r\n")
        self.assertIsNone(closed_within(s, 0.3))
        # A wrong token with a body over the limit is still a 401, not a 413.
        r = raw_request(self.api.port, b"POST /api/events/x HTTP/1.1\r\nAuthorization: Bearer no\r\n"
                        b"Content-Length: 5000000\r\n\r\n", timeout=2)
        self.assert_message(r, 401, "Unauthorized")


# --------------------------------------------------------------------------
# the example component
# --------------------------------------------------------------------------

class ExampleTest(HttpTestCase):
    state_path = "/api/states/" + EXAMPLE_ENTITY
    service_path = "/api/services/mqtt_example/set_state"

    def assert_state(self, obj, value):
        self.assertEqual(set(obj), {"entity_id", "state", "attributes", "last_changed",
                                    "last_updated"})
        self.assertEqual(obj["entity_id"], EXAMPLE_ENTITY)
        self.assertEqual(obj["state"], value)
        self.assertEqual(obj["attributes"], {})
        self.assertRegex(obj["last_changed"], TIME_RE)
        self.assertRegex(obj["last_updated"], TIME_RE)

    def test_no_state_yet_404(self):
        self.assert_message(self.api.get(self.state_path), 404, "Entity not found.")

    def test_mqtt_message_becomes_state(self):
        s = self.stream("?restrict=state_changed")
        subprocess.run([PUB, "-h", HOST, "-p", str(self.broker.port), "-t", EXAMPLE_TOPIC,
                        "-m", "on"], check=True, timeout=WAIT)
        ev = s.next_event()
        self.assertEqual(ev["origin"], "LOCAL")
        self.assertEqual(ev["data"]["entity_id"], EXAMPLE_ENTITY)
        self.assertIsNone(ev["data"]["old_state"])
        self.assert_state(ev["data"]["new_state"], "on")
        r = self.api.get(self.state_path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assert_state(r.json(), "on")
        self.assertEqual(r.json(), ev["data"]["new_state"])

    def test_same_state_again_changes_nothing(self):
        s = self.stream("?restrict=state_changed")
        c = self.broker.client("pub")
        c.publish(EXAMPLE_TOPIC, "same")
        first = s.next_event()["data"]["new_state"]
        c.publish(EXAMPLE_TOPIC, "same")
        c.publish(EXAMPLE_TOPIC, "different")
        ev = s.next_event()["data"]
        self.assertEqual(ev["old_state"], first)
        self.assertEqual(ev["new_state"]["state"], "different")
        # A payload that is not a state (not UTF-8) is refused, loudly.
        mark = self.broker.log_mark()
        c.publish(EXAMPLE_TOPIC, b"\xff\xfe")
        self.broker.wait_for_log(r"mqtt_example: ignoring a payload", WAIT, since=mark)
        self.assertEqual(self.api.get(self.state_path).json()["state"], "different")

    def test_set_state_service(self):
        s = self.stream("?restrict=state_changed")
        sub = self.mqtt_sub(EXAMPLE_TOPIC)
        r = self.api.post(self.service_path, {"new_state": "from http"})
        self.assertEqual(r.status, 200, r)
        # The states that changed, as Home Assistant answers a service call.
        changed = r.json()
        self.assertEqual(len(changed), 1, changed)
        self.assert_state(changed[0], "from http")
        # It went through MQTT: a subscriber saw it ...
        self.assertEqual(sub.messages(), [EXAMPLE_TOPIC + " from http"])
        # ... and it came back as the state, with a state_changed event.
        ev = s.next_event()
        self.assertEqual(ev["event_type"], "state_changed")
        self.assertIsNone(ev["data"]["old_state"])
        self.assert_state(ev["data"]["new_state"], "from http")
        self.assertEqual(self.api.get(self.state_path).json()["state"], "from http")
        # The same state again: nothing changed, [] and no event.
        self.assertEqual(self.api.post(self.service_path, {"new_state": "from http"}).json(), [])
        self.api.post(self.service_path, {"new_state": "later"})
        ev = s.next_event()
        self.assertEqual(ev["data"]["old_state"]["state"], "from http")
        self.assertEqual(ev["data"]["new_state"]["state"], "later")

    def test_set_state_bad_requests(self):
        for body, text in ((b"{}", "new_state is required"),
                           (b'{"new_state": 5}', "new_state must be a string"),
                           (b"nope", "Data should be valid JSON"),
                           (json.dumps({"new_state": "x" * 256}).encode(), "longer than 255")):
            with self.subTest(body=body[:40]):
                self.assert_message(self.api.post(self.service_path, body), 400, text)
        self.assert_message(self.api.get(self.service_path), 405)
        self.assert_message(self.api.post(self.state_path, {}), 405)


if __name__ == "__main__":
    main()

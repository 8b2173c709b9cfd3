"""MQTT over WebSockets (MQTT 5.0 section 6, RFC 6455): a listener with
`protocol: websockets` (ws, and wss with a certfile) driven by real clients
(paho-mqtt transport="websockets", MQTT.js in Node and in Chromium) and by a
raw WebSocket client written here for the bad input; a ws client and a TCP
client see each other's messages, retained messages and wills. Also: the
plain MQTT port names TLS and HTTP clients pointed at it."""
import base64
import functools
import hashlib
import http.server
import json
import os
import queue
import select
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as paho

import roostlib
from roostlib import HOST, Broker, Closed, PacketTimeout

# Under AddressSanitizer freed memory sits in a quarantine and would count
# as growth in the slow-subscriber RSS bound (as in test_abuse, test_core).
os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HERE = os.path.dirname(os.path.abspath(__file__))
# MQTT.js: `npm install --prefix tests/e2e` (tools/install-deps) puts it here.
NODE_MODULES = os.environ.get("ROOST_NODE_MODULES") or os.path.join(HERE, "node_modules")
CHROMIUM = os.environ.get("ROOST_CHROMIUM", "/usr/bin/chromium")
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_yaml(limits=None, tls=None, anonymous="allow_anonymous: true\n"):
    """One MQTT and one websockets listener on loopback (MQTT first: roostlib
    takes the first port it logs as Broker.port)."""
    ws = "  - port: 0\n    bind: 127.0.0.1\n    protocol: websockets\n"
    if tls:
        ws += "    certfile: %s\n    keyfile: %s\n" % tls
    text = "listeners:\n  - port: 0\n    bind: 127.0.0.1\n" + ws + anonymous
    text += "http: {port: -1}\npersistence: {enabled: false}\nlog: {level: debug}\n"
    if limits:
        text += "limits:\n" + "".join("  %s: %s\n" % kv for kv in limits.items())
    return text


def start(test, **kw):
    b = Broker(config_text=ws_yaml(**kw))
    b.start()
    test.addCleanup(b.stop)
    m = b.wait_for_log(r"listening on 127\.0\.0\.1:(\d+) \(WebSockets, wss?\)")
    b.ws_port = int(m.group(1))
    return b


def frame(opcode, payload=b"", fin=True, mask=True, length=None):
    """A client frame (RFC 6455 5.2), masked unless told otherwise."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_request(path="/mqtt", protocol="mqtt", key=None, extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    proto = "Sec-WebSocket-Protocol: %s\r\n" % protocol if protocol else ""
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s\r\n"
            % (path, key, proto, extra)).encode(), key


class WsClient(roostlib.RawClient):
    """roostlib's packet-level client with a WebSocket layer: send() wraps
    MQTT bytes into masked binary frames, reads unwrap the server's frames
    (binary payloads into the MQTT buffer, control frames into .control)."""

    def __init__(self, port, timeout=5.0):
        super().__init__(port, timeout)
        self.wire = bytearray()
        self.control = []          # (opcode, payload) of control frames received
        self.response = None       # the HTTP response head

    def upgrade(self, path="/mqtt", protocol="mqtt", key=None, expect=101):
        req, key = upgrade_request(path, protocol, key)
        self.send_raw(req)
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in self.wire:
            self._recv_some(deadline)
        head, _, rest = bytes(self.wire).partition(b"\r\n\r\n")
        self.wire = bytearray(rest)
        self.response = head.decode("latin-1")
        status = int(self.response.split(" ")[1])
        if status != expect:
            raise AssertionError("upgrade: expected %d, got %s" % (expect, self.response))
        return key

    def header(self, name):
        for line in self.response.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == name.lower():
                return v.strip()
        return None

    def send_raw(self, data, allow_closed=False):
        super().send(data, allow_closed)

    def send(self, data, allow_closed=False):
        self.send_raw(frame(OP_BINARY, bytes(data)), allow_closed)

    def _recv_some(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise PacketTimeout("nothing from the broker within the timeout")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            raise Closed("connection reset by broker")
        if not chunk:
            raise Closed("connection closed by broker (EOF)")
        self.wire += chunk

    def _parse_frames(self):
        while len(self.wire) >= 2:
            b0, b1 = self.wire[0], self.wire[1]
            if b1 & 0x80:
                raise AssertionError("RFC 6455 5.1: the server masked a frame")
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.wire) < 4:
                    return
                n, off = struct.unpack(">H", self.wire[2:4])[0], 4
            elif n == 127:
                if len(self.wire) < 10:
                    return
                n, off = struct.unpack(">Q", self.wire[2:10])[0], 10
            if len(self.wire) < off + n:
                return
            payload = bytes(self.wire[off:off + n])
            del self.wire[:off + n]
            op = b0 & 0x0F
            if op in (OP_BINARY, OP_CONT):
                self.buf += payload
            elif op == OP_TEXT:
                raise AssertionError("[MQTT-6.0.0-1] the server sent a text frame")
            else:
                self.control.append((op, payload))

    def _fill(self, n, deadline):
        while True:
            self._parse_frames()
            if len(self.buf) >= n:
                return
            self._recv_some(deadline)

    def wait_control(self, opcode, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            self._parse_frames()
            for op, payload in self.control:
                if op == opcode:
                    return payload
            self._recv_some(deadline)

    def close_code(self, timeout=5.0):
        """The status code of the server's close frame, then its EOF."""
        payload = self.wait_control(OP_CLOSE, timeout)
        self.expect_eof(timeout)
        return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None

    def expect_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._recv_some(deadline)
        except Closed:
            self.close()


def ws_raw(b):
    c = WsClient(b.ws_port)
    b.clients.append(c)
    return c


def ws_client(b, client_id, **kw):
    c = ws_raw(b)
    c.upgrade()
    c.connect(client_id, **kw)
    return c


def paho_client(port, cid, transport="websockets", tls_ca=None, will=None, userdata=None):
    c = paho.Client(client_id=cid, protocol=paho.MQTTv311, transport=transport)
    if tls_ca:
        c.tls_set(ca_certs=tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if will:
        c.will_set(*will)
    c.connected = threading.Event()
    c.rc = None
    c.got = []
    c.got_ev = threading.Event()

    def on_connect(cl, u, f, rc):
        cl.rc = rc
        cl.connected.set()

    def on_message(cl, u, m):
        cl.got.append((m.topic, m.payload, m.retain))
        cl.got_ev.set()
    c.on_connect = on_connect
    c.on_message = on_message
    c.connect(HOST, port, 30)
    c.loop_start()
    assert c.connected.wait(10), "paho (%s) did not get a CONNACK" % transport
    return c


def wait_msgs(c, n, timeout=10):
    deadline = time.monotonic() + timeout
    while len(c.got) < n and time.monotonic() < deadline:
        c.got_ev.wait(0.1)
        c.got_ev.clear()
    return c.got


def stop_paho(c):
    c.disconnect()
    c.loop_stop()


class UpgradeTest(unittest.TestCase):
    def test_accept_value_from_rfc6455_example(self):
        """RFC 6455 1.3's key gives its accept value; the subprotocol mqtt
        is echoed [MQTT-6.0.0-4]; any request path is accepted."""
        b = start(self)
        c = ws_raw(b)
        c.upgrade(path="/any/path?x=1", key="dGhlIHNhbXBsZSBub25jZQ==")
        self.assertEqual(c.header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(c.header("Sec-WebSocket-Protocol"), "mqtt")
        c.connect("ws-1")
        c.disconnect()

    def test_mqttv31_subprotocol_accepted(self):
        b = start(self)
        c = ws_raw(b)
        c.upgrade(protocol="mqttv3.1")
        self.assertEqual(c.header("Sec-WebSocket-Protocol"), "mqttv3.1")
        c.connect("ws-31")

    def test_accept_value_computed_for_random_key(self):
        b = start(self)
        c = ws_raw(b)
        key = c.upgrade()
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        self.assertEqual(c.header("Sec-WebSocket-Accept"), want)

    def test_other_subprotocol_refused(self):
        """[MQTT-6.0.0-3] the subprotocol is mqtt; a client offering only
        others gets 400 and is closed, logged."""
        b = start(self)
        c = ws_raw(b)
        c.upgrade(protocol="chat, superchat", expect=400)
        c.expect_eof()
        b.wait_for_log(r"closed: WebSocket: WebSocket upgrade refused .*neither mqtt nor mqttv3\.1")

    def test_non_upgrade_http_requests_closed(self):
        """A plain GET and a POST on the websockets port: an HTTP error,
        closed, logged; a connected client is not disturbed."""
        b = start(self)
        keep = ws_client(b, "bystander")
        for req, status in ((b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
                            (b"POST /mqtt HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405")):
            c = ws_raw(b)
            c.send_raw(req)
            c.expect_eof()
            self.assertTrue(bytes(c.wire).startswith(b"HTTP/1.1 " + status), bytes(c.wire))
        b.wait_for_log(r"closed: WebSocket: WebSocket upgrade refused \(400 Bad Request\): not a WebSocket upgrade")
        b.wait_for_log(r"closed: WebSocket: WebSocket upgrade refused \(405")
        keep.ping()

    def test_oversize_request_header_closed(self):
        b = start(self)
        c = ws_raw(b)
        c.send_raw(b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 9000, allow_closed=True)
        c.expect_eof()
        self.assertTrue(bytes(c.wire).startswith(b"HTTP/1.1 431"), bytes(c.wire[:40]))
        b.wait_for_log(r"closed: WebSocket: .*larger than 8192 bytes")

    def test_upgrade_never_completed_hits_connect_timeout(self):
        """A client that starts the request and never finishes it is closed
        by limits.connect_timeout, like one that never sends CONNECT."""
        b = start(self, limits={"connect_timeout": 1})
        c = ws_raw(b)
        c.send_raw(b"GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\n")
        t0 = time.monotonic()
        c.expect_eof(timeout=5)
        self.assertLess(time.monotonic() - t0, 4)
        b.wait_for_log(r"closed: no CONNECT within 1 s")


class FrameTest(unittest.TestCase):
    def test_packet_spanning_frames_and_frames_holding_packets(self):
        """[MQTT-6.0.0-2] a CONNECT cut across a binary frame and two
        continuation frames (with a ping between them), and [MQTT-6.0.0-3]
        one frame holding SUBSCRIBE and PINGREQ together."""
        b = start(self)
        c = ws_raw(b)
        c.upgrade()
        pkt = roostlib.connect_packet("frag-1")
        c.send_raw(frame(OP_BINARY, pkt[:3], fin=False) + frame(OP_CONT, pkt[3:9], fin=False)
                   + frame(OP_PING, b"hi") + frame(OP_CONT, pkt[9:], fin=True))
        c.expect(roostlib.CONNACK)
        self.assertEqual(c.wait_control(OP_PONG), b"hi")
        c.send(roostlib.subscribe_packet(1, [("f/#", 0)]) + roostlib.PINGREQ_BYTES)
        c.expect(roostlib.SUBACK)
        c.expect(roostlib.PINGRESP)

    def test_text_frame_closes_connection(self):
        """[MQTT-6.0.0-1] a text frame: close frame 1003, closed, logged;
        its will is published (no DISCONNECT)."""
        b = start(self)
        watcher = b.client("watcher")
        watcher.subscribe("will/#")
        c = ws_raw(b)
        c.upgrade()
        c.connect("texty", will=roostlib.Will("will/texty", b"gone", 0, False))
        c.send_raw(frame(OP_TEXT, b"hello"))
        self.assertEqual(c.close_code(), 1003)
        b.wait_for_log(r"client texty .*closed: WebSocket: text frame received.*\[MQTT-6\.0\.0-1\]")
        p = watcher.recv_publish()
        self.assertEqual((p.topic, p.payload), ("will/texty", b"gone"))

    def test_unmasked_client_frame_closes_connection(self):
        """RFC 6455 5.1: a client frame must be masked; close code 1002."""
        b = start(self)
        c = ws_raw(b)
        c.upgrade()
        c.send_raw(frame(OP_BINARY, roostlib.connect_packet("bare"), mask=False))
        self.assertEqual(c.close_code(), 1002)
        b.wait_for_log(r"closed: WebSocket: WebSocket protocol error \(close code 1002\): an unmasked client frame")

    def test_oversize_frame_closes_connection(self):
        """A frame longer than limits.max_packet_size plus the fixed header:
        close code 1009 (wslay decides at the frame's first payload bytes,
        before buffering any of it)."""
        b = start(self, limits={"max_packet_size": 1024})
        c = ws_client(b, "big")
        c.send_raw(frame(OP_BINARY, b"\x30" * 5000), allow_closed=True)
        self.assertEqual(c.close_code(), 1009)
        b.wait_for_log(r"client big .*closed: WebSocket: frame larger than 1029 bytes")

    def test_close_frame_answered_and_closed(self):
        b = start(self)
        c = ws_client(b, "closer")
        c.send_raw(frame(OP_CLOSE, struct.pack(">H", 1000)))
        self.assertEqual(c.close_code(), 1000)
        b.wait_for_log(r"client closer .*closed: WebSocket: close frame received \(code 1000\)")

    def test_ws_subscriber_that_stops_reading_is_cut_off(self):
        """The slow-client rule holds through the WebSocket layer: unsent
        output stays where the connection measures it (the socket's own
        buffer under the filter is bounded), so a ws subscriber that stops
        reading is marked slow, then closed, and the broker does not grow."""
        b = start(self, limits={"slow_client_timeout": 2})
        lazy = ws_raw(b)
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.upgrade()
        lazy.connect("lazy-ws", keepalive=0)
        lazy.subscribe(("fire/#", 0))                 # then never read again
        pub = b.client("firehose")
        payload = b"x" * 8192
        before = roostlib.rss_kb(b.proc.pid)
        for i in range(2000):                         # 16 MB at QoS 0
            pub.publish("fire/hose", payload, wait=False)
        pub.ping(timeout=30)
        b.wait_for_log(r"client lazy-ws .* is not reading", timeout=20)
        for i in range(30):                           # keep the pressure on past the timeout
            pub.publish("fire/hose", payload)
            time.sleep(0.1)
        b.wait_for_log(r"client lazy-ws .*closed: not reading", timeout=10)
        grown = roostlib.rss_kb(b.proc.pid) - before
        self.assertLess(grown, 64 * 1024, "broker RSS grew by %d KiB for a ws client that does not read" % grown)
        pub.ping()

    def test_bad_client_does_not_disturb_others(self):
        b = start(self)
        keep = ws_client(b, "keeper")
        keep.subscribe("k/#")
        bad = ws_client(b, "bad")
        bad.send_raw(frame(OP_TEXT, b"x"))
        bad.close_code()
        tcp = b.client("tcp-pub")
        tcp.publish("k/1", b"still here")
        self.assertEqual(keep.recv_publish().payload, b"still here")


class RealClientTest(unittest.TestCase):
    def test_paho_ws_and_tcp_see_each_other(self):
        """[MQTT-6.0.0-2] paho-mqtt over WebSockets and a TCP client: each
        receives the other's messages, and a retained message set over TCP
        reaches a later ws subscriber."""
        b = start(self)
        tcp = b.client("tcp-1")
        tcp.subscribe(("x/from-ws", 1))
        tcp.publish("x/retained", b"kept", retain=True)
        ws = paho_client(b.ws_port, "paho-ws")
        self.addCleanup(stop_paho, ws)
        ws.subscribe("x/#", 1)
        got = wait_msgs(ws, 1)
        self.assertEqual(got[0], ("x/retained", b"kept", True))
        ws.publish("x/from-ws", b"w" * 70000, qos=1)   # spans many frames' worth
        p = tcp.recv_publish()
        self.assertEqual((p.topic, len(p.payload)), ("x/from-ws", 70000))
        tcp.publish("x/from-tcp", b"t")
        got = wait_msgs(ws, 3)
        self.assertIn(("x/from-tcp", b"t", False), got)

    def test_will_of_ws_client_reaches_tcp_and_back(self):
        """[MQTT-3.1.2-8] a ws client's will reaches a TCP subscriber, and a
        TCP client's will reaches a ws subscriber."""
        b = start(self)
        tcp = b.client("tcp-w")
        tcp.subscribe("w/#")
        ws = ws_raw(b)
        ws.upgrade()
        ws.connect("ws-will", will=roostlib.Will("w/ws", b"ws died", 0, False))
        ws.abort()
        p = tcp.recv_publish()
        self.assertEqual((p.topic, p.payload), ("w/ws", b"ws died"))
        sub = paho_client(b.ws_port, "paho-w")
        self.addCleanup(stop_paho, sub)
        sub.subscribe("w/#", 0)
        time.sleep(0.3)
        dying = b.raw()
        dying.connect("tcp-will", will=roostlib.Will("w/tcp", b"tcp died", 0, False))
        dying.abort()
        self.assertIn(("w/tcp", b"tcp died", False), wait_msgs(sub, 1))

    def test_anonymous_not_accepted_on_loopback_ws_listener_by_default(self):
        """Issue 10's loopback default is for MQTT listeners only: a web page
        on this host must not reach the broker as its visitor (CONNACK 5)."""
        b = start(self, anonymous="")
        tcp = b.client("tcp-anon")   # the MQTT listener on loopback still admits it
        c = ws_raw(b)
        c.upgrade()
        c.send(roostlib.connect_packet("web-anon"))
        p = c.expect(roostlib.CONNACK)
        self.assertEqual(p.body[1], 0x05)
        b.wait_for_log(r"not accepted on a websockets listener unless allow_anonymous: true")
        tcp.ping()

    def test_paho_over_wss(self):
        """With certfile and keyfile a websockets listener is wss."""
        from test_tls import Certs
        d = tempfile.mkdtemp(prefix="roost-wss-")
        self.addCleanup(shutil.rmtree, d, True)
        certs = Certs(d)
        b = start(self, tls=(certs.server, certs.server_key))
        self.assertIsNotNone(b.find_log(r"\(WebSockets, wss\)"))
        tcp = b.client("tcp-s")
        tcp.subscribe("s/#")
        ws = paho_client(b.ws_port, "paho-wss", tls_ca=certs.ca)
        self.addCleanup(stop_paho, ws)
        ws.subscribe("s/#", 0)
        time.sleep(0.3)
        ws.publish("s/1", b"over wss")
        self.assertEqual(tcp.recv_publish().payload, b"over wss")
        tcp.publish("s/2", b"back")
        self.assertIn(("s/2", b"back", False), wait_msgs(ws, 2))


def mqttjs_dir():
    if not os.path.isfile(os.path.join(NODE_MODULES, "mqtt", "dist", "mqtt.min.js")):
        raise AssertionError("MQTT.js is not installed in %s: run `npm install --prefix tests/e2e` "
                             "(tools/install-deps does)" % NODE_MODULES)
    return NODE_MODULES


class NodeClient:
    """tests/e2e/ws_mqttjs.js in Node: MQTT.js over ws or wss, its events as
    JSON lines."""

    def __init__(self, test, url, ca=None):
        env = dict(os.environ, NODE_PATH=mqttjs_dir())
        argv = ["node", os.path.join(HERE, "ws_mqttjs.js"), url] + ([ca] if ca else [])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        test.addCleanup(self.stop)

    def _read(self):
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def wait(self, pred, what, timeout=15):
        """The first event (seen before or arriving within timeout) matching pred."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.seen:
                if pred(e):
                    return e
            if any(e["event"] in ("error", "exit") for e in self.seen) or time.monotonic() > deadline:
                raise AssertionError("MQTT.js: no %s; saw %s; stderr: %s" % (what, self.seen, self._stderr()))
            try:
                self.seen.append(self.events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pass

    def _stderr(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def message(self, topic):
        return self.wait(lambda e: e["event"] == "message" and e["topic"] == topic, "message on " + topic)

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


class MqttJsNodeTest(unittest.TestCase):
    def cross_check(self, b, url, ca=None):
        """MQTT.js and a TCP client: each other's messages, a retained message
        and MQTT.js's will [MQTT-3.1.2-8]."""
        tcp = b.client("tcp-js")
        tcp.subscribe([("js/from-node", 1), ("js/will", 0)])
        tcp.publish("js/retained", b"kept", retain=True)
        node = NodeClient(self, url, ca)
        node.wait(lambda e: e["event"] == "ready", "ready (connected, subscribed, published)")
        p = tcp.recv_publish()
        self.assertEqual((p.topic, p.payload), ("js/from-node", b"hello from node"))
        got = node.message("js/retained")
        self.assertTrue(got["retain"])
        self.assertEqual(got["payload"], "kept")
        tcp.publish("js/from-tcp", b"hello from tcp", qos=1)
        self.assertEqual(node.message("js/from-tcp")["payload"], "hello from tcp")
        node.command("die")
        p = tcp.recv_publish()
        self.assertEqual((p.topic, p.payload), ("js/will", b"node died"))

    def test_mqttjs_over_ws(self):
        b = start(self)
        self.cross_check(b, "ws://127.0.0.1:%d/mqtt" % b.ws_port)

    def test_mqttjs_over_wss(self):
        from test_tls import Certs
        d = tempfile.mkdtemp(prefix="roost-wss-")
        self.addCleanup(shutil.rmtree, d, True)
        certs = Certs(d)
        b = start(self, tls=(certs.server, certs.server_key))
        self.cross_check(b, "wss://127.0.0.1:%d/mqtt" % b.ws_port, ca=certs.ca)


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (fds 3 and 4,
    NUL-separated JSON): opens url, then evaluates expressions in the page."""

    def __init__(self, test, url):
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError("%s not found: apt-get install chromium (tools/install-deps)" % CHROMIUM)
        self.profile = tempfile.mkdtemp(prefix="roost-chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def fds():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--user-data-dir=" + self.profile, "--remote-debugging-pipe", url]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buf = b""
        self.next_id = 0
        self.session = None
        test.addCleanup(self.stop)

    def call(self, method, timeout=20, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session and method.startswith(("Runtime.", "Page.")):
            msg["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, _, self.buf = self.buf.partition(b"\0")
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise AssertionError("chromium: %s: %s" % (method, reply["error"]))
                    return reply["result"]
            if time.monotonic() > deadline:
                raise AssertionError("chromium: no reply to %s" % method)
            r, _, _ = select.select([self.from_browser], [], [], 0.5)
            if r:
                chunk = os.read(self.from_browser, 1 << 16)
                if not chunk:
                    raise AssertionError("chromium exited: %s" % self.proc.stderr.read()[-2000:])
                self.buf += chunk

    def attach(self, url_part, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in self.call("Target.getTargets")["targetInfos"]:
                if t["type"] == "page" and url_part in t["url"]:
                    self.session = self.call("Target.attachToTarget", targetId=t["targetId"],
                                             flatten=True)["sessionId"]
                    return
            time.sleep(0.2)
        raise AssertionError("chromium: no page for %s" % url_part)

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except (AssertionError, OSError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc.stderr.close()
        for fd in (self.to_browser, self.from_browser):
            os.close(fd)
        shutil.rmtree(self.profile, True)


def serve_page(test):
    """ws_page.html and MQTT.js's browser build on a loopback http.server."""
    d = tempfile.mkdtemp(prefix="roost-page-")
    test.addCleanup(shutil.rmtree, d, True)
    shutil.copy(os.path.join(HERE, "ws_page.html"), d)
    shutil.copy(os.path.join(mqttjs_dir(), "mqtt", "dist", "mqtt.min.js"), d)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass
    httpd = http.server.ThreadingHTTPServer((HOST, 0), functools.partial(Quiet, directory=d))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    test.addCleanup(httpd.server_close)
    test.addCleanup(httpd.shutdown)
    return httpd.server_address[1]


class BrowserTest(unittest.TestCase):
    def test_chromium_page_with_mqttjs_and_tcp_client(self):
        """A real browser: MQTT.js's browser build in headless Chromium
        subscribes and publishes over ws; a TCP client sees its message, it
        sees the TCP client's and a retained one."""
        b = start(self)
        tcp = b.client("tcp-web")
        tcp.subscribe(("web/from-browser", 1))
        tcp.publish("web/retained", b"kept", retain=True)
        http_port = serve_page(self)
        browser = Chromium(self, "http://127.0.0.1:%d/ws_page.html?port=%d" % (http_port, b.ws_port))
        browser.attach("ws_page.html")
        p = tcp.recv_publish(timeout=20)
        self.assertEqual(p.topic, "web/from-browser")
        self.assertTrue(p.payload.startswith(b"hello from Mozilla"), p.payload)
        tcp.publish("web/from-tcp", b"hello browser", qos=1)
        deadline = time.monotonic() + 15
        state = None
        while time.monotonic() < deadline:
            state = json.loads(browser.evaluate("document.getElementById('state').textContent") or "null")
            if state and any(m["topic"] == "web/from-tcp" for m in state["messages"]):
                break
            time.sleep(0.2)
        self.assertTrue(state and state["connected"] and state["subscribed"], state)
        self.assertEqual(state["errors"], [])
        msgs = {m["topic"]: m for m in state["messages"]}
        self.assertEqual(msgs["web/from-tcp"]["payload"], "hello browser")
        self.assertEqual((msgs["web/retained"]["payload"], msgs["web/retained"]["retain"]), ("kept", True))
        b.wait_for_log(r"client browser-1 \(127\.0\.0\.1:\d+\) connected: MQTT 3\.1\.1")


class WrongPortTest(unittest.TestCase):
    """Bytes of another protocol on the plain MQTT port are named in the log."""

    def test_tls_client_hello_on_mqtt_port(self):
        b = start(self)
        c = b.raw()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with self.assertRaises((ssl.SSLError, OSError)):
            ctx.wrap_socket(c.sock, server_hostname="127.0.0.1").do_handshake()
        b.wait_for_log(r"closed: not MQTT: looks like TLS: is the client pointed at the TLS port\?")

    def test_websocket_upgrade_on_mqtt_port(self):
        b = start(self)
        c = b.raw()
        c.send(upgrade_request()[0])
        c.expect_closed()
        b.wait_for_log(r"closed: not MQTT: looks like HTTP \(GET\): is it a WebSocket client pointed at the "
                       r"MQTT port\? use a listener with protocol: websockets")


if __name__ == "__main__":
    roostlib.main()

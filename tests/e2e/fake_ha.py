"""fake_ha — a stand-in for Home Assistant's REST API, for the hub connector tests.

Answers `POST /api/events/<event_type>` the way Home Assistant does:

  * no or wrong `Authorization: Bearer <token>`  → 401 {"message": "Unauthorized"}
  * Content-Type not application/json, or a body that is not a JSON object
                                                 → 400 {"message": "Event data should be a JSON object"}
  * another method or path                       → 405 / 404
  * otherwise                                    → 200 {"message": "Event <type> fired."}
    and the request is recorded (path, headers, body, parsed JSON) in order.

It can be told to misbehave (FakeHA.mode):
  "ok"       normal
  "fail"     answer 500 to every request (nothing recorded)
  "unauthorized"  answer 401 whatever the token
  "silent"   read the request and never answer (the connection stays open
             until the mode changes or the server goes down)
  "drop_once"  read the next request, close the connection without an
             answer (what a server closing an idle keep-alive connection
             looks like to a client that just sent on it), then "ok"
and `reject(predicate)` makes it answer 400 to the events the predicate picks.
`go_down()` closes the listener and every open connection (connection
refused from then on); `come_back()` listens again on the same port.

With tls=(certfile, keyfile) it speaks HTTPS; `make_cert(dir)` creates a
self-signed certificate for localhost / 127.0.0.1 with the openssl tool.

HTTP/1.1 with Content-Length on every answer, so clients keep their
connection open between events, as with the real aiohttp server.  Every
wait is bounded.
"""

import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time

HOST = "127.0.0.1"


def make_cert(directory, cn="localhost"):
    """A self-signed certificate (also its own CA) for `cn` and 127.0.0.1.
    Returns (certfile, keyfile)."""
    cert = os.path.join(directory, "ha-cert.pem")
    key = os.path.join(directory, "ha-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=%s" % cn,
         "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % cn,
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


class Event:
    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers      # dict, header names lower-cased
        self.body = body            # bytes
        self.data = json.loads(body.decode("utf-8"))

    @property
    def event_type(self):
        return self.path.rsplit("/", 1)[-1]

    def __repr__(self):
        return "Event(%s %s)" % (self.path, self.body.decode("utf-8", "replace"))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ha):
        self.ha = ha
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.ha.tls_ctx:
            # Handshake in the handler thread (on first read), not here.
            sock = self.ha.tls_ctx.wrap_socket(sock, server_side=True,
                                               do_handshake_on_connect=False)
        self.ha._track(sock)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # failed handshakes, resets: the test looks at what arrived


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, fmt, *args):
        pass

    def _answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(405, {"message": "Method not allowed"})

    def do_POST(self):
        ha = self.server.ha
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ha._count_request()
        mode = ha.mode
        if mode == "drop_once":
            ha.set_mode("ok")
            self.close_connection = True
            return
        if mode == "silent":
            ha._silent_wait()
            self.close_connection = True
            return
        if mode == "fail":
            self._answer(500, {"message": "Internal Server Error"})
            return
        if not self.path.startswith("/api/events/") or len(self.path) <= len("/api/events/"):
            self._answer(404, {"message": "Not found"})
            return
        if mode == "unauthorized" or self.headers.get("Authorization") != "Bearer " + ha.token:
            self._answer(401, {"message": "Unauthorized"})
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError:
            data = None
        if ctype != "application/json" or not isinstance(data, dict):
            self._answer(400, {"message": "Event data should be a JSON object"})
            return
        ev = Event(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if ha._rejects(ev):
            self._answer(400, {"message": "Event rejected by the test"})
            return
        # Answer first: a test that saw the event may take HA down at once,
        # and the answer must not be lost to that (it would be retried).
        self._answer(200, {"message": "Event %s fired." % ev.event_type})
        self.wfile.flush()
        ha._record(ev)


class FakeHA:
    def __init__(self, token="test-token", tls=None, port=0):
        self.token = token
        self.tls_ctx = None
        if tls:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(*tls)
        self.mode = "ok"
        self.port = port
        self.events = []
        self.requests = 0
        self._reject = None
        self._cond = threading.Condition()
        self._conns = set()
        self._server = None
        self._thread = None

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server((HOST, self.port), _Handler, self)
                break
            except OSError:
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)   # the old listener on this port is still closing
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def url(self, host=HOST):
        return "%s://%s:%d" % ("https" if self.tls_ctx else "http", host, self.port)

    def go_down(self):
        """Stop listening and drop every open connection: connection refused."""
        if not self._server:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._cond:
            conns = list(self._conns)
            self._conns.clear()
            self._cond.notify_all()   # wakes silent handlers
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(timeout=5)

    def come_back(self):
        """Listen again on the same port."""
        return self.start()

    def stop(self):
        self.mode = "ok"
        self.go_down()

    # -- behaviour -------------------------------------------------------------

    def set_mode(self, mode):
        assert mode in ("ok", "fail", "unauthorized", "silent", "drop_once"), mode
        with self._cond:
            self.mode = mode
            self._cond.notify_all()

    def reject(self, predicate):
        """Answer 400 to events for which predicate(Event) is true (None: none)."""
        self._reject = predicate

    # -- what arrived ------------------------------------------------------------

    def wait_events(self, n, timeout=10.0):
        """Wait until at least n events were recorded; return all of them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.events) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake HA: %d event(s) after %.1f s, expected %d: %r"
                                         % (len(self.events), timeout, n, self.events))
                self._cond.wait(left)
            return list(self.events)

    def wait_requests(self, n, timeout=10.0):
        """Wait until at least n requests (of any outcome) came in."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.requests < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake HA: %d request(s) after %.1f s, expected %d"
                                         % (self.requests, timeout, n))
                self._cond.wait(left)
            return self.requests

    def snapshot(self):
        with self._cond:
            return list(self.events)

    # -- internals ---------------------------------------------------------------

    def _track(self, sock):
        with self._cond:
            self._conns.add(sock)

    def _count_request(self):
        with self._cond:
            self.requests += 1
            self._cond.notify_all()

    def _record(self, ev):
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def _rejects(self, ev):
        r = self._reject
        return bool(r and r(ev))

    def _silent_wait(self):
        deadline = time.monotonic() + 60
        with self._cond:
            while self.mode == "silent" and self._server is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(min(left, 0.5))

"""roostlib — harness for roost's end-to-end tests.

The tests start the real daemon (ROOST_BIN) on an ephemeral loopback port and
talk to it with packets built here BY HAND from the byte layouts of MQTT 3.1.1
(OASIS Standard, 29 October 2014).  Nothing of roost's own codec is used: a
bug shared by our encoder and our decoder would otherwise go unseen.

Pieces:
  Broker        start roost (or, with E2E_TARGET=mosquitto, Debian's mosquitto
                so the harness itself can be validated against a broker that is
                known to work), collect every stderr line, stop with SIGTERM and
                assert a clean exit and no sanitizer report.
  RawClient     a plain socket with packet builders and a reader that returns
                one packet (type, flags, body) or raises on timeout / close.
  BrokerTestCase  unittest base class: one fresh broker per test, limits set
                per test with @limits(...), broker log tail printed on failure.
  roost_only    skip a test when E2E_TARGET=mosquitto (roost-specific option or
                a place where roost makes the spec-conforming choice and
                Mosquitto does not).
  main()        run a test module; exits nonzero on any failure, and with a
                clear message (exit 99, "hard error" for automake) when the
                broker binary is missing.

Every wait is bounded: no helper here can block longer than its timeout.
"""

import collections
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# --------------------------------------------------------------------------
# Target selection
# --------------------------------------------------------------------------

TARGET = os.environ.get("E2E_TARGET", "roost").strip().lower() or "roost"
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
HOST = "127.0.0.1"

_HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("ROOST_SRCDIR") or os.path.normpath(os.path.join(_HERE, "..", ".."))


def roost_bin():
    """Absolute path of the roost daemon: $ROOST_BIN, else <srcdir>/broker/roost."""
    return os.environ.get("ROOST_BIN") or os.path.join(SRCDIR, "broker", "roost")


def is_mosquitto():
    return TARGET == "mosquitto"


def target_problem():
    """A human-readable reason why the selected broker cannot be run, or None."""
    if TARGET not in ("roost", "mosquitto"):
        return "E2E_TARGET=%r: expected 'roost' (default) or 'mosquitto'" % TARGET
    path = MOSQUITTO_BIN if is_mosquitto() else roost_bin()
    what = "MOSQUITTO_BIN" if is_mosquitto() else "ROOST_BIN"
    if not os.path.exists(path):
        hint = "" if is_mosquitto() else " (build it first: `make broker/roost`)"
        return "%s=%s does not exist%s" % (what, path, hint)
    if not os.access(path, os.X_OK):
        return "%s=%s is not executable" % (what, path)
    return None


def roost_only(arg=None):
    """Skip the test when the target is Mosquitto.

    Use for roost-only options (connect_timeout, --test-config, ...) and for
    places where the spec leaves a choice and roost's contract differs from
    what Mosquitto does.  Usable bare (@roost_only) or with a reason
    (@roost_only("why")).
    """
    def deco(obj, reason):
        return unittest.skipIf(is_mosquitto(), "roost only: " + reason)(obj)
    if callable(arg):
        return deco(arg, "roost-specific behaviour")
    return lambda obj: deco(obj, arg or "roost-specific behaviour")


def limits(**kw):
    """Per-test broker limits, read by BrokerTestCase.setUp."""
    def deco(fn):
        fn.broker_limits = kw
        return fn
    return deco


def rss_kb(pid):
    """Resident set size of process pid, in kB (0 when unknown)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    """A loopback port that was free a moment ago (only for Mosquitto and -p)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Broker process
# --------------------------------------------------------------------------

_START_HANG = None   # set when a broker ran but never reported its port
SANITIZER_RE = re.compile(
    r"(Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer|runtime error:|"
    r"==\d+==\s*ERROR")
ECHO = bool(os.environ.get("E2E_ECHO"))

# Options that exist in Mosquitto under the same name (mosquitto.conf(5)).
_MOSQ_LIMITS = ("max_inflight_messages", "max_queued_messages", "max_queued_bytes",
                "max_packet_size", "max_keepalive")


def roost_yaml(limits=None, port=0, allow_anonymous=True, log_level="debug", extra=""):
    """The YAML text of a roost config with one loopback listener."""
    out = [
        "listeners:",
        "  - port: %d" % port,
        "    bind: %s" % HOST,
        "allow_anonymous: %s" % ("true" if allow_anonymous else "false"),
    ]
    if limits:
        out.append("limits:")
        for k, v in limits.items():
            out.append("  %s: %s" % (k, v))
    out += ["log:", "  level: %s" % log_level]
    # The HTTP API listens on 8124 by default: parallel tests would collide
    # there, so it is off unless the test configures an `http:` section.
    if not re.search(r"(?m)^http:", extra):
        out += ["http:", "  port: -1"]
    return "\n".join(out) + "\n" + extra


class Broker:
    """A broker process on a loopback port.  Use as a context manager or
    call start()/stop().  All stderr lines are kept in .lines."""

    START_TIMEOUT = 10.0
    STOP_TIMEOUT = 10.0

    def __init__(self, limits=None, log_level="debug", args=(), config_text=None):
        self.limits = dict(limits or {})
        self.log_level = log_level
        self.args = list(args)
        self.config_text = config_text
        self.port = None
        self.proc = None
        self.returncode = None
        self.lines = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = None
        self._tmp = tempfile.TemporaryDirectory(prefix="roost-e2e-")
        self.config_path = None
        self.clients = []

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop(check=exc_type is None)
        return False

    def start(self):
        global _START_HANG
        problem = target_problem()
        if problem:
            raise RuntimeError(problem)
        if _START_HANG:
            # Do not spend 10 s per test on a binary that never gets ready.
            raise AssertionError("not started: an earlier start in this run hung:\n"
                                 + _START_HANG)
        try:
            if is_mosquitto():
                self._start_mosquitto()
            else:
                self._start_roost()
        except BaseException as e:
            hung = self.alive()
            self._kill()
            if self.proc:
                self.proc.stderr.close()
            self._tmp.cleanup()
            if hung:
                _START_HANG = str(e)
            raise
        return self

    def _spawn(self, argv):
        self.lines = []
        self._eof = False
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=self._tmp.name)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _start_roost(self):
        self.config_path = os.path.join(self._tmp.name, "roost.yaml")
        text = self.config_text or roost_yaml(self.limits, log_level=self.log_level)
        with open(self.config_path, "w") as f:
            f.write(text)
        self._spawn([roost_bin(), "-c", self.config_path] + self.args)
        m = self.wait_for_log(r"listening on 127\.0\.0\.1:(\d+)", self.START_TIMEOUT,
                              what="roost to report its listening port")
        self.port = int(m.group(1))

    def _start_mosquitto(self):
        unsupported = set(self.limits) - set(_MOSQ_LIMITS) - {"max_connections"}
        if unsupported:
            raise unittest.SkipTest("mosquitto has no equivalent of %s"
                                    % ", ".join(sorted(unsupported)))
        for attempt in range(3):
            self.port = free_port()
            self.config_path = os.path.join(self._tmp.name, "mosquitto.conf")
            conf = ["listener %d %s" % (self.port, HOST)]
            if "max_connections" in self.limits:
                conf.append("max_connections %s" % self.limits["max_connections"])
            conf += ["allow_anonymous true", "persistence false",
                     "log_dest stderr", "log_type all", "connection_messages true"]
            for k in _MOSQ_LIMITS:
                if k in self.limits:
                    conf.append("%s %s" % (k, self.limits[k]))
            with open(self.config_path, "w") as f:
                f.write("\n".join(conf) + "\n")
            self._spawn([MOSQUITTO_BIN, "-c", self.config_path])
            try:
                self.wait_for_log(r"mosquitto version \S+ running", self.START_TIMEOUT,
                                  what="mosquitto to start")
                return
            except AssertionError:
                self._kill()
                if attempt == 2 or not any("in use" in l for l in self.lines):
                    raise

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self._reader:
            self._reader.join(timeout=5)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, check=True):
        """Stop with `sig`, wait up to 10 s (then SIGKILL), close our clients.
        With check, assert exit code 0 and no sanitizer report.  Idempotent;
        returns the exit code."""
        if self.proc is None:
            return None
        if self.returncode is None:
            killed = False
            died_early = self.proc.poll() is not None
            if not died_early:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=self.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    killed = True
                    self._kill()
            self.returncode = self.proc.returncode
            if self._reader:
                self._reader.join(timeout=5)
            for c in self.clients:
                c.close()
            self.proc.stderr.close()
            self._tmp.cleanup()
            if check:
                if killed:
                    raise AssertionError("%s did not exit within %.0f s of signal %d\n%s"
                                         % (self.name(), self.STOP_TIMEOUT, sig, self.tail()))
                self.assert_no_sanitizer_report()
                if died_early:
                    raise AssertionError("%s exited on its own during the test (exit code %s: "
                                         "a crash?)\n%s" % (self.name(), self.returncode,
                                                            self.tail()))
                if self.returncode != 0:
                    raise AssertionError("%s exited with %s after signal %d (expected 0)\n%s"
                                         % (self.name(), self.returncode, sig, self.tail()))
        return self.returncode

    def name(self):
        return "mosquitto" if is_mosquitto() else "roost"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- log ---------------------------------------------------------------

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if ECHO:
                sys.stderr.write("[%s] %s\n" % (self.name(), line))
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def log_mark(self):
        """Index of the next log line; pass as `since` to only look later."""
        with self._cond:
            return len(self.lines)

    def tail(self, n=60):
        with self._cond:
            lines = self.lines[-n:]
        return "---- last %d %s log lines ----\n%s\n----" % (len(lines), self.name(),
                                                             "\n".join(lines))

    def find_log(self, pattern, since=0):
        rx = re.compile(pattern)
        with self._cond:
            for line in self.lines[since:]:
                m = rx.search(line)
                if m:
                    return m
        return None

    def wait_for_log(self, pattern, timeout=5.0, since=0, what=None):
        """Wait until a line after `since` matches `pattern` (regex); return
        the match.  Fails on timeout or when the process closes stderr."""
        rx = re.compile(pattern)
        t0 = time.monotonic()
        deadline = t0 + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    i += 1
                    if m:
                        return m
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        state = ("exited with %s" % self.proc.poll()) if self._eof else "still running"
        raise AssertionError("waited %.1f s for %s (/%s/); %s is %s\n%s"
                             % (time.monotonic() - t0, what or "a log line", pattern, self.name(),
                                state, self.tail()))

    def assert_close_logged(self, client_id, since=0, timeout=5.0):
        """The broker logged that it closed `client_id`'s connection ("-" when
        the id was not known yet; a tuple accepts any of several ids).
        roost's contract: one line naming the client id and containing the
        word "closed"; the reason text is free.  For Mosquitto (harness
        validation only) the equivalent line says "Client <id> disconnected"
        or "Client <unknown> ..."."""
        ids = client_id if isinstance(client_id, (tuple, list)) else (client_id,)
        if is_mosquitto():
            ids = ["<unknown>" if i == "-" else i for i in ids]
            word = r"(disconnect|closing|error|bad socket)"
        else:
            word = r"\bclosed\b"
        alt = "|".join(re.escape(i) for i in ids)
        pat = r"(?i)(?=.*(?<!\S)(?:%s)(?![^\s:,.)]))(?=.*%s)" % (alt, word)
        return self.wait_for_log(pat, timeout, since,
                                 what="a log line saying client %s was closed"
                                 % " or ".join(map(repr, ids)))

    def sanitizer_lines(self):
        with self._cond:
            return [l for l in self.lines if SANITIZER_RE.search(l)]

    def assert_no_sanitizer_report(self):
        bad = self.sanitizer_lines()
        if bad:
            raise AssertionError("sanitizer report on %s stderr:\n%s\n%s"
                                 % (self.name(), "\n".join(bad[:20]), self.tail(200)))

    # -- clients -----------------------------------------------------------

    def raw(self, timeout=5.0):
        """A TCP connection with nothing sent yet."""
        c = RawClient(self.port, timeout=timeout)
        self.clients.append(c)
        return c

    def client(self, client_id, **kw):
        """A connected RawClient (CONNECT sent, CONNACK 0 checked)."""
        c = self.raw()
        c.connect(client_id, **kw)
        return c


# --------------------------------------------------------------------------
# Packet layouts (MQTT 3.1.1 chapters 2 and 3), written out by hand
# --------------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
TYPE_NAMES = {0: "RESERVED0", 1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK",
              5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
              10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
              14: "DISCONNECT", 15: "AUTH"}

PINGREQ_BYTES = b"\xc0\x00"       # 2.2 fixed header only, flags 0000
DISCONNECT_BYTES = b"\xe0\x00"


def u16(n):
    return struct.pack(">H", n)


def varint(n):
    """Remaining Length, 2.2.3: 7 bits per byte, low group first, bit 7 = more."""
    assert 0 <= n <= 268435455
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    """1.5.3 UTF-8 string: 2-byte big-endian length, then the bytes.  Bytes
    are passed through unchanged so tests can send ill-formed UTF-8."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def to_bytes(x):
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


def packet(ptype, flags, body=b""):
    """Fixed header (type << 4 | flags, Remaining Length) + body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + varint(len(body)) + bytes(body)


Will = collections.namedtuple("Will", "topic payload qos retain")
Will.__new__.__defaults__ = (0, False)


def connect_flags(clean, will, username, password):
    """3.1.2.2 connect flags: 7 user name, 6 password, 5 will retain, 4-3
    will QoS, 2 will, 1 clean session / Clean Start, 0 reserved."""
    f = 0x02 if clean else 0
    if will is not None:
        f |= 0x04 | ((will.qos & 3) << 3) | (0x20 if will.retain else 0)
    if username is not None:
        f |= 0x80
    if password is not None:
        f |= 0x40
    return f


def connect_payload(client_id, will, username, password, will_props=b""):
    """3.1.3 CONNECT payload: client id, [will properties (v5)], will topic,
    will message, user name, password."""
    pl = mqtt_str(client_id)
    if will is not None:
        pl += will_props + mqtt_str(will.topic) + mqtt_str(to_bytes(will.payload))
    if username is not None:
        pl += mqtt_str(username)
    if password is not None:
        pl += mqtt_str(to_bytes(password))
    return pl


def connect_packet(client_id, clean=True, keepalive=60, will=None, username=None,
                   password=None, proto_name="MQTT", proto_level=4, flags=None):
    """3.1 CONNECT.  Variable header: protocol name, level, connect flags
    (7 user name, 6 password, 5 will retain, 4-3 will QoS, 2 will, 1 clean
    session, 0 reserved), keep alive.  Payload: client id, will topic, will
    message, user name, password.  `flags` overrides the computed flags byte
    (for malformed tests)."""
    f = connect_flags(clean, will, username, password) if flags is None else flags
    vh = mqtt_str(proto_name) + bytes([proto_level, f]) + u16(keepalive)
    return packet(CONNECT, 0, vh + connect_payload(client_id, will, username, password))


def publish_packet(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, flags=None):
    """3.3 PUBLISH: flags DUP(3) QoS(2-1) RETAIN(0); topic; packet id only if QoS > 0."""
    f = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    if flags is not None:
        f = flags
    body = mqtt_str(topic)
    if pid is not None:
        body += u16(pid)
    return packet(PUBLISH, f, body + to_bytes(payload))


def subscribe_packet(pid, filters, flags=0x02):
    """3.8 SUBSCRIBE: fixed flags 0010; packet id; (filter, requested QoS byte)*."""
    body = u16(pid)
    for flt, qos in filters:
        body += mqtt_str(flt) + bytes([qos])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe_packet(pid, filters, flags=0x02):
    """3.10 UNSUBSCRIBE: fixed flags 0010; packet id; filter*."""
    body = u16(pid)
    for flt in filters:
        body += mqtt_str(flt)
    return packet(UNSUBSCRIBE, flags, body)


def puback_packet(pid):
    return packet(PUBACK, 0, u16(pid))


def pubrec_packet(pid):
    return packet(PUBREC, 0, u16(pid))


def pubrel_packet(pid, flags=0x02):
    return packet(PUBREL, flags, u16(pid))


def pubcomp_packet(pid):
    return packet(PUBCOMP, 0, u16(pid))


# ---- MQTT 5 (the connect side): CONNECT/CONNACK/DISCONNECT/AUTH builders ----
# Written from the byte layouts of OASIS MQTT 5.0 (2.2.2 properties, 3.1
# CONNECT, 3.2 CONNACK, 3.14 DISCONNECT, 3.15 AUTH), not from roost's codec.

AUTH = 15
# 2.2.2.2 table 2-4: identifier -> (name, type).  Types: byte, u16, u32,
# varint, str, bin, pair.
PROPS5 = {
    0x01: ("payload_format", "byte"), 0x02: ("message_expiry", "u32"),
    0x03: ("content_type", "str"), 0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"), 0x0B: ("subscription_id", "varint"),
    0x11: ("session_expiry", "u32"), 0x12: ("assigned_client_id", "str"),
    0x13: ("server_keepalive", "u16"), 0x15: ("auth_method", "str"),
    0x16: ("auth_data", "bin"), 0x17: ("request_problem_info", "byte"),
    0x18: ("will_delay", "u32"), 0x19: ("request_response_info", "byte"),
    0x1A: ("response_info", "str"), 0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"), 0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"), 0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"), 0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"), 0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_sub_available", "byte"), 0x29: ("sub_id_available", "byte"),
    0x2A: ("shared_sub_available", "byte"),
}
PROP_IDS5 = {name: pid for pid, (name, _) in PROPS5.items()}


def prop5(pid, value):
    """One property: identifier byte, then the value in its type's layout."""
    if isinstance(pid, str):
        pid = PROP_IDS5[pid]
    kind = PROPS5[pid][1]
    out = bytes([pid])
    if kind == "byte":
        return out + bytes([value])
    if kind == "u16":
        return out + u16(value)
    if kind == "u32":
        return out + struct.pack(">I", value)
    if kind == "varint":
        return out + varint(value)
    if kind in ("str", "bin"):
        return out + mqtt_str(to_bytes(value))
    k, v = value
    return out + mqtt_str(to_bytes(k)) + mqtt_str(to_bytes(v))


def props5(props=()):
    """A property block: its length (variable byte integer), then the
    properties.  props: [(name or id, value)] in order, or raw bytes."""
    if isinstance(props, (bytes, bytearray)):
        body = bytes(props)
    else:
        body = b"".join(prop5(k, v) for k, v in props)
    return varint(len(body)) + body


def parse_props5(data):
    """Decode a property block at the start of data: ([(name, value)], rest)."""
    length, mult, i = 0, 1, 0
    while True:
        b = data[i]
        length += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            break
    body, rest, out, j = data[i:i + length], data[i + length:], [], 0
    while j < len(body):
        pid = body[j]
        name, kind = PROPS5[pid]
        j += 1
        if kind == "byte":
            v, j = body[j], j + 1
        elif kind == "u16":
            v, j = struct.unpack(">H", body[j:j + 2])[0], j + 2
        elif kind == "u32":
            v, j = struct.unpack(">I", body[j:j + 4])[0], j + 4
        elif kind == "varint":
            v, m = 0, 1
            while True:
                v += (body[j] & 0x7F) * m
                m *= 128
                j += 1
                if not body[j - 1] & 0x80:
                    break
        elif kind in ("str", "bin"):
            n = struct.unpack(">H", body[j:j + 2])[0]
            v, j = bytes(body[j + 2:j + 2 + n]), j + 2 + n
        else:
            n = struct.unpack(">H", body[j:j + 2])[0]
            k = bytes(body[j + 2:j + 2 + n])
            j += 2 + n
            n = struct.unpack(">H", body[j:j + 2])[0]
            v, j = (k, bytes(body[j + 2:j + 2 + n])), j + 2 + n
        out.append((name, v))
    return out, rest


def connect_packet_v5(client_id, clean=True, keepalive=60, properties=(), will=None,
                      will_properties=(), username=None, password=None, flags=None):
    """3.1 CONNECT, protocol level 5: as connect_packet, with the property
    block after keep alive (3.1.2.11) and the will properties before the
    will topic (3.1.3.2).  A password without a user name is allowed in v5."""
    f = connect_flags(clean, will, username, password) if flags is None else flags
    vh = mqtt_str("MQTT") + bytes([5, f]) + u16(keepalive) + props5(properties)
    return packet(CONNECT, 0, vh + connect_payload(client_id, will, username, password,
                                                   props5(will_properties)))


def disconnect_packet_v5(reason=0, properties=None):
    """3.14 DISCONNECT v5: reason code, then properties (both optional)."""
    body = bytes([reason])
    if properties is not None:
        body += props5(properties)
    return packet(DISCONNECT, 0, body)


def auth_packet(reason=0x18, properties=()):
    """3.15 AUTH: reason code, properties."""
    return packet(AUTH, 0, bytes([reason]) + props5(properties))


Connack5 = collections.namedtuple("Connack5", "session_present reason props")


def parse_connack_v5(p):
    """3.2 CONNACK v5: acknowledge flags, reason code, properties (as a dict,
    user properties as a list under 'user_property')."""
    assert p.type == CONNACK, "expected CONNACK, got %s" % describe(p)
    props, rest = parse_props5(p.body[2:])
    assert rest == b"", "bytes after the CONNACK properties"
    d = {}
    for k, v in props:
        if k == "user_property":
            d.setdefault(k, []).append(v)
        else:
            assert k not in d, "[MQTT-2.2.2-?] property %s twice in CONNACK" % k
            d[k] = v
    return Connack5(p.body[0] & 1, p.body[1], d)


def parse_reason_props(p):
    """DISCONNECT / AUTH v5 body: (reason, {props}); an empty body is 0x00."""
    if not p.body:
        return 0, {}
    if len(p.body) == 1:
        return p.body[0], {}
    props, rest = parse_props5(p.body[1:])
    assert rest == b""
    return p.body[0], dict(props)
# ---- MQTT 5 (the publish side): PUBLISH/SUBSCRIBE/UNSUBSCRIBE/ack builders ----
# Written from the byte layouts of OASIS MQTT 5.0 (3.3 PUBLISH, 3.4-3.7 acks,
# 3.8-3.11 SUBSCRIBE..UNSUBACK); property blocks with props5/parse_props5
# (the connect side's, above).

# 3.8.3.1 subscription options: QoS bits 0-1, No Local 2, Retain As Published
# 3, Retain Handling 4-5.
NO_LOCAL, RETAIN_AS_PUBLISHED = 0x04, 0x08


def retain_handling(n):
    return n << 4


def publish_packet_v5(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, properties=()):
    """3.3 PUBLISH v5: topic, packet id (QoS > 0), properties, payload."""
    f = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    body = mqtt_str(topic) + (u16(pid) if pid is not None else b"") + props5(properties)
    return packet(PUBLISH, f, body + to_bytes(payload))


def subscribe_packet_v5(pid, filters, properties=()):
    """3.8 SUBSCRIBE v5: packet id, properties, (filter, options byte)*."""
    body = u16(pid) + props5(properties)
    for flt, opts in filters:
        body += mqtt_str(flt) + bytes([opts])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe_packet_v5(pid, filters, properties=()):
    """3.10 UNSUBSCRIBE v5: packet id, properties, filter*."""
    return packet(UNSUBSCRIBE, 0x02, u16(pid) + props5(properties) + b"".join(mqtt_str(f) for f in filters))


def ack_packet_v5(ptype, pid, reason=None, properties=None):
    """3.4-3.7 PUBACK/PUBREC/PUBREL/PUBCOMP v5: packet id [, reason [, properties]]."""
    body = u16(pid)
    if reason is not None:
        body += bytes([reason])
        if properties is not None:
            body += props5(properties)
    return packet(ptype, 0x02 if ptype == PUBREL else 0, body)


Publish5 = collections.namedtuple("Publish5", "topic payload qos retain dup pid props")


def parse_publish_v5(p):
    """A v5 PUBLISH from the broker; props as [(name, value)] in wire order."""
    assert p.type == PUBLISH, "not a PUBLISH: %s" % describe(p)
    qos = (p.flags >> 1) & 3
    tlen = struct.unpack(">H", p.body[:2])[0]
    topic, rest = p.body[2:2 + tlen].decode("utf-8"), p.body[2 + tlen:]
    pid = None
    if qos:
        pid, rest = struct.unpack(">H", rest[:2])[0], rest[2:]
    props, payload = parse_props5(rest)
    return Publish5(topic, bytes(payload), qos, bool(p.flags & 1), bool(p.flags & 8), pid, props)


def parse_ack_v5(p):
    """PUBACK..PUBCOMP v5: (packet id, reason, {props}); 3.4.2.1: a missing
    reason is 0x00, missing properties none."""
    pid = struct.unpack(">H", p.body[:2])[0]
    if len(p.body) == 2:
        return pid, 0, {}
    if len(p.body) == 3:
        return pid, p.body[2], {}
    props, rest = parse_props5(p.body[3:])
    assert rest == b"", "bytes after the ack's properties"
    return pid, p.body[2], dict(props)


def parse_suback_v5(p):
    """SUBACK / UNSUBACK v5: (packet id, {props}, [reason codes])."""
    pid = struct.unpack(">H", p.body[:2])[0]
    props, codes = parse_props5(p.body[2:])
    return pid, dict(props), list(codes)


Packet = collections.namedtuple("Packet", "type flags body")
Publish = collections.namedtuple("Publish", "topic payload qos retain dup pid")


def parse_publish(p):
    """Decode a PUBLISH sent by the broker, checking what the broker MUST get right."""
    assert p.type == PUBLISH, "not a PUBLISH: %s" % describe(p)
    qos = (p.flags >> 1) & 3
    assert qos != 3, "[MQTT-3.3.1-4] broker sent PUBLISH with QoS 3"
    body = p.body
    assert len(body) >= 2, "PUBLISH too short"
    tlen = struct.unpack(">H", body[:2])[0]
    raw_topic = body[2:2 + tlen]
    assert len(raw_topic) == tlen, "PUBLISH topic overruns packet"
    topic = raw_topic.decode("utf-8")  # [MQTT-3.3.2-1]: raises if not UTF-8
    rest = body[2 + tlen:]
    pid = None
    if qos:
        assert len(rest) >= 2, "PUBLISH QoS>0 without packet id"
        pid = struct.unpack(">H", rest[:2])[0]
        assert pid != 0, "[MQTT-2.3.1-1] broker sent packet id 0"
        rest = rest[2:]
    dup = bool(p.flags & 0x08)
    if qos == 0:
        assert not dup, "[MQTT-3.3.1-2] broker sent DUP=1 on QoS 0"
    return Publish(topic, bytes(rest), qos, bool(p.flags & 1), dup, pid)


def describe(p):
    name = TYPE_NAMES.get(p.type, str(p.type))
    if p.type == PUBLISH:
        try:
            m = parse_publish(p)
            return "PUBLISH(topic=%r, payload=%r, qos=%d, retain=%d, dup=%d, pid=%s)" % (
                m.topic, m.payload[:60], m.qos, m.retain, m.dup, m.pid)
        except Exception:  # noqa: BLE001 - best-effort description only
            pass
    return "%s(flags=0x%x, body=%s)" % (name, p.flags, bytes(p.body[:40]).hex())


# --------------------------------------------------------------------------
# Raw client
# --------------------------------------------------------------------------

DEFAULT_TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "5"))


class Closed(AssertionError):
    """The broker closed the connection (EOF or reset)."""


class PacketTimeout(AssertionError):
    """No complete packet arrived in time."""


class RawClient:
    """One TCP connection to the broker, driven packet by packet."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port = self.sock.getsockname()[1]
        self.buf = bytearray()
        self.stash = collections.deque()   # PUBLISHes that arrived while waiting for an ack
        self.client_id = None
        self.session_present = None
        self._pid = 0
        self.closed = False

    # -- low level ---------------------------------------------------------

    def send(self, data, allow_closed=False):
        """Send bytes.  A reset/broken pipe raises Closed, unless allow_closed
        (malformed tests: the broker may close while we are still writing)."""
        # recv_packet leaves whatever timeout was left on the socket; a send
        # gets its own bound.
        self.sock.settimeout(DEFAULT_TIMEOUT * 2)
        try:
            self.sock.sendall(bytes(data))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
            if not allow_closed:
                raise Closed("connection closed by broker while sending: %s" % e)
        except socket.timeout:
            raise AssertionError("sending %d bytes blocked for %.0f s (broker not reading?)"
                                 % (len(data), DEFAULT_TIMEOUT * 2))

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def abort(self):
        """Close abruptly with a TCP RST (SO_LINGER 0), no DISCONNECT."""
        if not self.closed:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close()

    def shutdown_write(self):
        """Half-close: the broker sees EOF on its read side."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # already closed by the broker

    def next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PacketTimeout("no complete packet within the timeout "
                                    "(have %d buffered bytes)" % len(self.buf))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
                raise Closed("connection reset by broker")
            if not chunk:
                raise Closed("connection closed by broker (EOF)")
            self.buf += chunk

    def recv_packet(self, timeout=DEFAULT_TIMEOUT):
        """Read exactly one packet: Packet(type, flags, body).  Raises
        PacketTimeout or Closed (both AssertionError subclasses)."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        length, mult, i = 0, 1, 1
        while True:
            self._fill(i + 1, deadline)
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise AssertionError("broker sent a Remaining Length longer than 4 bytes")
        self._fill(i + length, deadline)
        first = self.buf[0]
        body = bytes(self.buf[i:i + length])
        del self.buf[:i + length]
        return Packet(first >> 4, first & 0x0F, body)

    def expect(self, ptype, timeout=DEFAULT_TIMEOUT, flags=0):
        """Next non-PUBLISH packet must be `ptype` with `flags`; PUBLISHes that
        arrive meanwhile are stashed for recv_publish()."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv_packet(max(0.0, deadline - time.monotonic()))
            if p.type == PUBLISH and ptype != PUBLISH:
                self.stash.append(p)
                continue
            if p.type != ptype:
                raise AssertionError("expected %s, got %s" % (TYPE_NAMES[ptype], describe(p)))
            if flags is not None and p.flags != flags:
                raise AssertionError("[MQTT-2.2.2-1] %s with flags 0x%x, expected 0x%x"
                                     % (TYPE_NAMES[ptype], p.flags, flags))
            return p

    def expect_ack(self, ptype, pid, timeout=DEFAULT_TIMEOUT):
        flags = 0x02 if ptype == PUBREL else 0
        p = self.expect(ptype, timeout, flags=flags)
        assert len(p.body) == 2, "%s body must be 2 bytes: %s" % (TYPE_NAMES[ptype], describe(p))
        got = struct.unpack(">H", p.body)[0]
        assert got == pid, "[MQTT-2.3.1-6] %s for packet id %d, expected %d" % (
            TYPE_NAMES[ptype], got, pid)
        return p

    def expect_closed(self, timeout=DEFAULT_TIMEOUT, allow_packets=False):
        """The broker must close the connection within `timeout`.  Any packet
        received first is a failure unless allow_packets; returns them."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            try:
                p = self.recv_packet(max(0.0, deadline - time.monotonic()))
            except Closed:
                self.close()
                return got
            except PacketTimeout:
                raise AssertionError("connection still open %.1f s later (expected the broker "
                                     "to close it); received before: %s"
                                     % (timeout, [describe(x) for x in got]))
            if not allow_packets:
                raise AssertionError("expected the broker to close the connection, got %s"
                                     % describe(p))
            got.append(p)

    def expect_open(self, window):
        """Nothing arrives and the connection stays open for `window` seconds
        (an observation window: absence can only be checked over time)."""
        try:
            p = self.recv_packet(window)
        except PacketTimeout:
            return
        raise AssertionError("expected silence for %.1f s, got %s" % (window, describe(p)))

    def ping(self, timeout=DEFAULT_TIMEOUT):
        self.send(PINGREQ_BYTES)
        p = self.expect(PINGRESP, timeout)
        assert p.body == b"", "PINGRESP must have no body"

    def disconnect(self, wait_closed=True):
        """Send DISCONNECT and (by default) wait until the broker has closed
        the connection: after that the broker has processed it."""
        self.send(DISCONNECT_BYTES)
        if wait_closed:
            self.expect_closed(allow_packets=True)
        self.close()

    # -- CONNECT -----------------------------------------------------------

    def connect(self, client_id, clean=True, keepalive=60, will=None, username=None,
                password=None, proto=4, expect_rc=0, expect_sp=None, timeout=DEFAULT_TIMEOUT):
        """Send CONNECT and check the CONNACK (3.2: 20 02 <ack flags> <rc>).
        proto=4 → "MQTT"/4 (3.1.1), proto=3 → "MQIsdp"/3 (3.1).  A nonzero
        expect_rc also checks Session Present 0 and that the broker closes."""
        name = "MQIsdp" if proto == 3 else "MQTT"
        self.send(connect_packet(client_id, clean, keepalive, will, username, password,
                                 proto_name=name, proto_level=proto))
        p = self.recv_packet(timeout)
        assert p.type == CONNACK, "[MQTT-3.2.0-1] first packet must be CONNACK, got %s" % describe(p)
        assert p.flags == 0, "CONNACK flags must be 0"
        assert len(p.body) == 2, "CONNACK remaining length must be 2"
        ackf, rc = p.body[0], p.body[1]
        assert ackf & 0xFE == 0, "CONNACK acknowledge flags bits 7-1 are reserved"
        sp = ackf & 1
        assert rc == expect_rc, "CONNACK return code %d, expected %d" % (rc, expect_rc)
        if rc != 0:
            assert sp == 0, "[MQTT-3.2.2-4] session present must be 0 with a nonzero rc"
            self.expect_closed(timeout)  # [MQTT-3.2.2-5]
            return self
        if clean:
            assert sp == 0, "[MQTT-3.2.2-1] clean session must give session present 0"
        if expect_sp is not None:
            assert sp == expect_sp, "session present %d, expected %d" % (sp, expect_sp)
        self.client_id = client_id
        self.session_present = sp
        return self

    # -- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------

    def subscribe(self, filters, pid=None, timeout=DEFAULT_TIMEOUT):
        """filters: [(filter, qos)] or a single filter string (QoS 0) or
        (filter, qos).  Returns the SUBACK return codes."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        elif isinstance(filters, tuple):
            filters = [filters]
        pid = pid or self.next_pid()
        self.send(subscribe_packet(pid, filters))
        p = self.expect(SUBACK, timeout)
        got = struct.unpack(">H", p.body[:2])[0]
        assert got == pid, "[MQTT-3.8.4-2] SUBACK packet id %d, expected %d" % (got, pid)
        codes = list(p.body[2:])
        assert len(codes) == len(filters), "[MQTT-3.8.4-5] one return code per filter: %r" % codes
        for c in codes:
            assert c in (0, 1, 2, 0x80), "[MQTT-3.9.3-2] reserved SUBACK code 0x%x" % c
        return codes

    def unsubscribe(self, filters, pid=None, timeout=DEFAULT_TIMEOUT):
        if isinstance(filters, str):
            filters = [filters]
        pid = pid or self.next_pid()
        self.send(unsubscribe_packet(pid, filters))
        self.expect_ack(UNSUBACK, pid, timeout)

    # -- PUBLISH -------------------------------------------------------------

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
                wait=True, timeout=DEFAULT_TIMEOUT):
        """Publish; with wait, complete the QoS 1/2 flow (PUBACK, or PUBREC →
        PUBREL → PUBCOMP).  Returns the packet id (None for QoS 0)."""
        if qos and pid is None:
            pid = self.next_pid()
        self.send(publish_packet(topic, payload, qos, retain, dup, pid if qos else None))
        if wait and qos == 1:
            self.expect_ack(PUBACK, pid, timeout)
        elif wait and qos == 2:
            self.expect_ack(PUBREC, pid, timeout)
            self.send(pubrel_packet(pid))
            self.expect_ack(PUBCOMP, pid, timeout)
        return pid

    def recv_publish(self, timeout=DEFAULT_TIMEOUT, ack=True):
        """Next PUBLISH from the broker (stashed ones first).  With ack,
        complete the receiver side: PUBACK, or PUBREC → (PUBREL) → PUBCOMP."""
        if self.stash:
            p = self.stash.popleft()
        else:
            p = self.recv_packet(timeout)
            if p.type != PUBLISH:
                raise AssertionError("expected PUBLISH, got %s" % describe(p))
        m = parse_publish(p)
        if ack:
            self.ack(m, timeout)
        return m

    def ack(self, m, timeout=DEFAULT_TIMEOUT):
        if m.qos == 1:
            self.send(puback_packet(m.pid))
        elif m.qos == 2:
            self.send(pubrec_packet(m.pid))
            self.expect_ack(PUBREL, m.pid, timeout)   # [MQTT-3.6.1-1] flags 0010
            self.send(pubcomp_packet(m.pid))

    def expect_publish(self, topic=None, payload=None, qos=None, retain=None,
                       timeout=DEFAULT_TIMEOUT, ack=True):
        m = self.recv_publish(timeout, ack)
        want = {"topic": topic, "payload": None if payload is None else to_bytes(payload),
                "qos": qos, "retain": retain}
        for k, v in want.items():
            if v is not None and getattr(m, k) != v:
                raise AssertionError("PUBLISH %s=%r, expected %r (%s)" % (k, getattr(m, k), v, m))
        return m

    def drain_publishes(self, idle=0.5, limit=10000, ack=True):
        """Receive PUBLISHes until none arrives for `idle` seconds."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.recv_publish(idle, ack))
            except PacketTimeout:
                break
        return out

    def expect_no_publish(self, window=0.3):
        assert not self.stash, "unexpected PUBLISH: %s" % describe(self.stash[0])
        self.expect_open(window)


# --------------------------------------------------------------------------
# unittest glue
# --------------------------------------------------------------------------

class BrokerTestCase(unittest.TestCase):
    """One fresh broker per test (isolation: a crash or a log line belongs to
    exactly one test).  Per-test limits via @limits(...); class default in
    `limits`.  On failure the broker's log tail is printed."""

    limits = {}
    start_broker = True

    def setUp(self):
        self.broker = None
        if self.start_broker:
            method = getattr(self, self._testMethodName)
            lim = dict(self.limits)
            lim.update(getattr(method, "broker_limits", {}))
            self.broker = self.make_broker(limits=lim)

    def make_broker(self, **kw):
        b = Broker(**kw)
        b.start()
        self.addCleanup(b.stop)
        return b

    def client(self, client_id, **kw):
        return self.broker.client(client_id, **kw)

    def raw(self):
        return self.broker.raw()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before and self.broker:
            sys.stderr.write("\n%s: %s\n" % (self.id(), self.broker.tail(40)))
        return out


def main():
    """Run the calling module's tests; exit 0 only if all pass (skips allowed)."""
    problem = target_problem()
    if problem:
        sys.stderr.write("e2e: cannot run the end-to-end tests: %s\n" % problem)
        sys.exit(99)
    sys.stderr.write("e2e target: %s\n" % (MOSQUITTO_BIN if is_mosquitto() else roost_bin()))
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    res = prog.result
    sys.exit(0 if res.wasSuccessful() and res.testsRun > 0 else 1)

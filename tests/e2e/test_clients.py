"""End-to-end: real clients against the broker.

  mosquitto_pub / mosquitto_sub  (Debian mosquitto-clients, libmosquitto)
  paho-mqtt 1.6.1                (python3-paho-mqtt; MQTTv311 and MQTTv31)

plus a Home Assistant style scenario: birth / last will on
homeassistant/status, retained discovery configs, state and command topics.
"""

import json
import os
import queue
import shutil
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from roostlib import HOST, BrokerTestCase, main

WAIT = 5.0
TOOL_TIMEOUT = 15
PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
# mosquitto_sub's -d lines go through stdio: line-buffer them so that the
# SUBACK line is seen as soon as it is printed.
STDBUF = [shutil.which("stdbuf"), "-oL"] if shutil.which("stdbuf") else []


class Paho:
    """A paho client on its own network thread, with bounded waits."""

    def __init__(self, port, client_id, protocol=mqtt.MQTTv311, clean=True, will=None,
                 keepalive=60):
        self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=protocol)
        if will:
            self.c.will_set(*will)     # topic, payload, qos, retain
        self.messages = queue.Queue()
        self.cond = threading.Condition()
        self.connack = None
        self.flags = None
        self.subacks = {}
        self.published = set()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.connect(HOST, port, keepalive)
        self.c.loop_start()
        self._wait(lambda: self.connack is not None, "CONNACK")
        if self.connack != 0:
            raise AssertionError("%s: CONNACK rc %s" % (client_id, self.connack))

    def _on_connect(self, c, u, flags, rc):
        with self.cond:
            self.connack, self.flags = rc, flags
            self.cond.notify_all()

    def _on_subscribe(self, c, u, mid, granted):
        with self.cond:
            self.subacks[mid] = granted
            self.cond.notify_all()

    def _on_publish(self, c, u, mid):
        with self.cond:
            self.published.add(mid)
            self.cond.notify_all()

    def _wait(self, pred, what):
        with self.cond:
            if not self.cond.wait_for(pred, WAIT):
                raise AssertionError("paho: no %s within %.0f s" % (what, WAIT))

    def subscribe(self, topic, qos=0):
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        self._wait(lambda: mid in self.subacks, "SUBACK")
        return list(self.subacks[mid])

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos, retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        self._wait(lambda: info.mid in self.published, "publish completion")

    def get(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("paho: no message within %.1f s" % timeout)

    def expect(self, topic, payload, qos=None, retain=None):
        m = self.get()
        got = (m.topic, m.payload)
        assert got == (topic, payload if isinstance(payload, bytes) else payload.encode()), got
        if qos is not None:
            assert m.qos == qos, "qos %d, expected %d" % (m.qos, qos)
        if retain is not None:
            assert bool(m.retain) == retain, "retain %s, expected %s" % (m.retain, retain)
        return m

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def kill(self):
        """Vanish without DISCONNECT, like a crashed process."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock:
            sock.close()


class ToolSub:
    """mosquitto_sub running in the background; ready() returns once it has
    its SUBACK (from the -d debug output), output() once it has exited."""

    def __init__(self, args):
        self.proc = subprocess.Popen(STDBUF + [SUB, "-d"] + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = queue.Queue()
        self.all = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def ready(self):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError("mosquitto_sub: no SUBACK within %.0f s: %s" % (WAIT, self.all))
            if line is None:
                raise AssertionError("mosquitto_sub exited before SUBACK: %s" % self.all)
            self.all.append(line)
            if line.startswith("Subscribed (mid:"):
                return

    def output(self):
        """Payload lines (debug lines removed) after the process exits."""
        try:
            rc = self.proc.wait(timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("mosquitto_sub did not exit: %s" % self.all)
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                break
            if line is None:
                break
            self.all.append(line)
        self.proc.stdout.close()
        assert rc == 0, "mosquitto_sub exited %d: %s" % (rc, self.all)
        return [l for l in self.all if not l.startswith(("Client ", "Subscribed (mid:"))]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


class MosquittoClientsTest(BrokerTestCase):

    def setUp(self):
        for tool in (PUB, SUB):
            if not os.access(tool, os.X_OK):
                self.fail("%s not installed (Debian package mosquitto-clients)" % tool)
        super().setUp()

    def common(self):
        return ["-h", HOST, "-p", str(self.broker.port)]

    def pub(self, *args, stdin=None):
        try:
            r = subprocess.run([PUB] + self.common() + list(args), input=stdin,
                               capture_output=True, timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("mosquitto_pub %s did not exit" % " ".join(args))
        self.assertEqual(r.returncode, 0, r.stderr)

    def sub(self, *args):
        s = ToolSub(self.common() + ["-W", str(TOOL_TIMEOUT)] + list(args))
        self.addCleanup(s.kill)
        s.ready()
        return s

    def test_pub_sub_each_qos(self):
        for q in (0, 1, 2):
            with self.subTest(qos=q):
                s = self.sub("-t", "tools/q%d" % q, "-q", "2", "-C", "1", "-F", "%q|%t|%p")
                self.pub("-t", "tools/q%d" % q, "-q", str(q), "-m", "hello qos %d" % q)
                self.assertEqual(s.output(), ["%d|tools/q%d|hello qos %d" % (q, q, q)])

    def test_retained_message_with_retain_flag(self):
        self.pub("-t", "tools/retained", "-q", "1", "-r", "-m", "kept")
        s = self.sub("-t", "tools/#", "-q", "1", "-C", "1", "-F", "%r|%t|%p")
        self.assertEqual(s.output(), ["1|tools/retained|kept"])
        self.pub("-t", "tools/retained", "-r", "-n")          # delete it
        self.pub("-t", "tools/other", "-r", "-m", "x")
        s = self.sub("-t", "tools/#", "-C", "1", "-F", "%r|%t|%p")
        self.assertEqual(s.output(), ["1|tools/other|x"])

    def test_mqtt31_and_mqtt311_clients_interoperate(self):
        s = self.sub("-V", "mqttv31", "-i", "old-sub", "-t", "tools/v31", "-q", "1",
                     "-C", "2", "-v")
        self.pub("-V", "mqttv31", "-i", "old-pub", "-t", "tools/v31", "-q", "1", "-m", "from 3.1")
        self.pub("-V", "mqttv311", "-t", "tools/v31", "-q", "2", "-m", "from 3.1.1")
        self.assertEqual(s.output(), ["tools/v31 from 3.1", "tools/v31 from 3.1.1"])

    def test_many_lines_arrive_in_order(self):
        n = 200
        s = self.sub("-t", "tools/lines", "-q", "1", "-C", str(n))
        lines = "".join("line %04d\n" % i for i in range(n)).encode()
        self.pub("-t", "tools/lines", "-q", "1", "-l", stdin=lines)
        self.assertEqual(s.output(), ["line %04d" % i for i in range(n)])

    def test_large_payload_from_stdin(self):
        payload = ("0123456789abcdef" * 8192)          # 128 KiB
        s = self.sub("-t", "tools/large", "-q", "1", "-C", "1", "-F", "%l")
        self.pub("-t", "tools/large", "-q", "1", "-s", stdin=payload.encode())
        self.assertEqual(s.output(), [str(len(payload))])

    def test_persistent_session_with_c(self):
        s = self.sub("-c", "-i", "tools-persist", "-t", "tools/persist", "-q", "1", "-C", "1")
        self.pub("-t", "tools/persist", "-q", "1", "-m", "one")
        self.assertEqual(s.output(), ["one"])
        self.pub("-t", "tools/persist", "-q", "1", "-m", "while away")
        s = ToolSub(self.common() + ["-c", "-i", "tools-persist", "-t", "tools/persist", "-q", "1",
                                      "-C", "1", "-W", str(TOOL_TIMEOUT)])
        self.addCleanup(s.kill)
        self.assertEqual(s.output(), ["while away"])


class PahoTest(BrokerTestCase):

    def paho(self, client_id, **kw):
        p = Paho(self.broker.port, client_id, **kw)
        self.addCleanup(p.close)
        return p

    def test_paho_v311_each_qos(self):
        sub = self.paho("paho-sub")
        self.assertEqual(sub.subscribe("paho/#", 2), [2])
        pub = self.paho("paho-pub")
        for q in (0, 1, 2):
            pub.publish("paho/q%d" % q, b"qos %d" % q, qos=q)
            sub.expect("paho/q%d" % q, b"qos %d" % q, qos=q, retain=False)

    def test_paho_v31_client(self):
        old = self.paho("paho-v31", protocol=mqtt.MQTTv31)
        self.assertEqual(old.subscribe("paho31/t", 1), [1])
        new = self.paho("paho-v311")
        new.publish("paho31/t", b"to 3.1", qos=1)
        old.expect("paho31/t", b"to 3.1", qos=1)
        old.publish("paho31/back", b"from 3.1", qos=2, retain=True)
        new.subscribe("paho31/back", 2)
        new.expect("paho31/back", b"from 3.1", qos=2, retain=True)

    def test_paho_persistent_session_gets_offline_messages(self):
        sub = self.paho("paho-persist", clean=False)
        sub.subscribe("paho/persist", 1)
        sub.close()
        pub = self.paho("paho-persist-pub")
        for i in range(3):
            pub.publish("paho/persist", b"%d" % i, qos=1)
        sub = self.paho("paho-persist", clean=False)
        self.assertEqual(sub.flags.get("session present"), 1)
        for i in range(3):
            sub.expect("paho/persist", b"%d" % i, qos=1)

    def test_paho_will_on_abrupt_close(self):
        watcher = self.paho("paho-watch")
        watcher.subscribe("paho/will", 1)
        victim = Paho(self.broker.port, "paho-victim", will=("paho/will", "gone", 1, False))
        self.addCleanup(victim.kill)
        victim.kill()
        watcher.expect("paho/will", b"gone", qos=1)

    def test_home_assistant_discovery_birth_will_and_commands(self):
        status = "homeassistant/status"
        watcher = self.paho("ha-status-watcher")
        watcher.subscribe(status, 1)

        # A device announces itself: retained discovery configs and state.
        device = self.paho("roost-e2e-device")
        device.subscribe("roost_e2e/switch1/set", 1)
        sensor_cfg = {"name": "Roost E2E temperature", "unique_id": "roost_e2e_temp1",
                      "state_topic": "roost_e2e/temp1/state", "unit_of_measurement": "°C",
                      "device_class": "temperature",
                      "device": {"identifiers": ["roost_e2e"], "name": "Roost E2E"}}
        switch_cfg = {"name": "Roost E2E switch", "unique_id": "roost_e2e_switch1",
                      "state_topic": "roost_e2e/switch1/state",
                      "command_topic": "roost_e2e/switch1/set",
                      "device": {"identifiers": ["roost_e2e"], "name": "Roost E2E"}}
        device.publish("homeassistant/sensor/roost_e2e_temp1/config",
                       json.dumps(sensor_cfg), qos=1, retain=True)
        device.publish("homeassistant/switch/roost_e2e_switch1/config",
                       json.dumps(switch_cfg), qos=1, retain=True)
        device.publish("roost_e2e/temp1/state", "21.5", qos=1, retain=True)
        device.publish("roost_e2e/switch1/state", "OFF", qos=1, retain=True)

        # Home Assistant: last will "offline" (retained), birth "online" (retained).
        ha = Paho(self.broker.port, "home-assistant-e2e",
                  will=(status, "offline", 1, True))
        self.addCleanup(ha.kill)
        ha.publish(status, "online", qos=1, retain=True)
        watcher.expect(status, b"online", retain=False)
        ha.subscribe("homeassistant/#", 0)
        configs, seen_status = {}, False
        while len(configs) < 2 or not seen_status:
            m = ha.get()
            if m.topic == status:
                self.assertEqual((m.payload, m.retain), (b"online", 1))
                seen_status = True
                continue
            self.assertTrue(m.retain, "discovery config must come as retained: %s" % m.topic)
            configs[m.topic] = json.loads(m.payload)
        self.assertEqual(configs["homeassistant/sensor/roost_e2e_temp1/config"], sensor_cfg)
        switch = configs["homeassistant/switch/roost_e2e_switch1/config"]

        # HA subscribes to the state topics it learnt and gets the retained states.
        ha.subscribe(sensor_cfg["state_topic"], 0)
        ha.expect("roost_e2e/temp1/state", b"21.5", retain=True)
        ha.subscribe(switch["state_topic"], 0)
        ha.expect("roost_e2e/switch1/state", b"OFF", retain=True)
        device.publish("roost_e2e/temp1/state", "22.0", qos=0)
        ha.expect("roost_e2e/temp1/state", b"22.0", retain=False)

        # A command from HA reaches the device, which reports the new state.
        ha.publish(switch["command_topic"], "ON", qos=0)
        device.expect("roost_e2e/switch1/set", b"ON", qos=0)
        device.publish(switch["state_topic"], "ON", qos=1, retain=True)
        ha.expect("roost_e2e/switch1/state", b"ON", retain=False)

        # HA dies without DISCONNECT: everyone sees "offline", kept as retained.
        ha.kill()
        watcher.expect(status, b"offline", qos=1, retain=False)
        late = self.paho("ha-late-subscriber")
        late.subscribe(status, 1)
        late.expect(status, b"offline", retain=True)


if __name__ == "__main__":
    main()

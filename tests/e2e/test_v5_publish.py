#!/usr/bin/env python3
"""End-to-end: MQTT 5 PUBLISH / SUBSCRIBE semantics (the publish side).

OASIS MQTT 5.0 sections 3.3-3.11 and 4.8.2.  Packets are written by hand with
roostlib's v5 builders (from the spec's byte layouts); real clients:
mosquitto_pub/mosquitto_sub -V mqttv5, paho-mqtt (MQTTv5) and, when Node and
the npm `mqtt` package are installed (tools/install-deps), MQTT.js.
"""

import os
import shutil
import subprocess
import tempfile
import time

from roostlib import (Closed, CONNACK, DISCONNECT, NO_LOCAL, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,
                      RETAIN_AS_PUBLISHED, SUBACK, UNSUBACK, BrokerTestCase, ack_packet_v5,
                      connect_packet_v5, limits, main, parse_ack_v5, parse_connack_v5,
                      parse_publish, parse_publish_v5, parse_reason_props, parse_suback_v5,
                      publish_packet, publish_packet_v5, retain_handling, roost_only, roost_yaml,
                      subscribe_packet_v5, unsubscribe_packet_v5, HOST)

PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"

# Properties of one PUBLISH, in wire order: every kind a broker forwards.
FORWARDED = [("payload_format", 1), ("user_property", ("k", "1")), ("content_type", "text/plain"),
             ("user_property", ("k", "2")), ("response_topic", "reply/here"),
             ("correlation_data", b"\x00\xff"), ("user_property", ("a", "3"))]


@roost_only("MQTT 5 publish semantics")
class V5PublishTest(BrokerTestCase):

    def connect5(self, client_id, properties=()):
        c = self.raw()
        c.send(connect_packet_v5(client_id, properties=properties))
        p = c.recv_packet()
        self.assertEqual(p.type, CONNACK)
        self.assertEqual(parse_connack_v5(p).reason, 0)
        return c

    def subscribe5(self, c, filters, properties=(), pid=1):
        c.send(subscribe_packet_v5(pid, filters, properties))
        p = c.recv_packet()
        self.assertEqual(p.type, SUBACK)
        return parse_suback_v5(p)[2]

    def recv5(self, c):
        return parse_publish_v5(c.recv_packet())

    def ack5(self, c, ptype):
        p = c.recv_packet()
        self.assertEqual(p.type, ptype)
        return parse_ack_v5(p)

    def nothing(self, c):
        """Nothing is pending for c: a PINGREQ's PINGRESP comes after anything
        the broker had sent before (and after c's earlier packets were handled)."""
        c.send(b"\xc0\x00")
        p = c.recv_packet()
        self.assertEqual(p.type, 13, "expected nothing but PINGRESP, got %r" % (p,))

    # -- properties ----------------------------------------------------------

    def test_MQTT_3_3_2_17_18_properties_forwarded_unchanged_in_order_byte_exact(self):
        s5, s3, pub = self.connect5("s5"), self.client("s3"), self.connect5("pub")
        self.subscribe5(s5, [("t/p", 0)])
        s3.subscribe("t/p")
        sent = publish_packet_v5("t/p", b"hi", properties=FORWARDED + [("topic_alias", 1)])
        pub.send(sent)
        # The same bytes without the Topic Alias (3 bytes) [MQTT-3.3.2-7].
        want = publish_packet_v5("t/p", b"hi", properties=FORWARDED)
        got = s5.recv_packet()
        self.assertEqual(bytes([got.type << 4 | got.flags]) + bytes([len(got.body)]) + got.body, want)
        # v3 interop: a 3.1.1 subscriber gets it without properties.
        m = parse_publish(s3.recv_packet())
        self.assertEqual((m.topic, m.payload), ("t/p", b"hi"))
        # And back: a 3.1.1 publisher's message reaches v5 with none.
        s3.send(publish_packet("t/p", b"v3"))
        m5 = self.recv5(s5)
        self.assertEqual((m5.payload, m5.props), (b"v3", []))

    def test_MQTT_3_3_2_6_message_expiry_decremented_while_queued(self):
        sub = self.connect5("exp-sub", properties=[("receive_maximum", 1)])
        pub = self.connect5("exp-pub")
        self.subscribe5(sub, [("t/e", 1)])
        pub.send(publish_packet_v5("t/e", b"1", qos=1, pid=1))
        pub.send(publish_packet_v5("t/e", b"2", qos=1, pid=2, properties=[("message_expiry", 10)]))
        first = self.recv5(sub)
        time.sleep(2.1)
        sub.send(ack_packet_v5(PUBACK, first.pid))
        second = self.recv5(sub)
        expiry = dict(second.props)["message_expiry"]
        self.assertLessEqual(expiry, 8, "waited 2 s of 10")
        self.assertGreaterEqual(expiry, 7)

    def test_MQTT_3_3_2_5_expired_retained_not_sent(self):
        pub = self.connect5("rp")
        pub.send(publish_packet_v5("t/r", b"old", retain=True, properties=[("message_expiry", 1)]))
        self.nothing(pub)
        time.sleep(1.2)
        sub = self.connect5("rs")
        self.subscribe5(sub, [("t/r", 0)])
        self.nothing(sub)

    # -- SUBSCRIBE options ---------------------------------------------------

    def test_MQTT_3_8_3_3_no_local(self):
        c = self.connect5("nl")
        self.subscribe5(c, [("t/nl", NO_LOCAL)])
        c.send(publish_packet_v5("t/nl", b"x"))
        self.nothing(c)

    def test_MQTT_3_3_1_12_retain_as_published(self):
        rap, plain, pub = self.connect5("rap"), self.connect5("plain"), self.connect5("p")
        self.subscribe5(rap, [("t/rap", RETAIN_AS_PUBLISHED)])
        self.subscribe5(plain, [("t/rap", 0)])
        pub.send(publish_packet_v5("t/rap", b"x", retain=True))
        self.assertTrue(self.recv5(rap).retain)
        self.assertFalse(self.recv5(plain).retain)  # [MQTT-3.3.1-13]

    def test_MQTT_3_3_1_9_10_11_retain_handling(self):
        pub, c = self.connect5("p"), self.connect5("rh")
        pub.send(publish_packet_v5("t/rh", b"x", retain=True))
        self.nothing(pub)  # the retained message is stored before the subscribe
        self.subscribe5(c, [("t/rh", retain_handling(2))])
        self.nothing(c)  # [MQTT-3.3.1-11]
        self.subscribe5(c, [("t/rh", retain_handling(1))])
        self.nothing(c)  # the subscription existed [MQTT-3.3.1-10]
        self.subscribe5(c, [("t/rh", retain_handling(0))])
        self.assertTrue(self.recv5(c).retain)  # [MQTT-3.3.1-9]

    def test_MQTT_3_3_4_3_subscription_identifiers_on_delivery(self):
        c, pub = self.connect5("sid"), self.connect5("p")
        self.subscribe5(c, [("t/sid", 0)], properties=[("subscription_id", 3)], pid=1)
        self.subscribe5(c, [("t/+", 0)], properties=[("subscription_id", 70000)], pid=2)
        pub.send(publish_packet_v5("t/sid", b"x"))
        m = self.recv5(c)
        self.assertEqual(sorted(v for k, v in m.props if k == "subscription_id"), [3, 70000])
        self.nothing(c)  # one copy [MQTT-3.3.4-2]

    def test_suback_and_unsuback_reason_codes(self):
        c = self.connect5("codes")
        self.assertEqual(self.subscribe5(c, [("a/#/b", 0), ("ok", 2), ("$share//x", 0)]), [0x8F, 0x02, 0x8F])
        c.send(unsubscribe_packet_v5(5, ["ok", "never", "a#"]))
        p = c.recv_packet()
        self.assertEqual(p.type, UNSUBACK)
        self.assertEqual(parse_suback_v5(p)[2], [0x00, 0x11, 0x8F])  # [MQTT-3.11.3-1]

    @limits(max_subscriptions=1)
    def test_suback_0x97_quota_exceeded(self):
        c = self.connect5("quota")
        self.assertEqual(self.subscribe5(c, [("a", 0), ("b", 0)]), [0x00, 0x97])

    def test_subscription_identifier_0_is_a_protocol_error(self):
        c = self.connect5("sid0")
        c.send(subscribe_packet_v5(1, [("t", 0)], properties=b"\x0b\x00"))
        p = c.recv_packet()  # [MQTT-3.14.2-1] the server says why before it closes
        self.assertEqual(p.type, DISCONNECT, "expected DISCONNECT, got %r" % (p,))
        self.assertEqual(parse_reason_props(p)[0], 0x82)
        c.expect_closed()

    # -- acknowledgements ----------------------------------------------------

    def test_puback_0x10_no_matching_subscribers(self):
        c = self.connect5("nms")
        c.send(publish_packet_v5("nobody/here", b"x", qos=1, pid=1))
        self.assertEqual(self.ack5(c, PUBACK)[:2], (1, 0x10))

    def test_puback_0x87_not_authorized_with_reason_string(self):
        c = self.connect5("na")
        c.send(publish_packet_v5("$SYS/mine", b"x", qos=1, pid=1))
        pid, reason, props = self.ack5(c, PUBACK)
        self.assertEqual((pid, reason), (1, 0x87))
        self.assertIn("reason_string", props)
        c.send(publish_packet_v5("$SYS/mine", b"x", qos=2, pid=2))
        self.assertEqual(self.ack5(c, PUBREC)[:2], (2, 0x87))

    def test_no_reason_string_without_problem_information_MQTT_3_1_2_29(self):
        c = self.connect5("quiet", properties=[("request_problem_info", 0)])
        c.send(publish_packet_v5("$SYS/mine", b"x", qos=1, pid=1))
        self.assertEqual(self.ack5(c, PUBACK), (1, 0x87, {}))

    @limits(max_topic_length=8)
    def test_puback_0x90_topic_name_invalid(self):
        c = self.connect5("tni")
        c.send(publish_packet_v5("a" * 9, b"x", qos=1, pid=1))
        self.assertEqual(self.ack5(c, PUBACK)[:2], (1, 0x90))

    @limits(max_retained_messages=1)
    def test_puback_0x97_quota_exceeded(self):
        c = self.connect5("q")
        c.send(publish_packet_v5("r/1", b"x", qos=1, pid=1, retain=True))
        self.ack5(c, PUBACK)
        c.send(publish_packet_v5("r/2", b"x", qos=1, pid=2, retain=True))
        self.assertEqual(self.ack5(c, PUBACK)[:2], (2, 0x97))

    def test_MQTT_3_3_2_4_puback_0x99_payload_format_invalid(self):
        c = self.connect5("pfi")
        c.send(publish_packet_v5("t", b"\xff\xfe", qos=1, pid=1, properties=[("payload_format", 1)]))
        self.assertEqual(self.ack5(c, PUBACK)[:2], (1, 0x99))

    def test_pubrel_and_pubrec_0x92_packet_identifier_not_found(self):
        c = self.connect5("pid")
        c.send(ack_packet_v5(PUBREL, 7))
        self.assertEqual(self.ack5(c, PUBCOMP)[:2], (7, 0x92))
        c.send(ack_packet_v5(PUBREC, 8))
        self.assertEqual(self.ack5(c, PUBREL)[:2], (8, 0x92))

    # -- flow control ----------------------------------------------------------

    def test_MQTT_3_3_4_9_client_receive_maximum(self):
        sub, pub = self.connect5("rm", properties=[("receive_maximum", 2)]), self.connect5("p")
        self.subscribe5(sub, [("t/rm", 1)])
        for i in range(5):
            pub.send(publish_packet_v5("t/rm", b"%d" % i, qos=1, pid=i + 1))
        got = [self.recv5(sub), self.recv5(sub)]
        self.nothing(sub)  # two unacknowledged: the window is full
        sub.send(ack_packet_v5(PUBACK, got[0].pid))
        self.assertEqual(self.recv5(sub).payload, b"2")

    def test_MQTT_3_1_2_25_over_maximum_packet_size_dropped(self):
        sub, pub = self.connect5("mps", properties=[("maximum_packet_size", 40)]), self.connect5("p")
        self.subscribe5(sub, [("t/mps", 0)])
        pub.send(publish_packet_v5("t/mps", b"x" * 100))
        pub.send(publish_packet_v5("t/mps", b"small"))
        self.assertEqual(self.recv5(sub).payload, b"small")

    # -- topic aliases ---------------------------------------------------------

    def test_MQTT_3_3_2_12_inbound_alias_and_errors(self):
        sub, pub = self.connect5("as"), self.connect5("ap")
        self.subscribe5(sub, [("long/topic/name", 0)])
        pub.send(publish_packet_v5("long/topic/name", b"1", properties=[("topic_alias", 1)]))
        pub.send(publish_packet_v5("", b"2", properties=[("topic_alias", 1)]))
        self.assertEqual([self.recv5(sub).topic for _ in range(2)], ["long/topic/name"] * 2)
        # An alias above our maximum (10): DISCONNECT 0x94.
        pub.send(publish_packet_v5("x", b"", properties=[("topic_alias", 11)]))
        p = pub.recv_packet()
        self.assertEqual((p.type, parse_reason_props(p)[0]), (DISCONNECT, 0x94))
        pub.expect_closed()
        # Alias 0 is not permitted [MQTT-3.3.2-8]: 0x94 as well.
        zero = self.connect5("ap0")
        zero.send(publish_packet_v5("x", b"", properties=[("topic_alias", 0)]))
        p = zero.recv_packet()
        self.assertEqual((p.type, parse_reason_props(p)[0]), (DISCONNECT, 0x94))
        # An unknown alias with an empty topic: 0x82 Protocol Error.
        other = self.connect5("ap2")
        other.send(publish_packet_v5("", b"", properties=[("topic_alias", 3)]))
        p = other.recv_packet()
        self.assertEqual((p.type, parse_reason_props(p)[0]), (DISCONNECT, 0x82))

    def test_server_disconnect_survives_what_the_client_still_sends(self):
        # [MQTT-3.14.0-1] the DISCONNECT must reach the client even when it
        # keeps sending (a PUBREL or PINGREQ already on its way): the broker
        # stops writing and reads and drops the rest instead of closing with
        # unread input, which would answer with RST and can destroy the
        # DISCONNECT before the client reads it.
        c = self.connect5("linger")
        c.send(publish_packet_v5("x", b"", properties=[("topic_alias", 0)]))
        time.sleep(0.3)                 # the broker has closed by now
        for _ in range(3):
            c.send(bytes([0xC0, 0]))     # PINGREQs after the close: no EPIPE, no RST
            time.sleep(0.1)
        p = c.recv_packet()
        self.assertEqual((p.type, parse_reason_props(p)[0]), (DISCONNECT, 0x94))
        try:
            c.recv_packet()
            self.fail("a packet after the server's DISCONNECT")
        except Closed as e:
            self.assertIn("EOF", str(e))  # an orderly end, not a reset

    def test_MQTT_3_3_2_11_outbound_aliases_save_bytes(self):
        topic = "home/livingroom/sensor/temperature"
        plain, alias = self.connect5("no-alias"), self.connect5("alias", properties=[("topic_alias_maximum", 5)])
        pub = self.connect5("p")
        for c in (plain, alias):
            self.subscribe5(c, [(topic, 0)])
        for i in range(10):
            pub.send(publish_packet_v5(topic, b"21.5"))
        sizes = {}
        for name, c in (("plain", plain), ("alias", alias)):
            total = 0
            for i in range(10):
                p = c.recv_packet()
                m = parse_publish_v5(p)
                total += 2 + len(p.body)
                if name == "alias":
                    self.assertEqual(dict(m.props)["topic_alias"], 1)
                    self.assertEqual(m.topic, topic if i == 0 else "")
            sizes[name] = total
        # 10 messages: the topic (34 bytes) once instead of ten times, 3 bytes of alias each.
        self.assertEqual(sizes["plain"] - sizes["alias"], 9 * len(topic) - 10 * 3)

    # -- shared subscriptions ----------------------------------------------------

    def test_MQTT_4_8_2_shared_round_robin_v5_and_v311(self):
        a, b, pub = self.connect5("sa"), self.client("sb"), self.connect5("p")
        self.subscribe5(a, [("$share/grp/t/s", 0)])
        b.subscribe("$share/grp/t/s")  # a 3.1.1 member
        for i in range(4):
            pub.send(publish_packet_v5("t/s", b"%d" % i))
        got_a = [self.recv5(a).payload for _ in range(2)]
        got_b = [parse_publish(b.recv_packet()).payload for _ in range(2)]
        self.assertEqual(sorted(got_a + got_b), [b"0", b"1", b"2", b"3"])
        self.nothing(a)

    def test_shared_subscribe_gets_no_retained(self):
        pub, c = self.connect5("p"), self.connect5("sr")
        pub.send(publish_packet_v5("t/sr", b"x", retain=True))
        self.nothing(pub)
        self.subscribe5(c, [("$share/g/t/sr", 0)])
        self.nothing(c)

    # -- real clients --------------------------------------------------------------

    def test_mosquitto_clients_v5_user_properties(self):
        port = str(self.broker.port)
        sub = subprocess.Popen([SUB, "-V", "mqttv5", "-h", HOST, "-p", port, "-t", "mq/up", "-C", "1",
                                "-F", "%t %p %P", "-W", "10"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        subprocess.run([PUB, "-V", "mqttv5", "-h", HOST, "-p", port, "-t", "mq/up", "-m", "hello",
                        "-D", "publish", "user-property", "room", "kitchen"], check=True, timeout=10)
        out, _ = sub.communicate(timeout=15)
        self.assertEqual(out.strip(), "mq/up hello room:kitchen")

    def test_paho_v5_properties_and_subscription_identifier(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        got = []
        sub = mqtt.Client("paho-sub", protocol=mqtt.MQTTv5)
        sub.on_message = lambda c, u, m: got.append(m)
        sub.connect(HOST, self.broker.port)
        sub.loop_start()
        self.addCleanup(sub.loop_stop)
        sp = Properties(PacketTypes.SUBSCRIBE)
        sp.SubscriptionIdentifier = 42
        sub.subscribe("paho/t", qos=1, properties=sp)
        time.sleep(0.5)
        pub = mqtt.Client("paho-pub", protocol=mqtt.MQTTv5)
        pub.connect(HOST, self.broker.port)
        pub.loop_start()
        self.addCleanup(pub.loop_stop)
        pp = Properties(PacketTypes.PUBLISH)
        pp.ContentType = "application/json"
        pp.ResponseTopic = "paho/reply"
        pp.CorrelationData = b"\x01\x02"
        pp.UserProperty = [("a", "1"), ("b", "2")]
        pub.publish("paho/t", b"{}", qos=1, properties=pp).wait_for_publish()
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(got), 1)
        p = got[0].properties
        self.assertEqual((p.ContentType, p.ResponseTopic, p.CorrelationData), ("application/json", "paho/reply",
                                                                                 b"\x01\x02"))
        self.assertEqual(p.UserProperty, [("a", "1"), ("b", "2")])
        self.assertEqual(p.SubscriptionIdentifier, [42])
        sub.disconnect()
        pub.disconnect()

    def test_mqtt_js_v5(self):
        node = shutil.which("node")
        # The same MQTT.js as test_websockets.py: tests/e2e/package.json.
        modules = os.environ.get("ROOST_NODE_MODULES") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                       "node_modules")
        if not node or not os.path.isdir(os.path.join(modules, "mqtt")):
            self.fail("MQTT.js is not installed in %s: run `npm install --prefix tests/e2e` "
                      "(tools/install-deps does)" % modules)
        script = """
const mqtt = require('mqtt');
const url = 'mqtt://%s:%d';
const sub = mqtt.connect(url, {protocolVersion: 5, clientId: 'js-sub'});
sub.on('connect', () => sub.subscribe('js/t', {qos: 1, properties: {subscriptionIdentifier: 9}}, () => {
  const pub = mqtt.connect(url, {protocolVersion: 5, clientId: 'js-pub'});
  pub.on('connect', () => pub.publish('js/t', 'hi', {qos: 1, properties: {
      contentType: 'text/plain', userProperties: {k: 'v'}, messageExpiryInterval: 30}}, () => pub.end()));
}));
sub.on('message', (t, m, p) => {
  console.log(JSON.stringify({t, m: m.toString(), ct: p.properties.contentType,
    up: p.properties.userProperties, sid: p.properties.subscriptionIdentifier,
    exp: p.properties.messageExpiryInterval}));
  sub.end(); process.exit(0);
});
setTimeout(() => process.exit(3), 8000);
""" % (HOST, self.broker.port)
        out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=20,
                             env=dict(os.environ, NODE_PATH=modules))
        self.assertEqual(out.returncode, 0, out.stderr)
        import json
        m = json.loads(out.stdout)
        self.assertEqual((m["t"], m["m"], m["ct"], m["up"]), ("js/t", "hi", "text/plain", {"k": "v"}))
        self.assertIn(m["sid"], (9, [9]))
        self.assertLessEqual(m["exp"], 30)


if __name__ == "__main__":
    main()

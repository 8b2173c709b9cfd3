"""End-to-end: MQTT 5 CONNECT / CONNACK / DISCONNECT / AUTH (the connect side).

OASIS MQTT 5.0 sections 3.1, 3.2, 3.14, 3.15 and 4.12.  Packets are written
out by hand (roostlib's v5 builders, from the spec's byte layouts); real
clients: mosquitto_pub/mosquitto_sub -V mqttv5 and paho-mqtt (MQTTv5).
"""

import shutil
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from roostlib import (CONNACK, DISCONNECT, HOST, BrokerTestCase, Will, connect_packet_v5,
                      disconnect_packet_v5, limits,
                      main, parse_connack_v5, parse_reason_props, publish_packet, roost_only,
                      roost_yaml)

PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"


@roost_only("roost's own defaults and keys")
class V5ConnectTest(BrokerTestCase):

    def connect5(self, client_id, **kw):
        c = self.raw()
        c.send(connect_packet_v5(client_id, **kw))
        p = c.recv_packet()
        self.assertEqual((p.type, p.flags), (CONNACK, 0), "[MQTT-3.2.0-1]")
        return c, parse_connack_v5(p)

    def refused(self, client_id, reason, **kw):
        c, ack = self.connect5(client_id, **kw)
        self.assertEqual(ack.reason, reason, ack)
        self.assertEqual(ack.session_present, 0, "[MQTT-3.2.2-6] session present 0 on refusal")
        c.expect_closed()  # [MQTT-3.2.2-7]
        return ack

    def broker_with(self, extra="", **lim):
        return self.make_broker(config_text=roost_yaml(lim, extra=extra))

    # -- CONNACK properties ------------------------------------------------

    def test_MQTT_3_2_2_connack_properties_of_the_defaults_byte_exact(self):
        c = self.raw()
        c.send(connect_packet_v5("v5-defaults"))
        p = c.recv_packet()
        # 20 0c: flags 00, reason 00, properties (9 bytes): Topic Alias
        # Maximum 10 (22 00 0a), Wildcard / Subscription Identifier /
        # Shared Subscription Available 1 (28 01 29 01 2a 01).
        self.assertEqual(bytes([p.type << 4 | p.flags]) + bytes([len(p.body)]) + p.body,
                         bytes.fromhex("200c" "0000" "09" "22000a" "2801" "2901" "2a01"))
        c.ping()

    def test_MQTT_3_2_2_16_assigned_client_identifier_for_an_empty_id(self):
        for clean in (True, False):
            with self.subTest(clean=clean):
                # [MQTT-3.1.3-6] v5 accepts an empty id with either Clean Start
                c, ack = self.connect5("", clean=clean,
                                       properties=[("session_expiry", 0 if clean else 30)])
                self.assertEqual(ack.reason, 0)
                aid = ack.props.get("assigned_client_id")
                self.assertTrue(aid, "[MQTT-3.2.2-16] no Assigned Client Identifier: %r" % (ack,))
                self.broker.wait_for_log(r"client %s \(.*\) connected: MQTT 5" % aid.decode())
                c.ping()

    def test_no_assigned_client_identifier_for_a_given_id(self):
        _, ack = self.connect5("v5-named")
        self.assertNotIn("assigned_client_id", ack.props)

    @limits(max_keepalive=30)
    def test_MQTT_3_2_2_21_server_keep_alive_lowers_the_clients(self):
        c, ack = self.connect5("v5-ka", keepalive=100)
        self.assertEqual(ack.reason, 0, "v5: a keep alive above max_keepalive is not refused")
        self.assertEqual(ack.props.get("server_keepalive"), 30)
        self.broker.wait_for_log(r"client v5-ka .* keepalive 30")
        c2, ack2 = self.connect5("v5-ka2", keepalive=20)
        self.assertNotIn("server_keepalive", ack2.props)

    def test_connack_receive_maximum_max_qos_retain_packet_size_from_config(self):
        self.broker = self.broker_with(extra="retain_available: false\n", receive_maximum=5, max_qos=1,
                                       max_packet_size=1000, max_topic_alias=0)
        _, ack = self.connect5("v5-lim")
        self.assertEqual(ack.reason, 0)
        self.assertEqual(ack.props.get("receive_maximum"), 5)
        self.assertEqual(ack.props.get("maximum_qos"), 1, "[MQTT-3.2.2-9]")
        self.assertEqual(ack.props.get("retain_available"), 0)
        self.assertEqual(ack.props.get("maximum_packet_size"), 1000)
        self.assertNotIn("topic_alias_maximum", ack.props, "0 is the default: not sent")

    def test_response_information_when_requested(self):
        self.broker = self.broker_with(extra='response_information: "response/{client id}/"\n')
        _, ack = self.connect5("v5-ri", properties=[("request_response_info", 1)])
        self.assertEqual(ack.props.get("response_info"), b"response/v5-ri/")
        _, ack = self.connect5("v5-ri2")
        self.assertNotIn("response_info", ack.props, "not requested: not sent")

    # -- refusals, each with its reason code ---------------------------------

    def test_MQTT_3_1_2_8_will_not_authorized_0x87_with_reason_string(self):
        ack = self.refused("v5-will$", 0x87, will=Will("$SYS/mine", b"x"))
        self.assertIn("reason_string", ack.props)

    def test_MQTT_3_1_2_29_no_reason_string_when_problem_info_is_0(self):
        ack = self.refused("v5-quiet", 0x87, will=Will("$SYS/mine", b"x"),
                           properties=[("request_problem_info", 0)])
        self.assertNotIn("reason_string", ack.props)

    def test_MQTT_3_1_3_11_will_topic_with_wildcard_malformed_0x81(self):
        # The codec finds it: a wildcard in the will topic is a malformed CONNECT.
        self.refused("v5-wt", 0x81, will=Will("a/+", b"x"))

    @limits(max_qos=1)
    def test_MQTT_3_2_2_12_will_qos_above_maximum_qos_0x9b(self):
        self.refused("v5-wq", 0x9B, will=Will("a/w", b"x", 2))

    def test_MQTT_3_2_2_13_retained_will_without_retain_available_0x9a(self):
        self.broker = self.broker_with(extra="retain_available: false\n")
        self.refused("v5-wr", 0x9A, will=Will("a/w", b"x", 0, True))

    def test_MQTT_4_12_0_1_unknown_authentication_method_0x8c(self):
        self.refused("v5-am", 0x8C, properties=[("auth_method", "SCRAM-SHA-1")])

    def test_MQTT_4_13_1_duplicate_property_protocol_error_0x82(self):
        self.refused("v5-dup", 0x82, properties=[("session_expiry", 1), ("session_expiry", 2)])

    def test_MQTT_2_2_2_2_property_of_another_packet_malformed_0x81(self):
        # Topic Alias (0x23) is a PUBLISH property.
        self.refused("v5-wrong", 0x81, properties=[("topic_alias", 1)])

    def test_MQTT_1_5_5_1_non_minimal_varint_property_length_0x81(self):
        # The CONNECT property length 0 written in two bytes (80 00).
        c = self.raw()
        pkt = bytearray(connect_packet_v5("v5-vbi"))
        i = pkt.index(b"\x00\x3c") + 2        # after keep alive: the property length
        pkt[i:i + 1] = b"\x80\x00"
        pkt[1] += 1
        c.send(bytes(pkt))
        p = c.recv_packet()
        self.assertEqual(parse_connack_v5(p).reason, 0x81)
        c.expect_closed()

    # -- server DISCONNECT with reason codes (MQTT 5.0 3.14.2.1) ---------------

    def expect_disconnect(self, c, reason):
        p = c.recv_packet()
        self.assertEqual(p.type, DISCONNECT, "expected DISCONNECT, got %r" % (p,))
        code, props = parse_reason_props(p)
        self.assertEqual(code, reason, props)
        self.assertIn("reason_string", props)
        c.expect_closed()
        return props

    def test_MQTT_3_1_4_3_session_taken_over_0x8e(self):
        first, _ = self.connect5("v5-take")
        self.connect5("v5-take")
        self.expect_disconnect(first, 0x8E)

    def test_MQTT_3_1_2_24_keep_alive_timeout_0x8d(self):
        c, _ = self.connect5("v5-ka1", keepalive=1)
        self.expect_disconnect(c, 0x8D)

    def test_malformed_packet_0x81(self):
        c, _ = self.connect5("v5-mal")
        c.send(b"\xc0\x01\x00")   # PINGREQ with a body [MQTT-3.12]
        self.expect_disconnect(c, 0x81)
        self.broker.wait_for_log(r"client v5-mal .* closed: DISCONNECT 0x81: malformed PINGREQ")

    @limits(max_packet_size=64)
    def test_packet_too_large_0x95(self):
        c, ack = self.connect5("v5-big")
        self.assertEqual(ack.props.get("maximum_packet_size"), 64)
        c.send(publish_packet("big", b"x" * 100))
        self.expect_disconnect(c, 0x95)

    def test_MQTT_3_1_0_2_second_connect_0x82(self):
        c, _ = self.connect5("v5-two")
        c.send(connect_packet_v5("v5-two"))
        self.expect_disconnect(c, 0x82)

    def test_reason_string_left_out_when_problem_info_0(self):
        c, _ = self.connect5("v5-q2", properties=[("request_problem_info", 0)])
        c.send(connect_packet_v5("v5-q2"))
        p = c.recv_packet()
        self.assertEqual(parse_reason_props(p), (0x82, {}))

    def test_server_shutting_down_0x8b(self):
        c, _ = self.connect5("v5-down")
        c3 = self.client("v3-down")    # 3.1.1: just closed
        self.broker.send_signal(signal.SIGTERM)
        self.expect_disconnect(c, 0x8B)
        c3.expect_closed()
        self.assertEqual(self.broker.proc.wait(timeout=10), 0)
        self.broker.stop(check=False)
        self.broker.assert_no_sanitizer_report()

    # -- Session Expiry Interval (3.1.2.11.2) ---------------------------------

    def test_MQTT_3_1_2_5_session_expires_after_its_interval(self):
        c, ack = self.connect5("v5-exp", clean=False, properties=[("session_expiry", 1)])
        c.send(disconnect_packet_v5())
        c.expect_closed()
        c, ack = self.connect5("v5-exp", clean=False, properties=[("session_expiry", 1)])
        self.assertEqual(ack.session_present, 1, "[MQTT-3.2.2-2] resumed within the interval")
        c.send(disconnect_packet_v5())
        c.expect_closed()
        mark = self.broker.log_mark()
        t0 = time.monotonic()
        self.broker.wait_for_log(r"session v5-exp expired", timeout=5, since=mark)
        self.assertGreaterEqual(time.monotonic() - t0, 0.8)
        _, ack = self.connect5("v5-exp", clean=False, properties=[("session_expiry", 1)])
        self.assertEqual(ack.session_present, 0, "expired: a new session")

    def test_MQTT_3_14_2_2_disconnect_cannot_set_expiry_after_0(self):
        c, _ = self.connect5("v5-e0")
        c.send(disconnect_packet_v5(0, [("session_expiry", 30)]))
        self.expect_disconnect(c, 0x82)

    # -- Will Delay Interval (3.1.3.2.2) ----------------------------------------

    def test_MQTT_3_1_3_9_will_delay_interval(self):
        watcher = self.client("v5-watch")
        watcher.subscribe(("v5/will", 0))
        c, _ = self.connect5("v5-wd", clean=False, properties=[("session_expiry", 30)],
                             will=Will("v5/will", b"gone"), will_properties=[("will_delay", 1)])
        t0 = time.monotonic()
        c.abort()                       # no DISCONNECT
        watcher.expect_no_publish(0.5)
        m = watcher.expect_publish("v5/will", b"gone")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9, m)

    def test_disconnect_0x04_publishes_the_will_0x00_does_not(self):
        watcher = self.client("v5-watch4")
        watcher.subscribe(("v5/w4", 0))
        for reason, published in ((0x00, False), (0x04, True)):
            c, _ = self.connect5("v5-d%d" % reason, will=Will("v5/w4", b"w%d" % reason))
            c.send(disconnect_packet_v5(reason))
            c.expect_closed()
            if published:
                watcher.expect_publish("v5/w4", b"w4")
            else:
                watcher.expect_no_publish(0.3)

    # -- malformed DISCONNECT / AUTH (MQTT 5.0 2.2.2, 4.13) ---------------------

    def test_MQTT_4_13_disconnect_duplicate_property_0x82(self):
        c, _ = self.connect5("v5-dd", properties=[("session_expiry", 10)])
        c.send(disconnect_packet_v5(0, [("session_expiry", 1), ("session_expiry", 2)]))
        self.expect_disconnect(c, 0x82)
        self.broker.wait_for_log(r"client v5-dd .* closed: DISCONNECT 0x82: malformed DISCONNECT")

    def test_MQTT_2_2_2_2_disconnect_property_of_connack_0x81(self):
        c, _ = self.connect5("v5-dw")
        c.send(disconnect_packet_v5(0, [("assigned_client_id", "x")]))
        self.expect_disconnect(c, 0x81)

    def test_MQTT_1_5_5_1_disconnect_non_minimal_property_length_0x81(self):
        c, _ = self.connect5("v5-dv")
        c.send(b"\xe0\x03\x00\x80\x00")   # property length 0 in two bytes
        self.expect_disconnect(c, 0x81)

    def test_disconnect_reserved_reason_code_0x82(self):
        c, _ = self.connect5("v5-dr")
        c.send(disconnect_packet_v5(0x05))
        self.expect_disconnect(c, 0x82)

    # -- real clients ------------------------------------------------------

    def test_mosquitto_pub_sub_v5(self):
        common = ["-h", HOST, "-p", str(self.broker.port), "-V", "mqttv5"]
        sub = subprocess.Popen([SUB] + common + ["-t", "v5/t", "-C", "1", "-W", "10", "-i", "v5sub",
                                                 "-D", "connect", "session-expiry-interval", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(sub.kill)
        self.broker.wait_for_log(r"client v5sub .* connected: MQTT 5")
        # Retained, so that the subscriber gets it whenever its SUBSCRIBE lands.
        r = subprocess.run([PUB] + common + ["-t", "v5/t", "-r", "-m", "hello v5"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = sub.communicate(timeout=10)
        self.assertEqual(out.strip(), b"hello v5", err)

    def test_paho_v5_assigned_client_id_and_server_keepalive(self):
        self.broker = self.broker_with(max_keepalive=20)
        got = {}
        ev = threading.Event()

        def on_connect(c, u, flags, rc, props=None):
            got["rc"], got["props"] = rc, props
            ev.set()

        c = mqtt.Client(client_id="", protocol=mqtt.MQTTv5)
        c.on_connect = on_connect
        p = Properties(PacketTypes.CONNECT)
        p.SessionExpiryInterval = 0
        c.connect(HOST, self.broker.port, keepalive=60, properties=p)
        c.loop_start()
        self.addCleanup(c.loop_stop)
        self.assertTrue(ev.wait(5), "no CONNACK")
        self.assertEqual(int(got["rc"].value), 0)
        self.assertTrue(got["props"].AssignedClientIdentifier.startswith("auto-"))
        self.assertEqual(got["props"].ServerKeepAlive, 20)
        c.disconnect()


if __name__ == "__main__":
    main()

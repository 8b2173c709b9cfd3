"""End-to-end: malformed packets and protocol violations.

Each test sends bad input on one connection and checks that
  1. the broker closes that connection [MQTT-4.8.0-1] (or the id named in the test),
  2. it logs a line naming the client id ("-" before CONNECT) and "closed",
  3. another client, connected before, still works, and new clients can connect,
  4. the broker exits 0 at teardown (no crash, no sanitizer report).
Packets are written out by hand from the layouts of MQTT 3.1.1 chapters 2-3.
"""

import random

from roostlib import (PUBREC, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, BrokerTestCase, Will,
                      connect_packet, limits, main, mqtt_str, packet, publish_packet,
                      pubrel_packet, roost_only, subscribe_packet, u16, unsubscribe_packet)

UNKNOWN = "-"


class MalformedTest(BrokerTestCase):

    def setUp(self):
        super().setUp()
        self.bystander = self.client("bystander")
        self.bystander.subscribe(("bystander/#", 1))
        self.n_fresh = 0

    def assert_bystander_ok(self):
        self.bystander.publish("bystander/ping", b"still here", qos=1)
        self.bystander.expect_publish("bystander/ping", b"still here", qos=1)
        self.n_fresh += 1
        self.client("fresh-%d" % self.n_fresh).ping()

    def check_closed(self, data, client_id="victim", connect=True, will=None, before=None,
                     log_ids=None, half_close=False):
        """Connect `client_id` (unless connect=False: `data` then starts the
        connection), run `before(victim)`, send `data`, and check the four
        points of the module docstring.  With a will (topic under
        bystander/), the bystander must receive it, as the close is abnormal."""
        mark = self.broker.log_mark()
        v = self.raw()
        if connect:
            v.connect(client_id, will=will)
        if before:
            before(v)
        v.send(data, allow_closed=True)
        if half_close:
            v.shutdown_write()
        v.expect_closed()
        if log_ids is None:
            log_ids = client_id if connect else UNKNOWN
        if log_ids:
            self.broker.assert_close_logged(log_ids, since=mark)
        if will:
            self.bystander.expect_publish(will.topic, will.payload, qos=will.qos)
        self.assert_bystander_ok()

    # -- framing -------------------------------------------------------------

    def test_MQTT_4_8_0_1_remaining_length_of_five_bytes(self):
        # 2.2.3: at most 4 bytes; the 4th must not have the continuation bit.
        self.check_closed(b"\x30\xff\xff\xff\xff\x7f")

    def test_MQTT_4_8_0_1_string_length_overruns_packet(self):
        # PUBLISH whose topic claims 100 bytes in a 5-byte body.
        self.check_closed(packet(PUBLISH, 0, u16(100) + b"abc"))

    @roost_only("Mosquitto 2.0.11 answers a PINGREQ that has a body with PINGRESP")
    def test_MQTT_4_8_0_1_pingreq_with_a_body(self):
        self.check_closed(b"\xc0\x01\x00")

    def test_MQTT_4_8_0_1_reserved_packet_types_0_and_15(self):
        for i, data in enumerate((b"\x00\x00", b"\xf0\x00")):
            with self.subTest(type=data[0] >> 4):
                self.check_closed(data, client_id="victim-%d" % i)

    def test_MQTT_4_8_0_1_connack_sent_by_client(self):
        self.check_closed(b"\x20\x02\x00\x00")

    @roost_only("Mosquitto 2.0.11 silently accepts SUBACK, UNSUBACK and PINGRESP from a client "
                "(its bridge code handles them)")
    def test_MQTT_4_8_0_1_other_server_only_packets_sent_by_client(self):
        for i, data in enumerate((b"\x90\x03\x00\x01\x00",      # SUBACK
                                  b"\xb0\x02\x00\x01",          # UNSUBACK
                                  b"\xd0\x00")):                # PINGRESP
            with self.subTest(type=data[0] >> 4):
                self.check_closed(data, client_id="victim-%d" % i)

    @limits(max_packet_size=1024)
    def test_packet_larger_than_max_packet_size(self):
        self.check_closed(publish_packet("bystander/big", b"x" * 2000, qos=0))
        # A packet under the limit still goes through.
        self.bystander.publish("bystander/ok", b"y" * 900, qos=1)
        self.bystander.expect_publish("bystander/ok", b"y" * 900)

    @limits(max_packet_size=1024)
    def test_oversized_packet_refused_from_its_header(self):
        # Only the fixed header (Remaining Length 100000) and a few bytes: the
        # broker must not wait for the rest before refusing it.
        self.check_closed(b"\x30" + bytes([0xa0, 0x8d, 0x06]) + b"\x00\x01a")

    def test_truncated_packet_then_eof_publishes_will(self):
        will = Will("bystander/will", b"victim died", 1, False)
        data = publish_packet("a/b", b"0123456789", qos=1, pid=3)[:8]
        # EOF in the middle of a packet is an abnormal close: no log line is
        # required (nothing was "bad"), but the will must go out.
        self.check_closed(data, will=will, half_close=True, log_ids=())

    def test_garbage_bytes_instead_of_connect(self):
        rnd = random.Random(20141029)
        cases = [b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",      # 'G' = type 4 first
                 bytes.fromhex("160301020001") + bytes(32),          # TLS ClientHello: 0x16
                 b"\xff" * 64,
                 bytes(rnd.randrange(256) for _ in range(300))]
        for data in cases:
            with self.subTest(first=data[:6]):
                # half-close so that even a "waiting for more" parse ends.
                self.check_closed(data, connect=False, half_close=True, log_ids=())

    # -- fixed header flags [MQTT-2.2.2-1/2] --------------------------------

    def test_MQTT_3_8_1_1_subscribe_with_flags_0(self):
        self.check_closed(subscribe_packet(1, [("a/b", 0)], flags=0x0))

    def test_MQTT_3_6_1_1_pubrel_with_flags_0(self):
        def start_qos2(v):
            v.send(publish_packet("victim/q2", b"x", qos=2, pid=1))   # no subscriber
            v.expect_ack(PUBREC, 1)
        self.check_closed(pubrel_packet(1, flags=0x0), before=start_qos2)

    def test_MQTT_3_10_1_1_unsubscribe_with_flags_0(self):
        self.check_closed(unsubscribe_packet(1, ["a/b"], flags=0x0))

    @roost_only("Mosquitto 2.0.11 does not check PINGREQ's reserved flags (answers PINGRESP)")
    def test_MQTT_2_2_2_2_pingreq_with_flags(self):
        self.check_closed(b"\xc1\x00")

    def test_MQTT_3_14_1_1_disconnect_with_flags(self):
        self.check_closed(b"\xe1\x00")

    def test_MQTT_2_2_2_2_connect_with_fixed_header_flags(self):
        data = bytearray(connect_packet("victim"))
        data[0] = 0x11
        self.check_closed(bytes(data), connect=False, log_ids=(UNKNOWN, "victim"))

    # -- strings [MQTT-1.5.3-1/2] ---------------------------------------------

    def test_MQTT_1_5_3_1_ill_formed_utf8_in_topic(self):
        self.check_closed(publish_packet(b"a/\xff\xfe", b"x"))

    def test_MQTT_1_5_3_1_utf16_surrogate_in_topic(self):
        self.check_closed(publish_packet(b"a/\xed\xa0\x80", b"x"))

    def test_MQTT_1_5_3_2_null_character_in_topic(self):
        self.check_closed(publish_packet(b"a\x00b", b"x"))

    def test_MQTT_1_5_3_1_ill_formed_utf8_in_topic_filter(self):
        self.check_closed(subscribe_packet(1, [(b"a/\xc3\x28", 0)]))

    def test_MQTT_1_5_3_1_ill_formed_utf8_in_client_id(self):
        self.check_closed(connect_packet(b"bad\xc3\x28id"), connect=False)

    def test_MQTT_1_5_3_2_null_character_in_client_id(self):
        self.check_closed(connect_packet(b"bad\x00id"), connect=False)

    # -- PUBLISH -----------------------------------------------------------

    def test_MQTT_3_3_2_2_wildcard_in_publish_topic(self):
        for i, topic in enumerate(("a/#", "a/+/b", "#", "+")):
            with self.subTest(topic=topic):
                self.check_closed(publish_packet(topic, b"x"), client_id="victim-%d" % i)

    def test_MQTT_3_3_1_4_publish_with_qos_3(self):
        self.check_closed(publish_packet("a/b", b"x", pid=1, flags=0x06))

    def test_MQTT_2_3_1_1_qos1_publish_with_packet_id_0(self):
        self.check_closed(publish_packet("a/b", b"x", qos=1, pid=0))

    def test_MQTT_4_7_3_1_publish_with_empty_topic(self):
        self.check_closed(publish_packet("", b"x"))

    def test_protocol_violation_publishes_will(self):
        will = Will("bystander/will", b"violator gone", 1, False)
        self.check_closed(publish_packet("a/#", b"x"), will=will)

    # -- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------

    def test_MQTT_2_3_1_1_subscribe_with_packet_id_0(self):
        self.check_closed(subscribe_packet(0, [("a/b", 0)]))

    def test_MQTT_3_8_3_3_subscribe_without_filters(self):
        self.check_closed(packet(SUBSCRIBE, 0x2, u16(1)))

    def test_MQTT_3_10_3_2_unsubscribe_without_filters(self):
        self.check_closed(packet(UNSUBSCRIBE, 0x2, u16(1)))

    def test_MQTT_3_8_3_4_subscribe_requested_qos_3_or_reserved_bits(self):
        for i, qbyte in enumerate((0x03, 0x04, 0x80)):
            with self.subTest(requested=qbyte):
                self.check_closed(packet(SUBSCRIBE, 0x2, u16(1) + mqtt_str("a/b") + bytes([qbyte])),
                                  client_id="victim-%d" % i)

    # -- CONNECT -------------------------------------------------------------

    def test_MQTT_3_1_0_1_first_packet_not_connect(self):
        for i, data in enumerate((publish_packet("a/b", b"x"),
                                  subscribe_packet(1, [("a/#", 0)]),
                                  b"\xc0\x00")):
            with self.subTest(type=data[0] >> 4):
                self.check_closed(data, connect=False)

    def test_MQTT_3_1_0_2_second_connect(self):
        self.check_closed(connect_packet("victim"))

    def test_MQTT_3_1_4_1_connect_body_shorter_than_variable_header(self):
        self.check_closed(b"\x10\x04\x00\x04MQ", connect=False)

    def _bad_connect(self, **kw):
        # [MQTT-3.1.4-1]: close WITHOUT a CONNACK (expect_closed fails on any packet).
        self.check_closed(connect_packet("victim", **kw), connect=False,
                          log_ids=(UNKNOWN, "victim"))

    def test_MQTT_3_1_2_3_connect_reserved_flag_set(self):
        self._bad_connect(flags=0x03)

    def test_MQTT_3_1_2_13_will_qos_without_will_flag(self):
        self._bad_connect(flags=0x02 | 0x08)

    def test_MQTT_3_1_2_15_will_retain_without_will_flag(self):
        self._bad_connect(flags=0x02 | 0x20)

    def test_MQTT_3_1_2_14_will_qos_3(self):
        self._bad_connect(will=Will("w/t", b"x", 3, False))

    def test_MQTT_3_1_2_9_will_flag_without_will_fields(self):
        self._bad_connect(flags=0x02 | 0x04)

    def test_MQTT_3_1_2_19_username_flag_without_username(self):
        self._bad_connect(flags=0x02 | 0x80)

    def test_MQTT_3_1_2_22_password_without_username(self):
        self._bad_connect(password=b"secret")


if __name__ == "__main__":
    main()

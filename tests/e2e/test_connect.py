"""End-to-end: CONNECT / CONNACK, keep alive, connect timeout, connection limits.

MQTT 3.1.1 sections 3.1, 3.2, 3.12, 3.14.  Packets are written out by hand.
"""

import time

from roostlib import (CONNACK, PINGRESP, BrokerTestCase, Closed, PacketTimeout, Will,
                      connect_packet, main, publish_packet, roost_only)


class ConnectTest(BrokerTestCase):

    def test_MQTT_3_2_0_1_connack_for_connect_written_from_spec_layout(self):
        c = self.raw()
        # 3.1: fixed header 10 <len 16>; protocol name 00 04 'MQTT'; level 04;
        # flags 02 (clean session); keep alive 00 3c; client id 00 04 'roo1'.
        c.send(bytes.fromhex("1010" "00044d515454" "04" "02" "003c" "0004726f6f31"))
        p = c.recv_packet()
        # 3.2: 20 02, acknowledge flags 00 (session present 0), return code 00.
        self.assertEqual((p.type, p.flags, p.body), (CONNACK, 0, b"\x00\x00"))
        c.ping()

    def test_MQTT_3_2_2_3_new_persistent_session_present_0_then_MQTT_3_2_2_2_present_1(self):
        c = self.client("sp-resume", clean=False, expect_sp=0)
        c.subscribe(("sp/t", 1))
        c.disconnect()
        self.client("sp-resume", clean=False, expect_sp=1)

    def test_MQTT_3_2_2_1_clean_session_present_0_even_with_stored_session(self):
        c = self.client("sp-clean", clean=False, expect_sp=0)
        c.subscribe(("sp/t", 1))
        c.disconnect()
        c = self.client("sp-clean", clean=True)   # connect() asserts session present 0
        self.assertEqual(c.session_present, 0)

    def test_MQTT_3_1_3_6_zero_length_client_id_is_assigned_a_unique_id(self):
        a = self.client("", clean=True)
        b = self.client("", clean=True)
        # Had both got the same generated id, b would have taken a over [MQTT-3.1.4-2].
        a.ping()
        b.ping()
        self.assertEqual(a.subscribe(("zid/t", 1)), [1])
        b.publish("zid/t", b"to-a", qos=1)
        a.expect_publish("zid/t", b"to-a", qos=1)

    def test_MQTT_3_1_3_8_zero_length_client_id_with_persistent_session_rejected(self):
        c = self.raw()
        # connect() checks CONNACK rc 0x02, session present 0 [MQTT-3.2.2-4] and the close.
        c.connect("", clean=False, expect_rc=0x02)

    def test_MQTT_3_1_2_2_unsupported_protocol_level_gets_connack_1_and_close(self):
        for level in (3, 6, 2):
            with self.subTest(level=level):
                c = self.raw()
                c.send(connect_packet("lvl%d" % level, proto_name="MQTT", proto_level=level))
                p = c.recv_packet()
                self.assertEqual((p.type, p.flags, p.body), (CONNACK, 0, b"\x00\x01"))
                c.expect_closed()   # [MQTT-3.2.2-5]

    def test_MQTT_3_1_2_2_mqtt5_connect_accepted(self):
        # A well-formed MQTT 5 CONNECT: level 5, property length 0, client id "v5c".
        body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + b"\x00\x03v5c"
        c = self.raw()
        c.send(bytes([0x10, len(body)]) + body)
        p = c.recv_packet()
        # v5 CONNACK: flags 00, reason 00 (success), then a property block.
        self.assertEqual((p.type, p.flags, p.body[:2]), (CONNACK, 0, b"\x00\x00"))
        c.ping()

    def test_MQTT_3_1_2_1_unknown_protocol_name_closes(self):
        # The server MAY close at once or answer under "some other
        # specification"; either way this is not an accepted 3.1.1 session.
        c = self.raw()
        c.send(connect_packet("badname", proto_name="MQTX", proto_level=4))
        got = c.expect_closed(allow_packets=True)
        for p in got:
            self.assertEqual(p.type, CONNACK, "only a refusing CONNACK may precede the close")
            self.assertNotEqual(p.body[1:2], b"\x00", "unknown protocol name was accepted")

    def test_MQTT_3_1_mqisdp_level_3_accepted(self):
        # MQTT 3.1 clients: protocol name "MQIsdp", level 3.
        old = self.client("mqtt31-client", proto=3)
        self.assertEqual(old.subscribe(("v31/t", 1)), [1])
        new = self.client("mqtt311-client")
        new.publish("v31/t", b"hello 3.1", qos=1)
        old.expect_publish("v31/t", b"hello 3.1", qos=1)
        old.publish("v31/back", b"x", qos=2)   # and 3.1 publishes with the QoS 2 flow

    def test_MQTT_3_1_3_5_client_id_of_23_allowed_characters_accepted(self):
        cid = "aZ0123456789abcdefXYZ09"
        self.assertEqual(len(cid), 23)
        self.client(cid).ping()

    def test_MQTT_3_1_2_19_MQTT_3_1_2_21_username_and_password_accepted_when_anonymous(self):
        c = self.client("with-creds", username="user", password=b"\x00\xffbinary")
        c.ping()

    def test_MQTT_3_1_4_5_data_after_refused_connect_is_not_processed(self):
        c = self.raw()
        # CONNACK 0x02 case, and in the same write a retained PUBLISH that
        # must not be processed.
        c.send(connect_packet("", clean=False)
               + publish_packet("refused/t", b"must not be stored", retain=True))
        p = c.recv_packet()
        self.assertEqual((p.type, p.body), (CONNACK, b"\x00\x02"))
        c.expect_closed()
        pub = self.client("refused-pub")
        pub.publish("refused/marker", b"m", qos=1, retain=True)
        sub = self.client("refused-sub")
        sub.subscribe(("refused/#", 0))
        sub.expect_publish("refused/marker", b"m", retain=True)
        sub.expect_no_publish(0.3)

    def test_MQTT_3_12_4_1_pingreq_answered_with_pingresp(self):
        c = self.client("pinger")
        c.send(b"\xc0\x00")
        p = c.recv_packet()
        self.assertEqual((p.type, p.flags, p.body), (PINGRESP, 0, b""))

    def test_MQTT_3_14_4_3_disconnect_then_broker_closes(self):
        c = self.client("leaver")
        c.send(b"\xe0\x00")
        c.expect_closed()


class KeepAliveTest(BrokerTestCase):
    """Time is the behaviour here, so these tests do wait."""

    @roost_only("Mosquitto 2.0.11 checks keep alive coarsely: keep alive 2 closes after ~5.3 s")
    def test_MQTT_3_1_2_24_silent_client_closed_after_1_5_keepalive_and_will_sent(self):
        watcher = self.client("ka-watcher")
        watcher.subscribe(("ka/will", 1))
        c = self.raw()
        t_sent = time.monotonic()
        c.connect("ka-victim", keepalive=2, will=Will("ka/will", b"ka expired", 1, False))
        t_ack = time.monotonic()
        closed_at = None
        try:
            p = c.recv_packet(timeout=t_ack + 4.5 - time.monotonic())
            self.fail("unexpected packet from broker: %r" % (p,))
        except Closed:
            closed_at = time.monotonic()
        except PacketTimeout:
            self.fail("keep alive 2 s: connection still open 4.5 s after CONNACK")
        self.assertGreaterEqual(closed_at - t_sent, 2.4,
                                "closed %.2f s after CONNECT, before 1.5 x keep alive"
                                % (closed_at - t_sent))
        # Expiry is an abnormal close: the will goes out [MQTT-3.1.2-8].
        watcher.expect_publish("ka/will", b"ka expired", qos=1, retain=False)

    def test_MQTT_3_1_2_23_pingreq_and_other_packets_keep_connection_alive(self):
        c = self.client("ka-pinger", keepalive=1)
        # 5 x 0.6 s = 3 s, twice 1.5 x keep alive: without the packets the
        # broker would have closed the connection.
        for i in range(5):
            time.sleep(0.6)
            if i % 2 == 0:
                c.ping()
            else:
                c.publish("ka/noise", b"x", qos=1)
        c.ping()


@roost_only("connect_timeout is a roost option")
class ConnectTimeoutTest(BrokerTestCase):
    limits = {"connect_timeout": 1}

    def test_silent_tcp_connection_closed_after_connect_timeout(self):
        ok = self.client("ct-connected")
        c = self.raw()
        t0 = time.monotonic()
        c.expect_closed(timeout=3.0)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.5, "closed after %.2f s, before connect_timeout" % elapsed)
        # The timeout only concerns connections that have not sent CONNECT.
        ok.expect_open(0.5)
        ok.ping()

    def test_partial_connect_closed_after_connect_timeout(self):
        c = self.raw()
        c.send(connect_packet("slowloris")[:5])
        t0 = time.monotonic()
        c.expect_closed(timeout=3.0)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)


class MaxConnectionsTest(BrokerTestCase):
    limits = {"max_connections": 2}

    def _assert_refused(self, c):
        # Either CONNACK 0x03 (server unavailable) then close, or an
        # immediate close.
        c.send(connect_packet("third"), allow_closed=True)
        got = c.expect_closed(allow_packets=True)
        for p in got:
            self.assertEqual((p.type, p.body), (CONNACK, b"\x00\x03"),
                             "third connection was not refused")

    def test_third_connection_refused_and_slot_released_on_close(self):
        a = self.client("mc-1")
        b = self.client("mc-2")
        try:
            third = self.raw()
        except ConnectionRefusedError:
            third = None
        if third is not None:
            self._assert_refused(third)
        b.ping()
        a.disconnect()   # returns once the broker has closed a
        d = self.client("mc-4")
        d.ping()
        b.ping()


if __name__ == "__main__":
    main()

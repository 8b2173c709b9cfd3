"""End-to-end: SUBSCRIBE / SUBACK, topic matching, UNSUBSCRIBE / UNSUBACK.

MQTT 3.1.1 sections 3.8-3.11 and 4.7.  Packets are written out by hand.
"""

from roostlib import (SUBACK, UNSUBACK, BrokerTestCase, Closed, limits, main, roost_only,
                      subscribe_packet)

# Topic universe and expected matches, from the examples of 4.7.1.
TOPICS = ["sport", "sport/", "sport/tennis", "sport/tennis/player1",
          "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon",
          "sport/tennis/player2", "sports", "/finance", "finance", "a//b", "a/b",
          "a/x/b", "Accounts", "accounts"]
P1 = {"sport/tennis/player1", "sport/tennis/player1/ranking",
      "sport/tennis/player1/score/wimbledon"}
MATCHES = {
    "sport/tennis/player1/#": P1,
    "sport/#": P1 | {"sport", "sport/", "sport/tennis", "sport/tennis/player2"},
    "#": set(TOPICS),
    "sport/tennis/+": {"sport/tennis/player1", "sport/tennis/player2"},
    "sport/+": {"sport/", "sport/tennis"},
    "+": {"sport", "sports", "finance", "Accounts", "accounts"},
    "+/+": {"sport/", "sport/tennis", "/finance", "a/b"},
    "/+": {"/finance"},
    "+/tennis/#": P1 | {"sport/tennis", "sport/tennis/player2"},
    "a/+/b": {"a//b", "a/x/b"},
    "+/+/+": {"sport/tennis/player1", "sport/tennis/player2", "a//b", "a/x/b"},
    "Accounts": {"Accounts"},
}
DONE = "zz-done"


class SubscribeTest(BrokerTestCase):

    def test_MQTT_3_8_4_1_suback_bytes_for_three_filters(self):
        c = self.client("suback")
        # SUBSCRIBE 82 <len>, packet id ab cd, then (00 03 's/a' 00)(00 03 's/b' 01)(00 03 's/c' 02)
        c.send(bytes.fromhex("8214" "abcd" "0003732f6100" "0003732f6201" "0003732f6302"))
        p = c.recv_packet()
        # SUBACK: 90 05, same packet id [MQTT-3.8.4-2], codes in order [MQTT-3.9.3-1]
        self.assertEqual((p.type, p.flags, p.body), (SUBACK, 0, bytes.fromhex("abcd000102")))

    def test_MQTT_4_7_1_2_MQTT_4_7_1_3_wildcard_matching_table(self):
        subs = {}
        for i, flt in enumerate(MATCHES):
            s = self.client("match-%d" % i)
            self.assertEqual(s.subscribe([(flt, 0), (DONE, 0)]), [0, 0], flt)
            subs[flt] = s
        pub = self.client("match-pub")
        for t in TOPICS:
            pub.publish(t, t.encode(), qos=0)
        pub.publish(DONE, b"", qos=1)
        for flt, s in subs.items():
            got = []
            while True:
                m = s.recv_publish()
                if m.topic == DONE:
                    break
                self.assertEqual(m.payload, m.topic.encode())
                got.append(m.topic)
            with self.subTest(filter=flt):
                self.assertEqual(sorted(got), sorted(MATCHES[flt]))

    def test_MQTT_4_7_2_1_dollar_topics_not_matched_by_leading_wildcards(self):
        """Clients may not publish to $ topics (roost drops them), so the $
        messages used here are the broker's own retained $SYS ones."""
        pub = self.client("dollar-pub")
        pub.publish("dollar/marker", b"m", qos=1, retain=True)
        for i, (flt, want_sys) in enumerate([("#", False), ("+/broker/#", False), ("+/+/+/+", False),
                                             ("$SYS/#", True), ("$SYS/+/#", True)]):
            with self.subTest(filter=flt):
                s = self.client("dollar-%d" % i)
                s.subscribe([(flt, 0)])
                topics = [m.topic for m in s.drain_publishes(idle=0.5)]
                dollar = [t for t in topics if t.startswith("$")]
                if want_sys:
                    self.assertTrue(dollar, "no $SYS retained message for %s: %s" % (flt, topics))
                else:
                    self.assertEqual(dollar, [], "[MQTT-4.7.2-1] %s matched %s" % (flt, dollar))
                    if flt == "#":
                        self.assertIn("dollar/marker", topics)

    def test_MQTT_3_3_1_6_wildcard_subscription_gets_every_matching_retained(self):
        pub = self.client("rw-pub")
        for t in ("rw/a", "rw/b/c", "rw/d", "other/x"):
            pub.publish(t, b"retained " + t.encode(), qos=1, retain=True)
        deep = self.client("rw-deep")
        deep.subscribe(("rw/#", 1))
        got = {}
        for _ in range(3):
            m = deep.recv_publish()
            self.assertTrue(m.retain, "[MQTT-3.3.1-8] RETAIN must be 1: %s" % (m,))
            got[m.topic] = m.payload
        self.assertEqual(got, {t: b"retained " + t.encode() for t in ("rw/a", "rw/b/c", "rw/d")})
        deep.expect_no_publish(0.3)
        flat = self.client("rw-flat")
        flat.subscribe(("rw/+", 0))
        topics = sorted(flat.recv_publish().topic for _ in range(2))
        self.assertEqual(topics, ["rw/a", "rw/d"])
        flat.expect_no_publish(0.3)

    def test_MQTT_3_8_4_3_resubscribe_replaces_qos_and_resends_retained(self):
        pub = self.client("resub-pub")
        pub.publish("resub/t", b"kept", qos=1, retain=True)
        sub = self.client("resub-sub")
        self.assertEqual(sub.subscribe(("resub/t", 2)), [2])
        sub.expect_publish("resub/t", b"kept", qos=1, retain=True)
        self.assertEqual(sub.subscribe(("resub/t", 0)), [0])
        sub.expect_publish("resub/t", b"kept", qos=0, retain=True)
        pub.publish("resub/t", b"live", qos=2)
        sub.expect_publish("resub/t", b"live", qos=0, retain=False)
        sub.expect_no_publish(0.3)     # one subscription, one copy

    @roost_only("Mosquitto 2.0.11 sends a single copy at the QoS of one matching subscription "
                "(observed: QoS 1 for subscriptions granted 0, 2 and 1)")
    def test_MQTT_3_3_5_1_overlapping_subscriptions_respect_max_qos(self):
        sub = self.client("ov-sub")
        self.assertEqual(sub.subscribe([("ov/#", 0), ("ov/+", 2), ("ov/t", 1), ("ovm", 0)]),
                         [0, 2, 1, 0])
        pub = self.client("ov-pub")
        pub.publish("ov/t", b"overlap", qos=2)
        pub.publish("ovm", b"marker", qos=0)
        copies = []
        while True:
            m = sub.recv_publish()
            if m.topic == "ovm":
                break
            copies.append(m)
        self.assertTrue(copies, "no copy delivered")
        self.assertTrue(all(m.payload == b"overlap" for m in copies))
        self.assertEqual(max(m.qos for m in copies), 2)

    @roost_only("roost delivers ONE copy at the highest granted QoS; [MQTT-3.3.5-1] also allows "
                "one copy per subscription, and Mosquitto 2.0.11 picks the wrong QoS")
    def test_MQTT_3_3_5_1_overlapping_subscriptions_deliver_one_copy(self):
        sub = self.client("ov1-sub")
        sub.subscribe([("ov1/#", 0), ("ov1/+", 2), ("ov1/t", 1)])
        pub = self.client("ov1-pub")
        pub.publish("ov1/t", b"once", qos=2)
        sub.expect_publish("ov1/t", b"once", qos=2)
        sub.expect_no_publish(0.5)

    @roost_only("in 3.1.1 an invalid filter makes SUBSCRIBE malformed; roost answers SUBACK 0x80 "
                "for that filter and keeps the connection, Mosquitto closes it")
    def test_MQTT_4_7_1_2_MQTT_4_7_1_3_invalid_filters_get_suback_0x80(self):
        c = self.client("badfilter")
        codes = c.subscribe([("a/#/b", 1), ("ok/t", 1), ("a+", 1), ("#/a", 1),
                             ("a/b#", 1), ("+a/b", 1), ("sport+", 0), ("ok/+/x", 2)])
        self.assertEqual(codes, [0x80, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 2])
        pub = self.client("badfilter-pub")
        pub.publish("ok/t", b"valid ones work", qos=1)
        c.expect_publish("ok/t", b"valid ones work", qos=1)
        pub.publish("ok/y/x", b"x", qos=2)
        c.expect_publish("ok/y/x", b"x", qos=2)

    def test_MQTT_4_7_3_1_empty_topic_filter_rejected(self):
        # Zero-length filter: SUBACK 0x80 (roost) or a close (malformed).
        c = self.client("emptyfilter")
        c.send(subscribe_packet(5, [("", 0)]), allow_closed=True)
        try:
            p = c.recv_packet()
        except Closed:
            return
        self.assertEqual((p.type, p.body), (SUBACK, b"\x00\x05\x80"))


class UnsubscribeTest(BrokerTestCase):

    def test_MQTT_3_10_4_4_unsuback_has_same_packet_id(self):
        c = self.client("unsuback")
        c.subscribe(("u/t", 0))
        # UNSUBSCRIBE a2 07, packet id 01 02, filter 00 03 'u/t'
        c.send(bytes.fromhex("a207" "0102" "0003752f74"))
        p = c.recv_packet()
        self.assertEqual((p.type, p.flags, p.body), (UNSUBACK, 0, b"\x01\x02"))

    def test_MQTT_3_10_4_2_unsubscribe_stops_delivery(self):
        sub = self.client("us-sub")
        sub.subscribe([("us/t", 1), ("us/marker", 1)])
        pub = self.client("us-pub")
        pub.publish("us/t", b"before", qos=1)
        sub.expect_publish("us/t", b"before")
        sub.unsubscribe("us/t")
        pub.publish("us/t", b"after", qos=1)
        pub.publish("us/marker", b"m", qos=1)
        sub.expect_publish("us/marker", b"m")

    def test_MQTT_3_10_4_5_unsuback_even_when_nothing_matched(self):
        c = self.client("us-none")
        c.unsubscribe(["never/subscribed", "x/#"])

    def test_MQTT_3_10_4_1_unsubscribe_compares_filters_literally(self):
        sub = self.client("ul-sub")
        sub.subscribe(("ul/+", 1))
        sub.unsubscribe("ul/a")        # not the same filter: nothing deleted
        pub = self.client("ul-pub")
        pub.publish("ul/a", b"still subscribed", qos=1)
        sub.expect_publish("ul/a", b"still subscribed")

    def test_MQTT_3_10_4_6_multiple_filters_in_one_unsubscribe(self):
        sub = self.client("um-sub")
        sub.subscribe([("um/a", 0), ("um/b", 0), ("um/c", 0)])
        sub.unsubscribe(["um/a", "um/c"])
        pub = self.client("um-pub")
        for t in ("um/a", "um/b", "um/c"):
            pub.publish(t, t.encode(), qos=0)
        pub.publish("um/b", b"end", qos=1)
        sub.expect_publish("um/b", b"um/b")
        sub.expect_publish("um/b", b"end")


@roost_only("max_subscriptions is a roost option")
class MaxSubscriptionsTest(BrokerTestCase):

    @limits(max_subscriptions=2)
    def test_subscriptions_beyond_limit_refused(self):
        c = self.client("maxsubs")
        self.assertEqual(c.subscribe([("ms/1", 1), ("ms/2", 1)]), [1, 1])
        try:
            codes = c.subscribe(("ms/3", 1))
        except Closed:
            return   # closing the connection is also a refusal
        self.assertEqual(codes, [0x80])
        pub = self.client("maxsubs-pub")
        pub.publish("ms/3", b"no", qos=1)
        pub.publish("ms/1", b"yes", qos=1)
        c.expect_publish("ms/1", b"yes")


if __name__ == "__main__":
    main()

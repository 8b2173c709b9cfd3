"""Every path in is authorised and every message out is checked for its
receiver (issue 9): wills at CONNECT and again before they are published,
the '$' rule, queued/retained deliveries after a SIGHUP that shrinks a
grant, session ownership, topic bounds, big SUBSCRIBEs, the retained cap
and retained sets paced by the same back-pressure as live traffic."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import roostlib
from roostlib import Broker, Will


def conf(extra="", db=None):
    store = "{enabled: true, path: %s}" % db if db else "{enabled: false}"
    return ("listeners:\n  - port: 0\n    bind: 127.0.0.1\n"
            "http: {port: -1}\npersistence: %s\nlog: {level: debug}\n%s" % (store, extra))


class AclPathsTest(unittest.TestCase):
    ACL = ("user alice\n"
           "topic readwrite home/alice/#\n"
           "topic readwrite shared/#\n"
           "topic write $SYS/broker/connection/#\n"
           "user bob\n"
           "topic readwrite shared/#\n"
           "topic read $SYS/#\n")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="roost-aclp-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pw = os.path.join(self.dir, "passwd")
        self.acl = os.path.join(self.dir, "acl")

    def start(self, text):
        b = Broker(config_text=text)
        b.start()
        self.addCleanup(b.stop)
        return b

    def write_acl(self, text):
        with open(self.acl, "w") as f:
            f.write(text)

    def users_broker(self, extra="", db=None):
        for i, name in enumerate(("alice", "bob")):
            args = ["-c"] if i == 0 else []
            r = subprocess.run(["mosquitto_passwd"] + args + ["-b", self.pw, name, "pw"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.write_acl(self.ACL)
        return self.start(self.users_conf(extra, db))

    def users_conf(self, extra="", db=None):
        return conf("password_file: %s\nacl_file: %s\n%s" % (self.pw, self.acl, extra), db)

    def reload(self, b, acl):
        self.write_acl(acl)
        mark = b.log_mark()
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"auth: reloaded", timeout=5, since=mark)
        return mark

    # -- 1/2: wills -------------------------------------------------------------

    def test_will_on_sys_topic_refused_at_connect_MQTT_4_7_2_1(self):
        b = self.start(conf("allow_anonymous: true\n"))
        c = b.raw()
        c.connect("w-sys", will=Will("$SYS/broker/version", b"0.0-evil", 1, True), expect_rc=5)
        b.wait_for_log(r"'w-sys' refused \(0x05\): will on \$SYS/broker/version refused: "
                       r"\$ topics are reserved", timeout=5)
        watch = b.client("watch")
        watch.subscribe([("$SYS/broker/version", 0)])
        for m in watch.drain_publishes(idle=0.3):
            self.assertNotEqual(m.payload, b"0.0-evil")

    def test_will_on_bridge_state_topic_of_own_id_allowed(self):
        b = self.start(conf("allow_anonymous: true\n"))
        watch = b.client("watch")
        watch.subscribe([("$SYS/broker/connection/#", 0)])
        c = b.client("bridge-1", will=Will("$SYS/broker/connection/bridge-1/state", b"0", 0, False))
        b.raw().connect("bridge-2", will=Will("$SYS/broker/connection/bridge-1/state", b"0", 0, False),
                        expect_rc=5)
        c.abort()
        watch.expect_publish(topic="$SYS/broker/connection/bridge-1/state", payload=b"0")

    def test_will_on_other_users_topic_refused_at_connect(self):
        b = self.users_broker()
        b.raw().connect("bob-w", username="bob", password="pw",
                        will=Will("home/alice/door", b"open", 1, True), expect_rc=5)
        b.wait_for_log(r"'bob-w' refused \(0x05\): will on home/alice/door refused: denied by the ACL",
                       timeout=5)
        b.client("alice-w", username="alice", password="pw",
                 will=Will("home/alice/status", b"gone", 1, False)).disconnect()

    def test_will_checked_again_when_rights_shrink_by_sighup(self):
        b = self.users_broker()
        watch = b.client("bob-watch", username="bob", password="pw")
        watch.subscribe([("shared/#", 1)])
        alice = b.client("alice-w2", username="alice", password="pw",
                         will=Will("shared/alice-gone", b"bye", 1, False))
        mark = self.reload(b, "user alice\ntopic readwrite home/alice/#\nuser bob\ntopic readwrite shared/#\n")
        b.wait_for_log(r"alice-w2: will on shared/alice-gone dropped: denied by the ACL", timeout=5,
                       since=mark)
        alice.abort()
        b.assert_close_logged("alice-w2", since=mark)
        watch.expect_no_publish(0.5)

    # -- 3: every message out is checked for its receiver -----------------------

    def test_queued_messages_not_delivered_after_sighup_shrinks_grant(self):
        b = self.users_broker()
        alice = b.client("alice-q", clean=False, username="alice", password="pw")
        self.assertEqual(alice.subscribe([("shared/#", 1)]), [1])
        alice.disconnect()
        bob = b.client("bob-q", username="bob", password="pw")
        bob.publish("shared/public", b"p1", qos=1)
        bob.publish("shared/secret", b"s1", qos=1)
        bob.publish("shared/public", b"p2", qos=1)
        self.reload(b, self.ACL.replace("topic readwrite shared/#\ntopic write",
                                        "topic readwrite shared/#\ntopic deny shared/secret\ntopic write"))
        alice = b.client("alice-q", clean=False, username="alice", password="pw", expect_sp=1)
        got = [(m.topic, m.payload) for m in alice.drain_publishes(idle=0.5)]
        self.assertEqual(got, [("shared/public", b"p1"), ("shared/public", b"p2")])
        b.wait_for_log(r"alice-q: delivery on shared/secret dropped: the receiver may not read it", timeout=5)

    def test_denied_queued_message_removed_from_the_store_too(self):
        db = os.path.join(self.dir, "roost.db")
        b = self.users_broker(db=db)
        alice = b.client("alice-s", clean=False, username="alice", password="pw")
        alice.subscribe([("shared/#", 1)])
        alice.disconnect()
        b.client("bob-s", username="bob", password="pw").publish("shared/secret", b"s1", qos=1)
        self.reload(b, self.ACL.replace("topic readwrite shared/#\ntopic write",
                                        "topic readwrite shared/#\ntopic deny shared/secret\ntopic write"))
        alice = b.client("alice-s", clean=False, username="alice", password="pw", expect_sp=1)
        alice.expect_no_publish(0.5)
        alice.disconnect()
        b.stop()
        # Granted again after a restart: the dropped delivery must not come back.
        self.write_acl(self.ACL)
        b2 = self.start(self.users_conf(db=db))
        alice = b2.client("alice-s", clean=False, username="alice", password="pw", expect_sp=1)
        alice.expect_no_publish(0.5)

    def test_retained_not_sent_when_user_may_no_longer_read(self):
        b = self.users_broker()
        bob = b.client("bob-r", username="bob", password="pw")
        bob.publish("shared/secret", b"s", qos=1, retain=True)
        bob.publish("shared/news", b"n", qos=1, retain=True)
        self.reload(b, self.ACL.replace("topic readwrite shared/#\ntopic write",
                                        "topic readwrite shared/#\ntopic deny shared/secret\ntopic write"))
        alice = b.client("alice-r", username="alice", password="pw")
        alice.subscribe([("shared/#", 1)])
        got = [(m.topic, m.payload) for m in alice.drain_publishes(idle=0.5)]
        self.assertEqual(got, [("shared/news", b"n")])


    # -- 4: a persistent session belongs to its user ---------------------------

    def test_persistent_session_belongs_to_its_user(self):
        b = self.users_broker()
        alice = b.client("phone", clean=False, username="alice", password="pw")
        self.assertEqual(alice.subscribe([("home/alice/#", 1)]), [1])
        alice.disconnect()
        alice2 = b.client("alice-pub", username="alice", password="pw")
        alice2.publish("home/alice/door", b"open", qos=1)
        b.raw().connect("phone", clean=False, username="bob", password="pw", expect_rc=5)
        b.wait_for_log(r"'phone' refused \(0x05\): this client id's persistent session belongs to "
                       r"another user", timeout=5)
        b.raw().connect("phone", clean=True, username="bob", password="pw", expect_rc=5)
        alice = b.client("phone", clean=False, username="alice", password="pw", expect_sp=1)
        alice.expect_publish(topic="home/alice/door", payload=b"open")
        # While the owner is online, another user cannot kick it off either.
        b.raw().connect("phone", clean=False, username="bob", password="pw", expect_rc=5)
        alice.ping()

    def test_persistent_session_keeps_its_owner_across_restart_and_kill9(self):
        db = os.path.join(self.dir, "roost.db")
        b = self.users_broker(db=db)
        alice = b.client("phone", clean=False, username="alice", password="pw")
        self.assertEqual(alice.subscribe([("home/alice/#", 1)]), [1])
        alice.disconnect()
        b.client("alice-pub", username="alice", password="pw").publish("home/alice/door", b"open", qos=1)
        b.stop(sig=signal.SIGKILL, check=False)
        b2 = self.start(self.users_conf(db=db))
        # The first to come back after the restart is not the owner: refused,
        # and the queue stays alice's.
        b2.raw().connect("phone", clean=False, username="bob", password="pw", expect_rc=5)
        b2.wait_for_log(r"'phone' refused \(0x05\): this client id's persistent session belongs to "
                        r"another user", timeout=5)
        b2.raw().connect("phone", clean=False, expect_rc=5)  # anonymous, from this machine
        alice = b2.client("phone", clean=False, username="alice", password="pw", expect_sp=1)
        alice.expect_publish(topic="home/alice/door", payload=b"open")

    # -- 5: topic bounds ---------------------------------------------------------

    def test_topic_levels_bounded_on_publish_subscribe_and_will(self):
        b = self.start(conf("allow_anonymous: true\nlimits: {max_topic_levels: 200}\n"))
        ok, deep = "/".join(["a"] * 200), "/".join(["a"] * 201)
        sub = b.client("deep-sub")
        self.assertEqual(sub.subscribe([(ok, 1), (deep, 1), ("a/#", 1)]), [1, 0x80, 1])
        b.wait_for_log(r"deep-sub: topic filter 'a/a/.*' refused: the topic has more levels "
                       r"than limits.max_topic_levels", timeout=5)
        pub = b.client("deep-pub")
        pub.publish(deep, b"x", qos=1, retain=True)    # PUBACK as usual, then dropped
        b.wait_for_log(r"deep-pub: PUBLISH to a/a/.* dropped: the topic has more levels", timeout=5)
        pub.publish(ok, b"y", qos=1)
        m = sub.expect_publish(payload=b"y")
        self.assertEqual(m.topic, ok)
        sub.expect_no_publish(0.3)
        b.raw().connect("deep-will", will=Will(deep, b"w", 0, False), expect_rc=5)
        # Nothing was retained for the deep topic.
        late = b.client("late")
        late.subscribe([("a/#", 0)])
        late.expect_no_publish(0.3)

    def test_stored_retained_beyond_lowered_limits_not_loaded_and_removed(self):
        db = os.path.join(self.dir, "roost.db")
        deep = "/".join(["d"] * 10)
        b = self.start(conf("allow_anonymous: true\n", db))
        b.client("ret").publish(deep, b"deep", qos=1, retain=True)
        b.client("ret2").publish("shallow/x", b"ok", qos=1, retain=True)
        b.stop()
        b = self.start(conf("allow_anonymous: true\nlimits: {max_topic_levels: 5}\n", db))
        b.wait_for_log(r"store: retained message on d/d/d/d/d/d/d/d/d/d not loaded: the topic has more "
                       r"levels than limits.max_topic_levels", timeout=5)
        c = b.client("look")
        c.subscribe([("#", 0)])
        self.assertEqual([(m.topic, m.payload) for m in c.drain_publishes(idle=0.5)], [("shallow/x", b"ok")])
        b.stop()
        # Removed from the file: with the limit raised again it does not come back.
        b = self.start(conf("allow_anonymous: true\n", db))
        c = b.client("look2")
        c.subscribe([("#", 0)])
        self.assertEqual([(m.topic, m.payload) for m in c.drain_publishes(idle=0.5)], [("shallow/x", b"ok")])

    def test_topic_length_bounded(self):
        b = self.start(conf("allow_anonymous: true\nlimits: {max_topic_length: 10}\n"))
        c = b.client("len")
        self.assertEqual(c.subscribe([("0123456789", 0), ("0123456789a", 0)]), [0, 0x80])
        c.publish("0123456789a", b"x", qos=1)
        b.wait_for_log(r"len: PUBLISH to 0123456789a dropped: the topic is longer than "
                       r"limits.max_topic_length", timeout=5)


    # -- 6: big SUBSCRIBEs ------------------------------------------------------

    def test_subscribe_with_500_filters_MQTT_3_8_4_5(self):
        b = self.start(conf("allow_anonymous: true\n"))
        c = b.client("ha-500")
        filters = [("homeassistant/sensor/s%03d/config" % i, i % 3) for i in range(500)]
        self.assertEqual(c.subscribe(filters), [i % 3 for i in range(500)])
        pub = b.client("pub")
        pub.publish("homeassistant/sensor/s499/config", b"x", qos=1)
        c.expect_publish(topic="homeassistant/sensor/s499/config", payload=b"x")

    def test_subscribe_filters_bounded_by_max_subscriptions(self):
        b = self.start(conf("allow_anonymous: true\nlimits: {max_subscriptions: 300}\n"))
        c = b.client("ha-cap")
        codes = c.subscribe([("t/%03d" % i, 1) for i in range(500)])
        self.assertEqual(codes, [1] * 300 + [0x80] * 200)
        c.ping()


    # -- 7: the retained cap ------------------------------------------------------

    def test_max_retained_messages_caps_new_topics_only(self):
        b = self.start(conf("allow_anonymous: true\nlimits: {max_retained_messages: 3}\n"))
        sub = b.client("live")
        sub.subscribe([("r/#", 0)])
        pub = b.client("pub")
        for i in range(4):
            pub.publish("r/%d" % i, b"v%d" % i, qos=1, retain=True)
        b.wait_for_log(r"retained message on new topic r/3 not kept: limits.max_retained_messages \(3\)",
                       timeout=5)
        self.assertEqual(len(sub.drain_publishes(idle=0.3)), 4)   # still delivered live
        pub.publish("r/0", b"new0", qos=1, retain=True)           # replacing works
        pub.publish("r/1", b"", qos=1, retain=True)               # clearing works
        pub.publish("r/4", b"v4", qos=1, retain=True)             # room again after the clear
        late = b.client("late")
        late.subscribe([("r/#", 0)])
        got = sorted((m.topic, m.payload) for m in late.drain_publishes(idle=0.4))
        self.assertEqual(got, [("r/0", b"new0"), ("r/2", b"v2"), ("r/4", b"v4")])


    # -- 8: retained sets paced by the same back-pressure as live traffic ------------

    def retained_snapshots(self, qos):
        """100 retained 100 KB messages (camera snapshots); a subscriber that
        reads normally gets all 100, in order, and stays connected."""
        b = self.start(conf("allow_anonymous: true\n"))
        pub = b.client("cams")
        for i in range(100):
            pub.publish("cam/%03d/snapshot" % i, bytes([i]) * 100000, qos=1, retain=True)
        sub = b.client("viewer-%d" % qos)
        mark = b.log_mark()
        self.assertEqual(sub.subscribe([("cam/#", qos)]), [qos])
        got = sub.drain_publishes(idle=2.0)
        self.assertEqual(len(got), 100, "got %d of 100 retained snapshots" % len(got))
        for m in got:
            self.assertTrue(m.retain)                      # [MQTT-3.3.1-6]
            self.assertEqual(len(m.payload), 100000)
            self.assertEqual(m.topic, "cam/%03d/snapshot" % m.payload[0])
        self.assertEqual(sorted(m.payload[0] for m in got), list(range(100)))
        sub.ping()                                          # not cut off
        self.assertIsNone(b.find_log(r"viewer-%d.*closed" % qos, since=mark))
        pub.publish("cam/live", b"after", qos=1)
        sub.expect_publish(topic="cam/live", payload=b"after")

    def test_retained_set_paced_qos0(self):
        self.retained_snapshots(0)

    def test_retained_set_paced_qos1(self):
        self.retained_snapshots(1)


if __name__ == "__main__":
    roostlib.main()

"""$SYS, end to end: Mosquitto's names and formats, values that follow the
traffic the test makes, fresh values for a new subscriber, nothing of it in
the store, and the $ rules of [MQTT-4.7.2-1].
"""
import os
import re
import sqlite3
import tempfile
import time
import unittest

import roostlib
from roostlib import Broker

# Mosquitto's names, spaces included, that roost publishes on every update.
MOSQUITTO_NAMES = [
    "version", "uptime",
    "clients/connected", "clients/disconnected", "clients/total", "clients/maximum", "clients/expired",
    "messages/received", "messages/sent", "messages/stored",
    "publish/messages/received", "publish/messages/sent", "publish/messages/dropped",
    "bytes/received", "bytes/sent",
    "subscriptions/count", "retained messages/count",
] + ["load/%s/%s" % (what, p)
     for what in ("messages/received", "messages/sent", "publish/received", "publish/sent",
                  "publish/dropped", "bytes/received", "bytes/sent", "connections")
     for p in ("1min", "5min", "15min")]


def sys_yaml(interval, db=None, extra="", log_level="info"):
    persistence = "persistence:\n  path: %s\n" % db if db else "persistence:\n  enabled: false\n"
    return roostlib.roost_yaml(log_level=log_level,
                               extra="sys_interval: %d\n%s%s" % (interval, persistence, extra))


def values(msgs):
    """topic -> payload text of $SYS messages, the last one of each winning."""
    out = {}
    for m in msgs:
        if m.topic.startswith("$SYS/broker/"):
            out[m.topic[len("$SYS/broker/"):]] = m.payload.decode()
    return out


@roostlib.roost_only("$SYS/broker/roost/ and sys_interval are roost's")
class SysTest(unittest.TestCase):
    def start(self, text):
        b = Broker(config_text=text)
        b.start()
        self.addCleanup(b.stop)
        return b

    def snapshot(self, b, name, filt="$SYS/#"):
        """What a new subscriber gets at once: its retained set."""
        c = b.client(name)
        c.subscribe([(filt, 0)])
        got = c.drain_publishes(idle=0.3)
        self.assertTrue(got, "no $SYS message for a new subscriber")
        self.assertTrue(all(m.retain for m in got))
        return c, values(got)

    def test_names_formats_and_values_follow_the_traffic(self):
        b = self.start(sys_yaml(3600))      # no tick in this test: every value is the subscriber's fresh one
        held = [b.client("held-%d" % i) for i in range(3)]
        _, v = self.snapshot(b, "watch-1")
        for name in MOSQUITTO_NAMES:
            self.assertIn(name, v, "missing $SYS/broker/%s" % name)
        self.assertRegex(v["version"], r"^roost version \d")
        self.assertRegex(v["uptime"], r"^\d+ seconds$")
        for name in MOSQUITTO_NAMES[2:]:
            if name.startswith("load/"):
                self.assertRegex(v[name], r"^\d+\.\d\d$", name)
            else:
                self.assertRegex(v[name], r"^\d+$", name)
        self.assertEqual(v["clients/connected"], "4")    # 3 held open + the watcher
        self.assertEqual(v["clients/maximum"], "4")
        self.assertEqual(v["clients/total"], "4")
        self.assertIn("roost/listeners/127.0.0.1:%d/clients" % b.port, v)
        self.assertEqual(v["roost/listeners/127.0.0.1:%d/clients" % b.port], "4")

        before = int(v["publish/messages/received"])
        for i in range(24):
            held[0].publish("t/%d" % i, b"x" * 100)
        held[0].publish("t/last", b"x" * 100, qos=1)   # its PUBACK: all 25 are handled
        held[1].disconnect()
        held[2].disconnect()
        _, v2 = self.snapshot(b, "watch-2")
        self.assertEqual(int(v2["publish/messages/received"]), before + 25)
        self.assertGreaterEqual(int(v2["messages/received"]), int(v["messages/received"]) + 25)
        self.assertGreaterEqual(int(v2["bytes/received"]), int(v["bytes/received"]) + 25 * 100)
        self.assertGreater(float(v2["load/publish/received/1min"]), 0)
        self.assertEqual(v2["clients/connected"], "3")   # 1 held + 2 watchers
        self.assertEqual(v2["clients/maximum"], "4")
        self.assertEqual(v2["clients/disconnected"], "0")  # clean sessions end with their connection
        self.assertGreater(int(v2["bytes/sent"]), int(v["bytes/sent"]))

    def test_updates_every_sys_interval_and_uptime_grows(self):
        b = self.start(sys_yaml(1))
        c, v = self.snapshot(b, "watch", "$SYS/broker/uptime")
        first = int(v["uptime"].split()[0])
        deadline = time.time() + 10
        later = first
        while later < first + 2 and time.time() < deadline:
            m = c.expect_publish(topic="$SYS/broker/uptime", retain=False, timeout=3)
            later = int(m.payload.split()[0])
        self.assertGreaterEqual(later, first + 2)

    def test_timer_runs_only_while_someone_listens(self):
        """An idle broker has no $SYS wake-ups: the updates start with a
        subscriber and stop at the first tick nobody would receive."""
        b = self.start(sys_yaml(1, log_level="debug"))
        time.sleep(1.5)
        self.assertIsNone(b.find_log(r"\$SYS: subscribed"))
        mark = b.log_mark()
        c, _ = self.snapshot(b, "watch", "$SYS/broker/uptime")
        b.wait_for_log(r"\$SYS: subscribed: updates every 1 s", since=mark)
        c.expect_publish(topic="$SYS/broker/uptime", retain=False, timeout=3)   # a live update
        c.unsubscribe(["$SYS/broker/uptime"])
        b.wait_for_log(r"\$SYS: nobody subscribed: updates stopped", timeout=3, since=mark)
        mark = b.log_mark()
        # A component subscriber on '#' or a client on other topics does not count.
        b.client("other").subscribe([("#", 0)])
        time.sleep(2.2)
        self.assertIsNone(b.find_log(r"\$SYS: subscribed", since=mark))
        # Offline sessions neither: a persistent $SYS subscriber that left.
        p = b.client("p", clean=False)
        p.subscribe([("$SYS/broker/uptime", 1)])
        p.disconnect()
        b.wait_for_log(r"\$SYS: nobody subscribed: updates stopped", timeout=3, since=mark)
        # Back online, its subscription restarts them.
        mark = b.log_mark()
        p = b.client("p", clean=False)
        b.wait_for_log(r"\$SYS: subscribed: updates every 1 s", since=mark)
        p.expect_publish(topic="$SYS/broker/uptime", timeout=3)

    def test_new_subscriber_gets_fresh_values_at_once(self):
        b = self.start(sys_yaml(3600))
        _, v = self.snapshot(b, "first", "$SYS/broker/clients/connected")
        self.assertEqual(v["clients/connected"], "1")
        b.client("more-1")
        b.client("more-2")
        t0 = time.time()
        _, v = self.snapshot(b, "second", "$SYS/broker/clients/+")
        self.assertLess(time.time() - t0, 2)
        self.assertEqual(v["clients/connected"], "4")

    def test_hash_never_matches_sys_MQTT_4_7_2_1(self):
        b = self.start(sys_yaml(1))
        every = b.client("every")
        every.subscribe([("#", 0)])
        self.snapshot(b, "watch")
        b.client("p").publish("a/b", b"1", retain=True)
        time.sleep(1.5)                               # at least one tick
        got = every.drain_publishes(idle=0.5)
        self.assertIn("a/b", [m.topic for m in got])
        self.assertEqual([m.topic for m in got if m.topic.startswith("$")], [])

    def test_clients_cannot_publish_to_sys_MQTT_4_7_2_1(self):
        b = self.start(sys_yaml(3600))
        b.client("evil").publish("$SYS/broker/uptime", b"0 seconds (evil)", qos=1, retain=True)
        _, v = self.snapshot(b, "watch", "$SYS/broker/uptime")
        self.assertNotIn("evil", v["uptime"])

    def test_nothing_under_sys_in_the_store_after_restart(self):
        d = tempfile.mkdtemp(prefix="roost-sys-")
        db = os.path.join(d, "roost.db")
        b = self.start(sys_yaml(1, db))
        _, v = self.snapshot(b, "watch")
        self.assertIn("store/commits", v)
        self.assertIn("store/size", v)
        self.assertEqual(v["store/moved_aside"], "0")
        b.client("p").publish("keep/x", b"1", qos=1, retain=True)
        time.sleep(1.5)
        b.stop()
        # An older roost kept its $SYS messages: they are dropped at load.
        con = sqlite3.connect(db)
        con.execute("INSERT INTO retained(topic, qos, payload) VALUES (CAST(? AS BLOB), 0, ?)",
                    ("$SYS/broker/stale", b"old"))
        con.commit()
        con.close()
        b = self.start(sys_yaml(1, db))
        self.snapshot(b, "watch-2")
        time.sleep(1.5)
        b.stop()
        con = sqlite3.connect(db)
        topics = [bytes(r[0]).decode() for r in con.execute("SELECT topic FROM retained")]
        con.close()
        self.assertIn("keep/x", topics)
        self.assertEqual([t for t in topics if t.startswith("$")], [])

    def test_sys_interval_zero_publishes_no_figures(self):
        b = self.start(sys_yaml(0))
        c = b.client("watch")
        c.subscribe([("$SYS/#", 0)])
        self.assertEqual(c.drain_publishes(idle=0.5), [])


if __name__ == "__main__":
    roostlib.main()

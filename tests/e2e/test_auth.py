"""Users, ACLs and safe defaults, with Mosquitto's file formats unchanged:
a password file written by Debian's mosquitto_passwd, an acl_file with
topic/user/pattern lines, anonymous clients from this machine only by default,
`$` topics reserved, and SIGHUP reloading both files without dropping
anyone while shrinking grants at once."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import roostlib
from roostlib import Broker, SUBACK


def conf(listener_bind="127.0.0.1", extra=""):
    """A loopback listener first (the harness finds its port), plus a
    listener on all IPv4 addresses when listener_bind is 0.0.0.0 (a LAN
    listener; the tests still connect to it over 127.0.0.1)."""
    lan = "  - port: 0\n    bind: 0.0.0.0\n" if listener_bind == "0.0.0.0" else ""
    return ("listeners:\n  - port: 0\n    bind: 127.0.0.1\n%s%s"
            "http: {port: -1}\npersistence: {enabled: false}\nlog: {level: debug}\n"
            % (lan, extra))


class AuthTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="roost-auth-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pw = os.path.join(self.dir, "passwd")
        self.acl = os.path.join(self.dir, "acl")

    def start(self, text):
        b = Broker(config_text=text)
        b.start()
        self.addCleanup(b.stop)
        b.lan_port = None
        if "bind: 0.0.0.0" in text:
            m = b.wait_for_log(r"listening on 0\.0\.0\.0:(\d+)", timeout=5)
            b.lan_port = int(m.group(1))
        return b

    def lan(self, b):
        """A connection to the LAN listener (over loopback)."""
        c = roostlib.RawClient(b.lan_port)
        b.clients.append(c)
        return c

    def passwd(self, *args):
        r = subprocess.run(["mosquitto_passwd"] + list(args), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def write_acl(self, text):
        with open(self.acl, "w") as f:
            f.write(text)

    # -- anonymous defaults --------------------------------------------------

    def test_anonymous_accepted_on_loopback_listener_by_default(self):
        b = self.start(conf("127.0.0.1"))
        b.client("anon").disconnect()

    def test_anonymous_from_this_machine_accepted_on_lan_listener(self):
        # "This machine" is judged by the client's address, not the
        # listener's: 127.0.0.1 on a 0.0.0.0 listener is admitted (issue 10).
        # A LAN peer's refusal is in test_defaults.py (network namespace).
        b = self.start(conf("0.0.0.0"))
        self.lan(b).connect("anon-lan-local").disconnect()
        b.client("anon-loopback").disconnect()

    def test_allow_anonymous_true_opts_in_on_lan_listener(self):
        b = self.start(conf("0.0.0.0", "allow_anonymous: true\n"))
        self.lan(b).connect("anon-ok").disconnect()

    def test_allow_anonymous_false_refuses_loopback_too(self):
        b = self.start(conf("127.0.0.1", "allow_anonymous: false\n"))
        b.raw().connect("anon-no", expect_rc=5)

    # -- password file -------------------------------------------------------

    def test_mosquitto_passwd_file_works_unchanged(self):
        self.passwd("-c", "-b", self.pw, "alice", "wonderland")
        self.passwd("-b", self.pw, "bob", "builder")
        b = self.start(conf("127.0.0.1", "password_file: %s\n" % self.pw))
        b.client("a1", username="alice", password="wonderland").disconnect()
        b.client("b1", username="bob", password="builder").disconnect()
        b.raw().connect("a2", username="alice", password="WRONG", expect_rc=4)
        b.raw().connect("x1", username="mallory", password="wonderland", expect_rc=4)
        # Users do not lock out this machine: anonymous on loopback still works.
        b.client("anon").disconnect()

    def test_roost_passwd_file_works(self):
        r = subprocess.run([roostlib.roost_bin(), "passwd", "-c", "-b", self.pw, "carol", "s3cret"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.pw) as f:
            self.assertRegex(f.read(), r"^carol:\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n$")
        b = self.start(conf("127.0.0.1", "password_file: %s\n" % self.pw))
        b.client("c1", username="carol", password="s3cret").disconnect()
        b.raw().connect("c2", username="carol", password="s3creT", expect_rc=4)

    def test_broken_password_file_refuses_to_start_with_file_and_line(self):
        with open(self.pw, "w") as f:
            f.write("alice:$7$101$c2FsdA==$aGFzaA==\nno colon here\n")
        cfg = os.path.join(self.dir, "roost.yaml")
        with open(cfg, "w") as f:
            f.write(conf("127.0.0.1", "password_file: %s\n" % self.pw))
        r = subprocess.run([roostlib.roost_bin(), "-c", cfg], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:2:" % self.pw, r.stderr)

    # -- ACL ---------------------------------------------------------------

    def acl_broker(self):
        self.passwd("-c", "-b", self.pw, "alice", "pw")
        self.passwd("-b", self.pw, "bob", "pw")
        self.write_acl("# household ACL\n"
                       "user alice\n"
                       "topic readwrite home/alice/#\n"
                       "topic read shared/#\n"
                       "topic deny shared/secret\n"
                       "user bob\n"
                       "topic write shared/#\n"
                       "topic read home/alice/public\n"
                       "pattern readwrite devices/%c/#\n")
        return self.start(conf("127.0.0.1", "password_file: %s\nacl_file: %s\n" % (self.pw, self.acl)))

    def test_acl_publish_denied_is_dropped_silently_and_logged(self):
        b = self.acl_broker()
        alice = b.client("alice-1", username="alice", password="pw")
        self.assertEqual(alice.subscribe([("home/alice/#", 1)]), [1])
        bob = b.client("bob-1", username="bob", password="pw")
        bob.publish("home/alice/door", b"open", qos=1)      # PUBACK still comes (3.1.1)
        b.wait_for_log(r"bob-1: PUBLISH to home/alice/door dropped: denied by the ACL", timeout=5)
        alice.publish("home/alice/door", b"closed", qos=1)
        alice.expect_publish(topic="home/alice/door", payload=b"closed")   # not bob's

    def test_acl_subscribe_denied_gets_0x80(self):
        b = self.acl_broker()
        bob = b.client("bob-2", username="bob", password="pw")
        self.assertEqual(bob.subscribe([("home/alice/#", 1), ("home/alice/public", 1)]), [0x80, 1])
        alice = b.client("alice-2", username="alice", password="pw")
        self.assertEqual(alice.subscribe([("shared/#", 0), ("elsewhere", 0)]), [0, 0x80])

    def test_acl_read_deny_wins_and_applies_to_retained(self):
        b = self.acl_broker()
        bob = b.client("bob-3", username="bob", password="pw")
        bob.publish("shared/secret", b"s", qos=1, retain=True)
        bob.publish("shared/news", b"n", qos=1, retain=True)
        alice = b.client("alice-3", username="alice", password="pw")
        alice.subscribe([("shared/#", 1)])
        m = alice.expect_publish(retain=True)
        self.assertEqual((m.topic, m.payload), ("shared/news", b"n"))
        alice.expect_no_publish(0.5)                       # deny first: no shared/secret
        bob.publish("shared/secret", b"live", qos=1)
        bob.publish("shared/news", b"live", qos=1)
        m = alice.expect_publish()
        self.assertEqual((m.topic, m.payload), ("shared/news", b"live"))

    def test_acl_pattern_client_id_fills_a_level(self):
        b = self.acl_broker()
        bob = b.client("sensor7", username="bob", password="pw")
        self.assertEqual(bob.subscribe([("devices/sensor7/#", 1), ("devices/sensor8/#", 1)]), [1, 0x80])

    def test_nothing_granted_is_denied_for_anonymous_with_acl(self):
        self.write_acl("topic read public/#\n")
        b = self.start(conf("127.0.0.1", "acl_file: %s\n" % self.acl))
        anon = b.client("anon-acl")
        self.assertEqual(anon.subscribe([("public/x", 0), ("private/x", 0)]), [0, 0x80])

    def test_dollar_topics_cannot_be_published_by_clients(self):
        b = self.start(conf("127.0.0.1", "allow_anonymous: true\n"))
        watcher = b.client("watch")
        watcher.subscribe([("$SYS/#", 0)])
        watcher.drain_publishes(idle=0.3)                   # broker's own $SYS retained
        c = b.client("forger")
        c.publish("$SYS/broker/version", b"fake", qos=1)
        b.wait_for_log(r"forger: PUBLISH to \$SYS/broker/version dropped", timeout=5)
        watcher.expect_no_publish(0.5)

    # -- reload ---------------------------------------------------------------

    def test_sighup_reload_shrinks_grants_at_once_without_dropping(self):
        b = self.acl_broker()
        alice = b.client("alice-r", username="alice", password="pw")
        self.assertEqual(alice.subscribe([("shared/#", 1)]), [1])
        bob = b.client("bob-r", username="bob", password="pw")
        bob.publish("shared/a", b"1", qos=1)
        alice.expect_publish(topic="shared/a", payload=b"1")
        mark = b.log_mark()     # before the edits: roost may see the passwd change itself
        self.write_acl("user alice\ntopic readwrite home/alice/#\nuser bob\ntopic write shared/#\n")
        self.passwd("-b", self.pw, "dave", "pw")
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"auth: reloaded", timeout=5, since=mark)
        b.wait_for_log(r"alice-r: subscription shared/# revoked", timeout=5, since=mark)
        bob.publish("shared/a", b"2", qos=1)
        alice.expect_no_publish(0.5)                       # grant gone at once
        alice.ping()                                       # but still connected
        bob.ping()
        b.client("dave-1", username="dave", password="pw").disconnect()   # new user works

    def test_sighup_with_broken_acl_keeps_the_old_one(self):
        b = self.acl_broker()
        self.write_acl("user alice\ntopic sideways home/#\n")
        mark = b.log_mark()
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"reload failed; keeping the previous", timeout=5, since=mark)
        alice = b.client("alice-k", username="alice", password="pw")
        self.assertEqual(alice.subscribe([("home/alice/x", 0)]), [0])


if __name__ == "__main__":
    roostlib.main()

#!/usr/bin/env python3
"""The first LAN user in one command (issue 10): `roost passwd NAME` writes
`passwd` beside the store, which roost reads when no password_file is set,
and a running roost picks the change up within 2 s without a signal
(inotify on the directory, so the rename `roost passwd` does is seen).

Each test starts roost with its store in a temporary directory and runs
`broker/roost passwd` from that directory, as a user following the README
would."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

import roostlib
from roostlib import Broker, main

PICKUP = 2.0       # the promise: a change is in effect within 2 s
PUB = "mosquitto_pub"


class UsersTest(unittest.TestCase):
    def start(self, extra=""):
        b = Broker(config_text="")       # the directory first, then the config naming it
        b.dir = b._tmp.name
        b.config_text = ("listeners:\n  - port: 0\n    bind: 127.0.0.1\n"
                         "persistence: {path: %s/roost.db}\nhttp: {port: -1}\n"
                         "log: {level: debug}\n%s" % (b.dir, extra))
        b.start()
        self.addCleanup(b.stop)
        b.wait_for_log(r"anonymous: this machine only; LAN clients need a user: roost passwd NAME")
        return b

    def passwd(self, b, *args, stdin=None, cwd=None):
        """broker/roost passwd ARGS, run from the store's directory."""
        r = subprocess.run([roostlib.roost_bin(), "passwd"] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=30, cwd=cwd or b.dir,
                           start_new_session=True)   # no controlling tty: the prompt reads stdin
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def passwd_applied(self, b, *args, **kw):
        """passwd, then the reload it causes (inotify, no signal) within 2 s.
        Waiting for the log line, not polling with logins: failed logins
        are backed off per user."""
        mark = b.log_mark()
        r = self.passwd(b, *args, **kw)
        b.wait_for_log(r"auth: reloaded", PICKUP, since=mark)
        return r

    def pub(self, b, user, password):
        return subprocess.run([PUB, "-h", "127.0.0.1", "-p", str(b.port), "-u", user, "-P", password,
                               "-t", "home/test", "-m", "x"], capture_output=True, text=True,
                              timeout=15).returncode

    def until(self, what, fn, limit=PICKUP):
        """fn() becomes true within `limit` seconds; returns the time it took."""
        t0 = time.monotonic()
        while not fn():
            if time.monotonic() - t0 > limit:
                self.fail("%s: not within %.1f s" % (what, limit))
            time.sleep(0.05)
        return time.monotonic() - t0

    def refused(self, b, user, password, rc=4):
        c = b.raw()
        try:
            c.connect("probe", username=user, password=password, expect_rc=rc)
            return True
        except AssertionError:
            return False

    def test_roost_passwd_name_is_picked_up_within_2s_without_a_signal(self):
        b = self.start()
        # No users yet: a user name proves nothing, the client is anonymous.
        self.assertEqual(self.pub(b, "alice", "wrong"), 0)
        mark = b.log_mark()
        r = self.passwd(b, "-b", "alice", "wonderland")
        self.assertIn("passwd", r.stdout)
        path = os.path.join(b.dir, "passwd")
        self.assertEqual(os.stat(path).st_mode & 0o7777, 0o640)
        took = self.until("wrong password refused", lambda: self.refused(b, "alice", "wrong"))
        b.wait_for_log(r"auth: reloaded \(1 users", since=mark)
        self.assertEqual(self.pub(b, "alice", "wonderland"), 0)
        self.assertNotEqual(self.pub(b, "alice", "wonderland!"), 0)
        self.assertLess(took, PICKUP)

    def test_prompted_form_and_config_form_and_delete(self):
        b = self.start()
        # `roost passwd NAME`: the password twice on stdin (no terminal).
        self.passwd_applied(b, "bob", stdin="builder\nbuilder\n")
        self.assertTrue(self.refused(b, "bob", "nope"))
        self.assertEqual(self.pub(b, "bob", "builder"), 0)
        # From elsewhere, naming the config: the same file.
        self.passwd_applied(b, "--config", b.config_path, "-b", "carol", "pw", cwd="/")
        self.assertEqual(self.pub(b, "carol", "pw"), 0)
        self.assertTrue(self.refused(b, "carol", "nope"))
        self.assertEqual(self.pub(b, "bob", "builder"), 0)
        # -D takes bob away again.
        self.passwd_applied(b, "-D", "bob")
        self.assertTrue(self.refused(b, "bob", "builder"))
        self.assertEqual(self.pub(b, "carol", "pw"), 0)
        # Anonymous clients from this machine are still admitted with users.
        b.client("anon").disconnect()

    def test_bad_content_on_reload_keeps_the_old_users_with_file_and_line(self):
        b = self.start()
        self.passwd_applied(b, "-b", "alice", "wonderland")
        self.assertTrue(self.refused(b, "alice", "wrong"))
        mark = b.log_mark()
        path = os.path.join(b.dir, "passwd")
        with open(path, "a") as f:
            f.write("this line has no colon\n")
        b.wait_for_log(r"%s:2: " % path, PICKUP, since=mark)
        b.wait_for_log(r"reload failed; keeping the previous", PICKUP, since=mark)
        self.assertEqual(self.pub(b, "alice", "wonderland"), 0)
        self.assertTrue(self.refused(b, "alice", "wrong"))

    def test_sighup_reloads_the_default_file(self):
        b = self.start()
        path = os.path.join(b.dir, "passwd")
        # A hard link is an IN_CREATE, which the watch ignores (a file
        # being created is still empty): SIGHUP must pick it up.
        other = os.path.join(b.dir, "sub")
        os.mkdir(other)
        self.passwd(b, "-b", "dave", "pw", cwd=other)
        mark = b.log_mark()
        os.link(os.path.join(other, "passwd"), path)
        time.sleep(0.3)
        self.assertIsNone(b.find_log(r"auth: reloaded", since=mark))
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"auth: reloaded \(1 users", PICKUP, since=mark)
        self.assertTrue(self.refused(b, "dave", "wrong"))
        self.assertEqual(self.pub(b, "dave", "pw"), 0)

    def test_per_listener_allow_anonymous_password_file_and_acl(self):
        # Mosquitto's per_listener_settings: the second listener has its own
        # users and ACL and refuses anonymous clients; the first inherits the
        # top level (the default passwd beside the store, no ACL).
        d = Broker(config_text="")._tmp                 # a directory for the listener's files
        self.addCleanup(d.cleanup)
        own_pw, own_acl = os.path.join(d.name, "tls-users"), os.path.join(d.name, "tls-acl")
        with open(own_acl, "w") as f:
            f.write("user bob\ntopic readwrite b/#\n")
        r = subprocess.run([roostlib.roost_bin(), "passwd", "-c", "-b", own_pw, "bob", "pw"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        b = Broker(config_text="")
        b.dir = b._tmp.name
        b.config_text = ("listeners:\n  - port: 0\n    bind: 127.0.0.1\n"
                         "  - port: 0\n    bind: 127.0.0.1\n    allow_anonymous: false\n"
                         "    password_file: %s\n    acl_file: %s\n"
                         "persistence: {path: %s/roost.db}\nhttp: {port: -1}\nlog: {level: debug}\n"
                         % (own_pw, own_acl, b.dir))
        b.start()
        self.addCleanup(b.stop)
        b.wait_for_log(r"listeners\[1\]: anonymous: nobody \(allow_anonymous: false\); "
                       r"every client needs one of 1 user")
        found = lambda: [int(m) for m in re.findall(r"listening on 127\.0\.0\.1:(\d+)",
                                                    "\n".join(b.lines))]
        self.until("both listeners open", lambda: len(found()) == 2, 5.0)
        ports = found()
        second = lambda: b.clients.append(roostlib.RawClient(ports[1])) or b.clients[-1]
        self.passwd_applied(b, "-b", "alice", "wonderland")
        self.assertTrue(self.refused(b, "alice", "wrong"))
        # First listener: the top level's users, anonymous from this machine.
        b.client("anon-1").disconnect()
        b.client("alice-1", username="alice", password="wonderland").disconnect()
        b.raw().connect("bob-1", username="bob", password="pw", expect_rc=4)
        alice = b.client("alice-1s", username="alice", password="wonderland")
        self.assertEqual(alice.subscribe([("a/x", 0)]), [0])      # no ACL there
        # Second listener: its own users and ACL, no anonymous clients.
        second().connect("anon-2", expect_rc=5)
        second().connect("alice-2", username="alice", password="wonderland", expect_rc=4)
        bob = second().connect("bob-2", username="bob", password="pw")
        self.assertEqual(bob.subscribe([("b/x", 0), ("a/x", 0)]), [0, 0x80])
        # Its password file is watched too.
        self.passwd_applied(b, "-b", own_pw, "carol", "pw2")
        second().connect("carol-2", username="carol", password="pw2").disconnect()
        bob.ping()

    # -- password checks off the loop (issue 9) --------------------------------

    def thread_cpu_ms(self, b):
        """CPU time (user + system, ms) of roost's main thread and of its
        password workers (threads named roost-auth), from /proc."""
        main_ms = auth_ms = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        task = "/proc/%d/task" % b.proc.pid
        for tid in os.listdir(task):
            with open(os.path.join(task, tid, "stat")) as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            ms = (int(fields[11]) + int(fields[12])) * 1000.0 / tick   # utime, stime
            if int(tid) == b.proc.pid:
                main_ms += ms
            elif comm == "roost-auth":
                auth_ms += ms
        return main_ms, auth_ms

    def test_40_wrong_passwords_do_not_freeze_the_loop_and_are_backed_off(self):
        b = self.start()
        self.passwd_applied(b, "-b", "alice", "wonderland")
        self.passwd_applied(b, "-b", "bob", "builder")
        b.client("alice-0", username="alice", password="wonderland").disconnect()  # workers up
        pinger = b.client("pinger")                  # anonymous, from this machine
        main0, auth0 = self.thread_cpu_ms(b)
        # 40 wrong-password CONNECTs at once, each guessing another name (so
        # none waits for another's backoff): 40 PBKDF2 runs of 20,000 rounds.
        attackers = [b.raw() for _ in range(40)]
        for i, a in enumerate(attackers):
            a.send(roostlib.connect_packet("guess-%d" % i, username="guess-%d" % i,
                                           password="wrong"))
        rtts, answered = [], 0
        deadline = time.monotonic() + 20
        pending = list(attackers)
        while pending and time.monotonic() < deadline:
            t0 = time.monotonic()
            pinger.ping()
            rtts.append(time.monotonic() - t0)
            still = []
            for a in pending:
                a.sock.setblocking(False)
                try:
                    got = a.sock.recv(4, socket.MSG_PEEK)
                except BlockingIOError:
                    got = None
                a.sock.setblocking(True)
                a.sock.settimeout(5)
                if got and len(got) >= 4:
                    a.connect_ack = got
                else:
                    still.append(a)
            pending = still
            time.sleep(0.005)
        self.assertEqual(pending, [], "not every guess was answered within 20 s")
        for a in attackers:
            self.assertEqual(a.connect_ack, b"\x20\x02\x00\x04")   # bad user name or password
        main1, auth1 = self.thread_cpu_ms(b)
        worst = max(rtts) * 1000
        sys.stderr.write("40 wrong passwords: %d PINGREQ round trips, max %.1f ms; CPU main thread "
                         "%.0f ms, password workers %.0f ms\n"
                         % (len(rtts), worst, main1 - main0, auth1 - auth0))
        # The checks ran on the workers, not on the loop's thread. (CPU time,
        # not wall time: robust on a loaded machine.)
        self.assertGreaterEqual(auth1 - auth0, 150.0)
        self.assertLess(main1 - main0, (auth1 - auth0) / 4)
        # On the loop the 40 checks cost ~900 ms of the loop's time here (they
        # froze other clients for 438 ms in the attack report). Wall time on
        # a loaded 2-core machine is noisy (15-180 ms measured): a generous
        # bound, the CPU split above is the sharp one.
        self.assertLess(worst, 400.0)
        # The same name from the same address is backed off: after its
        # second failure in a row its next check waits 1 s, while another
        # user behind the same address is not delayed at all.
        b.raw().connect("guess-0a", username="guess-0", password="wrong", expect_rc=4)
        retry = b.raw()
        t0 = time.monotonic()
        retry.send(roostlib.connect_packet("guess-0b", username="guess-0", password="wrong"))
        b.client("bob-1", username="bob", password="builder")
        bob_took = time.monotonic() - t0
        p = retry.recv_packet(timeout=5)
        retry_took = time.monotonic() - t0
        self.assertEqual(p.body, b"\x00\x04")
        self.assertGreaterEqual(retry_took, 0.9)
        self.assertLess(bob_took, retry_took)
        b.wait_for_log(r"login as 'guess-0' waits \d+ ms after failed logins")

    def test_connection_closed_while_its_check_is_delayed(self):
        b = self.start()
        self.passwd_applied(b, "-b", "alice", "wonderland")
        b.raw().connect("a1", username="alice", password="wrong", expect_rc=4)
        # Delayed 0.5 s now: close before the verdict; the broker must not
        # touch the freed connection when the check completes.
        c = b.raw()
        mark = b.log_mark()
        c.send(roostlib.connect_packet("a2", username="alice", password="wrong"))
        b.wait_for_log(r"login as 'alice' waits", 2, since=mark)
        c.abort()
        time.sleep(1.0)
        # Pipelined packets after a CONNECT wait for its verdict and are kept.
        d = b.raw()
        d.send(roostlib.connect_packet("a3", username="alice", password="wonderland") +
               roostlib.PINGREQ_BYTES)
        self.assertEqual(d.recv_packet(timeout=5).type, roostlib.CONNACK)
        self.assertEqual(d.recv_packet(timeout=5).type, roostlib.PINGRESP)

    def test_explicit_password_file_must_exist(self):
        # Only the default file may be missing; a named one is a typo.
        b = Broker(config_text="")
        cfg = os.path.join(b._tmp.name, "roost.yaml")
        with open(cfg, "w") as f:
            f.write("listeners:\n  - port: 0\n    bind: 127.0.0.1\nhttp: {port: -1}\n"
                    "password_file: /nonexistent-roost/does-not-exist\n")
        r = subprocess.run([roostlib.roost_bin(), "-c", cfg], capture_output=True, text=True,
                           timeout=30, cwd=b._tmp.name)
        b._tmp.cleanup()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent-roost/does-not-exist", r.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""soak.py — a long mixed-traffic run of the real roost daemon (not part of CI).

What it does, for --minutes (default 30), all on loopback:
  - P publishers (users pubN) publish numbered QoS 1 messages, one at a time,
    to alice/in/<pub>; a message counts as ACKNOWLEDGED when its PUBACK came.
  - one persistent subscriber (user alice, clean session false, QoS 1) reads
    alice/#; it goes offline for a few seconds now and then.
  - connection churn: short-lived anonymous loopback clients connect,
    subscribe, publish QoS 0 and leave (half of them without DISCONNECT, so
    their wills fire).
  - an attacker (user mallory) tries what the ACL forbids: subscribes to '#',
    alice/#, $SYS/#; publishes to alice/in/x; sets a will on alice/in/will
    and on $SYS/broker/version; connects with alice's client id.
  - SIGHUP every 20 s; kill -9 and restart every 3 minutes.
  - RSS of the broker sampled every 10 s.

At the end, after a drain, it reports:
  acknowledged-but-lost  every acknowledged (publisher, seq) that alice never received
  ACL violations         every message mallory received, and every message
                         alice received that did not come from a publisher
                         (mallory's publishes or wills landing on alice's topics)
  RSS over time          min / median / max per restart epoch, and the series

Usage: tools/soak.py [--minutes 30] [--bin broker/roost] [--publishers 4]
Exit status 0 when lost == 0 and violations == 0.
"""

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

HOST = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Roost:
    def __init__(self, binary, workdir, port):
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.proc = None
        self.log = open(os.path.join(workdir, "roost.log"), "ab")
        self.rss = []          # (time, epoch, kB)
        self.epoch = 0

    def start(self):
        self.proc = subprocess.Popen([self.binary, "-c", "roost.yaml"], cwd=self.workdir,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("roost exited at start (see %s/roost.log)" % self.workdir)
                time.sleep(0.1)
        raise SystemExit("roost did not open its port in 20 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.epoch += 1

    def hup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def sample(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss.append((time.time(), self.epoch, int(line.split()[1])))
        except OSError:
            pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_files(workdir, binary, port, publishers):
    users = ["alice", "mallory"] + ["pub%d" % i for i in range(publishers)]
    pw = os.path.join(workdir, "passwd.soak")
    for i, u in enumerate(users):
        argv = [binary, "passwd", "-b"] + (["-c"] if i == 0 else []) + [pw, u, u + "-pw"]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(workdir, "acl.soak"), "w") as f:
        f.write("user alice\ntopic readwrite alice/#\n\n")
        f.write("user mallory\ntopic readwrite mallory/#\n\n")
        for i in range(publishers):
            f.write("user pub%d\ntopic write alice/in/pub%d\n\n" % (i, i))
        f.write("pattern readwrite churn/%c/#\n")
    with open(os.path.join(workdir, "roost.yaml"), "w") as f:
        f.write("listeners:\n  - port: %d\n    bind: %s\n" % (port, HOST))
        f.write("password_file: passwd.soak\nacl_file: acl.soak\n")
        f.write("limits:\n  max_queued_messages: 200000\n  max_inflight_messages: 100\n")
        f.write("persistence:\n  path: soak.db\nhttp:\n  port: -1\nlog:\n  level: notice\n")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = set()       # (pub, seq)
        self.received = set()    # (pub, seq) seen by alice
        self.violations = []     # descriptions
        self.stop = threading.Event()
        self.published = 0


def make_client(cid, user=None, clean=True):
    c = mqtt.Client(client_id=cid, clean_session=clean, protocol=mqtt.MQTTv311)
    if user:
        c.username_pw_set(user, user + "-pw")
    return c


def publisher(st, port, i):
    user = "pub%d" % i
    seq = 0
    while not st.stop.is_set():
        c = make_client("soak-pub%d" % i, user)
        try:
            c.connect(HOST, port, keepalive=30)
        except OSError:
            time.sleep(0.5)
            continue
        c.loop_start()
        try:
            while not st.stop.is_set():
                seq += 1
                info = c.publish("alice/in/%s" % user, b"%s:%d" % (user.encode(), seq), qos=1)
                info.wait_for_publish(timeout=5)
                if info.rc != mqtt.MQTT_ERR_SUCCESS or not info.is_published():
                    break  # not acknowledged: the broker may or may not have it
                with st.lock:
                    st.acked.add((user, seq))
                    st.published += 1
                time.sleep(0.002)
        except (ValueError, RuntimeError, OSError):
            pass
        finally:
            c.loop_stop()
            c.disconnect()
        time.sleep(0.2)


def on_alice(st):
    def cb(client, userdata, msg):
        parts = msg.payload.split(b":")
        if (len(parts) == 2 and msg.topic.startswith("alice/in/pub")
                and parts[0].decode(errors="replace") == msg.topic.rsplit("/", 1)[1]):
            with st.lock:
                st.received.add((parts[0].decode(), int(parts[1])))
        else:
            with st.lock:
                st.violations.append("alice got %r on %s" % (msg.payload[:40], msg.topic))
    return cb


def subscriber(st, port):
    """alice: persistent session, offline for 2-5 s every 20-40 s."""
    while not st.stop.is_set():
        c = make_client("soak-alice", "alice", clean=False)
        c.on_message = on_alice(st)
        c.on_connect = lambda cl, u, f, rc: cl.subscribe("alice/#", qos=1) if rc == 0 else None
        try:
            c.connect(HOST, port, keepalive=30)
        except OSError:
            time.sleep(0.5)
            continue
        c.loop_start()
        st.stop.wait(random.uniform(20, 40))
        c.loop_stop()
        c.disconnect()
        st.stop.wait(random.uniform(2, 5))


def final_drain(st, port, seconds=30):
    c = make_client("soak-alice", "alice", clean=False)
    c.on_message = on_alice(st)
    c.on_connect = lambda cl, u, f, rc: cl.subscribe("alice/#", qos=1)
    c.connect(HOST, port, keepalive=30)
    c.loop_start()
    deadline = time.time() + seconds
    while time.time() < deadline:
        with st.lock:
            missing = len(st.acked - st.received)
        if missing == 0:
            break
        time.sleep(0.5)
    c.loop_stop()
    c.disconnect()


def attacker(st, port):
    def cb(client, userdata, msg):
        if not msg.topic.startswith("mallory/"):
            with st.lock:
                st.violations.append("mallory got %s" % msg.topic)
    n = 0
    while not st.stop.is_set():
        n += 1
        mode = n % 4
        cid = "soak-alice" if mode == 3 else "soak-mallory"
        c = make_client(cid, "mallory", clean=(mode != 3))
        will = "$SYS/broker/version" if mode == 1 else "alice/in/will"
        c.will_set(will, b"forged-will", qos=1, retain=True)
        c.on_message = cb
        try:
            c.connect(HOST, port, keepalive=30)
        except OSError:
            st.stop.wait(1)
            continue
        c.loop_start()
        c.subscribe([("#", 1), ("alice/#", 1), ("$SYS/#", 0), ("+/in/#", 1)])
        c.publish("alice/in/pub0", b"pub0:999999999", qos=1)
        c.publish("alice/in/x", b"forged", qos=1, retain=True)
        st.stop.wait(random.uniform(1, 3))
        c.loop_stop()
        c._sock_close() if hasattr(c, "_sock_close") else c.socket().close()  # no DISCONNECT: will fires


def churn(st, port):
    n = 0
    while not st.stop.is_set():
        n += 1
        c = make_client("churn-%d" % (n % 50))
        c.will_set("churn/churn-%d/status" % (n % 50), b"offline", qos=0)
        try:
            c.connect(HOST, port, keepalive=10)
            c.loop_start()
            c.subscribe("churn/churn-%d/#" % (n % 50))
            c.publish("churn/churn-%d/x" % (n % 50), b"y" * random.randint(0, 2000))
            time.sleep(random.uniform(0.01, 0.2))
            c.loop_stop()
            if n % 2:
                c.disconnect()
            else:
                c.socket().close()
        except (OSError, AttributeError):
            time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "broker", "roost"))
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--kill-every", type=float, default=180)
    ap.add_argument("--hup-every", type=float, default=20)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    workdir = tempfile.mkdtemp(prefix="roost-soak-")
    port = free_port()
    write_files(workdir, binary, port, a.publishers)
    r = Roost(binary, workdir, port)
    r.start()
    st = State()
    # alice's persistent session and subscription exist before anything is
    # published: every acknowledged message from then on is hers to receive.
    c = make_client("soak-alice", "alice", clean=False)
    done = threading.Event()
    c.on_subscribe = lambda *args: done.set()
    c.connect(HOST, port, keepalive=30)
    c.loop_start()
    c.subscribe("alice/#", qos=1)
    if not done.wait(10):
        raise SystemExit("alice could not subscribe")
    c.loop_stop()
    c.disconnect()
    threads = [threading.Thread(target=publisher, args=(st, port, i), daemon=True)
               for i in range(a.publishers)]
    threads += [threading.Thread(target=subscriber, args=(st, port), daemon=True),
                threading.Thread(target=attacker, args=(st, port), daemon=True),
                threading.Thread(target=churn, args=(st, port), daemon=True)]
    for t in threads:
        t.start()
    t0 = time.time()
    end = t0 + a.minutes * 60
    next_kill = t0 + a.kill_every
    next_hup = t0 + a.hup_every
    next_sample = t0
    while time.time() < end:
        now = time.time()
        if now >= next_sample:
            r.sample()
            next_sample = now + 10
        if now >= next_hup:
            r.hup()
            next_hup = now + a.hup_every
        if now >= next_kill and now < end - 60:
            r.kill9()
            time.sleep(0.5)
            r.start()
            next_kill = now + a.kill_every
        time.sleep(0.2)
    st.stop.set()
    for t in threads:
        t.join(timeout=10)
    final_drain(st, port)
    r.sample()
    r.stop()
    lost = sorted(st.acked - st.received)
    print("soak: %.1f min, %d restarts (kill -9), workdir %s" % ((time.time() - t0) / 60, r.epoch, workdir))
    print("acknowledged QoS 1 messages: %d; received by the persistent subscriber: %d"
          % (len(st.acked), len(st.received & st.acked)))
    print("acknowledged-but-lost: %d%s" % (len(lost), (" e.g. %s" % lost[:5]) if lost else ""))
    print("ACL violations: %d%s" % (len(st.violations), (" e.g. %s" % st.violations[:5]) if st.violations else ""))
    for ep in sorted({e for _, e, _ in r.rss}):
        vals = [kb for _, e, kb in r.rss if e == ep]
        print("RSS epoch %d: min %d kB, median %d kB, max %d kB (%d samples)"
              % (ep, min(vals), statistics.median(vals), max(vals), len(vals)))
    print("RSS series (s, kB): " + " ".join("%d:%d" % (t - t0, kb) for t, _, kb in r.rss))
    return 0 if not lost and not st.violations else 1


if __name__ == "__main__":
    sys.exit(main())

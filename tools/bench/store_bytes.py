#!/usr/bin/python3
"""Bytes written to disk per retained update (the SD-card question).

Starts broker/roost with persistence on, publishes N retained QoS 1 updates
of a given payload size to a handful of topics, and reports the broker's
write_bytes from /proc/PID/io (what reached the block layer, WAL and
checkpoints included) per update, against the payload size.

usage: tools/bench/store_bytes.py BUILD_DIR [N] [PAYLOAD] [sync]
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pkt(t, flags, body):
    return bytes([(t << 4) | flags]) + varint(len(body)) + body


def s16(b):
    return struct.pack(">H", len(b)) + b


def recv_packet(sock):
    buf = b""
    while len(buf) < 2:
        buf += sock.recv(1)
    n, mult, i = 0, 1, 1
    while True:
        while len(buf) <= i:
            buf += sock.recv(1)
        n += (buf[i] & 0x7F) * mult
        mult *= 128
        i += 1
        if not buf[i - 1] & 0x80:
            break
    body = b""
    while len(body) < n:
        body += sock.recv(n - len(body))
    return buf[0] >> 4, body


def write_bytes(pid):
    with open("/proc/%d/io" % pid) as f:
        return int(re.search(r"write_bytes: (\d+)", f.read()).group(1))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "."
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    sync = sys.argv[4] if len(sys.argv) > 4 else "normal"
    d = tempfile.mkdtemp(prefix="roost-bytes-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    cfg = os.path.join(d, "roost.yaml")
    with open(cfg, "w") as f:
        f.write("listeners: [{port: 0, bind: 127.0.0.1}]\nhttp: {port: -1}\n"
                "persistence: {path: %s/roost.db, sync: %s}\nlog: {level: info}\n" % (d, sync))
    proc = subprocess.Popen([os.path.join(build, "broker/roost"), "-c", cfg],
                            stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + 10
    while port is None and time.monotonic() < deadline:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stderr.readline())
        if m:
            port = int(m.group(1))
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(pkt(1, 0, s16(b"MQTT") + b"\x04\x02\x00\x3c" + s16(b"bytes")))
    assert recv_packet(s)[0] == 2
    payload = b"x" * size
    topics = [("home/sensor/%d/state" % i).encode() for i in range(20)]
    # Warm up: create the rows once so the measurement is of updates.
    for i, t in enumerate(topics):
        s.sendall(pkt(3, 0x03, s16(t) + struct.pack(">H", i + 1) + payload))
        recv_packet(s)
    time.sleep(0.5)
    os.sync()
    before = write_bytes(proc.pid)
    t0 = time.monotonic()
    for i in range(n):
        pid = i % 65535 + 1
        s.sendall(pkt(3, 0x03, s16(topics[i % len(topics)]) + struct.pack(">H", pid) + payload))
        kind, _ = recv_packet(s)
        assert kind == 4
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    after = write_bytes(proc.pid)
    s.close()
    proc.terminate()
    proc.wait(timeout=10)
    written = after - before
    print("retained updates: %d x %d-byte payload (topic ~20 B), sync %s, one at a time (QoS 1, "
          "each waits for its PUBACK)" % (n, size, sync))
    print("bytes written by the broker: %d = %.0f B per update (%.1f x the payload), %.0f updates/s"
          % (written, written / n, written / n / size, n / elapsed))
    subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""QoS 1 throughput with the durable store on (sync normal, sync full), against
roost's in-memory path and against Mosquitto, side by side in one run.

Scenario: 8 publishers -> 1 persistent subscriber (clean session 0), QoS 1,
16-byte payloads, so every delivery is written to roost's store (inserted when
it goes inflight, deleted at PUBACK) and every PUBACK to a publisher waits
for the group commit. Each broker is pinned to CPU 0, the generator to CPU 1;
modes alternate within each round; medians over BENCH_RUNS rounds.

usage: tools/bench/store_bench.py BUILD_DIR     (env: BENCH_RUNS=3, BENCH_DURATION=5)
"""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DURATION = os.environ.get("BENCH_DURATION", "5")
ROOST = os.path.join(BUILD, "broker/roost")
BENCH = os.path.join(BUILD, "tools/roost-bench")
MOSQ = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(mode, work):
    port = free_port()
    if mode == "mosquitto":
        conf = os.path.join(work, "m.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\n"
                    "max_queued_messages 100000\nset_tcp_nodelay true\nlog_type error\n" % port)
        argv = [MOSQ, "-c", conf]
    else:
        conf = os.path.join(work, "r.yaml")
        store = "persistence: {enabled: false}" if mode == "memory" else \
            "persistence: {path: %s/roost.db, sync: %s}" % (work, mode)
        with open(conf, "w") as f:
            f.write("listeners: [{port: %d, bind: 127.0.0.1}]\nallow_anonymous: true\nhttp: {port: -1}\n"
                    "limits: {max_queued_messages: 100000, max_inflight_messages: 1000}\n%s\n"
                    "log: {level: warning}\n" % (port, store))
        argv = [ROOST, "-c", conf]
    proc = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "broker.log"), "a"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("%s did not start" % mode)


def run(mode):
    work = tempfile.mkdtemp(prefix="roost-store-bench-")
    proc, port = start(mode, work)
    try:
        out = subprocess.run(["taskset", "-c", "1", BENCH, "fanin", "-q", "1", "-P", "8", "-N", "1",
                              "-d", DURATION, "--persistent", "--json", "-p", str(port),
                              "--broker-pid", str(proc.pid)],
                             capture_output=True, text=True, timeout=120)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, True)
    if not r.get("ok"):
        raise RuntimeError("%s: run failed: %s" % (mode, r))
    return r


def main():
    modes = ["memory", "normal", "full", "mosquitto"]
    res = {m: [] for m in modes}
    for rnd in range(RUNS):
        for m in modes:
            r = run(m)
            res[m].append(r)
            print("round %d %-9s %9.0f msgs/s  %9.0f per broker CPU-s  loss %d" % (
                rnd + 1, m, r["msgs_per_s"], r["delivered_per_broker_cpu_s"] or 0, r["loss"]),
                file=sys.stderr)
    med = {m: (statistics.median(x["msgs_per_s"] for x in res[m]),
               statistics.median((x["delivered_per_broker_cpu_s"] or 0) for x in res[m])) for m in modes}
    print("QoS 1, 8 publishers -> 1 persistent subscriber, 16 B, %s s, medians of %d rounds" % (DURATION, RUNS))
    print("%-22s %12s %16s %10s %12s" % ("broker", "msgs/s", "per broker CPU-s", "vs memory", "vs mosquitto"))
    names = {"memory": "roost, store off", "normal": "roost, sync normal", "full": "roost, sync full",
             "mosquitto": "mosquitto 2.0"}
    for m in modes:
        print("%-22s %12.0f %16.0f %9.2fx %11.2fx" % (names[m], med[m][0], med[m][1],
                                                       med[m][0] / med["memory"][0],
                                                       med[m][0] / med["mosquitto"][0]))


if __name__ == "__main__":
    main()

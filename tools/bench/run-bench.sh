#!/bin/sh
# run-bench.sh BUILD_DIR — compare roost with Mosquitto using roost-bench.
#
# Starts BUILD_DIR/broker/roost and Debian's mosquitto side by side on free
# loopback ports, both pinned to CPU 0 (taskset -c 0), and runs every scenario
# against each in alternation with the generator pinned to CPU 1. Prints the
# idle brokers' wake-ups, then a table of medians over BENCH_RUNS runs and the
# ratios roost/mosquitto. `make bench` runs it.
#
# Environment: BENCH_RUNS (default 3), BENCH_DURATION seconds per run
# (default 5), BENCH_HOLD seconds for the idle-connection scenario (default 5),
# BENCH_CONNS idle connections (default 10000), BENCH_KEEP=1 keeps the work
# directory (configs, logs, raw JSON results).
set -u

die() { echo "run-bench: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: run-bench.sh BUILD_DIR"
BUILD=$(cd "$1" && pwd) || die "no such build directory: $1"
ROOST=$BUILD/broker/roost
BENCH=$BUILD/tools/roost-bench
RUNS=${BENCH_RUNS:-3}
DUR=${BENCH_DURATION:-5}
HOLD=${BENCH_HOLD:-5}
CONNS=${BENCH_CONNS:-10000}
[ -x "$ROOST" ] || die "$ROOST not built (make broker/roost)"
[ -x "$BENCH" ] || die "$BENCH not built (make tools/roost-bench)"
for tool in taskset python3; do
	command -v $tool >/dev/null || die "$tool is required"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: brokers on CPU 0, generator on CPU 1"

# ---- Mosquitto ---------------------------------------------------------------
MOSQ=$(command -v mosquitto || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; })
if [ -z "$MOSQ" ]; then
	[ "$(id -u)" = 0 ] || die "mosquitto is missing; as root: apt-get install -y mosquitto"
	echo "run-bench: installing mosquitto (apt-get install -y mosquitto)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y mosquitto >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 && apt-get install -y mosquitto >/dev/null 2>&1; } ||
		die "apt-get install -y mosquitto failed"
	MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/roost-bench.XXXXXX") || die "mktemp failed"
ROOST_PID=
MOSQ_PID=

stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null
	return 0
}

cleanup() {
	stop_pid "$ROOST_PID"
	stop_pid "$MOSQ_PID"
	ROOST_PID='' MOSQ_PID=''
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "run-bench: work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Enough descriptors for 10,000 connections in each broker and the generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	python3 - "$1" <<'PY'
import socket, sys, time
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

ROOST_PORT=$(free_port)
MOSQ_PORT=$(free_port)
while [ "$MOSQ_PORT" = "$ROOST_PORT" ]; do MOSQ_PORT=$(free_port); done

cat >"$WORK/roost.yaml" <<EOF
listeners: [{port: $ROOST_PORT, bind: 127.0.0.1}]
limits: {max_queued_messages: 100000, max_inflight_messages: 1000}
log: {level: notice}
EOF
# set_tcp_nodelay: roost sets TCP_NODELAY on every client socket; without it
# Mosquitto's one-write-per-packet output meets Nagle and both brokers would
# not be compared on equal terms. log_type: Mosquitto logs every connection
# at notice level, roost at info; neither should pay for logging here.
cat >"$WORK/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
max_inflight_messages 1000
max_queued_messages 100000
set_tcp_nodelay ${BENCH_MOSQ_NODELAY:-true}
persistence false
log_dest stderr
log_type error
log_type warning
EOF

# taskset execs the broker, so $! is the broker's own pid.
start_roost() {
	taskset -c 0 "$ROOST" -c "$WORK/roost.yaml" </dev/null >>"$WORK/roost.log" 2>&1 &
	ROOST_PID=$!
	wait_port "$ROOST_PORT" || die "roost did not start (see $WORK/roost.log)"
}

start_mosquitto() {
	taskset -c 0 "$MOSQ" -c "$WORK/mosquitto.conf" </dev/null >>"$WORK/mosquitto.log" 2>&1 &
	MOSQ_PID=$!
	wait_port "$MOSQ_PORT" || die "mosquitto did not start (see $WORK/mosquitto.log)"
}

restart() {
	case $1 in
	roost) stop_pid "$ROOST_PID"; start_roost ;;
	mosquitto) stop_pid "$MOSQ_PID"; start_mosquitto ;;
	esac
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Wait until a broker has used no CPU for 0.3 s (at most 15 s), so one run's
# leftovers never land in the next run's measurement.
wait_idle() {
	i=0
	while [ $i -lt 50 ]; do
		a=$(cpu_ticks "$1"); sleep 0.3; b=$(cpu_ticks "$1")
		[ "$a" = "$b" ] && return 0
		i=$((i + 1))
	done
}

ctxt_switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { s += $2 } END { print s + 0 }'
}

# ---- scenarios -----------------------------------------------------------------
SCENARIOS="fanin-q0 fanout-q0 fanin-q1 pairs pairs-wild latency conns"

label() {
	case $1 in
	fanin-q0) echo "fan-in QoS 0, 16 B, 8 -> 1" ;;
	fanout-q0) echo "fan-out QoS 0, 16 B, 1 -> 100" ;;
	fanin-q1) echo "fan-in QoS 1, 16 B, 8 -> 1" ;;
	pairs) echo "500 pairs, exact topics, QoS 0" ;;
	pairs-wild) echo "500 pairs, wildcard filters, QoS 0" ;;
	latency) echo "latency 1 -> 1 at 10,000 msgs/s" ;;
	conns) echo "$CONNS idle connections" ;;
	esac
}

args() {
	case $1 in
	fanin-q0) echo "fanin -q 0 -s 16 -P 8 -N 1 -d $DUR" ;;
	fanout-q0) echo "fanout -q 0 -s 16 -P 1 -N 100 -d $DUR" ;;
	fanin-q1) echo "fanin -q 1 -s 16 -P 8 -N 1 -d $DUR" ;;
	pairs) echo "pairs -q 0 -s 16 -N 500 -d $DUR" ;;
	pairs-wild) echo "pairs -q 0 -s 16 -N 500 --wildcard -d $DUR" ;;
	latency) echo "latency -q 0 -s 16 --rate 10000 -d $DUR" ;;
	conns) echo "conns -c $CONNS --hold $HOLD" ;;
	esac
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
NRUN=0
TOTAL=$(( $(echo "$SCENARIOS" | wc -w) * RUNS * 2 ))

run_one() { # SCENARIO BROKER
	sc=$1 broker=$2
	# RSS per connection needs a fresh broker: a used heap hides the growth.
	[ "$sc" = conns ] && restart "$broker"
	if [ "$broker" = roost ]; then port=$ROOST_PORT pid=$ROOST_PID; else port=$MOSQ_PORT pid=$MOSQ_PID; fi
	wait_idle "$pid"
	# shellcheck disable=SC2046
	out=$(taskset -c 1 "$BENCH" $(args "$sc") -p "$port" --broker-pid "$pid" --json \
		</dev/null 2>>"$WORK/bench-$sc-$broker.log")
	rc=$?
	note=
	if ! kill -0 "$pid" 2>/dev/null; then
		note=crashed
		echo "run-bench: $broker died during '$(label "$sc")' (rc $rc); restarting it" >&2
		wait "$pid" 2>/dev/null
		restart "$broker"
	fi
	[ -n "$out" ] || out='{}'
	printf '%s\t%s\t%s\t%s\t%s\n' "$sc" "$broker" "$rc" "$note" "$out" >>"$RESULTS"
	NRUN=$((NRUN + 1))
	printf '%s\t%s\t%s\t%s\t%s\n' "$NRUN/$TOTAL" "$(label "$sc")" "$broker" "$rc" "$out" |
		python3 -c '
import json, sys
n, label, broker, rc, out = sys.stdin.read().rstrip("\n").split("\t", 4)
d = json.loads(out)
if "connections" in d:
    s = "%s conns, %.0f B/conn" % (d.get("connections"), d.get("rss_per_conn_b") or 0)
elif "msgs_per_s" in d:
    s = "%.0f msgs/s, %.0f per broker CPU-s, p50 %.0f us" % (d["msgs_per_s"], d.get("delivered_per_broker_cpu_s") or 0, d.get("p50_us") or 0)
else:
    s = d.get("error", "no result")
print("[%7s] %-36s %-9s %s%s" % (n, label, broker, s, "" if rc == "0" else "  (exit %s: %s)" % (rc, d.get("error", ""))), flush=True)
'
}

# ---- run -----------------------------------------------------------------------------
T0=$(date +%s)
echo "run-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "run-bench: $("$ROOST" -V 2>&1 | head -1) on 127.0.0.1:$ROOST_PORT; $("$MOSQ" -h 2>/dev/null | head -1) on 127.0.0.1:$MOSQ_PORT"
echo "run-bench: $RUNS runs x $DUR s per scenario; brokers on CPU 0, generator on CPU 1"
start_roost
start_mosquitto

# Idle wake-ups: no clients at all, 5 s. Context switches first (strace
# itself would add some), then the syscalls strace sees.
sleep 1
r0=$(ctxt_switches "$ROOST_PID"); m0=$(ctxt_switches "$MOSQ_PID")
sleep 5
r1=$(ctxt_switches "$ROOST_PID"); m1=$(ctxt_switches "$MOSQ_PID")
IDLE_ROOST_CTX=$((r1 - r0)); IDLE_MOSQ_CTX=$((m1 - m0))
IDLE_ROOST_SYS="n/a"; IDLE_MOSQ_SYS="n/a"
if command -v strace >/dev/null; then
	timeout -s INT 5 strace -c -f -p "$ROOST_PID" -o "$WORK/strace-roost.txt" 2>"$WORK/strace-roost.err" &
	s1=$!
	timeout -s INT 5 strace -c -f -p "$MOSQ_PID" -o "$WORK/strace-mosquitto.txt" 2>"$WORK/strace-mosquitto.err" &
	s2=$!
	wait $s1 $s2
	# strace -c writes nothing at all for a process that made no syscall:
	# "attached" on its stderr tells that apart from a failed attach.
	strace_summary() {
		grep -q attached "$1.err" 2>/dev/null || { echo "n/a (strace could not attach)"; return; }
		awk '$NF == "total" { total = $4 }
		     /^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ && $NF != "total" { list = list sprintf("%s%s x%s", list ? ", " : "", $NF, $4) }
		     END { printf "%d%s\n", total, list ? " (" list ")" : "" }' "$1.txt" 2>/dev/null
	}
	IDLE_ROOST_SYS=$(strace_summary "$WORK/strace-roost")
	IDLE_MOSQ_SYS=$(strace_summary "$WORK/strace-mosquitto")
fi

r=1
while [ $r -le "$RUNS" ]; do
	for sc in $SCENARIOS; do
		# alternate which broker goes first, so drift hits both alike
		if [ $((r % 2)) = 1 ]; then order="roost mosquitto"; else order="mosquitto roost"; fi
		for broker in $order; do
			run_one "$sc" "$broker"
		done
	done
	r=$((r + 1))
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(( $(date +%s) - T0 ))

# ---- report ------------------------------------------------------------------------------
python3 - "$RESULTS" "$RUNS" "$DUR" "$LOAD_END" "$IDLE_ROOST_CTX" "$IDLE_MOSQ_CTX" "$IDLE_ROOST_SYS" "$IDLE_MOSQ_SYS" \
	"$(for sc in $SCENARIOS; do printf '%s=%s=%s;' "$sc" "$(label "$sc")" "$(args "$sc")"; done)" "$ELAPSED" <<'PY'
import json, statistics, sys

path, runs, dur, load_end, rctx, mctx, rsys, msys, table, elapsed = sys.argv[1:11]
labels, cmds = {}, {}
for x in table.split(";"):
    if x:
        sc, label, cmd = x.split("=", 2)
        labels[sc], cmds[sc] = label, cmd
order = list(labels)
rows = {}
fails = []
for line in open(path):
    sc, broker, rc, note, out = line.rstrip("\n").split("\t", 4)
    d = json.loads(out)
    rows.setdefault((sc, broker), []).append(d)
    if rc != "0" or note:
        fails.append("%s / %s: exit %s%s: %s" % (labels[sc], broker, rc, " (" + note + ")" if note else "",
                                               d.get("error", "no result")))

def med(sc, broker, key):
    vals = [d[key] for d in rows.get((sc, broker), []) if d.get(key) is not None]
    return statistics.median(vals) if vals else None

def fmt(v, nd=0):
    if v is None:
        return "n/a"
    return "{:,.{}f}".format(v, nd)

def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "n/a"

print()
print("## Scenarios (roost-bench SCENARIO ... -p PORT --broker-pid PID --json)")
print()
print("| scenario | arguments |")
print("|---|---|")
for sc in order:
    print("| %s | `%s` |" % (labels[sc], cmds[sc]))
print()
print("## Idle brokers (no clients, 5 s)")
print()
print("| broker | context switches | syscalls (strace -c -f) |")
print("|---|---:|---|")
print("| roost | %s | %s |" % (rctx, rsys))
print("| mosquitto | %s | %s |" % (mctx, msys))
print()
print("## Medians of %s runs, %s s each (brokers on CPU 0, generator on CPU 1)" % (runs, dur))
print()
print("| scenario | broker | msgs/s delivered | delivered / broker CPU-s | loss % | p50 µs | p99 µs | p99.9 µs | max µs | broker CPU s | generator CPU s | notes |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for sc in order:
    if sc == "conns":
        continue
    for broker in ("roost", "mosquitto"):
        ds = rows.get((sc, broker), [])
        notes = []
        gb = sum(1 for d in ds if d.get("generator_bound"))
        if gb:
            notes.append("generator-bound in %d/%d" % (gb, len(ds)))
        bad = sum(1 for d in ds if not d.get("ok"))
        if bad:
            notes.append("%d/%d runs failed" % (bad, len(ds)))
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            labels[sc] if broker == "roost" else "", broker,
            fmt(med(sc, broker, "msgs_per_s")), fmt(med(sc, broker, "delivered_per_broker_cpu_s")),
            fmt(med(sc, broker, "loss_pct"), 2), fmt(med(sc, broker, "p50_us"), 1),
            fmt(med(sc, broker, "p99_us"), 1), fmt(med(sc, broker, "p999_us"), 1),
            fmt(med(sc, broker, "max_us"), 1), fmt(med(sc, broker, "broker_cpu_s"), 2),
            fmt(med(sc, broker, "gen_cpu_s"), 2), ", ".join(notes)))
if "conns" in order:
    print()
    print("| %s | broker | connect time s | conns/s | RSS before KiB | RSS after KiB | RSS per connection B | broker CPU while holding s |" % labels["conns"])
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for broker in ("roost", "mosquitto"):
        print("| | %s | %s | %s | %s | %s | %s | %s |" % (
            broker, fmt(med("conns", broker, "connect_s"), 2), fmt(med("conns", broker, "conns_per_s")),
            fmt(med("conns", broker, "rss_before_kb")), fmt(med("conns", broker, "rss_after_kb")),
            fmt(med("conns", broker, "rss_per_conn_b")), fmt(med("conns", broker, "broker_cpu_s"), 2)))
print()
print("## roost / mosquitto (medians)")
print()
print("| scenario | delivered per broker CPU-s | msgs/s delivered | p50 latency | p99 latency |")
print("|---|---:|---:|---:|---:|")
for sc in order:
    if sc == "conns":
        continue
    print("| %s | %s | %s | %s | %s |" % (
        labels[sc],
        ratio(med(sc, "roost", "delivered_per_broker_cpu_s"), med(sc, "mosquitto", "delivered_per_broker_cpu_s")),
        ratio(med(sc, "roost", "msgs_per_s"), med(sc, "mosquitto", "msgs_per_s")),
        ratio(med(sc, "roost", "p50_us"), med(sc, "mosquitto", "p50_us")),
        ratio(med(sc, "roost", "p99_us"), med(sc, "mosquitto", "p99_us"))))
if "conns" in order:
    print("| %s: RSS per connection | | | | %s |" % (
        labels["conns"], ratio(med("conns", "roost", "rss_per_conn_b"), med("conns", "mosquitto", "rss_per_conn_b"))))
print()
print("Higher is better for delivered per CPU-second and msgs/s; lower is better for latency and RSS.")
print("Load average at the end: %s (other processes on these CPUs skew wall-clock numbers;" % load_end)
print("per CPU-second numbers are the robust ones). Whole run: %s s." % elapsed)
if fails:
    print()
    print("## Failed runs")
    print()
    for f in fails:
        print("- " + f)
PY

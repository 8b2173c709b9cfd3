/*
 * roost_bench.c — roost-bench, a load generator for MQTT brokers in the spirit
 * of emqtt-bench, used to compare roost with Mosquitto on one machine.
 *
 * One libevent loop drives every connection of a scenario over loopback, and
 * everything is bounded:
 *  - a publisher keeps at most `out_target` bytes in its output evbuffer; the
 *    write callback refills it when it drains below half, so the generator
 *    writes as fast as the socket allows without buffering the whole run;
 *  - QoS 1/2 publishers keep at most --inflight messages unacknowledged
 *    (a bitmap of packet ids, allocated once);
 *  - publishes are encoded many at a time straight into space reserved in the
 *    output evbuffer (no per-message malloc, one commit per batch), and acks
 *    a subscriber owes are gathered in one scratch buffer per read callback;
 *  - the subscriber side decodes in place from the input evbuffer's first
 *    chunk and only pulls up the bytes of a packet that straddles two chunks.
 * Every packet is encoded and decoded by the roost codec (MQTT 3.1.1).
 *
 * --ws speaks MQTT over WebSockets (a listener with protocol: websockets): a
 * filtering bufferevent over each socket sends the HTTP Upgrade, then wraps
 * the MQTT bytes in masked binary frames and unwraps the broker's frames.
 * The masking key is zero (XOR with it is the identity): the broker still
 * unmasks every byte, and the generator spends no CPU on it.
 *
 * Payload: 16 bytes of header, little-endian, then zeros up to -s bytes:
 *   u32 publisher index | u32 sequence | u64 send time (CLOCK_MONOTONIC, ns)
 * The sequence is the low 32 bits of a per-publisher 64-bit counter that
 * starts at 1; subscribers widen it back (serial-number arithmetic), which is
 * exact while fewer than 2^31 messages of one publisher are in flight. This
 * keeps the smallest payload at 16 bytes, the size brokers are usually
 * compared at.
 *
 * Subscribers check that each publisher's sequence strictly increases (an
 * equal sequence is a duplicate, a smaller one an order violation), count what
 * they receive, and record end-to-end latency in a log-linear histogram.
 *
 * Exit status: 0 ok; 1 usage or setup error; 2 a connection failed (refused,
 * CONNACK/SUBACK error, timeout, closed by the broker during the run);
 * 3 verification failed (order violations, messages on the wrong subscriber,
 * loss at QoS >= 1, duplicates at QoS 2).
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "roost/alloc.h"
#include "roost/codec.h"

/* --ws: the upgrade request, and the largest frame sent. */
#define WS_UPGRADE "GET /mqtt HTTP/1.1\r\nHost: roost-bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" \
	"Sec-WebSocket-Protocol: mqtt\r\n\r\n"
#define WS_FRAME_MAX 65535u /* a 16-bit length */

#define VERSION ROOST_MQTT_V311
#define PAYLOAD_HEADER 16u          /* u32 index + u32 sequence + u64 timestamp */
#define PAYLOAD_MAX (16u << 20)     /* -s upper bound: 16 MiB */
#define TOPIC_MAX 64
#define ACK_BUF 16384
#define READ_MAX (128 * 1024)       /* bytes per read(2) on one connection */
#define WRITE_MAX (64 * 1024)       /* bytes per write(2) on one connection */
#define OUT_BUDGET (8u << 20)       /* output buffer bytes shared by all publishers */
#define OUT_MIN (8u * 1024)
#define OUT_MAX (64u * 1024)
#define FD_RESERVE 32               /* descriptors kept for stdio, epoll, /proc */
#define NS 1000000000ull

enum scenario { SC_FANIN, SC_FANOUT, SC_PAIRS, SC_LATENCY, SC_CONNS, SC_COUNT };
static const char *const scenario_names[SC_COUNT] = { "fanin", "fanout", "pairs", "latency", "conns" };

enum role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };
enum cstate { CS_NEW, CS_CONNECTING, CS_WAIT_CONNACK, CS_WAIT_SUBACK, CS_READY, CS_CLOSING, CS_CLOSED };
enum phase { PH_CONNECT, PH_RUN, PH_DRAIN, PH_HOLD, PH_CLOSE };

typedef struct options {
	int scenario;
	const char *host;
	unsigned port;
	int qos;
	size_t payload;
	double duration;        /* seconds of publishing (or holding, conns); used when count == 0 */
	uint64_t count;         /* total messages over all publishers; 0 = use duration */
	unsigned pubs, subs;    /* 0 = the scenario's default */
	double rate;            /* total msgs/s over all publishers; 0 = as fast as possible */
	long broker_pid;        /* 0 = unknown: no broker CPU or RSS */
	unsigned inflight;      /* QoS 1/2 window per publisher */
	unsigned window;        /* end-to-end: message copies published and not yet delivered, whole run; 0 = off */
	uint64_t window_bytes;  /* the same bound in bytes of PUBLISH packets; 0 = off */
	bool wildcard, json, persistent, ws;
	unsigned conns, batch;  /* conns scenario; batch = handshakes in flight (all scenarios) */
	double hold;            /* conns: seconds to hold the connections */
	unsigned keepalive;     /* seconds, sent in CONNECT; PINGREQ every keepalive/2 */
	double connect_timeout; /* seconds for the whole connection phase */
	double drain_idle;      /* after publishing: stop waiting after this long without a delivery */
	double drain_timeout;   /* after publishing: stop waiting after this long in any case */
} options;

struct bench;

typedef struct conn {
	struct bench *b;
	struct bufferevent *bev;
	uint8_t role, state;
	bool ws_up;             /* --ws: the broker answered the upgrade with 101 */
	uint16_t topic_len;
	uint32_t index;         /* publisher index (== position in b->conns) or subscriber number */
	char topic[TOPIC_MAX];  /* publisher: topic name; subscriber: topic filter */
	/* publisher */
	size_t msg_len;         /* bytes of one PUBLISH, all the same for one publisher */
	uint64_t sent, quota, allowed;
	uint32_t inflight;
	uint16_t next_pid;
	bool blocked;           /* waiting for its subscribers to catch up (--window) */
	uint32_t lead;          /* its share of --window: messages it may be ahead of its subscribers */
	uint32_t nsubs_of;      /* subscribers that receive this publisher's messages */
	uint64_t seen_sum;      /* sum over those subscribers of the last sequence each saw */
	uint64_t *pids;         /* bitmap of packet ids awaiting PUBACK/PUBCOMP; QoS 1/2 only */
	/* subscriber: publishers [pub_first, pub_first + pub_count) */
	uint32_t pub_first, pub_count;
	uint64_t *last_seq;     /* per expected publisher: last sequence seen, 0 = none yet */
} conn;

/* Log-linear latency histogram in ns: 128 sub-buckets per power of two (< 0.8 % error). */
#define HIST_SUB 128u
#define HIST_BUCKETS (2u * HIST_SUB + 56u * HIST_SUB)
typedef struct hist {
	uint64_t n, max;
	uint64_t bucket[HIST_BUCKETS];
} hist;

typedef struct bench {
	options o;
	struct event_base *base;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	conn *conns;
	unsigned nconns, npubs, nsubs;      /* conns: publishers, then subscribers, then idle ones */
	unsigned next_open, connecting, ready, closing;
	int phase;
	bool finishing, tty, progress_shown;
	struct event *ev_progress, *ev_stop, *ev_tick, *ev_drain, *ev_ping, *ev_timeout, *ev_finish,
		*ev_close, *ev_sigint;
	uint8_t *payload;                   /* PAYLOAD_MAX-bounded template of zeros */
	size_t out_target;
	size_t max_packet;
	unsigned pubs_done;
	uint32_t *wake;                     /* publishers unblocked during this read callback */
	unsigned nwake;
	/* subscriber totals */
	uint64_t sent, received, unique, dups, order, unexpected, expected, inflight;
	uint64_t gaps, gap_msgs;            /* sequence jumps forward, and the messages they skipped */
	/* times, CLOCK_MONOTONIC ns */
	uint64_t now, t_begin, t_start, t_stop, t_last_rx, t_end, t_connected;
	uint64_t prog_t, prog_sent, prog_rx, drain_rx, drain_t;
	/* resources */
	double broker_cpu0, broker_cpu1, gen_cpu0, gen_cpu1;
	long rss0, rss1;
	hist lat;
	int exit_code;                      /* first failure: 2 connection; 3 verification */
	char why[256];
	size_t ack_len;
	uint8_t ack_buf[ACK_BUF];
} bench;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static struct timeval tv_of(double seconds)
{
	struct timeval tv;
	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	return tv;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/*
 * Widen a 32-bit wire sequence to the 64-bit sequence closest to `last`
 * (serial-number arithmetic), so wrap-around never looks like disorder.
 */
static uint64_t seq_widen(uint64_t last, uint32_t wire)
{
	uint64_t s = (last & ~(uint64_t)UINT32_MAX) | wire;
	if (s + (1ull << 31) < last)
		s += 1ull << 32;
	else if (s > last + (1ull << 31) && s >= (1ull << 32))
		s -= 1ull << 32;
	return s;
}

static unsigned hist_index(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 8 */
	unsigned shift = msb - 7u;                         /* >= 1 */
	return 2 * HIST_SUB + (shift - 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* Middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
	if (i < 2 * HIST_SUB)
		return i;
	unsigned shift = (i - 2 * HIST_SUB) / HIST_SUB + 1;
	uint64_t top = (i - 2 * HIST_SUB) % HIST_SUB + HIST_SUB;
	return (top << shift) + ((1ull << shift) >> 1);
}

static void hist_add(hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

/* Value at quantile q (0..1], in ns; 0 when empty. */
static uint64_t hist_quantile(const hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* utime + stime of a process (all its threads), in seconds; -1 if unreadable. */
static double proc_cpu(long pid)
{
	char path[64], buf[1024];
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may contain spaces: fields restart after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long ut = 0, st = 0;
	/* fields 3..13 skipped, then utime (14) and stime (15) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of a process in KiB; -1 if unreadable. */
static long proc_rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- failure and progress ----------------------------------------------- */

static void schedule_finish(bench *b)
{
	if (!b->finishing && b->phase != PH_CLOSE) {
		b->finishing = true;
		event_active(b->ev_finish, EV_TIMEOUT, 0);
	}
}

/* Record the first failure; the run ends at the next safe point (ev_finish). */
static void failf(bench *b, int code, const char *fmt, ...)
{
	va_list ap;
	if (!b->exit_code) {
		b->exit_code = code;
		va_start(ap, fmt);
		vsnprintf(b->why, sizeof b->why, fmt, ap);
		va_end(ap);
	}
	schedule_finish(b);
}

static const char *role_name(const conn *c)
{
	return c->role == ROLE_PUB ? "publisher" : c->role == ROLE_SUB ? "subscriber" : "connection";
}

/* A connection failed: stop using it and end the run. Returns -1 for callers to pass on. */
static int conn_fail(conn *c, const char *what)
{
	bench *b = c->b;
	failf(b, 2, "%s %u: %s", role_name(c), (unsigned)c->index, what);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->state = CS_CLOSED;
	return -1;
}

static void progress_clear(bench *b)
{
	if (b->tty && b->progress_shown)
		fputs("\r\033[K", stderr);
	b->progress_shown = false;
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	uint64_t t = now_ns();
	double dt = (double)(t - b->prog_t) / 1e9, el = (double)(t - b->t_begin) / 1e9;
	char line[200];

	if (b->phase == PH_CONNECT)
		snprintf(line, sizeof line, "[%5.1fs] connecting: %u/%u ready", el, b->ready, b->nconns);
	else if (b->phase == PH_HOLD)
		snprintf(line, sizeof line, "[%5.1fs] holding %u connections", el, b->ready);
	else
		snprintf(line, sizeof line, "[%5.1fs] sent %" PRIu64 " (%.0f/s)  delivered %" PRIu64 " (%.0f msgs/s)%s", el,
		         b->sent, (double)(b->sent - b->prog_sent) / dt, b->received,
		         (double)(b->received - b->prog_rx) / dt, b->phase == PH_DRAIN ? "  draining" : "");
	fprintf(stderr, b->tty ? "\r%s\033[K" : "%s\n", line);
	b->progress_shown = true;
	b->prog_t = t;
	b->prog_sent = b->sent;
	b->prog_rx = b->received;
}

/* ---- publishing ---------------------------------------------------------- */

static bool pid_busy(const conn *c, uint16_t id)
{
	return c->pids[id >> 6] & (1ull << (id & 63));
}

static uint16_t pid_take(conn *c)
{
	/* --inflight < 65535 guarantees a free id */
	do {
		if (++c->next_pid == 0)
			c->next_pid = 1;
	} while (pid_busy(c, c->next_pid));
	c->pids[c->next_pid >> 6] |= 1ull << (c->next_pid & 63);
	return c->next_pid;
}

static void pid_release(conn *c, uint16_t id)
{
	c->pids[id >> 6] &= ~(1ull << (id & 63));
}

static void stop_publishing(bench *b);

/*
 * Top the publisher's output buffer up to out_target with as many PUBLISH
 * packets as its window, quota and pacing allow, encoded in one batch into
 * space reserved in the evbuffer. All of a batch carries one timestamp: they
 * leave in the same write anyway.
 */
static void pub_fill(bench *b, conn *c)
{
	if (c->state != CS_READY || b->phase != PH_RUN)
		return;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t have = evbuffer_get_length(out);
	if (have >= b->out_target)
		return;
	uint64_t n = (b->out_target - have) / c->msg_len + 1;
	if (b->o.qos && n > b->o.inflight - c->inflight)
		n = b->o.inflight - c->inflight;
	uint64_t limit = c->quota < c->allowed ? c->quota : c->allowed;
	if (n > limit - c->sent)
		n = limit - c->sent;
	if (c->lead) {
		/* copies sent but not yet seen by its subscribers, against its share of the window */
		uint64_t ahead = c->sent * c->nsubs_of - c->seen_sum;
		uint64_t room = (uint64_t)c->lead * c->nsubs_of;
		room = ahead < room ? (room - ahead) / c->nsubs_of : 0;
		if (n >= room) {
			n = room;
			c->blocked = true; /* on_publish wakes it when its subscribers catch up */
		}
	}
	if (!n)
		return;

	struct evbuffer_iovec v;
	if (evbuffer_reserve_space(out, (ev_ssize_t)(n * c->msg_len), &v, 1) != 1) {
		conn_fail(c, "out of memory reserving output");
		return;
	}
	uint8_t *p = v.iov_base;
	uint64_t ts = now_ns();
	roost_publish pub = {
		.qos = (uint8_t)b->o.qos,
		.topic = { (const uint8_t *)c->topic, c->topic_len },
		.payload = { b->payload, b->o.payload },
	};
	for (uint64_t i = 0; i < n; i++) {
		if (pub.qos)
			pub.packet_id = pid_take(c);
		size_t h = roost_encode_publish_header(p, c->msg_len, VERSION, &pub);
		assert(h + b->o.payload == c->msg_len);
		c->sent++;
		put_le32(p + h, c->index);
		put_le32(p + h + 4, (uint32_t)c->sent);
		put_le64(p + h + 8, ts);
		if (b->o.payload > PAYLOAD_HEADER)
			memset(p + h + PAYLOAD_HEADER, 0, b->o.payload - PAYLOAD_HEADER);
		p += c->msg_len;
	}
	v.iov_len = (size_t)(n * c->msg_len);
	evbuffer_commit_space(out, &v, 1);
	b->sent += n;
	if (b->o.qos) {
		c->inflight += (uint32_t)n;
		b->inflight += n;
	}
	if (c->sent == c->quota && ++b->pubs_done == b->npubs)
		stop_publishing(b);
}

/* Pacing (--rate): give each publisher its due share of messages so far. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	double el = (double)(now_ns() - b->t_start) / 1e9;
	double per_pub = b->o.rate / b->npubs;
	uint64_t allowed = (uint64_t)(per_pub * el) + 1;
	for (unsigned i = 0; i < b->npubs && b->phase == PH_RUN; i++) {
		conn *c = &b->conns[i];
		c->allowed = allowed;
		pub_fill(b, c);
	}
}

static bool drained(const bench *b)
{
	return b->unique >= b->expected && b->inflight == 0;
}

/* Every subscriber expects everything its publishers sent. */
static void compute_expected(bench *b)
{
	b->expected = 0;
	for (unsigned s = b->npubs; s < b->npubs + b->nsubs; s++) {
		const conn *c = &b->conns[s];
		for (uint32_t p = 0; p < c->pub_count; p++)
			b->expected += b->conns[c->pub_first + p].sent;
	}
}

static void stop_publishing(bench *b)
{
	if (b->phase != PH_RUN)
		return;
	b->phase = PH_DRAIN;
	b->t_stop = now_ns();
	event_del(b->ev_tick);
	event_del(b->ev_stop);
	compute_expected(b);
	b->drain_rx = b->received;
	b->drain_t = b->t_stop;
	struct timeval tv = tv_of(0.02);
	event_add(b->ev_drain, &tv);
	if (drained(b))
		schedule_finish(b);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	if (b->phase == PH_HOLD)
		schedule_finish(b);
	else
		stop_publishing(b);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	uint64_t t = now_ns();
	if (drained(b)) {
		schedule_finish(b);
		return;
	}
	if (b->received != b->drain_rx) {
		b->drain_rx = b->received;
		b->drain_t = t;
	}
	if ((double)(t - b->drain_t) / 1e9 >= b->o.drain_idle ||
	    (double)(t - b->t_stop) / 1e9 >= b->o.drain_timeout) {
		schedule_finish(b);
		return;
	}
	struct timeval tv = tv_of(0.02);
	event_add(b->ev_drain, &tv);
}

static void start_run(bench *b)
{
	b->phase = PH_RUN;
	b->t_start = b->prog_t = now_ns();
	b->prog_sent = b->prog_rx = 0;
	b->broker_cpu0 = proc_cpu(b->o.broker_pid);
	b->gen_cpu0 = self_cpu();
	if (!b->o.count) {
		struct timeval tv = tv_of(b->o.duration);
		event_add(b->ev_stop, &tv);
	}
	if (b->o.rate > 0) {
		/* one tick per message up to 10k msgs/s, then batches every 100 µs */
		double period = 1.0 / b->o.rate;
		if (period < 100e-6)
			period = 100e-6;
		if (period > 0.01)
			period = 0.01;
		struct timeval tv = tv_of(period);
		event_add(b->ev_tick, &tv);
		on_tick(-1, 0, b);
	} else {
		for (unsigned i = 0; i < b->npubs && b->phase == PH_RUN; i++)
			pub_fill(b, &b->conns[i]);
	}
}

/* ---- receiving ----------------------------------------------------------- */

static void flush_acks(bench *b, conn *c)
{
	if (b->ack_len && c->state != CS_CLOSED)
		evbuffer_add(bufferevent_get_output(c->bev), b->ack_buf, b->ack_len);
	b->ack_len = 0;
}

static void queue_ack(bench *b, conn *c, uint8_t type, uint16_t id)
{
	roost_ack a = { .packet_id = id };
	if (sizeof b->ack_buf - b->ack_len < 16)
		flush_acks(b, c);
	b->ack_len += roost_encode_ack(b->ack_buf + b->ack_len, sizeof b->ack_buf - b->ack_len, VERSION, type, &a);
}

static int on_publish(bench *b, conn *c, const uint8_t *pkt, size_t len)
{
	roost_publish p;
	roost_codec_error e;
	char why[160];

	if (roost_decode_publish(pkt, len, VERSION, &p, &e)) {
		snprintf(why, sizeof why, "malformed PUBLISH: %s at byte %zu", e.why ? e.why : "?", e.offset);
		return conn_fail(c, why);
	}
	if (c->role != ROLE_SUB)
		return conn_fail(c, "PUBLISH received by a connection that did not subscribe");
	if (p.qos == 1)
		queue_ack(b, c, ROOST_MQTT_PUBACK, p.packet_id);
	else if (p.qos == 2)
		queue_ack(b, c, ROOST_MQTT_PUBREC, p.packet_id);
	b->received++;
	if (p.payload.len < PAYLOAD_HEADER) {
		b->unexpected++;
		return 0;
	}
	uint32_t idx = get_le32(p.payload.ptr);
	uint32_t wire = get_le32(p.payload.ptr + 4);
	uint64_t ts = get_le64(p.payload.ptr + 8);
	if (idx - c->pub_first >= c->pub_count) {
		b->unexpected++; /* a message this subscriber's filter should not match */
		return 0;
	}
	uint64_t *last = &c->last_seq[idx - c->pub_first];
	uint64_t seq = seq_widen(*last, wire);
	if (seq > *last) {
		conn *pub = &b->conns[idx];
		if (seq != *last + 1) {
			b->gaps++;
			b->gap_msgs += seq - *last - 1;
		}
		pub->seen_sum += seq - *last; /* a gap (QoS 0 drop) counts as seen: the window never jams */
		if (pub->blocked) {
			pub->blocked = false;
			b->wake[b->nwake++] = idx;
		}
		*last = seq;
		b->unique++;
	} else if (seq == *last) {
		b->dups++;
	} else {
		b->order++;
		b->unique++;
	}
	hist_add(&b->lat, b->now > ts ? b->now - ts : 0);
	return 0;
}

static int on_ack(bench *b, conn *c, const uint8_t *pkt, size_t len, uint8_t type)
{
	roost_ack a;
	roost_codec_error e;
	char why[160];

	if (roost_decode_ack(pkt, len, VERSION, &a, &e)) {
		snprintf(why, sizeof why, "malformed %s: %s", roost_mqtt_type_name(type), e.why ? e.why : "?");
		return conn_fail(c, why);
	}
	if (type == ROOST_MQTT_PUBREL) {
		if (c->role != ROLE_SUB || b->o.qos != 2)
			return conn_fail(c, "unexpected PUBREL");
		queue_ack(b, c, ROOST_MQTT_PUBCOMP, a.packet_id);
		return 0;
	}
	bool wanted = c->role == ROLE_PUB &&
	              (b->o.qos == 1 ? type == ROOST_MQTT_PUBACK : b->o.qos == 2 && type != ROOST_MQTT_PUBACK);
	if (!wanted || !pid_busy(c, a.packet_id)) {
		snprintf(why, sizeof why, "unexpected %s for packet id %u", roost_mqtt_type_name(type), a.packet_id);
		return conn_fail(c, why);
	}
	if (type == ROOST_MQTT_PUBREC) {
		queue_ack(b, c, ROOST_MQTT_PUBREL, a.packet_id);
		return 0;
	}
	pid_release(c, a.packet_id);
	c->inflight--;
	b->inflight--;
	return 0;
}

static void conn_ready(bench *b, conn *c);

static int on_connack(bench *b, conn *c, const uint8_t *pkt, size_t len)
{
	roost_connack ca;
	roost_codec_error e;
	char why[96];

	if (c->state != CS_WAIT_CONNACK)
		return conn_fail(c, "unexpected CONNACK");
	if (roost_decode_connack(pkt, len, VERSION, &ca, &e))
		return conn_fail(c, "malformed CONNACK");
	if (ca.code) {
		snprintf(why, sizeof why, "CONNACK refused with return code %u", ca.code);
		return conn_fail(c, why);
	}
	if (c->role != ROLE_SUB) {
		conn_ready(b, c);
		return 0;
	}
	uint8_t buf[TOPIC_MAX + 16];
	roost_sub_entry ent = { .filter = { (const uint8_t *)c->topic, c->topic_len }, .options = (uint8_t)b->o.qos };
	size_t n = roost_encode_subscribe(buf, sizeof buf, VERSION, 1, &ent, 1);
	assert(n && n <= sizeof buf);
	evbuffer_add(bufferevent_get_output(c->bev), buf, n);
	c->state = CS_WAIT_SUBACK;
	return 0;
}

static int on_suback(bench *b, conn *c, const uint8_t *pkt, size_t len)
{
	roost_suback sa;
	roost_codec_error e;
	char why[96];

	if (c->state != CS_WAIT_SUBACK)
		return conn_fail(c, "unexpected SUBACK");
	if (roost_decode_suback(pkt, len, VERSION, &sa, &e) || sa.codes.len != 1)
		return conn_fail(c, "malformed SUBACK");
	if (sa.codes.ptr[0] != b->o.qos) {
		snprintf(why, sizeof why, "SUBACK granted 0x%02x for QoS %d", sa.codes.ptr[0], b->o.qos);
		return conn_fail(c, why);
	}
	conn_ready(b, c);
	return 0;
}

static int handle_packet(bench *b, conn *c, const uint8_t *pkt, size_t len, uint8_t type)
{
	char why[64];

	switch (type) {
	case ROOST_MQTT_PUBLISH:
		return on_publish(b, c, pkt, len);
	case ROOST_MQTT_PUBACK:
	case ROOST_MQTT_PUBREC:
	case ROOST_MQTT_PUBREL:
	case ROOST_MQTT_PUBCOMP:
		return on_ack(b, c, pkt, len, type);
	case ROOST_MQTT_CONNACK:
		return on_connack(b, c, pkt, len);
	case ROOST_MQTT_SUBACK:
		return on_suback(b, c, pkt, len);
	case ROOST_MQTT_PINGRESP:
		return 0;
	default:
		snprintf(why, sizeof why, "unexpected %s from the broker", roost_mqtt_type_name(type));
		return conn_fail(c, why);
	}
}

/*
 * Handle every whole packet in the input. Packets are decoded in place from
 * the first chunk of the evbuffer; only a packet that straddles two chunks is
 * made contiguous with evbuffer_pullup (of just its own bytes).
 */
static int consume_input(bench *b, conn *c, struct evbuffer *in)
{
	for (;;) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return 0;
		const uint8_t *p = v.iov_base;
		size_t len = v.iov_len, off = 0;
		roost_frame f = { 0 };
		roost_codec_error e;
		roost_err rc = ROOST_OK;
		while (off < len) {
			rc = roost_frame_peek(p + off, len - off, b->max_packet, VERSION, &f, &e);
			if (rc != ROOST_OK)
				break;
			if (handle_packet(b, c, p + off, f.total_len, f.type) < 0)
				return -1;
			off += f.total_len;
		}
		if (rc != ROOST_OK && rc != ROOST_ERR_NEED_MORE) {
			char why[160];
			snprintf(why, sizeof why, "bad packet from the broker: %s (%s)", roost_err_str(rc),
			         e.why ? e.why : "?");
			return conn_fail(c, why);
		}
		if (off)
			evbuffer_drain(in, off);
		if (off == len)
			continue;
		/* the chunk ends inside a packet */
		size_t rest = len - off, avail = evbuffer_get_length(in);
		size_t need = f.total_len ? f.total_len : ROOST_MQTT_MAX_FIXED_HEADER;
		if (avail <= rest)
			return 0; /* nothing more buffered: wait for the network */
		if (need > avail) {
			if (f.total_len)
				return 0;
			need = avail;
		}
		if (!evbuffer_pullup(in, (ev_ssize_t)need))
			return conn_fail(c, "out of memory pulling up input");
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	conn *c = arg;
	bench *b = c->b;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == CS_CLOSING || c->state == CS_CLOSED) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	b->now = now_ns();
	b->ack_len = 0;
	uint64_t rx = b->received;
	if (consume_input(b, c, in) < 0)
		return;
	flush_acks(b, c);
	if (b->received != rx)
		b->t_last_rx = b->now;
	if (c->role == ROLE_PUB && b->o.qos)
		pub_fill(b, c);
	for (unsigned i = 0; i < b->nwake; i++)
		pub_fill(b, &b->conns[b->wake[i]]);
	b->nwake = 0;
	if (b->phase == PH_DRAIN && drained(b))
		schedule_finish(b);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	conn *c = arg;
	if (c->role == ROLE_PUB)
		pub_fill(c->b, c);
}

/* ---- connections ---------------------------------------------------------- */

static void open_more(bench *b);

static void all_ready(bench *b)
{
	event_del(b->ev_timeout);
	b->t_connected = now_ns();
	if (b->o.keepalive) {
		struct timeval tv = tv_of(b->o.keepalive / 2.0);
		event_add(b->ev_ping, &tv);
	}
	if (b->o.scenario == SC_CONNS) {
		b->phase = PH_HOLD;
		b->t_start = b->t_connected;
		b->broker_cpu0 = proc_cpu(b->o.broker_pid);
		b->gen_cpu0 = self_cpu();
		struct timeval tv = tv_of(b->o.hold);
		event_add(b->ev_stop, &tv);
		return;
	}
	start_run(b);
}

static void conn_ready(bench *b, conn *c)
{
	c->state = CS_READY;
	b->ready++;
	b->connecting--;
	if (b->ready == b->nconns)
		all_ready(b);
	else
		open_more(b);
}

static void send_connect(conn *c)
{
	char id[48];
	uint8_t buf[96];
	snprintf(id, sizeof id, "rb%ld-%c%u", (long)getpid(), c->role == ROLE_PUB ? 'p' : c->role == ROLE_SUB ? 's' : 'c',
	         (unsigned)c->index);
	roost_connect cc = {
		/* --persistent: subscribers keep a session (clean session 0), so a
		 * broker with a durable store writes every QoS 1/2 delivery. */
		.clean_start = !(c->b->o.persistent && c->role == ROLE_SUB),
		.keepalive = (uint16_t)c->b->o.keepalive,
		.client_id = { (const uint8_t *)id, strlen(id) },
	};
	size_t n = roost_encode_connect(buf, sizeof buf, VERSION, &cc);
	assert(n && n <= sizeof buf);
	evbuffer_add(bufferevent_get_output(c->bev), buf, n);
	c->state = CS_WAIT_CONNACK;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	conn *c = arg;
	bench *b = c->b;
	char why[160];

	if (what & BEV_EVENT_CONNECTED) {
		/* --ws: the upgrade goes first, raw; CONNECT follows in a frame
		 * at once (the broker reads frames right after the request). */
		if (c->b->o.ws)
			bufferevent_write(bufferevent_get_underlying(bev), WS_UPGRADE, sizeof WS_UPGRADE - 1);
		send_connect(c);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (c->state == CS_CLOSING) {
		c->state = CS_CLOSED;
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		if (--b->closing == 0)
			event_base_loopbreak(b->base);
		return;
	}
	if (c->state == CS_CLOSED)
		return;
	int err = EVUTIL_SOCKET_ERROR();
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "connection closed by the broker (%s)",
		         c->state == CS_READY ? "during the run" : "before it was ready");
	else
		snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(err));
	conn_fail(c, why);
}

/* ---- --ws: client side of RFC 6455 ------------------------------------- */


/* The 101 response, then frames: binary payloads into dst; a close frame or
 * anything else the broker should not send is an error. */
static enum bufferevent_filter_result ws_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
                                            enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit;
	(void)mode;
	conn *c = arg;
	if (!c->ws_up) {
		struct evbuffer_ptr end = evbuffer_search(src, "\r\n\r\n", 4, NULL);
		if (end.pos < 0)
			return evbuffer_get_length(src) > 4096 ? BEV_ERROR : BEV_NEED_MORE;
		const char *head = (const char *)evbuffer_pullup(src, end.pos + 4);
		if (!head || strncmp(head, "HTTP/1.1 101 ", 13) != 0)
			return BEV_ERROR;
		evbuffer_drain(src, (size_t)end.pos + 4);
		c->ws_up = true;
	}
	bool any = false;
	for (;;) {
		uint8_t h[10];
		size_t avail = evbuffer_get_length(src);
		size_t hn = avail < sizeof h ? avail : sizeof h;
		if (hn < 2)
			break;
		evbuffer_copyout(src, h, hn);
		uint64_t len = h[1] & 0x7F;
		size_t off = len == 126 ? 4 : len == 127 ? 10 : 2;
		if (hn < off)
			break;
		if (off == 4)
			len = (uint64_t)h[2] << 8 | h[3];
		else if (off == 10)
			for (unsigned i = 2; i < 10; i++)
				len = (i == 2 ? 0 : len << 8) | h[i];
		if (avail < off + len)
			break; /* whole frames only: the broker's are at most 64 KiB */
		unsigned op = h[0] & 0x0F;
		if ((h[1] & 0x80) || (op != 0 && op != 2 && op != 10))
			return BEV_ERROR;
		evbuffer_drain(src, off);
		if (op == 10)
			evbuffer_drain(src, (size_t)len);
		else
			evbuffer_remove_buffer(src, dst, (size_t)len);
		any = true;
	}
	return any ? BEV_OK : BEV_NEED_MORE;
}

/* One masked binary frame of up to WS_FRAME_MAX bytes of src. */
static enum bufferevent_filter_result ws_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
                                             enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit;
	(void)mode;
	(void)arg;
	size_t n = evbuffer_get_length(src);
	if (n == 0)
		return BEV_NEED_MORE;
	if (n > WS_FRAME_MAX)
		n = WS_FRAME_MAX;
	uint8_t h[8] = { 0x82 };
	size_t hn;
	if (n < 126) {
		h[1] = 0x80 | (uint8_t)n;
		hn = 2;
	} else {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hn = 4;
	}
	/* and the masking key, zero: h[hn..hn+3] */
	evbuffer_add(dst, h, hn + 4);
	evbuffer_remove_buffer(src, dst, n);
	return BEV_OK;
}

static int conn_open(bench *b, conn *c)
{
	char why[160];
	evutil_socket_t fd = socket(b->addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		snprintf(why, sizeof why, "socket: %s", strerror(errno));
		return conn_fail(c, why);
	}
	/* small packets must leave at once, not wait for Nagle */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	c->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		evutil_closesocket(fd);
		return conn_fail(c, "bufferevent_socket_new failed");
	}
	struct bufferevent *sock = c->bev;
	if (b->o.ws) {
		bufferevent_set_max_single_read(sock, READ_MAX);
		bufferevent_set_max_single_write(sock, WRITE_MAX);
		c->bev = bufferevent_filter_new(sock, ws_in, ws_out, BEV_OPT_CLOSE_ON_FREE, NULL, c);
		if (!c->bev) {
			bufferevent_free(sock);
			return conn_fail(c, "bufferevent_filter_new failed");
		}
	}
	bufferevent_setcb(c->bev, on_read, c->role == ROLE_PUB ? on_write : NULL, on_event, c);
	bufferevent_set_max_single_read(c->bev, READ_MAX);
	bufferevent_set_max_single_write(c->bev, WRITE_MAX);
	if (c->role == ROLE_PUB)
		bufferevent_setwatermark(c->bev, EV_WRITE, b->out_target / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = CS_CONNECTING;
	if (bufferevent_socket_connect(sock, (struct sockaddr *)&b->addr, (int)b->addrlen) < 0) {
		snprintf(why, sizeof why, "connect: %s", strerror(errno));
		return conn_fail(c, why);
	}
	return 0;
}

/* Keep at most --batch handshakes (TCP + CONNECT + SUBSCRIBE) in flight. */
static void open_more(bench *b)
{
	while (b->connecting < b->o.batch && b->next_open < b->nconns && !b->exit_code) {
		conn *c = &b->conns[b->next_open++];
		b->connecting++;
		if (conn_open(b, c) < 0)
			return;
	}
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	failf(b, 2, "timeout: %u of %u connections ready after %.0f s", b->ready, b->nconns, b->o.connect_timeout);
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	uint8_t buf[2];
	size_t n = roost_encode_empty(buf, sizeof buf, ROOST_MQTT_PINGREQ);
	for (unsigned i = 0; i < b->nconns; i++)
		if (b->conns[i].state == CS_READY)
			evbuffer_add(bufferevent_get_output(b->conns[i].bev), buf, n);
	struct timeval tv = tv_of(b->o.keepalive / 2.0);
	event_add(b->ev_ping, &tv);
}

/* Send DISCONNECT everywhere and wait (bounded) for the broker to close, so
 * TIME_WAIT lands on the broker's side and back-to-back runs do not run out
 * of ephemeral ports. */
static void begin_close(bench *b)
{
	uint8_t buf[2];
	size_t n = roost_encode_empty(buf, sizeof buf, ROOST_MQTT_DISCONNECT);
	for (unsigned i = 0; i < b->nconns; i++) {
		conn *c = &b->conns[i];
		if (c->state == CS_READY || c->state == CS_WAIT_CONNACK || c->state == CS_WAIT_SUBACK) {
			evbuffer_add(bufferevent_get_output(c->bev), buf, n);
			c->state = CS_CLOSING;
			b->closing++;
		}
	}
	if (!b->closing) {
		event_base_loopbreak(b->base);
		return;
	}
	struct timeval tv = tv_of(3.0);
	event_add(b->ev_close, &tv);
}

static void on_close_timeout(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	event_base_loopbreak(b->base);
}

/* ---- report --------------------------------------------------------------- */

static void json_num(const char *key, double v, bool known, bool last)
{
	if (known)
		printf("\"%s\":%.15g%s", key, v, last ? "" : ",");
	else
		printf("\"%s\":null%s", key, last ? "" : ",");
}

static void json_str(const char *key, const char *s)
{
	printf("\"%s\":\"", key);
	for (; *s; s++)
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s >= 0x20)
			putchar(*s);
	printf("\",");
}

/* Verification after a run; sets exit code 3 and a reason. */
static void verify(bench *b, uint64_t loss)
{
	if (b->exit_code)
		return;
	if (b->order)
		snprintf(b->why, sizeof b->why, "%" PRIu64 " order violations", b->order);
	else if (b->unexpected)
		snprintf(b->why, sizeof b->why, "%" PRIu64 " messages on a subscriber that should not get them",
		         b->unexpected);
	else if (b->o.qos >= 1 && loss)
		snprintf(b->why, sizeof b->why, "%" PRIu64 " messages lost at QoS %d", loss, b->o.qos);
	else if (b->o.qos == 2 && b->dups)
		snprintf(b->why, sizeof b->why, "%" PRIu64 " duplicates at QoS 2", b->dups);
	else
		return;
	b->exit_code = 3;
}

static void report_conns(bench *b)
{
	bool known = b->o.broker_pid > 0 && b->rss0 >= 0 && b->rss1 >= 0;
	double connect_s = (double)(b->t_connected - b->t_begin) / 1e9;
	double hold_s = (double)(b->t_end - b->t_start) / 1e9;
	double per_conn = known ? (double)(b->rss1 - b->rss0) * 1024.0 / b->nconns : 0;
	double bcpu = b->broker_cpu0 >= 0 && b->broker_cpu1 >= 0 ? b->broker_cpu1 - b->broker_cpu0 : -1;
	double gcpu = b->gen_cpu1 - b->gen_cpu0;

	if (b->o.json) {
		printf("{");
		json_str("scenario", "conns");
		json_num("connections", b->nconns, true, false);
		json_num("connect_s", connect_s, true, false);
		json_num("conns_per_s", b->nconns / connect_s, connect_s > 0, false);
		json_num("hold_s", hold_s, true, false);
		json_num("rss_before_kb", (double)b->rss0, known, false);
		json_num("rss_after_kb", (double)b->rss1, known, false);
		json_num("rss_per_conn_b", per_conn, known, false);
		json_num("broker_cpu_s", bcpu, bcpu >= 0, false);
		json_num("gen_cpu_s", gcpu, true, false);
		printf("\"ok\":true}\n");
		return;
	}
	printf("%-26s %s\n", "scenario", "conns (idle connections)");
	printf("%-26s %u\n", "connections", b->nconns);
	printf("%-26s %.2f s (%.0f conns/s, %u handshakes in flight)\n", "connect time", connect_s,
	       b->nconns / connect_s, b->o.batch);
	printf("%-26s %.2f s\n", "held", hold_s);
	if (known) {
		printf("%-26s %ld KiB\n", "broker RSS before", b->rss0);
		printf("%-26s %ld KiB\n", "broker RSS after", b->rss1);
		printf("%-26s %.0f B\n", "broker RSS per connection", per_conn);
	} else {
		printf("%-26s n/a (no --broker-pid, or the broker is gone)\n", "broker RSS");
	}
	if (bcpu >= 0)
		printf("%-26s %.2f s\n", "broker CPU while holding", bcpu);
	printf("%-26s %.2f s\n", "generator CPU (hold)", gcpu);
}

static void report_run(bench *b)
{
	uint64_t loss = b->expected > b->unique ? b->expected - b->unique : 0;
	double pub_s = (double)(b->t_stop - b->t_start) / 1e9;
	uint64_t t_last = b->t_last_rx > b->t_start ? b->t_last_rx : b->t_stop;
	double span = (double)(t_last - b->t_start) / 1e9;
	double rate = span > 0 ? (double)b->received / span : 0;
	double bcpu = b->broker_cpu0 >= 0 && b->broker_cpu1 >= 0 ? b->broker_cpu1 - b->broker_cpu0 : -1;
	double gcpu = b->gen_cpu1 - b->gen_cpu0;
	double per_cpu = bcpu > 0 ? (double)b->received / bcpu : 0;
	/* Paced runs are bound by the generator only if it fell short of the rate. */
	bool gen_bound = b->o.rate > 0 ? pub_s > 0 && (double)b->sent / pub_s < 0.95 * b->o.rate
	                               : bcpu >= 0 && gcpu > bcpu;
	double p50 = (double)hist_quantile(&b->lat, 0.50) / 1e3, p99 = (double)hist_quantile(&b->lat, 0.99) / 1e3;
	double p999 = (double)hist_quantile(&b->lat, 0.999) / 1e3, pmax = (double)b->lat.max / 1e3;
	bool lat = b->lat.n > 0;

	verify(b, loss);
	if (b->o.json) {
		printf("{");
		json_str("scenario", scenario_names[b->o.scenario]);
		json_num("qos", b->o.qos, true, false);
		json_num("payload", (double)b->o.payload, true, false);
		json_num("publishers", b->npubs, true, false);
		json_num("subscribers", b->nsubs, true, false);
		printf("\"wildcard\":%s,", b->o.wildcard ? "true" : "false");
		json_num("rate", b->o.rate, b->o.rate > 0, false);
		json_num("window", b->o.window, b->o.window > 0, false);
		json_num("window_per_stream", b->npubs ? b->conns[0].lead : 0, b->o.window > 0, false);
		json_num("publish_s", pub_s, true, false);
		json_num("span_s", span, true, false);
		json_num("sent", (double)b->sent, true, false);
		json_num("expected", (double)b->expected, true, false);
		json_num("delivered", (double)b->received, true, false);
		json_num("msgs_per_s", rate, true, false);
		json_num("loss", (double)loss, true, false);
		json_num("loss_pct", b->expected ? 100.0 * (double)loss / (double)b->expected : 0, true, false);
		json_num("duplicates", (double)b->dups, true, false);
		json_num("unacked", (double)b->inflight, true, false);
		json_num("gaps", (double)b->gaps, true, false);
		json_num("gap_msgs", (double)b->gap_msgs, true, false);
		json_num("order_violations", (double)b->order, true, false);
		json_num("unexpected", (double)b->unexpected, true, false);
		json_num("p50_us", p50, lat, false);
		json_num("p99_us", p99, lat, false);
		json_num("p999_us", p999, lat, false);
		json_num("max_us", pmax, lat, false);
		json_num("broker_cpu_s", bcpu, bcpu >= 0, false);
		json_num("delivered_per_broker_cpu_s", per_cpu, bcpu > 0, false);
		json_num("gen_cpu_s", gcpu, true, false);
		printf("\"generator_bound\":%s,", gen_bound ? "true" : "false");
		if (b->exit_code)
			json_str("error", b->why);
		printf("\"ok\":%s}\n", b->exit_code ? "false" : "true");
		return;
	}
	char topo[64];
	if (b->o.scenario == SC_PAIRS)
		snprintf(topo, sizeof topo, "%u pairs, %s", b->nsubs, b->o.wildcard ? "wildcard filters" : "exact topics");
	else
		snprintf(topo, sizeof topo, "%u -> %u on one topic", b->npubs, b->nsubs);
	printf("%-26s %s (%s)\n", "scenario", scenario_names[b->o.scenario], topo);
	printf("%-26s %d\n", "qos", b->o.qos);
	printf("%-26s %zu B\n", "payload", b->o.payload);
	printf("%-26s %u\n", "publishers", b->npubs);
	printf("%-26s %u\n", "subscribers", b->nsubs);
	if (b->o.rate > 0)
		printf("%-26s %.0f msgs/s\n", "target rate", b->o.rate);
	if (b->o.window)
		printf("%-26s %u copies / %" PRIu64 " bytes in flight (%u per stream)\n", "window", b->o.window,
		       b->o.window_bytes, b->npubs ? b->conns[0].lead : 0);
	else
		printf("%-26s off (pure flood)\n", "window");
	printf("%-26s %.2f s publishing, %.2f s to the last delivery\n", "duration", pub_s, span);
	printf("%-26s %" PRIu64 " (%.0f msgs/s)\n", "sent", b->sent, pub_s > 0 ? (double)b->sent / pub_s : 0);
	printf("%-26s %" PRIu64 " (expected %" PRIu64 ")\n", "delivered", b->received, b->expected);
	printf("%-26s %.0f\n", "msgs/s delivered", rate);
	printf("%-26s %" PRIu64 " (%.2f %%)%s\n", "loss", loss,
	       b->expected ? 100.0 * (double)loss / (double)b->expected : 0.0,
	       b->o.qos == 0 && loss ? "  [QoS 0: reported, not a failure]" : "");
	if (loss)
		printf("%-26s %" PRIu64 " messages in %" PRIu64 " gaps, %" PRIu64 " at the end\n", "  of which", b->gap_msgs,
		       b->gaps, loss > b->gap_msgs ? loss - b->gap_msgs : 0);
	printf("%-26s %" PRIu64 "\n", "duplicates", b->dups);
	if (b->inflight)
		printf("%-26s %" PRIu64 " publishes never acknowledged by the broker\n", "unacked", b->inflight);
	printf("%-26s %" PRIu64 "\n", "order violations", b->order);
	if (b->unexpected)
		printf("%-26s %" PRIu64 "\n", "misrouted messages", b->unexpected);
	if (lat)
		printf("%-26s p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", "latency (us)", p50, p99, p999, pmax);
	else
		printf("%-26s n/a\n", "latency (us)");
	if (bcpu >= 0) {
		printf("%-26s %.2f s (pid %ld)\n", "broker CPU", bcpu, b->o.broker_pid);
		printf("%-26s %.0f\n", "delivered/broker CPU-s", per_cpu);
	} else {
		printf("%-26s n/a (no --broker-pid, or the broker is gone)\n", "broker CPU");
	}
	printf("%-26s %.2f s\n", "generator CPU", gcpu);
	if (gen_bound)
		printf("%-26s %s\n", "note",
		       b->o.rate > 0 ? "generator-bound (it fell short of the target rate)"
		                     : "generator-bound (the generator used more CPU than the broker)");
}

/* The run is over (or failed): measure, report, then close connections. */
static void on_finish(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	int was = b->phase;

	b->phase = PH_CLOSE;
	event_del(b->ev_progress);
	event_del(b->ev_stop);
	event_del(b->ev_tick);
	event_del(b->ev_drain);
	event_del(b->ev_ping);
	event_del(b->ev_timeout);
	b->t_end = now_ns();
	if (was == PH_RUN)
		b->t_stop = b->t_end; /* interrupted or failed while publishing */
	b->broker_cpu1 = proc_cpu(b->o.broker_pid);
	b->gen_cpu1 = self_cpu();
	b->rss1 = proc_rss_kb(b->o.broker_pid);
	progress_clear(b);

	if (was == PH_CONNECT) {
		if (b->o.json) {
			printf("{");
			json_str("scenario", scenario_names[b->o.scenario]);
			json_str("error", b->why);
			printf("\"ok\":false}\n");
		}
	} else if (b->o.scenario == SC_CONNS) {
		report_conns(b);
	} else {
		if (was == PH_RUN)
			compute_expected(b); /* interrupted: expect what was sent so far */
		report_run(b);
	}
	fflush(stdout);
	if (b->exit_code)
		fprintf(stderr, "roost-bench: %s\n", b->why);
	begin_close(b);
}

/* Ctrl-C: stop publishing and drain as at the end of -d; again: report now; again: quit. */
static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	if (b->phase == PH_RUN)
		stop_publishing(b);
	else if (b->phase == PH_CLOSE)
		event_base_loopbreak(b->base);
	else
		schedule_finish(b);
}

/* ---- setup ---------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: roost-bench SCENARIO [options]\n"
	        "scenarios:\n"
	        "  fanin    P publishers -> N subscribers (default 8 -> 1) on one topic\n"
	        "  fanout   P publishers -> N subscribers (default 1 -> 100) on one topic\n"
	        "  pairs    N publisher/subscriber pairs (default 500), each on its own topic\n"
	        "  latency  1 -> 1 at a fixed rate (default 10000 msgs/s): end-to-end latency\n"
	        "  conns    C idle connections (default 10000), held, with the broker's RSS\n"
	        "options:\n"
	        "  -h, --host HOST         broker address, loopback only (default 127.0.0.1)\n"
	        "  -p, --port PORT         broker port (default 1883)\n"
	        "  -q, --qos 0|1|2         QoS of publishes and subscriptions (default 0)\n"
	        "  -s, --size BYTES        payload size, >= 16 (default 16)\n"
	        "  -d, --duration SECONDS  publish for this long (default 10)\n"
	        "  -n, --count N           publish N messages in total instead\n"
	        "  -P, --publishers N      publishers (fanin, fanout, latency)\n"
	        "  -N, --subscribers N     subscribers, or pairs for 'pairs'\n"
	        "      --wildcard          pairs: subscribe to home/<i>/+/sensor/#, publish to home/<i>/x/sensor/t\n"
	        "      --rate R            publish R msgs/s in total (default: as fast as possible)\n"
	        "      --inflight W        QoS 1/2 window per publisher (default 100)\n"
	        "      --window W          at most W message copies published and not yet delivered,\n"
	        "                          shared by all publishers (default 20000; 0 = pure flood)\n"
	        "      --window-bytes B    and at most B bytes of them (default 8 MiB; 0 = no byte bound)\n"
	        "      --broker-pid PID    measure the broker's CPU (and RSS for conns) from /proc\n"
	        "  -c, --conns C           conns: connections to open (default 10000)\n"
	        "      --batch B           handshakes in flight while connecting (default 500)\n"
	        "      --hold SECONDS      conns: hold the connections this long (default 5)\n"
	        "      --keepalive S       keepalive sent in CONNECT, PINGREQ every S/2 (default 60)\n"
	        "      --connect-timeout S connection phase limit (default 30)\n"
	        "      --drain-idle S      after publishing, stop waiting after S without a delivery\n"
	        "                          (default 0.5 at QoS 0, 5 at QoS 1/2)\n"
	        "      --drain-timeout S   after publishing, stop waiting after S in any case (default 30)\n"
	        "      --json              print one JSON line instead of the table\n"
	        "      --persistent        subscribers connect with clean session 0\n"
	        "      --ws                MQTT over WebSockets (a listener with protocol: websockets)\n"
	        "      --help              this help\n"
	        "exit: 0 ok, 1 usage/setup, 2 connection failure, 3 order violation / misrouting /\n"
	        "      loss at QoS >= 1 / duplicate at QoS 2\n");
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

static bool parse_uint(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
	char *end;
	if (*s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

enum {
	OPT_RATE = 256, OPT_BROKER_PID, OPT_INFLIGHT, OPT_WINDOW, OPT_WINDOW_BYTES, OPT_JSON, OPT_PERSISTENT, OPT_WILDCARD, OPT_BATCH, OPT_HOLD,
	OPT_KEEPALIVE, OPT_CONNECT_TIMEOUT, OPT_DRAIN_IDLE, OPT_DRAIN_TIMEOUT, OPT_HELP, OPT_WS,
};

/* Returns 0; 1 after printing what is wrong; -1 after printing the help. */
static int parse_options(int argc, char **argv, options *o)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "qos", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "publishers", required_argument, NULL, 'P' },
		{ "subscribers", required_argument, NULL, 'N' },
		{ "conns", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "broker-pid", required_argument, NULL, OPT_BROKER_PID },
		{ "inflight", required_argument, NULL, OPT_INFLIGHT },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "window-bytes", required_argument, NULL, OPT_WINDOW_BYTES },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "persistent", no_argument, NULL, OPT_PERSISTENT },
		{ "wildcard", no_argument, NULL, OPT_WILDCARD },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
		{ "drain-idle", required_argument, NULL, OPT_DRAIN_IDLE },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
		{ "ws", no_argument, NULL, OPT_WS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long u;
	int ch;
	bool rate_set = false;

	*o = (options){
		.scenario = -1, .host = "127.0.0.1", .port = 1883, .payload = PAYLOAD_HEADER, .duration = 10,
		.inflight = 100, .window = 20000, .window_bytes = 8u << 20, .conns = 10000, .batch = 500, .hold = 5, .keepalive = 60,
		.connect_timeout = 30, .drain_idle = -1, .drain_timeout = 30,
	};
	while ((ch = getopt_long(argc, argv, "h:p:q:s:d:n:P:N:c:", longopts, NULL)) != -1) {
		bool ok = true;
		switch (ch) {
		case 'h': o->host = optarg; break;
		case 'p': ok = parse_uint(optarg, 1, 65535, &u); o->port = (unsigned)u; break;
		case 'q': ok = parse_uint(optarg, 0, 2, &u); o->qos = (int)u; break;
		case 's': ok = parse_uint(optarg, PAYLOAD_HEADER, PAYLOAD_MAX, &u); o->payload = (size_t)u; break;
		case 'd': ok = parse_double(optarg, 0.001, 86400, &o->duration); break;
		case 'n': ok = parse_uint(optarg, 1, UINT64_MAX / 2, &u); o->count = u; break;
		case 'P': ok = parse_uint(optarg, 1, 100000, &u); o->pubs = (unsigned)u; break;
		case 'N': ok = parse_uint(optarg, 1, 100000, &u); o->subs = (unsigned)u; break;
		case 'c': ok = parse_uint(optarg, 1, 1000000, &u); o->conns = (unsigned)u; break;
		case OPT_RATE: ok = parse_double(optarg, 0.001, 1e9, &o->rate); rate_set = true; break;
		case OPT_BROKER_PID: ok = parse_uint(optarg, 1, 1ull << 31, &u); o->broker_pid = (long)u; break;
		case OPT_INFLIGHT: ok = parse_uint(optarg, 1, 65000, &u); o->inflight = (unsigned)u; break;
		case OPT_WINDOW: ok = parse_uint(optarg, 0, 1u << 30, &u); o->window = (unsigned)u; break;
		case OPT_WINDOW_BYTES: ok = parse_uint(optarg, 0, 1ull << 40, &u); o->window_bytes = u; break;
		case OPT_JSON: o->json = true; break;
		case OPT_PERSISTENT: o->persistent = true; break;
		case OPT_WILDCARD: o->wildcard = true; break;
		case OPT_BATCH: ok = parse_uint(optarg, 1, 100000, &u); o->batch = (unsigned)u; break;
		case OPT_HOLD: ok = parse_double(optarg, 0, 86400, &o->hold); break;
		case OPT_KEEPALIVE: ok = parse_uint(optarg, 0, 65535, &u); o->keepalive = (unsigned)u; break;
		case OPT_CONNECT_TIMEOUT: ok = parse_double(optarg, 0.1, 3600, &o->connect_timeout); break;
		case OPT_DRAIN_IDLE: ok = parse_double(optarg, 0.01, 3600, &o->drain_idle); break;
		case OPT_DRAIN_TIMEOUT: ok = parse_double(optarg, 0.01, 3600, &o->drain_timeout); break;
		case OPT_WS: o->ws = true; break;
		case OPT_HELP: usage(stdout); return -1;
		default: usage(stderr); return 1;
		}
		if (!ok) {
			fprintf(stderr, "roost-bench: bad value for option: %s\n", optarg);
			return 1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 1;
	}
	for (int i = 0; i < SC_COUNT; i++)
		if (!strcmp(argv[optind], scenario_names[i]))
			o->scenario = i;
	if (o->scenario < 0) {
		fprintf(stderr, "roost-bench: unknown scenario '%s'\n", argv[optind]);
		return 1;
	}
	if (o->scenario == SC_LATENCY && !rate_set)
		o->rate = 10000;
	if (o->drain_idle < 0)
		o->drain_idle = o->qos ? 5.0 : 0.5;
	if (o->wildcard && o->scenario != SC_PAIRS) {
		fprintf(stderr, "roost-bench: --wildcard only applies to 'pairs'\n");
		return 1;
	}
	return 0;
}

/* Resolve host and refuse anything that is not a loopback address. */
static int resolve_loopback(bench *b)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = 0 }, *res, *ai;
	char port[8];
	snprintf(port, sizeof port, "%u", b->o.port);
	int rc = getaddrinfo(b->o.host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "roost-bench: %s: %s\n", b->o.host, gai_strerror(rc));
		return 1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		bool loop = false;
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *sin = (const void *)ai->ai_addr;
			loop = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
			const uint8_t *a = sin6->sin6_addr.s6_addr;
			static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
			loop = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) || (!memcmp(a, mapped, 12) && a[12] == 127);
		}
		if (!loop) {
			fprintf(stderr, "roost-bench: refusing %s: not a loopback address (this tool floods its target)\n",
			        b->o.host);
			freeaddrinfo(res);
			return 1;
		}
	}
	memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
	b->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Raise RLIMIT_NOFILE to the hard limit and check the connections fit. */
static int fit_descriptors(unsigned need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)need + FD_RESERVE > rl.rlim_cur) {
		fprintf(stderr, "roost-bench: %u connections need %u descriptors but the limit is %llu\n", need,
		        need + FD_RESERVE, (unsigned long long)rl.rlim_cur);
		return 1;
	}
	return 0;
}

static void set_topic(conn *c, const char *fmt, unsigned i)
{
	int n = snprintf(c->topic, sizeof c->topic, fmt, i);
	assert(n > 0 && (size_t)n < sizeof c->topic);
	c->topic_len = (uint16_t)n;
}

/* Lay out publishers, subscribers and idle connections for the scenario. */
static int build_conns(bench *b)
{
	const options *o = &b->o;
	unsigned idle = 0;

	switch (o->scenario) {
	case SC_FANIN:
		b->npubs = o->pubs ? o->pubs : 8;
		b->nsubs = o->subs ? o->subs : 1;
		break;
	case SC_FANOUT:
		b->npubs = o->pubs ? o->pubs : 1;
		b->nsubs = o->subs ? o->subs : 100;
		break;
	case SC_LATENCY:
		b->npubs = o->pubs ? o->pubs : 1;
		b->nsubs = o->subs ? o->subs : 1;
		break;
	case SC_PAIRS:
		b->npubs = b->nsubs = o->subs ? o->subs : 500;
		break;
	default:
		idle = o->conns;
		break;
	}
	b->nconns = b->npubs + b->nsubs + idle;
	if (fit_descriptors(b->nconns))
		return 1;
	b->conns = roost_calloc(b->nconns, sizeof *b->conns);
	if (!b->conns)
		goto nomem;

	uint64_t quota = UINT64_MAX;
	for (unsigned i = 0; i < b->nconns; i++) {
		conn *c = &b->conns[i];
		c->b = b;
		if (i >= b->npubs + b->nsubs) {
			c->role = ROLE_IDLE;
			c->index = i - b->npubs - b->nsubs;
			continue;
		}
		if (i < b->npubs) {
			c->role = ROLE_PUB;
			c->index = i;
			if (o->count)
				quota = o->count / b->npubs + (i < o->count % b->npubs ? 1 : 0);
			c->quota = quota;
			c->allowed = o->rate > 0 ? 0 : UINT64_MAX;
			if (o->qos && !(c->pids = roost_calloc(65536 / 64, sizeof *c->pids)))
				goto nomem;
		} else {
			c->role = ROLE_SUB;
			c->index = i - b->npubs;
		}
		if (o->scenario == SC_PAIRS) {
			unsigned pair = c->index; /* publisher i and subscriber i form pair i */
			if (o->wildcard)
				set_topic(c, c->role == ROLE_PUB ? "home/%u/x/sensor/t" : "home/%u/+/sensor/#", pair);
			else
				set_topic(c, "roost-bench/pairs/%u", pair);
			c->pub_first = pair;
			c->pub_count = 1;
			c->nsubs_of = 1;
		} else {
			c->topic_len = (uint16_t)snprintf(c->topic, sizeof c->topic, "roost-bench/%s",
			                                  scenario_names[o->scenario]);
			c->pub_first = 0;
			c->pub_count = b->npubs;
			c->nsubs_of = b->nsubs;
		}
		if (c->role == ROLE_SUB) {
			if (!(c->last_seq = roost_calloc(c->pub_count, sizeof *c->last_seq)))
				goto nomem;
		} else {
			roost_publish p = {
				.qos = (uint8_t)o->qos,
				.topic = { (const uint8_t *)c->topic, c->topic_len },
				.payload = { NULL, o->payload },
			};
			c->msg_len = roost_encode_publish_header(NULL, 0, VERSION, &p) + o->payload;
		}
	}
	/* bounded output: OUT_BUDGET shared by the publishers, at least one message each */
	size_t target = b->npubs ? OUT_BUDGET / b->npubs : OUT_MAX;
	target = target < OUT_MIN ? OUT_MIN : target > OUT_MAX ? OUT_MAX : target;
	if (b->npubs && target < b->conns[0].msg_len)
		target = b->conns[0].msg_len;
	b->out_target = target;
	/* --window (and --window-bytes) is shared evenly by the publisher -> subscriber streams */
	for (unsigned i = 0; i < b->npubs && o->window; i++) {
		conn *c = &b->conns[i];
		uint64_t streams = (uint64_t)b->npubs * c->nsubs_of, copies = o->window;
		if (o->window_bytes && o->window_bytes / c->msg_len < copies)
			copies = o->window_bytes / c->msg_len;
		c->lead = streams ? (uint32_t)(copies / streams > 0 ? copies / streams : 1) : 0;
	}
	if (b->npubs && !(b->wake = roost_calloc(b->npubs, sizeof *b->wake)))
		goto nomem;
	b->max_packet = o->payload + 4096;
	return 0;
nomem: /* free_bench() releases what was allocated */
	fprintf(stderr, "roost-bench: out of memory\n");
	return 1;
}

static void free_bench(bench *b)
{
	if (b->conns) {
		for (unsigned i = 0; i < b->nconns; i++) {
			if (b->conns[i].bev)
				bufferevent_free(b->conns[i].bev);
			roost_free(b->conns[i].pids);
			roost_free(b->conns[i].last_seq);
		}
		roost_free(b->conns);
	}
	roost_free(b->wake);
	struct event *evs[] = { b->ev_progress, b->ev_stop, b->ev_tick, b->ev_drain, b->ev_ping,
		                b->ev_timeout, b->ev_finish, b->ev_close, b->ev_sigint };
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	roost_free(b->payload);
	if (b->base)
		event_base_free(b->base);
	roost_free(b);
}

static int setup_events(bench *b)
{
	struct event_config *cfg = event_config_new();
	if (!cfg)
		return 1;
	/* --rate ticks every 100 µs: ask for timerfd precision instead of epoll's 1 ms */
	if (b->o.rate > 0)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!b->base)
		return 1;
	b->ev_progress = event_new(b->base, -1, EV_PERSIST, on_progress, b);
	b->ev_stop = evtimer_new(b->base, on_stop, b);
	b->ev_tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
	b->ev_drain = evtimer_new(b->base, on_drain, b);
	b->ev_ping = evtimer_new(b->base, on_ping, b);
	b->ev_timeout = evtimer_new(b->base, on_connect_timeout, b);
	b->ev_finish = evtimer_new(b->base, on_finish, b);
	b->ev_close = evtimer_new(b->base, on_close_timeout, b);
	b->ev_sigint = evsignal_new(b->base, SIGINT, on_sigint, b);
	if (!b->ev_progress || !b->ev_stop || !b->ev_tick || !b->ev_drain || !b->ev_ping || !b->ev_timeout ||
	    !b->ev_finish || !b->ev_close || !b->ev_sigint)
		return 1;
	evsignal_add(b->ev_sigint, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	bench *b = roost_calloc(1, sizeof *b);
	int rc = 1;

	if (!b) {
		fprintf(stderr, "roost-bench: out of memory\n");
		return 1;
	}
	int prc = parse_options(argc, argv, &b->o);
	if (prc) {
		rc = prc < 0 ? 0 : 1;
		goto out;
	}
	if (resolve_loopback(b))
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if (build_conns(b))
		goto out;
	if (setup_events(b) || !(b->payload = roost_calloc(1, b->o.payload))) {
		fprintf(stderr, "roost-bench: cannot set up the event loop\n");
		goto out;
	}
	b->tty = isatty(STDERR_FILENO);
	b->rss0 = proc_rss_kb(b->o.broker_pid);
	b->t_begin = b->prog_t = now_ns();
	b->phase = PH_CONNECT;
	struct timeval one = tv_of(1.0), ct = tv_of(b->o.connect_timeout);
	event_add(b->ev_progress, &one);
	event_add(b->ev_timeout, &ct);
	open_more(b);
	event_base_dispatch(b->base);
	rc = b->exit_code;
out:
	free_bench(b);
	return rc;
}

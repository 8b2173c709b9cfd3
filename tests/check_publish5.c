/*
 * check_publish5.c — the MQTT 5 publish/subscribe rules of the handlers and
 * the send path, over a socketpair with an in-process broker and a fake
 * clock.
 *
 * Each connection connects with a 3.1.1 CONNECT and is then switched to
 * protocol level 5 with the CONNECT properties a test needs, set in c->v5
 * as the connect half (handle_connect) fills them: this suite tests what
 * happens after CONNACK. Packets on the wire are written here byte by byte
 * from the layouts of MQTT 5.0 chapter 3, never with roost's encoder.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "../broker/internal.h"
#include "roost/alloc.h"

typedef struct fixture {
	struct event_base *base;
	roost_config *cfg;
	roost_broker *b;
	roost_log log;
	roost_listener l;
	uint64_t now;
} fixture;

static fixture F;

static void log_line(void *ctx, roost_log_level level, const char *line)
{
	(void)ctx, (void)level;
	if (getenv("PUBLISH5_LOG"))
		fprintf(stderr, "%s\n", line);
}

static void setup(void)
{
	memset(&F, 0, sizeof F);
	F.now = 1000000;
	F.base = event_base_new();
	ck_assert_int_eq(roost_config_defaults(&F.cfg), ROOST_OK);
	F.cfg->allow_anonymous = 1;
	F.log = (roost_log){.level = ROOST_LOG_DEBUG, .write = log_line};
	F.b = roost_broker_new(F.base, F.cfg, &F.log, (roost_clock){roost_clock_fake_now, &F.now});
	ck_assert_ptr_nonnull(F.b);
	F.l = (roost_listener){.b = F.b, .cfg = &F.cfg->listeners[0], .loopback = true};
}

static void teardown(void)
{
	roost_broker_free(F.b);
	roost_config_free(F.cfg);
	event_base_free(F.base);
}

static void pump(void)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(F.base, EVLOOP_NONBLOCK);
}

typedef struct client {
	roost_conn *c;
	int fd;
} client;

static ssize_t peer_read(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 && got == 0)
			return -1;
		return (ssize_t)got;
	}
}

/* The peer reads exactly these bytes now (after the loop ran). */
static void expect(client *k, const uint8_t *want, size_t n)
{
	uint8_t buf[4096];
	pump();
	ssize_t got = peer_read(k->fd, buf, sizeof buf);
	ck_assert_int_eq(got, (ssize_t)n);
	ck_assert_mem_eq(buf, want, n);
}
#define EXPECT(k, ...) \
	do { \
		const uint8_t want_[] = {__VA_ARGS__}; \
		expect((k), want_, sizeof want_); \
	} while (0)

/* A server DISCONNECT with this reason code [MQTT-3.14.2-1]; its properties
 * (a Reason String, when problem information is allowed) may follow. */
static void expect_disconnect(client *k, uint8_t rc)
{
	uint8_t buf[4096];
	pump();
	ssize_t got = peer_read(k->fd, buf, sizeof buf);
	ck_assert_int_ge(got, 3);
	ck_assert_uint_eq(buf[0], 0xe0);
	size_t len = 0, i = 1;
	for (unsigned shift = 0; i < (size_t)got && i < 5; shift += 7) {
		len |= (size_t)(buf[i] & 0x7f) << shift;
		if (!(buf[i++] & 0x80))
			break;
	}
	ck_assert_uint_eq(i + len, (size_t)got); /* one whole packet, nothing after */
	ck_assert_uint_eq(buf[i], rc);
}

static void expect_nothing(client *k)
{
	uint8_t buf[64];
	pump();
	ck_assert_int_eq(peer_read(k->fd, buf, sizeof buf), 0);
}

static void send_pkt(client *k, const uint8_t *p, size_t n)
{
	conn_handle_packet(k->c, p, n);
}
#define SEND(k, ...) \
	do { \
		const uint8_t pkt_[] = {__VA_ARGS__}; \
		send_pkt((k), pkt_, sizeof pkt_); \
	} while (0)

/* Connect client id (2 characters) and switch it to MQTT 5 with defaults:
 * Receive Maximum 65535, no Maximum Packet Size, no topic aliases, problem
 * information allowed (MQTT 5.0 3.1.2.11). */
static client v5_client(const char *id, uint8_t version)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	client k = {conn_new(&F.l, sv[0], (struct sockaddr *)&sin, sizeof sin), sv[1]};
	ck_assert_ptr_nonnull(k.c);
	SEND(&k, 0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, (uint8_t)id[0], (uint8_t)id[1]);
	EXPECT(&k, 0x20, 2, 0, 0);
	if (version == ROOST_MQTT_V5) {
		k.c->version = ROOST_MQTT_V5;
		k.c->v5 = (conn_v5){.receive_max = 65535, .problem_info = true};
	}
	return k;
}

/* The broker closed k: the peer reads EOF, after the server DISCONNECT a v5
 * client gets first. (k->c may be freed by now: not looked at.) */
static bool closed(client *k)
{
	uint8_t buf[4096];
	pump();
	if (peer_read(k->fd, buf, sizeof buf) == -1)
		return true;
	pump();
	return peer_read(k->fd, buf, sizeof buf) == -1;
}

static void bye(client *k)
{
	close(k->fd);
}

/* SUBSCRIBE pid 1, no properties, filter "t", options o; SUBACK rc. */
static void sub_t(client *k, uint8_t o, uint8_t rc)
{
	SEND(k, 0x82, 7, 0, 1, 0, 0, 1, 't', o);
	EXPECT(k, 0x90, 4, 0, 1, 0, rc);
}

/* ---- SUBSCRIBE options ---- */

START_TEST(test_v5_no_local_MQTT_3_8_3_3)
{
	client a = v5_client("aa", 5), b = v5_client("bb", 5);
	sub_t(&a, 0x04, 0x00); /* No Local, QoS 0 */
	sub_t(&b, 0x00, 0x00);
	SEND(&a, 0x30, 5, 0, 1, 't', 0, 'x');
	expect_nothing(&a);
	EXPECT(&b, 0x30, 5, 0, 1, 't', 0, 'x');
	/* b has no No Local: its own message comes back. */
	SEND(&b, 0x30, 5, 0, 1, 't', 0, 'y');
	EXPECT(&a, 0x30, 5, 0, 1, 't', 0, 'y');
	EXPECT(&b, 0x30, 5, 0, 1, 't', 0, 'y');
	bye(&a), bye(&b);
}
END_TEST

START_TEST(test_v5_retain_as_published_MQTT_3_3_1_12)
{
	client a = v5_client("aa", 5), b = v5_client("bb", 5), p = v5_client("pp", 5);
	sub_t(&a, 0x08, 0x00); /* Retain As Published */
	sub_t(&b, 0x00, 0x00);
	SEND(&p, 0x31, 5, 0, 1, 't', 0, 'x');
	EXPECT(&a, 0x31, 5, 0, 1, 't', 0, 'x');
	EXPECT(&b, 0x30, 5, 0, 1, 't', 0, 'x'); /* [MQTT-3.3.1-13] RETAIN 0 */
	bye(&a), bye(&b), bye(&p);
}
END_TEST

START_TEST(test_v5_retain_handling_MQTT_3_3_1_9_10_11)
{
	client p = v5_client("pp", 5), a = v5_client("aa", 5);
	SEND(&p, 0x31, 5, 0, 1, 't', 0, 'x');
	/* Retain Handling 2: SUBACK only [MQTT-3.3.1-11]. */
	sub_t(&a, 0x20, 0x00);
	expect_nothing(&a);
	SEND(&a, 0xa2, 6, 0, 2, 0, 0, 1, 't'); /* UNSUBSCRIBE */
	EXPECT(&a, 0xb0, 4, 0, 2, 0, 0x00);
	/* 1: sent for a new subscription [MQTT-3.3.1-10], not again. */
	SEND(&a, 0x82, 7, 0, 1, 0, 0, 1, 't', 0x10);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 0x00, 0x31, 5, 0, 1, 't', 0, 'x');
	sub_t(&a, 0x10, 0x00);
	expect_nothing(&a);
	/* 0: every time [MQTT-3.3.1-9]. */
	SEND(&a, 0x82, 7, 0, 1, 0, 0, 1, 't', 0x00);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 0x00, 0x31, 5, 0, 1, 't', 0, 'x');
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_subscription_identifier_on_delivery_MQTT_3_3_4_3)
{
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	/* SUBSCRIBE pid 1, Subscription Identifier 7, "t" and then pid 2, id 200 on "+". */
	SEND(&a, 0x82, 9, 0, 1, 2, 0x0B, 7, 0, 1, 't', 0);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 0);
	SEND(&a, 0x82, 10, 0, 2, 3, 0x0B, 0xC8, 0x01, 0, 1, '+', 0);
	EXPECT(&a, 0x90, 4, 0, 2, 0, 0);
	SEND(&p, 0x30, 5, 0, 1, 't', 0, 'x');
	/* One copy [MQTT-3.3.4-2] with both identifiers [MQTT-3.3.4-3]: hash order. */
	uint8_t buf[64];
	pump();
	ck_assert_int_eq(peer_read(a.fd, buf, sizeof buf), 12);
	const uint8_t head[] = {0x30, 10, 0, 1, 't', 5};
	ck_assert_mem_eq(buf, head, sizeof head);
	const uint8_t ids1[] = {0x0B, 7, 0x0B, 0xC8, 0x01}, ids2[] = {0x0B, 0xC8, 0x01, 0x0B, 7};
	ck_assert(memcmp(buf + 6, ids1, 5) == 0 || memcmp(buf + 6, ids2, 5) == 0);
	ck_assert_int_eq(buf[11], 'x');
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_subscription_identifier_0_is_a_protocol_error)
{
	client a = v5_client("aa", 5);
	SEND(&a, 0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, 't', 0);
	ck_assert(closed(&a));
	bye(&a);
}
END_TEST

START_TEST(test_v5_suback_reason_codes)
{
	F.cfg->limits.max_subscriptions = 1;
	client a = v5_client("aa", 5), o = v5_client("oo", 4);
	/* 0x8F Topic Filter invalid. */
	SEND(&a, 0x82, 9, 0, 1, 0, 0, 3, 'a', '#', 'b', 0);
	EXPECT(&a, 0x90, 4, 0, 1, 0, ROOST_RC5_TOPIC_FILTER_INVALID);
	/* 0x02 granted QoS 2, then 0x97 Quota exceeded. */
	sub_t(&a, 0x02, 0x02);
	SEND(&a, 0x82, 7, 0, 1, 0, 0, 1, 'u', 1);
	EXPECT(&a, 0x90, 4, 0, 1, 0, ROOST_RC5_QUOTA_EXCEEDED);
	/* 3.1.1 keeps 0x80 [MQTT-3.9.3-2]. */
	SEND(&o, 0x82, 8, 0, 1, 0, 3, 'a', '#', 'b', 0);
	EXPECT(&o, 0x90, 3, 0, 1, 0x80);
	bye(&a), bye(&o);
}
END_TEST

START_TEST(test_v5_unsuback_reason_codes_MQTT_3_11_3_1)
{
	client a = v5_client("aa", 5);
	sub_t(&a, 0, 0);
	/* "t" existed, "u" did not (0x11), "a#" is invalid (0x8F). */
	SEND(&a, 0xa2, 13, 0, 9, 0, 0, 1, 't', 0, 1, 'u', 0, 2, 'a', '#');
	EXPECT(&a, 0xb0, 6, 0, 9, 0, 0x00, 0x11, 0x8F);
	bye(&a);
}
END_TEST

/* ---- PUBLISH properties ---- */

START_TEST(test_v5_properties_forwarded_unchanged_and_in_order_MQTT_3_3_2_17_18)
{
	client a = v5_client("aa", 5), o = v5_client("oo", 4), p = v5_client("pp", 5);
	sub_t(&a, 0, 0);
	SEND(&o, 0x82, 6, 0, 1, 0, 1, 't', 0);
	EXPECT(&o, 0x90, 3, 0, 1, 0);
	/* Properties: Payload Format 1, User Property (k,1), Content Type "c",
	 * User Property (k,2), Response Topic "r", Correlation Data 0xAB,
	 * Topic Alias 1 (not forwarded [MQTT-3.3.2-7]). */
	SEND(&p, 0x30, 3 + 1 + 31 + 1, 0, 1, 't', 31,
	     0x01, 1,
	     0x26, 0, 1, 'k', 0, 1, '1',
	     0x03, 0, 1, 'c',
	     0x26, 0, 1, 'k', 0, 1, '2',
	     0x08, 0, 1, 'r',
	     0x09, 0, 1, 0xAB,
	     0x23, 0, 1,
	     'x');
	EXPECT(&a, 0x30, 3 + 1 + 28 + 1, 0, 1, 't', 28,
	       0x01, 1,
	       0x26, 0, 1, 'k', 0, 1, '1',
	       0x03, 0, 1, 'c',
	       0x26, 0, 1, 'k', 0, 1, '2',
	       0x08, 0, 1, 'r',
	       0x09, 0, 1, 0xAB,
	       'x');
	/* A 3.1.1 subscriber gets the message without properties. */
	EXPECT(&o, 0x30, 4, 0, 1, 't', 'x');
	/* And a 3.1.1 publisher's message reaches a v5 subscriber with none. */
	SEND(&o, 0x30, 4, 0, 1, 't', 'y');
	EXPECT(&a, 0x30, 5, 0, 1, 't', 0, 'y');
	EXPECT(&o, 0x30, 4, 0, 1, 't', 'y');
	bye(&a), bye(&o), bye(&p);
}
END_TEST

START_TEST(test_v5_message_expiry_decremented_MQTT_3_3_2_6)
{
	F.cfg->limits.max_inflight_messages = 1;
	F.b->limits.max_inflight = 1;
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	sub_t(&a, 1, 1);
	/* Two QoS 1 messages with Message Expiry Interval 10: the second
	 * waits in the queue behind the first's window slot. */
	SEND(&p, 0x32, 3 + 2 + 6 + 1, 0, 1, 't', 0, 1, 5, 0x02, 0, 0, 0, 10, '1');
	EXPECT(&p, 0x40, 2, 0, 1);
	SEND(&p, 0x32, 3 + 2 + 6 + 1, 0, 1, 't', 0, 2, 5, 0x02, 0, 0, 0, 10, '2');
	EXPECT(&p, 0x40, 2, 0, 2);
	EXPECT(&a, 0x32, 12, 0, 1, 't', 0, 1, 5, 0x02, 0, 0, 0, 10, '1');
	F.now += 4000; /* it waited 4 s */
	SEND(&a, 0x40, 2, 0, 1);
	EXPECT(&a, 0x32, 12, 0, 1, 't', 0, 2, 5, 0x02, 0, 0, 0, 6, '2');
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_message_expired_not_delivered_MQTT_3_3_2_5)
{
	F.b->limits.max_inflight = 1;
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	sub_t(&a, 1, 1);
	SEND(&p, 0x32, 7, 0, 1, 't', 0, 1, 0, '1');
	SEND(&p, 0x32, 3 + 2 + 6 + 1, 0, 1, 't', 0, 2, 5, 0x02, 0, 0, 0, 2, '2');
	EXPECT(&a, 0x32, 7, 0, 1, 't', 0, 1, 0, '1');
	F.now += 2000;
	SEND(&a, 0x40, 2, 0, 1);
	expect_nothing(&a);
	ck_assert_uint_eq(F.b->stats.msgs_expired, 1);
	/* A retained message expires too. */
	SEND(&p, 0x31, 3 + 6 + 1, 0, 1, 'r', 5, 0x02, 0, 0, 0, 1, 'x');
	F.now += 1000;
	SEND(&a, 0x82, 7, 0, 3, 0, 0, 1, 'r', 0);
	EXPECT(&a, 0x90, 4, 0, 3, 0, 0);
	bye(&a), bye(&p);
}
END_TEST

/* ---- acknowledgement reason codes ---- */

START_TEST(test_v5_puback_reason_codes)
{
	F.cfg->limits.max_topic_length = 8;
	F.cfg->limits.max_retained_messages = 1;
	client p = v5_client("pp", 5), o = v5_client("oo", 4);
	/* 0x10 No matching subscribers. */
	SEND(&p, 0x32, 6, 0, 1, 't', 0, 1, 0);
	EXPECT(&p, 0x40, 3, 0, 1, 0x10);
	/* 0x87 Not authorized: '$' topics are the broker's [MQTT-4.7.2-1],
	 * with a Reason String. */
	SEND(&p, 0x32, 8, 0, 3, '$', 'x', 'y', 0, 2, 0);
	uint8_t buf[256];
	pump();
	ssize_t n = peer_read(p.fd, buf, sizeof buf);
	ck_assert_int_gt(n, 8);
	ck_assert_int_eq(buf[0], 0x40);
	ck_assert_int_eq(buf[4], 0x87);
	ck_assert_int_eq(buf[6], 0x1F); /* Reason String */
	/* 0x90 Topic Name invalid: over limits.max_topic_length. */
	SEND(&p, 0x32, 14, 0, 9, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 0, 3, 0);
	pump();
	n = peer_read(p.fd, buf, sizeof buf);
	ck_assert_int_gt(n, 4);
	ck_assert_int_eq(buf[4], 0x90);
	/* 0x99 Payload format invalid [MQTT-3.3.2-4]: 0xFF is not UTF-8; no
	 * Reason String once the client asked for no problem information. */
	p.c->v5.problem_info = false;
	SEND(&p, 0x32, 9, 0, 1, 't', 0, 4, 2, 0x01, 1, 0xFF);
	EXPECT(&p, 0x40, 3, 0, 4, 0x99);
	/* 0x97 Quota exceeded: the second retained topic is not kept. */
	SEND(&p, 0x33, 7, 0, 1, 'a', 0, 5, 0, 'x');
	EXPECT(&p, 0x40, 3, 0, 5, 0x10);
	SEND(&p, 0x33, 7, 0, 1, 'b', 0, 6, 0, 'x');
	EXPECT(&p, 0x40, 3, 0, 6, 0x97);
	/* 0x87 as PUBREC for QoS 2 ends the flow: PUBREL then gets 0x92. */
	SEND(&p, 0x34, 8, 0, 3, '$', 'x', 'y', 0, 7, 0);
	EXPECT(&p, 0x50, 3, 0, 7, 0x87);
	SEND(&p, 0x62, 2, 0, 7);
	EXPECT(&p, 0x70, 3, 0, 7, 0x92);
	/* 3.1.1 keeps the silent drop with a plain PUBACK. */
	SEND(&o, 0x32, 7, 0, 3, '$', 'x', 'y', 0, 1);
	EXPECT(&o, 0x40, 2, 0, 1);
	bye(&p), bye(&o);
}
END_TEST

START_TEST(test_v5_pubrec_unknown_gets_pubrel_0x92)
{
	client a = v5_client("aa", 5);
	SEND(&a, 0x50, 2, 0, 9);
	EXPECT(&a, 0x62, 3 + 1 + 3 + 27, 0, 9, 0x92, 30, 0x1F, 0, 27,
	       'p', 'a', 'c', 'k', 'e', 't', ' ', 'i', 'd', 'e', 'n', 't', 'i', 'f', 'i', 'e', 'r', ' ',
	       'n', 'o', 't', ' ', 'f', 'o', 'u', 'n', 'd');
	bye(&a);
}
END_TEST

/* ---- flow control ---- */

START_TEST(test_v5_client_receive_maximum_MQTT_3_3_4_9)
{
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	a.c->v5.receive_max = 1;
	sub_t(&a, 1, 1);
	SEND(&p, 0x32, 6, 0, 1, 't', 0, 1, 0);
	SEND(&p, 0x32, 6, 0, 1, 't', 0, 2, 0);
	EXPECT(&a, 0x32, 6, 0, 1, 't', 0, 1, 0);
	SEND(&a, 0x40, 2, 0, 1);
	EXPECT(&a, 0x32, 6, 0, 1, 't', 0, 2, 0);
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_maximum_packet_size_drop_MQTT_3_1_2_24_25)
{
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	a.c->v5.max_packet = 8;
	sub_t(&a, 1, 1);
	SEND(&p, 0x32, 9, 0, 1, 't', 0, 1, 0, 'a', 'b', 'c'); /* 11 bytes to a */
	SEND(&p, 0x32, 6, 0, 1, 't', 0, 2, 0);                /* 8 bytes */
	EXPECT(&a, 0x32, 6, 0, 1, 't', 0, 1, 0);
	ck_assert_uint_eq(F.b->stats.msgs_too_large, 1);
	ck_assert_uint_eq(roost_session_inflight_len(a.c->session), 1); /* as if sent: no slot kept */
	bye(&a), bye(&p);
}
END_TEST

/* ---- topic aliases ---- */

START_TEST(test_v5_topic_alias_inbound_MQTT_3_3_2_12)
{
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	sub_t(&a, 0, 0);
	SEND(&p, 0x30, 3 + 4 + 1, 0, 1, 't', 3, 0x23, 0, 1, 'x'); /* sets alias 1 */
	EXPECT(&a, 0x30, 5, 0, 1, 't', 0, 'x');
	SEND(&p, 0x30, 2 + 4 + 1, 0, 0, 3, 0x23, 0, 1, 'y'); /* uses it */
	EXPECT(&a, 0x30, 5, 0, 1, 't', 0, 'y');
	/* Unknown alias with an empty topic: Protocol Error. */
	SEND(&p, 0x30, 2 + 4 + 1, 0, 0, 3, 0x23, 0, 2, 'z');
	expect_disconnect(&p, 0x82);
	ck_assert(closed(&p));
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_topic_alias_above_maximum_MQTT_3_3_2_9)
{
	client p = v5_client("pp", 5), q = v5_client("qq", 5);
	SEND(&p, 0x30, 3 + 4 + 1, 0, 1, 't', 3, 0x23, 0, 10 + 1, 'x'); /* limits.max_topic_alias defaults to 10 */
	expect_disconnect(&p, 0x94);
	ck_assert(closed(&p));
	/* Alias 0 is not permitted either [MQTT-3.3.2-8]: 0x94 too. */
	SEND(&q, 0x30, 3 + 4 + 1, 0, 1, 't', 3, 0x23, 0, 0, 'x');
	expect_disconnect(&q, 0x94);
	ck_assert(closed(&q));
	bye(&p), bye(&q);
}
END_TEST

START_TEST(test_v5_topic_alias_outbound_MQTT_3_3_2_11)
{
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	a.c->v5.topic_alias_max = 1;
	SEND(&a, 0x82, 10, 0, 1, 0, 0, 4, 'l', 'o', 'n', 'g', 0);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 0);
	SEND(&a, 0x82, 7, 0, 2, 0, 0, 1, 'b', 0);
	EXPECT(&a, 0x90, 4, 0, 2, 0, 0);
	SEND(&p, 0x30, 8, 0, 4, 'l', 'o', 'n', 'g', 0, '1');
	EXPECT(&a, 0x30, 11, 0, 4, 'l', 'o', 'n', 'g', 3, 0x23, 0, 1, '1');
	SEND(&p, 0x30, 8, 0, 4, 'l', 'o', 'n', 'g', 0, '2');
	EXPECT(&a, 0x30, 7, 0, 0, 3, 0x23, 0, 1, '2'); /* 4 bytes fewer */
	/* The client's maximum is used up: "b" goes without an alias. */
	SEND(&p, 0x30, 5, 0, 1, 'b', 0, '3');
	EXPECT(&a, 0x30, 5, 0, 1, 'b', 0, '3');
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_publish_with_subscription_identifier_MQTT_3_3_4_6)
{
	client p = v5_client("pp", 5);
	SEND(&p, 0x30, 3 + 3 + 1, 0, 1, 't', 2, 0x0B, 1, 'x');
	expect_disconnect(&p, 0x82);
	bye(&p);
}
END_TEST

/* ---- shared subscriptions [MQTT-4.8.2] ---- */

#define SHARE_G_T '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't'

START_TEST(test_v5_shared_round_robin_MQTT_4_8_2_3)
{
	client a = v5_client("aa", 5), b = v5_client("bb", 5), o = v5_client("oo", 4), p = v5_client("pp", 5);
	b.c->v5.receive_max = 1;
	SEND(&a, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 1);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 1);
	SEND(&b, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 1);
	EXPECT(&b, 0x90, 4, 0, 1, 0, 1);
	/* A 3.1.1 client shares too (as Mosquitto and EMQX allow), in group h. */
	SEND(&o, 0x82, 15, 0, 1, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'h', '/', 't', 1);
	EXPECT(&o, 0x90, 3, 0, 1, 1);
	for (uint8_t i = 1; i <= 4; i++)
		SEND(&p, 0x30, 5, 0, 1, 't', 0, (uint8_t)('0' + i));
	/* QoS 0 takes no window slot: a, b, a, b [MQTT-4.8.2-3]. */
	EXPECT(&a, 0x30, 5, 0, 1, 't', 0, '1', 0x30, 5, 0, 1, 't', 0, '3');
	EXPECT(&b, 0x30, 5, 0, 1, 't', 0, '2', 0x30, 5, 0, 1, 't', 0, '4');
	/* Group h has one member: every message. */
	EXPECT(&o, 0x30, 4, 0, 1, 't', '1', 0x30, 4, 0, 1, 't', '2', 0x30, 4, 0, 1, 't', '3', 0x30, 4, 0, 1, 't', '4');
	bye(&a), bye(&b), bye(&o), bye(&p);
}
END_TEST

START_TEST(test_v5_shared_skips_member_with_full_window)
{
	client a = v5_client("aa", 5), b = v5_client("bb", 5), p = v5_client("pp", 5);
	b.c->v5.receive_max = 1;
	SEND(&a, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 1);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 1);
	SEND(&b, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 1);
	EXPECT(&b, 0x90, 4, 0, 1, 0, 1);
	for (uint8_t i = 1; i <= 4; i++) {
		SEND(&p, 0x32, 7, 0, 1, 't', 0, i, 0, (uint8_t)('0' + i));
		EXPECT(&p, 0x40, 2, 0, i);
	}
	EXPECT(&a, 0x32, 7, 0, 1, 't', 0, 1, 0, '1', 0x32, 7, 0, 1, 't', 0, 2, 0, '3', 0x32, 7, 0, 1, 't', 0, 3, 0, '4');
	EXPECT(&b, 0x32, 7, 0, 1, 't', 0, 1, 0, '2');
	bye(&a), bye(&b), bye(&p);
}
END_TEST

START_TEST(test_v5_shared_member_leaves_qos1_handed_over_MQTT_4_8_2_4_5)
{
	client a = v5_client("aa", 5), b = v5_client("bb", 5), p = v5_client("pp", 5);
	SEND(&a, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 2);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 2);
	SEND(&b, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 2);
	EXPECT(&b, 0x90, 4, 0, 1, 0, 2);
	SEND(&p, 0x32, 7, 0, 1, 't', 0, 1, 0, '1'); /* QoS 1 -> a */
	SEND(&p, 0x34, 7, 0, 1, 't', 0, 2, 0, '2'); /* QoS 2 -> b */
	SEND(&p, 0x34, 7, 0, 1, 't', 0, 3, 0, '3'); /* QoS 2 -> a */
	EXPECT(&a, 0x32, 7, 0, 1, 't', 0, 1, 0, '1', 0x34, 7, 0, 1, 't', 0, 2, 0, '3');
	EXPECT(&b, 0x34, 7, 0, 1, 't', 0, 1, 0, '2');
	/* a leaves without acknowledging: its QoS 1 message goes to b, its
	 * QoS 2 delivery under way stays with it and ends with it. */
	SEND(&a, 0xe0, 0);
	EXPECT(&b, 0x32, 7, 0, 1, 't', 0, 2, 0, '1');
	bye(&a), bye(&b), bye(&p);
}
END_TEST

START_TEST(test_v5_shared_no_retained_and_invalid_names_MQTT_4_8_2_1)
{
	client a = v5_client("aa", 5), p = v5_client("pp", 5);
	SEND(&p, 0x31, 5, 0, 1, 't', 0, 'x');
	SEND(&a, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 0);
	EXPECT(&a, 0x90, 4, 0, 1, 0, 0); /* SUBACK, no retained message */
	/* "$share//t" and "$share/g+/t": Topic Filter invalid. */
	SEND(&a, 0x82, 15, 0, 2, 0, 0, 9, '$', 's', 'h', 'a', 'r', 'e', '/', '/', 't', 0);
	EXPECT(&a, 0x90, 4, 0, 2, 0, 0x8F);
	SEND(&a, 0x82, 17, 0, 3, 0, 0, 11, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '+', '/', 't', 0);
	EXPECT(&a, 0x90, 4, 0, 3, 0, 0x8F);
	bye(&a), bye(&p);
}
END_TEST

START_TEST(test_v5_shared_no_local_is_a_protocol_error_MQTT_3_8_3_4)
{
	client a = v5_client("aa", 5);
	SEND(&a, 0x82, 16, 0, 1, 0, 0, 10, SHARE_G_T, 0x04);
	ck_assert(closed(&a));
	bye(&a);
}
END_TEST

Suite *publish5_suite(void);
Suite *publish5_suite(void)
{
	const struct {
		const char *tcase;
		const TTest *test;
	} tests[] = {
		{"subscribe", test_v5_no_local_MQTT_3_8_3_3},
		{"subscribe", test_v5_retain_as_published_MQTT_3_3_1_12},
		{"subscribe", test_v5_retain_handling_MQTT_3_3_1_9_10_11},
		{"subscribe", test_v5_subscription_identifier_on_delivery_MQTT_3_3_4_3},
		{"subscribe", test_v5_subscription_identifier_0_is_a_protocol_error},
		{"subscribe", test_v5_suback_reason_codes},
		{"subscribe", test_v5_unsuback_reason_codes_MQTT_3_11_3_1},
		{"publish", test_v5_properties_forwarded_unchanged_and_in_order_MQTT_3_3_2_17_18},
		{"publish", test_v5_message_expiry_decremented_MQTT_3_3_2_6},
		{"publish", test_v5_message_expired_not_delivered_MQTT_3_3_2_5},
		{"publish", test_v5_publish_with_subscription_identifier_MQTT_3_3_4_6},
		{"acks", test_v5_puback_reason_codes},
		{"acks", test_v5_pubrec_unknown_gets_pubrel_0x92},
		{"flow", test_v5_client_receive_maximum_MQTT_3_3_4_9},
		{"flow", test_v5_maximum_packet_size_drop_MQTT_3_1_2_24_25},
		{"alias", test_v5_topic_alias_inbound_MQTT_3_3_2_12},
		{"alias", test_v5_topic_alias_above_maximum_MQTT_3_3_2_9},
		{"alias", test_v5_topic_alias_outbound_MQTT_3_3_2_11},
		{"shared", test_v5_shared_round_robin_MQTT_4_8_2_3},
		{"shared", test_v5_shared_skips_member_with_full_window},
		{"shared", test_v5_shared_no_retained_and_invalid_names_MQTT_4_8_2_1},
		{"shared", test_v5_shared_no_local_is_a_protocol_error_MQTT_3_8_3_4},
		{"shared", test_v5_shared_member_leaves_qos1_handed_over_MQTT_4_8_2_4_5},
	};
	Suite *s = suite_create("publish5");
	TCase *tc = NULL;
	const char *name = "";
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		if (strcmp(name, tests[i].tcase) != 0) {
			name = tests[i].tcase;
			tc = tcase_create(name);
			tcase_add_checked_fixture(tc, setup, teardown);
			suite_add_tcase(s, tc);
		}
		tcase_add_test(tc, tests[i].test);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(publish5_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

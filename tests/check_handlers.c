/*
 * check_handlers.c — the packet handlers and the acknowledgement hold, over
 * a socketpair with an in-process broker and an in-memory store.
 *
 * The client side of each socketpair speaks bytes written here from the
 * MQTT 3.1.1 layouts (not roost's encoder). Packets are handed to the
 * broker through conn_handle_packet, the same entry read_cb uses, so a test
 * can look at the connection between a packet's handling and the commit
 * that runs in the next loop pass.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
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
	uint64_t now; /* the fake clock's reading (setup_fake_clock) */
} fixture;

static void setup_clock(fixture *f, roost_clock clock);

static void setup(fixture *f)
{
	setup_clock(f, roost_clock_system());
}

/* With a fake clock: f->now, in milliseconds, is what the broker reads. */
static void setup_fake_clock(fixture *f)
{
	setup_clock(f, (roost_clock){.now_ms = roost_clock_fake_now, .ctx = &f->now});
	f->now = 1000;
}

static void setup_clock(fixture *f, roost_clock clock)
{
	uint64_t *now = clock.ctx;
	memset(f, 0, sizeof *f);
	if (now == &f->now)
		f->now = 1000;
	f->base = event_base_new();
	ck_assert_int_eq(roost_config_defaults(&f->cfg), ROOST_OK);
	f->cfg->allow_anonymous = 1;
	f->cfg->persistence.enabled = true;
	roost_free(f->cfg->persistence.path);
	f->cfg->persistence.path = roost_strdup(":memory:");
	f->log = (roost_log){.level = ROOST_LOG_ERROR};
	f->b = roost_broker_new(f->base, f->cfg, &f->log, clock);
	ck_assert_ptr_nonnull(f->b);
	ck_assert_int_eq(roost_broker_open_store(f->b), ROOST_OK);
	f->l = (roost_listener){.b = f->b, .cfg = &f->cfg->listeners[0], .loopback = true};
}

static void teardown(fixture *f)
{
	roost_broker_free(f->b);
	roost_config_free(f->cfg);
	event_base_free(f->base);
}

/* A broker connection whose peer is *peer (non-blocking). */
static roost_conn *connect_pair(fixture *f, int *peer)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	roost_conn *c = conn_new(&f->l, sv[0], (struct sockaddr *)&sin, sizeof sin);
	ck_assert_ptr_nonnull(c);
	*peer = sv[1];
	return c;
}

/* Run the loop until nothing is ready: writes, the commit, the reaper. */
static void pump(fixture *f)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Everything the peer can read now; -1 at EOF with nothing read. */
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

/* The peer can read exactly want (n bytes) now. */
static void expect_read(int fd, const uint8_t *want, size_t n)
{
	uint8_t buf[64];
	ck_assert_int_eq(peer_read(fd, buf, sizeof buf), (ssize_t)n);
	ck_assert_mem_eq(buf, want, n);
}

static size_t unsent(roost_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static size_t held(roost_conn *c)
{
	return c->hold ? evbuffer_get_length(c->hold) : 0;
}

/* CONNECT, MQTT 3.1.1, keepalive 60, client id "id" (2 bytes), clean flag. */
static void connect_packet(uint8_t out[16], const char *id, bool clean)
{
	const uint8_t p[16] = {0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, clean ? 0x02 : 0x00, 0, 60, 0, 2,
	                       (uint8_t)id[0], (uint8_t)id[1]};
	memcpy(out, p, sizeof p);
}

static const uint8_t connack_ok[] = {0x20, 2, 0, 0};
/* PUBLISH QoS 1, topic "a/b", packet id 1, payload "hi". */
static const uint8_t publish_q1[] = {0x32, 9, 0, 3, 'a', '/', 'b', 0, 1, 'h', 'i'};
static const uint8_t puback_1[] = {0x40, 2, 0, 1};
/* SUBSCRIBE packet id 1, "a/b" at QoS 1. */
static const uint8_t subscribe_q1[] = {0x82, 8, 0, 1, 0, 3, 'a', '/', 'b', 1};
static const uint8_t suback_q1[] = {0x90, 3, 0, 1, 1};
static const uint8_t pingreq[] = {0xc0, 0};
static const uint8_t pingresp[] = {0xd0, 0};
static const uint8_t disconnect[] = {0xe0, 0};

/* Connect id over a new pair and read its CONNACK (after the commit). */
static roost_conn *connected(fixture *f, const char *id, bool clean, int *peer)
{
	roost_conn *c = connect_pair(f, peer);
	uint8_t pkt[16];
	connect_packet(pkt, id, clean);
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(f);
	expect_read(*peer, connack_ok, sizeof connack_ok);
	return c;
}

/* A persistent session "sb" subscribed to a/b at QoS 1, then offline: a
 * QoS 1 PUBLISH on a/b is queued for it, which writes to the store. */
static void offline_subscriber(fixture *f)
{
	int peer;
	roost_conn *c = connected(f, "sb", false, &peer);
	conn_handle_packet(c, subscribe_q1, sizeof subscribe_q1);
	pump(f);
	expect_read(peer, suback_q1, sizeof suback_q1);
	conn_handle_packet(c, disconnect, sizeof disconnect);
	pump(f);
	close(peer);
}

START_TEST(test_handlers_connect_connack_MQTT_3_2_0_1)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	uint8_t pkt[16];
	connect_packet(pkt, "c1", true);
	conn_handle_packet(c, pkt, sizeof pkt);
	/* A clean session writes nothing to the store: CONNACK goes at once. */
	ck_assert_int_eq(c->state, CONN_ACTIVE);
	ck_assert_ptr_null(c->hold);
	ck_assert_uint_eq(unsent(c), sizeof connack_ok);
	pump(&f);
	expect_read(peer, connack_ok, sizeof connack_ok);
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_persistent_connack_waits_for_the_commit)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	uint8_t pkt[16];
	connect_packet(pkt, "p1", false);
	conn_handle_packet(c, pkt, sizeof pkt);
	/* The new persistent session was written: its CONNACK waits. */
	ck_assert_uint_eq(unsent(c), 0);
	ck_assert_uint_eq(held(c), sizeof connack_ok);
	pump(&f); /* the group commit runs, then the write */
	expect_read(peer, connack_ok, sizeof connack_ok);
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_publish_qos1_puback_MQTT_4_3_2_2)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connected(&f, "c1", true, &peer);
	conn_handle_packet(c, publish_q1, sizeof publish_q1);
	/* Nobody subscribed: nothing stored, the PUBACK is not held. */
	ck_assert_ptr_null(c->hold);
	pump(&f);
	expect_read(peer, puback_1, sizeof puback_1);
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_puback_held_until_commit_in_order)
{
	fixture f;
	setup(&f);
	offline_subscriber(&f);
	int peer;
	roost_conn *c = connected(&f, "c2", true, &peer);
	uint64_t before = broker_store_writes(f.b);
	conn_handle_packet(c, publish_q1, sizeof publish_q1);
	ck_assert_uint_gt(broker_store_writes(f.b), before); /* queued for "sb" */
	/* The PUBACK acknowledges a stored delivery: not sent before the commit. */
	ck_assert_uint_eq(unsent(c), 0);
	ck_assert_uint_eq(held(c), sizeof puback_1);
	/* Later output queues behind it, even from a packet that wrote nothing. */
	conn_handle_packet(c, pingreq, sizeof pingreq);
	ck_assert_uint_eq(unsent(c), 0);
	ck_assert_uint_eq(held(c), sizeof puback_1 + sizeof pingresp);
	pump(&f);
	ck_assert_ptr_null(c->hold);
	uint8_t buf[64];
	ck_assert_int_eq(peer_read(peer, buf, sizeof buf), sizeof puback_1 + sizeof pingresp);
	ck_assert_mem_eq(buf, puback_1, sizeof puback_1);
	ck_assert_mem_eq(buf + sizeof puback_1, pingresp, sizeof pingresp);
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_commit_failure_closes_unacknowledged)
{
	fixture f;
	setup(&f);
	offline_subscriber(&f);
	int peer;
	roost_conn *c = connected(&f, "c3", true, &peer);
	conn_handle_packet(c, publish_q1, sizeof publish_q1);
	ck_assert_uint_eq(unsent(c), 0);
	ck_assert_uint_eq(held(c), sizeof puback_1);
	/* What the store reports when the batch's commit (or any write in it)
	 * failed: the holding connection is closed, its PUBACK never sent. */
	conn_commit_done(f.b, false);
	ck_assert_int_eq(c->state, CONN_DEAD);
	ck_assert_ptr_null(f.b->holding);
	pump(&f); /* c is freed here */
	uint8_t buf[64];
	ck_assert_int_eq(peer_read(peer, buf, sizeof buf), -1); /* EOF, no byte */
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_hold_released_to_several_connections)
{
	fixture f;
	setup(&f);
	int p1, p2;
	roost_conn *c1 = connected(&f, "h1", true, &p1);
	roost_conn *c2 = connected(&f, "h2", true, &p2);
	conn_hold_until_commit(c1);
	conn_hold_until_commit(c2);
	conn_handle_packet(c1, pingreq, sizeof pingreq);
	conn_handle_packet(c2, pingreq, sizeof pingreq);
	ck_assert_uint_eq(unsent(c1) + unsent(c2), 0);
	conn_commit_done(f.b, true);
	ck_assert_ptr_null(f.b->holding);
	ck_assert_uint_eq(unsent(c1), sizeof pingresp);
	ck_assert_uint_eq(unsent(c2), sizeof pingresp);
	pump(&f);
	uint8_t buf[8];
	ck_assert_int_eq(peer_read(p1, buf, sizeof buf), sizeof pingresp);
	ck_assert_int_eq(peer_read(p2, buf, sizeof buf), sizeof pingresp);
	close(p1);
	close(p2);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_hold_always_gets_a_commit)
{
	/* A hold whose write did not open a transaction (it failed first)
	 * still gets a commit to settle it: never held forever. */
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connected(&f, "h3", true, &peer);
	conn_hold_until_commit(c);
	conn_handle_packet(c, pingreq, sizeof pingreq);
	ck_assert_uint_eq(held(c), sizeof pingresp);
	pump(&f);
	ck_assert_ptr_null(c->hold);
	expect_read(peer, pingresp, sizeof pingresp);
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_handlers_first_packet_not_connect_MQTT_3_1_0_1)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	conn_handle_packet(c, pingreq, sizeof pingreq);
	ck_assert_int_eq(c->state, CONN_DEAD);
	pump(&f);
	uint8_t buf[8];
	ck_assert_int_eq(peer_read(peer, buf, sizeof buf), -1);
	close(peer);
	teardown(&f);
}
END_TEST

/* The last log line at or above the fixture's level. */
static char last_line[1100];
static void capture(void *ctx, roost_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	snprintf(last_line, sizeof last_line, "%s", line);
}

START_TEST(test_handlers_long_client_id_keeps_the_close_reason_in_the_line)
{
	fixture f;
	setup(&f);
	f.log = (roost_log){.level = ROOST_LOG_DEBUG, .write = capture};
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	/* CONNECT with a 2000-byte client id: longer than a log line. */
	enum { IDLEN = 2000 };
	uint8_t pkt[3 + 12 + IDLEN];
	size_t rem = 10 + 2 + IDLEN;
	const uint8_t head[] = {0x10, (uint8_t)(0x80 | (rem & 0x7f)), (uint8_t)(rem >> 7), 0, 4, 'M', 'Q', 'T',
	                        'T', 4, 0x02, 0, 60, IDLEN >> 8, IDLEN & 0xff};
	memcpy(pkt, head, sizeof head);
	memset(pkt + sizeof head, 'x', IDLEN);
	conn_handle_packet(c, pkt, sizeof pkt);
	ck_assert_int_eq(c->state, CONN_ACTIVE);
	conn_handle_packet(c, disconnect, sizeof disconnect);
	ck_assert_int_eq(c->state, CONN_DEAD);
	ck_assert_msg(strstr(last_line, "xxx\xe2\x80\xa6(2000 bytes) (") != NULL, "id not cut: %.120s", last_line);
	const char *end = "closed: client sent DISCONNECT";
	size_t n = strlen(last_line);
	ck_assert_msg(n > strlen(end) && strcmp(last_line + n - strlen(end), end) == 0, "reason lost: ...%s",
	              last_line + (n > 80 ? n - 80 : 0));
	ck_assert_uint_lt(n, 200);
	pump(&f);
	close(peer);
	teardown(&f);
}
END_TEST

/* ---- MQTT 5, the connect side ---- */

/* CONNECT v5, Clean Start, keepalive 60, empty client id, with the given
 * property block (props_len < 100 bytes). Returns the packet length. */
static size_t connect5_packet(uint8_t *out, const uint8_t *props, size_t props_len)
{
	static const uint8_t vh[] = {0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60};
	size_t n = 2;
	out[0] = 0x10;
	memcpy(out + n, vh, sizeof vh);
	n += sizeof vh;
	out[n++] = (uint8_t)props_len;
	memcpy(out + n, props, props_len);
	n += props_len;
	out[n++] = 0;
	out[n++] = 0; /* empty client id */
	out[1] = (uint8_t)(n - 2);
	return n;
}

/* [MQTT-3.2.2-16] an empty id gets an Assigned Client Identifier, and the
 * connection carries the client's v5 properties (conn_v5). */
START_TEST(test_handlers_v5_assigned_client_id_MQTT_3_2_2_16)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	/* Receive Maximum 7, Maximum Packet Size 1000, Topic Alias Maximum 3,
	 * Request Problem Information 0, Request Response Information 1. */
	static const uint8_t props[] = {0x21, 0, 7, 0x27, 0, 0, 0x03, 0xE8, 0x22, 0, 3, 0x17, 0, 0x19, 1};
	uint8_t pkt[64];
	conn_handle_packet(c, pkt, connect5_packet(pkt, props, sizeof props));
	ck_assert_int_eq(c->state, CONN_ACTIVE);
	ck_assert_uint_eq(c->version, 5);
	ck_assert_uint_eq(c->v5.receive_max, 7);
	ck_assert_uint_eq(c->v5.max_packet, 1000);
	ck_assert_uint_eq(c->v5.topic_alias_max, 3);
	ck_assert(!c->v5.problem_info);
	ck_assert(c->v5.response_info);
	pump(&f);
	uint8_t buf[128];
	ssize_t n = peer_read(peer, buf, sizeof buf);
	ck_assert_int_ge(n, 6);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[2], 0); /* session present 0 */
	ck_assert_uint_eq(buf[3], 0); /* success */
	/* The first property is the Assigned Client Identifier: the session's id. */
	const char *id = roost_session_client_id(c->session);
	ck_assert_uint_eq(buf[5], ROOST_PROP_ASSIGNED_CLIENT_ID);
	ck_assert_uint_eq(buf[7], strlen(id));
	ck_assert_mem_eq(buf + 8, id, strlen(id));
	close(peer);
	teardown(&f);
}
END_TEST

/* A v5 client that may not have its will is refused with 0x87, not the
 * 3.1.1 0x05 [MQTT-3.1.2-8] (Request Problem Information 0: no Reason String). */
START_TEST(test_handlers_v5_will_refused_0x87)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	/* flags 06: will, Clean Start; no properties; id "w"; will props empty,
	 * topic "$w", payload "x". */
	static const uint8_t pkt[] = {0x10, 24, 0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 60, 2, 0x17, 0,
	                              0, 1, 'w', 0, 0, 2, '$', 'w', 0, 1, 'x'};
	ck_assert_uint_eq(sizeof pkt, 2 + 24);
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(&f);
	static const uint8_t want[] = {0x20, 3, 0, 0x87, 0};
	expect_read(peer, want, sizeof want);
	ck_assert_int_eq(peer_read(peer, (uint8_t[4]){0}, 4), -1); /* closed */
	close(peer);
	teardown(&f);
}
END_TEST

/* Connect a v5 client "id" (2 bytes) with Clean Start and keep alive ka;
 * its CONNACK is read and checked for success. */
static roost_conn *connected5(fixture *f, const char *id, uint16_t ka, int *peer)
{
	roost_conn *c = connect_pair(f, peer);
	const uint8_t pkt[] = {0x10, 15, 0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x02, (uint8_t)(ka >> 8), (uint8_t)ka,
	                       0, 0, 2, (uint8_t)id[0], (uint8_t)id[1]};
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(f);
	uint8_t buf[64];
	ck_assert_int_gt(peer_read(*peer, buf, sizeof buf), 4);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], 0x00);
	return c;
}

/* The next packet the peer reads is DISCONNECT with this reason code and a
 * Reason String (the peer then sees the close). */
static void expect_disconnect5(int peer, uint8_t code)
{
	uint8_t buf[512];
	ssize_t n = peer_read(peer, buf, sizeof buf);
	ck_assert_int_ge(n, 5);
	ck_assert_uint_eq(buf[0], 0xE0);
	ck_assert_uint_eq(buf[1], (size_t)n - 2);
	ck_assert_uint_eq(buf[2], code);
	ck_assert_uint_eq(buf[4], ROOST_PROP_REASON_STRING);
	ck_assert_int_eq(peer_read(peer, buf, sizeof buf), -1);
}

/* [MQTT-3.1.2-24] keep alive expiry on the fake clock: DISCONNECT 0x8D. */
START_TEST(test_handlers_v5_keepalive_timeout_disconnect_0x8d)
{
	fixture f;
	setup_fake_clock(&f);
	int peer;
	roost_conn *c = connected5(&f, "ka", 10, &peer);
	f.now += 14000; /* under 1.5 x 10 s: the timer finds time left */
	event_active(c->timer, EV_TIMEOUT, 0);
	pump(&f);
	ck_assert_int_eq(c->state, CONN_ACTIVE);
	f.now += 1000;
	event_active(c->timer, EV_TIMEOUT, 0);
	pump(&f);
	expect_disconnect5(peer, ROOST_RC5_KEEPALIVE_TIMEOUT);
	close(peer);
	teardown(&f);
}
END_TEST

/* [MQTT-3.1.4-3] a second connection with the id takes the session over:
 * the first gets DISCONNECT 0x8E. */
START_TEST(test_handlers_v5_session_taken_over_0x8e)
{
	fixture f;
	setup(&f);
	int p1, p2;
	connected5(&f, "to", 60, &p1);
	connected5(&f, "to", 60, &p2);
	expect_disconnect5(p1, ROOST_RC5_SESSION_TAKEN_OVER);
	close(p1);
	close(p2);
	teardown(&f);
}
END_TEST

/* [MQTT-3.1.0-2] a second CONNECT is a protocol error: DISCONNECT 0x82;
 * a 3.1.1 client is just closed, as before. */
START_TEST(test_handlers_v5_second_connect_0x82_MQTT_3_1_0_2)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connected5(&f, "sc", 60, &peer);
	const uint8_t pkt[] = {0x10, 15, 0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 2, 's', 'c'};
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(&f);
	expect_disconnect5(peer, ROOST_RC5_PROTOCOL_ERROR);
	close(peer);
	c = connected(&f, "s3", true, &peer);
	uint8_t pkt3[16];
	connect_packet(pkt3, "s3", true);
	conn_handle_packet(c, pkt3, sizeof pkt3);
	pump(&f);
	ck_assert_int_eq(peer_read(peer, pkt3, sizeof pkt3), -1); /* closed, nothing sent */
	close(peer);
	teardown(&f);
}
END_TEST

/* 0x98: the administrator's disconnect (HTTP API, status page). */
START_TEST(test_handlers_v5_admin_disconnect_0x98)
{
	fixture f;
	setup(&f);
	int peer;
	connected5(&f, "ad", 60, &peer);
	ck_assert_int_eq(roost_broker_client_disconnect(f.b, "nobody"), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_broker_client_disconnect(f.b, "ad"), ROOST_OK);
	pump(&f);
	expect_disconnect5(peer, ROOST_RC5_ADMIN_ACTION);
	close(peer);
	teardown(&f);
}
END_TEST

/* ---- Session Expiry Interval on the fake clock ---- */

static void count_session(void *ctx, const char *client_id)
{
	(void)client_id;
	(*(int *)ctx)++;
}

/* Sessions in the durable store, after the pending commit. */
static int stored_sessions(fixture *f)
{
	pump(f);
	int n = 0;
	roost_persist_visitor v = {.session = count_session};
	ck_assert_int_eq(roost_persist_load(f->b->store, &v, &n), ROOST_OK);
	return n;
}

/* CONNECT v5 "id" (2 bytes), Clean Start as given, Session Expiry Interval
 * secs; CONNACK read. */
static roost_conn *connected5_expiry(fixture *f, const char *id, bool clean, uint32_t secs, int *peer)
{
	roost_conn *c = connect_pair(f, peer);
	const uint8_t pkt[] = {0x10, 20, 0x00, 0x04, 'M', 'Q', 'T', 'T', 5, clean ? 0x02 : 0x00, 0, 60, 5, 0x11,
	                       (uint8_t)(secs >> 24), (uint8_t)(secs >> 16), (uint8_t)(secs >> 8), (uint8_t)secs, 0, 2,
	                       (uint8_t)id[0], (uint8_t)id[1]};
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(f);
	uint8_t buf[64];
	ck_assert_int_gt(peer_read(*peer, buf, sizeof buf), 4);
	ck_assert_uint_eq(buf[3], 0x00);
	return c;
}

static void fire_expiry(fixture *f)
{
	if (f->b->expiry_ev)
		event_active(f->b->expiry_ev, EV_TIMEOUT, 0);
	pump(f);
}

static bool expiry_armed(fixture *f)
{
	return f->b->expiry_ev && event_pending(f->b->expiry_ev, EV_TIMEOUT, NULL);
}

/* [MQTT-3.1.2-5] N seconds after the disconnect the session is gone, from
 * memory and from the store; not a millisecond before. */
START_TEST(test_session_expiry_n_seconds_MQTT_3_1_2_5)
{
	fixture f;
	setup_fake_clock(&f);
	int peer;
	roost_conn *c = connected5_expiry(&f, "e1", false, 10, &peer);
	ck_assert(!expiry_armed(&f)); /* online: no countdown */
	conn_handle_packet(c, disconnect, sizeof disconnect);
	close(peer);
	ck_assert(expiry_armed(&f));
	ck_assert_int_eq(stored_sessions(&f), 1);
	f.now += 9999;
	fire_expiry(&f);
	ck_assert_ptr_nonnull(broker_session_find(f.b, "e1", 2));
	f.now += 1;
	fire_expiry(&f);
	ck_assert_ptr_null(broker_session_find(f.b, "e1", 2));
	ck_assert_int_eq(stored_sessions(&f), 0);
	ck_assert(!expiry_armed(&f)); /* nothing due: no timer */
	teardown(&f);
}
END_TEST

/* 0 ends with the connection [MQTT-3.1.2-5]; 0xFFFFFFFF never ends, and no
 * timer is armed for it. */
START_TEST(test_session_expiry_zero_and_never)
{
	fixture f;
	setup_fake_clock(&f);
	int p1, p2;
	roost_conn *c = connected5_expiry(&f, "z0", false, 0, &p1);
	conn_handle_packet(c, disconnect, sizeof disconnect);
	ck_assert_ptr_null(broker_session_find(f.b, "z0", 2));
	c = connected5_expiry(&f, "nv", false, 0xFFFFFFFFu, &p2);
	conn_handle_packet(c, disconnect, sizeof disconnect);
	ck_assert_ptr_nonnull(broker_session_find(f.b, "nv", 2));
	ck_assert(!expiry_armed(&f));
	f.now += 1000ull * 0xFFFFFFFEu;
	fire_expiry(&f);
	ck_assert_ptr_nonnull(broker_session_find(f.b, "nv", 2));
	close(p1);
	close(p2);
	teardown(&f);
}
END_TEST

/* One timer for the earliest deadline: re-armed only when the earliest
 * changes; a reconnect cancels the countdown [MQTT-3.1.2-4]. */
START_TEST(test_session_expiry_one_timer_for_the_earliest)
{
	fixture f;
	setup_fake_clock(&f);
	int p[4];
	const char *ids[] = {"t1", "t2", "t3"};
	const uint32_t secs[] = {30, 10, 20};
	for (int i = 0; i < 3; i++) {
		roost_conn *c = connected5_expiry(&f, ids[i], false, secs[i], &p[i]);
		conn_handle_packet(c, disconnect, sizeof disconnect);
		close(p[i]);
	}
	/* armed for t1 (30 s), then t2 (10 s) came earlier; t3 (20 s) did not move it */
	ck_assert_uint_eq(f.b->expiry_rearms, 2);
	ck_assert_uint_eq(f.b->expiry_armed_ms, 1000 + 10000);
	/* t2 comes back: the earliest is now t3 */
	roost_conn *c = connected5_expiry(&f, "t2", false, 10, &p[3]);
	ck_assert_uint_eq(f.b->expiry_armed_ms, 1000 + 20000);
	f.now += 20000;
	fire_expiry(&f);
	ck_assert_ptr_null(broker_session_find(f.b, "t3", 2));
	ck_assert_ptr_nonnull(broker_session_find(f.b, "t1", 2));
	ck_assert_ptr_nonnull(broker_session_find(f.b, "t2", 2));
	f.now += 10000;
	fire_expiry(&f);
	ck_assert_ptr_null(broker_session_find(f.b, "t1", 2));
	ck_assert_ptr_eq(c->session, broker_session_find(f.b, "t2", 2)); /* online: never expires */
	ck_assert(!expiry_armed(&f));
	close(p[3]);
	teardown(&f);
}
END_TEST

/* [MQTT-3.14.2-2] DISCONNECT may change the interval, but not from 0. */
START_TEST(test_session_expiry_changed_on_disconnect_MQTT_3_14_2_2)
{
	fixture f;
	setup_fake_clock(&f);
	int p1, p2;
	/* 60 s at CONNECT, 5 s at DISCONNECT */
	roost_conn *c = connected5_expiry(&f, "d1", false, 60, &p1);
	const uint8_t disc5[] = {0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 5};
	conn_handle_packet(c, disc5, sizeof disc5);
	close(p1);
	ck_assert_uint_eq(f.b->expiry_armed_ms, 1000 + 5000);
	/* 0 at CONNECT, 5 at DISCONNECT: protocol error, DISCONNECT 0x82 */
	c = connected5_expiry(&f, "d2", true, 0, &p2);
	conn_handle_packet(c, disc5, sizeof disc5);
	pump(&f);
	expect_disconnect5(p2, ROOST_RC5_PROTOCOL_ERROR);
	ck_assert_ptr_null(broker_session_find(f.b, "d2", 2));
	close(p2);
	teardown(&f);
}
END_TEST

/* limits.persistent_session_expiry: the same mechanism for 3.1.1. */
START_TEST(test_session_expiry_v311_persistent_session_expiry)
{
	fixture f;
	setup_fake_clock(&f);
	f.cfg->limits.persistent_session_expiry = 60;
	int peer;
	roost_conn *c = connected(&f, "p3", false, &peer);
	conn_handle_packet(c, disconnect, sizeof disconnect);
	close(peer);
	ck_assert_uint_eq(f.b->expiry_armed_ms, 1000 + 60000);
	f.now += 60000;
	fire_expiry(&f);
	ck_assert_ptr_null(broker_session_find(f.b, "p3", 2));
	ck_assert_int_eq(stored_sessions(&f), 0);
	teardown(&f);
}
END_TEST

/* ---- Will Delay Interval [MQTT-3.1.3-9] ---- */

/* CONNECT v5 "id", Clean Start 0, Session Expiry secs, a will on "a/b"
 * ("w", QoS 0) with Will Delay Interval delay; CONNACK read. */
static roost_conn *connected5_will(fixture *f, const char *id, uint32_t secs, uint32_t delay, int *peer)
{
	roost_conn *c = connect_pair(f, peer);
	const uint8_t pkt[] = {0x10, 34, 0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x04, 0, 60,
	                       5, 0x11, (uint8_t)(secs >> 24), (uint8_t)(secs >> 16), (uint8_t)(secs >> 8), (uint8_t)secs,
	                       0, 2, (uint8_t)id[0], (uint8_t)id[1],
	                       5, 0x18, (uint8_t)(delay >> 24), (uint8_t)(delay >> 16), (uint8_t)(delay >> 8), (uint8_t)delay,
	                       0, 3, 'a', '/', 'b', 0, 1, 'w'};
	ck_assert_uint_eq(sizeof pkt, 36);
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(f);
	uint8_t buf[64];
	ck_assert_int_gt(peer_read(*peer, buf, sizeof buf), 4);
	ck_assert_uint_eq(buf[3], 0x00);
	return c;
}

static const uint8_t will_publish[] = {0x30, 6, 0, 3, 'a', '/', 'b', 'w'};

/* A 3.1.1 subscriber to a/b; returns its peer. */
static int will_watcher(fixture *f)
{
	int peer;
	roost_conn *c = connected(f, "ww", true, &peer);
	conn_handle_packet(c, subscribe_q1, sizeof subscribe_q1);
	pump(f);
	expect_read(peer, suback_q1, sizeof suback_q1);
	return peer;
}

static bool nothing_to_read(int fd)
{
	uint8_t buf[8];
	return peer_read(fd, buf, sizeof buf) == 0;
}

/* The will waits for its delay after a close without DISCONNECT. */
START_TEST(test_will_delay_interval_MQTT_3_1_3_9)
{
	fixture f;
	setup_fake_clock(&f);
	int w = will_watcher(&f);
	int peer;
	connected5_will(&f, "wd", 60, 5, &peer);
	close(peer); /* the network connection goes: no DISCONNECT */
	pump(&f);
	ck_assert(nothing_to_read(w));
	f.now += 4999;
	fire_expiry(&f);
	ck_assert(nothing_to_read(w));
	f.now += 1;
	fire_expiry(&f);
	expect_read(w, will_publish, sizeof will_publish);
	ck_assert_ptr_nonnull(broker_session_find(f.b, "wd", 2)); /* the session lives on */
	close(w);
	teardown(&f);
}
END_TEST

/* A reconnect before the delay: the will is not published. */
START_TEST(test_will_delay_reconnect_cancels_MQTT_3_1_3_9)
{
	fixture f;
	setup_fake_clock(&f);
	int w = will_watcher(&f);
	int p1, p2;
	connected5_will(&f, "wr", 60, 5, &p1);
	close(p1);
	pump(&f);
	f.now += 2000;
	connected5_expiry(&f, "wr", false, 60, &p2);
	f.now += 10000;
	fire_expiry(&f);
	ck_assert(nothing_to_read(w));
	close(p2);
	close(w);
	teardown(&f);
}
END_TEST

/* The session ends first (2 s < 10 s): the will goes at its end. */
START_TEST(test_will_at_session_end_if_first_MQTT_3_1_3_9)
{
	fixture f;
	setup_fake_clock(&f);
	int w = will_watcher(&f);
	int peer;
	connected5_will(&f, "we", 2, 10, &peer);
	close(peer);
	pump(&f);
	f.now += 2000;
	fire_expiry(&f);
	expect_read(w, will_publish, sizeof will_publish);
	ck_assert_ptr_null(broker_session_find(f.b, "we", 2));
	close(w);
	teardown(&f);
}
END_TEST

/* DISCONNECT 0x04 publishes the will; 0x00 does not [MQTT-3.14.4-3]. */
START_TEST(test_disconnect_with_will_message_0x04)
{
	fixture f;
	setup_fake_clock(&f);
	int w = will_watcher(&f);
	int p1, p2;
	roost_conn *c = connected5_will(&f, "d4", 0, 0, &p1);
	const uint8_t disc4[] = {0xE0, 1, 0x04};
	conn_handle_packet(c, disc4, sizeof disc4);
	pump(&f);
	expect_read(w, will_publish, sizeof will_publish);
	c = connected5_will(&f, "d0", 0, 0, &p2);
	const uint8_t disc0[] = {0xE0, 1, 0x00};
	conn_handle_packet(c, disc0, sizeof disc0);
	pump(&f);
	ck_assert(nothing_to_read(w));
	close(p1);
	close(p2);
	close(w);
	teardown(&f);
}
END_TEST

/* ---- MQTT 5 enhanced authentication (4.12) with a toy hook ---- */

/* Challenge/response: the client says "hello", is challenged with
 * "challenge", must answer "response" and is welcomed with "welcome". */
static int toy_frees;

static int toy_step(void *ctx, void **state, const char *client_id, const uint8_t *data, size_t len, uint8_t *out,
                    size_t out_cap, size_t *out_len)
{
	(void)ctx;
	(void)client_id;
	int *step = *state;
	if (!step) {
		if (len != 5 || memcmp(data, "hello", 5) != 0)
			return ROOST_AUTH_STEP_FAIL;
		*state = step = roost_calloc(1, sizeof *step);
		ck_assert(out_cap >= 9);
		memcpy(out, "challenge", 9);
		*out_len = 9;
		return ROOST_AUTH_STEP_CONTINUE;
	}
	if (len != 8 || memcmp(data, "response", 8) != 0)
		return ROOST_AUTH_STEP_FAIL;
	memcpy(out, "welcome", 7);
	*out_len = 7;
	return ROOST_AUTH_STEP_SUCCESS;
}

static void toy_free(void *ctx, void *state)
{
	(void)ctx;
	toy_frees++;
	roost_free(state);
}

static const roost_auth_hook toy_hook = {.auth_method = "toy", .auth_step = toy_step, .auth_free = toy_free};

static const uint8_t toy_connect[] = {0x10, 29, 0x00, 0x04, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 14,
                                      0x15, 0, 3, 't', 'o', 'y', 0x16, 0, 5, 'h', 'e', 'l', 'l', 'o',
                                      0, 2, 'a', 'u'};
static const uint8_t toy_challenge[] = {0xF0, 20, 0x18, 18, 0x15, 0, 3, 't', 'o', 'y', 0x16, 0, 9,
                                        'c', 'h', 'a', 'l', 'l', 'e', 'n', 'g', 'e'};

static void toy_auth(uint8_t out[21], uint8_t reason, const char answer[8])
{
	const uint8_t head[] = {0xF0, 19, reason, 17, 0x15, 0, 3, 't', 'o', 'y', 0x16, 0, 8};
	memcpy(out, head, sizeof head);
	memcpy(out + sizeof head, answer, 8);
}

/* A broker with the toy hook and a client it has just challenged. */
static roost_conn *toy_challenged(fixture *f, int *peer)
{
	setup(f);
	toy_frees = 0;
	ck_assert_int_eq(roost_broker_auth_hook_add(f->b, &toy_hook), ROOST_OK);
	roost_conn *c = connect_pair(f, peer);
	conn_handle_packet(c, toy_connect, sizeof toy_connect);
	pump(f);
	expect_read(*peer, toy_challenge, sizeof toy_challenge);
	return c;
}

/* [MQTT-4.12.0-2] CONNECT with a method -> AUTH 0x18 -> AUTH 0x18 -> CONNACK
 * with the method and the hook's last data. */
START_TEST(test_enhanced_auth_challenge_response_MQTT_4_12_0_2)
{
	fixture f;
	int peer;
	roost_conn *c = toy_challenged(&f, &peer);
	ck_assert_int_eq(c->state, CONN_AUTH_EXCHANGE);
	/* [MQTT-4.12.0-4] anything but AUTH now closes */
	uint8_t pkt[21];
	toy_auth(pkt, 0x18, "response");
	conn_handle_packet(c, pkt, sizeof pkt);
	ck_assert_int_eq(c->state, CONN_ACTIVE);
	ck_assert_int_eq(toy_frees, 1);
	pump(&f);
	uint8_t buf[128];
	ssize_t n = peer_read(peer, buf, sizeof buf);
	ck_assert_int_gt(n, 20);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], 0x00);
	ck_assert_mem_eq(buf + n - 16, "\x15\x00\x03toy\x16\x00\x07welcome", 16);
	/* Re-authentication: AUTH 0x19 "hello", challenged, AUTH 0x18, AUTH 0x00. */
	const uint8_t reauth[] = {0xF0, 16, 0x19, 14, 0x15, 0, 3, 't', 'o', 'y', 0x16, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	conn_handle_packet(c, reauth, sizeof reauth);
	pump(&f);
	expect_read(peer, toy_challenge, sizeof toy_challenge);
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(&f);
	const uint8_t success[] = {0xF0, 18, 0x00, 16, 0x15, 0, 3, 't', 'o', 'y', 0x16, 0, 7,
	                           'w', 'e', 'l', 'c', 'o', 'm', 'e'};
	expect_read(peer, success, sizeof success);
	ck_assert_int_eq(toy_frees, 2);
	close(peer);
	roost_broker_auth_hook_remove(f.b, &toy_hook);
	teardown(&f);
}
END_TEST

/* A wrong response: CONNACK 0x87 and the close; a wrong re-authentication:
 * DISCONNECT 0x87. */
START_TEST(test_enhanced_auth_failure_0x87)
{
	fixture f;
	int peer;
	roost_conn *c = toy_challenged(&f, &peer);
	uint8_t pkt[21];
	toy_auth(pkt, 0x18, "wrong!!!");
	conn_handle_packet(c, pkt, sizeof pkt);
	pump(&f);
	uint8_t buf[128];
	ck_assert_int_ge(peer_read(peer, buf, sizeof buf), 4);
	ck_assert_uint_eq(buf[0], 0x20);
	ck_assert_uint_eq(buf[3], 0x87);
	ck_assert_int_eq(peer_read(peer, buf, sizeof buf), -1);
	ck_assert_int_eq(toy_frees, 1);
	close(peer);
	roost_broker_auth_hook_remove(f.b, &toy_hook);
	teardown(&f);
}
END_TEST

/* [MQTT-4.12.0-1] no hook for the method: CONNACK 0x8C. */
START_TEST(test_enhanced_auth_unknown_method_0x8c_MQTT_4_12_0_1)
{
	fixture f;
	setup(&f);
	int peer;
	roost_conn *c = connect_pair(&f, &peer);
	conn_handle_packet(c, toy_connect, sizeof toy_connect);
	pump(&f);
	uint8_t buf[128];
	ck_assert_int_ge(peer_read(peer, buf, sizeof buf), 4);
	ck_assert_uint_eq(buf[3], 0x8C);
	close(peer);
	teardown(&f);
}
END_TEST

Suite *handlers_suite(void);
Suite *handlers_suite(void)
{
	Suite *s = suite_create("handlers");
	TCase *tc = tcase_create("valid");
	tcase_add_test(tc, test_handlers_connect_connack_MQTT_3_2_0_1);
	tcase_add_test(tc, test_handlers_publish_qos1_puback_MQTT_4_3_2_2);
	tcase_add_test(tc, test_handlers_first_packet_not_connect_MQTT_3_1_0_1);
	tcase_add_test(tc, test_handlers_long_client_id_keeps_the_close_reason_in_the_line);
	suite_add_tcase(s, tc);
	tc = tcase_create("v5");
	tcase_add_test(tc, test_handlers_v5_assigned_client_id_MQTT_3_2_2_16);
	tcase_add_test(tc, test_handlers_v5_will_refused_0x87);
	tcase_add_test(tc, test_handlers_v5_keepalive_timeout_disconnect_0x8d);
	tcase_add_test(tc, test_handlers_v5_session_taken_over_0x8e);
	tcase_add_test(tc, test_handlers_v5_second_connect_0x82_MQTT_3_1_0_2);
	tcase_add_test(tc, test_handlers_v5_admin_disconnect_0x98);
	suite_add_tcase(s, tc);
	tc = tcase_create("expiry");
	tcase_add_test(tc, test_session_expiry_n_seconds_MQTT_3_1_2_5);
	tcase_add_test(tc, test_session_expiry_zero_and_never);
	tcase_add_test(tc, test_session_expiry_one_timer_for_the_earliest);
	tcase_add_test(tc, test_session_expiry_changed_on_disconnect_MQTT_3_14_2_2);
	tcase_add_test(tc, test_session_expiry_v311_persistent_session_expiry);
	tcase_add_test(tc, test_will_delay_interval_MQTT_3_1_3_9);
	tcase_add_test(tc, test_will_delay_reconnect_cancels_MQTT_3_1_3_9);
	tcase_add_test(tc, test_will_at_session_end_if_first_MQTT_3_1_3_9);
	tcase_add_test(tc, test_disconnect_with_will_message_0x04);
	suite_add_tcase(s, tc);
	tc = tcase_create("auth");
	tcase_add_test(tc, test_enhanced_auth_challenge_response_MQTT_4_12_0_2);
	tcase_add_test(tc, test_enhanced_auth_failure_0x87);
	tcase_add_test(tc, test_enhanced_auth_unknown_method_0x8c_MQTT_4_12_0_1);
	suite_add_tcase(s, tc);
	tc = tcase_create("hold");
	tcase_add_test(tc, test_handlers_persistent_connack_waits_for_the_commit);
	tcase_add_test(tc, test_handlers_puback_held_until_commit_in_order);
	tcase_add_test(tc, test_handlers_commit_failure_closes_unacknowledged);
	tcase_add_test(tc, test_handlers_hold_released_to_several_connections);
	tcase_add_test(tc, test_handlers_hold_always_gets_a_commit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(handlers_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

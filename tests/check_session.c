/* check_session.c — session state: queue, inflight window, acks, QoS 2 ids,
 * subscriptions and keepalive arithmetic on a fake clock. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/clock.h"
#include "roost/codec.h"
#include "roost/session.h"

static roost_msg *msg(const char *payload)
{
	return roost_msg_new("t", 1, (const uint8_t *)payload, strlen(payload), 2, false);
}

static const roost_session_limits lim2 = {.max_inflight = 2, .max_queued = 0, .max_queued_bytes = 0};

START_TEST(test_session_identity)
{
	roost_session *s = roost_session_new("dev-1xyz", 5, false);
	ck_assert_str_eq(roost_session_client_id(s), "dev-1");
	ck_assert(!roost_session_clean(s));
	ck_assert_ptr_null(roost_session_conn(s));
	int token;
	roost_session_set_conn(s, &token);
	ck_assert_ptr_eq(roost_session_conn(s), &token);
	roost_session_free(s);
}
END_TEST

START_TEST(test_session_subscriptions_replace_and_remove)
{
	roost_session *s = roost_session_new("c", 1, false);
	bool existed = true;
	ck_assert_int_eq(roost_session_sub_add(s, "a/#", 3, 1, &existed), ROOST_OK);
	ck_assert(!existed);
	/* [MQTT-3.8.4-3] the same filter again replaces it. */
	ck_assert_int_eq(roost_session_sub_add(s, "a/#", 3, 2, &existed), ROOST_OK);
	ck_assert(existed);
	ck_assert_uint_eq(roost_session_sub_count(s), 1);
	ck_assert(roost_session_sub_has(s, "a/#", 3));
	ck_assert(!roost_session_sub_has(s, "a/+", 3));
	ck_assert_int_eq(roost_session_sub_remove(s, "a/+", 3), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_session_sub_remove(s, "a/#", 3), ROOST_OK);
	ck_assert_uint_eq(roost_session_sub_count(s), 0);
	roost_session_free(s);
}
END_TEST

/* The queue keeps arrival order across QoS levels and the window holds only
 * max_inflight QoS>0 messages. */
START_TEST(test_session_queue_order_and_window)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_msg *m[5];
	const uint8_t qos[5] = {1, 0, 2, 1, 0};
	for (int i = 0; i < 5; i++) {
		char p[2] = {(char)('0' + i), 0};
		m[i] = msg(p);
		roost_enqueue_result r;
		ck_assert_int_eq(roost_session_enqueue(s, m[i], qos[i], &lim2, &r), ROOST_OK);
		ck_assert_int_eq(r, ROOST_ENQUEUED);
	}
	ck_assert_uint_eq(roost_session_queue_len(s), 5);
	ck_assert(!roost_session_can_send_now(s, 0, &lim2)); /* queue not empty */
	roost_msg *out;
	uint8_t q;
	uint16_t pid;
	/* 1 (QoS1), 0 (QoS0), 2 (QoS2) go out; then window is full at 2. */
	ck_assert(roost_session_dequeue(s, &lim2, &out, &q, &pid));
	ck_assert_ptr_eq(out, m[0]);
	ck_assert_uint_eq(q, 1);
	ck_assert_uint_eq(pid, 1);
	roost_msg_unref(out);
	ck_assert(roost_session_dequeue(s, &lim2, &out, &q, &pid));
	ck_assert_ptr_eq(out, m[1]);
	ck_assert_uint_eq(pid, 0);
	roost_msg_unref(out);
	ck_assert(roost_session_dequeue(s, &lim2, &out, &q, &pid));
	ck_assert_ptr_eq(out, m[2]);
	ck_assert_uint_eq(pid, 2);
	roost_msg_unref(out);
	ck_assert_uint_eq(roost_session_inflight_len(s), 2);
	/* Window full: the QoS 1 at the head waits, and the QoS 0 behind it
	 * waits too, so order is kept. */
	ck_assert(!roost_session_dequeue(s, &lim2, &out, &q, &pid));
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBACK, 1), ROOST_OK);
	ck_assert(roost_session_dequeue(s, &lim2, &out, &q, &pid));
	ck_assert_ptr_eq(out, m[3]);
	ck_assert_uint_eq(pid, 3);
	roost_msg_unref(out);
	ck_assert(roost_session_dequeue(s, &lim2, &out, &q, &pid));
	ck_assert_ptr_eq(out, m[4]);
	roost_msg_unref(out);
	ck_assert_uint_eq(roost_session_queue_len(s), 0);
	ck_assert_uint_eq(roost_session_queue_bytes(s), 0);
	for (int i = 0; i < 5; i++)
		roost_msg_unref(m[i]);
	roost_session_free(s); /* releases the inflight references */
}
END_TEST

START_TEST(test_MQTT_4_3_3_qos2_outbound_states)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_msg *m = msg("x");
	uint16_t pid;
	ck_assert(roost_session_can_send_now(s, 2, &lim2));
	ck_assert_int_eq(roost_session_inflight_add(s, m, 2, &pid), ROOST_OK);
	ck_assert_int_eq(m->refs, 2);
	/* PUBCOMP before PUBREC is not accepted. */
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBCOMP, pid), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBREC, pid), ROOST_OK);
	/* [MQTT-4.3.3-1] after PUBREC only the packet id is kept. */
	ck_assert_int_eq(m->refs, 1);
	ck_assert_uint_eq(roost_session_inflight_len(s), 1);
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBREC, pid), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBCOMP, pid), ROOST_OK);
	ck_assert_uint_eq(roost_session_inflight_len(s), 0);
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBACK, pid), ROOST_ERR_NOT_FOUND);
	roost_msg_unref(m);
	roost_session_free(s);
}
END_TEST

/* [MQTT-2.3.1-2] packet ids are non-zero and never reuse one still inflight. */
START_TEST(test_MQTT_2_3_1_2_packet_ids_unique_and_nonzero)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_msg *m = msg("x");
	uint16_t first, pid;
	ck_assert_int_eq(roost_session_inflight_add(s, m, 1, &first), ROOST_OK);
	/* Cycle through the whole id space with one id held. */
	for (unsigned i = 0; i < 70000; i++) {
		ck_assert_int_eq(roost_session_inflight_add(s, m, 1, &pid), ROOST_OK);
		ck_assert_uint_ne(pid, 0);
		ck_assert_uint_ne(pid, first);
		ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBACK, pid), ROOST_OK);
	}
	roost_msg_unref(m);
	roost_session_free(s);
}
END_TEST

START_TEST(test_session_queue_limits_drop_and_count)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_session_limits lim = {.max_inflight = 1, .max_queued = 3};
	roost_msg *m = msg("x");
	roost_enqueue_result r;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(roost_session_enqueue(s, m, 1, &lim, &r), ROOST_OK);
		ck_assert_int_eq(r, ROOST_ENQUEUED);
	}
	ck_assert_int_eq(roost_session_enqueue(s, m, 0, &lim, &r), ROOST_OK);
	ck_assert_int_eq(r, ROOST_DROPPED_FULL);
	ck_assert_int_eq(roost_session_enqueue(s, m, 2, &lim, &r), ROOST_OK);
	ck_assert_int_eq(r, ROOST_DROPPED_FULL);
	ck_assert_uint_eq(roost_session_stats_get(s)->dropped_qos0, 1);
	ck_assert_uint_eq(roost_session_stats_get(s)->dropped_qos12, 1);
	ck_assert_int_eq(m->refs, 4);
	/* Byte limit. */
	roost_session_limits blim = {.max_inflight = 1, .max_queued_bytes = roost_msg_size(m) * 2};
	roost_session *s2 = roost_session_new("d", 1, false);
	ck_assert_int_eq(roost_session_enqueue(s2, m, 1, &blim, &r), ROOST_OK);
	ck_assert_int_eq(roost_session_enqueue(s2, m, 1, &blim, &r), ROOST_OK);
	ck_assert_int_eq(r, ROOST_ENQUEUED);
	ck_assert_int_eq(roost_session_enqueue(s2, m, 1, &blim, &r), ROOST_OK);
	ck_assert_int_eq(r, ROOST_DROPPED_FULL);
	ck_assert_uint_eq(roost_session_queue_bytes(s2), roost_msg_size(m) * 2);
	roost_session_free(s2);
	roost_session_free(s);
	ck_assert_int_eq(m->refs, 1);
	roost_msg_unref(m);
}
END_TEST

/* The queue grows past its initial ring size and wraps correctly. */
START_TEST(test_session_queue_ring_wraps)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_session_limits lim = {.max_inflight = 1000};
	roost_msg *m[100];
	roost_enqueue_result r;
	int next_out = 0;
	for (int i = 0; i < 100; i++) {
		char p[8];
		snprintf(p, sizeof p, "%d", i);
		m[i] = msg(p);
		ck_assert_int_eq(roost_session_enqueue(s, m[i], 0, &lim, &r), ROOST_OK);
		if (i % 3 == 0) { /* interleave dequeues so the ring wraps */
			roost_msg *o;
			uint8_t q;
			uint16_t pid;
			ck_assert(roost_session_dequeue(s, &lim, &o, &q, &pid));
			ck_assert_ptr_eq(o, m[next_out++]);
			roost_msg_unref(o);
		}
	}
	roost_msg *o;
	uint8_t q;
	uint16_t pid;
	while (roost_session_dequeue(s, &lim, &o, &q, &pid)) {
		ck_assert_ptr_eq(o, m[next_out++]);
		roost_msg_unref(o);
	}
	ck_assert_int_eq(next_out, 100);
	for (int i = 0; i < 100; i++)
		roost_msg_unref(m[i]);
	roost_session_free(s);
}
END_TEST

START_TEST(test_MQTT_3_3_1_6_retain_flag_travels_with_delivery)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_msg *m = msg("x");
	roost_enqueue_result r;
	ck_assert_int_eq(roost_session_enqueue(s, m, 1 | ROOST_DELIVER_RETAIN, &lim2, &r), ROOST_OK);
	roost_msg *o;
	uint8_t q;
	uint16_t pid;
	ck_assert(roost_session_dequeue(s, &lim2, &o, &q, &pid));
	ck_assert_uint_eq(q & ROOST_DELIVER_QOS_MASK, 1);
	ck_assert(q & ROOST_DELIVER_RETAIN);
	roost_msg_unref(o);
	roost_msg_unref(m);
	roost_session_free(s);
}
END_TEST

static void count_visit(void *ctx, roost_inflight *slot)
{
	int *n = ctx;
	ck_assert_uint_eq(slot->packet_id, (unsigned)(*n + 1));
	(*n)++;
}

START_TEST(test_MQTT_4_4_0_1_inflight_kept_for_resend)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_msg *m = msg("x");
	uint16_t pid;
	roost_session_inflight_add(s, m, 1, &pid);
	roost_session_inflight_add(s, m, 2, &pid);
	int n = 0;
	roost_session_inflight_foreach(s, count_visit, &n);
	ck_assert_int_eq(n, 2);
	roost_msg_unref(m);
	roost_session_free(s);
}
END_TEST

START_TEST(test_MQTT_4_3_3_2_inbound_qos2_ids)
{
	roost_session *s = roost_session_new("c", 1, false);
	bool dup;
	ck_assert_int_eq(roost_session_qos2_in_add(s, 7, &dup), ROOST_OK);
	ck_assert(!dup);
	ck_assert_int_eq(roost_session_qos2_in_add(s, 7, &dup), ROOST_OK);
	ck_assert(dup); /* a resent PUBLISH with the same id is not delivered again */
	for (uint16_t i = 100; i < 120; i++)
		ck_assert_int_eq(roost_session_qos2_in_add(s, i, &dup), ROOST_OK);
	ck_assert_uint_eq(roost_session_qos2_in_count(s), 21);
	ck_assert_int_eq(roost_session_qos2_in_release(s, 7), ROOST_OK);
	ck_assert_int_eq(roost_session_qos2_in_release(s, 7), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_session_qos2_in_add(s, 7, &dup), ROOST_OK);
	ck_assert(!dup);
	roost_session_free(s);
}
END_TEST

/* [MQTT-3.1.2-24] keepalive expiry at 1.5 x keepalive, on a fake clock. */
START_TEST(test_MQTT_3_1_2_24_keepalive_one_and_a_half)
{
	uint64_t now = 1000000;
	roost_clock clk = {roost_clock_fake_now, &now};
	uint64_t last = roost_clock_now(&clk);
	ck_assert_uint_eq(roost_keepalive_left_ms(last, roost_clock_now(&clk), 10), 15000);
	now += 10000; /* one keepalive period: still alive */
	ck_assert_uint_eq(roost_keepalive_left_ms(last, roost_clock_now(&clk), 10), 5000);
	now += 4999;
	ck_assert_uint_eq(roost_keepalive_left_ms(last, roost_clock_now(&clk), 10), 1);
	now += 1;
	ck_assert_uint_eq(roost_keepalive_left_ms(last, roost_clock_now(&clk), 10), 0);
	/* keepalive 0 disables it [MQTT-3.1.2-10]. */
	now += 1000000000;
	ck_assert_uint_eq(roost_keepalive_left_ms(last, roost_clock_now(&clk), 0), UINT64_MAX);
	/* A clock that reads earlier than last_rx counts as no idle time. */
	ck_assert_uint_eq(roost_keepalive_left_ms(now + 5, now, 1), 1500);
}
END_TEST

START_TEST(test_session_alloc_failures_leave_it_consistent)
{
	for (unsigned long n = 1; n < 40; n++) {
		roost_alloc_fail_after(n);
		roost_session *s = roost_session_new("c", 1, false);
		if (!s)
			continue;
		roost_msg *m = roost_msg_new("t", 1, (const uint8_t *)"x", 1, 1, false);
		roost_enqueue_result r;
		uint16_t pid;
		bool dup;
		if (m) {
			roost_session_enqueue(s, m, 1, &lim2, &r);
			roost_session_inflight_add(s, m, 1, &pid);
		}
		roost_session_sub_add(s, "a/b", 3, 1, NULL);
		roost_session_qos2_in_add(s, 1, &dup);
		roost_alloc_fail_after(0);
		roost_session_free(s);
		roost_msg_unref(m);
	}
	roost_alloc_fail_after(0);
}
END_TEST


/* The journal mirrors every durable change, in order, with stable seqs. */
typedef struct jlog {
	char buf[1024];
} jlog;

static void jl(jlog *j, const char *fmt, unsigned long long a, unsigned long long b, unsigned long long c)
{
	size_t n = strlen(j->buf);
	snprintf(j->buf + n, sizeof j->buf - n, fmt, a, b, c);
}

static void j_add(void *ctx, roost_session *s, uint64_t seq, roost_msg *msg, uint8_t qos, uint16_t pid,
                  uint8_t state)
{
	(void)s;
	msg->store_id = 100 + seq; /* what a store does: remember where it put the message */
	jl(ctx, "add%llu/%llu/%llu;", seq, qos, (unsigned long long)pid * 10 + state);
}

static void j_upd(void *ctx, roost_session *s, uint64_t seq, uint16_t pid, uint8_t state)
{
	(void)s;
	jl(ctx, "upd%llu/%llu/%llu;", seq, pid, state);
}

static void j_rm(void *ctx, roost_session *s, uint64_t seq, uint64_t store_id)
{
	(void)s;
	jl(ctx, "rm%llu/%llu%.0llu;", seq, store_id, 0);
}

static void j_sub(void *ctx, roost_session *s, const char *f, size_t len, uint8_t o, bool added)
{
	(void)s;
	(void)len;
	jl(ctx, "sub/%llu/%llu/%llu;", (unsigned long long)f[0], o, added);
}

static void j_q2(void *ctx, roost_session *s, uint16_t pid, bool added)
{
	(void)s;
	jl(ctx, "q2/%llu/%llu%.0llu;", pid, added, 0);
}

static const roost_session_journal journal = {j_add, j_upd, j_rm, j_sub, j_q2};

START_TEST(test_session_journal_mirrors_durable_changes)
{
	roost_session *s = roost_session_new("c", 1, false);
	jlog j = {""};
	roost_session_set_journal(s, &journal, &j);
	roost_session_limits lim = {.max_inflight = 1};
	roost_msg *m1 = msg("1"), *m2 = msg("2"), *m0 = msg("0");
	uint16_t pid;
	roost_enqueue_result r;
	roost_session_sub_add(s, "x", 1, 1, NULL);
	ck_assert_int_eq(roost_session_inflight_add(s, m1, 2, &pid), ROOST_OK); /* seq 1, pid 1 */
	ck_assert_int_eq(roost_session_enqueue(s, m0, 0, &lim, &r), ROOST_OK);  /* seq 2: QoS 0, silent */
	ck_assert_int_eq(roost_session_enqueue(s, m2, 1, &lim, &r), ROOST_OK);  /* seq 3 */
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBREC, 1), ROOST_OK);
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBCOMP, 1), ROOST_OK);
	roost_msg *o;
	uint8_t q;
	while (roost_session_dequeue(s, &lim, &o, &q, &pid))
		roost_msg_unref(o);
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBACK, 2), ROOST_OK);
	bool dup;
	roost_session_qos2_in_add(s, 9, &dup);
	roost_session_qos2_in_release(s, 9);
	roost_session_sub_remove(s, "x", 1);
	ck_assert_str_eq(j.buf, "sub/120/1/1;add1/2/12;add3/1/0;upd1/1/3;rm1/101;upd3/2/1;rm3/103;"
	                        "q2/9/1;q2/9/0;sub/120/0/0;");
	roost_msg_unref(m0);
	roost_msg_unref(m1);
	roost_msg_unref(m2);
	roost_session_free(s);
}
END_TEST

/* Restored deliveries keep their seqs, ids and states; new ones follow. */
START_TEST(test_session_restore_continues_seq_and_ids)
{
	roost_session *s = roost_session_new("c", 1, false);
	roost_msg *m = msg("x");
	ck_assert_int_eq(roost_session_restore(s, 5, m, 1, 40, ROOST_INFLIGHT_WAIT_PUBACK, 7), ROOST_OK);
	ck_assert_int_eq(roost_session_restore(s, 6, NULL, 2, 41, ROOST_INFLIGHT_WAIT_PUBCOMP, 8), ROOST_OK);
	ck_assert_int_eq(roost_session_restore(s, 9, m, 1, 0, 0, 7), ROOST_OK);
	ck_assert_int_eq(roost_session_restore_qos2(s, 3), ROOST_OK);
	ck_assert_uint_eq(roost_session_inflight_len(s), 2);
	ck_assert_uint_eq(roost_session_queue_len(s), 1);
	ck_assert_uint_eq(roost_session_qos2_in_count(s), 1);
	jlog j = {""};
	roost_session_set_journal(s, &journal, &j);
	roost_session_limits lim = {.max_inflight = 10};
	roost_msg *o;
	uint8_t q;
	uint16_t pid;
	ck_assert(roost_session_dequeue(s, &lim, &o, &q, &pid));
	roost_msg_unref(o);
	ck_assert_uint_eq(pid, 42); /* after the restored ids */
	roost_enqueue_result r;
	roost_session_enqueue(s, m, 1, &lim, &r);
	ck_assert_str_eq(j.buf, "upd9/42/1;add10/1/0;");
	ck_assert_int_eq(roost_session_ack(s, ROOST_MQTT_PUBCOMP, 41), ROOST_OK);
	ck_assert(strstr(j.buf, "rm6/8;") != NULL);
	roost_msg_unref(m);
	roost_session_free(s);
}
END_TEST

/* A session belongs to the user who created it; a restored one (owner
 * unknown) is claimed by the first. */
START_TEST(test_session_owner)
{
	roost_session *s = roost_session_new("c", 1, false);
	ck_assert(!roost_session_owner_known(s));
	ck_assert(roost_session_owned_by(s, "anyone"));
	ck_assert(roost_session_owned_by(s, NULL));
	ck_assert_int_eq(roost_session_set_username(s, "alice", 5), ROOST_OK);
	ck_assert(roost_session_owner_known(s));
	ck_assert(roost_session_owned_by(s, "alice"));
	ck_assert(!roost_session_owned_by(s, "alicex"));
	ck_assert(!roost_session_owned_by(s, "bob"));
	ck_assert(!roost_session_owned_by(s, NULL));
	ck_assert_int_eq(roost_session_set_username(s, NULL, 0), ROOST_OK); /* anonymous owner */
	ck_assert(roost_session_owned_by(s, NULL));
	ck_assert(!roost_session_owned_by(s, "alice"));
	roost_session_free(s);
}
END_TEST

/* A queued delivery the receiver may no longer read is dropped unsent:
 * released, removed from the journal (so from the store), counted. */
START_TEST(test_session_drop_head_releases_and_journals)
{
	roost_session *s = roost_session_new("c", 1, false);
	jlog j = {""};
	roost_session_set_journal(s, &journal, &j);
	roost_session_limits lim = {.max_inflight = 10};
	roost_msg *m1 = msg("1"), *m2 = msg("22");
	roost_enqueue_result r;
	roost_msg *o;
	uint8_t q;
	ck_assert(!roost_session_peek(s, &o, &q));
	roost_session_enqueue(s, m1, 1, &lim, &r); /* seq 1 */
	roost_session_enqueue(s, m2, 0, &lim, &r); /* seq 2, QoS 0: not journaled */
	ck_assert(roost_session_peek(s, &o, &q));
	ck_assert_ptr_eq(o, m1);
	ck_assert_uint_eq(q, 1);
	ck_assert_int_eq(m1->refs, 2); /* peek borrows */
	roost_session_drop_head(s);
	ck_assert_int_eq(m1->refs, 1);
	ck_assert(roost_session_peek(s, &o, &q));
	ck_assert_ptr_eq(o, m2);
	roost_session_drop_head(s);
	ck_assert_uint_eq(roost_session_queue_len(s), 0);
	ck_assert_uint_eq(roost_session_queue_bytes(s), 0);
	ck_assert_uint_eq(roost_session_stats_get(s)->dropped_denied, 2);
	ck_assert_str_eq(j.buf, "add1/1/0;rm1/101;");
	roost_msg_unref(m1);
	roost_msg_unref(m2);
	roost_session_free(s);
}
END_TEST

Suite *session_suite(void);
Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_session_identity);
	tcase_add_test(valid, test_session_subscriptions_replace_and_remove);
	tcase_add_test(valid, test_session_queue_order_and_window);
	tcase_add_test(valid, test_MQTT_4_3_3_qos2_outbound_states);
	tcase_add_test(valid, test_MQTT_3_3_1_6_retain_flag_travels_with_delivery);
	tcase_add_test(valid, test_MQTT_4_4_0_1_inflight_kept_for_resend);
	tcase_add_test(valid, test_MQTT_4_3_3_2_inbound_qos2_ids);
	tcase_add_test(valid, test_MQTT_3_1_2_24_keepalive_one_and_a_half);
	tcase_add_test(valid, test_session_journal_mirrors_durable_changes);
	tcase_add_test(valid, test_session_restore_continues_seq_and_ids);
	tcase_add_test(valid, test_session_drop_head_releases_and_journals);
	tcase_add_test(valid, test_session_owner);
	suite_add_tcase(s, valid);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_MQTT_2_3_1_2_packet_ids_unique_and_nonzero);
	tcase_add_test(limits, test_session_queue_limits_drop_and_count);
	tcase_add_test(limits, test_session_queue_ring_wraps);
	suite_add_tcase(s, limits);
	TCase *life = tcase_create("lifetime");
	tcase_add_test(life, test_session_alloc_failures_leave_it_consistent);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(session_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

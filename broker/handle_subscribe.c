/* handle_subscribe.c — SUBSCRIBE and UNSUBSCRIBE. */
#include <string.h>

#include "internal.h"
#include "sys.h"
#include "roost/alloc.h"
#include "roost/acl.h"

/* The refusal code: 3.1.1 has only 0x80 [MQTT-3.9.3-2]; v5 says why. */
static uint8_t refusal(const roost_conn *c, uint8_t v5_code)
{
	return c->version == ROOST_MQTT_V5 ? v5_code : ROOST_SUBACK_FAILURE;
}

/* What one SUBSCRIBE entry got: the SUBACK code, and whether the retained
 * messages follow (Retain Handling, [MQTT-3.3.1-9..11]). */
typedef struct sub_outcome {
	uint8_t rc;
	bool send_retained;
} sub_outcome;

/* Steps 2-3 for one filter: valid, within limits, allowed? 0 or a refusal.
 * For a shared subscription these apply to its real filter. */
static uint8_t subscribe_check(roost_conn *c, const roost_sub_entry *en)
{
	roost_broker *b = c->b;
	const char *filter = (const char *)en->filter.ptr;
	size_t flen = en->filter.len;
	int shown = (int)(flen > 200 ? 200 : flen);
	const char *group;
	size_t glen;
	int share = roost_topic_share_parse(filter, flen, &group, &glen, &filter, &flen);
	if (share < 0 || !roost_topic_filter_valid((const uint8_t *)filter, flen)) {
		roost_log_notice(b->log, "client %s: invalid topic filter '%.*s' refused%s", conn_client_id(c), shown,
		                 (const char *)en->filter.ptr, share < 0 ? " [MQTT-4.8.2-1]" : "");
		return refusal(c, ROOST_RC5_TOPIC_FILTER_INVALID);
	}
	const char *why = NULL;
	const roost_limits_config *lim = &b->cfg->limits;
	if (roost_topic_check_limits(filter, flen, lim->max_topic_levels, lim->max_topic_length, &why)) {
		roost_log_notice(b->log, "client %s: topic filter '%.*s' refused: %s", conn_client_id(c), shown,
		                 (const char *)en->filter.ptr, why);
		return refusal(c, ROOST_RC5_TOPIC_FILTER_INVALID);
	}
	if (!broker_authz_topic(b, c->session, filter, flen, ROOST_ACL_SUBSCRIBE)) {
		roost_log_notice(b->log, "client %s: SUBSCRIBE to '%.*s' denied by the ACL", conn_client_id(c), shown,
		                 (const char *)en->filter.ptr);
		return refusal(c, ROOST_RC5_NOT_AUTHORIZED);
	}
	uint32_t max_subs = lim->max_subscriptions;
	if (max_subs && roost_session_sub_count(c->session) >= max_subs &&
	    !roost_session_sub_has(c->session, (const char *)en->filter.ptr, en->filter.len)) {
		roost_log_notice(b->log, "client %s: limits.max_subscriptions (%u) reached", conn_client_id(c), max_subs);
		return refusal(c, ROOST_RC5_QUOTA_EXCEEDED);
	}
	return 0;
}

static sub_outcome subscribe_one(roost_conn *c, const roost_sub_entry *en, uint32_t sub_id)
{
	roost_broker *b = c->b;
	roost_session *s = c->session;
	const char *filter = (const char *)en->filter.ptr;
	size_t flen = en->filter.len;
	uint8_t refused = subscribe_check(c, en);
	if (refused)
		return (sub_outcome){refused, false};
	/* [MQTT-3.8.4-6] grant what was asked, max 2; the v5 option bits are
	 * kept with it (the codec refused reserved bits and Retain Handling 3). */
	uint8_t options = c->version == ROOST_MQTT_V5 ? en->options : en->options & ROOST_SUBOPT_QOS;
	uint8_t qos = options & ROOST_SUBOPT_QOS;
	bool existed = false;
	/* [MQTT-3.8.4-3] a repeated filter replaces the old subscription. */
	if (roost_topic_tree_subscribe(b->tree, filter, flen, s, options, &existed) != ROOST_OK)
		return (sub_outcome){refusal(c, ROOST_RC5_UNSPECIFIED), false};
	if (roost_session_sub_add_id(s, filter, flen, options, sub_id, NULL) != ROOST_OK) {
		if (!existed)
			roost_topic_tree_unsubscribe(b->tree, filter, flen, s);
		return (sub_outcome){refusal(c, ROOST_RC5_UNSPECIFIED), false};
	}
	/* Retain Handling: 0 send [MQTT-3.3.1-9], 1 only for a new
	 * subscription [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11]; never for
	 * a shared subscription (MQTT 5.0 4.8.2). */
	unsigned rh = options >> ROOST_SUBOPT_RH_SHIFT & 3;
	const char *g, *rest;
	size_t gl, rl;
	bool shared = roost_topic_share_parse(filter, flen, &g, &gl, &rest, &rl) == 1;
	return (sub_outcome){qos, !shared && (rh == 0 || (rh == 1 && !existed))};
}

/* The Subscription Identifier of a v5 SUBSCRIBE, 0 when none (the codec
 * refused 0 itself, a Protocol Error [MQTT-3.8.2.1.2]). */
static uint32_t subscription_id(roost_bytes props)
{
	roost_props_iter it;
	roost_prop prop;
	roost_props_iter_init(&it, props);
	while (roost_props_next(&it, &prop))
		if (prop.id == ROOST_PROP_SUBSCRIPTION_ID)
			return prop.u32;
	return 0;
}

/*
 * Room for a SUBACK with count codes: on the stack up to a Home Assistant
 * sized packet (500 filters), else on the heap. count is bounded by the
 * packet size (each filter takes at least 3 bytes), and what a client may
 * keep by limits.max_subscriptions; the spec sets no other bound.
 */
enum { SUBACK_STACK = 600 };

static void send_suback(roost_conn *c, uint16_t packet_id, const uint8_t *rc, size_t n)
{
	roost_suback ack = {.packet_id = packet_id, .codes = {rc, n}};
	uint8_t stack[SUBACK_STACK];
	size_t need = roost_encode_suback(NULL, 0, c->version, &ack);
	uint8_t *buf = need <= sizeof stack ? stack : roost_malloc(need);
	if (!buf) {
		conn_close(c, true, "out of memory answering a SUBSCRIBE with %zu filters", n);
		return;
	}
	/* [MQTT-3.8.4-1] SUBACK with one code per filter, in order [MQTT-3.8.4-5]. */
	conn_send(c, buf, roost_encode_suback(buf, need, c->version, &ack));
	if (buf != stack)
		roost_free(buf);
}

void handle_subscribe(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_subscribe sub;
	roost_codec_error e = {0};
	if (roost_decode_subscribe(pkt, len, c->version, &sub, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed SUBSCRIBE", &e);
		return;
	}
	sub_outcome stack[SUBACK_STACK];
	sub_outcome *out = sub.count <= SUBACK_STACK ? stack : roost_malloc(sub.count * sizeof *out);
	uint8_t rcs[SUBACK_STACK];
	uint8_t *rc = sub.count <= sizeof rcs ? rcs : roost_malloc(sub.count);
	if (!out || !rc) {
		conn_close(c, true, "out of memory for a SUBSCRIBE with %u filters", sub.count);
		goto done;
	}
	uint32_t sub_id = subscription_id(sub.props);
	roost_sub_iter it;
	roost_sub_entry en;
	unsigned i = 0;
	roost_sub_iter_init(&it, &sub, true);
	while (roost_sub_next(&it, &en)) {
		out[i] = subscribe_one(c, &en, sub_id);
		rc[i] = out[i].rc;
		i++;
	}
	send_suback(c, sub.packet_id, rc, i);
	/* [MQTT-3.3.1-6] then the retained messages matching each new filter. */
	roost_sub_iter_init(&it, &sub, true);
	i = 0;
	while (c->state == CONN_ACTIVE && roost_sub_next(&it, &en)) {
		if (out[i].send_retained && en.filter.len && en.filter.ptr[0] == '$')
			broker_sys_subscribed(c->b); /* fresh values first [MQTT-4.7.2-1]: only '$' filters match */
		if (out[i].send_retained)
			broker_send_retained(c->b, c->session, (const char *)en.filter.ptr, en.filter.len, out[i].rc);
		i++;
	}
done:
	if (out != stack)
		roost_free(out);
	if (rc != rcs)
		roost_free(rc);
}

/* The UNSUBACK code for one filter (v5 3.11.3; 3.1.1 has none). */
static uint8_t unsubscribe_one(roost_conn *c, const roost_sub_entry *en)
{
	const char *filter = (const char *)en->filter.ptr;
	if (!roost_topic_filter_valid(en->filter.ptr, en->filter.len))
		return ROOST_RC5_TOPIC_FILTER_INVALID;
	/* [MQTT-3.10.4-1] stop delivering to the filter that matches
	 * character for character; absent filters are not an error. */
	roost_topic_tree_unsubscribe(c->b->tree, filter, en->filter.len, c->session);
	if (roost_session_sub_remove(c->session, filter, en->filter.len) != ROOST_OK)
		return ROOST_RC5_NO_SUBSCRIPTION_EXISTED;
	return ROOST_RC5_SUCCESS;
}

void handle_unsubscribe(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_subscribe unsub;
	roost_codec_error e = {0};
	if (roost_decode_unsubscribe(pkt, len, c->version, &unsub, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed UNSUBSCRIBE", &e);
		return;
	}
	uint8_t stack[SUBACK_STACK];
	uint8_t *rc = unsub.count <= sizeof stack ? stack : roost_malloc(unsub.count);
	if (!rc) {
		conn_close(c, true, "out of memory for an UNSUBSCRIBE with %u filters", unsub.count);
		return;
	}
	roost_sub_iter it;
	roost_sub_entry en;
	unsigned i = 0;
	roost_sub_iter_init(&it, &unsub, false);
	while (roost_sub_next(&it, &en))
		rc[i++] = unsubscribe_one(c, &en);
	/* [MQTT-3.10.4-4] UNSUBACK even when nothing was removed; v5 with one
	 * reason code per filter, in order [MQTT-3.11.3-1], [MQTT-3.11.3-2]. */
	roost_suback ack = {.packet_id = unsub.packet_id, .codes = {rc, i}};
	uint8_t small[16];
	size_t need = roost_encode_unsuback(NULL, 0, c->version, &ack);
	uint8_t *buf = need <= sizeof small ? small : roost_malloc(need);
	if (buf) {
		conn_send(c, buf, roost_encode_unsuback(buf, need, c->version, &ack));
		if (buf != small)
			roost_free(buf);
	} else {
		conn_close(c, true, "out of memory answering an UNSUBSCRIBE with %u filters", unsub.count);
	}
	if (rc != stack)
		roost_free(rc);
}

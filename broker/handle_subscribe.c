/* handle_subscribe.c — SUBSCRIBE and UNSUBSCRIBE. */
#include <string.h>

#include "internal.h"
#include "sys.h"
#include "roost/alloc.h"
#include "roost/acl.h"

/* Returns the SUBACK code for one filter: granted QoS or 0x80. */
static uint8_t subscribe_one(roost_conn *c, const roost_sub_entry *en)
{
	roost_broker *b = c->b;
	roost_session *s = c->session;
	const char *filter = (const char *)en->filter.ptr;
	size_t flen = en->filter.len;
	if (!roost_topic_filter_valid(en->filter.ptr, flen)) {
		roost_log_notice(b->log, "client %s: invalid topic filter '%.*s' refused", conn_client_id(c),
		                 (int)(flen > 200 ? 200 : flen), filter);
		return ROOST_SUBACK_FAILURE;
	}
	const char *why = NULL;
	const roost_limits_config *lim = &b->cfg->limits;
	if (roost_topic_check_limits(filter, flen, lim->max_topic_levels, lim->max_topic_length, &why)) {
		roost_log_notice(b->log, "client %s: topic filter '%.*s' refused: %s", conn_client_id(c),
		                 (int)(flen > 200 ? 200 : flen), filter, why);
		return ROOST_SUBACK_FAILURE;
	}
	if (!broker_authz_topic(b, s, filter, flen, ROOST_ACL_SUBSCRIBE)) {
		roost_log_notice(b->log, "client %s: SUBSCRIBE to '%.*s' denied by the ACL", conn_client_id(c),
		                 (int)(flen > 200 ? 200 : flen), filter);
		return ROOST_SUBACK_FAILURE;
	}
	uint8_t qos = en->options & 0x03; /* [MQTT-3.8.4-6] grant what was asked, max 2 */
	bool existed = false;
	uint32_t max_subs = b->cfg->limits.max_subscriptions;
	if (max_subs && roost_session_sub_count(s) >= max_subs && !roost_session_sub_has(s, filter, flen)) {
		roost_log_notice(b->log, "client %s: limits.max_subscriptions (%u) reached", conn_client_id(c),
		                 max_subs);
		return ROOST_SUBACK_FAILURE;
	}
	/* [MQTT-3.8.4-3] a repeated filter replaces the old subscription. */
	if (roost_topic_tree_subscribe(b->tree, filter, flen, s, qos, &existed) != ROOST_OK)
		return ROOST_SUBACK_FAILURE;
	if (roost_session_sub_add(s, filter, flen, qos, NULL) != ROOST_OK) {
		if (!existed)
			roost_topic_tree_unsubscribe(b->tree, filter, flen, s);
		return ROOST_SUBACK_FAILURE;
	}
	return qos;
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
	uint8_t stack[SUBACK_STACK];
	uint8_t *rc = sub.count <= sizeof stack ? stack : roost_malloc(sub.count);
	if (!rc) {
		conn_close(c, true, "out of memory for a SUBSCRIBE with %u filters", sub.count);
		return;
	}
	roost_sub_iter it;
	roost_sub_entry en;
	unsigned i = 0;
	roost_sub_iter_init(&it, &sub, true);
	while (roost_sub_next(&it, &en))
		rc[i++] = subscribe_one(c, &en);
	send_suback(c, sub.packet_id, rc, i);
	/* [MQTT-3.3.1-6] then the retained messages matching each new filter. */
	roost_sub_iter_init(&it, &sub, true);
	i = 0;
	while (c->state == CONN_ACTIVE && roost_sub_next(&it, &en)) {
		if (rc[i] != ROOST_SUBACK_FAILURE && en.filter.len && en.filter.ptr[0] == '$')
			broker_sys_subscribed(c->b); /* fresh values first [MQTT-4.7.2-1]: only '$' filters match */
		if (rc[i] != ROOST_SUBACK_FAILURE)
			broker_send_retained(c->b, c->session, (const char *)en.filter.ptr, en.filter.len, rc[i]);
		i++;
	}
	if (rc != stack)
		roost_free(rc);
}

void handle_unsubscribe(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_subscribe unsub;
	roost_codec_error e = {0};
	if (roost_decode_unsubscribe(pkt, len, c->version, &unsub, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed UNSUBSCRIBE", &e);
		return;
	}
	roost_sub_iter it;
	roost_sub_entry en;
	roost_sub_iter_init(&it, &unsub, false);
	while (roost_sub_next(&it, &en)) {
		const char *filter = (const char *)en.filter.ptr;
		/* [MQTT-3.10.4-1] stop delivering to the filter that matches
		 * character for character; absent filters are not an error. */
		roost_topic_tree_unsubscribe(c->b->tree, filter, en.filter.len, c->session);
		roost_session_sub_remove(c->session, filter, en.filter.len);
	}
	/* [MQTT-3.10.4-4] UNSUBACK even when nothing was removed. */
	roost_ack ack = {.packet_id = unsub.packet_id};
	uint8_t buf[8];
	size_t n = roost_encode_ack(buf, sizeof buf, c->version, ROOST_MQTT_UNSUBACK, &ack);
	conn_send(c, buf, n);
}

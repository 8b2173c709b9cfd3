/*
 * handle_publish.c — PUBLISH and the acknowledgement flows.
 *
 * Inbound QoS 2 uses the spec's "Method A" ([MQTT-4.3.3-2]): the message is
 * delivered onward when the PUBLISH arrives and its packet id is remembered
 * until PUBREL, so a re-sent PUBLISH with the same id is acknowledged but not
 * delivered twice. Nothing acknowledged is ever dropped afterwards: the
 * message is already in the subscribers' queues when PUBREC goes out.
 *
 * MQTT 5 adds reason codes to the acknowledgements: a refused message is
 * still dropped, as in 3.1.1, but a v5 publisher is told why (0x87, 0x90,
 * 0x97, 0x99) or that nobody received it (0x10).
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "roost/acl.h"

/* Our Receive Maximum, announced in CONNACK (limits.receive_maximum). QoS 1
 * is acknowledged at once, so only QoS 2 waiting for PUBREL counts
 * [MQTT-3.3.4-7]. */
#define RECEIVE_MAX(c) ((c)->b->cfg->limits.receive_maximum)
/* Aliases the client may set towards us, announced in CONNACK. */
#define TOPIC_ALIAS_IN_MAX(c) ((c)->b->cfg->limits.max_topic_alias)

/* A refusal: the v5 reason code and what is logged and sent as Reason String. */
typedef struct refusal {
	uint8_t rc;
	const char *why;
} refusal;

/*
 * Step 3 of PUBLISH: may this client publish here? broker_authz_publish
 * decides ('$' topics belong to the broker [MQTT-4.7.2-1], then the ACL).
 * MQTT 3.1.1 cannot tell a publisher "no": the message is dropped,
 * acknowledged as usual, and logged. v5 gets 0x87 or 0x90.
 */
static bool publish_allowed(roost_conn *c, const roost_publish *p, refusal *r)
{
	const char *why = NULL;
	roost_err err = broker_authz_publish(c->b, c, roost_session_client_id(c->session), roost_session_username(c->session),
	                                     (const char *)p->topic.ptr, p->topic.len, &why);
	if (err == ROOST_OK)
		return true;
	roost_log_notice(c->b->log, "client %s: PUBLISH to %.*s dropped: %s", conn_client_id(c),
	                 (int)(p->topic.len > 200 ? 200 : p->topic.len), p->topic.ptr, why);
	*r = (refusal){err == ROOST_ERR_NOT_AUTHORIZED ? ROOST_RC5_NOT_AUTHORIZED : ROOST_RC5_TOPIC_NAME_INVALID, why};
	return false;
}

/* v5 PUBLISH properties the broker acts on. */
typedef struct publish_props {
	bool has_alias;          /* a Topic Alias was given (0 is invalid) */
	uint16_t alias;
	bool utf8;               /* Payload Format Indicator 1 */
	bool has_sub_id;         /* a Subscription Identifier: only the server sends them */
} publish_props;

static publish_props read_props(roost_bytes props)
{
	publish_props pp = {0};
	roost_props_iter it;
	roost_prop prop;
	roost_props_iter_init(&it, props);
	while (roost_props_next(&it, &prop)) {
		if (prop.id == ROOST_PROP_TOPIC_ALIAS) {
			pp.has_alias = true;
			pp.alias = (uint16_t)prop.u32;
		}
		else if (prop.id == ROOST_PROP_PAYLOAD_FORMAT)
			pp.utf8 = prop.u32 == 1;
		else if (prop.id == ROOST_PROP_SUBSCRIPTION_ID)
			pp.has_sub_id = true;
	}
	return pp;
}

/*
 * Step 2 for v5: the rules the codec cannot know (they depend on this
 * connection's state). Closes the connection and returns false on a
 * violation; p->topic is replaced by the aliased topic.
 */
static bool publish_check_v5(roost_conn *c, roost_publish *p, const publish_props *pp)
{
	if (pp->has_sub_id) {
		conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR, "PUBLISH with a Subscription Identifier [MQTT-3.3.4-6]");
		return false;
	}
	if (pp->has_alias) {
		/* [MQTT-3.3.2-8] not 0; [MQTT-3.2.2-17] [MQTT-3.3.2-9] within our Topic Alias Maximum. */
		if (pp->alias == 0 || pp->alias > TOPIC_ALIAS_IN_MAX(c)) {
			conn_disconnect(c, ROOST_RC5_TOPIC_ALIAS_INVALID, "Topic Alias %u not in 1..%u [MQTT-3.3.2-8], [MQTT-3.3.2-9]",
			                pp->alias, TOPIC_ALIAS_IN_MAX(c));
			return false;
		}
		if (p->topic.len) {
			if (conn_alias_in_set(c, pp->alias, p->topic) != ROOST_OK) {
				conn_close(c, true, "out of memory recording Topic Alias %u", pp->alias);
				return false;
			}
		} else if (!conn_alias_in_find(c, pp->alias, &p->topic)) {
			conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR, "unknown Topic Alias %u with an empty topic [MQTT-3.3.2-8]",
			                pp->alias);
			return false;
		}
	}
	/* [MQTT-3.3.4-7] our Receive Maximum: QoS 2 publications not yet released. */
	if (p->qos == 2 && roost_session_qos2_in_count(c->session) >= RECEIVE_MAX(c) &&
	    !roost_session_qos2_in_has(c->session, p->packet_id)) {
		conn_disconnect(c, ROOST_RC5_RECEIVE_MAX_EXCEEDED, "more than Receive Maximum %u unacknowledged QoS 2 "
		                "PUBLISHes [MQTT-3.3.4-8]", RECEIVE_MAX(c));
		return false;
	}
	return true;
}

/* Steps 3-4: authorise, then take the message in and fan it out. false
 * only when the connection was closed. */
static bool publish_apply(roost_conn *c, const roost_publish *p, const publish_props *pp, refusal *r)
{
	roost_broker *b = c->b;
	if (!publish_allowed(c, p, r))
		return true;
	/* [MQTT-3.3.2-4] a payload announced as UTF-8 must be UTF-8. */
	if (pp->utf8 && !roost_utf8_valid(p->payload.ptr, p->payload.len)) {
		*r = (refusal){ROOST_RC5_PAYLOAD_FORMAT_INVALID, "payload is not UTF-8 as its Payload Format Indicator says"};
		roost_log_notice(b->log, "client %s: PUBLISH to %.*s dropped: %s", conn_client_id(c),
		                 (int)(p->topic.len > 200 ? 200 : p->topic.len), p->topic.ptr, r->why);
		return true;
	}
	roost_msg *msg = roost_msg_new_v5((const char *)p->topic.ptr, p->topic.len, p->props.ptr, p->props.len,
	                                  p->payload.ptr, p->payload.len, p->qos, p->retain,
	                                  roost_clock_now(&b->clock));
	if (!msg) {
		/* Never acknowledge what we could not take. */
		if (p->qos == 2)
			roost_session_qos2_in_release(c->session, p->packet_id);
		conn_close(c, true, "out of memory storing a %zu-byte message", p->payload.len);
		return false;
	}
	b->stats.msgs_received++;
	broker_publish_result res;
	broker_publish_from(b, msg, c->session, &res);
	roost_msg_unref(msg);
	if (!res.retained)
		*r = (refusal){ROOST_RC5_QUOTA_EXCEEDED, "retained message not kept: limits.max_retained_messages"};
	else if (!res.receivers)
		*r = (refusal){ROOST_RC5_NO_MATCHING_SUBSCRIBERS, NULL};
	return true;
}

void handle_publish(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_publish p;
	roost_codec_error e = {0};
	if (roost_decode_publish(pkt, len, c->version, &p, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed PUBLISH", &e);
		return;
	}
	publish_props pp = read_props(p.props);
	if (c->version == ROOST_MQTT_V5 && !publish_check_v5(c, &p, &pp))
		return;
	bool dup = false;
	if (p.qos == 2 && roost_session_qos2_in_add(c->session, p.packet_id, &dup) != ROOST_OK) {
		conn_close(c, true, "out of memory recording QoS 2 packet id %u", p.packet_id);
		return;
	}
	refusal r = {ROOST_RC5_SUCCESS, NULL};
	if (!dup && !publish_apply(c, &p, &pp, &r))
		return;
	if (p.qos == 2 && r.rc >= 0x80) {
		/* [MQTT-4.3.3-13] a PUBREC with a failure code ends the flow: no PUBREL follows. */
		roost_session_qos2_in_release(c->session, p.packet_id);
	}
	if (p.qos == 1)
		conn_send_ack_rc(c, ROOST_MQTT_PUBACK, p.packet_id, r.rc, r.why); /* [MQTT-4.3.2-2] */
	else if (p.qos == 2)
		conn_send_ack_rc(c, ROOST_MQTT_PUBREC, p.packet_id, r.rc, r.why); /* [MQTT-4.3.3-2] */
}

void handle_puback(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_ack a;
	roost_codec_error e = {0};
	uint8_t type = pkt[0] >> 4;
	if (roost_decode_ack(pkt, len, c->version, &a, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed acknowledgement", &e);
		return;
	}
	/* v5: a PUBREC with a failure code ends the QoS 2 flow like a PUBCOMP
	 * [MQTT-4.3.3-13]: no PUBREL. */
	bool ends = type == ROOST_MQTT_PUBREC && a.reason >= 0x80;
	roost_err err = roost_session_ack(c->session, type, a.packet_id);
	if (type == ROOST_MQTT_PUBREC && ends && err == ROOST_OK)
		err = roost_session_ack(c->session, ROOST_MQTT_PUBCOMP, a.packet_id);
	if (type == ROOST_MQTT_PUBREC && !ends) {
		/* [MQTT-4.3.3-1] answer PUBREC with PUBREL, also for a repeated
		 * PUBREC whose slot already waits for PUBCOMP; v5 says 0x92 for
		 * an id we do not know. */
		bool known = err == ROOST_OK || roost_session_inflight_has(c->session, a.packet_id);
		conn_send_ack_rc(c, ROOST_MQTT_PUBREL, a.packet_id, known ? ROOST_RC5_SUCCESS : ROOST_RC5_PACKET_ID_NOT_FOUND,
		                 known ? NULL : "packet identifier not found");
		return;
	}
	if (err == ROOST_OK)
		broker_session_pump(c->b, c->session); /* a slot was freed */
	else
		roost_log_debug(c->b->log, "client %s: %s for unknown packet id %u", conn_client_id(c),
		                roost_mqtt_type_name(type), a.packet_id);
}

void handle_pubrel(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_ack a;
	roost_codec_error e = {0};
	if (roost_decode_ack(pkt, len, c->version, &a, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed PUBREL", &e);
		return;
	}
	/* [MQTT-4.3.3-2] forget the id, then PUBCOMP — also for an unknown id,
	 * which is a PUBREL repeated after our PUBCOMP was lost; v5 tells it
	 * 0x92 (v5 3.7.2.1). */
	bool known = roost_session_qos2_in_release(c->session, a.packet_id) == ROOST_OK;
	conn_send_ack_rc(c, ROOST_MQTT_PUBCOMP, a.packet_id, known ? ROOST_RC5_SUCCESS : ROOST_RC5_PACKET_ID_NOT_FOUND,
	                 known ? NULL : "packet identifier not found");
}

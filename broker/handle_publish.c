/*
 * handle_publish.c — PUBLISH and the acknowledgement flows.
 *
 * Inbound QoS 2 uses the spec's "Method A" ([MQTT-4.3.3-2]): the message is
 * delivered onward when the PUBLISH arrives and its packet id is remembered
 * until PUBREL, so a re-sent PUBLISH with the same id is acknowledged but not
 * delivered twice. Nothing acknowledged is ever dropped afterwards: the
 * message is already in the subscribers' queues when PUBREC goes out.
 */
#include "internal.h"
#include "roost/acl.h"

/*
 * Step 3 of PUBLISH: may this client publish here? broker_authz_publish
 * decides ('$' topics belong to the broker [MQTT-4.7.2-1], then the ACL).
 * MQTT 3.1.1 cannot tell a publisher "no": the message is dropped,
 * acknowledged as usual, and logged.
 */
static bool publish_allowed(roost_conn *c, const roost_publish *p)
{
	const char *why = NULL;
	if (broker_authz_publish(c->b, c, roost_session_client_id(c->session), roost_session_username(c->session),
	                         (const char *)p->topic.ptr, p->topic.len, &why) == ROOST_OK)
		return true;
	roost_log_notice(c->b->log, "client %s: PUBLISH to %.*s dropped: %s", conn_client_id(c),
	                 (int)(p->topic.len > 200 ? 200 : p->topic.len), p->topic.ptr, why);
	return false;
}

void handle_publish(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_broker *b = c->b;
	roost_publish p;
	roost_codec_error e = {0};
	if (roost_decode_publish(pkt, len, c->version, &p, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed PUBLISH", &e);
		return;
	}
	bool dup = false;
	if (p.qos == 2 && roost_session_qos2_in_add(c->session, p.packet_id, &dup) != ROOST_OK) {
		conn_close(c, true, "out of memory recording QoS 2 packet id %u", p.packet_id);
		return;
	}
	if (!dup && publish_allowed(c, &p)) {
		roost_msg *msg = roost_msg_new((const char *)p.topic.ptr, p.topic.len, p.payload.ptr,
		                               p.payload.len, p.qos, p.retain);
		if (!msg) {
			/* Never acknowledge what we could not take. */
			if (p.qos == 2)
				roost_session_qos2_in_release(c->session, p.packet_id);
			conn_close(c, true, "out of memory storing a %zu-byte message", p.payload.len);
			return;
		}
		b->stats.msgs_received++;
		broker_publish(b, msg);
		roost_msg_unref(msg);
	}
	if (p.qos == 1)
		conn_send_ack(c, ROOST_MQTT_PUBACK, p.packet_id); /* [MQTT-4.3.2-2] */
	else if (p.qos == 2)
		conn_send_ack(c, ROOST_MQTT_PUBREC, p.packet_id); /* [MQTT-4.3.3-2] */
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
	roost_err err = roost_session_ack(c->session, type, a.packet_id);
	if (type == ROOST_MQTT_PUBREC) {
		/* [MQTT-4.3.3-1] answer PUBREC with PUBREL, also for a repeated
		 * PUBREC whose slot already waits for PUBCOMP. */
		conn_send_ack(c, ROOST_MQTT_PUBREL, a.packet_id);
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
	 * which is a PUBREL repeated after our PUBCOMP was lost. */
	roost_session_qos2_in_release(c->session, a.packet_id);
	conn_send_ack(c, ROOST_MQTT_PUBCOMP, a.packet_id);
}

/* handle_misc.c — PINGREQ and DISCONNECT. */
#include "internal.h"

void handle_pingreq(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_codec_error e = {0};
	if (roost_decode_empty(pkt, len, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed PINGREQ", &e);
		return;
	}
	uint8_t buf[2];
	conn_send(c, buf, roost_encode_empty(buf, sizeof buf, ROOST_MQTT_PINGRESP)); /* [MQTT-3.12.4-1] */
}

/*
 * A v5 DISCONNECT may change the Session Expiry Interval (MQTT 5.0
 * 3.14.2.2.2), but not from 0 to non-zero [MQTT-3.14.2-2]: a session
 * already ending with its connection cannot be made to outlive it. Returns
 * false (after closing with DISCONNECT 0x82) for that protocol error.
 */
static bool disconnect_expiry(roost_conn *c, const roost_disconnect *d)
{
	roost_props_iter it;
	roost_prop p;
	roost_props_iter_init(&it, d->props);
	while (roost_props_next(&it, &p)) {
		if (p.id != ROOST_PROP_SESSION_EXPIRY)
			continue;
		if (c->v5.session_expiry == 0 && p.u32 != 0) {
			conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR,
			                "DISCONNECT sets a Session Expiry Interval after CONNECT's 0 [MQTT-3.14.2-2]");
			return false;
		}
		c->v5.session_expiry = p.u32;
		broker_session_set_expiry(c->b, c->session, p.u32);
	}
	return true;
}

void handle_disconnect(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_disconnect d;
	roost_codec_error e = {0};
	if (roost_decode_disconnect(pkt, len, c->version, &d, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed DISCONNECT", &e);
		return;
	}
	if (c->version == ROOST_MQTT_V5 && !disconnect_expiry(c, &d))
		return;
	/* [MQTT-3.14.4-3] discard the will without publishing it, and
	 * [MQTT-3.14.4-1] close; v5 0x04 "disconnect with will message"
	 * publishes it (MQTT 5.0 3.14.2.1). */
	bool with_will = c->version == ROOST_MQTT_V5 && d.reason == ROOST_RC5_DISCONNECT_WITH_WILL;
	if (c->version == ROOST_MQTT_V5 && d.reason)
		conn_close(c, with_will, "client sent DISCONNECT 0x%02x", d.reason);
	else
		conn_close(c, false, "client sent DISCONNECT");
}

/* handle_misc.c — PINGREQ, DISCONNECT and AUTH. */
#include <string.h>

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

/* Authentication Method and Data of an AUTH packet. */
static void auth_props(const roost_auth *a, roost_bytes *method, roost_bytes *data)
{
	roost_props_iter it;
	roost_prop p;
	*method = *data = (roost_bytes){NULL, 0};
	roost_props_iter_init(&it, a->props);
	while (roost_props_next(&it, &p)) {
		if (p.id == ROOST_PROP_AUTH_METHOD)
			*method = p.str;
		else if (p.id == ROOST_PROP_AUTH_DATA)
			*data = p.str;
	}
}

/* Re-authentication (MQTT 5.0 4.12.1): AUTH 0x19 starts an exchange with
 * the CONNECT's method, AUTH 0x18 continues it; failure is DISCONNECT 0x87. */
static void reauthenticate(roost_conn *c, uint8_t reason, roost_bytes data)
{
	const roost_auth_hook *h = c->auth_hook;
	if (reason == ROOST_RC5_REAUTHENTICATE) {
		if (h->auth_free && c->auth_state)
			h->auth_free(h->ctx, c->auth_state);
		c->auth_state = NULL;
		c->reauthenticating = true;
	} else if (reason != ROOST_RC5_CONTINUE_AUTH || !c->reauthenticating) {
		conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR, "AUTH 0x%02x out of an exchange", reason);
		return;
	}
	uint8_t out[512];
	size_t out_len = 0;
	int r = h->auth_step(h->ctx, &c->auth_state, conn_client_id(c), data.ptr, data.len, out, sizeof out,
	                     &out_len);
	if (r == ROOST_AUTH_STEP_CONTINUE && out_len <= sizeof out) {
		conn_send_auth(c, ROOST_RC5_CONTINUE_AUTH, out, out_len);
		return;
	}
	if (h->auth_free && c->auth_state)
		h->auth_free(h->ctx, c->auth_state);
	c->auth_state = NULL;
	c->reauthenticating = false;
	if (r == ROOST_AUTH_STEP_SUCCESS && out_len <= sizeof out)
		conn_send_auth(c, ROOST_RC5_SUCCESS, out, out_len);
	else
		conn_disconnect(c, ROOST_RC5_NOT_AUTHORIZED, "re-authentication failed");
}

void handle_auth(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_auth a;
	roost_codec_error e = {0};
	if (roost_decode_auth(pkt, len, c->version, &a, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed AUTH", &e);
		return;
	}
	roost_bytes method, data;
	auth_props(&a, &method, &data);
	const roost_auth_hook *h = c->auth_hook;
	if (!h || !method.ptr || strlen(h->auth_method) != method.len ||
	    memcmp(h->auth_method, method.ptr, method.len) != 0) {
		/* [MQTT-4.12.0-7] no AUTH without a method at CONNECT; the same
		 * method throughout (MQTT 5.0 4.12.1) */
		if (c->state == CONN_AUTH_EXCHANGE)
			conn_close(c, false, "AUTH with another authentication method");
		else
			conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR, "AUTH without the CONNECT's authentication method");
		return;
	}
	if (c->state == CONN_AUTH_EXCHANGE) {
		if (a.reason != ROOST_RC5_CONTINUE_AUTH)
			conn_close(c, false, "AUTH 0x%02x during the CONNECT's exchange", a.reason);
		else
			handle_connect_auth(c, data);
		return;
	}
	reauthenticate(c, a.reason, data);
}

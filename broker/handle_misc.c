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

void handle_disconnect(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_disconnect d;
	roost_codec_error e = {0};
	if (roost_decode_disconnect(pkt, len, c->version, &d, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed DISCONNECT", &e);
		return;
	}
	/* [MQTT-3.14.4-3] discard the will without publishing it, and
	 * [MQTT-3.14.4-1] close. */
	conn_close(c, false, "client sent DISCONNECT");
}

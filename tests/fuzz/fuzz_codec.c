/*
 * fuzz_codec.c — the MQTT codec on arbitrary bytes.
 *
 * Input: one byte choosing the protocol version (0 = not yet known, 3, 4, 5;
 * taken modulo 4), then a packet. frame_peek frames it and the decoder for its
 * type decodes it. Checks, aborting on any failure:
 *   - a decoder never accepts what frame_peek refuses, and accepts only a
 *     whole packet (total_len == length);
 *   - an accepted packet re-encodes (snprintf-style sizing, exact buffers so
 *     ASan sees overruns) and the encoding decodes again to the same fields;
 *   - for PUBLISH, roost_encode_publish_header is a prefix of the full packet.
 * Bytes need not round-trip exactly: non-minimal lengths, an explicit v5
 * reason 0 and v5 SUBSCRIBE properties are legal but not reproduced.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "roost/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                  \
	do {                      \
		if (!(x))         \
			abort();  \
	} while (0)

static bool same(roost_bytes a, roost_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Size with cap 0, then encode into an exact heap buffer; NULL if not encodable. */
#define ENCODE(outp, lenp, call_with_out_cap)                        \
	do {                                                         \
		uint8_t *out = NULL;                                 \
		size_t cap = 0;                                      \
		size_t need_ = (call_with_out_cap);                  \
		CHECK(need_ > 0);                                    \
		out = malloc(need_);                                 \
		CHECK(out);                                          \
		cap = need_;                                         \
		CHECK((call_with_out_cap) == need_);                 \
		*(outp) = out;                                       \
		*(lenp) = need_;                                     \
	} while (0)

static void check_connect(const uint8_t *pkt, size_t len)
{
	roost_connect a, b;
	uint8_t *enc;
	size_t n;

	if (roost_decode_connect(pkt, len, &a, NULL))
		return;
	ENCODE(&enc, &n, roost_encode_connect(out, cap, a.protocol_level, &a));
	CHECK(roost_decode_connect(enc, n, &b, NULL) == ROOST_OK);
	CHECK(same(a.protocol_name, b.protocol_name) && a.protocol_level == b.protocol_level);
	CHECK(a.clean_start == b.clean_start && a.will_flag == b.will_flag && a.will_qos == b.will_qos);
	CHECK(a.will_retain == b.will_retain && a.username_flag == b.username_flag);
	CHECK(a.password_flag == b.password_flag && a.keepalive == b.keepalive);
	CHECK(same(a.props, b.props) && same(a.client_id, b.client_id) && same(a.will_props, b.will_props));
	CHECK(same(a.will_topic, b.will_topic) && same(a.will_payload, b.will_payload));
	CHECK(same(a.username, b.username) && same(a.password, b.password));
	free(enc);
}

static void check_publish(const uint8_t *pkt, size_t len, uint8_t v)
{
	roost_publish a, b;
	uint8_t *enc, head[128];
	size_t n, hn;

	if (roost_decode_publish(pkt, len, v, &a, NULL))
		return;
	ENCODE(&enc, &n, roost_encode_publish(out, cap, v, &a));
	CHECK(roost_decode_publish(enc, n, v, &b, NULL) == ROOST_OK);
	CHECK(a.qos == b.qos && a.dup == b.dup && a.retain == b.retain && a.packet_id == b.packet_id);
	CHECK(same(a.topic, b.topic) && same(a.props, b.props) && same(a.payload, b.payload));
	hn = roost_encode_publish_header(head, sizeof head, v, &a);
	CHECK(hn == n - a.payload.len);
	if (hn <= sizeof head)
		CHECK(memcmp(head, enc, hn) == 0);
	free(enc);
}

static void check_ack(const uint8_t *pkt, size_t len, uint8_t v)
{
	roost_ack a, b;
	uint8_t *enc;
	size_t n;

	if (roost_decode_ack(pkt, len, v, &a, NULL))
		return;
	ENCODE(&enc, &n, roost_encode_ack(out, cap, v, pkt[0] >> 4, &a));
	CHECK(roost_decode_ack(enc, n, v, &b, NULL) == ROOST_OK);
	CHECK((enc[0] >> 4) == (pkt[0] >> 4));
	CHECK(a.packet_id == b.packet_id && a.reason == b.reason && same(a.props, b.props));
	free(enc);
}

static void check_sub(const uint8_t *pkt, size_t len, uint8_t v, bool is_sub)
{
	roost_subscribe a, b;
	roost_sub_iter ia, ib;
	roost_sub_entry *ent, ea, eb;
	uint8_t *enc;
	size_t n, k = 0;
	roost_err err = is_sub ? roost_decode_subscribe(pkt, len, v, &a, NULL)
	                       : roost_decode_unsubscribe(pkt, len, v, &a, NULL);

	if (err)
		return;
	CHECK(a.count >= 1);
	ent = calloc(a.count, sizeof *ent);
	CHECK(ent);
	roost_sub_iter_init(&ia, &a, is_sub);
	while (roost_sub_next(&ia, &ent[k])) {
		CHECK(k < a.count);
		(void)roost_topic_filter_valid(ent[k].filter.ptr, ent[k].filter.len);
		k++;
	}
	CHECK(k == a.count);
	if (is_sub)
		ENCODE(&enc, &n, roost_encode_subscribe(out, cap, v, a.packet_id, ent, k));
	else
		ENCODE(&enc, &n, roost_encode_unsubscribe(out, cap, v, a.packet_id, ent, k));
	err = is_sub ? roost_decode_subscribe(enc, n, v, &b, NULL) : roost_decode_unsubscribe(enc, n, v, &b, NULL);
	CHECK(err == ROOST_OK);
	CHECK(a.packet_id == b.packet_id && a.count == b.count);
	roost_sub_iter_init(&ia, &a, is_sub);
	roost_sub_iter_init(&ib, &b, is_sub);
	while (roost_sub_next(&ia, &ea)) {
		CHECK(roost_sub_next(&ib, &eb));
		CHECK(same(ea.filter, eb.filter) && ea.options == eb.options);
	}
	CHECK(!roost_sub_next(&ib, &eb));
	free(ent);
	free(enc);
}

static void check_acks_list(const uint8_t *pkt, size_t len, uint8_t v, bool is_suback)
{
	roost_suback a, b;
	uint8_t *enc;
	size_t n;

	if (is_suback ? roost_decode_suback(pkt, len, v, &a, NULL) : roost_decode_unsuback(pkt, len, v, &a, NULL))
		return;
	if (is_suback)
		ENCODE(&enc, &n, roost_encode_suback(out, cap, v, &a));
	else
		ENCODE(&enc, &n, roost_encode_unsuback(out, cap, v, &a));
	CHECK((is_suback ? roost_decode_suback(enc, n, v, &b, NULL) : roost_decode_unsuback(enc, n, v, &b, NULL)) ==
	      ROOST_OK);
	CHECK(a.packet_id == b.packet_id && same(a.props, b.props) && same(a.codes, b.codes));
	free(enc);
}

static void check_reason_props(const uint8_t *pkt, size_t len, uint8_t v, uint8_t type)
{
	uint8_t *enc;
	size_t n;

	if (type == ROOST_MQTT_DISCONNECT) {
		roost_disconnect a, b;
		if (roost_decode_disconnect(pkt, len, v, &a, NULL))
			return;
		ENCODE(&enc, &n, roost_encode_disconnect(out, cap, v, &a));
		CHECK(roost_decode_disconnect(enc, n, v, &b, NULL) == ROOST_OK);
		CHECK(a.reason == b.reason && same(a.props, b.props));
	} else {
		roost_auth a, b;
		if (roost_decode_auth(pkt, len, v, &a, NULL))
			return;
		ENCODE(&enc, &n, roost_encode_auth(out, cap, v, &a));
		CHECK(roost_decode_auth(enc, n, v, &b, NULL) == ROOST_OK);
		CHECK(a.reason == b.reason && same(a.props, b.props));
	}
	free(enc);
}

static void check_connack(const uint8_t *pkt, size_t len, uint8_t v)
{
	roost_connack a, b;
	uint8_t *enc;
	size_t n;

	if (roost_decode_connack(pkt, len, v, &a, NULL))
		return;
	ENCODE(&enc, &n, roost_encode_connack(out, cap, v, &a));
	CHECK(roost_decode_connack(enc, n, v, &b, NULL) == ROOST_OK);
	CHECK(a.session_present == b.session_present && a.code == b.code && same(a.props, b.props));
	free(enc);
}

/* Decode (and round-trip) one packet; returns whether its decoder accepted it. */
static bool decode_one(const uint8_t *pkt, size_t len, uint8_t v)
{
	roost_codec_error e;
	roost_err err;
	uint8_t type = pkt[0] >> 4;

	/* First the verdict alone (with an error record), then the round trip. */
	switch (type) {
	case ROOST_MQTT_CONNECT: {
		roost_connect c;
		err = roost_decode_connect(pkt, len, &c, &e);
		if (!err)
			check_connect(pkt, len);
		break;
	}
	case ROOST_MQTT_CONNACK: {
		roost_connack c;
		err = roost_decode_connack(pkt, len, v, &c, &e);
		if (!err)
			check_connack(pkt, len, v);
		break;
	}
	case ROOST_MQTT_PUBLISH: {
		roost_publish p;
		err = roost_decode_publish(pkt, len, v, &p, &e);
		if (!err)
			check_publish(pkt, len, v);
		break;
	}
	case ROOST_MQTT_PUBACK:
	case ROOST_MQTT_PUBREC:
	case ROOST_MQTT_PUBREL:
	case ROOST_MQTT_PUBCOMP: {
		roost_ack a;
		err = roost_decode_ack(pkt, len, v, &a, &e);
		if (!err)
			check_ack(pkt, len, v);
		break;
	}
	case ROOST_MQTT_SUBSCRIBE:
	case ROOST_MQTT_UNSUBSCRIBE: {
		roost_subscribe s;
		bool is_sub = type == ROOST_MQTT_SUBSCRIBE;
		err = is_sub ? roost_decode_subscribe(pkt, len, v, &s, &e) : roost_decode_unsubscribe(pkt, len, v, &s, &e);
		if (!err)
			check_sub(pkt, len, v, is_sub);
		break;
	}
	case ROOST_MQTT_SUBACK:
	case ROOST_MQTT_UNSUBACK: {
		roost_suback s;
		bool is_suback = type == ROOST_MQTT_SUBACK;
		err = is_suback ? roost_decode_suback(pkt, len, v, &s, &e) : roost_decode_unsuback(pkt, len, v, &s, &e);
		if (!err)
			check_acks_list(pkt, len, v, is_suback);
		break;
	}
	case ROOST_MQTT_PINGREQ:
	case ROOST_MQTT_PINGRESP:
		err = roost_decode_empty(pkt, len, &e);
		if (!err) {
			/* len may be 3..5: a non-minimal zero length (80 00) is accepted */
			uint8_t out[2];
			CHECK(roost_encode_empty(out, sizeof out, type) == 2 && out[0] == pkt[0] && out[1] == 0);
			CHECK(roost_decode_empty(out, 2, NULL) == ROOST_OK);
		}
		break;
	case ROOST_MQTT_DISCONNECT:
	case ROOST_MQTT_AUTH: {
		roost_disconnect d;
		roost_auth a;
		err = type == ROOST_MQTT_AUTH ? roost_decode_auth(pkt, len, v, &a, &e)
		                              : roost_decode_disconnect(pkt, len, v, &d, &e);
		if (!err)
			check_reason_props(pkt, len, v, type);
		break;
	}
	default:
		return false; /* type 0: nothing decodes it */
	}
	CHECK(e.err == err);
	if (err)
		CHECK(e.why != NULL && e.offset <= len);
	return err == ROOST_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t versions[4] = { 0, ROOST_MQTT_V31, ROOST_MQTT_V311, ROOST_MQTT_V5 };
	roost_codec_error e;
	roost_frame f;
	roost_err err;
	uint8_t v;

	if (size < 1)
		return 0;
	v = versions[data[0] & 3];
	data++;
	size--;

	err = roost_frame_peek(data, size, 0, v, &f, &e);
	CHECK(e.err == err);
	CHECK(err == ROOST_OK || err == ROOST_ERR_NEED_MORE || err == ROOST_ERR_MALFORMED);
	if (err == ROOST_OK) {
		CHECK(f.total_len == f.header_len + f.remaining_len && f.total_len <= size);
		CHECK(f.type == data[0] >> 4 && f.flags == (data[0] & 0x0F));
		/* a limit one byte short of the packet refuses it */
		roost_frame g;
		CHECK(roost_frame_peek(data, size, f.total_len - 1, v, &g, NULL) == ROOST_ERR_TOO_LARGE);
	}
	if (size == 0)
		return 0;

	/* An exact copy so ASan catches reads past the packet. */
	size_t len = err == ROOST_OK ? f.total_len : size;
	uint8_t *pkt = malloc(len);
	CHECK(pkt);
	memcpy(pkt, data, len);
	bool accepted = decode_one(pkt, len, v);
	/* A decoder accepts only a whole packet that frame_peek accepts too.
	 * roost_decode_empty (PINGREQ, PINGRESP) takes no version: it is held
	 * to framing's version-independent rules, and the broker frames with
	 * the connection's version before it decodes (a v5 "C0 80 00" is
	 * refused there, [MQTT-1.5.5-1]). */
	uint8_t t = data[0] >> 4;
	roost_frame any;
	if (accepted && (t == ROOST_MQTT_PINGREQ || t == ROOST_MQTT_PINGRESP))
		CHECK(roost_frame_peek(data, size, 0, ROOST_MQTT_V311, &any, NULL) == ROOST_OK);
	else if (accepted)
		CHECK(err == ROOST_OK);
	free(pkt);
	return 0;
}

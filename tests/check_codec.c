/*
 * check_codec.c — the pure MQTT codec (broker/codec.c).
 *
 * Vectors are the spec's bytes written out by hand (MQTT 3.1.1 and 5.0),
 * never produced by our own encoder; the encoder is then checked against the
 * same bytes. Round-trip and truncation loops cover every packet type in
 * versions 3, 4 and 5 and run under ASan+UBSan. Test names carry the
 * normative id they check, as the codec's error strings do.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/codec.h"

Suite *codec_suite(void);

#define B(...) ((const uint8_t[]){ __VA_ARGS__ })
#define BL(...) B(__VA_ARGS__), sizeof((const uint8_t[]){ __VA_ARGS__ })
#define S(s) (const uint8_t *)(s), strlen(s)

/* ---- helpers ----------------------------------------------------------- */

static bool bytes_is(roost_bytes b, const char *s)
{
	return b.len == strlen(s) && (b.len == 0 || memcmp(b.ptr, s, b.len) == 0);
}

static roost_err peek(const uint8_t *buf, size_t len, size_t max, uint8_t version, roost_frame *f)
{
	roost_codec_error e;
	roost_err err = roost_frame_peek(buf, len, max, version, f, &e);

	ck_assert_int_eq(e.err, err);
	return err;
}

/* ---- group 1: varint and framing --------------------------------------- */

START_TEST(test_type_names)
{
	roost_frame f;

	ck_assert_str_eq(roost_mqtt_type_name(ROOST_MQTT_PUBLISH), "PUBLISH");
	ck_assert_str_eq(roost_mqtt_type_name(ROOST_MQTT_AUTH), "AUTH");
	ck_assert_str_eq(roost_mqtt_type_name(0), "UNKNOWN");
	ck_assert_str_eq(roost_mqtt_type_name(16), "UNKNOWN");
	ck_assert_int_eq(peek(BL(0xC0, 0x00), 0, ROOST_MQTT_V311, &f), ROOST_OK);
	ck_assert(bytes_is((roost_bytes){ (const uint8_t *)"PINGREQ", 7 }, roost_mqtt_type_name(f.type)));
}
END_TEST

/* Spec §2.2.3 table 2.4: the boundaries of each remaining-length size. */
static const struct {
	uint32_t value;
	uint8_t bytes[4];
	size_t n;
} varint_table[] = {
	{ 0, { 0x00 }, 1 },
	{ 127, { 0x7F }, 1 },
	{ 128, { 0x80, 0x01 }, 2 },
	{ 16383, { 0xFF, 0x7F }, 2 },
	{ 16384, { 0x80, 0x80, 0x01 }, 3 },
	{ 2097151, { 0xFF, 0xFF, 0x7F }, 3 },
	{ 2097152, { 0x80, 0x80, 0x80, 0x01 }, 4 },
	{ 268435455, { 0xFF, 0xFF, 0xFF, 0x7F }, 4 },
};

START_TEST(test_MQTT_2_2_3_varint_spec_table_encode)
{
	uint8_t out[8];

	for (size_t i = 0; i < sizeof varint_table / sizeof varint_table[0]; i++) {
		memset(out, 0xAA, sizeof out);
		ck_assert_uint_eq(roost_varint_size(varint_table[i].value), varint_table[i].n);
		ck_assert_uint_eq(roost_varint_encode(out, varint_table[i].value), varint_table[i].n);
		ck_assert_mem_eq(out, varint_table[i].bytes, varint_table[i].n);
		ck_assert_uint_eq(out[varint_table[i].n], 0xAA); /* nothing written past it */
	}
	ck_assert_uint_eq(roost_varint_size(ROOST_MQTT_MAX_REMAINING + 1), 0);
	ck_assert_uint_eq(roost_varint_encode(out, ROOST_MQTT_MAX_REMAINING + 1), 0);
	ck_assert_uint_eq(roost_varint_size(UINT32_MAX), 0);
}
END_TEST

START_TEST(test_MQTT_2_2_3_varint_spec_table_frame_peek)
{
	for (size_t i = 0; i < sizeof varint_table / sizeof varint_table[0]; i++) {
		uint8_t buf[5] = { 0x30 };
		roost_frame f;
		size_t n = varint_table[i].n;

		memcpy(buf + 1, varint_table[i].bytes, n);
		roost_err want = varint_table[i].value == 0 ? ROOST_OK : ROOST_ERR_NEED_MORE;
		ck_assert_int_eq(peek(buf, 1 + n, 0, ROOST_MQTT_V311, &f), want);
		ck_assert_uint_eq(f.type, ROOST_MQTT_PUBLISH);
		ck_assert_uint_eq(f.flags, 0);
		ck_assert_uint_eq(f.header_len, 1 + n);
		ck_assert_uint_eq(f.remaining_len, varint_table[i].value);
		ck_assert_uint_eq(f.total_len, 1 + n + varint_table[i].value);
	}
}
END_TEST

START_TEST(test_MQTT_2_2_3_five_byte_length_malformed)
{
	roost_frame f;

	ck_assert_int_eq(peek(BL(0x30, 0x80, 0x80, 0x80, 0x80, 0x01), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x30, 0xFF, 0xFF, 0xFF, 0xFF), 0, 4, &f), ROOST_ERR_MALFORMED);
	/* the fifth byte need not have arrived: four continuation bits are enough */
	ck_assert_int_eq(peek(BL(0x30, 0xFF, 0xFF, 0xFF, 0x80), 0, 5, &f), ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(f.total_len, 0);
	/* a whole packet with such a length is refused by the decoders too */
	roost_ack a;
	roost_codec_error e;
	ck_assert_int_eq(roost_decode_ack(BL(0x40, 0x82, 0x80, 0x80, 0x80, 0x00, 0x00, 0x01), 4, &a, &e),
	                 ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_frame_non_minimal_length_accepted)
{
	roost_frame f;

	/* 3.1.1 does not forbid a non-minimal encoding: 80 00 is zero */
	ck_assert_int_eq(peek(BL(0xC0, 0x80, 0x00), 0, 4, &f), ROOST_OK);
	ck_assert_uint_eq(f.header_len, 3);
	ck_assert_uint_eq(f.remaining_len, 0);
	ck_assert_uint_eq(f.total_len, 3);
}
END_TEST

START_TEST(test_frame_too_large_as_soon_as_length_known)
{
	roost_frame f;

	/* 268435455 announced; only the header has arrived */
	ck_assert_int_eq(peek(BL(0x30, 0xFF, 0xFF, 0xFF, 0x7F), 1000, 4, &f), ROOST_ERR_TOO_LARGE);
	/* total_len 12 against 11 / 12 */
	ck_assert_int_eq(peek(BL(0x30, 0x0A), 11, 4, &f), ROOST_ERR_TOO_LARGE);
	ck_assert_int_eq(peek(BL(0x30, 0x0A), 12, 4, &f), ROOST_ERR_NEED_MORE);
	ck_assert_uint_eq(f.total_len, 12);
	/* a prefix of the length cannot be judged yet */
	ck_assert_int_eq(peek(BL(0x30, 0xFF, 0xFF), 10, 4, &f), ROOST_ERR_NEED_MORE);
	ck_assert_uint_eq(f.total_len, 0);
	/* max_packet 0 means only the protocol's limit */
	ck_assert_int_eq(peek(BL(0x30, 0xFF, 0xFF, 0xFF, 0x7F), 0, 4, &f), ROOST_ERR_NEED_MORE);
	ck_assert_uint_eq(f.total_len, 5 + ROOST_MQTT_MAX_REMAINING);
}
END_TEST

START_TEST(test_frame_need_more_for_every_prefix)
{
	/* PUBLISH QoS 0, topic "a/b", 200-byte payload: remaining 205 = CD 01 */
	uint8_t pkt[3 + 205];
	roost_frame f;

	pkt[0] = 0x30;
	pkt[1] = 0xCD;
	pkt[2] = 0x01;
	pkt[3] = 0x00;
	pkt[4] = 0x03;
	memcpy(pkt + 5, "a/b", 3);
	memset(pkt + 8, 'x', 200);
	for (size_t len = 0; len < sizeof pkt; len++) {
		ck_assert_int_eq(peek(pkt, len, 0, 4, &f), ROOST_ERR_NEED_MORE);
		if (len >= 3) {
			ck_assert_uint_eq(f.header_len, 3);
			ck_assert_uint_eq(f.remaining_len, 205);
			ck_assert_uint_eq(f.total_len, sizeof pkt);
		} else {
			ck_assert_uint_eq(f.total_len, 0);
		}
	}
	ck_assert_int_eq(peek(pkt, sizeof pkt, 0, 4, &f), ROOST_OK);
	ck_assert_uint_eq(f.total_len, sizeof pkt);
	/* bytes of the next packet behind it do not matter */
	uint8_t two[] = { 0xC0, 0x00, 0xD0 };
	ck_assert_int_eq(peek(two, sizeof two, 0, 4, &f), ROOST_OK);
	ck_assert_uint_eq(f.total_len, 2);
}
END_TEST

START_TEST(test_MQTT_2_2_2_1_reserved_flags_malformed)
{
	roost_frame f;

	/* SUBSCRIBE, UNSUBSCRIBE, PUBREL must carry 0010 */
	ck_assert_int_eq(peek(BL(0x80, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0xA0, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x60, 0x02), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x8A, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x82, 0x00), 0, 4, &f), ROOST_OK);
	ck_assert_int_eq(peek(BL(0x62, 0x00), 0, 5, &f), ROOST_OK);
	/* every other type: 0000 */
	ck_assert_int_eq(peek(BL(0x42, 0x02), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0xC1, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x21, 0x02), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0xE8, 0x00), 0, 5, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x18, 0x00), 0, 0, &f), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_MQTT_2_2_2_2_decoders_check_flags_too)
{
	roost_ack a;
	roost_subscribe s;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_ack(BL(0x60, 0x02, 0x00, 0x0A), 4, &a, &e), ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 0);
	ck_assert_int_eq(roost_decode_ack(BL(0x42, 0x02, 0x00, 0x0A), 4, &a, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_unsubscribe(BL(0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_empty(BL(0xC1, 0x00), &e), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_v31_allows_dup_on_subscribe)
{
	roost_frame f;
	roost_subscribe s;
	roost_codec_error e;

	/* MQTT 3.1 sent SUBSCRIBE/UNSUBSCRIBE/PUBREL as QoS 1 and allowed DUP */
	ck_assert_int_eq(peek(BL(0x8A, 0x00), 0, 3, &f), ROOST_OK);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x8A, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), 3, &s, &e),
	                 ROOST_OK);
	ck_assert_int_eq(peek(BL(0x80, 0x00), 0, 3, &f), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_MQTT_3_3_1_4_publish_qos3_malformed)
{
	roost_frame f;
	roost_publish p;
	roost_codec_error e;

	ck_assert_int_eq(peek(BL(0x36, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x3F, 0x00), 0, 5, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_publish(BL(0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01), 4, &p, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(e.why);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.3.1-4"));
	/* QoS 0..2 with any retain bit, DUP only from QoS 1 [MQTT-3.3.1-2] */
	ck_assert_int_eq(peek(BL(0x31, 0x00), 0, 4, &f), ROOST_OK);
	ck_assert_int_eq(peek(BL(0x3B, 0x00), 0, 4, &f), ROOST_OK);
	ck_assert_int_eq(peek(BL(0x35, 0x00), 0, 4, &f), ROOST_OK);
	ck_assert_int_eq(peek(BL(0x38, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_frame_reserved_types)
{
	roost_frame f;

	ck_assert_int_eq(peek(BL(0x00, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x00, 0x00), 0, 5, &f), ROOST_ERR_MALFORMED);
	/* type 15 (AUTH) only in MQTT 5; unknown version (0) refuses it */
	ck_assert_int_eq(peek(BL(0xF0, 0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0xF0, 0x00), 0, 3, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0xF0, 0x00), 0, 0, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0xF0, 0x00), 0, 5, &f), ROOST_OK);
	ck_assert_uint_eq(f.type, ROOST_MQTT_AUTH);
	/* the type byte alone is already judged */
	ck_assert_int_eq(peek(BL(0x00), 0, 4, &f), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(peek(BL(0x10), 0, 0, &f), ROOST_ERR_NEED_MORE);
}
END_TEST

/* ---- group 2: CONNECT -------------------------------------------------- */

/*
 * 3.1.1 §3.1.2.10 example: protocol name "MQTT", level 4, flags CE (user
 * name, password, will QoS 1, will flag, clean session), keep alive 10;
 * then the payload fields in the order of §3.1.3.
 */
static const uint8_t connect_example[] = {
	0x10, 0x23,                               /* CONNECT, remaining 35 */
	0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A, /* variable header */
	0x00, 0x03, 'c', 'i', 'd',                /* client identifier */
	0x00, 0x03, 'a', '/', 'b',                /* will topic */
	0x00, 0x03, 'b', 'y', 'e',                /* will message */
	0x00, 0x04, 'u', 's', 'e', 'r',           /* user name */
	0x00, 0x02, 'p', 'w',                     /* password */
};

/* Decode a CONNECT, expect err, and return the error for further checks. */
static roost_codec_error connect_expect(const uint8_t *pkt, size_t len, roost_err want, roost_connect *c)
{
	roost_codec_error e = { 0 };

	ck_assert_int_eq(roost_decode_connect(pkt, len, c, &e), want);
	ck_assert_int_eq(e.err, want);
	if (want != ROOST_OK)
		ck_assert_ptr_nonnull(e.why);
	return e;
}

START_TEST(test_MQTT_3_1_2_10_connect_spec_example)
{
	roost_connect c;
	uint8_t out[64];

	connect_expect(connect_example, sizeof connect_example, ROOST_OK, &c);
	ck_assert(bytes_is(c.protocol_name, "MQTT"));
	ck_assert_uint_eq(c.protocol_level, 4);
	ck_assert(c.clean_start);
	ck_assert(c.will_flag);
	ck_assert_uint_eq(c.will_qos, 1);
	ck_assert(!c.will_retain);
	ck_assert(c.username_flag);
	ck_assert(c.password_flag);
	ck_assert_uint_eq(c.keepalive, 10);
	ck_assert_uint_eq(c.props.len, 0);
	ck_assert_uint_eq(c.will_props.len, 0);
	ck_assert(bytes_is(c.client_id, "cid"));
	ck_assert(bytes_is(c.will_topic, "a/b"));
	ck_assert(bytes_is(c.will_payload, "bye"));
	ck_assert(bytes_is(c.username, "user"));
	ck_assert(bytes_is(c.password, "pw"));
	/* views point into the caller's buffer */
	ck_assert_ptr_eq(c.client_id.ptr, connect_example + 14);
	/* and the encoder writes the same bytes back */
	ck_assert_uint_eq(roost_encode_connect(out, sizeof out, 4, &c), sizeof connect_example);
	ck_assert_mem_eq(out, connect_example, sizeof connect_example);
}
END_TEST

START_TEST(test_connect_mqisdp_level3)
{
	roost_connect c;
	uint8_t out[32];
	static const uint8_t pkt[] = { 0x10, 0x10, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p',
		                       0x03, 0x02, 0x00, 0x3C, 0x00, 0x02, 'c', '1' };

	connect_expect(pkt, sizeof pkt, ROOST_OK, &c);
	ck_assert(bytes_is(c.protocol_name, "MQIsdp"));
	ck_assert_uint_eq(c.protocol_level, ROOST_MQTT_V31);
	ck_assert(c.clean_start);
	ck_assert(!c.will_flag && !c.username_flag && !c.password_flag);
	ck_assert_uint_eq(c.keepalive, 60);
	ck_assert(bytes_is(c.client_id, "c1"));
	ck_assert_uint_eq(roost_encode_connect(out, sizeof out, 3, &c), sizeof pkt);
	ck_assert_mem_eq(out, pkt, sizeof pkt);
}
END_TEST

START_TEST(test_MQTT_3_1_2_2_unsupported_level)
{
	roost_connect c;
	roost_codec_error e;

	/* "MQTT" level 3 and 6 */
	e = connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x00),
	                   ROOST_ERR_UNSUPPORTED, &c);
	ck_assert_uint_eq(c.protocol_level, 3);
	ck_assert_uint_eq(e.offset, 8);
	connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00),
	               ROOST_ERR_UNSUPPORTED, &c);
	ck_assert_uint_eq(c.protocol_level, 6);
	/* "MQIsdp" only goes with level 3 */
	connect_expect(BL(0x10, 0x0E, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, 0x00, 0x3C, 0x00,
	                  0x00),
	               ROOST_ERR_UNSUPPORTED, &c);
	ck_assert_uint_eq(c.protocol_level, 4);
}
END_TEST

START_TEST(test_MQTT_3_1_2_1_bad_protocol_name)
{
	roost_connect c;
	roost_codec_error e;

	e = connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00),
	                   ROOST_ERR_MALFORMED, &c);
	ck_assert_uint_eq(e.offset, 2);
	/* lower case is another name */
	connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00),
	               ROOST_ERR_MALFORMED, &c);
	/* name length overruns the packet */
	connect_expect(BL(0x10, 0x04, 0x00, 0x04, 'M', 'Q'), ROOST_ERR_MALFORMED, &c);
}
END_TEST

START_TEST(test_MQTT_3_1_2_3_reserved_connect_flag)
{
	roost_connect c;
	roost_codec_error e;

	e = connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x3C, 0x00, 0x00),
	                   ROOST_ERR_MALFORMED, &c);
	ck_assert_uint_eq(e.offset, 9);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.1.2-3"));
	connect_expect(BL(0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x01, 0x00, 0x3C, 0x00, 0x00,
	                  0x00),
	               ROOST_ERR_MALFORMED, &c);
	/* MQTT 3.1 did not define the bit */
	connect_expect(BL(0x10, 0x0E, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x03, 0x00, 0x3C, 0x00,
	                  0x00),
	               ROOST_OK, &c);
}
END_TEST

START_TEST(test_MQTT_3_1_2_11_will_qos_or_retain_without_will_flag)
{
	roost_connect c;
	roost_codec_error e;

	/* [MQTT-3.1.2-13] will QoS 1 (flags 0A) and 2 (12) without the will flag */
	e = connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x0A, 0x00, 0x3C, 0x00, 0x00),
	                   ROOST_ERR_MALFORMED, &c);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.1.2-13"));
	connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x12, 0x00, 0x3C, 0x00, 0x00),
	               ROOST_ERR_MALFORMED, &c);
	/* [MQTT-3.1.2-15] will retain (flags 22) without the will flag */
	e = connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x22, 0x00, 0x3C, 0x00, 0x00),
	                   ROOST_ERR_MALFORMED, &c);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.1.2-15"));
}
END_TEST

START_TEST(test_MQTT_3_1_2_14_will_qos3)
{
	roost_connect c;

	/* flags 1E: will QoS 3, will flag, clean session */
	connect_expect(BL(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x1E, 0x00, 0x3C, 0x00, 0x00,
	                  0x00, 0x01, 't', 0x00, 0x00),
	               ROOST_ERR_MALFORMED, &c);
}
END_TEST

START_TEST(test_MQTT_3_1_2_22_password_without_username)
{
	roost_connect c;
	roost_codec_error e;

	/* flags 42: password, clean session; 3.1.1 refuses it */
	e = connect_expect(BL(0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x42, 0x00, 0x3C, 0x00, 0x00,
	                      0x00, 0x02, 'p', 'w'),
	                   ROOST_ERR_MALFORMED, &c);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.1.2-22"));
	/* v5 allows it (property length 0 after keep alive) */
	connect_expect(BL(0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x42, 0x00, 0x3C, 0x00, 0x00, 0x00,
	                  0x00, 0x02, 'p', 'w'),
	               ROOST_OK, &c);
	ck_assert(c.password_flag && !c.username_flag);
	ck_assert(bytes_is(c.password, "pw"));
	ck_assert_uint_eq(c.username.len, 0);
}
END_TEST

START_TEST(test_MQTT_3_1_3_1_connect_trailing_bytes)
{
	roost_connect c;
	roost_codec_error e;

	e = connect_expect(BL(0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
	                      0xFF),
	                   ROOST_ERR_MALFORMED, &c);
	ck_assert_uint_eq(e.offset, 14);
	/* a flagged field that is missing: user name flag, nothing after the id */
	connect_expect(BL(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3C, 0x00, 0x00),
	               ROOST_ERR_MALFORMED, &c);
}
END_TEST

START_TEST(test_MQTT_1_5_3_1_connect_client_id_bad_utf8)
{
	roost_connect c;
	roost_codec_error e;

	/* C0 80: overlong U+0000 */
	e = connect_expect(BL(0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02,
	                      0xC0, 0x80),
	                   ROOST_ERR_BAD_UTF8, &c);
	ck_assert_uint_eq(e.offset, 14);
	/* [MQTT-1.5.3-2] U+0000 itself */
	e = connect_expect(BL(0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02,
	                      'a', 0x00),
	                   ROOST_ERR_BAD_UTF8, &c);
	ck_assert_uint_eq(e.offset, 15);
	/* user name too: ED A0 80 is the surrogate U+D800 */
	connect_expect(BL(0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3C, 0x00, 0x00, 0x00,
	                  0x03, 0xED, 0xA0, 0x80),
	               ROOST_ERR_BAD_UTF8, &c);
}
END_TEST

START_TEST(test_MQTT_3_3_2_2_connect_will_topic_wildcard)
{
	roost_connect c;
	roost_codec_error e;

	/* flags 06: will flag, clean session; will topic "a/#", empty message */
	e = connect_expect(BL(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C, 0x00, 0x00,
	                      0x00, 0x03, 'a', '/', '#', 0x00, 0x00),
	                   ROOST_ERR_BAD_TOPIC, &c);
	ck_assert_uint_eq(e.offset, 14);
	connect_expect(BL(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C, 0x00, 0x00, 0x00,
	                  0x03, '+', '/', 'b', 0x00, 0x00),
	               ROOST_ERR_BAD_TOPIC, &c);
	/* [MQTT-4.7.3-1] empty will topic */
	connect_expect(BL(0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C, 0x00, 0x00, 0x00,
	                  0x00, 0x00, 0x00),
	               ROOST_ERR_BAD_TOPIC, &c);
	/* the same with "a/b" is fine, and QoS 2 retained */
	connect_expect(BL(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x36, 0x00, 0x3C, 0x00, 0x00, 0x00,
	                  0x03, 'a', '/', 'b', 0x00, 0x00),
	               ROOST_OK, &c);
	ck_assert_uint_eq(c.will_qos, 2);
	ck_assert(c.will_retain);
	ck_assert_uint_eq(c.will_payload.len, 0);
}
END_TEST

/* ---- group 3: the other packets ------------------------------------------ */

#define ENC_EQ(call, vec)                                                  \
	do {                                                               \
		uint8_t out_[64];                                          \
		memset(out_, 0xAA, sizeof out_);                           \
		ck_assert_uint_eq((call), sizeof(vec));                    \
		ck_assert_mem_eq(out_, (vec), sizeof(vec));                \
	} while (0)
#define OUT out_, sizeof out_

START_TEST(test_publish_vectors)
{
	static const uint8_t q1[] = { 0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i' };
	static const uint8_t q0r[] = { 0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i' };
	static const uint8_t q2d[] = { 0x3C, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34 };
	roost_publish p;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_publish(q1, sizeof q1, 4, &p, &e), ROOST_OK);
	ck_assert_uint_eq(p.qos, 1);
	ck_assert(!p.dup && !p.retain);
	ck_assert_uint_eq(p.packet_id, 10);
	ck_assert(bytes_is(p.topic, "a/b"));
	ck_assert(bytes_is(p.payload, "hi"));
	ENC_EQ(roost_encode_publish(OUT, 4, &p), q1);

	ck_assert_int_eq(roost_decode_publish(q0r, sizeof q0r, 4, &p, &e), ROOST_OK);
	ck_assert_uint_eq(p.qos, 0);
	ck_assert(p.retain);
	ck_assert_uint_eq(p.packet_id, 0);
	ck_assert(bytes_is(p.payload, "hi"));
	ENC_EQ(roost_encode_publish(OUT, 4, &p), q0r);

	/* QoS 2, DUP, empty payload */
	ck_assert_int_eq(roost_decode_publish(q2d, sizeof q2d, 3, &p, &e), ROOST_OK);
	ck_assert_uint_eq(p.qos, 2);
	ck_assert(p.dup);
	ck_assert_uint_eq(p.packet_id, 0x1234);
	ck_assert_uint_eq(p.payload.len, 0);
	ENC_EQ(roost_encode_publish(OUT, 3, &p), q2d);
}
END_TEST

START_TEST(test_ack_vectors)
{
	static const uint8_t puback[] = { 0x40, 0x02, 0x00, 0x0A };
	static const uint8_t pubrec[] = { 0x50, 0x02, 0x00, 0x0A };
	static const uint8_t pubrel[] = { 0x62, 0x02, 0x00, 0x0A };
	static const uint8_t pubcomp[] = { 0x70, 0x02, 0x00, 0x0A };
	const uint8_t *vec[] = { puback, pubrec, pubrel, pubcomp };
	roost_ack a;
	roost_codec_error e;

	for (uint8_t v = 3; v <= 5; v++) {
		for (size_t i = 0; i < 4; i++) {
			ck_assert_int_eq(roost_decode_ack(vec[i], 4, v, &a, &e), ROOST_OK);
			ck_assert_uint_eq(a.packet_id, 10);
			ck_assert_uint_eq(a.reason, 0);
			ck_assert_uint_eq(a.props.len, 0);
		}
		ENC_EQ(roost_encode_ack(OUT, v, ROOST_MQTT_PUBACK, &a), puback);
		ENC_EQ(roost_encode_ack(OUT, v, ROOST_MQTT_PUBREC, &a), pubrec);
		ENC_EQ(roost_encode_ack(OUT, v, ROOST_MQTT_PUBREL, &a), pubrel);
		ENC_EQ(roost_encode_ack(OUT, v, ROOST_MQTT_PUBCOMP, &a), pubcomp);
	}
	/* v5 with a reason code (0x10 no matching subscribers), no properties */
	ck_assert_int_eq(roost_decode_ack(BL(0x40, 0x03, 0x00, 0x0A, 0x10), 5, &a, &e), ROOST_OK);
	ck_assert_uint_eq(a.reason, 0x10);
	ENC_EQ(roost_encode_ack(OUT, 5, ROOST_MQTT_PUBACK, &a), B(0x40, 0x03, 0x00, 0x0A, 0x10));
	/* a reason byte is an error before v5 */
	ck_assert_int_eq(roost_decode_ack(BL(0x40, 0x03, 0x00, 0x0A, 0x10), 4, &a, &e), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_subscribe_vectors)
{
	static const uint8_t sub[] = { 0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01,
		                       0x00, 0x03, 'c', '/', 'd', 0x02 };
	static const uint8_t unsub[] = { 0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b',
		                         0x00, 0x03, 'c', '/', 'd' };
	roost_subscribe s;
	roost_sub_iter it;
	roost_sub_entry ent[3];
	roost_codec_error e;
	size_t n = 0;

	ck_assert_int_eq(roost_decode_subscribe(sub, sizeof sub, 4, &s, &e), ROOST_OK);
	ck_assert_uint_eq(s.packet_id, 10);
	ck_assert_uint_eq(s.count, 2);
	roost_sub_iter_init(&it, &s, true);
	while (n < 3 && roost_sub_next(&it, &ent[n]))
		n++;
	ck_assert_uint_eq(n, 2);
	ck_assert(bytes_is(ent[0].filter, "a/b"));
	ck_assert_uint_eq(ent[0].options, 1);
	ck_assert(bytes_is(ent[1].filter, "c/d"));
	ck_assert_uint_eq(ent[1].options, 2);
	ENC_EQ(roost_encode_subscribe(OUT, 4, s.packet_id, ent, n), sub);

	ck_assert_int_eq(roost_decode_unsubscribe(unsub, sizeof unsub, 4, &s, &e), ROOST_OK);
	ck_assert_uint_eq(s.count, 2);
	roost_sub_iter_init(&it, &s, false);
	for (n = 0; n < 3 && roost_sub_next(&it, &ent[n]); n++)
		ck_assert_uint_eq(ent[n].options, 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(bytes_is(ent[1].filter, "c/d"));
	ENC_EQ(roost_encode_unsubscribe(OUT, 4, s.packet_id, ent, n), unsub);
}
END_TEST

START_TEST(test_suback_unsuback_vectors)
{
	static const uint8_t suback[] = { 0x90, 0x03, 0x00, 0x0A, 0x01 };
	static const uint8_t unsuback[] = { 0xB0, 0x02, 0x00, 0x0A };
	roost_suback s;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_suback(suback, sizeof suback, 4, &s, &e), ROOST_OK);
	ck_assert_uint_eq(s.packet_id, 10);
	ck_assert_uint_eq(s.codes.len, 1);
	ck_assert_uint_eq(s.codes.ptr[0], 0x01);
	ENC_EQ(roost_encode_suback(OUT, 4, &s), suback);
	/* 0x80 failure is a valid 3.1.1 return code */
	ck_assert_int_eq(roost_decode_suback(BL(0x90, 0x04, 0x00, 0x0A, 0x80, 0x02), 4, &s, &e), ROOST_OK);
	ck_assert_uint_eq(s.codes.len, 2);

	ck_assert_int_eq(roost_decode_unsuback(unsuback, sizeof unsuback, 4, &s, &e), ROOST_OK);
	ck_assert_uint_eq(s.packet_id, 10);
	ck_assert_uint_eq(s.codes.len, 0);
	ENC_EQ(roost_encode_unsuback(OUT, 4, &s), unsuback);
	roost_ack a = { .packet_id = 10 };
	ENC_EQ(roost_encode_ack(OUT, 4, ROOST_MQTT_UNSUBACK, &a), unsuback);
}
END_TEST

START_TEST(test_empty_and_connack_vectors)
{
	static const uint8_t pingreq[] = { 0xC0, 0x00 };
	static const uint8_t pingresp[] = { 0xD0, 0x00 };
	static const uint8_t disconnect[] = { 0xE0, 0x00 };
	static const uint8_t connack[] = { 0x20, 0x02, 0x01, 0x00 };
	roost_codec_error e;
	roost_disconnect d;
	roost_connack c;

	ck_assert_int_eq(roost_decode_empty(pingreq, 2, &e), ROOST_OK);
	ck_assert_int_eq(roost_decode_empty(pingresp, 2, &e), ROOST_OK);
	ck_assert_int_eq(roost_decode_empty(disconnect, 2, &e), ROOST_OK);
	ENC_EQ(roost_encode_empty(OUT, ROOST_MQTT_PINGREQ), pingreq);
	ENC_EQ(roost_encode_empty(OUT, ROOST_MQTT_PINGRESP), pingresp);
	for (uint8_t v = 3; v <= 5; v++) {
		ck_assert_int_eq(roost_decode_disconnect(disconnect, 2, v, &d, &e), ROOST_OK);
		ck_assert_uint_eq(d.reason, 0);
		ENC_EQ(roost_encode_disconnect(OUT, v, &d), disconnect);
	}
	uint8_t buf[2];
	ck_assert_uint_eq(roost_encode_empty(buf, sizeof buf, ROOST_MQTT_CONNECT), 0);

	ck_assert_int_eq(roost_decode_connack(connack, sizeof connack, 4, &c, &e), ROOST_OK);
	ck_assert(c.session_present);
	ck_assert_uint_eq(c.code, 0);
	ENC_EQ(roost_encode_connack(OUT, 4, &c), connack);
	/* 3.1.1 return code 5 (not authorised) without session present */
	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x02, 0x00, 0x05), 4, &c, &e), ROOST_OK);
	ck_assert_uint_eq(c.code, 5);
	ck_assert(!c.session_present);
}
END_TEST

START_TEST(test_MQTT_3_3_2_2_wildcard_in_topic_rejected)
{
	roost_publish p;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x05, 0x00, 0x03, 'a', '/', '#'), 4, &p, &e),
	                 ROOST_ERR_BAD_TOPIC);
	ck_assert_uint_eq(e.offset, 6);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.3.2-2"));
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x05, 0x00, 0x03, '+', '/', 'b'), 4, &p, &e),
	                 ROOST_ERR_BAD_TOPIC);
	ck_assert_uint_eq(e.offset, 4);
	/* past the 8-byte fast path too */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x0C, 0x00, 0x0A, 's', 'p', 'o', 'r', 't', '/', 't',
	                                         'e', 'n', '+'),
	                                      4, &p, &e),
	                 ROOST_ERR_BAD_TOPIC);
	ck_assert_uint_eq(e.offset, 13);
	/* the payload may contain anything */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x05, 0x00, 0x01, 'a', '#', 0x00), 4, &p, &e), ROOST_OK);
}
END_TEST

START_TEST(test_MQTT_4_7_3_1_empty_topic_rejected)
{
	roost_publish p;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x02, 0x00, 0x00), 4, &p, &e), ROOST_ERR_BAD_TOPIC);
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x02, 0x00, 0x00), 3, &p, &e), ROOST_ERR_BAD_TOPIC);
	/* v5: only with a Topic Alias (23 00 01) */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x03, 0x00, 0x00, 0x00), 5, &p, &e), ROOST_ERR_BAD_TOPIC);
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01), 5, &p, &e),
	                 ROOST_OK);
	ck_assert_uint_eq(p.topic.len, 0);
	ck_assert_uint_eq(p.props.len, 3);
}
END_TEST

START_TEST(test_MQTT_2_3_1_1_packet_id_zero_rejected)
{
	roost_publish p;
	roost_subscribe s;
	roost_ack a;
	roost_suback sa;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_publish(BL(0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00), 4, &p, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 5);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-2.3.1-1"));
	ck_assert_int_eq(roost_decode_publish(BL(0x34, 0x05, 0x00, 0x01, 'a', 0x00, 0x00), 4, &p, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 2);
	ck_assert_int_eq(roost_decode_unsubscribe(BL(0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_ack(BL(0x40, 0x02, 0x00, 0x00), 4, &a, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_ack(BL(0x62, 0x02, 0x00, 0x00), 5, &a, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_suback(BL(0x90, 0x03, 0x00, 0x00, 0x00), 4, &sa, &e), ROOST_ERR_MALFORMED);
	/* QoS 0 has no packet id: the two bytes are payload */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x05, 0x00, 0x01, 'a', 0x00, 0x00), 4, &p, &e), ROOST_OK);
	ck_assert_uint_eq(p.payload.len, 2);
}
END_TEST

START_TEST(test_MQTT_3_8_3_3_subscribe_without_filters)
{
	roost_subscribe s;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x02, 0x00, 0x0A), 4, &s, &e), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.8.3-3"));
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x03, 0x00, 0x0A, 0x00), 5, &s, &e), ROOST_ERR_MALFORMED);
	/* the encoder refuses to build one */
	uint8_t out[16];
	ck_assert_uint_eq(roost_encode_subscribe(out, sizeof out, 4, 10, NULL, 0), 0);
}
END_TEST

START_TEST(test_MQTT_3_8_3_4_requested_qos3_or_reserved_bits)
{
	roost_subscribe s;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x06, 0x00, 0x0A, 0x00, 0x01, 'a', 0x03), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 7);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3-8.3-4"));
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x06, 0x00, 0x0A, 0x00, 0x01, 'a', 0x04), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x06, 0x00, 0x0A, 0x00, 0x01, 'a', 0x80), 3, &s, &e),
	                 ROOST_ERR_MALFORMED);
	/* v5: bits 2-5 are options; QoS 3 is a Protocol Error, bits 6-7 malformed */
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x07, 0x00, 0x0A, 0x00, 0x00, 0x01, 'a', 0x2E), 5, &s, &e),
	                 ROOST_OK);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x07, 0x00, 0x0A, 0x00, 0x00, 0x01, 'a', 0x03), 5, &s, &e),
	                 ROOST_ERR_PROTOCOL);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x07, 0x00, 0x0A, 0x00, 0x00, 0x01, 'a', 0x30), 5, &s, &e),
	                 ROOST_ERR_PROTOCOL);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x07, 0x00, 0x0A, 0x00, 0x00, 0x01, 'a', 0x40), 5, &s, &e),
	                 ROOST_ERR_MALFORMED);
	/* options byte missing */
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x05, 0x00, 0x0A, 0x00, 0x01, 'a'), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_MQTT_3_10_3_2_unsubscribe_without_filters)
{
	roost_subscribe s;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_unsubscribe(BL(0xA2, 0x02, 0x00, 0x0A), 4, &s, &e), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.why, "MQTT-3.10.3-2"));
	/* a filter length that overruns */
	ck_assert_int_eq(roost_decode_unsubscribe(BL(0xA2, 0x05, 0x00, 0x0A, 0x00, 0x02, 'a'), 4, &s, &e),
	                 ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_subscribe_filter_syntax_left_to_broker)
{
	roost_subscribe s;
	roost_sub_iter it;
	roost_sub_entry ent;
	roost_codec_error e;

	/* "a/#/b" breaks [MQTT-4.7.1-2] but is well encoded: SUBACK 0x80 is the broker's
	 * (a static array: views must outlive the assertion macro's block) */
	static const uint8_t pkt[] = { 0x82, 0x0A, 0x00, 0x0A, 0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00 };

	ck_assert_int_eq(roost_decode_subscribe(pkt, sizeof pkt, 4, &s, &e), ROOST_OK);
	roost_sub_iter_init(&it, &s, true);
	ck_assert(roost_sub_next(&it, &ent));
	ck_assert(bytes_is(ent.filter, "a/#/b"));
	ck_assert(!roost_topic_filter_valid(ent.filter.ptr, ent.filter.len));
	ck_assert(!roost_sub_next(&it, &ent));
	/* an empty filter and "sport+" likewise, in UNSUBSCRIBE too */
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x00), 4, &s, &e), ROOST_OK);
	ck_assert_int_eq(roost_decode_unsubscribe(BL(0xA2, 0x0A, 0x00, 0x0A, 0x00, 0x06, 's', 'p', 'o', 'r', 't',
	                                             '+'),
	                                          4, &s, &e),
	                 ROOST_OK);
	/* but the encoding is checked: bad UTF-8 in a filter */
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x07, 0x00, 0x0A, 0x00, 0x02, 0xC0, 0x80, 0x00), 4, &s, &e),
	                 ROOST_ERR_BAD_UTF8);
	ck_assert_uint_eq(e.offset, 6);
}
END_TEST

START_TEST(test_MQTT_3_12_pingreq_with_body)
{
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_empty(BL(0xC0, 0x01, 0x00), &e), ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 2);
	ck_assert_int_eq(roost_decode_empty(BL(0xD0, 0x01, 0x00), &e), ROOST_ERR_MALFORMED);
	/* remaining length says 0, one byte more was handed over */
	ck_assert_int_eq(roost_decode_empty(BL(0xC0, 0x00, 0x00), &e), ROOST_ERR_MALFORMED);
	/* not a PING */
	ck_assert_int_eq(roost_decode_empty(BL(0x40, 0x00), &e), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_MQTT_3_14_disconnect_v311_with_body)
{
	roost_disconnect d;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_disconnect(BL(0xE0, 0x01, 0x00), 4, &d, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_disconnect(BL(0xE0, 0x01, 0x00), 3, &d, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_empty(BL(0xE0, 0x01, 0x00), &e), ROOST_ERR_MALFORMED);
	/* v5: a reason code (0x04 disconnect with will) */
	ck_assert_int_eq(roost_decode_disconnect(BL(0xE0, 0x01, 0x04), 5, &d, &e), ROOST_OK);
	ck_assert_uint_eq(d.reason, 0x04);
	ck_assert_int_eq(roost_decode_disconnect(BL(0xE0, 0x01, 0x05), 5, &d, &e), ROOST_ERR_PROTOCOL);
}
END_TEST

START_TEST(test_MQTT_3_2_2_1_connack_reserved_bits)
{
	roost_connack c;
	roost_codec_error e;

	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x02, 0x02, 0x00), 4, &c, &e), ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 2);
	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x02, 0x80, 0x00), 4, &c, &e), ROOST_ERR_MALFORMED);
	/* MQTT 3.1 did not use the byte */
	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x02, 0x80, 0x00), 3, &c, &e), ROOST_OK);
	ck_assert(!c.session_present);
	/* [MQTT-3.2.2-4] session present with a refusal; reserved return code 6 */
	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x02, 0x01, 0x05), 4, &c, &e), ROOST_ERR_PROTOCOL);
	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x02, 0x00, 0x06), 4, &c, &e), ROOST_ERR_PROTOCOL);
	ck_assert_int_eq(roost_decode_connack(BL(0x20, 0x03, 0x00, 0x00, 0x00), 4, &c, &e), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_acks_lists_malformed)
{
	roost_suback s;
	roost_ack a;
	roost_codec_error e;

	/* [MQTT-3.9.3-2] reserved SUBACK return code, SUBACK without codes */
	ck_assert_int_eq(roost_decode_suback(BL(0x90, 0x03, 0x00, 0x0A, 0x03), 4, &s, &e), ROOST_ERR_PROTOCOL);
	ck_assert_int_eq(roost_decode_suback(BL(0x90, 0x02, 0x00, 0x0A), 4, &s, &e), ROOST_ERR_MALFORMED);
	/* 3.1.1 UNSUBACK is two bytes */
	ck_assert_int_eq(roost_decode_unsuback(BL(0xB0, 0x03, 0x00, 0x0A, 0x00), 4, &s, &e), ROOST_ERR_MALFORMED);
	/* wrong decoder for the type; unknown version */
	ck_assert_int_eq(roost_decode_ack(BL(0xC0, 0x00), 4, &a, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_ack(BL(0x40, 0x02, 0x00, 0x0A), 0, &a, &e), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_decode_ack(BL(0x40, 0x02, 0x00, 0x0A), 6, &a, &e), ROOST_ERR_INVALID);
}
END_TEST

/* ---- group 4: UTF-8 and topics ---------------------------------------- */

START_TEST(test_MQTT_1_5_3_1_utf8_ill_formed_rejected)
{
	static const struct {
		uint8_t b[5];
		size_t n;
	} bad[] = {
		{ { 0xC0, 0x80 }, 2 },             /* overlong U+0000 */
		{ { 0xC1, 0xBF }, 2 },             /* overlong U+007F */
		{ { 0xE0, 0x80, 0x80 }, 3 },       /* overlong 3-byte */
		{ { 0xE0, 0x9F, 0xBF }, 3 },       /* overlong U+07FF */
		{ { 0xF0, 0x80, 0x80, 0x80 }, 4 }, /* overlong 4-byte */
		{ { 0xF0, 0x8F, 0xBF, 0xBF }, 4 }, /* overlong U+FFFF */
		{ { 0xED, 0xA0, 0x80 }, 3 },       /* surrogate U+D800 */
		{ { 0xED, 0xBF, 0xBF }, 3 },       /* surrogate U+DFFF */
		{ { 0xF4, 0x90, 0x80, 0x80 }, 4 }, /* U+110000 > U+10FFFF */
		{ { 0xF5, 0x80, 0x80, 0x80 }, 4 },
		{ { 0xF8, 0x88, 0x80, 0x80, 0x80 }, 5 }, /* old 5-byte form */
		{ { 0xFC }, 1 },
		{ { 0xFE }, 1 },
		{ { 0xFF }, 1 },
		{ { 0x80 }, 1 },                   /* stray continuation */
		{ { 0xC3 }, 1 },                   /* truncated 2-byte */
		{ { 0xE2, 0x82 }, 2 },             /* truncated 3-byte */
		{ { 0xF0, 0x9F, 0x98 }, 3 },       /* truncated 4-byte */
		{ { 0xC3, 0x41 }, 2 },             /* continuation missing */
		{ { 0xE2, 0x82, 0xC0 }, 3 },
		{ { 0x00 }, 1 },                   /* [MQTT-1.5.3-2] U+0000 */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(!roost_utf8_valid(bad[i].b, bad[i].n), "case %zu accepted", i);
		/* the same after 8 ASCII bytes (past the word-at-a-time path) and before one */
		uint8_t buf[32];
		memcpy(buf, "abcdefghi", 9);
		memcpy(buf + 9, bad[i].b, bad[i].n);
		buf[9 + bad[i].n] = 'z';
		ck_assert_msg(!roost_utf8_valid(buf, 9 + bad[i].n), "case %zu accepted at the end", i);
		ck_assert_msg(!roost_utf8_valid(buf, 10 + bad[i].n), "case %zu accepted inside", i);
	}
	/* U+0000 in the middle of a long ASCII run */
	ck_assert(!roost_utf8_valid((const uint8_t *)"abcdefgh\0abcdefgh", 17));
	ck_assert(!roost_utf8_valid((const uint8_t *)"abcdefghijklmno\0", 16));
}
END_TEST

START_TEST(test_MQTT_1_5_3_1_utf8_well_formed_accepted)
{
	ck_assert(roost_utf8_valid(NULL, 0));
	ck_assert(roost_utf8_valid(S("plain ascii, longer than eight bytes")));
	ck_assert(roost_utf8_valid(BL(0x7F)));
	ck_assert(roost_utf8_valid(BL(0xC2, 0x80)));             /* U+0080 */
	ck_assert(roost_utf8_valid(BL(0xC3, 0xA9)));             /* é */
	ck_assert(roost_utf8_valid(BL(0xDF, 0xBF)));             /* U+07FF */
	ck_assert(roost_utf8_valid(BL(0xE0, 0xA0, 0x80)));       /* U+0800 */
	ck_assert(roost_utf8_valid(BL(0xE2, 0x82, 0xAC)));       /* € */
	ck_assert(roost_utf8_valid(BL(0xED, 0x9F, 0xBF)));       /* U+D7FF */
	ck_assert(roost_utf8_valid(BL(0xEE, 0x80, 0x80)));       /* U+E000 */
	ck_assert(roost_utf8_valid(BL(0xEF, 0xBF, 0xBF)));       /* U+FFFF */
	ck_assert(roost_utf8_valid(BL(0xF0, 0x90, 0x80, 0x80))); /* U+10000 */
	ck_assert(roost_utf8_valid(BL(0xF0, 0x9F, 0x98, 0x80))); /* 😀 */
	ck_assert(roost_utf8_valid(BL(0xF4, 0x8F, 0xBF, 0xBF))); /* U+10FFFF */
	/* [MQTT-1.5.3-3] U+FEFF is not stripped and is valid */
	ck_assert(roost_utf8_valid(BL(0xEF, 0xBB, 0xBF, 'a')));
	/* mixed, crossing an 8-byte boundary */
	ck_assert(roost_utf8_valid(S("sport/t\xc3\xa9nnis/\xe2\x82\xac/\xf0\x9f\x98\x80")));
}
END_TEST

START_TEST(test_MQTT_4_7_topic_filter_spec_examples)
{
	/* §4.7.1.2 multi-level wildcard */
	ck_assert(roost_topic_filter_valid(S("sport/tennis/player1/#")));
	ck_assert(roost_topic_filter_valid(S("sport/tennis/#")));
	ck_assert(roost_topic_filter_valid(S("sport/#")));
	ck_assert(roost_topic_filter_valid(S("#")));
	ck_assert(!roost_topic_filter_valid(S("sport/tennis#")));
	ck_assert(!roost_topic_filter_valid(S("sport/tennis/#/ranking")));
	ck_assert(!roost_topic_filter_valid(S("##")));
	ck_assert(!roost_topic_filter_valid(S("/#/")));
	/* §4.7.1.3 single-level wildcard */
	ck_assert(roost_topic_filter_valid(S("+")));
	ck_assert(roost_topic_filter_valid(S("+/tennis/#")));
	ck_assert(roost_topic_filter_valid(S("sport/+/player1")));
	ck_assert(roost_topic_filter_valid(S("/+")));
	ck_assert(roost_topic_filter_valid(S("+/+")));
	ck_assert(!roost_topic_filter_valid(S("sport+")));
	ck_assert(!roost_topic_filter_valid(S("+sport")));
	ck_assert(!roost_topic_filter_valid(S("sport/+a/b")));
	ck_assert(!roost_topic_filter_valid(S("++")));
	/* §4.7.3 */
	ck_assert(roost_topic_filter_valid(S("/")));
	ck_assert(roost_topic_filter_valid(S("//")));
	ck_assert(roost_topic_filter_valid(S("$SYS/#")));
	ck_assert(!roost_topic_filter_valid(S("")));
	ck_assert(!roost_topic_filter_valid(BL('a', 0x00)));
	ck_assert(!roost_topic_filter_valid(BL('a', '/', 0xC0, 0x80)));
}
END_TEST

START_TEST(test_MQTT_4_7_3_1_topic_name_rules)
{
	ck_assert(roost_topic_name_valid(S("sport/tennis/player1")));
	ck_assert(roost_topic_name_valid(S("/")));
	ck_assert(roost_topic_name_valid(S("/finance")));
	ck_assert(roost_topic_name_valid(S("$SYS/broker/uptime")));
	ck_assert(roost_topic_name_valid(S("a b")));
	ck_assert(roost_topic_name_valid(S("t\xc3\xa9")));
	/* [MQTT-4.7.3-1] */
	ck_assert(!roost_topic_name_valid(S("")));
	/* [MQTT-3.3.2-2] no wildcards anywhere, including long names */
	ck_assert(!roost_topic_name_valid(S("#")));
	ck_assert(!roost_topic_name_valid(S("+")));
	ck_assert(!roost_topic_name_valid(S("sport/tennis/#")));
	ck_assert(!roost_topic_name_valid(S("sport+")));
	ck_assert(!roost_topic_name_valid(S("abcdefgh/abcdefgh/abcdefgh+")));
	ck_assert(!roost_topic_name_valid(S("abcdefgh/abcd#fgh/abcdefgh")));
	/* [MQTT-4.7.3-2] U+0000, bad UTF-8 */
	ck_assert(!roost_topic_name_valid(BL('a', 0x00, 'b')));
	ck_assert(!roost_topic_name_valid(BL('a', 0xED, 0xA0, 0x80)));
}
END_TEST

START_TEST(test_topic_length_limit)
{
	static uint8_t big[65536];

	memset(big, 'a', sizeof big);
	ck_assert(roost_topic_name_valid(big, 65535));
	ck_assert(roost_topic_filter_valid(big, 65535));
	ck_assert(!roost_topic_name_valid(big, 65536));
	ck_assert(!roost_topic_filter_valid(big, 65536));
	ck_assert(roost_utf8_valid(big, sizeof big));
}
END_TEST

/* ---- group 5: round trip and truncation over every packet type ---------- */

/* Property blocks live at file scope: a view must outlive the block that sets it. */
#define PROPS(a) ((roost_bytes){ (a), sizeof(a) })
static const uint8_t P_CONNECT[] = { 0x11, 0, 0, 0, 60, 0x26, 0, 1, 'k', 0, 1, 'v' };
static const uint8_t P_WILL[] = { 0x18, 0, 0, 0, 5, 0x01, 0x01 };
static const uint8_t P_CONNACK[] = { 0x11, 0, 0, 0, 60, 0x22, 0, 10, 0x1F, 0, 2, 'o', 'k' };
static const uint8_t P_PUBLISH[] = { 0x23, 0, 5, 0x26, 0, 1, 'k', 0, 1, 'v' };
static const uint8_t P_ALIAS[] = { 0x23, 0, 5 };
static const uint8_t P_ACK[] = { 0x1F, 0, 4, 'w', 'h', 'y', '!', 0x26, 0, 1, 'k', 0, 0 };
static const uint8_t P_SUBACK[] = { 0x1F, 0, 1, '?' };
static const uint8_t P_DISCONNECT[] = { 0x11, 0, 0, 0, 0, 0x1F, 0, 3, 'b', 'y', 'e' };
static const uint8_t P_AUTH[] = { 0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', 0x16, 0, 2, 'x', 'y' };
static const uint8_t NO_SUB[] = { 0x11 }; /* v5 UNSUBACK: no subscription existed */
#define STR(s) ((roost_bytes){ (const uint8_t *)(s), sizeof(s) - 1 })

struct pkt {
	uint8_t version;
	uint8_t buf[160];
	size_t len;
	size_t min_ok; /* a truncation to a shorter remaining length may decode from here on */
};

struct table {
	struct pkt p[80];
	size_t n;
};

#define STRICT SIZE_MAX

/* Append the packet just encoded into the next slot; STRICT: no shorter form is valid. */
static void add(struct table *t, uint8_t version, size_t len, size_t min_ok)
{
	struct pkt *p = &t->p[t->n];
	roost_frame f;

	ck_assert_uint_gt(len, 0);
	ck_assert_uint_le(len, sizeof p->buf);
	ck_assert_int_eq(peek(p->buf, len, 0, version, &f), ROOST_OK);
	ck_assert_uint_eq(f.total_len, len);
	p->version = version;
	p->len = len;
	p->min_ok = min_ok == STRICT ? f.remaining_len : min_ok;
	t->n++;
	ck_assert_uint_lt(t->n, sizeof t->p / sizeof t->p[0]);
}

#define SLOT(t) (t)->p[(t)->n].buf, sizeof (t)->p[0].buf

static void build_table(struct table *t)
{
	roost_sub_entry two[] = { { STR("a/+"), 1 }, { STR("c/#"), 2 } };
	static const uint8_t codes[] = { 0x00, 0x02, 0x80 };

	t->n = 0;
	for (uint8_t v = 3; v <= 5; v++) {
		bool v5 = v == 5;
		roost_connect c = { .clean_start = true, .keepalive = 30, .client_id = STR("client-1") };
		add(t, v, roost_encode_connect(SLOT(t), v, &c), STRICT);
		c.will_flag = c.username_flag = c.password_flag = c.will_retain = true;
		c.will_qos = 2;
		c.will_topic = STR("will/topic");
		c.will_payload = STR("gone");
		c.username = STR("user");
		c.password = STR("\x00\xff");
		if (v5) { /* session expiry 60, user property k=v; will delay 5 */
			c.props = PROPS(P_CONNECT);
			c.will_props = PROPS(P_WILL);
		}
		add(t, v, roost_encode_connect(SLOT(t), v, &c), STRICT);

		roost_connack ca = { .session_present = v != 3, .code = 0 };
		if (v5) /* session expiry, topic alias maximum 10, reason string */
			ca.props = PROPS(P_CONNACK);
		add(t, v, roost_encode_connack(SLOT(t), v, &ca), STRICT);

		for (uint8_t q = 0; q <= 2; q++) {
			roost_publish p = { .qos = q, .retain = q == 2, .dup = q == 1, .packet_id = q ? 7 : 0,
				            .topic = STR("sensors/temp"), .payload = STR("21.5") };
			if (v5) /* topic alias 5, user property */
				p.props = PROPS(P_PUBLISH);
			size_t head = roost_encode_publish_header(NULL, 0, v, &p);
			size_t len = roost_encode_publish(SLOT(t), v, &p);
			add(t, v, len, head - 2);
		}
		if (v5) { /* empty topic with a Topic Alias */
			roost_publish p = { .props = PROPS(P_ALIAS), .payload = STR("x") };
			add(t, v, roost_encode_publish(SLOT(t), v, &p), 2 + 1 + 3);
		}

		for (uint8_t type = ROOST_MQTT_PUBACK; type <= ROOST_MQTT_PUBCOMP; type++) {
			roost_ack a = { .packet_id = 0xBEEF };
			add(t, v, roost_encode_ack(SLOT(t), v, type, &a), STRICT);
			if (!v5)
				continue;
			a.reason = type <= ROOST_MQTT_PUBREC ? 0x10 : 0x92;
			add(t, v, roost_encode_ack(SLOT(t), v, type, &a), 2);
			a.props = PROPS(P_ACK);
			add(t, v, roost_encode_ack(SLOT(t), v, type, &a), 2);
		}

		add(t, v, roost_encode_subscribe(SLOT(t), v, 1, two, 1), STRICT);
		add(t, v, roost_encode_subscribe(SLOT(t), v, 2, two, 2), 2 + v5 + 5 + 1);
		add(t, v, roost_encode_unsubscribe(SLOT(t), v, 3, two, 1), STRICT);
		add(t, v, roost_encode_unsubscribe(SLOT(t), v, 4, two, 2), 2 + v5 + 5);

		roost_suback sa = { .packet_id = 9, .codes = { codes, 3 } };
		if (v5)
			sa.props = PROPS(P_SUBACK);
		add(t, v, roost_encode_suback(SLOT(t), v, &sa), 2 + (v5 ? 5 : 0) + 1);
		sa.codes.len = 1;
		if (v5)
			sa.codes.ptr = NO_SUB;
		add(t, v, roost_encode_unsuback(SLOT(t), v, &sa), STRICT);

		add(t, v, roost_encode_empty(SLOT(t), ROOST_MQTT_PINGREQ), STRICT);
		add(t, v, roost_encode_empty(SLOT(t), ROOST_MQTT_PINGRESP), STRICT);
		roost_disconnect d = { 0 };
		add(t, v, roost_encode_disconnect(SLOT(t), v, &d), STRICT);
		if (v5) {
			d.reason = 0x04;
			d.props = PROPS(P_DISCONNECT);
			add(t, v, roost_encode_disconnect(SLOT(t), v, &d), 0);
			roost_auth au = { .reason = 0x18,
				          .props = PROPS(P_AUTH) };
			add(t, v, roost_encode_auth(SLOT(t), v, &au), 0);
		}
	}
}

/*
 * Decode pkt with the decoder its type calls for, then encode what was
 * decoded into out. Returns the decoder's verdict; *n the encoded size.
 */
static roost_err reencode(uint8_t v, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap, size_t *n)
{
	roost_codec_error e;
	roost_err err;
	uint8_t type = len ? pkt[0] >> 4 : 0;

	*n = 0;
	switch (type) {
	case ROOST_MQTT_CONNECT: {
		roost_connect c;
		if (!(err = roost_decode_connect(pkt, len, &c, &e)))
			*n = roost_encode_connect(out, cap, c.protocol_level, &c);
		break;
	}
	case ROOST_MQTT_CONNACK: {
		roost_connack c;
		if (!(err = roost_decode_connack(pkt, len, v, &c, &e)))
			*n = roost_encode_connack(out, cap, v, &c);
		break;
	}
	case ROOST_MQTT_PUBLISH: {
		roost_publish p;
		if (!(err = roost_decode_publish(pkt, len, v, &p, &e)))
			*n = roost_encode_publish(out, cap, v, &p);
		break;
	}
	case ROOST_MQTT_PUBACK:
	case ROOST_MQTT_PUBREC:
	case ROOST_MQTT_PUBREL:
	case ROOST_MQTT_PUBCOMP: {
		roost_ack a;
		if (!(err = roost_decode_ack(pkt, len, v, &a, &e)))
			*n = roost_encode_ack(out, cap, v, type, &a);
		break;
	}
	case ROOST_MQTT_SUBSCRIBE:
	case ROOST_MQTT_UNSUBSCRIBE: {
		bool sub = type == ROOST_MQTT_SUBSCRIBE;
		roost_subscribe s;
		roost_sub_iter it;
		roost_sub_entry ent[16];
		size_t k = 0;
		err = sub ? roost_decode_subscribe(pkt, len, v, &s, &e) : roost_decode_unsubscribe(pkt, len, v, &s, &e);
		if (err)
			break;
		roost_sub_iter_init(&it, &s, sub);
		while (k < 16 && roost_sub_next(&it, &ent[k]))
			k++;
		ck_assert_uint_eq(k, s.count);
		*n = sub ? roost_encode_subscribe(out, cap, v, s.packet_id, ent, k)
		         : roost_encode_unsubscribe(out, cap, v, s.packet_id, ent, k);
		break;
	}
	case ROOST_MQTT_SUBACK:
	case ROOST_MQTT_UNSUBACK: {
		roost_suback s;
		bool sub = type == ROOST_MQTT_SUBACK;
		err = sub ? roost_decode_suback(pkt, len, v, &s, &e) : roost_decode_unsuback(pkt, len, v, &s, &e);
		if (!err)
			*n = sub ? roost_encode_suback(out, cap, v, &s) : roost_encode_unsuback(out, cap, v, &s);
		break;
	}
	case ROOST_MQTT_PINGREQ:
	case ROOST_MQTT_PINGRESP:
		if (!(err = roost_decode_empty(pkt, len, &e)))
			*n = roost_encode_empty(out, cap, type);
		break;
	case ROOST_MQTT_DISCONNECT: {
		roost_disconnect d;
		if (!(err = roost_decode_disconnect(pkt, len, v, &d, &e)))
			*n = roost_encode_disconnect(out, cap, v, &d);
		break;
	}
	case ROOST_MQTT_AUTH: {
		roost_auth a;
		if (!(err = roost_decode_auth(pkt, len, v, &a, &e)))
			*n = roost_encode_auth(out, cap, v, &a);
		break;
	}
	default:
		return ROOST_ERR_MALFORMED;
	}
	ck_assert_int_eq(e.err, err);
	if (err)
		ck_assert_uint_le(e.offset, len);
	return err;
}

START_TEST(test_roundtrip_every_type_and_version)
{
	static struct table t;
	unsigned seen[3][16] = { { 0 } };

	build_table(&t);
	ck_assert_uint_gt(t.n, 60);
	for (size_t i = 0; i < t.n; i++) {
		const struct pkt *p = &t.p[i];
		uint8_t out[sizeof p->buf];
		size_t n;

		ck_assert_msg(reencode(p->version, p->buf, p->len, out, sizeof out, &n) == ROOST_OK,
		              "entry %zu (%s v%u) does not decode", i, roost_mqtt_type_name(p->buf[0] >> 4),
		              p->version);
		ck_assert_uint_eq(n, p->len);
		ck_assert_mem_eq(out, p->buf, n);
		seen[p->version - 3][p->buf[0] >> 4]++;
	}
	for (unsigned type = 1; type <= 15; type++) {
		ck_assert_msg(seen[2][type] > 0, "v5 %s missing", roost_mqtt_type_name((uint8_t)type));
		if (type != ROOST_MQTT_AUTH)
			ck_assert_msg(seen[0][type] && seen[1][type], "%s missing", roost_mqtt_type_name((uint8_t)type));
	}
}
END_TEST

/* A heap copy of exactly n bytes, so ASan sees any read past the packet. */
static uint8_t *exact(const uint8_t *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	if (n)
		memcpy(p, src, n);
	return p;
}

START_TEST(test_truncated_remaining_length_fails_or_is_a_shorter_packet)
{
	static struct table t;

	build_table(&t);
	for (size_t i = 0; i < t.n; i++) {
		const struct pkt *p = &t.p[i];
		roost_frame f;

		ck_assert_int_eq(peek(p->buf, p->len, 0, p->version, &f), ROOST_OK);
		for (size_t r = 0; r < f.remaining_len; r++) {
			uint8_t tmp[sizeof p->buf], out[sizeof p->buf];
			size_t hl = 1 + roost_varint_encode(tmp + 1, (uint32_t)r), n;

			tmp[0] = p->buf[0];
			memcpy(tmp + hl, p->buf + f.header_len, r);
			uint8_t *pkt = exact(tmp, hl + r);
			roost_err err = reencode(p->version, pkt, hl + r, out, sizeof out, &n);
			if (r < p->min_ok) {
				ck_assert_msg(err != ROOST_OK, "entry %zu (%s v%u) accepted with remaining length %zu",
				              i, roost_mqtt_type_name(p->buf[0] >> 4), p->version, r);
			} else if (err == ROOST_OK) {
				/* a shorter packet that is valid in its own right re-encodes to itself */
				ck_assert_uint_eq(n, hl + r);
				ck_assert_mem_eq(out, pkt, n);
			}
			free(pkt);
		}
	}
}
END_TEST

START_TEST(test_truncated_buffer_needs_more_and_fails_to_decode)
{
	static struct table t;

	build_table(&t);
	for (size_t i = 0; i < t.n; i++) {
		const struct pkt *p = &t.p[i];

		for (size_t k = 0; k < p->len; k++) {
			uint8_t *pkt = exact(p->buf, k), out[sizeof p->buf];
			roost_frame f;
			size_t n;

			ck_assert_int_eq(peek(pkt, k, 0, p->version, &f), ROOST_ERR_NEED_MORE);
			if (k > 0)
				ck_assert_int_ne(reencode(p->version, pkt, k, out, sizeof out, &n), ROOST_OK);
			free(pkt);
		}
		/* one byte too many is a framing mistake, not a longer packet */
		uint8_t longer[sizeof p->buf + 1], out[sizeof p->buf + 1];
		size_t n;
		memcpy(longer, p->buf, p->len);
		longer[p->len] = 0;
		ck_assert_int_ne(reencode(p->version, longer, p->len + 1, out, sizeof out, &n), ROOST_OK);
	}
}
END_TEST

START_TEST(test_encoders_snprintf_contract)
{
	static struct table t;

	build_table(&t);
	for (size_t i = 0; i < t.n; i++) {
		const struct pkt *p = &t.p[i];

		for (size_t cap = 0; cap <= p->len; cap++) {
			uint8_t *out = malloc(cap ? cap : 1), *fill = malloc(cap ? cap : 1);
			size_t n;

			ck_assert_ptr_nonnull(out);
			ck_assert_ptr_nonnull(fill);
			memset(out, 0xAA, cap ? cap : 1);
			memset(fill, 0xAA, cap ? cap : 1);
			ck_assert_int_eq(reencode(p->version, p->buf, p->len, out, cap, &n), ROOST_OK);
			/* too small: the needed size and nothing written; exact: the packet */
			ck_assert_uint_eq(n, p->len);
			if (cap < p->len)
				ck_assert_mem_eq(out, fill, cap ? cap : 1);
			else
				ck_assert_mem_eq(out, p->buf, p->len);
			free(out);
			free(fill);
		}
	}
}
END_TEST

START_TEST(test_encode_publish_header_accounts_for_payload)
{
	/* QoS 1, id 7, "a/b", 200-byte payload not given: remaining 2+3+2+200 = 207 = CF 01 */
	static const uint8_t want4[] = { 0x32, 0xCF, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x07 };
	/* v5 with Topic Alias 5: remaining 207 + 1 + 3 = 211 = D3 01 */
	static const uint8_t want5[] = { 0x32, 0xD3, 0x01, 0x00, 0x03, 'a', '/', 'b',
		                         0x00, 0x07, 0x03, 0x23, 0x00, 0x05 };
	roost_publish p = { .qos = 1, .packet_id = 7, .topic = STR("a/b"), .payload = { NULL, 200 } };
	uint8_t out[32], full[300], payload[200];
	roost_codec_error e;
	roost_publish d;

	memset(out, 0xAA, sizeof out);
	ck_assert_uint_eq(roost_encode_publish_header(out, 9, 4, &p), sizeof want4);
	ck_assert_uint_eq(out[0], 0xAA); /* too small: nothing written */
	ck_assert_uint_eq(roost_encode_publish_header(out, sizeof out, 4, &p), sizeof want4);
	ck_assert_mem_eq(out, want4, sizeof want4);
	p.props = PROPS(P_ALIAS);
	ck_assert_uint_eq(roost_encode_publish_header(out, sizeof out, 5, &p), sizeof want5);
	ck_assert_mem_eq(out, want5, sizeof want5);

	/* header + payload is exactly roost_encode_publish, and decodes */
	memset(payload, 'x', sizeof payload);
	p.payload.ptr = payload;
	ck_assert_uint_eq(roost_encode_publish(full, sizeof full, 5, &p), sizeof want5 + 200);
	ck_assert_mem_eq(full, want5, sizeof want5);
	ck_assert_int_eq(roost_decode_publish(full, sizeof want5 + 200, 5, &d, &e), ROOST_OK);
	ck_assert_uint_eq(d.payload.len, 200);
	ck_assert_ptr_eq(d.payload.ptr, full + sizeof want5);

	/* the payload moves the remaining length across a varint boundary (127 / 128) */
	p.props.len = 0;
	p.payload.len = 120;
	ck_assert_uint_eq(roost_encode_publish_header(out, sizeof out, 4, &p), 2 + 7);
	p.payload.len = 121;
	ck_assert_uint_eq(roost_encode_publish_header(out, sizeof out, 4, &p), 3 + 7);
	ck_assert_mem_eq(out, B(0x32, 0x80, 0x01), 3);
}
END_TEST

START_TEST(test_encoders_refuse_what_cannot_be_encoded)
{
	static uint8_t big[65536];
	uint8_t out[16];
	roost_publish p = { .topic = { big, 65536 } };
	roost_connect c = { .client_id = { big, 65536 } };
	roost_sub_entry ent = { { big, 65536 }, 0 };
	roost_auth a = { 0 };
	roost_ack k = { .packet_id = 1 };

	ck_assert_uint_eq(roost_encode_publish(out, sizeof out, 4, &p), 0);
	ck_assert_uint_eq(roost_encode_connect(out, sizeof out, 4, &c), 0);
	ck_assert_uint_eq(roost_encode_subscribe(out, sizeof out, 4, 1, &ent, 1), 0);
	/* payload beyond the largest remaining length */
	p.topic.len = 1;
	p.payload.len = ROOST_MQTT_MAX_REMAINING;
	ck_assert_uint_eq(roost_encode_publish(out, sizeof out, 4, &p), 0);
	ck_assert_uint_eq(roost_encode_publish_header(out, sizeof out, 4, &p), 0);
	/* the largest that fits: 2 + 1 + payload = max */
	p.payload.len = ROOST_MQTT_MAX_REMAINING - 3;
	ck_assert_uint_eq(roost_encode_publish_header(out, sizeof out, 4, &p), 1 + 4 + 3);
	/* AUTH before v5, UNSUBACK through the ack encoder in v5, non-ack types */
	ck_assert_uint_eq(roost_encode_auth(out, sizeof out, 4, &a), 0);
	ck_assert_uint_eq(roost_encode_ack(out, sizeof out, 5, ROOST_MQTT_UNSUBACK, &k), 0);
	ck_assert_uint_eq(roost_encode_ack(out, sizeof out, 4, ROOST_MQTT_SUBACK, &k), 0);
	ck_assert_uint_eq(roost_encode_ack(out, sizeof out, 4, ROOST_MQTT_CONNACK, &k), 0);
}
END_TEST

/* ---- group 6: v5 property rules ----------------------------------------- */

enum { PUB5_PROPS = 6, CONNECT5_PROPS = 13, ACK5_PROPS = 6 }; /* offset of the first property */

/*
 * Frame a v5 packet around a property block (< 127 bytes) and decode it:
 * PUBLISH QoS 0 to "a", CONNECT with client id "", PUBACK id 10 reason 0.
 */
static roost_err with_props(uint8_t type, const uint8_t *props, size_t n, roost_codec_error *e)
{
	static const uint8_t connect_vh[] = { 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C };
	uint8_t tmp[160];
	size_t len = 2;
	roost_err err;

	ck_assert_uint_lt(n, 120);
	tmp[0] = (uint8_t)(type << 4);
	if (type == ROOST_MQTT_PUBLISH) {
		memcpy(tmp + len, B(0x00, 0x01, 'a'), 3);
		len += 3;
	} else if (type == ROOST_MQTT_CONNECT) {
		memcpy(tmp + len, connect_vh, sizeof connect_vh);
		len += sizeof connect_vh;
	} else {
		memcpy(tmp + len, B(0x00, 0x0A, 0x00), 3);
		len += 3;
	}
	tmp[len++] = (uint8_t)n;
	memcpy(tmp + len, props, n);
	len += n;
	if (type == ROOST_MQTT_CONNECT) {
		tmp[len++] = 0x00; /* empty client id */
		tmp[len++] = 0x00;
	}
	tmp[1] = (uint8_t)(len - 2);

	uint8_t *pkt = exact(tmp, len);
	if (type == ROOST_MQTT_PUBLISH) {
		roost_publish p;
		err = roost_decode_publish(pkt, len, 5, &p, e);
	} else if (type == ROOST_MQTT_CONNECT) {
		roost_connect c;
		err = roost_decode_connect(pkt, len, &c, e);
	} else {
		roost_ack a;
		err = roost_decode_ack(pkt, len, 5, &a, e);
	}
	free(pkt);
	ck_assert_int_eq(e->err, err);
	return err;
}

#define PROPS_EXPECT(type, want, ...)                                                   \
	ck_assert_int_eq(with_props((type), BL(__VA_ARGS__), &e), (want))

START_TEST(test_v5_duplicate_property)
{
	roost_codec_error e;

	/* Topic Alias twice */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_PROTOCOL, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02);
	ck_assert_uint_eq(e.offset, PUB5_PROPS + 3);
	/* Session Expiry Interval twice in CONNECT; Reason String twice in PUBACK */
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_PROTOCOL, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2);
	ck_assert_uint_eq(e.offset, CONNECT5_PROPS + 5);
	PROPS_EXPECT(ROOST_MQTT_PUBACK, ROOST_ERR_PROTOCOL, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b');
	/* User Property may repeat anywhere; Subscription Identifier in PUBLISH */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_OK, 0x26, 0, 1, 'k', 0, 0, 0x26, 0, 1, 'k', 0, 0);
	PROPS_EXPECT(ROOST_MQTT_PUBACK, ROOST_OK, 0x26, 0, 1, 'k', 0, 0, 0x26, 0, 1, 'k', 0, 0);
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_OK, 0x0B, 0x01, 0x0B, 0x80, 0x01);
	/* but only once in SUBSCRIBE */
	roost_subscribe s;
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x0B, 0x00, 0x0A, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00,
	                                           0x01, 'a', 0x00),
	                                        5, &s, &e),
	                 ROOST_ERR_PROTOCOL);
	ck_assert_int_eq(roost_decode_subscribe(BL(0x82, 0x09, 0x00, 0x0A, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a',
	                                           0x00),
	                                        5, &s, &e),
	                 ROOST_OK);
}
END_TEST

START_TEST(test_v5_property_not_allowed_on_packet_type)
{
	roost_codec_error e;

	/* Topic Alias on CONNECT, Reason String on PUBLISH, Will Delay outside the will */
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_MALFORMED, 0x23, 0x00, 0x01);
	ck_assert_uint_eq(e.offset, CONNECT5_PROPS);
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_MALFORMED, 0x1F, 0x00, 0x01, 'x');
	ck_assert_uint_eq(e.offset, PUB5_PROPS);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_MALFORMED, 0x18, 0, 0, 0, 1);
	/* Session Expiry on PUBACK, Assigned Client Identifier outside CONNACK */
	PROPS_EXPECT(ROOST_MQTT_PUBACK, ROOST_ERR_MALFORMED, 0x11, 0, 0, 0, 1);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_MALFORMED, 0x12, 0, 1, 'c');
	/* unknown identifiers */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_MALFORMED, 0x00, 0x00);
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_MALFORMED, 0x04, 0x00);
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_MALFORMED, 0x2B, 0x00);
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_MALFORMED, 0xFF, 0x00);
	/* Session Expiry in the will properties: flags 06, will props 05 11 00 00 00 01 */
	roost_connect c;
	ck_assert_int_eq(roost_decode_connect(BL(0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x06, 0x00,
	                                         0x3C, 0x00, 0x00, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
	                                         0x00, 0x01, 't', 0x00, 0x00),
	                                      &c, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 16);
}
END_TEST

START_TEST(test_v5_property_length_overrun)
{
	roost_publish p;
	roost_codec_error e;

	/* property length 5, three bytes follow */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x07, 0x00, 0x01, 'a', 0x05, 0x23, 0x00, 0x01), 5, &p, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 5);
	/* a value cut by the block's end: length 2 covers 23 00 only (the 01 is payload) */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x07, 0x00, 0x01, 'a', 0x02, 0x23, 0x00, 0x01), 5, &p, &e),
	                 ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 6);
	/* a string property whose length runs past the block */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x09, 0x00, 0x01, 'a', 0x04, 0x03, 0x00, 0x05, 'a', 'b'), 5,
	                                      &p, &e),
	                 ROOST_ERR_MALFORMED);
	/* property length missing, or a five-byte varint */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x03, 0x00, 0x01, 'a'), 5, &p, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x08, 0x00, 0x01, 'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x01), 5, &p,
	                                      &e),
	                 ROOST_ERR_MALFORMED);
	/* a Subscription Identifier varint cut short */
	ck_assert_int_eq(roost_decode_publish(BL(0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x0B, 0x80), 5, &p, &e),
	                 ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_MQTT_1_5_4_1_v5_bad_utf8_in_string_property)
{
	roost_codec_error e;

	/* Content Type C0 80 */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_BAD_UTF8, 0x03, 0x00, 0x02, 0xC0, 0x80);
	ck_assert_uint_eq(e.offset, PUB5_PROPS + 3);
	/* User Property value with U+0000; name with a surrogate */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_BAD_UTF8, 0x26, 0, 1, 'k', 0, 2, 'v', 0x00);
	ck_assert_uint_eq(e.offset, PUB5_PROPS + 7);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_BAD_UTF8, 0x26, 0, 3, 0xED, 0xA0, 0x80, 0, 0);
	/* Reason String in PUBACK; Authentication Method in CONNECT */
	PROPS_EXPECT(ROOST_MQTT_PUBACK, ROOST_ERR_BAD_UTF8, 0x1F, 0, 1, 0xFF);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_BAD_UTF8, 0x15, 0, 2, 0xC3, 0x28);
	/* Correlation Data is binary: anything goes */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_OK, 0x09, 0x00, 0x02, 0xC0, 0x00);
}
END_TEST

START_TEST(test_v5_property_value_rules)
{
	roost_codec_error e;

	/* Payload Format Indicator 2; Request Problem Information 2 */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_PROTOCOL, 0x01, 0x02);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_PROTOCOL, 0x17, 0x02);
	/* Topic Alias 0 decodes: the broker answers it with DISCONNECT 0x94
	 * (Topic Alias invalid) [MQTT-3.3.2-8], see check_publish5. Receive
	 * Maximum 0, Maximum Packet Size 0 */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_OK, 0x23, 0x00, 0x00);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_PROTOCOL, 0x21, 0x00, 0x00);
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_PROTOCOL, 0x27, 0, 0, 0, 0);
	/* Response Topic with a wildcard */
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_PROTOCOL, 0x08, 0x00, 0x03, 'r', '/', '#');
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_OK, 0x08, 0x00, 0x03, 'r', '/', 'x');
	/* Authentication Data without Authentication Method */
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_ERR_PROTOCOL, 0x16, 0x00, 0x01, 'x');
	PROPS_EXPECT(ROOST_MQTT_CONNECT, ROOST_OK, 0x15, 0x00, 0x01, 'M', 0x16, 0x00, 0x01, 'x');
}
END_TEST

START_TEST(test_v5_props_iterator)
{
	static const uint8_t pkt[] = { 0x30, 0x17, 0x00, 0x01, 'a', 0x13, 0x23, 0x00, 0x05, 0x0B, 0x80, 0x01,
		                       0x26, 0x00, 0x01, 'k', 0x00, 0x02, 'v', 'w', 0x02, 0x00, 0x00, 0x01,
		                       0x00 };
	roost_publish p;
	roost_codec_error e;
	roost_props_iter it;
	roost_prop pr;

	ck_assert_int_eq(roost_decode_publish(pkt, sizeof pkt, 5, &p, &e), ROOST_OK);
	ck_assert_uint_eq(p.payload.len, 0);
	roost_props_iter_init(&it, p.props);
	ck_assert(roost_props_next(&it, &pr));
	ck_assert_uint_eq(pr.id, 0x23);
	ck_assert_uint_eq(pr.u32, 5);
	ck_assert(roost_props_next(&it, &pr));
	ck_assert_uint_eq(pr.id, 0x0B);
	ck_assert_uint_eq(pr.u32, 128);
	ck_assert(roost_props_next(&it, &pr));
	ck_assert_uint_eq(pr.id, 0x26);
	ck_assert(bytes_is(pr.str, "k"));
	ck_assert(bytes_is(pr.str2, "vw"));
	ck_assert(roost_props_next(&it, &pr));
	ck_assert_uint_eq(pr.id, 0x02);
	ck_assert_uint_eq(pr.u32, 0x0100);
	ck_assert(!roost_props_next(&it, &pr));
	ck_assert(!roost_props_next(&it, &pr));
	/* an empty block (v3/v4 packets) iterates nothing */
	roost_props_iter_init(&it, (roost_bytes){ NULL, 0 });
	ck_assert(!roost_props_next(&it, &pr));
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

/* Home Assistant sends up to 500 filters in one SUBSCRIBE: the spec sets no
 * cap, and decoding stays allocation-free (entries walked in place); a
 * SUBACK carries one code per filter [MQTT-3.8.4-5]. */
START_TEST(test_MQTT_3_8_4_5_subscribe_500_filters_and_suback)
{
	enum { N = 500 };
	static uint8_t pkt[8 + N * 8];
	/* Body at pkt + 5: packet id, then N x (length 4, "fNNN", options). */
	size_t body = 2;
	uint8_t *p = pkt + 5;
	*p++ = 0x00;
	*p++ = 0x07;
	for (unsigned i = 0; i < N; i++) {
		*p++ = 0x00;
		*p++ = 0x04;
		p += sprintf((char *)p, "f%03u", i);
		*p++ = i % 3;
		body += 7;
	}
	/* Fixed header 0x82 and a 2-byte remaining length, right before the body. */
	uint8_t *start = pkt + 2;
	start[0] = 0x82;
	start[1] = (uint8_t)(0x80 | (body & 0x7F));
	start[2] = (uint8_t)(body >> 7);
	size_t len = 3 + body;
	roost_subscribe s;
	roost_codec_error e = {0};
	ck_assert_int_eq(roost_decode_subscribe(start, len, 4, &s, &e), ROOST_OK);
	ck_assert_uint_eq(s.count, N);
	ck_assert_uint_eq(s.packet_id, 7);
	roost_sub_iter it;
	roost_sub_entry en;
	unsigned n = 0;
	roost_sub_iter_init(&it, &s, true);
	while (roost_sub_next(&it, &en)) {
		char want[8];
		snprintf(want, sizeof want, "f%03u", n);
		ck_assert_uint_eq(en.filter.len, 4);
		ck_assert(memcmp(en.filter.ptr, want, 4) == 0);
		ck_assert_uint_eq(en.options, n % 3);
		n++;
	}
	ck_assert_uint_eq(n, N);
	uint8_t codes[N], out[N + 8];
	memset(codes, 1, sizeof codes);
	roost_suback ack = {.packet_id = 7, .codes = {codes, N}};
	size_t need = roost_encode_suback(NULL, 0, 4, &ack);
	ck_assert_uint_eq(need, 1 + 2 + 2 + N); /* remaining length 502 takes 2 bytes */
	ck_assert_uint_eq(roost_encode_suback(out, sizeof out, 4, &ack), need);
	ck_assert_uint_eq(out[0], 0x90);
}
END_TEST

/* [MQTT-1.5.5-1] v5: a variable byte integer in the fewest bytes. A
 * property length 0 written as 80 00, a Subscription Identifier 1 written as
 * 81 00, and (v5 only) a remaining length 0 written as 80 00 are malformed;
 * 3.1.1 keeps accepting the long remaining length. */
START_TEST(test_MQTT_1_5_5_1_v5_varint_not_minimal)
{
	roost_codec_error e;
	roost_frame f;
	static const uint8_t connect_long_props[] = { 0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02,
	                                              0x00, 0x3C, 0x80, 0x00, 0x00, 0x00 };
	uint8_t *pkt = exact(connect_long_props, sizeof connect_long_props);
	roost_connect c;
	ck_assert_int_eq(roost_decode_connect(pkt, sizeof connect_long_props, &c, &e), ROOST_ERR_MALFORMED);
	ck_assert_uint_eq(e.offset, 12);
	free(pkt);
	PROPS_EXPECT(ROOST_MQTT_PUBLISH, ROOST_ERR_MALFORMED, 0x0B, 0x81, 0x00);
	static const uint8_t ping_long[] = { 0xC0, 0x80, 0x00 };
	ck_assert_int_eq(roost_frame_peek(ping_long, sizeof ping_long, 0, ROOST_MQTT_V5, &f, &e), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(roost_frame_peek(ping_long, sizeof ping_long, 0, ROOST_MQTT_V311, &f, &e), ROOST_OK);
}
END_TEST

/* The property writer lays values out as table 2-4 types them. */
START_TEST(test_v5_props_writer_layouts)
{
	uint8_t buf[64];
	roost_props_writer w;
	roost_props_writer_init(&w, buf, sizeof buf);
	roost_props_put_int(&w, ROOST_PROP_MAXIMUM_QOS, 1);            /* byte */
	roost_props_put_int(&w, ROOST_PROP_SERVER_KEEPALIVE, 0x1234);  /* u16 */
	roost_props_put_int(&w, ROOST_PROP_SESSION_EXPIRY, 0x01020304); /* u32 */
	roost_props_put_int(&w, ROOST_PROP_SUBSCRIPTION_ID, 200);      /* varint */
	roost_props_put_bytes(&w, ROOST_PROP_REASON_STRING, "ok", 2);
	roost_props_put_pair(&w, ROOST_PROP_USER_PROPERTY, "k", 1, "v", 1);
	ck_assert(!w.overflow);
	static const uint8_t want[] = { 0x24, 1, 0x13, 0x12, 0x34, 0x11, 1, 2, 3, 4, 0x0B, 0xC8, 0x01,
	                                0x1F, 0, 2, 'o', 'k', 0x26, 0, 1, 'k', 0, 1, 'v' };
	roost_bytes got = roost_props_writer_bytes(&w);
	ck_assert_uint_eq(got.len, sizeof want);
	ck_assert_mem_eq(got.ptr, want, sizeof want);
	/* What does not fit sets overflow and leaves the block as it was. */
	roost_props_writer_init(&w, buf, 4);
	roost_props_put_int(&w, ROOST_PROP_MAXIMUM_QOS, 1);
	roost_props_put_bytes(&w, ROOST_PROP_REASON_STRING, "long", 4);
	ck_assert(w.overflow);
	ck_assert_uint_eq(w.len, 2);
}
END_TEST

/* One mapping for both versions (STYLE: one function maps errors). */
START_TEST(test_err_reason_code_both_versions)
{
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_NOT_AUTHORIZED, 4), 0x05);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_NOT_AUTHORIZED, 5), 0x87);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_BAD_CREDENTIALS, 4), 0x04);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_BAD_CREDENTIALS, 5), 0x86);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_BAD_CLIENT_ID, 3), 0x02);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_BAD_CLIENT_ID, 5), 0x85);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_UNSUPPORTED, 4), 0x01);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_UNSUPPORTED, 5), 0x84);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_NOMEM, 4), 0x03);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_NOMEM, 5), 0x88);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_MALFORMED, 5), 0x81);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_PROTOCOL, 5), 0x82);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_BAD_AUTH_METHOD, 5), 0x8C);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_BAD_TOPIC, 5), 0x90);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_TOO_LARGE, 5), 0x95);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_QUOTA, 5), 0x97);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_RETAIN_UNSUPPORTED, 5), 0x9A);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_QOS_UNSUPPORTED, 5), 0x9B);
	ck_assert_uint_eq(roost_err_reason_code(ROOST_ERR_EXISTS, 5), 0x80);
}
END_TEST

Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, test_type_names);
	tcase_add_test(tc, test_MQTT_2_2_3_varint_spec_table_encode);
	tcase_add_test(tc, test_MQTT_2_2_3_varint_spec_table_frame_peek);
	tcase_add_test(tc, test_frame_non_minimal_length_accepted);
	tcase_add_test(tc, test_v31_allows_dup_on_subscribe);
	tcase_add_test(tc, test_MQTT_3_1_2_10_connect_spec_example);
	tcase_add_test(tc, test_connect_mqisdp_level3);
	tcase_add_test(tc, test_publish_vectors);
	tcase_add_test(tc, test_ack_vectors);
	tcase_add_test(tc, test_subscribe_vectors);
	tcase_add_test(tc, test_suback_unsuback_vectors);
	tcase_add_test(tc, test_empty_and_connack_vectors);
	tcase_add_test(tc, test_subscribe_filter_syntax_left_to_broker);
	tcase_add_test(tc, test_MQTT_1_5_3_1_utf8_well_formed_accepted);
	tcase_add_test(tc, test_MQTT_4_7_topic_filter_spec_examples);
	tcase_add_test(tc, test_MQTT_4_7_3_1_topic_name_rules);
	tcase_add_test(tc, test_v5_props_iterator);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_MQTT_2_2_3_five_byte_length_malformed);
	tcase_add_test(tc, test_MQTT_2_2_2_1_reserved_flags_malformed);
	tcase_add_test(tc, test_MQTT_2_2_2_2_decoders_check_flags_too);
	tcase_add_test(tc, test_MQTT_3_3_1_4_publish_qos3_malformed);
	tcase_add_test(tc, test_frame_reserved_types);
	tcase_add_test(tc, test_MQTT_3_1_2_2_unsupported_level);
	tcase_add_test(tc, test_MQTT_3_1_2_1_bad_protocol_name);
	tcase_add_test(tc, test_MQTT_3_1_2_3_reserved_connect_flag);
	tcase_add_test(tc, test_MQTT_3_1_2_11_will_qos_or_retain_without_will_flag);
	tcase_add_test(tc, test_MQTT_3_1_2_14_will_qos3);
	tcase_add_test(tc, test_MQTT_3_1_2_22_password_without_username);
	tcase_add_test(tc, test_MQTT_3_1_3_1_connect_trailing_bytes);
	tcase_add_test(tc, test_MQTT_1_5_3_1_connect_client_id_bad_utf8);
	tcase_add_test(tc, test_MQTT_3_3_2_2_connect_will_topic_wildcard);
	tcase_add_test(tc, test_MQTT_3_3_2_2_wildcard_in_topic_rejected);
	tcase_add_test(tc, test_MQTT_4_7_3_1_empty_topic_rejected);
	tcase_add_test(tc, test_MQTT_2_3_1_1_packet_id_zero_rejected);
	tcase_add_test(tc, test_MQTT_3_8_3_3_subscribe_without_filters);
	tcase_add_test(tc, test_MQTT_3_8_3_4_requested_qos3_or_reserved_bits);
	tcase_add_test(tc, test_MQTT_3_10_3_2_unsubscribe_without_filters);
	tcase_add_test(tc, test_MQTT_3_12_pingreq_with_body);
	tcase_add_test(tc, test_MQTT_3_14_disconnect_v311_with_body);
	tcase_add_test(tc, test_MQTT_3_2_2_1_connack_reserved_bits);
	tcase_add_test(tc, test_acks_lists_malformed);
	tcase_add_test(tc, test_MQTT_1_5_3_1_utf8_ill_formed_rejected);
	tcase_add_test(tc, test_v5_duplicate_property);
	tcase_add_test(tc, test_v5_property_not_allowed_on_packet_type);
	tcase_add_test(tc, test_v5_property_length_overrun);
	tcase_add_test(tc, test_MQTT_1_5_4_1_v5_bad_utf8_in_string_property);
	tcase_add_test(tc, test_v5_property_value_rules);
	tcase_add_test(tc, test_MQTT_1_5_5_1_v5_varint_not_minimal);
	tcase_add_test(tc, test_v5_props_writer_layouts);
	tcase_add_test(tc, test_err_reason_code_both_versions);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_frame_too_large_as_soon_as_length_known);
	tcase_add_test(tc, test_frame_need_more_for_every_prefix);
	tcase_add_test(tc, test_topic_length_limit);
	tcase_add_test(tc, test_MQTT_3_8_4_5_subscribe_500_filters_and_suback);
	tcase_add_test(tc, test_encode_publish_header_accounts_for_payload);
	tcase_add_test(tc, test_encoders_refuse_what_cannot_be_encoded);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_test(tc, test_roundtrip_every_type_and_version);
	tcase_add_test(tc, test_truncated_remaining_length_fails_or_is_a_shorter_packet);
	tcase_add_test(tc, test_truncated_buffer_needs_more_and_fails_to_decode);
	tcase_add_test(tc, test_encoders_snprintf_contract);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * codec.c — pure MQTT 3.1 / 3.1.1 / 5.0 codec (see include/roost/codec.h).
 *
 * Decoders walk the caller's buffer with a bounds-checked reader and return
 * views into it; nothing is copied or allocated. Every failure names the rule
 * it enforces in a static string: the normative id when the spec has one
 * ([MQTT-x.y.z-n], 3.1.1 numbering unless marked v5), else the section.
 *
 * Error classes: MALFORMED for bytes that cannot be parsed (the spec's
 * "Malformed Packet"), PROTOCOL for parseable packets carrying values the v5
 * spec calls a "Protocol Error" (duplicate property, reserved reason code,
 * retain handling 3...), BAD_UTF8 for string content, BAD_TOPIC for topic
 * name/filter syntax, UNSUPPORTED for an unknown protocol level.
 */
#include <assert.h>
#include "roost/codec.h"

#include <string.h>

/* ---- error reporting ----------------------------------------------------- */

static roost_err fail(roost_codec_error *e, roost_err err, size_t off, const char *why)
{
	if (e) {
		e->err = err;
		e->offset = off;
		e->why = why;
	}
	return err;
}

static roost_err ok(roost_codec_error *e)
{
	if (e) {
		e->err = ROOST_OK;
		e->offset = 0;
		e->why = NULL;
	}
	return ROOST_OK;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v); /* unaligned-safe; compiles to one load */
	return v;
}

/* Non-zero iff some byte of v is zero (exact: no false positives overall). */
static inline uint64_t has_zero(uint64_t v)
{
	return (v - ONES) & ~v & HIGHS;
}

enum { SCAN_OK, SCAN_UTF8, SCAN_WILD };

/*
 * One pass over an MQTT string: well-formed UTF-8 per RFC 3629 (no overlongs,
 * no surrogates, nothing above U+10FFFF) [MQTT-1.5.3-1], no U+0000
 * [MQTT-1.5.3-2], and, when no_wild, no '+' or '#' [MQTT-3.3.2-2]. Eight ASCII
 * bytes are checked per step; topic names and client ids are nearly always
 * ASCII. *bad receives the offset of the offending sequence.
 */
static inline int scan_string(const uint8_t *s, size_t len, bool no_wild, size_t *bad)
{
	size_t i = 0;

	while (i < len) {
		if (len - i >= 8) {
			uint64_t v = load64(s + i);
			uint64_t stop = (v & HIGHS) | has_zero(v);
			if (no_wild)
				stop |= has_zero(v ^ (ONES * '+')) | has_zero(v ^ (ONES * '#'));
			if (!stop) {
				i += 8;
				continue;
			}
		}
		uint8_t c = s[i];
		if (c < 0x80) {
			if (c == 0) {
				*bad = i;
				return SCAN_UTF8;
			}
			if (no_wild && (c == '+' || c == '#')) {
				*bad = i;
				return SCAN_WILD;
			}
			i++;
			continue;
		}
		size_t n;
		uint8_t lo = 0x80, hi = 0xBF; /* range of the first continuation byte */
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c == 0xE0) {
			n = 2;
			lo = 0xA0; /* overlong below U+0800 */
		} else if (c >= 0xE1 && c <= 0xEF) {
			n = 2;
			if (c == 0xED)
				hi = 0x9F; /* U+D800..U+DFFF surrogates */
		} else if (c == 0xF0) {
			n = 3;
			lo = 0x90; /* overlong below U+10000 */
		} else if (c >= 0xF1 && c <= 0xF3) {
			n = 3;
		} else if (c == 0xF4) {
			n = 3;
			hi = 0x8F; /* above U+10FFFF */
		} else {
			/* stray continuation, C0/C1 overlong lead, F5..FF (5/6-byte forms) */
			*bad = i;
			return SCAN_UTF8;
		}
		if (len - i - 1 < n || s[i + 1] < lo || s[i + 1] > hi) {
			*bad = i;
			return SCAN_UTF8;
		}
		for (size_t k = 2; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80) {
				*bad = i;
				return SCAN_UTF8;
			}
		}
		i += n + 1;
	}
	return SCAN_OK;
}

bool roost_utf8_valid(const uint8_t *s, size_t len)
{
	size_t bad;
	return scan_string(s, len, false, &bad) == SCAN_OK;
}

bool roost_topic_name_valid(const uint8_t *s, size_t len)
{
	size_t bad;
	/* [MQTT-4.7.3-1] at least one character; 65535 is the field's limit */
	if (len == 0 || len > 65535)
		return false;
	return scan_string(s, len, true, &bad) == SCAN_OK;
}

/*
 * Wildcard placement only (UTF-8 checked separately). '+', '#' and '/' are
 * ASCII so they never occur inside a multi-byte sequence.
 */
static bool filter_wildcards_ok(const uint8_t *s, size_t len, size_t *bad)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c != '+' && c != '#')
			continue;
		bool starts_level = i == 0 || s[i - 1] == '/';
		bool ends_level = i + 1 == len || s[i + 1] == '/';
		/* [MQTT-4.7.1-3] '+' fills a whole level; [MQTT-4.7.1-2] '#' is the
		 * whole last level */
		if (!starts_level || !ends_level || (c == '#' && i + 1 != len)) {
			*bad = i;
			return false;
		}
	}
	return true;
}

bool roost_topic_filter_valid(const uint8_t *s, size_t len)
{
	size_t bad;
	if (len == 0 || len > 65535) /* [MQTT-4.7.3-1] */
		return false;
	return scan_string(s, len, false, &bad) == SCAN_OK && filter_wildcards_ok(s, len, &bad);
}

/* ---- variable byte integer ---------------------------------------------- */

size_t roost_varint_size(uint32_t value)
{
	if (value < 128u)
		return 1;
	if (value < 16384u)
		return 2;
	if (value < 2097152u)
		return 3;
	if (value <= ROOST_MQTT_MAX_REMAINING)
		return 4;
	return 0;
}

size_t roost_varint_encode(uint8_t *out, uint32_t value)
{
	size_t n = 0;
	if (value > ROOST_MQTT_MAX_REMAINING)
		return 0;
	do {
		uint8_t b = value & 0x7F;
		value >>= 7;
		if (value)
			b |= 0x80;
		out[n++] = b;
	} while (value);
	return n;
}

/*
 * Parse a variable byte integer from p[0..avail). Non-minimal encodings are
 * accepted (3.1.1 does not forbid them); a fourth byte with the continuation
 * bit set is malformed ([§2.2.3], v5 [MQTT-1.5.5-1]).
 */
static roost_err varint_parse(const uint8_t *p, size_t avail, uint32_t *value, size_t *used)
{
	uint32_t v = 0;
	for (size_t i = 0; i < 4; i++) {
		if (i >= avail)
			return ROOST_ERR_NEED_MORE;
		v |= (uint32_t)(p[i] & 0x7F) << (7 * i);
		if (!(p[i] & 0x80)) {
			*value = v;
			*used = i + 1;
			return ROOST_OK;
		}
	}
	return ROOST_ERR_MALFORMED;
}

/* ---- bounds-checked reader ----------------------------------------------- */

typedef struct reader {
	const uint8_t *base; /* start of the packet, for error offsets */
	const uint8_t *p, *end;
} reader;

static inline size_t rd_off(const reader *r)
{
	return (size_t)(r->p - r->base);
}

static inline size_t rd_left(const reader *r)
{
	return (size_t)(r->end - r->p);
}

static inline bool rd_u8(reader *r, uint8_t *v)
{
	if (r->p >= r->end)
		return false;
	*v = *r->p++;
	return true;
}

static inline bool rd_u16(reader *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return true;
}

static inline bool rd_u32(reader *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return true;
}

static inline bool rd_varint(reader *r, uint32_t *v)
{
	size_t used;
	if (varint_parse(r->p, rd_left(r), v, &used) != ROOST_OK)
		return false;
	/* Only v5 fields are read with this: [MQTT-1.5.5-1] the fewest bytes. */
	if (used != roost_varint_size(*v))
		return false;
	r->p += used;
	return true;
}

/* Two-byte length followed by that many bytes (string or binary data). */
static inline bool rd_bin(reader *r, roost_bytes *b)
{
	uint16_t n;
	if (!rd_u16(r, &n) || rd_left(r) < n) {
		return false;
	}
	b->ptr = r->p;
	b->len = n;
	r->p += n;
	return true;
}

/*
 * Read an MQTT UTF-8 string field. Overrun -> MALFORMED at the field;
 * bad content -> BAD_UTF8 at the offending byte.
 */
static roost_err rd_str(reader *r, roost_bytes *b, const char *why_short, const char *why_utf8,
                        roost_codec_error *e)
{
	size_t at = rd_off(r), bad;
	if (!rd_bin(r, b))
		return fail(e, ROOST_ERR_MALFORMED, at, why_short);
	if (scan_string(b->ptr, b->len, false, &bad) != SCAN_OK)
		return fail(e, ROOST_ERR_BAD_UTF8, at + 2 + bad, why_utf8);
	return ROOST_OK;
}

static const char WHY_UTF8[] = "[MQTT-1.5.3-1] ill-formed UTF-8 or U+0000 [MQTT-1.5.3-2] in a string (v5: MQTT-1.5.4-1/2)";

/* ---- fixed header ---------------------------------------------------------- */

static bool version_known(uint8_t v)
{
	return v == ROOST_MQTT_V31 || v == ROOST_MQTT_V311 || v == ROOST_MQTT_V5;
}

/* Type and flag nibble of byte 1; shared by frame_peek and every decoder. */
static roost_err check_first_byte(uint8_t b, uint8_t version, roost_codec_error *e)
{
	uint8_t type = b >> 4, flags = b & 0x0F;

	switch (type) {
	case 0:
		return fail(e, ROOST_ERR_MALFORMED, 0, "[§2.2.1] packet type 0 is reserved");
	case ROOST_MQTT_AUTH:
		if (version != ROOST_MQTT_V5)
			return fail(e, ROOST_ERR_MALFORMED, 0, "[§2.2.1] packet type 15 is reserved before MQTT 5");
		break;
	case ROOST_MQTT_PUBLISH: {
		uint8_t qos = (flags >> 1) & 3;
		if (qos == 3)
			return fail(e, ROOST_ERR_MALFORMED, 0, "[MQTT-3.3.1-4] PUBLISH with QoS 3");
		if (qos == 0 && (flags & 0x08))
			return fail(e, ROOST_ERR_MALFORMED, 0, "[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH");
		return ROOST_OK;
	}
	case ROOST_MQTT_PUBREL:
	case ROOST_MQTT_SUBSCRIBE:
	case ROOST_MQTT_UNSUBSCRIBE:
		/* MQTT 3.1 sent these as QoS 1 messages and allowed DUP on retries. */
		if (version == ROOST_MQTT_V31)
			flags &= 0x07;
		if (flags != 0x02)
			return fail(e, ROOST_ERR_MALFORMED, 0,
			            "[MQTT-2.2.2-1] PUBREL/SUBSCRIBE/UNSUBSCRIBE flags must be 0010");
		return ROOST_OK;
	default:
		break;
	}
	if (flags != 0)
		return fail(e, ROOST_ERR_MALFORMED, 0, "[MQTT-2.2.2-1] reserved fixed header flags must be 0");
	return ROOST_OK;
}

roost_err roost_frame_peek(const uint8_t *buf, size_t len, size_t max_packet, uint8_t version,
                           roost_frame *frame, roost_codec_error *e)
{
	uint32_t rem;
	size_t used;
	roost_err err;

	memset(frame, 0, sizeof *frame);
	if (len == 0)
		return fail(e, ROOST_ERR_NEED_MORE, 0, "need the fixed header");
	err = check_first_byte(buf[0], version, e);
	if (err)
		return err;
	err = varint_parse(buf + 1, len - 1, &rem, &used);
	if (err == ROOST_ERR_NEED_MORE)
		return fail(e, err, len, "need the rest of the remaining length");
	if (err)
		return fail(e, err, 4, "[§2.2.3] remaining length longer than 4 bytes");
	if (version == ROOST_MQTT_V5 && used != roost_varint_size(rem))
		return fail(e, ROOST_ERR_MALFORMED, 1, "[MQTT-1.5.5-1] remaining length not in the fewest bytes");
	frame->type = buf[0] >> 4;
	frame->flags = buf[0] & 0x0F;
	frame->header_len = 1 + used;
	frame->remaining_len = rem;
	frame->total_len = frame->header_len + rem;
	if (max_packet && frame->total_len > max_packet)
		return fail(e, ROOST_ERR_TOO_LARGE, 1, "packet larger than the maximum packet size");
	if (len < frame->total_len)
		return fail(e, ROOST_ERR_NEED_MORE, len, "need the rest of the packet");
	return ok(e);
}

/*
 * Validate the fixed header of a whole packet handed to a decoder and set up
 * the reader over its variable header + payload. The packet must be exactly
 * header + remaining length bytes long: a shorter buffer means a field would
 * overrun, a longer one that the caller framed it wrong.
 */
static roost_err open_packet(const uint8_t *pkt, size_t len, uint8_t version, uint16_t type_mask,
                             reader *r, roost_codec_error *e)
{
	uint32_t rem;
	size_t used;
	roost_err err;

	if (len < 2)
		return fail(e, ROOST_ERR_MALFORMED, len, "packet shorter than a fixed header");
	if (!(type_mask & (1u << (pkt[0] >> 4))))
		return fail(e, ROOST_ERR_MALFORMED, 0, "packet type does not match the decoder");
	err = check_first_byte(pkt[0], version, e);
	if (err)
		return err;
	err = varint_parse(pkt + 1, len - 1, &rem, &used);
	if (err == ROOST_ERR_NEED_MORE)
		return fail(e, ROOST_ERR_MALFORMED, len, "[§2.2.3] truncated remaining length");
	if (err)
		return fail(e, ROOST_ERR_MALFORMED, 4, "[§2.2.3] remaining length longer than 4 bytes");
	/* The same rule as roost_frame_peek: a decoder accepts nothing framing refuses. */
	if (version == ROOST_MQTT_V5 && used != roost_varint_size(rem))
		return fail(e, ROOST_ERR_MALFORMED, 1, "[MQTT-1.5.5-1] remaining length not in the fewest bytes");
	if ((size_t)rem != len - 1 - used)
		return fail(e, ROOST_ERR_MALFORMED, 1 + used,
		            "[§2.2.3] remaining length does not match the packet size");
	r->base = pkt;
	r->p = pkt + 1 + used;
	r->end = pkt + len;
	return ROOST_OK;
}

static roost_err expect_end(const reader *r, const char *why, roost_codec_error *e)
{
	if (r->p != r->end)
		return fail(e, ROOST_ERR_MALFORMED, rd_off(r), why);
	return ROOST_OK;
}

/* ---- v5 properties ---------------------------------------------------------- */

enum ptype { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VARINT, PT_STR, PT_BIN, PT_PAIR };

/* Property contexts are packet types 1..15; 0 stands for Will Properties. */
#define CTX_WILL 0
#define W(t) (1u << (t))

enum {
	PF_MULTI = 1,     /* may repeat (User Property) */
	PF_MULTI_PUB = 2, /* may repeat in PUBLISH only (Subscription Identifier) */
	PF_BOOL = 4,      /* value 0 or 1, else Protocol Error */
	PF_NONZERO = 8,   /* value 0 is a Protocol Error */
	PF_TOPIC = 16,    /* a topic name: no wildcards */
};

#define P_MSG (W(CTX_WILL) | W(ROOST_MQTT_PUBLISH))
#define P_ACKS                                                                              \
	(W(ROOST_MQTT_CONNACK) | W(ROOST_MQTT_PUBACK) | W(ROOST_MQTT_PUBREC) | W(ROOST_MQTT_PUBREL) | \
	 W(ROOST_MQTT_PUBCOMP) | W(ROOST_MQTT_SUBACK) | W(ROOST_MQTT_UNSUBACK) |                    \
	 W(ROOST_MQTT_DISCONNECT) | W(ROOST_MQTT_AUTH))
#define P_ALL                                                                                 \
	(P_ACKS | W(CTX_WILL) | W(ROOST_MQTT_CONNECT) | W(ROOST_MQTT_PUBLISH) |                    \
	 W(ROOST_MQTT_SUBSCRIBE) | W(ROOST_MQTT_UNSUBSCRIBE))
#define P_CC (W(ROOST_MQTT_CONNECT) | W(ROOST_MQTT_CONNACK))

#define PROP_MAX 0x2A

/* v5 §2.2.2.2 table 2-4: identifier -> type, where allowed, value rules. */
static const struct propdef {
	uint8_t type;
	uint8_t flags;
	uint16_t where;
} propdefs[PROP_MAX + 1] = {
	[0x01] = { PT_BYTE, PF_BOOL, P_MSG },    /* Payload Format Indicator */
	[0x02] = { PT_U32, 0, P_MSG },           /* Message Expiry Interval */
	[0x03] = { PT_STR, 0, P_MSG },           /* Content Type */
	[0x08] = { PT_STR, PF_TOPIC, P_MSG },    /* Response Topic */
	[0x09] = { PT_BIN, 0, P_MSG },           /* Correlation Data */
	[0x0B] = { PT_VARINT, PF_MULTI_PUB | PF_NONZERO,
	           W(ROOST_MQTT_PUBLISH) | W(ROOST_MQTT_SUBSCRIBE) }, /* Subscription Identifier */
	[0x11] = { PT_U32, 0, P_CC | W(ROOST_MQTT_DISCONNECT) },      /* Session Expiry Interval */
	[0x12] = { PT_STR, 0, W(ROOST_MQTT_CONNACK) },                /* Assigned Client Identifier */
	[0x13] = { PT_U16, 0, W(ROOST_MQTT_CONNACK) },                /* Server Keep Alive */
	[0x15] = { PT_STR, 0, P_CC | W(ROOST_MQTT_AUTH) },            /* Authentication Method */
	[0x16] = { PT_BIN, 0, P_CC | W(ROOST_MQTT_AUTH) },            /* Authentication Data */
	[0x17] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNECT) },         /* Request Problem Information */
	[0x18] = { PT_U32, 0, W(CTX_WILL) },                          /* Will Delay Interval */
	[0x19] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNECT) },         /* Request Response Information */
	[0x1A] = { PT_STR, 0, W(ROOST_MQTT_CONNACK) },                /* Response Information */
	[0x1C] = { PT_STR, 0, W(ROOST_MQTT_CONNACK) | W(ROOST_MQTT_DISCONNECT) }, /* Server Reference */
	[0x1F] = { PT_STR, 0, P_ACKS },                               /* Reason String */
	[0x21] = { PT_U16, PF_NONZERO, P_CC },                        /* Receive Maximum */
	[0x22] = { PT_U16, 0, P_CC },                                 /* Topic Alias Maximum */
	/* Topic Alias 0 is refused by the receiver with DISCONNECT 0x94 (Topic
	 * Alias invalid) [MQTT-3.3.2-8], not as a generic protocol error. */
	[0x23] = { PT_U16, 0, W(ROOST_MQTT_PUBLISH) },                /* Topic Alias */
	[0x24] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNACK) },         /* Maximum QoS */
	[0x25] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNACK) },         /* Retain Available */
	[0x26] = { PT_PAIR, PF_MULTI, P_ALL },                        /* User Property */
	[0x27] = { PT_U32, PF_NONZERO, P_CC },                        /* Maximum Packet Size */
	[0x28] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNACK) }, /* Wildcard Subscription Available */
	[0x29] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNACK) }, /* Subscription Identifier Available */
	[0x2A] = { PT_BYTE, PF_BOOL, W(ROOST_MQTT_CONNACK) }, /* Shared Subscription Available */
};

#define PROP_BIT(id) (1ULL << (id))
#define PROP_TOPIC_ALIAS 0x23
#define PROP_AUTH_METHOD 0x15
#define PROP_AUTH_DATA 0x16

/* Read one property value of the given type; false on overrun. */
static bool prop_value(reader *r, uint8_t type, roost_prop *prop)
{
	uint8_t b;
	uint16_t u16;

	switch (type) {
	case PT_BYTE:
		if (!rd_u8(r, &b))
			return false;
		prop->u32 = b;
		return true;
	case PT_U16:
		if (!rd_u16(r, &u16))
			return false;
		prop->u32 = u16;
		return true;
	case PT_U32:
		return rd_u32(r, &prop->u32);
	case PT_VARINT:
		return rd_varint(r, &prop->u32);
	case PT_STR:
	case PT_BIN:
		return rd_bin(r, &prop->str);
	case PT_PAIR:
		return rd_bin(r, &prop->str) && rd_bin(r, &prop->str2);
	default:
		return false;
	}
}

/*
 * Parse and validate a property block (length + properties) at r for context
 * ctx. *out is the block without its length; *seen the set of identifiers.
 */
static roost_err props_read(reader *r, unsigned ctx, roost_bytes *out, uint64_t *seen_out,
                            roost_codec_error *e)
{
	size_t at = rd_off(r), bad;
	uint32_t plen;
	uint64_t seen = 0;

	if (!rd_varint(r, &plen))
		return fail(e, ROOST_ERR_MALFORMED, at,
		            "[v5 §2.2.2.1] missing or bad property length ([MQTT-1.5.5-1] fewest bytes)");
	if (plen > rd_left(r))
		return fail(e, ROOST_ERR_MALFORMED, at, "[v5 §2.2.2.1] property length overruns the packet");
	out->ptr = r->p;
	out->len = plen;

	reader pr = { r->base, r->p, r->p + plen };
	while (pr.p < pr.end) {
		size_t pat = rd_off(&pr);
		uint8_t id = *pr.p++;
		const struct propdef *d = id <= PROP_MAX ? &propdefs[id] : NULL;
		roost_prop prop = { 0 };

		if (!d || d->type == PT_NONE)
			return fail(e, ROOST_ERR_MALFORMED, pat, "[v5 §2.2.2.2] unknown property identifier");
		if (!(d->where & W(ctx)))
			return fail(e, ROOST_ERR_MALFORMED, pat,
			            "[v5 §2.2.2.2] property not allowed on this packet type");
		if ((seen & PROP_BIT(id)) && !(d->flags & PF_MULTI) &&
		    !((d->flags & PF_MULTI_PUB) && ctx == ROOST_MQTT_PUBLISH))
			return fail(e, ROOST_ERR_PROTOCOL, pat, "[v5 §2.2.2.2] property included more than once");
		seen |= PROP_BIT(id);
		if (!prop_value(&pr, d->type, &prop))
			return fail(e, ROOST_ERR_MALFORMED, pat, "[v5 §2.2.2.2] property value overruns the block");
		if ((d->flags & PF_BOOL) && prop.u32 > 1)
			return fail(e, ROOST_ERR_PROTOCOL, pat, "[v5 §3] property value must be 0 or 1");
		if ((d->flags & PF_NONZERO) && prop.u32 == 0)
			return fail(e, ROOST_ERR_PROTOCOL, pat, "[v5 §3] property value must not be 0");
		if (d->type == PT_STR || d->type == PT_PAIR) {
			if (scan_string(prop.str.ptr, prop.str.len, false, &bad) != SCAN_OK)
				return fail(e, ROOST_ERR_BAD_UTF8, (size_t)(prop.str.ptr - r->base) + bad, WHY_UTF8);
			if (d->type == PT_PAIR &&
			    scan_string(prop.str2.ptr, prop.str2.len, false, &bad) != SCAN_OK)
				return fail(e, ROOST_ERR_BAD_UTF8, (size_t)(prop.str2.ptr - r->base) + bad, WHY_UTF8);
		}
		if ((d->flags & PF_TOPIC) && !roost_topic_name_valid(prop.str.ptr, prop.str.len))
			return fail(e, ROOST_ERR_PROTOCOL, pat,
			            "[v5 §3.3.2.3.5] Response Topic must be a topic name without wildcards");
	}
	/* v5 §3.1.2.11.10: Authentication Data without a Method is a Protocol Error */
	if ((seen & PROP_BIT(PROP_AUTH_DATA)) && !(seen & PROP_BIT(PROP_AUTH_METHOD)))
		return fail(e, ROOST_ERR_PROTOCOL, at,
		            "[v5 §3.1.2.11.10] Authentication Data without Authentication Method");
	r->p = pr.end;
	if (seen_out)
		*seen_out = seen;
	return ROOST_OK;
}

/* ---- v5 property writer ---------------------------------------------------- */

void roost_props_writer_init(roost_props_writer *w, uint8_t *out, size_t cap)
{
	*w = (roost_props_writer){.out = out, .cap = cap};
}

/* Room for n more bytes? Sets overflow when not. */
static bool pw_room(roost_props_writer *w, size_t n)
{
	if (!w->overflow && n <= w->cap - w->len)
		return true;
	w->overflow = true;
	return false;
}

static void pw_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void roost_props_put_int(roost_props_writer *w, uint8_t id, uint32_t value)
{
	uint8_t type = id <= PROP_MAX ? propdefs[id].type : PT_NONE;
	size_t n = type == PT_BYTE ? 1 : type == PT_U16 ? 2 : type == PT_U32 ? 4 : roost_varint_size(value);
	assert(type == PT_BYTE || type == PT_U16 || type == PT_U32 || type == PT_VARINT);
	if (!pw_room(w, 1 + n))
		return;
	uint8_t *p = w->out + w->len;
	*p++ = id;
	if (type == PT_VARINT)
		roost_varint_encode(p, value);
	else
		for (size_t i = 0; i < n; i++)
			p[i] = (uint8_t)(value >> (8 * (n - 1 - i)));
	w->len += 1 + n;
}

void roost_props_put_bytes(roost_props_writer *w, uint8_t id, const void *s, size_t len)
{
	assert(id <= PROP_MAX && (propdefs[id].type == PT_STR || propdefs[id].type == PT_BIN));
	if (len > 65535 || !pw_room(w, 3 + len))
		return;
	w->out[w->len] = id;
	pw_u16(w->out + w->len + 1, len);
	if (len)
		memcpy(w->out + w->len + 3, s, len);
	w->len += 3 + len;
}

void roost_props_put_pair(roost_props_writer *w, uint8_t id, const void *k, size_t klen, const void *v,
                          size_t vlen)
{
	assert(id <= PROP_MAX && propdefs[id].type == PT_PAIR);
	if (klen > 65535 || vlen > 65535 || !pw_room(w, 5 + klen + vlen))
		return;
	uint8_t *p = w->out + w->len;
	*p++ = id;
	pw_u16(p, klen);
	if (klen)
		memcpy(p + 2, k, klen);
	p += 2 + klen;
	pw_u16(p, vlen);
	if (vlen)
		memcpy(p + 2, v, vlen);
	w->len += 5 + klen + vlen;
}

roost_bytes roost_props_writer_bytes(const roost_props_writer *w)
{
	return (roost_bytes){w->out, w->len};
}

void roost_props_iter_init(roost_props_iter *it, roost_bytes props)
{
	it->p = props.ptr;
	it->end = props.ptr ? props.ptr + props.len : props.ptr;
}

bool roost_props_next(roost_props_iter *it, roost_prop *prop)
{
	reader r = { it->p, it->p, it->end };
	uint8_t id;

	/* The block was validated; the checks below only keep a misuse in bounds. */
	if (!it->p || !rd_u8(&r, &id) || id > PROP_MAX || propdefs[id].type == PT_NONE) {
		it->p = it->end;
		return false;
	}
	memset(prop, 0, sizeof *prop);
	prop->id = id;
	if (!prop_value(&r, propdefs[id].type, prop)) {
		it->p = it->end;
		return false;
	}
	it->p = r.p;
	return true;
}

/* ---- reason codes -------------------------------------------------------- */

static const uint8_t RC_CONNACK5[] = { 0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
	                               0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
	                               0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F };
static const uint8_t RC_PUBACK5[] = { 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99 };
static const uint8_t RC_PUBREL5[] = { 0x00, 0x92 };
static const uint8_t RC_SUBACK5[] = { 0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
	                              0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2 };
static const uint8_t RC_SUBACK3[] = { 0x00, 0x01, 0x02, 0x80 };
static const uint8_t RC_UNSUBACK5[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };
static const uint8_t RC_DISCONNECT5[] = { 0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
	                                  0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
	                                  0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2 };
static const uint8_t RC_AUTH5[] = { 0x00, 0x18, 0x19 };

#define RC_OK(set, code) (memchr((set), (code), sizeof(set)) != NULL)

/* ---- decoders ------------------------------------------------------------ */

static roost_err bad_version(roost_codec_error *e)
{
	return fail(e, ROOST_ERR_INVALID, 0, "unknown protocol version passed to the decoder");
}

static const char WHY_PKID[] = "[MQTT-2.3.1-1] packet identifier must be non-zero";

static roost_err rd_packet_id(reader *r, uint16_t *id, roost_codec_error *e)
{
	size_t at = rd_off(r);
	if (!rd_u16(r, id))
		return fail(e, ROOST_ERR_MALFORMED, at, "packet identifier missing");
	if (*id == 0)
		return fail(e, ROOST_ERR_MALFORMED, at, WHY_PKID);
	return ROOST_OK;
}

static bool bytes_eq(roost_bytes b, const char *s, size_t n)
{
	return b.len == n && memcmp(b.ptr, s, n) == 0;
}

static roost_err connect_payload(reader *r, roost_connect *c, roost_codec_error *e)
{
	roost_err err;
	size_t at;

	err = rd_str(r, &c->client_id, "[MQTT-3.1.3-3] client identifier missing",
	             "[MQTT-3.1.3-4] client identifier is not valid UTF-8", e);
	if (err)
		return err;
	if (c->will_flag) {
		if (c->protocol_level == ROOST_MQTT_V5) {
			err = props_read(r, CTX_WILL, &c->will_props, NULL, e);
			if (err)
				return err;
		}
		at = rd_off(r);
		err = rd_str(r, &c->will_topic, "[MQTT-3.1.2-9] will topic missing",
		             "[MQTT-3.1.3-10] will topic is not valid UTF-8", e);
		if (err)
			return err;
		if (!roost_topic_name_valid(c->will_topic.ptr, c->will_topic.len))
			return fail(e, ROOST_ERR_BAD_TOPIC, at,
			            "[MQTT-3.3.2-2] will topic is empty or has wildcards");
		at = rd_off(r);
		if (!rd_bin(r, &c->will_payload))
			return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-9] will message missing");
	}
	if (c->username_flag) {
		err = rd_str(r, &c->username, "[MQTT-3.1.2-19] user name missing",
		             "[MQTT-3.1.3-11] user name is not valid UTF-8", e);
		if (err)
			return err;
	}
	if (c->password_flag) {
		at = rd_off(r);
		if (!rd_bin(r, &c->password))
			return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-21] password missing");
	}
	return expect_end(r, "[MQTT-3.1.3-1] bytes after the last CONNECT payload field", e);
}

roost_err roost_decode_connect(const uint8_t *pkt, size_t len, roost_connect *c, roost_codec_error *e)
{
	reader r;
	roost_err err;
	uint8_t flags;
	size_t at;

	memset(c, 0, sizeof *c);
	err = open_packet(pkt, len, 0, W(ROOST_MQTT_CONNECT), &r, e);
	if (err)
		return err;

	at = rd_off(&r);
	if (!rd_bin(&r, &c->protocol_name))
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-1] protocol name missing");
	bool is_mqtt = bytes_eq(c->protocol_name, "MQTT", 4);
	bool is_mqisdp = bytes_eq(c->protocol_name, "MQIsdp", 6);
	if (!is_mqtt && !is_mqisdp)
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-1] protocol name is not MQTT");
	at = rd_off(&r);
	if (!rd_u8(&r, &c->protocol_level))
		return fail(e, ROOST_ERR_MALFORMED, at, "protocol level missing");
	if (is_mqtt ? (c->protocol_level != ROOST_MQTT_V311 && c->protocol_level != ROOST_MQTT_V5)
	            : c->protocol_level != ROOST_MQTT_V31)
		return fail(e, ROOST_ERR_UNSUPPORTED, at, "[MQTT-3.1.2-2] unsupported protocol level");

	at = rd_off(&r);
	if (!rd_u8(&r, &flags) || !rd_u16(&r, &c->keepalive))
		return fail(e, ROOST_ERR_MALFORMED, at, "connect flags or keep alive missing");
	/* MQTT 3.1 did not define bit 0; only 3.1.1 and 5 require it clear. */
	if ((flags & 0x01) && c->protocol_level != ROOST_MQTT_V31)
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-3] reserved connect flag is set");
	c->clean_start = flags & 0x02;
	c->will_flag = flags & 0x04;
	c->will_qos = (flags >> 3) & 3;
	c->will_retain = flags & 0x20;
	c->password_flag = flags & 0x40;
	c->username_flag = flags & 0x80;
	if (c->will_qos == 3)
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-14] will QoS 3");
	if (!c->will_flag && c->will_qos)
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-13] will QoS set without will flag");
	if (!c->will_flag && c->will_retain)
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-15] will retain set without will flag");
	/* v5 dropped this rule (password without user name is allowed). */
	if (c->password_flag && !c->username_flag && c->protocol_level != ROOST_MQTT_V5)
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.1.2-22] password flag without user name flag");

	if (c->protocol_level == ROOST_MQTT_V5) {
		err = props_read(&r, ROOST_MQTT_CONNECT, &c->props, NULL, e);
		if (err)
			return err;
	}
	err = connect_payload(&r, c, e);
	if (err)
		return err;
	return ok(e);
}

roost_err roost_decode_connack(const uint8_t *pkt, size_t len, uint8_t version, roost_connack *c,
                               roost_codec_error *e)
{
	reader r;
	roost_err err;
	uint8_t flags;
	size_t at;

	memset(c, 0, sizeof *c);
	if (!version_known(version))
		return bad_version(e);
	err = open_packet(pkt, len, version, W(ROOST_MQTT_CONNACK), &r, e);
	if (err)
		return err;
	at = rd_off(&r);
	if (!rd_u8(&r, &flags) || !rd_u8(&r, &c->code))
		return fail(e, ROOST_ERR_MALFORMED, at, "CONNACK shorter than 2 bytes");
	/* In 3.1 the first byte was unused; from 3.1.1 bits 7-1 are reserved. */
	if (version != ROOST_MQTT_V31) {
		if (flags & 0xFE)
			return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.2.2-1] reserved CONNACK flags are set");
		c->session_present = flags & 1;
	}
	if (version == ROOST_MQTT_V5 ? !RC_OK(RC_CONNACK5, c->code) : c->code > 5)
		return fail(e, ROOST_ERR_PROTOCOL, at + 1, "[§3.2.2.3] reserved CONNACK return/reason code");
	if (c->session_present && c->code != 0)
		return fail(e, ROOST_ERR_PROTOCOL, at,
		            "[MQTT-3.2.2-4] session present with a non-zero return code");
	if (version == ROOST_MQTT_V5) {
		err = props_read(&r, ROOST_MQTT_CONNACK, &c->props, NULL, e);
		if (err)
			return err;
	}
	err = expect_end(&r, "[§3.2] bytes after the end of CONNACK", e);
	if (err)
		return err;
	return ok(e);
}

roost_err roost_decode_publish(const uint8_t *pkt, size_t len, uint8_t version, roost_publish *p,
                               roost_codec_error *e)
{
	reader r;
	roost_err err;
	size_t at, bad;
	int scan;

	memset(p, 0, sizeof *p);
	if (!version_known(version))
		return bad_version(e);
	err = open_packet(pkt, len, version, W(ROOST_MQTT_PUBLISH), &r, e);
	if (err)
		return err;
	p->dup = pkt[0] & 0x08;
	p->qos = (pkt[0] >> 1) & 3;
	p->retain = pkt[0] & 0x01;

	at = rd_off(&r);
	if (!rd_bin(&r, &p->topic))
		return fail(e, ROOST_ERR_MALFORMED, at, "[MQTT-3.3.2-1] topic name missing");
	scan = scan_string(p->topic.ptr, p->topic.len, true, &bad);
	if (scan == SCAN_UTF8)
		return fail(e, ROOST_ERR_BAD_UTF8, at + 2 + bad, WHY_UTF8);
	if (scan == SCAN_WILD)
		return fail(e, ROOST_ERR_BAD_TOPIC, at + 2 + bad, "[MQTT-3.3.2-2] wildcard in topic name");
	if (p->topic.len == 0 && version != ROOST_MQTT_V5)
		return fail(e, ROOST_ERR_BAD_TOPIC, at, "[MQTT-4.7.3-1] empty topic name");
	if (p->qos) {
		err = rd_packet_id(&r, &p->packet_id, e);
		if (err)
			return err;
	}
	if (version == ROOST_MQTT_V5) {
		uint64_t seen;
		err = props_read(&r, ROOST_MQTT_PUBLISH, &p->props, &seen, e);
		if (err)
			return err;
		/* v5 §3.3.2.1: a zero-length topic is only valid with a Topic Alias */
		if (p->topic.len == 0 && !(seen & PROP_BIT(PROP_TOPIC_ALIAS)))
			return fail(e, ROOST_ERR_BAD_TOPIC, at,
			            "[v5 §3.3.2.1] empty topic name without Topic Alias");
	}
	p->payload.ptr = r.p;
	p->payload.len = rd_left(&r);
	return ok(e);
}

roost_err roost_decode_ack(const uint8_t *pkt, size_t len, uint8_t version, roost_ack *a,
                           roost_codec_error *e)
{
	reader r;
	roost_err err;
	uint8_t type;

	memset(a, 0, sizeof *a);
	if (!version_known(version))
		return bad_version(e);
	err = open_packet(pkt, len, version,
	                  W(ROOST_MQTT_PUBACK) | W(ROOST_MQTT_PUBREC) | W(ROOST_MQTT_PUBREL) |
	                      W(ROOST_MQTT_PUBCOMP),
	                  &r, e);
	if (err)
		return err;
	type = pkt[0] >> 4;
	err = rd_packet_id(&r, &a->packet_id, e);
	if (err)
		return err;
	/* v5 §3.4.2.1: reason code and properties may be omitted (length 2 / 3) */
	if (version == ROOST_MQTT_V5 && rd_left(&r) > 0) {
		size_t at = rd_off(&r);
		bool allowed;
		(void)rd_u8(&r, &a->reason);
		if (type == ROOST_MQTT_PUBACK || type == ROOST_MQTT_PUBREC)
			allowed = RC_OK(RC_PUBACK5, a->reason);
		else
			allowed = RC_OK(RC_PUBREL5, a->reason);
		if (!allowed)
			return fail(e, ROOST_ERR_PROTOCOL, at, "[v5 §3.4.2.1] reason code not allowed in this ack");
		if (rd_left(&r) > 0) {
			err = props_read(&r, type, &a->props, NULL, e);
			if (err)
				return err;
		}
	}
	err = expect_end(&r, "[§3.4] bytes after the end of the ack", e);
	if (err)
		return err;
	return ok(e);
}

/*
 * Does this filter name a v5 shared subscription ("$share/...")? The
 * ShareName rules ([MQTT-4.8.2-1], [MQTT-4.8.2-2]) are filter syntax, left
 * to the broker like the rest (roost_topic_share_parse, SUBACK 0x8F); the
 * codec needs only to know it is one, for the No Local rule.
 */
static bool is_shared_filter(const uint8_t *s, size_t len)
{
	static const char prefix[] = "$share/";
	const size_t plen = sizeof prefix - 1;

	return len >= plen && memcmp(s, prefix, plen) == 0;
}

static roost_err sub_entries(reader *r, uint8_t version, bool is_subscribe, roost_subscribe *s,
                             roost_codec_error *e)
{
	roost_err err;

	s->entries.ptr = r->p;
	s->entries.len = rd_left(r);
	while (r->p < r->end) {
		roost_bytes f;
		bool shared = false;

		err = rd_str(r, &f, "[§3.8.3] topic filter overruns the packet",
		             "[MQTT-3.8.3-1] topic filter is not valid UTF-8", e);
		if (err)
			return err;
		/* Filter syntax ([MQTT-4.7.1-2/3], [MQTT-4.7.3-1]) is not checked
		 * here: a broker refuses one bad filter with SUBACK 0x80 and still
		 * grants the others, so the decoder hands every well-encoded
		 * filter over and the broker calls roost_topic_filter_valid(). */
		shared = version == ROOST_MQTT_V5 && is_shared_filter(f.ptr, f.len);
		if (is_subscribe) {
			uint8_t o;
			size_t oat = rd_off(r);
			if (!rd_u8(r, &o))
				return fail(e, ROOST_ERR_MALFORMED, oat, "[§3.8.3] subscription options missing");
			if (version != ROOST_MQTT_V5) {
				if ((o & 0xFC) || (o & 3) == 3)
					return fail(e, ROOST_ERR_MALFORMED, oat,
					            "[MQTT-3-8.3-4] reserved bits set or QoS 3 in requested QoS");
			} else {
				if (o & 0xC0)
					return fail(e, ROOST_ERR_MALFORMED, oat,
					            "[v5 MQTT-3.8.3-5] reserved subscription option bits set");
				if ((o & 3) == 3)
					return fail(e, ROOST_ERR_PROTOCOL, oat, "[v5 §3.8.3.1] maximum QoS 3");
				if (((o >> 4) & 3) == 3)
					return fail(e, ROOST_ERR_PROTOCOL, oat, "[v5 §3.8.3.1] retain handling 3");
				if (shared && (o & 0x04))
					return fail(e, ROOST_ERR_PROTOCOL, oat,
					            "[v5 MQTT-3.8.3-4] No Local on a shared subscription");
			}
		}
		s->count++;
	}
	if (s->count == 0)
		return fail(e, ROOST_ERR_MALFORMED, rd_off(r),
		            is_subscribe ? "[MQTT-3.8.3-3] SUBSCRIBE without topic filters"
		                         : "[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters");
	return ROOST_OK;
}

static roost_err decode_sub(const uint8_t *pkt, size_t len, uint8_t version, bool is_subscribe,
                            roost_subscribe *s, roost_codec_error *e)
{
	uint8_t type = is_subscribe ? ROOST_MQTT_SUBSCRIBE : ROOST_MQTT_UNSUBSCRIBE;
	reader r;
	roost_err err;

	memset(s, 0, sizeof *s);
	if (!version_known(version))
		return bad_version(e);
	err = open_packet(pkt, len, version, W(type), &r, e);
	if (err)
		return err;
	err = rd_packet_id(&r, &s->packet_id, e);
	if (err)
		return err;
	if (version == ROOST_MQTT_V5) {
		err = props_read(&r, type, &s->props, NULL, e);
		if (err)
			return err;
	}
	err = sub_entries(&r, version, is_subscribe, s, e);
	if (err)
		return err;
	return ok(e);
}

roost_err roost_decode_subscribe(const uint8_t *pkt, size_t len, uint8_t version, roost_subscribe *s,
                                 roost_codec_error *e)
{
	return decode_sub(pkt, len, version, true, s, e);
}

roost_err roost_decode_unsubscribe(const uint8_t *pkt, size_t len, uint8_t version, roost_subscribe *s,
                                   roost_codec_error *e)
{
	return decode_sub(pkt, len, version, false, s, e);
}

void roost_sub_iter_init(roost_sub_iter *it, const roost_subscribe *s, bool is_subscribe)
{
	it->p = s->entries.ptr;
	it->end = s->entries.ptr ? s->entries.ptr + s->entries.len : s->entries.ptr;
	it->has_options = is_subscribe;
}

bool roost_sub_next(roost_sub_iter *it, roost_sub_entry *entry)
{
	reader r = { it->p, it->p, it->end };

	if (!it->p || !rd_bin(&r, &entry->filter)) {
		it->p = it->end;
		return false;
	}
	entry->options = 0;
	if (it->has_options && !rd_u8(&r, &entry->options)) {
		it->p = it->end;
		return false;
	}
	it->p = r.p;
	return true;
}

static roost_err decode_acks_list(const uint8_t *pkt, size_t len, uint8_t version, bool suback,
                                  roost_suback *s, roost_codec_error *e)
{
	uint8_t type = suback ? ROOST_MQTT_SUBACK : ROOST_MQTT_UNSUBACK;
	reader r;
	roost_err err;

	memset(s, 0, sizeof *s);
	if (!version_known(version))
		return bad_version(e);
	err = open_packet(pkt, len, version, W(type), &r, e);
	if (err)
		return err;
	err = rd_packet_id(&r, &s->packet_id, e);
	if (err)
		return err;
	if (!suback && version != ROOST_MQTT_V5) {
		/* 3.1.1 UNSUBACK is only the packet identifier */
		err = expect_end(&r, "[§3.11] UNSUBACK remaining length must be 2", e);
		return err ? err : ok(e);
	}
	if (version == ROOST_MQTT_V5) {
		err = props_read(&r, type, &s->props, NULL, e);
		if (err)
			return err;
	}
	s->codes.ptr = r.p;
	s->codes.len = rd_left(&r);
	if (s->codes.len == 0)
		return fail(e, ROOST_ERR_MALFORMED, rd_off(&r),
		            suback ? "[§3.9.3] SUBACK without return codes" : "[v5 §3.11.3] UNSUBACK without reason codes");
	for (size_t i = 0; i < s->codes.len; i++) {
		uint8_t c = s->codes.ptr[i];
		bool allowed;
		if (!suback)
			allowed = RC_OK(RC_UNSUBACK5, c);
		else if (version == ROOST_MQTT_V5)
			allowed = RC_OK(RC_SUBACK5, c);
		else
			allowed = RC_OK(RC_SUBACK3, c);
		if (!allowed)
			return fail(e, ROOST_ERR_PROTOCOL, rd_off(&r) + i,
			            suback ? "[MQTT-3.9.3-2] reserved SUBACK return code"
			                   : "[v5 §3.11.3] reserved UNSUBACK reason code");
	}
	return ok(e);
}

roost_err roost_decode_suback(const uint8_t *pkt, size_t len, uint8_t version, roost_suback *s,
                              roost_codec_error *e)
{
	return decode_acks_list(pkt, len, version, true, s, e);
}

roost_err roost_decode_unsuback(const uint8_t *pkt, size_t len, uint8_t version, roost_suback *s,
                                roost_codec_error *e)
{
	return decode_acks_list(pkt, len, version, false, s, e);
}

roost_err roost_decode_empty(const uint8_t *pkt, size_t len, roost_codec_error *e)
{
	reader r;
	/* PINGREQ/PINGRESP (and a 3.1.1 DISCONNECT) carry nothing. Flags are
	 * 0 in every version, so version 0 only serves the AUTH check. */
	roost_err err = open_packet(pkt, len, 0,
	                            W(ROOST_MQTT_PINGREQ) | W(ROOST_MQTT_PINGRESP) | W(ROOST_MQTT_DISCONNECT),
	                            &r, e);
	if (err)
		return err;
	err = expect_end(&r, "[§3.12] remaining length must be 0", e);
	return err ? err : ok(e);
}

/* DISCONNECT and AUTH share the v5 shape: [reason [properties]]. */
static roost_err decode_reason_props(const uint8_t *pkt, size_t len, uint8_t version, uint8_t type,
                                     uint8_t *reason, roost_bytes *props, roost_codec_error *e)
{
	reader r;
	roost_err err;

	*reason = 0;
	props->ptr = NULL;
	props->len = 0;
	if (!version_known(version))
		return bad_version(e);
	err = open_packet(pkt, len, version, W(type), &r, e);
	if (err)
		return err;
	if (version != ROOST_MQTT_V5) {
		err = expect_end(&r, "[§3.14] DISCONNECT remaining length must be 0", e);
		return err ? err : ok(e);
	}
	if (rd_left(&r) > 0) {
		size_t at = rd_off(&r);
		(void)rd_u8(&r, reason);
		if (type == ROOST_MQTT_DISCONNECT ? !RC_OK(RC_DISCONNECT5, *reason) : !RC_OK(RC_AUTH5, *reason))
			return fail(e, ROOST_ERR_PROTOCOL, at,
			            type == ROOST_MQTT_DISCONNECT ? "[v5 §3.14.2.1] reserved DISCONNECT reason code"
			                                          : "[v5 §3.15.2.1] reserved AUTH reason code");
		if (rd_left(&r) > 0) {
			err = props_read(&r, type, props, NULL, e);
			if (err)
				return err;
		}
	}
	err = expect_end(&r, "[v5 §3.14.2] bytes after the properties", e);
	return err ? err : ok(e);
}

roost_err roost_decode_disconnect(const uint8_t *pkt, size_t len, uint8_t version, roost_disconnect *d,
                                  roost_codec_error *e)
{
	return decode_reason_props(pkt, len, version, ROOST_MQTT_DISCONNECT, &d->reason, &d->props, e);
}

roost_err roost_decode_auth(const uint8_t *pkt, size_t len, uint8_t version, roost_auth *a,
                            roost_codec_error *e)
{
	if (version != ROOST_MQTT_V5) {
		a->reason = 0;
		a->props.ptr = NULL;
		a->props.len = 0;
		return fail(e, ROOST_ERR_MALFORMED, 0, "[§2.2.1] AUTH exists only in MQTT 5");
	}
	return decode_reason_props(pkt, len, version, ROOST_MQTT_AUTH, &a->reason, &a->props, e);
}

/* ---- encoders ----------------------------------------------------------- */

/*
 * Encoders size the packet first, then write only if it fits (snprintf
 * style). The writer needs no bounds checks: the size was computed from the
 * same fields.
 */
typedef struct writer {
	uint8_t *p;
} writer;

static inline void put_u8(writer *w, uint8_t v)
{
	*w->p++ = v;
}

static inline void put_u16(writer *w, uint16_t v)
{
	w->p[0] = (uint8_t)(v >> 8);
	w->p[1] = (uint8_t)v;
	w->p += 2;
}

static inline void put_raw(writer *w, const uint8_t *s, size_t n)
{
	if (n) /* memcpy with a NULL source is undefined even for n == 0 */
		memcpy(w->p, s, n);
	w->p += n;
}

static inline void put_bin(writer *w, roost_bytes b)
{
	put_u16(w, (uint16_t)b.len);
	put_raw(w, b.ptr, b.len);
}

static inline void put_varint(writer *w, uint32_t v)
{
	w->p += roost_varint_encode(w->p, v);
}

static inline void put_props(writer *w, roost_bytes props)
{
	put_varint(w, (uint32_t)props.len);
	put_raw(w, props.ptr, props.len);
}

/* Size of a property block with its length, or 0 when it cannot be encoded. */
static inline size_t props_size(roost_bytes props)
{
	if (props.len > ROOST_MQTT_MAX_REMAINING)
		return 0;
	return roost_varint_size((uint32_t)props.len) + props.len;
}

size_t roost_prop_encode(uint8_t *out, size_t cap, const roost_prop *prop)
{
	const struct propdef *d = prop->id <= PROP_MAX ? &propdefs[prop->id] : NULL;
	size_t need;

	if (!d || d->type == PT_NONE)
		return 0;
	switch (d->type) {
	case PT_BYTE: need = 2; break;
	case PT_U16: need = 3; break;
	case PT_U32: need = 5; break;
	case PT_VARINT: need = 1 + roost_varint_size(prop->u32); break;
	case PT_STR: case PT_BIN: need = 3 + prop->str.len; break;
	default: need = 5 + prop->str.len + prop->str2.len; break; /* PT_PAIR */
	}
	if (need > cap)
		return need;
	writer w = { out };
	put_u8(&w, prop->id);
	switch (d->type) {
	case PT_BYTE: put_u8(&w, (uint8_t)prop->u32); break;
	case PT_U16: put_u16(&w, (uint16_t)prop->u32); break;
	case PT_U32:
		put_u16(&w, (uint16_t)(prop->u32 >> 16));
		put_u16(&w, (uint16_t)prop->u32);
		break;
	case PT_VARINT: put_varint(&w, prop->u32); break;
	case PT_STR: case PT_BIN: put_bin(&w, prop->str); break;
	default: put_bin(&w, prop->str); put_bin(&w, prop->str2); break;
	}
	return need;
}

/* Total packet size for a remaining length, or 0 when it is too long. */
static inline size_t total_size(size_t rem)
{
	if (rem > ROOST_MQTT_MAX_REMAINING)
		return 0;
	return 1 + roost_varint_size((uint32_t)rem) + rem;
}

static inline void put_header(writer *w, uint8_t byte1, size_t rem)
{
	put_u8(w, byte1);
	put_varint(w, (uint32_t)rem);
}

size_t roost_encode_connect(uint8_t *out, size_t cap, uint8_t version, const roost_connect *c)
{
	static const roost_bytes mqtt = { (const uint8_t *)"MQTT", 4 };
	static const roost_bytes mqisdp = { (const uint8_t *)"MQIsdp", 6 };
	const roost_bytes name = version == ROOST_MQTT_V31 ? mqisdp : mqtt;
	bool v5 = version == ROOST_MQTT_V5;
	size_t rem, total;

	if (c->client_id.len > 65535 || c->will_topic.len > 65535 || c->will_payload.len > 65535 ||
	    c->username.len > 65535 || c->password.len > 65535)
		return 0;
	rem = 2 + name.len + 1 + 1 + 2 + 2 + c->client_id.len;
	if (v5) {
		if (!props_size(c->props))
			return 0;
		rem += props_size(c->props);
	}
	if (c->will_flag) {
		if (v5) {
			if (!props_size(c->will_props))
				return 0;
			rem += props_size(c->will_props);
		}
		rem += 2 + c->will_topic.len + 2 + c->will_payload.len;
	}
	if (c->username_flag)
		rem += 2 + c->username.len;
	if (c->password_flag)
		rem += 2 + c->password.len;
	total = total_size(rem);
	if (!total || total > cap)
		return total;

	uint8_t flags = (uint8_t)((c->username_flag ? 0x80 : 0) | (c->password_flag ? 0x40 : 0) |
	                          (c->will_flag && c->will_retain ? 0x20 : 0) |
	                          (c->will_flag ? (c->will_qos & 3) << 3 : 0) | (c->will_flag ? 0x04 : 0) |
	                          (c->clean_start ? 0x02 : 0));
	writer w = { out };
	put_header(&w, ROOST_MQTT_CONNECT << 4, rem);
	put_bin(&w, name);
	put_u8(&w, version);
	put_u8(&w, flags);
	put_u16(&w, c->keepalive);
	if (v5)
		put_props(&w, c->props);
	put_bin(&w, c->client_id);
	if (c->will_flag) {
		if (v5)
			put_props(&w, c->will_props);
		put_bin(&w, c->will_topic);
		put_bin(&w, c->will_payload);
	}
	if (c->username_flag)
		put_bin(&w, c->username);
	if (c->password_flag)
		put_bin(&w, c->password);
	return total;
}

size_t roost_encode_connack(uint8_t *out, size_t cap, uint8_t version, const roost_connack *c)
{
	bool v5 = version == ROOST_MQTT_V5;
	size_t rem = 2, total;

	if (v5) {
		if (!props_size(c->props))
			return 0;
		rem += props_size(c->props);
	}
	total = total_size(rem);
	if (!total || total > cap)
		return total;
	writer w = { out };
	put_header(&w, ROOST_MQTT_CONNACK << 4, rem);
	put_u8(&w, c->session_present && version != ROOST_MQTT_V31 ? 1 : 0);
	put_u8(&w, c->code);
	if (v5)
		put_props(&w, c->props);
	return total;
}

/*
 * Sizes of a PUBLISH: *head is everything before the payload, the return
 * value the whole packet (0 when it cannot be encoded).
 */
static size_t publish_size(uint8_t version, const roost_publish *p, size_t *rem, size_t *head)
{
	size_t vh, total;

	if (p->topic.len > 65535 || p->payload.len > ROOST_MQTT_MAX_REMAINING)
		return 0;
	vh = 2 + p->topic.len + (p->qos ? 2 : 0);
	if (version == ROOST_MQTT_V5) {
		roost_bytes all = {p->props.ptr, p->props.len + p->props_shared_len};
		if (p->props_shared_len > p->payload.len || !props_size(all))
			return 0;
		vh += props_size(all) - p->props_shared_len; /* the shared part counts as payload */
	}
	*rem = vh + p->payload.len;
	total = total_size(*rem);
	*head = total - p->payload.len;
	return total;
}

static void publish_write_head(uint8_t *out, uint8_t version, const roost_publish *p, size_t rem)
{
	writer w = { out };
	put_header(&w, (uint8_t)(ROOST_MQTT_PUBLISH << 4 | (p->dup ? 0x08 : 0) | (p->qos & 3) << 1 |
	                         (p->retain ? 1 : 0)),
	           rem);
	put_bin(&w, p->topic);
	if (p->qos)
		put_u16(&w, p->packet_id);
	if (version == ROOST_MQTT_V5) {
		put_varint(&w, (uint32_t)(p->props.len + p->props_shared_len));
		put_raw(&w, p->props.ptr, p->props.len);
	}
}

size_t roost_encode_publish(uint8_t *out, size_t cap, uint8_t version, const roost_publish *p)
{
	size_t rem, head, total = publish_size(version, p, &rem, &head);

	if (!total || total > cap)
		return total;
	publish_write_head(out, version, p, rem);
	if (p->payload.len)
		memcpy(out + head, p->payload.ptr, p->payload.len);
	return total;
}

size_t roost_encode_publish_header(uint8_t *out, size_t cap, uint8_t version, const roost_publish *p)
{
	size_t rem, head;

	if (!publish_size(version, p, &rem, &head))
		return 0;
	if (head <= cap)
		publish_write_head(out, version, p, rem);
	return head;
}

size_t roost_encode_ack(uint8_t *out, size_t cap, uint8_t version, uint8_t type, const roost_ack *a)
{
	bool v5 = version == ROOST_MQTT_V5;
	size_t rem = 2, total;

	if (type < ROOST_MQTT_PUBACK || (type > ROOST_MQTT_PUBCOMP && type != ROOST_MQTT_UNSUBACK))
		return 0;
	if (type == ROOST_MQTT_UNSUBACK && v5)
		return 0; /* a v5 UNSUBACK carries reason codes: roost_encode_unsuback */
	/* v5 §3.4.2.1: use the short forms when reason is 0 / there are no properties */
	if (v5 && (a->reason || a->props.len))
		rem += 1;
	if (v5 && a->props.len) {
		if (!props_size(a->props))
			return 0;
		rem += props_size(a->props);
	}
	total = total_size(rem);
	if (total > cap)
		return total;
	writer w = { out };
	put_header(&w, (uint8_t)(type << 4 | (type == ROOST_MQTT_PUBREL ? 0x02 : 0)), rem);
	put_u16(&w, a->packet_id);
	if (rem > 2)
		put_u8(&w, a->reason);
	if (rem > 3)
		put_props(&w, a->props);
	return total;
}

static size_t encode_sub(uint8_t *out, size_t cap, uint8_t version, uint8_t type, uint16_t packet_id,
                         const roost_sub_entry *entries, size_t n)
{
	bool v5 = version == ROOST_MQTT_V5, opts = type == ROOST_MQTT_SUBSCRIBE;
	size_t rem = 2 + (v5 ? 1 : 0), total;

	if (n == 0) /* [MQTT-3.8.3-3], [MQTT-3.10.3-2] */
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (entries[i].filter.len > 65535)
			return 0;
		rem += 2 + entries[i].filter.len + (opts ? 1 : 0);
		if (rem > ROOST_MQTT_MAX_REMAINING)
			return 0;
	}
	total = total_size(rem);
	if (!total || total > cap)
		return total;
	writer w = { out };
	put_header(&w, (uint8_t)(type << 4 | 0x02), rem);
	put_u16(&w, packet_id);
	if (v5)
		put_u8(&w, 0); /* no properties */
	for (size_t i = 0; i < n; i++) {
		put_bin(&w, entries[i].filter);
		if (opts)
			put_u8(&w, v5 ? entries[i].options : entries[i].options & 0x03);
	}
	return total;
}

size_t roost_encode_subscribe(uint8_t *out, size_t cap, uint8_t version, uint16_t packet_id,
                              const roost_sub_entry *entries, size_t n)
{
	return encode_sub(out, cap, version, ROOST_MQTT_SUBSCRIBE, packet_id, entries, n);
}

size_t roost_encode_unsubscribe(uint8_t *out, size_t cap, uint8_t version, uint16_t packet_id,
                                const roost_sub_entry *entries, size_t n)
{
	return encode_sub(out, cap, version, ROOST_MQTT_UNSUBSCRIBE, packet_id, entries, n);
}

static size_t encode_codes(uint8_t *out, size_t cap, uint8_t version, uint8_t type, const roost_suback *s)
{
	bool v5 = version == ROOST_MQTT_V5;
	bool codes = type == ROOST_MQTT_SUBACK || v5;
	size_t rem = 2, total;

	if (v5) {
		if (!props_size(s->props))
			return 0;
		rem += props_size(s->props);
	}
	if (codes)
		rem += s->codes.len;
	total = total_size(rem);
	if (!total || total > cap)
		return total;
	writer w = { out };
	put_header(&w, (uint8_t)(type << 4), rem);
	put_u16(&w, s->packet_id);
	if (v5)
		put_props(&w, s->props);
	if (codes)
		put_raw(&w, s->codes.ptr, s->codes.len);
	return total;
}

size_t roost_encode_suback(uint8_t *out, size_t cap, uint8_t version, const roost_suback *s)
{
	return encode_codes(out, cap, version, ROOST_MQTT_SUBACK, s);
}

size_t roost_encode_unsuback(uint8_t *out, size_t cap, uint8_t version, const roost_suback *s)
{
	return encode_codes(out, cap, version, ROOST_MQTT_UNSUBACK, s);
}

size_t roost_encode_empty(uint8_t *out, size_t cap, uint8_t type)
{
	if (type != ROOST_MQTT_PINGREQ && type != ROOST_MQTT_PINGRESP && type != ROOST_MQTT_DISCONNECT)
		return 0;
	if (cap < 2)
		return 2;
	out[0] = (uint8_t)(type << 4);
	out[1] = 0;
	return 2;
}

static size_t encode_reason_props(uint8_t *out, size_t cap, uint8_t type, uint8_t reason, roost_bytes props)
{
	size_t rem = 0, total;

	/* v5 §3.14.2.1 / §3.15.2.1: omit what is 0 / empty */
	if (reason || props.len)
		rem = 1;
	if (props.len) {
		if (!props_size(props))
			return 0;
		rem += props_size(props);
	}
	total = total_size(rem);
	if (!total || total > cap)
		return total;
	writer w = { out };
	put_header(&w, (uint8_t)(type << 4), rem);
	if (rem)
		put_u8(&w, reason);
	if (props.len)
		put_props(&w, props);
	return total;
}

size_t roost_encode_disconnect(uint8_t *out, size_t cap, uint8_t version, const roost_disconnect *d)
{
	if (version != ROOST_MQTT_V5)
		return roost_encode_empty(out, cap, ROOST_MQTT_DISCONNECT);
	return encode_reason_props(out, cap, ROOST_MQTT_DISCONNECT, d->reason, d->props);
}

size_t roost_encode_auth(uint8_t *out, size_t cap, uint8_t version, const roost_auth *a)
{
	if (version != ROOST_MQTT_V5)
		return 0;
	return encode_reason_props(out, cap, ROOST_MQTT_AUTH, a->reason, a->props);
}

const char *roost_mqtt_type_name(uint8_t type)
{
	static const char *const names[] = {
		[ROOST_MQTT_CONNECT] = "CONNECT",         [ROOST_MQTT_CONNACK] = "CONNACK",
		[ROOST_MQTT_PUBLISH] = "PUBLISH",         [ROOST_MQTT_PUBACK] = "PUBACK",
		[ROOST_MQTT_PUBREC] = "PUBREC",           [ROOST_MQTT_PUBREL] = "PUBREL",
		[ROOST_MQTT_PUBCOMP] = "PUBCOMP",         [ROOST_MQTT_SUBSCRIBE] = "SUBSCRIBE",
		[ROOST_MQTT_SUBACK] = "SUBACK",           [ROOST_MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
		[ROOST_MQTT_UNSUBACK] = "UNSUBACK",       [ROOST_MQTT_PINGREQ] = "PINGREQ",
		[ROOST_MQTT_PINGRESP] = "PINGRESP",       [ROOST_MQTT_DISCONNECT] = "DISCONNECT",
		[ROOST_MQTT_AUTH] = "AUTH",
	};
	if (type < sizeof names / sizeof names[0] && names[type])
		return names[type];
	return "UNKNOWN";
}

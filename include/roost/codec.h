/*
 * codec.h — pure MQTT 3.1, 3.1.1 and 5.0 packet codec.
 *
 * No I/O, no logging, no globals and no allocation. Decoders return views
 * (pointer + length) into the caller's buffer, which must outlive the decoded
 * struct. Every syntactic rule of the spec is enforced here: fixed-header
 * reserved flags, remaining-length encoding, UTF-8 well-formedness and U+0000,
 * wildcards in PUBLISH topic names, topic filter syntax, packet-id != 0 where
 * required, CONNECT flag consistency, and (for v5) property identifiers and
 * their multiplicity. Semantic decisions (is this client allowed? is a second
 * CONNECT an error?) belong to the broker.
 *
 * On error a decoder reports the byte offset (from the start of the packet)
 * where decoding stopped, in roost_codec_error, so a caller can log exactly.
 *
 * Protocol versions: ROOST_MQTT_V31 (3, "MQIsdp"), ROOST_MQTT_V311 (4, "MQTT"),
 * ROOST_MQTT_V5 (5, "MQTT"). For versions below 5 the property views are empty.
 */
#ifndef ROOST_CODEC_H
#define ROOST_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

#define ROOST_MQTT_V31 3
#define ROOST_MQTT_V311 4
#define ROOST_MQTT_V5 5

/* Largest remaining length the 4-byte varint can carry. [MQTT-2.2.3] */
#define ROOST_MQTT_MAX_REMAINING 268435455u
/* Longest fixed header: 1 type byte + 4 length bytes. */
#define ROOST_MQTT_MAX_FIXED_HEADER 5

typedef enum roost_mqtt_type {
	ROOST_MQTT_CONNECT = 1,
	ROOST_MQTT_CONNACK = 2,
	ROOST_MQTT_PUBLISH = 3,
	ROOST_MQTT_PUBACK = 4,
	ROOST_MQTT_PUBREC = 5,
	ROOST_MQTT_PUBREL = 6,
	ROOST_MQTT_PUBCOMP = 7,
	ROOST_MQTT_SUBSCRIBE = 8,
	ROOST_MQTT_SUBACK = 9,
	ROOST_MQTT_UNSUBSCRIBE = 10,
	ROOST_MQTT_UNSUBACK = 11,
	ROOST_MQTT_PINGREQ = 12,
	ROOST_MQTT_PINGRESP = 13,
	ROOST_MQTT_DISCONNECT = 14,
	ROOST_MQTT_AUTH = 15, /* v5 only */
} roost_mqtt_type;

/*
 * Return codes the broker sends, named once. CONNACK 3.1.1 return codes
 * [MQTT-3.2.2-4..6]; the v5 reason code with the same meaning where a
 * refusal has one (MQTT 5 section 3.2.2.2); SUBACK's failure code.
 */
enum {
	ROOST_CONNACK_ACCEPTED = 0x00,
	ROOST_CONNACK_BAD_PROTOCOL = 0x01,
	ROOST_CONNACK_ID_REJECTED = 0x02,
	ROOST_CONNACK_UNAVAILABLE = 0x03,
	ROOST_CONNACK_BAD_CREDENTIALS = 0x04,
	ROOST_CONNACK_NOT_AUTHORIZED = 0x05,
	ROOST_RC5_NOT_AUTHORIZED = 0x87,
	ROOST_RC5_TOPIC_NAME_INVALID = 0x90,
	ROOST_SUBACK_FAILURE = 0x80,
};

/* MQTT 5 reason codes (MQTT 5.0 2.4, table 2-6): CONNACK, DISCONNECT and
 * AUTH, and the publish/subscribe flows (3.4.2.1, 3.5.2.1, 3.6.2.1,
 * 3.7.2.1, 3.9.3, 3.11.3). */
enum {
	ROOST_RC5_SUCCESS = 0x00,              /* also "normal disconnection" */
	ROOST_RC5_DISCONNECT_WITH_WILL = 0x04,
	ROOST_RC5_CONTINUE_AUTH = 0x18,
	ROOST_RC5_NO_MATCHING_SUBSCRIBERS = 0x10,
	ROOST_RC5_NO_SUBSCRIPTION_EXISTED = 0x11,
	ROOST_RC5_REAUTHENTICATE = 0x19,
	ROOST_RC5_UNSPECIFIED = 0x80,
	ROOST_RC5_MALFORMED = 0x81,
	ROOST_RC5_PROTOCOL_ERROR = 0x82,
	ROOST_RC5_UNSUPPORTED_VERSION = 0x84,
	ROOST_RC5_ID_NOT_VALID = 0x85,
	ROOST_RC5_BAD_CREDENTIALS = 0x86,
	/* ROOST_RC5_NOT_AUTHORIZED = 0x87 above */
	ROOST_RC5_SERVER_UNAVAILABLE = 0x88,
	ROOST_RC5_SERVER_BUSY = 0x89,
	ROOST_RC5_BANNED = 0x8A,
	ROOST_RC5_SHUTTING_DOWN = 0x8B,
	ROOST_RC5_BAD_AUTH_METHOD = 0x8C,
	ROOST_RC5_KEEPALIVE_TIMEOUT = 0x8D,
	ROOST_RC5_SESSION_TAKEN_OVER = 0x8E,
	ROOST_RC5_TOPIC_FILTER_INVALID = 0x8F,
	/* ROOST_RC5_TOPIC_NAME_INVALID = 0x90 above */
	ROOST_RC5_PACKET_ID_NOT_FOUND = 0x92,
	ROOST_RC5_RECEIVE_MAX_EXCEEDED = 0x93,
	ROOST_RC5_TOPIC_ALIAS_INVALID = 0x94,
	ROOST_RC5_PACKET_TOO_LARGE = 0x95,
	ROOST_RC5_QUOTA_EXCEEDED = 0x97,
	ROOST_RC5_ADMIN_ACTION = 0x98,
	ROOST_RC5_PAYLOAD_FORMAT_INVALID = 0x99,
	ROOST_RC5_RETAIN_NOT_SUPPORTED = 0x9A,
	ROOST_RC5_QOS_NOT_SUPPORTED = 0x9B,
	ROOST_RC5_SHARED_NOT_SUPPORTED = 0x9E,
	ROOST_RC5_WILDCARDS_NOT_SUPPORTED = 0xA2,
};

/* MQTT 5 property identifiers (MQTT 5.0 2.2.2.2, table 2-4). */
enum {
	ROOST_PROP_PAYLOAD_FORMAT = 0x01,
	ROOST_PROP_MESSAGE_EXPIRY = 0x02,
	ROOST_PROP_CONTENT_TYPE = 0x03,
	ROOST_PROP_RESPONSE_TOPIC = 0x08,
	ROOST_PROP_CORRELATION_DATA = 0x09,
	ROOST_PROP_SUBSCRIPTION_ID = 0x0B,
	ROOST_PROP_SESSION_EXPIRY = 0x11,
	ROOST_PROP_ASSIGNED_CLIENT_ID = 0x12,
	ROOST_PROP_SERVER_KEEPALIVE = 0x13,
	ROOST_PROP_AUTH_METHOD = 0x15,
	ROOST_PROP_AUTH_DATA = 0x16,
	ROOST_PROP_REQUEST_PROBLEM_INFO = 0x17,
	ROOST_PROP_WILL_DELAY = 0x18,
	ROOST_PROP_REQUEST_RESPONSE_INFO = 0x19,
	ROOST_PROP_RESPONSE_INFO = 0x1A,
	ROOST_PROP_SERVER_REFERENCE = 0x1C,
	ROOST_PROP_REASON_STRING = 0x1F,
	ROOST_PROP_RECEIVE_MAXIMUM = 0x21,
	ROOST_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	ROOST_PROP_TOPIC_ALIAS = 0x23,
	ROOST_PROP_MAXIMUM_QOS = 0x24,
	ROOST_PROP_RETAIN_AVAILABLE = 0x25,
	ROOST_PROP_USER_PROPERTY = 0x26,
	ROOST_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	ROOST_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	ROOST_PROP_SUB_ID_AVAILABLE = 0x29,
	ROOST_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* SUBSCRIBE options byte (v5 3.8.3.1). 3.1.1 uses only the QoS bits. */
#define ROOST_SUBOPT_QOS 0x03
#define ROOST_SUBOPT_NO_LOCAL 0x04        /* [MQTT-3.8.3-3] */
#define ROOST_SUBOPT_RETAIN_AS_PUB 0x08   /* [MQTT-3.3.1-12] */
#define ROOST_SUBOPT_RH_SHIFT 4           /* Retain Handling, bits 4-5 */

/* A view of an MQTT UTF-8 string or binary field inside the caller's buffer. */
typedef struct roost_bytes {
	const uint8_t *ptr;
	size_t len;
} roost_bytes;

typedef struct roost_codec_error {
	roost_err err;   /* ROOST_OK, NEED_MORE, MALFORMED, PROTOCOL, BAD_UTF8, BAD_TOPIC, TOO_LARGE,
	                  * UNSUPPORTED. PROTOCOL: parseable but a v5 "Protocol Error" (duplicate
	                  * property, reserved reason code, retain handling 3, ...). */
	size_t offset;   /* byte offset in the packet where the problem was found */
	const char *why; /* static string naming the rule, e.g. "[MQTT-3.3.2-2] wildcard in topic name" */
} roost_codec_error;

/* ---- framing ---------------------------------------------------------- */

typedef struct roost_frame {
	uint8_t type;          /* roost_mqtt_type */
	uint8_t flags;         /* low nibble of byte 1 */
	size_t header_len;     /* fixed header bytes (2..5) */
	size_t remaining_len;  /* variable header + payload */
	size_t total_len;      /* header_len + remaining_len */
} roost_frame;

/*
 * Look at the start of buf. Returns ROOST_OK with *frame filled when a whole
 * packet is present, ROOST_ERR_NEED_MORE when buf is a valid prefix,
 * ROOST_ERR_MALFORMED for a bad remaining-length encoding (more than 4 bytes,
 * [MQTT-2.2.3]) or packet type 0 (or 15 unless version is 5), and
 * ROOST_ERR_TOO_LARGE when total_len would exceed max_packet (checked as soon
 * as the length is known, before the body arrives). Reserved flag nibbles are
 * checked here too ([MQTT-2.2.2-1], [MQTT-2.2.2-2]; PUBLISH QoS 3 is
 * [MQTT-3.3.1-4]) -> MALFORMED. version may be 0 when not yet known (before
 * CONNECT): AUTH is then rejected. max_packet 0 means no limit but the
 * protocol's. On NEED_MORE *frame is filled as soon as the length bytes are
 * complete (total_len tells how much to wait for), else zeroed.
 */
roost_err roost_frame_peek(const uint8_t *buf, size_t len, size_t max_packet,
                           uint8_t version, roost_frame *frame, roost_codec_error *e);

/* Bytes a remaining length needs (1..4), or 0 if above the maximum. */
size_t roost_varint_size(uint32_t value);
/* Write a variable byte integer; returns bytes written (1..4) or 0 if too big. */
size_t roost_varint_encode(uint8_t *out, uint32_t value);

/* ---- UTF-8 and topics ------------------------------------------------- */

/*
 * Validate an MQTT UTF-8 string: well-formed UTF-8 (no overlongs, no
 * surrogates U+D800..U+DFFF [MQTT-1.5.3-1]), no U+0000 [MQTT-1.5.3-2].
 */
bool roost_utf8_valid(const uint8_t *s, size_t len);

/*
 * Topic name (PUBLISH): at least one character [MQTT-4.7.3-1], no '+' or '#'
 * [MQTT-3.3.2-2], valid UTF-8. Length bound 65535 is implied by the encoding.
 */
bool roost_topic_name_valid(const uint8_t *s, size_t len);

/*
 * Topic filter (SUBSCRIBE/UNSUBSCRIBE): non-empty, '#' only as the whole last
 * level [MQTT-4.7.1-2], '+' only as a whole level [MQTT-4.7.1-3], valid UTF-8.
 */
bool roost_topic_filter_valid(const uint8_t *s, size_t len);

/* ---- v5 properties ---------------------------------------------------- */

typedef struct roost_props_iter {
	const uint8_t *p, *end;
} roost_props_iter;

typedef struct roost_prop {
	uint8_t id;           /* property identifier */
	uint32_t u32;         /* byte, two-byte, four-byte and varint values */
	roost_bytes str;      /* string, binary data, and user property name */
	roost_bytes str2;     /* user property value */
} roost_prop;

/*
 * Write one property (id and value, typed by the spec's table) to out[0..cap);
 * returns the bytes it needs (snprintf style), 0 for an unknown id.
 */
size_t roost_prop_encode(uint8_t *out, size_t cap, const roost_prop *prop);

/* Iterate a property block previously validated by a decoder. */
void roost_props_iter_init(roost_props_iter *it, roost_bytes props);
/* Returns true and fills *prop while properties remain. */
bool roost_props_next(roost_props_iter *it, roost_prop *prop);

/*
 * Build a property block (without its length prefix: the packet encoders
 * add it) into out[0..cap). Each put encodes the value the way the
 * property's type in table 2-4 says (byte, two/four-byte integer, variable
 * byte integer, string, binary, string pair). A put that does not fit sets
 * overflow and writes nothing more; the caller checks it once at the end.
 */
typedef struct roost_props_writer {
	uint8_t *out;
	size_t cap, len;
	bool overflow;
} roost_props_writer;

void roost_props_writer_init(roost_props_writer *w, uint8_t *out, size_t cap);
/* Integer-valued properties (byte, u16, u32, varint). */
void roost_props_put_int(roost_props_writer *w, uint8_t id, uint32_t value);
/* String or binary properties. */
void roost_props_put_bytes(roost_props_writer *w, uint8_t id, const void *s, size_t len);
/* User Property. */
void roost_props_put_pair(roost_props_writer *w, uint8_t id, const void *k, size_t klen, const void *v,
                          size_t vlen);
/* The block written so far. */
roost_bytes roost_props_writer_bytes(const roost_props_writer *w);

/* ---- decoded packets ---------------------------------------------------- */

typedef struct roost_connect {
	roost_bytes protocol_name; /* "MQTT" or "MQIsdp" */
	uint8_t protocol_level;    /* 3, 4 or 5 */
	bool clean_start;          /* clean session (3.1.1) / clean start (5) */
	bool will_flag;
	uint8_t will_qos;
	bool will_retain;
	bool username_flag;
	bool password_flag;
	uint16_t keepalive;        /* seconds */
	roost_bytes props;         /* v5 CONNECT properties (raw, validated) */
	roost_bytes client_id;
	roost_bytes will_props;    /* v5 will properties */
	roost_bytes will_topic;
	roost_bytes will_payload;
	roost_bytes username;
	roost_bytes password;
} roost_connect;

typedef struct roost_connack {
	bool session_present;
	uint8_t code;              /* return code (3.1.1) / reason code (5) */
	roost_bytes props;
} roost_connack;

typedef struct roost_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	uint16_t packet_id;        /* 0 for QoS 0 */
	roost_bytes topic;
	roost_bytes props;
	roost_bytes payload;
	/* Encoders only, v5: the property block is props followed by the first
	 * props_shared_len bytes of payload (properties shared by all
	 * subscribers, kept in front of the payload in one allocation). */
	size_t props_shared_len;
} roost_publish;

/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK(3.1.1) share this shape. */
typedef struct roost_ack {
	uint16_t packet_id;
	uint8_t reason;            /* v5; 0 when absent */
	roost_bytes props;
} roost_ack;

/*
 * SUBSCRIBE and UNSUBSCRIBE: the entries are left encoded in `entries` and
 * walked with roost_sub_next(), which cannot fail after a successful decode
 * (the decoder validated their encoding: lengths, UTF-8, option bits). Topic
 * filter *syntax* (wildcard placement, empty filter) is left to the caller's
 * roost_topic_filter_valid(): a broker answers one bad filter with SUBACK
 * 0x80 and still grants the others in the same packet.
 */
typedef struct roost_subscribe {
	uint16_t packet_id;
	roost_bytes props;
	roost_bytes entries;
	unsigned count;            /* number of topic filters, >= 1 [MQTT-3.8.3-3] */
} roost_subscribe;

typedef struct roost_sub_entry {
	roost_bytes filter;
	uint8_t options;           /* SUBSCRIBE: requested QoS in bits 0-1 (+ v5 option bits); UNSUBSCRIBE: 0 */
} roost_sub_entry;

typedef struct roost_sub_iter {
	const uint8_t *p, *end;
	bool has_options;          /* true for SUBSCRIBE, false for UNSUBSCRIBE */
} roost_sub_iter;

void roost_sub_iter_init(roost_sub_iter *it, const roost_subscribe *s, bool is_subscribe);
bool roost_sub_next(roost_sub_iter *it, roost_sub_entry *entry);

typedef struct roost_suback {
	uint16_t packet_id;
	roost_bytes props;
	roost_bytes codes;         /* one return/reason code per filter */
} roost_suback;

typedef struct roost_disconnect {
	uint8_t reason;            /* v5 */
	roost_bytes props;
} roost_disconnect;

/* AUTH (v5 enhanced authentication): same shape as a v5 DISCONNECT. */
typedef struct roost_auth {
	uint8_t reason;            /* 0x00 success, 0x18 continue, 0x19 re-authenticate */
	roost_bytes props;
} roost_auth;

/*
 * Decoders take the whole packet (fixed header included, as framed by
 * roost_frame_peek) and the connection's protocol version. They return
 * ROOST_OK or an error with *e filled (offset relative to pkt).
 *
 * roost_decode_connect must be called with version 0: it learns the version
 * from the packet. It returns ROOST_ERR_UNSUPPORTED when the protocol name is
 * "MQTT"/"MQIsdp" but the level is not one we speak (CONNACK 0x01,
 * [MQTT-3.1.2-2]) and ROOST_ERR_MALFORMED when the protocol name is anything
 * else ([MQTT-3.1.2-1]); in the UNSUPPORTED case c->protocol_level is set.
 */
roost_err roost_decode_connect(const uint8_t *pkt, size_t len, roost_connect *c, roost_codec_error *e);
roost_err roost_decode_connack(const uint8_t *pkt, size_t len, uint8_t version, roost_connack *c, roost_codec_error *e);
roost_err roost_decode_publish(const uint8_t *pkt, size_t len, uint8_t version, roost_publish *p, roost_codec_error *e);
/* For PUBACK/PUBREC/PUBREL/PUBCOMP; type is taken from pkt[0]. */
roost_err roost_decode_ack(const uint8_t *pkt, size_t len, uint8_t version, roost_ack *a, roost_codec_error *e);
roost_err roost_decode_subscribe(const uint8_t *pkt, size_t len, uint8_t version, roost_subscribe *s, roost_codec_error *e);
roost_err roost_decode_unsubscribe(const uint8_t *pkt, size_t len, uint8_t version, roost_subscribe *s, roost_codec_error *e);
roost_err roost_decode_suback(const uint8_t *pkt, size_t len, uint8_t version, roost_suback *s, roost_codec_error *e);
/* UNSUBACK: in 3.1.1 only a packet id; in v5 also reason codes (in s->codes). */
roost_err roost_decode_unsuback(const uint8_t *pkt, size_t len, uint8_t version, roost_suback *s, roost_codec_error *e);
/* PINGREQ, PINGRESP: remaining length must be 0. */
roost_err roost_decode_empty(const uint8_t *pkt, size_t len, roost_codec_error *e);
roost_err roost_decode_disconnect(const uint8_t *pkt, size_t len, uint8_t version, roost_disconnect *d, roost_codec_error *e);
/* AUTH (v5 only; any other version -> MALFORMED): [reason [properties]]. */
roost_err roost_decode_auth(const uint8_t *pkt, size_t len, uint8_t version, roost_auth *a, roost_codec_error *e);

/* ---- encoders ----------------------------------------------------------- */
/*
 * Encoders write into out[0..cap) and return the number of bytes the whole
 * packet needs. When that is larger than cap nothing useful is written and the
 * caller retries with a bigger buffer (snprintf style). They return 0 only if
 * the packet cannot be encoded (a field too long, remaining length over the
 * maximum). Encoders trust their input: callers pass values that a decoder
 * accepted or that the broker built itself.
 */
size_t roost_encode_connect(uint8_t *out, size_t cap, uint8_t version, const roost_connect *c);
size_t roost_encode_connack(uint8_t *out, size_t cap, uint8_t version, const roost_connack *c);
/* The whole PUBLISH, payload included. */
size_t roost_encode_publish(uint8_t *out, size_t cap, uint8_t version, const roost_publish *p);
/*
 * Only the part of a PUBLISH before the payload (fixed header, topic, packet
 * id, v5 properties) for a payload of p->payload.len bytes, whose bytes are not
 * read. This is what fan-out encodes per subscriber; the shared payload is
 * attached after it without a copy. Returns the size of that header part.
 */
size_t roost_encode_publish_header(uint8_t *out, size_t cap, uint8_t version, const roost_publish *p);
/* type is one of PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK (3.1.1 form). */
size_t roost_encode_ack(uint8_t *out, size_t cap, uint8_t version, uint8_t type, const roost_ack *a);
/* entries: filters and options; n of them. */
size_t roost_encode_subscribe(uint8_t *out, size_t cap, uint8_t version, uint16_t packet_id,
                              const roost_sub_entry *entries, size_t n);
size_t roost_encode_unsubscribe(uint8_t *out, size_t cap, uint8_t version, uint16_t packet_id,
                                const roost_sub_entry *entries, size_t n);
size_t roost_encode_suback(uint8_t *out, size_t cap, uint8_t version, const roost_suback *s);
size_t roost_encode_unsuback(uint8_t *out, size_t cap, uint8_t version, const roost_suback *s);
/* PINGREQ, PINGRESP, and DISCONNECT (v3) : two bytes. */
size_t roost_encode_empty(uint8_t *out, size_t cap, uint8_t type);
size_t roost_encode_disconnect(uint8_t *out, size_t cap, uint8_t version, const roost_disconnect *d);
/* v5 only (returns 0 for other versions). */
size_t roost_encode_auth(uint8_t *out, size_t cap, uint8_t version, const roost_auth *a);

/* Human-readable packet type name ("PUBLISH"), "UNKNOWN" for others. */
const char *roost_mqtt_type_name(uint8_t type);

#endif

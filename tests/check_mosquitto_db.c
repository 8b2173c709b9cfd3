/* check_mosquitto_db.c — the mosquitto.db reader over hand-built buffers
 * and over a file the real Mosquitto 2.0.11 (Debian 12) wrote. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "roost/mosquitto_db.h"

/* Written by Debian 12's mosquitto 2.0.11 after: a retained
 * homeassistant/sensor/x/config = {"a":1}; a persistent session "sess1"
 * subscribed to q/# at QoS 1; two QoS 1 messages q/1 "hello", q/2 "world"
 * queued for it while offline; SIGTERM. */
static const unsigned char real_v6[] = {
  0x00, 0xb5, 0x00, 0x6d, 0x6f, 0x73, 0x71, 0x75, 0x69, 0x74, 0x74, 0x6f,
  0x20, 0x64, 0x62, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00,
  0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x37, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x51, 0x37, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x05, 0x00, 0x01, 0x00, 0x29, 0x00, 0x00, 0x00, 0x03, 0x4a,
  0x2f, 0x01, 0x00, 0x61, 0x75, 0x74, 0x6f, 0x2d, 0x46, 0x35, 0x33, 0x41,
  0x32, 0x45, 0x46, 0x43, 0x2d, 0x46, 0x43, 0x30, 0x33, 0x2d, 0x37, 0x46,
  0x46, 0x34, 0x2d, 0x39, 0x37, 0x41, 0x32, 0x2d, 0x38, 0x44, 0x33, 0x42,
  0x36, 0x30, 0x33, 0x35, 0x32, 0x37, 0x39, 0x37, 0x71, 0x2f, 0x32, 0x77,
  0x6f, 0x72, 0x6c, 0x64, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x51,
  0x36, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 0x00, 0x29,
  0x00, 0x00, 0x00, 0x03, 0x4a, 0x2f, 0x01, 0x00, 0x61, 0x75, 0x74, 0x6f,
  0x2d, 0x38, 0x33, 0x33, 0x38, 0x42, 0x39, 0x45, 0x45, 0x2d, 0x34, 0x38,
  0x36, 0x35, 0x2d, 0x35, 0x35, 0x32, 0x36, 0x2d, 0x41, 0x44, 0x38, 0x34,
  0x2d, 0x34, 0x41, 0x39, 0x38, 0x42, 0x37, 0x42, 0x38, 0x34, 0x39, 0x36,
  0x34, 0x71, 0x2f, 0x31, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0x00, 0x00,
  0x02, 0x00, 0x00, 0x00, 0x6d, 0x35, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x07, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x1d, 0x4a, 0x2f, 0x00,
  0x01, 0x61, 0x75, 0x74, 0x6f, 0x2d, 0x45, 0x38, 0x37, 0x30, 0x31, 0x34,
  0x33, 0x46, 0x2d, 0x44, 0x32, 0x46, 0x44, 0x2d, 0x42, 0x39, 0x44, 0x41,
  0x2d, 0x38, 0x39, 0x30, 0x30, 0x2d, 0x30, 0x30, 0x31, 0x39, 0x33, 0x31,
  0x32, 0x39, 0x39, 0x39, 0x31, 0x42, 0x68, 0x6f, 0x6d, 0x65, 0x61, 0x73,
  0x73, 0x69, 0x73, 0x74, 0x61, 0x6e, 0x74, 0x2f, 0x73, 0x65, 0x6e, 0x73,
  0x6f, 0x72, 0x2f, 0x78, 0x2f, 0x63, 0x6f, 0x6e, 0x66, 0x69, 0x67, 0x7b,
  0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00,
  0x00, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
  0xff, 0xff, 0x00, 0x02, 0x00, 0x05, 0x4a, 0x2f, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x73, 0x65, 0x73, 0x73, 0x31, 0x00, 0x00, 0x00, 0x03, 0x00,
  0x00, 0x00, 0x15, 0x36, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x01, 0x00, 0x05, 0x01, 0x0b, 0x00, 0x01, 0x73, 0x65, 0x73, 0x73, 0x31,
  0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x15, 0x37, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x05, 0x01, 0x0b, 0x00, 0x01,
  0x73, 0x65, 0x73, 0x73, 0x31, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
  0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x03, 0x01, 0x00, 0x00,
  0x00, 0x73, 0x65, 0x73, 0x73, 0x31, 0x71, 0x2f, 0x23, 0x00, 0x00, 0x00,
  0x04, 0x00, 0x00, 0x00, 0x08, 0x35, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00
};

/* ---- a builder for hand-made files (the layout of mosquitto_db.h) ---- */

typedef struct buf {
	uint8_t d[4096];
	size_t len;
	size_t chunk_at;
} buf;

static void put(buf *b, const void *p, size_t n)
{
	ck_assert_uint_le(b->len + n, sizeof b->d);
	if (n)
		memcpy(b->d + b->len, p, n);
	b->len += n;
}
static void put8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put16(buf *b, uint16_t v)
{
	put8(b, (uint8_t)(v >> 8));
	put8(b, (uint8_t)v);
}
static void put32(buf *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b, (uint16_t)v);
}
/* 64-bit fields are in the writer's (little-endian) byte order. */
static void put64le(buf *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		put8(b, (uint8_t)(v >> (8 * i)));
}
static void pad(buf *b, size_t n)
{
	while (n--)
		put8(b, 0);
}
static void str(buf *b, const char *s) { put(b, s, strlen(s)); }

static void header(buf *b, uint32_t version)
{
	memset(b, 0, sizeof *b);
	put(b, ROOST_MOSQUITTO_DB_MAGIC, ROOST_MOSQUITTO_DB_MAGIC_LEN);
	put32(b, 0); /* CRC, unused */
	put32(b, version);
}
static void chunk_begin(buf *b, uint32_t type)
{
	b->chunk_at = b->len;
	put32(b, type);
	put32(b, 0);
}
static void chunk_end(buf *b)
{
	uint32_t n = (uint32_t)(b->len - b->chunk_at - 8);
	uint8_t *p = b->d + b->chunk_at + 4;
	p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
}

static void cfg(buf *b, uint8_t dbid_size)
{
	chunk_begin(b, 1);
	put64le(b, 77);
	put8(b, 1);
	put8(b, dbid_size);
	pad(b, 6);
	chunk_end(b);
}
static void msg_store(buf *b, uint64_t id, const char *topic, const void *payload, uint32_t plen,
                      const uint8_t *props, size_t props_len)
{
	chunk_begin(b, 2);
	put64le(b, id);
	put64le(b, 0);            /* expiry */
	put32(b, plen);
	put16(b, 7);              /* source mid */
	put16(b, 3);              /* source id length */
	put16(b, 2);              /* source user name length */
	put16(b, (uint16_t)strlen(topic));
	put16(b, 1883);           /* source port */
	put8(b, 1);               /* qos */
	put8(b, 1);               /* retain */
	str(b, "pub");
	str(b, "me");
	str(b, topic);
	put(b, payload, plen);
	put(b, props, props_len);
	chunk_end(b);
}
static void client(buf *b, uint32_t version, const char *id, const char *user)
{
	chunk_begin(b, 6);
	put64le(b, 0);
	put32(b, 0xffffffff);
	put16(b, 9);              /* last mid */
	put16(b, (uint16_t)strlen(id));
	if (version == 6) {
		put16(b, 1883);
		put16(b, (uint16_t)strlen(user));
		pad(b, 4);
	}
	str(b, id);
	if (version == 6)
		str(b, user);
	chunk_end(b);
}
static void client_msg(buf *b, uint64_t store_id, const char *id, uint16_t mid, uint8_t qos, uint8_t state)
{
	chunk_begin(b, 3);
	put64le(b, store_id);
	put16(b, mid);
	put16(b, (uint16_t)strlen(id));
	put8(b, qos);
	put8(b, state);
	put8(b, 0x10);            /* retain 1, dup 0 */
	put8(b, 1);               /* outgoing */
	str(b, id);
	chunk_end(b);
}
static void sub(buf *b, const char *id, const char *topic, uint8_t qos, uint8_t options)
{
	chunk_begin(b, 5);
	put32(b, 0);
	put16(b, (uint16_t)strlen(id));
	put16(b, (uint16_t)strlen(topic));
	put8(b, qos);
	put8(b, options);
	pad(b, 2);
	str(b, id);
	str(b, topic);
	chunk_end(b);
}
static void retain(buf *b, uint64_t store_id)
{
	chunk_begin(b, 4);
	put64le(b, store_id);
	chunk_end(b);
}

/* Every chunk of a buffer; returns how many, fails the test on an error. */
static int read_all(const uint8_t *d, size_t len, roost_mosquitto_db_chunk *out, int max)
{
	roost_mosquitto_db_reader r;
	roost_mosquitto_db_error e = {0};
	ck_assert_int_eq(roost_mosquitto_db_init(&r, d, len, &e), ROOST_OK);
	int n = 0;
	for (;;) {
		bool done;
		roost_mosquitto_db_chunk c;
		roost_err err = roost_mosquitto_db_next(&r, &c, &done, &e);
		ck_assert_msg(err == ROOST_OK, "offset %zu: %s", e.offset, e.message);
		if (done)
			return n;
		ck_assert_int_lt(n, max);
		out[n++] = c;
	}
}

static bool view_is(roost_mosquitto_db_view v, const char *s)
{
	return v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

/* Decode to the first error (or the end); returns it and its offset. */
static roost_err first_error(const uint8_t *d, size_t len, roost_mosquitto_db_error *e, int *chunks)
{
	roost_mosquitto_db_reader r;
	*chunks = 0;
	roost_err err = roost_mosquitto_db_init(&r, d, len, e);
	while (!err) {
		bool done;
		roost_mosquitto_db_chunk c;
		err = roost_mosquitto_db_next(&r, &c, &done, e);
		if (!err && done)
			break;
		if (!err)
			++*chunks;
	}
	return err;
}

/* ---- valid ---- */

START_TEST(test_real_mosquitto_2_0_11_file)
{
	roost_mosquitto_db_chunk c[16];
	int n = read_all(real_v6, sizeof real_v6, c, 16);
	int msgs = 0, retains = 0, clients = 0, cmsgs = 0, subs = 0;
	uint64_t retained_id = 0, config_id = 0;
	for (int i = 0; i < n; i++) {
		switch (c[i].type) {
		case ROOST_MOSQUITTO_DB_CHUNK_CFG:
			ck_assert(c[i].u.cfg.shutdown);
			break;
		case ROOST_MOSQUITTO_DB_CHUNK_MSG_STORE:
			msgs++;
			if (view_is(c[i].u.msg.topic, "homeassistant/sensor/x/config")) {
				ck_assert(view_is(c[i].u.msg.payload, "{\"a\":1}"));
				ck_assert(c[i].u.msg.retain);
				ck_assert_uint_eq(c[i].u.msg.qos, 0);
				config_id = c[i].u.msg.store_id;
			}
			break;
		case ROOST_MOSQUITTO_DB_CHUNK_RETAIN:
			retains++;
			retained_id = c[i].u.retain_store_id;
			break;
		case ROOST_MOSQUITTO_DB_CHUNK_CLIENT:
			clients++;
			ck_assert(view_is(c[i].u.client.client_id, "sess1"));
			ck_assert_uint_eq(c[i].u.client.session_expiry_interval, UINT32_MAX);
			break;
		case ROOST_MOSQUITTO_DB_CHUNK_CLIENT_MSG:
			cmsgs++;
			ck_assert(view_is(c[i].u.client_msg.client_id, "sess1"));
			ck_assert(c[i].u.client_msg.outgoing);
			ck_assert_uint_eq(c[i].u.client_msg.qos, 1);
			ck_assert_uint_eq(c[i].u.client_msg.state, ROOST_MOSQUITTO_DB_MS_QUEUED);
			break;
		case ROOST_MOSQUITTO_DB_CHUNK_SUB:
			subs++;
			ck_assert(view_is(c[i].u.sub.topic, "q/#"));
			ck_assert_uint_eq(c[i].u.sub.qos, 1);
			break;
		default:
			ck_abort_msg("unexpected chunk type %u", c[i].raw_type);
		}
	}
	ck_assert_int_eq(msgs, 3);
	ck_assert_int_eq(retains, 1);
	ck_assert_int_eq(clients, 1);
	ck_assert_int_eq(cmsgs, 2);
	ck_assert_int_eq(subs, 1);
	/* Store ids are little-endian 64-bit: the RETAIN names the config's. */
	ck_assert_uint_ne(config_id, 0);
	ck_assert_uint_eq(retained_id, config_id);
}
END_TEST

START_TEST(test_every_chunk_type_v6)
{
	buf b;
	static const uint8_t pfi[] = {0x02, 0x01, 0x01};        /* length 2: payload format indicator 1 */
	header(&b, 6);
	cfg(&b, 8);
	msg_store(&b, 0x0102030405060708ULL, "a//b", "\x00\xff\x01", 3, pfi, sizeof pfi);
	client(&b, 6, "dev1", "alice");
	client_msg(&b, 0x0102030405060708ULL, "dev1", 513, 2, ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBREC);
	sub(&b, "dev1", "homeassistant/+/config", 2, 0x0c);
	retain(&b, 0x0102030405060708ULL);
	chunk_begin(&b, 99);      /* a chunk from a future Mosquitto: skipped */
	put32(&b, 0xdeadbeef);
	chunk_end(&b);

	roost_mosquitto_db_chunk c[8];
	ck_assert_int_eq(read_all(b.d, b.len, c, 8), 7);
	ck_assert_int_eq(c[0].type, ROOST_MOSQUITTO_DB_CHUNK_CFG);
	ck_assert_uint_eq(c[0].u.cfg.last_db_id, 77);

	const roost_mosquitto_db_msg_store *m = &c[1].u.msg;
	ck_assert_int_eq(c[1].type, ROOST_MOSQUITTO_DB_CHUNK_MSG_STORE);
	ck_assert_uint_eq(m->store_id, 0x0102030405060708ULL);
	ck_assert(view_is(m->topic, "a//b"));
	ck_assert_uint_eq(m->payload.len, 3);
	ck_assert_mem_eq(m->payload.ptr, "\x00\xff\x01", 3);
	ck_assert(view_is(m->source_id, "pub") && view_is(m->source_username, "me"));
	ck_assert_uint_eq(m->source_mid, 7);
	ck_assert_uint_eq(m->source_port, 1883);
	ck_assert_uint_eq(m->props.len, 2);
	ck_assert_mem_eq(m->props.ptr, "\x01\x01", 2);

	ck_assert(view_is(c[2].u.client.client_id, "dev1"));
	ck_assert(view_is(c[2].u.client.username, "alice"));
	ck_assert_uint_eq(c[2].u.client.last_mid, 9);
	ck_assert_uint_eq(c[2].u.client.listener_port, 1883);

	const roost_mosquitto_db_client_msg *cm = &c[3].u.client_msg;
	ck_assert_uint_eq(cm->mid, 513);
	ck_assert_uint_eq(cm->qos, 2);
	ck_assert_uint_eq(cm->state, ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBREC);
	ck_assert(cm->retain && !cm->dup && cm->outgoing);
	ck_assert_uint_eq(cm->props.len, 0);

	ck_assert(view_is(c[4].u.sub.topic, "homeassistant/+/config"));
	ck_assert_uint_eq(c[4].u.sub.qos, 2);
	ck_assert_uint_eq(c[4].u.sub.options, 0x0c);
	ck_assert_uint_eq(c[5].u.retain_store_id, 0x0102030405060708ULL);
	ck_assert_int_eq(c[6].type, ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN);
	ck_assert_uint_eq(c[6].raw_type, 99);
}
END_TEST

START_TEST(test_version_5_client_has_no_user_name)
{
	buf b;
	header(&b, 5);
	client(&b, 5, "old", "");
	roost_mosquitto_db_chunk c[2];
	ck_assert_int_eq(read_all(b.d, b.len, c, 2), 1);
	ck_assert(view_is(c[0].u.client.client_id, "old"));
	ck_assert_uint_eq(c[0].u.client.username.len, 0);
}
END_TEST

START_TEST(test_header_only_is_an_empty_store)
{
	buf b;
	header(&b, 6);
	roost_mosquitto_db_chunk c[1];
	ck_assert_int_eq(read_all(b.d, b.len, c, 1), 0);
}
END_TEST

/* ---- malformed ---- */

START_TEST(test_not_a_mosquitto_db)
{
	static const char text[] = "listener 1883\nallow_anonymous true\n";
	roost_mosquitto_db_reader r;
	roost_mosquitto_db_error e = {0};
	ck_assert_int_eq(roost_mosquitto_db_init(&r, (const uint8_t *)text, sizeof text - 1, &e),
	                 ROOST_ERR_UNSUPPORTED);
	ck_assert_uint_eq(e.offset, 0);
	ck_assert_ptr_nonnull(strstr(e.message, "not a mosquitto.db"));
	ck_assert_int_eq(roost_mosquitto_db_init(&r, NULL, 0, &e), ROOST_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(test_unread_versions_refused)
{
	static const uint32_t versions[] = {2, 3, 4, 7, 0xffffffff};
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		buf b;
		header(&b, versions[i]);
		roost_mosquitto_db_reader r;
		roost_mosquitto_db_error e = {0};
		ck_assert_int_eq(roost_mosquitto_db_init(&r, b.d, b.len, &e), ROOST_ERR_UNSUPPORTED);
		ck_assert_uint_eq(r.version, versions[i]);
		ck_assert_uint_eq(e.offset, 19);
		ck_assert_ptr_nonnull(strstr(e.message, "version"));
	}
}
END_TEST

/* Every prefix of a real file: an error with an offset inside it, or (only
 * at a chunk boundary) a clean end; never a read past it (ASan). */
START_TEST(test_every_truncation_of_the_real_file)
{
	size_t boundaries = 0;
	for (size_t len = 0; len < sizeof real_v6; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, real_v6, len);
		roost_mosquitto_db_error e = {0};
		int chunks;
		roost_err err = first_error(copy, len, &e, &chunks);
		if (len < ROOST_MOSQUITTO_DB_MAGIC_LEN && len > 0)
			ck_assert_int_eq(err, ROOST_ERR_MALFORMED);
		if (err == ROOST_OK)
			boundaries++;
		else
			ck_assert_msg(e.offset <= len && e.message, "len %zu: offset %zu", len, e.offset);
		free(copy);
	}
	/* The clean ends: after the header and after each of the 9 chunks but the last. */
	ck_assert_uint_eq(boundaries, 9);
}
END_TEST

START_TEST(test_chunk_length_past_the_end)
{
	buf b;
	header(&b, 6);
	cfg(&b, 8);
	size_t at = b.len;
	retain(&b, 1);
	b.d[at + 7] = 200; /* length 200, 8 bytes follow */
	roost_mosquitto_db_error e;
	int chunks;
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);
	ck_assert_int_eq(chunks, 1);
	ck_assert_uint_eq(e.offset, at);
	ck_assert_ptr_nonnull(strstr(e.message, "truncated"));
}
END_TEST

START_TEST(test_string_lengths_overrun_the_chunk)
{
	buf b;
	header(&b, 6);
	size_t at = b.len;
	sub(&b, "c", "t", 1, 0);
	b.d[at + 8 + 7] = 50; /* topic_len 50 inside a 14-byte chunk */
	roost_mosquitto_db_error e;
	int chunks;
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.message, "overrun"));
	ck_assert_uint_gt(e.offset, at);
	ck_assert_uint_le(e.offset, b.len);
}
END_TEST

START_TEST(test_bad_fields_rejected)
{
	roost_mosquitto_db_error e;
	int chunks;
	buf b;

	header(&b, 6);
	cfg(&b, 4);
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.message, "8 bytes"));

	header(&b, 6);
	sub(&b, "c", "t", 3, 0);
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.message, "QoS"));

	header(&b, 6);
	client(&b, 6, "", "");
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);

	header(&b, 6);
	static const uint8_t short_props[] = {0x05, 0x01, 0x01}; /* says 5, 2 follow */
	msg_store(&b, 1, "t", "x", 1, short_props, sizeof short_props);
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.message, "property length"));

	header(&b, 6);
	static const uint8_t endless[] = {0x80, 0x80, 0x80, 0x80, 0x01};
	msg_store(&b, 1, "t", "x", 1, endless, sizeof endless);
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);

	header(&b, 6);
	msg_store(&b, 1, "", "x", 1, NULL, 0);
	ck_assert_int_eq(first_error(b.d, b.len, &e, &chunks), ROOST_ERR_MALFORMED);
	ck_assert_ptr_nonnull(strstr(e.message, "empty topic"));
}
END_TEST

static Suite *mosquitto_db_suite(void)
{
	Suite *s = suite_create("mosquitto_db");
	TCase *tc = tcase_create("valid");
	tcase_add_test(tc, test_real_mosquitto_2_0_11_file);
	tcase_add_test(tc, test_every_chunk_type_v6);
	tcase_add_test(tc, test_version_5_client_has_no_user_name);
	tcase_add_test(tc, test_header_only_is_an_empty_store);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_not_a_mosquitto_db);
	tcase_add_test(tc, test_unread_versions_refused);
	tcase_add_test(tc, test_every_truncation_of_the_real_file);
	tcase_add_test(tc, test_chunk_length_past_the_end);
	tcase_add_test(tc, test_string_lengths_overrun_the_chunk);
	tcase_add_test(tc, test_bad_fields_rejected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mosquitto_db_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

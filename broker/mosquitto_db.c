/*
 * mosquitto_db.c — reader of Mosquitto's mosquitto.db (see
 * include/roost/mosquitto_db.h). Learnt from Mosquitto's persist_write_v5.c
 * and persist_read_v5.c: what is here is the layout, not their code.
 *
 * Every read goes through a `cur` bounded by the chunk's own length, which
 * is itself checked against the buffer first, so no field can be read past
 * either. The sizes below are those of Mosquitto's PF_* structs on the
 * platforms it runs on (64-bit fields 8-aligned, tail padding included),
 * and Mosquitto writes the whole struct.
 */
#include <string.h>

#include "roost/mosquitto_db.h"

#define CHUNK_HEADER_LEN 8
#define PF_CFG_LEN 16        /* u64 last_db_id, u8 shutdown, u8 dbid_size, pad */
#define PF_MSG_STORE_LEN 32  /* u64 id, i64 expiry, u32 payloadlen, 5 x u16, 2 x u8 */
#define PF_CLIENT_MSG_LEN 16 /* u64 store_id, u16 mid, u16 id_len, 4 x u8 */
#define PF_RETAIN_LEN 8      /* u64 store_id */
#define PF_SUB_LEN 12        /* u32 identifier, u16 id_len, u16 topic_len, 2 x u8, pad */
#define PF_CLIENT_V5_LEN 16  /* i64 expiry time, u32 interval, u16 last_mid, u16 id_len */
#define PF_CLIENT_V6_LEN 24  /* ... then u16 listener_port, u16 username_len, pad */
#define DBID_SIZE 8

/* A bounded cursor over one chunk's body. */
typedef struct cur {
	const uint8_t *base; /* the whole buffer, for offsets */
	const uint8_t *p, *end;
} cur;

static roost_err fail(roost_mosquitto_db_error *e, size_t offset, const char *message)
{
	if (e) {
		e->offset = offset;
		e->message = message;
	}
	return ROOST_ERR_MALFORMED;
}

static size_t at(const cur *c) { return (size_t)(c->p - c->base); }

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Take n bytes as a view; false when fewer remain in the chunk. */
static bool take(cur *c, size_t n, roost_mosquitto_db_view *v)
{
	if ((size_t)(c->end - c->p) < n)
		return false;
	v->ptr = c->p;
	v->len = n;
	c->p += n;
	return true;
}

/*
 * The rest of a chunk is either nothing or MQTT v5 properties with their
 * varint length, which must cover the rest exactly.
 */
static roost_err read_props(cur *c, roost_mosquitto_db_view *props, roost_mosquitto_db_error *e)
{
	props->ptr = NULL;
	props->len = 0;
	if (c->p == c->end)
		return ROOST_OK;
	size_t start = at(c);
	uint32_t len = 0;
	for (int i = 0;; i++) {
		if (i == 4 || c->p == c->end)
			return fail(e, start, "bad property length (varint)");
		uint8_t b = *c->p++;
		len |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			break;
	}
	if ((size_t)(c->end - c->p) != len)
		return fail(e, start, "property length does not match the chunk length");
	take(c, len, props);
	return ROOST_OK;
}

static roost_err read_cfg(cur *c, roost_mosquitto_db_cfg *cfg, roost_mosquitto_db_error *e)
{
	if ((size_t)(c->end - c->p) < PF_CFG_LEN)
		return fail(e, at(c), "CFG chunk too short");
	cfg->last_db_id = le64(c->p);
	cfg->shutdown = c->p[8] != 0;
	if (c->p[9] != DBID_SIZE)
		return fail(e, at(c) + 9, "store ids are not 8 bytes (written by an unusual build of Mosquitto)");
	return ROOST_OK;
}

static roost_err read_msg_store(cur *c, roost_mosquitto_db_msg_store *m, roost_mosquitto_db_error *e)
{
	const uint8_t *f = c->p;
	if ((size_t)(c->end - c->p) < PF_MSG_STORE_LEN)
		return fail(e, at(c), "MSG_STORE chunk too short");
	m->store_id = le64(f);
	m->expiry_time = (int64_t)le64(f + 8);
	uint32_t payload_len = be32(f + 16);
	m->source_mid = be16(f + 20);
	uint16_t id_len = be16(f + 22), user_len = be16(f + 24), topic_len = be16(f + 26);
	m->source_port = be16(f + 28);
	m->qos = f[30];
	m->retain = f[31] != 0;
	c->p += PF_MSG_STORE_LEN;
	if (m->qos > 2)
		return fail(e, at(c) - 2, "MSG_STORE: QoS above 2");
	if (!take(c, id_len, &m->source_id) || !take(c, user_len, &m->source_username) ||
	    !take(c, topic_len, &m->topic) || !take(c, payload_len, &m->payload))
		return fail(e, at(c), "MSG_STORE: strings and payload overrun the chunk");
	if (topic_len == 0)
		return fail(e, at(c), "MSG_STORE: empty topic");
	return read_props(c, &m->props, e);
}

static roost_err read_client_msg(cur *c, roost_mosquitto_db_client_msg *m, roost_mosquitto_db_error *e)
{
	const uint8_t *f = c->p;
	if ((size_t)(c->end - c->p) < PF_CLIENT_MSG_LEN)
		return fail(e, at(c), "CLIENT_MSG chunk too short");
	m->store_id = le64(f);
	m->mid = be16(f + 8);
	uint16_t id_len = be16(f + 10);
	m->qos = f[12];
	m->state = f[13];
	m->retain = (f[14] >> 4) != 0;
	m->dup = (f[14] & 0x0f) != 0;
	m->outgoing = f[15] != 0;
	c->p += PF_CLIENT_MSG_LEN;
	if (m->qos > 2)
		return fail(e, at(c) - 4, "CLIENT_MSG: QoS above 2");
	if (!take(c, id_len, &m->client_id))
		return fail(e, at(c), "CLIENT_MSG: client id overruns the chunk");
	if (id_len == 0)
		return fail(e, at(c), "CLIENT_MSG: empty client id");
	return read_props(c, &m->props, e);
}

static roost_err read_sub(cur *c, roost_mosquitto_db_sub *s, roost_mosquitto_db_error *e)
{
	const uint8_t *f = c->p;
	if ((size_t)(c->end - c->p) < PF_SUB_LEN)
		return fail(e, at(c), "SUB chunk too short");
	s->identifier = be32(f);
	uint16_t id_len = be16(f + 4), topic_len = be16(f + 6);
	s->qos = f[8];
	s->options = f[9];
	c->p += PF_SUB_LEN;
	if (s->qos > 2)
		return fail(e, at(c) - 4, "SUB: QoS above 2");
	if (!take(c, id_len, &s->client_id) || !take(c, topic_len, &s->topic))
		return fail(e, at(c), "SUB: client id and topic overrun the chunk");
	if (id_len == 0 || topic_len == 0)
		return fail(e, at(c), "SUB: empty client id or topic filter");
	if (c->p != c->end)
		return fail(e, at(c), "SUB: bytes after the topic filter");
	return ROOST_OK;
}

static roost_err read_client(cur *c, uint32_t version, roost_mosquitto_db_client *cl, roost_mosquitto_db_error *e)
{
	const uint8_t *f = c->p;
	size_t fixed = version == 6 ? PF_CLIENT_V6_LEN : PF_CLIENT_V5_LEN;
	if ((size_t)(c->end - c->p) < fixed)
		return fail(e, at(c), "CLIENT chunk too short");
	cl->session_expiry_time = (int64_t)le64(f);
	cl->session_expiry_interval = be32(f + 8);
	cl->last_mid = be16(f + 12);
	uint16_t id_len = be16(f + 14), user_len = 0;
	cl->listener_port = 0;
	if (version == 6) {
		cl->listener_port = be16(f + 16);
		user_len = be16(f + 18);
	}
	c->p += fixed;
	cl->username.ptr = NULL;
	cl->username.len = 0;
	if (!take(c, id_len, &cl->client_id) || !take(c, user_len, &cl->username))
		return fail(e, at(c), "CLIENT: client id and user name overrun the chunk");
	if (id_len == 0)
		return fail(e, at(c), "CLIENT: empty client id");
	if (c->p != c->end)
		return fail(e, at(c), "CLIENT: bytes after the user name");
	return ROOST_OK;
}

roost_err roost_mosquitto_db_init(roost_mosquitto_db_reader *r, const uint8_t *buf, size_t len,
                                  roost_mosquitto_db_error *e)
{
	memset(r, 0, sizeof *r);
	r->buf = buf;
	r->len = len;
	size_t magic = len < ROOST_MOSQUITTO_DB_MAGIC_LEN ? len : ROOST_MOSQUITTO_DB_MAGIC_LEN;
	if (len == 0 || memcmp(buf, ROOST_MOSQUITTO_DB_MAGIC, magic) != 0) {
		fail(e, 0, "not a mosquitto.db (no Mosquitto magic number)");
		return ROOST_ERR_UNSUPPORTED;
	}
	if (len < ROOST_MOSQUITTO_DB_HEADER_LEN)
		return fail(e, len, "file ends inside the header");
	r->version = be32(buf + 19);
	r->off = ROOST_MOSQUITTO_DB_HEADER_LEN;
	if (r->version != 5 && r->version != 6) {
		fail(e, 19, "database format version not read by roost (only 5 and 6, Mosquitto 1.6 to 2.0)");
		return ROOST_ERR_UNSUPPORTED;
	}
	return ROOST_OK;
}

roost_err roost_mosquitto_db_next(roost_mosquitto_db_reader *r, roost_mosquitto_db_chunk *ch, bool *done,
                                  roost_mosquitto_db_error *e)
{
	*done = false;
	memset(ch, 0, sizeof *ch);
	if (r->off == r->len) {
		*done = true;
		return ROOST_OK;
	}
	cur c = {r->buf, r->buf + r->off, r->buf + r->len};
	if (r->len - r->off < CHUNK_HEADER_LEN)
		return fail(e, r->off, "file ends inside a chunk header (truncated)");
	ch->offset = r->off;
	ch->raw_type = be32(c.p);
	uint32_t length = be32(c.p + 4);
	c.p += CHUNK_HEADER_LEN;
	if ((size_t)(c.end - c.p) < length)
		return fail(e, r->off, "chunk length runs past the end of the file (truncated)");
	c.end = c.p + length;
	roost_err err = ROOST_OK;
	ch->type = ch->raw_type <= ROOST_MOSQUITTO_DB_CHUNK_CLIENT ? (roost_mosquitto_db_chunk_type)ch->raw_type
	                                                           : ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN;
	switch (ch->type) {
	case ROOST_MOSQUITTO_DB_CHUNK_CFG: err = read_cfg(&c, &ch->u.cfg, e); break;
	case ROOST_MOSQUITTO_DB_CHUNK_MSG_STORE: err = read_msg_store(&c, &ch->u.msg, e); break;
	case ROOST_MOSQUITTO_DB_CHUNK_CLIENT_MSG: err = read_client_msg(&c, &ch->u.client_msg, e); break;
	case ROOST_MOSQUITTO_DB_CHUNK_RETAIN:
		if (length < PF_RETAIN_LEN)
			err = fail(e, at(&c), "RETAIN chunk too short");
		else
			ch->u.retain_store_id = le64(c.p);
		break;
	case ROOST_MOSQUITTO_DB_CHUNK_SUB: err = read_sub(&c, &ch->u.sub, e); break;
	case ROOST_MOSQUITTO_DB_CHUNK_CLIENT: err = read_client(&c, r->version, &ch->u.client, e); break;
	case ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN: break;
	}
	if (err)
		return err;
	r->off += CHUNK_HEADER_LEN + (size_t)length;
	return ROOST_OK;
}

/*
 * fuzz_mosquitto_db.c — the mosquitto.db reader against its contract.
 *
 * Zero setup: each input is a whole file. Besides the sanitizers' own checks
 * (the reader must never look outside the buffer; replay and libFuzzer give
 * exact-size copies), it aborts unless:
 *   - init succeeds only with the magic, a header of 23 bytes and version 5
 *     or 6, and every error has a message and an offset inside the input;
 *   - every chunk starts where the previous one ended, consumes at least its
 *     8-byte header, and every view it returns lies inside the chunk;
 *   - the walk ends (done) exactly at the end of the input, or with an
 *     error that leaves the reader where the bad chunk starts;
 *   - decoded fields keep the reader's promises (QoS <= 2, non-empty topic
 *     and client ids);
 *   - a second walk over the same bytes gives the same chunks (no state
 *     outside the reader).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "roost/mosquitto_db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_view(roost_mosquitto_db_view v, const uint8_t *lo, const uint8_t *hi)
{
	if (v.len == 0)
		return;
	if (!v.ptr || v.ptr < lo || v.ptr > hi || (size_t)(hi - v.ptr) < v.len)
		abort();
}

/* The chunk's views lie inside its body; its fields keep their promises. */
static void check_chunk(const roost_mosquitto_db_chunk *c, const uint8_t *data, size_t end)
{
	const uint8_t *lo = data + c->offset + 8, *hi = data + end;
	switch (c->type) {
	case ROOST_MOSQUITTO_DB_CHUNK_MSG_STORE: {
		const roost_mosquitto_db_msg_store *m = &c->u.msg;
		check_view(m->source_id, lo, hi);
		check_view(m->source_username, lo, hi);
		check_view(m->topic, lo, hi);
		check_view(m->payload, lo, hi);
		check_view(m->props, lo, hi);
		if (m->qos > 2 || m->topic.len == 0)
			abort();
		break;
	}
	case ROOST_MOSQUITTO_DB_CHUNK_CLIENT_MSG:
		check_view(c->u.client_msg.client_id, lo, hi);
		check_view(c->u.client_msg.props, lo, hi);
		if (c->u.client_msg.qos > 2 || c->u.client_msg.client_id.len == 0)
			abort();
		break;
	case ROOST_MOSQUITTO_DB_CHUNK_SUB:
		check_view(c->u.sub.client_id, lo, hi);
		check_view(c->u.sub.topic, lo, hi);
		if (c->u.sub.qos > 2 || !c->u.sub.client_id.len || !c->u.sub.topic.len)
			abort();
		break;
	case ROOST_MOSQUITTO_DB_CHUNK_CLIENT:
		check_view(c->u.client.client_id, lo, hi);
		check_view(c->u.client.username, lo, hi);
		if (c->u.client.client_id.len == 0)
			abort();
		break;
	case ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN:
		if (c->raw_type >= ROOST_MOSQUITTO_DB_CHUNK_CFG && c->raw_type <= ROOST_MOSQUITTO_DB_CHUNK_CLIENT)
			abort();
		break;
	default: break;
	}
}

/* One walk; returns the number of chunks, and a digest of what they said. */
static size_t walk(const uint8_t *data, size_t size, uint64_t *digest)
{
	roost_mosquitto_db_reader r;
	roost_mosquitto_db_error e = {0};
	*digest = 0;
	roost_err err = roost_mosquitto_db_init(&r, data, size, &e);
	if (err) {
		if ((err != ROOST_ERR_UNSUPPORTED && err != ROOST_ERR_MALFORMED) || !e.message || e.offset > size)
			abort();
		return 0;
	}
	if (size < ROOST_MOSQUITTO_DB_HEADER_LEN || (r.version != 5 && r.version != 6) ||
	    memcmp(data, ROOST_MOSQUITTO_DB_MAGIC, ROOST_MOSQUITTO_DB_MAGIC_LEN) != 0)
		abort();
	size_t n = 0;
	for (;;) {
		size_t before = r.off;
		roost_mosquitto_db_chunk c;
		bool done;
		err = roost_mosquitto_db_next(&r, &c, &done, &e);
		if (err) {
			if (err != ROOST_ERR_MALFORMED || !e.message || e.offset > size || r.off != before)
				abort();
			return n;
		}
		if (done) {
			if (r.off != size || before != size)
				abort();
			return n;
		}
		if (c.offset != before || r.off < before + 8 || r.off > size)
			abort();
		check_chunk(&c, data, r.off);
		*digest = *digest * 1099511628211ULL + c.raw_type * 31 + (r.off - before);
		n++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t d1, d2;
	size_t n1 = walk(data, size, &d1);
	size_t n2 = walk(data, size, &d2);
	if (n1 != n2 || d1 != d2)
		abort();
	return 0;
}

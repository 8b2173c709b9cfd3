/*
 * mosquitto_db.h — a reader of Mosquitto's persistence file (mosquitto.db).
 *
 * Pure: it reads a caller's buffer and nothing else — no I/O, no
 * allocation, no logging, no globals. Every string and payload it returns is
 * a view into that buffer (not NUL-terminated), valid as long as the buffer.
 * Every error carries the byte offset where the file stops making sense, so
 * a caller can say "mosquitto.db: offset 1234: ...".
 *
 * The format (Mosquitto 1.6 writes version 5, 2.0 writes version 6):
 *   15 bytes magic "\x00\xB5\x00mosquitto db", 4 bytes CRC (always 0,
 *   unused), 4 bytes version (big-endian), then chunks, each an 8-byte
 *   header (type, length of what follows; big-endian) and a body that
 *   starts with a fixed-size C struct followed by its strings, payload and
 *   MQTT v5 properties (with their varint length). The fixed structs are
 *   written as they are in memory: 16- and 32-bit fields are converted to
 *   big-endian, but the 64-bit ones (message store ids, expiry times) are
 *   not, so they are read here as little-endian, what every Mosquitto on
 *   x86, ARM (Raspberry Pi) and RISC-V writes. The CFG chunk records the
 *   size of a store id; only 8 is read.
 *
 * Mosquitto writes CFG, all MSG_STORE chunks, each CLIENT followed by its
 * CLIENT_MSG chunks, then SUB, then RETAIN; this reader does not depend on
 * that order (a RETAIN or CLIENT_MSG names a store id, resolved by the
 * caller). Chunks of a type it does not know are returned as
 * ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN and skipped by their length, as Mosquitto does.
 */
#ifndef ROOST_MOSQUITTO_DB_H
#define ROOST_MOSQUITTO_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

#define ROOST_MOSQUITTO_DB_MAGIC "\x00\xB5\x00mosquitto db"
#define ROOST_MOSQUITTO_DB_MAGIC_LEN 15
/* Magic, CRC and version. */
#define ROOST_MOSQUITTO_DB_HEADER_LEN 23

/* Chunk types, as Mosquitto numbers them. */
typedef enum roost_mosquitto_db_chunk_type {
	ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN = 0,
	ROOST_MOSQUITTO_DB_CHUNK_CFG = 1,
	ROOST_MOSQUITTO_DB_CHUNK_MSG_STORE = 2,
	ROOST_MOSQUITTO_DB_CHUNK_CLIENT_MSG = 3,
	ROOST_MOSQUITTO_DB_CHUNK_RETAIN = 4,
	ROOST_MOSQUITTO_DB_CHUNK_SUB = 5,
	ROOST_MOSQUITTO_DB_CHUNK_CLIENT = 6,
} roost_mosquitto_db_chunk_type;

/* Mosquitto's per-client message states (enum mosquitto_msg_state). */
typedef enum roost_mosquitto_db_msg_state {
	ROOST_MOSQUITTO_DB_MS_INVALID = 0,
	ROOST_MOSQUITTO_DB_MS_PUBLISH_QOS0 = 1,
	ROOST_MOSQUITTO_DB_MS_PUBLISH_QOS1 = 2,
	ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBACK = 3,
	ROOST_MOSQUITTO_DB_MS_PUBLISH_QOS2 = 4,
	ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBREC = 5,
	ROOST_MOSQUITTO_DB_MS_RESEND_PUBREL = 6,
	ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBREL = 7,
	ROOST_MOSQUITTO_DB_MS_RESEND_PUBCOMP = 8,
	ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBCOMP = 9,
	ROOST_MOSQUITTO_DB_MS_SEND_PUBREC = 10,
	ROOST_MOSQUITTO_DB_MS_QUEUED = 11,
} roost_mosquitto_db_msg_state;

/* A byte range of the caller's buffer. */
typedef struct roost_mosquitto_db_view {
	const uint8_t *ptr;
	size_t len;
} roost_mosquitto_db_view;

typedef struct roost_mosquitto_db_cfg {
	uint64_t last_db_id;
	bool shutdown;        /* written at a clean shutdown */
} roost_mosquitto_db_cfg;

/* A stored message, referenced by store_id from RETAIN and CLIENT_MSG. */
typedef struct roost_mosquitto_db_msg_store {
	uint64_t store_id;
	int64_t expiry_time;  /* unix seconds; 0 = does not expire */
	uint16_t source_mid;
	uint16_t source_port;
	uint8_t qos;
	bool retain;
	roost_mosquitto_db_view source_id, source_username, topic, payload;
	roost_mosquitto_db_view props; /* v5 PUBLISH properties without their length prefix */
} roost_mosquitto_db_msg_store;

/* A message queued for, or in flight to or from, a persistent client. */
typedef struct roost_mosquitto_db_client_msg {
	uint64_t store_id;
	uint16_t mid;         /* packet id */
	uint8_t qos;
	uint8_t state;        /* roost_mosquitto_db_msg_state */
	bool retain, dup;
	bool outgoing;        /* to the client (false: received, awaiting PUBREL) */
	roost_mosquitto_db_view client_id;
	roost_mosquitto_db_view props;
} roost_mosquitto_db_client_msg;

typedef struct roost_mosquitto_db_sub {
	uint32_t identifier;  /* v5 subscription identifier, 0 = none */
	uint8_t qos;
	uint8_t options;      /* no local (bit 2), retain as published (bit 3) */
	roost_mosquitto_db_view client_id, topic;
} roost_mosquitto_db_sub;

/* A persistent session (clean session / clean start 0). */
typedef struct roost_mosquitto_db_client {
	int64_t session_expiry_time;      /* unix seconds */
	uint32_t session_expiry_interval; /* seconds; UINT32_MAX = never */
	uint16_t last_mid;
	uint16_t listener_port;           /* version 6 only, else 0 */
	roost_mosquitto_db_view client_id, username;
} roost_mosquitto_db_client;

typedef struct roost_mosquitto_db_chunk {
	roost_mosquitto_db_chunk_type type;
	uint32_t raw_type;    /* the number in the file (for UNKNOWN) */
	size_t offset;        /* of the chunk header in the buffer */
	union {
		roost_mosquitto_db_cfg cfg;
		roost_mosquitto_db_msg_store msg;
		roost_mosquitto_db_client_msg client_msg;
		uint64_t retain_store_id;
		roost_mosquitto_db_sub sub;
		roost_mosquitto_db_client client;
	} u;
} roost_mosquitto_db_chunk;

typedef struct roost_mosquitto_db_error {
	size_t offset;        /* byte offset in the buffer */
	const char *message;  /* static text */
} roost_mosquitto_db_error;

/* Reader state: a cursor over the caller's buffer. */
typedef struct roost_mosquitto_db_reader {
	const uint8_t *buf;
	size_t len;
	size_t off;
	uint32_t version;
} roost_mosquitto_db_reader;

/*
 * Check the header: ROOST_ERR_UNSUPPORTED when the magic is missing (not a
 * mosquitto.db) or the version is not 5 or 6 (r->version then says which),
 * ROOST_ERR_MALFORMED when the file is shorter than its header.
 */
roost_err roost_mosquitto_db_init(roost_mosquitto_db_reader *r, const uint8_t *buf, size_t len, roost_mosquitto_db_error *e);

/*
 * Decode the next chunk into *c. ROOST_OK with *done false: a chunk;
 * ROOST_OK with *done true: the end of the buffer, exactly at a chunk
 * boundary; ROOST_ERR_MALFORMED: a truncated or inconsistent chunk (the
 * reader then stays at it).
 */
roost_err roost_mosquitto_db_next(roost_mosquitto_db_reader *r, roost_mosquitto_db_chunk *c, bool *done, roost_mosquitto_db_error *e);

#endif

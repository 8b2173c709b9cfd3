/*
 * import_mosquitto_db.c — `roost import-mosquitto --db FILE [-c roost.yaml]`:
 * Mosquitto's retained messages and persistent sessions into roost's store.
 *
 * Two passes over the file, both through the pure reader (mosquitto_db.c):
 * the first checks every chunk and indexes the stored messages by id, so a
 * broken file is refused before the store is even opened (it stays
 * untouched); the second writes, in one transaction, through the store's
 * public API only (roost_persist_*), so the rows are exactly those the
 * broker itself writes.
 *
 * What is carried over, and how (Mosquitto's state -> roost's):
 *   RETAIN                  retained message (topic, payload, QoS)
 *   CLIENT                  persistent session (client id)
 *   SUB                     subscription: QoS, no local, retain as published
 *   CLIENT_MSG, outgoing:
 *     queued, publish_qos1/2        queued delivery (sent on reconnect)
 *     wait_for_puback / pubrec      inflight with its packet id: resent with
 *                                   DUP, so QoS 2 stays exactly once
 *     resend_pubrel / wait_for_pubcomp  inflight after PUBREC (PUBREL resent)
 * Not carried over, each counted and reported: QoS 0 queued messages (roost
 * never stores those), incoming QoS 2 messages still waiting for the
 * sender's PUBREL, v5 message properties and subscription identifiers,
 * expired messages and sessions.
 *
 * A session the store already has is left as it is (its subscriptions and
 * deliveries are not merged: a second import must not queue everything
 * twice or reuse packet ids in flight); retained messages replace those of
 * the same topic. So importing the same file again changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "roost/alloc.h"
#include "roost/config.h"
#include "roost/mosquitto_db.h"
#include "roost/persist.h"
#include "roost/session.h"
#include "roost/uthash_cfg.h"

#include "import_mosquitto.h"

#define PROG "roost import-mosquitto"
#define MAX_DB_BYTES ((size_t)1 << 30)

/* A MSG_STORE chunk, by Mosquitto's store id. */
typedef struct stored {
	uint64_t id;
	roost_mosquitto_db_msg_store m;
	roost_msg *msg;       /* made when a delivery first needs it; shared by all */
	bool props_counted;   /* its v5 properties were counted as left out */
	UT_hash_handle hh;
} stored;

/* A session of the target store or of the file. */
typedef struct client {
	char *id;
	uint64_t last_seq;    /* of the deliveries imported */
	bool in_store;        /* the store had it before: left as it is */
	bool imported;        /* a CLIENT chunk of the file made it */
	UT_hash_handle hh;
} client;

typedef struct counts {
	unsigned retained, sessions, subs, queued, inflight;
	unsigned qos0, incoming, props, sub_ids, expired, orphans, kept;
} counts;

typedef struct importer {
	const char *path;
	stored *msgs;
	client *clients;
	roost_persist *store;
	int64_t now;
	counts n;
	bool nomem;
} importer;

/* ---- pass 1: check the file and index the messages ------------------------ */

static int read_fail(const char *path, const roost_mosquitto_db_error *e)
{
	fprintf(stderr, "%s: offset %zu: %s; nothing imported\n", path, e->offset, e->message);
	return 2;
}

static int index_messages(importer *im, const uint8_t *buf, size_t len)
{
	roost_mosquitto_db_reader r;
	roost_mosquitto_db_error e;
	roost_err err = roost_mosquitto_db_init(&r, buf, len, &e);
	if (err == ROOST_ERR_UNSUPPORTED && strstr(e.message, "version"))
		fprintf(stderr, "%s: Mosquitto database format version %u: ", im->path, r.version);
	if (err)
		return read_fail(im->path, &e);
	for (;;) {
		roost_mosquitto_db_chunk c;
		bool done;
		if (roost_mosquitto_db_next(&r, &c, &done, &e) != ROOST_OK)
			return read_fail(im->path, &e);
		if (done)
			return 0;
		if (c.type == ROOST_MOSQUITTO_DB_CHUNK_UNKNOWN)
			fprintf(stderr, "%s: offset %zu: chunk type %u unknown to roost; skipped\n", im->path, c.offset,
			        c.raw_type);
		if (c.type != ROOST_MOSQUITTO_DB_CHUNK_MSG_STORE)
			continue;
		stored *s;
		HASH_FIND(hh, im->msgs, &c.u.msg.store_id, sizeof s->id, s);
		if (s) {
			fprintf(stderr, "%s: offset %zu: message id %llu stored twice; the first is kept\n", im->path,
			        c.offset, (unsigned long long)s->id);
			continue;
		}
		s = roost_calloc(1, sizeof *s);
		if (!s)
			goto nomem;
		s->id = c.u.msg.store_id;
		s->m = c.u.msg;
		roost_uthash_oom_flag = 0;
		HASH_ADD(hh, im->msgs, id, sizeof s->id, s);
		if (roost_uthash_oom_flag) {
			roost_free(s);
			goto nomem;
		}
	}
nomem:
	fprintf(stderr, "%s: out of memory\n", PROG);
	return 1;
}

/* ---- the target store ------------------------------------------------------ */

/*
 * Is another process using the SQLite database at path? Every connection
 * to a WAL database holds a shared lock on the "DMS" byte (offset 128) of
 * its -shm file while it is open (SQLite's WAL file format, "walformat"),
 * so a running roost shows there. Asked before this process opens it.
 */
static bool store_in_use(const char *path)
{
	char shm[4096];
	if (snprintf(shm, sizeof shm, "%s-shm", path) >= (int)sizeof shm)
		return false;
	int fd = open(shm, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1};
	bool used = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return used;
}

static client *client_get(importer *im, const char *id)
{
	client *cl;
	HASH_FIND_STR(im->clients, id, cl);
	if (cl)
		return cl;
	cl = roost_calloc(1, sizeof *cl);
	if (!cl || !(cl->id = roost_strdup(id))) {
		roost_free(cl);
		im->nomem = true;
		return NULL;
	}
	roost_uthash_oom_flag = 0;
	HASH_ADD_KEYPTR(hh, im->clients, cl->id, strlen(cl->id), cl);
	if (roost_uthash_oom_flag) {
		roost_free(cl->id);
		roost_free(cl);
		im->nomem = true;
		return NULL;
	}
	return cl;
}

static void seen_retained(void *ctx, roost_msg *msg)
{
	(void)ctx;
	roost_msg_unref(msg);
}
static void seen_session(void *ctx, const char *id)
{
	client *cl = client_get(ctx, id);
	if (cl)
		cl->in_store = true;
}
/* What the store already holds: its sessions. */
static roost_err scan_store(importer *im)
{
	static const roost_persist_visitor v = {.retained = seen_retained, .session = seen_session};
	roost_err err = roost_persist_load(im->store, &v, im);
	return err ? err : im->nomem ? ROOST_ERR_NOMEM : ROOST_OK;
}

/* ---- pass 2: write ----------------------------------------------------------- */

/* A view as a C string; NULL (and a warning) when it holds a NUL byte. */
static char *cstr(importer *im, roost_mosquitto_db_view v, size_t offset, const char *what)
{
	if (memchr(v.ptr, 0, v.len)) {
		fprintf(stderr, "%s: offset %zu: %s contains a NUL byte; skipped\n", im->path, offset, what);
		return NULL;
	}
	char *s = roost_strndup((const char *)v.ptr, v.len);
	if (!s)
		im->nomem = true;
	return s;
}

static bool expired(const importer *im, int64_t when) { return when > 0 && when <= im->now; }

static stored *message(importer *im, uint64_t id, size_t offset)
{
	stored *s;
	HASH_FIND(hh, im->msgs, &id, sizeof id, s);
	if (!s) {
		fprintf(stderr, "%s: offset %zu: refers to message id %llu, which the file does not hold; skipped\n",
		        im->path, offset, (unsigned long long)id);
		im->n.orphans++;
	} else if (memchr(s->m.topic.ptr, 0, s->m.topic.len)) {
		fprintf(stderr, "%s: offset %zu: the topic of message id %llu contains a NUL byte; skipped\n",
		        im->path, offset, (unsigned long long)id);
		s = NULL;
	} else if (expired(im, s->m.expiry_time)) {
		im->n.expired++;
		s = NULL;
	} else if (s->m.props.len && !s->props_counted) {
		s->props_counted = true;
		im->n.props++;
	}
	return s;
}

static roost_msg *msg_new(const roost_mosquitto_db_msg_store *m, bool retain)
{
	return roost_msg_new((const char *)m->topic.ptr, m->topic.len, m->payload.ptr, m->payload.len, m->qos,
	                     retain);
}

static roost_err put_retained(importer *im, const roost_mosquitto_db_chunk *c)
{
	stored *s = message(im, c->u.retain_store_id, c->offset);
	if (!s || s->m.payload.len == 0) /* an empty payload is no retained message [MQTT-3.3.1-10] */
		return ROOST_OK;
	roost_msg *msg = msg_new(&s->m, true);
	if (!msg)
		return ROOST_ERR_NOMEM;
	roost_err err = roost_persist_retain_set(im->store, msg);
	roost_msg_unref(msg);
	im->n.retained += err == ROOST_OK;
	return err;
}

static roost_err put_session(importer *im, const roost_mosquitto_db_chunk *c)
{
	const roost_mosquitto_db_client *mc = &c->u.client;
	if (mc->session_expiry_interval != UINT32_MAX && expired(im, mc->session_expiry_time)) {
		im->n.expired++;
		return ROOST_OK;
	}
	char *id = cstr(im, mc->client_id, c->offset, "client id");
	client *cl = id ? client_get(im, id) : NULL;
	if (cl && cl->in_store) {
		im->n.kept++;
		roost_free(id);
		return ROOST_OK;
	}
	roost_err err = cl ? roost_persist_session_add(im->store, id) : im->nomem ? ROOST_ERR_NOMEM : ROOST_OK;
	roost_free(id);
	if (cl && !err) {
		cl->imported = true;
		im->n.sessions++;
	}
	return err;
}

/* The session a SUB or CLIENT_MSG belongs to, if the file made it. */
static client *owner(importer *im, roost_mosquitto_db_view id, size_t offset)
{
	char *s = cstr(im, id, offset, "client id");
	client *cl = NULL;
	if (s)
		HASH_FIND_STR(im->clients, s, cl);
	roost_free(s);
	if (cl && !cl->imported)
		cl = NULL;
	return cl;
}

static roost_err put_sub(importer *im, const roost_mosquitto_db_chunk *c)
{
	const roost_mosquitto_db_sub *ms = &c->u.sub;
	client *cl = owner(im, ms->client_id, c->offset);
	char *filter = cl ? cstr(im, ms->topic, c->offset, "topic filter") : NULL;
	if (!filter)
		return im->nomem ? ROOST_ERR_NOMEM : ROOST_OK;
	im->n.sub_ids += ms->identifier != 0;
	/* Mosquitto keeps no local and retain as published at the bits of the
	 * v5 subscription options byte, which is what roost stores. */
	uint8_t options = (uint8_t)(ms->qos | (ms->options & 0x0c));
	roost_err err = roost_persist_sub_set(im->store, cl->id, filter, strlen(filter), options);
	roost_free(filter);
	im->n.subs += err == ROOST_OK;
	return err;
}

/* Mosquitto's state of an outgoing message -> roost's (0 = queued); -1 skip. */
static int delivery_state(uint8_t mosq_state)
{
	switch (mosq_state) {
	case ROOST_MOSQUITTO_DB_MS_QUEUED:
	case ROOST_MOSQUITTO_DB_MS_PUBLISH_QOS1:
	case ROOST_MOSQUITTO_DB_MS_PUBLISH_QOS2: return 0;
	case ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBACK: return ROOST_INFLIGHT_WAIT_PUBACK;
	case ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBREC: return ROOST_INFLIGHT_WAIT_PUBREC;
	case ROOST_MOSQUITTO_DB_MS_RESEND_PUBREL:
	case ROOST_MOSQUITTO_DB_MS_WAIT_FOR_PUBCOMP: return ROOST_INFLIGHT_WAIT_PUBCOMP;
	default: return -1;
	}
}

static roost_err put_delivery(importer *im, const roost_mosquitto_db_chunk *c)
{
	const roost_mosquitto_db_client_msg *cm = &c->u.client_msg;
	int state = delivery_state(cm->state);
	if (!cm->outgoing) {
		im->n.incoming++;
		return ROOST_OK;
	}
	if (cm->qos == 0) {
		im->n.qos0++;
		return ROOST_OK;
	}
	client *cl = owner(im, cm->client_id, c->offset);
	stored *s = cl ? message(im, cm->store_id, c->offset) : NULL;
	if (!s || state < 0) {
		if (s)
			fprintf(stderr, "%s: offset %zu: message state %u unknown; skipped\n", im->path, c->offset,
			        cm->state);
		return im->nomem ? ROOST_ERR_NOMEM : ROOST_OK;
	}
	if (!s->msg && !(s->msg = msg_new(&s->m, s->m.retain)))
		return ROOST_ERR_NOMEM;
	uint16_t packet_id = state ? cm->mid : 0;
	roost_err err = roost_persist_delivery_add(im->store, cl->id, ++cl->last_seq, s->msg, cm->qos, packet_id,
	                                           (uint8_t)state);
	if (!err && state)
		im->n.inflight++;
	else if (!err)
		im->n.queued++;
	return err;
}

static roost_err write_all(importer *im, const uint8_t *buf, size_t len)
{
	/* CLIENT chunks first: a SUB or CLIENT_MSG may come before its CLIENT. */
	for (int pass = 0; pass < 2; pass++) {
		roost_mosquitto_db_reader r;
		roost_mosquitto_db_chunk c;
		bool done = false;
		roost_err err = roost_mosquitto_db_init(&r, buf, len, NULL);
		while (!err && !(err = roost_mosquitto_db_next(&r, &c, &done, NULL)) && !done) {
			if (pass == 0 && c.type == ROOST_MOSQUITTO_DB_CHUNK_CLIENT)
				err = put_session(im, &c);
			else if (pass == 1 && c.type == ROOST_MOSQUITTO_DB_CHUNK_RETAIN)
				err = put_retained(im, &c);
			else if (pass == 1 && c.type == ROOST_MOSQUITTO_DB_CHUNK_SUB)
				err = put_sub(im, &c);
			else if (pass == 1 && c.type == ROOST_MOSQUITTO_DB_CHUNK_CLIENT_MSG)
				err = put_delivery(im, &c);
		}
		if (err)
			return err;
	}
	return ROOST_OK;
}

static void report(const importer *im, const char *store_path)
{
	const counts *n = &im->n;
	printf("%s -> %s: %u retained messages, %u sessions with %u subscriptions, %u queued and %u inflight "
	       "messages\n",
	       im->path, store_path, n->retained, n->sessions, n->subs, n->queued, n->inflight);
	struct {
		unsigned count;
		const char *what;
	} notes[] = {
		{n->qos0, "QoS 0 messages queued for offline clients (roost queues only QoS 1 and 2)"},
		{n->incoming, "incoming QoS 2 messages still waiting for their sender's PUBREL"},
		{n->props, "messages carried MQTT v5 properties, which were left out"},
		{n->sub_ids, "subscription identifiers (v5), which were left out"},
		{n->expired, "expired messages or sessions"},
		{n->orphans, "references to messages the file does not hold"},
		{n->kept, "sessions the store already had (kept as they are: an import is not merged into them)"},
	};
	for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++)
		if (notes[i].count)
			fprintf(stderr, "%s: not carried over: %u %s\n", im->path, notes[i].count, notes[i].what);
}

/* ---- the command ------------------------------------------------------------- */

static void importer_cleanup(importer *im)
{
	stored *s, *stmp;
	HASH_ITER(hh, im->msgs, s, stmp) {
		HASH_DEL(im->msgs, s);
		roost_msg_unref(s->msg);
		roost_free(s);
	}
	client *cl, *ctmp;
	HASH_ITER(hh, im->clients, cl, ctmp) {
		HASH_DEL(im->clients, cl);
		roost_free(cl->id);
		roost_free(cl);
	}
}

static int refuse_in_use(const char *path)
{
	fprintf(stderr, "%s: the store %s is in use (is roost running?); stop roost first, nothing imported\n", PROG,
	        path);
	return 2;
}

static int open_store(importer *im, const roost_config *cfg, const roost_log *log)
{
	const roost_persistence_config *pc = &cfg->persistence;
	if (!pc->enabled) {
		fprintf(stderr, "%s: the configuration has persistence.enabled: false, so there is no store to "
		                "import into\n", PROG);
		return 2;
	}
	if (store_in_use(pc->path))
		return refuse_in_use(pc->path);
	roost_err err = roost_persist_open(pc->path, ROOST_PERSIST_SYNC_FULL, log, &im->store);
	if (err == ROOST_ERR_EXISTS) /* the store's own lock (where it has one): another roost holds it */
		return refuse_in_use(pc->path);
	if (err) {
		fprintf(stderr, "%s: cannot open the store %s (%s)\n", PROG, pc->path, roost_err_str(err));
		return 1;
	}
	if (scan_store(im) != ROOST_OK) {
		fprintf(stderr, "%s: cannot read the store %s\n", PROG, pc->path);
		return 1;
	}
	return 0;
}

int roost_import_mosquitto_db(const char *db_path, const roost_config *cfg)
{
	importer im = {.path = db_path, .now = (int64_t)time(NULL)};
	roost_log log = {.level = ROOST_LOG_WARNING, .write = roost_log_stderr};
	char *text = NULL;
	size_t len = 0;
	int rc;
	if (roost_config_read_file(db_path, MAX_DB_BYTES, &text, &len) != 0) {
		fprintf(stderr, "%s: %s\n", db_path, strerror(errno));
		return 2;
	}
	const uint8_t *buf = (const uint8_t *)text;
	if ((rc = index_messages(&im, buf, len)) != 0 || (rc = open_store(&im, cfg, &log)) != 0)
		goto done;
	roost_err err = write_all(&im, buf, len);
	if (!err)
		err = roost_persist_commit(im.store);
	if (err) {
		/* The store has no rollback for the caller: what was written
		 * before the failure is kept, and the message says so. */
		fprintf(stderr, "%s: writing the store %s failed (%s); the import stopped part way\n", PROG,
		        cfg->persistence.path, roost_err_str(err));
		rc = 1;
		goto done;
	}
	report(&im, cfg->persistence.path);
done:
	if (im.store)
		roost_persist_close(im.store);
	importer_cleanup(&im);
	roost_free(text);
	return rc;
}

/*
 * internal.h — broker-private structures shared by the broker's .c files.
 *
 * Not installed and not included by connector/ or tests of pure modules.
 * The packet handlers (handle_*.c) follow one shape: decode -> check state ->
 * authorise -> apply -> respond, as named steps.
 */
#ifndef ROOST_INTERNAL_H
#define ROOST_INTERNAL_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "roost/auth.h"
#include "roost/broker.h"
#include "roost/codec.h"
#include "roost/daemon.h"
#include "roost/persist.h"
#include "roost/session.h"
#include "roost/topic.h"
#include "roost/uthash_cfg.h"

/* Connection states. */
enum conn_state {
	CONN_AWAIT_CONNECT = 0, /* TCP open, no CONNECT yet */
	CONN_AUTHENTICATING,    /* CONNECT received, its password being checked: nothing read */
	CONN_AUTH_EXCHANGE,     /* v5 enhanced authentication before CONNACK: only AUTH is read */
	CONN_ACTIVE,            /* CONNECT accepted */
	CONN_CLOSING,           /* flushing output, then close */
	CONN_DEAD,              /* closed, waiting for the reaper */
};

/* Above this much unsent output a connection is "slow": QoS 0 deliveries to it
 * are dropped (counted) instead of growing its buffer without bound. */
#define ROOST_OUTPUT_HIGH_WATER (1024u * 1024u)
/* While more than that is unsent, the broker also stops reading from the
 * client (its own publishes and acks wait), and resumes below half of it.
 * A client whose unsent output still passes the hard limit (acks and QoS
 * 1/2 deliveries only grow it up to the inflight window, so only a client
 * that does not read gets here) is cut off. */
#define ROOST_OUTPUT_HARD_LIMIT (8u * 1024u * 1024u)

/* Payloads at least this large are attached to output buffers by reference
 * (evbuffer_add_reference, zero-copy); smaller ones are cheaper to copy into
 * the buffer's current chain than to describe with a new chain. */
#define ROOST_ZERO_COPY_MIN 256u

typedef struct roost_conn roost_conn;
typedef struct broker_ws broker_ws;

/* One open listener. */
typedef struct roost_listener {
	roost_broker *b;
	struct evconnlistener *l;
	const roost_listener_config *cfg;
	SSL_CTX *ssl;             /* NULL for plain TCP; swapped on reload */
	bool loopback;            /* bound to 127.0.0.0/8 or ::1 only */
	int port;                 /* the bound port */
	struct event *retry;      /* re-enables accepting after a pause (net.c) */
	unsigned retry_ms;        /* current pause; 0 = accepting normally */
	unsigned failed_accepts;  /* since accepting last worked */
	roost_log_ratelimit refused_rl; /* "connection refused: max_connections" lines */
} roost_listener;

/*
 * What an MQTT 5 client declared in its CONNECT properties (MQTT 5.0
 * 3.1.2.11); a 3.1.1 client gets the defaults. Filled by handle_connect
 * (the connect side), read by the send path and flow control (the publish
 * side): the one place both halves of v5 meet.
 */
typedef struct conn_v5 {
	uint16_t receive_max;     /* client's Receive Maximum; default 65535 [MQTT-3.3.4-9] */
	uint32_t max_packet;      /* client's Maximum Packet Size; 0 = none [MQTT-3.1.2-24] */
	uint16_t topic_alias_max; /* aliases the client accepts from us; default 0 [MQTT-3.1.2-26] */
	bool problem_info;        /* Request Problem Information; default true [MQTT-3.1.2-29] */
	bool response_info;       /* Request Response Information; default false */
	uint32_t session_expiry;  /* seconds, as last set by CONNECT or DISCONNECT */
} conn_v5;

struct roost_conn {
	roost_broker *b;
	struct bufferevent *bev;
	broker_ws *ws;            /* WebSocket layer under bev; NULL on an MQTT listener */
	roost_session *session;   /* NULL until CONNECT accepted */
	roost_conn *next, *prev;  /* broker's list of open connections */
	roost_conn *reap_next;    /* broker's list of connections to free */
	struct event *timer;      /* connect timeout, then keepalive */
	struct evbuffer *hold;    /* output held until the store commits; NULL when not holding */
	roost_conn *hold_next;    /* broker's list of holding connections */
	uint64_t dispatch_mark;   /* store writes when the packet being handled arrived */
	bool dispatching;         /* a packet of this connection is being handled */
	roost_listener *listener; /* where it was accepted */
	roost_msg *will;          /* reference held; NULL when none */
	uint64_t last_rx_ms;      /* clock time of the last complete packet */
	uint16_t keepalive;       /* seconds; 0 = disabled */
	uint8_t state;            /* enum conn_state */
	uint8_t version;          /* protocol level once connected */
	bool read_paused;         /* input not read while output is above the high water mark */
	uint64_t slow_since;      /* clock time output went above the high water mark; 0 = not slow */
	bool overflowed;          /* output passed the hard limit: close at the next chance */
	bool peer_loopback;       /* the peer's address is loopback: "this machine" for allow_anonymous */
	uint64_t auth_gen;        /* set by a pending password check, to find this connection again */
	char addr[56];            /* "ip:port" of the peer */
	conn_v5 v5;               /* MQTT 5 client properties (defaults for 3.1.1) */
	uint32_t will_delay;      /* v5 Will Delay Interval of c->will, seconds [MQTT-3.1.3-9] */
	bool linger;              /* a server DISCONNECT is queued: written out before the socket is freed */
	const roost_auth_hook *auth_hook; /* v5 enhanced authentication: the method's hook, NULL without */
	void *auth_state;         /* the hook's state of the exchange in progress */
	bool reauthenticating;    /* an AUTH 0x19 exchange is in progress */
	uint8_t *auth_connect;    /* the CONNECT waiting for the exchange (heap copy) */
	size_t auth_connect_len;
	/* v5 Topic Aliases (connection.c; both NULL until first used). */
	struct alias_in *alias_in;   /* inbound: alias -> topic the client set */
	struct alias_out *alias_out; /* outbound: topic -> alias we assigned, uthash */
	uint16_t alias_out_n;        /* aliases assigned so far */
};

/* A listener's own password and ACL files (listeners[].password_file,
 * listeners[].acl_file); NULL: the top-level ones apply. */
typedef struct listener_auth {
	struct roost_auth_db *users;
	struct roost_acl *acl;
} listener_auth;

typedef struct session_entry {
	UT_hash_handle hh;
	roost_session *s;
	char client_id[];         /* hh key */
} session_entry;

/* One pending delivery during fan-out. */
typedef struct fanout_target {
	roost_session *s;
	uint8_t qos;
	uint8_t rap;              /* ROOST_DELIVER_RETAIN when a matching subscription has Retain As Published */
} fanout_target;

struct roost_broker {
	struct event_base *base;
	const roost_config *cfg;
	const roost_log *log;
	roost_clock clock;
	roost_topic_tree *tree;
	session_entry *sessions;
	roost_session_limits limits;

	roost_listener *listeners;
	size_t n_listeners;

	roost_conn *conns;        /* open connections */
	roost_conn *reap;         /* closed, freed by the reaper outside callbacks */
	struct event *reaper;

	fanout_target *targets;   /* scratch for fan-out */
	size_t targets_cap, n_targets;
	uint64_t publish_seq;
	uint64_t generated_ids;

	roost_bus *bus;
	struct roost_auth_db *users;      /* password_file, NULL when none */
	struct roost_acl *acl;            /* acl_file, NULL when none (all allowed) */
	listener_auth *listener_auth;     /* one per cfg->listeners, in that order */
	struct hook_entry *hooks;         /* component auth hooks, in order */
	char *password_path;              /* password_file, or `passwd` beside the store */
	struct auth_watch *auth_watch;    /* inotify on the password file's directory */
	struct auth_pool *auth_pool;      /* password checks off the loop; created on first use */
	struct roost_auth_cache *auth_cache;       /* successful verifications */
	struct roost_login_backoff *login_backoff; /* failed logins per (user, address) */
	struct connect_pending *auth_pending;      /* CONNECTs waiting for their check */
	size_t n_auth_pending;
	uint64_t auth_epoch;              /* bumped when the password files are reloaded */
	uint64_t auth_gens;               /* last roost_conn.auth_gen given out */
	roost_persist *store;             /* NULL: persistence off */
	struct event *commit_ev;          /* group commit, lowest priority */
	/* store.c calls it after every commit attempt (set by roost_broker_new
	 * to conn_commit_done): the store tells its owner, never a connection. */
	void (*commit_done)(roost_broker *b, bool committed);
	roost_conn *holding;              /* connection.c's: connections whose output waits for the commit */
	struct service *services;         /* named component interfaces */
	roost_broker_sub *component_subs; /* freed with the broker */
	uint64_t component_ids;

	roost_broker_stats stats;
	uint64_t start_ms;                /* clock time of roost_broker_new (uptime) */
	struct broker_sys *sys;           /* sys.c's: the $SYS tree and its timer */
	char *store_path;                 /* store.c's: the database file, NULL without one */
	uint64_t retain_refused;          /* new retained topics refused by limits.max_retained_messages */
	/* expiry.c: offline sessions by Session Expiry deadline (a min-heap) */
	roost_session **expiry_heap;
	size_t expiry_n, expiry_cap;
	struct event *expiry_ev;          /* armed for the heap's top only */
	uint64_t expiry_armed_ms;         /* the deadline it is armed for; 0 = not armed */
	uint64_t expiry_rearms;           /* times it was (re)armed: tests count wake-ups */
	bool shutting_down;
	void (*conn_watch)(void *ctx);    /* the daemon's connection-count watcher */
	void *conn_watch_ctx;
	struct lingerer *lingering;       /* sockets closing after a server DISCONNECT (connection.c) */
	unsigned n_lingering;
	struct ws_linger *ws_lingering;   /* closed ws sockets draining their last bytes (ws.c) */
};

struct roost_broker_sub {
	roost_broker_sub *next, *prev;
	roost_session *s;
	char *filter;
};

/* ---- broker.c ---- */
/* After stats.connections changed: tell the daemon's watcher. */
void broker_connections_changed(roost_broker *b);
roost_session *broker_session_find(roost_broker *b, const char *id, size_t len);
roost_err broker_session_add(roost_broker *b, roost_session *s);
/* Remove the session from the map and the trie, and free it. */
void broker_session_destroy(roost_broker *b, roost_session *s);
/* Deliver whatever the session's queue allows now (after acks, on reconnect). */
void broker_session_pump(roost_broker *b, roost_session *s);
/* Fan out msg (borrowed) to matching subscribers, storing it if retained.
 * This is the broker's own entry: it does not authorise. Only the broker's
 * own messages ($SYS) come here directly; a message published for anyone
 * else (a client, a will, a component) passes broker_authz_publish first. */
roost_err broker_publish(roost_broker *b, roost_msg *msg);
/* What a client's publish did, for its v5 acknowledgement. */
typedef struct broker_publish_result {
	size_t receivers;         /* sessions it was delivered or queued to (0: PUBACK 0x10) */
	bool retained;            /* false: RETAIN 1 but not kept (limits.max_retained_messages, 0x97) */
} broker_publish_result;
/* The same for a client's message: origin is its session, for No Local
 * [MQTT-3.8.3-3]; res (may be NULL) says what happened. */
roost_err broker_publish_from(roost_broker *b, roost_msg *msg, const roost_session *origin,
                              broker_publish_result *res);
/* Store msg (borrowed) as the retained message of its topic, delivering it
 * to nobody (sys.c's refresh before a new subscriber's retained set). */
void broker_retain(roost_broker *b, roost_msg *msg);
/* Send every retained message matching filter to the session, at most qos. */
void broker_send_retained(roost_broker *b, roost_session *s, const char *filter, size_t len,
                          uint8_t qos);

/* Queue a closed connection for freeing outside its callbacks (broker.c). */
void broker_schedule_reap(roost_broker *b, roost_conn *c);
/* Close every socket still lingering after a server DISCONNECT (broker free). */
void broker_lingering_free(roost_broker *b);
void broker_conn_free(roost_conn *c);

/* ---- store.c: the broker's side of the durable store ---- */
/* Open cfg->persistence.path (if set) and load it into the broker. */
roost_err broker_store_open(roost_broker *b);
void broker_store_close(roost_broker *b);
/* A persistent session was created / is being destroyed. */
void broker_store_session_added(roost_broker *b, roost_session *s);
/* Record the session's owner (roost_session_username) in the store. */
void broker_store_session_owner(roost_broker *b, roost_session *s);
void broker_store_session_removed(roost_broker *b, roost_session *s);
void broker_store_retain(roost_broker *b, const roost_msg *msg);
/* Store writes attempted so far (0 without a store): a caller compares two
 * readings to tell whether its operation wrote. */
uint64_t broker_store_writes(const roost_broker *b);
/* Make sure a commit runs in this loop pass (and reports to commit_done). */
void broker_store_commit_soon(roost_broker *b);
/* Bytes of the database file and its WAL (0 without a store). */
uint64_t broker_store_size(const roost_broker *b);

/* ---- expiry.c: Session Expiry Interval ---- */
/* s went offline: end it after roost_session_expiry(s) seconds (never for
 * ROOST_SESSION_NEVER_EXPIRES). */
void broker_expiry_session_offline(roost_broker *b, roost_session *s);
/* The client came back: no countdown, and a delayed will is dropped [MQTT-3.1.3-9]. */
void broker_expiry_session_online(roost_broker *b, roost_session *s);
/* Keep will (consumed) with the offline s, published after delay seconds or
 * at the session's end, whichever is first; call before ..._offline. */
void broker_expiry_will_delay(roost_broker *b, roost_session *s, roost_msg *will, uint32_t delay);
/* End s: its delayed will is published, then it is destroyed. */
void broker_session_end(roost_broker *b, roost_session *s);
/* s is destroyed: no longer scheduled (a no-op if it was not). */
void broker_expiry_cancel(roost_broker *b, roost_session *s);
void broker_expiry_free(roost_broker *b);
/* Set s's interval; 0 makes it end with its connection (it leaves the store). */
void broker_session_set_expiry(roost_broker *b, roost_session *s, uint32_t seconds);
/* After loading the store: offline sessions get limits.persistent_session_expiry. */
void broker_expiry_loaded(roost_broker *b);

/* ---- net.c ---- */
/* Stop accepting: close every listening socket (shutdown). */
void broker_listeners_close(roost_broker *b);
/* After every connection is freed: the TLS contexts. */
void broker_listeners_free(roost_broker *b);
/* Descriptors were freed: a listener paused for lack of them retries now. */
void broker_listeners_resume(roost_broker *b);

/* ---- authz.c ---- */
/* ROOST_AUTH_ALLOW (verified user), ROOST_AUTH_DEFER (admitted as anonymous)
 * or ROOST_AUTH_DENY with *why set. The password check, if any, runs here,
 * on the caller's thread (tests); the broker uses _decide. */
int broker_authz_connect(roost_broker *b, roost_conn *c, const char *client_id, const char *username,
                         const uint8_t *password, size_t plen, bool cert_identity, const char **why);
/* The users and ACL that govern clients of c's listener: its own files, else
 * the top-level ones (c NULL, e.g. a component or an offline session: the
 * top level). Borrowed until the next reload. */
const struct roost_auth_db *broker_authz_users(const roost_broker *b, const roost_conn *c);
const struct roost_acl *broker_authz_acl(const roost_broker *b, const roost_conn *c);
/* allow_anonymous for c's listener: its own setting, else the top level's. */
int broker_authz_allow_anonymous(const roost_broker *b, const roost_conn *c);
/* Any ACL file (top level or a listener's) or hook: topic checks needed. */
bool broker_authz_has_rules(const roost_broker *b);
/* broker_authz_connect without the costly part: ROOST_AUTH_VERIFY when
 * username's password must still be checked against *users. */
int broker_authz_connect_decide(roost_broker *b, roost_conn *c, const char *client_id, const char *username,
                                const uint8_t *password, size_t plen, bool cert_identity,
                                const struct roost_auth_db **users, const char **why);
/* May the session's client read/write/subscribe this topic or filter? */
bool broker_authz_topic(roost_broker *b, roost_session *s, const char *topic, size_t len, int access);
/*
 * The one decision for every message in: a client's PUBLISH, a will (at
 * CONNECT and again when it is published), a component's publish. client_id
 * NULL means a component (the hooks decide, as "$component"; the acl_file
 * has no entry for it). Checks, in order: a valid topic name
 * (ROOST_ERR_BAD_TOPIC), the topic limits (ROOST_ERR_TOO_LARGE), the '$'
 * rule and the ACL (ROOST_ERR_NOT_AUTHORIZED); *why says which.
 */
roost_err broker_authz_publish(roost_broker *b, const roost_conn *c, const char *client_id, const char *username,
                               const char *topic, size_t len, const char **why);
/* Is c's will still one its client may publish? When not, it is dropped
 * (released, c->will NULL) and logged. Asked at SIGHUP for every client,
 * and meant to be asked just before a will is published. */
bool broker_authz_will(roost_broker *b, roost_conn *c);
void broker_authz_free(roost_broker *b);

/* ---- connect_auth.c, auth_worker.c: the password check off the loop ---- */
/* broker_authz_connect_decide: the password must be checked. */
#define ROOST_AUTH_VERIFY 3
/* broker_connect_verify: the check went off the loop; the CONNECT resumes
 * in handle_connect_resume(). */
#define ROOST_AUTH_PENDING 4
/* The outcome of authentication: verdict ALLOW (a verified user), DEFER
 * (anonymous) or DENY with the CONNACK code and a reason for the log. */
typedef struct connect_verdict {
	int verdict;
	roost_err err;   /* why a DENY refuses, for roost_err_reason_code() */
	const char *why;
} connect_verdict;
typedef struct connect_pending connect_pending;
/*
 * Verify user's password for c's CONNECT (pkt: the whole packet, pw inside
 * it; gen_id: a generated client id or NULL): ROOST_AUTH_ALLOW at once on a
 * cached success, DENY with *v set, or ROOST_AUTH_PENDING: c is then
 * CONN_AUTHENTICATING, reads nothing, and handle_connect_resume(c, ...) is
 * called on the loop with the verdict unless c was closed meanwhile.
 */
int broker_connect_verify(roost_conn *c, const char *user, const uint8_t *pw, size_t plen, const uint8_t *pkt,
                          size_t len, const char *gen_id, connect_verdict *v);
/* The password files were reloaded: forget cached verifications. */
void broker_connect_auth_reloaded(roost_broker *b);
void broker_connect_auth_free(roost_broker *b);

typedef struct auth_pool auth_pool;
typedef void (*auth_pool_done)(void *ctx, bool ok);
/* 1 worker thread (2 with more than two CPUs); NULL on failure. */
auth_pool *broker_auth_pool_new(struct event_base *base);
/* Verify password (copied) against cred (copied) on a worker; done(ctx, ok)
 * runs later on the loop. */
roost_err broker_auth_pool_submit(auth_pool *p, const roost_auth_cred *cred, const void *password, size_t len,
                                  auth_pool_done done, void *ctx);
/* Joins the threads; callbacks of unfinished jobs never run. */
void broker_auth_pool_free(auth_pool *p);

/* ---- auth_watch.c ---- */
typedef struct auth_watch auth_watch;
/* Call changed(b) on the loop when one of paths (directory watched, so a
 * file created or renamed over counts) is written, replaced or removed.
 * NULL when inotify is unavailable (logged: SIGHUP still reloads). */
auth_watch *broker_auth_watch_new(roost_broker *b, const char *const *paths, size_t n,
                                  void (*changed)(roost_broker *b));
void broker_auth_watch_free(auth_watch *w);

/* ---- tls.c ---- */
SSL_CTX *broker_tls_ctx_new(const roost_listener_config *lc, const roost_log *log);
/* The verified peer certificate's common name; false when there is none. */
bool broker_tls_peer_cn(struct bufferevent *bev, char *out, size_t cap);

/* ---- ws.c: a WebSocket listener's connections ---- */
/* Put WebSocket framing over under (socket or TLS bufferevent, taken over):
 * the connection reads and writes MQTT bytes through broker_ws_bev. Frames
 * with more than max_frame payload bytes close it. NULL: out of memory
 * (under is still the caller's). */
broker_ws *broker_ws_new(struct bufferevent *under, uint64_t max_frame);
struct bufferevent *broker_ws_bev(broker_ws *bw);
/* Why the WebSocket layer raised BEV_EVENT_ERROR; NULL when it did not. */
const char *broker_ws_error(const broker_ws *bw);
/* Free both bufferevents; with flush, the last response (a refused CONNACK,
 * a close frame) is written first, for at most a few seconds. */
void broker_ws_free(roost_broker *b, broker_ws *bw, bool flush);
/* Free every closed ws socket still draining its last bytes (broker free). */
void broker_ws_lingering_free(roost_broker *b);

/* ---- connection.c ---- */
roost_conn *conn_new(roost_listener *l, evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* Close now: publish the will if publish_will, detach the session, schedule free. */
void conn_close(roost_conn *c, bool publish_will, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * A broker-initiated close with a reason: an MQTT 5 client is sent
 * DISCONNECT with this reason code (MQTT 5.0 3.14.2.1; a code DISCONNECT
 * may not carry becomes 0x80) and a Reason String unless it asked for no
 * problem information [MQTT-3.1.2-29], written out just before the socket
 * is freed; a 3.1.1 client is just closed. Either way the close is at
 * once, and the will is published [MQTT-3.1.2-8]. Used for 0x8E session
 * taken over, 0x8D keep alive timeout, 0x81/0x82/0x95 (conn_close_codec),
 * 0x8B shutting down, 0x98 administrative action (roost_broker_client_disconnect), and by the publish side
 * for 0x93 receive maximum exceeded, 0x94 topic alias invalid, 0x97 quota.
 */
void conn_disconnect(roost_conn *c, uint8_t reason_code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Close after everything queued so far has been written (e.g. CONNACK then close). */
void conn_close_after_flush(roost_conn *c, const char *why);
void conn_send(roost_conn *c, const void *data, size_t len);
/* Write a PUBLISH of msg: header encoded here, payload shared. qos may carry
 * ROOST_DELIVER_RETAIN. */
void conn_send_publish(roost_conn *c, roost_msg *msg, uint8_t qos, uint16_t packet_id, bool dup);
void conn_send_ack(roost_conn *c, uint8_t type, uint16_t packet_id);
/* A v5 acknowledgement with a reason code, and a Reason String when the
 * client allows problem information [MQTT-3.1.2-29]; 3.1.1: as above. */
void conn_send_ack_rc(roost_conn *c, uint8_t type, uint16_t packet_id, uint8_t reason, const char *why);
/* Inbound Topic Alias (1..limits.max_topic_alias) [MQTT-3.3.2-12]: set
 * (a copy of topic is kept) or look up (a view of the kept copy). */
roost_err conn_alias_in_set(roost_conn *c, uint16_t alias, roost_bytes topic);
bool conn_alias_in_find(const roost_conn *c, uint16_t alias, roost_bytes *topic);
/* Would a PUBLISH of msg stay within the client's Maximum Packet Size
 * [MQTT-3.1.2-24]? Always true without one. */
bool conn_publish_fits(const roost_conn *c, roost_msg *msg);
/* True while the client has more than ROOST_OUTPUT_HIGH_WATER unsent; a
 * client slow for longer than limits.slow_client_timeout is cut off. */
bool conn_is_slow(roost_conn *c);
const char *conn_client_id(const roost_conn *c);
/* (Re)arm the connection's timer for keepalive expiry. */
void conn_arm_keepalive(roost_conn *c);
/* Handle one complete packet (pkt, len: fixed header included) through the
 * dispatch switch. Its output waits for the store when its handling wrote. */
void conn_handle_packet(roost_conn *c, const uint8_t *pkt, size_t len);
/* From now on everything sent to c waits in c->hold until the next commit:
 * the acknowledgement of something stored is sent only once it is durable. */
void conn_hold_until_commit(roost_conn *c);
/* The store's commit finished: release the held output of every holding
 * connection (committed) or close them unacknowledged (not committed). */
void conn_commit_done(roost_broker *b, bool committed);

/* ---- handlers: each returns ROOST_OK or closes the connection itself ---- */
void handle_connect(roost_conn *c, const uint8_t *pkt, size_t len);
/* The rest of a CONNECT whose password check went off the loop; pkt is the
 * copy kept by the check, gen_id the client id generated for it (or ""). */
void handle_connect_resume(roost_conn *c, const uint8_t *pkt, size_t len, const char *gen_id,
                           const connect_verdict *v);
void handle_publish(roost_conn *c, const uint8_t *pkt, size_t len);
void handle_puback(roost_conn *c, const uint8_t *pkt, size_t len);   /* PUBACK, PUBREC, PUBCOMP */
void handle_pubrel(roost_conn *c, const uint8_t *pkt, size_t len);
void handle_subscribe(roost_conn *c, const uint8_t *pkt, size_t len);
void handle_unsubscribe(roost_conn *c, const uint8_t *pkt, size_t len);
void handle_pingreq(roost_conn *c, const uint8_t *pkt, size_t len);
void handle_disconnect(roost_conn *c, const uint8_t *pkt, size_t len);
void handle_auth(roost_conn *c, const uint8_t *pkt, size_t len);
/* handle_connect.c: AUTH 0x18 during the CONNECT's exchange (data: its
 * Authentication Data). */
void handle_connect_auth(roost_conn *c, roost_bytes data);
/* Send AUTH(reason) with the hook's method and data (v5 only). */
void conn_send_auth(roost_conn *c, uint8_t reason, const uint8_t *data, size_t len);
/* The hook implementing an enhanced authentication method, or NULL. */
const roost_auth_hook *broker_authz_method_hook(const roost_broker *b, const uint8_t *method, size_t len);

/* Log and close for a decode error. */
void conn_close_codec(roost_conn *c, const char *what, const roost_codec_error *e);

#endif

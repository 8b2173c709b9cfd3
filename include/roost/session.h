/*
 * session.h — MQTT session state, independent of any connection.
 *
 * A session is keyed by client id and outlives connections when the client
 * asked for a persistent session (clean session 0, [MQTT-3.1.2-4]). It owns:
 *  - its subscriptions (filter -> granted options), mirrored in the broker's
 *    topic trie, kept here so they can be listed, persisted and removed;
 *  - the outbound queue: messages waiting for an inflight slot or for the
 *    client to come back, in arrival order (one FIFO for all QoS levels so
 *    per-publisher order is never broken);
 *  - the inflight window: QoS 1/2 messages sent and not yet fully
 *    acknowledged, with their packet ids and state, resent on reconnect;
 *  - inbound QoS 2 packet ids received and not yet released by PUBREL.
 *
 * Every queued or inflight entry holds one message reference. The session
 * module is a pure data structure: no I/O, no clock reads — callers pass time
 * in. The broker decides when to send; this module decides what is next.
 *
 * Packet ids: assigned sequentially, skipping 0 and ids still inflight
 * [MQTT-2.3.1-2].
 */
#ifndef ROOST_SESSION_H
#define ROOST_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"
#include "roost/message.h"

typedef struct roost_session roost_session;

typedef struct roost_session_limits {
	uint32_t max_inflight;     /* >= 1 */
	uint32_t max_queued;       /* 0 = unlimited */
	uint64_t max_queued_bytes; /* 0 = unlimited */
} roost_session_limits;

/* State of an outbound inflight message. */
typedef enum roost_inflight_state {
	ROOST_INFLIGHT_WAIT_PUBACK = 1,  /* QoS 1: PUBLISH sent */
	ROOST_INFLIGHT_WAIT_PUBREC,      /* QoS 2: PUBLISH sent */
	ROOST_INFLIGHT_WAIT_PUBCOMP,     /* QoS 2: PUBREL sent */
} roost_inflight_state;

/*
 * A delivery's QoS travels with one flag: ROOST_DELIVER_RETAIN marks a
 * retained message sent because of a new subscription, which goes out with
 * RETAIN 1 [MQTT-3.3.1-6]; live forwarding has RETAIN 0 [MQTT-3.3.1-9].
 * Where a function takes or returns a `qos` byte it may carry this flag;
 * the QoS itself is (qos & ROOST_DELIVER_QOS_MASK).
 */
#define ROOST_DELIVER_QOS_MASK 0x03
#define ROOST_DELIVER_RETAIN 0x80

typedef struct roost_inflight {
	roost_msg *msg;          /* reference held; NULL once PUBREC came (payload no longer needed) */
	uint64_t seq;            /* the session's sequence number of this delivery */
	uint64_t store_id;       /* msg->store_id when it went inflight (kept after PUBREC) */
	uint16_t packet_id;
	uint8_t qos;             /* QoS of this delivery (after downgrade), plus ROOST_DELIVER_RETAIN */
	uint8_t state;           /* roost_inflight_state */
} roost_inflight;

/* Outcome of roost_session_enqueue. */
typedef enum roost_enqueue_result {
	ROOST_ENQUEUED = 0,
	ROOST_DROPPED_FULL,      /* queue limit reached: message not stored */
} roost_enqueue_result;

typedef struct roost_session_stats {
	uint64_t dropped_qos0;   /* QoS 0 messages dropped by the queue limits */
	uint64_t dropped_qos12;  /* QoS 1/2 messages dropped by the queue limits */
	uint64_t dropped_denied; /* queued messages dropped unsent (roost_session_drop_head) */
} roost_session_stats;

roost_session *roost_session_new(const char *client_id, size_t len, bool clean);
/* Frees everything, releasing every message reference it holds. */
void roost_session_free(roost_session *s);

const char *roost_session_client_id(const roost_session *s);
bool roost_session_clean(const roost_session *s);
void roost_session_set_clean(roost_session *s, bool clean);
const roost_session_stats *roost_session_stats_get(const roost_session *s);

/*
 * The session's owner: the verified user name (NULL: anonymous) of the
 * connection that created it, which is also the identity of its ACL
 * decisions. Only the owner may resume it (the broker refuses others).
 * Setting it makes the owner known. The store keeps it (schema version 3),
 * so a restored session has its owner back; only a session written by an
 * older roost starts with its owner unknown and is claimed by the first
 * connection that resumes it.
 */
roost_err roost_session_set_username(roost_session *s, const char *username, size_t len);
const char *roost_session_username(const roost_session *s);
bool roost_session_owner_known(const roost_session *s);
/* May a connection of this user (NULL: anonymous) resume s? True when it is
 * the owner, or when the owner is unknown. */
bool roost_session_owned_by(const roost_session *s, const char *username);

/*
 * Session Expiry Interval (MQTT 5.0 3.1.2.11.2), seconds: how long the
 * session outlives its connection. 0 ends it with the connection (the
 * session is then "clean"), ROOST_SESSION_NEVER_EXPIRES keeps it forever
 * [MQTT-3.1.2-5]. A 3.1.1 persistent session carries
 * limits.persistent_session_expiry, or NEVER when that is 0.
 */
#define ROOST_SESSION_NEVER_EXPIRES UINT32_MAX
void roost_session_set_expiry(roost_session *s, uint32_t seconds);
uint32_t roost_session_expiry(const roost_session *s);

/*
 * Scratch slot for the broker's expiry scheduler (one timer for the
 * earliest deadline): the deadline in clock milliseconds and the session's
 * position in the scheduler's heap, SIZE_MAX while not scheduled.
 */
typedef struct roost_session_expiry_slot {
	uint64_t deadline_ms; /* the heap's key: the earlier of ends_ms and the will's due time */
	uint64_t ends_ms;     /* when the session ends; UINT64_MAX: never */
	size_t index;
} roost_session_expiry_slot;
roost_session_expiry_slot *roost_session_expiry_slot_get(roost_session *s);

/*
 * A will waiting for its Will Delay Interval [MQTT-3.1.3-9] while the
 * session is offline: published when due_ms (clock time) comes or when the
 * session ends, whichever is first; dropped when the client reconnects.
 * roost_session_will_take consumes the reference (any previous will is
 * released); roost_session_will_remove hands it back (NULL: none).
 */
void roost_session_will_take(roost_session *s, roost_msg *will, uint64_t due_ms);
roost_msg *roost_session_will_remove(roost_session *s);
/* When the waiting will is due; 0 when there is none. */
uint64_t roost_session_will_due(const roost_session *s);

/* Broker-owned opaque pointer (the live connection, or NULL when offline). */
void *roost_session_conn(const roost_session *s);
void roost_session_set_conn(roost_session *s, void *conn);

/*
 * Scratch slot for the broker's fan-out: while one PUBLISH is matched, the
 * broker stamps each subscriber's session with the publish's sequence number
 * and the index of its delivery, so overlapping subscriptions merge into one
 * delivery at the highest QoS in O(subscribers) without a side table.
 */
typedef struct roost_session_mark {
	uint64_t seq;
	uint32_t index;
} roost_session_mark;
roost_session_mark *roost_session_mark_get(roost_session *s);

/*
 * An in-process subscriber (a component) has a session with a sink instead
 * of a connection: deliveries call fn(ctx, msg, qos) at once, with msg
 * borrowed. Such a session never queues and never holds inflight state.
 */
typedef void (*roost_session_sink_fn)(void *ctx, roost_msg *msg, uint8_t qos);
void roost_session_set_sink(roost_session *s, roost_session_sink_fn fn, void *ctx);
/* Returns the sink function (NULL for ordinary sessions) and its ctx. */
roost_session_sink_fn roost_session_sink(const roost_session *s, void **ctx);

/*
 * The journal: every change to a session's durable state, reported as it
 * happens so a store can mirror it (the broker sets one on persistent
 * sessions when persistence is on). Deliveries are identified by a
 * per-session sequence number that only grows. QoS 0 deliveries are not
 * journaled: they are never kept across a restart.
 *
 * delivery_add     a QoS 1/2 delivery was queued (packet_id 0, state 0) or
 *                  went straight inflight (packet_id, state).
 * delivery_update  it moved into the inflight window, or PUBREC arrived.
 * delivery_remove  it is finished (PUBACK/PUBCOMP) or the session dropped it;
 *                  store_id is the message's, for releasing it in the store.
 * sub              subscription added/replaced (added true) or removed.
 * qos2_in          an inbound QoS 2 packet id recorded (added) or released.
 */
typedef struct roost_session_journal {
	void (*delivery_add)(void *ctx, roost_session *s, uint64_t seq, roost_msg *msg, uint8_t qos,
	                     uint16_t packet_id, uint8_t state);
	void (*delivery_update)(void *ctx, roost_session *s, uint64_t seq, uint16_t packet_id, uint8_t state);
	void (*delivery_remove)(void *ctx, roost_session *s, uint64_t seq, uint64_t store_id);
	void (*sub)(void *ctx, roost_session *s, const char *filter, size_t len, uint8_t options, bool added);
	void (*qos2_in)(void *ctx, roost_session *s, uint16_t packet_id, bool added);
} roost_session_journal;

/* Set (or clear, with NULL) the journal; it is borrowed. */
void roost_session_set_journal(roost_session *s, const roost_session_journal *j, void *ctx);

/*
 * Restore one delivery loaded from a store, with its original sequence
 * number: state 0 puts it at the queue tail, an inflight state into the
 * window with its packet id. Call in ascending seq order. Takes a new
 * reference on msg (NULL allowed only for state WAIT_PUBCOMP). Not journaled.
 */
roost_err roost_session_restore(roost_session *s, uint64_t seq, roost_msg *msg, uint8_t qos,
                                uint16_t packet_id, uint8_t state, uint64_t store_id);
/* Restore an inbound QoS 2 packet id; not journaled. */
roost_err roost_session_restore_qos2(roost_session *s, uint16_t packet_id);

/* ---- subscriptions ---- */
/* Add or replace; *existed (may be NULL) says whether it was a replacement. */
roost_err roost_session_sub_add(roost_session *s, const char *filter, size_t len, uint8_t options,
                                bool *existed);
/* The same with a v5 Subscription Identifier (0: none), kept for deliveries. */
roost_err roost_session_sub_add_id(roost_session *s, const char *filter, size_t len, uint8_t options,
                                   uint32_t sub_id, bool *existed);
/*
 * The Subscription Identifiers of the subscriptions matching topic, up to
 * cap, in *out; returns how many. A delivery carries one per matching
 * subscription [MQTT-3.3.4-3], [MQTT-3.3.4-4]. Looked up when the message is
 * sent, so queued, resent and retained deliveries carry them too; free when
 * the session has no identifiers.
 */
size_t roost_session_sub_ids(const roost_session *s, const char *topic, size_t len, uint32_t *out, size_t cap);
roost_err roost_session_sub_remove(roost_session *s, const char *filter, size_t len);
size_t roost_session_sub_count(const roost_session *s);
bool roost_session_sub_has(const roost_session *s, const char *filter, size_t len);
/* Visit subscriptions; visitor returns false to stop. Must not modify s. */
typedef bool (*roost_session_sub_visit)(void *ctx, const char *filter, size_t len, uint8_t options);
void roost_session_sub_foreach(const roost_session *s, roost_session_sub_visit visit, void *ctx);

/* ---- outbound ---- */
/*
 * Append msg (taking a new reference) for delivery at qos to the queue tail.
 * Drops instead when a limit would be exceeded, counting the drop.
 */
roost_err roost_session_enqueue(roost_session *s, roost_msg *msg, uint8_t qos,
                                const roost_session_limits *lim, roost_enqueue_result *result);

size_t roost_session_queue_len(const roost_session *s);
uint64_t roost_session_queue_bytes(const roost_session *s);
size_t roost_session_inflight_len(const roost_session *s);

/*
 * Take the next queued message that may be sent now: a QoS 0 entry always, a
 * QoS 1/2 entry only while fewer than lim->max_inflight are inflight. For QoS
 * 1/2 the entry moves into the inflight window with a fresh packet id.
 * Returns false when nothing can be sent. *msg is a reference the caller now
 * owns (for QoS 1/2 the inflight slot holds another).
 */
bool roost_session_dequeue(roost_session *s, const roost_session_limits *lim, roost_msg **msg,
                           uint8_t *qos, uint16_t *packet_id);

/* The queue head without taking it (msg borrowed); false when empty. */
bool roost_session_peek(const roost_session *s, roost_msg **msg, uint8_t *qos);
/* Drop the queue head unsent (the receiver may no longer read it): its
 * reference is released, the journal told (delivery_remove), and it is
 * counted in dropped_denied. The queue must not be empty. */
void roost_session_drop_head(roost_session *s);

/*
 * Put msg straight into the inflight window at qos >= 1 (a new reference is
 * taken), bypassing the queue; only valid when the queue is empty and a slot
 * is free (roost_session_can_send_now).
 */
roost_err roost_session_inflight_add(roost_session *s, roost_msg *msg, uint8_t qos, uint16_t *packet_id);
/* True when a message of this qos may go out immediately without reordering. */
bool roost_session_can_send_now(const roost_session *s, uint8_t qos, const roost_session_limits *lim);

/*
 * Apply an acknowledgement from the client. type is PUBACK (QoS 1 done),
 * PUBREC (QoS 2: slot moves to WAIT_PUBCOMP, message reference released) or
 * PUBCOMP (QoS 2 done). Returns ROOST_ERR_NOT_FOUND when no slot with that id
 * is in the matching state (a duplicate or stray ack; not fatal).
 */
roost_err roost_session_ack(roost_session *s, uint8_t type, uint16_t packet_id);

/* Visit queued entries in order (msg borrowed, qos with its flags). */
typedef void (*roost_session_queue_visit)(void *ctx, roost_msg *msg, uint8_t qos);
void roost_session_queue_foreach(const roost_session *s, roost_session_queue_visit visit, void *ctx);

/* Is an outbound delivery with this packet id inflight (any state)? */
bool roost_session_inflight_has(const roost_session *s, uint16_t packet_id);

/* Visit inflight slots in send order (for resend on reconnect). */
typedef void (*roost_session_inflight_visit)(void *ctx, roost_inflight *slot);
void roost_session_inflight_foreach(roost_session *s, roost_session_inflight_visit visit, void *ctx);

/* ---- keepalive ---- */
/*
 * Milliseconds left before a connection whose last packet arrived at
 * last_rx_ms (clock time) must be closed for keepalive expiry: one and a half
 * keepalive periods [MQTT-3.1.2-24]. 0 means expired. keepalive 0 disables
 * the mechanism: returns UINT64_MAX.
 */
uint64_t roost_keepalive_left_ms(uint64_t last_rx_ms, uint64_t now_ms, uint16_t keepalive);

/* ---- inbound QoS 2 ---- */
/* Record an inbound QoS 2 packet id; *dup set when it was already recorded [MQTT-4.3.3-2]. */
roost_err roost_session_qos2_in_add(roost_session *s, uint16_t packet_id, bool *dup);
/* PUBREL received: forget the id. NOT_FOUND when unknown. */
roost_err roost_session_qos2_in_release(roost_session *s, uint16_t packet_id);
size_t roost_session_qos2_in_count(const roost_session *s);
bool roost_session_qos2_in_has(const roost_session *s, uint16_t packet_id);

#endif

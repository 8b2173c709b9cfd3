/*
 * handle_connect.c — CONNECT: decode -> check -> authorise -> apply -> respond.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/alloc.h"
#include "sys.h"

static void send_connack(roost_conn *c, uint8_t version, bool session_present, uint8_t code)
{
	uint8_t buf[8];
	roost_connack ack = {.session_present = session_present, .code = code};
	size_t n = roost_encode_connack(buf, sizeof buf, version ? version : ROOST_MQTT_V311, &ack);
	conn_send(c, buf, n);
}

/* Refuse with a CONNACK return code, then close once it is written
 * [MQTT-3.2.2-5]. */
static void refuse(roost_conn *c, const roost_connect *req, uint8_t code, const char *why)
{
	send_connack(c, req ? req->protocol_level : ROOST_MQTT_V311, false, code);
	/* Named by the id it asked for: no session exists yet. */
	size_t idlen = req && req->client_id.len < 128 ? req->client_id.len : 0;
	char line[512];
	snprintf(line, sizeof line, "CONNECT from client id '%.*s' refused (0x%02x): %s", (int)idlen,
	         idlen ? (const char *)req->client_id.ptr : "", code, why);
	conn_close_after_flush(c, line);
}

/* Step 1: decode. Returns false when the connection was closed or refused. */
static bool connect_decode(roost_conn *c, const uint8_t *pkt, size_t len, roost_connect *req)
{
	roost_codec_error e = {0};
	roost_err err = roost_decode_connect(pkt, len, req, &e);
	if (err == ROOST_ERR_UNSUPPORTED) {
		/* [MQTT-3.1.2-2] unacceptable protocol level: CONNACK 0x01. */
		char why[64];
		snprintf(why, sizeof why, "protocol level %u not supported", req->protocol_level);
		refuse(c, NULL, ROOST_CONNACK_BAD_PROTOCOL, why);
		return false;
	}
	if (err) {
		/* [MQTT-3.1.4-1] a malformed CONNECT closes without CONNACK. */
		conn_close_codec(c, "malformed CONNECT", &e);
		return false;
	}
	return true;
}

/* Step 2: check the client identifier and limits; may generate an id. */
static bool connect_check(roost_conn *c, roost_connect *req, char *gen, size_t gen_cap)
{
	roost_broker *b = c->b;
	if (req->protocol_level == ROOST_MQTT_V5) {
		/* The codec speaks MQTT 5; the broker's session semantics (reason
		 * codes, properties, session expiry) do not yet, so a v5 client is
		 * refused the 3.1.1 way rather than half served [MQTT-3.1.2-2]. */
		roost_connect v311 = *req;
		v311.protocol_level = ROOST_MQTT_V311;
		refuse(c, &v311, ROOST_CONNACK_BAD_PROTOCOL, "MQTT 5 is not supported yet");
		return false;
	}
	if (req->client_id.len == 0) {
		if (!req->clean_start || req->protocol_level == ROOST_MQTT_V31) {
			/* [MQTT-3.1.3-8] empty id needs clean session; MQTT 3.1
			 * does not allow an empty id at all. */
			refuse(c, req, ROOST_CONNACK_ID_REJECTED, "empty client id without clean session");
			return false;
		}
		/* [MQTT-3.1.3-6] assign a unique id. */
		snprintf(gen, gen_cap, "auto-%llx-%llx", (unsigned long long)roost_clock_now(&b->clock),
		         (unsigned long long)++b->generated_ids);
		req->client_id = (roost_bytes){(const uint8_t *)gen, strlen(gen)};
	}
	if (b->cfg->limits.max_keepalive && req->keepalive > b->cfg->limits.max_keepalive) {
		char why[96];
		snprintf(why, sizeof why, "keepalive %u exceeds limits.max_keepalive %u", req->keepalive,
		         b->cfg->limits.max_keepalive);
		refuse(c, req, ROOST_CONNACK_ID_REJECTED, why);
		return false;
	}
	if (req->will_flag && !roost_topic_name_valid(req->will_topic.ptr, req->will_topic.len)) {
		/* [MQTT-3.1.3-11] the will topic is a topic name. */
		conn_close(c, false, "invalid will topic [MQTT-3.1.3-11]");
		return false;
	}
	return true;
}

/*
 * Step 3: authenticate — who is this? The cheap decisions (hooks, a TLS
 * certificate, the anonymous policy) are made here; a password goes to
 * broker_connect_verify(), which may take it off the loop: then false is
 * returned with v->verdict ROOST_AUTH_PENDING and the CONNECT resumes in
 * handle_connect_resume(). pkt/len: the whole packet, kept by that check;
 * cn: the caller's buffer for a certificate's name (req->username points
 * into it afterwards).
 */
static bool connect_authenticate(roost_conn *c, roost_connect *req, const uint8_t *pkt, size_t len,
                                 const char *gen_id, char cn[static 256], connect_verdict *v)
{
	roost_broker *b = c->b;
	bool cert = false;
	if (c->listener->cfg->use_identity_as_username) {
		/* The verified certificate's CN is the user name; the TLS layer
		 * already refused clients without a certificate. */
		if (!broker_tls_peer_cn(c->bev, cn, 256)) {
			*v = (connect_verdict){ROOST_AUTH_DENY, ROOST_CONNACK_NOT_AUTHORIZED, "no usable client certificate (use_identity_as_username)"};
			return true;
		}
		req->username_flag = true;
		req->username = (roost_bytes){(const uint8_t *)cn, strlen(cn)};
		cert = true;
	}
	char *name = req->username_flag ? roost_strndup((const char *)req->username.ptr, req->username.len) : NULL;
	char *id = roost_strndup((const char *)req->client_id.ptr, req->client_id.len);
	const struct roost_auth_db *users = NULL;
	*v = (connect_verdict){ROOST_AUTH_DENY, ROOST_CONNACK_UNAVAILABLE, "out of memory"};
	if ((!req->username_flag || name) && id) {
		v->verdict = broker_authz_connect_decide(b, c, id, name, req->password.ptr, req->password.len, cert,
		                                         &users, &v->why);
		v->code = ROOST_CONNACK_NOT_AUTHORIZED; /* anyone not let in [MQTT-3.2.2-5] */
		if (v->verdict == ROOST_AUTH_VERIFY)
			broker_connect_verify(c, name, req->password.ptr, req->password.len, pkt, len, gen_id, v);
	}
	roost_free(name);
	roost_free(id);
	return v->verdict != ROOST_AUTH_PENDING;
}

/* Step 4: authorise. Refuses a denied client; on success *user is the
 * verified user name (heap, or NULL for an anonymous client), to be kept
 * with the session for ACLs. */
static bool connect_authorise(roost_conn *c, const roost_connect *req, const connect_verdict *v, char **user)
{
	*user = NULL;
	if (v->verdict == ROOST_AUTH_DENY) {
		/* 0x04 for a wrong password, 0x05 for anyone not let in. */
		refuse(c, req, v->code, v->why ? v->why : "refused");
		return false;
	}
	if (v->verdict != ROOST_AUTH_ALLOW || !req->username_flag)
		return true; /* admitted as anonymous */
	if (!(*user = roost_strndup((const char *)req->username.ptr, req->username.len))) {
		refuse(c, req, ROOST_CONNACK_UNAVAILABLE, "out of memory");
		return false;
	}
	return true; /* verified: an identity for ACLs */
}

/*
 * Step 4a: authorise the will as the PUBLISH it may become [MQTT-3.1.2-8]:
 * the same decision as a client's PUBLISH (topic limits, '$' rule, ACL),
 * for the identity just verified. A will the client may not publish is
 * refused now (3.1.1 CONNACK 0x05; v5 would be 0x87), never dropped
 * silently later. It is decided again when it is published: rights can
 * shrink meanwhile (broker_authz_will).
 */
static bool connect_authorise_will(roost_conn *c, const roost_connect *req, const char *user)
{
	if (!req->will_flag)
		return true;
	char *id = roost_strndup((const char *)req->client_id.ptr, req->client_id.len);
	if (!id) {
		refuse(c, req, ROOST_CONNACK_UNAVAILABLE, "out of memory");
		return false;
	}
	const char *why = NULL;
	roost_err err = broker_authz_publish(c->b, c, id, user, (const char *)req->will_topic.ptr, req->will_topic.len,
	                                     &why);
	roost_free(id);
	if (err == ROOST_OK)
		return true;
	char line[300];
	snprintf(line, sizeof line, "will on %.*s refused: %s", (int)(req->will_topic.len > 200 ? 200 : req->will_topic.len),
	         (const char *)req->will_topic.ptr, why);
	refuse(c, req, ROOST_CONNACK_NOT_AUTHORIZED, line);
	return false;
}

/*
 * Step 4b: a persistent session belongs to the user who created it: another
 * user connecting with its client id (to resume it, or with clean session 1
 * to take it over and discard it) is refused with CONNACK 0x05 (v5 would
 * be 0x87), and the session stays its owner's.
 */
static bool connect_check_owner(roost_conn *c, const roost_connect *req, const char *user)
{
	roost_session *s = broker_session_find(c->b, (const char *)req->client_id.ptr, req->client_id.len);
	if (!s || roost_session_clean(s) || roost_session_owned_by(s, user))
		return true;
	refuse(c, req, ROOST_CONNACK_NOT_AUTHORIZED,
	       user ? "this client id's persistent session belongs to another user"
	            : "this client id's persistent session belongs to a user; anonymous clients may not use it");
	return false;
}

/* Step 5: attach a session, taking over any connection with the same id. */
static bool connect_apply(roost_conn *c, const roost_connect *req, const char *user, bool *session_present)
{
	roost_broker *b = c->b;
	const char *id = (const char *)req->client_id.ptr;
	size_t id_len = req->client_id.len;
	roost_session *s = broker_session_find(b, id, id_len);
	if (s && roost_session_conn(s)) {
		/* [MQTT-3.1.4-2] the existing client is disconnected; its will
		 * is published, as for any close without DISCONNECT. */
		roost_conn *old = roost_session_conn(s);
		conn_close(old, true, "session taken over by a new connection from %s", c->addr);
		s = broker_session_find(b, id, id_len); /* a clean one is gone now */
	}
	if (s && req->clean_start) {
		/* [MQTT-3.1.2-6] clean session discards any previous session. */
		broker_session_destroy(b, s);
		s = NULL;
	}
	*session_present = s != NULL; /* [MQTT-3.2.2-1..3] */
	if (!s) {
		s = roost_session_new(id, id_len, req->clean_start);
		if (!s || broker_session_add(b, s) != ROOST_OK) {
			roost_session_free(s);
			refuse(c, req, ROOST_CONNACK_UNAVAILABLE, "out of memory creating the session");
			return false;
		}
		broker_store_session_added(b, s);
	}
	if (req->will_flag) {
		/* [MQTT-3.1.2-9] store the will with the connection. */
		c->will = roost_msg_new((const char *)req->will_topic.ptr, req->will_topic.len,
		                        req->will_payload.ptr, req->will_payload.len, req->will_qos,
		                        req->will_retain);
		if (!c->will) {
			refuse(c, req, ROOST_CONNACK_UNAVAILABLE, "out of memory storing the will");
			return false;
		}
	}
	bool claimed = !roost_session_owner_known(s); /* new, or restored from a store without owners */
	if (roost_session_set_username(s, user, user ? strlen(user) : 0) != ROOST_OK) {
		refuse(c, req, ROOST_CONNACK_UNAVAILABLE, "out of memory");
		return false;
	}
	if (claimed)
		broker_store_session_owner(b, s); /* the owner survives restarts */
	c->session = s;
	c->b->stats.connects++;
	if (++c->b->stats.clients_connected > c->b->stats.clients_maximum)
		c->b->stats.clients_maximum = c->b->stats.clients_connected;
	c->version = req->protocol_level;
	c->keepalive = req->keepalive;
	c->state = CONN_ACTIVE;
	roost_session_set_conn(s, c);
	return true;
}

static void resend_visit(void *ctx, roost_inflight *slot)
{
	roost_conn *c = ctx;
	if (slot->state == ROOST_INFLIGHT_WAIT_PUBCOMP)
		conn_send_ack(c, ROOST_MQTT_PUBREL, slot->packet_id);
	else
		conn_send_publish(c, slot->msg, slot->qos, slot->packet_id, true); /* [MQTT-3.3.1-1] DUP */
}

/* Step 6: respond. [MQTT-3.2.0-1] CONNACK is the first packet sent. */
static void connect_respond(roost_conn *c, const roost_connect *req, bool present)
{
	send_connack(c, c->version, present, ROOST_CONNACK_ACCEPTED);
	const char *verified = roost_session_username(c->session);
	roost_log_info(c->b->log, "client %s (%s) connected: MQTT %s, clean %d, keepalive %u%s%s%s",
	               conn_client_id(c), c->addr,
	               c->version == ROOST_MQTT_V31 ? "3.1" : c->version == ROOST_MQTT_V5 ? "5" : "3.1.1",
	               req->clean_start, req->keepalive, present ? ", session resumed" : "",
	               verified ? ", user " : ", anonymous", verified ? verified : "");
	conn_arm_keepalive(c);
	/* [MQTT-4.4.0-1] resend unacknowledged PUBLISH and PUBREL packets with
	 * their original packet ids, then whatever waited in the queue. */
	roost_session_inflight_foreach(c->session, resend_visit, c);
	broker_session_pump(c->b, c->session);
	if (present)
		broker_sys_wake(c->b); /* its $SYS subscriptions, if any, are live again */
}

/* Steps 4-6, once the client is authenticated. */
static void connect_finish(roost_conn *c, const roost_connect *req, const connect_verdict *v)
{
	char *user = NULL;
	bool present = false;
	bool ok = connect_authorise(c, req, v, &user) && connect_authorise_will(c, req, user) &&
	          connect_check_owner(c, req, user) && connect_apply(c, req, user, &present);
	roost_free(user);
	if (ok)
		connect_respond(c, req, present);
}

void handle_connect(roost_conn *c, const uint8_t *pkt, size_t len)
{
	roost_connect req;
	char generated[64] = "";
	char cn[256];
	connect_verdict v;
	if (connect_decode(c, pkt, len, &req) && connect_check(c, &req, generated, sizeof generated) &&
	    connect_authenticate(c, &req, pkt, len, generated, cn, &v))
		connect_finish(c, &req, &v);
}

void handle_connect_resume(roost_conn *c, const uint8_t *pkt, size_t len, const char *gen_id,
                           const connect_verdict *v)
{
	roost_connect req;
	roost_codec_error e = {0};
	c->state = CONN_AWAIT_CONNECT;
	/* Decoded once already: it cannot fail now. */
	if (roost_decode_connect(pkt, len, &req, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed CONNECT", &e);
		return;
	}
	if (gen_id && *gen_id)
		req.client_id = (roost_bytes){(const uint8_t *)gen_id, strlen(gen_id)};
	connect_finish(c, &req, v);
	if (c->state == CONN_ACTIVE) {
		/* Packets the client sent after its CONNECT waited unread. */
		bufferevent_enable(c->bev, EV_READ);
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	}
}

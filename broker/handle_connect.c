/*
 * handle_connect.c — CONNECT: decode -> check -> authorise -> apply -> respond.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/alloc.h"
#include "sys.h"

/*
 * What a CONNECT asked for beyond its 3.1.1 fields, gathered by the steps
 * and answered in the CONNACK: the v5 properties (MQTT 5.0 3.1.2.11) and
 * the broker's decisions about them.
 */
typedef struct connect_ctx {
	roost_connect req;
	conn_v5 v5;                /* the client's properties, for c->v5 */
	char generated[64];        /* an assigned client id lives here */
	bool assigned;             /* the broker chose the id [MQTT-3.2.2-16] */
	uint16_t server_keepalive; /* non-zero: Server Keep Alive overrides the client's [MQTT-3.2.2-21] */
	uint32_t will_delay;       /* Will Delay Interval [MQTT-3.1.3-9] */
	roost_bytes auth_method;   /* Authentication Method; ptr NULL when absent */
	roost_bytes auth_data;
	const roost_auth_hook *hook; /* the hook implementing auth_method (4.12) */
	uint8_t auth_out[512];     /* the hook's last data, for CONNACK */
	size_t auth_out_len;
} connect_ctx;

static bool is_v5(const roost_connect *req)
{
	return req && req->protocol_level == ROOST_MQTT_V5;
}

/* CONNACK: code, then (v5) the property block props. */
static void send_connack(roost_conn *c, uint8_t version, bool session_present, uint8_t code, roost_bytes props)
{
	uint8_t small[16];
	roost_connack ack = {.session_present = session_present, .code = code, .props = props};
	version = version ? version : ROOST_MQTT_V311;
	size_t n = roost_encode_connack(small, sizeof small, version, &ack);
	if (n <= sizeof small) {
		conn_send(c, small, n);
		return;
	}
	uint8_t *buf = roost_malloc(n);
	if (!buf) {
		conn_close(c, false, "out of memory encoding CONNACK");
		return;
	}
	roost_encode_connack(buf, n, version, &ack);
	conn_send(c, buf, n);
	roost_free(buf);
}

/*
 * Refuse for err, with the one mapping from errors to reason codes
 * (roost_err_reason_code: 3.1.1 return code or v5 reason code), then close
 * once it is written [MQTT-3.2.2-5] ([MQTT-3.2.2-7] for v5). A v5 client
 * is told why in a Reason String unless it asked not to be [MQTT-3.1.2-29].
 */
static void refuse(roost_conn *c, const connect_ctx *x, roost_err err, const char *why)
{
	const roost_connect *req = x ? &x->req : NULL;
	uint8_t version = req ? req->protocol_level : ROOST_MQTT_V311;
	uint8_t code = roost_err_reason_code(err, version);
	uint8_t pbuf[300];
	roost_props_writer w;
	roost_props_writer_init(&w, pbuf, sizeof pbuf);
	if (is_v5(req) && x->v5.problem_info)
		roost_props_put_bytes(&w, ROOST_PROP_REASON_STRING, why, strlen(why) > 250 ? 250 : strlen(why));
	send_connack(c, version, false, code, roost_props_writer_bytes(&w));
	/* Named by the id it asked for: no session exists yet. */
	size_t idlen = req && req->client_id.len < 128 ? req->client_id.len : 0;
	char line[512];
	snprintf(line, sizeof line, "CONNECT from client id '%.*s' refused (0x%02x): %s", (int)idlen,
	         idlen ? (const char *)req->client_id.ptr : "", code, why);
	conn_close_after_flush(c, line);
}

/* Step 1: decode. Returns false when the connection was closed or refused. */
static bool connect_decode(roost_conn *c, const uint8_t *pkt, size_t len, connect_ctx *x)
{
	roost_connect *req = &x->req;
	roost_codec_error e = {0};
	roost_err err = roost_decode_connect(pkt, len, req, &e);
	if (err == ROOST_ERR_UNSUPPORTED) {
		/* [MQTT-3.1.2-2] unacceptable protocol level: CONNACK 0x01, in
		 * the 3.1.1 form a client of an unknown version can read. */
		char why[64];
		snprintf(why, sizeof why, "protocol level %u not supported", req->protocol_level);
		refuse(c, NULL, ROOST_ERR_UNSUPPORTED, why);
		return false;
	}
	if (err && is_v5(req)) {
		/* [MQTT-4.13.1-1] a v5 server may answer a malformed CONNECT
		 * with CONNACK 0x81 (0x82 for a protocol error) before closing. */
		char why[200];
		snprintf(why, sizeof why, "malformed CONNECT: %s at byte %zu", e.why ? e.why : roost_err_str(e.err),
		         e.offset);
		refuse(c, x, e.err == ROOST_ERR_PROTOCOL ? ROOST_ERR_PROTOCOL : ROOST_ERR_MALFORMED, why);
		return false;
	}
	if (err) {
		/* [MQTT-3.1.4-1] a malformed CONNECT closes without CONNACK. */
		conn_close_codec(c, "malformed CONNECT", &e);
		return false;
	}
	return true;
}

/*
 * Step 1b: the v5 CONNECT and will properties (already validated by the
 * codec: types, multiplicity, 0/1 values, non-zero Receive Maximum and
 * Maximum Packet Size). A 3.1.1 client gets the defaults.
 */
static void connect_props(connect_ctx *x)
{
	roost_props_iter it;
	roost_prop p;
	roost_props_iter_init(&it, x->req.props);
	while (roost_props_next(&it, &p)) {
		switch (p.id) {
		case ROOST_PROP_SESSION_EXPIRY: x->v5.session_expiry = p.u32; break;
		case ROOST_PROP_RECEIVE_MAXIMUM: x->v5.receive_max = (uint16_t)p.u32; break;
		case ROOST_PROP_MAXIMUM_PACKET_SIZE: x->v5.max_packet = p.u32; break;
		case ROOST_PROP_TOPIC_ALIAS_MAXIMUM: x->v5.topic_alias_max = (uint16_t)p.u32; break;
		case ROOST_PROP_REQUEST_PROBLEM_INFO: x->v5.problem_info = p.u32 != 0; break;
		case ROOST_PROP_REQUEST_RESPONSE_INFO: x->v5.response_info = p.u32 != 0; break;
		case ROOST_PROP_AUTH_METHOD: x->auth_method = p.str; break;
		case ROOST_PROP_AUTH_DATA: x->auth_data = p.str; break;
		default: break; /* User Properties: nothing in roost reads them */
		}
	}
	roost_props_iter_init(&it, x->req.will_props);
	while (roost_props_next(&it, &p))
		if (p.id == ROOST_PROP_WILL_DELAY)
			x->will_delay = p.u32;
}

/* Step 2: check the client identifier and limits; may generate an id. */
static bool connect_check(roost_conn *c, connect_ctx *x)
{
	roost_broker *b = c->b;
	roost_connect *req = &x->req;
	const roost_limits_config *lim = &b->cfg->limits;
	if (req->client_id.len == 0) {
		/* [MQTT-3.1.3-8] (3.1.1) an empty id needs clean session; MQTT
		 * 3.1 does not allow an empty id at all; v5 allows it with either
		 * Clean Start [MQTT-3.1.3-6]. */
		if (!is_v5(req) && (!req->clean_start || req->protocol_level == ROOST_MQTT_V31)) {
			refuse(c, x, ROOST_ERR_BAD_CLIENT_ID, "empty client id without clean session");
			return false;
		}
		/* [MQTT-3.1.3-6] assign a unique id. */
		snprintf(x->generated, sizeof x->generated, "auto-%llx-%llx",
		         (unsigned long long)roost_clock_now(&b->clock), (unsigned long long)++b->generated_ids);
		req->client_id = (roost_bytes){(const uint8_t *)x->generated, strlen(x->generated)};
		x->assigned = true;
	}
	if (lim->max_keepalive && req->keepalive > lim->max_keepalive) {
		if (is_v5(req)) {
			/* [MQTT-3.2.2-21] v5: the server's keep alive replaces it. */
			x->server_keepalive = (uint16_t)lim->max_keepalive;
		} else {
			char why[96];
			snprintf(why, sizeof why, "keepalive %u exceeds limits.max_keepalive %u", req->keepalive,
			         lim->max_keepalive);
			refuse(c, x, ROOST_ERR_BAD_CLIENT_ID, why);
			return false;
		}
	}
	if (req->will_flag && !roost_topic_name_valid(req->will_topic.ptr, req->will_topic.len)) {
		/* [MQTT-3.1.3-11] the will topic is a topic name. */
		if (is_v5(req))
			refuse(c, x, ROOST_ERR_BAD_TOPIC, "invalid will topic [MQTT-3.1.3-11]");
		else
			conn_close(c, false, "invalid will topic [MQTT-3.1.3-11]");
		return false;
	}
	if (is_v5(req) && req->will_flag && req->will_qos > lim->max_qos) {
		refuse(c, x, ROOST_ERR_QOS_UNSUPPORTED, "will QoS above the server's Maximum QoS [MQTT-3.2.2-12]");
		return false;
	}
	if (is_v5(req) && req->will_flag && req->will_retain && !b->cfg->retain_available) {
		refuse(c, x, ROOST_ERR_RETAIN_UNSUPPORTED, "retained will while retain is not available [MQTT-3.2.2-13]");
		return false;
	}
	if (x->auth_method.ptr && !(x->hook = broker_authz_method_hook(b, x->auth_method.ptr, x->auth_method.len))) {
		/* [MQTT-4.12.0-1] no component implements this method. */
		refuse(c, x, ROOST_ERR_BAD_AUTH_METHOD, "authentication method not supported");
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
static bool connect_authenticate(roost_conn *c, connect_ctx *x, const uint8_t *pkt, size_t len,
                                 char cn[static 256], connect_verdict *v)
{
	roost_broker *b = c->b;
	roost_connect *req = &x->req;
	const char *gen_id = x->assigned ? x->generated : "";
	bool cert = false;
	if (c->listener->cfg->use_identity_as_username) {
		/* The verified certificate's CN is the user name; the TLS layer
		 * already refused clients without a certificate. */
		if (!broker_tls_peer_cn(c->bev, cn, 256)) {
			*v = (connect_verdict){ROOST_AUTH_DENY, ROOST_ERR_NOT_AUTHORIZED,
			                       "no usable client certificate (use_identity_as_username)"};
			return true;
		}
		req->username_flag = true;
		req->username = (roost_bytes){(const uint8_t *)cn, strlen(cn)};
		cert = true;
	}
	char *name = req->username_flag ? roost_strndup((const char *)req->username.ptr, req->username.len) : NULL;
	char *id = roost_strndup((const char *)req->client_id.ptr, req->client_id.len);
	const struct roost_auth_db *users = NULL;
	*v = (connect_verdict){ROOST_AUTH_DENY, ROOST_ERR_NOMEM, "out of memory"};
	if ((!req->username_flag || name) && id) {
		v->verdict = broker_authz_connect_decide(b, c, id, name, req->password.ptr, req->password.len, cert,
		                                         &users, &v->why);
		v->err = ROOST_ERR_NOT_AUTHORIZED; /* anyone not let in [MQTT-3.2.2-5] */
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
static bool connect_authorise(roost_conn *c, const connect_ctx *x, const connect_verdict *v, char **user)
{
	const roost_connect *req = &x->req;
	*user = NULL;
	if (v->verdict == ROOST_AUTH_DENY) {
		/* 0x04 (v5 0x86) for a wrong password, 0x05 (0x87) for anyone not let in. */
		refuse(c, x, v->err, v->why ? v->why : "refused");
		return false;
	}
	if (v->verdict != ROOST_AUTH_ALLOW || !req->username_flag)
		return true; /* admitted as anonymous */
	if (!(*user = roost_strndup((const char *)req->username.ptr, req->username.len))) {
		refuse(c, x, ROOST_ERR_NOMEM, "out of memory");
		return false;
	}
	return true; /* verified: an identity for ACLs */
}

/*
 * Step 4a: authorise the will as the PUBLISH it may become [MQTT-3.1.2-8]:
 * the same decision as a client's PUBLISH (topic limits, '$' rule, ACL),
 * for the identity just verified. A will the client may not publish is
 * refused now (3.1.1 CONNACK 0x05, v5 0x87), never dropped
 * silently later. It is decided again when it is published: rights can
 * shrink meanwhile (broker_authz_will).
 */
static bool connect_authorise_will(roost_conn *c, const connect_ctx *x, const char *user)
{
	const roost_connect *req = &x->req;
	if (!req->will_flag)
		return true;
	char *id = roost_strndup((const char *)req->client_id.ptr, req->client_id.len);
	if (!id) {
		refuse(c, x, ROOST_ERR_NOMEM, "out of memory");
		return false;
	}
	const char *why = NULL;
	roost_err err = broker_authz_publish(c->b, c, id, user, (const char *)req->will_topic.ptr,
	                                     req->will_topic.len, &why);
	roost_free(id);
	if (err == ROOST_OK)
		return true;
	char line[300];
	snprintf(line, sizeof line, "will on %.*s refused: %s", (int)(req->will_topic.len > 200 ? 200 : req->will_topic.len),
	         (const char *)req->will_topic.ptr, why);
	refuse(c, x, ROOST_ERR_NOT_AUTHORIZED, line);
	return false;
}

/*
 * Step 4b: a persistent session belongs to the user who created it: another
 * user connecting with its client id (to resume it, or with clean session 1
 * to take it over and discard it) is refused with CONNACK 0x05 (v5 0x87),
 * and the session stays its owner's.
 */
static bool connect_check_owner(roost_conn *c, const connect_ctx *x, const char *user)
{
	const roost_connect *req = &x->req;
	roost_session *s = broker_session_find(c->b, (const char *)req->client_id.ptr, req->client_id.len);
	if (!s || roost_session_clean(s) || roost_session_owned_by(s, user))
		return true;
	refuse(c, x, ROOST_ERR_NOT_AUTHORIZED,
	       user ? "this client id's persistent session belongs to another user"
	            : "this client id's persistent session belongs to a user; anonymous clients may not use it");
	return false;
}

/*
 * The session's lifetime as v5 puts it (MQTT 5.0 3.1.2.11.2): Session
 * Expiry Interval 0 ends it with the connection [MQTT-3.1.2-5]. A 3.1.1
 * client's clean session flag says the same. A persistent session resumed
 * with expiry 0 leaves the durable store now.
 */
static void session_set_lifetime(roost_broker *b, roost_session *s, const connect_ctx *x)
{
	bool clean = is_v5(&x->req) ? x->v5.session_expiry == 0 : x->req.clean_start;
	uint32_t expiry = b->cfg->limits.persistent_session_expiry;
	if (is_v5(&x->req))
		expiry = x->v5.session_expiry;
	else if (clean)
		expiry = 0;
	else if (expiry == 0) /* 0 = off: a 3.1.1 persistent session never expires */
		expiry = ROOST_SESSION_NEVER_EXPIRES;
	broker_session_set_expiry(b, s, expiry);
	broker_expiry_session_online(b, s); /* no countdown, no delayed will [MQTT-3.1.3-9] */
}

/* The will as the PUBLISH it may become: its properties minus the Will
 * Delay Interval, which is not a PUBLISH property (MQTT 5.0 3.1.3.2). */
static roost_msg *will_new(const roost_connect *req)
{
	uint8_t *props = req->will_props.len ? roost_malloc(req->will_props.len) : NULL;
	if (req->will_props.len && !props)
		return NULL;
	size_t n = 0;
	roost_props_iter it;
	roost_prop p;
	roost_props_iter_init(&it, req->will_props);
	const uint8_t *at = it.p;
	while (roost_props_next(&it, &p)) {
		if (p.id != ROOST_PROP_WILL_DELAY) {
			memcpy(props + n, at, (size_t)(it.p - at));
			n += (size_t)(it.p - at);
		}
		at = it.p;
	}
	roost_msg *m = roost_msg_new_props((const char *)req->will_topic.ptr, req->will_topic.len, props, n,
	                                   req->will_payload.ptr, req->will_payload.len, req->will_qos,
	                                   req->will_retain);
	roost_free(props);
	return m;
}

/* Step 5: attach a session, taking over any connection with the same id. */
static bool connect_apply(roost_conn *c, const connect_ctx *x, const char *user, bool *session_present)
{
	roost_broker *b = c->b;
	const roost_connect *req = &x->req;
	const char *id = (const char *)req->client_id.ptr;
	size_t id_len = req->client_id.len;
	roost_session *s = broker_session_find(b, id, id_len);
	if (s && roost_session_conn(s)) {
		/* [MQTT-3.1.4-2] the existing client is disconnected; its will
		 * is published, as for any close without DISCONNECT. */
		roost_conn *old = roost_session_conn(s);
		conn_disconnect(old, ROOST_RC5_SESSION_TAKEN_OVER, "session taken over by a new connection from %s",
		                c->addr);
		s = broker_session_find(b, id, id_len); /* a clean one is gone now */
	}
	if (s && req->clean_start) {
		/* [MQTT-3.1.2-6] clean session ([MQTT-3.1.2-4] Clean Start)
		 * discards any previous session; its delayed will, if any, is
		 * published as the session ends [MQTT-3.1.3-9]. */
		broker_session_end(b, s);
		s = NULL;
	}
	*session_present = s != NULL; /* [MQTT-3.2.2-1..3] */
	if (!s) {
		s = roost_session_new(id, id_len, is_v5(req) ? x->v5.session_expiry == 0 : req->clean_start);
		if (!s || broker_session_add(b, s) != ROOST_OK) {
			roost_session_free(s);
			refuse(c, x, ROOST_ERR_NOMEM, "out of memory creating the session");
			return false;
		}
		broker_store_session_added(b, s);
	}
	session_set_lifetime(b, s, x);
	if (req->will_flag) {
		/* [MQTT-3.1.2-9] store the will with the connection. */
		c->will = will_new(req);
		if (!c->will) {
			refuse(c, x, ROOST_ERR_NOMEM, "out of memory storing the will");
			return false;
		}
		c->will_delay = x->will_delay;
	}
	bool claimed = !roost_session_owner_known(s); /* new, or restored from a store without owners */
	if (roost_session_set_username(s, user, user ? strlen(user) : 0) != ROOST_OK) {
		refuse(c, x, ROOST_ERR_NOMEM, "out of memory");
		return false;
	}
	if (claimed)
		broker_store_session_owner(b, s); /* the owner survives restarts */
	c->session = s;
	c->b->stats.connects++;
	if (++c->b->stats.clients_connected > c->b->stats.clients_maximum)
		c->b->stats.clients_maximum = c->b->stats.clients_connected;
	c->version = req->protocol_level;
	c->keepalive = x->server_keepalive ? x->server_keepalive : req->keepalive;
	c->v5 = x->v5;
	c->state = CONN_ACTIVE;
	roost_session_set_conn(s, c);
	return true;
}

/* response_information with "{client id}" replaced by the client's id. */
static void put_response_info(roost_props_writer *w, const char *tmpl, const char *id)
{
	static const char key[] = "{client id}";
	char out[1024];
	size_t n = 0, idlen = strlen(id);
	for (const char *p = tmpl; *p && n < sizeof out; ) {
		if (strncmp(p, key, sizeof key - 1) == 0 && n + idlen <= sizeof out) {
			memcpy(out + n, id, idlen);
			n += idlen;
			p += sizeof key - 1;
		} else {
			out[n++] = *p++;
		}
	}
	roost_props_put_bytes(w, ROOST_PROP_RESPONSE_INFO, out, n);
}

/*
 * The CONNACK properties of an accepted v5 client (MQTT 5.0 3.2.2.3): what
 * roost allows, each only when it differs from the property's default, and
 * what it decided for the client.
 */
static void connack_props(roost_conn *c, const connect_ctx *x, roost_props_writer *w)
{
	const roost_config *cfg = c->b->cfg;
	const roost_limits_config *lim = &cfg->limits;
	if (lim->receive_maximum < 65535)
		roost_props_put_int(w, ROOST_PROP_RECEIVE_MAXIMUM, lim->receive_maximum);
	if (lim->max_qos < 2) /* [MQTT-3.2.2-9] sent only when below 2 */
		roost_props_put_int(w, ROOST_PROP_MAXIMUM_QOS, lim->max_qos);
	if (!cfg->retain_available)
		roost_props_put_int(w, ROOST_PROP_RETAIN_AVAILABLE, 0);
	if (lim->max_packet_size < ROOST_MQTT_MAX_REMAINING)
		roost_props_put_int(w, ROOST_PROP_MAXIMUM_PACKET_SIZE, lim->max_packet_size);
	if (x->assigned) /* [MQTT-3.2.2-16] */
		roost_props_put_bytes(w, ROOST_PROP_ASSIGNED_CLIENT_ID, x->req.client_id.ptr, x->req.client_id.len);
	if (lim->max_topic_alias)
		roost_props_put_int(w, ROOST_PROP_TOPIC_ALIAS_MAXIMUM, lim->max_topic_alias);
	/* Implemented by the publish side: said explicitly although absent
	 * means available. */
	roost_props_put_int(w, ROOST_PROP_WILDCARD_SUB_AVAILABLE, 1);
	roost_props_put_int(w, ROOST_PROP_SUB_ID_AVAILABLE, 1);
	roost_props_put_int(w, ROOST_PROP_SHARED_SUB_AVAILABLE, 1);
	if (x->server_keepalive) /* [MQTT-3.2.2-21] */
		roost_props_put_int(w, ROOST_PROP_SERVER_KEEPALIVE, x->server_keepalive);
	if (x->v5.response_info && cfg->response_information)
		put_response_info(w, cfg->response_information, conn_client_id(c));
	if (x->hook) { /* MQTT 5.0 3.2.2.3.17/18: the method, and the hook's last data */
		roost_props_put_bytes(w, ROOST_PROP_AUTH_METHOD, x->hook->auth_method, strlen(x->hook->auth_method));
		if (x->auth_out_len)
			roost_props_put_bytes(w, ROOST_PROP_AUTH_DATA, x->auth_out, x->auth_out_len);
	}
}

/* Step 6: respond. [MQTT-3.2.0-1] CONNACK is the first packet sent. */
static void connect_respond(roost_conn *c, const connect_ctx *x, bool present)
{
	uint8_t pbuf[2048];
	roost_props_writer w;
	roost_props_writer_init(&w, pbuf, sizeof pbuf);
	if (c->version == ROOST_MQTT_V5)
		connack_props(c, x, &w);
	if (w.overflow) {
		conn_close(c, false, "CONNACK properties do not fit");
		return;
	}
	send_connack(c, c->version, present, ROOST_CONNACK_ACCEPTED, roost_props_writer_bytes(&w));
}

static void resend_visit(void *ctx, roost_inflight *slot)
{
	roost_conn *c = ctx;
	if (slot->state == ROOST_INFLIGHT_WAIT_PUBCOMP)
		conn_send_ack(c, ROOST_MQTT_PUBREL, slot->packet_id);
	else
		conn_send_publish(c, slot->msg, slot->qos, slot->packet_id, true); /* [MQTT-3.3.1-1] DUP */
}

/* Steps 4-6, once the client is authenticated. */
static void connect_finish(roost_conn *c, const connect_ctx *x, const connect_verdict *v)
{
	char *user = NULL;
	bool present = false;
	bool ok = connect_authorise(c, x, v, &user) && connect_authorise_will(c, x, user) &&
	          connect_check_owner(c, x, user) && connect_apply(c, x, user, &present);
	roost_free(user);
	if (!ok)
		return;
	connect_respond(c, x, present);
	if (c->state != CONN_ACTIVE)
		return;
	const char *verified = roost_session_username(c->session);
	roost_log_info(c->b->log, "client %s (%s) connected: MQTT %s, clean %d, keepalive %u%s%s%s",
	               conn_client_id(c), c->addr,
	               c->version == ROOST_MQTT_V31 ? "3.1" : c->version == ROOST_MQTT_V5 ? "5" : "3.1.1",
	               x->req.clean_start, c->keepalive, present ? ", session resumed" : "",
	               verified ? ", user " : ", anonymous", verified ? verified : "");
	conn_arm_keepalive(c);
	/* [MQTT-4.4.0-1] resend unacknowledged PUBLISH and PUBREL packets with
	 * their original packet ids, then whatever waited in the queue. */
	roost_session_inflight_foreach(c->session, resend_visit, c);
	broker_session_pump(c->b, c->session);
	if (present)
		broker_sys_wake(c->b); /* its $SYS subscriptions, if any, are live again */
}

/* The v5 defaults, also for a 3.1.1 client and a CONNECT refused before its
 * properties are read. */
#define CONNECT_CTX_INIT {.v5 = {.receive_max = 65535, .problem_info = true}}

/* One step of the hook's exchange with data; the hook's answer (its data
 * in x->auth_out), ROOST_AUTH_STEP_FAIL without memory. */
static int auth_step(roost_conn *c, connect_ctx *x, roost_bytes data)
{
	const roost_auth_hook *h = x->hook;
	char *id = roost_strndup((const char *)x->req.client_id.ptr, x->req.client_id.len);
	if (!id)
		return ROOST_AUTH_STEP_FAIL;
	x->auth_out_len = 0;
	int r = h->auth_step(h->ctx, &c->auth_state, id, data.ptr, data.len, x->auth_out, sizeof x->auth_out,
	                     &x->auth_out_len);
	roost_free(id);
	if (x->auth_out_len > sizeof x->auth_out)
		return ROOST_AUTH_STEP_FAIL;
	return r;
}

/* The exchange is over: the hook's state goes. */
static void auth_end(roost_conn *c)
{
	if (c->auth_hook && c->auth_hook->auth_free && c->auth_state)
		c->auth_hook->auth_free(c->auth_hook->ctx, c->auth_state);
	c->auth_state = NULL;
	roost_free(c->auth_connect);
	c->auth_connect = NULL;
}

/*
 * Step 3 for a CONNECT with an Authentication Method (MQTT 5.0 4.12): the
 * hook's first step. CONTINUE keeps a copy of the CONNECT and sends AUTH
 * 0x18 [MQTT-4.12.0-2]; the exchange goes on in handle_connect_auth. A
 * success admits the client (verdict ALLOW); a failure is CONNACK 0x87.
 */
static bool connect_enhanced_auth(roost_conn *c, connect_ctx *x, roost_bytes data, const uint8_t *pkt,
                                  size_t len, connect_verdict *v)
{
	c->auth_hook = x->hook;
	int r = auth_step(c, x, data);
	if (r == ROOST_AUTH_STEP_CONTINUE) {
		if (!c->auth_connect && (c->auth_connect = roost_malloc(len))) {
			memcpy(c->auth_connect, pkt, len);
			c->auth_connect_len = len;
		}
		if (!c->auth_connect) {
			refuse(c, x, ROOST_ERR_NOMEM, "out of memory");
			return false;
		}
		c->version = ROOST_MQTT_V5; /* AUTH is framed and decoded as v5 */
		c->state = CONN_AUTH_EXCHANGE;
		conn_send_auth(c, ROOST_RC5_CONTINUE_AUTH, x->auth_out, x->auth_out_len);
		return false;
	}
	if (r != ROOST_AUTH_STEP_SUCCESS) {
		refuse(c, x, ROOST_ERR_NOT_AUTHORIZED, "enhanced authentication failed");
		auth_end(c); /* after refuse: x may point into the kept CONNECT */
		return false;
	}
	/* the caller ends the exchange (auth_end) once x, which may point
	 * into the kept CONNECT, is no longer needed */
	*v = (connect_verdict){ROOST_AUTH_ALLOW, ROOST_OK, NULL};
	return true;
}

void handle_connect(roost_conn *c, const uint8_t *pkt, size_t len)
{
	connect_ctx x = CONNECT_CTX_INIT;
	char cn[256];
	connect_verdict v;
	if (!connect_decode(c, pkt, len, &x))
		return;
	connect_props(&x);
	if (!connect_check(c, &x))
		return;
	bool authenticated = x.hook ? connect_enhanced_auth(c, &x, x.auth_data, pkt, len, &v)
	                            : connect_authenticate(c, &x, pkt, len, cn, &v);
	if (authenticated)
		connect_finish(c, &x, &v);
	if (authenticated && x.hook)
		auth_end(c);
}

void handle_connect_auth(roost_conn *c, roost_bytes data)
{
	connect_ctx x = CONNECT_CTX_INIT;
	roost_codec_error e = {0};
	connect_verdict v;
	/* The CONNECT decoded once already: it cannot fail now. */
	if (roost_decode_connect(c->auth_connect, c->auth_connect_len, &x.req, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed CONNECT", &e);
		return;
	}
	connect_props(&x);
	c->state = CONN_AWAIT_CONNECT; /* the checks run again, as for the first step */
	if (!connect_check(c, &x))
		return;
	if (x.hook != c->auth_hook) {
		refuse(c, &x, ROOST_ERR_PROTOCOL, "the authentication method changed");
		return;
	}
	if (connect_enhanced_auth(c, &x, data, NULL, 0, &v)) {
		connect_finish(c, &x, &v);
		auth_end(c);
	}
}

void handle_connect_resume(roost_conn *c, const uint8_t *pkt, size_t len, const char *gen_id,
                           const connect_verdict *v)
{
	connect_ctx x = CONNECT_CTX_INIT;
	roost_codec_error e = {0};
	c->state = CONN_AWAIT_CONNECT;
	/* Decoded once already: it cannot fail now. */
	if (roost_decode_connect(pkt, len, &x.req, &e) != ROOST_OK) {
		conn_close_codec(c, "malformed CONNECT", &e);
		return;
	}
	connect_props(&x);
	if (gen_id && *gen_id) {
		snprintf(x.generated, sizeof x.generated, "%s", gen_id);
		x.req.client_id = (roost_bytes){(const uint8_t *)x.generated, strlen(x.generated)};
		x.assigned = true;
	}
	/* The same checks again (they passed): they also decide Server Keep Alive. */
	if (!connect_check(c, &x))
		return;
	connect_finish(c, &x, v);
	if (c->state == CONN_ACTIVE) {
		/* Packets the client sent after its CONNECT waited unread. */
		bufferevent_enable(c->bev, EV_READ);
		bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	}
}

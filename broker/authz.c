/*
 * authz.c — who may connect, publish, subscribe and receive.
 *
 * The decisions are made by the pure modules (auth.c: password file,
 * acl.c: ACL file) and by component hooks; this file owns the loaded files,
 * their reload on SIGHUP, and the policy for anonymous clients:
 *  - allow_anonymous true: accepted on every listener; false: nowhere;
 *  - not set: accepted on loopback MQTT listeners only (never on a
 *    websockets one), and only while no password_file is configured. A
 *    LAN client is refused with CONNACK 0x05 and a log line naming the
 *    setting to change.
 * A user name is only an identity once a password_file (or a TLS client
 * certificate, or a hook) has verified it; without one, a client that sends
 * a user name is treated as anonymous, so it cannot claim another user's
 * ACL grants.
 */
#include <string.h>

#include "internal.h"
#include "roost/acl.h"
#include "roost/alloc.h"
#include "roost/auth.h"

struct hook_entry {
	struct hook_entry *next;
	const roost_auth_hook *hook;
};

roost_err roost_broker_auth_hook_add(roost_broker *b, const roost_auth_hook *hook)
{
	struct hook_entry *e = roost_calloc(1, sizeof *e);
	if (!e)
		return ROOST_ERR_NOMEM;
	e->hook = hook;
	struct hook_entry **pp = &b->hooks;
	while (*pp)
		pp = &(*pp)->next;
	*pp = e;
	return ROOST_OK;
}

void roost_broker_auth_hook_remove(roost_broker *b, const roost_auth_hook *hook)
{
	for (struct hook_entry **pp = &b->hooks; *pp; pp = &(*pp)->next) {
		if ((*pp)->hook == hook) {
			struct hook_entry *e = *pp;
			*pp = e->next;
			roost_free(e);
			return;
		}
	}
}

void broker_authz_free(roost_broker *b)
{
	while (b->hooks)
		roost_broker_auth_hook_remove(b, b->hooks->hook);
	roost_auth_free(b->users);
	roost_acl_free(b->acl);
	b->users = NULL;
	b->acl = NULL;
}

static void log_errors(roost_broker *b, const roost_config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		roost_log_error(b->log, "%s:%d: %s", errs->items[i].file, errs->items[i].line,
		                errs->items[i].message);
}

/* Load both files into users and acl; nothing is replaced on error. */
static roost_err load_files(roost_broker *b, roost_auth_db **users, roost_acl **acl)
{
	const roost_config *cfg = b->cfg;
	roost_config_errors errs = {0};
	*users = NULL;
	*acl = NULL;
	if (cfg->password_file && roost_auth_load_file(cfg->password_file, users, &errs) != ROOST_OK) {
		log_errors(b, &errs);
		roost_config_errors_cleanup(&errs);
		return ROOST_ERR_CONFIG;
	}
	roost_config_errors_cleanup(&errs);
	if (cfg->acl_file && roost_acl_load_file(cfg->acl_file, acl, &errs) != ROOST_OK) {
		log_errors(b, &errs);
		roost_config_errors_cleanup(&errs);
		roost_auth_free(*users);
		*users = NULL;
		return ROOST_ERR_CONFIG;
	}
	roost_config_errors_cleanup(&errs);
	return ROOST_OK;
}

roost_err roost_broker_load_auth(roost_broker *b)
{
	roost_err err = load_files(b, &b->users, &b->acl);
	if (!err && (b->users || b->acl))
		roost_log_info(b->log, "auth: %zu users, %zu ACL rules", b->users ? roost_auth_count(b->users) : 0,
		               b->acl ? roost_acl_count(b->acl) : 0);
	return err;
}

typedef struct revoke_ctx {
	roost_broker *b;
	roost_session *s;
	char **drop;
	size_t n, cap;
} revoke_ctx;

static bool collect_revoked(void *arg, const char *filter, size_t len, uint8_t options)
{
	(void)options;
	revoke_ctx *r = arg;
	if (broker_authz_topic(r->b, r->s, filter, len, ROOST_ACL_SUBSCRIBE))
		return true;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		char **n = roost_realloc(r->drop, cap * sizeof *n);
		if (!n)
			return false;
		r->drop = n;
		r->cap = cap;
	}
	if ((r->drop[r->n] = roost_strndup(filter, len)))
		r->n++;
	return true;
}

/* Remove every subscription the current ACL no longer grants. */
static void revoke_subscriptions(roost_broker *b)
{
	for (session_entry *e = b->sessions; e; e = e->hh.next) {
		revoke_ctx r = {b, e->s, NULL, 0, 0};
		roost_session_sub_foreach(e->s, collect_revoked, &r);
		for (size_t i = 0; i < r.n; i++) {
			size_t len = strlen(r.drop[i]);
			roost_topic_tree_unsubscribe(b->tree, r.drop[i], len, e->s);
			roost_session_sub_remove(e->s, r.drop[i], len);
			roost_log_notice(b->log, "client %s: subscription %s revoked by the reloaded acl_file",
			                 roost_session_client_id(e->s), r.drop[i]);
			roost_free(r.drop[i]);
		}
		roost_free(r.drop);
	}
}

bool broker_authz_will(roost_broker *b, roost_conn *c)
{
	if (!c->will || !c->session)
		return true;
	const char *why = NULL;
	roost_session *s = c->session;
	if (broker_authz_publish(b, roost_session_client_id(s), roost_session_username(s), c->will->topic,
	                         c->will->topic_len, &why) == ROOST_OK)
		return true;
	roost_log_notice(b->log, "client %s: will on %.*s dropped: %s", roost_session_client_id(s),
	                 c->will->topic_len > 200 ? 200 : (int)c->will->topic_len, c->will->topic, why);
	roost_msg_unref(c->will);
	c->will = NULL;
	return false;
}

/* Drop every will its client may no longer publish: the files only change
 * here, so for them this is the decision at publish time. */
static void revoke_wills(roost_broker *b)
{
	for (roost_conn *c = b->conns; c; c = c->next)
		if (c->state == CONN_ACTIVE)
			broker_authz_will(b, c);
}

void roost_broker_reload_auth(roost_broker *b)
{
	if (!b->cfg->password_file && !b->cfg->acl_file)
		return;
	roost_auth_db *users;
	roost_acl *acl;
	if (load_files(b, &users, &acl) != ROOST_OK) {
		roost_log_error(b->log, "auth: reload failed; keeping the previous password and ACL files");
		return;
	}
	roost_auth_free(b->users);
	roost_acl_free(b->acl);
	b->users = users;
	b->acl = acl;
	roost_log_notice(b->log, "auth: reloaded (%zu users, %zu ACL rules)", users ? roost_auth_count(users) : 0,
	                 acl ? roost_acl_count(acl) : 0);
	if (acl)
		revoke_subscriptions(b);
	revoke_wills(b);
}

/* ---- decisions ---- */

int broker_authz_connect(roost_broker *b, roost_conn *c, const char *client_id, const char *username,
                         const uint8_t *password, size_t plen, bool cert_identity, const char **why)
{
	bool loopback = c->listener && c->listener->loopback;
	/* A websockets listener is never trusted as loopback: any web page in a
	 * browser on this host may open ws://127.0.0.1 for its visitor. */
	bool web = c->listener && c->listener->cfg && c->listener->cfg->protocol == ROOST_LISTENER_WEBSOCKETS;
	loopback = loopback && !web;
	for (struct hook_entry *e = b->hooks; e; e = e->next) {
		if (!e->hook->connect)
			continue;
		int v = e->hook->connect(e->hook->ctx, client_id, username, password, plen, loopback);
		if (v != ROOST_AUTH_DEFER) {
			*why = "refused by an authentication component";
			return v;
		}
	}
	if (username && cert_identity)
		return ROOST_AUTH_ALLOW; /* verified by the TLS layer */
	if (username && b->users) {
		/* [MQTT-3.1.3-11] user names are UTF-8; the password is binary. */
		if (roost_auth_check(b->users, username, (const char *)password, plen))
			return ROOST_AUTH_ALLOW;
		*why = "bad user name or password";
		return ROOST_AUTH_DENY;
	}
	/* Anonymous (or an unverifiable user name: no password_file). */
	int policy = b->cfg->allow_anonymous;
	if (policy == 1 || (policy == -1 && !b->users && loopback))
		return ROOST_AUTH_DEFER; /* admitted, as anonymous */
	*why = policy == 0 ? "anonymous clients are refused (allow_anonymous: false)"
	       : b->users ? "anonymous clients are refused because a password_file is set; "
	                    "set allow_anonymous: true to accept them too"
	       : web ? "anonymous clients are not accepted on a websockets listener unless allow_anonymous: "
	               "true is set (a web page on this host could connect on its visitor's behalf); or add "
	               "users with `roost passwd` and set password_file"
	                  : "anonymous clients are accepted on loopback listeners only; set "
	                    "allow_anonymous: true in the configuration to accept them on this "
	                    "listener, or add users with `roost passwd` and set password_file";
	return ROOST_AUTH_DENY;
}

/* The hooks, then (with use_file) the acl_file, decide for one identity. */
static bool topic_allowed(roost_broker *b, const char *client_id, const char *username, const char *topic,
                          size_t len, int access, bool use_file)
{
	for (struct hook_entry *e = b->hooks; e; e = e->next) {
		if (!e->hook->acl)
			continue;
		int v = e->hook->acl(e->hook->ctx, client_id, username, topic, len, access);
		if (v != ROOST_AUTH_DEFER)
			return v == ROOST_AUTH_ALLOW;
	}
	if (!b->acl || !use_file)
		return true;
	return roost_acl_check(b->acl, client_id, username, topic, len, access);
}

bool broker_authz_topic(roost_broker *b, roost_session *s, const char *topic, size_t len, int access)
{
	return topic_allowed(b, roost_session_client_id(s), roost_session_username(s), topic, len, access, true);
}

/*
 * [MQTT-4.7.2-1] '$' topics belong to the broker. The one exception is a
 * bridge's notification topic for its own connection,
 * $SYS/broker/connection/<its client id>/state, which other brokers
 * (Mosquitto's bridges) publish into the broker they connect to.
 */
static bool dollar_allowed(const char *client_id, const char *topic, size_t len)
{
	static const char pre[] = "$SYS/broker/connection/", post[] = "/state";
	if (len == 0 || topic[0] != '$')
		return true;
	if (!client_id)
		return false; /* components publish no '$' topics */
	size_t id = strlen(client_id), np = sizeof pre - 1, ns = sizeof post - 1;
	return len == np + id + ns && memcmp(topic, pre, np) == 0 && memcmp(topic + np, client_id, id) == 0 &&
	       memcmp(topic + np + id, post, ns) == 0;
}

roost_err broker_authz_publish(roost_broker *b, const char *client_id, const char *username, const char *topic,
                               size_t len, const char **why)
{
	if (!roost_topic_name_valid((const uint8_t *)topic, len)) {
		*why = "not a valid topic name";
		return ROOST_ERR_BAD_TOPIC;
	}
	const roost_limits_config *lim = &b->cfg->limits;
	roost_err err = roost_topic_check_limits(topic, len, lim->max_topic_levels, lim->max_topic_length, why);
	if (err)
		return err;
	if (!dollar_allowed(client_id, topic, len)) {
		*why = "$ topics are reserved for the broker";
		return ROOST_ERR_NOT_AUTHORIZED;
	}
	/* A component has no entry in the acl_file (it is not an MQTT client,
	 * so not anonymous either); the hooks decide for it, as "$component". */
	bool ok = topic_allowed(b, client_id ? client_id : "$component", username, topic, len, ROOST_ACL_WRITE,
	                        client_id != NULL);
	if (!ok) {
		*why = "denied by the ACL";
		return ROOST_ERR_NOT_AUTHORIZED;
	}
	return ROOST_OK;
}

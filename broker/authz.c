/*
 * authz.c — who may connect, publish, subscribe and receive.
 *
 * The decisions are made by the pure modules (auth.c: password file,
 * acl.c: ACL file) and by component hooks; this file owns the loaded files,
 * their reload on SIGHUP, and the policy for anonymous clients, judged by
 * the client's PEER address (roost_auth_anonymous_allowed):
 *  - allow_anonymous true: accepted from everywhere; false: from nowhere;
 *  - not set: accepted from this machine (a loopback peer) on any MQTT
 *    listener (never over WebSockets), also once users exist. A LAN client is refused with CONNACK 0x05 and a
 *    log line naming the setting to change and `roost passwd NAME`.
 * A user name is only an identity once a password_file (or a TLS client
 * certificate, or a hook) has verified it; without one, a client that sends
 * a user name is treated as anonymous, so it cannot claim another user's
 * ACL grants.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "roost/acl.h"
#include "roost/alloc.h"
#include "roost/auth.h"
#include "roost/passwd_cmd.h"

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

/* Everything loaded from the files, swapped in as one. */
typedef struct loaded {
	roost_auth_db *users;  /* top level */
	roost_acl *acl;
	listener_auth *per;    /* one per cfg->listeners: its own files */
} loaded;

static void free_loaded(roost_broker *b, const loaded *l)
{
	roost_auth_free(l->users);
	roost_acl_free(l->acl);
	for (size_t i = 0; l->per && i < b->cfg->n_listeners; i++) {
		roost_auth_free(l->per[i].users);
		roost_acl_free(l->per[i].acl);
	}
	roost_free(l->per);
}

void broker_authz_free(roost_broker *b)
{
	broker_connect_auth_free(b);
	while (b->hooks)
		roost_broker_auth_hook_remove(b, b->hooks->hook);
	free_loaded(b, &(loaded){b->users, b->acl, b->listener_auth});
	b->users = NULL;
	b->acl = NULL;
	b->listener_auth = NULL;
	broker_auth_watch_free(b->auth_watch);
	b->auth_watch = NULL;
	roost_free(b->password_path);
	b->password_path = NULL;
}

static void log_errors(roost_broker *b, const roost_config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		roost_log_error(b->log, "%s:%d: %s", errs->items[i].file, errs->items[i].line,
		                errs->items[i].message);
}

/* Load a password file into *users; a missing default file is no users. */
static roost_err load_users(roost_broker *b, const char *path, bool optional, roost_auth_db **users)
{
	roost_config_errors errs = {0};
	struct stat st;
	*users = NULL;
	if (!path || (optional && stat(path, &st) != 0 && errno == ENOENT))
		return ROOST_OK;
	roost_err err = roost_auth_load_file(path, users, &errs);
	log_errors(b, &errs);
	roost_config_errors_cleanup(&errs);
	return err ? ROOST_ERR_CONFIG : ROOST_OK;
}

static roost_err load_acl(roost_broker *b, const char *path, roost_acl **acl)
{
	roost_config_errors errs = {0};
	*acl = NULL;
	if (!path)
		return ROOST_OK;
	roost_err err = roost_acl_load_file(path, acl, &errs);
	log_errors(b, &errs);
	roost_config_errors_cleanup(&errs);
	return err ? ROOST_ERR_CONFIG : ROOST_OK;
}

/* Load every file (top level, then each listener's own) into *l; nothing
 * is kept on error. */
static roost_err load_all(roost_broker *b, loaded *l)
{
	const roost_config *cfg = b->cfg;
	*l = (loaded){0};
	if (!(l->per = roost_calloc(cfg->n_listeners, sizeof *l->per)))
		return ROOST_ERR_NOMEM;
	bool ok = load_users(b, b->password_path, !cfg->password_file, &l->users) == ROOST_OK &&
	          load_acl(b, cfg->acl_file, &l->acl) == ROOST_OK;
	for (size_t i = 0; ok && i < cfg->n_listeners; i++)
		ok = load_users(b, cfg->listeners[i].password_file, false, &l->per[i].users) == ROOST_OK &&
		     load_acl(b, cfg->listeners[i].acl_file, &l->per[i].acl) == ROOST_OK;
	if (ok)
		return ROOST_OK;
	free_loaded(b, l);
	*l = (loaded){0};
	return ROOST_ERR_CONFIG;
}

static void install(roost_broker *b, const loaded *l)
{
	broker_connect_auth_reloaded(b); /* no cached verification outlives its file */
	free_loaded(b, &(loaded){b->users, b->acl, b->listener_auth});
	b->users = l->users;
	b->acl = l->acl;
	b->listener_auth = l->per;
}

static size_t count_rules(const roost_broker *b)
{
	size_t n = b->acl ? roost_acl_count(b->acl) : 0;
	for (size_t i = 0; i < b->cfg->n_listeners; i++)
		n += b->listener_auth[i].acl ? roost_acl_count(b->listener_auth[i].acl) : 0;
	return n;
}

/* password_file, or `passwd` beside the store when it is not set. */
static roost_err resolve_paths(roost_broker *b)
{
	roost_free(b->password_path);
	b->password_path = b->cfg->password_file ? roost_strdup(b->cfg->password_file)
	                                         : roost_passwd_default_path(b->cfg);
	return b->password_path ? ROOST_OK : ROOST_ERR_NOMEM;
}

static void on_file_changed(roost_broker *b)
{
	roost_log_notice(b->log, "auth: a password file changed");
	roost_broker_reload_auth(b);
}

/* Every password file: the top level's and the listeners' own. */
static void watch_files(roost_broker *b)
{
	const char **paths = roost_calloc(1 + b->cfg->n_listeners, sizeof *paths);
	size_t n = 0;
	broker_auth_watch_free(b->auth_watch);
	b->auth_watch = NULL;
	if (!paths)
		return; /* out of memory: SIGHUP still reloads */
	paths[n++] = b->password_path;
	for (size_t i = 0; i < b->cfg->n_listeners; i++)
		if (b->cfg->listeners[i].password_file)
			paths[n++] = b->cfg->listeners[i].password_file;
	b->auth_watch = broker_auth_watch_new(b, paths, n, on_file_changed);
	roost_free(paths);
}

/* The startup line that says who may connect (prefix: "" or a listener). */
static void log_policy(roost_broker *b, const char *prefix, int policy, const roost_auth_db *db)
{
	size_t n = db ? roost_auth_count(db) : 0;
	char users[96];
	if (n)
		snprintf(users, sizeof users, "one of %zu user%s (roost passwd NAME adds one)", n, n == 1 ? "" : "s");
	else
		snprintf(users, sizeof users, "a user: roost passwd NAME");
	switch (policy) {
	case 1:
		roost_log_notice(b->log, "%sanonymous: everyone (allow_anonymous: true); %zu user%s", prefix, n,
		                 n == 1 ? "" : "s");
		break;
	case 0:
		roost_log_notice(b->log, "%sanonymous: nobody (allow_anonymous: false); every client needs %s", prefix,
		                 users);
		break;
	default:
		roost_log_notice(b->log, "%sanonymous: this machine only; LAN clients need %s", prefix, users);
	}
}

/* One line for the top level; one more per listener with settings of its own. */
static void log_who_may_connect(roost_broker *b)
{
	log_policy(b, "", b->cfg->allow_anonymous, b->users);
	for (size_t i = 0; i < b->cfg->n_listeners; i++) {
		const roost_listener_config *lc = &b->cfg->listeners[i];
		if (lc->allow_anonymous == -1 && !lc->password_file)
			continue;
		char prefix[48];
		snprintf(prefix, sizeof prefix, "listeners[%zu]: ", i);
		log_policy(b, prefix, lc->allow_anonymous != -1 ? lc->allow_anonymous : b->cfg->allow_anonymous,
		           b->listener_auth[i].users ? b->listener_auth[i].users : b->users);
	}
}

roost_err roost_broker_load_auth(roost_broker *b)
{
	roost_err err = resolve_paths(b);
	if (err)
		return err;
	loaded l;
	err = load_all(b, &l);
	if (err)
		return err;
	install(b, &l);
	roost_log_info(b->log, "auth: %zu users from %s%s, %zu ACL rules", b->users ? roost_auth_count(b->users) : 0,
	               b->password_path, b->users || b->cfg->password_file ? "" : " (no such file yet)",
	               count_rules(b));
	log_who_may_connect(b);
	watch_files(b);
	return ROOST_OK;
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
	if (broker_authz_publish(b, c, roost_session_client_id(s), roost_session_username(s), c->will->topic,
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
	if (!b->password_path)
		return; /* never loaded */
	loaded l;
	if (load_all(b, &l) != ROOST_OK) {
		roost_log_error(b->log, "auth: reload failed; keeping the previous password and ACL files");
		return;
	}
	install(b, &l);
	roost_log_notice(b->log, "auth: reloaded (%zu users, %zu ACL rules)", b->users ? roost_auth_count(b->users) : 0,
	                 count_rules(b));
	if (broker_authz_has_rules(b))
		revoke_subscriptions(b);
	revoke_wills(b);
}

/* ---- decisions ---- */

/* The files of c's listener's own, or NULL (none, or c has no listener). */
static const listener_auth *own_files(const roost_broker *b, const roost_conn *c)
{
	const roost_listener_config *lc = c && c->listener ? c->listener->cfg : NULL;
	for (size_t i = 0; lc && b->listener_auth && i < b->cfg->n_listeners; i++)
		if (&b->cfg->listeners[i] == lc)
			return &b->listener_auth[i];
	return NULL;
}

const struct roost_auth_db *broker_authz_users(const roost_broker *b, const roost_conn *c)
{
	const listener_auth *own = own_files(b, c);
	return own && own->users ? own->users : b->users;
}

const struct roost_acl *broker_authz_acl(const roost_broker *b, const roost_conn *c)
{
	const listener_auth *own = own_files(b, c);
	return own && own->acl ? own->acl : b->acl;
}

int broker_authz_allow_anonymous(const roost_broker *b, const roost_conn *c)
{
	const roost_listener_config *lc = c && c->listener ? c->listener->cfg : NULL;
	return lc && lc->allow_anonymous != -1 ? lc->allow_anonymous : b->cfg->allow_anonymous;
}

bool broker_authz_has_rules(const roost_broker *b)
{
	if (b->acl || b->hooks)
		return true;
	for (size_t i = 0; b->listener_auth && i < b->cfg->n_listeners; i++)
		if (b->listener_auth[i].acl)
			return true;
	return false;
}

int broker_authz_connect_decide(roost_broker *b, roost_conn *c, const char *client_id, const char *username,
                                const uint8_t *password, size_t plen, bool cert_identity,
                                const struct roost_auth_db **users, const char **why)
{
	/* A websockets client is never "this machine": any web page open in a
	 * browser here may reach ws://127.0.0.1 on its visitor's behalf. */
	bool local = c->peer_loopback && !c->ws;
	for (struct hook_entry *e = b->hooks; e; e = e->next) {
		if (!e->hook->connect)
			continue;
		int v = e->hook->connect(e->hook->ctx, client_id, username, password, plen, local);
		if (v != ROOST_AUTH_DEFER) {
			*why = "refused by an authentication component";
			return v;
		}
	}
	if (username && cert_identity)
		return ROOST_AUTH_ALLOW; /* verified by the TLS layer */
	*users = broker_authz_users(b, c);
	if (username && *users)
		return ROOST_AUTH_VERIFY; /* [MQTT-3.1.3-11] user names are UTF-8; the password is binary */
	/* Anonymous (or an unverifiable user name: no password_file). */
	int policy = broker_authz_allow_anonymous(b, c);
	if (roost_auth_anonymous_allowed(policy, local))
		return ROOST_AUTH_DEFER; /* admitted, as anonymous */
	*why = policy == 0 ? "anonymous clients are refused (allow_anonymous: false)"
	       : c->ws ? "anonymous clients are not accepted on a websockets listener unless allow_anonymous: "
	                 "true is set (a web page on this host could connect on its visitor's behalf); or add "
	                 "a user with `roost passwd NAME`"
	                   : "anonymous clients are accepted from this machine only; set "
	                     "allow_anonymous: true in the configuration to accept them from "
	                     "the LAN too, or add a user with `roost passwd NAME`";
	return ROOST_AUTH_DENY;
}

int broker_authz_connect(roost_broker *b, roost_conn *c, const char *client_id, const char *username,
                         const uint8_t *password, size_t plen, bool cert_identity, const char **why)
{
	const roost_auth_db *users = NULL;
	int v = broker_authz_connect_decide(b, c, client_id, username, password, plen, cert_identity, &users, why);
	if (v != ROOST_AUTH_VERIFY)
		return v;
	if (roost_auth_check(users, username, (const char *)password, plen))
		return ROOST_AUTH_ALLOW;
	*why = "bad user name or password";
	return ROOST_AUTH_DENY;
}

/* The hooks, then the ACL file that applies (acl: the client's listener's
 * own, else the top-level one; NULL for a component), decide for one identity. */
static bool topic_allowed(roost_broker *b, const roost_acl *acl, const char *client_id, const char *username,
                          const char *topic, size_t len, int access)
{
	for (struct hook_entry *e = b->hooks; e; e = e->next) {
		if (!e->hook->acl)
			continue;
		int v = e->hook->acl(e->hook->ctx, client_id, username, topic, len, access);
		if (v != ROOST_AUTH_DEFER)
			return v == ROOST_AUTH_ALLOW;
	}
	if (!acl)
		return true;
	return roost_acl_check(acl, client_id, username, topic, len, access);
}

bool broker_authz_topic(roost_broker *b, roost_session *s, const char *topic, size_t len, int access)
{
	return topic_allowed(b, broker_authz_acl(b, roost_session_conn(s)), roost_session_client_id(s),
	                     roost_session_username(s), topic, len, access);
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

roost_err broker_authz_publish(roost_broker *b, const roost_conn *c, const char *client_id, const char *username,
                               const char *topic, size_t len, const char **why)
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
	const roost_acl *acl = client_id ? broker_authz_acl(b, c) : NULL;
	bool ok = topic_allowed(b, acl, client_id ? client_id : "$component", username, topic, len, ROOST_ACL_WRITE);
	if (!ok) {
		*why = "denied by the ACL";
		return ROOST_ERR_NOT_AUTHORIZED;
	}
	return ROOST_OK;
}

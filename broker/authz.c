/*
 * authz.c — who may connect, publish, subscribe and receive.
 *
 * The decisions are made by the pure modules (auth.c: password file,
 * acl.c: ACL file) and by component hooks; this file owns the loaded files,
 * their reload on SIGHUP, and the policy for anonymous clients, judged by
 * the client's PEER address (roost_auth_anonymous_allowed):
 *  - allow_anonymous true: accepted from everywhere; false: from nowhere;
 *  - not set: accepted from this machine (a loopback peer) on any listener,
 *    also once users exist. A LAN client is refused with CONNACK 0x05 and a
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

void broker_authz_free(roost_broker *b)
{
	while (b->hooks)
		roost_broker_auth_hook_remove(b, b->hooks->hook);
	roost_auth_free(b->users);
	roost_acl_free(b->acl);
	b->users = NULL;
	b->acl = NULL;
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

/* Load both files into users and acl; nothing is replaced on error. */
static roost_err load_files(roost_broker *b, roost_auth_db **users, roost_acl **acl)
{
	*acl = NULL;
	if (load_users(b, b->password_path, !b->cfg->password_file, users) != ROOST_OK)
		return ROOST_ERR_CONFIG;
	if (load_acl(b, b->cfg->acl_file, acl) != ROOST_OK) {
		roost_auth_free(*users);
		*users = NULL;
		return ROOST_ERR_CONFIG;
	}
	return ROOST_OK;
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
	roost_log_notice(b->log, "auth: %s changed", b->password_path);
	roost_broker_reload_auth(b);
}

static void watch_files(roost_broker *b)
{
	const char *paths[] = {b->password_path};
	broker_auth_watch_free(b->auth_watch);
	b->auth_watch = broker_auth_watch_new(b, paths, 1, on_file_changed);
}

/* The one startup line that says who may connect. */
static void log_who_may_connect(roost_broker *b)
{
	size_t n = b->users ? roost_auth_count(b->users) : 0;
	char users[96];
	if (n)
		snprintf(users, sizeof users, "one of %zu user%s (roost passwd NAME adds one)", n, n == 1 ? "" : "s");
	else
		snprintf(users, sizeof users, "a user: roost passwd NAME");
	switch (b->cfg->allow_anonymous) {
	case 1:
		roost_log_notice(b->log, "anonymous: everyone (allow_anonymous: true); %zu user%s", n, n == 1 ? "" : "s");
		break;
	case 0:
		roost_log_notice(b->log, "anonymous: nobody (allow_anonymous: false); every client needs %s", users);
		break;
	default:
		roost_log_notice(b->log, "anonymous: this machine only; LAN clients need %s", users);
	}
}

roost_err roost_broker_load_auth(roost_broker *b)
{
	roost_err err = resolve_paths(b);
	if (err)
		return err;
	err = load_files(b, &b->users, &b->acl);
	if (!err && (b->users || b->acl))
		roost_log_info(b->log, "auth: %zu users, %zu ACL rules", b->users ? roost_auth_count(b->users) : 0,
		               b->acl ? roost_acl_count(b->acl) : 0);
	if (!err) {
		log_who_may_connect(b);
		watch_files(b);
	}
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

void roost_broker_reload_auth(roost_broker *b)
{
	if (!b->password_path)
		return; /* never loaded */
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
}

/* ---- decisions ---- */

int broker_authz_connect(roost_broker *b, roost_conn *c, const char *client_id, const char *username,
                         const uint8_t *password, size_t plen, bool cert_identity, const char **why)
{
	for (struct hook_entry *e = b->hooks; e; e = e->next) {
		if (!e->hook->connect)
			continue;
		int v = e->hook->connect(e->hook->ctx, client_id, username, password, plen, c->peer_loopback);
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
	if (roost_auth_anonymous_allowed(policy, c->peer_loopback))
		return ROOST_AUTH_DEFER; /* admitted, as anonymous */
	*why = policy == 0 ? "anonymous clients are refused (allow_anonymous: false)"
	                   : "anonymous clients are accepted from this machine only; set "
	                     "allow_anonymous: true in the configuration to accept them from "
	                     "the LAN too, or add a user with `roost passwd NAME`";
	return ROOST_AUTH_DENY;
}

bool broker_authz_topic(roost_broker *b, roost_session *s, const char *topic, size_t len, int access)
{
	const char *username = roost_session_username(s);
	const char *client_id = roost_session_client_id(s);
	for (struct hook_entry *e = b->hooks; e; e = e->next) {
		if (!e->hook->acl)
			continue;
		int v = e->hook->acl(e->hook->ctx, client_id, username, topic, len, access);
		if (v != ROOST_AUTH_DEFER)
			return v == ROOST_AUTH_ALLOW;
	}
	if (!b->acl)
		return true;
	return roost_acl_check(b->acl, client_id, username, topic, len, access);
}

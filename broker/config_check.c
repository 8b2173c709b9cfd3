/*
 * config_check.c — `roost --test-config`'s second half: load what the
 * configuration points at, the way the daemon will, and list each problem as
 * "FILE: message". Nothing here starts a listener or opens the store.
 */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "roost/acl.h"
#include "roost/alloc.h"
#include "roost/auth.h"
#include "roost/config_check.h"
#include "roost/passwd_cmd.h"
#include "roost/persist.h"

/* Move a loader's own list (which it resets on entry) onto ours. */
static int take_errors(roost_config_errors *errs, roost_config_errors *from, const char *file,
                       roost_err err)
{
	int rc = 0;
	for (size_t i = 0; i < from->count && rc == 0; i++)
		rc = roost_config_errors_add(errs, from->items[i].file, from->items[i].line,
		                             from->items[i].message);
	if (err && from->count == 0 && rc == 0)
		rc = roost_config_errors_add(errs, file, 0, roost_err_str(err));
	roost_config_errors_cleanup(from);
	return rc;
}

static int check_passwords(const char *path, roost_config_errors *errs)
{
	roost_config_errors mine = {0};
	roost_auth_db *db = NULL;
	roost_err err = roost_auth_load_file(path, &db, &mine);
	roost_auth_free(db);
	return take_errors(errs, &mine, path, err);
}

static int check_acl(const char *path, roost_config_errors *errs)
{
	roost_config_errors mine = {0};
	roost_acl *acl = NULL;
	roost_err err = roost_acl_load_file(path, &acl, &mine);
	roost_acl_free(acl);
	return take_errors(errs, &mine, path, err);
}

/* "FILE: what: OpenSSL's reason" (or errno's, when the file is not there). */
static int tls_problem(roost_config_errors *errs, const char *file, const char *what)
{
	char msg[512];
	unsigned long e = ERR_peek_error(); /* the first is the cause: "no start line" */
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	if (access(file, R_OK) != 0)
		why = strerror(errno);
	snprintf(msg, sizeof msg, "%s: %s", what, why ? why : "rejected by OpenSSL");
	ERR_clear_error();
	return roost_config_errors_add(errs, file, 0, msg);
}

/* Load chain and key into a scratch context, as tls.c will, and match them. */
static int check_tls(const roost_listener_config *lc, roost_config_errors *errs)
{
	if (!lc->keyfile)
		return 0; /* the YAML parser already requires keyfile with certfile */
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -1;
	int rc = 0;
	char what[600];
	if (SSL_CTX_use_certificate_chain_file(ctx, lc->certfile) != 1) {
		rc = tls_problem(errs, lc->certfile, "cannot load the certificate chain (certfile)");
	} else if (SSL_CTX_use_PrivateKey_file(ctx, lc->keyfile, SSL_FILETYPE_PEM) != 1 ||
	           SSL_CTX_check_private_key(ctx) != 1) {
		/* OpenSSL 3 already compares the key with the certificate on load. */
		bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
		snprintf(what, sizeof what, "private key does not match the certificate in %s", lc->certfile);
		rc = tls_problem(errs, lc->keyfile, mismatch ? what : "cannot load the private key (keyfile)");
	}
	if (rc == 0 && lc->cafile && SSL_CTX_load_verify_locations(ctx, lc->cafile, NULL) != 1)
		rc = tls_problem(errs, lc->cafile, "cannot load the CA certificates (cafile)");
	SSL_CTX_free(ctx);
	return rc;
}

/* The store lives where the persist module says (persistence.path, or a
 * directory holding roost.db, relative to $STATE_DIRECTORY under systemd):
 * that directory must be writable, or missing with a writable parent (roost
 * creates it at start). */
static int check_store_dir(const char *configured, roost_config_errors *errs)
{
	char dir[PATH_MAX];
	if (roost_persist_resolve_dir(configured, dir, sizeof dir) != ROOST_OK)
		return roost_config_errors_add(errs, configured, 0, "persistence.path is too long");
	struct stat st;
	char parent[PATH_MAX];
	const char *need = dir;
	if (stat(dir, &st) != 0 && errno == ENOENT) {
		snprintf(parent, sizeof parent, "%s", dir);
		need = dirname(parent); /* created at start when the parent is writable */
	}
	if (access(need, W_OK) == 0)
		return 0;
	char msg[PATH_MAX + 100];
	if (need == dir)
		snprintf(msg, sizeof msg, "the store's directory is not writable (persistence.path): %s", strerror(errno));
	else
		snprintf(msg, sizeof msg, "the store's directory is missing and not writable to create "
		         "(persistence.path): %s: %s", need, strerror(errno));
	return roost_config_errors_add(errs, dir, 0, msg);
}

roost_err roost_config_check_files(const roost_config *cfg, roost_config_errors *errs)
{
	int rc = 0;
	if (cfg->password_file) {
		rc |= check_passwords(cfg->password_file, errs);
	} else {
		/* The default file beside the store: missing means no users. */
		char *def = roost_passwd_default_path(cfg);
		if (def && access(def, F_OK) == 0)
			rc |= check_passwords(def, errs);
		roost_free(def);
	}
	if (cfg->acl_file)
		rc |= check_acl(cfg->acl_file, errs);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const roost_listener_config *lc = &cfg->listeners[i];
		if (lc->password_file)
			rc |= check_passwords(lc->password_file, errs);
		if (lc->acl_file)
			rc |= check_acl(lc->acl_file, errs);
		if (lc->certfile)
			rc |= check_tls(lc, errs);
	}
	if (cfg->persistence.enabled)
		rc |= check_store_dir(cfg->persistence.path, errs);
	if (rc)
		return ROOST_ERR_NOMEM;
	return errs->count ? ROOST_ERR_CONFIG : ROOST_OK;
}

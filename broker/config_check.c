/*
 * config_check.c — `roost --test-config`'s second half: load what the
 * configuration points at, the way the daemon will, and list each problem as
 * "FILE: message". Nothing here starts a listener or opens the store.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "roost/acl.h"
#include "roost/auth.h"
#include "roost/config_check.h"

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

/* The store is created in persistence.path's directory (or in the path
 * itself when it is a directory): that directory must exist and be writable. */
static int check_store_dir(const char *path, roost_config_errors *errs)
{
	char buf[4096];
	struct stat st;
	snprintf(buf, sizeof buf, "%s", path);
	const char *dir = (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? buf : dirname(buf);
	if (access(dir, W_OK) == 0)
		return 0;
	char msg[300];
	snprintf(msg, sizeof msg, "the store's directory (persistence.path %s) is not writable: %s",
	         path, strerror(errno));
	return roost_config_errors_add(errs, dir, 0, msg);
}

roost_err roost_config_check_files(const roost_config *cfg, roost_config_errors *errs)
{
	int rc = 0;
	if (cfg->password_file)
		rc |= check_passwords(cfg->password_file, errs);
	if (cfg->acl_file)
		rc |= check_acl(cfg->acl_file, errs);
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (cfg->listeners[i].certfile)
			rc |= check_tls(&cfg->listeners[i], errs);
	if (cfg->persistence.enabled && cfg->persistence.path)
		rc |= check_store_dir(cfg->persistence.path, errs);
	if (rc)
		return ROOST_ERR_NOMEM;
	return errs->count ? ROOST_ERR_CONFIG : ROOST_OK;
}

/*
 * tls.c — TLS listener contexts (OpenSSL 3).
 *
 * One SSL_CTX per TLS listener, built from its certfile/keyfile/cafile.
 * Minimum TLS 1.2 (or 1.3 by tls_version); cipher list configurable for TLS
 * 1.2. A reload builds a fresh context from the files and swaps it in for new
 * connections: existing connections keep the context they were accepted
 * with (each SSL object holds a reference), so nobody is dropped, and a
 * reload that fails (a missing or mismatched key) keeps the old context.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "internal.h"

static void log_ssl_errors(const roost_log *log, const char *what)
{
	unsigned long e;
	char buf[256];
	int any = 0;
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		roost_log_error(log, "%s: %s", what, buf);
		any = 1;
	}
	if (!any)
		roost_log_error(log, "%s", what);
}

SSL_CTX *broker_tls_ctx_new(const roost_listener_config *lc, const roost_log *log)
{
	char what[600];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		log_ssl_errors(log, "TLS: cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, lc->tls_version ? TLS1_3_VERSION : TLS1_2_VERSION);
	/* No renegotiation, no compression, server picks the cipher. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (lc->ciphers && SSL_CTX_set_cipher_list(ctx, lc->ciphers) != 1) {
		snprintf(what, sizeof what, "TLS listener port %d: ciphers '%s' rejected", lc->port, lc->ciphers);
		goto fail;
	}
	if (!lc->keyfile) {
		snprintf(what, sizeof what, "TLS listener port %d: certfile needs a keyfile", lc->port);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, lc->certfile) != 1) {
		snprintf(what, sizeof what, "TLS listener port %d: cannot load certfile %s", lc->port, lc->certfile);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, lc->keyfile, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof what, "TLS listener port %d: keyfile %s cannot be used with %s", lc->port,
		         lc->keyfile, lc->certfile);
		goto fail;
	}
	if (lc->cafile) {
		if (SSL_CTX_load_verify_locations(ctx, lc->cafile, NULL) != 1) {
			snprintf(what, sizeof what, "TLS listener port %d: cannot load cafile %s", lc->port, lc->cafile);
			goto fail;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(lc->cafile);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (lc->require_certificate || lc->use_identity_as_username) {
		if (!lc->cafile) {
			snprintf(what, sizeof what,
			         "TLS listener port %d: require_certificate/use_identity_as_username need a cafile",
			         lc->port);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	} else if (lc->cafile) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* optional, verified if sent */
	}
	return ctx;
fail:
	log_ssl_errors(log, what);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The certificate subject's CN, for use_identity_as_username. */
bool broker_tls_peer_cn(struct bufferevent *bev, char *out, size_t cap)
{
	/* On a wss listener the TLS bufferevent is under the WebSocket filter. */
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (!ssl && bufferevent_get_underlying(bev))
		ssl = bufferevent_openssl_get_ssl(bufferevent_get_underlying(bev));
	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return false;
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)cap);
	X509_free(cert);
	/* Refuse a CN with an embedded NUL or nothing at all. */
	return n > 0 && (size_t)n < cap && strlen(out) == (size_t)n;
}

/*
 * config_check.h — what `roost --test-config` checks beyond the YAML: the
 * files a parsed configuration points at.
 *
 * The password and ACL files are parsed by their own loaders, every TLS
 * listener's certificate chain and key are loaded and matched by OpenSSL, and
 * the store's directory must be writable (unless persistence is off). Each
 * problem is appended to an error list as "FILE: message" (with the line
 * where the loader gives one), the same list the YAML parser fills.
 */
#ifndef ROOST_CONFIG_CHECK_H
#define ROOST_CONFIG_CHECK_H

#include "roost/config.h"
#include "roost/error.h"

/* ROOST_OK when everything loads; ROOST_ERR_CONFIG with every problem in
 * *errs (which the caller frees with roost_config_errors_cleanup);
 * ROOST_ERR_NOMEM when the list could not grow. */
roost_err roost_config_check_files(const roost_config *cfg, roost_config_errors *errs);

#endif

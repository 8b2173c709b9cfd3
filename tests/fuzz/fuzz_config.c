/*
 * fuzz_config.c — libFuzzer target for the YAML configuration parser.
 *
 * Zero setup: each input is parsed as a whole roost.yaml. Besides the
 * sanitizers' own checks, it asserts the contract of
 * roost_config_load_string(): success means a config with at least one
 * listener and no errors; failure means no config and, unless memory ran
 * out, at least one error. The errors are also printed (to /dev/null) so the
 * message formatting runs on every input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "roost/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	roost_config *cfg = NULL;
	roost_config_errors errs;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	roost_err err = roost_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &errs);
	if (err == ROOST_OK) {
		/* listeners[].bind may be NULL: not set, the dual-stack default. */
		if (!cfg || cfg->n_listeners == 0 || cfg->listeners[0].port < 0 || cfg->listeners[0].port > 65535 ||
		    errs.count != 0)
			abort();
	} else {
		if (cfg || (err == ROOST_ERR_CONFIG && errs.count == 0))
			abort();
		if (devnull)
			roost_config_errors_print(&errs, devnull);
	}
	roost_config_free(cfg);
	roost_config_errors_cleanup(&errs);
	return 0;
}

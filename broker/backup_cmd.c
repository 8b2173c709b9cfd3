/*
 * backup_cmd.c — `roost backup OUT [-c roost.yaml]`: the command-line half;
 * the copy itself is roost_persist_backup(), the function the store uses
 * before a schema migration.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "roost/backup_cmd.h"
#include "roost/config.h"
#include "roost/log.h"
#include "roost/persist.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: roost backup OUT [-c roost.yaml]\n"
	           "\n"
	           "Copies the store named by persistence.path (of roost.yaml, else the\n"
	           "defaults) to OUT, consistently, while roost runs.\n");
}

/* The copy, once the arguments are known. */
static int backup(const roost_config *cfg, const char *out)
{
	if (!cfg->persistence.enabled) {
		fprintf(stderr, "roost backup: persistence.enabled is false: there is no store to copy\n");
		return 2;
	}
	char src[PATH_MAX];
	if (roost_persist_resolve_path(cfg->persistence.path, src, sizeof src) != ROOST_OK ||
	    strcmp(src, ":memory:") == 0) {
		fprintf(stderr, "roost backup: persistence.path %s: not a file that can be copied\n",
		        cfg->persistence.path);
		return 2;
	}
	if (access(src, R_OK) != 0) {
		perror(src);
		return 1;
	}
	roost_log log = {.level = ROOST_LOG_WARNING, .write = roost_log_stderr};
	if (roost_persist_backup(src, out, NULL, &log) != ROOST_OK)
		return 1;
	fprintf(stderr, "roost backup: copied %s to %s\n", src, out);
	return 0;
}

int roost_backup_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return 2;
	}
	roost_config *cfg = NULL;
	int rc = roost_config_load_cli("roost backup", config_path, &cfg);
	if (!rc)
		rc = backup(cfg, argv[optind]);
	roost_config_free(cfg);
	return rc;
}

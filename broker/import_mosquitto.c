/*
 * import_mosquitto.c — `roost import-mosquitto`: the command line (see
 * include/roost/import_mosquitto.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "roost/config.h"
#include "roost/import_mosquitto.h"

#include "import_mosquitto.h"

#define PROG "roost import-mosquitto"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: roost import-mosquitto MOSQUITTO.CONF > roost.yaml\n"
	        "       roost import-mosquitto --db MOSQUITTO.DB [-c ROOST.YAML]\n"
	        "\n"
	        "  MOSQUITTO.CONF  print the equivalent roost configuration; what cannot\n"
	        "              be carried over is a warning FILE:LINE on stderr\n"
	        "  --db FILE   load Mosquitto's retained messages and persistent sessions\n"
	        "              into the store ROOST.YAML names (default: the embedded\n"
	        "              defaults' store); stop roost first\n"
	        "  -c FILE     roost's configuration\n");
}

int roost_import_mosquitto_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = NULL, *config = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': db = optarg; break;
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!db && optind == argc - 1 && !config)
		return roost_import_mosquitto_conf(argv[optind]);
	if (!db || optind != argc) {
		usage(stderr);
		return 2;
	}
	roost_config *cfg = NULL;
	int rc = roost_config_load_cli("roost import-mosquitto", config, &cfg);
	if (rc == 0)
		rc = roost_import_mosquitto_db(db, cfg);
	roost_config_free(cfg);
	return rc;
}

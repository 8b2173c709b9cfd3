/*
 * main.c — the roost daemon: command line, configuration, signals, loop.
 * The only place that exits.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "roost/backup_cmd.h"
#include "roost/daemon.h"
#include "roost/component.h"
#include "roost/config.h"
#include "roost/config_check.h"
#include "roost/import_mosquitto.h"
#include "roost/log.h"
#include "roost/passwd_cmd.h"
#include "sdnotify.h"

#include "config.h"

/* The linked components, NULL-terminated (connector/components.c). */
extern const roost_component *const roost_components[];

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: roost [-c FILE] [-p PORT] [--test-config]\n"
	        "       roost COMMAND ARGS...\n"
	        "  -c, --config FILE   configuration file (default: embedded defaults)\n"
	        "  -p, --port PORT     override the first listener's port\n"
	        "      --test-config   check the configuration and the files it names\n"
	        "                      (passwords, ACL, certificates, store directory);\n"
	        "                      exit 0 ok, 2 errors\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n"
	        "commands (roost COMMAND --help for their options):\n"
	        "  passwd [FILE] USER              add or change a user in a password file\n"
	        "  backup OUT [-c FILE]            copy the live store to OUT\n"
	        "  import-mosquitto [--db DB] [-c FILE] [MOSQUITTO.CONF]\n"
	        "                                  print a mosquitto.conf as roost YAML, or\n"
	        "                                  load mosquitto.db into the store\n");
}

typedef struct run_ctx {
	struct event_base *base;
	roost_broker *broker;
	const roost_log *log;
	roost_sdnotify *sd;
} run_ctx;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	run_ctx *r = arg;
	roost_log_notice(r->log, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	roost_sdnotify_stopping(r->sd);
	roost_broker_shutdown(r->broker);
	event_base_loopexit(r->base, NULL);
}

/* SIGHUP: re-read certificates (and, with them, the files they name)
 * without dropping anyone. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	run_ctx *r = arg;
	roost_log_notice(r->log, "received SIGHUP, reloading certificates, password and ACL files");
	roost_broker_reload_tls(r->broker);
	roost_broker_reload_auth(r->broker);
}

/* --test-config after the YAML parsed: the files it names, then exit. */
static int test_config(const char *path, roost_config *cfg)
{
	roost_config_errors errs = {0};
	roost_err err = roost_config_check_files(cfg, &errs);
	roost_config_errors_print(&errs, stderr);
	roost_config_errors_cleanup(&errs);
	roost_config_free(cfg);
	if (err) {
		if (err != ROOST_ERR_CONFIG)
			fprintf(stderr, "roost: --test-config: %s\n", roost_err_str(err));
		return 2;
	}
	printf("%s: configuration ok\n", path ? path : "(defaults)");
	return 0;
}

int main(int argc, char **argv)
{
	/* `roost passwd ...` manages password files (Mosquitto's format). */
	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return roost_passwd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "backup") == 0)
		return roost_backup_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "import-mosquitto") == 0)
		return roost_import_mosquitto_main(argc - 1, argv + 1);
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"port", required_argument, NULL, 'p'},
		{"test-config", no_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	long port = -1;
	bool test_only = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:p:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'p': {
			char *end;
			errno = 0;
			port = strtol(optarg, &end, 10);
			if (errno || *end || port < 0 || port > 65535) {
				fprintf(stderr, "roost: -p: '%s' is not a port number (0-65535)\n", optarg);
				return 2;
			}
			break;
		}
		case 't': test_only = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("roost %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "roost: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	roost_config *cfg = NULL;
	int rc = roost_config_load_cli("roost", config_path, &cfg);
	if (rc)
		return rc;
	if (test_only)
		return test_config(config_path, cfg);
	if (port >= 0)
		cfg->listeners[0].port = (int)port;

	/* Under systemd, priority prefixes let `journalctl -p err` filter. */
	roost_log log = {.level = (roost_log_level)cfg->log_level,
	                 .write = roost_log_stderr_is_journal() ? roost_log_journal : roost_log_stderr};
	signal(SIGPIPE, SIG_IGN);
	struct event_base *base = event_base_new();
	roost_broker *broker = base ? roost_broker_new(base, cfg, &log, roost_clock_system()) : NULL;
	if (!broker) {
		roost_log_error(&log, "out of memory starting the broker");
		return 1;
	}
	roost_log_notice(&log, "roost %s starting (config: %s)", PACKAGE_VERSION,
	                 config_path ? config_path : "embedded defaults");
	/* Signals are caught from here on: a SIGTERM during startup is handled
	 * as soon as the loop runs, as a clean shutdown. */
	run_ctx r = {base, broker, &log, roost_sdnotify_new(base, broker, &log, roost_clock_system())};
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, &r);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, &r);
	struct event *sighup = evsignal_new(base, SIGHUP, on_hup, &r);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_add(sighup, NULL);
	rc = 0;
	size_t n_started = 0;
	void *states[16] = {0};
	bool running[sizeof states / sizeof states[0]] = {0};
	/* Everything stored is loaded before a client can connect. */
	if (roost_broker_load_auth(broker) != ROOST_OK || roost_broker_open_store(broker) != ROOST_OK ||
	    roost_broker_listen(broker) != ROOST_OK) {
		rc = 1;
		goto stop;
	}
	/* Components (component.h): an optional one that cannot start is left
	 * out and MQTT is served without it; a configuration error, or a
	 * required component failing, stops the daemon. */
	for (; roost_components[n_started]; n_started++) {
		const roost_component *comp = roost_components[n_started];
		assert(n_started < sizeof states / sizeof states[0]);
		roost_err err = comp->start(broker, &states[n_started]);
		running[n_started] = err == ROOST_OK;
		if (err && comp->optional && err != ROOST_ERR_CONFIG) {
			roost_log_warn(&log, "component %s could not start (%s): roost runs without it",
			               comp->name, roost_err_str(err));
		} else if (err) {
			roost_log_error(&log, "component %s failed to start: %s", comp->name, roost_err_str(err));
			rc = 1;
			goto stop;
		}
	}
	roost_sdnotify_ready(r.sd);
	event_base_dispatch(base);
stop:
	while (n_started > 0) {
		n_started--;
		if (running[n_started])
			roost_components[n_started]->stop(states[n_started]);
	}
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	roost_log_notice(&log, "roost stopped");
	roost_sdnotify_free(r.sd);
	roost_broker_free(broker);
	event_base_free(base);
	roost_config_free(cfg);
	return rc;
}

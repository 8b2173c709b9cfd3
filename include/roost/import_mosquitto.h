/*
 * import_mosquitto.h — `roost import-mosquitto`: a way in from Mosquitto.
 *
 *   roost import-mosquitto MOSQUITTO.CONF
 *       prints the equivalent roost.yaml on stdout; what cannot be carried
 *       over is a warning "FILE:LINE: ..." on stderr
 *   roost import-mosquitto --db MOSQUITTO.DB [-c ROOST.YAML]
 *       loads Mosquitto's retained messages and persistent sessions (with
 *       their subscriptions and queued QoS 1/2 messages) into the store that
 *       ROOST.YAML names (without -c: the embedded defaults' store)
 *
 * Exit status: 0 done (warnings included), 1 failed (out of memory, the
 * store could not be written), 2 the input is broken or refused (file
 * unreadable, a line Mosquitto rejects, not a mosquitto.db, a format
 * version roost does not read, the store in use); messages name FILE:LINE
 * or FILE: offset N. Owns no state: callable several times in a process.
 */
#ifndef ROOST_IMPORT_MOSQUITTO_H
#define ROOST_IMPORT_MOSQUITTO_H

/* argv[0] is the subcommand name ("import-mosquitto"): main() calls
 * roost_import_mosquitto_main(argc - 1, argv + 1). */
int roost_import_mosquitto_main(int argc, char **argv);

#endif

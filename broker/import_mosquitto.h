/*
 * import_mosquitto.h (broker-internal) — the two halves of
 * `roost import-mosquitto` (include/roost/import_mosquitto.h), each
 * returning the command's exit status.
 */
#ifndef ROOST_BROKER_IMPORT_MOSQUITTO_H
#define ROOST_BROKER_IMPORT_MOSQUITTO_H

#include "roost/config.h"

/* mosquitto.db -> the store cfg names (import_mosquitto_db.c). */
int roost_import_mosquitto_db(const char *db_path, const roost_config *cfg);

/* mosquitto.conf -> roost YAML on stdout (import_mosquitto_conf.c). */
int roost_import_mosquitto_conf(const char *conf_path);

#endif

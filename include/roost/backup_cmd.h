/*
 * backup_cmd.h — `roost backup`: a consistent copy of the live store.
 *
 *   roost backup OUT [-c roost.yaml]
 *
 * Reads persistence.path from the configuration (the embedded defaults
 * without -c; resolved as the daemon does, $STATE_DIRECTORY included) and
 * copies that database to OUT with SQLite's online backup
 * (roost_persist_backup): from a separate read-only connection, while roost
 * runs, without roost's lock. OUT is written beside as OUT.tmp and renamed,
 * so it is whole or absent. Restore: stop roost, replace the database file
 * with the copy (removing its -wal and -shm), start roost.
 *
 * Messages go to stderr. Owns no state.
 */
#ifndef ROOST_BACKUP_CMD_H
#define ROOST_BACKUP_CMD_H

/*
 * argv[0] is the subcommand name ("backup"): main() calls
 * roost_backup_main(argc - 1, argv + 1). Returns the exit status: 0 copied,
 * 1 failed (OUT not written), 2 usage or configuration error.
 */
int roost_backup_main(int argc, char **argv);

#endif

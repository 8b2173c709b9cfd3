/*
 * passwd_cmd.h — `roost passwd`: manage a Mosquitto-compatible password file.
 *
 *   roost passwd [-c] [-I ITERATIONS] FILE USER            prompt twice on the tty
 *   roost passwd [-c] [-I ITERATIONS] -b FILE USER PASSWORD batch
 *   roost passwd -D FILE USER                              delete USER
 *   roost passwd [--config CONFIG] [-b|-D] USER [PASSWORD] the default file
 *
 * Without FILE the file is roost_passwd_default_path() of CONFIG (or of the
 * embedded defaults): the one the daemon reads when password_file is not
 * set. It is created when missing, with mode 0640 and group `roost` when
 * that group exists (the daemon's own user reads it on an installed system).
 *
 * -c creates FILE or overwrites it with just USER (as mosquitto_passwd -c);
 * without -c FILE must exist. Lines are written as $7$ PBKDF2-SHA512 with
 * ROOST_AUTH_DEFAULT_ITERATIONS unless -I says otherwise, so both roost and
 * Mosquitto 2.x read the file. Every other line stays byte for byte and in
 * order. The new file is written beside the old one, fsync'ed, given mode
 * 0600 (and the old file's owner when run as root) and renamed over it, so a
 * reader sees the old file or the new one, never a mix. A symbolic link is
 * followed: its target is replaced, the link stays.
 *
 * The prompt reads from /dev/tty with echo off when there is one, otherwise
 * two lines from standard input (for scripts; prefer -b there).
 *
 * Messages go to stderr. Owns no state: callable several times in a process.
 */
#ifndef ROOST_PASSWD_CMD_H
#define ROOST_PASSWD_CMD_H

#include "roost/config.h"

/*
 * argv[0] is the subcommand name ("passwd"), options follow: main() calls
 * roost_passwd_main(argc - 1, argv + 1) for `roost passwd ...`. Returns the
 * process exit status: 0 done, 1 failed (nothing written), 2 usage error.
 */
int roost_passwd_main(int argc, char **argv);

/*
 * The password file read when password_file is not set: `passwd` in the
 * store's directory — $STATE_DIRECTORY (its first entry) while
 * persistence.path is the default, else persistence.path when it is a
 * directory, else the database file's directory. A new string (roost_free);
 * NULL when out of memory. Reads the environment and stats the path.
 */
char *roost_passwd_default_path(const roost_config *cfg);

#endif

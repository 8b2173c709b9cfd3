/*
 * passwd_cmd.h — `roost passwd`: manage a Mosquitto-compatible password file.
 *
 *   roost passwd [-c] [-I ITERATIONS] FILE USER            prompt twice on the tty
 *   roost passwd [-c] [-I ITERATIONS] -b FILE USER PASSWORD batch
 *   roost passwd -D FILE USER                              delete USER
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

/*
 * argv[0] is the subcommand name ("passwd"), options follow: main() calls
 * roost_passwd_main(argc - 1, argv + 1) for `roost passwd ...`. Returns the
 * process exit status: 0 done, 1 failed (nothing written), 2 usage error.
 */
int roost_passwd_main(int argc, char **argv);

#endif

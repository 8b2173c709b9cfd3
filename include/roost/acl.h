/*
 * acl.h — who may read, write and subscribe to which topics: Mosquitto's
 * acl_file, loaded once and then asked pure questions.
 *
 * File syntax (Mosquitto 2.x; one entry per line, blanks around the line and
 * between words ignored, '#' as the first non-blank character starts a
 * comment line, "\r\n" accepted):
 *
 *   topic   [read|write|readwrite|deny] <filter>
 *   pattern [read|write|readwrite|deny] <filter>
 *   user    <username>
 *
 * With one word after the keyword, that word is the filter and the access is
 * readwrite ("topic read" grants readwrite on the topic "read", as in
 * Mosquitto). With more, the first is the access word and the rest of the
 * line, spaces included, is the filter. Filters follow MQTT's filter syntax
 * ('+' and '#' fill whole levels, '#' last).
 *
 *   - `topic` lines before any `user` line apply to anonymous clients only;
 *     after `user NAME` they apply to that user only (blocks of the same name
 *     add up). Users without a block get no `topic` entries.
 *   - `pattern` lines apply to every client, wherever they appear. In them a
 *     level that is exactly "%c" stands for the client id and exactly "%u"
 *     for the username; "%c" inside a longer level ("dev_%c") is literal text
 *     (Mosquitto's documentation requires a whole level). A %u pattern does
 *     not apply to anonymous clients.
 *   - The substituted id or name is literal text for one level: it never acts
 *     as a wildcard. Mosquitto denies clients whose id or username holds '+'
 *     or '#' when patterns exist; roost is finer and fails closed: for such a
 *     value (or one holding '/', or a NULL client id) a pattern *grant* never
 *     applies, and a pattern *deny* applies as if the level were '+'. So such
 *     a client can never gain access through a pattern, nor escape one.
 *
 * Decision (roost_acl_check), "deny first": the entries that apply to the
 * client are its block (or the anonymous block) plus every pattern. If any
 * deny entry matches, the answer is no; otherwise yes if any entry granting
 * the asked access matches; otherwise no — with an acl_file, whatever is not
 * granted is denied. (Mosquitto 2.0 checks the user's own block before the
 * patterns, so there a user grant can beat a pattern deny; in roost a deny
 * always wins.)
 *
 *   ROOST_ACL_WRITE      a PUBLISH to this topic name; needs write.
 *   ROOST_ACL_READ       delivering a message on this topic name, including
 *                        retained ones; needs read.
 *   ROOST_ACL_SUBSCRIBE  a SUBSCRIBE with this filter; needs read. The filter
 *                        is granted when an entry's filter *covers* it: every
 *                        topic the subscription can match is matched by the
 *                        entry. Compared level by level: entry '#' covers the
 *                        rest (also a '#'), entry '+' covers any one level
 *                        except '#', a literal level only the same literal.
 *                        So `sensors/#` covers `sensors/+/temp`, and `a/+`
 *                        does not cover `a/#`. A deny refuses the subscription
 *                        only when it covers the whole filter; a deny on part
 *                        of it (`deny sensors/secret` under `sensors/#`) is
 *                        enforced by the READ check on each delivery, which
 *                        the broker must therefore always make.
 *
 * '$' topics: an entry whose first level is '+' or '#' does not match a topic
 * or filter beginning with '$' [MQTT-4.7.2-1], so `topic read #` does not
 * reveal $SYS; grant `$SYS/#` explicitly. Otherwise $ topics are ordinary.
 *
 * Matching of topic entries against topic names is roost_topic_matches()
 * (topic.h), the reference matcher; patterns and subscriptions use a level
 * matcher here that agrees with it wherever both apply (the fuzzer checks).
 *
 * A loaded roost_acl is immutable and owns all its strings; a reload builds a
 * new one and the broker swaps pointers. roost_acl_check does no I/O and no
 * allocation, so it is safe on the hot path and cannot fail open.
 */
#ifndef ROOST_ACL_H
#define ROOST_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "roost/config.h"
#include "roost/error.h"

enum {
	ROOST_ACL_READ = 1,
	ROOST_ACL_WRITE = 2,
	ROOST_ACL_SUBSCRIBE = 4,
};

/* Filters are MQTT strings: at most 65535 bytes. */
#define ROOST_ACL_MAX_TOPIC 65535

typedef struct roost_acl roost_acl;

/*
 * Parse the acl_file at path. On success *out is a new ACL (possibly empty,
 * which denies everything) and errs->count is 0. On failure returns
 * ROOST_ERR_CONFIG (every problem in *errs as "file:line: message"),
 * ROOST_ERR_IO (one error with line 0) or ROOST_ERR_NOMEM (errs may be
 * partial), and *out is NULL. *errs is reset on entry; the caller frees it
 * with roost_config_errors_cleanup().
 */
roost_err roost_acl_load_file(const char *path, roost_acl **out, roost_config_errors *errs);

/* The same from memory; name is used in error messages. */
roost_err roost_acl_load_string(const char *name, const char *text, size_t len, roost_acl **out,
                                roost_config_errors *errs);

void roost_acl_free(roost_acl *acl);

/* Number of topic and pattern entries loaded. */
size_t roost_acl_count(const roost_acl *acl);

/*
 * May this client do `access` (one of ROOST_ACL_*) on topic (len bytes: a
 * topic name for READ/WRITE, a filter for SUBSCRIBE, already accepted by
 * roost_topic_name_valid/roost_topic_filter_valid)? username NULL means an
 * anonymous client; client_id is NUL-terminated. acl must not be NULL: with
 * no acl_file configured the broker does not call this. An unknown access
 * value is denied.
 */
bool roost_acl_check(const roost_acl *acl, const char *client_id, const char *username, const char *topic,
                     size_t len, int access);

#endif

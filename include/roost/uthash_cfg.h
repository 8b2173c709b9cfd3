/*
 * uthash_cfg.h — uthash configured once for all of roost.
 *
 * Include this instead of <uthash.h>. Allocation goes through roost_malloc
 * so allocation-failure tests reach hash insertions too; an allocation failure
 * inside a uthash macro cannot be reported, so HASH_NONFATAL_OOM makes the
 * macros leave the table unchanged and set the flag our wrappers check.
 */
#ifndef ROOST_UTHASH_CFG_H
#define ROOST_UTHASH_CFG_H

#include "roost/alloc.h"

#define uthash_malloc(sz) roost_malloc(sz)
#define uthash_free(ptr, sz) roost_free(ptr)
#define HASH_NONFATAL_OOM 1
/* Start tables at 4 buckets, not uthash's 32: most tables in roost (a node's
 * children, a session's subscriptions) hold a handful of entries, and 32
 * buckets cost ~600 bytes each. Tables still double as they fill. */
#define HASH_INITIAL_NUM_BUCKETS 4U
#define HASH_INITIAL_NUM_BUCKETS_LOG2 2U
#define uthash_nonfatal_oom(elt) roost_uthash_oom_flag = 1
/* Per-translation-unit flag, reset by the caller before each HASH_ADD. */
static int roost_uthash_oom_flag __attribute__((unused));

#include <uthash.h>

#endif

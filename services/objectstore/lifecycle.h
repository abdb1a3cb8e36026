/* lifecycle.h - S3 bucket lifecycle rules: the configuration document (parse with S3's
 * checks and error codes, write back), which rule applies to which object version, and
 * when it is due. Pure functions over JSON (no database, no storage), so that the
 * expiration pass (lifecycle_pass.c) and the unit tests (tests/unit/test_lifecycle.c)
 * share one definition of what a rule means.
 *
 * A configuration is kept as a JSON array of rules, one object each:
 *   "id"       the rule's ID (generated when the document has none)
 *   "enabled"  Status Enabled (true) or Disabled (false)
 *   "prefix"   the legacy top-level <Prefix> (the rule then has no "filter")
 *   "filter"   {"prefix", "tags": [{"Key", "Value"}], "gt", "lt", "and": true when the
 *              document used <And>}: every member present must match
 *   "exp"      Expiration {"days"} | {"date": ISO text, "t": Unix seconds} | {"dm": bool}
 *   "nc"       NoncurrentVersionExpiration {"days", "newer"}
 *   "abort"    AbortIncompleteMultipartUpload {"days"}
 *
 * Due times follow S3: a number of days counts from the version's creation (for a
 * noncurrent version: from its successor's creation; for an upload: from its initiation)
 * and is rounded up to the next midnight UTC. "Midnight" is a multiple of day_seconds
 * since the epoch: 86400 in service, smaller in tests (objectstore.lifecycle.day_seconds). */
#ifndef VIRGA_OBJECTSTORE_LIFECYCLE_H
#define VIRGA_OBJECTSTORE_LIFECYCLE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LC_MAX_RULES 1000
#define LC_MAX_ID 255
#define LC_MAX_PREFIX 1024

/* A LifecycleConfiguration document into rules (a new array). MalformedXML,
 * InvalidArgument, InvalidRequest as S3 answers them; NotImplemented (501) for the
 * transition actions (one storage class here). */
int lc_parse(const char *body, size_t len, json_t **rules, verr_t *e);

/* The rules as a LifecycleConfiguration document (caller frees), *len its length. */
char *lc_to_xml(const json_t *rules, size_t *len);

/* One object version as a pass sees it. */
typedef struct lc_version {
    const char *key;
    uint64_t size;
    const json_t *tags;          /* {"key": "value"} or NULL */
    int64_t mtime;               /* its creation (Unix seconds) */
    int delete_marker;
    int latest;                  /* the key's current version */
    int lone;                    /* latest, and the key has no other version */
    int64_t noncurrent_since;    /* noncurrent: its successor's creation */
    int newer_noncurrent;        /* noncurrent: how many noncurrent versions are newer */
} lc_version_t;

typedef enum lc_action {
    LC_KEEP = 0,
    LC_EXPIRE_CURRENT,           /* delete as a tenant's DELETE would (a marker when versioned) */
    LC_EXPIRE_NONCURRENT,        /* remove the noncurrent version for good */
    LC_REMOVE_MARKER,            /* remove an expired object delete marker for good */
} lc_action_t;

/* Does rule apply to version v (enabled, filter matches)? Delete markers have no size or
 * tags: only rules without tag or size conditions apply to them. */
int lc_rule_matches(const json_t *rule, const char *key, uint64_t size, const json_t *tags, int delete_marker);
/* The first midnight (a multiple of day_seconds) after since + days * day_seconds. */
int64_t lc_due(int64_t since, int64_t days, int64_t day_seconds);
/* What the rules do to v at time now. */
lc_action_t lc_decide(const json_t *rules, const lc_version_t *v, int64_t now, int64_t day_seconds);
/* Is an unfinished upload of key initiated then due for abort at now? */
int lc_upload_due(const json_t *rules, const char *key, int64_t initiated, int64_t now, int64_t day_seconds);
/* Does any enabled rule abort unfinished uploads? */
int lc_wants_uploads(const json_t *rules);

#endif

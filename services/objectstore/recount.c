/* recount.c - corrects the stored-bytes totals (objectstore.bucket_stored and the
 * account's objectstore.stored) from what the backend really holds.
 *
 * The totals are counters moved by every write and removal (s3_usage.c); anything that
 * frees bytes without a refund (the backend's gc of stale uploads, a process killed
 * between a removal and its refund, a refund whose statement failed) makes them drift,
 * and a drifted total is billed every hour. So the reconcile timer recounts a few buckets
 * per pass: it lists every version and every unfinished upload's parts of the bucket
 * and sets the bucket's total to their sum, moving the account's total by the same
 * difference, in one transaction.
 *
 * A listing is not a snapshot, so a recount is applied only when nothing wrote to the
 * bucket meanwhile: the bucket's `changes` counter (bumped by every charge and refund)
 * must be the same after the listing as before it, and the bucket must have been quiet
 * for objectstore.recount_quiet_s before it (a write in progress charges when it starts
 * and every 8 MiB; one that stalls longer than that and commits later is counted by the
 * next recount). Cost: one bucket's listing, at most objectstore.recount_max_versions
 * versions (a larger bucket is skipped and logged), at most
 * objectstore.recount_buckets buckets per pass, each bucket at most once per
 * objectstore.recount_interval_s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "objectstore.h"

#define PAGE 1000

typedef struct tally {
    uint64_t bytes;
    long versions;
    char *key;                           /* where the page ended */
    char vid[OS_VERSION_ID_MAX];
    json_t *uploads;                     /* upload ids */
} tally_t;

static int add_version(void *arg, const char *key, const os_meta_t *m)
{
    tally_t *t = arg;
    if (!m->delete_marker)
        t->bytes += m->size;
    t->versions++;
    free(t->key);
    t->key = xstrdup(key);
    snprintf(t->vid, sizeof t->vid, "%s", m->version_id);
    return 0;
}

static int add_upload(void *arg, const char *key, const char *upload_id, int64_t initiated)
{
    (void)key, (void)initiated;
    json_array_append_new(((tally_t *)arg)->uploads, json_string(upload_id));
    return 0;
}

/* The bytes the backend holds for the bucket; -1 when the listing failed, was too
 * long, or the service is stopping. */
static int count_bucket(objectstore_t *os, const char *bucket_id, long max_versions, uint64_t *out)
{
    tally_t t = {.uploads = json_array()};
    verr_t e;
    int truncated = 1, rc = 0;
    while (truncated && rc == 0) {
        char *km = t.key ? xstrdup(t.key) : xstrdup("");
        long before = t.versions;
        rc = os_list_versions(os->backend, bucket_id, "", km, t.key ? t.vid : NULL, PAGE, add_version, &t,
                              &truncated, &e);
        free(km);
        if (rc == 0 && truncated && t.versions == before)
            rc = verr_set(&e, 500, "InternalError", "the listing did not move on");   /* never loop on it */
        if (rc < 0)
            log_warn("recount of bucket %s: %s", bucket_id, e.message);
        else if (t.versions > max_versions || service_stopping()) {
            if (t.versions > max_versions)
                log_warn("recount of bucket %s skipped: more than %ld versions "
                         "(objectstore.recount_max_versions)", bucket_id, max_versions);
            rc = -1;
        }
    }
    if (rc == 0 && os_mpu_list(os->backend, bucket_id, "", add_upload, &t, &e) < 0) {
        log_warn("recount of bucket %s: uploads: %s", bucket_id, e.message);
        rc = -1;
    }
    size_t i;
    json_t *id;
    json_array_foreach(t.uploads, i, id) {
        if (rc == 0)
            t.bytes += s3_usage_upload_bytes(os, bucket_id, json_string_value(id), 0);
    }
    json_decref(t.uploads);
    free(t.key);
    *out = t.bytes;
    return rc;
}

/* Set the bucket's total to bytes if its counter is still `changes`, moving the
 * account's total by the difference. */
static void apply(db_t *db, const char *bucket_id, const char *changes, uint64_t bytes)
{
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)bytes);
    const char *p[] = {bucket_id, changes, n};
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(db, &e, "recount_apply",
        "WITH old AS (SELECT bucket_id, account_id, bytes FROM bucket_stored "
        "             WHERE bucket_id = $1 AND changes = $2::bigint FOR UPDATE), "
        "b AS (UPDATE bucket_stored s SET bytes = $3::bigint, recounted_at = now() FROM old "
        "      WHERE s.bucket_id = old.bucket_id RETURNING old.bytes AS was), "
        "a AS (UPDATE stored s SET bytes = GREATEST(s.bytes + $3::bigint - old.bytes, 0) FROM old "
        "      WHERE s.account_id = old.account_id) "
        "SELECT was FROM b", 3, p);
    if (!r)
        log_warn("recount of bucket %s not applied: %s", bucket_id, e.message);
    else if (PQntuples(r) && strtoull(PQgetvalue(r, 0, 0), NULL, 10) != bytes)
        log_info("recount of bucket %s: %s bytes stored, was counted as %s", bucket_id, n, PQgetvalue(r, 0, 0));
}

void storage_recount(objectstore_t *os, db_t *db)
{
    const config_t *cfg = os->svc->cfg;
    char quiet[32], every[32], limit[32];
    snprintf(quiet, sizeof quiet, "%ld", config_int(cfg, "objectstore.recount_quiet_s", 900));
    snprintf(every, sizeof every, "%ld", config_int(cfg, "objectstore.recount_interval_s", 3600));
    snprintf(limit, sizeof limit, "%ld", config_int(cfg, "objectstore.recount_buckets", 4));
    long max_versions = config_int(cfg, "objectstore.recount_max_versions", 1000000);
    verr_t e;
    /* a bucket deleted for good stores nothing: what its row still counts is drift (the
     * same statement gives it back to the account) */
    const char *pq[] = {quiet};
    PG_AUTO PGresult *gone = db_prepared(db, &e, "recount_gone",
        "WITH d AS (DELETE FROM bucket_stored s WHERE changed_at < now() - make_interval(secs => $1::int) "
        "           AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = s.bucket_id) "
        "           RETURNING account_id, bytes) "
        "UPDATE stored s SET bytes = GREATEST(s.bytes - d.bytes, 0) FROM d WHERE s.account_id = d.account_id",
        1, pq);
    if (!gone)
        log_warn("recount of deleted buckets: %s", e.message);
    /* buckets with no row yet (never written since 009) get one, first in line */
    const char *p[] = {quiet, every, limit};
    PG_AUTO PGresult *due = db_prepared(db, &e, "recount_due",
        "WITH n AS (INSERT INTO bucket_stored (bucket_id, account_id) SELECT id, account_id FROM buckets "
        "           ON CONFLICT (bucket_id) DO NOTHING) "
        "SELECT bucket_id, changes FROM bucket_stored s "
        "WHERE changed_at < now() - make_interval(secs => $1::int) "
        "AND coalesce(recounted_at, '-infinity') < now() - make_interval(secs => $2::int) "
        "AND EXISTS (SELECT 1 FROM buckets b WHERE b.id = s.bucket_id) "
        "ORDER BY recounted_at NULLS FIRST LIMIT $3::int", 3, p);
    if (!due) {
        log_warn("recount: %s", e.message);
        return;
    }
    for (int i = 0; i < PQntuples(due) && !service_stopping(); i++) {
        uint64_t bytes;
        if (count_bucket(os, PQgetvalue(due, i, 0), max_versions, &bytes) == 0)
            apply(db, PQgetvalue(due, i, 0), PQgetvalue(due, i, 1), bytes);
        else {   /* not again before its interval */
            const char *q[] = {PQgetvalue(due, i, 0)};
            PG_AUTO PGresult *r = db_prepared(db, &e, "recount_skip",
                "UPDATE bucket_stored SET recounted_at = now() WHERE bucket_id = $1", 1, q);
            (void)r;
        }
    }
}

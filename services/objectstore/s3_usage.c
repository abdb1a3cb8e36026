/* s3_usage.c - the stored_bytes quota: an account's buckets (every version of every
 * object, the parts of unfinished multipart uploads) may not hold more bytes than
 * identity allows it (virgadm quota set ACCOUNT stored_bytes MAX). The same statements
 * keep each bucket's own total (objectstore.bucket_stored, sampled hourly for billing:
 * transfer.c), so the bucket totals of an account add up to its total.
 *
 * A write reserves its bytes before the first byte is stored, with one conditional
 * UPDATE of the account's row in objectstore.stored: PostgreSQL locks the row and
 * re-checks the condition against the committed value, so concurrent writes can never
 * together pass the limit (the database guarantees it, as db_lock_xact does for the
 * count quotas; one row needs no separate lock). What a request reserved and did not
 * keep (a failed write, a body shorter than declared) is given back when it ends; a
 * version or part removed for good gives its bytes back after the removal.
 *
 * The limit is identity's (identity.quota_get), kept in the row for QUOTA_TTL seconds so
 * that a PUT costs no bus call: a changed quota applies within that time. It is asked
 * with s3_ask, so the request waits for identity without holding an HTTP thread; a body
 * still arriving cannot wait, so a reservation made mid-body (a body of unknown length)
 * uses the limit kept, however old, and a PUT of unknown length makes sure in its begin
 * that there is one (s3_usage_prepare). The refusal is
 * 403 QuotaExceeded, as Ceph's radosgw answers it: SDKs do not retry a 403 (they would
 * retry a 503 SlowDown for minutes) and show the code and message to the user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "objectstore.h"

#define QUOTA_TTL "30"
#define QUOTA_DEFAULT 1099511627776LL   /* identity's default: 1 TiB */

static int exceeded(verr_t *e, long long max)
{
    return verr_set(e, 403, "QuotaExceeded",
                    "The bucket owner's stored_bytes quota (%lld bytes) does not allow this write.", max);
}

/* Ask identity for the account's limit (-1 with r->waiting: begin or end runs again)
 * and keep it in its row. */
static int refresh_max(s3_req_t *r, db_t *db, const char *account, long long *max, verr_t *e)
{
    if (s3_quota(r, account, "stored_bytes", QUOTA_DEFAULT, max, e) < 0)
        return -1;
    char m[32];
    snprintf(m, sizeof m, "%lld", *max);
    const char *p[] = {account, m};
    PG_AUTO PGresult *res = db_prepared(db, e, "stored_max",
        "INSERT INTO stored (account_id, bytes, max_bytes, max_at) VALUES ($1, 0, $2::bigint, now()) "
        "ON CONFLICT (account_id) DO UPDATE SET max_bytes = EXCLUDED.max_bytes, max_at = now()", 2, p);
    return res ? 0 : -1;
}

/* The limit kept for account (for the refusal's message), -1 if none. */
static long long stored_max(db_t *db, const char *account)
{
    verr_t e = {0};
    const char *p[] = {account};
    PG_AUTO PGresult *res = db_prepared(db, &e, "stored_max_of", "SELECT max_bytes FROM stored WHERE account_id = $1",
                                        1, p);
    return res && PQntuples(res) ? atoll(PQgetvalue(res, 0, 0)) : -1;
}

int s3_usage_charge(s3_req_t *r, int64_t n, verr_t *e)
{
    if (n <= 0 || !r->bucket_owner[0])
        return 0;
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%lld", (long long)n);
    int mid_body = r->in_data;   /* cannot wait: any limit kept will do */
    const char *p[] = {r->bucket_owner, bytes, r->bucket_id, mid_body ? "t" : "f"};
    long long max = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        /* the bucket's row follows the account's in the same statement, only when the
         * account's UPDATE passed the quota */
        PG_AUTO PGresult *res = db_prepared(db, e, "stored_charge",
            "WITH a AS (UPDATE stored SET bytes = bytes + $2::bigint WHERE account_id = $1 "
            "           AND bytes + $2::bigint <= max_bytes "
            "           AND ($4::bool OR max_at > now() - interval '" QUOTA_TTL " seconds') RETURNING bytes), "
            "b AS (INSERT INTO bucket_stored (bucket_id, account_id, bytes, changes, changed_at) "
            "      SELECT $3, $1, $2::bigint, 1, now() FROM a "
            "      ON CONFLICT (bucket_id) DO UPDATE SET bytes = bucket_stored.bytes + EXCLUDED.bytes, "
            "      changes = bucket_stored.changes + 1, changed_at = now()) "
            "SELECT bytes FROM a", 4, p);
        if (!res)
            return -1;
        if (PQntuples(res)) {
            r->charged += n;
            return 0;
        }
        if (attempt || mid_body)
            break;
        /* no row yet, a limit older than QUOTA_TTL, or over the limit: ask identity once */
        if (refresh_max(r, db, r->bucket_owner, &max, e) < 0)
            return -1;
    }
    if (max < 0 && (max = stored_max(db, r->bucket_owner)) < 0)   /* mid-body, and no limit kept at all */
        return verr_set(e, 503, "SlowDown", "The stored_bytes quota is not known yet; please try again.");
    return exceeded(e, max);
}

int s3_usage_prepare(s3_req_t *r, verr_t *e)
{
    if (!r->bucket_owner[0])
        return 0;
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    const char *p[] = {r->bucket_owner};
    PG_AUTO PGresult *res = db_prepared(db, e, "stored_fresh",
        "SELECT 1 FROM stored WHERE account_id = $1 AND max_at > now() - interval '" QUOTA_TTL " seconds'", 1, p);
    if (!res)
        return -1;
    long long max;
    return PQntuples(res) ? 0 : refresh_max(r, db, r->bucket_owner, &max, e);
}

void s3_usage_refund_bucket(objectstore_t *os, const char *account, const char *bucket_id, uint64_t n)
{
    if (!n || !account || !account[0])
        return;
    verr_t e = {0};
    db_t *db = s3_db(os, &e);
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)n);
    const char *p[] = {account, bytes, bucket_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, &e, "stored_refund",
        "WITH a AS (UPDATE stored SET bytes = GREATEST(bytes - $2::bigint, 0) WHERE account_id = $1) "
        "UPDATE bucket_stored SET bytes = GREATEST(bytes - $2::bigint, 0), changes = changes + 1, "
        "changed_at = now() WHERE bucket_id = $3", 3, p) : NULL;
    if (!res)   /* the account keeps the bytes counted: it errs on the side of the quota */
        log_warn("stored bytes of %s: %llu bytes not given back: %s", account, (unsigned long long)n, e.message);
}

void s3_usage_refund(s3_req_t *r, uint64_t n)
{
    s3_usage_refund_bucket(r->os, r->bucket_owner, r->bucket_id, n);
}

void s3_usage_settle(s3_req_t *r, uint64_t kept)
{
    if (r->charged > 0 && (uint64_t)r->charged > kept)
        s3_usage_refund(r, (uint64_t)r->charged - kept);
    r->charged = 0;
}

uint64_t s3_usage_replaced(s3_req_t *r, const char *key, const char *version_id)
{
    if (!version_id && r->versioning == OS_VERSIONING_ENABLED)
        return 0;   /* a write or delete adds a version or marker and removes nothing */
    os_meta_t m = {0};
    verr_t e = {0};
    uint64_t size = 0;
    if (os_head_version(r->os->backend, r->bucket_id, key, version_id ? version_id : "null", &m, &e) == 0 &&
        !m.delete_marker)
        size = m.size;
    os_meta_clear(&m);
    return size;
}

struct upload_bytes {
    int number;
    uint64_t bytes;
};

static int add_part_bytes(void *arg, int number, const char *etag, uint64_t size, int64_t mtime, const char *checksum)
{
    (void)etag, (void)mtime, (void)checksum;
    struct upload_bytes *u = arg;
    if (!u->number || u->number == number)
        u->bytes += size;
    return 0;
}

uint64_t s3_usage_upload_bytes(objectstore_t *os, const char *bucket_id, const char *upload_id, int number)
{
    struct upload_bytes u = {number, 0};
    verr_t e;
    os_mpu_list_parts(os->backend, bucket_id, upload_id, NULL, add_part_bytes, &u, &e);
    return u.bytes;
}

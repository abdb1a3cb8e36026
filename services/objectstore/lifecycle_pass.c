/* lifecycle_pass.c - the expiration pass: on the reconcile timer, for each bucket with
 * lifecycle rules, find the object versions and unfinished uploads that are due and
 * expire them as a tenant's DELETE would (lifecycle.h decides, backend.h's os_expire
 * acts), on either storage backend.
 *
 * Safe to run on every object-store instance at once and to stop anywhere:
 *  - one instance works on a bucket at a time: the pass holds a transaction-scoped
 *    advisory lock on the bucket for as long as it works on it (a crashed instance's
 *    session ends and frees it), and another instance skips a locked bucket;
 *  - the index is the truth: each expiration is one atomic step that first checks the
 *    version is still what the listing showed (os_expire), so a version rewritten,
 *    removed or promoted meanwhile is left alone, and doing it twice does nothing more;
 *  - the work per pass is bounded (versions scanned, expirations made); where it stops in
 *    a bucket is kept in lifecycle_cursors in the same transaction, so the next pass, on
 *    any instance, goes on from there; a crash before the commit only repeats work.
 * Buckets are visited least recently passed first, so a large bucket cannot starve the
 * others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "lifecycle.h"
#include "log.h"
#include "objectstore.h"

#define PAGE 1000          /* versions listed per backend call */
#define BUCKETS_PER_PASS 100

/* One listed version, copied out of the listing. */
typedef struct item {
    char *key;
    os_meta_t m;           /* version_id, mtime, etag, size, tags, delete_marker, is_latest */
} item_t;

typedef struct page {
    item_t *v;
    size_t n, cap;
} page_t;

/* What the pass knows of the key it is in (the newer versions it has seen). */
typedef struct keystate {
    char *key;
    int64_t newer_mtime;   /* creation of the next newer version: when this one became noncurrent */
    int noncurrent;        /* noncurrent versions seen so far */
} keystate_t;

typedef struct bucket_pass {
    objectstore_t *os;
    const char *id;
    const char *owner;             /* the bucket owner's account: expired bytes go back to its quota */
    os_versioning_t vers;
    const json_t *rules;
    int64_t now, day;
    long *scan_left, *act_left;
    keystate_t ks;
    /* the last version handled: where the next pass goes on */
    char *last_key;
    char last_vid[OS_VERSION_ID_MAX];
    int64_t last_newer_mtime;      /* the key state after it, for the next pass */
    int last_noncurrent;
    int halt;                      /* stopping, or out of expirations: handle nothing more */
    int expired, failed;
} bucket_pass_t;

static int collect(void *arg, const char *key, const os_meta_t *m)
{
    page_t *p = arg;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->v = xrealloc(p->v, p->cap * sizeof *p->v);
    }
    item_t *it = &p->v[p->n++];
    it->key = xstrdup(key);
    it->m = *m;
    it->m.user_meta = it->m.extra = it->m.acl = NULL;   /* not needed; not owned */
    it->m.tags = m->tags ? json_incref(m->tags) : NULL;
    return 0;
}

static void page_clear(page_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].key);
        json_decref(p->v[i].m.tags);
    }
    p->n = 0;
}

static void ks_enter(keystate_t *ks, const char *key)
{
    if (ks->key && !strcmp(ks->key, key))
        return;
    free(ks->key);
    ks->key = xstrdup(key);
    ks->newer_mtime = 0;
    ks->noncurrent = 0;
}

/* Decide and act on one version; next is the version listed after it (NULL: none),
 * which tells whether a latest delete marker is its key's only version. A version is
 * "handled" (the next pass goes on after it) only once acted on or left alone; when the
 * service stops or the pass runs out of expirations, the pass halts before it. */
static void handle(bucket_pass_t *bp, const item_t *it, const item_t *next)
{
    if (bp->halt)
        return;
    ks_enter(&bp->ks, it->key);
    lc_version_t v = {
        .key = it->key,
        .size = it->m.size,
        .tags = it->m.tags,
        .mtime = it->m.mtime,
        .delete_marker = it->m.delete_marker,
        .latest = it->m.is_latest,
        .lone = it->m.is_latest && (!next || strcmp(next->key, it->key)),
        .noncurrent_since = bp->ks.newer_mtime,
        .newer_noncurrent = bp->ks.noncurrent,
    };
    lc_action_t a = lc_decide(bp->rules, &v, bp->now, bp->day);
    if (service_stopping() || (a != LC_KEEP && *bp->act_left <= 0)) {
        bp->halt = 1;
        return;
    }
    if (!it->m.is_latest)
        bp->ks.noncurrent++;
    bp->ks.newer_mtime = it->m.mtime;
    free(bp->last_key);
    bp->last_key = xstrdup(it->key);
    snprintf(bp->last_vid, sizeof bp->last_vid, "%s", it->m.version_id);
    bp->last_newer_mtime = bp->ks.newer_mtime;
    bp->last_noncurrent = bp->ks.noncurrent;
    if (a == LC_KEEP)
        return;

    static const os_expire_kind_t kinds[] = {
        [LC_EXPIRE_CURRENT] = OS_EXPIRE_CURRENT,
        [LC_EXPIRE_NONCURRENT] = OS_EXPIRE_NONCURRENT,
        [LC_REMOVE_MARKER] = OS_EXPIRE_LONE_MARKER,
    };
    (*bp->act_left)--;
    verr_t e;
    int done = 0;
    if (os_expire(bp->os->backend, bp->id, it->key, kinds[a], &it->m, bp->vers, &done, &e) < 0) {
        log_warn("lifecycle: bucket %s key %s version %s: %s", bp->id, it->key, it->m.version_id, e.message);
        bp->failed++;
        return;
    }
    bp->expired += done;
    /* bytes removed for good go back to the stored_bytes quota, as a tenant's DELETE does:
     * a noncurrent version, or a current one that no delete marker keeps (unversioned, or
     * the null version of a suspended bucket); a marker frees nothing */
    int removed = a == LC_EXPIRE_NONCURRENT ||
                  (a == LC_EXPIRE_CURRENT && (bp->vers == OS_VERSIONING_OFF ||
                                             (bp->vers == OS_VERSIONING_SUSPENDED && !strcmp(it->m.version_id, "null"))));
    if (done && removed && !it->m.delete_marker)
        s3_usage_refund_bucket(bp->os, bp->owner, bp->id, it->m.size);
}

/* The versions of the bucket from the cursor on, until the listing ends (returns 1) or
 * the scan budget does (0); -1 on a listing error. */
static int scan_versions(bucket_pass_t *bp, const char *key_marker, const char *version_marker, verr_t *e)
{
    page_t pg = {0};
    item_t pending = {0};   /* the last item listed: its successor is not known yet */
    int have_pending = 0, rc = 0, truncated = 1;
    char *km = xstrdup(key_marker), *vm = version_marker ? xstrdup(version_marker) : NULL;
    while (truncated && *bp->scan_left > 0 && !bp->halt) {
        size_t max = *bp->scan_left < PAGE ? (size_t)*bp->scan_left : PAGE;
        if (os_list_versions(bp->os->backend, bp->id, "", km, vm, max, collect, &pg, &truncated, e) < 0) {
            rc = -1;
            break;
        }
        size_t got = pg.n;
        *bp->scan_left -= (long)got;
        for (size_t i = 0; i < pg.n; i++) {
            if (have_pending) {
                handle(bp, &pending, &pg.v[i]);
                free(pending.key);
                json_decref(pending.m.tags);
            }
            pending = pg.v[i];   /* ownership moves to pending */
            have_pending = 1;
        }
        pg.n = 0;
        if (have_pending) {
            /* the next page starts after the pending item, which nothing has changed yet */
            free(km);
            free(vm);
            km = xstrdup(pending.key);
            vm = xstrdup(pending.m.version_id);
        }
        if (!truncated && have_pending) {
            handle(bp, &pending, NULL);
            free(pending.key);
            json_decref(pending.m.tags);
            have_pending = 0;
        }
        if (!got)
            break;   /* nothing more, whatever truncated said */
    }
    if (have_pending) {   /* out of budget: it is listed again next time */
        free(pending.key);
        json_decref(pending.m.tags);
    }
    page_clear(&pg);
    free(pg.v);
    free(km);
    free(vm);
    return rc < 0 ? -1 : !truncated && !bp->halt;
}

typedef struct upload_list {
    json_t *all;   /* [[key, id, initiated], ...] */
} upload_list_t;

static int collect_upload(void *arg, const char *key, const char *upload_id, int64_t initiated)
{
    upload_list_t *u = arg;
    json_array_append_new(u->all, json_pack("[s, s, I]", key, upload_id, (json_int_t)initiated));
    return 0;
}

static void abort_uploads(bucket_pass_t *bp)
{
    if (!lc_wants_uploads(bp->rules))
        return;
    upload_list_t u = {json_array()};
    verr_t e;
    if (os_mpu_list(bp->os->backend, bp->id, "", collect_upload, &u, &e) < 0)
        log_warn("lifecycle: bucket %s: listing uploads: %s", bp->id, e.message);
    size_t i;
    json_t *row;
    json_array_foreach(u.all, i, row) {
        const char *key = json_string_value(json_array_get(row, 0)), *id = json_string_value(json_array_get(row, 1));
        if (*bp->act_left <= 0 || service_stopping() ||
            !lc_upload_due(bp->rules, key, json_integer_value(json_array_get(row, 2)), bp->now, bp->day))
            continue;
        (*bp->act_left)--;
        uint64_t bytes = s3_usage_upload_bytes(bp->os, bp->id, id, 0);
        if (os_mpu_abort(bp->os->backend, bp->id, id, &e) == 0) {
            bp->expired++;
            s3_usage_refund_bucket(bp->os, bp->owner, bp->id, bytes);
        }
        else if (strcmp(e.code, "NoSuchUpload"))   /* completed or aborted meanwhile: fine */
            log_warn("lifecycle: bucket %s upload %s: %s", bp->id, id, e.message);
    }
    json_decref(u.all);
}

/* One bucket under its lock: 1 worked on it, 0 another instance holds it, -1 error. */
static int pass_bucket(objectstore_t *os, db_t *db, const char *id, long *scan_left, long *act_left, int64_t day,
                       verr_t *e)
{
    if (db_begin(db, e) < 0)
        return -1;
    const char *p[] = {id};
    PG_AUTO PGresult *lk = db_prepared(db, e, "lc_lock",
        "SELECT pg_try_advisory_xact_lock(hashtext('objectstore.lifecycle'), hashtext($1))", 1, p);
    if (!lk || strcmp(PQgetvalue(lk, 0, 0), "t")) {
        db_rollback(db);
        return lk ? 0 : -1;
    }
    /* read under the lock: another instance may have moved the cursor meanwhile */
    PG_AUTO PGresult *res = db_prepared(db, e, "lc_bucket",
        "SELECT b.versioning, b.lifecycle, coalesce(c.key_marker, ''), c.version_marker, c.carry, b.account_id "
        "FROM buckets b LEFT JOIN lifecycle_cursors c ON c.bucket_id = b.id "
        "WHERE b.id = $1 AND b.lifecycle IS NOT NULL", 1, p);
    if (!res || PQntuples(res) == 0) {
        db_rollback(db);
        return res ? 0 : -1;
    }
    JSON_AUTO json_t *rules = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    JSON_AUTO json_t *carry = PQgetisnull(res, 0, 4) ? NULL : json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    bucket_pass_t bp = {
        .os = os, .id = id, .owner = PQgetvalue(res, 0, 5), .rules = rules, .now = (int64_t)time(NULL), .day = day,
        .vers = s3_versioning_from_db(PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0)),
        .scan_left = scan_left, .act_left = act_left,
    };
    const char *km = PQgetvalue(res, 0, 2), *vm = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
    if (carry && *km) {   /* what the last pass knew of the key it stopped in */
        bp.ks.key = xstrdup(km);
        bp.ks.newer_mtime = json_int(carry, "newer_mtime", 0);
        bp.ks.noncurrent = (int)json_int(carry, "noncurrent", 0);
    }
    abort_uploads(&bp);
    verr_t le;
    int whole = scan_versions(&bp, km, vm, &le);
    if (whole < 0) {
        log_warn("lifecycle: bucket %s: listing: %s", id, le.message);
        whole = 0;   /* keep the cursor; try again next pass */
    }
    /* where to go on: from the start after a whole pass, else after the last version handled */
    char carry_text[96] = "";
    const char *next_km = whole ? "" : bp.last_key ? bp.last_key : km;
    const char *next_vm = whole ? NULL : bp.last_key ? bp.last_vid : vm;
    if (!whole && bp.last_key)
        snprintf(carry_text, sizeof carry_text, "{\"newer_mtime\": %lld, \"noncurrent\": %d}",
                 (long long)bp.last_newer_mtime, bp.last_noncurrent);
    const char *up[] = {id, next_km, next_vm, *carry_text ? carry_text : (!whole && carry ? PQgetvalue(res, 0, 4) : NULL)};
    PG_AUTO PGresult *ur = db_prepared(db, e, "lc_cursor",
        "INSERT INTO lifecycle_cursors (bucket_id, key_marker, version_marker, carry, passed_at) "
        "VALUES ($1, $2, $3, $4::jsonb, now()) ON CONFLICT (bucket_id) DO UPDATE SET key_marker = $2, "
        "version_marker = $3, carry = $4::jsonb, passed_at = now()", 4, up);
    int rc = ur ? db_commit(db, e) : -1;
    if (!ur)
        db_rollback(db);
    if (bp.expired || bp.failed)
        log_info("lifecycle: bucket %s: %d expired, %d failed%s", id, bp.expired, bp.failed,
                 whole ? "" : " (pass continues later)");
    free(bp.ks.key);
    free(bp.last_key);
    return rc < 0 ? -1 : 1;
}

static int pass(objectstore_t *os, db_t *db, verr_t *e)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", BUCKETS_PER_PASS);
    const char *p[] = {limit};
    PG_AUTO PGresult *res = db_prepared(db, e, "lc_buckets",
        "SELECT b.id FROM buckets b LEFT JOIN lifecycle_cursors c ON c.bucket_id = b.id "
        "WHERE b.lifecycle IS NOT NULL ORDER BY coalesce(c.passed_at, '-infinity'), b.id LIMIT $1::int", 1, p);
    if (!res)
        return -1;
    long scan_left = os->lc.max_scan, act_left = os->lc.max_actions;
    for (int i = 0; i < PQntuples(res) && scan_left > 0 && act_left > 0 && !service_stopping(); i++)
        if (pass_bucket(os, db, PQgetvalue(res, i, 0), &scan_left, &act_left, os->lc.day_seconds, e) < 0)
            return -1;
    return 0;
}

void os_lifecycle_init(objectstore_t *os, const config_t *cfg)
{
    os_lifecycle_cfg_t *c = &os->lc;
    c->day_seconds = config_int(cfg, "objectstore.lifecycle.day_seconds", 86400);
    c->interval_s = config_int(cfg, "objectstore.lifecycle.interval_s", 600);
    c->max_scan = config_int(cfg, "objectstore.lifecycle.max_scan", 10000);
    c->max_actions = config_int(cfg, "objectstore.lifecycle.max_actions", 1000);
    if (c->day_seconds <= 0)
        c->day_seconds = 86400;
}

void os_lifecycle_tick(objectstore_t *os)
{
    time_t now = time(NULL);
    if (os->lc.interval_s < 0 || now - os->lc.last < os->lc.interval_s)
        return;
    os->lc.last = now;
    verr_t e;
    if (!os->lc.db && !(os->lc.db = service_db_connect(os->svc, &e))) {
        log_warn("lifecycle: database: %s", e.message);
        return;
    }
    if (pass(os, os->lc.db, &e) < 0)
        log_warn("lifecycle pass: %s", e.message);
}

void os_lifecycle_fini(objectstore_t *os)
{
    db_close(os->lc.db);
    os->lc.db = NULL;
}

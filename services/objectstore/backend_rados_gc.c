/* backend_rados_gc.c - garbage collection of the RADOS backend (backend_rados.h), on the
 * reconcile timer. Per bucket of the registry: garbage records (g<time>.<id>: a replaced
 * entry) past the grace period have their data removed, then the record; pending keys
 * (p<time>.<version>: a write in progress, valued {"w": writer id}) that are due
 * (os_gc_pending_due: the writer is gone, or the write is stale) are taken, then their
 * stripes removed; multipart uploads past stale_s are aborted. Then the orphan list
 * (garbage and pending keys of deleted buckets), by the same rules. A call handles at
 * most GC_BUDGET records, so one pass stays short; the next pass goes on. */
#include "backend_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"

#define GC_BUDGET 2000          /* garbage records handled per gc call */

typedef struct gc_run {
    rados_impl_t *r;
    rconn_t *c;             /* the connection for the next step, and its ioctx */
    rados_ioctx_t io;
    int halted;             /* the storage stopped answering, or the process is stopping:
                             * the next pass goes on */
    int interrupted;
    const os_gc_opts_t *o;
    int64_t now;
    int grace_s, stale_s, budget;
    const char *bucket;
    kv_t *done;             /* entries handled, removed from the omap afterwards */
    char **owned;
    size_t ndone;
} gc_run_t;

/* The time in "<type><10 digits>..." keys (0 for anything shorter: due at once). */
static int64_t key_time(const char *k, size_t klen)
{
    char t[16];
    if (klen < 2)
        return 0;
    size_t n = klen - 1 < 10 ? klen - 1 : 10;
    memcpy(t, k + 1, n);
    t[n] = '\0';
    return strtoll(t, NULL, 10);
}

/* Before each step: take the current connection (a pass may outlast one that the health
 * probe replaced) and stop when the storage does not answer, instead of waiting for one
 * timeout per record. 0: stop. */
static int gc_step(gc_run_t *g)
{
    if (g->halted)
        return 0;
    if (g->o->interrupted && g->o->interrupted()) {
        g->halted = g->interrupted = 1;
        return 0;
    }
    rados_conn_put(g->r, g->c);
    g->c = rados_conn_get(g->r);
    g->io = g->c->io;
    g->halted = !rados_conn_healthy(g->r);
    return !g->halted;
}

/* omap_walk on a connection of its own: the steps swap g->c under it. */
static int gc_walk(gc_run_t *g, const char *oid, const char *prefix, uint64_t limit, omap_fn fn)
{
    if (g->halted)
        return 0;
    rconn_t *c = rados_conn_get(g->r);
    int rc = omap_walk(c->io, oid, prefix, prefix, limit, fn, g);
    rados_conn_put(g->r, c);
    return rc;
}

static void gc_done(gc_run_t *g, const char *k, size_t klen)
{
    char *copy = xmalloc(klen + 1);
    memcpy(copy, k, klen);
    copy[klen] = '\0';
    g->owned[g->ndone] = copy;
    g->done[g->ndone++] = KV(copy, NULL, 0);
}

/* Garbage past grace: delete its data; the record goes once the data is gone. */
static int gc_garbage_one(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    if (g->budget <= 0 || key_time(k, klen) > g->now - g->grace_s || !gc_step(g))
        return 1;   /* keys sort by time: the rest is younger */
    g->budget--;
    if (remove_record(g->io, g->bucket, v, vlen) == 0)
        gc_done(g, k, klen);
    return 0;
}

/* The writer id in a pending key's value ({"w": id}; "" when it has none). */
static void pending_writer(const char *v, size_t vlen, char out[OS_WRITER_MAX + 1])
{
    json_t *j = json_loadb(v, vlen, 0, NULL);
    snprintf(out, OS_WRITER_MAX + 1, "%s", json_str(j, "w", ""));
    json_decref(j);
}

/* A write that never committed and is due (os_gc_pending_due: its writer is gone, or it
 * is stale): take its key (only if still as read, so a commit racing with us wins or
 * loses as a whole), then its data. Keys sort by time: past the first young one only
 * the writers of older ones decide. */
static int gc_pending_one(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    int64_t t = key_time(k, klen);
    char ver[OS_VERSION_LEN + 1], oid[OID_MAX], writer[OS_WRITER_MAX + 1];
    if (g->budget <= 0 || (t > g->now - g->o->lease_s && t > g->now - g->stale_s))
        return 1;
    pending_writer(v, vlen, writer);
    if (!os_gc_pending_due(g->o, g->now, t, writer))
        return 0;
    if (!gc_step(g))
        return 1;
    g->budget--;
    char *key = xmalloc(klen + 1);
    memcpy(key, k, klen);
    key[klen] = '\0';
    index_oid(oid, g->bucket);
    kv_t cmp = KV(key, v, vlen), rm = KV(key, NULL, 0);
    if (os_stamp_parse(key + 1, &t, ver) == 0 && omap_cas(g->io, oid, &cmp, 1, NULL, 0, &rm, 1) == 0) {
        log_info("objectstore rados: reclaimed write %s of bucket %s (writer %s)", ver, g->bucket,
                 writer[0] ? writer : "unknown");
        remove_stripes(g->io, g->bucket, ver, UINT64_MAX);
    }
    free(key);
    return 0;
}

static int gc_upload_one(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    if (g->budget <= 0)
        return 1;
    json_t *u = json_loadb(v, vlen, 0, NULL);
    int64_t init = json_int(u, "initiated", g->now);
    json_decref(u);
    if (init <= g->now - g->stale_s) {
        if (!gc_step(g))
            return 1;
        char *id = xmalloc(klen);
        memcpy(id, k + 1, klen - 1);
        id[klen - 1] = '\0';
        verr_t e;
        if (rados_abort_upload(g->io, g->bucket, id, &e))
            log_warn("objectstore rados: gc abort of upload %s: %s", id, e.message);
        free(id);
        g->budget--;
    }
    return 0;
}

static void gc_flush_done(gc_run_t *g, const char *oid)
{
    if (g->ndone && gc_step(g))
        omap_cas(g->io, oid, NULL, 0, NULL, 0, g->done, g->ndone);
    for (size_t i = 0; i < g->ndone; i++)
        free(g->owned[i]);
    g->ndone = 0;
}

static int gc_bucket(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    (void)v, (void)vlen;
    if (g->budget <= 0 || !gc_step(g))
        return 1;
    char bucket[OS_BUCKET_MAX + 1], oid[OID_MAX];
    snprintf(bucket, sizeof bucket, "%.*s", (int)klen, k);
    index_oid(oid, bucket);
    g->bucket = bucket;
    int rc = gc_walk(g, oid, "g", (uint64_t)g->budget, gc_garbage_one);
    gc_flush_done(g, oid);
    if (!rc)
        rc = gc_walk(g, oid, "p", UINT64_MAX, gc_pending_one);
    if (!rc)
        rc = gc_walk(g, oid, "m", UINT64_MAX, gc_upload_one);
    if (rc == -ENOENT && gc_step(g)) {
        /* Deleted (its garbage went to the orphan list): forget the bucket. */
        kv_t key = KV(bucket, NULL, 0);
        omap_cas(g->io, REGISTRY, NULL, 0, NULL, 0, &key, 1);
    } else if (rc)
        log_warn("objectstore rados: gc of bucket %s: %s", bucket, strerror(-rc));
    return 0;
}

/* Orphans: garbage and pending entries of deleted buckets ({"b", "k", "r"}), keyed by
 * their original key (type, time) so that each type is walked oldest first. */
static int gc_orphan_one(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    int64_t t = key_time(k, klen);
    if (g->budget <= 0 || (k[0] == 'g' ? t > g->now - g->grace_s : (t > g->now - g->o->lease_s && t > g->now - g->stale_s)))
        return 1;
    json_t *o = json_loadb(v, vlen, 0, NULL);
    const char *bucket = json_str(o, "b", ""), *key = json_str(o, "k", "");
    int drop = 1;   /* unreadable entries are dropped */
    if (o && key[0] == 'p') {
        const char *pv = json_str(o, "r", "");
        char writer[OS_WRITER_MAX + 1];
        pending_writer(pv, strlen(pv), writer);
        if (!os_gc_pending_due(g->o, g->now, t, writer)) {
            json_decref(o);
            return 0;
        }
    }
    if (!gc_step(g)) {
        json_decref(o);
        return 1;
    }
    if (o && key[0] == 'g') {
        const char *rec = json_str(o, "r", "");
        drop = remove_record(g->io, bucket, rec, strlen(rec)) == 0;
    } else if (o && key[0] == 'p') {
        int64_t ts;
        char ver[OS_VERSION_LEN + 1], oid[OID_MAX], *val = NULL;
        size_t len;
        index_oid(oid, bucket);
        const char *keys[1] = {key};
        int rc = omap_get(g->io, oid, keys, 1, &val, &len);
        /* With the bucket gone no commit can use this data; if it is back, its own gc
         * owns the key. */
        if (rc == -ENOENT && os_stamp_parse(key + 1, &ts, ver) == 0)
            drop = remove_stripes(g->io, bucket, ver, UINT64_MAX) == 0;
        else
            drop = rc == 0;
        free(val);
    }
    if (drop) {
        g->budget--;
        gc_done(g, k, klen);
    }
    json_decref(o);
    return 0;
}

int rados_gc(os_backend_t *b, const os_gc_opts_t *o, verr_t *e)
{
    gc_run_t g = {.r = R(b), .o = o, .now = (int64_t)time(NULL), .grace_s = o->grace_s, .stale_s = o->stale_s,
                  .budget = GC_BUDGET};
    g.c = rados_conn_get(g.r);
    g.io = g.c->io;
    g.done = xmalloc((GC_BUDGET + 1) * sizeof *g.done);
    g.owned = xmalloc((GC_BUDGET + 1) * sizeof *g.owned);
    int rc = gc_walk(&g, REGISTRY, "", UINT64_MAX, gc_bucket);
    if (rc == -ENOENT)
        rc = 0;   /* no bucket was ever made */
    int orc = gc_walk(&g, ORPHANS, "g", UINT64_MAX, gc_orphan_one);
    if (!orc)
        orc = gc_walk(&g, ORPHANS, "p", UINT64_MAX, gc_orphan_one);
    gc_flush_done(&g, ORPHANS);
    free(g.done);
    free(g.owned);
    rados_conn_put(g.r, g.c);
    if (rc)
        return rerr(e, rc, "gc", REGISTRY);
    if (orc && orc != -ENOENT)
        return rerr(e, orc, "gc", ORPHANS);
    if (g.halted && !g.interrupted)
        return verr_set(e, 503, "ServiceUnavailable", "the storage cluster stopped answering; gc goes on next time");
    return 0;
}

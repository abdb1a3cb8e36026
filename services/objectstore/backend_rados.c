/* backend_rados.c - the object store on Ceph RADOS (librados C API).
 *
 * Data: the bytes of each write get a fresh version id and are striped over RADOS objects
 * "d.<bucket>.<version>.<stripe#>" of objectstore.rados.stripe_bytes, streamed with up to
 * RING aio writes in flight. Index: the omap of one object "i.<bucket>" per bucket, with
 * one-letter key spaces so that every commit is a single atomic write op on one object:
 *   o<key>                 index entry of an object's latest version (JSON, see
 *                          backend_internal.h)
 *   v<E(key)>\x01\x01<sk>   a noncurrent version (E: \x01 escaped as \x01\x02; see vprefix)
 *   g<time>.<id>           garbage: a replaced entry whose data gc deletes after grace
 *   p<time>.<version>      pending: data being written ({"w": writer id}), reaped by gc
 *                          if never committed
 *   m<upload id>           multipart upload record ("gen" bumped by every part commit)
 *   n<upload id>.<NNNNN>   part entry
 * A commit compares the records it replaces (omap_cmp) and, in the same op, stores the
 * new entry, keeps the old one as a noncurrent version or lists it as garbage, and drops
 * its pending key; a lost race loads again and retries (os_vchange). Reading the latest
 * version is one key, one version by id two keys, and a key's versions newest first one
 * range, each in a single read op.
 * The old entry is read while the data is being written: a striped PUT costs two round
 * trips, [data write | pending key | old entry read] then the commit. Objects up to
 * objectstore.rados.inline_bytes (16 KiB) keep their bytes in the index value itself
 * ("\x01" JSON "\0" bytes): PUT, GET and DELETE are then one op each, guarded by "the
 * old value is absent or inline" (omap_cmp LT "\x02"), with the striped path as fallback.
 * "buckets" lists bucket ids for gc; "orphans" keeps the garbage of deleted buckets.
 * The other files of this backend are listed in backend_rados.h. */
#include "backend_rados.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"

typedef struct rput {
    rconn_t *c;                     /* the connection every op of this write goes through */
    ring_t ring;
    uint64_t sent;                  /* bytes handed to librados */
    uint64_t stripes;               /* stripe objects written to (removed on abort) */
    size_t sb, piece;
    int err;                        /* first failed aio (negative errno) */
    char ikey[64];                  /* pending key, "" until data is written */
    char pval[PENDING_MAX];         /* its value: who writes */
    size_t pvlen;
    rados_completion_t ic;          /* the pending key's write, while in flight */
    rados_write_op_t iop;
    char *head, *old;               /* part: upload record and old part entry as read */
    size_t headlen, oldlen;
} rput_t;

/* ---- buckets ---- */

static int bucket_create(rados_ioctx_t io, const char *bucket, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    /* Registered first so that gc finds every bucket that may hold data. */
    rados_write_op_t op = rados_create_write_op();
    const char *k = bucket, *v = "1";
    size_t kl = strlen(bucket), vl = 1;
    rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
    rados_write_op_omap_set2(op, &k, &v, &kl, &vl, 1);
    int rc = rados_write_op_operate2(op, io, REGISTRY, NULL, 0);
    rados_release_write_op(op);
    if (rc < 0)
        return rerr(e, rc, "register", REGISTRY);
    op = rados_create_write_op();
    rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
    rc = rados_write_op_operate2(op, io, oid, NULL, 0);
    rados_release_write_op(op);
    return rc < 0 ? rerr(e, rc, "create", oid) : 0;
}

static int rados_bucket_create(os_backend_t *b, const char *bucket, verr_t *e)
{
    rconn_t *c = rados_conn_get(R(b));
    int rc = bucket_create(c->io, bucket, e);
    rados_conn_put(R(b), c);
    return rc;
}

typedef struct orphan_copy {
    const char *bucket;
    kv_t *kv;
    char **owned;
    size_t n, cap;
} orphan_copy_t;

static int orphan_add(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    orphan_copy_t *o = arg;
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->kv = xrealloc(o->kv, o->cap * sizeof *o->kv);
        o->owned = xrealloc(o->owned, 2 * o->cap * sizeof *o->owned);
    }
    json_t *val = json_object();
    json_object_set_new(val, "b", json_string(o->bucket));
    json_object_set_new(val, "k", json_stringn(k, klen));
    json_object_set_new(val, "r", json_stringn(v, vlen));
    char *key = xasprintf("%.*s.%s", (int)klen, k, o->bucket);
    size_t tlen;
    char *text = os_json_text(val, &tlen);
    json_decref(val);
    o->owned[2 * o->n] = key;
    o->owned[2 * o->n + 1] = text;
    o->kv[o->n++] = KV(key, text, tlen);
    return 0;
}

/* Garbage and pending entries of a bucket about to go, into the orphan list, so gc can
 * still delete that data when due. A copy left by a failed deletion is harmless. */
static int copy_orphans(rados_ioctx_t io, const char *oid, const char *bucket)
{
    orphan_copy_t o = {bucket, NULL, NULL, 0, 0};
    int rc = omap_walk(io, oid, "g", "g", UINT64_MAX, orphan_add, &o);
    if (!rc)
        rc = omap_walk(io, oid, "p", "p", UINT64_MAX, orphan_add, &o);
    if (!rc && o.n)
        rc = omap_cas(io, ORPHANS, NULL, 0, o.kv, o.n, NULL, 0);
    for (size_t i = 0; i < 2 * o.n; i++)
        free(o.owned[i]);
    free(o.owned);
    free(o.kv);
    return rc;
}

/* Is anything (a version, a delete marker or an upload) in the index? Also returns the
 * index version read. */
static int index_in_use(rados_ioctx_t io, const char *oid, int *used, uint64_t *ver)
{
    rados_read_op_t op = rados_create_read_op();
    rados_omap_iter_t it[3] = {NULL, NULL, NULL};
    unsigned char more[3];
    int prv[3] = {0, 0, 0};
    rados_read_op_omap_get_vals2(op, "", "o", 1, &it[0], &more[0], &prv[0]);
    rados_read_op_omap_get_vals2(op, "", "m", 1, &it[1], &more[1], &prv[1]);
    rados_read_op_omap_get_vals2(op, "", "v", 1, &it[2], &more[2], &prv[2]);
    int rc = rados_read_op_operate(op, io, oid, 0);
    rc = rc ? rc : prv[0] ? prv[0] : prv[1] ? prv[1] : prv[2];
    *ver = rados_get_last_version(io);
    *used = 0;
    for (int i = 0; i < 3; i++)
        if (it[i]) {
            *used |= rados_omap_iter_size(it[i]) > 0;
            rados_omap_get_end(it[i]);
        }
    rados_release_read_op(op);
    return rc;
}

static int bucket_delete(rados_impl_t *r, rconn_t *c, const char *bucket, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    for (int attempt = 0; attempt < OS_RETRIES; attempt++) {
        /* A private ioctx: the version it reports is the one of our read, not of
         * another thread's op. */
        rados_ioctx_t io;
        int used = 0, rc = rados_ioctx_create(c->cluster, r->pool, &io);
        if (rc < 0)
            return rerr(e, rc, "ioctx", r->pool);
        uint64_t ver = 0;
        rc = index_in_use(io, oid, &used, &ver);
        if (!rc && !used)
            rc = copy_orphans(c->io, oid, bucket);
        if (!rc && !used) {
            rados_write_op_t op = rados_create_write_op();
            rados_write_op_assert_version(op, ver);
            rados_write_op_remove(op);
            rc = rados_write_op_operate2(op, io, oid, NULL, 0);
            rados_release_write_op(op);
        }
        rados_ioctx_destroy(io);
        if (rc == -ERANGE || rc == -EOVERFLOW)
            continue;   /* the index changed since we looked: look again */
        if (rc)
            return ierr(e, rc, bucket, "delete");
        if (used)
            return os_err_notempty(e);
        kv_t k = KV(bucket, NULL, 0);
        rc = omap_cas(c->io, REGISTRY, NULL, 0, NULL, 0, &k, 1);
        if (rc)
            log_warn("objectstore rados: unregister %s: %s (gc retries)", bucket, strerror(-rc));
        return 0;
    }
    return verr_set(e, 503, "ServiceUnavailable", "The bucket is too busy to delete; please retry.");
}

static int rados_bucket_delete(os_backend_t *b, const char *bucket, verr_t *e)
{
    rconn_t *c = rados_conn_get(R(b));
    int rc = bucket_delete(R(b), c, bucket, e);
    rados_conn_put(R(b), c);
    return rc;
}

/* ---- writes ---- */

static int rados_put_begin(os_put_t *p, verr_t *e)
{
    rados_impl_t *r = R(p->b);
    rput_t *w = xcalloc(1, sizeof *w);
    p->impl = w;
    w->c = rados_conn_get(r);
    /* the pending key says who writes, so gc can tell a dead writer's data (backend.h) */
    if (p->b->writer[0])
        snprintf(w->pval, sizeof w->pval, "{\"w\":\"%s\"}", p->b->writer);
    else
        snprintf(w->pval, sizeof w->pval, "{}");
    w->pvlen = strlen(w->pval);
    w->sb = r->sb;
    w->piece = r->sb < PIECE ? r->sb : PIECE;
    p->chunk = w->piece;
    if (p->key)
        return 0;   /* an object write learns about its bucket at the first index op */
    char oid[OID_MAX], num[16];
    index_oid(oid, p->bucket);
    snprintf(num, sizeof num, ".%05d", p->part);
    char *mkey = keyed('m', p->upload_id), *nkey = xasprintf("n%s%s", p->upload_id, num);
    const char *keys[2] = {mkey, nkey};
    char *vals[2];
    size_t lens[2];
    int rc = omap_get(w->c->io, oid, keys, 2, vals, lens);
    free(mkey);
    free(nkey);
    w->head = vals[0], w->headlen = lens[0], w->old = vals[1], w->oldlen = lens[1];
    if (rc)
        return ierr(e, rc, p->bucket, "read upload");
    if (!w->head)
        return os_err_nosuchupload(e);
    return (p->upload = os_json_parse(w->head, w->headlen, "upload", e)) ? 0 : -1;
}

/* The pending key, written (asynchronously) with the first data. */
static void start_pending(os_put_t *p)
{
    rput_t *w = p->impl;
    char oid[OID_MAX];
    index_oid(oid, p->bucket);
    w->ikey[0] = 'p';
    os_stamp_name(w->ikey + 1, sizeof w->ikey - 1, (int64_t)time(NULL), p->version);
    const char *k = w->ikey, *v = w->pval;
    size_t kl = strlen(k), vl = w->pvlen;
    w->iop = rados_create_write_op();
    rados_write_op_assert_exists(w->iop);
    rados_write_op_omap_set2(w->iop, &k, &v, &kl, &vl, 1);
    w->ic = completion();
    int rc = rados_aio_write_op_operate(w->iop, w->c->io, w->ic, oid, NULL, 0);
    if (rc < 0) {
        rados_aio_release(w->ic);
        rados_release_write_op(w->iop);
        w->ic = NULL;
        w->err = rc;
    }
}

/* Send p->buf as the next piece of the current stripe (the buffer now belongs to the
 * ring), and size the next piece so that none crosses a stripe boundary. */
static void send_piece(os_put_t *p)
{
    rput_t *w = p->impl;
    char oid[OID_MAX];
    uint64_t off = w->sent % w->sb;
    stripe_oid(oid, p->bucket, p->version, w->sent / w->sb);
    if (!w->ikey[0])
        start_pending(p);
    rados_completion_t c = completion();
    int rc = off ? rados_aio_write(w->c->io, oid, c, p->buf, p->fill, off)
                 : rados_aio_write_full(w->c->io, oid, c, p->buf, p->fill);
    if (rc < 0) {
        rados_aio_release(c);
        free(p->buf);
        w->err = w->err ? w->err : rc;
    } else
        ring_push(&w->ring, c, p->buf, p->fill);
    w->sent += p->fill;
    w->stripes = (w->sent + w->sb - 1) / w->sb;
    size_t left = w->sb - (size_t)(w->sent % w->sb);
    p->chunk = left < w->piece ? left : w->piece;
    p->buf = NULL;
    p->cap = p->fill = 0;
}

/* A free ring slot (waiting for the oldest write if need be); its buffer is returned. */
static char *ring_room(rput_t *w)
{
    char *spare = NULL;
    if (w->ring.n == RING) {
        int rc = ring_wait(&w->ring, &spare);
        if (rc < 0 && !w->err)
            w->err = rc;
    }
    return spare;
}

static int rados_put_flush(os_put_t *p, verr_t *e)
{
    rput_t *w = p->impl;
    char *spare = ring_room(w);
    send_piece(p);
    p->buf = spare ? spare : xmalloc(w->piece);
    p->cap = w->piece;
    return w->err ? rerr(e, w->err, "write", p->version) : 0;
}

/* Wait for all data and the pending key. */
static int drain(os_put_t *p)
{
    rput_t *w = p->impl;
    ring_drain(&w->ring, &w->err);
    if (w->ic) {
        int rc = finish(w->ic);
        rados_release_write_op(w->iop);
        w->ic = NULL;
        if (rc < 0 && !w->err)
            w->err = rc;
    }
    return w->err;
}

/* Send the last stripe (an empty object has none). */
static void send_tail(os_put_t *p)
{
    if (p->fill) {
        free(ring_room(p->impl));
        send_piece(p);
    }
}

/* After a lost race of a striped write: is its pending key still there, or did gc give
 * the write up as dead and take its data? */
static int pending_gone(os_put_t *p, verr_t *e)
{
    rput_t *w = p ? p->impl : NULL;
    if (!w || !w->ikey[0])
        return 0;
    char oid[OID_MAX], *val = NULL;
    size_t len;
    index_oid(oid, p->bucket);
    const char *keys[1] = {w->ikey};
    int rc = omap_get(w->c->io, oid, keys, 1, &val, &len);
    free(val);
    if (rc)
        return ierr(e, rc, p->bucket, "read");
    if (!val)
        return verr_set(e, 400, "RequestTimeout",
                        "Your socket connection to the server was not read from or written to within the timeout "
                        "period.");
    return 0;
}

static int rados_kapply(os_backend_t *b, const char *bucket, const char *key, const os_kstate_t *st,
                        const os_vplan_t *pl, os_put_t *p, verr_t *e)
{
    rput_t *w = p ? p->impl : NULL;
    batch_t bt = {0};
    plan_batch(&bt, key, st, pl);
    if (w && w->ikey[0]) {   /* the write's data is committed with it */
        batch_cmp(&bt, KV(w->ikey, w->pval, w->pvlen));
        batch_rm(&bt, KV(w->ikey, NULL, 0));
    }
    /* A write commits on the connection it wrote its data with; anything else on the
     * current one. */
    rconn_t *c = w ? w->c : rados_conn_get(R(b));
    int rc = batch_run(c->io, bucket, &bt);
    if (!w)
        rados_conn_put(R(b), c);
    batch_free(&bt);
    if (rc == -ECANCELED)
        return pending_gone(p, e) ? -1 : 1;
    if (rc == -ETIMEDOUT && w)
        w->stripes = 0;   /* outcome unknown: leave the data to gc (the pending key decides) */
    return rc ? ierr(e, rc, bucket, "commit") : 0;
}

/* A small object in a never-versioned bucket in one op when the key is free or inline:
 * 1 when a striped entry is there (os_vchange garbage-lists its data). */
static int commit_inline(rados_ioctx_t io, os_put_t *p, const json_t *rec, os_meta_t *out, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, p->bucket);
    char *okey = keyed('o', p->key);
    size_t len;
    char *val = entry_value(rec, &len);
    kv_t cmp = NOT_STRIPED(okey), set = KV(okey, val, len);
    int rc = omap_cas(io, oid, &cmp, 1, &set, 1, NULL, 0);
    free(val);
    free(okey);
    if (rc == -ECANCELED)
        return 1;
    if (rc)
        return ierr(e, rc, p->bucket, "commit");
    snprintf(out->version_id, sizeof out->version_id, "null");
    return 0;
}

static int rados_put_commit(os_put_t *p, json_t *rec, os_meta_t *out, verr_t *e)
{
    rados_impl_t *r = R(p->b);
    rput_t *w = p->impl;
    os_vop_t op = {.kind = OS_VOP_PUT, .vers = p->vers, .entry = rec};
    os_kstate_t st = {0};
    if (w->stripes == 0 && p->size <= r->inline_max) {
        json_object_del(rec, "v");   /* no data objects: the bytes go in the entry */
        json_object_set_new(rec, OS_INLINE_FIELD, json_stringn_nocheck(p->buf ? p->buf : "", p->fill));
        int rc = p->vers == OS_VERSIONING_OFF ? commit_inline(w->c->io, p, rec, out, e) : 1;
        if (rc <= 0)
            return rc;
        return os_vchange(p->b, p->bucket, p->key, &op, p, &st, 0, out, e);
    }
    send_tail(p);
    /* The key's versions are read while the data is still on its way. */
    os_kwant_t want;
    os_vop_wants(&op, &want);
    kread_t q;
    kload_start(w->c->io, p->bucket, p->key, &want, &q);
    int rc = drain(p);
    if (kload_finish(&q, p->bucket, &want, &st, e)) {
        os_kstate_clear(&st);
        return -1;
    }
    if (rc) {
        os_kstate_clear(&st);
        return rc == -ENOENT ? os_err_nosuchbucket(e, p->bucket) : rerr(e, rc, "write", p->version);
    }
    json_object_set_new(rec, "sb", json_integer((json_int_t)w->sb));
    return os_vchange(p->b, p->bucket, p->key, &op, p, &st, 1, out, e);
}

/* One attempt at a part's commit: the upload record's "gen" is bumped so that completion,
 * which compares only the record, notices any part that changed under it. */
static int part_try(rput_t *w, const char *oid, const char *mkey, const char *nkey,
                    const char *text, size_t tlen)
{
    json_t *head = json_loadb(w->head, w->headlen, 0, NULL);
    if (!json_is_object(head)) {
        json_decref(head);
        return -EIO;
    }
    json_object_set_new(head, "gen", json_integer(json_int(head, "gen", 0) + 1));
    size_t hlen;
    char *htext = os_json_text(head, &hlen), gkey[64];
    json_decref(head);
    int has_i = w->ikey[0] != 0;
    kv_t cmp[2] = {KV(mkey, w->head, w->headlen), KV(w->ikey, w->pval, w->pvlen)};
    kv_t set[3] = {KV(mkey, htext, hlen), KV(nkey, text, tlen)}, rm = KV(w->ikey, NULL, 0);
    if (w->old) {
        garbage_key(gkey);
        set[2] = KV(gkey, w->old, w->oldlen);
    }
    int rc = omap_cas(w->c->io, oid, cmp, has_i ? 2 : 1, set, w->old ? 3 : 2, &rm, has_i ? 1 : 0);
    free(htext);
    return rc;
}

/* After a lost race: the record and old part as they are now. */
static int part_reread(os_put_t *p, const char *oid, const char *mkey, const char *nkey, verr_t *e)
{
    rput_t *w = p->impl;
    int has_i = w->ikey[0] != 0;
    const char *keys[3] = {mkey, nkey, w->ikey};
    char *now[3];
    size_t nowlen[3];
    int rc = omap_get(w->c->io, oid, keys, has_i ? 3 : 2, now, nowlen);
    if (rc)
        return ierr(e, rc, p->bucket, "read upload");
    free(w->head);
    free(w->old);
    w->head = now[0], w->headlen = nowlen[0], w->old = now[1], w->oldlen = nowlen[1];
    if (has_i)
        free(now[2]);
    if (!w->head)
        return os_err_nosuchupload(e);   /* completed or aborted meanwhile */
    if (has_i && !now[2])
        return verr_set(e, 400, "RequestTimeout", "The part took too long and was given up.");
    return 0;
}

static int part_switch(os_put_t *p, const char *nkey, const char *text, size_t tlen, verr_t *e)
{
    rput_t *w = p->impl;
    char oid[OID_MAX];
    index_oid(oid, p->bucket);
    char *mkey = keyed('m', p->upload_id);
    int rc = 1;   /* 1: lost every race so far */
    for (int attempt = 0; attempt < OS_RETRIES && rc == 1; attempt++) {
        int crc = part_try(w, oid, mkey, nkey, text, tlen);
        if (crc == 0) {
            rc = 0;
            break;
        }
        if (crc != -ECANCELED) {
            if (crc == -ETIMEDOUT)
                w->stripes = 0;   /* may have been applied: the pending key lets gc decide */
            rc = ierr(e, crc, p->bucket, "commit part");
            break;
        }
        if (part_reread(p, oid, mkey, nkey, e))
            rc = -1;
    }
    if (rc == 1)
        rc = verr_set(e, 503, "ServiceUnavailable", "Too many concurrent part uploads; please retry.");
    free(mkey);
    return rc;
}

static int rados_part_commit(os_put_t *p, json_t *rec, verr_t *e)
{
    send_tail(p);
    int rc = drain(p);
    if (rc)
        return rc == -ENOENT ? os_err_nosuchbucket(e, p->bucket) : rerr(e, rc, "write", p->version);
    json_object_set_new(rec, "sb", json_integer((json_int_t)((rput_t *)p->impl)->sb));
    size_t tlen;
    char *text = os_json_text(rec, &tlen), num[16];
    snprintf(num, sizeof num, ".%05d", p->part);
    char *nkey = xasprintf("n%s%s", p->upload_id, num);
    rc = part_switch(p, nkey, text, tlen, e);
    free(nkey);
    free(text);
    return rc;
}

static void rados_put_free(os_put_t *p, int committed)
{
    rados_impl_t *r = R(p->b);
    rput_t *w = p->impl;
    if (!w)
        return;
    drain(p);
    if (!committed && w->stripes && !os_abort_leaves_data(p->b)) {
        /* Data first, then the pending key: a crash in between leaves the key for gc. On
         * the current connection: the write's own may be the one that stopped answering. */
        rconn_t *c = rados_conn_get(r);
        if (remove_stripes(c->io, p->bucket, p->version, w->stripes) == 0 && w->ikey[0]) {
            char oid[OID_MAX];
            index_oid(oid, p->bucket);
            kv_t k = KV(w->ikey, NULL, 0);
            omap_cas(c->io, oid, NULL, 0, NULL, 0, &k, 1);
        }
        rados_conn_put(r, c);
    }
    rados_conn_put(r, w->c);
    free(w->head);
    free(w->old);
    free(w);
    p->impl = NULL;
}

/* ---- reads ---- */

/* Reading one data piece: up to RING stripe reads of at most PIECE in flight ahead of the
 * reader, handed out in order. The connection is held until the cursor closes: librados
 * owns the buffers of reads in flight. */
typedef struct rcur {
    rados_impl_t *r;
    rconn_t *c;
    char bucket[OS_BUCKET_MAX + 1], v[OS_VERSION_LEN + 1];
    uint64_t sb, next, end;
    ring_t g;
    char *out;                  /* the buffer handed out last, freed at the next call */
} rcur_t;

static int rados_seg_open(os_backend_t *b, const char *bucket, const os_seg_t *s, uint64_t off, uint64_t len,
                          void **cursor, verr_t *e)
{
    (void)e;
    rcur_t *k = xcalloc(1, sizeof *k);
    k->r = R(b);
    k->c = rados_conn_get(k->r);
    snprintf(k->bucket, sizeof k->bucket, "%s", bucket);
    snprintf(k->v, sizeof k->v, "%s", s->v);
    k->sb = s->sb ? s->sb : k->r->sb;
    k->next = off;
    k->end = off + len;
    *cursor = k;
    return 0;
}

static long rados_seg_next(void *cursor, const char **data, verr_t *e)
{
    rcur_t *k = cursor;
    free(k->out);
    k->out = NULL;
    char oid[OID_MAX];
    while (k->next < k->end && k->g.n < RING) {
        uint64_t soff = k->next % k->sb, slen = k->sb - soff < k->end - k->next ? k->sb - soff : k->end - k->next;
        if (slen > PIECE)
            slen = PIECE;   /* the reader gets the first bytes sooner */
        stripe_oid(oid, k->bucket, k->v, k->next / k->sb);
        rados_completion_t c = completion();
        char *buf = xmalloc((size_t)slen);
        int rc = rados_aio_read(k->c->io, oid, c, buf, (size_t)slen, soff);
        if (rc < 0) {
            rados_aio_release(c);
            free(buf);
            return rerr(e, rc, "read", oid);
        }
        ring_push(&k->g, c, buf, (size_t)slen);
        k->next += slen;
    }
    if (!k->g.n)
        return 0;
    size_t want = k->g.len[k->g.head];
    int got = ring_wait(&k->g, &k->out);
    if (got < 0 || (size_t)got != want)   /* missing or short stripe: the data is damaged or gone */
        return rerr(e, got < 0 ? got : -EIO, "read", k->v);
    *data = k->out;
    return (long)want;
}

static void rados_seg_close(void *cursor)
{
    rcur_t *k = cursor;
    int ignored = 0;
    ring_drain(&k->g, &ignored);   /* librados must be done with the buffers */
    free(k->out);
    rados_conn_put(k->r, k->c);
    free(k);
}

/* ---- open / close ---- */

static void impl_free(rados_impl_t *r)
{
    free(r->pool);
    free(r->conf);
    free(r->keyring);
    free(r);
}

static void rados_close(os_backend_t *b)
{
    rados_impl_t *r = R(b);
    rados_conn_close(r);
    impl_free(r);
    free(b);
}

static const os_backend_ops_t rados_ops = {
    .name = "rados",
    .close = rados_close,
    .bucket_create = rados_bucket_create,
    .bucket_delete = rados_bucket_delete,
    .put_begin = rados_put_begin,
    .put_flush = rados_put_flush,
    .put_commit = rados_put_commit,
    .part_commit = rados_part_commit,
    .put_free = rados_put_free,
    .kload = rados_kload,
    .kapply = rados_kapply,
    .seg_open = rados_seg_open,
    .seg_next = rados_seg_next,
    .seg_close = rados_seg_close,
    .delete_fast = rados_delete_fast,
    .list = rados_list,
    .list_versions = rados_list_versions,
    .mpu_create = rados_mpu_create,
    .mpu_load = rados_mpu_load,
    .mpu_uploads = rados_mpu_uploads,
    .mpu_complete = rados_mpu_complete,
    .mpu_abort = rados_mpu_abort,
    .gc = rados_gc,
    .health = rados_health,
};

os_backend_t *os_rados_open(const config_t *cfg, verr_t *e)
{
    rados_impl_t *r = xcalloc(1, sizeof *r);
    long sb = config_int(cfg, "objectstore.rados.stripe_bytes", 4L * 1024 * 1024);
    /* RADOS objects beyond tens of MiB hurt recovery; below 4 KiB the op count explodes. */
    if (sb < 4096 || sb > 64L * 1024 * 1024) {
        verr_set(e, 500, "InternalError", "objectstore.rados.stripe_bytes must be 4096..67108864");
        free(r);
        return NULL;
    }
    r->sb = (size_t)sb;
    long inl = config_int(cfg, "objectstore.rados.inline_bytes", 16384);
    /* Inline data must still be in the writer's buffer at commit: at most one piece. */
    size_t piece = r->sb < PIECE ? r->sb : PIECE;
    r->inline_max = inl < 0 ? 0 : (size_t)inl < piece ? (size_t)inl : piece;
    r->pool = xstrdup(config_str(cfg, "objectstore.rados.pool", "virga"));
    const char *user = config_str(cfg, "objectstore.rados.user", "virga");
    const char *conf = config_str(cfg, "objectstore.rados.conf", NULL);
    const char *keyring = config_str(cfg, "objectstore.rados.keyring", NULL);
    snprintf(r->name, sizeof r->name, "%s%.100s", strncmp(user, "client.", 7) ? "client." : "", user);
    r->conf = conf && *conf ? xstrdup(conf) : NULL;
    r->keyring = keyring && *keyring ? xstrdup(keyring) : NULL;
    r->timeout_s = (int)config_int(cfg, "objectstore.rados.timeout_s", 10);
    r->probe_interval_ms = (int)config_int(cfg, "objectstore.rados.probe_interval_ms", 2000);
    r->probe_timeout_ms = (int)config_int(cfg, "objectstore.rados.probe_timeout_ms", 4000);
    if (r->probe_timeout_ms < 100)
        r->probe_timeout_ms = 100;
    if (rados_conn_open(r, e)) {
        rados_conn_close(r);
        impl_free(r);
        return NULL;
    }
    os_backend_t *b = xcalloc(1, sizeof *b);
    b->ops = &rados_ops;
    b->impl = r;
    return b;
}

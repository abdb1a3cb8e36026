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
 *   p<time>.<version>      pending: data being written, reaped by gc if never committed
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
 * "buckets" lists bucket ids for gc; "orphans" keeps the garbage of deleted buckets. */
#include "backend_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <rados/librados.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"

#define RING 4                  /* aio reads / writes in flight per request */
#define PIECE (1024 * 1024)     /* I/O unit within a stripe: sending starts before it is full */
#define OMAP_PAGE 10000         /* omap entries per round trip (all parts of an upload fit) */
#define GC_BUDGET 2000          /* garbage records handled per gc call */
#define REMOVE_BATCH 32         /* aio removes in flight in gc */
#define OID_MAX 256
#define REGISTRY "buckets"
#define ORPHANS "orphans"

typedef struct rados_impl {
    rados_t cluster;
    rados_ioctx_t io;
    char *pool;
    size_t sb;
    size_t inline_max;      /* objects up to this size live in their index value */
} rados_impl_t;

/* A ring of in-flight aio reads or writes, each with its buffer. */
typedef struct ring {
    rados_completion_t c[RING];
    char *buf[RING];
    size_t len[RING];
    int head, n;
} ring_t;

typedef struct rput {
    ring_t ring;
    uint64_t sent;                  /* bytes handed to librados */
    uint64_t stripes;               /* stripe objects written to (removed on abort) */
    size_t sb, piece;
    int err;                        /* first failed aio (negative errno) */
    char ikey[64];                  /* pending key, "" until data is written */
    rados_completion_t ic;          /* the pending key's write, while in flight */
    rados_write_op_t iop;
    char *head, *old;               /* part: upload record and old part entry as read */
    size_t headlen, oldlen;
} rput_t;

static const char PENDING_VAL[] = "{}";
#define INLINE_MARK '\x01'
/* Index values sort as: absent ("") < inline ("\x01...") < BELOW_JSON < JSON ("{..."). */
static const char BELOW_JSON[] = "\x02";

static rados_impl_t *R(os_backend_t *b)
{
    return b->impl;
}

static void index_oid(char out[OID_MAX], const char *bucket)
{
    snprintf(out, OID_MAX, "i.%s", bucket);
}

/* librados failure -> S3 error (timeouts are the cluster's fault, not ours). */
static int rerr(verr_t *e, int rc, const char *what, const char *oid)
{
    log_error("objectstore rados: %s %s: %s", what, oid, strerror(-rc));
    if (rc == -ETIMEDOUT)
        return verr_set(e, 503, "ServiceUnavailable", "The storage cluster did not answer in time.");
    return verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
}

/* Same, for an operation on a bucket's index object (missing = no such bucket). */
static int ierr(verr_t *e, int rc, const char *bucket, const char *what)
{
    if (rc == -ENOENT)
        return os_err_nosuchbucket(e, bucket);
    char oid[OID_MAX];
    index_oid(oid, bucket);
    return rerr(e, rc, what, oid);
}

static void stripe_oid(char out[OID_MAX], const char *bucket, const char *v, uint64_t n)
{
    snprintf(out, OID_MAX, "d.%s.%s.%" PRIu64, bucket, v, n);
}

static void garbage_key(char out[64])
{
    char id[OS_VERSION_LEN + 1];
    os_new_version(id);   /* fresh: the same data may be listed twice (crash recovery) */
    out[0] = 'g';
    os_stamp_name(out + 1, 63, (int64_t)time(NULL), id);
}

static rados_completion_t completion(void)
{
    rados_completion_t c;
    if (rados_aio_create_completion2(NULL, NULL, &c) < 0)
        abort();   /* allocation failure */
    return c;
}

static int finish(rados_completion_t c)
{
    rados_aio_wait_for_complete(c);
    int rc = rados_aio_get_return_value(c);
    rados_aio_release(c);
    return rc;
}

/* ---- omap helpers ---- */

typedef struct kv {
    const char *k, *v;
    size_t klen, vlen;
    int below;              /* as a comparison: value < v instead of value == v */
} kv_t;

static kv_t KV(const char *k, const char *v, size_t vlen)
{
    return (kv_t){k, v, strlen(k), vlen, 0};
}

/* "k is absent or holds an inline object": no data of its own to garbage-list. */
static kv_t NOT_STRIPED(const char *k)
{
    return (kv_t){k, BELOW_JSON, strlen(k), 1, 1};
}

/* One atomic write op on oid: the object must exist, every cmp must hold (value equal;
 * an empty value means "absent"), then set and remove. 0, -ECANCELED, -ENOENT, ... */
static int omap_cas(rados_impl_t *r, const char *oid, const kv_t *cmp, size_t ncmp, const kv_t *set, size_t nset,
                    const kv_t *rm, size_t nrm)
{
    rados_write_op_t op = rados_create_write_op();
    int *prv = xcalloc(ncmp + 1, sizeof *prv);
    const char **keys = xmalloc((nset + nrm + 1) * sizeof *keys), **vals = xmalloc((nset + 1) * sizeof *vals);
    size_t *klens = xmalloc((nset + nrm + 1) * sizeof *klens), *vlens = xmalloc((nset + 1) * sizeof *vlens);
    /* Index ops must never create the object: a write to a deleted bucket fails instead. */
    if (strcmp(oid, ORPHANS) != 0)
        rados_write_op_assert_exists(op);
    else
        rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
    for (size_t i = 0; i < ncmp; i++)
        rados_write_op_omap_cmp2(op, cmp[i].k, cmp[i].below ? LIBRADOS_CMPXATTR_OP_LT : LIBRADOS_CMPXATTR_OP_EQ,
                                 cmp[i].v ? cmp[i].v : "", cmp[i].klen, cmp[i].v ? cmp[i].vlen : 0, &prv[i]);
    for (size_t i = 0; i < nset; i++) {
        keys[i] = set[i].k, klens[i] = set[i].klen, vals[i] = set[i].v, vlens[i] = set[i].vlen;
    }
    if (nset)
        rados_write_op_omap_set2(op, keys, vals, klens, vlens, nset);
    for (size_t i = 0; i < nrm; i++) {
        keys[i] = rm[i].k, klens[i] = rm[i].klen;
    }
    if (nrm)
        rados_write_op_omap_rm_keys2(op, keys, klens, nrm);
    int rc = rados_write_op_operate2(op, r->io, oid, NULL, 0);
    rados_release_write_op(op);
    free(prv);
    free(keys);
    free(vals);
    free(klens);
    free(vlens);
    return rc;
}

/* An asynchronous read of some omap keys, so it can overlap a data write. */
typedef struct omap_req {
    rados_read_op_t op;
    rados_completion_t c;
    rados_omap_iter_t it;
    int prval, rc;
} omap_req_t;

static void omap_get_start(rados_impl_t *r, const char *oid, const char *const *keys, size_t n, omap_req_t *q)
{
    size_t klens[4];
    for (size_t i = 0; i < n && i < ARRAY_LEN(klens); i++)
        klens[i] = strlen(keys[i]);
    q->op = rados_create_read_op();
    q->c = completion();
    q->it = NULL;
    q->prval = 0;
    rados_read_op_omap_get_vals_by_keys2(q->op, keys, n, klens, &q->it, &q->prval);
    q->rc = rados_aio_read_op_operate(q->op, r->io, q->c, oid, 0);
}

/* Wait, then copy the values out (vals[i] = NULL when key i is absent). */
static int omap_get_finish(omap_req_t *q, const char *const *keys, size_t n, char **vals, size_t *lens)
{
    int rc = q->rc ? q->rc : finish(q->c);
    if (q->rc)
        rados_aio_release(q->c);
    if (!rc)
        rc = q->prval;
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL, lens[i] = 0;
    char *k, *v;
    size_t klen, vlen;
    while (!rc && q->it && rados_omap_get_next2(q->it, &k, &v, &klen, &vlen) == 0 && k)
        for (size_t i = 0; i < n; i++)
            if (!vals[i] && klen == strlen(keys[i]) && memcmp(k, keys[i], klen) == 0) {
                vals[i] = xmalloc(vlen + 1);
                memcpy(vals[i], v, vlen);
                vals[i][vlen] = '\0';
                lens[i] = vlen;
            }
    if (q->it)
        rados_omap_get_end(q->it);
    rados_release_read_op(q->op);
    return rc;
}

static int omap_get(rados_impl_t *r, const char *oid, const char *const *keys, size_t n, char **vals, size_t *lens)
{
    omap_req_t q;
    omap_get_start(r, oid, keys, n, &q);
    return omap_get_finish(&q, keys, n, vals, lens);
}


/* Call fn for each entry of an omap iterator; returns fn's first nonzero. */
typedef int (*omap_fn)(void *arg, const char *k, size_t klen, const char *v, size_t vlen);

static int iter_each(rados_omap_iter_t it, omap_fn fn, void *arg)
{
    char *k, *v;
    size_t klen, vlen;
    int stop = 0;
    while (!stop && it && rados_omap_get_next2(it, &k, &v, &klen, &vlen) == 0 && k)
        stop = fn(arg, k, klen, v, vlen);
    return stop;
}

typedef struct walk {
    omap_fn fn;
    void *arg;
    char *last;     /* the next page starts after it */
    int stopped;
} walk_t;

static int walk_track(void *a, const char *k, size_t klen, const char *v, size_t vlen)
{
    walk_t *w = a;
    free(w->last);
    w->last = xmalloc(klen + 1);
    memcpy(w->last, k, klen);
    w->last[klen] = '\0';
    w->stopped = w->fn(w->arg, k, klen, v, vlen);
    return w->stopped;
}

/* Up to `limit` entries with prefix after `after`, paged; fn may stop the walk. */
static int omap_walk(rados_impl_t *r, const char *oid, const char *after, const char *prefix, uint64_t limit,
                     omap_fn fn, void *arg)
{
    walk_t w = {fn, arg, xstrdup(after), 0};
    uint64_t seen = 0;
    int rc = 0;
    for (unsigned char more = 1; !rc && more && !w.stopped && seen < limit;) {
        uint64_t want = limit - seen < OMAP_PAGE ? limit - seen : OMAP_PAGE;
        rados_read_op_t op = rados_create_read_op();
        rados_omap_iter_t it = NULL;
        int prval = 0;
        more = 0;
        rados_read_op_omap_get_vals2(op, w.last, prefix, want, &it, &more, &prval);
        rc = rados_read_op_operate(op, r->io, oid, 0);
        if (!rc)
            rc = prval;
        if (!rc) {
            seen += rados_omap_iter_size(it);
            iter_each(it, walk_track, &w);
        }
        if (it)
            rados_omap_get_end(it);
        rados_release_read_op(op);
    }
    free(w.last);
    return rc;
}

static char *keyed(char prefix, const char *s)
{
    return xasprintf("%c%s", prefix, s);
}

/* ---- index values ---- */

static int is_inline(const char *v, size_t len)
{
    return v && len > 0 && v[0] == INLINE_MARK;
}

/* mark, entry JSON, NUL, the object's bytes. */
static char *inline_value(const json_t *rec, const char *data, size_t n, size_t *len)
{
    size_t jlen;
    char *json = os_json_text(rec, &jlen);
    char *v = xmalloc(jlen + n + 2);
    v[0] = INLINE_MARK;
    memcpy(v + 1, json, jlen);
    v[jlen + 1] = '\0';
    if (n)
        memcpy(v + jlen + 2, data, n);
    free(json);
    *len = jlen + n + 2;
    return v;
}

/* An index value as an entry; an inline object's bytes go to OS_INLINE_FIELD if wanted. */
static json_t *entry_parse(const char *v, size_t len, int with_data, verr_t *e)
{
    if (!is_inline(v, len))
        return os_json_parse(v, len, "index", e);
    const char *nul = memchr(v, '\0', len);
    if (!nul) {
        log_error("objectstore rados: corrupt inline index value (no metadata end)");
        verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
        return NULL;
    }
    json_t *ent = os_json_parse(v + 1, (size_t)(nul - v - 1), "index", e);
    if (ent && with_data)
        json_object_set_new(ent, OS_INLINE_FIELD, json_stringn_nocheck(nul + 1, len - (size_t)(nul + 1 - v)));
    return ent;
}

/* ---- versions: loading and changing one key's versions (layout: backend_internal.h) ---- */

/* Noncurrent entries are keyed v<E(key)>\x01\x01<sort key>, where E escapes \x01 as
 * \x01\x02: the separator sorts below anything a key can continue with, so the keys'
 * order is kept and one key's versions share a prefix no other key's have. (\0 would do
 * without escaping, but omap start keys and prefixes are C strings.) */
static char *vprefix(const char *key)
{
    size_t n = strlen(key), extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += key[i] == '\x01';
    char *out = xmalloc(1 + n + extra + 2 + OS_SK_LEN + 2), *o = out;
    *o++ = 'v';
    for (size_t i = 0; i < n; i++) {
        *o++ = key[i];
        if (key[i] == '\x01')
            *o++ = '\x02';
    }
    *o++ = '\x01';
    *o++ = '\x01';
    *o = '\0';
    return out;
}

/* A key's noncurrent entry sk; sk "~" is past all of them (hex sorts below '~'). */
static char *vkey(const char *key, const char *sk)
{
    char *k = vprefix(key);
    size_t n = strlen(k), skl = strnlen(sk, OS_SK_LEN);
    memcpy(k + n, sk, skl);   /* vprefix left room for a sort key */
    k[n + skl] = '\0';
    return k;
}

/* The object key of a noncurrent omap key and its sort key; NULL if k is not one. */
static char *vkey_parse(const char *k, size_t klen, char sk[OS_SK_LEN + 1])
{
    if (klen < 3 + OS_SK_LEN || k[0] != 'v' || k[klen - OS_SK_LEN - 1] != '\x01' || k[klen - OS_SK_LEN - 2] != '\x01')
        return NULL;
    memcpy(sk, k + klen - OS_SK_LEN, OS_SK_LEN);
    sk[OS_SK_LEN] = '\0';
    size_t end = klen - OS_SK_LEN - 2, o = 0;
    char *key = xmalloc(end);
    for (size_t i = 1; i < end; i++) {
        key[o++] = k[i];
        if (k[i] == '\x01')
            i++;   /* the escape's \x02 */
    }
    key[o] = '\0';
    return key;
}

/* An entry as its index value: inline when it carries its bytes. */
static char *entry_value(const json_t *ent, size_t *len)
{
    const json_t *inl = json_object_get(ent, OS_INLINE_FIELD);
    if (!inl)
        return os_json_text(ent, len);
    json_t *c = json_copy((json_t *)ent);
    json_object_del(c, OS_INLINE_FIELD);
    char *v = inline_value(c, json_string_value(inl), json_string_length(inl), len);
    json_decref(c);
    return v;
}

/* The read of one key's records: head, noncurrent entries by sort key, the newest
 * noncurrent one, all in one read op (one snapshot). */
typedef struct kread {
    rados_read_op_t op;
    rados_completion_t c;
    rados_omap_iter_t it[2];
    int prv[2], rc;
    unsigned char more;
    char *keys[1 + OS_KREC_MAX], *npfx;
    size_t klens[1 + OS_KREC_MAX], nkeys;
} kread_t;

static void kload_start(rados_impl_t *r, const char *bucket, const char *key, const os_kwant_t *w, kread_t *q)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    memset(q, 0, sizeof *q);
    q->keys[q->nkeys++] = keyed('o', key);
    for (size_t i = 0; i < w->nsk; i++)
        q->keys[q->nkeys++] = vkey(key, w->sk[i]);
    for (size_t i = 0; i < q->nkeys; i++)
        q->klens[i] = strlen(q->keys[i]);
    q->op = rados_create_read_op();
    rados_read_op_omap_get_vals_by_keys2(q->op, (const char *const *)q->keys, q->nkeys, q->klens, &q->it[0],
                                         &q->prv[0]);
    if (w->next) {
        q->npfx = vprefix(key);
        rados_read_op_omap_get_vals2(q->op, q->npfx, q->npfx, 1, &q->it[1], &q->more, &q->prv[1]);
    }
    q->c = completion();
    q->rc = rados_aio_read_op_operate(q->op, r->io, q->c, oid, 0);
}

static void krec_set(os_krec_t *rec, const char *v, size_t vlen)
{
    rec->raw = xmalloc(vlen + 1);
    memcpy(rec->raw, v, vlen);
    rec->raw[vlen] = '\0';
    rec->rawlen = vlen;
}

static int krec_parse(os_krec_t *rec, verr_t *e)
{
    if (rec->raw && !(rec->ent = entry_parse(rec->raw, rec->rawlen, 1, e)))
        return -1;
    return 0;
}

static int kload_finish(kread_t *q, const char *bucket, const os_kwant_t *w, os_kstate_t *st, verr_t *e)
{
    int rc = q->rc ? q->rc : finish(q->c);
    if (q->rc)
        rados_aio_release(q->c);
    rc = rc ? rc : q->prv[0] ? q->prv[0] : q->prv[1];
    os_kstate_clear(st);
    st->nnc = w->nsk;
    for (size_t i = 0; i < w->nsk; i++)
        memcpy(st->nc[i].sk, w->sk[i], OS_SK_LEN + 1);
    st->has_next = w->next;
    char *k, *v;
    size_t kl, vl;
    while (!rc && q->it[0] && rados_omap_get_next2(q->it[0], &k, &v, &kl, &vl) == 0 && k)
        for (size_t i = 0; i < q->nkeys; i++)
            if (kl == q->klens[i] && !memcmp(k, q->keys[i], kl))
                krec_set(i ? &st->nc[i - 1] : &st->head, v, vl);
    if (!rc && q->it[1] && rados_omap_get_next2(q->it[1], &k, &v, &kl, &vl) == 0 && k) {
        char *key = vkey_parse(k, kl, st->next.sk);
        if (key)
            krec_set(&st->next, v, vl);
        free(key);
    }
    for (int i = 0; i < 2; i++)
        if (q->it[i])
            rados_omap_get_end(q->it[i]);
    rados_release_read_op(q->op);
    for (size_t i = 0; i < q->nkeys; i++)
        free(q->keys[i]);
    free(q->npfx);
    if (rc)
        return ierr(e, rc, bucket, "read");
    int bad = krec_parse(&st->head, e) || krec_parse(&st->next, e);
    for (size_t i = 0; i < st->nnc && !bad; i++)
        bad = krec_parse(&st->nc[i], e);
    return bad ? -1 : 0;
}

static int rados_kload(os_backend_t *b, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st,
                       verr_t *e)
{
    kread_t q;
    kload_start(R(b), bucket, key, w, &q);
    return kload_finish(&q, bucket, w, st, e);
}

/* The compares, sets and removals of one atomic index op, with the strings they use. */
typedef struct batch {
    kv_t *cmp, *set, *rm;
    size_t ncmp, nset, nrm, ccmp, cset, crm;
    char **owned;
    size_t nowned, cowned;
} batch_t;

static void kv_push(kv_t **a, size_t *n, size_t *cap, kv_t kv)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *a = xrealloc(*a, *cap * sizeof **a);
    }
    (*a)[(*n)++] = kv;
}

static char *batch_own(batch_t *bt, char *s)
{
    if (bt->nowned == bt->cowned) {
        bt->cowned = bt->cowned ? 2 * bt->cowned : 16;
        bt->owned = xrealloc(bt->owned, bt->cowned * sizeof *bt->owned);
    }
    bt->owned[bt->nowned++] = s;
    return s;
}

static void batch_cmp(batch_t *bt, kv_t kv) { kv_push(&bt->cmp, &bt->ncmp, &bt->ccmp, kv); }
static void batch_set(batch_t *bt, kv_t kv) { kv_push(&bt->set, &bt->nset, &bt->cset, kv); }
static void batch_rm(batch_t *bt, kv_t kv) { kv_push(&bt->rm, &bt->nrm, &bt->crm, kv); }

/* A record listed as garbage in the op: gc deletes its data after the grace period. */
static void batch_garbage(batch_t *bt, const char *text, size_t len)
{
    char *gk = batch_own(bt, xmalloc(64));
    garbage_key(gk);
    batch_set(bt, KV(gk, text, len));
}

static int batch_run(rados_impl_t *r, const char *bucket, const batch_t *bt)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    return omap_cas(r, oid, bt->cmp, bt->ncmp, bt->set, bt->nset, bt->rm, bt->nrm);
}

static void batch_free(batch_t *bt)
{
    for (size_t i = 0; i < bt->nowned; i++)
        free(bt->owned[i]);
    free(bt->owned);
    free(bt->cmp);
    free(bt->set);
    free(bt->rm);
    memset(bt, 0, sizeof *bt);
}

/* A plan as index changes, each record it changes compared with what was loaded. */
static void plan_batch(batch_t *bt, const char *key, const os_kstate_t *st, const os_vplan_t *pl)
{
    size_t len;
    char *okey = batch_own(bt, keyed('o', key));
    batch_cmp(bt, KV(okey, st->head.raw, st->head.rawlen));
    if (pl->put) {
        char *vk = batch_own(bt, vkey(key, pl->put_sk));
        const os_krec_t *was = os_kstate_find(st, pl->put_sk);
        if (was)
            batch_cmp(bt, KV(vk, was->raw, was->rawlen));
        char *val = batch_own(bt, entry_value(pl->put, &len));
        batch_set(bt, KV(vk, val, len));
    }
    if (pl->rm_sk[0]) {
        char *vk = batch_own(bt, vkey(key, pl->rm_sk));
        const os_krec_t *was = os_kstate_find(st, pl->rm_sk);
        batch_cmp(bt, KV(vk, was ? was->raw : NULL, was ? was->rawlen : 0));
        batch_rm(bt, KV(vk, NULL, 0));
    }
    if (pl->head_op == OS_HEAD_SET) {
        char *val = batch_own(bt, entry_value(pl->head, &len));
        batch_set(bt, KV(okey, val, len));
    } else if (pl->head_op == OS_HEAD_REMOVE)
        batch_rm(bt, KV(okey, NULL, 0));
    size_t i;
    json_t *g;
    json_array_foreach(pl->garbage, i, g) {
        char *text = batch_own(bt, os_json_text(g, &len));
        batch_garbage(bt, text, len);
    }
}

/* After a lost race of a striped write: is its pending key still there, or did gc give
 * the write up as dead and take its data? */
static int pending_gone(rados_impl_t *r, os_put_t *p, verr_t *e)
{
    rput_t *w = p ? p->impl : NULL;
    if (!w || !w->ikey[0])
        return 0;
    char oid[OID_MAX], *val = NULL;
    size_t len;
    index_oid(oid, p->bucket);
    const char *keys[1] = {w->ikey};
    int rc = omap_get(r, oid, keys, 1, &val, &len);
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
    rados_impl_t *r = R(b);
    rput_t *w = p ? p->impl : NULL;
    batch_t bt = {0};
    plan_batch(&bt, key, st, pl);
    if (w && w->ikey[0]) {   /* the write's data is committed with it */
        batch_cmp(&bt, KV(w->ikey, PENDING_VAL, sizeof PENDING_VAL - 1));
        batch_rm(&bt, KV(w->ikey, NULL, 0));
    }
    int rc = batch_run(r, bucket, &bt);
    batch_free(&bt);
    if (rc == -ECANCELED)
        return pending_gone(r, p, e) ? -1 : 1;
    if (rc == -ETIMEDOUT && w)
        w->stripes = 0;   /* outcome unknown: leave the data to gc (the pending key decides) */
    return rc ? ierr(e, rc, bucket, "commit") : 0;
}

/* Never-versioned buckets keep the fast paths: a small object replaces an absent or
 * inline null version in one op, a delete removes one. 1: a striped entry is there. */
static int rados_delete_fast(os_backend_t *b, const char *bucket, const char *key, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *okey = keyed('o', key);
    kv_t cmp = NOT_STRIPED(okey), rm = KV(okey, NULL, 0);
    int rc = omap_cas(R(b), oid, &cmp, 1, NULL, 0, &rm, 1);
    free(okey);
    if (rc == -ECANCELED)
        return 1;
    return rc ? ierr(e, rc, bucket, "delete") : 0;
}

static int commit_inline(rados_impl_t *r, os_put_t *p, const json_t *rec, os_meta_t *out, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, p->bucket);
    char *okey = keyed('o', p->key);
    size_t len;
    char *val = entry_value(rec, &len);
    kv_t cmp = NOT_STRIPED(okey), set = KV(okey, val, len);
    int rc = omap_cas(r, oid, &cmp, 1, &set, 1, NULL, 0);
    free(val);
    free(okey);
    if (rc == -ECANCELED)
        return 1;
    if (rc)
        return ierr(e, rc, p->bucket, "commit");
    snprintf(out->version_id, sizeof out->version_id, "null");
    return 0;
}

/* ---- data stripes ---- */

static void ring_push(ring_t *g, rados_completion_t c, char *buf, size_t len)
{
    if (g->n == RING)
        abort();   /* callers make room first: overwriting a slot would lose an op */
    int i = (g->head + g->n) % RING;
    g->c[i] = c, g->buf[i] = buf, g->len[i] = len;
    g->n++;
}

/* Wait for the oldest op; its buffer is handed back in *buf. */
static int ring_wait(ring_t *g, char **buf)
{
    int i = g->head;
    int rc = finish(g->c[i]);
    *buf = g->buf[i];
    g->head = (g->head + 1) % RING;
    g->n--;
    return rc;
}

static void ring_drain(ring_t *g, int *err)
{
    while (g->n) {
        char *buf;
        int rc = ring_wait(g, &buf);
        free(buf);
        if (rc < 0 && !*err)
            *err = rc;
    }
}

/* Remove stripes [0, n) of a version; n = UINT64_MAX when the count is unknown (a write
 * that died): go on until a whole batch is missing (at most RING were ever in flight, so
 * a gap is shorter than a batch). Missing stripes are fine; returns the first other error. */
static int remove_stripes(rados_impl_t *r, const char *bucket, const char *v, uint64_t n)
{
    int err = 0;
    for (uint64_t i = 0; i < n;) {
        rados_completion_t c[REMOVE_BATCH];
        int k = 0, missing = 0;
        for (; k < REMOVE_BATCH && i + (uint64_t)k < n; k++) {
            char oid[OID_MAX];
            stripe_oid(oid, bucket, v, i + (uint64_t)k);
            c[k] = completion();
            int rc = rados_aio_remove(r->io, oid, c[k]);
            if (rc < 0) {
                rados_aio_release(c[k]);
                c[k] = NULL;
                err = err ? err : rc;
            }
        }
        for (int j = 0; j < k; j++) {
            int rc = c[j] ? finish(c[j]) : 0;
            if (rc == -ENOENT)
                missing++;
            else if (rc < 0 && !err)
                err = rc;
        }
        i += (uint64_t)k;
        if (n == UINT64_MAX && missing == k)
            break;
    }
    return err;
}

static int remove_seg(void *arg, const os_seg_t *s)
{
    void **a = arg;
    int rc = remove_stripes(a[0], a[1], s->v, os_seg_stripes(s));
    if (rc < 0)
        log_warn("objectstore rados: removing data %s of bucket %s: %s", s->v, (const char *)a[1], strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* Delete the data a garbage record refers to; 0 when it is all gone. */
static int remove_record(rados_impl_t *r, const char *bucket, const char *text, size_t len)
{
    json_t *rec = os_json_parse(text, len, "garbage", NULL);
    void *a[2] = {r, (void *)bucket};
    int rc = rec ? os_entry_walk(rec, remove_seg, a) : 0;   /* unreadable: nothing to find */
    json_decref(rec);
    return rc;
}

/* ---- buckets ---- */

static int rados_bucket_create(os_backend_t *b, const char *bucket, verr_t *e)
{
    rados_impl_t *r = R(b);
    char oid[OID_MAX];
    index_oid(oid, bucket);
    /* Registered first so that gc finds every bucket that may hold data. */
    rados_write_op_t op = rados_create_write_op();
    const char *k = bucket, *v = "1";
    size_t kl = strlen(bucket), vl = 1;
    rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
    rados_write_op_omap_set2(op, &k, &v, &kl, &vl, 1);
    int rc = rados_write_op_operate2(op, r->io, REGISTRY, NULL, 0);
    rados_release_write_op(op);
    if (rc < 0)
        return rerr(e, rc, "register", REGISTRY);
    op = rados_create_write_op();
    rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
    rc = rados_write_op_operate2(op, r->io, oid, NULL, 0);
    rados_release_write_op(op);
    return rc < 0 ? rerr(e, rc, "create", oid) : 0;
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
static int copy_orphans(rados_impl_t *r, const char *oid, const char *bucket)
{
    orphan_copy_t o = {bucket, NULL, NULL, 0, 0};
    int rc = omap_walk(r, oid, "g", "g", UINT64_MAX, orphan_add, &o);
    if (!rc)
        rc = omap_walk(r, oid, "p", "p", UINT64_MAX, orphan_add, &o);
    if (!rc && o.n)
        rc = omap_cas(r, ORPHANS, NULL, 0, o.kv, o.n, NULL, 0);
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

static int rados_bucket_delete(os_backend_t *b, const char *bucket, verr_t *e)
{
    rados_impl_t *r = R(b);
    char oid[OID_MAX];
    index_oid(oid, bucket);
    for (int attempt = 0; attempt < OS_RETRIES; attempt++) {
        /* A private ioctx: the version it reports is the one of our read, not of
         * another thread's op. */
        rados_ioctx_t io;
        int used = 0, rc = rados_ioctx_create(r->cluster, r->pool, &io);
        if (rc < 0)
            return rerr(e, rc, "ioctx", r->pool);
        uint64_t ver = 0;
        rc = index_in_use(io, oid, &used, &ver);
        if (!rc && !used)
            rc = copy_orphans(r, oid, bucket);
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
        rc = omap_cas(r, REGISTRY, NULL, 0, NULL, 0, &k, 1);
        if (rc)
            log_warn("objectstore rados: unregister %s: %s (gc retries)", bucket, strerror(-rc));
        return 0;
    }
    return verr_set(e, 503, "ServiceUnavailable", "The bucket is too busy to delete; please retry.");
}

/* ---- writes ---- */

static int rados_put_begin(os_put_t *p, verr_t *e)
{
    rados_impl_t *r = R(p->b);
    rput_t *w = xcalloc(1, sizeof *w);
    p->impl = w;
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
    int rc = omap_get(r, oid, keys, 2, vals, lens);
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
    rados_impl_t *r = R(p->b);
    rput_t *w = p->impl;
    char oid[OID_MAX];
    index_oid(oid, p->bucket);
    w->ikey[0] = 'p';
    os_stamp_name(w->ikey + 1, sizeof w->ikey - 1, (int64_t)time(NULL), p->version);
    const char *k = w->ikey, *v = PENDING_VAL;
    size_t kl = strlen(k), vl = sizeof PENDING_VAL - 1;
    w->iop = rados_create_write_op();
    rados_write_op_assert_exists(w->iop);
    rados_write_op_omap_set2(w->iop, &k, &v, &kl, &vl, 1);
    w->ic = completion();
    int rc = rados_aio_write_op_operate(w->iop, r->io, w->ic, oid, NULL, 0);
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
    rados_impl_t *r = R(p->b);
    rput_t *w = p->impl;
    char oid[OID_MAX];
    uint64_t off = w->sent % w->sb;
    stripe_oid(oid, p->bucket, p->version, w->sent / w->sb);
    if (!w->ikey[0])
        start_pending(p);
    rados_completion_t c = completion();
    int rc = off ? rados_aio_write(r->io, oid, c, p->buf, p->fill, off)
                 : rados_aio_write_full(r->io, oid, c, p->buf, p->fill);
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

static int rados_put_commit(os_put_t *p, json_t *rec, os_meta_t *out, verr_t *e)
{
    rados_impl_t *r = R(p->b);
    rput_t *w = p->impl;
    os_vop_t op = {.kind = OS_VOP_PUT, .vers = p->vers, .entry = rec};
    os_kstate_t st = {0};
    if (w->stripes == 0 && p->size <= r->inline_max) {
        json_object_del(rec, "v");   /* no data objects: the bytes go in the entry */
        json_object_set_new(rec, OS_INLINE_FIELD, json_stringn_nocheck(p->buf ? p->buf : "", p->fill));
        int rc = p->vers == OS_VERSIONING_OFF ? commit_inline(r, p, rec, out, e) : 1;
        if (rc <= 0)
            return rc;
        return os_vchange(p->b, p->bucket, p->key, &op, p, &st, 0, out, e);
    }
    send_tail(p);
    /* The key's versions are read while the data is still on its way. */
    os_kwant_t want;
    os_vop_wants(&op, &want);
    kread_t q;
    kload_start(r, p->bucket, p->key, &want, &q);
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
static int part_try(rados_impl_t *r, rput_t *w, const char *oid, const char *mkey, const char *nkey,
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
    kv_t cmp[2] = {KV(mkey, w->head, w->headlen), KV(w->ikey, PENDING_VAL, sizeof PENDING_VAL - 1)};
    kv_t set[3] = {KV(mkey, htext, hlen), KV(nkey, text, tlen)}, rm = KV(w->ikey, NULL, 0);
    if (w->old) {
        garbage_key(gkey);
        set[2] = KV(gkey, w->old, w->oldlen);
    }
    int rc = omap_cas(r, oid, cmp, has_i ? 2 : 1, set, w->old ? 3 : 2, &rm, has_i ? 1 : 0);
    free(htext);
    return rc;
}

/* After a lost race: the record and old part as they are now. */
static int part_reread(rados_impl_t *r, os_put_t *p, const char *oid, const char *mkey, const char *nkey, verr_t *e)
{
    rput_t *w = p->impl;
    int has_i = w->ikey[0] != 0;
    const char *keys[3] = {mkey, nkey, w->ikey};
    char *now[3];
    size_t nowlen[3];
    int rc = omap_get(r, oid, keys, has_i ? 3 : 2, now, nowlen);
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

static int part_switch(rados_impl_t *r, os_put_t *p, const char *nkey, const char *text, size_t tlen, verr_t *e)
{
    rput_t *w = p->impl;
    char oid[OID_MAX];
    index_oid(oid, p->bucket);
    char *mkey = keyed('m', p->upload_id);
    int rc = 1;   /* 1: lost every race so far */
    for (int attempt = 0; attempt < OS_RETRIES && rc == 1; attempt++) {
        int crc = part_try(r, w, oid, mkey, nkey, text, tlen);
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
        if (part_reread(r, p, oid, mkey, nkey, e))
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
    rc = part_switch(R(p->b), p, nkey, text, tlen, e);
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
    if (!committed && w->stripes) {
        /* Data first, then the pending key: a crash in between leaves the key for gc. */
        if (remove_stripes(r, p->bucket, p->version, w->stripes) == 0 && w->ikey[0]) {
            char oid[OID_MAX];
            index_oid(oid, p->bucket);
            kv_t k = KV(w->ikey, NULL, 0);
            omap_cas(r, oid, NULL, 0, NULL, 0, &k, 1);
        }
    }
    free(w->head);
    free(w->old);
    free(w);
    p->impl = NULL;
}

/* ---- reads ---- */

static int rados_read_seg(os_backend_t *b, const char *bucket, const os_seg_t *s, uint64_t off, uint64_t len,
                          os_sink_fn sink, void *arg, verr_t *e)
{
    rados_impl_t *r = R(b);
    uint64_t sb = s->sb ? s->sb : r->sb, next = off, end = off + len;
    ring_t g = {0};
    int rc = 0;
    char oid[OID_MAX];
    while (!rc && (next < end || g.n)) {
        /* Keep RING stripe reads in flight, hand them to the sink in order. */
        while (!rc && next < end && g.n < RING) {
            uint64_t soff = next % sb, slen = sb - soff < end - next ? sb - soff : end - next;
            if (slen > PIECE)
                slen = PIECE;   /* the sink gets the first bytes sooner */
            stripe_oid(oid, bucket, s->v, next / sb);
            rados_completion_t c = completion();
            char *buf = xmalloc((size_t)slen);
            int arc = rados_aio_read(r->io, oid, c, buf, (size_t)slen, soff);
            if (arc < 0) {
                rados_aio_release(c);
                free(buf);
                rc = rerr(e, arc, "read", oid);
            } else
                ring_push(&g, c, buf, (size_t)slen);
            next += slen;
        }
        if (rc || !g.n)
            break;
        size_t want = g.len[g.head];
        char *buf;
        int got = ring_wait(&g, &buf);
        if (got < 0 || (size_t)got != want)   /* missing or short stripe: the data is damaged */
            rc = rerr(e, got < 0 ? got : -EIO, "read", s->v);
        else
            rc = os_sink_call(sink, arg, buf, want, e);
        free(buf);
    }
    int ignored = 0;
    ring_drain(&g, &ignored);   /* librados must be done with the buffers */
    return rc;
}

/* ---- listing ---- */

typedef struct list_ctx {
    os_list_fn fn;
    void *arg;
    size_t max, count;
    uint64_t seen;
    char *last;             /* the last omap key seen (the next page starts after it) */
    int *truncated;
    int err;
    verr_t *e;
} list_ctx_t;

static int list_one(void *a, const char *k, size_t klen, const char *v, size_t vlen)
{
    list_ctx_t *l = a;
    l->seen++;
    free(l->last);
    l->last = xmalloc(klen + 1);
    memcpy(l->last, k, klen);
    l->last[klen] = '\0';
    json_t *ent = entry_parse(v, vlen, 0, l->e);
    if (ent && os_entry_is_dm(ent)) {
        json_decref(ent);
        return 0;   /* deleted: only ListObjectVersions shows it */
    }
    if (l->count == l->max) {
        json_decref(ent);
        *l->truncated = 1;
        return 1;
    }
    l->err = ent ? os_list_emit(l->fn, l->arg, l->last + 1, ent, 1, l->e) : -1;
    json_decref(ent);
    l->count++;
    return l->err;
}

static int rados_list(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
                      os_list_fn fn, void *arg, int *truncated, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *after = keyed('o', start_after), *pfx = keyed('o', prefix);
    list_ctx_t l = {fn, arg, max, 0, 0, NULL, truncated, 0, e};
    int rc = 0;
    /* One entry more than asked tells whether the listing is truncated; delete markers
     * are skipped, so a page that had some is followed by another. */
    for (;;) {
        uint64_t want = max >= UINT64_MAX - 1 ? UINT64_MAX : (uint64_t)(max - l.count) + 1;
        l.seen = 0;
        rc = omap_walk(R(b), oid, after, pfx, want, list_one, &l);
        if (rc || l.err || *truncated || l.seen < want || !l.last)
            break;
        free(after);
        after = xstrdup(l.last);
    }
    free(l.last);
    free(after);
    free(pfx);
    if (rc)
        return ierr(e, rc, bucket, "list");
    return l.err ? -1 : 0;
}

/* An ordered omap range read page by page: the heads (o...) and the noncurrent entries
 * (v...) are two such ranges, merged by key for ListObjectVersions. */
typedef struct ocur {
    char *after;
    const char *prefix;
    char **k, **v;
    size_t *kl, *vl, n, i;
    unsigned char more;
    int started;
} ocur_t;

static void ocur_drop(ocur_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->k[i]);
        free(c->v[i]);
    }
    c->n = c->i = 0;
}

static void ocur_free(ocur_t *c)
{
    ocur_drop(c);
    free(c->k);
    free(c->v);
    free(c->kl);
    free(c->vl);
    free(c->after);
}

/* Make the current entry available (c->i < c->n) unless the range is exhausted. */
static int ocur_fill(rados_impl_t *r, const char *oid, ocur_t *c, uint64_t page)
{
    if (c->i < c->n || (c->started && !c->more))
        return 0;
    ocur_drop(c);
    c->started = 1;
    rados_read_op_t op = rados_create_read_op();
    rados_omap_iter_t it = NULL;
    int prval = 0;
    c->more = 0;
    rados_read_op_omap_get_vals2(op, c->after, c->prefix, page, &it, &c->more, &prval);
    int rc = rados_read_op_operate(op, r->io, oid, 0);
    rc = rc ? rc : prval;
    size_t n = rc || !it ? 0 : rados_omap_iter_size(it);
    c->k = xrealloc(c->k, (n + 1) * sizeof *c->k);
    c->v = xrealloc(c->v, (n + 1) * sizeof *c->v);
    c->kl = xrealloc(c->kl, (n + 1) * sizeof *c->kl);
    c->vl = xrealloc(c->vl, (n + 1) * sizeof *c->vl);
    char *k, *v;
    size_t kl, vl;
    while (!rc && it && c->n < n && rados_omap_get_next2(it, &k, &v, &kl, &vl) == 0 && k) {
        /* Inline bytes are not listed: keep the metadata only. */
        const char *nul = is_inline(v, vl) ? memchr(v, '\0', vl) : NULL;
        if (nul)
            vl = (size_t)(nul - v) + 1;
        c->k[c->n] = xmalloc(kl + 1);
        memcpy(c->k[c->n], k, kl);
        c->k[c->n][kl] = '\0';
        c->v[c->n] = xmalloc(vl + 1);
        memcpy(c->v[c->n], v, vl);
        c->kl[c->n] = kl, c->vl[c->n] = vl;
        c->n++;
    }
    if (it)
        rados_omap_get_end(it);
    rados_release_read_op(op);
    if (c->n) {
        free(c->after);
        c->after = xstrdup(c->k[c->n - 1]);
    }
    return rc;
}

static int rados_list_versions(os_backend_t *b, const char *bucket, const char *prefix, const char *after_key,
                               const char *after_sk, size_t max, os_list_fn fn, void *arg, int *truncated,
                               verr_t *e)
{
    rados_impl_t *r = R(b);
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *opfx = keyed('o', prefix), *vpfx = vprefix(prefix);
    vpfx[strlen(vpfx) - 2] = '\0';   /* v<E(prefix)>: every key that begins with prefix */
    /* Heads after after_key; noncurrent entries after the position in after_key. */
    ocur_t o = {.after = keyed('o', after_key), .prefix = opfx};
    ocur_t v = {.after = vkey(after_key, after_sk ? after_sk : "~"), .prefix = vpfx};
    uint64_t page = max < 1000 ? (uint64_t)max + 1 : 1001;
    size_t count = 0;
    int rc = 0, err = 0;
    while (!rc && !err) {
        if ((rc = ocur_fill(r, oid, &o, page)) || (rc = ocur_fill(r, oid, &v, page)))
            break;
        int ho = o.i < o.n, hv = v.i < v.n;
        if (!ho && !hv)
            break;
        char sk[OS_SK_LEN + 1], *vk = hv ? vkey_parse(v.k[v.i], v.kl[v.i], sk) : NULL;
        if (hv && !vk) {   /* not a noncurrent entry: never written by us */
            v.i++;
            continue;
        }
        int head = !hv;
        if (ho && hv) {
            size_t ol = o.kl[o.i] - 1, vl = strlen(vk);
            int c = memcmp(o.k[o.i] + 1, vk, ol < vl ? ol : vl);
            head = c < 0 || (c == 0 && ol <= vl);   /* a key's head comes before its older versions */
        }
        if (count == max) {
            free(vk);
            *truncated = 1;
            break;
        }
        ocur_t *c = head ? &o : &v;
        json_t *ent = entry_parse(c->v[c->i], c->vl[c->i], 0, e);
        err = ent ? os_list_emit(fn, arg, head ? o.k[o.i] + 1 : vk, ent, head, e) : -1;
        json_decref(ent);
        free(vk);
        c->i++;
        count++;
    }
    ocur_free(&o);
    ocur_free(&v);
    free(opfx);
    free(vpfx);
    if (rc)
        return ierr(e, rc, bucket, "list versions");
    return err ? -1 : 0;
}

/* ---- multipart ---- */

static int rados_mpu_create(os_backend_t *b, const char *bucket, const char *id, json_t *upload, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *mkey = keyed('m', id);
    size_t len;
    char *text = os_json_text(upload, &len);
    kv_t set = KV(mkey, text, len);
    int rc = omap_cas(R(b), oid, NULL, 0, &set, 1, NULL, 0);
    free(text);
    free(mkey);
    return rc ? ierr(e, rc, bucket, "create upload") : 0;
}

/* An upload as stored: raw record bytes (compared at completion), its parts, the part
 * keys, and optionally the index entry it would replace. */
typedef struct upload {
    char *head, *old;
    size_t headlen, oldlen;
    json_t *parts;          /* {"<n>": part entry} */
    json_t *keys;           /* [part omap key, ...] */
    json_t *texts;          /* [part entry text, ...] */
} upload_t;

static void upload_free(upload_t *u)
{
    free(u->head);
    free(u->old);
    json_decref(u->parts);
    json_decref(u->keys);
    json_decref(u->texts);
    memset(u, 0, sizeof *u);
}

static int collect_part(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    upload_t *u = arg;
    const char *dot = memrchr(k, '.', klen);
    json_t *p = dot ? json_loadb(v, vlen, 0, NULL) : NULL;
    if (p) {
        char num[16];
        snprintf(num, sizeof num, "%d", atoi(dot + 1));
        json_object_set_new(u->parts, num, p);
        json_array_append_new(u->keys, json_stringn(k, klen));
        json_array_append_new(u->texts, json_stringn(v, vlen));
    }
    return 0;
}

static int load_upload(rados_impl_t *r, const char *bucket, const char *id, const char *okey, upload_t *u,
                       verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *mkey = keyed('m', id), *npfx = xasprintf("n%s.", id);
    memset(u, 0, sizeof *u);
    u->parts = json_object(), u->keys = json_array(), u->texts = json_array();
    /* Record, first page of parts and the entry to replace: one round trip, one snapshot. */
    const char *keys[2] = {mkey, okey};
    size_t klens[2] = {strlen(mkey), okey ? strlen(okey) : 0};
    rados_read_op_t op = rados_create_read_op();
    rados_omap_iter_t it[2] = {NULL, NULL};
    unsigned char more = 0;
    int prv[2] = {0, 0};
    rados_read_op_omap_get_vals_by_keys2(op, keys, okey ? 2 : 1, klens, &it[0], &prv[0]);
    rados_read_op_omap_get_vals2(op, npfx, npfx, OMAP_PAGE, &it[1], &more, &prv[1]);
    int rc = rados_read_op_operate(op, r->io, oid, 0);
    rc = rc ? rc : prv[0] ? prv[0] : prv[1];
    char *k, *v;
    size_t kl, vl;
    while (!rc && it[0] && rados_omap_get_next2(it[0], &k, &v, &kl, &vl) == 0 && k) {
        char **dst = k[0] == 'm' ? &u->head : &u->old;
        *dst = xmalloc(vl + 1);
        memcpy(*dst, v, vl);
        (*dst)[vl] = '\0';
        *(k[0] == 'm' ? &u->headlen : &u->oldlen) = vl;
    }
    if (!rc)
        iter_each(it[1], collect_part, u);
    size_t n = json_array_size(u->keys);
    if (!rc && more && n)   /* more parts than one page: the record comparison keeps it consistent */
        rc = omap_walk(r, oid, json_string_value(json_array_get(u->keys, n - 1)), npfx, UINT64_MAX, collect_part, u);
    for (int i = 0; i < 2; i++)
        if (it[i])
            rados_omap_get_end(it[i]);
    rados_release_read_op(op);
    free(mkey);
    free(npfx);
    if (rc)
        rc = ierr(e, rc, bucket, "read upload");
    else if (!u->head)
        rc = os_err_nosuchupload(e);
    if (rc)
        upload_free(u);
    return rc;
}

static int rados_mpu_load(os_backend_t *b, const char *bucket, const char *id, json_t **upload, json_t **parts,
                          verr_t *e)
{
    upload_t u;
    if (load_upload(R(b), bucket, id, NULL, &u, e))
        return -1;
    *upload = os_json_parse(u.head, u.headlen, "upload", e);
    *parts = json_incref(u.parts);
    upload_free(&u);
    if (!*upload) {
        json_decref(*parts);
        return -1;
    }
    return 0;
}

static int collect_upload(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    json_t *u = json_loadb(v, vlen, 0, NULL);
    if (json_is_object(u)) {
        json_object_set_new(u, "id", json_stringn(k + 1, klen - 1));
        json_array_append(arg, u);
    }
    json_decref(u);
    return 0;
}

static int rados_mpu_uploads(os_backend_t *b, const char *bucket, json_t **out, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    *out = json_array();
    int rc = omap_walk(R(b), oid, "m", "m", UINT64_MAX, collect_upload, *out);
    if (rc) {
        json_decref(*out);
        return ierr(e, rc, bucket, "list uploads");
    }
    return 0;
}

/* Remove the upload (record + part keys), compared against the record as read, and list
 * garbage_texts as garbage: added to the op bt. */
static void upload_batch(batch_t *bt, const char *id, const upload_t *u, const json_t *garbage_texts)
{
    char *mkey = batch_own(bt, keyed('m', id));
    batch_cmp(bt, KV(mkey, u->head, u->headlen));
    batch_rm(bt, KV(mkey, NULL, 0));
    size_t i;
    json_t *t;
    json_array_foreach(u->keys, i, t)
        batch_rm(bt, KV(json_string_value(t), NULL, 0));
    json_array_foreach(garbage_texts, i, t)
        batch_garbage(bt, json_string_value(t), json_string_length(t));
}

/* Texts of the part entries the plan left unused. */
static json_t *unused_texts(const upload_t *u, const json_t *unused)
{
    json_t *out = json_array(), *used = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(unused, i, p)
        json_object_set_new(used, json_str(p, "v", ""), json_true());
    json_array_foreach(u->texts, i, p) {
        json_t *ent = json_loadb(json_string_value(p), json_string_length(p), 0, NULL);
        if (json_object_get(used, json_str(ent, "v", "")))
            json_array_append(out, p);
        json_decref(ent);
    }
    json_decref(used);
    return out;
}

/* The new version planned against the key as loaded with the upload (more is loaded if
 * the plan needs it). 0 with *pl, -1. */
static int complete_plan(os_backend_t *b, const char *bucket, const char *key, upload_t *u, const os_vop_t *op,
                         os_kstate_t *st, os_vplan_t *pl, verr_t *e)
{
    os_kwant_t w;
    os_vop_wants(op, &w);
    st->head.raw = u->old, st->head.rawlen = u->oldlen;
    u->old = NULL;
    if (krec_parse(&st->head, e))
        return -1;
    int rc;
    while ((rc = os_vplan(op, st, &w, pl, e)) == 1) {
        os_vplan_clear(pl);
        if (rados_kload(b, bucket, key, &w, st, e))
            return -1;
    }
    return rc;
}

/* One attempt at completing: 0, -1 (e set), or -ECANCELED when the upload or the key
 * changed between our read and our write. */
static int complete_try(os_backend_t *b, const char *bucket, const char *key, const char *okey, const char *id,
                        os_versioning_t vers, const os_part_ref_t *refs, size_t nrefs, const os_checksum_t *want,
                        os_meta_t *out, verr_t *e)
{
    rados_impl_t *r = R(b);
    upload_t u;
    if (load_upload(r, bucket, id, okey, &u, e))
        return -1;
    json_t *head = os_json_parse(u.head, u.headlen, "upload", e), *entry = NULL, *unused = NULL;
    int rc = -1;
    os_kstate_t st = {0};
    os_vplan_t pl = {0};
    os_vop_t op = {.kind = OS_VOP_PUT, .vers = vers};
    if (head && os_mpu_plan(key, head, u.parts, refs, nrefs, want, &entry, &unused, out, e) == 0 &&
        (op.entry = entry, complete_plan(b, bucket, key, &u, &op, &st, &pl, e) == 0)) {
        json_t *texts = unused_texts(&u, unused);
        batch_t bt = {0};
        plan_batch(&bt, key, &st, &pl);
        upload_batch(&bt, id, &u, texts);
        rc = batch_run(r, bucket, &bt);
        batch_free(&bt);
        if (rc && rc != -ECANCELED)
            rc = ierr(e, rc, bucket, "complete upload");
        if (rc == 0) {
            snprintf(out->version_id, sizeof out->version_id, "%s", pl.version_id);
            out->is_latest = 1;
        }
        json_decref(texts);
    }
    os_vplan_clear(&pl);
    os_kstate_clear(&st);
    json_decref(head);
    json_decref(entry);
    json_decref(unused);
    upload_free(&u);
    return rc;
}

static int rados_mpu_complete(os_backend_t *b, const char *bucket, const char *key, const char *id,
                              os_versioning_t vers, const os_part_ref_t *refs, size_t nrefs,
                              const os_checksum_t *want, os_meta_t *out,
                              verr_t *e)
{
    char *okey = keyed('o', key);
    int rc = -ECANCELED;
    for (int attempt = 0; attempt < OS_RETRIES && rc == -ECANCELED; attempt++) {
        os_meta_clear(out);
        rc = complete_try(b, bucket, key, okey, id, vers, refs, nrefs, want, out, e);
    }
    if (rc == -ECANCELED)
        rc = verr_set(e, 503, "ServiceUnavailable", "The upload is too busy to complete; please retry.");
    free(okey);
    return rc ? -1 : 0;
}

static int abort_upload(rados_impl_t *r, const char *bucket, const char *id, verr_t *e)
{
    int rc = -ECANCELED;
    for (int attempt = 0; attempt < OS_RETRIES && rc == -ECANCELED; attempt++) {
        upload_t u;
        if (load_upload(r, bucket, id, NULL, &u, e))
            return -1;
        batch_t bt = {0};
        upload_batch(&bt, id, &u, u.texts);
        rc = batch_run(r, bucket, &bt);
        batch_free(&bt);
        upload_free(&u);
    }
    if (rc == -ECANCELED)
        return verr_set(e, 503, "ServiceUnavailable", "The upload is too busy to abort; please retry.");
    return rc ? ierr(e, rc, bucket, "abort upload") : 0;
}

static int rados_mpu_abort(os_backend_t *b, const char *bucket, const char *id, verr_t *e)
{
    return abort_upload(R(b), bucket, id, e);
}

/* ---- gc ---- */

typedef struct gc_run {
    rados_impl_t *r;
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
    if (g->budget <= 0 || key_time(k, klen) > g->now - g->grace_s)
        return 1;   /* keys sort by time: the rest is younger */
    g->budget--;
    if (remove_record(g->r, g->bucket, v, vlen) == 0)
        gc_done(g, k, klen);
    return 0;
}

/* Pending writes older than stale_s died: take their key (only if still there, so a
 * commit racing with us wins or loses as a whole), then their data. */
static int gc_pending_one(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    (void)v, (void)vlen;
    int64_t t;
    char ver[OS_VERSION_LEN + 1], oid[OID_MAX];
    if (g->budget <= 0 || key_time(k, klen) > g->now - g->stale_s)
        return 1;
    g->budget--;
    char *key = xmalloc(klen + 1);
    memcpy(key, k, klen);
    key[klen] = '\0';
    index_oid(oid, g->bucket);
    kv_t cmp = KV(key, PENDING_VAL, sizeof PENDING_VAL - 1), rm = KV(key, NULL, 0);
    if (os_stamp_parse(key + 1, &t, ver) == 0 && omap_cas(g->r, oid, &cmp, 1, NULL, 0, &rm, 1) == 0)
        remove_stripes(g->r, g->bucket, ver, UINT64_MAX);
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
        char *id = xmalloc(klen);
        memcpy(id, k + 1, klen - 1);
        id[klen - 1] = '\0';
        verr_t e;
        if (abort_upload(g->r, g->bucket, id, &e))
            log_warn("objectstore rados: gc abort of upload %s: %s", id, e.message);
        free(id);
        g->budget--;
    }
    return 0;
}

static void gc_flush_done(gc_run_t *g, const char *oid)
{
    if (g->ndone)
        omap_cas(g->r, oid, NULL, 0, NULL, 0, g->done, g->ndone);
    for (size_t i = 0; i < g->ndone; i++)
        free(g->owned[i]);
    g->ndone = 0;
}

static int gc_bucket(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    gc_run_t *g = arg;
    (void)v, (void)vlen;
    if (g->budget <= 0)
        return 1;
    char bucket[OS_BUCKET_MAX + 1], oid[OID_MAX];
    snprintf(bucket, sizeof bucket, "%.*s", (int)klen, k);
    index_oid(oid, bucket);
    g->bucket = bucket;
    int rc = omap_walk(g->r, oid, "g", "g", (uint64_t)g->budget, gc_garbage_one, g);
    gc_flush_done(g, oid);
    if (!rc)
        rc = omap_walk(g->r, oid, "p", "p", (uint64_t)g->budget, gc_pending_one, g);
    if (!rc)
        rc = omap_walk(g->r, oid, "m", "m", UINT64_MAX, gc_upload_one, g);
    if (rc == -ENOENT) {
        /* Deleted (its garbage went to the orphan list): forget the bucket. */
        kv_t key = KV(bucket, NULL, 0);
        omap_cas(g->r, REGISTRY, NULL, 0, NULL, 0, &key, 1);
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
    if (g->budget <= 0 || t > g->now - (k[0] == 'g' ? g->grace_s : g->stale_s))
        return 1;
    json_t *o = json_loadb(v, vlen, 0, NULL);
    const char *bucket = json_str(o, "b", ""), *key = json_str(o, "k", "");
    int drop = 1;   /* unreadable entries are dropped */
    if (o && key[0] == 'g') {
        const char *rec = json_str(o, "r", "");
        drop = remove_record(g->r, bucket, rec, strlen(rec)) == 0;
    } else if (o && key[0] == 'p') {
        int64_t ts;
        char ver[OS_VERSION_LEN + 1], oid[OID_MAX], *val = NULL;
        size_t len;
        index_oid(oid, bucket);
        const char *keys[1] = {key};
        int rc = omap_get(g->r, oid, keys, 1, &val, &len);
        /* With the bucket gone no commit can use this data; if it is back, its own gc
         * owns the key. */
        if (rc == -ENOENT && os_stamp_parse(key + 1, &ts, ver) == 0)
            drop = remove_stripes(g->r, bucket, ver, UINT64_MAX) == 0;
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

static int rados_gc(os_backend_t *b, int grace_s, int stale_s, verr_t *e)
{
    gc_run_t g = {R(b), (int64_t)time(NULL), grace_s, stale_s, GC_BUDGET, NULL, NULL, NULL, 0};
    g.done = xmalloc((GC_BUDGET + 1) * sizeof *g.done);
    g.owned = xmalloc((GC_BUDGET + 1) * sizeof *g.owned);
    int rc = omap_walk(g.r, REGISTRY, "", "", UINT64_MAX, gc_bucket, &g);
    if (rc == -ENOENT)
        rc = 0;   /* no bucket was ever made */
    int orc = omap_walk(g.r, ORPHANS, "g", "g", UINT64_MAX, gc_orphan_one, &g);
    if (!orc)
        orc = omap_walk(g.r, ORPHANS, "p", "p", UINT64_MAX, gc_orphan_one, &g);
    gc_flush_done(&g, ORPHANS);
    free(g.done);
    free(g.owned);
    if (rc)
        return rerr(e, rc, "gc", REGISTRY);
    if (orc && orc != -ENOENT)
        return rerr(e, orc, "gc", ORPHANS);
    return 0;
}

/* ---- open / close ---- */

static void rados_close(os_backend_t *b)
{
    rados_impl_t *r = R(b);
    rados_ioctx_destroy(r->io);
    rados_shutdown(r->cluster);
    free(r->pool);
    free(r);
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
    .read_seg = rados_read_seg,
    .delete_fast = rados_delete_fast,
    .list = rados_list,
    .list_versions = rados_list_versions,
    .mpu_create = rados_mpu_create,
    .mpu_load = rados_mpu_load,
    .mpu_uploads = rados_mpu_uploads,
    .mpu_complete = rados_mpu_complete,
    .mpu_abort = rados_mpu_abort,
    .gc = rados_gc,
};

static int conf_set(rados_t c, const char *opt, const char *val, verr_t *e)
{
    int rc = rados_conf_set(c, opt, val);
    return rc < 0 ? verr_set(e, 500, "InternalError", "ceph option %s=%.200s: %s", opt, val, strerror(-rc)) : 0;
}

static int connect_cluster(rados_impl_t *r, const config_t *cfg, verr_t *e)
{
    const char *user = config_str(cfg, "objectstore.rados.user", "virga");
    const char *conf = config_str(cfg, "objectstore.rados.conf", NULL);
    const char *keyring = config_str(cfg, "objectstore.rados.keyring", NULL);
    char name[128], timeout[24];
    snprintf(name, sizeof name, "%s%.100s", strncmp(user, "client.", 7) ? "client." : "", user);
    snprintf(timeout, sizeof timeout, "%ld", config_int(cfg, "objectstore.rados.timeout_s", 10));
    int rc = rados_create2(&r->cluster, "ceph", name, 0);
    if (rc < 0)
        return verr_set(e, 500, "InternalError", "rados_create2(%s): %s", name, strerror(-rc));
    rc = rados_conf_read_file(r->cluster, conf && *conf ? conf : NULL);
    if (rc < 0)
        return verr_set(e, 500, "InternalError", "ceph config %.200s: %s", conf ? conf : "(default)", strerror(-rc));
    /* Without these a sick cluster makes every request hang instead of failing. */
    if ((keyring && *keyring && conf_set(r->cluster, "keyring", keyring, e)) ||
        conf_set(r->cluster, "rados_osd_op_timeout", timeout, e) ||
        conf_set(r->cluster, "rados_mon_op_timeout", timeout, e) ||
        conf_set(r->cluster, "client_mount_timeout", timeout, e))
        return -1;
    rc = rados_connect(r->cluster);
    if (rc < 0)
        return verr_set(e, 503, "ServiceUnavailable", "cannot connect to Ceph as %s: %s", name, strerror(-rc));
    rc = rados_ioctx_create(r->cluster, r->pool, &r->io);
    if (rc < 0)
        return verr_set(e, 503, "ServiceUnavailable", "Ceph pool %.100s: %s", r->pool, strerror(-rc));
    return 0;
}

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
    if (connect_cluster(r, cfg, e)) {
        if (r->cluster)
            rados_shutdown(r->cluster);
        free(r->pool);
        free(r);
        return NULL;
    }
    os_backend_t *b = xcalloc(1, sizeof *b);
    b->ops = &rados_ops;
    b->impl = r;
    return b;
}

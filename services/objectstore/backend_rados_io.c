/* backend_rados_io.c - librados helpers of the RADOS backend (backend_rados.h): object
 * names, error mapping, atomic omap updates (compare-and-swap in one write op), omap reads
 * and paged walks, the index value forms (JSON entry, or inline: mark, JSON, NUL, bytes),
 * rings of aio operations, and removal of data stripes. */
#include "backend_rados.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"

#define REMOVE_BATCH 32         /* aio removes in flight */

/* Index values sort as: absent ("") < inline ("\x01...") < BELOW_JSON < JSON ("{..."). */
static const char BELOW_JSON[] = "\x02";

rados_impl_t *R(os_backend_t *b)
{
    return b->impl;
}

void index_oid(char out[OID_MAX], const char *bucket)
{
    snprintf(out, OID_MAX, "i.%s", bucket);
}

/* librados failure -> S3 error: the cluster not answering is not the request's fault,
 * and a retry may well succeed (503). */
static uint64_t unavailable_seen;

uint64_t rados_unavailable_seen(void)
{
    return __atomic_load_n(&unavailable_seen, __ATOMIC_RELAXED);
}

int rerr(verr_t *e, int rc, const char *what, const char *oid)
{
    log_error("objectstore rados: %s %s: %s", what, oid, strerror(-rc));
    if (rados_unavailable(rc)) {
        __atomic_add_fetch(&unavailable_seen, 1, __ATOMIC_RELAXED);   /* the health probe looks */
        return verr_set(e, 503, "ServiceUnavailable", "The storage cluster did not answer in time.");
    }
    return verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
}

/* Same, for an operation on a bucket's index object (missing = no such bucket). */
int ierr(verr_t *e, int rc, const char *bucket, const char *what)
{
    if (rc == -ENOENT)
        return os_err_nosuchbucket(e, bucket);
    char oid[OID_MAX];
    index_oid(oid, bucket);
    return rerr(e, rc, what, oid);
}

void stripe_oid(char out[OID_MAX], const char *bucket, const char *v, uint64_t n)
{
    snprintf(out, OID_MAX, "d.%s.%s.%" PRIu64, bucket, v, n);
}

void garbage_key(char out[64])
{
    char id[OS_VERSION_LEN + 1];
    os_new_version(id);   /* fresh: the same data may be listed twice (crash recovery) */
    out[0] = 'g';
    os_stamp_name(out + 1, 63, (int64_t)time(NULL), id);
}

rados_completion_t completion(void)
{
    rados_completion_t c;
    if (rados_aio_create_completion2(NULL, NULL, &c) < 0)
        abort();   /* allocation failure */
    return c;
}

int finish(rados_completion_t c)
{
    rados_aio_wait_for_complete(c);
    int rc = rados_aio_get_return_value(c);
    rados_aio_release(c);
    return rc;
}

/* ---- omap helpers ---- */

kv_t KV(const char *k, const char *v, size_t vlen)
{
    return (kv_t){k, v, strlen(k), vlen, 0};
}

/* "k is absent or holds an inline object": no data of its own to garbage-list. */
kv_t NOT_STRIPED(const char *k)
{
    return (kv_t){k, BELOW_JSON, strlen(k), 1, 1};
}

/* One atomic write op on oid: the object must exist, every cmp must hold (value equal;
 * an empty value means "absent"), then set and remove. 0, -ECANCELED, -ENOENT, ... */
int omap_cas(rados_ioctx_t io, const char *oid, const kv_t *cmp, size_t ncmp, const kv_t *set, size_t nset,
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
    int rc = rados_write_op_operate2(op, io, oid, NULL, 0);
    rados_release_write_op(op);
    free(prv);
    free(keys);
    free(vals);
    free(klens);
    free(vlens);
    return rc;
}

void omap_get_start(rados_ioctx_t io, const char *oid, const char *const *keys, size_t n, omap_req_t *q)
{
    size_t klens[4];
    for (size_t i = 0; i < n && i < ARRAY_LEN(klens); i++)
        klens[i] = strlen(keys[i]);
    q->op = rados_create_read_op();
    q->c = completion();
    q->it = NULL;
    q->prval = 0;
    rados_read_op_omap_get_vals_by_keys2(q->op, keys, n, klens, &q->it, &q->prval);
    q->rc = rados_aio_read_op_operate(q->op, io, q->c, oid, 0);
}

/* Wait, then copy the values out (vals[i] = NULL when key i is absent). */
int omap_get_finish(omap_req_t *q, const char *const *keys, size_t n, char **vals, size_t *lens)
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

int omap_get(rados_ioctx_t io, const char *oid, const char *const *keys, size_t n, char **vals, size_t *lens)
{
    omap_req_t q;
    omap_get_start(io, oid, keys, n, &q);
    return omap_get_finish(&q, keys, n, vals, lens);
}

/* Call fn for each entry of an omap iterator; returns fn's first nonzero. */
int iter_each(rados_omap_iter_t it, omap_fn fn, void *arg)
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
int omap_walk(rados_ioctx_t io, const char *oid, const char *after, const char *prefix, uint64_t limit,
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
        rc = rados_read_op_operate(op, io, oid, 0);
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

char *keyed(char prefix, const char *s)
{
    return xasprintf("%c%s", prefix, s);
}

/* ---- index values ---- */

int is_inline(const char *v, size_t len)
{
    return v && len > 0 && v[0] == INLINE_MARK;
}

/* mark, entry JSON, NUL, the object's bytes. */
char *inline_value(const json_t *rec, const char *data, size_t n, size_t *len)
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
json_t *entry_parse(const char *v, size_t len, int with_data, verr_t *e)
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

/* ---- data stripes ---- */

void ring_push(ring_t *g, rados_completion_t c, char *buf, size_t len)
{
    if (g->n == RING)
        abort();   /* callers make room first: overwriting a slot would lose an op */
    int i = (g->head + g->n) % RING;
    g->c[i] = c, g->buf[i] = buf, g->len[i] = len;
    g->n++;
}

/* Wait for the oldest op; its buffer is handed back in *buf. */
int ring_wait(ring_t *g, char **buf)
{
    int i = g->head;
    int rc = finish(g->c[i]);
    *buf = g->buf[i];
    g->head = (g->head + 1) % RING;
    g->n--;
    return rc;
}

void ring_drain(ring_t *g, int *err)
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
int remove_stripes(rados_ioctx_t io, const char *bucket, const char *v, uint64_t n)
{
    int err = 0;
    for (uint64_t i = 0; i < n;) {
        rados_completion_t c[REMOVE_BATCH];
        int k = 0, missing = 0;
        for (; k < REMOVE_BATCH && i + (uint64_t)k < n; k++) {
            char oid[OID_MAX];
            stripe_oid(oid, bucket, v, i + (uint64_t)k);
            c[k] = completion();
            int rc = rados_aio_remove(io, oid, c[k]);
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
int remove_record(rados_ioctx_t io, const char *bucket, const char *text, size_t len)
{
    json_t *rec = os_json_parse(text, len, "garbage", NULL);
    void *a[2] = {io, (void *)bucket};
    int rc = rec ? os_entry_walk(rec, remove_seg, a) : 0;   /* unreadable: nothing to find */
    json_decref(rec);
    return rc;
}

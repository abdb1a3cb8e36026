/* backend_rados_list.c - listings of the RADOS backend (backend_rados.h): ListObjects
 * walks the heads (o<key>) in key order, leaving delete markers out; ListObjectVersions
 * merges the heads with the noncurrent entries (v<E(key)>\x01\x01<sk>), both read page by
 * page in omap order, so that each key's head comes before its older versions. Inline
 * bytes are never listed. */
#include "backend_rados.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int rados_list(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
               os_list_fn fn, void *arg, int *truncated, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *after = keyed('o', start_after), *pfx = keyed('o', prefix);
    list_ctx_t l = {fn, arg, max, 0, 0, NULL, truncated, 0, e};
    int rc = 0;
    rconn_t *c = rados_conn_get(R(b));
    /* One entry more than asked tells whether the listing is truncated; delete markers
     * are skipped, so a page that had some is followed by another. */
    for (;;) {
        uint64_t want = max >= UINT64_MAX - 1 ? UINT64_MAX : (uint64_t)(max - l.count) + 1;
        l.seen = 0;
        rc = omap_walk(c->io, oid, after, pfx, want, list_one, &l);
        if (rc || l.err || *truncated || l.seen < want || !l.last)
            break;
        free(after);
        after = xstrdup(l.last);
    }
    rados_conn_put(R(b), c);
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
static int ocur_fill(rados_ioctx_t io, const char *oid, ocur_t *c, uint64_t page)
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
    int rc = rados_read_op_operate(op, io, oid, 0);
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

int rados_list_versions(os_backend_t *b, const char *bucket, const char *prefix, const char *after_key,
                        const char *after_sk, size_t max, os_list_fn fn, void *arg, int *truncated, verr_t *e)
{
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
    rconn_t *conn = rados_conn_get(R(b));
    while (!rc && !err) {
        if ((rc = ocur_fill(conn->io, oid, &o, page)) || (rc = ocur_fill(conn->io, oid, &v, page)))
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
    rados_conn_put(R(b), conn);
    ocur_free(&o);
    ocur_free(&v);
    free(opfx);
    free(vpfx);
    if (rc)
        return ierr(e, rc, bucket, "list versions");
    return err ? -1 : 0;
}

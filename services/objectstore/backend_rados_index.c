/* backend_rados_index.c - one key's versions in a bucket's index omap (backend_rados.h;
 * layout in backend_rados.c): the keys of noncurrent entries, loading a key's records in
 * one read op, and a version plan (os_vplan) as one atomic write op whose compares are the
 * records it changes as they were loaded (a lost race reloads and plans again: os_vchange
 * in backend_versions.c). */
#include "backend_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"

/* Noncurrent entries are keyed v<E(key)>\x01\x01<sort key>, where E escapes \x01 as
 * \x01\x02: the separator sorts below anything a key can continue with, so the keys'
 * order is kept and one key's versions share a prefix no other key's have. (\0 would do
 * without escaping, but omap start keys and prefixes are C strings.) */
char *vprefix(const char *key)
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
char *vkey(const char *key, const char *sk)
{
    char *k = vprefix(key);
    size_t n = strlen(k), skl = strnlen(sk, OS_SK_LEN);
    memcpy(k + n, sk, skl);   /* vprefix left room for a sort key */
    k[n + skl] = '\0';
    return k;
}

/* The object key of a noncurrent omap key and its sort key; NULL if k is not one. */
char *vkey_parse(const char *k, size_t klen, char sk[OS_SK_LEN + 1])
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
char *entry_value(const json_t *ent, size_t *len)
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

void kload_start(rados_ioctx_t io, const char *bucket, const char *key, const os_kwant_t *w, kread_t *q)
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
    q->rc = rados_aio_read_op_operate(q->op, io, q->c, oid, 0);
}

static void krec_set(os_krec_t *rec, const char *v, size_t vlen)
{
    rec->raw = xmalloc(vlen + 1);
    memcpy(rec->raw, v, vlen);
    rec->raw[vlen] = '\0';
    rec->rawlen = vlen;
}

int krec_parse(os_krec_t *rec, verr_t *e)
{
    if (rec->raw && !(rec->ent = entry_parse(rec->raw, rec->rawlen, 1, e)))
        return -1;
    return 0;
}

int kload_finish(kread_t *q, const char *bucket, const os_kwant_t *w, os_kstate_t *st, verr_t *e)
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

int kload(rados_ioctx_t io, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st, verr_t *e)
{
    kread_t q;
    kload_start(io, bucket, key, w, &q);
    return kload_finish(&q, bucket, w, st, e);
}

int rados_kload(os_backend_t *b, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st,
                verr_t *e)
{
    rconn_t *c = rados_conn_get(R(b));
    int rc = kload(c->io, bucket, key, w, st, e);
    rados_conn_put(R(b), c);
    return rc;
}

/* ---- atomic index ops ---- */

static void kv_push(kv_t **a, size_t *n, size_t *cap, kv_t kv)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *a = xrealloc(*a, *cap * sizeof **a);
    }
    (*a)[(*n)++] = kv;
}

char *batch_own(batch_t *bt, char *s)
{
    if (bt->nowned == bt->cowned) {
        bt->cowned = bt->cowned ? 2 * bt->cowned : 16;
        bt->owned = xrealloc(bt->owned, bt->cowned * sizeof *bt->owned);
    }
    bt->owned[bt->nowned++] = s;
    return s;
}

void batch_cmp(batch_t *bt, kv_t kv) { kv_push(&bt->cmp, &bt->ncmp, &bt->ccmp, kv); }
void batch_set(batch_t *bt, kv_t kv) { kv_push(&bt->set, &bt->nset, &bt->cset, kv); }
void batch_rm(batch_t *bt, kv_t kv) { kv_push(&bt->rm, &bt->nrm, &bt->crm, kv); }

/* A record listed as garbage in the op: gc deletes its data after the grace period. */
void batch_garbage(batch_t *bt, const char *text, size_t len)
{
    char *gk = batch_own(bt, xmalloc(64));
    garbage_key(gk);
    batch_set(bt, KV(gk, text, len));
}

int batch_run(rados_ioctx_t io, const char *bucket, const batch_t *bt)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    return omap_cas(io, oid, bt->cmp, bt->ncmp, bt->set, bt->nset, bt->rm, bt->nrm);
}

void batch_free(batch_t *bt)
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
void plan_batch(batch_t *bt, const char *key, const os_kstate_t *st, const os_vplan_t *pl)
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

/* Never-versioned buckets keep the fast path of a delete: an absent or inline null
 * version is removed in one op. 1: a striped entry is there (os_vchange garbage-lists
 * its data). */
int rados_delete_fast(os_backend_t *b, const char *bucket, const char *key, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *okey = keyed('o', key);
    kv_t cmp = NOT_STRIPED(okey), rm = KV(okey, NULL, 0);
    rconn_t *c = rados_conn_get(R(b));
    int rc = omap_cas(c->io, oid, &cmp, 1, NULL, 0, &rm, 1);
    rados_conn_put(R(b), c);
    free(okey);
    if (rc == -ECANCELED)
        return 1;
    return rc ? ierr(e, rc, bucket, "delete") : 0;
}

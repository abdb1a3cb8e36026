/* backend_rados_mpu.c - multipart uploads on RADOS (backend_rados.h). An upload is the
 * record m<upload id> in its bucket's index omap, its parts n<upload id>.<NNNNN> beside it
 * (written by backend_rados.c's part commit, which bumps the record's "gen"). Completing
 * and aborting remove the record and every part key in one write op compared against the
 * record as read, so a part committed meanwhile makes the op fail and retry. */
#include "backend_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"

int rados_mpu_create(os_backend_t *b, const char *bucket, const char *id, json_t *upload, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *mkey = keyed('m', id);
    size_t len;
    char *text = os_json_text(upload, &len);
    kv_t set = KV(mkey, text, len);
    rconn_t *c = rados_conn_get(R(b));
    int rc = omap_cas(c->io, oid, NULL, 0, &set, 1, NULL, 0);
    rados_conn_put(R(b), c);
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

static int load_upload(rados_ioctx_t io, const char *bucket, const char *id, const char *okey, upload_t *u,
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
    int rc = rados_read_op_operate(op, io, oid, 0);
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
        rc = omap_walk(io, oid, json_string_value(json_array_get(u->keys, n - 1)), npfx, UINT64_MAX, collect_part, u);
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

int rados_mpu_load(os_backend_t *b, const char *bucket, const char *id, json_t **upload, json_t **parts,
                   verr_t *e)
{
    upload_t u;
    rconn_t *c = rados_conn_get(R(b));
    int rc = load_upload(c->io, bucket, id, NULL, &u, e);
    rados_conn_put(R(b), c);
    if (rc)
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

int rados_mpu_uploads(os_backend_t *b, const char *bucket, json_t **out, verr_t *e)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    *out = json_array();
    rconn_t *c = rados_conn_get(R(b));
    int rc = omap_walk(c->io, oid, "m", "m", UINT64_MAX, collect_upload, *out);
    rados_conn_put(R(b), c);
    if (rc) {
        json_decref(*out);
        return ierr(e, rc, bucket, "list uploads");
    }
    return 0;
}

/* Remove the upload (record + part keys) in one op compared against the record as read,
 * with sets (the new entry, garbage) applied alongside. */
static int finish_upload(rados_ioctx_t io, const char *bucket, const char *id, const upload_t *u, const kv_t *cmp2,
                         kv_t *set, size_t nset, json_t *garbage_texts)
{
    char oid[OID_MAX];
    index_oid(oid, bucket);
    char *mkey = keyed('m', id);
    size_t nparts = json_array_size(u->keys), ng = json_array_size(garbage_texts);
    kv_t cmp[2] = {KV(mkey, u->head, u->headlen)};
    if (cmp2)
        cmp[1] = *cmp2;
    kv_t *rm = xmalloc((nparts + 1) * sizeof *rm), *sets = xmalloc((nset + ng + 1) * sizeof *sets);
    char (*gkeys)[64] = xmalloc((ng + 1) * sizeof *gkeys);
    rm[0] = KV(mkey, NULL, 0);
    for (size_t i = 0; i < nparts; i++)
        rm[i + 1] = KV(json_string_value(json_array_get(u->keys, i)), NULL, 0);
    if (nset)
        memcpy(sets, set, nset * sizeof *sets);
    for (size_t i = 0; i < ng; i++) {
        json_t *t = json_array_get(garbage_texts, i);
        garbage_key(gkeys[i]);
        sets[nset + i] = KV(gkeys[i], json_string_value(t), json_string_length(t));
    }
    int rc = omap_cas(io, oid, cmp, cmp2 ? 2 : 1, sets, nset + ng, rm, nparts + 1);
    free(rm);
    free(sets);
    free(gkeys);
    free(mkey);
    return rc;
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

/* One attempt at completing: 0, -1 (e set), or -ECANCELED when the upload or the key
 * changed between our read and our write. */
static int complete_try(rados_ioctx_t io, const char *bucket, const char *key, const char *okey, const char *id,
                        const os_part_ref_t *refs, size_t nrefs, os_meta_t *out, verr_t *e)
{
    upload_t u;
    if (load_upload(io, bucket, id, okey, &u, e))
        return -1;
    json_t *head = os_json_parse(u.head, u.headlen, "upload", e), *entry = NULL, *unused = NULL;
    int rc = -1;
    if (head && os_mpu_plan(key, head, u.parts, refs, nrefs, &entry, &unused, out, e) == 0) {
        size_t tlen;
        char *text = os_json_text(entry, &tlen);
        json_t *texts = unused_texts(&u, unused);
        if (u.old && !is_inline(u.old, u.oldlen))
            json_array_append_new(texts, json_stringn(u.old, u.oldlen));
        kv_t cmp = KV(okey, u.old, u.oldlen), set = KV(okey, text, tlen);
        rc = finish_upload(io, bucket, id, &u, &cmp, &set, 1, texts);
        if (rc && rc != -ECANCELED)
            rc = ierr(e, rc, bucket, "complete upload");
        json_decref(texts);
        free(text);
    }
    json_decref(head);
    json_decref(entry);
    json_decref(unused);
    upload_free(&u);
    return rc;
}

int rados_mpu_complete(os_backend_t *b, const char *bucket, const char *key, const char *id,
                       const os_part_ref_t *refs, size_t nrefs, os_meta_t *out, verr_t *e)
{
    char *okey = keyed('o', key);
    int rc = -ECANCELED;
    rconn_t *c = rados_conn_get(R(b));
    for (int attempt = 0; attempt < OS_RETRIES && rc == -ECANCELED; attempt++) {
        os_meta_clear(out);
        rc = complete_try(c->io, bucket, key, okey, id, refs, nrefs, out, e);
    }
    rados_conn_put(R(b), c);
    if (rc == -ECANCELED)
        rc = verr_set(e, 503, "ServiceUnavailable", "The upload is too busy to complete; please retry.");
    free(okey);
    return rc ? -1 : 0;
}

int rados_abort_upload(rados_ioctx_t io, const char *bucket, const char *id, verr_t *e)
{
    int rc = -ECANCELED;
    for (int attempt = 0; attempt < OS_RETRIES && rc == -ECANCELED; attempt++) {
        upload_t u;
        if (load_upload(io, bucket, id, NULL, &u, e))
            return -1;
        rc = finish_upload(io, bucket, id, &u, NULL, NULL, 0, u.texts);
        upload_free(&u);
    }
    if (rc == -ECANCELED)
        return verr_set(e, 503, "ServiceUnavailable", "The upload is too busy to abort; please retry.");
    return rc ? ierr(e, rc, bucket, "abort upload") : 0;
}

int rados_mpu_abort(os_backend_t *b, const char *bucket, const char *id, verr_t *e)
{
    rconn_t *c = rados_conn_get(R(b));
    int rc = rados_abort_upload(c->io, bucket, id, e);
    rados_conn_put(R(b), c);
    return rc;
}

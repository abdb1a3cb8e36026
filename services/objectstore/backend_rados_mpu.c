/* backend_rados_mpu.c - multipart uploads on RADOS (backend_rados.h). An upload is the
 * record m<upload id> in its bucket's index omap, its parts n<upload id>.<NNNNN> beside it
 * (written by backend_rados.c's part commit, which bumps the record's "gen"). Completing
 * and aborting remove the record and every part key in one write op compared against the
 * record as read, so a part committed meanwhile makes the op fail and retry; completing
 * applies the new version's plan (os_vplan) in that same op. */
#include "backend_rados.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"

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
static int complete_plan(rados_ioctx_t io, const char *bucket, const char *key, upload_t *u, const os_vop_t *op,
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
        if (kload(io, bucket, key, &w, st, e))
            return -1;
    }
    return rc;
}

/* One attempt at completing: 0, -1 (e set), or -ECANCELED when the upload or the key
 * changed between our read and our write. */
static int complete_try(rados_ioctx_t io, const char *bucket, const char *key, const char *okey, const char *id,
                        os_versioning_t vers, const os_part_ref_t *refs, size_t nrefs, const os_checksum_t *want,
                        os_meta_t *out, verr_t *e)
{
    upload_t u;
    if (load_upload(io, bucket, id, okey, &u, e))
        return -1;
    json_t *head = os_json_parse(u.head, u.headlen, "upload", e), *entry = NULL, *unused = NULL;
    int rc = -1;
    os_kstate_t st = {0};
    os_vplan_t pl = {0};
    os_vop_t op = {.kind = OS_VOP_PUT, .vers = vers};
    if (head && os_mpu_plan(key, head, u.parts, refs, nrefs, want, &entry, &unused, out, e) == 0 &&
        (op.entry = entry, complete_plan(io, bucket, key, &u, &op, &st, &pl, e) == 0)) {
        json_t *texts = unused_texts(&u, unused);
        batch_t bt = {0};
        plan_batch(&bt, key, &st, &pl);
        upload_batch(&bt, id, &u, texts);
        rc = batch_run(io, bucket, &bt);
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

int rados_mpu_complete(os_backend_t *b, const char *bucket, const char *key, const char *id, os_versioning_t vers,
                       const os_part_ref_t *refs, size_t nrefs, const os_checksum_t *want, os_meta_t *out,
                       verr_t *e)
{
    char *okey = keyed('o', key);
    int rc = -ECANCELED;
    rconn_t *c = rados_conn_get(R(b));
    for (int attempt = 0; attempt < OS_RETRIES && rc == -ECANCELED; attempt++) {
        os_meta_clear(out);
        rc = complete_try(c->io, bucket, key, okey, id, vers, refs, nrefs, want, out, e);
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
        batch_t bt = {0};
        upload_batch(&bt, id, &u, u.texts);
        rc = batch_run(io, bucket, &bt);
        batch_free(&bt);
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

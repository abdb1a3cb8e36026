/* backend.c - the object store's storage interface (backend.h): opening a backend,
 * buckets, the streaming writer, deletes, attribute changes, listings, garbage
 * collection, writer ids and health.
 *
 * The os_* functions check their arguments once (backend_format.c), then call through the
 * ops table of the backend chosen by objectstore.backend. Everything that does not depend
 * on where bytes live is on this side so it exists once: here the streaming writer
 * (stripe-sized buffering, MD5, checksums, size); reads in backend_read.c; multipart
 * uploads in backend_mpu.c; the rules of versions in backend_versions.c; the JSON
 * documents kept in the index and the argument checks in backend_format.c. */
#include "backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "strbuf.h"

#define FIRST_BUF (64 * 1024)    /* small objects never allocate a whole stripe */

/* ---- open / close ---- */

os_backend_t *os_backend_open(const config_t *cfg, verr_t *e)
{
    const char *kind = config_str(cfg, "objectstore.backend", "rados");
    if (!strcmp(kind, "rados"))
        return os_rados_open(cfg, e);
    if (!strcmp(kind, "dir"))
        return os_dir_open(cfg, e);
    verr_set(e, 500, "InternalError", "objectstore.backend must be rados or dir, not %.64s", kind);
    return NULL;
}

void os_backend_close(os_backend_t *b)
{
    if (b)
        b->ops->close(b);
}

const char *os_backend_name(const os_backend_t *b)
{
    return b ? b->ops->name : "";
}

int os_bucket_create(os_backend_t *b, const char *bucket_id, verr_t *e)
{
    if (os_check_bucket(b, bucket_id, e))
        return -1;
    return b->ops->bucket_create(b, bucket_id, e);
}

int os_bucket_delete(os_backend_t *b, const char *bucket_id, verr_t *e)
{
    if (os_check_bucket(b, bucket_id, e))
        return -1;
    return b->ops->bucket_delete(b, bucket_id, e);
}

/* ---- streaming writes ---- */

void os_put_free(os_put_t *p, int committed)
{
    if (!p)
        return;
    p->b->ops->put_free(p, committed);
    os_put_ck_free(p);
    EVP_MD_CTX_free(p->md5);
    free(p->key);
    free(p->buf);
    free(p);
}

int os_put_start(os_backend_t *b, const char *bucket, const char *key, os_versioning_t vers,
                     const char *upload_id, int part, os_put_t **out, verr_t *e)
{
    os_put_t *p = xcalloc(1, sizeof *p);
    p->b = b;
    p->vers = vers;
    snprintf(p->bucket, sizeof p->bucket, "%s", bucket);
    p->key = key ? xstrdup(key) : NULL;
    if (upload_id)
        snprintf(p->upload_id, sizeof p->upload_id, "%s", upload_id);
    p->part = part;
    os_new_version(p->version);
    p->md5 = os_md5_new();
    if (b->ops->put_begin(p, e)) {
        os_put_free(p, 0);
        return -1;
    }
    os_put_ck_begin(p);
    *out = p;
    return 0;
}

int os_put_begin(os_backend_t *b, const char *bucket_id, const char *key, os_versioning_t vers, os_put_t **out,
                 verr_t *e)
{
    if (!out || os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_vers(vers, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_put_begin: no out");
    return os_put_start(b, bucket_id, key, vers, NULL, 0, out, e);
}

/* Make room for n more bytes, growing geometrically up to one chunk. */
static void put_reserve(os_put_t *p, size_t n)
{
    if (p->fill + n <= p->cap)
        return;
    size_t cap = p->cap ? p->cap : FIRST_BUF;
    while (cap < p->fill + n && cap < p->chunk)
        cap *= 2;
    if (cap > p->chunk)
        cap = p->chunk;
    p->buf = xrealloc(p->buf, cap);
    p->cap = cap;
}

int os_put_write(os_put_t *p, const void *data, size_t len, verr_t *e)
{
    if (!p)
        return verr_set(e, 500, "InternalError", "os_put_write: no writer");
    const char *s = data;
    p->size += len;
    while (len > 0) {
        /* A full buffer is flushed only once more bytes arrive, so the last chunk is
         * always written by commit, where the backend can overlap it with other work. */
        if (p->fill == p->chunk && p->b->ops->put_flush(p, e))
            return -1;
        size_t n = p->chunk - p->fill < len ? p->chunk - p->fill : len;
        put_reserve(p, n);
        /* Hashed piece by piece, so librados writes one piece while the next is hashed. */
        EVP_DigestUpdate(p->md5, s, n);
        ck_update(&p->ck, s, n);
        memcpy(p->buf + p->fill, s, n);
        p->fill += n;
        s += n;
        len -= n;
    }
    return 0;
}

/* Size, ETag, checksum and mtime of what was written, into meta. */
void os_put_digest(os_put_t *p, os_meta_t *meta)
{
    meta->size = p->size;
    os_md5_final(p->md5, NULL, meta->etag);
    os_put_ck_final(p, meta);
    if (!meta->mtime)
        meta->mtime = (int64_t)time(NULL);
}

int os_put_commit(os_put_t *p, os_meta_t *meta, verr_t *e)
{
    if (!p || !meta || !p->key) {
        os_put_free(p, 0);
        return verr_set(e, 500, "InternalError", "os_put_commit: not an object write");
    }
    os_put_digest(p, meta);
    json_t *rec = os_meta_to_json(meta);
    json_object_set_new(rec, "v", json_string(p->version));
    int rc = p->b->ops->put_commit(p, rec, meta, e);
    json_decref(rec);
    os_put_free(p, rc == 0);
    return rc;
}

void os_put_abort(os_put_t *p)
{
    os_put_free(p, 0);
}

int os_delete(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
              os_versioning_t vers, os_meta_t *out, verr_t *e)
{
    if (os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_vid(version_id, e) || os_check_vers(vers, e))
        return -1;
    if (out) {
        memset(out, 0, sizeof *out);
        snprintf(out->version_id, sizeof out->version_id, "%s", version_id ? version_id : "null");
    }
    if (!version_id && vers == OS_VERSIONING_OFF && b->ops->delete_fast) {
        int rc = b->ops->delete_fast(b, bucket_id, key, e);
        if (rc <= 0)
            return rc;
    }
    os_vop_t op = {.kind = OS_VOP_DELETE, .vers = vers, .vid = version_id};
    os_kstate_t st = {0};
    return os_vchange(b, bucket_id, key, &op, NULL, &st, 0, out, e);
}

int os_expire(os_backend_t *b, const char *bucket_id, const char *key, os_expire_kind_t kind, const os_meta_t *seen,
              os_versioning_t vers, int *done, verr_t *e)
{
    const char *vid = seen ? seen->version_id : NULL;
    if (!seen || os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_vid(vid, e) ||
        os_check_vers(vers, e))
        return seen ? -1 : verr_set(e, 500, "InternalError", "os_expire: no version");
    /* CURRENT deletes as a tenant's DELETE without a version id; the others name one */
    os_vop_t op = {.kind = OS_VOP_DELETE, .vers = vers, .vid = kind == OS_EXPIRE_CURRENT ? NULL : vid,
                   .seen = seen, .expect = kind};
    os_kstate_t st = {0};
    os_meta_t out = {0};
    if (os_vchange(b, bucket_id, key, &op, NULL, &st, 0, &out, e))
        return -1;
    if (done)
        *done = out.version_id[0] != '\0';
    return 0;
}

int os_set_attrs(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                 const json_t *attrs, verr_t *e)
{
    if (os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_vid(version_id, e))
        return -1;
    os_vop_t op = {.kind = OS_VOP_SET_ATTRS, .vid = version_id, .attrs = attrs};
    os_kstate_t st = {0};
    return os_vchange(b, bucket_id, key, &op, NULL, &st, 0, NULL, e);
}

static int check_list(os_backend_t *b, const char *bucket_id, os_list_fn fn, const char *const *keys, size_t n,
                      verr_t *e)
{
    if (!fn || os_check_bucket(b, bucket_id, e))
        return fn ? -1 : verr_set(e, 500, "InternalError", "os_list: no callback");
    for (size_t i = 0; i < n; i++)
        if (keys[i] && strlen(keys[i]) > OS_KEY_MAX)
            return verr_set(e, 400, "KeyTooLongError", "Your key is too long");
    return 0;
}

int os_list(os_backend_t *b, const char *bucket_id, const char *prefix, const char *start_after, size_t max,
            os_list_fn fn, void *arg, int *truncated, verr_t *e)
{
    int dummy;
    const char *keys[] = {prefix, start_after};
    if (check_list(b, bucket_id, fn, keys, 2, e))
        return -1;
    truncated = truncated ? truncated : &dummy;
    *truncated = 0;
    return b->ops->list(b, bucket_id, prefix ? prefix : "", start_after ? start_after : "", max, fn, arg,
                        truncated, e);
}

int os_list_versions(os_backend_t *b, const char *bucket_id, const char *prefix, const char *key_marker,
                     const char *version_id_marker, size_t max, os_list_fn fn, void *arg, int *truncated,
                     verr_t *e)
{
    int dummy;
    const char *keys[] = {prefix, key_marker};
    if (check_list(b, bucket_id, fn, keys, 2, e))
        return -1;
    truncated = truncated ? truncated : &dummy;
    *truncated = 0;
    key_marker = key_marker ? key_marker : "";
    if (version_id_marker && !*version_id_marker)
        version_id_marker = NULL;
    if (version_id_marker && (!*key_marker || !os_version_id_valid(version_id_marker)))
        return verr_set(e, 400, "InvalidArgument",
                        version_id_marker && *key_marker ? "Invalid version id specified"
                                                         : "A version-id marker cannot be specified without a key marker.");
    /* Where version_id_marker is in key_marker's versions: after its head (""), after a
     * noncurrent entry (its sort key), or, when it is gone, after the whole key. */
    char after_sk[OS_SK_LEN + 1];
    const char *after = NULL;
    if (version_id_marker) {
        os_kwant_t w = {0};
        os_kstate_t st = {0};
        if (b->ops->kload(b, bucket_id, key_marker, &w, &st, e))
            return -1;
        const json_t *head = st.head.ent;
        const char *sk = !strcmp(version_id_marker, "null") ? json_str(head, "nullsk", NULL) : version_id_marker;
        if (os_entry_has_vid(head, version_id_marker))
            after = "";
        else if (head && sk) {
            snprintf(after_sk, sizeof after_sk, "%s", sk);
            after = after_sk;
        }
        os_kstate_clear(&st);
    }
    return b->ops->list_versions(b, bucket_id, prefix ? prefix : "", key_marker, after, max, fn, arg, truncated, e);
}

int os_gc_pending_due(const os_gc_opts_t *o, int64_t now, int64_t t, const char *writer)
{
    if (t <= now - o->stale_s)
        return 1;
    /* A writer marks its writes only after it registered as alive, so a write younger
     * than the lease may be of a writer the caller's list does not know yet. */
    return writer && *writer && o->writer_alive && t <= now - o->lease_s && !o->writer_alive(o->arg, writer);
}

int os_backend_gc_run(os_backend_t *b, const os_gc_opts_t *o, verr_t *e)
{
    if (!b || !o)
        return verr_set(e, 500, "InternalError", "no object store backend");
    os_gc_opts_t c = *o;
    c.grace_s = c.grace_s < 0 ? 0 : c.grace_s;
    c.stale_s = c.stale_s < 0 ? 0 : c.stale_s;
    c.lease_s = c.lease_s < 0 ? 0 : c.lease_s;
    return b->ops->gc(b, &c, e);
}

int os_backend_gc(os_backend_t *b, int grace_s, int stale_s, verr_t *e)
{
    os_gc_opts_t o = {grace_s, stale_s, stale_s, NULL, NULL, NULL};
    return os_backend_gc_run(b, &o, e);
}

void os_backend_set_writer(os_backend_t *b, const char *writer_id)
{
    /* it becomes part of file names and index values: lowercase hex only */
    writer_id = writer_id ? writer_id : "";
    size_t n = writer_id ? strlen(writer_id) : 0;
    if (!b || n > OS_WRITER_MAX || !hex_lower_exact(writer_id, n))
        return;
    memcpy(b->writer, writer_id, n + 1);
}

void os_backend_stopping(os_backend_t *b)
{
    if (b)
        __atomic_store_n(&b->stopping, 1, __ATOMIC_SEQ_CST);
}

int os_abort_leaves_data(const os_backend_t *b)
{
    return b->writer[0] && __atomic_load_n(&b->stopping, __ATOMIC_SEQ_CST);
}

void os_backend_health(os_backend_t *b, os_health_t *out)
{
    memset(out, 0, sizeof *out);
    out->ok = 1;
    if (b && b->ops->health)
        b->ops->health(b, out);
}

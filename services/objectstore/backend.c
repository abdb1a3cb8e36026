/* backend.c - the object store's storage interface (backend.h) and what its two
 * implementations share.
 *
 * The os_* functions check their arguments once, then call through the ops table of the
 * backend chosen by objectstore.backend. Everything that does not depend on where bytes
 * live is here so it exists once: the streaming writer (stripe-sized buffering, MD5,
 * size), the JSON documents kept in the index (see backend_internal.h), the mapping of a
 * read range onto an object's data pieces (simple objects have one, multipart objects one
 * per part), the multipart completion rules and ETag formula, and the ordering of
 * uploads and parts for the list calls. */
#include "backend_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"

#define FIRST_BUF (64 * 1024)    /* small objects never allocate a whole stripe */

/* ---- errors ---- */

int os_err_nosuchkey(verr_t *e)
{
    return verr_set(e, 404, "NoSuchKey", "The specified key does not exist.");
}

int os_err_nosuchupload(verr_t *e)
{
    return verr_set(e, 404, "NoSuchUpload",
                    "The specified upload does not exist. The upload ID may be invalid, or the upload may "
                    "have been aborted or completed.");
}

int os_err_nosuchbucket(verr_t *e, const char *bucket)
{
    return verr_set(e, 404, "NoSuchBucket", "The specified bucket does not exist (%.128s).", bucket);
}

int os_err_notempty(verr_t *e)
{
    return verr_set(e, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
}

int os_err_nosuchversion(verr_t *e)
{
    return verr_set(e, 404, "NoSuchVersion", "The specified version does not exist.");
}

int os_err_method(verr_t *e)
{
    return verr_set(e, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

/* ---- small helpers ---- */

void os_new_version(char out[OS_VERSION_LEN + 1])
{
    ids_hex(out, OS_VERSION_LEN);
}

void os_new_upload_id(char out[OS_UPLOAD_ID_LEN + 1])
{
    ids_hex(out, OS_UPLOAD_ID_LEN);
}

static int is_hex_n(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr("0123456789abcdef", s[i]))
            return 0;
    return s[n] == '\0';
}

int os_upload_id_valid(const char *id)
{
    return id && is_hex_n(id, OS_UPLOAD_ID_LEN);
}

void os_hex_encode(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    out[2 * n] = '\0';
}

int os_hex_decode(const char *hex, size_t hexlen, char *out, size_t outsz, size_t *outlen)
{
    if (hexlen % 2 || hexlen / 2 >= outsz)
        return -1;
    for (size_t i = 0; i < hexlen; i += 2) {
        int hi = hex_digit_value((unsigned char)hex[i]), lo = hex_digit_value((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[hexlen / 2] = '\0';
    if (outlen)
        *outlen = hexlen / 2;
    return 0;
}

void os_stamp_name(char *out, size_t outsz, int64_t t, const char *version)
{
    /* Fixed-width time so that byte order is time order (garbage is scanned oldest first). */
    snprintf(out, outsz, "%010" PRId64 ".%s", t, version);
}

int os_stamp_parse(const char *name, int64_t *t, char version[OS_VERSION_LEN + 1])
{
    char *end;
    if (!isdigit((unsigned char)name[0]))
        return -1;
    long long v = strtoll(name, &end, 10);
    if (*end != '.' || strlen(end + 1) != OS_VERSION_LEN || !is_hex_n(end + 1, OS_VERSION_LEN))
        return -1;
    *t = v;
    memcpy(version, end + 1, OS_VERSION_LEN + 1);
    return 0;
}

char *os_json_text(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        abort();   /* only fails on allocation failure: same policy as xmalloc */
    if (len)
        *len = strlen(s);
    return s;
}

json_t *os_json_parse(const char *text, size_t len, const char *what, verr_t *e)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        log_error("objectstore: corrupt %s record: %s", what, j ? "not an object" : je.text);
        verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
        return NULL;
    }
    return j;
}

int os_sink_call(os_sink_fn sink, void *arg, const void *data, size_t len, verr_t *e)
{
    if (sink(arg, data, len) != 0)
        return verr_set(e, 499, "ClientGone", "The reader stopped the transfer");
    return 0;
}

/* ---- MD5 ---- */

static EVP_MD *md5_alg;
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_fetch(void)
{
    /* Fetched once: EVP_MD_fetch takes a global lock, not something to do per request. */
    md5_alg = EVP_MD_fetch(NULL, "MD5", NULL);
    if (!md5_alg) {
        fprintf(stderr, "virga: OpenSSL has no MD5\n");
        abort();
    }
}

EVP_MD_CTX *os_md5_new(void)
{
    pthread_once(&md5_once, md5_fetch);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, md5_alg, NULL) != 1)
        abort();
    return c;
}

void os_md5_final(EVP_MD_CTX *c, unsigned char bin[16], char hex[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(c, d, &n);
    if (bin)
        memcpy(bin, d, 16);
    if (hex)
        os_hex_encode(d, 16, hex);
}

void os_md5_hex(const void *data, size_t len, char hex[33])
{
    EVP_MD_CTX *c = os_md5_new();
    EVP_DigestUpdate(c, data, len);
    os_md5_final(c, NULL, hex);
    EVP_MD_CTX_free(c);
}

/* ---- metadata JSON ---- */

void os_meta_clear(os_meta_t *m)
{
    if (!m)
        return;
    json_decref(m->user_meta);
    json_decref(m->extra);
    json_decref(m->tags);
    json_decref(m->acl);
    memset(m, 0, sizeof *m);
}

/* The parts of a meta a client chooses (kept in an upload record until completion). */
static json_t *client_meta_json(const os_meta_t *m)
{
    json_t *j = json_object();
    if (m && m->content_type[0])
        json_object_set_new(j, "ct", json_string(m->content_type));
    if (m && json_is_object(m->user_meta))
        json_object_set(j, "um", m->user_meta);
    if (m && json_is_object(m->extra))
        json_object_set(j, "ex", m->extra);
    if (m && json_object_size(m->tags))
        json_object_set(j, "tags", m->tags);
    if (m && json_is_object(m->acl))
        json_object_set(j, "acl", m->acl);
    if (m)
        os_checksum_to_json(j, &m->ck);
    return j;
}

json_t *os_meta_to_json(const os_meta_t *m)
{
    json_t *j = client_meta_json(m);
    json_object_set_new(j, "size", json_integer((json_int_t)m->size));
    json_object_set_new(j, "etag", json_string(m->etag));
    json_object_set_new(j, "mtime", json_integer(m->mtime));
    return j;
}

void os_meta_from_json(const json_t *j, os_meta_t *m)
{
    memset(m, 0, sizeof *m);
    m->size = (uint64_t)json_int(j, "size", 0);
    snprintf(m->etag, sizeof m->etag, "%s", json_str(j, "etag", ""));
    snprintf(m->content_type, sizeof m->content_type, "%s", json_str(j, "ct", ""));
    m->mtime = json_int(j, "mtime", 0);
    json_t *um = json_object_get(j, "um"), *ex = json_object_get(j, "ex"), *tg = json_object_get(j, "tags");
    m->user_meta = json_is_object(um) ? json_incref(um) : NULL;
    m->extra = json_is_object(ex) ? json_incref(ex) : NULL;
    m->tags = json_object_size(tg) ? json_incref(tg) : NULL;
    json_t *acl = json_object_get(j, "acl");
    m->acl = json_is_object(acl) ? json_incref(acl) : NULL;
    os_checksum_from_json(j, &m->ck);
    snprintf(m->version_id, sizeof m->version_id, "%s", os_entry_vid(j));
    m->delete_marker = os_entry_is_dm(j);
}

static json_t *seg_json(const json_t *from)
{
    json_t *s = json_object();
    json_object_set(s, "v", json_object_get(from, "v"));
    json_object_set(s, "size", json_object_get(from, "size"));
    if (json_int(from, "sb", 0) > 0)
        json_object_set(s, "sb", json_object_get(from, "sb"));
    return s;
}

int os_entry_walk(const json_t *entry, os_seg_fn fn, void *arg)
{
    const json_t *parts = json_object_get(entry, "parts");
    const json_t *list = json_is_array(parts) ? parts : NULL;
    size_t n = list ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = list ? json_array_get(list, i) : entry;
        os_seg_t s = {json_str(p, "v", NULL), (uint64_t)json_int(p, "size", 0), (uint64_t)json_int(p, "sb", 0)};
        if (!s.v)
            continue;   /* nothing stored (never happens for entries we write) */
        int rc = fn(arg, &s);
        if (rc)
            return rc;
    }
    return 0;
}

uint64_t os_seg_stripes(const os_seg_t *s)
{
    if (!s->sb)
        return 1;
    return (s->size + s->sb - 1) / s->sb;
}

int os_list_emit(os_list_fn fn, void *arg, const char *key, const json_t *entry, int is_latest, verr_t *e)
{
    os_meta_t m;
    os_meta_from_json(entry, &m);
    m.is_latest = is_latest;
    int rc = fn(arg, key, &m);
    os_meta_clear(&m);
    return rc ? verr_set(e, 499, "ClientGone", "The listing was stopped") : 0;
}

/* ---- argument checks ---- */

static int check_bucket(os_backend_t *b, const char *bucket, verr_t *e)
{
    if (!b)
        return verr_set(e, 500, "InternalError", "no object store backend");
    size_t n = bucket ? strnlen(bucket, OS_BUCKET_MAX + 1) : 0;
    if (n == 0 || n > OS_BUCKET_MAX || bucket[0] == '.')
        return verr_set(e, 400, "InvalidArgument", "invalid bucket id");
    /* Bucket ids become RADOS object and directory names: keep them to a safe alphabet. */
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)bucket[i]) && !strchr("-_.", bucket[i]))
            return verr_set(e, 400, "InvalidArgument", "invalid bucket id");
    return 0;
}

static int check_key(const char *key, verr_t *e)
{
    size_t n = key ? strnlen(key, OS_KEY_MAX + 1) : 0;
    if (n == 0)
        return verr_set(e, 400, "InvalidArgument", "An object key must not be empty");
    if (n > OS_KEY_MAX)
        return verr_set(e, 400, "KeyTooLongError", "Your key is too long");
    return 0;
}

static int check_upload(const char *upload_id, verr_t *e)
{
    return os_upload_id_valid(upload_id) ? 0 : os_err_nosuchupload(e);
}

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
    if (check_bucket(b, bucket_id, e))
        return -1;
    return b->ops->bucket_create(b, bucket_id, e);
}

int os_bucket_delete(os_backend_t *b, const char *bucket_id, verr_t *e)
{
    if (check_bucket(b, bucket_id, e))
        return -1;
    return b->ops->bucket_delete(b, bucket_id, e);
}

/* ---- streaming writes ---- */

static void put_free(os_put_t *p, int committed)
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

static int put_start(os_backend_t *b, const char *bucket, const char *key, os_versioning_t vers,
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
        put_free(p, 0);
        return -1;
    }
    os_put_ck_begin(p);
    *out = p;
    return 0;
}

static int check_vers(os_versioning_t vers, verr_t *e)
{
    if (vers != OS_VERSIONING_OFF && vers != OS_VERSIONING_ENABLED && vers != OS_VERSIONING_SUSPENDED)
        return verr_set(e, 500, "InternalError", "unknown versioning state %d", (int)vers);
    return 0;
}

int os_put_begin(os_backend_t *b, const char *bucket_id, const char *key, os_versioning_t vers, os_put_t **out,
                 verr_t *e)
{
    if (!out || check_bucket(b, bucket_id, e) || check_key(key, e) || check_vers(vers, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_put_begin: no out");
    return put_start(b, bucket_id, key, vers, NULL, 0, out, e);
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
static void put_digest(os_put_t *p, os_meta_t *meta)
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
        put_free(p, 0);
        return verr_set(e, 500, "InternalError", "os_put_commit: not an object write");
    }
    put_digest(p, meta);
    json_t *rec = os_meta_to_json(meta);
    json_object_set_new(rec, "v", json_string(p->version));
    int rc = p->b->ops->put_commit(p, rec, meta, e);
    json_decref(rec);
    put_free(p, rc == 0);
    return rc;
}

void os_put_abort(os_put_t *p)
{
    put_free(p, 0);
}

/* ---- reads ---- */

static int check_vid(const char *version_id, verr_t *e)
{
    if (version_id && !os_version_id_valid(version_id))
        return verr_set(e, 400, "InvalidArgument", "Invalid version id specified");
    return 0;
}

int os_head_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                    os_meta_t *out, verr_t *e)
{
    if (!out || check_bucket(b, bucket_id, e) || check_key(key, e) || check_vid(version_id, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_head: no out");
    json_t *ent;
    int latest;
    if (os_locate(b, bucket_id, key, version_id, &ent, &latest, e))
        return -1;
    os_meta_from_json(ent, out);
    out->is_latest = latest;
    json_decref(ent);
    return 0;
}

int os_head(os_backend_t *b, const char *bucket_id, const char *key, os_meta_t *out, verr_t *e)
{
    if (os_head_version(b, bucket_id, key, NULL, out, e))
        return -1;
    if (out->delete_marker) {
        os_meta_clear(out);
        return os_err_nosuchkey(e);
    }
    return 0;
}

typedef struct read_walk {
    os_backend_t *b;
    const char *bucket;
    uint64_t off, end, pos;     /* wanted [off, end) of the object; pos = start of this piece */
    os_sink_fn sink;
    void *arg;
    verr_t *e;
} read_walk_t;

static int read_piece(void *arg, const os_seg_t *s)
{
    read_walk_t *w = arg;
    uint64_t start = w->pos, stop = w->pos + s->size;
    w->pos = stop;
    if (stop <= w->off || start >= w->end)
        return 0;
    uint64_t from = w->off > start ? w->off - start : 0;
    uint64_t to = (w->end < stop ? w->end : stop) - start;
    return w->b->ops->read_seg(w->b, w->bucket, s, from, to - from, w->sink, w->arg, w->e) ? -1 : 0;
}

int os_read_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id, uint64_t off,
                    uint64_t len, os_sink_fn sink, void *arg, os_meta_t *meta, verr_t *e)
{
    if (!sink || check_bucket(b, bucket_id, e) || check_key(key, e) || check_vid(version_id, e))
        return sink ? -1 : verr_set(e, 500, "InternalError", "os_read: no sink");
    json_t *ent;
    int latest;
    if (os_locate(b, bucket_id, key, version_id, &ent, &latest, e))
        return -1;
    if (os_entry_is_dm(ent)) {
        json_decref(ent);
        return version_id ? os_err_method(e) : os_err_nosuchkey(e);
    }
    if (meta) {
        os_meta_from_json(ent, meta);
        meta->is_latest = latest;
    }
    /* The range was checked against the size the caller saw; a concurrent overwrite may
     * have changed it, so clamp to the version actually read (meta tells which). */
    uint64_t size = (uint64_t)json_int(ent, "size", 0);
    if (off > size)
        off = size;
    if (len > size - off)
        len = size - off;
    read_walk_t w = {b, bucket_id, off, off + len, 0, sink, arg, e};
    const json_t *inl = json_object_get(ent, OS_INLINE_FIELD);
    int rc = 0;
    if (inl && json_string_length(inl) != size) {
        log_error("objectstore: inline object %s: %zu bytes stored, %" PRIu64 " expected", key,
                  json_string_length(inl), size);
        rc = verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
    }
    else if (inl && len)
        rc = os_sink_call(sink, arg, json_string_value(inl) + off, (size_t)len, e);
    else if (len)
        rc = os_entry_walk(ent, read_piece, &w);
    json_decref(ent);
    if (rc && meta)
        os_meta_clear(meta);
    return rc ? -1 : 0;
}

int os_read(os_backend_t *b, const char *bucket_id, const char *key, uint64_t off, uint64_t len, os_sink_fn sink,
            void *arg, os_meta_t *meta, verr_t *e)
{
    return os_read_version(b, bucket_id, key, NULL, off, len, sink, arg, meta, e);
}

int os_delete(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
              os_versioning_t vers, os_meta_t *out, verr_t *e)
{
    if (check_bucket(b, bucket_id, e) || check_key(key, e) || check_vid(version_id, e) || check_vers(vers, e))
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

int os_set_attrs(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                 const json_t *attrs, verr_t *e)
{
    if (check_bucket(b, bucket_id, e) || check_key(key, e) || check_vid(version_id, e))
        return -1;
    os_vop_t op = {.kind = OS_VOP_SET_ATTRS, .vid = version_id, .attrs = attrs};
    os_kstate_t st = {0};
    return os_vchange(b, bucket_id, key, &op, NULL, &st, 0, NULL, e);
}

static int check_list(os_backend_t *b, const char *bucket_id, os_list_fn fn, const char *const *keys, size_t n,
                      verr_t *e)
{
    if (!fn || check_bucket(b, bucket_id, e))
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

/* ---- multipart ---- */

int os_mpu_create(os_backend_t *b, const char *bucket_id, const char *key, const os_meta_t *meta,
                  char upload_id[96], verr_t *e)
{
    if (!upload_id || check_bucket(b, bucket_id, e) || check_key(key, e))
        return upload_id ? -1 : verr_set(e, 500, "InternalError", "os_mpu_create: no upload_id");
    size_t klen = strlen(key);
    char *hex = xmalloc(2 * klen + 1);
    os_hex_encode(key, klen, hex);
    json_t *up = json_object();
    json_object_set_new(up, "k", json_string(hex));
    json_object_set_new(up, "meta", client_meta_json(meta));
    json_object_set_new(up, "initiated", json_integer((json_int_t)time(NULL)));
    free(hex);
    char id[OS_UPLOAD_ID_LEN + 1];
    os_new_upload_id(id);
    int rc = b->ops->mpu_create(b, bucket_id, id, up, e);
    json_decref(up);
    if (rc == 0)
        snprintf(upload_id, 96, "%s", id);
    return rc;
}

int os_mpu_part_begin(os_backend_t *b, const char *bucket_id, const char *upload_id, int part, os_put_t **out,
                      verr_t *e)
{
    if (!out || check_bucket(b, bucket_id, e) || check_upload(upload_id, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_mpu_part_begin: no out");
    if (part < 1 || part > OS_MAX_PART)
        return verr_set(e, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
    return put_start(b, bucket_id, NULL, OS_VERSIONING_OFF, upload_id, part, out, e);
}

int os_mpu_part_commit(os_put_t *p, os_meta_t *meta, verr_t *e)
{
    if (!p || !meta || p->key) {
        put_free(p, 0);
        return verr_set(e, 500, "InternalError", "os_mpu_part_commit: not a part write");
    }
    memset(meta, 0, sizeof *meta);
    put_digest(p, meta);
    json_t *rec = json_object();
    json_object_set_new(rec, "v", json_string(p->version));
    json_object_set_new(rec, "etag", json_string(meta->etag));
    json_object_set_new(rec, "size", json_integer((json_int_t)meta->size));
    json_object_set_new(rec, "mtime", json_integer(meta->mtime));
    json_object_set_new(rec, "cks", os_put_ck_part_json(p));
    int rc = p->b->ops->part_commit(p, rec, e);
    json_decref(rec);
    put_free(p, rc == 0);
    return rc;
}

/* Client ETags usually arrive quoted; compare the hex case-insensitively. */
static int etag_matches(const char *client, const char *stored)
{
    size_t n = strlen(client);
    if (n >= 2 && client[0] == '"' && client[n - 1] == '"') {
        client++;
        n -= 2;
    }
    return n == strlen(stored) && strncasecmp(client, stored, n) == 0;
}

static int plan_check(const json_t *parts, const os_part_ref_t *refs, size_t n, verr_t *e)
{
    if (n == 0)
        return verr_set(e, 400, "MalformedXML",
                        "The XML you provided was not well-formed or did not validate against our published schema");
    for (size_t i = 1; i < n; i++)
        if (refs[i].number <= refs[i - 1].number)
            return verr_set(e, 400, "InvalidPartOrder",
                            "The list of parts was not in ascending order. Parts must be ordered by part number.");
    /* Every part must exist before sizes matter (S3 reports InvalidPart first). */
    for (size_t i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", refs[i].number);
        const json_t *p = json_object_get(parts, num);
        if (!p || !etag_matches(refs[i].etag, json_str(p, "etag", "")))
            return verr_set(e, 400, "InvalidPart",
                            "One or more of the specified parts could not be found. The part may not have been "
                            "uploaded, or the specified entity tag may not have matched the part's entity tag.");
    }
    for (size_t i = 0; i + 1 < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", refs[i].number);
        if (json_int(json_object_get(parts, num), "size", 0) < (json_int_t)OS_MIN_PART_SIZE)
            return verr_set(e, 400, "EntityTooSmall",
                            "Your proposed upload is smaller than the minimum allowed object size.");
    }
    return 0;
}

/* S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-<count>". */
static void plan_etag(const json_t *parts, const os_part_ref_t *refs, size_t n, char etag[72])
{
    EVP_MD_CTX *c = os_md5_new();
    for (size_t i = 0; i < n; i++) {
        char num[16], bin[17];
        snprintf(num, sizeof num, "%d", refs[i].number);
        const char *hex = json_str(json_object_get(parts, num), "etag", "");
        if (os_hex_decode(hex, strlen(hex), bin, sizeof bin, NULL) == 0)
            EVP_DigestUpdate(c, bin, 16);
    }
    char hex[33];
    os_md5_final(c, NULL, hex);
    EVP_MD_CTX_free(c);
    snprintf(etag, 72, "%s-%zu", hex, n);
}

int os_mpu_plan(const char *key, const json_t *upload, const json_t *parts, const os_part_ref_t *refs,
                size_t nrefs, const os_checksum_t *want, json_t **entry, json_t **unused, os_meta_t *out,
                verr_t *e)
{
    size_t klen = strlen(key);
    char *hex = xmalloc(2 * klen + 1);
    os_hex_encode(key, klen, hex);
    int same = strcmp(hex, json_str(upload, "k", "")) == 0;
    free(hex);
    if (!same)
        return os_err_nosuchupload(e);   /* the upload belongs to another key */
    os_checksum_t ck;
    if (plan_check(parts, refs, nrefs, e) || os_mpu_checksum(upload, parts, refs, nrefs, want, &ck, e))
        return -1;

    os_meta_t m;
    os_meta_from_json(json_object_get(upload, "meta"), &m);
    m.ck = ck;   /* the upload's meta holds what the client chose, not a value */
    json_t *list = json_array(), *used = json_object();
    for (size_t i = 0; i < nrefs; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", refs[i].number);
        const json_t *p = json_object_get(parts, num);
        m.size += (uint64_t)json_int(p, "size", 0);
        json_array_append_new(list, seg_json(p));
        json_object_set_new(used, num, json_true());
    }
    plan_etag(parts, refs, nrefs, m.etag);
    m.mtime = (int64_t)time(NULL);
    *entry = os_meta_to_json(&m);
    json_object_set_new(*entry, "parts", list);
    *unused = json_array();
    const char *num;
    json_t *p;
    json_object_foreach((json_t *)parts, num, p)
        if (!json_object_get(used, num))
            json_array_append(*unused, p);
    json_decref(used);
    if (out)
        *out = m;
    else
        os_meta_clear(&m);
    return 0;
}

int os_mpu_complete(os_backend_t *b, const char *bucket_id, const char *key, const char *upload_id,
                    os_versioning_t vers, const os_part_ref_t *parts, size_t nparts, const os_checksum_t *want,
                    os_meta_t *out, verr_t *e)
{
    if (check_bucket(b, bucket_id, e) || check_key(key, e) || check_upload(upload_id, e) || check_vers(vers, e))
        return -1;
    if (nparts > OS_MAX_PART || (nparts && !parts))
        return verr_set(e, 400, "InvalidPart", "Too many parts");
    os_meta_t m;
    memset(&m, 0, sizeof m);
    int rc = b->ops->mpu_complete(b, bucket_id, key, upload_id, vers, parts, nparts, want, &m, e);
    if (out && rc == 0)
        *out = m;
    else
        os_meta_clear(&m);
    return rc;
}

int os_mpu_abort(os_backend_t *b, const char *bucket_id, const char *upload_id, verr_t *e)
{
    if (check_bucket(b, bucket_id, e) || check_upload(upload_id, e))
        return -1;
    return b->ops->mpu_abort(b, bucket_id, upload_id, e);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int os_mpu_list_parts(os_backend_t *b, const char *bucket_id, const char *upload_id, os_checksum_t *ck,
                      os_part_fn fn, void *arg, verr_t *e)
{
    if (!fn || check_bucket(b, bucket_id, e) || check_upload(upload_id, e))
        return fn ? -1 : verr_set(e, 500, "InternalError", "os_mpu_list_parts: no callback");
    json_t *up, *parts;
    if (b->ops->mpu_load(b, bucket_id, upload_id, &up, &parts, e))
        return -1;
    os_checksum_t uck;
    os_upload_checksum(up, &uck, NULL);
    if (ck)
        *ck = uck;
    size_t n = 0;
    int *nums = xmalloc((json_object_size(parts) + 1) * sizeof *nums);
    const char *num;
    json_t *p;
    json_object_foreach(parts, num, p)
        nums[n++] = atoi(num);
    qsort(nums, n, sizeof *nums, cmp_int);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", nums[i]);
        p = json_object_get(parts, s);
        if (fn(arg, nums[i], json_str(p, "etag", ""), (uint64_t)json_int(p, "size", 0), json_int(p, "mtime", 0),
               json_str(json_object_get(p, "cks"), ck_name(uck.alg), NULL)))
            rc = verr_set(e, 499, "ClientGone", "The listing was stopped");
    }
    free(nums);
    json_decref(up);
    json_decref(parts);
    return rc;
}

typedef struct upload_row {
    char *key;          /* decoded */
    size_t klen;
    const char *id;
    int64_t initiated;
} upload_row_t;

static int cmp_upload(const void *a, const void *b)
{
    const upload_row_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    if (x->initiated != y->initiated)
        return x->initiated < y->initiated ? -1 : 1;
    return strcmp(x->id, y->id);
}

int os_mpu_list(os_backend_t *b, const char *bucket_id, const char *prefix, os_upload_fn fn, void *arg, verr_t *e)
{
    if (!fn || check_bucket(b, bucket_id, e))
        return fn ? -1 : verr_set(e, 500, "InternalError", "os_mpu_list: no callback");
    json_t *all;
    if (b->ops->mpu_uploads(b, bucket_id, &all, e))
        return -1;
    size_t plen = prefix ? strlen(prefix) : 0, n = 0, i;
    upload_row_t *rows = xcalloc(json_array_size(all) + 1, sizeof *rows);
    json_t *u;
    json_array_foreach(all, i, u) {
        const char *hex = json_str(u, "k", "");
        upload_row_t r = {xmalloc(strlen(hex) / 2 + 1), 0, json_str(u, "id", ""), json_int(u, "initiated", 0)};
        if (os_hex_decode(hex, strlen(hex), r.key, strlen(hex) / 2 + 1, &r.klen) || r.klen < plen ||
            memcmp(r.key, prefix, plen) != 0) {
            free(r.key);
            continue;
        }
        rows[n++] = r;
    }
    qsort(rows, n, sizeof *rows, cmp_upload);
    int rc = 0;
    for (i = 0; i < n; i++) {
        if (!rc && fn(arg, rows[i].key, rows[i].id, rows[i].initiated))
            rc = verr_set(e, 499, "ClientGone", "The listing was stopped");
        free(rows[i].key);
    }
    free(rows);
    json_decref(all);
    return rc;
}

int os_backend_gc(os_backend_t *b, int grace_s, int stale_s, verr_t *e)
{
    if (!b)
        return verr_set(e, 500, "InternalError", "no object store backend");
    return b->ops->gc(b, grace_s < 0 ? 0 : grace_s, stale_s < 0 ? 0 : stale_s, e);
}

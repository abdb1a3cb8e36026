/* backend_format.c - what the storage interface's files (backend.c, backend_read.c,
 * backend_mpu.c) and both backends share, so that it exists once: the S3 errors of the
 * storage layer, ids and stamped names, the JSON documents kept in the index (entries,
 * metadata, data pieces; see backend_internal.h), MD5, and the checks every os_* function
 * makes of its arguments before calling a backend. */
#include "backend_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"

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

int os_upload_id_valid(const char *id)
{
    return hex_lower_exact(id, OS_UPLOAD_ID_LEN);
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
    if (*end != '.' || !hex_lower_exact(end + 1, OS_VERSION_LEN))
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
    json_decref(m->parts);
    memset(m, 0, sizeof *m);
}

/* The parts of a meta a client chooses (kept in an upload record until completion). */
json_t *os_client_meta_json(const os_meta_t *m)
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
    json_t *j = os_client_meta_json(m);
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
    const json_t *parts = json_object_get(j, "parts");
    if (json_is_array(parts)) {
        m->parts = json_array();
        size_t i;
        const json_t *p;
        json_array_foreach(parts, i, p)
            json_array_append_new(m->parts, json_integer(json_int(p, "size", 0)));
    }
    snprintf(m->version_id, sizeof m->version_id, "%s", os_entry_vid(j));
    m->delete_marker = os_entry_is_dm(j);
}

json_t *os_seg_json(const json_t *from)
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

int os_check_bucket(os_backend_t *b, const char *bucket, verr_t *e)
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

int os_check_key(const char *key, verr_t *e)
{
    size_t n = key ? strnlen(key, OS_KEY_MAX + 1) : 0;
    if (n == 0)
        return verr_set(e, 400, "InvalidArgument", "An object key must not be empty");
    if (n > OS_KEY_MAX)
        return verr_set(e, 400, "KeyTooLongError", "Your key is too long");
    return 0;
}

int os_check_upload(const char *upload_id, verr_t *e)
{
    return os_upload_id_valid(upload_id) ? 0 : os_err_nosuchupload(e);
}

int os_check_vers(os_versioning_t vers, verr_t *e)
{
    if (vers != OS_VERSIONING_OFF && vers != OS_VERSIONING_ENABLED && vers != OS_VERSIONING_SUSPENDED)
        return verr_set(e, 500, "InternalError", "unknown versioning state %d", (int)vers);
    return 0;
}

int os_check_vid(const char *version_id, verr_t *e)
{
    if (version_id && !os_version_id_valid(version_id))
        return verr_set(e, 400, "InvalidArgument", "Invalid version id specified");
    return 0;
}

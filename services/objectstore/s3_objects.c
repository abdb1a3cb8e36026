/* s3_objects.c - objects: PutObject (streamed into the backend; visible only when the
 * whole body arrived and matched its signature and Content-MD5), GetObject (ranges,
 * conditional headers; headers and bytes of one version, large bodies pulled from the
 * backend as the client takes them), HeadObject, DeleteObject, CopyObject, and the object
 * metadata taken from headers (its ACL and owner included: s3_acl.c). */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "caller.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "s3_checksum.h"
#include "s3_chunked.h"
#include "strbuf.h"
#include "utf8.h"
#include "xml.h"

#define INLINE_MAX (1024 * 1024)   /* bodies up to this are read before answering */
#define USAGE_STEP (8 * 1024 * 1024)   /* quota reserved ahead for a body of unknown length */

/* Headers S3 stores with an object and returns on GET/HEAD. */
static const char *stored_headers[] = {"Cache-Control", "Content-Disposition", "Content-Encoding",
                                       "Content-Language", "Expires", NULL};

int s3_meta_acl(s3_req_t *r, os_meta_t *m, verr_t *e)
{
    json_t *acl = NULL;
    if (s3_acl_from_request(r, &r->row, s3_account(r), &acl, e) < 0)
        return -1;
    if (s3_access_block_acl(&r->row, acl, e) < 0) {
        json_decref(acl);
        return -1;
    }
    s3_object_owner(&r->row, s3_account(r), &acl);
    json_decref(m->acl);
    m->acl = acl;
    return 0;
}

int s3_meta_from_headers(s3_req_t *r, os_meta_t *m, verr_t *e)
{
    const char *ct = s3_header(r, "Content-Type");
    snprintf(m->content_type, sizeof m->content_type, "%s", ct ? ct : "binary/octet-stream");
    const char *names[128], *values[128];
    size_t n = http_headers(r->http, names, values, 128);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strncasecmp(names[i], "x-amz-meta-", 11)) {
            if (!m->user_meta)
                m->user_meta = json_object();
            char lower[256];
            size_t k = 0;
            for (; names[i][k] && k + 1 < sizeof lower; k++)
                lower[k] = (char)tolower((unsigned char)names[i][k]);
            lower[k] = 0;
            /* Kept byte for byte (an RFC 2047 word as boto3 users send non-ASCII text, or raw
             * UTF-8 as the JavaScript SDK sends it); other bytes could not be stored as text
             * and are refused rather than dropped. */
            if (!utf8_valid(values[i], strlen(values[i])))
                return verr_set(e, 400, "InvalidArgument", "The value of metadata header %.200s is not UTF-8.", lower);
            bytes += strlen(lower) + strlen(values[i]);
            json_object_set_new(m->user_meta, lower, json_string(values[i]));
        }
    }
    if (bytes > 2048)
        return verr_set(e, 400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size (2 KB).");
    char encoding[256];
    for (int i = 0; stored_headers[i]; i++) {
        const char *v = s3_header(r, stored_headers[i]);
        if (v && !strcasecmp(stored_headers[i], "Content-Encoding")) {
            s3_chunked_content_encoding(v, encoding, sizeof encoding);
            v = encoding[0] ? encoding : NULL;
        }
        if (v) {
            if (!m->extra)
                m->extra = json_object();
            json_object_set_new(m->extra, stored_headers[i], json_string(v));
        }
    }
    return s3_meta_acl(r, m, e);
}

/* ---- PutObject ------------------------------------------------------------------ */

struct md5_check {
    EVP_MD_CTX *ctx;
    unsigned char want[16];
};

int s3_md5_begin(s3_req_t *r, verr_t *e)
{
    const char *md5 = s3_header(r, "Content-MD5");
    if (!md5)
        return 0;
    struct md5_check *m = xcalloc(1, sizeof *m);
    size_t len = 0;
    if (sodium_base642bin(m->want, sizeof m->want, md5, strlen(md5), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || len != 16) {
        free(m);
        return verr_set(e, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
    }
    m->ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m->ctx, EVP_md5(), NULL);
    r->md5 = m;
    return 0;
}

int s3_put_object_begin(s3_req_t *r, verr_t *e)
{
    if (s3_payload_size_check(r, e) < 0 || (r->payload_len < 0 && s3_usage_prepare(r, e) < 0) ||
        s3_usage_charge(r, r->payload_len, e) < 0 ||
        s3_meta_from_headers(r, &r->meta, e) < 0 ||
        s3_tags_from_header(r, &r->meta.tags, e) < 0 || s3_md5_begin(r, e) < 0 ||
        os_put_begin(r->os->backend, r->bucket_id, r->key, r->versioning, &r->put, e) < 0)
        return -1;
    return s3_checksum_put_begin(r, r->put, e);
}

int s3_put_data(s3_req_t *r, const char *buf, size_t len, verr_t *e)
{
    if (r->received > r->os->max_put)
        return verr_set(e, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.");
    /* a body of undeclared length reserves its bytes as they come */
    if (r->received > (uint64_t)r->charged &&
        s3_usage_charge(r, (int64_t)(r->received - (uint64_t)r->charged) + USAGE_STEP, e) < 0)
        return -1;
    if (r->md5)
        EVP_DigestUpdate(((struct md5_check *)r->md5)->ctx, buf, len);
    return os_put_write(r->put, buf, len, e);
}

/* Content-MD5 checked before the object becomes visible. */
int s3_check_md5(s3_req_t *r, verr_t *e)
{
    struct md5_check *m = r->md5;
    if (!m)
        return 0;
    unsigned char got[16];
    unsigned int n = 0;
    EVP_DigestFinal_ex(m->ctx, got, &n);
    if (memcmp(got, m->want, 16))
        return verr_set(e, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    return 0;
}

void s3_md5_free(void *p)
{
    struct md5_check *m = p;
    if (m) {
        EVP_MD_CTX_free(m->ctx);
        free(m);
    }
}

void s3_put_object(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (s3_check_md5(r, e) < 0 || s3_checksum_put_verify(r, r->put, e) < 0)
        return;
    r->meta.mtime = time(NULL);
    uint64_t replaced = s3_usage_replaced(r, r->key, NULL);
    if (os_put_commit(r->put, &r->meta, e) < 0) {
        r->put = NULL;
        return;
    }
    r->put = NULL;
    s3_usage_settle(r, r->meta.size);
    s3_usage_refund(r, replaced);
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", r->meta.etag);
    http_resp_header(resp, "ETag", etag);
    if (r->versioning == OS_VERSIONING_ENABLED)   /* S3 names no null version on a PUT */
        http_resp_header(resp, "x-amz-version-id", r->meta.version_id);
    s3_checksum_put_headers(r, &r->meta.ck, resp);
    http_resp_set(resp, 200, NULL, "", 0);
}

/* ---- GetObject / HeadObject ------------------------------------------------------ */

int s3_object_access(s3_req_t *r, os_meta_t *m, json_t **acl, os_object_t **obj, verr_t *e)
{
    const char *vid = s3_query(r, "versionId");
    int rc = obj ? os_open_version(r->os->backend, r->bucket_id, r->key, vid, obj, m, e)
                 : os_head_version(r->os->backend, r->bucket_id, r->key, vid, m, e);
    if (rc < 0) {
        /* S3 tells a missing key or version only to those who may list the bucket */
        verr_t le = {0};
        if ((!strcmp(e->code, "NoSuchKey") || !strcmp(e->code, "NoSuchVersion")) &&
            s3_access_check(r, &r->row, vid ? "ListObjectVersions" : "ListObjects", NULL, NULL, NULL, &le) < 0)
            *e = le;
        return -1;
    }
    *acl = m->delete_marker ? NULL : s3_object_acl(&r->row, m);
    if (s3_access_check(r, &r->row, r->op->name, r->key, vid, *acl, e) == 0)
        return 0;
    if (obj) {
        os_object_close(*obj);
        *obj = NULL;
    }
    return -1;
}

static int64_t parse_http_date(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return -1;
    return (int64_t)timegm(&tm);
}

static int etag_matches(const char *header, const char *etag)
{
    if (!strcmp(header, "*"))
        return 1;
    char want[80];
    snprintf(want, sizeof want, "\"%s\"", etag);
    return strstr(header, want) != NULL || !strcmp(header, etag);
}

/* The four conditional headers under their names: GET/HEAD's own, or CopyObject's and
 * UploadPartCopy's x-amz-copy-source-if-* on the source. */
typedef struct cond_names {
    const char *match, *none_match, *modified, *unmodified;
} cond_names_t;

static const cond_names_t get_conds = {"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"};
static const cond_names_t copy_conds = {"x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                                        "x-amz-copy-source-if-modified-since",
                                        "x-amz-copy-source-if-unmodified-since"};

/* 0 = go on; 304/412 = answer that. As HTTP (RFC 9110 13.2.2) and S3 combine them: a
 * date condition counts only when its ETag counterpart is absent, so If-Match true
 * with If-Unmodified-Since false goes on, and If-None-Match true with
 * If-Modified-Since false goes on. */
static int conditions(const s3_req_t *r, const os_meta_t *m, const cond_names_t *h)
{
    const char *im = s3_header(r, h->match), *inm = s3_header(r, h->none_match);
    int64_t ims = parse_http_date(s3_header(r, h->modified));
    int64_t ius = parse_http_date(s3_header(r, h->unmodified));
    if (im && !etag_matches(im, m->etag))
        return 412;
    if (!im && ius >= 0 && m->mtime > ius)
        return 412;
    if (inm && etag_matches(inm, m->etag))
        return 304;
    if (!inm && ims >= 0 && m->mtime <= ims)
        return 304;
    return 0;
}

static int precondition_failed(verr_t *e)
{
    return verr_set(e, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
}

/* "bytes=a-b", "bytes=a-", "bytes=-n": 1 with [*off, *off+*len) set, 0 when absent or
 * not understood (the whole object is sent, as S3 does), -1 when unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (*end || end == p + 1)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *len = n > size ? size : n;
        *off = size - *len;
        return 1;
    }
    unsigned long long a = strtoull(p, &end, 10);
    if (end == p || *end != '-')
        return 0;
    p = end + 1;
    unsigned long long b = size ? size - 1 : 0;
    if (*p) {
        b = strtoull(p, &end, 10);
        if (*end || b < a)
            return 0;
        if (b >= size)
            b = size - 1;
    }
    if (a >= size)
        return -1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

/* A user metadata value as S3 returns it: ASCII as stored, anything else as one RFC 2047
 * encoded word (=?UTF-8?B?...?=), since HTTP clients read header bytes as Latin-1. */
static void meta_header(http_resp_t *resp, const char *name, const char *v)
{
    size_t n = strlen(v), i = 0;
    while (i < n && (unsigned char)v[i] < 0x80)
        i++;
    if (i == n) {
        http_resp_header(resp, name, v);
        return;
    }
    size_t b64 = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *enc = xmalloc(b64 + 16);
    memcpy(enc, "=?UTF-8?B?", 10);
    sodium_bin2base64(enc + 10, b64, (const unsigned char *)v, n, sodium_base64_VARIANT_ORIGINAL);
    strcat(enc, "?=");
    http_resp_header(resp, name, enc);
    free(enc);
}

static void object_headers(const os_meta_t *m, http_resp_t *resp)
{
    char etag[80], lm[40];
    snprintf(etag, sizeof etag, "\"%s\"", m->etag);
    s3_http_date(m->mtime, lm);
    http_resp_header(resp, "ETag", etag);
    http_resp_header(resp, "Last-Modified", lm);
    http_resp_header(resp, "Accept-Ranges", "bytes");
    const char *k;
    json_t *v;
    json_object_foreach(m->user_meta, k, v)
        if (json_is_string(v))
            meta_header(resp, k, json_string_value(v));
    json_object_foreach(m->extra, k, v)
        if (json_is_string(v) && strcmp(k, "x-amz-acl"))
            http_resp_header(resp, k, json_string_value(v));
}

static long no_body(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)arg;
    (void)pos;
    (void)buf;
    (void)max;
    return -1;   /* never called for HEAD */
}

static int sink_buf(void *arg, const void *data, size_t len)
{
    strbuf_put(arg, data, len);
    return 0;
}

/* A body too large to hold is pulled from the opened version as the connection can take
 * it (the HTTP thread asks for the next block when the socket is writable): no thread
 * of its own, and the backend keeps a bounded read-ahead. A read that fails (the version
 * was collected, the cluster stopped answering) cuts the body short: the client sees
 * fewer bytes than Content-Length, never other bytes. */
static long stream_reader(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)pos;   /* MHD asks in order */
    verr_t e;
    long n = os_reader_read(arg, buf, max, &e);
    if (n < 0)
        log_warn("GetObject: the body was cut short: %s", e.message);
    return n > 0 ? n : -1;   /* the end before the promised length is an error too */
}

static void stream_free(void *arg)
{
    os_reader_free(arg);
}

void s3_delete_marker_error(s3_req_t *r, const os_meta_t *m, int by_id, http_resp_t *resp)
{
    verr_t err = {0};
    if (by_id)
        verr_set(&err, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    else
        verr_set(&err, 404, "NoSuchKey", "The specified key does not exist.");
    s3_error(r, &err, resp);
    http_resp_header(resp, "x-amz-delete-marker", "true");
    http_resp_header(resp, "x-amz-version-id", m->version_id);
}

/* Headers and body come from one opened version: whatever overwrites the key meanwhile,
 * the ETag, Content-Length and Last-Modified sent describe the bytes that follow. */
static void get_or_head(s3_req_t *r, http_resp_t *resp, verr_t *e, int get)
{
    os_meta_t m = {0};
    os_object_t *o = NULL;
    JSON_AUTO json_t *acl = NULL;
    if (s3_response_overrides_check(r, e) < 0 || s3_object_access(r, &m, &acl, get ? &o : NULL, e) < 0)
        goto out;
    if (m.delete_marker) {
        s3_delete_marker_error(r, &m, s3_query(r, "versionId") != NULL, resp);
        goto out;
    }
    int c = conditions(r, &m, &get_conds);
    if (c == 412) {
        precondition_failed(e);
        goto out;
    }
    uint64_t off = 0, len = m.size;
    int ranged = s3_part_range(r, &m, &off, &len, resp, e);   /* partNumber */
    if (ranged < 0)
        goto out;
    if (!ranged)
        ranged = parse_range(s3_header(r, "Range"), m.size, &off, &len);
    if (ranged < 0) {
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)m.size);
        http_resp_header(resp, "Content-Range", cr);
        verr_set(e, 416, "InvalidRange", "The requested range is not satisfiable");
        goto out;
    }
    s3_response_overrides(r, &m);
    object_headers(&m, resp);
    s3_version_header(r, resp, m.version_id);
    s3_tagging_count_header(&m, resp);
    s3_checksum_get_headers(r, &m, ranged, resp);
    if (c == 304) {
        http_resp_set(resp, 304, NULL, "", 0);
        goto out;
    }
    int status = ranged ? 206 : 200;
    if (ranged) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)off, (unsigned long long)(off + len - 1),
                 (unsigned long long)m.size);
        http_resp_header(resp, "Content-Range", cr);
    }
    if (!get) {
        /* HEAD: the HTTP layer sends Content-Length = len and no body */
        http_resp_stream(resp, status, m.content_type, len, no_body, NULL, NULL);
        goto out;
    }
    transfer_count(r->bucket_owner, r->bucket, len);   /* data out, for billing */
    if (len <= INLINE_MAX) {
        strbuf_t b = {0};
        strbuf_put(&b, "", 0);
        if (len && os_object_read(o, off, len, sink_buf, &b, e) < 0) {
            free(b.s);
            http_resp_reset(resp);
            goto out;
        }
        http_resp_take(resp, status, m.content_type, b.s, b.len);
        goto out;
    }
    http_resp_stream(resp, status, m.content_type, len, stream_reader, os_reader_new(o, off, len), stream_free);
    o = NULL;   /* the reader has it */
out:
    os_object_close(o);
    os_meta_clear(&m);
}

void s3_get_object(s3_req_t *r, http_resp_t *resp, verr_t *e) { get_or_head(r, resp, e, 1); }
void s3_head_object(s3_req_t *r, http_resp_t *resp, verr_t *e) { get_or_head(r, resp, e, 0); }

void s3_delete_object(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    const char *vid = s3_query(r, "versionId");
    os_meta_t out = {0};
    if (s3_delete_version(r, r->key, vid, &out, e) < 0)
        return;
    /* The marker made, or the version removed (named even when it did not exist). */
    if (out.delete_marker)
        http_resp_header(resp, "x-amz-delete-marker", "true");
    s3_version_header(r, resp, out.version_id);
    http_resp_set(resp, 204, NULL, "", 0);
}

int s3_delete_version(s3_req_t *r, const char *key, const char *version_id, os_meta_t *out, verr_t *e)
{
    uint64_t removed = s3_usage_replaced(r, key, version_id);
    if (os_delete(r->os->backend, r->bucket_id, key, version_id, r->versioning, out, e) < 0)
        return -1;
    s3_usage_refund(r, removed);
    return 0;
}

/* ---- CopyObject ------------------------------------------------------------------ */

/* The versionId parameter of a copy source's query part ("" when there is none). */
static int source_version(const char *query, char out[OS_VERSION_ID_MAX], verr_t *e)
{
    out[0] = '\0';
    for (const char *p = query; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n >= 10 && !strncmp(p, "versionId=", 10)) {
            size_t vl = n - 10;
            if (vl < OS_VERSION_ID_MAX) {
                memcpy(out, p + 10, vl);
                out[vl] = '\0';
            }
            if (vl >= OS_VERSION_ID_MAX || !os_version_id_valid(out))
                return verr_set(e, 400, "InvalidArgument", "Invalid version id specified");
        }
        p += n + (p[n] == '&');
    }
    return 0;
}

int s3_copy_source(s3_req_t *r, s3_source_t *src, verr_t *e)
{
    memset(src, 0, sizeof *src);
    const char *hdr = s3_header(r, "x-amz-copy-source");
    char dec[S3_MAX_KEY + 128];
    size_t o = 0;
    size_t plen = strcspn(hdr, "?");
    for (size_t i = 0; i < plen && o + 1 < sizeof dec; i++) {
        int c = (unsigned char)hdr[i];
        if (c == '%' && i + 2 < plen && hex_digit_value((unsigned char)hdr[i + 1]) >= 0 &&
            hex_digit_value((unsigned char)hdr[i + 2]) >= 0) {
            c = hex_digit_value((unsigned char)hdr[i + 1]) * 16 + hex_digit_value((unsigned char)hdr[i + 2]);
            i += 2;
        }
        dec[o++] = (char)c;
    }
    dec[o] = 0;
    if (source_version(hdr[plen] ? hdr + plen + 1 : NULL, src->version_id, e) < 0)
        return -1;
    const char *b = dec[0] == '/' ? dec + 1 : dec;
    const char *slash = strchr(b, '/');
    if (!slash || slash == b || !slash[1] || (size_t)(slash - b) >= 64)
        return verr_set(e, 400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
    char bucket[64];
    memcpy(bucket, b, (size_t)(slash - b));
    bucket[slash - b] = 0;
    snprintf(src->key, sizeof src->key, "%s", slash + 1);
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    s3_bucket_t sb = {0};
    int found = s3_bucket_load(db, bucket, &sb, e);
    if (found <= 0) {
        s3_bucket_clear(&sb);
        return found < 0 ? -1 : verr_set(e, 404, "NoSuchBucket", "The specified source bucket does not exist");
    }
    snprintf(src->bucket_id, sizeof src->bucket_id, "%s", sb.id);
    /* reading the source is a GetObject of that version, decided like any other (a delete
     * marker, having no ACL, as the source bucket owner's) */
    const char *vid = src->version_id[0] ? src->version_id : NULL;
    int rc = os_open_version(r->os->backend, src->bucket_id, src->key, vid, &src->obj, &src->meta, e);
    if (rc == 0) {
        JSON_AUTO json_t *acl = src->meta.delete_marker ? NULL : s3_object_acl(&sb, &src->meta);
        rc = s3_access_check(r, &sb, "GetObject", src->key, vid, acl, e);
    }
    s3_bucket_clear(&sb);
    int dm = rc == 0 && src->meta.delete_marker;
    if (rc < 0 || dm)
        s3_source_clear(src);
    if (rc < 0)
        return -1;
    if (dm && vid)
        return verr_set(e, 400, "InvalidRequest",
                        "The source of a copy request may not specifically refer to a delete marker by version id.");
    if (dm)
        return verr_set(e, 404, "NoSuchKey", "The specified key does not exist.");
    /* x-amz-copy-source-if-*: on the source version, and a copy has no 304 */
    if (conditions(r, &src->meta, &copy_conds)) {
        os_meta_clear(&src->meta);
        return precondition_failed(e);
    }
    return 0;
}

static int sink_put(void *arg, const void *data, size_t len)
{
    verr_t e;
    return os_put_write(arg, data, len, &e);
}

void s3_source_clear(s3_source_t *src)
{
    os_object_close(src->obj);
    src->obj = NULL;
    os_meta_clear(&src->meta);
}

/* Copy [off, off+len) of the source version into put: the bytes of the version opened,
 * whatever overwrites its key meanwhile. */
int s3_copy_read(s3_req_t *r, const s3_source_t *src, uint64_t off, uint64_t len, os_put_t *put, verr_t *e)
{
    (void)r;
    return len ? os_object_read(src->obj, off, len, sink_put, put, e) : 0;
}

/* x-amz-copy-source-version-id: the source version copied, when it has an id of its own
 * or the request named one. */
void s3_copy_source_header(const s3_source_t *src, http_resp_t *resp)
{
    if (src->version_id[0] || strcmp(src->meta.version_id, "null"))
        http_resp_header(resp, "x-amz-copy-source-version-id", src->meta.version_id);
}

void s3_copy_object(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_source_t src;
    if (s3_copy_source(r, &src, e) < 0)
        return;
    const char *directive = s3_header(r, "x-amz-metadata-directive");
    const char *tagging = s3_header(r, "x-amz-tagging-directive");
    int replace = directive && !strcmp(directive, "REPLACE");
    os_meta_t m = {0};
    os_put_t *put = NULL;
    if (tagging && strcmp(tagging, "COPY") && strcmp(tagging, "REPLACE")) {
        verr_set(e, 400, "InvalidArgument", "Unknown tagging directive.");
        goto out;
    }
    /* Copying a version onto its own key is how an old version is restored. */
    if (!replace && !src.version_id[0] && !strcmp(src.bucket_id, r->bucket_id) && !strcmp(src.key, r->key)) {
        verr_set(e, 400, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
        goto out;
    }
    if (replace) {
        if (s3_meta_from_headers(r, &m, e) < 0)
            goto out;
    } else {
        snprintf(m.content_type, sizeof m.content_type, "%s", src.meta.content_type);
        m.user_meta = src.meta.user_meta ? json_deep_copy(src.meta.user_meta) : NULL;
        m.extra = src.meta.extra ? json_deep_copy(src.meta.extra) : NULL;
        /* the copy is a new object of the caller's: S3 never copies the ACL */
        if (s3_meta_acl(r, &m, e) < 0)
            goto out;
    }
    if (tagging && !strcmp(tagging, "REPLACE")) {
        if (s3_tags_from_header(r, &m.tags, e) < 0)
            goto out;
    } else
        m.tags = src.meta.tags ? json_deep_copy(src.meta.tags) : NULL;
    /* The copy is a new write of the source version's bytes: its checksum is computed
     * again as they stream (the source version's algorithm unless the request names one). */
    ck_alg_t ck = s3_checksum_copy_alg(r, &src.meta, e);
    if (ck == CK_NONE || s3_usage_charge(r, (int64_t)src.meta.size, e) < 0 ||
        os_put_begin(r->os->backend, r->bucket_id, r->key, r->versioning, &put, e) < 0)
        goto out;
    os_put_checksum_store(put, ck);
    if (s3_copy_read(r, &src, 0, src.meta.size, put, e) < 0) {
        os_put_abort(put);
        goto out;
    }
    m.mtime = time(NULL);
    uint64_t replaced = s3_usage_replaced(r, r->key, NULL);
    if (os_put_commit(put, &m, e) < 0)   /* frees put either way */
        goto out;
    s3_usage_settle(r, m.size);
    s3_usage_refund(r, replaced);
    char etag[80], when[40];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    s3_iso_date(m.mtime, when);
    xml_t *x = xml_new();
    xml_open(x, "CopyObjectResult", S3_NS);
    xml_elem(x, "LastModified", when);
    xml_elem(x, "ETag", etag);
    s3_checksum_xml(x, &m.ck, 1);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
    s3_copy_source_header(&src, resp);
    if (r->versioning == OS_VERSIONING_ENABLED)
        http_resp_header(resp, "x-amz-version-id", m.version_id);
out:
    s3_source_clear(&src);
    os_meta_clear(&m);
}

/* s3_objects.c - objects: PutObject (streamed into the backend; visible only when the
 * whole body arrived and matched its signature and Content-MD5), GetObject (ranges,
 * conditional headers; headers and bytes of one version, large bodies pulled from the
 * backend as the client takes them), HeadObject, DeleteObject, CopyObject, and the object
 * metadata taken from headers. */
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
#include "strbuf.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define INLINE_MAX (1024 * 1024)   /* bodies up to this are read before answering */

/* Headers S3 stores with an object and returns on GET/HEAD. */
static const char *stored_headers[] = {"Cache-Control", "Content-Disposition", "Content-Encoding",
                                       "Content-Language", "Expires", "x-amz-acl", NULL};

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
            bytes += strlen(lower) + strlen(values[i]);
            json_object_set_new(m->user_meta, lower, json_string(values[i]));
        }
    }
    if (bytes > 2048)
        return verr_set(e, 400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size (2 KB).");
    for (int i = 0; stored_headers[i]; i++) {
        const char *v = s3_header(r, stored_headers[i]);
        if (v) {
            if (!m->extra)
                m->extra = json_object();
            json_object_set_new(m->extra, stored_headers[i], json_string(v));
        }
    }
    const char *acl = json_str(m->extra, "x-amz-acl", "private");
    if (strcmp(acl, "private") && strcmp(acl, "public-read"))
        return verr_set(e, 501, "NotImplemented", "Only the canned ACLs private and public-read are supported.");
    return 0;
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
    const char *cl = s3_header(r, "x-amz-decoded-content-length");
    if (!cl)
        cl = s3_header(r, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > r->os->max_put)
        return verr_set(e, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.");
    if (!cl && !s3_header(r, "Transfer-Encoding"))
        return verr_set(e, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
    if (s3_meta_from_headers(r, &r->meta, e) < 0 || s3_md5_begin(r, e) < 0)
        return -1;
    return os_put_begin(r->os->backend, r->bucket_id, r->key, &r->put, e);
}

int s3_put_data(s3_req_t *r, const char *buf, size_t len, verr_t *e)
{
    if (r->received > r->os->max_put)
        return verr_set(e, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.");
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
    if (s3_check_md5(r, e) < 0)
        return;
    r->meta.mtime = time(NULL);
    if (os_put_commit(r->put, &r->meta, e) < 0) {
        r->put = NULL;
        return;
    }
    r->put = NULL;
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", r->meta.etag);
    http_resp_header(resp, "ETag", etag);
    http_resp_set(resp, 200, NULL, "", 0);
}

/* ---- GetObject / HeadObject ------------------------------------------------------ */

/* The caller may read this object: its owner, or anyone when the object is public-read. */
static int may_read(const s3_req_t *r, const os_meta_t *m, verr_t *e)
{
    if (r->caller && !strcmp(s3_account(r), r->bucket_owner))
        return 0;
    if (caller_is_operator_admin(r->caller))
        return 0;
    if (!strcmp(json_str(m->extra, "x-amz-acl", "private"), "public-read"))
        return 0;
    return verr_set(e, 403, "AccessDenied", "Access Denied");
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

/* 0 = go on; 304/412 = answer that (GET and HEAD alike). */
static int conditions(const s3_req_t *r, const os_meta_t *m)
{
    const char *im = s3_header(r, "If-Match"), *inm = s3_header(r, "If-None-Match");
    int64_t ims = parse_http_date(s3_header(r, "If-Modified-Since"));
    int64_t ius = parse_http_date(s3_header(r, "If-Unmodified-Since"));
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
            http_resp_header(resp, k, json_string_value(v));
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

/* Headers and body come from one opened version: whatever overwrites the key meanwhile,
 * the ETag, Content-Length and Last-Modified sent describe the bytes that follow. */
static void get_or_head(s3_req_t *r, http_resp_t *resp, verr_t *e, int get)
{
    os_meta_t m = {0};
    os_object_t *o = NULL;
    if (os_open(r->os->backend, r->bucket_id, r->key, &o, &m, e) < 0 || may_read(r, &m, e) < 0)
        goto out;
    int c = conditions(r, &m);
    if (c == 412) {
        verr_set(e, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        goto out;
    }
    uint64_t off = 0, len = m.size;
    int ranged = parse_range(s3_header(r, "Range"), m.size, &off, &len);
    if (ranged < 0) {
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)m.size);
        http_resp_header(resp, "Content-Range", cr);
        verr_set(e, 416, "InvalidRange", "The requested range is not satisfiable");
        goto out;
    }
    object_headers(&m, resp);
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
    if (os_delete(r->os->backend, r->bucket_id, r->key, e) < 0)
        return;
    http_resp_set(resp, 204, NULL, "", 0);
}

/* ---- CopyObject ------------------------------------------------------------------ */

int s3_copy_source(s3_req_t *r, char bucket_id[40], char *key, size_t keysz, os_object_t **obj, os_meta_t *meta,
                   verr_t *e)
{
    const char *src = s3_header(r, "x-amz-copy-source");
    char dec[S3_MAX_KEY + 128];
    size_t o = 0;
    for (size_t i = 0; src[i] && src[i] != '?' && o + 1 < sizeof dec; i++) {
        int c = (unsigned char)src[i];
        if (c == '%' && hex_digit_value((unsigned char)src[i + 1]) >= 0 && src[i + 1] &&
            hex_digit_value((unsigned char)src[i + 2]) >= 0) {
            c = hex_digit_value((unsigned char)src[i + 1]) * 16 + hex_digit_value((unsigned char)src[i + 2]);
            i += 2;
        }
        dec[o++] = (char)c;
    }
    dec[o] = 0;
    const char *b = dec[0] == '/' ? dec + 1 : dec;
    const char *slash = strchr(b, '/');
    if (!slash || slash == b || !slash[1] || (size_t)(slash - b) >= 64)
        return verr_set(e, 400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
    char bucket[64];
    memcpy(bucket, b, (size_t)(slash - b));
    bucket[slash - b] = 0;
    snprintf(key, keysz, "%s", slash + 1);
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    const char *p[] = {bucket};
    PG_AUTO PGresult *res = db_prepared(db, e, "bucket_get2", "SELECT id, account_id FROM buckets WHERE name = $1", 1, p);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return verr_set(e, 404, "NoSuchBucket", "The specified source bucket does not exist");
    snprintf(bucket_id, 40, "%s", PQgetvalue(res, 0, 0));
    if (os_open(r->os->backend, bucket_id, key, obj, meta, e) < 0)
        return -1;
    int ok = !strcmp(PQgetvalue(res, 0, 1), s3_account(r)) ||
             !strcmp(json_str(meta->extra, "x-amz-acl", "private"), "public-read") ||
             caller_is_operator_admin(r->caller);
    if (ok)
        return 0;
    os_object_close(*obj);
    *obj = NULL;
    os_meta_clear(meta);
    return verr_set(e, 403, "AccessDenied", "Access Denied");
}

static int sink_put(void *arg, const void *data, size_t len)
{
    verr_t e;
    return os_put_write(arg, data, len, &e);
}

void s3_copy_object(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    char src_bucket[40], src_key[S3_MAX_KEY + 1];
    os_object_t *from = NULL;
    os_meta_t src = {0}, m = {0};
    if (s3_copy_source(r, src_bucket, src_key, sizeof src_key, &from, &src, e) < 0)
        return;
    const char *directive = s3_header(r, "x-amz-metadata-directive");
    int replace = directive && !strcmp(directive, "REPLACE");
    if (!replace && !strcmp(src_bucket, r->bucket_id) && !strcmp(src_key, r->key)) {
        verr_set(e, 400, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
        goto out;
    }
    if (replace) {
        if (s3_meta_from_headers(r, &m, e) < 0)
            goto out;
    } else {
        snprintf(m.content_type, sizeof m.content_type, "%s", src.content_type);
        m.user_meta = src.user_meta ? json_deep_copy(src.user_meta) : NULL;
        m.extra = src.extra ? json_deep_copy(src.extra) : NULL;
    }
    os_put_t *put = NULL;
    if (os_put_begin(r->os->backend, r->bucket_id, r->key, &put, e) < 0)
        goto out;
    /* the bytes of the version whose metadata was just taken, whatever happens meanwhile */
    if (src.size && os_object_read(from, 0, src.size, sink_put, put, e) < 0) {
        os_put_abort(put);
        goto out;
    }
    m.mtime = time(NULL);
    if (os_put_commit(put, &m, e) < 0)   /* frees put either way */
        goto out;
    char etag[80], when[40];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    s3_iso_date(m.mtime, when);
    xml_t *x = xml_new();
    xml_open(x, "CopyObjectResult", S3_NS);
    xml_elem(x, "LastModified", when);
    xml_elem(x, "ETag", etag);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
out:
    os_object_close(from);
    os_meta_clear(&src);
    os_meta_clear(&m);
}

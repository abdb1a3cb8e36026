/* transfer.c - whole-file HTTP GET and PUT with libcurl, hashing as the bytes pass
 * (see transfer.h for the guarantees and the errors). */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "strbuf.h"
#include "transfer.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (sodium_init() < 0)
        abort();   /* no usable randomness source: nothing else would work either */
}

typedef struct xfer {
    int fd;
    crypto_hash_sha256_state *sha;   /* the bytes read or written are hashed here, if set */
    uint64_t bytes;
    int io_errno;
    int upload;                   /* fd is the source: response bodies never go to it */
    strbuf_t errbody;             /* the body of a failed response, for its S3 error code */
    long status;                  /* of the last status line seen (1xx included) */
    uint64_t max;                 /* GET: longest body taken; 0 = any */
    int too_long;
    char etag[80];
    const transfer_opts_t *o;
    strbuf_t *keep;               /* upload: where a successful response's body goes */
    uint64_t at, remaining;       /* upload: the next offset of fd to send, and how much is left */
} xfer_t;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = sz * n;
    if (x->keep && x->status >= 200 && x->status <= 299) {
        if (x->keep->len < (1 << 20))
            strbuf_put(x->keep, p, len);
        return len;
    }
    if (x->upload || x->status != 200) {
        if (x->errbody.len < 4096)
            strbuf_put(&x->errbody, p, len);
        return len;
    }
    if (x->max && len > x->max - x->bytes) {
        x->too_long = 1;
        return 0;   /* aborts the transfer */
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            x->io_errno = errno;
            return 0;   /* aborts the transfer */
        }
        off += (size_t)w;
    }
    if (x->sha)
        crypto_hash_sha256_update(x->sha, (const unsigned char *)p, len);
    x->bytes += len;
    return len;
}

/* The status line arrives before the body: remember it so error bodies are not written
 * into the caller's file. A GET's Content-Length above max refuses the body before any
 * of it arrives. Also picks the ETag of a PUT's answer. */
static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = sz * n;
    if (len > 5 && !strncmp(p, "HTTP/", 5)) {
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if (len > 15 && !strncasecmp(p, "Content-Length:", 15) && !x->upload && x->max && x->status == 200) {
        char v[32];
        snprintf(v, sizeof v, "%.*s", (int)(len - 15 < sizeof v - 1 ? len - 15 : sizeof v - 1), p + 15);
        char *end;
        unsigned long long cl = strtoull(v, &end, 10);
        if (end != v && cl > x->max) {
            x->too_long = 1;
            return 0;   /* aborts the transfer */
        }
    } else if (len > 5 && !strncasecmp(p, "ETag:", 5)) {
        const char *v = p + 5;
        size_t l = len - 5;
        while (l && (*v == ' ' || *v == '"')) { v++; l--; }
        while (l && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == '"' || v[l - 1] == ' ')) l--;
        snprintf(x->etag, sizeof x->etag, "%.*s", (int)l, v);
    }
    return len;
}

static size_t on_read(char *p, size_t sz, size_t n, void *arg)
{
    xfer_t *x = arg;
    ssize_t r;
    size_t want = sz * n;
    if (want > x->remaining)
        want = (size_t)x->remaining;
    do
        r = pread(x->fd, p, want, (off_t)x->at);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        x->at += (uint64_t)r;
        x->remaining -= (uint64_t)r;
    }
    if (r < 0) {
        x->io_errno = errno;
        return CURL_READFUNC_ABORT;
    }
    if (x->sha)
        crypto_hash_sha256_update(x->sha, (const unsigned char *)p, (size_t)r);
    x->bytes += (uint64_t)r;
    return (size_t)r;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    xfer_t *x = arg;
    if (!x->o || !x->o->progress)
        return 0;
    uint64_t done = (uint64_t)(ulnow > 0 ? ulnow : dlnow), total = (uint64_t)(ultotal > 0 ? ultotal : dltotal);
    return x->o->progress(x->o->arg, done, total);
}

/* "<Code>NoSuchKey</Code>...<Message>...</Message>" → "NoSuchKey: ..." */
static void s3_error_text(const strbuf_t *b, char *out, size_t outsz)
{
    const char *s = b->s ? b->s : "";
    const char *c = strstr(s, "<Code>"), *m = strstr(s, "<Message>");
    if (!c) {
        out[0] = 0;
        return;
    }
    c += 6;
    size_t cl = strcspn(c, "<"), ml = 0;
    if (m) {
        m += 9;
        ml = strcspn(m, "<");
    }
    snprintf(out, outsz, "%.*s%s%.*s", (int)cl, c, m ? ": " : "", (int)ml, m ? m : "");
}

/* Cut every copy of url's query string out of msg (in place): a presigned URL's
 * credentials must not reach a message, whatever libcurl or a caller put there. */
static void scrub_query(char *msg, const char *url)
{
    const char *q = strchr(url, '?');
    size_t ql = q ? strcspn(q + 1, "#") : 0;
    if (!ql)
        return;
    q++;
    size_t rl = ql < 3 ? ql : 3;   /* "...", never longer than what it replaces */
    for (char *from = msg, *hit; (hit = memmem(from, strlen(from), q, ql)); from = hit + rl) {
        memset(hit, '.', rl);
        memmove(hit + rl, hit + ql, strlen(hit + ql) + 1);
    }
}

char *transfer_url_for_log(const char *url)
{
    return xasprintf("%.*s", (int)strcspn(url, "?#"), url);
}

static int perform(CURL *c, xfer_t *x, const char *url, const char *what, verr_t *e)
{
    const transfer_opts_t *o = x->o;
    if (o && o->what)
        what = o->what;
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o && o->timeout_s ? o->timeout_s : 3600L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o && o->connect_timeout_s ? o->connect_timeout_s : 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o && o->low_speed_bytes ? o->low_speed_bytes : 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o && o->low_speed_s ? o->low_speed_s : 60L);
    /* URLs come from other services (grants): never file:// or other schemes, never a
     * redirect to somewhere nobody checked. No CURLOPT_ACCEPT_ENCODING: the checksum is
     * of the bytes as sent. */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long status = x->status;
    if (status < 200)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    /* a GET takes 200 only: another 2xx (206, 204) has not sent the whole object */
    int answered = status >= 200, ok_status = x->upload ? status >= 200 && status <= 299 : status == 200;
    int ret = 0;
    if (x->io_errno)
        ret = verr_set(e, 500, "InternalError", "%s: local file: %s", what, strerror(x->io_errno));
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
        ret = verr_set(e, 499, "Canceled", "%s was canceled", what);
    else if (x->too_long)
        ret = verr_set(e, 502, "TooLarge", "%s: the body has more than the expected %llu bytes", what,
                       (unsigned long long)x->max);
    else if (answered && !ok_status) {
        /* named even when the error body did not arrive whole */
        char s3[512];
        s3_error_text(&x->errbody, s3, sizeof s3);
        ret = verr_set(e, (int)status, "TransferFailed", "%s: HTTP %ld%s%s", what, status, s3[0] ? " " : "", s3);
    } else if (rc != CURLE_OK || !answered)
        ret = verr_set(e, 502, "TransferFailed", "%s: %s", what,
                       cerr[0] ? cerr : rc != CURLE_OK ? curl_easy_strerror(rc) : "no HTTP status");
    if (ret < 0 && e)
        scrub_query(e->message, url);
    free(x->errbody.s);
    x->errbody = (strbuf_t){0};
    return ret;
}

static void hex_of(crypto_hash_sha256_state *st, char out[65])
{
    unsigned char d[32];
    crypto_hash_sha256_final(st, d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

int transfer_get(const char *url, int fd, const transfer_opts_t *o, uint64_t *size, char sha256_hex[65], verr_t *e)
{
    pthread_once(&once, global_init);
    CURL *c = curl_easy_init();
    if (!c)
        return verr_set(e, 500, "InternalError", "curl_easy_init failed");
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init(&sha);
    xfer_t x = {.fd = fd, .o = o, .max = o ? o->max_bytes : 0, .sha = &sha};
    curl_easy_setopt(c, CURLOPT_URL, url);
    int rc = perform(c, &x, url, "download", e);
    curl_easy_cleanup(c);
    if (rc < 0)
        return -1;
    if (size)
        *size = x.bytes;
    if (sha256_hex)
        hex_of(&sha, sha256_hex);
    return 0;
}

/* The read buffer of md5_range_b64. On the heap, per call, not a __thread array: static
 * TLS is part of every thread of the process, zeroed (so resident) at each thread's
 * start, whether the thread ever uploads or not: 64 KiB in each of the agent's 31 and the
 * image service's 26 threads, 3.5 MiB of the services' memory (docs/performance.md,
 * tail12). A part is 5 MiB or more, so one allocation per part is nothing. */
#define MD5_READ_BYTES (1 << 16)

/* Content-MD5 (base64 of the MD5 digest) of size bytes of fd from offset start. */
static int md5_range_b64(int fd, uint64_t start, uint64_t size, char out[32], verr_t *e)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    unsigned char *buf = xmalloc(MD5_READ_BYTES);
    for (uint64_t off = start; off < start + size;) {
        size_t want = start + size - off < MD5_READ_BYTES ? (size_t)(start + size - off) : MD5_READ_BYTES;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            EVP_MD_CTX_free(ctx);
            free(buf);
            return verr_set(e, 500, "InternalError", "read: %s", r ? strerror(errno) : "file shorter than expected");
        }
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    unsigned char d[16];
    EVP_DigestFinal_ex(ctx, d, NULL);
    EVP_MD_CTX_free(ctx);
    sodium_bin2base64(out, 32, d, sizeof d, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* One request to url (whose authorization, a grant, is in its query) with `extra`, if
 * any, appended to the query: a body of len bytes of fd from off (with its Content-MD5,
 * hashed into sha if that is set), or the string text, or none. A successful response's
 * body goes to resp, its ETag to etag. Every upload, single or in parts, goes through here. */
static int request(const char *url, const char *extra, const char *method, int fd, uint64_t off, uint64_t len,
                   const char *text, const transfer_opts_t *o, strbuf_t *resp, char etag[80],
                   crypto_hash_sha256_state *sha, verr_t *e)
{
    char *u = extra ? xasprintf("%s%s%s", url, strchr(url, '?') ? "&" : "?", extra) : xstrdup(url);
    CURL *c = curl_easy_init();
    if (!c) {
        free(u);
        return verr_set(e, 500, "InternalError", "curl_easy_init failed");
    }
    xfer_t x = {.fd = fd, .o = o, .upload = 1, .keep = resp, .at = off, .remaining = len, .sha = sha};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    char h[64];
    int rc = 0;
    curl_easy_setopt(c, CURLOPT_URL, u);
    if (fd >= 0) {
        char md5[32];
        rc = md5_range_b64(fd, off, len, md5, e);
        snprintf(h, sizeof h, "Content-MD5: %s", md5);
        hdrs = curl_slist_append(hdrs, h);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &x);
    } else {
        if (!strcmp(method, "POST")) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(text ? strlen(text) : 0));
            hdrs = curl_slist_append(hdrs, "Content-Type: application/xml");
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (rc == 0)
        rc = perform(c, &x, u, !strcmp(method, "DELETE") ? "delete" : "upload", e);
    if (rc == 0 && fd >= 0 && x.remaining)
        rc = verr_set(e, 500, "InternalError", "upload sent %llu of %llu bytes", (unsigned long long)(len - x.remaining),
                      (unsigned long long)len);
    if (rc == 0 && etag)
        snprintf(etag, 80, "%s", x.etag);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(u);
    return rc;
}

int transfer_put(const char *url, int fd, uint64_t size, const transfer_opts_t *o, char sha256_hex[65],
                 char etag[80], verr_t *e)
{
    pthread_once(&once, global_init);
    crypto_hash_sha256_state sha;
    crypto_hash_sha256_init(&sha);
    if (request(url, NULL, "PUT", fd, 0, size, NULL, o, NULL, etag, &sha, e) < 0)
        return -1;
    if (sha256_hex)
        hex_of(&sha, sha256_hex);
    return 0;
}

int transfer_delete(const char *url, const transfer_opts_t *o, verr_t *e)
{
    pthread_once(&once, global_init);
    return request(url, NULL, "DELETE", -1, 0, 0, NULL, o, NULL, NULL, NULL, e);
}

/* ---- multipart upload --------------------------------------------------------------- */

/* The text of the first <tag>...</tag> in xml, with &quot; and quotes dropped. */
static void xml_value(const char *xml, const char *tag, char *out, size_t outsz)
{
    char open[64];
    snprintf(open, sizeof open, "<%s>", tag);
    const char *a = xml ? strstr(xml, open) : NULL;
    out[0] = 0;
    if (!a)
        return;
    a += strlen(open);
    size_t n = strcspn(a, "<"), o = 0;
    for (size_t i = 0; i < n && o + 1 < outsz; i++) {
        if (!strncmp(a + i, "&quot;", 6)) {
            i += 5;
            continue;
        }
        if (a[i] != '"')
            out[o++] = a[i];
    }
    out[o] = 0;
}

int transfer_put_multipart(const char *url, int fd, uint64_t size, uint64_t part_bytes, const transfer_opts_t *o,
                           char sha256_hex[65], char etag[80], verr_t *e)
{
    pthread_once(&once, global_init);
    if (part_bytes < (5u << 20))
        part_bytes = 5u << 20;   /* S3's smallest part but the last */
    if (size == 0 || (size + part_bytes - 1) / part_bytes > 10000)
        return verr_set(e, 400, "InvalidArgument", "%llu bytes do not fit 1..10000 parts of %llu",
                        (unsigned long long)size, (unsigned long long)part_bytes);
    strbuf_t resp = {0}, done = {0};
    char upload_id[256];
    crypto_hash_sha256_state sha;   /* the parts go up in order: one hash of the whole file */
    crypto_hash_sha256_init(&sha);
    if (request(url, "uploads", "POST", -1, 0, 0, NULL, o, &resp, NULL, NULL, e) < 0) {
        free(resp.s);
        return -1;
    }
    xml_value(resp.s, "UploadId", upload_id, sizeof upload_id);
    free(resp.s);
    if (!upload_id[0])
        return verr_set(e, 502, "TransferFailed", "upload: CreateMultipartUpload answered no UploadId");
    strbuf_puts(&done, "<CompleteMultipartUpload>");
    int rc = 0;
    if (o && o->upload_started && o->upload_started(o->arg, upload_id))
        rc = verr_set(e, 499, "Canceled", "upload was canceled");
    unsigned part = 1;
    for (uint64_t off = 0; off < size && rc == 0; off += part_bytes, part++) {
        uint64_t len = size - off < part_bytes ? size - off : part_bytes;
        char extra[400], tag[80];
        snprintf(extra, sizeof extra, "partNumber=%u&uploadId=%s", part, upload_id);
        rc = request(url, extra, "PUT", fd, off, len, NULL, o, NULL, tag, &sha, e);
        char item[200];
        snprintf(item, sizeof item, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", part, tag);
        strbuf_puts(&done, item);
    }
    strbuf_puts(&done, "</CompleteMultipartUpload>");
    char extra[300];
    snprintf(extra, sizeof extra, "uploadId=%s", upload_id);
    if (rc == 0) {
        resp = (strbuf_t){0};
        rc = request(url, extra, "POST", -1, 0, 0, done.s, o, &resp, NULL, NULL, e);
        if (rc == 0 && resp.s && strstr(resp.s, "<Error>")) {   /* S3 may fail a completion inside a 200 */
            char code[64];
            xml_value(resp.s, "Code", code, sizeof code);
            rc = verr_set(e, 502, "TransferFailed", "upload: CompleteMultipartUpload failed: %s", code);
        }
        if (rc == 0 && etag)
            xml_value(resp.s, "ETag", etag, 80);
        free(resp.s);
    }
    free(done.s);
    if (rc < 0) {
        verr_t ignored;   /* the upload's parts would otherwise wait for the store's cleanup */
        transfer_abort_multipart(url, upload_id, o, &ignored);
        return -1;
    }
    if (sha256_hex)
        hex_of(&sha, sha256_hex);
    return 0;
}

int transfer_abort_multipart(const char *url, const char *upload_id, const transfer_opts_t *o, verr_t *e)
{
    pthread_once(&once, global_init);
    char extra[300];
    snprintf(extra, sizeof extra, "uploadId=%s", upload_id);
    /* no progress callback: an abort is also what a canceled transfer does last */
    transfer_opts_t plain = {.timeout_s = o ? o->timeout_s : 0, .connect_timeout_s = o ? o->connect_timeout_s : 0};
    if (request(url, extra, "DELETE", -1, 0, 0, NULL, &plain, NULL, NULL, NULL, e) == 0)
        return 0;
    return e->http_status == 404 && strstr(e->message, "NoSuchUpload") ? 0 : -1;
}

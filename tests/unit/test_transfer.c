/* test_transfer.c - common/transfer.h (the one client for bulk bytes over HTTP) against
 * a small HTTP server in this process. The server is raw sockets, not common/http.c, so
 * it can misbehave on purpose: stall, trickle, send more than expected, answer without
 * Content-Length, redirect, answer 206.
 * Covered, GET: bytes, size and SHA-256 as sent (with and without Content-Length);
 * max_bytes (a body of exactly max_bytes taken, a shorter one too, a longer one TooLarge -
 * with Content-Length before any byte is written); HTTP 404 with the S3 code and message
 * ("download: HTTP 404 NoSuchKey: ..."), 302 not followed, 206 refused, each TransferFailed
 * with the server's status and nothing written; a refused connection, other schemes, the
 * total timeout and the low-speed limit (seconds and bytes) as TransferFailed 502; the
 * progress callback called at least once a second while nothing arrives and cancelling
 * (Canceled 499); a file that cannot be written (InternalError 500); the URL's query
 * string never in a message; transfer_url_for_log. PUT: body, Content-Length and
 * Content-MD5 as received, the ETag and SHA-256 returned; a 403 with an S3 error body as
 * TransferFailed 403 naming AccessDenied. Multipart: the upload id handed to
 * upload_started before any part; refused there, or canceled by the progress callback
 * after it, the upload is aborted (the abort itself is not canceled). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "free_port.h"
#include "test_http_server.h"
#include "transfer.h"

#define TRICKLE_CHUNK 256
#define TRICKLE_N 40         /* 40 chunks, 50 ms apart: ~5 KiB/s for 2 s */

/* ---- the server (test_http_server.h) and what it answers ---------------------------- */

static atomic_int body_requests;     /* GETs of /img/ and /nocl/ */

/* What the last PUT delivered. */
static pthread_mutex_t put_mu = PTHREAD_MUTEX_INITIALIZER;
static char put_path[256], put_md5[64];
static long put_content_length = -1;
static unsigned char *put_body;
static size_t put_len;

static void pattern(unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)((i * 131u + (i >> 10) * 7u) & 0xff);
}

/* A PUT: what it delivered recorded; /put/ok answered with an ETag, anything else denied. */
static void serve_put(test_http_req_t *r)
{
    char cl[32] = "", md5[64] = "";
    long want = test_http_header(r, "Content-Length", cl, sizeof cl) ? atol(cl) : -1;
    test_http_header(r, "Content-MD5", md5, sizeof md5);
    size_t len = test_http_read_body(r, want >= 0 ? (size_t)want : 0);
    pthread_mutex_lock(&put_mu);
    snprintf(put_path, sizeof put_path, "%s", r->path);
    snprintf(put_md5, sizeof put_md5, "%s", md5);
    put_content_length = want;
    free(put_body);
    put_len = len;
    put_body = malloc(put_len + 1);
    memcpy(put_body, r->buf + r->head_len, put_len);
    pthread_mutex_unlock(&put_mu);
    if (!strcmp(r->path, "/put/ok"))
        test_http_head(r->fd, "200 OK", "ETag: \"etag-123\"\r\n", 0);
    else
        test_http_s3_error(r->fd, "403 Forbidden", "AccessDenied", "Access Denied");
}

/* Multipart uploads to /mp: what arrived, in order ("C" create, "P" part, "F" complete,
 * "A" abort of up-1). */
static pthread_mutex_t mp_mu = PTHREAD_MUTEX_INITIALIZER;
static char mp_log[64];

static void mp_note(char c)
{
    pthread_mutex_lock(&mp_mu);
    size_t n = strlen(mp_log);
    if (n + 1 < sizeof mp_log)
        mp_log[n] = c, mp_log[n + 1] = '\0';
    pthread_mutex_unlock(&mp_mu);
}

static void serve_mp(test_http_req_t *r)
{
    char cl[32] = "", scratch[65536];
    long want = test_http_header(r, "Content-Length", cl, sizeof cl) ? atol(cl) : 0;
    /* parts are larger than the request buffer: read them through */
    for (long left = want - (long)(r->got - r->head_len); left > 0;) {
        ssize_t n = recv(r->fd, scratch, left < (long)sizeof scratch ? (size_t)left : sizeof scratch, 0);
        if (n <= 0)
            break;
        left -= n;
    }
    static const char created[] = "<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>";
    static const char done[] = "<CompleteMultipartUploadResult><ETag>&quot;mp-etag-2&quot;</ETag></CompleteMultipartUploadResult>";
    if (!strcmp(r->method, "POST") && strstr(r->path, "&uploads")) {
        mp_note('C');
        test_http_respond(r->fd, "200 OK", NULL, created, sizeof created - 1);
    } else if (!strcmp(r->method, "PUT") && strstr(r->path, "uploadId=up-1")) {
        mp_note('P');
        sleep_ms(100);   /* slow enough for a progress callback to cancel the next part */
        test_http_head(r->fd, "200 OK", "ETag: \"part\"\r\n", 0);
    } else if (!strcmp(r->method, "POST") && strstr(r->path, "uploadId=up-1")) {
        mp_note('F');
        test_http_respond(r->fd, "200 OK", NULL, done, sizeof done - 1);
    } else if (!strcmp(r->method, "DELETE") && strstr(r->path, "uploadId=up-1")) {
        mp_note('A');
        test_http_head(r->fd, "204 No Content", NULL, 0);
    } else {
        test_http_head(r->fd, "400 Bad Request", NULL, 0);
    }
}

static void serve(test_http_req_t *r)
{
    int fd = r->fd;
    const char *path = r->path;
    size_t n = 0;
    if (!strncmp(path, "/mp?", 4) && r->head_len) {
        serve_mp(r);
    } else if (!strcmp(r->method, "PUT") && r->head_len) {
        serve_put(r);
    } else if (sscanf(path, "/img/%zu", &n) == 1 || sscanf(path, "/nocl/%zu", &n) == 1) {
        atomic_fetch_add(&body_requests, 1);
        unsigned char *body = malloc(n + 1);
        pattern(body, n);
        test_http_head(fd, "200 OK", NULL, !strncmp(path, "/img/", 5) ? (long long)n : -1);
        send_all(fd, body, n);
        free(body);
    } else if (!strcmp(path, "/missing") || !strncmp(path, "/missing?", 9)) {
        test_http_s3_error(fd, "404 Not Found", "NoSuchKey", "no");
    } else if (!strcmp(path, "/redirect")) {
        test_http_head(fd, "302 Found", "Location: /img/100\r\n", 0);
    } else if (!strcmp(path, "/partial")) {
        test_http_respond(fd, "206 Partial Content", "Content-Range: bytes 0-4/100\r\n", "abcde", 5);
    } else if (!strcmp(path, "/stall")) {
        test_http_stall(fd, 100000);
    } else if (!strcmp(path, "/trickle")) {
        test_http_head(fd, "200 OK", NULL, TRICKLE_CHUNK * TRICKLE_N);
        unsigned char c[TRICKLE_CHUNK];
        pattern(c, sizeof c);
        for (int i = 0; i < TRICKLE_N; i++) {
            send_all(fd, c, sizeof c);
            sleep_ms(50);
        }
    } else {
        test_http_head(fd, "400 Bad Request", NULL, 0);
    }
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    return test_http_start(serve);
}

static int group_teardown(void **state)
{
    test_http_group_teardown(state);
    free(put_body);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

/* An anonymous temporary file, read-write. */
static int tmpfile_fd(void)
{
    char p[] = "/tmp/virga-transfer-XXXXXX";
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    unlink(p);
    return fd;
}

static off_t fd_size(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_size;
}

static void sha_of_pattern(size_t n, char hex[65])
{
    unsigned char *b = malloc(n + 1), d[32];
    pattern(b, n);
    crypto_hash_sha256(d, b, n);
    sodium_bin2hex(hex, 65, d, 32);
    free(b);
}

static void assert_fd_is_pattern(int fd, size_t n)
{
    assert_int_equal(fd_size(fd), n);
    unsigned char *want = malloc(n + 1), *have = malloc(n + 1);
    pattern(want, n);
    assert_int_equal(pread(fd, have, n, 0), n);
    assert_memory_equal(have, want, n);
    free(want);
    free(have);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* transfer_get of path into a fresh file that must stay empty; the error. */
static verr_t get_fails(const char *u, const transfer_opts_t *o, const char *code, int status)
{
    int fd = tmpfile_fd();
    verr_t e = {0};
    uint64_t size = 12345;
    char sha[65] = "";
    assert_int_equal(transfer_get(u, fd, o, &size, sha, &e), -1);
    if (strcmp(e.code, code) || e.http_status != status)
        fail_msg("%s: expected %s/%d, got %s/%d: %s", u, code, status, e.code, e.http_status, e.message);
    assert_int_equal(fd_size(fd), 0);
    close(fd);
    return e;
}

/* ---- GET ------------------------------------------------------------------------------ */

static void test_get(void **state)
{
    (void)state;
    const size_t n = 300 * 1000 + 17;
    char want[65], path[64];
    sha_of_pattern(n, want);
    for (int cl = 0; cl < 2; cl++) {
        for (int bounded = 0; bounded < 2; bounded++) {
            snprintf(path, sizeof path, cl ? "/img/%zu" : "/nocl/%zu", n);
            transfer_opts_t o = {.timeout_s = 20, .max_bytes = bounded ? n : 0};
            int fd = tmpfile_fd();
            uint64_t size = 0;
            char sha[65] = "";
            verr_t e = {0};
            if (transfer_get(test_http_url(path), fd, &o, &size, sha, &e) < 0)
                fail_msg("%s: %s %s", path, e.code, e.message);
            assert_int_equal(size, n);
            assert_string_equal(sha, want);
            assert_fd_is_pattern(fd, n);
            close(fd);
        }
    }
    /* no options at all, and an empty body */
    int fd = tmpfile_fd();
    uint64_t size = 1;
    char sha[65];
    verr_t e = {0};
    assert_int_equal(transfer_get(test_http_url("/img/0"), fd, NULL, &size, sha, &e), 0);
    assert_int_equal(size, 0);
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    close(fd);
}

static void test_get_max_bytes(void **state)
{
    (void)state;
    const size_t n = 200 * 1000;
    transfer_opts_t o = {.timeout_s = 20, .max_bytes = n - 1};
    char path[64];
    /* announced too long: refused before any byte is written */
    snprintf(path, sizeof path, "/img/%zu", n);
    verr_t e = get_fails(test_http_url(path), &o, "TooLarge", 502);
    assert_non_null(strstr(e.message, "more than the expected 199999 bytes"));

    /* not announced: refused when the bytes pass the bound, never more than it written */
    snprintf(path, sizeof path, "/nocl/%zu", n);
    int fd = tmpfile_fd();
    uint64_t size = 0;
    assert_int_equal(transfer_get(test_http_url(path), fd, &o, &size, NULL, &e), -1);
    assert_string_equal(e.code, "TooLarge");
    assert_true(fd_size(fd) <= (off_t)(n - 1));
    close(fd);

    /* shorter than the bound: taken (whether that is the size wanted is the caller's) */
    o.max_bytes = n + 1;
    snprintf(path, sizeof path, "/img/%zu", n);
    fd = tmpfile_fd();
    assert_int_equal(transfer_get(test_http_url(path), fd, &o, &size, NULL, &e), 0);
    assert_int_equal(size, n);
    close(fd);
}

static void test_get_http_errors(void **state)
{
    (void)state;
    transfer_opts_t o = {.timeout_s = 20};
    verr_t e = get_fails(test_http_url("/missing"), &o, "TransferFailed", 404);
    assert_string_equal(e.message, "download: HTTP 404 NoSuchKey: no");

    /* a redirect is not followed: the 302 is the answer */
    int before = atomic_load(&body_requests);
    e = get_fails(test_http_url("/redirect"), &o, "TransferFailed", 302);
    assert_string_equal(e.message, "download: HTTP 302");
    assert_int_equal(atomic_load(&body_requests), before);

    /* a GET takes 200 only: a 206 has not sent the whole object */
    e = get_fails(test_http_url("/partial"), &o, "TransferFailed", 206);

    /* what names the transfer */
    o.what = "GET the image";
    e = get_fails(test_http_url("/missing"), &o, "TransferFailed", 404);
    assert_string_equal(e.message, "GET the image: HTTP 404 NoSuchKey: no");
}

static void test_get_network_errors(void **state)
{
    (void)state;
    transfer_opts_t o = {.timeout_s = 20};
    char u[128];
    /* nobody listens on a fresh free port */
    snprintf(u, sizeof u, "http://127.0.0.1:%d/img/10", free_port());
    verr_t e = get_fails(u, &o, "TransferFailed", 502);
    assert_non_null(strstr(e.message, "download: "));
    /* only http and https */
    get_fails("file:///etc/passwd", &o, "TransferFailed", 502);
    snprintf(u, sizeof u, "ftp://127.0.0.1:%d/x", test_http.port);
    get_fails(u, &o, "TransferFailed", 502);
    snprintf(u, sizeof u, "gopher://127.0.0.1:%d/x", test_http.port);
    get_fails(u, &o, "TransferFailed", 502);
}

static void test_query_string_never_in_messages(void **state)
{
    (void)state;
    transfer_opts_t o = {.timeout_s = 20};
    const char *u = test_http_url("/missing?X-Amz-Signature=secret&X-Amz-Credential=AKIA");
    verr_t e = get_fails(u, &o, "TransferFailed", 404);
    assert_null(strstr(e.message, "secret"));
    /* not even when a caller (wrongly) names the transfer with the whole URL */
    char what[256];
    snprintf(what, sizeof what, "GET %s", u);
    o.what = what;
    e = get_fails(u, &o, "TransferFailed", 404);
    assert_null(strstr(e.message, "secret"));
    assert_null(strstr(e.message, "AKIA"));
    assert_non_null(strstr(e.message, "/missing"));
    /* nor in libcurl's own messages */
    o.what = NULL;
    char refused[128];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/x?X-Amz-Signature=secret", free_port());
    e = get_fails(refused, &o, "TransferFailed", 502);
    assert_null(strstr(e.message, "secret"));

    char *s = transfer_url_for_log("https://h:9/b/k?X-Amz-Signature=secret#frag");
    assert_string_equal(s, "https://h:9/b/k");
    free(s);
    s = transfer_url_for_log("http://h/b/k");
    assert_string_equal(s, "http://h/b/k");
    free(s);
}

static void test_stalled_server_low_speed(void **state)
{
    (void)state;
    transfer_opts_t o = {.timeout_s = 20, .low_speed_s = 1};
    int fd = tmpfile_fd();
    verr_t e = {0};
    double t0 = now_s();
    assert_int_equal(transfer_get(test_http_url("/stall"), fd, &o, NULL, NULL, &e), -1);
    assert_true(now_s() - t0 < 4);   /* low-speed limit 1 s; the server stalls 5 s */
    assert_string_equal(e.code, "TransferFailed");
    assert_int_equal(e.http_status, 502);
    close(fd);

    /* the total timeout, when the low-speed limit would wait longer */
    o = (transfer_opts_t){.timeout_s = 1, .low_speed_s = 30};
    fd = tmpfile_fd();
    t0 = now_s();
    assert_int_equal(transfer_get(test_http_url("/stall"), fd, &o, NULL, NULL, &e), -1);
    assert_true(now_s() - t0 < 3);
    assert_string_equal(e.code, "TransferFailed");
    assert_int_equal(e.http_status, 502);
    close(fd);
}

static void test_low_speed_bytes(void **state)
{
    (void)state;
    /* ~5 KiB/s: too slow for 100000 bytes/s, fast enough for the default 1024 */
    transfer_opts_t o = {.timeout_s = 20, .low_speed_s = 1, .low_speed_bytes = 100000};
    int fd = tmpfile_fd();
    verr_t e = {0};
    uint64_t size = 0;
    double t0 = now_s();
    assert_int_equal(transfer_get(test_http_url("/trickle"), fd, &o, &size, NULL, &e), -1);
    assert_string_equal(e.code, "TransferFailed");
    assert_true(now_s() - t0 < 1.9);   /* before the trickle ends */
    close(fd);

    o.low_speed_bytes = 0;
    fd = tmpfile_fd();
    if (transfer_get(test_http_url("/trickle"), fd, &o, &size, NULL, &e) < 0)
        fail_msg("%s %s", e.code, e.message);
    assert_int_equal(size, TRICKLE_CHUNK * TRICKLE_N);
    close(fd);
}

struct ticks {
    double start, last, max_gap;
    int calls;
};

/* Records how often it is called; asks to stop after 2.5 s. */
static int tick(void *arg, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    struct ticks *t = arg;
    double now = now_s();
    if (now - t->last > t->max_gap)
        t->max_gap = now - t->last;
    t->last = now;
    t->calls++;
    return now - t->start > 2.5;
}

static void test_progress_cancels_a_stalled_transfer(void **state)
{
    (void)state;
    struct ticks t = {.start = now_s()};
    t.last = t.start;
    transfer_opts_t o = {.timeout_s = 20, .low_speed_s = 30, .progress = tick, .arg = &t};
    int fd = tmpfile_fd();
    verr_t e = {0};
    assert_int_equal(transfer_get(test_http_url("/stall"), fd, &o, NULL, NULL, &e), -1);
    close(fd);
    assert_string_equal(e.code, "Canceled");
    assert_int_equal(e.http_status, 499);
    double took = now_s() - t.start;
    assert_true(took >= 2.5 && took < 4);
    /* called at least once a second although no byte arrived after the first 100 */
    assert_true(t.max_gap <= 1.2);
    assert_true(t.calls >= 3);
}

static void test_local_write_error(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    verr_t e = {0};
    assert_int_equal(transfer_get(test_http_url("/img/1000"), fd, NULL, NULL, NULL, &e), -1);
    assert_string_equal(e.code, "InternalError");
    assert_int_equal(e.http_status, 500);
    close(fd);
}

/* ---- PUT ------------------------------------------------------------------------------ */

static void md5_b64(const unsigned char *p, size_t n, char out[32])
{
    unsigned char d[16];
    unsigned int dl = 0;
    EVP_Digest(p, n, d, &dl, EVP_md5(), NULL);
    sodium_bin2base64(out, 32, d, sizeof d, sodium_base64_VARIANT_ORIGINAL);
}

static void test_put(void **state)
{
    (void)state;
    const size_t n = 300 * 1000 + 3;
    unsigned char *b = malloc(n);
    pattern(b, n);
    int fd = tmpfile_fd();
    assert_int_equal(write(fd, b, n), n);   /* the offset is at the end: put reads from 0 */
    char sha[65], etag[80], want_sha[65], want_md5[32];
    sha_of_pattern(n, want_sha);
    md5_b64(b, n, want_md5);
    verr_t e = {0};
    transfer_opts_t o = {.timeout_s = 20};
    if (transfer_put(test_http_url("/put/ok"), fd, n, &o, sha, etag, &e) < 0)
        fail_msg("%s %s", e.code, e.message);
    assert_string_equal(sha, want_sha);
    assert_string_equal(etag, "etag-123");
    pthread_mutex_lock(&put_mu);
    assert_string_equal(put_path, "/put/ok");
    assert_int_equal(put_content_length, n);
    assert_int_equal(put_len, n);
    assert_memory_equal(put_body, b, n);
    assert_string_equal(put_md5, want_md5);
    pthread_mutex_unlock(&put_mu);
    close(fd);
    free(b);
}

static void test_put_denied(void **state)
{
    (void)state;
    const size_t n = 5000;
    unsigned char b[5000];
    pattern(b, n);
    int fd = tmpfile_fd();
    assert_int_equal(write(fd, b, n), n);
    char sha[65], etag[80];
    verr_t e = {0};
    assert_int_equal(transfer_put(test_http_url("/put/denied?X-Amz-Signature=secret"), fd, n, NULL, sha, etag, &e), -1);
    assert_string_equal(e.code, "TransferFailed");
    assert_int_equal(e.http_status, 403);
    assert_string_equal(e.message, "upload: HTTP 403 AccessDenied: Access Denied");
    close(fd);
}

/* ---- multipart ------------------------------------------------------------------------ */

typedef struct mp_watch {
    char id[64];
    int refuse;          /* upload_started answers non-zero */
    int cancel_after;    /* the progress callback cancels once the upload exists */
} mp_watch_t;

static int mp_started(void *arg, const char *upload_id)
{
    mp_watch_t *w = arg;
    snprintf(w->id, sizeof w->id, "%s", upload_id);
    return w->refuse;
}

static int mp_progress(void *arg, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    mp_watch_t *w = arg;
    return w->cancel_after && w->id[0];
}

static int mp_run(mp_watch_t *w, verr_t *e)
{
    const size_t n = 12u << 20;   /* three parts of 5 MiB, the last shorter */
    int fd = tmpfile_fd();
    assert_int_equal(ftruncate(fd, (off_t)n), 0);
    pthread_mutex_lock(&mp_mu);
    mp_log[0] = '\0';
    pthread_mutex_unlock(&mp_mu);
    transfer_opts_t o = {.timeout_s = 20, .progress = mp_progress, .arg = w, .upload_started = mp_started};
    char etag[80] = "";
    int rc = transfer_put_multipart(test_http_url("/mp?X-Virga-Grant=g"), fd, n, 5u << 20, &o, NULL, etag, e);
    close(fd);
    if (rc == 0)
        assert_string_equal(etag, "mp-etag-2");
    return rc;
}

static void test_multipart_upload_started(void **state)
{
    (void)state;
    mp_watch_t w = {0};
    verr_t e = {0};
    if (mp_run(&w, &e) < 0)
        fail_msg("%s %s", e.code, e.message);
    assert_string_equal(w.id, "up-1");
    assert_string_equal(mp_log, "CPPPF");

    /* the caller cannot record it: no part is sent, the upload is aborted */
    w = (mp_watch_t){.refuse = 1};
    assert_int_equal(mp_run(&w, &e), -1);
    assert_string_equal(e.code, "Canceled");
    assert_string_equal(mp_log, "CA");

    /* canceled by the progress callback after the first part: the abort still goes out */
    w = (mp_watch_t){.cancel_after = 1};
    assert_int_equal(mp_run(&w, &e), -1);
    assert_string_equal(e.code, "Canceled");
    pthread_mutex_lock(&mp_mu);
    size_t n = strlen(mp_log);
    char last = n ? mp_log[n - 1] : 0;
    pthread_mutex_unlock(&mp_mu);
    assert_int_equal(last, 'A');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_get_max_bytes),
        cmocka_unit_test(test_get_http_errors),
        cmocka_unit_test(test_get_network_errors),
        cmocka_unit_test(test_query_string_never_in_messages),
        cmocka_unit_test(test_stalled_server_low_speed),
        cmocka_unit_test(test_low_speed_bytes),
        cmocka_unit_test(test_progress_cancels_a_stalled_transfer),
        cmocka_unit_test(test_local_write_error),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_put_denied),
        cmocka_unit_test(test_multipart_upload_started),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

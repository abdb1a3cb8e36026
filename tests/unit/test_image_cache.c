/* test_image_cache.c - the agent's image cache (services/compute/agent/image_cache.h),
 * downloading through common/transfer.h, against a small HTTP server in this process, in
 * mkdtemp directories. tests/unit/test_transfer.c covers transfer.h itself; here the
 * point is that its outcomes become the cache's documented errors.
 * The server is raw sockets, not common/http.c, so it can misbehave on purpose: stall
 * mid-body, send more than it announced, answer without Content-Length.
 * Covered: fetch then cache hit (byte-identical file, one download, upper-case sha256
 * accepted); malformed parameters refused before any request; wrong checksum, short and
 * long bodies, HTTP 404 (with the S3 code named) and 302 failing with nothing left in
 * the directory, a 4xx as status 400 and a refused connection as 502, the query string
 * kept out of messages; a stalled server abandoned by the low-speed limit; concurrent fetches
 * of one image downloading it once; a cached image asked with another size; the
 * eviction policy as a pure function; LRU eviction with use refreshing an image; the
 * sweep of partial and lock files left by a crash (but not of one whose fetch is
 * running); stop abandoning a download in flight and refusing new calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "free_port.h"
#include "image_cache.h"
#include "test_http_server.h"

#define IMG (256 * 1024)
#define EXTRA 4096

/* ---- the server (test_http_server.h) and what it answers ---------------------------- */

static atomic_int requests;          /* every request */
static atomic_int image_requests;    /* /img/ and /slow/ */

static void image_bytes(int k, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)((i * 31u + (unsigned)k * 97u + (i >> 9)) & 0xff);
}

static void sha_hex(int k, size_t n, char hex[65])
{
    unsigned char *b = malloc(n ? n : 1), d[32];
    image_bytes(k, b, n);
    crypto_hash_sha256(d, b, n);
    sodium_bin2hex(hex, 65, d, 32);
    free(b);
}

static void serve(test_http_req_t *r)
{
    int fd = r->fd, k = 0;
    char path[256];
    atomic_fetch_add(&requests, 1);
    snprintf(path, sizeof path, "%s", strcmp(r->method, "GET") ? "" : r->path);
    path[strcspn(path, "?")] = '\0';   /* the query is a presigned URL's: ignored here */
    unsigned char *body = malloc(IMG + EXTRA);
    if (sscanf(path, "/img/%d", &k) == 1) {
        atomic_fetch_add(&image_requests, 1);
        image_bytes(k, body, IMG);
        test_http_respond(fd, "200 OK", NULL, body, IMG);
    } else if (sscanf(path, "/slow/%d", &k) == 1) {
        /* ~0.3 s per download, so concurrent callers overlap */
        atomic_fetch_add(&image_requests, 1);
        image_bytes(k, body, IMG);
        test_http_head(fd, "200 OK", NULL, IMG);
        for (int i = 0; i < 16; i++) {
            send_all(fd, body + i * (IMG / 16), IMG / 16);
            sleep_ms(20);
        }
    } else if (sscanf(path, "/long/%d", &k) == 1 || sscanf(path, "/longnocl/%d", &k) == 1) {
        /* more than the IMG bytes asked for, announced or not */
        image_bytes(k, body, IMG + EXTRA);
        test_http_head(fd, "200 OK", NULL, strncmp(path, "/long/", 6) == 0 ? IMG + EXTRA : -1);
        send_all(fd, body, IMG + EXTRA);
    } else if (!strcmp(path, "/missing")) {
        test_http_s3_error(fd, "404 Not Found", "NoSuchKey", "no");
    } else if (!strcmp(path, "/redirect")) {
        test_http_head(fd, "302 Found", "Location: /img/1\r\n", 0);
    } else if (!strcmp(path, "/stall")) {
        test_http_stall(fd, IMG);
    } else {
        test_http_head(fd, "400 Bad Request", NULL, 0);
    }
    free(body);
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    return test_http_start(serve);
}

/* ---- a cache per test ---------------------------------------------------------------- */

static char dir[64];
static image_cache_t *C;

static image_cache_t *open_cache(uint64_t limit, long low_speed_s)
{
    image_cache_opts_t o = {.dir = dir, .limit_bytes = limit,
                            .fetch = {.timeout_s = 20, .low_speed_bytes = 1000, .low_speed_s = low_speed_s}};
    verr_t e;
    image_cache_t *c = image_cache_open(&o, &e);
    if (!c)
        fprintf(stderr, "image_cache_open: %s\n", e.message);
    return c;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/virga-image-cache-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    C = open_cache(1ull << 30, 1);
    return C ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    image_cache_close(C);
    C = NULL;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* The directory's names other than . and .., sorted, space-separated. */
static char *dir_names(void)
{
    static char out[4096];
    struct dirent **v;
    int n = scandir(dir, &v, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i]->d_name, ".") && strcmp(v[i]->d_name, "..")) {
            if (out[0])
                strcat(out, " ");
            strcat(out, v[i]->d_name);
        }
        free(v[i]);
    }
    free(v);
    return out;
}

static void assert_file_is_image(const char *path, int k, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *want = malloc(n + 1), *have = malloc(n + 1);
    image_bytes(k, want, n);
    assert_int_equal(fread(have, 1, n + 1, f), n);
    assert_memory_equal(have, want, n);
    fclose(f);
    free(want);
    free(have);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_fetch_then_cached(void **state)
{
    (void)state;
    char sha[65], upper[65];
    sha_hex(1, IMG, sha);
    int before = atomic_load(&image_requests);
    image_cache_result_t r;
    verr_t e = {0};
    assert_int_equal(image_cache_get(C, test_http_url("/img/1"), sha, IMG, &r, &e), 0);
    assert_int_equal(r.cached, 0);
    assert_int_equal(r.size, IMG);
    assert_string_equal(r.sha256, sha);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/%s", dir, sha);
    assert_string_equal(r.path, want);
    assert_file_is_image(r.path, 1, IMG);
    assert_string_equal(dir_names(), sha);
    struct stat st;
    assert_int_equal(stat(r.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    for (int i = 0; i < 64; i++)
        upper[i] = (char)(sha[i] >= 'a' ? sha[i] - 'a' + 'A' : sha[i]);
    upper[64] = '\0';
    /* the URL no longer matters once the image is here */
    assert_int_equal(image_cache_get(C, test_http_url("/missing"), upper, IMG, &r, &e), 0);
    assert_int_equal(r.cached, 1);
    assert_string_equal(r.sha256, sha);
    assert_int_equal(atomic_load(&image_requests), before + 1);
}

static verr_t expect_error(const char *u, const char *sha, uint64_t size, const char *code, const char *in_message)
{
    image_cache_result_t r;
    verr_t e = {0};
    assert_int_equal(image_cache_get(C, u, sha, size, &r, &e), -1);
    assert_string_equal(e.code, code);
    if (in_message && !strstr(e.message, in_message))
        fail_msg("'%s' not in '%s'", in_message, e.message);
    /* never a partial file, a lock file or a file named by a checksum left behind */
    assert_string_equal(dir_names(), "");
    return e;
}

static void test_bad_parameters(void **state)
{
    (void)state;
    char sha[65];
    sha_hex(1, IMG, sha);
    int before = atomic_load(&requests);
    expect_error(test_http_url("/img/1"), "abc", IMG, "InvalidParameterValue", "sha256");
    char bad[66];
    snprintf(bad, sizeof bad, "%.63sg", sha);
    expect_error(test_http_url("/img/1"), bad, IMG, "InvalidParameterValue", "sha256");
    snprintf(bad, sizeof bad, "%s0", sha);
    expect_error(test_http_url("/img/1"), bad, IMG, "InvalidParameterValue", "sha256");
    expect_error(test_http_url("/img/1"), "../../../../etc/passwd", IMG, "InvalidParameterValue", NULL);
    expect_error("file:///etc/passwd", sha, IMG, "InvalidParameterValue", "url");
    expect_error("ftp://127.0.0.1/x", sha, IMG, "InvalidParameterValue", "url");
    expect_error("http:///x", sha, IMG, "InvalidParameterValue", "url");
    expect_error("http://127.0.0.1/a b", sha, IMG, "InvalidParameterValue", "url");
    expect_error(test_http_url("/img/1"), sha, (1ull << 30) + 1, "InvalidParameterValue", "image_cache_bytes");
    assert_int_equal(atomic_load(&requests), before);
}

static void test_checksum_mismatch(void **state)
{
    (void)state;
    char other[65];
    sha_hex(2, IMG, other);
    expect_error(test_http_url("/img/1"), other, IMG, "ImageChecksumMismatch", other);
}

static void test_size_mismatch(void **state)
{
    (void)state;
    char sha[65];
    sha_hex(1, IMG, sha);
    expect_error(test_http_url("/img/1"), sha, IMG + 1, "ImageChecksumMismatch", "bytes");   /* body too short */
    expect_error(test_http_url("/img/1"), sha, IMG - 1, "ImageChecksumMismatch", "bytes");   /* announced too long */
    expect_error(test_http_url("/long/1"), sha, IMG, "ImageChecksumMismatch", "more than");
    expect_error(test_http_url("/longnocl/1"), sha, IMG, "ImageChecksumMismatch", "more than");
}

static void test_http_errors(void **state)
{
    (void)state;
    char sha[65];
    sha_hex(1, IMG, sha);
    char want[224];
    snprintf(want, sizeof want, "GET %s: HTTP 404 NoSuchKey", test_http_url("/missing"));
    verr_t e = expect_error(test_http_url("/missing"), sha, IMG, "ImageFetchFailed", want);
    assert_int_equal(e.http_status, 400);   /* a 4xx: the caller's URL */
    int before = atomic_load(&image_requests);
    e = expect_error(test_http_url("/redirect"), sha, IMG, "ImageFetchFailed", "HTTP 302");
    assert_int_equal(e.http_status, 502);
    assert_int_equal(atomic_load(&image_requests), before);   /* not followed to /img/1 */
    /* the query string (a presigned URL's credentials) never appears in a message */
    e = expect_error(test_http_url("/missing?X-Amz-Signature=secret"), sha, IMG, "ImageFetchFailed", "HTTP 404");
    assert_null(strstr(e.message, "secret"));
    assert_null(strstr(e.message, "?"));
    /* nobody listens on a fresh free port */
    char u[96];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/img/1?X-Amz-Signature=secret", free_port());
    e = expect_error(u, sha, IMG, "ImageFetchFailed", NULL);
    assert_int_equal(e.http_status, 502);
    assert_null(strstr(e.message, "secret"));
}

static void test_stalled_server(void **state)
{
    (void)state;
    char sha[65];
    sha_hex(1, IMG, sha);
    time_t t0 = time(NULL);
    expect_error(test_http_url("/stall"), sha, IMG, "ImageFetchFailed", NULL);
    assert_true(time(NULL) - t0 <= 4);   /* low-speed limit 1 s; the server stalls 5 s */
}

struct racer {
    const char *sha;
    image_cache_result_t r;
    verr_t e;
    int rc;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    x->rc = image_cache_get(C, test_http_url("/slow/3"), x->sha, IMG, &x->r, &x->e);
    return NULL;
}

static void test_concurrent_fetches_download_once(void **state)
{
    (void)state;
    char sha[65];
    sha_hex(3, IMG, sha);
    int before = atomic_load(&image_requests);
    struct racer x[4] = {{.sha = sha}, {.sha = sha}, {.sha = sha}, {.sha = sha}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, race, &x[i]);
    int fresh = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(x[i].rc, 0);
        fresh += !x[i].r.cached;
    }
    assert_int_equal(fresh, 1);
    assert_int_equal(atomic_load(&image_requests), before + 1);
    assert_string_equal(dir_names(), sha);
    assert_file_is_image(x[0].r.path, 3, IMG);
}

static void test_cached_with_other_size(void **state)
{
    (void)state;
    char sha[65];
    sha_hex(1, IMG, sha);
    image_cache_result_t r;
    verr_t e = {0};
    assert_int_equal(image_cache_get(C, test_http_url("/img/1"), sha, IMG, &r, &e), 0);
    assert_int_equal(image_cache_get(C, test_http_url("/img/1"), sha, IMG - 5, &r, &e), -1);
    assert_string_equal(e.code, "ImageChecksumMismatch");
    assert_string_equal(dir_names(), sha);
}

static image_cache_entry_t entry(const char *name, uint64_t size, int64_t used)
{
    image_cache_entry_t x = {.size = size, .used_ns = used};
    snprintf(x.sha256, sizeof x.sha256, "%s", name);
    return x;
}

static int evicted(const image_cache_entry_t *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].sha256, name))
            return v[i].evict;
    return -1;
}

static void test_plan_eviction(void **state)
{
    (void)state;
    image_cache_entry_t v[4];
    /* under the limit: nothing */
    v[0] = entry("a", 10, 1), v[1] = entry("b", 10, 2);
    assert_int_equal(image_cache_plan_eviction(v, 2, 20, NULL), 20);
    assert_int_equal(evicted(v, 2, "a") + evicted(v, 2, "b"), 0);
    /* oldest first, only as many as needed */
    v[0] = entry("new", 10, 40), v[1] = entry("old", 10, 10), v[2] = entry("mid", 10, 20), v[3] = entry("recent", 10, 30);
    assert_int_equal(image_cache_plan_eviction(v, 4, 25, NULL), 20);
    assert_int_equal(evicted(v, 4, "old"), 1);
    assert_int_equal(evicted(v, 4, "mid"), 1);
    assert_int_equal(evicted(v, 4, "recent"), 0);
    assert_int_equal(evicted(v, 4, "new"), 0);
    assert_string_equal(v[0].sha256, "old");   /* sorted oldest first */
    /* the kept one is skipped even when it is the oldest */
    v[0] = entry("keep", 10, 1), v[1] = entry("x", 10, 2), v[2] = entry("y", 10, 3);
    assert_int_equal(image_cache_plan_eviction(v, 3, 15, "keep"), 10);
    assert_int_equal(evicted(v, 3, "keep"), 0);
    assert_int_equal(evicted(v, 3, "x"), 1);
    assert_int_equal(evicted(v, 3, "y"), 1);
    /* the kept one alone above the limit: everything else goes, and that is said */
    v[0] = entry("big", 100, 5), v[1] = entry("x", 10, 2);
    assert_int_equal(image_cache_plan_eviction(v, 2, 50, "big"), 100);
    assert_int_equal(evicted(v, 2, "x"), 1);
    /* equal times: by name, so the choice does not depend on directory order */
    v[0] = entry("b", 10, 7), v[1] = entry("a", 10, 7);
    assert_int_equal(image_cache_plan_eviction(v, 2, 10, NULL), 10);
    assert_int_equal(evicted(v, 2, "a"), 1);
    assert_int_equal(evicted(v, 2, "b"), 0);
    /* empty */
    assert_int_equal(image_cache_plan_eviction(v, 0, 0, NULL), 0);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    image_cache_close(C);
    C = open_cache(2 * IMG + 100, 1);   /* room for two images */
    assert_non_null(C);
    char s1[65], s2[65], s3[65];
    sha_hex(11, IMG, s1), sha_hex(12, IMG, s2), sha_hex(13, IMG, s3);
    image_cache_result_t r;
    verr_t e = {0};
    assert_int_equal(image_cache_get(C, test_http_url("/img/11"), s1, IMG, &r, &e), 0);
    assert_int_equal(image_cache_get(C, test_http_url("/img/12"), s2, IMG, &r, &e), 0);
    /* using 11 makes 12 the least recently used */
    assert_int_equal(image_cache_get(C, test_http_url("/img/11"), s1, IMG, &r, &e), 0);
    assert_int_equal(r.cached, 1);
    assert_int_equal(image_cache_get(C, test_http_url("/img/13"), s3, IMG, &r, &e), 0);
    assert_int_equal(r.cached, 0);

    image_cache_entry_t *v;
    size_t n;
    uint64_t total;
    assert_int_equal(image_cache_list(C, &v, &n, &total, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(total, 2 * IMG);
    assert_string_equal(v[0].sha256, s3);   /* most recently used first */
    assert_string_equal(v[1].sha256, s1);
    free(v);
}

static void test_sweep_after_crash(void **state)
{
    (void)state;
    char s1[65], s2[65], name[256];
    sha_hex(21, 10, s1), sha_hex(22, 10, s2);
    image_cache_close(C);
    C = NULL;
    const char *left[] = {".partial-%s-abc123", ".lock-%s", "README"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s/", dir);
        snprintf(name + strlen(name), sizeof name - strlen(name), left[i], s1);
        close(open(name, O_CREAT | O_WRONLY, 0600));
    }
    /* a fetch of s2 is running (its lock is held): its partial file must stay */
    snprintf(name, sizeof name, "%s/.partial-%s-xyz789", dir, s2);
    close(open(name, O_CREAT | O_WRONLY, 0600));
    snprintf(name, sizeof name, "%s/.lock-%s", dir, s2);
    int held = open(name, O_CREAT | O_RDWR, 0600);
    assert_int_equal(flock(held, LOCK_EX), 0);

    C = open_cache(1ull << 30, 1);
    assert_non_null(C);
    char want[512];
    snprintf(want, sizeof want, ".lock-%s .partial-%s-xyz789 README", s2, s2);
    assert_string_equal(dir_names(), want);
    close(held);
    snprintf(name, sizeof name, "%s/README", dir);
    unlink(name);
}

static void test_refuses_open_directory(void **state)
{
    (void)state;
    chmod(dir, 0777);
    image_cache_opts_t o = {.dir = dir, .limit_bytes = 1, .fetch = {.timeout_s = 1}};
    verr_t e = {0};
    assert_null(image_cache_open(&o, &e));
    assert_non_null(strstr(e.message, "writable by other users"));
    chmod(dir, 0700);
    /* missing parents are made, 0700 */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    o.dir = sub;
    image_cache_t *c = image_cache_open(&o, &e);
    assert_non_null(c);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    image_cache_close(c);
}

static void *stalled_get(void *arg)
{
    struct racer *x = arg;
    x->rc = image_cache_get(C, test_http_url("/stall"), x->sha, IMG, &x->r, &x->e);
    return NULL;
}

static void test_stop_abandons_downloads(void **state)
{
    (void)state;
    image_cache_close(C);
    C = open_cache(1ull << 30, 30);   /* only the stop can end the stalled download */
    char sha[65];
    sha_hex(1, IMG, sha);
    struct racer x = {.sha = sha};
    pthread_t t;
    pthread_create(&t, NULL, stalled_get, &x);
    sleep_ms(300);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    image_cache_stop(C);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    assert_true(t1.tv_sec - t0.tv_sec <= 2);
    assert_int_equal(x.rc, -1);
    assert_string_equal(x.e.code, "ServiceUnavailable");
    assert_string_equal(dir_names(), "");
    image_cache_result_t r;
    verr_t e = {0};
    assert_int_equal(image_cache_get(C, test_http_url("/img/1"), sha, IMG, &r, &e), -1);
    assert_string_equal(e.code, "ServiceUnavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_then_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_fetches_download_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_with_other_size, setup, teardown),
        cmocka_unit_test(test_plan_eviction),
        cmocka_unit_test_setup_teardown(test_lru_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_open_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_abandons_downloads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, test_http_group_teardown);
}

/* test_http_stream.c - unit tests of common/http.c's stream routes (http_stream_t) and
 * streamed responses, against a real libmicrohttpd server on 127.0.0.1 with libcurl as
 * the client (tests/unit/http_test_client.h). Covered: uploads far over max_body taken
 * with bounded memory, whole and in order, plain and chunked; a route refusing in begin
 * before the body is read; done() for every accepted upload; a route that waits
 * (http_stream_wait) any number of times in begin and in end, woken from another thread
 * later or before it returns, running again each time with its context; a 5 MiB streamed
 * response with its Content-Length. Two servers (default limit, and max_body 1 KiB) run
 * for the whole file. */
#include <pthread.h>
#include <time.h>

#include "http_test_client.h"

#define SMALL_LIMIT 1024

static http_server_t *srv, *small_srv;
static int port, small_port;

/* Streamed upload: count bytes and a checksum without keeping the body; refuse at
 * begin when asked to (x-refuse header) and mid-body past 8 MiB. */
struct sum_ctx {
    size_t n;
    unsigned long sum;
    int *done_calls;
};
static int done_calls;

static int s_begin(http_req_t *req, void **ctx, http_resp_t *resp)
{
    if (http_header(req, "x-refuse")) {
        http_resp_set(resp, 403, "text/plain", "refused\n", 8);
        return -1;
    }
    struct sum_ctx *c = calloc(1, sizeof *c);
    c->done_calls = &done_calls;
    *ctx = c;
    return 0;
}

static int s_data(void *ctx, const char *buf, size_t len, http_resp_t *resp)
{
    struct sum_ctx *c = ctx;
    for (size_t i = 0; i < len; i++)
        c->sum = c->sum * 31 + (unsigned char)buf[i];
    c->n += len;
    if (c->n > 8u << 20) {
        http_resp_set(resp, 413, "text/plain", "too big\n", 8);
        return -1;
    }
    return 0;
}

static void s_end(void *ctx, http_req_t *req, http_resp_t *resp)
{
    struct sum_ctx *c = ctx;
    char *out = xasprintf("{\"n\": %zu, \"sum\": %lu, \"path\": \"%s\"}", c->n, c->sum, req->path);
    http_resp_take(resp, 200, "application/json", out, strlen(out));
}

static void s_done(void *ctx)
{
    struct sum_ctx *c = ctx;
    __atomic_add_fetch(c->done_calls, 1, __ATOMIC_SEQ_CST);
    free(c);
}

static const http_stream_t sum_stream = {s_begin, s_data, s_end, s_done};

/* A stream route that waits: begin waits x-begin-waits times and end x-end-waits times
 * (http_stream_wait), each wake coming from another thread after a few ms, or at once
 * (before the route returns) when x-wake-now is sent. It answers the body's sum and how
 * many times begin and end ran. */
struct wait_ctx {
    struct sum_ctx sum;
    int begin_waits, end_waits, begins, ends, now;
};

static void *wake_later(void *arg)
{
    struct timespec ts = {0, 3 * 1000000L};
    nanosleep(&ts, NULL);
    http_stream_wake(arg);
    return NULL;
}

static void wait_once(http_req_t *req, int now)
{
    http_deferred_t *w = http_stream_wait(req);
    if (now) {
        http_stream_wake(w);
        return;
    }
    pthread_t t;
    pthread_create(&t, NULL, wake_later, w);
    pthread_detach(t);
}

static int w_begin(http_req_t *req, void **ctx, http_resp_t *resp)
{
    (void)resp;
    struct wait_ctx *c = *ctx;
    if (!c) {
        c = calloc(1, sizeof *c);
        c->sum.done_calls = &done_calls;
        const char *b = http_header(req, "x-begin-waits"), *e = http_header(req, "x-end-waits");
        c->begin_waits = b ? atoi(b) : 0;
        c->end_waits = e ? atoi(e) : 0;
        c->now = http_header(req, "x-wake-now") != NULL;
        *ctx = c;
    }
    c->begins++;
    if (c->begins <= c->begin_waits) {
        wait_once(req, c->now);
        return HTTP_STREAM_WAIT;
    }
    return 0;
}

static int w_data(void *ctx, const char *buf, size_t len, http_resp_t *resp)
{
    return s_data(&((struct wait_ctx *)ctx)->sum, buf, len, resp);
}

static void w_end(void *ctx, http_req_t *req, http_resp_t *resp)
{
    struct wait_ctx *c = ctx;
    c->ends++;
    if (c->ends <= c->end_waits) {
        http_resp_set(resp, 500, "text/plain", "ignored", 7);   /* a waiting end's resp is not the answer */
        wait_once(req, c->now);
        return;
    }
    char *out = xasprintf("{\"n\": %zu, \"sum\": \"%lu\", \"begins\": %d, \"ends\": %d}", c->sum.n, c->sum.sum,
                          c->begins, c->ends);
    http_resp_take(resp, 200, "application/json", out, strlen(out));
}

static void w_done(void *ctx)
{
    s_done(ctx);   /* sum is the first member: frees the whole wait_ctx */
}

static const http_stream_t wait_stream = {w_begin, w_data, w_end, w_done};

/* Streamed response: 5 MiB of a position-derived pattern. */
#define BIG_SIZE (5u << 20)
static long big_reader(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)arg;
    size_t n = 0;
    for (; n < max && pos + n < BIG_SIZE; n++)
        buf[n] = (char)('a' + (pos + n) % 26);
    return (long)n;
}

static void h_big(http_req_t *req, http_resp_t *resp)
{
    (void)req;
    http_resp_stream(resp, 200, "application/octet-stream", BIG_SIZE, big_reader, NULL, NULL);
}

static const http_route_t routes[] = {
    {"PUT", "/sum", NULL, &sum_stream},
    {"PUT", "/wait", NULL, &wait_stream},
    {"GET", "/big", h_big, NULL},
    {NULL, NULL, NULL, NULL},
};

static int group_setup(void **state)
{
    (void)state;
    return http_test_servers_start("test_http_stream", routes, SMALL_LIMIT, &srv, &port, &small_srv, &small_port);
}

static int group_teardown(void **state)
{
    (void)state;
    http_test_servers_stop(&srv, &small_srv);
    return 0;
}

/* A body of len bytes (i * mul + add), and the checksum the sum route answers for it. */
static char *patterned_body(size_t len, unsigned mul, unsigned add, unsigned long *sum)
{
    char *b = malloc(len);
    assert_non_null(b);
    *sum = 0;
    for (size_t i = 0; i < len; i++) {
        b[i] = (char)(i * mul + add);
        *sum = *sum * 31 + (unsigned char)b[i];
    }
    return b;
}

/* Stream routes take bodies far over max_body with bounded memory, see the whole body
 * in order, can refuse before reading it, and always get done(). */
static void test_streamed_upload(void **state)
{
    (void)state;
    size_t len = 3u << 20;
    unsigned long sum;
    char *b = patterned_body(len, 7, 3, &sum);
    int before = __atomic_load_n(&done_calls, __ATOMIC_SEQ_CST);
    for (int chunked = 0; chunked < 2; chunked++) {
        reqspec_t rq = {.method = "PUT", .target = "/sum", .body = b, .len = len, .chunked = chunked};
        reply_t r;
        request(small_port, &rq, &r);   /* small_port: max_body 1 KiB does not apply */
        assert_int_equal(r.status, 200);
        json_t *o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "n")), (json_int_t)len);
        char want[64];   /* compared as text: the sum may not fit a JSON integer */
        snprintf(want, sizeof want, "\"sum\": %lu", sum);
        assert_non_null(strstr(r.body.p, want));
        json_decref(o);
        reply_free(&r);
    }
    struct curl_slist *h = curl_slist_append(NULL, "x-refuse: 1");
    reqspec_t rq = {.method = "PUT", .target = "/sum", .body = b, .len = 4096, .headers = h};
    reply_t r;
    CURL *c = curl_easy_init();
    perform(c, small_port, &rq, &r);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    free(b);
    /* done() ran for the two accepted uploads (the refused one never had a context) */
    for (int i = 0; i < 100 && __atomic_load_n(&done_calls, __ATOMIC_SEQ_CST) < before + 2; i++)
        usleep(10000);
    assert_int_equal(__atomic_load_n(&done_calls, __ATOMIC_SEQ_CST), before + 2);
}

/* A stream route may wait any number of times in begin, and in end, and runs again
 * each time with its context; the body is taken whole in between, whether the wake
 * comes from another thread later or before the route has returned. */
static void test_stream_waits(void **state)
{
    (void)state;
    size_t len = 200000;
    unsigned long sum;
    char *b = patterned_body(len, 13, 1, &sum);
    static const struct { const char *begin, *end; int now, begins, ends; } cases[] = {
        {"1", "0", 0, 2, 1},
        {"3", "0", 0, 4, 1},
        {"0", "2", 0, 1, 3},
        {"2", "2", 0, 3, 3},
        {"2", "2", 1, 3, 3},
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        char hb[64], he[64];
        snprintf(hb, sizeof hb, "x-begin-waits: %s", cases[k].begin);
        snprintf(he, sizeof he, "x-end-waits: %s", cases[k].end);
        struct curl_slist *h = curl_slist_append(NULL, hb);
        h = curl_slist_append(h, he);
        if (cases[k].now)
            h = curl_slist_append(h, "x-wake-now: 1");
        reqspec_t rq = {.method = "PUT", .target = "/wait", .body = b, .len = len, .headers = h};
        reply_t r;
        CURL *c = curl_easy_init();
        perform(c, small_port, &rq, &r);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        assert_int_equal(r.status, 200);
        json_t *o = body_json(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "n")), (json_int_t)len);
        assert_int_equal(json_integer_value(json_object_get(o, "begins")), cases[k].begins);
        assert_int_equal(json_integer_value(json_object_get(o, "ends")), cases[k].ends);
        char want[32];
        snprintf(want, sizeof want, "%lu", sum);
        assert_string_equal(json_string_value(json_object_get(o, "sum")), want);
        json_decref(o);
        reply_free(&r);
    }
    free(b);
}

static void test_streamed_response(void **state)
{
    (void)state;
    reqspec_t rq = {.target = "/big"};
    reply_t r;
    request(port, &rq, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.n, BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i += 4099)
        assert_int_equal(r.body.p[i], 'a' + (int)(i % 26));
    char v[32];
    assert_true(resp_header(&r, "content-length", v, sizeof v));
    assert_int_equal(atol(v), BIG_SIZE);
    reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streamed_upload),
        cmocka_unit_test(test_stream_waits),
        cmocka_unit_test(test_streamed_response),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

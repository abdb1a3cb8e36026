/* test_http.c - unit tests for common/http.c against a real libmicrohttpd server on
 * 127.0.0.1 and a free port, with libcurl (and, where curl would hide the wire
 * behaviour, a raw socket) as the client. Covered: routing by method and path
 * prefix with the first matching row winning and 404 otherwise; handlers seeing the
 * raw, still percent-encoded path and query exactly as sent (SigV4 signs that form);
 * request bodies arriving whole (up to 600 KiB, also chunked) and 413 past max_body,
 * both when Content-Length announces too much and when a chunked body grows past the
 * limit (answered without waiting for the rest of the body, as http.h promises);
 * case-insensitive header lookup and header enumeration; response headers, with no
 * CR LF injection; the Server header and the per-request x-amz-request-id, on every
 * response and equal to the logging request id inside the handler; keep-alive
 * reuse; the served counter; 50 concurrent requests; http_start errors and
 * http_stop(NULL); deferred answers (http_defer/http_complete) from another thread
 * later, or at once inside the handler, with the request id and the request still
 * valid, 40 of them in flight on 4 threads, a client that leaves while its request is
 * suspended, and http_stop with a request suspended; http_stop with drain_ms letting a
 * request in flight finish (answered whole, with Connection: close) and cutting one that
 * outlasts it. Two servers run for the whole file (default limit, and max_body 1024) and
 * are stopped at the end. Stream routes and streamed responses: test_http_stream.c; the
 * client side both use: http_test_client.h. */
#include <pthread.h>
#include <time.h>

#include "bigbuf.h"
#include "http_test_client.h"

#define SMALL_LIMIT 1024

static http_server_t *srv, *small_srv;
static int port, small_port;

/* ---- handlers ------------------------------------------------------------------ */

/* Report what the handler saw as JSON, tagged with the route that ran. */
static void report(http_req_t *req, http_resp_t *resp, const char *route)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "route", route,
                          "method", req->method, "path", req->path, "query", req->query,
                          "body_len", (json_int_t)req->body_len, "request_id", req->request_id,
                          "log_rid", log_request_id(), "remote", req->remote);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    http_resp_take(resp, 200, "application/json", s, strlen(s));
}

static void h_special(http_req_t *r, http_resp_t *p) { report(r, p, "special"); }
static void h_get_a(http_req_t *r, http_resp_t *p) { report(r, p, "get-a"); }
static void h_post_a(http_req_t *r, http_resp_t *p) { report(r, p, "post-a"); }
static void h_any(http_req_t *r, http_resp_t *p) { report(r, p, "any"); }

/* Echo the body byte for byte (it may contain NULs). */
static void h_echo(http_req_t *r, http_resp_t *p)
{
    http_resp_set(p, 201, "application/octet-stream", r->body, r->body_len);
    char n[32];
    snprintf(n, sizeof n, "%zu", r->body_len);
    http_resp_header(p, "X-Body-Len", n);
    /* the body handed to handlers is NUL-terminated for convenience */
    http_resp_header(p, "X-Body-Terminated", r->body[r->body_len] == 0 ? "yes" : "no");
}

static void h_hdr(http_req_t *r, http_resp_t *p)
{
    const char *names[64], *values[64];
    size_t n = http_headers(r, names, values, 64);
    json_t *all = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(all, names[i], json_string(values[i]));
    const char *one[1], *onev[1];
    size_t capped = http_headers(r, one, onev, 1);
    const char *a = http_header(r, "x-custom-thing");
    const char *b = http_header(r, "X-LOWER");
    const char *c = http_header(r, "x-absent");
    json_t *o = json_pack("{s:o, s:I, s:I, s:s?, s:s?, s:b}", "all", all, "n", (json_int_t)n,
                          "capped", (json_int_t)capped, "custom", a, "lower", b, "absent_null", c == NULL);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    http_resp_take(p, 200, "application/json", s, strlen(s));
    http_resp_header(p, "X-Reply", "r1");
    http_resp_header(p, "X-Colon", "a: b");   /* value with ": " survives the split */
    /* a value carrying CR LF (say, echoed user metadata) must not inject a header */
    http_resp_header(p, "X-Evil", "x\r\nX-Injected: 1");
}

static void h_status(http_req_t *r, http_resp_t *p)
{
    (void)r;
    http_resp_set(p, 418, "text/plain", "teapot", 6);
}

/* Answer later from another thread: after ?<ms> (0 = at once, inside the handler). */
static int deferred_completed;

typedef struct later {
    http_req_t *req;
    http_deferred_t *d;
    long ms;
} later_t;

static void *complete_later(void *arg)
{
    later_t *l = arg;
    struct timespec ts = {l->ms / 1000, (l->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    http_resp_t resp = {.status = 200};
    report(l->req, &resp, "deferred");   /* the request is still valid until complete */
    http_resp_header(&resp, "X-Deferred", "yes");
    http_complete(l->d, &resp);
    __atomic_add_fetch(&deferred_completed, 1, __ATOMIC_SEQ_CST);
    free(l);
    return NULL;
}

static int deferred_started;

static void h_defer(http_req_t *r, http_resp_t *p)
{
    __atomic_add_fetch(&deferred_started, 1, __ATOMIC_SEQ_CST);
    http_resp_set(p, 500, "text/plain", "ignored", 7);   /* a deferred request's resp is not the answer */
    later_t *l = malloc(sizeof *l);
    l->req = r;
    l->d = http_defer(r);
    l->ms = atol(r->query);
    if (l->ms == 0) {
        complete_later(l);
        return;
    }
    pthread_t t;
    pthread_create(&t, NULL, complete_later, l);
    pthread_detach(t);
}

/* A body of megabytes in a bigbuf.h mapping (as the gateway's DescribeInstances pages),
 * freed by its own function once sent: counted, so the test sees it run. */
#define BIG_BODY (9u * 350000)   /* 3 MB of 9-byte lines */
static int big_freed;
static void big_free(void *s)
{
    __atomic_add_fetch(&big_freed, 1, __ATOMIC_SEQ_CST);
    bigbuf_free(s);
}
static void h_big(http_req_t *r, http_resp_t *p)
{
    (void)r;
    strbuf_t b = {0};
    bigbuf_start(&b, 1024, BIG_BODY);   /* grows as it is written */
    for (unsigned i = 0; b.len < BIG_BODY; i++)
        strbuf_printf(&b, "%08u\n", i);
    http_resp_take_as(p, 200, "text/plain", b.s, b.len, big_free);
}

static const http_route_t routes[] = {
    {"GET", "/big", h_big, NULL},
    {"GET", "/defer", h_defer, NULL},
    {"GET", "/a/special", h_special, NULL},   /* must win over the shorter /a below */
    {"GET", "/a", h_get_a, NULL},
    {"POST", "/a", h_post_a, NULL},
    {"GET", "/a/special", h_get_a, NULL},    /* shadowed: never reached */
    {NULL, "/any", h_any, NULL},
    {"POST", "/echo", h_echo, NULL},
    {"PUT", "/echo", h_echo, NULL},
    {"GET", "/hdr", h_hdr, NULL},
    {"GET", "/teapot", h_status, NULL},
    {NULL, NULL, NULL, NULL},
};

/* Check a request ran the expected route (NULL = expect 404). */
static void expect_route(const char *method, const char *target, const char *route)
{
    reqspec_t rq = {.method = method, .target = target};
    if (method && !strcmp(method, "POST"))
        rq.body = "", rq.len = 0;
    reply_t r;
    request(port, &rq, &r);
    if (!route) {
        assert_int_equal(r.status, 404);
    } else {
        assert_int_equal(r.status, 200);
        json_t *o = body_json(&r);
        assert_string_equal(jstr(o, "route"), route);
        assert_string_equal(jstr(o, "method"), method ? method : "GET");
        json_decref(o);
    }
    reply_free(&r);
}


/* ---- setup --------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return http_test_servers_start("test_http", routes, SMALL_LIMIT, &srv, &port, &small_srv, &small_port);
}

static int group_teardown(void **state)
{
    (void)state;
    http_test_servers_stop(&srv, &small_srv);
    return 0;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_routing(void **state)
{
    (void)state;
    expect_route("GET", "/a", "get-a");
    expect_route("GET", "/a/b/c", "get-a");
    expect_route("GET", "/a/special", "special");
    expect_route("GET", "/a/special/deeper", "special");
    expect_route("POST", "/a", "post-a");
    expect_route("POST", "/a/special", "post-a");   /* special is GET only */
    expect_route("DELETE", "/a", NULL);              /* no row for DELETE /a */
    expect_route("PUT", "/any/x", "any");            /* NULL method = any method */
    expect_route("DELETE", "/any", "any");
    expect_route("GET", "/nothing-here", NULL);
    expect_route("GET", "/", NULL);

    reply_t r;
    reqspec_t rq = {.target = "/teapot"};
    request(port, &rq, &r);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.body.p, "teapot");
    reply_free(&r);
}

static void test_raw_path_and_query(void **state)
{
    (void)state;
    struct {
        const char *target, *path, *query;
    } cases[] = {
        {"/a%20b/c?X=1&y=%2F%20+z", "/a%20b/c", "X=1&y=%2F%20+z"},
        {"/a/x%2Fy%2fz", "/a/x%2Fy%2fz", ""},                  /* no '?' -> "" */
        {"/a/k?", "/a/k", ""},                                 /* empty query */
        {"/a/q?a=b?c=d&&e", "/a/q", "a=b?c=d&&e"},             /* only the first '?' splits */
        {"/a/%7Euser/./../x?list-type=2&prefix=%E2%82%AC", "/a/%7Euser/./../x",
         "list-type=2&prefix=%E2%82%AC"},                     /* no dot-segment folding */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        reply_t r;
        reqspec_t rq = {.target = cases[i].target};
        request(port, &rq, &r);
        assert_int_equal(r.status, 200);
        json_t *o = body_json(&r);
        assert_string_equal(jstr(o, "path"), cases[i].path);
        assert_string_equal(jstr(o, "query"), cases[i].query);
        assert_string_equal(jstr(o, "remote"), "127.0.0.1");
        json_decref(o);
        reply_free(&r);
    }
}

static void check_echo(int p, const char *method, const char *body, size_t len, int chunked)
{
    reply_t r;
    reqspec_t rq = {.method = method, .target = "/echo", .body = body, .len = len, .chunked = chunked};
    request(p, &rq, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body.n, len);
    assert_true(len == 0 || memcmp(r.body.p, body, len) == 0);
    char v[32];
    assert_true(resp_header(&r, "X-Body-Len", v, sizeof v));
    assert_int_equal(strtoul(v, NULL, 10), len);
    assert_true(resp_header(&r, "X-Body-Terminated", v, sizeof v));
    assert_string_equal(v, "yes");
    reply_free(&r);
}

static void test_bodies(void **state)
{
    (void)state;
    size_t big = 600 * 1024;
    char *b = malloc(big);
    assert_non_null(b);
    for (size_t i = 0; i < big; i++)
        b[i] = (char)((i * 131 + i / 977) & 0xff);   /* non-repeating, includes NULs */
    check_echo(port, "POST", "", 0, 0);
    check_echo(port, "POST", "hello", 5, 0);
    check_echo(port, "POST", b, big, 0);
    check_echo(port, "PUT", b, big, 0);
    check_echo(port, "POST", b, big, 1);            /* chunked, 700-byte pieces */
    /* exactly at the small server's limit is still accepted */
    check_echo(small_port, "POST", b, SMALL_LIMIT, 0);
    check_echo(small_port, "POST", b, SMALL_LIMIT, 1);
    free(b);
}

static void expect_413(int chunked, size_t len)
{
    char *b = malloc(len);
    assert_non_null(b);
    memset(b, 'q', len);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");   /* send the body at once */
    reqspec_t rq = {.method = "POST", .target = "/echo", .body = b, .len = len, .chunked = chunked,
                    .headers = h};
    reply_t r;
    CURL *c = curl_easy_init();
    int rc = perform(c, small_port, &rq, &r);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(b);
    /* The server may close before reading everything; what matters is the status. */
    (void)rc;
    assert_int_equal(r.status, 413);
    reply_free(&r);
}

static void test_big_body_freed_as_made(void **state)
{
    (void)state;
    int before = __atomic_load_n(&big_freed, __ATOMIC_SEQ_CST);
    reply_t r;
    reqspec_t rq = {.target = "/big"};
    request(port, &rq, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.n, BIG_BODY);
    assert_memory_equal(r.body.p, "00000000\n00000001\n", 18);
    assert_memory_equal(r.body.p + BIG_BODY - 9, "00349999\n", 9);
    reply_free(&r);
    for (int i = 0; i < 200 && __atomic_load_n(&big_freed, __ATOMIC_SEQ_CST) == before; i++)
        usleep(10000);   /* the response is let go after the reply is read */
    assert_int_equal(__atomic_load_n(&big_freed, __ATOMIC_SEQ_CST), before + 1);
}

static void test_body_limit(void **state)
{
    (void)state;
    expect_413(0, SMALL_LIMIT + 1);
    expect_413(0, 64 * 1024);
    expect_413(1, SMALL_LIMIT + 1);
    expect_413(1, 200 * 1024);

    /* An announced oversize body is refused before it is sent: the answer comes
     * although the client never sends a byte of it. */
    char req[256];
    snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
    char *out = raw_exchange(small_port, req);
    assert_non_null(out);
    assert_true(!strncmp(out, "HTTP/1.1 413", 12));
    free(out);

    /* the server is still fine afterwards */
    check_echo(small_port, "POST", "ok", 2, 0);
}

static void test_request_headers(void **state)
{
    (void)state;
    struct curl_slist *h = curl_slist_append(NULL, "X-Custom-Thing: Value One");
    h = curl_slist_append(h, "x-lower: v2");
    reqspec_t rq = {.target = "/hdr", .headers = h};
    reply_t r;
    request(port, &rq, &r);
    curl_slist_free_all(h);
    assert_int_equal(r.status, 200);
    json_t *o = body_json(&r);
    assert_string_equal(jstr(o, "custom"), "Value One");
    assert_string_equal(jstr(o, "lower"), "v2");
    assert_true(json_is_true(json_object_get(o, "absent_null")));
    json_t *all = json_object_get(o, "all");
    /* enumeration gives the names as sent plus curl's own Host */
    assert_string_equal(jstr(all, "X-Custom-Thing"), "Value One");
    assert_string_equal(jstr(all, "x-lower"), "v2");
    assert_non_null(json_object_get(all, "Host"));
    assert_int_equal(json_integer_value(json_object_get(o, "n")), json_object_size(all));
    assert_true(json_integer_value(json_object_get(o, "n")) >= 3);
    assert_int_equal(json_integer_value(json_object_get(o, "capped")), 1);   /* max respected */
    json_decref(o);

    /* response headers set by the handler, plus the server's own */
    char v[128];
    assert_true(resp_header(&r, "x-reply", v, sizeof v));
    assert_string_equal(v, "r1");
    assert_true(resp_header(&r, "X-Colon", v, sizeof v));
    assert_string_equal(v, "a: b");
    assert_false(resp_header(&r, "X-Injected", v, sizeof v));
    assert_true(resp_header(&r, "Server", v, sizeof v));
    assert_string_equal(v, "VirgaTest");
    assert_true(resp_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    reply_free(&r);
}

static void test_request_id(void **state)
{
    (void)state;
    char seen[4][64];
    const char *targets[] = {"/a/one", "/a/two", "/nowhere", "/teapot"};
    for (int i = 0; i < 4; i++) {
        reply_t r;
        reqspec_t rq = {.target = targets[i]};
        request(port, &rq, &r);
        assert_true(resp_header(&r, "x-amz-request-id", seen[i], sizeof seen[i]));
        assert_true(strlen(seen[i]) >= 16);
        if (i < 2) {   /* the handler saw the same id, also as the logging request id */
            json_t *o = body_json(&r);
            assert_string_equal(jstr(o, "request_id"), seen[i]);
            assert_string_equal(jstr(o, "log_rid"), seen[i]);
            json_decref(o);
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
        reply_free(&r);
    }
    /* a 413 for a body that grew too large is a response too */
    char *b = calloc(1, 4096);
    reqspec_t rq = {.method = "POST", .target = "/echo", .body = b, .len = 4096, .chunked = 1};
    reply_t r;
    request(small_port, &rq, &r);
    free(b);
    assert_int_equal(r.status, 413);
    char v[64];
    assert_true(resp_header(&r, "x-amz-request-id", v, sizeof v));
    reply_free(&r);
}

/* The 413 sent as soon as Content-Length announces too much skips the request id. */
static void test_request_id_early_413(void **state)
{
    (void)state;
    char *out = raw_exchange(small_port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    assert_non_null(out);
    assert_true(!strncmp(out, "HTTP/1.1 413", 12));
    int has = strcasestr(out, "\r\nx-amz-request-id: ") != NULL;
    free(out);
    assert_true(has);
}

static void test_keepalive_and_served(void **state)
{
    (void)state;
    uint64_t before = http_requests_served(srv);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    /* Several requests on one connection: each sees its own raw URI. */
    const char *targets[] = {"/a/first?n=1", "/a/second?n=2", "/missing", "/a/third"};
    const char *paths[] = {"/a/first", "/a/second", NULL, "/a/third"};
    long conns = 0;
    for (size_t i = 0; i < ARRAY_LEN(targets); i++) {
        reply_t r;
        reqspec_t rq = {.target = targets[i]};
        /* curl_easy_reset keeps the connection cache, so the connection is reused */
        assert_int_equal(perform(h, port, &rq, &r), 0);
        long nc = -1;
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc);
        conns += nc;
        if (paths[i]) {
            assert_int_equal(r.status, 200);
            json_t *o = body_json(&r);
            assert_string_equal(jstr(o, "path"), paths[i]);
            json_decref(o);
        } else {
            assert_int_equal(r.status, 404);
        }
        reply_free(&r);
    }
    curl_easy_cleanup(h);
    assert_int_equal(conns, 1);   /* one TCP connection for all four */
    assert_int_equal(http_requests_served(srv) - before, ARRAY_LEN(targets));
    assert_int_equal(http_requests_served(NULL), 0);
}

#define NTHREADS 5
#define PER_THREAD 10

static void *client_thread(void *arg)
{
    intptr_t t = (intptr_t)arg;
    CURL *h = curl_easy_init();
    intptr_t ok = 0;
    for (int i = 0; h && i < PER_THREAD; i++) {
        char target[64], want[64];
        snprintf(target, sizeof target, "/any/t%d?i=%d", (int)t, i);
        snprintf(want, sizeof want, "i=%d", i);
        reqspec_t rq = {.target = target};
        reply_t r;
        if (perform(h, port, &rq, &r) == 0 && r.status == 200 && r.body.p) {
            json_t *o = json_loads(r.body.p, 0, NULL);
            char wantp[32];
            snprintf(wantp, sizeof wantp, "/any/t%d", (int)t);
            if (o && !strcmp(jstr(o, "path"), wantp) && !strcmp(jstr(o, "query"), want))
                ok++;
            json_decref(o);
        }
        reply_free(&r);
    }
    curl_easy_cleanup(h);
    return (void *)ok;
}

static void test_concurrent(void **state)
{
    (void)state;
    uint64_t before = http_requests_served(srv);
    pthread_t th[NTHREADS];
    for (intptr_t i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, client_thread, (void *)i), 0);
    intptr_t total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        total += (intptr_t)rv;
    }
    assert_int_equal(total, NTHREADS * PER_THREAD);
    assert_int_equal(http_requests_served(srv) - before, NTHREADS * PER_THREAD);
}

static void check_deferred(int p, const char *target)
{
    reply_t r;
    reqspec_t rq = {.target = target};
    request(p, &rq, &r);
    assert_int_equal(r.status, 200);
    char rid[64], x[16];
    assert_true(resp_header(&r, "x-amz-request-id", rid, sizeof rid));
    assert_true(resp_header(&r, "X-Deferred", x, sizeof x));
    json_t *o = body_json(&r);
    assert_string_equal(jstr(o, "route"), "deferred");
    assert_string_equal(jstr(o, "path"), "/defer");
    assert_string_equal(jstr(o, "method"), "GET");
    assert_string_equal(jstr(o, "request_id"), rid);
    json_decref(o);
    reply_free(&r);
}

static void *defer_client(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        check_deferred(port, i % 2 ? "/defer?30" : "/defer?0");
    return NULL;
}

static void test_deferred(void **state)
{
    (void)state;
    uint64_t before = http_requests_served(srv);
    check_deferred(port, "/defer?0");    /* completed before the handler returned */
    check_deferred(port, "/defer?100");  /* completed from another thread, later */
    /* more requests waiting at once than the server has threads (4) */
    pthread_t th[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(pthread_create(&th[i], NULL, defer_client, NULL), 0);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(http_requests_served(srv) - before, 42);

    /* the client leaves while its request is suspended: the late answer is dropped */
    int done0 = __atomic_load_n(&deferred_completed, __ATOMIC_SEQ_CST);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET /defer?200 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    usleep(50 * 1000);
    close(fd);
    for (int i = 0; i < 100 && __atomic_load_n(&deferred_completed, __ATOMIC_SEQ_CST) == done0; i++)
        usleep(10 * 1000);
    assert_int_equal(__atomic_load_n(&deferred_completed, __ATOMIC_SEQ_CST), done0 + 1);
    check_deferred(port, "/defer?0");    /* and the server goes on */
}

/* Stopping with a request suspended answers it (MHD cannot stop otherwise); the
 * completer's late http_complete is harmless. */
static void *defer_stop_client(void *arg)
{
    char *out = raw_exchange(*(int *)arg, "GET /defer?400 HTTP/1.1\r\nHost: x\r\n\r\n");
    return out;
}

static void test_deferred_stop(void **state)
{
    (void)state;
    int p = 0;
    http_server_t *s = start_on_free_port(routes, 0, &p);
    assert_non_null(s);
    int done0 = __atomic_load_n(&deferred_completed, __ATOMIC_SEQ_CST);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, defer_stop_client, &p), 0);
    usleep(150 * 1000);
    http_stop(s);
    void *out;
    pthread_join(t, &out);
    free(out);   /* a 503 or a closed connection: either is fine, a crash is not */
    for (int i = 0; i < 100 && __atomic_load_n(&deferred_completed, __ATOMIC_SEQ_CST) == done0; i++)
        usleep(10 * 1000);
    assert_int_equal(__atomic_load_n(&deferred_completed, __ATOMIC_SEQ_CST), done0 + 1);
}

/* A request in flight when http_stop is called: with drain time enough it is answered
 * whole, telling the client to close; one that outlasts the drain is cut (503 or closed). */
typedef struct drain_case {
    int port;
    const char *target;
} drain_case_t;

static void *drain_client(void *arg)
{
    drain_case_t *c = arg;
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", c->target);
    return raw_exchange(c->port, req);
}

static char *stop_while(int drain_ms, const char *target)
{
    drain_case_t c = {0, target};
    http_server_t *s = NULL;
    for (int tries = 0; tries < 5 && !s; tries++) {
        c.port = free_port();
        http_opts_t o = {.address = "127.0.0.1", .port = c.port, .threads = 2, .routes = routes, .drain_ms = drain_ms};
        verr_t e = {0};
        s = http_start(&o, &e);
    }
    assert_non_null(s);
    int started = __atomic_load_n(&deferred_started, __ATOMIC_SEQ_CST);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain_client, &c), 0);
    for (int i = 0; i < 500 && __atomic_load_n(&deferred_started, __ATOMIC_SEQ_CST) == started; i++)
        usleep(10 * 1000);   /* the request is in flight */
    http_stop(s);
    void *out;
    pthread_join(t, &out);
    return out;
}

static void test_stop_drains(void **state)
{
    (void)state;
    char *out = stop_while(10000, "/defer?300");
    assert_non_null(out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_true(strcasestr(out, "Connection: close") != NULL);
    free(out);
    out = stop_while(100, "/defer?3000");
    assert_true(!out || !strstr(out, "HTTP/1.1 200"));
    free(out);
}

static void test_start_errors_and_stop_null(void **state)
{
    (void)state;
    http_stop(NULL);   /* no-op, must not crash */
    verr_t e = {0};
    http_opts_t o = {.address = "not-an-address", .port = free_port(), .routes = routes};
    assert_null(http_start(&o, &e));
    assert_string_equal(e.code, "InvalidConfig");

    /* start and stop a second server on a fresh port: it answers, then it is gone */
    int p = 0;
    http_server_t *s = start_on_free_port(routes, 0, &p);
    assert_non_null(s);
    reply_t r;
    reqspec_t rq = {.target = "/a"};
    request(p, &rq, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    http_stop(s);
    CURL *h = curl_easy_init();
    assert_int_not_equal(perform(h, p, &rq, &r), 0);
    reply_free(&r);
    curl_easy_cleanup(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_raw_path_and_query),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_big_body_freed_as_made),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_request_id_early_413),
        cmocka_unit_test(test_keepalive_and_served),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_deferred_stop),
        cmocka_unit_test(test_stop_drains),
        cmocka_unit_test(test_start_errors_and_stop_null),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

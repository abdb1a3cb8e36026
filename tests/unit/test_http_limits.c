/* test_http_limits.c - unit tests for the refusals of common/http.c, against a real
 * libmicrohttpd server on 127.0.0.1 with a raw socket as the client (the point is the
 * wire). Covered: a request target and a header section over the limits, answered by
 * the server's refuse callback (why, limit, request id, the route never running) or as
 * plain text without one, also at three times the limit (libmicrohttpd's own HTML
 * answer starts only far beyond); a buffered body over max_body; a body that stalls
 * (stream and buffered routes) answered HTTP_BODY_TIMEOUT on the socket, the stream
 * route's done() still run; a body the client ends short (HTTP_BODY_INCOMPLETE); a
 * stream route that takes longer than the idle limit to take a piece is not timed out
 * (busy is not idle); a keep-alive request after a refusal still served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "free_port.h"
#include "http.h"
#include "log.h"

static http_server_t *srv, *plain_srv;
static int port, plain_port;
static int done_calls, route_calls;

/* ---- routes -------------------------------------------------------------------- */

static void h_ok(http_req_t *r, http_resp_t *p)
{
    (void)r;
    __atomic_add_fetch(&route_calls, 1, __ATOMIC_SEQ_CST);
    http_resp_set(p, 200, "text/plain", "ok", 2);
}

/* A stream route whose data() sleeps for ?slow (ms) on each piece. */
static int s_begin(http_req_t *req, void **ctx, http_resp_t *resp)
{
    (void)resp;
    long *ms = calloc(1, sizeof *ms);
    *ms = strstr(req->query, "slow") ? 1600 : 0;
    *ctx = ms;
    return 0;
}

static int s_data(void *ctx, const char *buf, size_t len, http_resp_t *resp)
{
    (void)buf;
    (void)len;
    (void)resp;
    long ms = *(long *)ctx;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

static void s_end(void *ctx, http_req_t *req, http_resp_t *resp)
{
    (void)ctx;
    (void)req;
    http_resp_set(resp, 200, "text/plain", "stored", 6);
}

static void s_done(void *ctx)
{
    __atomic_add_fetch(&done_calls, 1, __ATOMIC_SEQ_CST);
    free(ctx);
}

static const http_stream_t stream = {s_begin, s_data, s_end, s_done};

static const http_route_t routes[] = {
    {"PUT", "/up", NULL, &stream},
    {NULL, "/", h_ok, NULL},
    {NULL, NULL, NULL, NULL},
};

/* The refusal as the test API shapes it: "<why> <limit> <request id>". */
static void refuse(const http_req_t *req, http_refusal_t why, uint64_t limit, http_resp_t *resp)
{
    char *s = xasprintf("refused %d %llu %s", (int)why, (unsigned long long)limit, req->request_id);
    http_resp_take(resp, 499, "text/x-test", s, strlen(s));
}

/* ---- client ---------------------------------------------------------------------- */

enum { THEN_READ, THEN_HALF_CLOSE };

/* Send head then body; optionally end our side; return what comes back before the
 * server closes (at most 10 s of waiting: a bound, not a timing). */
static char *exchange(int p, const char *head, size_t body_len, int then)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return NULL;
    size_t n = strlen(head);
    assert_int_equal(write(fd, head, n), (ssize_t)n);
    char *body = malloc(body_len + 1);
    memset(body, 'b', body_len);
    if (body_len)
        assert_int_equal(write(fd, body, body_len), (ssize_t)body_len);
    free(body);
    if (then == THEN_HALF_CLOSE)
        shutdown(fd, SHUT_WR);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    while (len + 1 < cap && poll(&pf, 1, 10000) > 0) {
        ssize_t k = read(fd, out + len, cap - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    return out;
}

static char *big(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_request_target_too_long(void **state)
{
    (void)state;
    int before = route_calls;
    for (size_t pad = 8 * 1024; pad <= 24 * 1024; pad += 16 * 1024) {
        char *a = big('a', pad), *req = xasprintf("GET /x?%s HTTP/1.1\r\nHost: t\r\n\r\n", a);
        char *out = exchange(port, req, 0, THEN_READ);
        assert_non_null(strstr(out, "HTTP/1.1 499"));
        assert_non_null(strstr(out, "refused 0 8192 "));
        /* the request id of the refusal is the one in the header */
        char *rid = strstr(out, "x-amz-request-id: ");
        assert_non_null(rid);
        char id[40];
        snprintf(id, sizeof id, "%.36s", rid + 18);
        assert_non_null(strstr(strstr(out, "\r\n\r\n"), id));
        free(out);
        out = exchange(plain_port, req, 0, THEN_READ);
        assert_true(!strncmp(out, "HTTP/1.1 414", 12));
        assert_non_null(strstr(out, "text/plain"));
        free(out);
        free(req);
        free(a);
    }
    char *a = big('a', 8000), *req = xasprintf("GET /x?%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", a);
    char *out = exchange(port, req, 0, THEN_READ);
    assert_true(!strncmp(out, "HTTP/1.1 200", 12));   /* within the limit: routed */
    free(out);
    free(req);
    free(a);
    assert_int_equal(route_calls, before + 1);
}

static void test_header_section_too_large(void **state)
{
    (void)state;
    char *a = big('h', 9000);
    char *req = xasprintf("GET / HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n\r\n", a);
    char *out = exchange(port, req, 0, THEN_READ);
    assert_non_null(strstr(out, "refused 1 8192 "));
    free(out);
    out = exchange(plain_port, req, 0, THEN_READ);
    assert_true(!strncmp(out, "HTTP/1.1 431", 12));
    free(out);
    free(req);
    /* many small headers count as much as one big one */
    char *many = calloc(1, 200 * 64);
    for (int i = 0; i < 200; i++)
        snprintf(many + strlen(many), 64, "X-H%03d: %040d\r\n", i, i);
    req = xasprintf("GET / HTTP/1.1\r\nHost: t\r\n%s\r\n", many);
    out = exchange(port, req, 0, THEN_READ);
    assert_non_null(strstr(out, "refused 1 8192 "));
    free(out);
    free(req);
    free(many);
    free(a);
}

static void test_body_too_large(void **state)
{
    (void)state;
    char *out = exchange(port, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 0, THEN_READ);
    assert_non_null(strstr(out, "refused 2 1024 "));
    free(out);
}

static void test_stalled_bodies(void **state)
{
    (void)state;
    int before = done_calls;
    char *out = exchange(port, "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 100, THEN_READ);
    assert_non_null(strstr(out, "HTTP/1.1 499"));
    assert_non_null(strstr(out, "refused 3 1 "));
    assert_non_null(strstr(out, "Connection: close"));
    free(out);
    assert_int_equal(done_calls, before + 1);   /* the route let go of its upload */
    out = exchange(port, "PUT /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbbbbb\r\n", 0,
                   THEN_READ);
    assert_non_null(strstr(out, "refused 3 1 "));
    free(out);
    out = exchange(port, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n", 100, THEN_READ);
    assert_non_null(strstr(out, "refused 3 1 "));
    free(out);
    out = exchange(plain_port, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n", 100, THEN_READ);
    assert_true(!strncmp(out, "HTTP/1.1 408", 12));
    free(out);
}

static void test_short_bodies(void **state)
{
    (void)state;
    int before = done_calls;
    char *out = exchange(port, "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 100, THEN_HALF_CLOSE);
    assert_non_null(strstr(out, "refused 4 0 "));
    free(out);
    assert_int_equal(done_calls, before + 1);
    out = exchange(port, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n", 10, THEN_HALF_CLOSE);
    assert_non_null(strstr(out, "refused 4 0 "));
    free(out);
}

/* The route takes 1.6 s per piece, the idle limit is 1 s: the client is not idle. */
static void test_busy_route_is_not_idle(void **state)
{
    (void)state;
    char *out = exchange(port, "PUT /up?slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n\r\n",
                         10, THEN_READ);
    assert_true(!strncmp(out, "HTTP/1.1 200", 12));
    assert_non_null(strstr(out, "stored"));
    free(out);
}

/* A refusal closes its connection; the next connection is served as usual. */
static void test_served_after_refusals(void **state)
{
    (void)state;
    char *out = exchange(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 0, THEN_READ);
    assert_true(!strncmp(out, "HTTP/1.1 200", 12));
    free(out);
}

/* ---- setup --------------------------------------------------------------------- */

static http_server_t *start(http_refuse_fn fn, int *port_out)
{
    for (int tries = 0; tries < 5; tries++) {
        int p = free_port();
        http_opts_t o = {.address = "127.0.0.1", .port = p, .threads = 2, .max_body = 1024, .body_idle_s = 1,
                         .refuse = fn, .routes = routes};
        verr_t e = {0};
        http_server_t *s = p > 0 ? http_start(&o, &e) : NULL;
        if (s) {
            *port_out = p;
            return s;
        }
    }
    return NULL;
}

static int group_setup(void **state)
{
    (void)state;
    log_init("test_http_limits", "warn", "text");
    srv = start(refuse, &port);
    plain_srv = start(NULL, &plain_port);
    return srv && plain_srv ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    http_stop(srv);
    http_stop(plain_srv);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_target_too_long),
        cmocka_unit_test(test_header_section_too_large),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_stalled_bodies),
        cmocka_unit_test(test_short_bodies),
        cmocka_unit_test(test_busy_route_is_not_idle),
        cmocka_unit_test(test_served_after_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

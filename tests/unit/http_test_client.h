/* http_test_client.h - the client side of the unit tests of common/http.c (test_http.c,
 * test_http_stream.c): requests with libcurl as the wire sees them (the target sent as is,
 * a body in small chunks when asked), response headers looked up by name, a raw socket
 * exchange where curl would hide the wire behaviour, and a server of the test's routes
 * started on a free loopback port. Header-only, like free_port.h: each unit test is one
 * source file linked alone. */
#ifndef VIRGA_HTTP_TEST_CLIENT_H
#define VIRGA_HTTP_TEST_CLIENT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "free_port.h"
#include "http.h"
#include "log.h"

typedef struct buf {
    char *p;
    size_t n;
} buf_t;

typedef struct reply {
    long status;
    buf_t body;
    buf_t hdrs;
} reply_t;

static inline size_t sink(char *d, size_t sz, size_t nm, void *ud)
{
    buf_t *b = ud;
    size_t n = sz * nm;
    char *np = realloc(b->p, b->n + n + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

struct src {
    const char *p;
    size_t n, off, step;
};

/* Hand curl the body in small pieces so chunked uploads really are many chunks. */
static inline size_t source(char *d, size_t sz, size_t nm, void *ud)
{
    struct src *s = ud;
    size_t n = sz * nm;
    if (n > s->step)
        n = s->step;
    if (n > s->n - s->off)
        n = s->n - s->off;
    memcpy(d, s->p + s->off, n);
    s->off += n;
    return n;
}

static inline void reply_free(reply_t *r)
{
    free(r->body.p);
    free(r->hdrs.p);
    memset(r, 0, sizeof *r);
}

/* Value of response header `name` (case-insensitive) into out; 0 if absent. */
static inline int resp_header(const reply_t *r, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *l = r->hdrs.p; l && *l;) {
        const char *e = strstr(l, "\r\n");
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len > nl && !strncasecmp(l, name, nl) && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, outsz, "%.*s", (int)(len - (size_t)(v - l)), v);
            return 1;
        }
        l = e ? e + 2 : l + len;
    }
    return 0;
}

typedef struct reqspec {
    const char *method;
    const char *target;          /* path and query as they go on the wire */
    const char *body;
    size_t len;
    int chunked;
    struct curl_slist *headers;
} reqspec_t;

static inline int perform(CURL *h, int p, const reqspec_t *rq, reply_t *out)
{
    memset(out, 0, sizeof *out);
    char url[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", p, rq->target);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->hdrs);
    struct src s = {rq->body, rq->len, 0, 700};
    struct curl_slist *hl = NULL;
    for (struct curl_slist *i = rq->headers; i; i = i->next)
        hl = curl_slist_append(hl, i->data);
    if (rq->chunked) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, source);
        curl_easy_setopt(h, CURLOPT_READDATA, &s);
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    } else if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    }
    if (rq->method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    return rc == CURLE_OK ? 0 : -1;
}

/* One request on a fresh handle; fails the test if the transfer itself fails. */
static inline void request(int p, const reqspec_t *rq, reply_t *out)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    int rc = perform(h, p, rq, out);
    curl_easy_cleanup(h);
    if (rc != 0)
        fail_msg("transfer %s %s failed", rq->method ? rq->method : "GET", rq->target);
}

static inline json_t *body_json(const reply_t *r)
{
    json_error_t je;
    json_t *o = r->body.p ? json_loads(r->body.p, 0, &je) : NULL;
    if (!o)
        fail_msg("response body is not JSON: %s", r->body.p ? r->body.p : "(none)");
    return o;
}

static inline const char *jstr(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* Start a server on a free port, retrying if another process grabbed the port. */
static inline http_server_t *start_on_free_port(const http_route_t *routes, size_t max_body, int *port_out)
{
    for (int tries = 0; tries < 5; tries++) {
        int p = free_port();
        if (p <= 0)
            continue;
        http_opts_t o = {.address = "127.0.0.1", .port = p, .threads = 4, .max_body = max_body,
                         .server_name = "VirgaTest", .routes = routes};
        verr_t e = {0};
        http_server_t *s = http_start(&o, &e);
        if (s) {
            *port_out = p;
            return s;
        }
    }
    return NULL;
}

/* Raw HTTP over a socket: send `req`, return what the server answers within 5 s. */
static inline char *raw_exchange(int p, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    size_t n = strlen(req);
    if (write(fd, req, n) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    size_t cap = 8192, len = 0;
    char *out = calloc(1, cap);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    /* read until the server closes or goes quiet once a response has begun */
    while (len + 1 < cap && poll(&pf, 1, len ? 300 : 3000) > 0) {
        ssize_t k = read(fd, out + len, cap - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    out[len] = 0;
    close(fd);
    return out;
}

/* The two servers a test file runs for its whole length, on the same routes: one with
 * the default body limit (1 MiB), one with small_limit. Logging and curl set up first. */
static inline int http_test_servers_start(const char *name, const http_route_t *routes, size_t small_limit,
                                          http_server_t **srv, int *port, http_server_t **small_srv, int *small_port)
{
    log_init(name, "warn", "text");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    *srv = start_on_free_port(routes, 0, port);
    *small_srv = start_on_free_port(routes, small_limit, small_port);
    return *srv && *small_srv ? 0 : -1;
}

static inline void http_test_servers_stop(http_server_t **srv, http_server_t **small_srv)
{
    http_stop(*srv);
    http_stop(*small_srv);
    *srv = *small_srv = NULL;
    curl_global_cleanup();
}

#endif

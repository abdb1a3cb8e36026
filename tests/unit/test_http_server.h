/* test_http_server.h - for unit tests of HTTP clients: a deliberately simple HTTP/1.0-style
 * server in the test's own process, on a free loopback port, one thread a connection,
 * every answer "Connection: close". Raw sockets, not common/http.c, so that a test's
 * handler can misbehave on purpose: stall, trickle, send more than it announced, answer
 * without Content-Length. The server reads a request's head and hands it to the test's
 * handler, which writes the whole answer; the connection is closed when it returns.
 * Header-only because each unit test is one source file linked alone (like free_port.h);
 * one server a test binary. */
#ifndef VIRGA_TEST_HTTP_SERVER_H
#define VIRGA_TEST_HTTP_SERVER_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "free_port.h"

#define TEST_HTTP_REQ_CAP (1 << 20)   /* the most of a request (head and body) read */

/* One request as read. */
typedef struct {
    int fd;                   /* the connection: the handler writes its answer here */
    char method[16];          /* "" when the request line could not be read */
    char path[256];           /* as sent, query string included */
    char *buf;                /* what arrived: the head, then what came of the body; NUL-terminated */
    size_t got;               /* bytes in buf */
    size_t head_len;          /* bytes of the head through its blank line; 0 when it never ended */
} test_http_req_t;

typedef void (*test_http_handler_t)(test_http_req_t *r);

static struct {
    int fd, port;
    pthread_t acceptor;
    test_http_handler_t handle;
} test_http;

static inline void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static inline void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

static inline void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The head of an answer: "HTTP/1.1 <status>", the header lines in extra (each ending in
 * "\r\n"; NULL for none), Content-Length unless length < 0, "Connection: close". */
static inline void test_http_head(int fd, const char *status, const char *extra, long long length)
{
    char h[512], cl[48] = "";
    if (length >= 0)
        snprintf(cl, sizeof cl, "Content-Length: %lld\r\n", length);
    snprintf(h, sizeof h, "HTTP/1.1 %s\r\n%s%sConnection: close\r\n\r\n", status, extra ? extra : "", cl);
    send_str(fd, h);
}

/* A whole answer: the head, with Content-Length n, then the n bytes of body. */
static inline void test_http_respond(int fd, const char *status, const char *extra, const void *body, size_t n)
{
    test_http_head(fd, status, extra, (long long)n);
    send_all(fd, body, n);
}

/* An S3-style error: status with an XML body naming code and message. */
static inline void test_http_s3_error(int fd, const char *status, const char *code, const char *message)
{
    char b[512];
    int n = snprintf(b, sizeof b, "<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>%s</Message></Error>", code,
                     message);
    test_http_respond(fd, status, NULL, b, (size_t)n);
}

/* A 200 announcing length bytes that sends 100 of them, then nothing for 5 s. */
static inline void test_http_stall(int fd, long long length)
{
    char x[100];
    test_http_head(fd, "200 OK", NULL, length);
    memset(x, 'x', sizeof x);
    send_all(fd, x, sizeof x);
    sleep_ms(5000);
}

/* The value of header name in the request head, or NULL; copied into out. */
static inline const char *test_http_header(const test_http_req_t *r, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(r->buf, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, name, nl) && l[2 + nl] == ':') {
            const char *v = l + 3 + nl;
            v += strspn(v, " ");
            snprintf(out, outsz, "%.*s", (int)strcspn(v, "\r\n"), v);
            return out;
        }
    }
    return NULL;
}

/* Reads on until want bytes of body are in r->buf after the head (or the peer stops, or
 * the buffer is full); the body's length so far. */
static inline size_t test_http_read_body(test_http_req_t *r, size_t want)
{
    while (r->got - r->head_len < want && r->got < TEST_HTTP_REQ_CAP) {
        ssize_t n = recv(r->fd, r->buf + r->got, TEST_HTTP_REQ_CAP - r->got, 0);
        if (n <= 0)
            break;
        r->got += (size_t)n;
    }
    r->buf[r->got] = '\0';
    return r->got - r->head_len;
}

static inline void *test_http_serve_conn(void *arg)
{
    test_http_req_t r = {.fd = (int)(intptr_t)arg, .buf = malloc(TEST_HTTP_REQ_CAP + 1)};
    char *end = NULL;
    r.buf[0] = '\0';
    while (r.got < TEST_HTTP_REQ_CAP && !(end = strstr(r.buf, "\r\n\r\n"))) {
        ssize_t n = recv(r.fd, r.buf + r.got, TEST_HTTP_REQ_CAP - r.got, 0);
        if (n <= 0)
            break;
        r.got += (size_t)n;
        r.buf[r.got] = '\0';
    }
    r.head_len = end ? (size_t)(end + 4 - r.buf) : 0;
    sscanf(r.buf, "%15s %255s", r.method, r.path);
    test_http.handle(&r);
    free(r.buf);
    close(r.fd);
    return NULL;
}

static inline void *test_http_accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(test_http.fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, test_http_serve_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

/* Starts the server on a free loopback port, every request to handle; 0, or -1. */
static inline int test_http_start(test_http_handler_t handle)
{
    signal(SIGPIPE, SIG_IGN);
    test_http.handle = handle;
    test_http.port = free_port();
    test_http.fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(test_http.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)test_http.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(test_http.fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(test_http.fd, 64) < 0)
        return -1;
    return pthread_create(&test_http.acceptor, NULL, test_http_accept_loop, NULL);
}

/* Stops accepting (connections being served finish on their own threads). */
static inline void test_http_stop(void)
{
    shutdown(test_http.fd, SHUT_RDWR);
    close(test_http.fd);
    pthread_join(test_http.acceptor, NULL);
}

/* test_http_stop as a cmocka group teardown. */
static inline int test_http_group_teardown(void **state)
{
    (void)state;
    test_http_stop();
    return 0;
}

/* "http://127.0.0.1:<port><path>", in a buffer of the calling thread's. */
static inline char *test_http_url(const char *path)
{
    static __thread char u[192];
    snprintf(u, sizeof u, "http://127.0.0.1:%d%s", test_http.port, path);
    return u;
}

#endif

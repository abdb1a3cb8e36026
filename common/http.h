/* http.h - the HTTP server every public endpoint uses (libmicrohttpd underneath).
 *
 * A thread pool with epoll serves connections; a request's body is collected up to a
 * configured limit: a Content-Length over it is refused at once, without reading
 * the body; a chunked body that grows past it is discarded as it arrives (memory stays
 * bounded) and refused when it ends. Stream routes see the body as it arrives instead
 * (no size limit here). Routing is a table of
 * (method, path prefix, handler) rows. Handlers see the raw path and raw query string
 * exactly as the client sent them, because SigV4 signs the raw form. Every request gets
 * a request id (also set as the logging request id) and an access log line.
 *
 * Refusals of the HTTP layer itself (request target or header section over the limit,
 * a buffered body too large, a body that stalls or ends short) are rendered by the
 * server's refuse callback, so each API answers in its own error shape; http.c stays
 * protocol-neutral. A body idle for body_idle_s is answered by that callback (as
 * HTTP_BODY_TIMEOUT) and its connection closed: see http_idle.h. */
#ifndef VIRGA_HTTP_H
#define VIRGA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct MHD_Connection;

typedef struct http_req {
    const char *method;
    const char *path;         /* raw, percent-encoded, without the query */
    const char *query;        /* raw, without '?', "" when none */
    const char *body;
    size_t body_len;
    char request_id[40];
    char remote[64];
    struct MHD_Connection *conn;
    void *app;
} http_req_t;

/* A streamed response body: fill buf with up to max bytes from position pos; return
 * the count, or -1 on error (the connection is closed: the client sees a short body). */
typedef long (*http_reader_fn)(void *arg, uint64_t pos, char *buf, size_t max);

typedef struct http_resp {
    int status;
    char *body;               /* owned by the response; freed after sending */
    void (*body_free)(void *);   /* how body is freed: NULL, free() (http_resp_take_as) */
    size_t len;
    char content_type[96];
    char *headers[32];        /* "Name: value" strings, owned */
    int nheaders;
    http_reader_fn reader;    /* streamed body instead of body/len (http_resp_stream) */
    void *reader_arg;
    void (*reader_free)(void *arg);
    uint64_t reader_size;
} http_resp_t;

/* Return value is ignored; the handler fills resp (default 200, empty). */
typedef void (*http_handler_fn)(http_req_t *req, http_resp_t *resp);

/* A route that takes its request body as it arrives instead of buffered (uploads of
 * any size with bounded memory). The request (path, query, headers, request id) stays
 * valid from begin to end. */
typedef struct http_stream {
    /* Headers are in. Return 0 to take the body (set *ctx), or fill resp and return -1
     * to answer at once (the body is then discarded unread where possible), or
     * HTTP_STREAM_WAIT (below) to run again later. If *ctx was set, done() frees it
     * either way. */
    int (*begin)(http_req_t *req, void **ctx, http_resp_t *resp);
    /* A piece of the body; return -1 after filling resp to refuse the body: the rest of
     * it is discarded and resp is the answer when it ends (HTTP cannot answer sooner
     * without closing the connection on a client that is still sending). */
    int (*data)(void *ctx, const char *buf, size_t len, http_resp_t *resp);
    /* The whole body arrived: fill resp. */
    void (*end)(void *ctx, http_req_t *req, http_resp_t *resp);
    /* Always called last, also when the client went away mid-body: free ctx. */
    void (*done)(void *ctx);
} http_stream_t;

typedef struct http_route {
    const char *method;       /* NULL = any */
    const char *prefix;       /* path prefix ("/" matches all); NULL ends the table */
    http_handler_fn fn;       /* buffered body (at most max_body) ... */
    const http_stream_t *stream;   /* ... or streamed body (no size limit here) */
} http_route_t;

/* What the HTTP layer refused, before or instead of the route's answer. */
typedef enum http_refusal {
    HTTP_URI_TOO_LONG,        /* request target over max_uri */
    HTTP_HEADERS_TOO_LARGE,   /* header section over max_headers */
    HTTP_BODY_TOO_LARGE,      /* buffered body over max_body */
    HTTP_BODY_TIMEOUT,        /* no body byte for body_idle_s seconds */
    HTTP_BODY_INCOMPLETE,     /* the client ended its side before the declared length */
} http_refusal_t;

/* Render a refusal into resp in the API's own error shape. limit is the limit broken
 * (bytes, or seconds for HTTP_BODY_TIMEOUT). Runs on the connection's thread; req's
 * method, path, query, request_id and header lookups are valid; the body is not. */
typedef void (*http_refuse_fn)(const http_req_t *req, http_refusal_t why, uint64_t limit, http_resp_t *resp);
/* The message every API gives for a refusal (AWS's wording where it has one). */
void http_refusal_message(http_refusal_t why, uint64_t limit, char *out, size_t n);

typedef struct http_opts {
    const char *address;      /* "127.0.0.1" */
    int port;
    int threads;              /* thread pool size (default 4) */
    size_t max_body;          /* bytes (default 1 MiB) */
    size_t max_uri;           /* request target bytes (default 8 KiB) */
    size_t max_headers;       /* header section bytes (default 8 KiB) */
    int body_idle_s;          /* a body idle this long is refused (default 20 s) */
    http_refuse_fn refuse;    /* NULL: plain-text refusals */
    const char *server_name;  /* Server: header */
    const http_route_t *routes;   /* ends with a NULL prefix; first match wins */
    void *app;
    int drain_ms;             /* http_stop lets requests in flight end for this long (0: none) */
    int listen_fd;            /* > 0: serve this bound, listening socket instead of address:port
                                 (e.g. one opened in another network namespace); http_stop,
                                 or a failed http_start, closes it */
} http_opts_t;

typedef struct http_server http_server_t;

http_server_t *http_start(const http_opts_t *o, verr_t *e);
/* Stop: no new connection is taken; requests in flight may end for up to drain_ms (their
 * answers close the connection, so keep-alive clients go elsewhere); then every
 * connection is closed (a request still running sees its body cut, and its stream
 * route's done() runs) and the threads end. */
void http_stop(http_server_t *s);
uint64_t http_requests_served(const http_server_t *s);

/* Answering later (a buffered route whose answer needs a bus round trip): the handler
 * calls http_defer(req) and returns; resp is then ignored and the connection is
 * suspended, holding no thread. Later, from any thread, http_complete(d, resp) takes
 * resp's contents as the answer (logged, counted and sent with the request id like any
 * other); it must be called exactly once per http_defer, also when the client has gone
 * meanwhile (the answer is then dropped). Until then req's path, query, body, method,
 * request_id and remote stay valid; header lookups do not (the connection may be gone).
 * http_stop answers requests still deferred with 503. */
typedef struct http_deferred http_deferred_t;
http_deferred_t *http_defer(http_req_t *req);
void http_complete(http_deferred_t *d, http_resp_t *resp);

/* Waiting in a stream route (an answer another service must give first: a signing key
 * before the body may be taken, an account lookup before the answer): begin or end calls
 * http_stream_wait(req), keeps the handle and returns (begin returns HTTP_STREAM_WAIT).
 * The connection is suspended (in begin with its body unread) and holds no thread until
 * http_stream_wake(w), called exactly once per wait from any thread; the same callback
 * (begin or end) then runs again on a server thread with the same *ctx and decides as on
 * its first call: it may wait again, any number of times, and end may also defer its
 * answer (http_defer). What end left in resp when it waited is dropped. A server that
 * stops meanwhile answers 503 and the callback does not run again; *ctx is freed by
 * done() as always. Headers can be read after a wait (the connection is awake then). */
#define HTTP_STREAM_WAIT 1
http_deferred_t *http_stream_wait(http_req_t *req);
void http_stream_wake(http_deferred_t *w);

/* Header lookup (case-insensitive); NULL when absent. */
const char *http_header(const http_req_t *r, const char *name);
/* Collect all request headers as parallel arrays (names/values point into MHD memory,
 * valid during the request). Returns the count, at most max. */
size_t http_headers(const http_req_t *r, const char **names, const char **values, size_t max);

/* Set the body (copied) and content type. */
void http_resp_set(http_resp_t *resp, int status, const char *content_type, const char *body, size_t len);
/* Stream the body from reader (size bytes, sent with Content-Length); reader_free(arg)
 * runs when the response is done with. */
void http_resp_stream(http_resp_t *resp, int status, const char *content_type, uint64_t size,
                      http_reader_fn reader, void *arg, void (*reader_free)(void *));
/* Take ownership of body (malloc'd). */
void http_resp_take(http_resp_t *resp, int status, const char *content_type, char *body, size_t len);
/* The same for a body that body_free frees (a bigbuf.h buffer: bigbuf_free). */
void http_resp_take_as(http_resp_t *resp, int status, const char *content_type, char *body, size_t len,
                       void (*body_free)(void *));
void http_resp_header(http_resp_t *resp, const char *name, const char *value);
/* Drop what a response holds (body, headers, stream) without sending it; keeps status. */
void http_resp_reset(http_resp_t *resp);

#endif

/* http.c - libmicrohttpd wrapper: raw URI capture, bounded requests, table routing. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_idle.h"
#include "ids.h"
#include "log.h"

struct http_server {
    struct MHD_Daemon *d;
    http_opts_t o;
    uint64_t served;
    pthread_mutex_t mu;       /* guards deferred and stopping */
    struct conn_state *deferred;   /* requests answered later (http_defer) */
    int stopping;
    int stopped;              /* http_stop returned while completers still held states */
    int draining;             /* http_stop waits for requests in flight: answers close */
    int active;               /* requests started and not yet completed */
    http_idle_t *idle;        /* the stalled-body watchdog */
};

/* A deferred request's life: the handler that deferred it is still running, then its
 * connection is suspended, until a response is stored (DONE) and the connection
 * resumed. Apart from that, conn_state.closed says MHD is done with the connection
 * (answered, the client left, or the server stopped): nothing may touch it then. */
enum defer_state { D_RUNNING = 0, D_SUSPENDED, D_DONE };

/* Per-request state, created in the URI log callback (which sees the raw URI). */
struct conn_state {
    char *raw_uri;            /* split in place into path and query at the first call */
    size_t uri_len;           /* the request target's length as sent */
    char *body;
    size_t len, cap;
    int too_large;
    int started;
    int answered;             /* a response is queued; discard whatever still arrives */
    http_req_t req;
    const http_route_t *route;
    void *sctx;               /* the stream route's context */
    int sctx_live;
    int failed;               /* a stream route refused the body mid-way: ... */
    http_resp_t pending;      /* ... this answer goes out when the body has ended */
    char *method;             /* a copy: it outlives MHD's for deferred requests */
    int in_body;              /* the body is arriving: listed in srv->idle */
    int begin_wait;           /* the stream route waits (http_stream_wait), in begin ... */
    int end_wait;             /* ... or in end */
    int begin_waited;         /* the deferred state is a wait's, not a deferred answer's */
    http_idle_entry_t idle;

    /* deferred requests only (http_defer): st is shared by the connection and the
     * completer, each holding a reference, and freed by the last to let go */
    int deferred;
    pthread_mutex_t dmu;
    int drefs;
    enum defer_state dstate;
    int closed;               /* MHD has finished with the connection */
    http_resp_t dresp;        /* the answer once DONE */
    http_server_t *srv;
    struct conn_state *dprev, *dnext;   /* in srv->deferred */
};

static void state_free(struct conn_state *st)
{
    free(st->raw_uri);
    free(st->body);
    free(st->method);
    free(st);
}

/* Drop one reference to a deferred request's state. */
static void defer_release(struct conn_state *st)
{
    pthread_mutex_lock(&st->dmu);
    int left = --st->drefs;
    pthread_mutex_unlock(&st->dmu);
    if (left)
        return;
    http_server_t *s = st->srv;
    pthread_mutex_lock(&s->mu);
    if (st->dprev)
        st->dprev->dnext = st->dnext;
    else
        s->deferred = st->dnext;
    if (st->dnext)
        st->dnext->dprev = st->dprev;
    int free_server = s->stopped && !s->deferred;   /* the last one out after http_stop */
    pthread_mutex_unlock(&s->mu);
    if (free_server) {
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
    http_resp_reset(&st->dresp);   /* an answer never sent: the client had gone */
    pthread_mutex_destroy(&st->dmu);
    state_free(st);
}

static enum MHD_Result resumed(http_server_t *s, struct conn_state *st);

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    struct conn_state *st = xcalloc(1, sizeof *st);
    st->srv = cls;
    st->raw_uri = xstrdup(uri);
    st->uri_len = strlen(uri);
    return st;
}

static void refuse_on_socket(http_server_t *s, struct conn_state *st, http_refusal_t why);

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)c;
    http_server_t *s = cls;
    struct conn_state *st = *con_cls;
    if (st && st->in_body) {
        /* the body never ended: the client stalled (the watchdog shut the read side, or
         * libmicrohttpd's own timeout struck) or ended its side early. libmicrohttpd has
         * not closed the socket yet: the answer can still go out on it. */
        int fired = http_idle_remove(s->idle, &st->idle);
        st->in_body = 0;
        if (!st->answered && (t == MHD_REQUEST_TERMINATED_CLIENT_ABORT || t == MHD_REQUEST_TERMINATED_READ_ERROR ||
                              t == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED))
            refuse_on_socket(s, st, fired == HTTP_IDLE_TIMEOUT || t == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                                        ? HTTP_BODY_TIMEOUT : HTTP_BODY_INCOMPLETE);
    }
    if (st) {
        if (st->started)
            __atomic_sub_fetch(&st->srv->active, 1, __ATOMIC_SEQ_CST);
        if (st->failed && !st->answered)
            http_resp_reset(&st->pending);
        if (st->sctx_live && st->route->stream->done)
            st->route->stream->done(st->sctx);
        if (st->deferred) {
            /* the completer may still hold it: the late http_complete finds it closed */
            pthread_mutex_lock(&st->dmu);
            st->closed = 1;
            pthread_mutex_unlock(&st->dmu);
            defer_release(st);
        } else {
            state_free(st);
        }
    }
    *con_cls = NULL;
}

struct reader_box {
    http_reader_fn fn;
    void *arg;
    void (*free_fn)(void *);
};

static ssize_t reader_adapter(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct reader_box *b = cls;
    long n = b->fn(b->arg, pos, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : (ssize_t)n;
}

static void reader_release(void *cls)
{
    struct reader_box *b = cls;
    if (b->free_fn)
        b->free_fn(b->arg);
    free(b);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, http_resp_t *resp, const http_req_t *req,
                                 const char *server_name, int last)
{
    struct MHD_Response *r;
    if (resp->reader) {
        struct reader_box *b = xmalloc(sizeof *b);
        *b = (struct reader_box){resp->reader, resp->reader_arg, resp->reader_free};
        r = MHD_create_response_from_callback(resp->reader_size, 256 * 1024, reader_adapter, b, reader_release);
        resp->reader = NULL;
    } else if (resp->body && resp->body_free) {
        r = MHD_create_response_from_buffer_with_free_callback(resp->len, resp->body, resp->body_free);
        resp->body = NULL;
        resp->body_free = NULL;
    } else {
        r = MHD_create_response_from_buffer(resp->len, resp->body ? resp->body : (char *)"",
                                            resp->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        resp->body = NULL;
    }
    if (resp->content_type[0])
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    if (req)
        MHD_add_response_header(r, "x-amz-request-id", req->request_id);
    MHD_add_response_header(r, "Server", server_name ? server_name : "Virga");
    if (last)   /* the server is stopping: the client's next request goes elsewhere */
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    for (int i = 0; i < resp->nheaders; i++) {
        char *h = resp->headers[i];
        char *colon = strchr(h, ':');
        if (colon) {
            *colon = 0;
            MHD_add_response_header(r, h, colon + 2);
        }
        free(h);
    }
    resp->nheaders = 0;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Queue resp as this request's answer, once; log and count it. */
static enum MHD_Result answer(http_server_t *s, struct conn_state *st, http_resp_t *resp)
{
    st->answered = 1;
    __atomic_add_fetch(&s->served, 1, __ATOMIC_RELAXED);
    log_debug("%s %s %s -> %d", st->req.remote, st->req.method, st->req.path, resp->status);
    return send_resp(st->req.conn, resp, &st->req, s->o.server_name,
                     __atomic_load_n(&s->draining, __ATOMIC_SEQ_CST));
}

/* A refusal of the HTTP layer, in the server's own error shape (opts.refuse), or as
 * plain text for a server without one. */
static void render_refusal(http_server_t *s, struct conn_state *st, http_refusal_t why, http_resp_t *resp)
{
    static const struct {
        int status;
        const char *log;
    } plain[] = {
        [HTTP_URI_TOO_LONG] = {414, "request target over %llu bytes"},
        [HTTP_HEADERS_TOO_LARGE] = {431, "header section over %llu bytes"},
        [HTTP_BODY_TOO_LARGE] = {413, "body over %llu bytes"},
        [HTTP_BODY_TIMEOUT] = {408, "body idle for %llu s"},
        [HTTP_BODY_INCOMPLETE] = {400, "body shorter than declared%.0llu"},
    };
    const uint64_t limit[] = {
        [HTTP_URI_TOO_LONG] = s->o.max_uri, [HTTP_HEADERS_TOO_LARGE] = s->o.max_headers,
        [HTTP_BODY_TOO_LARGE] = s->o.max_body, [HTTP_BODY_TIMEOUT] = (uint64_t)s->o.body_idle_s,
        [HTTP_BODY_INCOMPLETE] = 0,
    };
    *resp = (http_resp_t){.status = 200};
    if (s->o.refuse) {
        s->o.refuse(&st->req, why, limit[why], resp);
    } else {
        char text[256];
        http_refusal_message(why, limit[why], text, sizeof text - 1);
        size_t l = strlen(text);
        text[l] = '\n';
        text[l + 1] = 0;
        http_resp_set(resp, plain[why].status, "text/plain", text, strlen(text));
    }
    char what[96];
    snprintf(what, sizeof what, plain[why].log, (unsigned long long)limit[why]);
    log_info("%s %.200s -> %d (%s)", st->req.method, st->req.path, resp->status, what);
}

/* Refused before the body is read: counted, logged and given a request id like any
 * answer; libmicrohttpd closes the connection instead of reading the body. */
static enum MHD_Result refuse_now(http_server_t *s, struct conn_state *st, http_refusal_t why)
{
    http_resp_t resp;
    render_refusal(s, st, why, &resp);
    return answer(s, st, &resp);
}

static enum MHD_Result too_large(http_server_t *s, struct conn_state *st)
{
    st->too_large = 1;
    return refuse_now(s, st, HTTP_BODY_TOO_LARGE);
}

/* A body that never ended: libmicrohttpd takes no response in mid-body, so the answer
 * is written on the socket here, just before libmicrohttpd closes it. */
static void refuse_on_socket(http_server_t *s, struct conn_state *st, http_refusal_t why)
{
    log_set_request_id(st->req.request_id);
    http_resp_t resp;
    render_refusal(s, st, why, &resp);
    st->answered = 1;
    __atomic_add_fetch(&s->served, 1, __ATOMIC_RELAXED);
    http_idle_answer(st->idle.fd, &resp, st->req.request_id, s->o.server_name);
    log_set_request_id(NULL);
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    *(size_t *)cls += strlen(k) + (v ? strlen(v) : 0) + 4;   /* "k: v\r\n" */
    return MHD_YES;
}

/* The request target and the header section against this server's limits. */
static int over_limits(http_server_t *s, struct conn_state *st, http_refusal_t *why)
{
    size_t hdr = 0;
    if (st->uri_len > s->o.max_uri) {
        *why = HTTP_URI_TOO_LONG;
        return 1;
    }
    MHD_get_connection_values(st->req.conn, MHD_HEADER_KIND, count_header, &hdr);
    if (hdr > s->o.max_headers) {
        *why = HTTP_HEADERS_TOO_LARGE;
        return 1;
    }
    return 0;
}

/* A body will arrive (a length above zero, or chunked): watch it until it has. */
static void watch_body(http_server_t *s, struct conn_state *st, struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    if (!(cl && strtoull(cl, NULL, 10) > 0) && !te)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->in_body = 1;
    http_idle_add(s->idle, &st->idle, ci ? (int)ci->connect_fd : -1);
}

/* First call for a request: split the raw URI, give it an id, pick its route. */
static void start_request(http_server_t *s, struct conn_state *st, struct MHD_Connection *c, const char *method)
{
    http_req_t *req = &st->req;
    st->method = xstrdup(method);
    req->method = st->method;
    req->conn = c;
    req->app = s->o.app;
    char *q = strchr(st->raw_uri, '?');
    if (q)
        *q = 0;
    req->path = st->raw_uri;
    req->query = q ? q + 1 : "";
    req->body = "";
    ids_uuid(req->request_id);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((struct sockaddr_in *)ci->client_addr)->sin_addr;
        snprintf(req->remote, sizeof req->remote, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    }
    const http_route_t *r = s->o.routes;
    for (; r && r->prefix; r++)
        if ((!r->method || !strcmp(r->method, method)) && !strncmp(req->path, r->prefix, strlen(r->prefix)))
            break;
    st->route = r && r->prefix ? r : NULL;
}

static void buffer_body(http_server_t *s, struct conn_state *st, const char *upload, size_t n)
{
    if (st->len + n + 1 > st->cap) {
        st->cap = (st->len + n + 1) * 2;
        if (st->cap > s->o.max_body + 1)
            st->cap = s->o.max_body + 1;
        st->body = xrealloc(st->body, st->cap);
    }
    memcpy(st->body + st->len, upload, n);
    st->len += n;
    st->body[st->len] = 0;
}

http_deferred_t *http_defer(http_req_t *req)
{
    struct conn_state *st = (struct conn_state *)((char *)req - offsetof(struct conn_state, req));
    http_server_t *s = st->srv;
    if (st->deferred) {
        /* an earlier wait is over (DONE, and taken): this is a new wait or answer */
        pthread_mutex_lock(&st->dmu);
        if (st->dstate == D_DONE && !st->closed) {
            st->dstate = D_RUNNING;
            st->drefs++;
            st->begin_waited = 0;
        }
        pthread_mutex_unlock(&st->dmu);
        return (http_deferred_t *)st;
    }
    pthread_mutex_init(&st->dmu, NULL);
    st->deferred = 1;
    st->drefs = 2;            /* the connection's and the completer's */
    st->dstate = D_RUNNING;
    pthread_mutex_lock(&s->mu);
    st->dnext = s->deferred;
    if (s->deferred)
        s->deferred->dprev = st;
    s->deferred = st;
    pthread_mutex_unlock(&s->mu);
    return (http_deferred_t *)st;
}

/* Store resp as the answer and wake the connection if it sleeps. Caller holds dmu. */
static void defer_finish(struct conn_state *st, http_resp_t *resp)
{
    st->dresp = *resp;
    *resp = (http_resp_t){.status = 200};
    enum defer_state was = st->dstate;
    st->dstate = D_DONE;
    if (was == D_SUSPENDED && !st->closed)
        MHD_resume_connection(st->req.conn);   /* MHD calls handle() again: resumed() */
}

void http_complete(http_deferred_t *d, http_resp_t *resp)
{
    struct conn_state *st = (struct conn_state *)d;
    pthread_mutex_lock(&st->dmu);
    if (st->dstate != D_DONE && !st->closed)
        defer_finish(st, resp);
    else
        http_resp_reset(resp);   /* answered at shutdown, or the client is gone */
    pthread_mutex_unlock(&st->dmu);
    defer_release(st);
}

http_deferred_t *http_stream_wait(http_req_t *req)
{
    struct conn_state *st = (struct conn_state *)((char *)req - offsetof(struct conn_state, req));
    http_deferred_t *w = http_defer(req);
    st->begin_wait = 1;
    st->begin_waited = 1;
    return w;
}

void http_stream_wake(http_deferred_t *w)
{
    struct conn_state *st = (struct conn_state *)w;
    http_resp_t go = {.status = 0};   /* no answer: begin runs again */
    pthread_mutex_lock(&st->dmu);
    if (st->dstate != D_DONE && !st->closed)
        defer_finish(st, &go);
    pthread_mutex_unlock(&st->dmu);
    defer_release(st);
}

/* A deferred request's handler has returned: suspend the connection (1) unless its
 * completion came already (the completer may run on another thread before the handler
 * returns) or the server is stopping, which answers 503 (MHD cannot stop with suspended
 * connections); 0 then, and the caller goes on with what is stored. */
static int suspend_unless_done(http_server_t *s, struct conn_state *st)
{
    pthread_mutex_lock(&st->dmu);
    if (st->dstate == D_RUNNING) {
        if (__atomic_load_n(&s->stopping, __ATOMIC_SEQ_CST)) {
            http_resp_t r = {0};
            http_resp_set(&r, 503, "text/plain", "server shutting down\n", 21);
            defer_finish(st, &r);
        } else {
            MHD_suspend_connection(st->req.conn);
            st->dstate = D_SUSPENDED;
            pthread_mutex_unlock(&st->dmu);
            return 1;
        }
    }
    pthread_mutex_unlock(&st->dmu);
    return 0;
}

/* The handler deferred its answer: sleep until it comes, or queue it if it is there. */
static enum MHD_Result park(http_server_t *s, struct conn_state *st, http_resp_t *resp)
{
    http_resp_reset(resp);    /* what the handler left in resp is not the answer */
    return suspend_unless_done(s, st) ? MHD_YES : resumed(s, st);
}

/* A deferred request's answer is stored: queue it. */
/* Take what the completer or waker stored: 1 when it is there (an answer, or for a wait
 * status 0: go on), 0 when libmicrohttpd woke the connection early. */
static int take_stored(struct conn_state *st, http_resp_t *resp)
{
    pthread_mutex_lock(&st->dmu);
    int done = st->dstate == D_DONE;
    *resp = st->dresp;
    st->dresp = (http_resp_t){.status = 200};
    pthread_mutex_unlock(&st->dmu);
    return done;
}

static enum MHD_Result resumed(http_server_t *s, struct conn_state *st)
{
    http_resp_t resp;
    if (!take_stored(st, &resp))
        return MHD_YES;       /* woken early: wait for http_complete */
    return answer(s, st, &resp);
}

static enum MHD_Result park_begin(http_server_t *s, struct conn_state *st, struct MHD_Connection *c);

/* The stream route's begin, on the first call or after a wait: 0 to take the body, or 1
 * with *out, the request answered or asleep. mid_body: the body is arriving already,
 * so a refusal is kept for its end (libmicrohttpd takes no answer in mid-body). */
static int run_begin(http_server_t *s, struct conn_state *st, struct MHD_Connection *c, int mid_body,
                     enum MHD_Result *out)
{
    http_resp_t resp = {.status = 200};
    st->begin_wait = 0;
    int rc = st->route->stream->begin(&st->req, &st->sctx, &resp);
    st->sctx_live = st->sctx != NULL;   /* done() runs even when begin refused */
    if (rc == HTTP_STREAM_WAIT && st->begin_wait) {
        http_resp_reset(&resp);
        *out = park_begin(s, st, c);
        return 1;
    }
    if (rc == HTTP_STREAM_WAIT) {   /* no http_stream_wait: a bug in the route */
        log_error("%s %s: the stream route waited in begin without http_stream_wait", st->req.method, st->req.path);
        http_resp_reset(&resp);
        http_resp_set(&resp, 500, "text/plain", "internal error\n", 15);
        rc = -1;
    }
    if (rc < 0) {
        if (mid_body) {
            st->failed = 1;
            st->pending = resp;
            return 0;
        }
        *out = answer(s, st, &resp);
        return 1;
    }
    watch_body(s, st, c);
    return 0;
}

/* woken (http_stream_wake), or answered 503 by a stopping server: begin again */
static int begin_woken(http_server_t *s, struct conn_state *st, struct MHD_Connection *c, int mid_body,
                       enum MHD_Result *out)
{
    http_resp_t resp;
    if (!take_stored(st, &resp)) {   /* woken early by libmicrohttpd: keep sleeping */
        *out = MHD_YES;
        return 1;
    }
    if (resp.status) {
        st->begin_wait = 0;
        *out = answer(s, st, &resp);
        return 1;
    }
    return run_begin(s, st, c, mid_body, out);
}

/* begin asked to wait: sleep unless the wake came already or the server is stopping */
static enum MHD_Result park_begin(http_server_t *s, struct conn_state *st, struct MHD_Connection *c)
{
    if (suspend_unless_done(s, st))
        return MHD_YES;
    enum MHD_Result out = MHD_YES;
    begin_woken(s, st, c, 0, &out);
    return out;
}

static enum MHD_Result end_woken(http_server_t *s, struct conn_state *st, const http_stream_t *stream);

/* The body is in: the route's answer. A stream route's end may wait (http_stream_wait)
 * like its begin, and then runs again when woken, with the same context. */
static enum MHD_Result run_end(http_server_t *s, struct conn_state *st, const http_stream_t *stream)
{
    http_resp_t resp = {.status = 200};
    st->req.body = st->body ? st->body : "";
    st->req.body_len = st->len;
    st->begin_wait = 0;
    if (stream)
        stream->end(st->sctx, &st->req, &resp);
    else if (st->route)
        st->route->fn(&st->req, &resp);
    else
        http_resp_set(&resp, 404, "text/plain", "not found\n", 10);
    if (stream && st->begin_wait) {
        http_resp_reset(&resp);
        st->end_wait = 1;
        return suspend_unless_done(s, st) ? MHD_YES : end_woken(s, st, stream);
    }
    return st->deferred && !st->begin_waited ? park(s, st, &resp) : answer(s, st, &resp);
}

/* end's wait is over (or a stopping server answered 503): run end again */
static enum MHD_Result end_woken(http_server_t *s, struct conn_state *st, const http_stream_t *stream)
{
    http_resp_t resp;
    if (!take_stored(st, &resp))
        return MHD_YES;   /* woken early by libmicrohttpd: keep sleeping */
    st->end_wait = 0;
    st->begin_wait = 0;
    if (resp.status)
        return answer(s, st, &resp);
    return run_end(s, st, stream);
}

/* A piece of the body: to the stream route, or into the buffer. */
static void take_body(http_server_t *s, struct conn_state *st, const http_stream_t *stream, const char *upload,
                      size_t n)
{
    if (st->answered || st->failed)
        return;                        /* answered or refused already: drop what still arrives */
    if (stream) {
        /* MHD cannot queue an answer while a body is arriving: keep it for the end */
        st->pending = (http_resp_t){.status = 200};
        if (stream->data(st->sctx, upload, n, &st->pending) < 0)
            st->failed = 1;
        else
            http_resp_reset(&st->pending);
    } else if (st->len + n > s->o.max_body) {
        st->too_large = 1;             /* a chunked body crossed the limit: keep nothing more */
    } else {
        buffer_body(s, st, upload, n);
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)url;
    (void)version;
    http_server_t *s = cls;
    struct conn_state *st = *con_cls;
    if (!st)   /* URI log callback did not run: cannot happen with MHD >= 0.9 */
        return MHD_NO;
    const http_stream_t *stream = st->route ? st->route->stream : NULL;

    if (!st->started) {
        st->started = 1;
        __atomic_add_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
        start_request(s, st, c, method);
        log_set_request_id(st->req.request_id);
        http_refusal_t why;
        if (over_limits(s, st, &why))
            return refuse_now(s, st, why);
        stream = st->route ? st->route->stream : NULL;
        if (stream) {
            enum MHD_Result out = MHD_YES;
            run_begin(s, st, c, 0, &out);
            return out;
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body)
            return too_large(s, st);   /* MHD closes instead of reading the body */
        watch_body(s, st, c);
        return MHD_YES;
    }
    log_set_request_id(st->req.request_id);
    if (st->end_wait && !st->answered)
        return end_woken(s, st, stream);
    if (st->begin_wait && !st->answered) {
        enum MHD_Result out;
        if (begin_woken(s, st, c, *upload_size != 0, &out))
            return out;
        if (!*upload_size)
            return MHD_YES;   /* begin took the body, which has not started: as on a first call */
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->in_body)
            http_idle_touch(&st->idle, 1);
        take_body(s, st, stream, upload, n);
        if (st->in_body)
            http_idle_touch(&st->idle, 0);
        return MHD_YES;
    }
    if (st->in_body) {   /* the body has ended */
        st->in_body = 0;
        http_idle_remove(s->idle, &st->idle);
    }
    if (st->answered)
        return MHD_YES;
    if (st->deferred && !st->begin_waited)
        return resumed(s, st);
    if (st->too_large)
        return too_large(s, st);
    if (st->failed)
        return answer(s, st, &st->pending);

    enum MHD_Result ok = run_end(s, st, stream);
    log_set_request_id(NULL);
    return ok;
}

http_server_t *http_start(const http_opts_t *o, verr_t *e)
{
    http_server_t *s = xcalloc(1, sizeof *s);
    s->o = *o;
    if (!s->o.max_body)
        s->o.max_body = 1024 * 1024;
    if (!s->o.max_uri)
        s->o.max_uri = 8 * 1024;
    if (!s->o.max_headers)
        s->o.max_headers = 8 * 1024;
    if (s->o.body_idle_s <= 0)
        s->o.body_idle_s = 20;
    /* libmicrohttpd answers a request line or header section that does not fit its
     * per-connection memory itself (414/431 in HTML): give it room for several times
     * our own limits so that the API's own refusal answers all but absurd requests */
    size_t pool = 4 * (s->o.max_uri + s->o.max_headers);
    if (pool < 64 * 1024)
        pool = 64 * 1024;
    /* libmicrohttpd's own timeout closes idle keep-alive connections; a body's idle
     * limit is the watchdog's, so the timeout never comes first */
    unsigned conn_timeout = s->o.body_idle_s + 10 > 60 ? (unsigned)s->o.body_idle_s + 10 : 60;
    if (s->o.threads <= 0)
        s->o.threads = 4;
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->address ? o->address : "127.0.0.1", &addr.sin_addr) != 1) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        verr_set(e, 500, "InvalidConfig", "bad listen address '%s'", o->address);
        return NULL;
    }
    /* where to listen: the given socket, else address:port */
    struct MHD_OptionItem where[] = {
        o->listen_fd > 0 ? (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, o->listen_fd, NULL}
                         : (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_END, 0, NULL},
    };
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                                MHD_ALLOW_SUSPEND_RESUME,
                            (uint16_t)o->port, NULL, NULL, handle, s,
                            MHD_OPTION_ARRAY, where,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads,
                            MHD_OPTION_URI_LOG_CALLBACK, uri_log, s,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, conn_timeout,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
                            MHD_OPTION_END);
    if (!s->d) {
        if (o->listen_fd > 0)
            close(o->listen_fd);
        pthread_mutex_destroy(&s->mu);
        free(s);
        verr_set(e, 500, "InternalError", "cannot listen on %s:%d", o->address ? o->address : "127.0.0.1", o->port);
        return NULL;
    }
    s->idle = http_idle_start(s->o.body_idle_s);
    return s;
}

/* Stop taking connections and wait, at most drain_ms, for the requests in flight. The
 * listening socket is returned: MHD's threads may use it until MHD_stop_daemon. */
static MHD_socket drain(http_server_t *s)
{
    if (s->o.drain_ms <= 0)
        return MHD_INVALID_SOCKET;
    __atomic_store_n(&s->draining, 1, __ATOMIC_SEQ_CST);
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int left = __atomic_load_n(&s->active, __ATOMIC_SEQ_CST);
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (long)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (left <= 0 || ms >= s->o.drain_ms) {
            if (left > 0)
                log_info("stopping HTTP with %d request(s) still running after %d ms", left, s->o.drain_ms);
            break;
        }
        usleep(5000);
    }
    return ls;
}

void http_stop(http_server_t *s)
{
    if (!s)
        return;
    MHD_socket ls = drain(s);
    /* MHD cannot stop with suspended connections: answer every deferred request now
     * (a handler still running sees stopping and answers itself); the completers'
     * late http_complete then only lets go of the state. */
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    for (struct conn_state *st = s->deferred; st; st = st->dnext) {
        pthread_mutex_lock(&st->dmu);
        if (st->dstate == D_SUSPENDED && !st->closed) {
            http_resp_t r = {0};
            http_resp_set(&r, 503, "text/plain", "server shutting down\n", 21);
            defer_finish(st, &r);
        }
        pthread_mutex_unlock(&st->dmu);
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    http_idle_stop(s->idle);   /* after the daemon: completed() unlisted every body */
    /* states still listed are held by completers that have not called back yet; they
     * point at s, so the last of them frees it */
    pthread_mutex_lock(&s->mu);
    int orphans = s->deferred != NULL;
    s->stopped = orphans;
    pthread_mutex_unlock(&s->mu);
    if (orphans)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

uint64_t http_requests_served(const http_server_t *s)
{
    return s ? __atomic_load_n(&s->served, __ATOMIC_RELAXED) : 0;
}

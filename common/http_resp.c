/* http_resp.c - building an answer (body, stream, headers) and reading a request's
 * headers: the parts of the HTTP layer that need no connection state of their own,
 * kept apart from http.c's request life cycle. */
#include "http.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* The body goes, however it was allocated. */
static void body_drop(http_resp_t *resp)
{
    if (resp->body_free)
        resp->body_free(resp->body);
    else
        free(resp->body);
    resp->body = NULL;
    resp->body_free = NULL;
}

void http_resp_take_as(http_resp_t *resp, int status, const char *ct, char *body, size_t len,
                       void (*body_free)(void *))
{
    body_drop(resp);
    resp->status = status;
    resp->body = body;
    resp->body_free = body_free;
    resp->len = len;
    if (ct)
        snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
}

void http_resp_take(http_resp_t *resp, int status, const char *ct, char *body, size_t len)
{
    http_resp_take_as(resp, status, ct, body, len, NULL);
}

void http_resp_set(http_resp_t *resp, int status, const char *ct, const char *body, size_t len)
{
    char *copy = xmalloc(len + 1);
    if (len)
        memcpy(copy, body, len);
    copy[len] = 0;
    http_resp_take(resp, status, ct, copy, len);
}

void http_resp_stream(http_resp_t *resp, int status, const char *ct, uint64_t size,
                      http_reader_fn reader, void *arg, void (*reader_free)(void *))
{
    body_drop(resp);
    resp->len = 0;
    resp->status = status;
    resp->reader = reader;
    resp->reader_arg = arg;
    resp->reader_free = reader_free;
    resp->reader_size = size;
    if (ct)
        snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
}

void http_resp_reset(http_resp_t *resp)
{
    body_drop(resp);
    for (int i = 0; i < resp->nheaders; i++)
        free(resp->headers[i]);
    resp->nheaders = 0;
    if (resp->reader_free)
        resp->reader_free(resp->reader_arg);
    resp->reader = NULL;
    resp->reader_free = NULL;
}

void http_resp_header(http_resp_t *resp, const char *name, const char *value)
{
    if (resp->nheaders < (int)ARRAY_LEN(resp->headers))
        resp->headers[resp->nheaders++] = xasprintf("%s: %s", name, value);
}

const char *http_header(const http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct hdr_collect {
    const char **names, **values;
    size_t n, max;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    struct hdr_collect *h = cls;
    if (h->n >= h->max)
        return MHD_NO;
    h->names[h->n] = k;
    h->values[h->n] = v ? v : "";
    h->n++;
    return MHD_YES;
}

size_t http_headers(const http_req_t *r, const char **names, const char **values, size_t max)
{
    struct hdr_collect h = {names, values, 0, max};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect, &h);
    return h.n;
}

void http_refusal_message(http_refusal_t why, uint64_t limit, char *out, size_t n)
{
    static const char *const text[] = {
        [HTTP_URI_TOO_LONG] = "The request URI is longer than the %llu bytes this endpoint accepts.",
        [HTTP_HEADERS_TOO_LARGE] = "Your request header section exceeds the maximum allowed size (%llu bytes).",
        [HTTP_BODY_TOO_LARGE] = "Your proposed upload exceeds the maximum allowed size (%llu bytes).",
        [HTTP_BODY_TIMEOUT] = "Your socket connection to the server was not read from or written to within the "
                              "timeout period (%llu s). Idle connections will be closed.",
        [HTTP_BODY_INCOMPLETE] = "You did not provide the number of bytes specified by the Content-Length HTTP "
                                 "header.%.0llu",
    };
    snprintf(out, n, text[why], (unsigned long long)limit);
}

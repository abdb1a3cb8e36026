/* http_sigv4.c - an HTTP request seen as SigV4 canonicalises it. */
#include "http_sigv4.h"

void http_sigv4_request(const http_req_t *r, const char *payload_hash, int s3, http_sigv4_t *out)
{
    const char *names[SIGV4_MAX_HEADERS], *values[SIGV4_MAX_HEADERS];
    size_t n = http_headers(r, names, values, SIGV4_MAX_HEADERS);
    for (size_t i = 0; i < n; i++)
        out->hdrs[i] = (sigv4_header_t){names[i], values[i]};
    out->req = (sigv4_request_t){.method = r->method, .path = r->path, .query = r->query, .headers = out->hdrs,
                                 .nheaders = n, .payload_hash = payload_hash, .s3 = s3};
}

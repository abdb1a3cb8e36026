/* http_sigv4.h - the SigV4 view of an HTTP request, for every endpoint that checks
 * signatures (the EC2/IAM gateway, the S3 object store). */
#ifndef VIRGA_HTTP_SIGV4_H
#define VIRGA_HTTP_SIGV4_H

#include "http.h"
#include "sigv4.h"

/* A SigV4 request is a view of r: nothing is copied, hdrs (caller's array) must outlive
 * out, and r's strings point into the HTTP layer's memory for the request's lifetime. */
typedef struct http_sigv4 {
    sigv4_header_t hdrs[SIGV4_MAX_HEADERS];
    sigv4_request_t req;
} http_sigv4_t;

void http_sigv4_request(const http_req_t *r, const char *payload_hash, int s3, http_sigv4_t *out);

#endif

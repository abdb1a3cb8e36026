/* auth.c - SigV4 authentication of a gateway request, in the Authorization header or
 * as presigned query parameters, in two halves: everything that needs no key (parse,
 * scope, time, the string to sign, while the request's headers are at hand), then the
 * signature against the key, which request.c gets from common/keycache (cached, or
 * identity.signing_key over the bus without holding a thread). The comparison is
 * constant-time. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "http_sigv4.h"
#include "jsonutil.h"
#include "log.h"

static int has_token(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len == n && !strncmp(p, tok, n))
            return 1;
        p = semi ? semi + 1 : NULL;
    }
    return 0;
}

int gw_auth_prepare(gw_req_t *r, const char *body_hash, verr_t *e)
{
    http_req_t *h = r->http;
    sigv4_auth_t *a = &r->auth;
    const char *authz = http_header(h, "Authorization");
    int rc;
    if (authz) {
        const char *date = http_header(h, "X-Amz-Date");
        rc = sigv4_parse_header(authz, date ? date : http_header(h, "Date"), a, e);
    } else if (strstr(h->query, "X-Amz-Algorithm=")) {
        rc = sigv4_parse_query(h->query, a, e);
    } else {
        return verr_set(e, 401, "AuthFailure", "The request must be signed with AWS Signature Version 4 "
                        "(an Authorization header or X-Amz-* query parameters).");
    }
    if (rc < 0)
        return -1;
    if (!strcmp(a->service, "iam"))
        r->api = API_IAM;
    else if (!strcmp(a->service, "ec2"))
        r->api = API_EC2;
    else
        return verr_set(e, 403, "SignatureDoesNotMatch", "Credential should be scoped to a valid service: ec2 or iam, not '%s'.", a->service);
    /* IAM is global (botocore scopes it to us-east-1); EC2 is regional */
    if (r->api == API_EC2 && strcmp(a->region, r->gw->region))
        return verr_set(e, 401, "AuthFailure", "Credential should be scoped to a valid region, not '%s'; this endpoint serves '%s'.",
                        a->region, r->gw->region);
    if (!has_token(a->signed_headers, "host"))
        return verr_set(e, 403, "SignatureDoesNotMatch", "'Host' must be a signed header.");
    if (sigv4_check_time(a, time(NULL), r->gw->skew_s, e) < 0)
        return -1;
    /* the canonical request needs the headers, which a suspended request no longer has */
    http_sigv4_t hs;
    http_sigv4_request(h, body_hash, 0, &hs);
    char *creq = sigv4_canonical_request(&hs.req, a->signed_headers, e);
    if (!creq)
        return -1;
    r->string_to_sign = sigv4_string_to_sign(a->amz_date, a->date, a->region, a->service, creq);
    r->canonical_request = creq;   /* for the debug line of a mismatch */
    return 0;
}

int gw_auth_verify(gw_req_t *r, const uint8_t *key, json_t *who, verr_t *e)
{
    char calc[65];
    sigv4_sign(key, r->string_to_sign, calc);
    int ok = strnlen(r->auth.signature, sizeof r->auth.signature) == 64 && sodium_memcmp(calc, r->auth.signature, 64) == 0;
    sodium_memzero(calc, sizeof calc);
    if (!ok) {
        json_decref(who);
        /* what we signed, for whoever debugs a client (never the key) */
        log_debug("signature mismatch for %s; canonical request:\n%s", r->auth.access_key, r->canonical_request);
        return verr_set(e, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                        "signature you provided. Check your AWS Secret Access Key and signing method.");
    }
    r->caller = who;
    return 0;
}

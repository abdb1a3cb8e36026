/* auth.c - SigV4 authentication of a gateway request, in the Authorization header or
 * as presigned query parameters. The signing key comes from common/keycache (cached, or
 * identity.signing_key over the bus); the comparison is constant-time. */
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

int gw_authenticate(gw_req_t *r, const char *body_hash, verr_t *e)
{
    http_req_t *h = r->http;
    sigv4_auth_t a;
    const char *authz = http_header(h, "Authorization");
    int rc;
    if (authz) {
        const char *date = http_header(h, "X-Amz-Date");
        rc = sigv4_parse_header(authz, date ? date : http_header(h, "Date"), &a, e);
    } else if (strstr(h->query, "X-Amz-Algorithm=")) {
        rc = sigv4_parse_query(h->query, &a, e);
    } else {
        return verr_set(e, 401, "AuthFailure", "The request must be signed with AWS Signature Version 4 "
                        "(an Authorization header or X-Amz-* query parameters).");
    }
    if (rc < 0)
        return -1;
    if (!strcmp(a.service, "iam"))
        r->api = API_IAM;
    else if (!strcmp(a.service, "ec2"))
        r->api = API_EC2;
    else
        return verr_set(e, 403, "SignatureDoesNotMatch", "Credential should be scoped to a valid service: ec2 or iam, not '%s'.", a.service);
    /* IAM is global (botocore scopes it to us-east-1); EC2 is regional */
    if (r->api == API_EC2 && strcmp(a.region, r->gw->region))
        return verr_set(e, 401, "AuthFailure", "Credential should be scoped to a valid region, not '%s'; this endpoint serves '%s'.",
                        a.region, r->gw->region);
    if (!has_token(a.signed_headers, "host"))
        return verr_set(e, 403, "SignatureDoesNotMatch", "'Host' must be a signed header.");
    if (sigv4_check_time(&a, time(NULL), r->gw->skew_s, e) < 0)
        return -1;

    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    if (keycache_fetch(r->gw->keys, r->svc->bus, &a, r->gw->call_timeout_ms, key, &who, e) < 0)
        return -1;

    http_sigv4_t hs;
    http_sigv4_request(h, body_hash, 0, &hs);
    rc = sigv4_verify(&hs.req, &a, key, e);
    sodium_memzero(key, sizeof key);
    if (rc < 0 && !strcmp(e->code, "SignatureDoesNotMatch")) {
        /* what we signed, for whoever debugs a client (never the key) */
        verr_t ce;
        char *creq = sigv4_canonical_request(&hs.req, a.signed_headers, &ce);
        log_debug("signature mismatch for %s; canonical request:\n%s", a.access_key, creq ? creq : ce.message);
        free(creq);
    }
    if (rc < 0) {
        json_decref(who);
        return -1;
    }
    r->caller = who;
    return 0;
}

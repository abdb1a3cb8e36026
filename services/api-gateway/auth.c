/* auth.c - SigV4 authentication of a gateway request, in the Authorization header or
 * as presigned query parameters. The signing key comes from the cache, or from
 * identity.signing_key over the bus on a miss; the comparison is constant-time. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
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

static int fetch_key(gw_req_t *r, const sigv4_auth_t *a, const char *scope, uint8_t key[SIGV4_KEY_LEN],
                     json_t **who, verr_t *e)
{
    if (keycache_get(r->gw->keys, scope, key, who))
        return 0;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "access_key_id", a->access_key, "date", a->date,
                             "region", a->region, "service", a->service);
    json_t *reply = NULL;
    if (bus_call(r->svc->bus, "identity", "identity.signing_key", body, NULL, r->gw->call_timeout_ms, &reply, e) < 0) {
        if (!strcmp(e->code, "RequestTimeout"))
            verr_set(e, 503, "Unavailable", "The identity service is not answering; try again.");
        return -1;
    }
    const char *hex = json_str(reply, "key", "");
    size_t len = 0;
    if (sodium_hex2bin(key, SIGV4_KEY_LEN, hex, strlen(hex), NULL, &len, NULL) != 0 || len != SIGV4_KEY_LEN) {
        json_decref(reply);
        return verr_set(e, 500, "InternalError", "bad signing key from identity");
    }
    json_object_del(reply, "key");
    json_object_set_new(reply, "access_key_id", json_string(a->access_key));
    keycache_put(r->gw->keys, scope, key, reply);
    *who = reply;
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

    char scope[256];
    snprintf(scope, sizeof scope, "%s/%s/%s/%s", a.access_key, a.date, a.region, a.service);
    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    if (fetch_key(r, &a, scope, key, &who, e) < 0)
        return -1;

    const char *names[SIGV4_MAX_HEADERS], *values[SIGV4_MAX_HEADERS];
    size_t n = http_headers(h, names, values, SIGV4_MAX_HEADERS);
    sigv4_header_t hdrs[SIGV4_MAX_HEADERS];
    for (size_t i = 0; i < n; i++)
        hdrs[i] = (sigv4_header_t){names[i], values[i]};
    sigv4_request_t sr = {.method = h->method, .path = h->path, .query = h->query, .headers = hdrs,
                          .nheaders = n, .payload_hash = body_hash, .s3 = 0};
    rc = sigv4_verify(&sr, &a, key, e);
    sodium_memzero(key, sizeof key);
    if (rc < 0 && !strcmp(e->code, "SignatureDoesNotMatch")) {
        /* what we signed, for whoever debugs a client (never the key) */
        verr_t ce;
        char *creq = sigv4_canonical_request(&sr, a.signed_headers, &ce);
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

/* request.c - one Query API request from bytes to answer: the per-address limit on
 * failures, parameters, SigV4's form, action lookup, the signing key (cached, or asked
 * of identity without holding the thread), rate limit, policy, required parameters, then
 * a local handler or a bus RPC, and the XML rendering of the result or the error. No
 * step holds an HTTP thread while another service works (gateway.h, struct gw_req). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "gateway.h"
#include "jsonutil.h"
#include "log.h"
#include "metrics.h"
#include "query.h"

/* Auth parameters are not the action's business. */
static const char *const skip_params[] = {
    "Action", "Version", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", NULL,
};

/* Which API a request says it calls, read before anything is parsed, so that even a
 * request refused for its parameters gets its error in the shape its client parses:
 * the credential scope's service, else the IAM API version. */
gw_api_t gw_api_claimed(const http_req_t *h)
{
    const char *authz = http_header(h, "Authorization");
    if (authz)
        return strstr(authz, "/iam/aws4_request") ? API_IAM : API_EC2;
    if (strstr(h->query, "%2Fiam%2Faws4_request") || strstr(h->query, "/iam/aws4_request"))
        return API_IAM;
    if (strstr(h->query, "Version=2010-05-08") ||
        (h->body_len && memmem(h->body, h->body_len, "Version=2010-05-08", 18)))
        return API_IAM;
    return API_EC2;
}

static int collect_params(http_req_t *h, query_t *q, verr_t *e)
{
    if (query_parse(h->query, strlen(h->query), q, e) < 0)
        return -1;
    if (!strcmp(h->method, "POST") && h->body_len) {
        const char *ct = http_header(h, "Content-Type");
        if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33))
            return verr_set(e, 400, "InvalidParameterValue", "POST bodies must be application/x-www-form-urlencoded");
        if (query_parse_append(h->body, h->body_len, q, e) < 0)
            return -1;
    }
    return 0;
}

/* A parameter the action does not have is refused, not ignored: a client that misspells
 * one (or sends one this API version lacks) must learn that it had no effect. */
static int unknown_param(const gw_req_t *r, const query_t *q, verr_t *e)
{
    const char *const *known = gw_action_param_names(r->action);
    for (size_t i = 0; i < q->n; i++) {
        const char *name = q->p[i].name;
        int skip = 0;
        for (const char *const *s = skip_params; *s && !skip; s++)
            skip = !strcmp(*s, name);
        if (skip)
            continue;
        size_t top = strcspn(name, ".");
        int found = 0;
        for (const char *const *k = known; k && *k && !found; k++)
            found = strlen(*k) == top && !strncmp(*k, name, top);
        if (!found)
            return verr_set(e, 400, "UnknownParameter", "The parameter %.*s is not recognized", (int)(top > 128 ? 128 : top),
                            name);
    }
    return 0;
}

static int missing_param(const gw_req_t *r, verr_t *e)
{
    for (int i = 0; i < 4 && r->action->required[i]; i++) {
        json_t *v = json_object_get(r->params, r->action->required[i]);
        if (!v || (json_is_string(v) && !*json_string_value(v)))
            return verr_set(e, 400, "MissingParameter", "The request must contain the parameter %s",
                            r->action->required[i]);
    }
    return 0;
}

/* The caller as services see it: without its policies, with the request id. A shallow
 * copy: the policies it leaves out are the bulk, and nothing nested is changed. */
json_t *gw_bus_caller(const gw_req_t *r)
{
    json_t *caller = json_copy(r->caller);
    json_object_del(caller, "policies");
    json_object_set_new(caller, "request_id", json_string(r->http->request_id));
    return caller;
}

/* An IAM change made through this gateway takes effect here before the reply, without
 * waiting for the invalidation event every gateway also receives. */
static void invalidate_local(gw_req_t *r)
{
    const char *p = r->action->invalidates;
    if (!p)
        return;
    const char *v = json_str(r->params, p, NULL);
    if (!strcmp(p, "AccessKeyId"))
        keycache_invalidate(r->gw->keys, "access_key_id", v);
    else
        keycache_invalidate(r->gw->keys, "account_id", json_str(r->caller, "account_id", ""));
}

void gw_defer(gw_req_t *r)
{
    if (r->deferred)
        return;
    r->deferred = http_defer(r->http);
    __atomic_add_fetch(&r->gw->inflight, 1, __ATOMIC_SEQ_CST);
}

/* Answer r with resp when it is set (status 200, rendered), else with the error e, and
 * free r. */
static void finish(gw_req_t *r, http_resp_t resp, const verr_t *e)
{
    gateway_t *gw = r->gw;
    if (!e) {
        log_info("%s %s -> 200", r->action->name, json_str(r->caller, "access_key_id", ""));
    } else {
        __atomic_add_fetch(&gw->errors, 1, __ATOMIC_RELAXED);
        verr_t shown;
        gw_public_error(e, &shown);
        /* a change the service may have made before the time ran out: saying "try again"
         * would make a second one, unless a ClientToken makes the retry answer the first */
        if (!strcmp(e->code, "RequestTimeout") && r->action && (r->action->flags & GW_MUTATES) &&
            !((r->action->flags & GW_CLIENT_TOKEN) && json_str(r->params, "ClientToken", NULL)))
            snprintf(shown.message, sizeof shown.message, "The service did not answer in time; the change may "
                     "or may not have been made. Describe the resource before trying again.");
        /* the status and code the tenant gets; a different cause (a bus timeout) follows */
        int same = !strcmp(shown.code, e->code);
        log_info("%s %s -> %d %s: %s%s%s%s", r->action ? r->action->name : "-",
                 json_str(r->caller, "access_key_id", r->auth.access_key[0] ? r->auth.access_key : "-"),
                 shown.http_status, shown.code, shown.message, same ? "" : " [", same ? "" : e->message,
                 same ? "" : "]");
        gw_render_error(r->api, r->http->request_id, &shown, &resp);
        /* a client's mistake before anyone was authenticated: its address pays */
        if (!r->caller && resp.status >= 400 && resp.status < 500)
            authfail_record(gw->authfail, r->http->remote);
    }
    if (!r->metered)
        gw_metrics_start(gw->metrics, r->action);
    gw_metrics_done(gw->metrics, r->action, resp.status, metrics_now_us() - r->t0_us);
    json_decref(r->params);
    json_decref(r->caller);
    free(r->host);
    free(r->user_agent);
    free(r->referer);
    free(r->string_to_sign);
    free(r->canonical_request);
    if (r->deferred) {
        http_complete(r->deferred, &resp);
        free(r);
        __atomic_sub_fetch(&gw->inflight, 1, __ATOMIC_SEQ_CST);
    } else {
        *r->resp = resp;
        free(r);
    }
}

/* An answer that could not be rendered: a bug of whoever made it, said as such. */
static const verr_t *unrenderable(const gw_req_t *r, size_t len, verr_t *e)
{
    log_error("BUG: the answer to %s is not well-formed JSON (%zu bytes)", r->action->name, len);
    verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
    return e;
}

void gw_finish(gw_req_t *r, int rc, json_t *result, const verr_t *e)
{
    http_resp_t resp = {.status = 200};
    verr_t bad = {0};
    if (rc == 0 && gw_render_result(r, result, &resp) < 0)
        e = unrenderable(r, 0, &bad), rc = -1;
    json_decref(result);
    finish(r, resp, rc == 0 ? NULL : e);
}

/* On the bus's reply thread: the service answered (its JSON text, rendered as XML as it
 * is read), or the call timed out. */
static void forward_done(void *arg, const char *body, size_t len, const verr_t *err)
{
    gw_req_t *r = arg;
    log_set_request_id(r->http->request_id);
    http_resp_t resp = {.status = 200};
    verr_t bad = {0};
    if (!err && gw_render_text(r, body, len, &resp) < 0)
        err = unrenderable(r, len, &bad);
    if (!err)
        invalidate_local(r);
    finish(r, resp, err);
    log_set_request_id(NULL);
}

/* Forward to the owning service as "<service>.<Action>" with who is calling, without
 * holding this HTTP thread for the round trip. */
static void forward(gw_req_t *r)
{
    char type[160];
    snprintf(type, sizeof type, "%s.%s", r->action->target, r->action->name);
    gw_defer(r);
    json_t *caller = gw_bus_caller(r);
    verr_t e = {0};
    int rc = bus_call_async_text(r->svc->bus, r->action->target, type, json_incref(r->params), caller,
                                 r->gw->call_timeout_ms, forward_done, r, &e);
    json_decref(caller);
    if (rc < 0)
        gw_finish(r, -1, NULL, &e);   /* not sent: answered now */
}

/* The caller is known: rate limit, policy, required parameters, then the answer (here,
 * by a local handler, or forwarded). Runs on the HTTP thread, or on the bus thread that
 * brought the signing key. */
void gw_authenticated(gw_req_t *r)
{
    verr_t e = {0};
    json_t *result = NULL;
    int rc = -1;
    if (!ratelimit_take(r->gw->limits, json_str(r->caller, "access_key_id", "")))
        verr_set(&e, 503, "RequestLimitExceeded", "Request limit exceeded.");
    else if (gw_authorize(r, &e) == 0 && missing_param(r, &e) == 0) {
        /* An EC2 read with DryRun is the permission check alone, as EC2 answers it: the
         * policy passed, so DryRunOperation, never the data (the services, which check
         * DryRun on their changes, are not asked). */
        if (r->api == API_EC2 && (r->action->flags & GW_READS) && json_flag(r->params, "DryRun")) {
            verr_set(&e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
            gw_finish(r, -1, NULL, &e);
            return;
        }
        if (!r->action->local) {
            forward(r);
            return;
        }
        rc = r->action->local(r, &result, &e);
        if (rc == GW_ASYNC)
            return;   /* the handler finishes r */
        if (rc == 0)
            invalidate_local(r);
    }
    gw_finish(r, rc, result, &e);
}

/* On a bus thread: identity answered for the signing key (or did not). */
static void key_fetched(void *arg, const uint8_t *key, json_t *who, const verr_t *err)
{
    gw_req_t *r = arg;
    log_set_request_id(r->http->request_id);
    verr_t e = {0};
    if (!key)
        gw_finish(r, -1, NULL, err);
    else if (gw_auth_verify(r, key, who, &e) < 0)
        gw_finish(r, -1, NULL, &e);
    else
        gw_authenticated(r);
    log_set_request_id(NULL);
}

/* The Action and its parameters, once q holds them: known action, known parameter
 * names, structured into r->params. */
static int parse_action(gw_req_t *r, query_t *q, verr_t *e)
{
    const char *action = query_get(q, "Action");
    if (!action || !*action) {
        verr_set(e, 400, "MissingAction", "The request must contain the parameter Action");
        return -1;
    }
    if (!(r->action = gw_find_action(r->api, action))) {
        verr_set(e, 400, "InvalidAction", "The action %.100s is not valid for this web service.", action);
        return -1;
    }
    gw_metrics_start(r->gw->metrics, r->action);
    r->metered = 1;
    if (unknown_param(r, q, e) < 0 || !(r->params = query_to_json(q, skip_params, e)))
        return -1;
    return 0;
}

int gw_parse_unsigned(gw_req_t *r, verr_t *e)
{
    query_t q = {0};
    int rc = collect_params(r->http, &q, e) < 0 ? -1 : parse_action(r, &q, e);
    query_free(&q);
    return rc;
}

/* Everything that needs no other service, cheapest refusals first: the parameters, the
 * signature's form, scope and time, the action and its parameter names. Then the
 * signing key: from the cache, refused as a key identity just called unknown, or asked
 * of identity with the connection suspended. 0 when r went on (answered or in flight),
 * -1 with e set. */
static int begin(gw_req_t *r, verr_t *e)
{
    query_t q = {0};
    int rc = -1;
    r->api = gw_api_claimed(r->http);   /* until the signature says: errors get the client's shape */
    if (collect_params(r->http, &q, e) < 0)
        goto out;
    char body_hash[65];
    sigv4_sha256_hex(r->http->body, r->http->body_len, body_hash);
    if (gw_auth_prepare(r, body_hash, e) < 0)
        goto out;
    if (parse_action(r, &q, e) < 0)
        goto out;
    query_free(&q);

    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    rc = keycache_lookup(r->gw->keys, &r->auth, key, &who, e);
    if (rc > 0) {
        rc = gw_auth_verify(r, key, who, e);
        sodium_memzero(key, sizeof key);
        if (rc == 0)
            gw_authenticated(r);
        return rc;
    }
    if (rc < 0)
        return -1;
    gw_defer(r);
    if (keycache_fetch_async(r->gw->keys, r->svc->bus, &r->auth, r->gw->call_timeout_ms, key_fetched, r, e) < 0) {
        if (!strcmp(e->code, "RequestTimeout"))
            verr_set(e, 503, "Unavailable", "The identity service is not answering; try again.");
        return -1;
    }
    return 0;
out:
    query_free(&q);
    return rc;
}

static char *header_copy(const http_req_t *h, const char *name)
{
    const char *v = http_header(h, name);
    return v ? xstrdup(v) : NULL;
}

gw_req_t *gw_req_new(http_req_t *h, http_resp_t *resp)
{
    service_t *svc = h->app;
    gateway_t *gw = svc->state;
    gw_req_t *r = xcalloc(1, sizeof *r);
    *r = (gw_req_t){.svc = svc, .gw = gw, .http = h, .api = API_EC2, .t0_us = metrics_now_us(), .resp = resp};
    __atomic_add_fetch(&gw->requests, 1, __ATOMIC_RELAXED);
    r->host = header_copy(h, "Host");
    r->user_agent = header_copy(h, "User-Agent");
    r->referer = header_copy(h, "Referer");
    return r;
}

void gw_handle(http_req_t *h, http_resp_t *resp)
{
    gw_req_t *r = gw_req_new(h, resp);
    gateway_t *gw = r->gw;
    verr_t e = {0};
    if (authfail_blocked(gw->authfail, h->remote)) {
        /* this address failed to authenticate too often: not even parsed */
        r->api = gw_api_claimed(h);
        verr_set(&e, 503, "RequestLimitExceeded", "Too many failed requests from your address; slow down.");
        gw_finish(r, -1, NULL, &e);
        return;
    }
    int rc = -1;
    if (strcmp(h->path, "/"))
        verr_set(&e, 404, "InvalidAction", "The Query API is served at /, not %.100s", h->path);
    else if (strcmp(h->method, "GET") && strcmp(h->method, "POST"))
        verr_set(&e, 405, "InvalidAction", "The Query API takes GET or POST");
    else
        rc = begin(r, &e);
    if (rc < 0)
        gw_finish(r, -1, NULL, &e);
}

/* request.c - one Query API request from bytes to answer: parameters, SigV4, rate
 * limit, action lookup, policy, required parameters, then a local handler or a bus RPC,
 * and the XML rendering of the result or the error. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "jsonutil.h"
#include "log.h"
#include "query.h"

/* Auth parameters are not the action's business. */
static const char *const skip_params[] = {
    "Action", "Version", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", NULL,
};

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

int gw_call(gw_req_t *r, const char *service, const char *type, json_t *body, json_t **reply, verr_t *e)
{
    json_t *caller = json_deep_copy(r->caller);
    json_object_del(caller, "policies");
    json_object_set_new(caller, "request_id", json_string(r->http->request_id));
    int rc = bus_call(r->svc->bus, service, type, body, caller, r->gw->call_timeout_ms, reply, e);
    json_decref(caller);
    return rc;
}

/* Forward to the owning service as "<service>.<Action>" with who is calling. */
static int forward(gw_req_t *r, json_t **result, verr_t *e)
{
    char type[160];
    snprintf(type, sizeof type, "%s.%s", r->action->target, r->action->name);
    return gw_call(r, r->action->target, type, json_incref(r->params), result, e);
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

static int process(gw_req_t *r, verr_t *e, json_t **result)
{
    query_t q = {0};
    int rc = -1;
    if (collect_params(r->http, &q, e) < 0)
        goto out;
    const char *version = query_get(&q, "Version");
    r->api = version && !strcmp(version, "2010-05-08") ? API_IAM : API_EC2;   /* until the signature says */

    char body_hash[65];
    sigv4_sha256_hex(r->http->body, r->http->body_len, body_hash);
    if (gw_authenticate(r, body_hash, e) < 0)
        goto out;
    if (!ratelimit_take(r->gw->limits, json_str(r->caller, "access_key_id", "")))  {
        verr_set(e, 503, "RequestLimitExceeded", "Request limit exceeded.");
        goto out;
    }
    const char *action = query_get(&q, "Action");
    if (!action || !*action) {
        verr_set(e, 400, "MissingAction", "The request must contain the parameter Action");
        goto out;
    }
    if (!(r->action = gw_find_action(r->api, action))) {
        verr_set(e, 400, "InvalidAction", "The action %.100s is not valid for this web service.", action);
        goto out;
    }
    if (!(r->params = query_to_json(&q, skip_params, e)))
        goto out;
    if (gw_authorize(r, e) < 0 || missing_param(r, e) < 0)
        goto out;
    rc = r->action->local ? r->action->local(r, result, e) : forward(r, result, e);
    if (rc == 0)
        invalidate_local(r);
out:
    query_free(&q);
    return rc;
}

void gw_handle(http_req_t *h, http_resp_t *resp)
{
    service_t *svc = h->app;
    gw_req_t r = {.svc = svc, .gw = svc->state, .http = h, .api = API_EC2};
    verr_t e = {0};
    json_t *result = NULL;
    __atomic_add_fetch(&r.gw->requests, 1, __ATOMIC_RELAXED);
    if (strcmp(h->path, "/")) {
        verr_set(&e, 404, "InvalidAction", "The Query API is served at /, not %.100s", h->path);
    } else if (strcmp(h->method, "GET") && strcmp(h->method, "POST")) {
        verr_set(&e, 405, "InvalidAction", "The Query API takes GET or POST");
    } else if (process(&r, &e, &result) == 0) {
        gw_render_result(&r, result, resp);
        log_info("%s %s -> 200", r.action->name, json_str(r.caller, "access_key_id", ""));
        goto out;
    }
    __atomic_add_fetch(&r.gw->errors, 1, __ATOMIC_RELAXED);
    log_info("%s %s -> %d %s: %s", r.action ? r.action->name : "-", json_str(r.caller, "access_key_id", "-"),
             e.http_status, e.code, e.message);
    gw_render_error(r.api, h->request_id, &e, resp);
out:
    json_decref(result);
    json_decref(r.params);
    json_decref(r.caller);
}

/* gateway.h - the EC2 Query API gateway: one HTTP endpoint serving the EC2 API and the
 * IAM subset (told apart by the SigV4 credential scope's service), authenticating every
 * request with SigV4, rate limiting per access key, authorising with the caller's IAM
 * policies, and turning each Action into a local answer or a bus RPC whose JSON reply
 * is rendered as AWS-shaped XML. */
#ifndef VIRGA_GATEWAY_H
#define VIRGA_GATEWAY_H

#include <stdint.h>

#include "http.h"
#include "keycache.h"
#include "service.h"
#include "sigv4.h"

typedef enum gw_api { API_EC2 = 0, API_IAM = 1 } gw_api_t;

typedef struct gw_req gw_req_t;

/* One row per Action: the table in actions.c is the gateway's whole API. */
typedef struct gw_action {
    gw_api_t api;
    const char *name;                 /* "DescribeKeyPairs" */
    const char *target;               /* bus service ("compute"), NULL when local */
    const char *required[4];          /* parameters that must be present */
    int (*local)(gw_req_t *r, json_t **result, verr_t *e);
    const char *invalidates;          /* IAM changes that invalidate cached keys: param name */
} gw_action_t;

typedef struct ratelimit ratelimit_t;

typedef struct gateway {
    keycache_t *keys;
    ratelimit_t *limits;
    const char *region;
    const char *zones;                /* comma-separated availability zones */
    long skew_s;                      /* allowed clock skew, seconds (900) */
    int call_timeout_ms;
    uint64_t requests, errors;        /* for /metrics */
    int inflight;                     /* forwarded actions awaiting their bus reply */
} gateway_t;

struct gw_req {
    service_t *svc;
    gateway_t *gw;
    http_req_t *http;
    gw_api_t api;
    const gw_action_t *action;
    json_t *params;                   /* structured parameters (query_to_json) */
    json_t *caller;                   /* who signed: account_id, user_id, ... policies */
};

/* actions.c */
const gw_action_t *gw_find_action(gw_api_t api, const char *name);
/* auth.c: verify the request's SigV4 signature; fills r->caller. */
int gw_authenticate(gw_req_t *r, const char *body_hash, verr_t *e);
/* authorize.c: policies of r->caller allow r->action? */
int gw_authorize(gw_req_t *r, verr_t *e);
/* render.c */
void gw_render_result(const gw_req_t *r, json_t *result, http_resp_t *resp);
void gw_render_error(gw_api_t api, const char *request_id, const verr_t *e, http_resp_t *resp);
/* ec2_local.c: actions the gateway answers itself */
int ec2_describe_regions(gw_req_t *r, json_t **result, verr_t *e);
int ec2_describe_availability_zones(gw_req_t *r, json_t **result, verr_t *e);
int ec2_describe_account_attributes(gw_req_t *r, json_t **result, verr_t *e);
/* ec2_tags.c: CreateTags, DeleteTags, DescribeTags, routed by resource id prefix to the
 * services that own the resources */
int ec2_create_tags(gw_req_t *r, json_t **result, verr_t *e);
int ec2_delete_tags(gw_req_t *r, json_t **result, verr_t *e);
int ec2_describe_tags(gw_req_t *r, json_t **result, verr_t *e);
/* request.c: the HTTP handler */
void gw_handle(http_req_t *req, http_resp_t *resp);
/* request.c: a bus RPC to a service on behalf of the request's caller (sent without its
 * policies, with the request id), as forwarded actions make. body is stolen. */
int gw_call(gw_req_t *r, const char *service, const char *type, json_t *body, json_t **reply, verr_t *e);

/* ratelimit.c: token bucket per access key; rate <= 0 disables */
ratelimit_t *ratelimit_new(double rate, double burst);
void ratelimit_free(ratelimit_t *r);
int ratelimit_take(ratelimit_t *r, const char *key);   /* 1 = allowed */

#endif

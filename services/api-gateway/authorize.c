/* authorize.c - IAM policy check for each request. An operator action (GW_OPERATOR:
 * accounts, quotas, service health) is refused to every caller outside the operator
 * account, whatever its policies say; then account administrators are allowed
 * every action; other users (the operator account's too) need an Allow in one of
 * their inline policies and no Deny. EC2 actions are checked against resource "*";
 * IAM actions on a user against that user's ARN. Conditions see the global keys
 * (aws:SourceIp, aws:CurrentTime, aws:username, ...); S3's own keys are absent here.
 * An EC2 action that tags what it creates (TagSpecification with a tag) also needs
 * ec2:CreateTags, with the condition key ec2:CreateAction naming the action, as EC2 asks:
 * a user allowed RunInstances but not CreateTags cannot tag through the launch. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway.h"
#include "jsonutil.h"
#include "policy.h"

static int condition_key(void *arg, const char *key, const char **value)
{
    int rc = policy_global_key(arg, key, value);
    if (rc < 0 && (!strncasecmp(key, "s3:", 3) || !strncasecmp(key, "ec2:", 4)))
        return 0;   /* an EC2 or IAM request has no S3 values; ec2:CreateAction is only
                     * in the ec2:CreateTags check of a tag on create (below) */
    return rc;
}

/* The keys of the ec2:CreateTags check of a tag on create: ec2:CreateAction, then the
 * global keys. */
typedef struct create_tags_keys {
    policy_globals_t *g;
    const char *create_action;
} create_tags_keys_t;

static int create_tags_key(void *arg, const char *key, const char **value)
{
    create_tags_keys_t *k = arg;
    if (!strcasecmp(key, "ec2:CreateAction")) {
        *value = k->create_action;
        return 1;
    }
    return condition_key(k->g, key, value);
}

/* Whether an EC2 request tags what it creates: a TagSpecification with at least one tag
 * (an empty one tags nothing, and EC2 does not ask for CreateTags then). */
static int tags_on_create(const gw_req_t *r)
{
    size_t i;
    json_t *spec;
    if (r->api != API_EC2 || !strcmp(r->action->name, "CreateTags"))
        return 0;
    json_array_foreach(json_object_get(r->params, "TagSpecification"), i, spec)
        if (json_array_size(json_object_get(spec, "Tag")))
            return 1;
    return 0;
}

int gw_authorize(gw_req_t *r, verr_t *e)
{
    if ((r->action->flags & GW_OPERATOR) && !json_bool(r->caller, "is_operator", 0))
        return verr_set(e, 403, "UnauthorizedOperation",
                        "You are not authorized to perform this operation. %s is for the operator account only.",
                        r->action->name);
    if (json_bool(r->caller, "is_admin", 0))
        return 0;
    char action[128], resource[700] = "*";
    snprintf(action, sizeof action, "%s:%s", r->api == API_IAM ? "iam" : "ec2", r->action->name);
    const char *uname = json_str(r->params, "UserName", NULL);
    if (r->api == API_IAM)
        snprintf(resource, sizeof resource, "arn:aws:iam::%s:user/%s", json_str(r->caller, "account_id", ""),
                 uname ? uname : json_str(r->caller, "user_name", ""));
    policy_globals_t g = {.caller = r->caller, .source_ip = r->http->remote,
                          .user_agent = r->user_agent, .referer = r->referer, .now = (long long)time(NULL)};
    policy_request_t q = {.action = action, .resource = resource, .key = condition_key, .key_arg = &g};
    const json_t *policies = json_object_get(r->caller, "policies");
    if (policy_decide(policies, &q) == POLICY_ALLOW) {
        if (!tags_on_create(r))
            return 0;
        create_tags_keys_t k = {.g = &g, .create_action = r->action->name};
        policy_request_t t = {.action = "ec2:CreateTags", .resource = "*", .key = create_tags_key, .key_arg = &k};
        if (policy_decide(policies, &t) == POLICY_ALLOW)
            return 0;
    }
    if (r->api == API_IAM)
        return verr_set(e, 403, "AccessDenied", "User: %s is not authorized to perform: %s on resource: %s",
                        json_str(r->caller, "arn", "?"), action, resource);
    return verr_set(e, 403, "UnauthorizedOperation", "You are not authorized to perform this operation.");
}

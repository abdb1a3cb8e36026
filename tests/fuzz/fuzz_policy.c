/* fuzz_policy.c - libFuzzer target for common/policy.c and policy_cond.c. Tenants send
 * policy documents (PutUserPolicy, PutBucketPolicy) and the object store evaluates a
 * bucket's policy on every request to it, so any bytes must validate or be refused with
 * no memory error, leak or undefined behaviour, and evaluation of anything (valid or
 * not) must keep its contract: a document with no Deny never denies explicitly, one with
 * no Allow never allows, and the same request always gets the same answer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

/* A fixed request context: some keys present, some absent, the rest unknown. */
static int key(void *arg, const char *k, const char **value)
{
    static const char *const present[][2] = {
        {"aws:SourceIp", "127.0.0.1"}, {"aws:CurrentTime", "2026-12-06T05:00:00Z"}, {"s3:prefix", "home/a/"},
        {"s3:max-keys", "10"}, {"aws:SecureTransport", "false"}, {"aws:username", "alice"},
    };
    (void)arg;
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        if (!strcasecmp(k, present[i][0])) {
            *value = present[i][1];
            return 1;
        }
    return !strncasecmp(k, "s3:", 3) ? 0 : -1;
}

static int has_effect(const json_t *doc, const char *effect)
{
    json_t *st = json_object_get(doc, "Statement");
    size_t n = json_is_array(st) ? json_array_size(st) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(st) ? json_array_get(st, i) : st;
        json_t *e = json_object_get(s, "Effect");
        if (json_is_string(e) && !strcmp(json_string_value(e), effect))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (!doc)
        return 0;
    verr_t e = {0};
    policy_validate_kind(doc, POLICY_IDENTITY, &e);
    policy_validate_kind(doc, POLICY_RESOURCE, &e);
    const policy_request_t reqs[] = {
        {.action = "s3:GetObject", .resource = "arn:aws:s3:::b/home/a/x", .key = key},
        {.action = "s3:ListBucket", .resource = "arn:aws:s3:::b", .account = "111122223333",
         .canonical_id = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
         .user_arn = "arn:aws:iam::111122223333:user/alice", .account_principal_root_only = 1, .key = key},
        {.action = "ec2:RunInstances", .resource = "*"},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        policy_decision_t d = policy_decide(doc, &reqs[i]);
        if (d != policy_decide(doc, &reqs[i]))
            __builtin_trap();
        if (json_is_object(doc) && d == POLICY_EXPLICIT_DENY && !has_effect(doc, "Deny"))
            __builtin_trap();
        if (json_is_object(doc) && d == POLICY_ALLOW && !has_effect(doc, "Allow"))
            __builtin_trap();
    }
    policy_glob((const char *)"a*b?c", "aXXbYc", 1);
    json_decref(doc);
    return 0;
}

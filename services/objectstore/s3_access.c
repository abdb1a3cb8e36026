/* s3_access.c - who may do what: one evaluation for every S3 request (and for the grants
 * other services ask for), as AWS decides it.
 *
 *  1. The operator's administrator may do everything (the cloud's own root).
 *  2. An explicit Deny in the caller's IAM policies or in the bucket policy refuses,
 *     whatever else allows (the owner account's administrator keeps the bucket policy
 *     operations, so a policy cannot lock its owner out for good).
 *  3. The caller's own account must allow it ("user context"): anonymous callers and
 *     account administrators have nothing to ask; an IAM user needs an Allow in its IAM
 *     policies, or, in the bucket owner's account, in the bucket policy naming the user
 *     (a Principal naming the account delegates to the account's own policies).
 *  4. The resource's owner must allow it ("resource context"): its own account may; else
 *     the bucket policy (for resources the bucket owner owns), else the ACL: the bucket's
 *     for bucket operations and writes, the object's for reading an object or its ACL.
 *
 * PublicAccessBlock narrows 4 (IgnorePublicAcls drops grants to AllUsers and
 * AuthenticatedUsers; RestrictPublicBuckets keeps a public bucket policy from granting
 * anything outside the owner's account) and refuses public ACLs and policies when they
 * are set (BlockPublicAcls, BlockPublicPolicy). With ObjectOwnership BucketOwnerEnforced
 * ACLs no longer count: the bucket owner owns every object and policies alone decide. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "caller.h"
#include "ids.h"
#include "jsonutil.h"
#include "objectstore.h"
#include "policy.h"

enum { AT_BUCKET = 0, AT_OBJECT = 1, AT_KEY = 2, AT_NONE = 3 };

/* Every operation of the table in s3_request.c, with the IAM action a policy names it
 * by (and the one when the request names a version: versionId, or a VersionId of
 * DeleteObjects) and the ACL permission that grants it (0: none does; only the owner or
 * a policy). An operation missing here is refused (s3_ops_check makes sure at start
 * that none is). on_object: AT_BUCKET = the bucket's ACL, checked when the request
 * arrives; AT_OBJECT = the object version's ACL, checked by the operation once it has
 * the version (s3_object_access); AT_KEY = checked per key by the operation
 * (DeleteObjects); AT_NONE = not checked (CORS preflight, which S3 answers to anyone). */
static const s3_access_rule_t rules[] = {
    /* op                            action                              with a version                      perm           on */
    {"ListBuckets",                  "s3:ListAllMyBuckets",              NULL,                               0,             AT_BUCKET},
    {"CreateBucket",                 "s3:CreateBucket",                  NULL,                               0,             AT_BUCKET},
    {"DeleteBucket",                 "s3:DeleteBucket",                  NULL,                               0,             AT_BUCKET},
    {"HeadBucket",                   "s3:ListBucket",                    NULL,                               S3_READ,       AT_BUCKET},
    {"GetBucketLocation",            "s3:GetBucketLocation",             NULL,                               0,             AT_BUCKET},
    {"ListObjects",                  "s3:ListBucket",                    NULL,                               S3_READ,       AT_BUCKET},
    {"ListObjectsV2",                "s3:ListBucket",                    NULL,                               S3_READ,       AT_BUCKET},
    {"ListObjectVersions",           "s3:ListBucketVersions",            NULL,                               S3_READ,       AT_BUCKET},
    {"ListMultipartUploads",         "s3:ListBucketMultipartUploads",    NULL,                               S3_READ,       AT_BUCKET},
    {"GetBucketAcl",                 "s3:GetBucketAcl",                  NULL,                               S3_READ_ACP,   AT_BUCKET},
    {"PutBucketAcl",                 "s3:PutBucketAcl",                  NULL,                               S3_WRITE_ACP,  AT_BUCKET},
    {"GetBucketPolicy",              "s3:GetBucketPolicy",               NULL,                               0,             AT_BUCKET},
    {"PutBucketPolicy",              "s3:PutBucketPolicy",               NULL,                               0,             AT_BUCKET},
    {"DeleteBucketPolicy",           "s3:DeleteBucketPolicy",            NULL,                               0,             AT_BUCKET},
    {"GetBucketPolicyStatus",        "s3:GetBucketPolicyStatus",         NULL,                               0,             AT_BUCKET},
    {"GetBucketOwnershipControls",   "s3:GetBucketOwnershipControls",    NULL,                               0,             AT_BUCKET},
    {"PutBucketOwnershipControls",   "s3:PutBucketOwnershipControls",    NULL,                               0,             AT_BUCKET},
    {"DeleteBucketOwnershipControls","s3:PutBucketOwnershipControls",    NULL,                               0,             AT_BUCKET},
    {"GetPublicAccessBlock",         "s3:GetBucketPublicAccessBlock",    NULL,                               0,             AT_BUCKET},
    {"PutPublicAccessBlock",         "s3:PutBucketPublicAccessBlock",    NULL,                               0,             AT_BUCKET},
    {"DeletePublicAccessBlock",      "s3:PutBucketPublicAccessBlock",    NULL,                               0,             AT_BUCKET},
    {"GetBucketCors",                "s3:GetBucketCORS",                 NULL,                               0,             AT_BUCKET},
    {"PutBucketCors",                "s3:PutBucketCORS",                 NULL,                               0,             AT_BUCKET},
    {"DeleteBucketCors",             "s3:PutBucketCORS",                 NULL,                               0,             AT_BUCKET},
    {"GetBucketTagging",             "s3:GetBucketTagging",              NULL,                               0,             AT_BUCKET},
    {"PutBucketTagging",             "s3:PutBucketTagging",              NULL,                               0,             AT_BUCKET},
    {"DeleteBucketTagging",          "s3:PutBucketTagging",              NULL,                               0,             AT_BUCKET},
    {"GetBucketVersioning",          "s3:GetBucketVersioning",           NULL,                               0,             AT_BUCKET},
    {"PutBucketVersioning",          "s3:PutBucketVersioning",           NULL,                               0,             AT_BUCKET},
    {"PutObject",                    "s3:PutObject",                     NULL,                               S3_WRITE,      AT_BUCKET},
    {"CopyObject",                   "s3:PutObject",                     NULL,                               S3_WRITE,      AT_BUCKET},
    {"CreateMultipartUpload",        "s3:PutObject",                     NULL,                               S3_WRITE,      AT_BUCKET},
    {"UploadPart",                   "s3:PutObject",                     NULL,                               S3_WRITE,      AT_BUCKET},
    {"UploadPartCopy",               "s3:PutObject",                     NULL,                               S3_WRITE,      AT_BUCKET},
    {"CompleteMultipartUpload",      "s3:PutObject",                     NULL,                               S3_WRITE,      AT_BUCKET},
    /* S3 lets an upload's initiator abort and list it; whoever may write stands for it */
    {"AbortMultipartUpload",         "s3:AbortMultipartUpload",          NULL,                               S3_WRITE,      AT_BUCKET},
    {"ListParts",                    "s3:ListMultipartUploadParts",      NULL,                               S3_WRITE,      AT_BUCKET},
    /* deleting is the bucket's business (S3: WRITE on the bucket), whoever owns the object */
    {"DeleteObject",                 "s3:DeleteObject",                  "s3:DeleteObjectVersion",           S3_WRITE,      AT_BUCKET},
    {"DeleteObjects",                "s3:DeleteObject",                  "s3:DeleteObjectVersion",           S3_WRITE,      AT_KEY},
    {"GetObject",                    "s3:GetObject",                     "s3:GetObjectVersion",              S3_READ,       AT_OBJECT},
    {"HeadObject",                   "s3:GetObject",                     "s3:GetObjectVersion",              S3_READ,       AT_OBJECT},
    {"GetObjectAcl",                 "s3:GetObjectAcl",                  "s3:GetObjectVersionAcl",           S3_READ_ACP,   AT_OBJECT},
    {"PutObjectAcl",                 "s3:PutObjectAcl",                  "s3:PutObjectVersionAcl",           S3_WRITE_ACP,  AT_OBJECT},
    /* no ACL permission grants tags (S3's mapping): the object's owner or a policy */
    {"GetObjectTagging",             "s3:GetObjectTagging",              "s3:GetObjectVersionTagging",       0,             AT_OBJECT},
    {"PutObjectTagging",             "s3:PutObjectTagging",              "s3:PutObjectVersionTagging",       0,             AT_OBJECT},
    {"DeleteObjectTagging",          "s3:DeleteObjectTagging",           "s3:DeleteObjectVersionTagging",    0,             AT_OBJECT},
    {"OptionsBucket",                "s3:Options",                       NULL,                               0,             AT_NONE},
    {"OptionsObject",                "s3:Options",                       NULL,                               0,             AT_NONE},
};

const s3_access_rule_t *s3_access_rule(const char *op)
{
    for (size_t i = 0; i < ARRAY_LEN(rules); i++)
        if (!strcmp(rules[i].op, op))
            return &rules[i];
    return NULL;
}

/* ---- condition keys --------------------------------------------------------------- */

typedef struct keyctx {
    const s3_req_t *r;
    const s3_bucket_t *b;
    const char *version_id;           /* the version the request names, or NULL */
    policy_globals_t g;
} keyctx_t;

static const char *const header_keys[] = {
    "x-amz-acl", "x-amz-content-sha256", "x-amz-copy-source", "x-amz-metadata-directive", "x-amz-grant-read",
    "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control", NULL,
};

static int s3_key(void *arg, const char *key, const char **value)
{
    keyctx_t *k = arg;
    const s3_req_t *r = k->r;
    if (r->http && !k->g.source_ip) {   /* looked up only when a condition asks */
        k->g.source_ip = r->http->remote;
        k->g.user_agent = s3_header(r, "User-Agent");
        k->g.referer = s3_header(r, "Referer");
    }
    int rc = policy_global_key(&k->g, key, value);
    if (rc >= 0)
        return rc;
    if (strncasecmp(key, "s3:", 3))
        return -1;
    const char *name = key + 3;
    *value = NULL;
    if (!strcasecmp(name, "ResourceAccount"))
        *value = k->b->owner;
    else if (!strcasecmp(name, "VersionId"))
        *value = k->version_id;
    else if (!r->http)
        return 0;   /* a grant asked over the bus: no request headers or parameters */
    else if (!strcasecmp(name, "prefix") || !strcasecmp(name, "delimiter") || !strcasecmp(name, "max-keys"))
        *value = s3_query(r, !strcasecmp(name, "prefix") ? "prefix" : !strcasecmp(name, "delimiter") ? "delimiter"
                                                                                                      : "max-keys");
    else if (!strcasecmp(name, "signatureversion") || !strcasecmp(name, "authType")) {
        int header = s3_header(r, "Authorization") != NULL, v2 = s3_query(r, "AWSAccessKeyId") != NULL;
        if (r->caller && !strcasecmp(name, "authType"))
            *value = header ? "REST-HEADER" : "REST-QUERY-STRING";
        else if (r->caller)
            *value = v2 ? "AWS" : "AWS4-HMAC-SHA256";
    } else {
        for (int i = 0; header_keys[i]; i++)
            if (!strcasecmp(name, header_keys[i]))
                *value = s3_header(r, header_keys[i]);
    }
    return *value ? 1 : 0;
}

/* ---- the decision ------------------------------------------------------------------ */

static int pab_flag(const s3_bucket_t *b, const char *name)
{
    return json_is_true(json_object_get(b->pab, name));
}

static int denied(verr_t *e)
{
    return verr_set(e, 403, "AccessDenied", "Access Denied");
}

static int policy_op(const char *op)
{
    return !strcmp(op, "GetBucketPolicy") || !strcmp(op, "PutBucketPolicy") || !strcmp(op, "DeleteBucketPolicy");
}

int s3_access_check(const s3_req_t *r, const s3_bucket_t *b, const char *op, const char *key,
                    const char *version_id, const json_t *object_acl, verr_t *e)
{
    const s3_access_rule_t *rule = s3_access_rule(op);
    if (!rule)   /* s3_ops_check keeps the table whole; refuse rather than guess */
        return verr_set(e, 403, "AccessDenied", "Access Denied (no access rule for %s)", op);
    const json_t *caller = r->caller;
    if (caller_is_operator_admin(caller))
        return 0;
    const char *action = version_id && rule->version_action ? rule->version_action : rule->action;
    const char *acct = caller ? json_str(caller, "account_id", NULL) : NULL;
    if (acct && strlen(acct) != 12)
        acct = NULL;
    int admin = caller && json_bool(caller, "is_admin", 0);
    int same = acct && !strcmp(acct, b->owner);
    char resource[S3_MAX_KEY + 128], canon[65] = "";
    snprintf(resource, sizeof resource, "arn:aws:s3:::%s%s%s", b->name, key ? "/" : "", key ? key : "");
    if (acct && b->policy)   /* only a bucket policy's Principal names accounts by it */
        ids_canonical_user(acct, canon);
    keyctx_t kc = {r, b, version_id, {.caller = caller, .now = (long long)time(NULL)}};
    policy_request_t q = {.action = action, .resource = resource, .account = acct,
                          .canonical_id = acct ? canon : NULL, .user_arn = json_str(caller, "arn", NULL),
                          .is_root = admin, .account_principal_root_only = same, .key = s3_key, .key_arg = &kc};

    policy_decision_t iam = caller && !admin ? policy_decide(json_object_get(caller, "policies"), &q)
                                             : POLICY_IMPLICIT_DENY;
    policy_decision_t bp = b->policy ? policy_decide(b->policy, &q) : POLICY_IMPLICIT_DENY;
    if (bp == POLICY_ALLOW && !same && pab_flag(b, "RestrictPublicBuckets") && s3_policy_is_public(b->policy))
        bp = POLICY_IMPLICIT_DENY;
    if (iam == POLICY_EXPLICIT_DENY || (bp == POLICY_EXPLICIT_DENY && !(same && admin && policy_op(op))))
        return denied(e);

    /* the caller's own account */
    if (!(!caller || admin || iam == POLICY_ALLOW || (same && bp == POLICY_ALLOW)))
        return denied(e);

    if (!*b->owner)
        return 0;   /* ListBuckets, CreateBucket: no resource owner to ask */
    /* the resource's owner */
    int enforced = !strcmp(b->ownership, "BucketOwnerEnforced");
    const char *owner = b->owner;
    const json_t *grants = b->acl;
    if (rule->on_object == AT_OBJECT && object_acl && !enforced) {
        owner = json_str(object_acl, "owner", b->owner);
        grants = json_object_get(object_acl, "grants");
    }
    if (acct && !strcmp(acct, owner))
        return 0;
    if (bp == POLICY_ALLOW && !strcmp(owner, b->owner))
        return 0;
    if (!enforced && rule->perm &&
        (s3_acl_perms(grants, acct, !pab_flag(b, "IgnorePublicAcls")) & rule->perm) == rule->perm)
        return 0;
    return denied(e);
}

int s3_authorize(s3_req_t *r, verr_t *e)
{
    const s3_access_rule_t *rule = s3_access_rule(r->op->name);
    if (!rule)
        return verr_set(e, 403, "AccessDenied", "Access Denied (no access rule for %s)", r->op->name);
    if (rule->on_object == AT_NONE)
        return 0;
    if (r->op->level == 0 || !strcmp(r->op->name, "CreateBucket")) {
        /* no bucket to decide on: the caller's own policies alone */
        if (!r->caller)
            return verr_set(e, 403, "AccessDenied", "Anonymous users cannot do this.");
        if (json_bool(r->caller, "is_admin", 0))
            return 0;
        s3_bucket_t none = {.owner = ""};
        snprintf(none.name, sizeof none.name, "%s", r->bucket);
        return s3_access_check(r, &none, r->op->name, NULL, NULL, NULL, e);
    }
    if (!r->have_bucket || rule->on_object != AT_BUCKET)
        return 0;   /* NoSuchBucket, or checked by the operation */
    return s3_access_check(r, &r->row, r->op->name, r->key[0] ? r->key : NULL, s3_query(r, "versionId"), NULL, e);
}

/* ---- PublicAccessBlock -------------------------------------------------------------- */

int s3_access_block_acl(const s3_bucket_t *b, const json_t *acl, verr_t *e)
{
    if (acl && pab_flag(b, "BlockPublicAcls") && s3_acl_is_public(json_object_get(acl, "grants")))
        return verr_set(e, 403, "AccessDenied", "Access Denied: the bucket's PublicAccessBlock refuses public ACLs");
    return 0;
}

/* Conditions that keep an Allow to everyone from being public: they name who or where. */
static int narrowing(const json_t *cond)
{
    static const char *const keys[] = {"aws:SourceIp", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:userid",
                                       "aws:username", NULL};
    const char *op, *k;
    json_t *block, *v;
    json_object_foreach((json_t *)cond, op, block) {
        if (strstr(op, "Not") || strstr(op, "IfExists") || !strcmp(op, "Null"))
            continue;
        json_object_foreach(block, k, v)
            for (int i = 0; keys[i]; i++)
                if (!strcasecmp(k, keys[i]) && !(json_is_string(v) && !strcmp(json_string_value(v), "0.0.0.0/0")))
                    return 1;
    }
    return 0;
}

static int everyone(const json_t *p)
{
    if (json_is_string(p))
        return !strcmp(json_string_value(p), "*");
    json_t *aws = json_object_get(p, "AWS");
    if (json_is_string(aws))
        return !strcmp(json_string_value(aws), "*");
    size_t i;
    json_t *v;
    json_array_foreach(aws, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), "*"))
            return 1;
    return 0;
}

int s3_policy_is_public(const json_t *policy)
{
    json_t *st = json_object_get(policy, "Statement");
    size_t n = json_is_array(st) ? json_array_size(st) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(st) ? json_array_get(st, i) : st;
        if (strcmp(json_str(s, "Effect", ""), "Allow"))
            continue;
        int all = json_object_get(s, "NotPrincipal") || everyone(json_object_get(s, "Principal"));
        if (all && !narrowing(json_object_get(s, "Condition")))
            return 1;
    }
    return 0;
}

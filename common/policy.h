/* policy.h - IAM-style policy documents: the identity policies attached to users (checked
 * by the gateway and the object store on every request) and resource policies (S3 bucket
 * policies, which also name a Principal).
 *
 * A policy document is JSON: {"Version": "2012-10-17", "Statement": [ {"Effect":
 * "Allow"|"Deny", "Action": "ec2:Describe*" | [...], "Resource": "*" | "arn:..." | [...],
 * "Condition": {...}} ]} (a single Statement object is accepted too; NotAction/NotResource
 * too; resource policies add Principal or NotPrincipal). Matching is case-insensitive for
 * actions ("ec2:describe*" matches "ec2:DescribeKeyPairs") and case-sensitive for
 * resources; '*' matches any run of characters and '?' one character. An explicit Deny in
 * any document wins over every Allow; with no matching Allow the answer is an implicit
 * deny.
 *
 * Conditions (policy_cond.c): the operators String*, Numeric*, Date*, Bool, IpAddress,
 * NotIpAddress, Arn*, Null, each with ...IfExists, over the keys policy_cond_keys lists.
 * A key the request does not have makes a condition false, and a negated one (StringNot*,
 * NotIpAddress, ...) true, as AWS does. A key the evaluating service cannot answer at all
 * fails closed: the Allow does not apply, the Deny does. */
#ifndef VIRGA_POLICY_H
#define VIRGA_POLICY_H

#include <jansson.h>

#include "err.h"

typedef enum policy_decision {
    POLICY_IMPLICIT_DENY = 0,
    POLICY_ALLOW = 1,
    POLICY_EXPLICIT_DENY = 2,
} policy_decision_t;

/* What one condition key is in a request: 1 present (*value set), 0 absent (the request
 * has no such value, e.g. s3:prefix on a GetObject), -1 unknown to this evaluator. */
typedef int (*policy_key_fn)(void *arg, const char *key, const char **value);

/* One request as policies see it. The principal fields matter only to statements that
 * name a Principal (resource policies); NULL account = anonymous. */
typedef struct policy_request {
    const char *action;          /* "s3:GetObject" */
    const char *resource;        /* "arn:aws:s3:::bucket/key" ("*" when NULL) */
    const char *account;         /* the caller's account (12 digits), NULL anonymous */
    const char *canonical_id;    /* the account's canonical user id (64 hex) */
    const char *user_arn;        /* arn:aws:iam::ACCOUNT:user/NAME */
    int is_root;                 /* the account's administrator: the account itself */
    /* AWS's delegation rule: a Principal naming the caller's account (not the user
     * itself) allows only the account's root; its users need their own IAM Allow. */
    int account_principal_root_only;
    policy_key_fn key;           /* NULL: every key unknown */
    void *key_arg;
} policy_request_t;

/* Which kind of document is being validated: identity policies must not name a
 * Principal (IAM's MalformedPolicyDocument), resource policies must (S3's
 * MalformedPolicy, also for every other fault). */
typedef enum policy_kind { POLICY_IDENTITY, POLICY_RESOURCE } policy_kind_t;

/* Check that a document is well-formed (for PutUserPolicy): MalformedPolicyDocument 400
 * with a message saying what is wrong. */
int policy_validate(const json_t *doc, verr_t *e);
int policy_validate_kind(const json_t *doc, policy_kind_t kind, verr_t *e);
/* Evaluate an array of documents (or a single document) for action ("ec2:RunInstances")
 * and resource ("*" or an ARN), with no request context (every condition key unknown). */
policy_decision_t policy_evaluate(const json_t *docs, const char *action, const char *resource);
/* The same with the request's principal and condition keys. */
policy_decision_t policy_decide(const json_t *docs, const policy_request_t *q);
/* Glob match used above; exposed for tests. ci = case-insensitive. */
int policy_glob(const char *pattern, const char *s, int ci);

/* ---- condition keys every service can answer --------------------------------------- */

/* The global keys (aws:*) of one request. Strings may be NULL (absent). */
typedef struct policy_globals {
    const json_t *caller;        /* {account_id, user_name, user_id, arn}, NULL anonymous */
    const char *source_ip;
    const char *user_agent;
    const char *referer;
    int secure_transport;
    long long now;               /* Unix seconds */
    char buf[2][40];             /* formatted times (filled on demand) */
} policy_globals_t;

/* Value of a global key (aws:SourceIp, aws:CurrentTime, aws:username, ...): 1 present,
 * 0 absent, -1 when key is not a global key. */
int policy_global_key(policy_globals_t *g, const char *key, const char **value);

#endif

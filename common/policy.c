/* policy.c - IAM-style policy documents: validation when a tenant stores one
 * (PutUserPolicy, PutBucketPolicy) and evaluation on every request (gateway, object
 * store). Validation is strict and says what is wrong, because a tenant fixing a
 * document needs the element and the statement; evaluation is forgiving of nothing: a
 * statement it cannot understand never grants, and an explicit Deny anywhere wins. The
 * glob is the two-pointer backtracking wildcard matcher, O(len(pattern) * len(subject))
 * at worst, so a hostile pattern such as "a*a*a*a*b" cannot make the gateway spin.
 * Conditions are in policy_cond.c. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#include "ids.h"
#include "policy_cond.h"

/* What is being validated, and the code its faults carry. */
typedef struct vctx {
    policy_kind_t kind;
    const char *code;        /* IAM: MalformedPolicyDocument; S3: MalformedPolicy */
} vctx_t;

/* ---- glob ----------------------------------------------------------------------- */

static int fold(int c, int ci)
{
    return (ci && c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* '*' matches any run (also empty), '?' exactly one byte. On a mismatch after a '*',
 * retry with that '*' swallowing one more byte; only the latest '*' matters, since any
 * match an earlier one could find is also found by letting the latest absorb it. */
int policy_glob(const char *pattern, const char *s, int ci)
{
    const char *star = NULL, *resume = NULL;

    if (!pattern || !s)
        return 0;
    while (*s) {
        if (*pattern == '*') {
            star = pattern++;
            resume = s;
        } else if (*pattern && (*pattern == '?' ||
                                fold((unsigned char)*pattern, ci) == fold((unsigned char)*s, ci))) {
            pattern++;
            s++;
        } else if (star) {
            pattern = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

/* ---- validation ----------------------------------------------------------------- */

/* IAM wants "service:pattern" or "*": the vendor prefix is what scopes an action. */
static int action_ok(const char *a)
{
    const char *colon = strchr(a, ':');

    if (strcmp(a, "*") == 0)
        return 1;
    if (!colon || colon == a || colon[1] == '\0')
        return 0;
    for (const char *p = a; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '*' || *p == '?'))
            return 0;
    return 1;
}

static int resource_ok(const char *r)
{
    return strcmp(r, "*") == 0 || strncmp(r, "arn:", 4) == 0;
}

/* Action/NotAction/Resource/NotResource: a string or an array of strings, each checked
 * by ok(). Actions must be a non-empty list; an empty Resource list is accepted. */
static int check_list(const vctx_t *c, const json_t *v, const char *elem, size_t sn, int need_items,
                      int (*ok)(const char *), const char *want, verr_t *e)
{
    size_t i;
    json_t *item;

    if (json_is_string(v)) {
        if (!ok(json_string_value(v)))
            return verr_set(e, 400, c->code, "Statement %zu: %s '%.128s' %s", sn, elem,
                            json_string_value(v), want);
        return 0;
    }
    if (!json_is_array(v))
        return verr_set(e, 400, c->code, "Statement %zu: %s must be a string or an array "
                        "of strings", sn, elem);
    if (need_items && json_array_size(v) == 0)
        return verr_set(e, 400, c->code, "Statement %zu: %s must not be empty", sn, elem);
    json_array_foreach(v, i, item) {
        if (!json_is_string(item))
            return verr_set(e, 400, c->code, "Statement %zu: %s must contain only strings",
                            sn, elem);
        if (!ok(json_string_value(item)))
            return verr_set(e, 400, c->code, "Statement %zu: %s '%.128s' %s", sn, elem,
                            json_string_value(item), want);
    }
    return 0;
}

/* Exactly one of yes/no (Action/NotAction, Resource/NotResource) must be present. */
static int check_pair(const vctx_t *c, const json_t *st, const char *yes, const char *no, size_t sn,
                      int need_items, int (*ok)(const char *), const char *want, verr_t *e)
{
    json_t *y = json_object_get(st, yes), *n = json_object_get(st, no);

    if (y && n)
        return verr_set(e, 400, c->code, "Statement %zu: %s and %s cannot both be present",
                        sn, yes, no);
    if (!y && !n)
        return verr_set(e, 400, c->code, "Statement %zu: missing %s (or %s)", sn, yes, no);
    return y ? check_list(c, y, yes, sn, need_items, ok, want, e)
             : check_list(c, n, no, sn, need_items, ok, want, e);
}

/* A principal value: "*", an account (12 digits, arn:aws:iam::ACCOUNT:root), a user
 * (arn:aws:iam::ACCOUNT:user/NAME) or a canonical user id (64 hex digits). */
static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int canonical_ok(const char *s)
{
    return ids_canonical_valid(s);
}

/* "arn:aws:iam::ACCOUNT:" and what follows it, or NULL. */
static const char *iam_arn_rest(const char *s, char account[13])
{
    if (strncmp(s, "arn:aws:iam::", 13) || !digits(s + 13, 12) || s[25] != ':')
        return NULL;
    memcpy(account, s + 13, 12);
    account[12] = 0;
    return s + 26;
}

static int aws_principal_ok(const char *s)
{
    char acct[13];
    const char *rest;
    if (!strcmp(s, "*") || (strlen(s) == 12 && digits(s, 12)) || canonical_ok(s))
        return 1;
    if (!(rest = iam_arn_rest(s, acct)))
        return 0;
    return !strcmp(rest, "root") || (!strncmp(rest, "user/", 5) && rest[5]);
}

static int principal_values_ok(const json_t *v, int (*ok)(const char *))
{
    size_t i;
    json_t *item;
    if (json_is_string(v))
        return ok(json_string_value(v));
    if (!json_is_array(v) || json_array_size(v) == 0)
        return 0;
    json_array_foreach(v, i, item)
        if (!json_is_string(item) || !ok(json_string_value(item)))
            return 0;
    return 1;
}

static int check_principal(const vctx_t *c, const json_t *st, size_t sn, verr_t *e)
{
    json_t *p = json_object_get(st, "Principal"), *np = json_object_get(st, "NotPrincipal");
    if (c->kind == POLICY_IDENTITY) {
        if (p || np)
            return verr_set(e, 400, c->code, "Statement %zu: a user policy must not specify a %s", sn,
                            p ? "Principal" : "NotPrincipal");
        return 0;
    }
    if (p && np)
        return verr_set(e, 400, c->code, "Statement %zu: Principal and NotPrincipal cannot both be present", sn);
    if (!p && !np)
        return verr_set(e, 400, c->code, "Statement %zu: missing Principal", sn);
    json_t *v = p ? p : np;
    if (json_is_string(v) && !strcmp(json_string_value(v), "*"))
        return 0;
    const char *type;
    json_t *vals;
    if (!json_is_object(v) || json_object_size(v) == 0)
        return verr_set(e, 400, c->code, "Statement %zu: Invalid principal in policy", sn);
    json_object_foreach(v, type, vals) {
        int ok = !strcmp(type, "AWS") ? principal_values_ok(vals, aws_principal_ok)
               : !strcmp(type, "CanonicalUser") ? principal_values_ok(vals, canonical_ok) : 0;
        if (!ok)
            return verr_set(e, 400, c->code, "Statement %zu: Invalid principal in policy (%.32s)", sn, type);
    }
    return 0;
}

/* Only the elements evaluation understands are accepted: storing an element we would
 * ignore would let a tenant believe a restriction is in force when it is not. */
static int check_keys(const vctx_t *c, const json_t *st, size_t sn, verr_t *e)
{
    static const char *const known[] = {"Sid", "Effect", "Action", "NotAction", "Resource",
                                        "NotResource", "Condition", "Principal", "NotPrincipal"};
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)st, key, v) {
        size_t i;
        for (i = 0; i < ARRAY_LEN(known); i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (i == ARRAY_LEN(known))
            return verr_set(e, 400, c->code, "Statement %zu: unknown element '%.64s'", sn, key);
    }
    if (check_principal(c, st, sn, e) < 0)
        return -1;
    v = json_object_get(st, "Condition");
    return v ? policy_cond_validate(v, sn, c->code, e) : 0;
}

static int check_statement(const vctx_t *c, const json_t *st, size_t sn, verr_t *e)
{
    if (!json_is_object(st))
        return verr_set(e, 400, c->code, "Statement %zu must be a JSON object", sn);
    if (check_keys(c, st, sn, e) < 0)
        return -1;
    json_t *sid = json_object_get(st, "Sid");
    if (sid && !json_is_string(sid))
        return verr_set(e, 400, c->code, "Statement %zu: Sid must be a string", sn);
    const char *effect = json_string_value(json_object_get(st, "Effect"));
    if (!effect)
        return verr_set(e, 400, c->code, "Statement %zu: missing Effect (Allow or Deny)", sn);
    if (strcmp(effect, "Allow") != 0 && strcmp(effect, "Deny") != 0)
        return verr_set(e, 400, c->code, "Statement %zu: Effect must be Allow or Deny, not "
                        "'%.64s'", sn, effect);
    if (check_pair(c, st, "Action", "NotAction", sn, 1, action_ok,
                   "must be '*' or prefixed by a service, e.g. ec2:DescribeInstances", e) < 0)
        return -1;
    return check_pair(c, st, "Resource", "NotResource", sn, 0, resource_ok,
                      "must be '*' or an ARN", e);
}

int policy_validate_kind(const json_t *doc, policy_kind_t kind, verr_t *e)
{
    const char *key;
    json_t *v;
    vctx_t cx = {kind, kind == POLICY_RESOURCE ? "MalformedPolicy" : "MalformedPolicyDocument"};
    const vctx_t *c = &cx;

    if (!json_is_object(doc))
        return verr_set(e, 400, c->code, "The policy document must be a JSON object");
    json_object_foreach((json_t *)doc, key, v) {
        if (strcmp(key, "Version") != 0 && strcmp(key, "Statement") != 0 &&
            strcmp(key, "Id") != 0)
            return verr_set(e, 400, c->code, "Unknown policy element '%.64s'", key);
    }
    v = json_object_get(doc, "Version");
    if (v && !(json_is_string(v) && (strcmp(json_string_value(v), "2012-10-17") == 0 ||
                                     strcmp(json_string_value(v), "2008-10-17") == 0)))
        return verr_set(e, 400, c->code, "Version must be \"2012-10-17\" or \"2008-10-17\"");
    v = json_object_get(doc, "Id");
    if (v && !json_is_string(v))
        return verr_set(e, 400, c->code, "Id must be a string");
    v = json_object_get(doc, "Statement");
    if (!v)
        return verr_set(e, 400, c->code, "The policy document has no Statement");
    if (json_is_object(v))
        return check_statement(c, v, 1, e);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return verr_set(e, 400, c->code, "Statement must be an object or a non-empty array");
    for (size_t i = 0; i < json_array_size(v); i++)
        if (check_statement(c, json_array_get(v, i), i + 1, e) < 0)
            return -1;
    return 0;
}

int policy_validate(const json_t *doc, verr_t *e)
{
    return policy_validate_kind(doc, POLICY_IDENTITY, e);
}

/* ---- evaluation ----------------------------------------------------------------- */

/* Does subject match any pattern in v (a string or an array of strings)? */
static int any_match(const json_t *v, const char *subject, int ci)
{
    size_t i;
    json_t *item;

    if (json_is_string(v))
        return policy_glob(json_string_value(v), subject, ci);
    json_array_foreach(v, i, item)
        if (json_is_string(item) && policy_glob(json_string_value(item), subject, ci))
            return 1;
    return 0;
}

/* Whether the statement's yes/no element pair covers subject; -1 when the pair is not
 * well-formed (neither or both present, or of the wrong type). */
static int covers(const json_t *st, const char *yes, const char *no, const char *subject, int ci)
{
    json_t *y = json_object_get(st, yes), *n = json_object_get(st, no);

    if (!y == !n)
        return -1;
    json_t *v = y ? y : n;
    if (!json_is_string(v) && !json_is_array(v))
        return -1;
    int m = any_match(v, subject, ci);
    return y ? m : !m;
}

/* How a statement's Principal element names the caller. */
enum { PM_NONE, PM_ACCOUNT, PM_DIRECT };

static int principal_one(const char *type, const char *p, const policy_request_t *q)
{
    char acct[13];
    const char *rest;
    if (!strcmp(p, "*"))
        return PM_DIRECT;
    if (!q->account)
        return PM_NONE;
    if (!strcmp(type, "CanonicalUser") || canonical_ok(p))
        return q->canonical_id && !strcmp(p, q->canonical_id) ? PM_ACCOUNT : PM_NONE;
    if (!strcmp(p, q->account))
        return PM_ACCOUNT;
    if (!(rest = iam_arn_rest(p, acct)) || strcmp(acct, q->account))
        return PM_NONE;
    if (!strcmp(rest, "root"))
        return PM_ACCOUNT;
    return q->user_arn && !strcmp(p, q->user_arn) ? PM_DIRECT : PM_NONE;
}

/* The best match of the caller among a Principal's values. */
static int principal_match(const json_t *v, const policy_request_t *q)
{
    if (json_is_string(v))
        return principal_one("AWS", json_string_value(v), q);
    int best = PM_NONE;
    const char *type;
    json_t *vals;
    json_object_foreach((json_t *)v, type, vals) {
        size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_is_array(vals) ? json_array_get(vals, i) : vals);
            int m = s ? principal_one(type, s, q) : PM_NONE;
            if (m > best)
                best = m;
        }
    }
    return best;
}

/* The effect a statement has on the request: POLICY_IMPLICIT_DENY when it does not
 * apply. Stored documents were validated, but anything else reaching here fails
 * closed: an unreadable Allow grants nothing, and a Condition that cannot be decided
 * here keeps an Allow from applying while a Deny applies as if it held. */
static policy_decision_t statement_effect(const json_t *st, const policy_request_t *q)
{
    if (!json_is_object(st))
        return POLICY_IMPLICIT_DENY;
    const char *effect = json_string_value(json_object_get(st, "Effect"));
    int deny = effect && strcmp(effect, "Deny") == 0;
    int allow = effect && strcmp(effect, "Allow") == 0;
    if (!deny && !allow)
        return POLICY_IMPLICIT_DENY;
    int a = covers(st, "Action", "NotAction", q->action, 1);
    int r = covers(st, "Resource", "NotResource", q->resource, 0);
    if (a <= 0 || r <= 0)
        return POLICY_IMPLICIT_DENY;
    json_t *p = json_object_get(st, "Principal"), *np = json_object_get(st, "NotPrincipal");
    if (p || np) {
        int m = p ? principal_match(p, q) : principal_match(np, q) == PM_NONE ? PM_DIRECT : PM_NONE;
        if (m == PM_NONE)
            return POLICY_IMPLICIT_DENY;
        if (allow && m == PM_ACCOUNT && q->account_principal_root_only && !q->is_root)
            return POLICY_IMPLICIT_DENY;
    }
    json_t *cond = json_object_get(st, "Condition");
    if (cond) {
        int h = policy_cond_holds(cond, q);
        if (h == 0 || (h < 0 && allow))
            return POLICY_IMPLICIT_DENY;
    }
    return deny ? POLICY_EXPLICIT_DENY : POLICY_ALLOW;
}

static policy_decision_t doc_effect(const json_t *doc, const policy_request_t *q)
{
    json_t *st = json_object_get(doc, "Statement");
    policy_decision_t best = POLICY_IMPLICIT_DENY;

    if (json_is_object(st))
        return statement_effect(st, q);
    for (size_t i = 0; i < json_array_size(st); i++) {
        policy_decision_t d = statement_effect(json_array_get(st, i), q);
        if (d == POLICY_EXPLICIT_DENY)
            return d;
        if (d == POLICY_ALLOW)
            best = d;
    }
    return best;
}

policy_decision_t policy_decide(const json_t *docs, const policy_request_t *req)
{
    policy_decision_t best = POLICY_IMPLICIT_DENY;

    if (!req || !req->action)
        return POLICY_IMPLICIT_DENY;
    policy_request_t q = *req;
    if (!q.resource)
        q.resource = "*";
    if (json_is_object(docs))
        return doc_effect(docs, &q);
    for (size_t i = 0; i < json_array_size(docs); i++) {
        policy_decision_t d = doc_effect(json_array_get(docs, i), &q);
        if (d == POLICY_EXPLICIT_DENY)
            return d;
        if (d == POLICY_ALLOW)
            best = d;
    }
    return best;
}

policy_decision_t policy_evaluate(const json_t *docs, const char *action, const char *resource)
{
    policy_request_t q = {.action = action, .resource = resource};
    return policy_decide(docs, &q);
}

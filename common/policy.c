/* policy.c - IAM-style policy documents: validation when a tenant stores one
 * (PutUserPolicy) and evaluation by the gateway on every request. Validation is strict
 * and says what is wrong, because a tenant fixing a document needs the element and the
 * statement; evaluation is forgiving of nothing: a statement it cannot understand never
 * grants, and an explicit Deny anywhere wins. The glob is the two-pointer backtracking
 * wildcard matcher, O(len(pattern) * len(subject)) at worst, so a hostile pattern such
 * as "a*a*a*a*b" cannot make the gateway spin. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#define MALFORMED "MalformedPolicyDocument"

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
static int check_list(const json_t *v, const char *elem, size_t sn, int need_items,
                      int (*ok)(const char *), const char *want, verr_t *e)
{
    size_t i;
    json_t *item;

    if (json_is_string(v)) {
        if (!ok(json_string_value(v)))
            return verr_set(e, 400, MALFORMED, "Statement %zu: %s '%.128s' %s", sn, elem,
                            json_string_value(v), want);
        return 0;
    }
    if (!json_is_array(v))
        return verr_set(e, 400, MALFORMED, "Statement %zu: %s must be a string or an array "
                        "of strings", sn, elem);
    if (need_items && json_array_size(v) == 0)
        return verr_set(e, 400, MALFORMED, "Statement %zu: %s must not be empty", sn, elem);
    json_array_foreach(v, i, item) {
        if (!json_is_string(item))
            return verr_set(e, 400, MALFORMED, "Statement %zu: %s must contain only strings",
                            sn, elem);
        if (!ok(json_string_value(item)))
            return verr_set(e, 400, MALFORMED, "Statement %zu: %s '%.128s' %s", sn, elem,
                            json_string_value(item), want);
    }
    return 0;
}

/* Exactly one of yes/no (Action/NotAction, Resource/NotResource) must be present. */
static int check_pair(const json_t *st, const char *yes, const char *no, size_t sn,
                      int need_items, int (*ok)(const char *), const char *want, verr_t *e)
{
    json_t *y = json_object_get(st, yes), *n = json_object_get(st, no);

    if (y && n)
        return verr_set(e, 400, MALFORMED, "Statement %zu: %s and %s cannot both be present",
                        sn, yes, no);
    if (!y && !n)
        return verr_set(e, 400, MALFORMED, "Statement %zu: missing %s (or %s)", sn, yes, no);
    return y ? check_list(y, yes, sn, need_items, ok, want, e)
             : check_list(n, no, sn, need_items, ok, want, e);
}

/* Only the elements evaluation understands are accepted: storing a Condition we would
 * ignore would let a tenant believe a restriction is in force when it is not. */
static int check_keys(const json_t *st, size_t sn, verr_t *e)
{
    static const char *const known[] = {"Sid", "Effect", "Action", "NotAction", "Resource",
                                        "NotResource"};
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)st, key, v) {
        size_t i;
        if (strcmp(key, "Condition") == 0)
            return verr_set(e, 400, MALFORMED, "Statement %zu: Condition is not supported", sn);
        if (strcmp(key, "Principal") == 0 || strcmp(key, "NotPrincipal") == 0)
            return verr_set(e, 400, MALFORMED, "Statement %zu: a user policy must not "
                            "specify a %s", sn, key);
        for (i = 0; i < ARRAY_LEN(known); i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (i == ARRAY_LEN(known))
            return verr_set(e, 400, MALFORMED, "Statement %zu: unknown element '%.64s'", sn, key);
    }
    return 0;
}

static int check_statement(const json_t *st, size_t sn, verr_t *e)
{
    if (!json_is_object(st))
        return verr_set(e, 400, MALFORMED, "Statement %zu must be a JSON object", sn);
    if (check_keys(st, sn, e) < 0)
        return -1;
    json_t *sid = json_object_get(st, "Sid");
    if (sid && !json_is_string(sid))
        return verr_set(e, 400, MALFORMED, "Statement %zu: Sid must be a string", sn);
    const char *effect = json_string_value(json_object_get(st, "Effect"));
    if (!effect)
        return verr_set(e, 400, MALFORMED, "Statement %zu: missing Effect (Allow or Deny)", sn);
    if (strcmp(effect, "Allow") != 0 && strcmp(effect, "Deny") != 0)
        return verr_set(e, 400, MALFORMED, "Statement %zu: Effect must be Allow or Deny, not "
                        "'%.64s'", sn, effect);
    if (check_pair(st, "Action", "NotAction", sn, 1, action_ok,
                   "must be '*' or prefixed by a service, e.g. ec2:DescribeInstances", e) < 0)
        return -1;
    return check_pair(st, "Resource", "NotResource", sn, 0, resource_ok,
                      "must be '*' or an ARN", e);
}

int policy_validate(const json_t *doc, verr_t *e)
{
    const char *key;
    json_t *v;

    if (!json_is_object(doc))
        return verr_set(e, 400, MALFORMED, "The policy document must be a JSON object");
    json_object_foreach((json_t *)doc, key, v) {
        if (strcmp(key, "Version") != 0 && strcmp(key, "Statement") != 0 &&
            strcmp(key, "Id") != 0)
            return verr_set(e, 400, MALFORMED, "Unknown policy element '%.64s'", key);
    }
    v = json_object_get(doc, "Version");
    if (v && !(json_is_string(v) && (strcmp(json_string_value(v), "2012-10-17") == 0 ||
                                     strcmp(json_string_value(v), "2008-10-17") == 0)))
        return verr_set(e, 400, MALFORMED, "Version must be \"2012-10-17\" or \"2008-10-17\"");
    v = json_object_get(doc, "Id");
    if (v && !json_is_string(v))
        return verr_set(e, 400, MALFORMED, "Id must be a string");
    v = json_object_get(doc, "Statement");
    if (!v)
        return verr_set(e, 400, MALFORMED, "The policy document has no Statement");
    if (json_is_object(v))
        return check_statement(v, 1, e);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return verr_set(e, 400, MALFORMED, "Statement must be an object or a non-empty array");
    for (size_t i = 0; i < json_array_size(v); i++)
        if (check_statement(json_array_get(v, i), i + 1, e) < 0)
            return -1;
    return 0;
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

/* The effect a statement has on (action, resource): POLICY_IMPLICIT_DENY when it does
 * not apply. Stored documents were validated, but anything else reaching here fails
 * closed: an unreadable or conditional Allow grants nothing, while a Deny whose
 * Condition we cannot evaluate is applied as if the condition held. */
static policy_decision_t statement_effect(const json_t *st, const char *action,
                                          const char *resource)
{
    if (!json_is_object(st))
        return POLICY_IMPLICIT_DENY;
    const char *effect = json_string_value(json_object_get(st, "Effect"));
    int deny = effect && strcmp(effect, "Deny") == 0;
    int allow = effect && strcmp(effect, "Allow") == 0;
    if (!deny && !allow)
        return POLICY_IMPLICIT_DENY;
    if (allow && json_object_get(st, "Condition"))
        return POLICY_IMPLICIT_DENY;
    int a = covers(st, "Action", "NotAction", action, 1);
    int r = covers(st, "Resource", "NotResource", resource, 0);
    if (a <= 0 || r <= 0)
        return POLICY_IMPLICIT_DENY;
    return deny ? POLICY_EXPLICIT_DENY : POLICY_ALLOW;
}

static policy_decision_t doc_effect(const json_t *doc, const char *action, const char *resource)
{
    json_t *st = json_object_get(doc, "Statement");
    policy_decision_t best = POLICY_IMPLICIT_DENY;

    if (json_is_object(st))
        return statement_effect(st, action, resource);
    for (size_t i = 0; i < json_array_size(st); i++) {
        policy_decision_t d = statement_effect(json_array_get(st, i), action, resource);
        if (d == POLICY_EXPLICIT_DENY)
            return d;
        if (d == POLICY_ALLOW)
            best = d;
    }
    return best;
}

policy_decision_t policy_evaluate(const json_t *docs, const char *action, const char *resource)
{
    policy_decision_t best = POLICY_IMPLICIT_DENY;

    if (!action)
        return POLICY_IMPLICIT_DENY;
    if (!resource)
        resource = "*";
    if (json_is_object(docs))
        return doc_effect(docs, action, resource);
    for (size_t i = 0; i < json_array_size(docs); i++) {
        policy_decision_t d = doc_effect(json_array_get(docs, i), action, resource);
        if (d == POLICY_EXPLICIT_DENY)
            return d;
        if (d == POLICY_ALLOW)
            best = d;
    }
    return best;
}

/* policy_cond.c - the Condition element of policy statements: validation when a
 * document is stored, evaluation against one request's condition keys, and the global
 * keys (aws:*) every service can answer.
 *
 * A Condition is {operator: {key: value | [values]}}: operators AND together, keys within
 * an operator AND together, values of one key OR together (NOR for the negated operators).
 * Keys are single-valued here, so ForAnyValue:/ForAllValues: reduce to the plain operator
 * (with AWS's answer for an absent key: false / true). Only keys listed in `keys` are
 * accepted: a stored condition on a key nobody supplies would look like a restriction
 * while never applying. */
#include "policy_cond.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jsonutil.h"

/* Keys a policy may test. The global ones are answered by policy_global_key; the s3:
 * ones by the object store (a request that is not an S3 request has none of them);
 * ec2:CreateAction by the gateway's ec2:CreateTags check of a tag on create. */
static const char *const keys[] = {
    "aws:SourceIp", "aws:SecureTransport", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalType",
    "aws:username", "aws:userid", "aws:CurrentTime", "aws:EpochTime", "aws:Referer", "aws:UserAgent",
    "s3:prefix", "s3:delimiter", "s3:max-keys", "s3:x-amz-acl", "s3:x-amz-content-sha256",
    "s3:x-amz-copy-source", "s3:x-amz-metadata-directive", "s3:x-amz-grant-read", "s3:x-amz-grant-write",
    "s3:x-amz-grant-read-acp", "s3:x-amz-grant-write-acp", "s3:x-amz-grant-full-control", "s3:VersionId",
    "s3:signatureversion", "s3:authType", "s3:ResourceAccount", "ec2:CreateAction", NULL,
};

typedef enum ctype { T_STRING, T_STRING_CI, T_LIKE, T_NUM, T_DATE, T_BOOL, T_IP, T_NULL } ctype_t;
enum { C_EQ, C_LT, C_LE, C_GT, C_GE };

typedef struct cond_op {
    const char *name;
    ctype_t type;
    int cmp;
    int negated;
} cond_op_t;

static const cond_op_t ops[] = {
    {"StringEquals", T_STRING, C_EQ, 0},          {"StringNotEquals", T_STRING, C_EQ, 1},
    {"StringEqualsIgnoreCase", T_STRING_CI, C_EQ, 0}, {"StringNotEqualsIgnoreCase", T_STRING_CI, C_EQ, 1},
    {"StringLike", T_LIKE, C_EQ, 0},              {"StringNotLike", T_LIKE, C_EQ, 1},
    {"NumericEquals", T_NUM, C_EQ, 0},            {"NumericNotEquals", T_NUM, C_EQ, 1},
    {"NumericLessThan", T_NUM, C_LT, 0},          {"NumericLessThanEquals", T_NUM, C_LE, 0},
    {"NumericGreaterThan", T_NUM, C_GT, 0},       {"NumericGreaterThanEquals", T_NUM, C_GE, 0},
    {"DateEquals", T_DATE, C_EQ, 0},              {"DateNotEquals", T_DATE, C_EQ, 1},
    {"DateLessThan", T_DATE, C_LT, 0},            {"DateLessThanEquals", T_DATE, C_LE, 0},
    {"DateGreaterThan", T_DATE, C_GT, 0},         {"DateGreaterThanEquals", T_DATE, C_GE, 0},
    {"Bool", T_BOOL, C_EQ, 0},
    {"IpAddress", T_IP, C_EQ, 0},                 {"NotIpAddress", T_IP, C_EQ, 1},
    /* ARNs are matched with wildcards whichever of the two names is used, as AWS does */
    {"ArnEquals", T_LIKE, C_EQ, 0},               {"ArnLike", T_LIKE, C_EQ, 0},
    {"ArnNotEquals", T_LIKE, C_EQ, 1},            {"ArnNotLike", T_LIKE, C_EQ, 1},
    {"Null", T_NULL, C_EQ, 0},
};

/* An operator name split into its parts: [ForAnyValue:|ForAllValues:]Op[IfExists]. */
typedef struct parsed_op {
    const cond_op_t *op;
    int if_exists;
    int all_values;          /* ForAllValues: an absent key satisfies it */
} parsed_op_t;

static int parse_op(const char *name, parsed_op_t *p)
{
    memset(p, 0, sizeof *p);
    if (!strncmp(name, "ForAnyValue:", 12))
        name += 12;
    else if (!strncmp(name, "ForAllValues:", 13))
        name += 13, p->all_values = 1;
    size_t n = strlen(name);
    if (n > 8 && !strcmp(name + n - 8, "IfExists"))
        n -= 8, p->if_exists = 1;
    for (size_t i = 0; i < ARRAY_LEN(ops); i++)
        if (strlen(ops[i].name) == n && !strncmp(ops[i].name, name, n)) {
            p->op = &ops[i];
            return p->op->type == T_NULL && p->if_exists ? -1 : 0;
        }
    return -1;
}

static const char *known_key(const char *k)
{
    for (int i = 0; keys[i]; i++)
        if (!strcasecmp(keys[i], k))
            return keys[i];
    return NULL;
}

/* ---- value types ---------------------------------------------------------------- */

static int parse_num(const char *s, double *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    *out = strtod(s, &end);
    return *end ? -1 : 0;
}

/* ISO 8601 (a date, or date and time with optional fraction and Z / +hh:mm) or Unix
 * seconds, as AWS accepts in Date conditions. */
static int parse_date(const char *s, long long *out)
{
    struct tm tm = {0};
    int n = 0;
    if (!s || !*s)
        return -1;
    if (strspn(s, "0123456789") == strlen(s)) {
        *out = atoll(s);
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return -1;
    const char *p = s + 10;
    if (*p == 'T') {
        int m = 0;
        if (sscanf(p, "T%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 || m != 9)
            return -1;
        p += m;
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                ;
    }
    long off = 0;
    if (*p == 'Z')
        p++;
    else if (*p == '+' || *p == '-') {
        int hh, mm, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &m) != 2 || m != 5)
            return -1;
        off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (long long)timegm(&tm) - off;
    return 0;
}

/* An address or CIDR block as an IPv6 address (IPv4 mapped into ::ffff:0:0/96) and a
 * prefix length in bits. */
static int parse_ip(const char *s, unsigned char a[16], int *bits)
{
    char buf[64];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    long plen = -1;
    if (slash) {
        char *end;
        *slash = 0;
        plen = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || plen < 0)
            return -1;
    }
    unsigned char v4[4];
    if (inet_pton(AF_INET, buf, v4) == 1) {
        if (plen > 32)
            return -1;
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, v4, 4);
        *bits = (int)(plen < 0 ? 128 : 96 + plen);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, a) == 1) {
        if (plen > 128)
            return -1;
        *bits = (int)(plen < 0 ? 128 : plen);
        return 0;
    }
    return -1;
}

static int ip_in(const char *block, const char *addr)
{
    unsigned char net[16], ip[16];
    int bits, ignored;
    if (parse_ip(block, net, &bits) < 0 || parse_ip(addr, ip, &ignored) < 0)
        return 0;
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(net, ip, (size_t)whole))
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net[whole] & mask) == (ip[whole] & mask);
}

static int compare(int cmp, double d)
{
    switch (cmp) {
    case C_LT: return d < 0;
    case C_LE: return d <= 0;
    case C_GT: return d > 0;
    case C_GE: return d >= 0;
    default: return d == 0;
    }
}

/* Does the request's value v match the policy's value p under op? */
static int value_matches(const cond_op_t *op, const char *p, const char *v)
{
    double a, b;
    long long x, y;
    switch (op->type) {
    case T_STRING: return !strcmp(p, v);
    case T_STRING_CI: return !strcasecmp(p, v);
    case T_LIKE: return policy_glob(p, v, 0);
    case T_NUM: return !parse_num(v, &a) && !parse_num(p, &b) && compare(op->cmp, a - b);
    case T_DATE: return !parse_date(v, &x) && !parse_date(p, &y) && compare(op->cmp, (double)(x - y));
    case T_BOOL: return !strcasecmp(p, v);
    case T_IP: return ip_in(p, v);
    case T_NULL: return 0;
    }
    return 0;
}

/* A policy value as text: JSON strings, numbers and booleans are all written as text
 * in policies ("NumericLessThan": {"s3:max-keys": 10} and "10" are the same). */
static const char *value_text(const json_t *v, char buf[64])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, 64, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, 64, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return buf;
}

/* ---- validation ----------------------------------------------------------------- */

static int value_ok(ctype_t t, const char *s)
{
    double d;
    long long l;
    unsigned char a[16];
    int bits;
    switch (t) {
    case T_NUM: return parse_num(s, &d) == 0;
    case T_DATE: return parse_date(s, &l) == 0;
    case T_BOOL:
    case T_NULL: return !strcasecmp(s, "true") || !strcasecmp(s, "false");
    case T_IP: return parse_ip(s, a, &bits) == 0;
    default: return 1;
    }
}

int policy_cond_validate(const json_t *cond, size_t sn, const char *code, verr_t *e)
{
    const char *opname, *key;
    json_t *block, *vals;
    if (!json_is_object(cond) || json_object_size(cond) == 0)
        return verr_set(e, 400, code, "Statement %zu: Condition must be a non-empty object", sn);
    json_object_foreach((json_t *)cond, opname, block) {
        parsed_op_t p;
        if (parse_op(opname, &p) < 0)
            return verr_set(e, 400, code, "Statement %zu: unknown condition operator '%.64s'", sn, opname);
        if (!json_is_object(block) || json_object_size(block) == 0)
            return verr_set(e, 400, code, "Statement %zu: %s must map condition keys to values", sn, opname);
        json_object_foreach(block, key, vals) {
            if (!known_key(key))
                return verr_set(e, 400, code, "Statement %zu: condition key '%.64s' is not supported", sn, key);
            size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
            if (n == 0)
                return verr_set(e, 400, code, "Statement %zu: %s %s has no values", sn, opname, key);
            for (size_t i = 0; i < n; i++) {
                char buf[64];
                const char *s = value_text(json_is_array(vals) ? json_array_get(vals, i) : vals, buf);
                if (!s || !value_ok(p.op->type, s))
                    return verr_set(e, 400, code, "Statement %zu: invalid value for %s %s", sn, opname, key);
            }
        }
    }
    return 0;
}

/* ---- evaluation ----------------------------------------------------------------- */

/* 1 holds, 0 does not, -1 unknown. */
static int key_holds(const parsed_op_t *p, const char *key, const json_t *vals, const policy_request_t *q)
{
    const char *v = NULL;
    const char *canon = known_key(key);
    int has = canon && q->key ? q->key(q->key_arg, canon, &v) : -1;
    if (has < 0)
        return -1;
    if (p->op->type == T_NULL) {
        char buf[64];
        const char *want = value_text(json_is_array(vals) ? json_array_get(vals, 0) : vals, buf);
        return want && !strcasecmp(want, "true") ? !has : has;
    }
    if (!has)
        return p->if_exists || p->all_values || p->op->negated;
    size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
    int any = 0;
    for (size_t i = 0; i < n && !any; i++) {
        char buf[64];
        const char *s = value_text(json_is_array(vals) ? json_array_get(vals, i) : vals, buf);
        if (!s)
            return -1;
        any = value_matches(p->op, s, v);
    }
    return p->op->negated ? !any : any;
}

int policy_cond_holds(const json_t *cond, const policy_request_t *q)
{
    const char *opname, *key;
    json_t *block, *vals;
    if (!json_is_object(cond) || json_object_size(cond) == 0)
        return -1;
    int unknown = 0;
    json_object_foreach((json_t *)cond, opname, block) {
        parsed_op_t p;
        if (parse_op(opname, &p) < 0 || !json_is_object(block) || json_object_size(block) == 0)
            return -1;
        json_object_foreach(block, key, vals) {
            int h = key_holds(&p, key, vals, q);
            if (h == 0)
                return 0;   /* one false part decides, whatever else is unknown */
            if (h < 0)
                unknown = 1;
        }
    }
    return unknown ? -1 : 1;
}

/* ---- global keys ---------------------------------------------------------------- */

int policy_global_key(policy_globals_t *g, const char *key, const char **value)
{
    const json_t *c = g->caller;
    const char *account = json_str(c, "account_id", NULL);
    *value = NULL;
    if (!strcasecmp(key, "aws:SourceIp"))
        *value = g->source_ip;
    else if (!strcasecmp(key, "aws:SecureTransport"))
        *value = g->secure_transport ? "true" : "false";
    else if (!strcasecmp(key, "aws:PrincipalAccount"))
        *value = account;
    else if (!strcasecmp(key, "aws:PrincipalArn"))
        *value = json_str(c, "arn", NULL);
    else if (!strcasecmp(key, "aws:PrincipalType"))
        *value = !c ? "Anonymous" : json_bool(c, "is_admin", 0) ? "Account" : "User";
    else if (!strcasecmp(key, "aws:username"))
        *value = c ? json_str(c, "user_name", NULL) : NULL;
    else if (!strcasecmp(key, "aws:userid")) {
        const char *uid = json_str(c, "user_id", "");
        *value = !c ? "anonymous" : *uid ? uid : account;
    } else if (!strcasecmp(key, "aws:CurrentTime")) {
        time_t t = (time_t)g->now;
        struct tm tm;
        strftime(g->buf[0], sizeof g->buf[0], "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        *value = g->buf[0];
    } else if (!strcasecmp(key, "aws:EpochTime")) {
        snprintf(g->buf[1], sizeof g->buf[1], "%lld", g->now);
        *value = g->buf[1];
    } else if (!strcasecmp(key, "aws:Referer"))
        *value = g->referer;
    else if (!strcasecmp(key, "aws:UserAgent"))
        *value = g->user_agent;
    else
        return -1;
    if (*value && !**value && strcasecmp(key, "aws:Referer") && strcasecmp(key, "aws:UserAgent"))
        *value = NULL;   /* an empty account or name is no value */
    return *value ? 1 : 0;
}

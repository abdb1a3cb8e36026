/* lifecycle.c - S3 lifecycle rules: parse and check a LifecycleConfiguration document,
 * write it back, and decide what a rule does to an object version (lifecycle.h).
 *
 * The checks and their codes are S3's: a document that does not follow the schema
 * (unknown or repeated elements, a Filter with two conditions outside <And>, no Filter and
 * no Prefix, a Status other than Enabled/Disabled, more than 1000 rules) is MalformedXML;
 * a value out of range (Days <= 0, a Date not at midnight UTC, an ID over 255 characters
 * or used twice) is InvalidArgument; a combination S3 refuses (a rule without action,
 * AbortIncompleteMultipartUpload or ExpiredObjectDeleteMarker with a tag filter) is
 * InvalidRequest. Transitions are NotImplemented: this object store has one storage class. */
#include "lifecycle.h"

#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "jsonutil.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define MAX_NEWER 100      /* S3's limit on NewerNoncurrentVersions */

static int malformed(verr_t *e, const char *why)
{
    return verr_set(e, 400, "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema: %s",
                    why);
}

static int is_elem(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

/* The element's text (caller frees with xmlFree; "" for an empty element). */
static char *text_of(xmlNodePtr n)
{
    xmlChar *v = xmlNodeGetContent(n);
    return v ? (char *)v : (char *)xmlStrdup((const xmlChar *)"");
}

/* A decimal integer in [min, max] (surrounding blanks allowed): 0, or -1 when the text
 * is not a number (MalformedXML) or out of range (InvalidArgument with msg). */
static int int_of(xmlNodePtr n, long long min, long long max, long long *out, const char *msg, verr_t *e)
{
    char *s = text_of(n), *p = s + strspn(s, " \t\r\n"), *end;
    int neg = *p == '-';
    p += neg || *p == '+';
    int rc = 0;
    if (*p < '0' || *p > '9')
        rc = malformed(e, "a number was expected");
    else {
        unsigned long long v = strtoull(p, &end, 10);
        if (end[strspn(end, " \t\r\n")])
            rc = malformed(e, "a number was expected");
        else if (v > (unsigned long long)INT64_MAX || (neg ? -(long long)v : (long long)v) < min ||
                 (!neg && (long long)v > max))
            rc = verr_set(e, 400, "InvalidArgument", "%s", msg);
        else
            *out = neg ? -(long long)v : (long long)v;
    }
    xmlFree(s);
    return rc;
}

/* ---- Date ------------------------------------------------------------------------ */

/* YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00] (or a bare YYYY-MM-DD): Unix seconds, the
 * fraction in *frac_nonzero. -1 if not a date. */
static int parse_date(const char *s, int64_t *t, int *frac_nonzero)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    *frac_nonzero = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    const char *p = s + 10;
    if (*p == 'T') {
        int m = 0;
        if (sscanf(p, "T%2d:%2d:%2d%n", &h, &mi, &sec, &m) != 3 || m != 9)
            return -1;
        p += 9;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            for (; *p >= '0' && *p <= '9'; p++)
                *frac_nonzero |= *p != '0';
        }
        if (*p == 'Z')
            p++;
        else if (!strcmp(p, "+00:00") || !strcmp(p, "-00:00"))
            p += 6;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t v = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return -1;   /* 31 February */
    *t = (int64_t)v;
    return 0;
}

/* ---- parsing --------------------------------------------------------------------- */

typedef struct parse_ctx {
    json_t *ids;      /* IDs seen: {"id": true} */
} parse_ctx_t;

/* <Tag><Key/><Value/></Tag> appended to tags (a key once per filter). */
static int parse_tag(xmlNodePtr n, json_t *tags, verr_t *e)
{
    char *k = NULL, *v = NULL;
    int rc = 0;
    for (xmlNodePtr c = n->children; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        char **slot = is_elem(c, "Key") ? &k : is_elem(c, "Value") ? &v : NULL;
        if (!slot || *slot)
            rc = malformed(e, "a Tag has one Key and one Value");
        else
            *slot = text_of(c);
    }
    if (rc == 0 && (!k || !v))
        rc = malformed(e, "a Tag has one Key and one Value");
    if (rc == 0 && (!*k || strlen(k) > 128 || strlen(v) > 256))
        rc = verr_set(e, 400, "InvalidArgument", "The TagKey or TagValue you have provided is invalid");
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
        if (rc == 0 && !strcmp(json_str(t, "Key", ""), k))
            rc = verr_set(e, 400, "InvalidRequest", "Duplicate Tag Keys are not allowed.");
    if (rc == 0)
        json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", k, "Value", v));
    xmlFree(k);
    xmlFree(v);
    return rc;
}

static int parse_prefix(xmlNodePtr n, json_t *into, const char *member, verr_t *e)
{
    char *s = text_of(n);
    int rc = 0;
    if (strlen(s) > LC_MAX_PREFIX)
        rc = verr_set(e, 400, "InvalidRequest", "The maximum size of a prefix is %d", LC_MAX_PREFIX);
    else
        json_object_set_new(into, member, json_string(s));
    xmlFree(s);
    return rc;
}

/* One condition of a Filter or of its And into f; in_and allows several Tags. */
static int parse_condition(xmlNodePtr c, json_t *f, int in_and, verr_t *e)
{
    long long v;
    if (is_elem(c, "Prefix")) {
        if (json_object_get(f, "prefix"))
            return malformed(e, "Prefix appears twice in a Filter");
        return parse_prefix(c, f, "prefix", e);
    }
    if (is_elem(c, "Tag")) {
        json_t *tags = json_object_get(f, "tags");
        if (!tags)
            json_object_set_new(f, "tags", tags = json_array());
        else if (!in_and)
            return malformed(e, "more than one Tag needs an And");
        return parse_tag(c, tags, e);
    }
    int gt = is_elem(c, "ObjectSizeGreaterThan"), lt = is_elem(c, "ObjectSizeLessThan");
    if (gt || lt) {
        const char *m = gt ? "gt" : "lt";
        if (json_object_get(f, m))
            return malformed(e, "an object size condition appears twice in a Filter");
        if (int_of(c, lt ? 1 : 0, INT64_MAX, &v,
                   lt ? "'ObjectSizeLessThan' must be a positive integer"
                      : "'ObjectSizeGreaterThan' must be a non-negative integer", e))
            return -1;
        json_object_set_new(f, m, json_integer(v));
        return 0;
    }
    return malformed(e, "unknown element in a Filter");
}

static int parse_filter(xmlNodePtr n, json_t *rule, verr_t *e)
{
    json_t *f = json_object();
    json_object_set_new(rule, "filter", f);
    int count = 0;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (++count > 1)
            return malformed(e, "a Filter holds one condition; combine several with And");
        if (is_elem(c, "And")) {
            json_object_set_new(f, "and", json_true());
            int conds = 0;
            for (xmlNodePtr a = c->children; a; a = a->next)
                if (a->type == XML_ELEMENT_NODE) {
                    if (parse_condition(a, f, 1, e))
                        return -1;
                    conds++;
                }
            if (conds < 2)
                return malformed(e, "an And holds at least two conditions");
        } else if (parse_condition(c, f, 0, e))
            return -1;
    }
    long long gt = json_int(f, "gt", -1), lt = json_int(f, "lt", -1);
    if (gt >= 0 && lt >= 0 && gt >= lt)
        return verr_set(e, 400, "InvalidRequest", "ObjectSizeGreaterThan must be less than ObjectSizeLessThan");
    return 0;
}

static int days_elem(xmlNodePtr n, json_t *into, const char *member, const char *msg, verr_t *e)
{
    long long v;
    if (json_object_get(into, member))
        return malformed(e, "an element appears twice");
    if (int_of(n, 1, 2147483647LL, &v, msg, e))
        return -1;
    json_object_set_new(into, member, json_integer(v));
    return 0;
}

static int parse_expiration(xmlNodePtr n, json_t *rule, verr_t *e)
{
    json_t *x = json_object();
    json_object_set_new(rule, "exp", x);
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_elem(c, "Days")) {
            if (days_elem(c, x, "days", "'Days' for Expiration action must be a positive integer", e))
                return -1;
        } else if (is_elem(c, "Date")) {
            char *s = text_of(c);
            int64_t t;
            int frac, rc = 0;
            if (json_object_get(x, "date") || parse_date(s, &t, &frac))
                rc = malformed(e, "Date must be an ISO 8601 date");
            else if (frac || t % 86400)
                rc = verr_set(e, 400, "InvalidArgument", "'Date' must be at midnight GMT");
            else {
                char iso[40];
                struct tm tm;
                time_t tt = (time_t)t;
                gmtime_r(&tt, &tm);
                strftime(iso, sizeof iso, "%Y-%m-%dT00:00:00.000Z", &tm);
                json_object_set_new(x, "date", json_string(iso));
                json_object_set_new(x, "t", json_integer(t));
            }
            xmlFree(s);
            if (rc)
                return -1;
        } else if (is_elem(c, "ExpiredObjectDeleteMarker")) {
            char *s = text_of(c);
            int ok = !strcmp(s, "true") || !strcmp(s, "false");
            if (ok && !json_object_get(x, "dm"))
                json_object_set_new(x, "dm", json_boolean(!strcmp(s, "true")));
            else
                ok = 0;
            xmlFree(s);
            if (!ok)
                return malformed(e, "ExpiredObjectDeleteMarker is true or false");
        } else
            return malformed(e, "unknown element in Expiration");
    }
    if (json_object_size(x) == 0)
        return malformed(e, "Expiration needs Days, Date or ExpiredObjectDeleteMarker");
    int times = !!json_object_get(x, "days") + !!json_object_get(x, "date") + !!json_object_get(x, "dm");
    if (times > 1)
        return malformed(e, "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle "
                            "Expiration Policy, nor Days with Date");
    return 0;
}

static int parse_noncurrent(xmlNodePtr n, json_t *rule, verr_t *e)
{
    json_t *x = json_object();
    json_object_set_new(rule, "nc", x);
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_elem(c, "NoncurrentDays")) {
            if (days_elem(c, x, "days", "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive "
                          "integer", e))
                return -1;
        } else if (is_elem(c, "NewerNoncurrentVersions")) {
            long long v;
            if (json_object_get(x, "newer"))
                return malformed(e, "NewerNoncurrentVersions appears twice");
            if (int_of(c, 1, MAX_NEWER, &v, "NewerNoncurrentVersions must be between 1 and 100", e))
                return -1;
            json_object_set_new(x, "newer", json_integer(v));
        } else
            return malformed(e, "unknown element in NoncurrentVersionExpiration");
    }
    if (!json_object_get(x, "days"))
        return malformed(e, "NoncurrentVersionExpiration needs NoncurrentDays");
    return 0;
}

static int parse_abort(xmlNodePtr n, json_t *rule, verr_t *e)
{
    json_t *x = json_object();
    json_object_set_new(rule, "abort", x);
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!is_elem(c, "DaysAfterInitiation"))
            return malformed(e, "unknown element in AbortIncompleteMultipartUpload");
        if (days_elem(c, x, "days", "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a "
                      "positive integer", e))
            return -1;
    }
    if (!json_object_get(x, "days"))
        return malformed(e, "AbortIncompleteMultipartUpload needs DaysAfterInitiation");
    return 0;
}

static int parse_id(xmlNodePtr n, json_t *rule, verr_t *e)
{
    char *s = text_of(n);
    int rc = 0;
    if (strlen(s) > LC_MAX_ID)
        rc = verr_set(e, 400, "InvalidArgument", "ID length should not exceed allowed limit of %d", LC_MAX_ID);
    else if (*s)
        json_object_set_new(rule, "id", json_string(s));
    xmlFree(s);
    return rc;
}

static int parse_status(xmlNodePtr n, json_t *rule, verr_t *e)
{
    char *s = text_of(n);
    int ok = !strcmp(s, "Enabled") || !strcmp(s, "Disabled");
    if (ok)
        json_object_set_new(rule, "enabled", json_boolean(!strcmp(s, "Enabled")));
    xmlFree(s);
    return ok ? 0 : malformed(e, "Status is Enabled or Disabled");
}

static int parse_legacy_prefix(xmlNodePtr n, json_t *rule, verr_t *e)
{
    return parse_prefix(n, rule, "prefix", e);
}

static int not_implemented(xmlNodePtr n, json_t *rule, verr_t *e)
{
    (void)rule;
    return verr_set(e, 501, "NotImplemented", "%s is not implemented: this object store has one storage class",
                    (const char *)n->name);
}

/* The elements of a Rule, each allowed once. */
static const struct {
    const char *name;
    int (*parse)(xmlNodePtr n, json_t *rule, verr_t *e);
} rule_elems[] = {
    {"ID", parse_id},
    {"Status", parse_status},
    {"Filter", parse_filter},
    {"Prefix", parse_legacy_prefix},
    {"Expiration", parse_expiration},
    {"NoncurrentVersionExpiration", parse_noncurrent},
    {"AbortIncompleteMultipartUpload", parse_abort},
    {"Transition", not_implemented},
    {"NoncurrentVersionTransition", not_implemented},
    {"Transitions", not_implemented},
    {"NoncurrentVersionTransitions", not_implemented},
};

/* Checks across a rule's elements, once all are read. */
static int rule_check(json_t *rule, parse_ctx_t *ctx, verr_t *e)
{
    if (!json_object_get(rule, "enabled"))
        return malformed(e, "a Rule needs a Status");
    json_t *f = json_object_get(rule, "filter");
    if (!f && !json_object_get(rule, "prefix"))
        return malformed(e, "a Rule needs a Filter or a Prefix");
    if (f && json_object_get(rule, "prefix"))
        return malformed(e, "a Rule has a Filter or a Prefix, not both");
    json_t *exp = json_object_get(rule, "exp");
    if (!exp && !json_object_get(rule, "nc") && !json_object_get(rule, "abort"))
        return verr_set(e, 400, "InvalidRequest", "At least one action needs to be specified in a rule");
    int tagged = json_array_size(json_object_get(f, "tags")) > 0;
    int sized = json_object_get(f, "gt") || json_object_get(f, "lt");
    if (json_object_get(rule, "abort") && (tagged || sized))
        return verr_set(e, 400, "InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with %s.",
                        tagged ? "Tags" : "an object size filter");
    if (json_is_true(json_object_get(exp, "dm")) && tagged)
        return verr_set(e, 400, "InvalidRequest", "ExpiredObjectDeleteMarker cannot be specified with Tags.");
    if (!json_object_get(rule, "id")) {
        char id[33];
        ids_hex(id, 32);
        json_object_set_new(rule, "id", json_string(id));
    }
    const char *id = json_str(rule, "id", "");
    if (json_object_get(ctx->ids, id))
        return verr_set(e, 400, "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule");
    json_object_set_new(ctx->ids, id, json_true());
    return 0;
}

static int parse_rule(xmlNodePtr n, json_t *rule, parse_ctx_t *ctx, verr_t *e)
{
    unsigned seen = 0;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        size_t i;
        for (i = 0; i < ARRAY_LEN(rule_elems) && !is_elem(c, rule_elems[i].name); i++)
            ;
        if (i == ARRAY_LEN(rule_elems))
            return malformed(e, "unknown element in a Rule");
        if (seen & (1u << i))
            return malformed(e, "an element appears twice in a Rule");
        seen |= 1u << i;
        if (rule_elems[i].parse(c, rule, e))
            return -1;
    }
    return rule_check(rule, ctx, e);
}

int lc_parse(const char *body, size_t len, json_t **rules, verr_t *e)
{
    *rules = NULL;
    xmlDocPtr doc = s3_xml_parse(body, len, "LifecycleConfiguration", e);
    if (!doc)
        return -1;
    json_t *out = json_array();
    parse_ctx_t ctx = {json_object()};
    int rc = 0;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!is_elem(c, "Rule"))
            rc = malformed(e, "only Rule elements belong in a LifecycleConfiguration");
        else if (json_array_size(out) == LC_MAX_RULES)
            rc = malformed(e, "a lifecycle configuration has at most 1000 rules");
        else {
            json_t *rule = json_object();
            json_array_append_new(out, rule);
            rc = parse_rule(c, rule, &ctx, e);
        }
    }
    if (rc == 0 && json_array_size(out) == 0)
        rc = malformed(e, "a LifecycleConfiguration needs at least one Rule");
    xmlFreeDoc(doc);
    json_decref(ctx.ids);
    if (rc) {
        json_decref(out);
        return -1;
    }
    *rules = out;
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */

static void tag_xml(xml_t *x, const json_t *t)
{
    xml_open(x, "Tag", NULL);
    xml_elem(x, "Key", json_str(t, "Key", ""));
    xml_elem(x, "Value", json_str(t, "Value", ""));
    xml_close(x);
}

static void filter_xml(xml_t *x, const json_t *f)
{
    xml_open(x, "Filter", NULL);
    int and = json_is_true(json_object_get(f, "and"));
    if (and)
        xml_open(x, "And", NULL);
    if (json_object_get(f, "prefix"))
        xml_elem(x, "Prefix", json_str(f, "prefix", ""));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(f, "tags"), i, t)
        tag_xml(x, t);
    if (json_object_get(f, "gt"))
        xml_elem_int(x, "ObjectSizeGreaterThan", json_int(f, "gt", 0));
    if (json_object_get(f, "lt"))
        xml_elem_int(x, "ObjectSizeLessThan", json_int(f, "lt", 0));
    if (and)
        xml_close(x);
    xml_close(x);
}

char *lc_to_xml(const json_t *rules, size_t *len)
{
    xml_t *x = xml_new();
    xml_open(x, "LifecycleConfiguration", S3_NS);
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        xml_open(x, "Rule", NULL);
        xml_elem(x, "ID", json_str(r, "id", ""));
        if (json_object_get(r, "filter"))
            filter_xml(x, json_object_get(r, "filter"));
        else
            xml_elem(x, "Prefix", json_str(r, "prefix", ""));
        xml_elem(x, "Status", json_is_true(json_object_get(r, "enabled")) ? "Enabled" : "Disabled");
        const json_t *exp = json_object_get(r, "exp"), *nc = json_object_get(r, "nc"),
                     *ab = json_object_get(r, "abort");
        if (exp) {
            xml_open(x, "Expiration", NULL);
            if (json_object_get(exp, "days"))
                xml_elem_int(x, "Days", json_int(exp, "days", 0));
            if (json_object_get(exp, "date"))
                xml_elem(x, "Date", json_str(exp, "date", ""));
            if (json_object_get(exp, "dm"))
                xml_elem_bool(x, "ExpiredObjectDeleteMarker", json_is_true(json_object_get(exp, "dm")));
            xml_close(x);
        }
        if (nc) {
            xml_open(x, "NoncurrentVersionExpiration", NULL);
            xml_elem_int(x, "NoncurrentDays", json_int(nc, "days", 0));
            if (json_object_get(nc, "newer"))
                xml_elem_int(x, "NewerNoncurrentVersions", json_int(nc, "newer", 0));
            xml_close(x);
        }
        if (ab) {
            xml_open(x, "AbortIncompleteMultipartUpload", NULL);
            xml_elem_int(x, "DaysAfterInitiation", json_int(ab, "days", 0));
            xml_close(x);
        }
        xml_close(x);
    }
    return xml_take(x, len);
}

/* ---- deciding -------------------------------------------------------------------- */

static int has_prefix(const char *key, const char *prefix)
{
    return !prefix || !strncmp(key, prefix, strlen(prefix));
}

int lc_rule_matches(const json_t *rule, const char *key, uint64_t size, const json_t *tags, int delete_marker)
{
    if (!json_is_true(json_object_get(rule, "enabled")))
        return 0;
    const json_t *f = json_object_get(rule, "filter");
    if (!f)
        return has_prefix(key, json_str(rule, "prefix", NULL));
    if (!has_prefix(key, json_str(f, "prefix", NULL)))
        return 0;
    const json_t *want = json_object_get(f, "tags");
    int sized = json_object_get(f, "gt") || json_object_get(f, "lt");
    if (delete_marker)
        return json_array_size(want) == 0 && !sized;
    if (json_object_get(f, "gt") && size <= (uint64_t)json_int(f, "gt", 0))
        return 0;
    if (json_object_get(f, "lt") && size >= (uint64_t)json_int(f, "lt", 0))
        return 0;
    size_t i;
    json_t *t;
    json_array_foreach(want, i, t) {
        const char *have = json_str(tags, json_str(t, "Key", ""), NULL);
        if (!have || strcmp(have, json_str(t, "Value", "")))
            return 0;
    }
    return 1;
}

int64_t lc_due(int64_t since, int64_t days, int64_t day_seconds)
{
    if (day_seconds <= 0)
        day_seconds = 86400;
    int64_t t = since + days * day_seconds;
    return (t / day_seconds + 1) * day_seconds;
}

/* Is an Expiration (days or date) due for something created at since? */
static int expiration_due(const json_t *exp, int64_t since, int64_t now, int64_t day)
{
    if (json_object_get(exp, "t"))
        return now >= json_int(exp, "t", 0);
    if (json_object_get(exp, "days"))
        return now >= lc_due(since, json_int(exp, "days", 0), day);
    return 0;
}

lc_action_t lc_decide(const json_t *rules, const lc_version_t *v, int64_t now, int64_t day)
{
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        if (!lc_rule_matches(r, v->key, v->size, v->tags, v->delete_marker))
            continue;
        const json_t *exp = json_object_get(r, "exp"), *nc = json_object_get(r, "nc");
        if (v->latest && !v->delete_marker && expiration_due(exp, v->mtime, now, day))
            return LC_EXPIRE_CURRENT;
        /* An expired object delete marker: the latest version and the only one. S3 removes
         * it on ExpiredObjectDeleteMarker, and on an age or date Expiration once due. */
        if (v->latest && v->delete_marker && v->lone &&
            (json_is_true(json_object_get(exp, "dm")) || expiration_due(exp, v->mtime, now, day)))
            return LC_REMOVE_MARKER;
        if (!v->latest && nc && v->newer_noncurrent >= json_int(nc, "newer", 0) &&
            now >= lc_due(v->noncurrent_since, json_int(nc, "days", 0), day))
            return LC_EXPIRE_NONCURRENT;
    }
    return LC_KEEP;
}

int lc_upload_due(const json_t *rules, const char *key, int64_t initiated, int64_t now, int64_t day)
{
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        const json_t *ab = json_object_get(r, "abort");
        if (ab && lc_rule_matches(r, key, 0, NULL, 0) && now >= lc_due(initiated, json_int(ab, "days", 0), day))
            return 1;
    }
    return 0;
}

int lc_wants_uploads(const json_t *rules)
{
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
        if (json_is_true(json_object_get(r, "enabled")) && json_object_get(r, "abort"))
            return 1;
    return 0;
}

/* s3_cors.c - cross-origin resource sharing, as S3 does it: a bucket's CORS rules
 * (Put/Get/DeleteBucketCors), the answer to a browser's preflight OPTIONS request (never
 * signed; 403 CORSResponse when no rule allows it) and the Access-Control-* headers on
 * actual requests that carry an Origin. The first rule that matches decides.
 *
 * Stored rules: [{"id", "origins": [...], "methods": [...], "headers": [...],
 * "expose": [...], "max_age"}], in the bucket row's cors column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "s3_xmlbody.h"
#include "strbuf.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define MAX_RULES 100
#define MAX_CONFIG (64 * 1024)   /* S3's limit on a CORS configuration */

static const char *const methods[] = {"GET", "PUT", "HEAD", "POST", "DELETE", NULL};

/* The XML element of each rule member, and whether a rule needs at least one. */
static const struct {
    const char *elem, *member;
    int required;
} lists[] = {
    {"AllowedOrigin", "origins", 1},
    {"AllowedMethod", "methods", 1},
    {"AllowedHeader", "headers", 0},
    {"ExposeHeader", "expose", 0},
};

/* A pattern with at most one '*' (S3 allows no more in origins and headers). */
static int star_match(const char *pattern, const char *s, int ci)
{
    const char *star = strchr(pattern, '*');
    size_t n = strlen(s);
    if (!star)
        return ci ? !strcasecmp(pattern, s) : !strcmp(pattern, s);
    size_t pre = (size_t)(star - pattern), post = strlen(star + 1);
    if (pre + post > n)
        return 0;
    if (ci)
        return !strncasecmp(pattern, s, pre) && !strcasecmp(star + 1, s + n - post);
    return !strncmp(pattern, s, pre) && !strcmp(star + 1, s + n - post);
}

static int any_match(const json_t *list, const char *s, int ci)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (star_match(json_string_value(v), s, ci))
            return 1;
    return 0;
}

/* ---- configuration -------------------------------------------------------------- */

static int malformed(verr_t *e, const char *why)
{
    return verr_set(e, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                            "published schema: %s", why);
}

static int rule_member(json_t *rule, xmlNodePtr c, verr_t *e)
{
    const char *name = (const char *)c->name;
    xmlChar *v = xmlNodeGetContent(c);
    const char *s = v ? (const char *)v : "";
    int rc = 0;
    if (!strcmp(name, "ID")) {
        if (strlen(s) > 255)
            rc = malformed(e, "ID is longer than 255 characters");
        json_object_set_new(rule, "id", json_string(s));
    } else if (!strcmp(name, "MaxAgeSeconds")) {
        char *end;
        long long n = strtoll(s, &end, 10);
        if (!*s || *end || n < 0 || n > 2147483647LL)
            rc = malformed(e, "MaxAgeSeconds must be a number of seconds");
        json_object_set_new(rule, "max_age", json_integer(n));
    } else {
        size_t i;
        for (i = 0; i < ARRAY_LEN(lists) && strcmp(lists[i].elem, name); i++)
            ;
        if (i == ARRAY_LEN(lists))
            rc = malformed(e, "unknown element in CORSRule");
        else if (!strcmp(name, "AllowedMethod")) {
            int known = 0;
            for (int k = 0; methods[k]; k++)
                known |= !strcmp(methods[k], s);
            if (!known)
                rc = verr_set(e, 400, "InvalidRequest",
                              "Found unsupported HTTP method in CORS config. Unsupported method is %.32s", s);
        } else if ((!strcmp(name, "AllowedOrigin") || !strcmp(name, "AllowedHeader")) && strchr(s, '*') &&
                   strchr(strchr(s, '*') + 1, '*'))
            rc = verr_set(e, 400, "InvalidRequest", "%s \"%.128s\" can not have more than one wildcard.", name, s);
        if (rc == 0 && i < ARRAY_LEN(lists))
            json_array_append_new(json_object_get(rule, lists[i].member), json_string(s));
    }
    xmlFree(v);
    return rc;
}

static int parse_rules(s3_req_t *r, json_t *rules, verr_t *e)
{
    if (r->body_len > MAX_CONFIG)
        return verr_set(e, 400, "InvalidRequest", "The CORS configuration must not be larger than 64 KB");
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "CORSConfiguration", e);
    if (!doc)
        return -1;
    int rc = 0;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "CORSRule")) {
            rc = malformed(e, "only CORSRule elements belong in a CORSConfiguration");
            break;
        }
        if (json_array_size(rules) == MAX_RULES) {
            rc = verr_set(e, 400, "InvalidRequest", "A CORS configuration may have at most %d rules", MAX_RULES);
            break;
        }
        json_t *rule = json_pack("{s:[], s:[], s:[], s:[]}", "origins", "methods", "headers", "expose");
        json_array_append_new(rules, rule);
        for (xmlNodePtr m = c->children; m && rc == 0; m = m->next)
            if (m->type == XML_ELEMENT_NODE)
                rc = rule_member(rule, m, e);
        for (size_t i = 0; i < ARRAY_LEN(lists) && rc == 0; i++)
            if (lists[i].required && !json_array_size(json_object_get(rule, lists[i].member)))
                rc = malformed(e, "each CORSRule needs an AllowedOrigin and an AllowedMethod");
    }
    xmlFreeDoc(doc);
    if (rc == 0 && !json_array_size(rules))
        rc = malformed(e, "a CORSConfiguration needs at least one CORSRule");
    return rc;
}

void s3_put_bucket_cors(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    JSON_AUTO json_t *rules = json_array();
    if (parse_rules(r, rules, e) < 0)
        return;
    s3_bucket_set_json(r, "cors", rules, 200, resp, e);
}

void s3_get_bucket_cors(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (!r->row.cors) {
        verr_set(e, 404, "NoSuchCORSConfiguration", "The CORS configuration does not exist");
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "CORSConfiguration", S3_NS);
    size_t i, k;
    json_t *rule, *v;
    json_array_foreach(r->row.cors, i, rule) {
        xml_open(x, "CORSRule", NULL);
        if (json_object_get(rule, "id"))
            xml_elem(x, "ID", json_str(rule, "id", ""));
        static const size_t order[] = {2, 1, 0, 3};   /* S3's element order */
        for (size_t o = 0; o < ARRAY_LEN(order); o++)
            json_array_foreach(json_object_get(rule, lists[order[o]].member), k, v)
                xml_elem(x, lists[order[o]].elem, json_string_value(v));
        if (json_object_get(rule, "max_age"))
            xml_elem_int(x, "MaxAgeSeconds", json_int(rule, "max_age", 0));
        xml_close(x);
    }
    s3_xml_send(resp, x);
}

void s3_delete_bucket_cors(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_bucket_set_json(r, "cors", NULL, 204, resp, e);
}

/* ---- requests ------------------------------------------------------------------- */

/* Every header of a comma-separated Access-Control-Request-Headers allowed by rule? */
static int headers_allowed(const json_t *rule, const char *requested)
{
    const char *p = requested;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (n) {
            char *h = xasprintf("%.*s", (int)n, p);
            int ok = any_match(json_object_get(rule, "headers"), h, 1);
            free(h);
            if (!ok)
                return 0;
        }
        p = strchr(p, ',');
    }
    return 1;
}

static const json_t *matching_rule(const json_t *rules, const char *origin, const char *method,
                                   const char *req_headers)
{
    size_t i;
    json_t *rule, *m;
    json_array_foreach(rules, i, rule) {
        if (!any_match(json_object_get(rule, "origins"), origin, 0))
            continue;
        int method_ok = 0;
        size_t k;
        json_array_foreach(json_object_get(rule, "methods"), k, m)
            method_ok |= !strcmp(json_string_value(m), method);
        if (method_ok && (!req_headers || headers_allowed(rule, req_headers)))
            return rule;
    }
    return NULL;
}

static void joined(http_resp_t *resp, const char *name, const json_t *list)
{
    if (!json_array_size(list))
        return;
    strbuf_t b = {0};
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (i)
            strbuf_puts(&b, ", ");
        strbuf_puts(&b, json_string_value(v));
    }
    http_resp_header(resp, name, b.s);
    free(b.s);
}

static void allow_headers(http_resp_t *resp, const json_t *rule, const char *origin)
{
    int any = json_array_size(json_object_get(rule, "origins")) == 1 &&
              !strcmp(json_string_value(json_array_get(json_object_get(rule, "origins"), 0)), "*");
    /* S3 answers "*" for a rule open to every origin, else the origin itself */
    http_resp_header(resp, "Access-Control-Allow-Origin", any ? "*" : origin);
    if (!any)
        http_resp_header(resp, "Access-Control-Allow-Credentials", "true");
    joined(resp, "Access-Control-Allow-Methods", json_object_get(rule, "methods"));
    joined(resp, "Access-Control-Expose-Headers", json_object_get(rule, "expose"));
    if (json_object_get(rule, "max_age")) {
        char age[32];
        snprintf(age, sizeof age, "%lld", (long long)json_int(rule, "max_age", 0));
        http_resp_header(resp, "Access-Control-Max-Age", age);
    }
}

void s3_cors_preflight(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    const char *origin = s3_header(r, "Origin"), *method = s3_header(r, "Access-Control-Request-Method");
    const char *req_headers = s3_header(r, "Access-Control-Request-Headers");
    if (!origin || !*origin) {
        verr_set(e, 400, "BadRequest", "Insufficient information. Origin request header needed.");
        return;
    }
    int known = 0;
    for (int i = 0; method && methods[i]; i++)
        known |= !strcmp(methods[i], method);
    if (!known) {
        verr_set(e, 400, "BadRequest", "Invalid Access-Control-Request-Method: %.32s", method ? method : "");
        return;
    }
    if (!r->row.cors) {
        verr_set(e, 403, "CORSResponse", "CORS is not enabled for this bucket.");
        return;
    }
    const json_t *rule = matching_rule(r->row.cors, origin, method, req_headers);
    if (!rule) {
        verr_set(e, 403, "CORSResponse", "This CORS request is not allowed. This is usually because the evaluation of "
                 "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
                 "whitelisted by the resource's CORS spec.");
        return;
    }
    allow_headers(resp, rule, origin);
    if (req_headers && *req_headers)
        http_resp_header(resp, "Access-Control-Allow-Headers", req_headers);
    http_resp_header(resp, "Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
    http_resp_set(resp, 200, NULL, "", 0);
}

void s3_cors_headers(const s3_req_t *r, http_resp_t *resp)
{
    if (!r->have_bucket || !r->row.cors || !strcmp(r->http->method, "OPTIONS"))
        return;
    const char *origin = s3_header(r, "Origin");
    if (!origin || !*origin)
        return;
    const json_t *rule = matching_rule(r->row.cors, origin, r->http->method, NULL);
    if (!rule)
        return;
    allow_headers(resp, rule, origin);
    http_resp_header(resp, "Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

/* s3_bucket_policy.c - bucket policies (Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus)
 * and PublicAccessBlock (Put/Get/DeletePublicAccessBlock). A policy is checked with
 * common/policy.c's resource-policy rules (Principal required, conditions on the keys
 * the object store answers), then for this bucket: S3 actions only, resources in this
 * bucket. It is stored as the tenant sent it and evaluated by s3_access.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "policy.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define POLICY_MAX 20480   /* S3's limit on a bucket policy */

/* Each string of a statement element (a string or an array of strings) passes ok? */
static int each(const json_t *st, const char *elem, int (*ok)(const char *s, const char *bucket), const char *bucket)
{
    json_t *v = json_object_get(st, elem);
    size_t n = json_is_array(v) ? json_array_size(v) : v ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
        if (s && !ok(s, bucket))
            return 0;
    }
    return 1;
}

static int s3_action(const char *a, const char *bucket)
{
    (void)bucket;
    return !strcmp(a, "*") || !strncasecmp(a, "s3:", 3);
}

/* arn:aws:s3:::<bucket>[/<key pattern>], whose bucket part may be a pattern covering it */
static int bucket_resource(const char *r, const char *bucket)
{
    if (!strcmp(r, "*"))
        return 1;
    if (strncmp(r, "arn:aws:s3:::", 13))
        return 0;
    char b[128];
    size_t n = strcspn(r + 13, "/");
    if (n == 0 || n >= sizeof b)
        return 0;
    memcpy(b, r + 13, n);
    b[n] = 0;
    return policy_glob(b, bucket, 0);
}

static int check_for_bucket(const json_t *doc, const char *bucket, verr_t *e)
{
    json_t *st = json_object_get(doc, "Statement");
    size_t n = json_is_array(st) ? json_array_size(st) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(st) ? json_array_get(st, i) : st;
        if (!each(s, "Action", s3_action, bucket) || !each(s, "NotAction", s3_action, bucket))
            return verr_set(e, 400, "MalformedPolicy", "Policy has invalid action (statement %zu)", i + 1);
        if (!each(s, "Resource", bucket_resource, bucket) || !each(s, "NotResource", bucket_resource, bucket))
            return verr_set(e, 400, "MalformedPolicy", "Policy has invalid resource (statement %zu)", i + 1);
    }
    return 0;
}

void s3_put_bucket_policy(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (r->body_len > POLICY_MAX) {
        verr_set(e, 400, "PolicyTooLarge", "Policy exceeds the maximum allowed document size (%d bytes).", POLICY_MAX);
        return;
    }
    json_error_t je;
    JSON_AUTO json_t *doc = r->body_len ? json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!doc) {
        verr_set(e, 400, "MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'");
        return;
    }
    if (policy_validate_kind(doc, POLICY_RESOURCE, e) < 0 || check_for_bucket(doc, r->bucket, e) < 0)
        return;
    if (json_is_true(json_object_get(r->row.pab, "BlockPublicPolicy")) && s3_policy_is_public(doc)) {
        verr_set(e, 403, "AccessDenied", "Access Denied: the bucket's PublicAccessBlock refuses public policies");
        return;
    }
    if (s3_bucket_set(r, "policy", r->body, e) == 0)
        http_resp_set(resp, 204, NULL, "", 0);
}

static int no_policy(verr_t *e)
{
    return verr_set(e, 404, "NoSuchBucketPolicy", "The bucket policy does not exist");
}

void s3_get_bucket_policy(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (!r->row.policy) {
        no_policy(e);
        return;
    }
    /* the document as it was stored, byte for byte: the row holds its text */
    db_t *db = s3_db(r->os, e);
    const char *p[] = {r->bucket_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, e, "bucket_policy", "SELECT policy FROM buckets WHERE id = $1", 1, p)
                               : NULL;
    if (!res)
        return;
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        no_policy(e);
        return;
    }
    http_resp_set(resp, 200, "application/json", PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void s3_delete_bucket_policy(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_bucket_set_json(r, "policy", NULL, 204, resp, e);
}

void s3_get_bucket_policy_status(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (!r->row.policy) {
        no_policy(e);
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "PolicyStatus", S3_NS);
    xml_elem_bool(x, "IsPublic", s3_policy_is_public(r->row.policy));
    s3_xml_send(resp, x);
}

/* ---- PublicAccessBlock ---------------------------------------------------------- */

static const char *const pab_fields[] = {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                         "RestrictPublicBuckets", NULL};

void s3_put_public_access_block(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "PublicAccessBlockConfiguration", e);
    if (!doc)
        return;
    JSON_AUTO json_t *pab = json_object();
    int bad = 0;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c && !bad; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        int known = 0;
        for (int i = 0; pab_fields[i]; i++)
            known |= !strcmp((const char *)c->name, pab_fields[i]);
        xmlChar *v = xmlNodeGetContent(c);
        bad = !known || !v || (strcmp((const char *)v, "true") && strcmp((const char *)v, "false"));
        if (!bad)
            json_object_set_new(pab, (const char *)c->name, json_boolean(!strcmp((const char *)v, "true")));
        xmlFree(v);
    }
    xmlFreeDoc(doc);
    if (bad) {
        verr_set(e, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                         "published schema");
        return;
    }
    for (int i = 0; pab_fields[i]; i++)
        if (!json_object_get(pab, pab_fields[i]))
            json_object_set_new(pab, pab_fields[i], json_false());
    s3_bucket_set_json(r, "public_access_block", pab, 200, resp, e);
}

void s3_get_public_access_block(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (!r->row.pab) {
        verr_set(e, 404, "NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found");
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "PublicAccessBlockConfiguration", S3_NS);
    for (int i = 0; pab_fields[i]; i++)
        xml_elem_bool(x, pab_fields[i], json_is_true(json_object_get(r->row.pab, pab_fields[i])));
    s3_xml_send(resp, x);
}

void s3_delete_public_access_block(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_bucket_set_json(r, "public_access_block", NULL, 204, resp, e);
}

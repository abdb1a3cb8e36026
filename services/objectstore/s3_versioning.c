/* s3_versioning.c - a bucket's versioning state: GetBucketVersioning,
 * PutBucketVersioning, and the x-amz-version-id header of object answers.
 *
 * The state is a column of objectstore.buckets (NULL: never versioned), read with the
 * bucket on every request and handed to the backend with each write and delete, which
 * does what S3 does in that state (backend.h, os_versioning_t). As in S3, a bucket once
 * versioned is Enabled or Suspended, never unversioned again, and a change takes effect
 * for requests that start after it (S3 asks clients to wait after enabling; a write
 * already under way keeps the state it started with). */
#include <stdio.h>
#include <string.h>

#include "objectstore.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

static const struct {
    const char *name;
    os_versioning_t state;
} states[] = {
    {"Enabled", OS_VERSIONING_ENABLED},
    {"Suspended", OS_VERSIONING_SUSPENDED},
};

os_versioning_t s3_versioning_from_db(const char *value)
{
    for (size_t i = 0; value && i < ARRAY_LEN(states); i++)
        if (!strcmp(value, states[i].name))
            return states[i].state;
    return OS_VERSIONING_OFF;
}

static const char *state_name(os_versioning_t v)
{
    for (size_t i = 0; i < ARRAY_LEN(states); i++)
        if (states[i].state == v)
            return states[i].name;
    return NULL;
}

void s3_version_header(const s3_req_t *r, http_resp_t *resp, const char *version_id)
{
    if (version_id && *version_id && (r->versioning != OS_VERSIONING_OFF || s3_query(r, "versionId")))
        http_resp_header(resp, "x-amz-version-id", version_id);
}

void s3_get_bucket_versioning(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    (void)e;
    xml_t *x = xml_new();
    xml_open(x, "VersioningConfiguration", S3_NS);
    const char *status = state_name(r->versioning);
    if (status)   /* never versioned: an empty configuration, as S3 answers */
        xml_elem(x, "Status", status);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
}

void s3_put_bucket_versioning(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "VersioningConfiguration", e);
    if (!doc)
        return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlChar *status = s3_xml_child_text(root, "Status"), *mfa = s3_xml_child_text(root, "MfaDelete");
    const char *want = NULL;
    for (size_t i = 0; status && i < ARRAY_LEN(states); i++)
        if (!strcmp((const char *)status, states[i].name))
            want = states[i].name;
    if (mfa && strcmp((const char *)mfa, "Disabled"))
        verr_set(e, 501, "NotImplemented", "MFA Delete is not implemented.");
    else if (!want)
        verr_set(e, 400, "MalformedXML",
                 "The XML you provided was not well-formed or did not validate against our published schema.");
    xmlFree(status);
    xmlFree(mfa);
    xmlFreeDoc(doc);
    if (e->code[0])
        return;
    db_t *db = s3_db(r->os, e);
    if (!db)
        return;
    const char *p[] = {r->bucket_id, want};
    PG_AUTO PGresult *res =
        db_prepared(db, e, "bucket_versioning", "UPDATE buckets SET versioning = $2 WHERE id = $1", 2, p);
    if (res)
        http_resp_set(resp, 200, NULL, "", 0);
}

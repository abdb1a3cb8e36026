/* s3_acl_ops.c - the ACL operations: Get/PutBucketAcl, Get/PutObjectAcl (which rewrites
 * the object's index entry in place, os_set_attrs, never its bytes), and the bucket's
 * ObjectOwnership (Get/Put/DeleteBucketOwnershipControls). */
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

static int has_acl_headers(const s3_req_t *r)
{
    static const char *const h[] = {"x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp",
                                    "x-amz-grant-write-acp", "x-amz-grant-full-control", NULL};
    for (int i = 0; h[i]; i++)
        if (s3_header(r, h[i]))
            return 1;
    return 0;
}

/* The ACL a Put*Acl request sets: a document or headers, not both, not neither. */
static json_t *requested_acl(s3_req_t *r, const char *owner, verr_t *e)
{
    json_t *acl = NULL;
    if (r->body_len && has_acl_headers(r)) {
        verr_set(e, 400, "UnexpectedContent", "This request does not support content when an ACL header is given");
        return NULL;
    }
    int rc = r->body_len ? s3_acl_from_xml(r, &r->row, owner, &acl, e)
                         : s3_acl_from_request(r, &r->row, owner, &acl, e);
    if (rc == 0 && !acl)
        verr_set(e, 400, "MissingSecurityHeader", "Your request was missing a required header: x-amz-acl");
    if (acl && s3_access_block_acl(&r->row, acl, e) < 0) {
        json_decref(acl);
        acl = NULL;
    }
    return acl;
}

/* With BucketOwnerEnforced the ACL reads as the bucket owner's full control only. */
static json_t *owner_only(const char *owner)
{
    return json_pack("[{s:s, s:s}]", "g", owner, "p", "FULL_CONTROL");
}

void s3_get_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    int enforced = !strcmp(r->row.ownership, "BucketOwnerEnforced");
    JSON_AUTO json_t *only = enforced ? owner_only(r->row.owner) : NULL;
    s3_acl_reply(r, r->row.owner, enforced ? only : r->row.acl, resp, e);
}

void s3_put_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    JSON_AUTO json_t *acl = requested_acl(r, r->row.owner, e);
    if (!acl)
        return;
    s3_bucket_set_json(r, "acl", json_object_get(acl, "grants"), 200, resp, e);
}

/* Get/PutObjectAcl work on the version the request names (versionId) or the latest; a
 * delete marker has no ACL: NoSuchKey (the latest) or MethodNotAllowed (by id). */
void s3_get_object_acl(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    os_meta_t m = {0};
    JSON_AUTO json_t *acl = NULL;
    if (s3_object_access(r, &m, &acl, e) == 0 && m.delete_marker)
        s3_delete_marker_error(r, &m, s3_query(r, "versionId") != NULL, resp);
    else if (!e->code[0]) {
        int enforced = !strcmp(r->row.ownership, "BucketOwnerEnforced");
        const char *owner = enforced ? r->row.owner : json_str(acl, "owner", r->row.owner);
        JSON_AUTO json_t *only = enforced ? owner_only(owner) : NULL;
        s3_acl_reply(r, owner, enforced ? only : json_object_get(acl, "grants"), resp, e);
    }
    os_meta_clear(&m);
}

void s3_put_object_acl(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    os_meta_t m = {0};
    JSON_AUTO json_t *old = NULL;
    if (s3_object_access(r, &m, &old, e) < 0 || m.delete_marker) {
        if (!e->code[0])
            s3_delete_marker_error(r, &m, s3_query(r, "versionId") != NULL, resp);
        os_meta_clear(&m);
        return;
    }
    /* the object keeps its owner; only the grants change */
    JSON_AUTO json_t *acl = requested_acl(r, json_str(old, "owner", r->row.owner), e);
    JSON_AUTO json_t *attrs = acl ? json_pack("{s:O}", "acl", acl) : NULL;
    /* The version checked is the one changed, even if a newer one arrives meanwhile. */
    if (attrs && os_set_attrs(r->os->backend, r->bucket_id, r->key, m.version_id, attrs, e) == 0)
        http_resp_set(resp, 200, NULL, "", 0);
    os_meta_clear(&m);
}

/* ---- ObjectOwnership ------------------------------------------------------------ */

static const char *const ownerships[] = {"BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter", NULL};

void s3_get_ownership(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (!r->row.ownership[0]) {
        verr_set(e, 404, "OwnershipControlsNotFoundError", "The bucket ownership controls were not found");
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "OwnershipControls", S3_NS);
    xml_open(x, "Rule", NULL);
    xml_elem(x, "ObjectOwnership", r->row.ownership);
    s3_xml_send(resp, x);
}

/* <OwnershipControls><Rule><ObjectOwnership>X</ObjectOwnership></Rule></OwnershipControls>,
 * exactly one rule. */
static const char *parse_ownership(s3_req_t *r, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "OwnershipControls", e);
    if (!doc)
        return NULL;
    const char *found = NULL;
    int rules = 0;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        rules++;
        xmlChar *v = strcmp((const char *)c->name, "Rule") ? NULL : s3_xml_child_text(c, "ObjectOwnership");
        for (int i = 0; v && ownerships[i]; i++)
            if (!strcmp((const char *)v, ownerships[i]))
                found = ownerships[i];
        xmlFree(v);
    }
    xmlFreeDoc(doc);
    if (rules != 1 || !found) {
        verr_set(e, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our "
                                         "published schema");
        return NULL;
    }
    return found;
}

void s3_put_ownership(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    const char *own = parse_ownership(r, e);
    if (!own)
        return;
    if (!strcmp(own, "BucketOwnerEnforced") && !s3_acl_owner_only(r->row.acl, r->row.owner)) {
        verr_set(e, 400, "InvalidBucketAclWithObjectOwnership",
                 "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting");
        return;
    }
    if (s3_bucket_set(r, "ownership", own, e) == 0)
        http_resp_set(resp, 200, NULL, "", 0);
}

void s3_delete_ownership(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_bucket_set_json(r, "ownership", NULL, 204, resp, e);
}

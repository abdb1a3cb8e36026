/* s3_bucket_tagging.c - Put/Get/DeleteBucketTagging: up to 50 tags per bucket, with S3's
 * rules (keys of 1-128 characters, values of 0-256, letters, digits, spaces and
 * + - = . _ : / @, no "aws:" keys, no key twice: InvalidTag), kept in the bucket row as
 * [{"Key", "Value"}] (the database also refuses more than 50). A PUT replaces the whole
 * set in one statement. */
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define MAX_TAGS 50

/* Characters (not bytes) of s, and whether each is one S3 allows in a tag. */
static int tag_text_ok(const char *s, size_t min, size_t max)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xc0) == 0x80)
            continue;   /* a continuation byte: part of the character before */
        chars++;
        if (*p < 0x80 && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                           strchr(" +-=._:/@", *p)))
            return 0;
    }
    return chars >= min && chars <= max;
}

static int invalid_tag(verr_t *e, const char *what)
{
    return verr_set(e, 400, "InvalidTag", "%s", what);
}

/* <Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging> as [{"Key","Value"}]. */
static int parse_tagging(s3_req_t *r, json_t *tags, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "Tagging", e);
    if (!doc)
        return -1;
    xmlNodePtr set = NULL;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, "TagSet"))
            set = c;
    int rc = set ? 0 : verr_set(e, 400, "MalformedXML", "The XML you provided was not well-formed or did not "
                                                         "validate against our published schema");
    for (xmlNodePtr t = set ? set->children : NULL; t && rc == 0; t = t->next) {
        if (t->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *k = strcmp((const char *)t->name, "Tag") ? NULL : s3_xml_child_text(t, "Key");
        xmlChar *v = k ? s3_xml_child_text(t, "Value") : NULL;
        const char *ks = (const char *)k, *vs = v ? (const char *)v : "";
        size_t i;
        json_t *seen;
        if (!k)
            rc = verr_set(e, 400, "MalformedXML", "Each Tag needs a Key");
        else if (json_array_size(tags) == MAX_TAGS)
            rc = invalid_tag(e, "Bucket tag count cannot be greater than 50");
        else if (!tag_text_ok(ks, 1, 128))
            rc = invalid_tag(e, "The TagKey you have provided is invalid");
        else if (!tag_text_ok(vs, 0, 256))
            rc = invalid_tag(e, "The TagValue you have provided is invalid");
        else if (!strncmp(ks, "aws:", 4))
            rc = invalid_tag(e, "System tags cannot be added/updated by requester");
        json_array_foreach(tags, i, seen)
            if (rc == 0 && !strcmp(json_str(seen, "Key", ""), ks))
                rc = invalid_tag(e, "Cannot provide multiple Tags with the same key");
        if (rc == 0)
            json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", ks, "Value", vs));
        xmlFree(k);
        xmlFree(v);
    }
    xmlFreeDoc(doc);
    return rc;
}

void s3_put_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    JSON_AUTO json_t *tags = json_array();
    if (parse_tagging(r, tags, e) < 0)
        return;
    s3_bucket_set_json(r, "tags", json_array_size(tags) ? tags : NULL, 204, resp, e);   /* none: no tag set */
}

void s3_get_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    const char *p[] = {r->bucket_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, e, "bucket_tags", "SELECT tags FROM buckets WHERE id = $1", 1, p)
                               : NULL;
    if (!res)
        return;
    JSON_AUTO json_t *tags = PQntuples(res) && !PQgetisnull(res, 0, 0) ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                                                                       : NULL;
    if (!json_array_size(tags)) {
        verr_set(e, 404, "NoSuchTagSet", "The TagSet does not exist");
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "Tagging", S3_NS);
    xml_open(x, "TagSet", NULL);
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        xml_open(x, "Tag", NULL);
        xml_elem(x, "Key", json_str(t, "Key", ""));
        xml_elem(x, "Value", json_str(t, "Value", ""));
        xml_close(x);
    }
    s3_xml_send(resp, x);
}

void s3_delete_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_bucket_set_json(r, "tags", NULL, 204, resp, e);
}

/* s3_bucket_tagging.c - Put/Get/DeleteBucketTagging: up to 50 tags per bucket, with S3's
 * rules (keys of 1-128 characters, values of 0-256, letters, digits, spaces and
 * + - = . _ : / @, no "aws:" keys, no key twice: InvalidTag), kept in the bucket row as
 * [{"Key", "Value"}] (the database also refuses more than 50). A PUT replaces the whole
 * set in one statement. */
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"
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

/* One Tag of the document (s3_tagging_walk) onto tags, [{"Key","Value"}] in order. */
static int bucket_tag(void *arg, const char *k, const char *v, verr_t *e)
{
    json_t *tags = arg, *seen;
    size_t i;
    v = v ? v : "";
    if (json_array_size(tags) == MAX_TAGS)
        return invalid_tag(e, "Bucket tag count cannot be greater than 50");
    if (!tag_text_ok(k, 1, 128))
        return invalid_tag(e, "The TagKey you have provided is invalid");
    if (!tag_text_ok(v, 0, 256))
        return invalid_tag(e, "The TagValue you have provided is invalid");
    if (!strncmp(k, "aws:", 4))
        return invalid_tag(e, "System tags cannot be added/updated by requester");
    json_array_foreach(tags, i, seen)
        if (!strcmp(json_str(seen, "Key", ""), k))
            return invalid_tag(e, "Cannot provide multiple Tags with the same key");
    json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", k, "Value", v));
    return 0;
}

void s3_put_bucket_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    JSON_AUTO json_t *tags = json_array();
    if (s3_tagging_walk(r, bucket_tag, tags, e) < 0)
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

/* s3_tagging.c - object tags: the x-amz-tagging header (PutObject,
 * CreateMultipartUpload, CopyObject with x-amz-tagging-directive REPLACE),
 * Put/Get/DeleteObjectTagging (of the latest version or one named by versionId), and
 * S3's limits: at most 10 tags, keys of 1 to 128 and values of up to 256 characters
 * (UTF-8), no key twice, none beginning with "aws:" (InvalidTag); a tag document that is
 * not S3's schema is MalformedXML. Tags are part of a version's index entry ("tags",
 * {"key": "value"}); changing them is os_set_attrs, which leaves the bytes alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "s3_xmlbody.h"
#include "strbuf.h"
#include "utf8.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define TAGS_MAX 10
#define TAG_KEY_CHARS 128
#define TAG_VALUE_CHARS 256

static int invalid_tag(verr_t *e, const char *why)
{
    return verr_set(e, 400, "InvalidTag", "%s", why);
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;   /* one per lead byte (valid UTF-8) */
    return n;
}

static int tag_add(json_t *tags, const char *k, const char *v, verr_t *e)
{
    if (!utf8_valid(k, strlen(k)) || !*k || utf8_chars(k) > TAG_KEY_CHARS)
        return invalid_tag(e, "The TagKey you have provided is invalid");
    if (!utf8_valid(v, strlen(v)) || utf8_chars(v) > TAG_VALUE_CHARS)
        return invalid_tag(e, "The TagValue you have provided is invalid");
    if (!strncmp(k, "aws:", 4))
        return invalid_tag(e, "Your TagKey cannot be prefixed with aws:");
    if (json_object_get(tags, k))
        return invalid_tag(e, "Cannot provide multiple Tags with the same key");
    if (json_object_size(tags) == TAGS_MAX)
        return invalid_tag(e, "Object tags cannot be greater than 10");
    json_object_set_new(tags, k, json_string(v));
    return 0;
}

/* Percent-decode one part of the header's query-string form ('+' is a space); NULL if
 * it decodes to a NUL byte, which no tag may hold. */
static char *form_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = i + 2 < n ? hex_digit_value((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_digit_value((unsigned char)s[i + 2]) : -1;
        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else
            out[o++] = s[i] == '+' ? ' ' : s[i];
        if (!out[o - 1]) {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    return out;
}

int s3_tags_from_header(const s3_req_t *r, json_t **out, verr_t *e)
{
    const char *h = s3_header(r, "x-amz-tagging");
    *out = NULL;
    if (!h)
        return 0;
    json_t *tags = json_object();
    for (const char *p = h; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        if (n) {
            char *k = form_decode(p, eq ? (size_t)(eq - p) : n);
            char *v = eq ? form_decode(eq + 1, n - (size_t)(eq + 1 - p)) : xstrdup("");
            int rc = !k || !v ? invalid_tag(e, "The TagKey you have provided is invalid") : tag_add(tags, k, v, e);
            free(k);
            free(v);
            if (rc) {
                json_decref(tags);
                return -1;
            }
        }
        p += n + (p[n] == '&');
    }
    *out = tags;
    return 0;
}

static int malformed(verr_t *e)
{
    return verr_set(e, 400, "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema.");
}

int s3_tagging_walk(const s3_req_t *r, int (*add)(void *arg, const char *key, const char *value, verr_t *e),
                    void *arg, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "Tagging", e);
    if (!doc)
        return -1;
    xmlNodePtr set = NULL;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, "TagSet"))
            set = c;
    int rc = set ? 0 : malformed(e);
    for (xmlNodePtr t = set ? set->children : NULL; t && !rc; t = t->next) {
        if (t->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *k = strcmp((const char *)t->name, "Tag") ? NULL : s3_xml_child_text(t, "Key");
        xmlChar *v = k ? s3_xml_child_text(t, "Value") : NULL;
        rc = !k ? malformed(e) : add(arg, (const char *)k, (const char *)v, e);
        xmlFree(k);
        xmlFree(v);
    }
    xmlFreeDoc(doc);
    return rc ? -1 : 0;
}

/* An object tag needs its Value (S3's shape), even an empty one. */
static int object_tag(void *tags, const char *k, const char *v, verr_t *e)
{
    return v ? tag_add(tags, k, v, e) : malformed(e);
}

static int tags_from_xml(const s3_req_t *r, json_t **out, verr_t *e)
{
    json_t *tags = json_object();
    if (s3_tagging_walk(r, object_tag, tags, e) < 0) {
        json_decref(tags);
        return -1;
    }
    *out = tags;
    return 0;
}

void s3_tagging_count_header(const os_meta_t *m, http_resp_t *resp)
{
    size_t n = json_object_size(m->tags);
    if (n) {
        char count[24];
        snprintf(count, sizeof count, "%zu", n);
        http_resp_header(resp, "x-amz-tagging-count", count);
    }
}

/* The version the request names (versionId, or the latest), which must be an object the
 * caller may tag or read the tags of (its owner, or a policy: no ACL grants tags): tags
 * of a delete marker are NoSuchKey (the latest) or MethodNotAllowed (by id). */
static int tagged_version(s3_req_t *r, os_meta_t *m, http_resp_t *resp, verr_t *e)
{
    JSON_AUTO json_t *acl = NULL;
    if (s3_object_access(r, m, &acl, e) < 0)
        return -1;
    if (m->delete_marker) {
        s3_delete_marker_error(r, m, s3_query(r, "versionId") != NULL, resp);
        os_meta_clear(m);
        return 1;   /* answered */
    }
    return 0;
}

static void set_tags(s3_req_t *r, http_resp_t *resp, verr_t *e, json_t *tags)
{
    os_meta_t m = {0};
    int rc = tagged_version(r, &m, resp, e);
    if (rc == 0) {
        /* The version seen is the one changed, even if a newer one arrives meanwhile. */
        json_t *attrs = json_pack("{s:O?}", "tags", json_object_size(tags) ? tags : NULL);
        if (os_set_attrs(r->os->backend, r->bucket_id, r->key, m.version_id, attrs, e) == 0) {
            s3_version_header(r, resp, m.version_id);
            http_resp_set(resp, tags ? 200 : 204, NULL, "", 0);
        }
        json_decref(attrs);
    }
    os_meta_clear(&m);
}

void s3_put_object_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    json_t *tags;
    if (tags_from_xml(r, &tags, e) < 0)
        return;
    set_tags(r, resp, e, tags);
    json_decref(tags);
}

void s3_delete_object_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    set_tags(r, resp, e, NULL);
}

void s3_get_object_tagging(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    os_meta_t m = {0};
    if (tagged_version(r, &m, resp, e) != 0)
        return;
    xml_t *x = xml_new();
    xml_open(x, "Tagging", S3_NS);
    xml_open(x, "TagSet", NULL);
    const char *k;
    json_t *v;
    json_object_foreach(m.tags, k, v) {
        xml_open(x, "Tag", NULL);
        xml_elem(x, "Key", k);
        xml_elem(x, "Value", json_string_value(v));
        xml_close(x);
    }
    xml_close(x);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
    s3_version_header(r, resp, m.version_id);
    os_meta_clear(&m);
}

/* s3_list.c - listing and batch delete: ListObjects (v1, marker), ListObjectsV2
 * (continuation tokens, start-after), ListObjectVersions (every object is its own only
 * version, VersionId "null", so cleanup tools that list versions work), with prefix,
 * delimiter (common prefixes), max-keys and encoding-type=url; DeleteObjects. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define BATCH 1000

typedef struct entry {
    char *key;          /* a key, or a common prefix */
    int is_prefix;
    os_meta_t meta;
} entry_t;

typedef struct listing {
    const char *prefix, *delim;
    size_t max;
    entry_t *e;
    size_t n;
    int truncated;      /* more than max entries exist */
    char *last_seen;    /* last key the backend returned (to continue the scan) */
    const char *skip_prefix;   /* resuming after this common prefix: skip its keys */
} listing_t;

static int collect(void *arg, const char *key, const os_meta_t *m)
{
    listing_t *l = arg;
    if (l->truncated)
        return 0;
    free(l->last_seen);
    l->last_seen = xstrdup(key);
    if (l->skip_prefix && !strncmp(key, l->skip_prefix, strlen(l->skip_prefix)))
        return 0;
    if (l->delim && *l->delim) {
        const char *rest = key + strlen(l->prefix);
        const char *d = strstr(rest, l->delim);
        if (d) {
            size_t plen = (size_t)(d - key) + strlen(l->delim);
            if (l->n && l->e[l->n - 1].is_prefix && strlen(l->e[l->n - 1].key) == plen &&
                !strncmp(l->e[l->n - 1].key, key, plen))
                return 0;   /* same common prefix as the previous key */
            if (l->n == l->max) {
                l->truncated = 1;   /* keep returning 0: a nonzero return is an error */
                return 0;
            }
            l->e = xrealloc(l->e, (l->n + 1) * sizeof *l->e);
            l->e[l->n] = (entry_t){.key = strndup(key, plen), .is_prefix = 1};
            l->n++;
            return 0;
        }
    }
    if (l->n == l->max) {
        l->truncated = 1;
        return 0;
    }
    l->e = xrealloc(l->e, (l->n + 1) * sizeof *l->e);
    l->e[l->n] = (entry_t){.key = xstrdup(key)};
    l->e[l->n].meta = *m;
    l->e[l->n].meta.user_meta = NULL;   /* listings do not show metadata */
    l->e[l->n].meta.extra = NULL;
    l->e[l->n].meta.acl = NULL;         /* (all three belong to the caller's meta) */
    l->n++;
    return 0;
}

/* Scan keys after `after` until max entries (keys + common prefixes) are collected. */
static int scan(s3_req_t *r, listing_t *l, const char *after, verr_t *e)
{
    char *skip = NULL;
    size_t dl = l->delim ? strlen(l->delim) : 0;
    /* resuming after a common prefix ("photos/"): skip the keys it stood for */
    if (dl && after && strlen(after) >= dl && !strcmp(after + strlen(after) - dl, l->delim))
        skip = xstrdup(after);
    l->skip_prefix = skip;
    char *start = xstrdup(after ? after : "");
    int rc = 0;
    for (;;) {
        int more = 0;
        free(l->last_seen);
        l->last_seen = NULL;
        if (os_list(r->os->backend, r->bucket_id, l->prefix, start, BATCH, collect, l, &more, e) < 0) {
            rc = -1;
            break;
        }
        if (l->truncated || !more || !l->last_seen)
            break;
        free(start);
        start = xstrdup(l->last_seen);
    }
    free(start);
    free(skip);
    l->skip_prefix = NULL;
    return rc;
}

static void listing_free(listing_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->e[i].key);
        os_meta_clear(&l->e[i].meta);
    }
    free(l->e);
    free(l->last_seen);
}

static int max_keys(s3_req_t *r, size_t *max, verr_t *e)
{
    const char *mk = s3_query(r, "max-keys");
    *max = 1000;
    if (mk) {
        char *end;
        long v = strtol(mk, &end, 10);
        if (*end || v < 0)
            return verr_set(e, 400, "InvalidArgument", "Provided max-keys not an integer or within integer range");
        *max = v > 1000 ? 1000 : (size_t)v;
    }
    const char *enc = s3_query(r, "encoding-type");
    if (enc && strcmp(enc, "url"))
        return verr_set(e, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
    return 0;
}

/* Keys in listings are URL-encoded when the client asked (encoding-type=url), as the
 * AWS CLI does so that any byte survives XML. */
static void key_elem(xml_t *x, const char *tag, const char *key, int url)
{
    if (!url) {
        xml_elem(x, tag, key);
        return;
    }
    char *enc = sigv4_uri_encode(key, strlen(key), 1);
    xml_elem(x, tag, enc);
    free(enc);
}

static void contents(xml_t *x, const entry_t *en, int url, const char *owner, int versions)
{
    char etag[80], when[40];
    snprintf(etag, sizeof etag, "\"%s\"", en->meta.etag);
    s3_iso_date(en->meta.mtime, when);
    xml_open(x, versions ? "Version" : "Contents", NULL);
    key_elem(x, "Key", en->key, url);
    if (versions) {
        xml_elem(x, "VersionId", "null");
        xml_elem(x, "IsLatest", "true");
    }
    xml_elem(x, "LastModified", when);
    xml_elem(x, "ETag", etag);
    xml_elem_int(x, "Size", (long long)en->meta.size);
    xml_elem(x, "StorageClass", "STANDARD");
    if (owner) {
        xml_open(x, "Owner", NULL);
        xml_elem(x, "ID", owner);
        xml_close(x);
    }
    xml_close(x);
}

static void prefixes(xml_t *x, const listing_t *l, int url)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->e[i].is_prefix) {
            xml_open(x, "CommonPrefixes", NULL);
            key_elem(x, "Prefix", l->e[i].key, url);
            xml_close(x);
        }
}

static void reply(s3_req_t *r, http_resp_t *resp, xml_t *x)
{
    (void)r;
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
}

/* What every listing does first: max-keys and encoding-type, then the scan after
 * `after`. On success the caller owns l (listing_free). */
static int list_begin(s3_req_t *r, listing_t *l, const char *after, int *url, verr_t *e)
{
    size_t max;
    if (max_keys(r, &max, e) < 0)
        return -1;
    *url = s3_query(r, "encoding-type") != NULL;
    *l = (listing_t){.prefix = s3_query(r, "prefix") ? s3_query(r, "prefix") : "",
                     .delim = s3_query(r, "delimiter"), .max = max};
    /* max-keys=0 asks for nothing: S3 answers an empty, untruncated page (a truncated
     * one would need a continuation token, and clients would loop on it) */
    if (max > 0 && scan(r, l, after, e) < 0) {
        listing_free(l);
        return -1;
    }
    return 0;
}

/* The elements every listing result starts with, after its own root element. */
static void list_head(xml_t *x, s3_req_t *r, const listing_t *l, int url)
{
    xml_elem(x, "Name", r->bucket);
    key_elem(x, "Prefix", l->prefix, url);
}

/* ... and the ones it ends with, then the reply. */
static void list_tail(xml_t *x, s3_req_t *r, listing_t *l, int url, const char *owner, int versions,
                      http_resp_t *resp)
{
    xml_elem_int(x, "MaxKeys", (long long)l->max);
    if (l->delim)
        key_elem(x, "Delimiter", l->delim, url);
    xml_elem_bool(x, "IsTruncated", l->truncated);
    if (url)
        xml_elem(x, "EncodingType", "url");
    for (size_t i = 0; i < l->n; i++)
        if (!l->e[i].is_prefix)
            contents(x, &l->e[i], url, owner, versions);
    prefixes(x, l, url);
    reply(r, resp, x);
    listing_free(l);
}

void s3_list_objects(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    listing_t l;
    int url;
    const char *marker = s3_query(r, "marker");
    if (list_begin(r, &l, marker, &url, e) < 0)
        return;
    xml_t *x = xml_new();
    xml_open(x, "ListBucketResult", S3_NS);
    list_head(x, r, &l, url);
    key_elem(x, "Marker", marker ? marker : "", url);
    if (l.truncated && l.delim && l.n)
        key_elem(x, "NextMarker", l.e[l.n - 1].key, url);
    list_tail(x, r, &l, url, r->bucket_owner_id, 0, resp);
}

/* Continuation tokens are base64 of the last key or prefix returned. */
static char *token_encode(const char *key)
{
    size_t n = sodium_base64_encoded_len(strlen(key), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *t = xmalloc(n);
    sodium_bin2base64(t, n, (const unsigned char *)key, strlen(key), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return t;
}

static char *token_decode(const char *tok, verr_t *e)
{
    size_t cap = strlen(tok) + 1, len = 0;
    char *k = xmalloc(cap);
    if (sodium_base642bin((unsigned char *)k, cap - 1, tok, strlen(tok), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 || memchr(k, 0, len)) {
        free(k);
        verr_set(e, 400, "InvalidArgument", "The continuation token provided is incorrect");
        return NULL;
    }
    k[len] = 0;
    return k;
}

void s3_list_objects_v2(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    const char *tok = s3_query(r, "continuation-token"), *start_after = s3_query(r, "start-after");
    char *after = NULL;
    if (tok && !(after = token_decode(tok, e)))
        return;
    if (!after && start_after)
        after = xstrdup(start_after);
    listing_t l;
    int url;
    int rc = list_begin(r, &l, after, &url, e);
    free(after);
    if (rc < 0)
        return;
    xml_t *x = xml_new();
    xml_open(x, "ListBucketResult", S3_NS);
    list_head(x, r, &l, url);
    xml_elem_int(x, "KeyCount", (long long)l.n);
    if (tok)
        xml_elem(x, "ContinuationToken", tok);
    if (l.truncated && l.n) {
        char *next = token_encode(l.e[l.n - 1].key);
        xml_elem(x, "NextContinuationToken", next);
        free(next);
    }
    if (start_after)
        key_elem(x, "StartAfter", start_after, url);
    int fetch_owner = s3_query(r, "fetch-owner") && !strcmp(s3_query(r, "fetch-owner"), "true");
    list_tail(x, r, &l, url, fetch_owner ? r->bucket_owner_id : NULL, 0, resp);
}

void s3_list_object_versions(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    listing_t l;
    int url;
    const char *marker = s3_query(r, "key-marker");
    if (list_begin(r, &l, marker, &url, e) < 0)
        return;
    xml_t *x = xml_new();
    xml_open(x, "ListVersionsResult", S3_NS);
    list_head(x, r, &l, url);
    key_elem(x, "KeyMarker", marker ? marker : "", url);
    xml_elem(x, "VersionIdMarker", "");
    if (l.truncated && l.n) {
        key_elem(x, "NextKeyMarker", l.e[l.n - 1].key, url);
        xml_elem(x, "NextVersionIdMarker", "null");
    }
    list_tail(x, r, &l, url, r->bucket_owner_id, 1, resp);
}

void s3_delete_objects(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "Delete", e);
    if (!doc)
        return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlChar *quiet = s3_xml_child_text(root, "Quiet");
    int is_quiet = quiet && !strcmp((const char *)quiet, "true");
    xmlFree(quiet);
    size_t count = 0;
    for (xmlNodePtr c = root->children; c; c = c->next)
        count += c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, "Object");
    if (count == 0 || count > 1000) {
        xmlFreeDoc(doc);
        verr_set(e, 400, "MalformedXML", "DeleteObjects takes 1 to 1000 objects.");
        return;
    }
    xml_t *x = xml_new();
    xml_open(x, "DeleteResult", S3_NS);
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Object"))
            continue;
        xmlChar *key = s3_xml_child_text(c, "Key");
        xmlChar *vid = s3_xml_child_text(c, "VersionId");
        verr_t de = {0};
        if (!key || !*key || strlen((const char *)key) > S3_MAX_KEY)
            verr_set(&de, 400, "InvalidArgument", "Invalid key");
        else if (vid && strcmp((const char *)vid, "null"))
            verr_set(&de, 400, "NoSuchVersion", "The specified version does not exist.");
        else if (s3_access_check(r, &r->row, "DeleteObject", (const char *)key, NULL, &de) < 0)
            ;   /* each key is decided on its own, as S3 does */
        else
            os_delete(r->os->backend, r->bucket_id, (const char *)key, &de);
        if (de.code[0]) {
            xml_open(x, "Error", NULL);
            xml_elem(x, "Key", key ? (const char *)key : "");
            xml_elem(x, "Code", de.code);
            xml_elem(x, "Message", de.message);
            xml_close(x);
        } else if (!is_quiet) {
            xml_open(x, "Deleted", NULL);
            xml_elem(x, "Key", (const char *)key);
            if (vid)
                xml_elem(x, "VersionId", (const char *)vid);
            xml_close(x);
        }
        xmlFree(key);
        xmlFree(vid);
    }
    xmlFreeDoc(doc);
    reply(r, resp, x);
}

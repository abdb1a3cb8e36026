/* s3_list.c - listing and batch delete: ListObjects (v1, marker), ListObjectsV2
 * (continuation tokens, start-after), ListObjectVersions (versions and delete markers,
 * key-marker / version-id-marker), with prefix, delimiter (common prefixes), max-keys and
 * encoding-type=url; DeleteObjects (with a VersionId per key). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "objectstore.h"
#include "s3_checksum.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define BATCH 1000

typedef struct entry {
    char *key;          /* a key, or a common prefix */
    int is_prefix;
    os_meta_t meta;
    char owner[13];     /* the version's owner (its ACL's), "" for the bucket owner */
} entry_t;

typedef struct listing {
    const char *prefix, *delim;
    size_t max;
    int versions;       /* ListObjectVersions: every version, in (key, version) order */
    entry_t *e;
    size_t n;
    int truncated;      /* more than max entries exist */
    char *last_seen;    /* last key the backend returned (to continue the scan) */
    char last_vid[OS_VERSION_ID_MAX];   /* ... and its version (versions) */
    const char *skip_prefix;   /* resuming after this common prefix: skip its keys */
} listing_t;

static int collect(void *arg, const char *key, const os_meta_t *m)
{
    listing_t *l = arg;
    if (l->truncated)
        return 0;
    free(l->last_seen);
    l->last_seen = xstrdup(key);
    snprintf(l->last_vid, sizeof l->last_vid, "%s", m->version_id);
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
    l->e[l->n].meta.tags = NULL;
    l->e[l->n].meta.acl = NULL;         /* (all five belong to the caller's meta) */
    l->e[l->n].meta.parts = NULL;
    snprintf(l->e[l->n].owner, sizeof l->e[l->n].owner, "%s", json_str(m->acl, "owner", ""));
    l->n++;
    return 0;
}

/* Scan keys after `after` (for versions: after version `after_vid` of it) until max
 * entries (keys or versions + common prefixes) are collected. */
static int scan(s3_req_t *r, listing_t *l, const char *after, const char *after_vid, verr_t *e)
{
    char *skip = NULL;
    size_t dl = l->delim ? strlen(l->delim) : 0, pl = strlen(l->prefix);
    /* Resuming after a common prefix ("photos/"): skip the keys it stood for. Only a
     * marker that is one (the prefix, then the first delimiter at its very end) and never
     * within a key's versions: a key "a/" listed under prefix "a/" is no common prefix. */
    if (dl && after && (!after_vid || !*after_vid) && strlen(after) > pl && !strncmp(after, l->prefix, pl)) {
        const char *d = strstr(after + pl, l->delim);
        if (d && d + dl == after + strlen(after))
            skip = xstrdup(after);
    }
    l->skip_prefix = skip;
    char *start = xstrdup(after ? after : ""), vid[OS_VERSION_ID_MAX];
    snprintf(vid, sizeof vid, "%s", after_vid ? after_vid : "");
    int rc = 0;
    for (;;) {
        int more = 0;
        free(l->last_seen);
        l->last_seen = NULL;
        if ((l->versions ? os_list_versions(r->os->backend, r->bucket_id, l->prefix, start, vid, BATCH, collect, l,
                                            &more, e)
                         : os_list(r->os->backend, r->bucket_id, l->prefix, start, BATCH, collect, l, &more, e)) < 0) {
            rc = -1;
            break;
        }
        if (l->truncated || !more || !l->last_seen)
            break;
        free(start);
        start = xstrdup(l->last_seen);
        snprintf(vid, sizeof vid, "%s", l->last_vid);
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

/* Keys in listings are URL-encoded when the client asked (encoding-type=url), as the
 * AWS CLI does so that any byte survives XML. */
void s3_key_elem(xml_t *x, const char *tag, const char *key, int url)
{
    if (!url) {
        xml_elem(x, tag, key);
        return;
    }
    char *enc = sigv4_uri_encode(key, strlen(key), 1);
    xml_elem(x, tag, enc);
    free(enc);
}

/* The canonical id of who owns a listed version: the writer the version's ACL names (S3
 * lists each object's own owner), the bucket owner when ObjectOwnership enforces that,
 * for a delete marker (which keeps no owner) and for objects written before ACLs. */
static const char *entry_owner(const s3_req_t *r, const entry_t *en, char buf[65])
{
    if (!en->owner[0] || !strcmp(en->owner, r->bucket_owner) || !strcmp(r->row.ownership, "BucketOwnerEnforced"))
        return r->bucket_owner_id;
    ids_canonical_user(en->owner, buf);
    return buf;
}

static void contents(xml_t *x, const s3_req_t *r, const entry_t *en, int url, int owners, int versions)
{
    char etag[80], when[40];
    snprintf(etag, sizeof etag, "\"%s\"", en->meta.etag);
    s3_iso_date(en->meta.mtime, when);
    int marker = versions && en->meta.delete_marker;
    xml_open(x, marker ? "DeleteMarker" : versions ? "Version" : "Contents", NULL);
    s3_key_elem(x, "Key", en->key, url);
    if (versions) {
        xml_elem(x, "VersionId", en->meta.version_id);
        xml_elem_bool(x, "IsLatest", en->meta.is_latest);
    }
    xml_elem(x, "LastModified", when);
    if (!marker) {
        xml_elem(x, "ETag", etag);
        xml_elem_int(x, "Size", (long long)en->meta.size);
        xml_elem(x, "StorageClass", "STANDARD");
        if (en->meta.ck.alg != CK_NONE) {   /* the version's checksum, as S3 lists it */
            xml_elem(x, "ChecksumAlgorithm", ck_name(en->meta.ck.alg));
            xml_elem(x, "ChecksumType", s3_checksum_type(&en->meta.ck));
        }
    }
    if (owners) {
        char buf[65];
        xml_open(x, "Owner", NULL);
        xml_elem(x, "ID", entry_owner(r, en, buf));
        xml_close(x);
    }
    xml_close(x);
}

static void prefixes(xml_t *x, const listing_t *l, int url)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->e[i].is_prefix) {
            xml_open(x, "CommonPrefixes", NULL);
            s3_key_elem(x, "Prefix", l->e[i].key, url);
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
static int list_begin(s3_req_t *r, listing_t *l, const char *after, const char *after_vid, int versions, int *url,
                      verr_t *e)
{
    size_t max;
    if (s3_list_limits(r, "max-keys", &max, e) < 0)
        return -1;
    *url = s3_query(r, "encoding-type") != NULL;
    *l = (listing_t){.prefix = s3_query(r, "prefix") ? s3_query(r, "prefix") : "",
                     .delim = s3_query(r, "delimiter"), .max = max, .versions = versions};
    /* max-keys=0 asks for nothing: S3 answers an empty, untruncated page (a truncated
     * one would need a continuation token, and clients would loop on it) */
    if (max > 0 && scan(r, l, after, after_vid, e) < 0) {
        listing_free(l);
        return -1;
    }
    return 0;
}

/* The elements every listing result starts with, after its own root element. */
static void list_head(xml_t *x, s3_req_t *r, const listing_t *l, int url)
{
    xml_elem(x, "Name", r->bucket);
    s3_key_elem(x, "Prefix", l->prefix, url);
}

/* ... and the ones it ends with, then the reply. */
static void list_tail(xml_t *x, s3_req_t *r, listing_t *l, int url, int owners, int versions,
                      http_resp_t *resp)
{
    xml_elem_int(x, "MaxKeys", (long long)l->max);
    if (l->delim)
        s3_key_elem(x, "Delimiter", l->delim, url);
    xml_elem_bool(x, "IsTruncated", l->truncated);
    if (url)
        xml_elem(x, "EncodingType", "url");
    for (size_t i = 0; i < l->n; i++)
        if (!l->e[i].is_prefix)
            contents(x, r, &l->e[i], url, owners, versions);
    prefixes(x, l, url);
    reply(r, resp, x);
    listing_free(l);
}

void s3_list_objects(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    listing_t l;
    int url;
    const char *marker = s3_query(r, "marker");
    if (list_begin(r, &l, marker, NULL, 0, &url, e) < 0)
        return;
    xml_t *x = xml_new();
    xml_open(x, "ListBucketResult", S3_NS);
    list_head(x, r, &l, url);
    s3_key_elem(x, "Marker", marker ? marker : "", url);
    if (l.truncated && l.delim && l.n)
        s3_key_elem(x, "NextMarker", l.e[l.n - 1].key, url);
    list_tail(x, r, &l, url, 1, 0, resp);
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
    int rc = list_begin(r, &l, after, NULL, 0, &url, e);
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
        s3_key_elem(x, "StartAfter", start_after, url);
    int fetch_owner = s3_query(r, "fetch-owner") && !strcmp(s3_query(r, "fetch-owner"), "true");
    list_tail(x, r, &l, url, fetch_owner, 0, resp);
}

void s3_list_object_versions(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    listing_t l;
    int url;
    const char *marker = s3_query(r, "key-marker"), *vmarker = s3_query(r, "version-id-marker");
    if (vmarker && *vmarker && !os_version_id_valid(vmarker)) {
        verr_set(e, 400, "InvalidArgument", "Invalid version id specified");
        return;
    }
    if (vmarker && *vmarker && (!marker || !*marker)) {
        verr_set(e, 400, "InvalidArgument", "A version-id marker cannot be specified without a key marker.");
        return;
    }
    if (list_begin(r, &l, marker, vmarker, 1, &url, e) < 0)
        return;
    xml_t *x = xml_new();
    xml_open(x, "ListVersionsResult", S3_NS);
    list_head(x, r, &l, url);
    s3_key_elem(x, "KeyMarker", marker ? marker : "", url);
    xml_elem(x, "VersionIdMarker", vmarker ? vmarker : "");
    if (l.truncated && l.n) {
        /* Where the next page starts: after this version, or after this common prefix. */
        const entry_t *last = &l.e[l.n - 1];
        s3_key_elem(x, "NextKeyMarker", last->key, url);
        if (!last->is_prefix)
            xml_elem(x, "NextVersionIdMarker", last->meta.version_id);
    }
    list_tail(x, r, &l, url, 1, 1, resp);
}

/* One <Object> of DeleteObjects, deleted as DeleteObject would. */
static void delete_one(s3_req_t *r, xml_t *x, xmlNodePtr obj, int quiet)
{
    xmlChar *key = s3_xml_child_text(obj, "Key");
    xmlChar *vid = s3_xml_child_text(obj, "VersionId");
    verr_t de = {0};
    os_meta_t out = {0};
    if (!key || !*key || strlen((const char *)key) > S3_MAX_KEY)
        verr_set(&de, 400, "InvalidArgument", "Invalid key");
    else if (vid && !os_version_id_valid((const char *)vid))
        verr_set(&de, 400, "InvalidArgument", "Invalid version id specified");
    else if (s3_access_check(r, &r->row, "DeleteObjects", (const char *)key, (const char *)vid, NULL, &de) < 0)
        ;   /* each key (and version) is decided on its own, as S3 does */
    else
        s3_delete_version(r, (const char *)key, (const char *)vid, &out, &de);
    if (de.code[0]) {
        xml_open(x, "Error", NULL);
        xml_elem(x, "Key", key ? (const char *)key : "");
        if (vid)
            xml_elem(x, "VersionId", (const char *)vid);
        xml_elem(x, "Code", de.code);
        xml_elem(x, "Message", de.message);
        xml_close(x);
    } else if (!quiet) {
        xml_open(x, "Deleted", NULL);
        xml_elem(x, "Key", (const char *)key);
        if (vid)
            xml_elem(x, "VersionId", (const char *)vid);
        /* A marker made, or the version removed being one: its id. */
        if (out.delete_marker) {
            xml_elem(x, "DeleteMarker", "true");
            xml_elem(x, "DeleteMarkerVersionId", out.version_id);
        }
        xml_close(x);
    }
    xmlFree(key);
    xmlFree(vid);
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
    for (xmlNodePtr c = root->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, "Object"))
            delete_one(r, x, c, is_quiet);
    xmlFreeDoc(doc);
    reply(r, resp, x);
}

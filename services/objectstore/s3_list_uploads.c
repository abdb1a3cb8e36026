/* s3_list_uploads.c - ListMultipartUploads: the unfinished uploads of a bucket in S3's
 * order (key, then the order they were started), with prefix, delimiter (CommonPrefixes),
 * key-marker / upload-id-marker, max-uploads and encoding-type=url, each with its
 * Initiator and Owner as S3 shows them.
 *
 * The backend lists a bucket's uploads whole (they are few next to objects: each is
 * reclaimed after objectstore.upload_stale_s); the page is cut here. Initiators come from
 * the uploads table (s3_uploads.c), one query per page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "objectstore.h"
#include "xml.h"

typedef struct upload {
    char *key;
    char id[80];
    int64_t initiated;
} upload_t;

typedef struct uploads {
    upload_t *v;
    size_t n, cap;
} uploads_t;

static int collect(void *arg, const char *key, const char *upload_id, int64_t initiated)
{
    uploads_t *u = arg;
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 32;
        u->v = xrealloc(u->v, u->cap * sizeof *u->v);
    }
    upload_t *p = &u->v[u->n++];
    p->key = xstrdup(key);
    snprintf(p->id, sizeof p->id, "%s", upload_id);
    p->initiated = initiated;
    return 0;
}

static void uploads_free(uploads_t *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].key);
    free(u->v);
}

static int by_key_then_start(const void *a, const void *b)
{
    const upload_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->initiated != y->initiated)
        return x->initiated < y->initiated ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* After the markers: keys after key-marker, or with upload-id-marker the uploads of
 * key-marker that come after that upload, `mark` (found once per request; NULL when it
 * is not listed: nothing of that key then). S3: upload-id-marker is ignored without
 * key-marker. */
static int after_markers(const upload_t *u, const char *km, const char *um, const upload_t *mark)
{
    if (!km || !*km)
        return 1;
    int c = strcmp(u->key, km);
    if (c != 0 || !um || !*um)
        return c > 0;
    return mark && by_key_then_start(u, mark) > 0;
}

/* {"<upload id>": [initiator account, initiator ARN or null]} for the page's uploads. */
static json_t *initiators(s3_req_t *r, const upload_t *const *page, size_t n)
{
    json_t *out = json_object();
    if (!n)
        return out;
    JSON_AUTO json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(page[i]->id));
    char *text = json_dumps(ids, JSON_COMPACT);
    verr_t e = {0};
    db_t *db = s3_db(r->os, &e);
    const char *p[] = {text, r->bucket_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, &e, "uploads_initiators",
        "SELECT upload_id, coalesce(initiator, ''), initiator_arn FROM uploads "
        "WHERE upload_id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND bucket_id = $2", 2, p) : NULL;
    free(text);
    for (int i = 0; res && i < PQntuples(res); i++)
        json_object_set_new(out, PQgetvalue(res, i, 0),
                            json_pack("[s, s?]", PQgetvalue(res, i, 1),
                                      PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2)));
    return out;
}

void s3_upload_parties_xml(s3_req_t *r, xml_t *x, const char *account, const char *arn)
{
    char canon[65];
    if (account && *account)
        ids_canonical_user(account, canon);
    else
        snprintf(canon, sizeof canon, "%s", r->bucket_owner_id);   /* recorded before initiators were */
    xml_open(x, "Initiator", NULL);
    xml_elem(x, "ID", arn && *arn ? arn : canon);
    xml_close(x);
    xml_open(x, "Owner", NULL);
    xml_elem(x, "ID", canon);
    xml_close(x);
}

void s3_list_multipart_uploads(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    size_t max;
    if (s3_list_limits(r, "max-uploads", &max, e) < 0)
        return;
    const char *prefix = s3_query(r, "prefix"), *delim = s3_query(r, "delimiter");
    const char *km = s3_query(r, "key-marker"), *um = s3_query(r, "upload-id-marker");
    int url = s3_query(r, "encoding-type") != NULL;
    uploads_t all = {0};
    if (os_mpu_list(r->os->backend, r->bucket_id, prefix ? prefix : "", collect, &all, e) < 0) {
        uploads_free(&all);
        return;
    }
    qsort(all.v, all.n, sizeof *all.v, by_key_then_start);

    /* the page: uploads and common prefixes, max of them together, in key order */
    const upload_t **page = xcalloc(all.n + 1, sizeof *page);
    char **prefixes = xcalloc(all.n + 1, sizeof *prefixes);
    size_t np = 0, nc = 0, plen = prefix ? strlen(prefix) : 0;
    int truncated = 0;
    const char *next_key = NULL, *next_id = NULL;
    const upload_t *mark = NULL;   /* the upload named by the markers, where it stands in the order */
    for (size_t i = 0; km && um && i < all.n && !mark; i++)
        if (!strcmp(all.v[i].key, km) && !strcmp(all.v[i].id, um))
            mark = &all.v[i];
    for (size_t i = 0; i < all.n; i++) {
        const upload_t *u = &all.v[i];
        if (!after_markers(u, km, um, mark))
            continue;
        const char *d = delim && *delim ? strstr(u->key + plen, delim) : NULL;
        if (d) {
            size_t cl = (size_t)(d - u->key) + strlen(delim);
            if (nc && !strncmp(prefixes[nc - 1], u->key, cl) && prefixes[nc - 1][cl] == '\0')
                continue;   /* this prefix is already on the page */
            if (km && !strncmp(km, u->key, cl) && strlen(km) >= cl)
                continue;   /* the marker was this prefix or inside it: it was on an earlier page */
        }
        if (np + nc >= max) {
            truncated = 1;
            break;
        }
        if (d) {
            size_t cl = (size_t)(d - u->key) + strlen(delim);
            prefixes[nc] = xmalloc(cl + 1);
            memcpy(prefixes[nc], u->key, cl);
            prefixes[nc][cl] = '\0';
            next_key = prefixes[nc];
            next_id = NULL;
            nc++;
        } else {
            page[np++] = u;
            next_key = u->key;
            next_id = u->id;
        }
    }

    JSON_AUTO json_t *who = initiators(r, page, np);
    xml_t *x = xml_new();
    xml_open(x, "ListMultipartUploadsResult", S3_NS);
    xml_elem(x, "Bucket", r->bucket);
    s3_key_elem(x, "KeyMarker", km ? km : "", url);
    xml_elem(x, "UploadIdMarker", um ? um : "");
    if (truncated) {
        s3_key_elem(x, "NextKeyMarker", next_key ? next_key : "", url);
        xml_elem(x, "NextUploadIdMarker", next_id ? next_id : "");
    }
    if (prefix)
        s3_key_elem(x, "Prefix", prefix, url);
    if (delim)
        s3_key_elem(x, "Delimiter", delim, url);
    if (url)
        xml_elem(x, "EncodingType", "url");
    xml_elem_int(x, "MaxUploads", (long long)max);
    xml_elem_bool(x, "IsTruncated", truncated);
    for (size_t i = 0; i < np; i++) {
        char when[40];
        s3_iso_date(page[i]->initiated, when);
        const json_t *w = json_object_get(who, page[i]->id);
        xml_open(x, "Upload", NULL);
        s3_key_elem(x, "Key", page[i]->key, url);
        xml_elem(x, "UploadId", page[i]->id);
        s3_upload_parties_xml(r, x, json_string_value(json_array_get(w, 0)), json_string_value(json_array_get(w, 1)));
        xml_elem(x, "StorageClass", "STANDARD");
        xml_elem(x, "Initiated", when);
        xml_close(x);
    }
    for (size_t i = 0; i < nc; i++) {
        xml_open(x, "CommonPrefixes", NULL);
        s3_key_elem(x, "Prefix", prefixes[i], url);
        xml_close(x);
        free(prefixes[i]);
    }
    size_t len;
    char *text = xml_take(x, &len);
    s3_xml_reply(resp, 200, text, len);
    free(page);
    free(prefixes);
    uploads_free(&all);
}

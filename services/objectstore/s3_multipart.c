/* s3_multipart.c - multipart uploads: CreateMultipartUpload (with the checksum algorithm
 * and type the parts are checked with), UploadPart (streamed like PutObject), UploadPartCopy,
 * CompleteMultipartUpload (the object appears whole, with the "<md5 of part md5s>-N" ETag
 * and a checksum made from the parts'), AbortMultipartUpload, ListParts,
 * ListMultipartUploads. The parts' bytes are never copied: the backend's manifest points
 * at them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "objectstore.h"
#include "s3_checksum.h"
#include "s3_xmlbody.h"
#include "xml.h"


static void reply(http_resp_t *resp, xml_t *x)
{
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
}

void s3_create_multipart(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    os_meta_t m = {0};
    char upload_id[96];
    /* Metadata, tags and the checksum the client chose wait in the upload record;
     * completion gives them to the object. */
    if (s3_meta_from_headers(r, &m, e) < 0 || s3_tags_from_header(r, &m.tags, e) < 0 ||
        s3_checksum_create(r, &m.ck, e) < 0 ||
        os_mpu_create(r->os->backend, r->bucket_id, r->key, &m, upload_id, e) < 0) {
        os_meta_clear(&m);
        return;
    }
    if (s3_upload_record(r, upload_id, e) < 0) {   /* an upload nobody could be told of */
        verr_t ae;
        os_mpu_abort(r->os->backend, r->bucket_id, upload_id, &ae);
        os_meta_clear(&m);
        return;
    }
    s3_checksum_create_headers(&m.ck, resp);
    os_meta_clear(&m);
    xml_t *x = xml_new();
    xml_open(x, "InitiateMultipartUploadResult", S3_NS);
    xml_elem(x, "Bucket", r->bucket);
    xml_elem(x, "Key", r->key);
    xml_elem(x, "UploadId", upload_id);
    reply(resp, x);
}

static int part_number(s3_req_t *r, verr_t *e)
{
    const char *pn = s3_query(r, "partNumber");
    char *end;
    long n = pn ? strtol(pn, &end, 10) : 0;
    if (!pn || *end || n < 1 || n > 10000)
        return verr_set(e, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
    return (int)n;
}

int s3_upload_part_begin(s3_req_t *r, verr_t *e)
{
    int n = part_number(r, e);
    if (n < 0 || s3_payload_size_check(r, e) < 0 || (r->payload_len < 0 && s3_usage_prepare(r, e) < 0) ||
        s3_usage_charge(r, r->payload_len, e) < 0 ||
        s3_md5_begin(r, e) < 0 ||
        os_mpu_part_begin(r->os->backend, r->bucket_id, s3_query(r, "uploadId"), n, &r->put, e) < 0)
        return -1;
    return s3_checksum_put_begin(r, r->put, e);
}

/* The bytes of an upload's parts: all of them (number 0) or one part's. */
static uint64_t parts_size(s3_req_t *r, int number)
{
    return s3_usage_upload_bytes(r->os, r->bucket_id, s3_query(r, "uploadId"), number);
}

/* A part committed: it keeps its bytes, the part it replaced gives its own back. */
static int part_commit(s3_req_t *r, int number, os_put_t *put, os_meta_t *m, verr_t *e)
{
    uint64_t replaced = parts_size(r, number);
    if (os_mpu_part_commit(put, m, e) < 0)
        return -1;
    s3_usage_settle(r, m->size);
    s3_usage_refund(r, replaced);
    return 0;
}

void s3_upload_part(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (s3_check_md5(r, e) < 0 || s3_checksum_put_verify(r, r->put, e) < 0)
        return;
    os_meta_t m = {0};
    int rc = part_commit(r, atoi(s3_query(r, "partNumber")), r->put, &m, e);
    r->put = NULL;
    if (rc < 0)
        return;
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    http_resp_header(resp, "ETag", etag);
    s3_checksum_put_headers(r, &m.ck, resp);
    os_meta_clear(&m);
    http_resp_set(resp, 200, NULL, "", 0);
}

void s3_upload_part_copy(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    int n = part_number(r, e);
    if (n < 0)
        return;
    s3_source_t src;
    if (s3_copy_source(r, &src, e) < 0)
        return;
    uint64_t off = 0, len = src.meta.size;
    const char *range = s3_header(r, "x-amz-copy-source-range");
    os_put_t *put = NULL;
    os_meta_t m = {0};
    if (range) {
        unsigned long long a, b;
        if (sscanf(range, "bytes=%llu-%llu", &a, &b) != 2 || b < a || b >= src.meta.size) {
            verr_set(e, 400, "InvalidRange", "The x-amz-copy-source-range value must be of the form bytes=first-last within the object");
            goto out;
        }
        off = a;
        len = b - a + 1;
    }
    if (s3_usage_charge(r, (int64_t)len, e) < 0 ||
        os_mpu_part_begin(r->os->backend, r->bucket_id, s3_query(r, "uploadId"), n, &put, e) < 0)
        goto out;
    if (s3_copy_read(r, &src, off, len, put, e) < 0) {
        os_put_abort(put);
        goto out;
    }
    if (part_commit(r, n, put, &m, e) < 0)
        goto out;
    char etag[80], when[40];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    s3_iso_date(time(NULL), when);
    xml_t *x = xml_new();
    xml_open(x, "CopyPartResult", S3_NS);
    xml_elem(x, "LastModified", when);
    xml_elem(x, "ETag", etag);
    s3_checksum_xml(x, &m.ck, 0);
    reply(resp, x);
    s3_copy_source_header(&src, resp);
out:
    os_meta_clear(&m);
    s3_source_clear(&src);
}

/* ETags arrive quoted or not; the backend compares bare md5 hex. */
static void bare_etag(const char *in, char out[72])
{
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
        in++;
        n -= 2;
    }
    snprintf(out, 72, "%.*s", (int)n, in);
}

void s3_complete_multipart(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "CompleteMultipartUpload", e);
    if (!doc)
        return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    size_t np = 0;
    os_part_ref_t *parts = xcalloc(10001, sizeof *parts);
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Part"))
            continue;
        if (np == 10000) {
            verr_set(e, 400, "MalformedXML", "Too many parts");
            goto out;
        }
        xmlChar *num = s3_xml_child_text(c, "PartNumber"), *etag = s3_xml_child_text(c, "ETag");
        parts[np].number = num ? atoi((const char *)num) : 0;
        bare_etag(etag ? (const char *)etag : "", parts[np].etag);
        xmlFree(num);
        xmlFree(etag);
        if (s3_checksum_part_xml(c, &parts[np].ck, e) < 0)
            goto out;
        np++;
    }
    if (np == 0) {
        verr_set(e, 400, "MalformedXML", "You must specify at least one part");
        goto out;
    }
    os_meta_t m = {0};
    os_checksum_t want;
    s3_checksum_complete_want(r, &want);
    const char *uid = s3_query(r, "uploadId");
    uint64_t all = parts_size(r, 0), replaced = s3_usage_replaced(r, r->key, NULL);
    if (os_mpu_complete(r->os->backend, r->bucket_id, r->key, uid, r->versioning, parts, np, &want, &m, e) < 0) {
        /* completed before (a client retrying): the same answer while the object is its */
        if (!strcmp(e->code, "NoSuchUpload") && s3_upload_repeat(r, uid, resp))
            *e = (verr_t){0};
        goto out;
    }
    /* the parts left out are dropped; a replaced null version is gone */
    s3_usage_refund(r, (all > m.size ? all - m.size : 0) + replaced);
    char etag[80], loc[1200];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    snprintf(loc, sizeof loc, "/%s/%s", r->bucket, r->key);
    if (r->versioning == OS_VERSIONING_ENABLED)
        http_resp_header(resp, "x-amz-version-id", m.version_id);
    xml_t *x = xml_new();
    xml_open(x, "CompleteMultipartUploadResult", S3_NS);
    xml_elem(x, "Location", loc);
    xml_elem(x, "Bucket", r->bucket);
    xml_elem(x, "Key", r->key);
    xml_elem(x, "ETag", etag);
    s3_checksum_xml(x, &m.ck, 1);
    size_t len;
    char *text = xml_take(x, &len);
    s3_upload_completed(r, uid, &m, text);
    os_meta_clear(&m);
    s3_xml_reply(resp, 200, text, len);
out:
    free(parts);
    xmlFreeDoc(doc);
}

void s3_abort_multipart(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    const char *uid = s3_query(r, "uploadId");
    if (s3_upload_access(r, uid, e) < 0)
        return;
    uint64_t all = parts_size(r, 0);
    if (os_mpu_abort(r->os->backend, r->bucket_id, uid, e) < 0)
        return;
    s3_usage_refund(r, all);
    s3_upload_forget(r, uid);
    http_resp_set(resp, 204, NULL, "", 0);
}

struct parts_out {
    xml_t *x;
    int marker, max, count, truncated, last;
    os_checksum_t ck;   /* the upload's algorithm */
};

static int part_xml(void *arg, int number, const char *etag, uint64_t size, int64_t mtime, const char *checksum)
{
    struct parts_out *p = arg;
    if (number <= p->marker)
        return 0;
    if (p->count == p->max) {
        p->truncated = 1;   /* a nonzero return would be an error */
        return 0;
    }
    char q[80], when[40];
    snprintf(q, sizeof q, "\"%s\"", etag);
    s3_iso_date(mtime, when);
    xml_open(p->x, "Part", NULL);
    xml_elem_int(p->x, "PartNumber", number);
    xml_elem(p->x, "LastModified", when);
    xml_elem(p->x, "ETag", q);
    xml_elem_int(p->x, "Size", (long long)size);
    if (checksum)
        xml_elem(p->x, ck_xml(p->ck.alg), checksum);
    xml_close(p->x);
    p->count++;
    p->last = number;
    return 0;
}

void s3_list_parts(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (s3_upload_access(r, s3_query(r, "uploadId"), e) < 0)
        return;
    const char *mp = s3_query(r, "max-parts"), *pm = s3_query(r, "part-number-marker");
    struct parts_out p = {.max = mp ? atoi(mp) : 1000, .marker = pm ? atoi(pm) : 0};
    if (p.max <= 0 || p.max > 1000)
        p.max = 1000;
    p.x = xml_new();
    xml_open(p.x, "ListPartsResult", S3_NS);
    xml_elem(p.x, "Bucket", r->bucket);
    xml_elem(p.x, "Key", r->key);
    xml_elem(p.x, "UploadId", s3_query(r, "uploadId"));
    s3_upload_parties(r, s3_query(r, "uploadId"), p.x);
    xml_elem_int(p.x, "PartNumberMarker", p.marker);
    xml_elem_int(p.x, "MaxParts", p.max);
    xml_elem(p.x, "StorageClass", "STANDARD");
    if (os_mpu_list_parts(r->os->backend, r->bucket_id, s3_query(r, "uploadId"), &p.ck, part_xml, &p, e) < 0) {
        xml_free(p.x);
        return;
    }
    xml_elem_int(p.x, "NextPartNumberMarker", p.last);
    xml_elem_bool(p.x, "IsTruncated", p.truncated);
    xml_elem(p.x, "ChecksumAlgorithm", ck_name(p.ck.alg));
    xml_elem(p.x, "ChecksumType", s3_checksum_type(&p.ck));
    reply(resp, p.x);
}

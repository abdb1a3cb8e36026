/* s3_attributes.c - GetObjectAttributes: what a client asks of an object version without
 * its bytes (ETag, Checksum, ObjectParts, StorageClass, ObjectSize; x-amz-object-attributes
 * names those wanted), as one XML document. Decided as GetObject is (the version's ACL,
 * s3:GetObjectAttributes / s3:GetObjectVersionAttributes in policies). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "objectstore.h"
#include "s3_checksum.h"
#include "xml.h"


enum { A_ETAG = 1, A_CHECKSUM = 2, A_PARTS = 4, A_CLASS = 8, A_SIZE = 16 };

static const struct {
    const char *name;
    unsigned bit;
} attrs[] = {
    {"ETag", A_ETAG}, {"Checksum", A_CHECKSUM}, {"ObjectParts", A_PARTS}, {"StorageClass", A_CLASS},
    {"ObjectSize", A_SIZE},
};

/* x-amz-object-attributes: a comma-separated list of names; InvalidArgument otherwise. */
static int wanted(const s3_req_t *r, unsigned *out, verr_t *e)
{
    const char *h = s3_header(r, "x-amz-object-attributes");
    *out = 0;
    for (const char *p = h; p && *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        if (!n)
            break;
        size_t i = 0;
        while (i < ARRAY_LEN(attrs) && (strlen(attrs[i].name) != n || strncmp(attrs[i].name, p, n)))
            i++;
        if (i == ARRAY_LEN(attrs))
            return verr_set(e, 400, "InvalidArgument", "Invalid attribute name specified.");
        *out |= attrs[i].bit;
        p += n;
    }
    if (!*out)
        return verr_set(e, 400, "InvalidArgument", "Empty attribute name specified.");
    return 0;
}

static int header_int(const s3_req_t *r, const char *name, long def, long max, long *out, verr_t *e)
{
    const char *v = s3_header(r, name);
    char *end;
    *out = v ? strtol(v, &end, 10) : def;
    if (v && (!*v || *end || *out < 0 || *out > max))
        return verr_set(e, 400, "InvalidArgument", "%s must be an integer between 0 and %ld", name, max);
    return 0;
}

/* <ObjectParts> of a multipart version: its parts by position, a page of them. */
static void parts_xml(xml_t *x, const os_meta_t *m, long marker, long max)
{
    size_t count = json_array_size(m->parts);
    xml_open(x, "ObjectParts", NULL);
    xml_elem_int(x, "PartsCount", (long long)count);
    xml_elem_int(x, "PartNumberMarker", marker);
    long last = marker, listed = 0;
    for (size_t i = (size_t)marker; i < count && listed < max; i++, listed++)
        last = (long)i + 1;
    xml_elem_int(x, "NextPartNumberMarker", last);
    xml_elem_int(x, "MaxParts", max);
    xml_elem_bool(x, "IsTruncated", (size_t)last < count);
    for (long n = marker + 1; n <= last; n++) {
        xml_open(x, "Part", NULL);
        xml_elem_int(x, "PartNumber", n);
        xml_elem_int(x, "Size", (long long)json_integer_value(json_array_get(m->parts, (size_t)(n - 1))));
        xml_close(x);
    }
    xml_close(x);
}

void s3_get_object_attributes(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    unsigned want;
    long max, marker;
    if (wanted(r, &want, e) < 0 || header_int(r, "x-amz-max-parts", 1000, 1000, &max, e) < 0 ||
        header_int(r, "x-amz-part-number-marker", 0, 10000, &marker, e) < 0)
        return;
    os_meta_t m = {0};
    json_t *acl = NULL;
    if (s3_object_access(r, &m, &acl, NULL, e) < 0)
        goto out;
    if (m.delete_marker) {
        s3_delete_marker_error(r, &m, s3_query(r, "versionId") != NULL, resp);
        goto out;
    }
    xml_t *x = xml_new();
    xml_open(x, "GetObjectAttributesResponse", S3_NS);
    if (want & A_ETAG)
        xml_elem(x, "ETag", m.etag);   /* unquoted here, as S3 sends it */
    if ((want & A_CHECKSUM) && m.ck.alg != CK_NONE && m.ck.value[0]) {
        xml_open(x, "Checksum", NULL);
        s3_checksum_xml(x, &m.ck, 1);
        xml_close(x);
    }
    if ((want & A_PARTS) && m.parts)
        parts_xml(x, &m, marker, max);
    if (want & A_CLASS)
        xml_elem(x, "StorageClass", "STANDARD");
    if (want & A_SIZE)
        xml_elem_int(x, "ObjectSize", (long long)m.size);
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
    char lm[40];
    s3_http_date(m.mtime, lm);
    http_resp_header(resp, "Last-Modified", lm);
    s3_version_header(r, resp, m.version_id);
out:
    json_decref(acl);
    os_meta_clear(&m);
}

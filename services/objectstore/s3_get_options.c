/* s3_get_options.c - what a GetObject or HeadObject may ask for besides the object's
 * bytes: one part of a multipart object (partNumber), and other response headers than
 * the stored ones (response-content-type and the other response-* overrides). Kept apart
 * from the read itself (s3_objects.c), which only takes the range and headers these give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "objectstore.h"

/* response-* parameter -> the header it sets (the content type is the answer's own) */
static const struct {
    const char *param, *header;
} overrides[] = {
    {"response-content-type", "Content-Type"},
    {"response-content-language", "Content-Language"},
    {"response-expires", "Expires"},
    {"response-cache-control", "Cache-Control"},
    {"response-content-disposition", "Content-Disposition"},
    {"response-content-encoding", "Content-Encoding"},
};

int s3_response_overrides_check(const s3_req_t *r, verr_t *e)
{
    for (size_t i = 0; i < ARRAY_LEN(overrides); i++)
        if (s3_query(r, overrides[i].param) && !r->caller)
            return verr_set(e, 400, "InvalidRequest",
                            "Request specific response headers cannot be used for anonymous GET requests.");
    return 0;
}

void s3_response_overrides(const s3_req_t *r, os_meta_t *m)
{
    json_t *extra = NULL;
    for (size_t i = 0; i < ARRAY_LEN(overrides); i++) {
        const char *v = s3_query(r, overrides[i].param);
        if (!v)
            continue;
        if (i == 0) {
            snprintf(m->content_type, sizeof m->content_type, "%s", v);
            continue;
        }
        if (!extra) {   /* the stored headers are the version's: change a copy */
            extra = m->extra ? json_deep_copy(m->extra) : json_object();
            json_decref(m->extra);
            m->extra = extra;
        }
        json_object_set_new(extra, overrides[i].header, json_string(v));
    }
}

int s3_part_range(const s3_req_t *r, const os_meta_t *m, uint64_t *off, uint64_t *len, http_resp_t *resp,
                  verr_t *e)
{
    const char *pn = s3_query(r, "partNumber");
    if (!pn)
        return 0;
    char *end;
    long n = strtol(pn, &end, 10);
    if (!*pn || *end || n < 1 || n > 10000)
        return verr_set(e, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
    if (s3_header(r, "Range"))
        return verr_set(e, 400, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter");
    size_t count = m->parts ? json_array_size(m->parts) : 1;
    if ((size_t)n > count)
        return verr_set(e, 416, "InvalidPartNumber", "The requested partnumber is not satisfiable");
    *off = 0;
    *len = m->size;
    if (m->parts) {
        for (long i = 0; i < n - 1; i++)
            *off += (uint64_t)json_integer_value(json_array_get(m->parts, (size_t)i));
        *len = (uint64_t)json_integer_value(json_array_get(m->parts, (size_t)(n - 1)));
        char c[16];
        snprintf(c, sizeof c, "%zu", count);
        http_resp_header(resp, "x-amz-mp-parts-count", c);
    }
    return 1;
}

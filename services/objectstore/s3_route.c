/* s3_route.c - which S3 operation a request names, decided on everything that selects
 * one: method, level (service, bucket, object), the whole set of sub-resources in the
 * query, and the headers that imply some functionality.
 *
 * S3 overloads one URL with many operations (PUT /b/k?tagging is PutObjectTagging, not
 * PutObject), so a request must never fall through to the operation without its
 * sub-resource: a sub-resource, parameter or header that no row of the table serves is
 * answered NotImplemented (501) before anything is read or written. Unknown ordinary
 * parameters are ignored, as S3 does. */
#include <string.h>
#include <strings.h>

#include "objectstore.h"

/* Query parameters that select an operation (S3's sub-resources). A request may carry
 * at most one of them, except uploadId with partNumber (UploadPart), where partNumber
 * is an argument. */
static const char *const subresources[] = {
    "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "list-type", "location",
    "logging", "metadataConfiguration", "metadataTable", "metrics", "notification", "object-lock",
    "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "renameObject",
    "replication", "requestPayment", "restore", "retention", "select", "session", "tagging",
    "torrent", "uploadId", "uploads", "versioning", "versions", "website", NULL,
};

/* Query parameters and headers that ask for a feature: allowed only on the operations
 * whose row names the feature. */
typedef struct s3_feature_use {
    const char *name;
    int is_header;
    int prefix;               /* name is a prefix (x-amz-grant-*, response-*) */
    unsigned feature;
} s3_feature_use_t;

static const s3_feature_use_t feature_uses[] = {
    {"versionId",                                       0, 0, S3F_VERSION_ID},
    {"partNumber",                                      0, 0, S3F_PART_NUMBER},
    {"response-",                                       0, 1, S3F_RESPONSE},
    {"x-amz-grant-",                                    1, 1, S3F_GRANTS},
    {"x-amz-tagging",                                   1, 1, S3F_TAGGING},   /* and -directive */
    {"x-amz-copy-source-if-",                           1, 1, S3F_COPY_IF},
    {"x-amz-server-side-encryption",                    1, 1, S3F_SSE},
    {"x-amz-object-lock-",                              1, 1, S3F_OBJECT_LOCK},
    {"x-amz-bucket-object-lock-enabled",                1, 0, S3F_OBJECT_LOCK},
    {"x-amz-bypass-governance-retention",               1, 0, S3F_OBJECT_LOCK},
    {"x-amz-website-redirect-location",                 1, 0, S3F_WEBSITE},
    {"x-amz-mfa",                                       1, 0, S3F_MFA},
    {"x-amz-write-offset-bytes",                        1, 0, S3F_APPEND},
    {NULL, 0, 0, 0},
};

/* Features this object store has; a row may only name features from here, so one
 * can be switched on by adding it here once its operations do it. */
#define S3F_AVAILABLE (S3F_VERSION_ID | S3F_GRANTS | S3F_TAGGING)

static int feature_used_by(const s3_req_t *r, const s3_feature_use_t *u, const char **what)
{
    if (u->is_header) {
        const char *names[SIGV4_MAX_HEADERS], *values[SIGV4_MAX_HEADERS];
        size_t n = http_headers(r->http, names, values, SIGV4_MAX_HEADERS);
        for (size_t i = 0; i < n; i++)
            if (u->prefix ? !strncasecmp(names[i], u->name, strlen(u->name)) : !strcasecmp(names[i], u->name)) {
                *what = names[i];
                return 1;
            }
        return 0;
    }
    for (size_t i = 0; i < r->q.n; i++)
        if (u->prefix ? !strncmp(r->q.p[i].name, u->name, strlen(u->name)) : !strcmp(r->q.p[i].name, u->name)) {
            *what = r->q.p[i].name;
            return 1;
        }
    return 0;
}

static int not_implemented(verr_t *e, const char *what)
{
    return verr_set(e, 501, "NotImplemented",
                    "A header or query you provided implies functionality that is not implemented: %.200s", what);
}

/* The one sub-resource the request names ("" for none); InvalidRequest for two. */
static int selector(const s3_req_t *r, const char **sel, verr_t *e)
{
    *sel = "";
    for (int i = 0; subresources[i]; i++) {
        if (!query_get(&r->q, subresources[i]))
            continue;
        if (**sel)
            return verr_set(e, 400, "InvalidRequest", "The request names two sub-resources: %s and %s", *sel,
                            subresources[i]);
        *sel = subresources[i];
    }
    return 0;
}

const s3_op_t *s3_route(const s3_req_t *r, const s3_op_t *ops, size_t nops, int level, verr_t *e)
{
    const char *m = r->http->method, *sel;
    if (selector(r, &sel, e) < 0)
        return NULL;
    const s3_op_t *op = NULL;
    int method_known = 0;
    for (size_t i = 0; i < nops && !op; i++) {
        const s3_op_t *o = &ops[i];
        if (o->level != level)
            continue;
        method_known |= !strcmp(o->method, m);
        if (strcmp(o->method, m) || strcmp(o->subresource ? o->subresource : "", sel))
            continue;
        if (o->header && !http_header(r->http, o->header))
            continue;
        op = o;
    }
    if (!op) {
        if (!method_known && strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "PUT") && strcmp(m, "POST") &&
            strcmp(m, "DELETE") && strcmp(m, "OPTIONS"))
            return verr_set(e, 405, "MethodNotAllowed", "The specified method is not allowed against this resource."),
                   NULL;
        if (*sel)
            return not_implemented(e, sel), NULL;
        if (level == 0)
            return verr_set(e, 405, "MethodNotAllowed", "The specified method is not allowed against this resource."),
                   NULL;
        return not_implemented(e, m), NULL;
    }
    for (const s3_feature_use_t *u = feature_uses; u->name; u++) {
        const char *what;
        if ((op->features & u->feature & S3F_AVAILABLE) || !feature_used_by(r, u, &what))
            continue;
        if (u->feature == S3F_PART_NUMBER && !strcmp(sel, "uploadId"))
            continue;   /* UploadPart's and UploadPartCopy's argument */
        return not_implemented(e, what), NULL;
    }
    return op;
}

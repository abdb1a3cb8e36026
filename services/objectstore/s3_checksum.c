/* s3_checksum.c - a request's checksum claims and S3's answers about checksums
 * (s3_checksum.h). The error codes and words are S3's, since SDKs and tools match on
 * them: a claim that does not parse or does not agree with itself is InvalidRequest, a
 * claim the bytes do not meet is BadDigest. */
#include "s3_checksum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3_xmlbody.h"

#define PREFIX "x-amz-checksum-"

struct s3_ck {
    ck_alg_t alg;              /* what the client gave a value for, CK_NONE if nothing */
    int trailer;               /* the value comes in the aws-chunked trailer */
    char value[CK_B64_MAX];    /* the value (base64; for CompleteMultipartUpload maybe "-N") */
    int own;                   /* a small body: computed here */
    ck_state_t st;
};

static struct s3_ck *claim(const s3_req_t *r)
{
    return r->ck;
}

static int is_complete(const s3_req_t *r)
{
    return r->op && !strcmp(r->op->name, "CompleteMultipartUpload");
}

static int has_body(const s3_req_t *r)
{
    return r->op && r->op->body != BODY_NONE;
}

static void lower(const char *in, char *out, size_t outsz)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outsz; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
    out[i] = '\0';
}

/* A value of algorithm a as a client may state it: base64 of the digest, and on
 * CompleteMultipartUpload also S3's composite form "<base64>-<parts>". */
static int value_ok(ck_alg_t a, const char *v, int allow_parts)
{
    unsigned char d[CK_MAX_DIGEST];
    char head[CK_B64_MAX];
    const char *dash = allow_parts ? strchr(v, '-') : NULL;
    if (!dash)
        return ck_parse(a, v, d) == 0;
    size_t n = (size_t)(dash - v);
    if (n >= sizeof head || !dash[1] || strspn(dash + 1, "0123456789") != strlen(dash + 1))
        return 0;
    memcpy(head, v, n);
    head[n] = '\0';
    return ck_parse(a, head, d) == 0;
}

/* Checksum headers other than the x-amz-checksum-<alg> value headers. */
static int not_a_value(const char *name)
{
    static const char *const others[] = {PREFIX "mode", PREFIX "algorithm", PREFIX "type", NULL};
    for (int i = 0; others[i]; i++)
        if (!strcasecmp(name, others[i]))
            return 1;
    return 0;
}

int s3_checksum_begin(s3_req_t *r, ck_alg_t trailer, verr_t *e)
{
    struct s3_ck *c = xcalloc(1, sizeof *c);
    r->ck = c;
    const char *names[128], *values[128];
    size_t n = http_headers(r->http, names, values, 128);
    for (size_t i = 0; i < n; i++) {
        if (strncasecmp(names[i], PREFIX, strlen(PREFIX)) || not_a_value(names[i]))
            continue;
        ck_alg_t a = ck_by_header(names[i]);
        if (a == CK_NONE)
            return verr_set(e, 400, "InvalidRequest", "The algorithm type you specified in x-amz-checksum- header is "
                            "invalid.");
        if (c->alg != CK_NONE)
            return verr_set(e, 400, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum "
                            "Types are not allowed.");
        if (!value_ok(a, values[i], is_complete(r)))
            return verr_set(e, 400, "InvalidRequest", "Value for %s header is invalid.", ck_header(a));
        c->alg = a;
        snprintf(c->value, sizeof c->value, "%s", values[i]);
    }
    if (trailer != CK_NONE) {
        if (c->alg != CK_NONE)
            return verr_set(e, 400, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum "
                            "Types are not allowed.");
        c->alg = trailer;
        c->trailer = 1;
    }
    const char *sdk = s3_header(r, "x-amz-sdk-checksum-algorithm");
    if (sdk && has_body(r)) {
        ck_alg_t a = ck_by_name(sdk);
        if (a != CK_NONE && c->alg == CK_NONE)
            return verr_set(e, 400, "InvalidRequest", "x-amz-sdk-checksum-algorithm specified, but no corresponding "
                            "x-amz-checksum-* or x-amz-trailer headers were found.");
        if (a == CK_NONE || a != c->alg)
            return verr_set(e, 400, "InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.");
    }
    if (c->alg != CK_NONE && r->op && r->op->body == BODY_SMALL && !is_complete(r)) {
        c->own = 1;
        ck_init(&c->st);
        ck_add(&c->st, c->alg);
    }
    return 0;
}

void s3_checksum_data(s3_req_t *r, const char *d, size_t n)
{
    struct s3_ck *c = claim(r);
    if (c && c->own)
        ck_update(&c->st, d, n);
}

int s3_checksum_trailer(s3_req_t *r, const char *value, verr_t *e)
{
    struct s3_ck *c = claim(r);
    if (!c || !c->trailer)
        return 0;
    if (!value || !value_ok(c->alg, value, 0))
        return verr_set(e, 400, "InvalidRequest", "Value for %s trailing header is invalid.", ck_header(c->alg));
    snprintf(c->value, sizeof c->value, "%s", value);
    return 0;
}

static int bad_digest(ck_alg_t a, verr_t *e)
{
    return verr_set(e, 400, "BadDigest", "The %s you specified did not match the calculated checksum.", ck_name(a));
}

int s3_checksum_finish_small(s3_req_t *r, verr_t *e)
{
    struct s3_ck *c = claim(r);
    if (!c || !c->own)
        return 0;
    char got[CK_B64_MAX];
    if (ck_value(&c->st, c->alg, got) < 0 || strcmp(got, c->value))
        return bad_digest(c->alg, e);
    return 0;
}

void s3_checksum_free(void *p)
{
    struct s3_ck *c = p;
    if (!c)
        return;
    ck_free(&c->st);
    free(c);
}

/* ---- writes ---- */

int s3_checksum_put_begin(s3_req_t *r, os_put_t *p, verr_t *e)
{
    struct s3_ck *c = claim(r);
    if (!c || c->alg == CK_NONE)
        return 0;
    if (strcmp(r->op->name, "UploadPart")) {
        os_put_checksum_store(p, c->alg);
        return 0;
    }
    int chosen;
    ck_alg_t stored = os_put_checksum_alg(p, &chosen);
    if (stored == c->alg)
        return 0;
    if (chosen) {
        char w[16], g[16];
        lower(ck_name(stored), w, sizeof w);
        lower(ck_name(c->alg), g, sizeof g);
        return verr_set(e, 400, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: %s, "
                        "actual checksum Type: %s", w, g);
    }
    os_put_checksum_also(p, c->alg);   /* verified; the part also keeps the default */
    return 0;
}

int s3_checksum_put_verify(s3_req_t *r, os_put_t *p, verr_t *e)
{
    struct s3_ck *c = claim(r);
    if (!c || c->alg == CK_NONE)
        return 0;
    char got[CK_B64_MAX];
    if (os_put_checksum_value(p, c->alg, got) < 0 || strcmp(got, c->value))
        return bad_digest(c->alg, e);
    return 0;
}

const char *s3_checksum_type(const os_checksum_t *ck)
{
    return ck->composite > 0 ? "COMPOSITE" : "FULL_OBJECT";
}

static void headers(const os_checksum_t *ck, http_resp_t *resp)
{
    if (ck->alg == CK_NONE || !ck->value[0])
        return;
    http_resp_header(resp, ck_header(ck->alg), ck->value);
    http_resp_header(resp, "x-amz-checksum-type", s3_checksum_type(ck));
}

void s3_checksum_put_headers(const s3_req_t *r, const os_checksum_t *stored, http_resp_t *resp)
{
    struct s3_ck *c = claim(r);
    if (c && c->alg != CK_NONE && c->alg != stored->alg) {
        os_checksum_t sent = {.alg = c->alg};
        snprintf(sent.value, sizeof sent.value, "%s", c->value);
        headers(&sent, resp);
        return;
    }
    headers(stored, resp);
}

void s3_checksum_get_headers(const s3_req_t *r, const os_meta_t *m, int ranged, http_resp_t *resp)
{
    const char *mode = s3_header(r, "x-amz-checksum-mode");
    if (!ranged && mode && !strcasecmp(mode, "ENABLED"))
        headers(&m->ck, resp);
}

/* ---- copy and multipart ---- */

ck_alg_t s3_checksum_copy_alg(const s3_req_t *r, const os_meta_t *src, verr_t *e)
{
    const char *h = s3_header(r, "x-amz-checksum-algorithm");
    if (h) {
        ck_alg_t a = ck_by_name(h);
        if (a == CK_NONE)
            verr_set(e, 400, "InvalidRequest", "Checksum algorithm provided is unsupported. Please try again with any "
                     "of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
        return a;
    }
    /* The copy is written whole: a source's composite checksum becomes a full one. */
    return src->ck.alg != CK_NONE ? src->ck.alg : CK_CRC64NVME;
}

int s3_checksum_create(const s3_req_t *r, os_checksum_t *ck, verr_t *e)
{
    const char *alg = s3_header(r, "x-amz-checksum-algorithm"), *type = s3_header(r, "x-amz-checksum-type");
    memset(ck, 0, sizeof *ck);
    if (!alg) {
        if (type)
            return verr_set(e, 400, "InvalidRequest", "The x-amz-checksum-type header can only be used with the "
                            "x-amz-checksum-algorithm header.");
        return 0;
    }
    ck->alg = ck_by_name(alg);
    if (ck->alg == CK_NONE)
        return verr_set(e, 400, "InvalidRequest", "Checksum algorithm provided is unsupported. Please try again with "
                        "any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]");
    if (!type)
        ck->composite = ck->alg != CK_CRC64NVME;   /* S3's defaults */
    else if (!strcasecmp(type, "COMPOSITE"))
        ck->composite = 1;
    else if (strcasecmp(type, "FULL_OBJECT"))
        return verr_set(e, 400, "InvalidRequest", "Value for x-amz-checksum-type header is invalid.");
    if ((ck->composite && ck->alg == CK_CRC64NVME) || (!ck->composite && !ck_is_crc(ck->alg))) {
        char a[16];
        lower(ck_name(ck->alg), a, sizeof a);
        return verr_set(e, 400, "InvalidRequest", "The %s checksum type cannot be used with the %s checksum "
                        "algorithm.", s3_checksum_type(ck), a);
    }
    return 0;
}

void s3_checksum_create_headers(const os_checksum_t *ck, http_resp_t *resp)
{
    if (ck->alg == CK_NONE)
        return;
    http_resp_header(resp, "x-amz-checksum-algorithm", ck_name(ck->alg));
    http_resp_header(resp, "x-amz-checksum-type", s3_checksum_type(ck));
}

int s3_checksum_part_xml(xmlNodePtr part, os_checksum_t *ck, verr_t *e)
{
    memset(ck, 0, sizeof *ck);
    for (ck_alg_t a = CK_FIRST; a < CK_COUNT; a++) {
        xmlChar *v = s3_xml_child_text(part, ck_xml(a));
        if (!v)
            continue;
        int ok = ck->alg == CK_NONE && value_ok(a, (const char *)v, 0);
        if (ok) {
            ck->alg = a;
            snprintf(ck->value, sizeof ck->value, "%s", (const char *)v);
        }
        xmlFree(v);
        if (!ok)
            return verr_set(e, 400, "InvalidArgument", "Invalid Base64 or multiple checksums present in request");
    }
    return 0;
}

void s3_checksum_complete_want(const s3_req_t *r, os_checksum_t *want)
{
    struct s3_ck *c = claim(r);
    const char *type = s3_header(r, "x-amz-checksum-type");
    memset(want, 0, sizeof *want);
    want->composite = !type ? -1 : !strcasecmp(type, "COMPOSITE") ? 1 : 0;
    if (c && c->alg != CK_NONE) {
        want->alg = c->alg;
        snprintf(want->value, sizeof want->value, "%s", c->value);
    }
}

void s3_checksum_xml(xml_t *x, const os_checksum_t *ck, int with_type)
{
    if (ck->alg == CK_NONE || !ck->value[0])
        return;
    xml_elem(x, ck_xml(ck->alg), ck->value);
    if (with_type)
        xml_elem(x, "ChecksumType", s3_checksum_type(ck));
}

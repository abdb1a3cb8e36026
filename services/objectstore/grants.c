/* grants.c - capability URLs for other Virga services and hosts.
 *
 * Services never hold S3 credentials. When the image service must read a tenant's disk
 * image, or an agent must download an image to its host, the requester asks the object
 * store over the bus (objectstore.grant) for one object and one direction; the object store
 * checks the account it acts for exactly as it would check that account's own request,
 * and answers a URL carrying a token:
 *
 *   http://<objectstore.public_url>/<bucket>/<key>?X-Virga-Grant=<payload>.<mac>
 *
 * payload = base64url("v1\n<account>\n<GET|PUT>\n<expires>\n<bucket>\n<key>") and
 * mac = base64url(HMAC-SHA256(grant key, payload)). Only the object store makes and checks
 * tokens, so the key never leaves it (every object store instance of a cloud loads the
 * same objectstore.grant_key_file). A GET grant allows GetObject and HeadObject of that one
 * object, a PUT grant the single or multipart upload of that one key, a DELETE grant
 * DeleteObject of it; nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caller.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "sigv4.h"
#include "strbuf.h"

#define GRANT_MAX_TTL (7 * 86400)

static const char *get_ops[] = {"GetObject", "HeadObject", NULL};
static const char *put_ops[] = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                                "AbortMultipartUpload", NULL};
static const char *delete_ops[] = {"DeleteObject", NULL};

int os_grant_init(objectstore_t *os, verr_t *e)
{
    const char *file = config_str(os->svc->cfg, "objectstore.grant_key_file", NULL);
    if (!file || !*file) {
        /* Good for one object store process; a cloud with several must share a key file. */
        randombytes_buf(os->grant_key, sizeof os->grant_key);
        log_warn("objectstore.grant_key_file is not set: grant URLs are valid for this process only");
        return 0;
    }
    FILE *f = fopen(file, "rb");
    if (!f)
        return verr_set(e, 500, "InternalError", "cannot open objectstore.grant_key_file %s", file);
    size_t n = fread(os->grant_key, 1, sizeof os->grant_key, f);
    fclose(f);
    if (n != sizeof os->grant_key)
        return verr_set(e, 500, "InternalError", "%s must hold %zu bytes", file, sizeof os->grant_key);
    return 0;
}

static void mac_of(const objectstore_t *os, const char *payload, size_t len, char out[64])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, os->grant_key, sizeof os->grant_key);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)payload, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, 64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

char *os_grant_url(const objectstore_t *os, const char *account, const char *method, const char *bucket,
                   const char *key, int64_t expires)
{
    char *raw = xasprintf("v1\n%s\n%s\n%lld\n%s\n%s", account, method, (long long)expires, bucket, key);
    size_t rl = strlen(raw), bl = sodium_base64_ENCODED_LEN(rl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *b64 = xmalloc(bl), mac[64];
    sodium_bin2base64(b64, bl, (const unsigned char *)raw, rl, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    mac_of(os, b64, strlen(b64), mac);
    char *path = sigv4_uri_encode(key, strlen(key), 1);
    char *url = xasprintf("%s/%s/%s?X-Virga-Grant=%s.%s", os->public_url, bucket, path, b64, mac);
    free(path);
    free(b64);
    free(raw);
    return url;
}

static int in(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return 1;
    return 0;
}

int s3_grant_authenticate(s3_req_t *r, const char *token, verr_t *e)
{
    const char *dot = strchr(token, '.');
    char mac[64];
    if (!dot)
        return verr_set(e, 403, "AccessDenied", "Malformed grant");
    mac_of(r->os, token, (size_t)(dot - token), mac);
    if (strlen(mac) != strlen(dot + 1) || sodium_memcmp(mac, dot + 1, strlen(mac)) != 0)
        return verr_set(e, 403, "AccessDenied", "Invalid grant");
    size_t cap = (size_t)(dot - token);
    char *raw = xmalloc(cap + 1);
    size_t rl = 0;
    if (sodium_base642bin((unsigned char *)raw, cap, token, (size_t)(dot - token), NULL, &rl, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) < 0) {
        free(raw);
        return verr_set(e, 403, "AccessDenied", "Malformed grant");
    }
    raw[rl] = 0;
    /* v1, account, method, expires, bucket, key (the key may itself hold newlines) */
    char *f[6], *p = raw;
    for (int i = 0; i < 5; i++) {
        f[i] = p;
        p = p ? strchr(p, '\n') : NULL;
        if (p)
            *p++ = 0;
    }
    f[5] = p;
    int rc = 0;
    if (!f[5] || strcmp(f[0], "v1"))
        rc = verr_set(e, 403, "AccessDenied", "Malformed grant");
    else if (atoll(f[3]) < (long long)time(NULL))
        rc = verr_set(e, 403, "AccessDenied", "Request has expired");
    else if (strcmp(f[4], r->bucket) || strcmp(f[5], r->key))
        rc = verr_set(e, 403, "AccessDenied", "The grant is for another object");
    else if (!in(!strcmp(f[2], "GET") ? get_ops : !strcmp(f[2], "PUT") ? put_ops : delete_ops, r->op->name))
        rc = verr_set(e, 403, "AccessDenied", "The grant does not allow %s", r->op->name);
    else if (s3_query(r, "versionId"))   /* a grant names an object, never its other versions */
        rc = verr_set(e, 403, "AccessDenied", "The grant does not allow naming a version");
    if (rc == 0) {
        /* The checks were made when the grant was issued; the token now stands for them. */
        r->caller = json_pack("{s:s, s:b, s:b, s:s, s:s}", "account_id", f[1], "is_admin", 1, "is_operator", 1,
                              "user_id", "", "user_name", "virga-grant");
    }
    free(raw);
    return rc;
}

/* ---- objectstore.grant ---------------------------------------------------------- */

/* {bucket, key, method: GET|PUT|DELETE, ttl_s} as the calling account → {url, expires, and for
 * GET the object's size, etag, content_type and user metadata}. */
int os_bus_grant(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    objectstore_t *os = service_of(ctx)->state;
    const char *bucket = json_str(body, "bucket", NULL), *key = json_str(body, "key", NULL);
    const char *method = json_str(body, "method", "GET");
    const char *account = json_str(ctx->msg->caller, "account_id", "");
    long long ttl = json_int(body, "ttl_s", 3600);
    if (!bucket || !key || !*key || strlen(key) > S3_MAX_KEY)
        return verr_set(e, 400, "InvalidParameterValue", "bucket and key are required");
    if (strcmp(method, "GET") && strcmp(method, "PUT") && strcmp(method, "DELETE"))
        return verr_set(e, 400, "InvalidParameterValue", "method must be GET, PUT or DELETE");
    if (ttl < 1 || ttl > GRANT_MAX_TTL)
        return verr_set(e, 400, "InvalidParameterValue", "ttl_s must be 1..%d", GRANT_MAX_TTL);
    if (strlen(account) != 12)
        return verr_set(e, 401, "AuthFailure", "grant requests must name the account they act for");
    s3_bucket_t b = {0};
    int found = s3_bucket_load(service_db(ctx), bucket, &b, e);
    if (found <= 0) {
        s3_bucket_clear(&b);
        return found < 0 ? -1 : verr_set(e, 404, "NoSuchBucket", "The bucket %s does not exist", bucket);
    }
    /* the account's own request, without the HTTP parts (no address, no headers) */
    s3_req_t as = {.os = os, .caller = (json_t *)ctx->msg->caller};   /* only read */
    json_t *out = json_object();
    int rc;
    if (!strcmp(method, "GET")) {
        os_meta_t m = {0};
        rc = os_head(os->backend, b.id, key, &m, e);
        if (rc == 0) {
            JSON_AUTO json_t *acl = s3_object_acl(&b, &m);
            rc = s3_access_check(&as, &b, "GetObject", key, NULL, acl, e);
        }
        if (rc == 0) {
            json_object_set_new(out, "size", json_integer((json_int_t)m.size));
            json_object_set_new(out, "etag", json_string(m.etag));
            json_object_set_new(out, "content_type", json_string(m.content_type));
            json_t *meta = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(m.user_meta, k, v)
                if (!strncmp(k, "x-amz-meta-", 11))
                    json_object_set(meta, k + 11, v);
            json_object_set_new(out, "metadata", meta);
        }
        os_meta_clear(&m);
    } else
        rc = s3_access_check(&as, &b, !strcmp(method, "PUT") ? "PutObject" : "DeleteObject", key, NULL, NULL, e);
    s3_bucket_clear(&b);
    if (rc < 0) {
        json_decref(out);
        if (!strcmp(e->code, "AccessDenied"))
            verr_set(e, 403, "AccessDenied", "The account may not %s %s/%s",
                     !strcmp(method, "GET") ? "read" : !strcmp(method, "PUT") ? "write" : "delete", bucket, key);
        return -1;
    }
    int64_t expires = (int64_t)time(NULL) + ttl;
    char *url = os_grant_url(os, account, method, bucket, key, expires);
    json_object_set_new(out, "url", json_string(url));
    free(url);
    json_object_set_new(out, "expires", json_integer((json_int_t)expires));
    *reply = out;
    return 0;
}

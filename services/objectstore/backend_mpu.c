/* backend_mpu.c - multipart uploads (backend.h): creating an upload, part writes (the
 * streaming writer of backend.c), the completion rules and the S3 ETag formula
 * (os_mpu_plan, applied by each backend in one atomic step), abort, and the ordering of
 * parts and uploads for ListParts and ListMultipartUploads. */
#include "backend_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"

/* ---- multipart ---- */

int os_mpu_create(os_backend_t *b, const char *bucket_id, const char *key, const os_meta_t *meta,
                  char upload_id[96], verr_t *e)
{
    if (!upload_id || os_check_bucket(b, bucket_id, e) || os_check_key(key, e))
        return upload_id ? -1 : verr_set(e, 500, "InternalError", "os_mpu_create: no upload_id");
    size_t klen = strlen(key);
    char *hex = xmalloc(2 * klen + 1);
    os_hex_encode(key, klen, hex);
    json_t *up = json_object();
    json_object_set_new(up, "k", json_string(hex));
    json_object_set_new(up, "meta", os_client_meta_json(meta));
    json_object_set_new(up, "initiated", json_integer((json_int_t)time(NULL)));
    free(hex);
    char id[OS_UPLOAD_ID_LEN + 1];
    os_new_upload_id(id);
    int rc = b->ops->mpu_create(b, bucket_id, id, up, e);
    json_decref(up);
    if (rc == 0)
        snprintf(upload_id, 96, "%s", id);
    return rc;
}

int os_mpu_part_begin(os_backend_t *b, const char *bucket_id, const char *upload_id, int part, os_put_t **out,
                      verr_t *e)
{
    if (!out || os_check_bucket(b, bucket_id, e) || os_check_upload(upload_id, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_mpu_part_begin: no out");
    if (part < 1 || part > OS_MAX_PART)
        return verr_set(e, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
    return os_put_start(b, bucket_id, NULL, OS_VERSIONING_OFF, upload_id, part, out, e);
}

int os_mpu_part_commit(os_put_t *p, os_meta_t *meta, verr_t *e)
{
    if (!p || !meta || p->key) {
        os_put_free(p, 0);
        return verr_set(e, 500, "InternalError", "os_mpu_part_commit: not a part write");
    }
    memset(meta, 0, sizeof *meta);
    os_put_digest(p, meta);
    json_t *rec = json_object();
    json_object_set_new(rec, "v", json_string(p->version));
    json_object_set_new(rec, "etag", json_string(meta->etag));
    json_object_set_new(rec, "size", json_integer((json_int_t)meta->size));
    json_object_set_new(rec, "mtime", json_integer(meta->mtime));
    json_object_set_new(rec, "cks", os_put_ck_part_json(p));
    int rc = p->b->ops->part_commit(p, rec, e);
    json_decref(rec);
    os_put_free(p, rc == 0);
    return rc;
}

/* Client ETags usually arrive quoted; compare the hex case-insensitively. */
static int etag_matches(const char *client, const char *stored)
{
    size_t n = strlen(client);
    if (n >= 2 && client[0] == '"' && client[n - 1] == '"') {
        client++;
        n -= 2;
    }
    return n == strlen(stored) && strncasecmp(client, stored, n) == 0;
}

static int plan_check(const json_t *parts, const os_part_ref_t *refs, size_t n, verr_t *e)
{
    if (n == 0)
        return verr_set(e, 400, "MalformedXML",
                        "The XML you provided was not well-formed or did not validate against our published schema");
    for (size_t i = 1; i < n; i++)
        if (refs[i].number <= refs[i - 1].number)
            return verr_set(e, 400, "InvalidPartOrder",
                            "The list of parts was not in ascending order. Parts must be ordered by part number.");
    /* Every part must exist before sizes matter (S3 reports InvalidPart first). */
    for (size_t i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", refs[i].number);
        const json_t *p = json_object_get(parts, num);
        if (!p || !etag_matches(refs[i].etag, json_str(p, "etag", "")))
            return verr_set(e, 400, "InvalidPart",
                            "One or more of the specified parts could not be found. The part may not have been "
                            "uploaded, or the specified entity tag may not have matched the part's entity tag.");
    }
    for (size_t i = 0; i + 1 < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", refs[i].number);
        if (json_int(json_object_get(parts, num), "size", 0) < (json_int_t)OS_MIN_PART_SIZE)
            return verr_set(e, 400, "EntityTooSmall",
                            "Your proposed upload is smaller than the minimum allowed object size.");
    }
    return 0;
}

/* S3's multipart ETag: MD5 of the concatenated binary part MD5s, then "-<count>". */
static void plan_etag(const json_t *parts, const os_part_ref_t *refs, size_t n, char etag[72])
{
    EVP_MD_CTX *c = os_md5_new();
    for (size_t i = 0; i < n; i++) {
        char num[16], bin[17];
        snprintf(num, sizeof num, "%d", refs[i].number);
        const char *hex = json_str(json_object_get(parts, num), "etag", "");
        if (os_hex_decode(hex, strlen(hex), bin, sizeof bin, NULL) == 0)
            EVP_DigestUpdate(c, bin, 16);
    }
    char hex[33];
    os_md5_final(c, NULL, hex);
    EVP_MD_CTX_free(c);
    snprintf(etag, 72, "%s-%zu", hex, n);
}

int os_mpu_plan(const char *key, const json_t *upload, const json_t *parts, const os_part_ref_t *refs,
                size_t nrefs, const os_checksum_t *want, json_t **entry, json_t **unused, os_meta_t *out,
                verr_t *e)
{
    size_t klen = strlen(key);
    char *hex = xmalloc(2 * klen + 1);
    os_hex_encode(key, klen, hex);
    int same = strcmp(hex, json_str(upload, "k", "")) == 0;
    free(hex);
    if (!same)
        return os_err_nosuchupload(e);   /* the upload belongs to another key */
    os_checksum_t ck;
    if (plan_check(parts, refs, nrefs, e) || os_mpu_checksum(upload, parts, refs, nrefs, want, &ck, e))
        return -1;

    os_meta_t m;
    os_meta_from_json(json_object_get(upload, "meta"), &m);
    m.ck = ck;   /* the upload's meta holds what the client chose, not a value */
    json_t *list = json_array(), *used = json_object();
    for (size_t i = 0; i < nrefs; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", refs[i].number);
        const json_t *p = json_object_get(parts, num);
        m.size += (uint64_t)json_int(p, "size", 0);
        json_array_append_new(list, os_seg_json(p));
        json_object_set_new(used, num, json_true());
    }
    plan_etag(parts, refs, nrefs, m.etag);
    m.mtime = (int64_t)time(NULL);
    *entry = os_meta_to_json(&m);
    json_object_set_new(*entry, "parts", list);
    *unused = json_array();
    const char *num;
    json_t *p;
    json_object_foreach((json_t *)parts, num, p)
        if (!json_object_get(used, num))
            json_array_append(*unused, p);
    json_decref(used);
    if (out)
        *out = m;
    else
        os_meta_clear(&m);
    return 0;
}

int os_mpu_complete(os_backend_t *b, const char *bucket_id, const char *key, const char *upload_id,
                    os_versioning_t vers, const os_part_ref_t *parts, size_t nparts, const os_checksum_t *want,
                    os_meta_t *out, verr_t *e)
{
    if (os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_upload(upload_id, e) || os_check_vers(vers, e))
        return -1;
    if (nparts > OS_MAX_PART || (nparts && !parts))
        return verr_set(e, 400, "InvalidPart", "Too many parts");
    os_meta_t m;
    memset(&m, 0, sizeof m);
    int rc = b->ops->mpu_complete(b, bucket_id, key, upload_id, vers, parts, nparts, want, &m, e);
    if (out && rc == 0)
        *out = m;
    else
        os_meta_clear(&m);
    return rc;
}

int os_mpu_abort(os_backend_t *b, const char *bucket_id, const char *upload_id, verr_t *e)
{
    if (os_check_bucket(b, bucket_id, e) || os_check_upload(upload_id, e))
        return -1;
    return b->ops->mpu_abort(b, bucket_id, upload_id, e);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int os_mpu_list_parts(os_backend_t *b, const char *bucket_id, const char *upload_id, os_checksum_t *ck,
                      os_part_fn fn, void *arg, verr_t *e)
{
    if (!fn || os_check_bucket(b, bucket_id, e) || os_check_upload(upload_id, e))
        return fn ? -1 : verr_set(e, 500, "InternalError", "os_mpu_list_parts: no callback");
    json_t *up, *parts;
    if (b->ops->mpu_load(b, bucket_id, upload_id, &up, &parts, e))
        return -1;
    os_checksum_t uck;
    os_upload_checksum(up, &uck, NULL);
    if (ck)
        *ck = uck;
    size_t n = 0;
    int *nums = xmalloc((json_object_size(parts) + 1) * sizeof *nums);
    const char *num;
    json_t *p;
    json_object_foreach(parts, num, p)
        nums[n++] = atoi(num);
    qsort(nums, n, sizeof *nums, cmp_int);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", nums[i]);
        p = json_object_get(parts, s);
        if (fn(arg, nums[i], json_str(p, "etag", ""), (uint64_t)json_int(p, "size", 0), json_int(p, "mtime", 0),
               json_str(json_object_get(p, "cks"), ck_name(uck.alg), NULL)))
            rc = verr_set(e, 499, "ClientGone", "The listing was stopped");
    }
    free(nums);
    json_decref(up);
    json_decref(parts);
    return rc;
}

typedef struct upload_row {
    char *key;          /* decoded */
    size_t klen;
    const char *id;
    int64_t initiated;
} upload_row_t;

static int cmp_upload(const void *a, const void *b)
{
    const upload_row_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    if (x->initiated != y->initiated)
        return x->initiated < y->initiated ? -1 : 1;
    return strcmp(x->id, y->id);
}

int os_mpu_list(os_backend_t *b, const char *bucket_id, const char *prefix, os_upload_fn fn, void *arg, verr_t *e)
{
    if (!fn || os_check_bucket(b, bucket_id, e))
        return fn ? -1 : verr_set(e, 500, "InternalError", "os_mpu_list: no callback");
    json_t *all;
    if (b->ops->mpu_uploads(b, bucket_id, &all, e))
        return -1;
    size_t plen = prefix ? strlen(prefix) : 0, n = 0, i;
    upload_row_t *rows = xcalloc(json_array_size(all) + 1, sizeof *rows);
    json_t *u;
    json_array_foreach(all, i, u) {
        const char *hex = json_str(u, "k", "");
        upload_row_t r = {xmalloc(strlen(hex) / 2 + 1), 0, json_str(u, "id", ""), json_int(u, "initiated", 0)};
        if (os_hex_decode(hex, strlen(hex), r.key, strlen(hex) / 2 + 1, &r.klen) || r.klen < plen ||
            memcmp(r.key, prefix, plen) != 0) {
            free(r.key);
            continue;
        }
        rows[n++] = r;
    }
    qsort(rows, n, sizeof *rows, cmp_upload);
    int rc = 0;
    for (i = 0; i < n; i++) {
        if (!rc && fn(arg, rows[i].key, rows[i].id, rows[i].initiated))
            rc = verr_set(e, 499, "ClientGone", "The listing was stopped");
        free(rows[i].key);
    }
    free(rows);
    json_decref(all);
    return rc;
}

/* s3_buckets.c - buckets: ListBuckets, CreateBucket (names are global; the bucket
 * belongs to the creating account; canned ACL from x-amz-acl), HeadBucket,
 * DeleteBucket, GetBucketLocation, Get/PutBucketAcl (canned private/public-read).
 * Names and ownership live in PostgreSQL; the bucket's id names its data and index in
 * the backend. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "quota.h"
#include "xml.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

int s3_load_bucket(s3_req_t *r, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    const char *p[] = {r->bucket};
    PG_AUTO PGresult *res = db_prepared(db, e, "bucket_get", "SELECT id, account_id, acl, versioning FROM buckets WHERE name = $1", 1, p);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return 0;
    r->have_bucket = 1;
    snprintf(r->bucket_id, sizeof r->bucket_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(r->bucket_owner, sizeof r->bucket_owner, "%s", PQgetvalue(res, 0, 1));
    snprintf(r->bucket_acl, sizeof r->bucket_acl, "%s", PQgetvalue(res, 0, 2));
    r->versioning = s3_versioning_from_db(PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
    return 0;
}

/* S3 rules: 3-63 chars of a-z 0-9 . -, starting and ending with a letter or digit, not
 * an IP address, no "..". "healthz" and "metrics" are the endpoint's own paths. */
int s3_valid_bucket_name(const char *n)
{
    size_t l = strlen(n);
    if (l < 3 || l > 63 || !isalnum((unsigned char)n[0]) || !isalnum((unsigned char)n[l - 1]))
        return 0;
    int dots = 0, digits_only = 1;
    for (size_t i = 0; i < l; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return 0;
        if (c == '.' && i > 0 && n[i - 1] == '.')
            return 0;
        dots += c == '.';
        if (c != '.' && !isdigit((unsigned char)c))
            digits_only = 0;
    }
    if (dots == 3 && digits_only)
        return 0;
    return strcmp(n, "healthz") && strcmp(n, "metrics");
}

static int canned_acl(s3_req_t *r, const char **acl, verr_t *e)
{
    *acl = s3_header(r, "x-amz-acl");
    if (!*acl)
        *acl = "private";
    if (strcmp(*acl, "private") && strcmp(*acl, "public-read"))
        return verr_set(e, 501, "NotImplemented", "Only the canned ACLs private and public-read are supported.");
    return 0;
}

/* The name is taken: 1 when by `account` (S3: BucketAlreadyOwnedByYou), else
 * BucketAlreadyExists. */
static int name_taken(db_t *db, const char *name, const char *account, verr_t *e)
{
    const char *q[] = {name};
    PG_AUTO PGresult *own = db_prepared(db, e, "bucket_owner", "SELECT account_id FROM buckets WHERE name = $1", 1, q);
    if (!own)
        return -1;
    if (PQntuples(own) && !strcmp(PQgetvalue(own, 0, 0), account))
        return 1;
    return verr_set(e, 409, "BucketAlreadyExists", "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.");
}

/* Claim the name in PostgreSQL, then make the bucket in the backend (undoing the claim
 * if that fails). With max >= 0 the account may hold at most max buckets: the claim and
 * the count are one transaction under a lock on the account, so concurrent creates
 * cannot pass the quota together. 0 = made; 1 = it already exists and belongs to
 * `account`; -1 = error (BucketAlreadyExists when another account has it,
 * TooManyBuckets). */
static int bucket_make(objectstore_t *os, db_t *db, const char *name, const char *account, const char *acl,
                       long long max, verr_t *e)
{
    char id[IDS_MAX];
    ids_new("b", id);
    const char *p[] = {name, id, account, acl, os->region};
    PG_AUTO PGresult *res = NULL;
    PG_AUTO PGresult *cnt = NULL;
    if (db_begin(db, e) < 0 || (max >= 0 && db_lock_xact(db, "buckets", account, e) < 0))
        goto fail;
    res = db_prepared(db, e, "bucket_insert",
        "INSERT INTO buckets (name, id, account_id, acl, region) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (name) DO NOTHING RETURNING id", 5, p);
    if (!res)
        goto fail;
    if (PQntuples(res) == 0) {
        db_rollback(db);
        return name_taken(db, name, account, e);
    }
    if (max >= 0) {
        cnt = db_prepared(db, e, "bucket_count", "SELECT count(*) FROM buckets WHERE account_id = $1", 1, p + 2);
        if (!cnt)
            goto fail;
        if (atoll(PQgetvalue(cnt, 0, 0)) > max) {
            db_rollback(db);
            return verr_set(e, 400, "TooManyBuckets", "You have attempted to create more buckets than allowed (%lld).", max);
        }
    }
    if (db_commit(db, e) < 0)
        goto fail;
    if (os_bucket_create(os->backend, id, e) < 0) {
        /* the backend could not make the bucket: the name is free again */
        const char *d[] = {name};
        PGresult *undo = db_prepared(db, NULL, "bucket_undo", "DELETE FROM buckets WHERE name = $1", 1, d);
        if (undo)
            PQclear(undo);
        return -1;
    }
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int os_bucket_make(objectstore_t *os, db_t *db, const char *name, const char *account, const char *acl, verr_t *e)
{
    return bucket_make(os, db, name, account, acl, -1, e);
}

void s3_create_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (!s3_valid_bucket_name(r->bucket)) {
        verr_set(e, 400, "InvalidBucketName", "The specified bucket is not valid.");
        return;
    }
    /* The cloud's own buckets (image.bucket, the default images) must not be taken first
     * by a tenant: bucket names are global. */
    if (!strncmp(r->bucket, "virga-", 6) && !caller_is_operator_admin(r->caller)) {
        verr_set(e, 400, "InvalidBucketName", "Bucket names beginning with 'virga-' are reserved for the cloud's own use.");
        return;
    }
    /* CreateBucketConfiguration/LocationConstraint, if given, must name our region */
    if (r->body_len) {
        const char *lc = strstr(r->body, "<LocationConstraint>");
        if (lc) {
            lc += 20;
            size_t n = strcspn(lc, "<");
            if (n != strlen(r->os->region) || strncmp(lc, r->os->region, n)) {
                verr_set(e, 400, "InvalidLocationConstraint", "The specified location-constraint is not valid for this endpoint (%s).", r->os->region);
                return;
            }
        }
    }
    const char *acl;
    if (canned_acl(r, &acl, e) < 0)
        return;
    db_t *db = s3_db(r->os, e);
    long long max;
    if (!db || quota_get(r->os->svc->bus, s3_account(r), "buckets", 100, r->os->call_timeout_ms, &max, e) < 0)
        return;
    if (bucket_make(r->os, db, r->bucket, s3_account(r), acl, max, e) != 0) {
        if (!e->code[0])   /* 1: it exists and is the caller's */
            verr_set(e, 409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.");
        return;
    }
    char loc[80];
    snprintf(loc, sizeof loc, "/%s", r->bucket);
    http_resp_header(resp, "Location", loc);
    http_resp_set(resp, 200, NULL, "", 0);
}

void s3_head_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    (void)e;
    http_resp_header(resp, "x-amz-bucket-region", r->os->region);
    http_resp_set(resp, 200, NULL, "", 0);
}

void s3_delete_bucket(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    if (os_bucket_delete(r->os->backend, r->bucket_id, e) < 0)
        return;
    db_t *db = s3_db(r->os, e);
    if (!db)
        return;
    const char *p[] = {r->bucket_id};
    PG_AUTO PGresult *res = db_prepared(db, e, "bucket_delete", "DELETE FROM buckets WHERE id = $1", 1, p);
    if (!res)
        return;
    http_resp_set(resp, 204, NULL, "", 0);
}

void s3_list_buckets(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    if (!db)
        return;
    const char *p[] = {s3_account(r)};
    PG_AUTO PGresult *res = db_prepared(db, e, "bucket_list",
        "SELECT name, extract(epoch FROM created_at)::bigint FROM buckets WHERE account_id = $1 ORDER BY name", 1, p);
    if (!res)
        return;
    xml_t *x = xml_new();
    xml_open(x, "ListAllMyBucketsResult", S3_NS);
    xml_open(x, "Owner", NULL);
    xml_elem(x, "ID", s3_account(r));
    xml_elem(x, "DisplayName", json_str(r->caller, "user_name", ""));
    xml_close(x);
    xml_open(x, "Buckets", NULL);
    for (int i = 0; i < PQntuples(res); i++) {
        char when[40];
        s3_iso_date(atoll(PQgetvalue(res, i, 1)), when);
        xml_open(x, "Bucket", NULL);
        xml_elem(x, "Name", PQgetvalue(res, i, 0));
        xml_elem(x, "CreationDate", when);
        xml_close(x);
    }
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
}

void s3_get_bucket_location(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    (void)e;
    xml_t *x = xml_new();
    /* S3 answers an empty constraint for us-east-1 */
    xml_open(x, "LocationConstraint", S3_NS);
    xml_close(x);
    size_t len;
    char *doc = xml_take(x, &len);
    if (strcmp(r->os->region, "us-east-1")) {
        free(doc);
        doc = xasprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"" S3_NS "\">%s</LocationConstraint>",
                        r->os->region);
        len = strlen(doc);
    }
    s3_xml_reply(resp, 200, doc, len);
}

void s3_get_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    (void)e;
    xml_t *x = xml_new();
    xml_open(x, "AccessControlPolicy", S3_NS);
    xml_open(x, "Owner", NULL);
    xml_elem(x, "ID", r->bucket_owner);
    xml_close(x);
    xml_open(x, "AccessControlList", NULL);
    xml_open(x, "Grant", NULL);
    xml_elem(x, "Permission", "FULL_CONTROL");
    xml_close(x);
    if (!strcmp(r->bucket_acl, "public-read")) {
        xml_open(x, "Grant", NULL);
        xml_elem(x, "Permission", "READ");
        xml_close(x);
    }
    size_t len;
    char *doc = xml_take(x, &len);
    s3_xml_reply(resp, 200, doc, len);
}

void s3_put_bucket_acl(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    const char *acl;
    if (canned_acl(r, &acl, e) < 0)
        return;
    db_t *db = s3_db(r->os, e);
    if (!db)
        return;
    const char *p[] = {r->bucket_id, acl};
    PG_AUTO PGresult *res = db_prepared(db, e, "bucket_acl", "UPDATE buckets SET acl = $2 WHERE id = $1", 2, p);
    if (res)
        http_resp_set(resp, 200, NULL, "", 0);
}

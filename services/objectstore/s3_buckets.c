/* s3_buckets.c - buckets: ListBuckets, CreateBucket (names are global; the bucket
 * belongs to the creating account; its ACL from x-amz-acl or x-amz-grant-*, its
 * ObjectOwnership from x-amz-object-ownership), HeadBucket, DeleteBucket,
 * GetBucketLocation, and the bucket's row: name, owner, ACL, policy and settings live in
 * PostgreSQL; the bucket's id names its data and index in the backend. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "xml.h"


void s3_bucket_clear(s3_bucket_t *b)
{
    json_decref(b->acl);
    json_decref(b->policy);
    json_decref(b->pab);
    json_decref(b->cors);
    memset(b, 0, sizeof *b);
}

static json_t *column_json(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : json_loads(PQgetvalue(res, 0, col), 0, NULL);
}

int s3_bucket_load(db_t *db, const char *name, s3_bucket_t *b, verr_t *e)
{
    const char *p[] = {name};
    PG_AUTO PGresult *res = db_prepared(db, e, "bucket_get",
        "SELECT id, account_id, acl, coalesce(ownership, ''), policy, public_access_block, cors, versioning "
        "FROM buckets WHERE name = $1", 1, p);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return 0;
    s3_bucket_clear(b);
    snprintf(b->name, sizeof b->name, "%s", name);
    snprintf(b->id, sizeof b->id, "%s", PQgetvalue(res, 0, 0));
    snprintf(b->owner, sizeof b->owner, "%s", PQgetvalue(res, 0, 1));
    snprintf(b->ownership, sizeof b->ownership, "%s", PQgetvalue(res, 0, 3));
    b->acl = column_json(res, 2);
    if (!json_is_array(b->acl)) {
        json_decref(b->acl);
        b->acl = json_array();   /* unreadable: no grants (the owner keeps its rights) */
    }
    b->policy = column_json(res, 4);
    b->pab = column_json(res, 5);
    b->cors = column_json(res, 6);
    b->versioning = s3_versioning_from_db(PQgetisnull(res, 0, 7) ? NULL : PQgetvalue(res, 0, 7));
    return 1;
}

int s3_load_bucket(s3_req_t *r, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    int rc = s3_bucket_load(db, r->bucket, &r->row, e);
    if (rc <= 0)
        return rc;
    r->have_bucket = 1;
    snprintf(r->bucket_id, sizeof r->bucket_id, "%s", r->row.id);
    snprintf(r->bucket_owner, sizeof r->bucket_owner, "%s", r->row.owner);
    ids_canonical_user(r->row.owner, r->bucket_owner_id);
    r->versioning = r->row.versioning;
    return 0;
}

/* One prepared UPDATE per setting; the column name comes from this table only. */
static const struct {
    const char *column, *stmt, *sql;
} settings[] = {
    {"acl", "bucket_set_acl", "UPDATE buckets SET acl = $2::jsonb WHERE id = $1"},
    {"ownership", "bucket_set_ownership", "UPDATE buckets SET ownership = $2 WHERE id = $1"},
    {"policy", "bucket_set_policy", "UPDATE buckets SET policy = $2 WHERE id = $1"},
    {"public_access_block", "bucket_set_pab", "UPDATE buckets SET public_access_block = $2::jsonb WHERE id = $1"},
    {"cors", "bucket_set_cors", "UPDATE buckets SET cors = $2::jsonb WHERE id = $1"},
    {"tags", "bucket_set_tags", "UPDATE buckets SET tags = $2::jsonb WHERE id = $1"},
    {"lifecycle", "bucket_set_lifecycle", "UPDATE buckets SET lifecycle = $2::jsonb WHERE id = $1"},
};

int s3_bucket_set(s3_req_t *r, const char *column, const char *value, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        if (strcmp(settings[i].column, column))
            continue;
        const char *p[] = {r->bucket_id, value};
        PG_AUTO PGresult *res = db_prepared(db, e, settings[i].stmt, settings[i].sql, 2, p);
        if (!res)
            return -1;
        if (strcmp(PQcmdTuples(res), "1"))   /* deleted meanwhile */
            return verr_set(e, 404, "NoSuchBucket", "The specified bucket does not exist");
        return 0;
    }
    return verr_set(e, 500, "InternalError", "no bucket setting %s", column);
}

void s3_bucket_set_json(s3_req_t *r, const char *column, const json_t *value, int status, http_resp_t *resp,
                        verr_t *e)
{
    char *text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    int rc = s3_bucket_set(r, column, text, e);
    free(text);
    if (rc == 0)
        http_resp_set(resp, status, NULL, "", 0);
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
 * if that fails). acl: the grants as JSON text; ownership: ObjectOwnership or NULL. With
 * max >= 0 the account may hold at most max buckets: the claim and the count are one
 * transaction under a lock on the account, so concurrent creates cannot pass the quota
 * together. 0 = made; 1 = it already exists and belongs to `account`; -1 = error
 * (BucketAlreadyExists when another account has it, TooManyBuckets). */
static int bucket_make(objectstore_t *os, db_t *db, const char *name, const char *account, const char *acl,
                       const char *ownership, long long max, verr_t *e)
{
    char id[IDS_MAX];
    ids_new("b", id);
    const char *p[] = {name, id, account, acl, os->region, ownership};
    PG_AUTO PGresult *res = NULL;
    PG_AUTO PGresult *cnt = NULL;
    if (db_begin(db, e) < 0 || (max >= 0 && db_lock_xact(db, "buckets", account, e) < 0))
        goto fail;
    res = db_prepared(db, e, "bucket_insert",
        "INSERT INTO buckets (name, id, account_id, acl, region, ownership) VALUES ($1, $2, $3, $4::jsonb, $5, $6) "
        "ON CONFLICT (name) DO NOTHING RETURNING id", 6, p);
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

int os_bucket_make(objectstore_t *os, db_t *db, const char *name, const char *account, const char *acl,
                   const char *ownership, verr_t *e)
{
    return bucket_make(os, db, name, account, acl, ownership, -1, e);
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
    /* The new bucket's ownership and ACL, checked against each other as S3 does */
    s3_bucket_t b = {.owner = ""};
    snprintf(b.owner, sizeof b.owner, "%s", s3_account(r));
    const char *own = s3_header(r, "x-amz-object-ownership");
    if (own && strcmp(own, "BucketOwnerEnforced") && strcmp(own, "BucketOwnerPreferred") && strcmp(own, "ObjectWriter")) {
        verr_set(e, 400, "InvalidArgument", "Invalid x-amz-object-ownership header: %.64s", own);
        return;
    }
    snprintf(b.ownership, sizeof b.ownership, "%s", own ? own : "");
    JSON_AUTO json_t *acl = NULL;
    if (s3_acl_from_request(r, &b, b.owner, &acl, e) < 0) {
        if (!strcmp(e->code, "AccessControlListNotSupported"))
            verr_set(e, 400, "InvalidBucketAclWithObjectOwnership",
                     "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting");
        return;
    }
    if (!acl && !(acl = s3_acl_canned(r->os, "private", b.owner, b.owner, e)))
        return;
    db_t *db = s3_db(r->os, e);
    long long max;
    if (!db || s3_quota(r, s3_account(r), "buckets", 100, &max, e) < 0)
        return;   /* or waits for identity: CreateBucket runs again when it has answered */
    char *grants = json_dumps(json_object_get(acl, "grants"), JSON_COMPACT);
    int made = bucket_make(r->os, db, r->bucket, s3_account(r), grants, own, max, e);
    free(grants);
    if (made != 0) {
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
    char canon[65];
    ids_canonical_user(s3_account(r), canon);
    xml_open(x, "Owner", NULL);
    xml_elem(x, "ID", canon);
    xml_elem(x, "DisplayName", json_str(r->caller, "account_name", ""));
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

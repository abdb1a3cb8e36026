/* s3_uploads.c - what the object store remembers of a multipart upload besides its parts
 * (which the backend keeps): who started it, and what completing it answered.
 *
 * The initiator: S3 lets an upload's initiator (and the bucket owner, or whom the bucket
 * policy allows s3:ListMultipartUploadParts / s3:AbortMultipartUpload) list its parts and
 * abort it; WRITE on the bucket alone does not. The decision is s3_access_check's, with
 * the initiator's account standing as the upload's owner (rule AT_UPLOAD). An upload
 * begun before these records existed has no initiator: the bucket owner decides it.
 *
 * The completion: a client whose CompleteMultipartUpload answer was lost sends it again;
 * S3 answers the same as long as the key's current version is the one the upload made,
 * NoSuchUpload otherwise. Records are forgotten on abort and after
 * objectstore.upload_stale_s, when the backend reclaims unfinished uploads too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"

int s3_upload_record(s3_req_t *r, const char *upload_id, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    const char *acct = s3_account(r);
    const char *arn = r->caller && !json_bool(r->caller, "is_admin", 0) ? json_str(r->caller, "arn", NULL) : NULL;
    const char *p[] = {upload_id, r->bucket_id, r->key, *acct ? acct : NULL, arn};
    PG_AUTO PGresult *res = db_prepared(db, e, "upload_insert",
        "INSERT INTO uploads (upload_id, bucket_id, key, initiator, initiator_arn) VALUES ($1, $2, $3, $4, $5)", 5, p);
    return res ? 0 : -1;
}

int s3_upload_access(s3_req_t *r, const char *upload_id, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    if (!db)
        return -1;
    const char *p[] = {upload_id ? upload_id : "", r->bucket_id};
    PG_AUTO PGresult *res = db_prepared(db, e, "upload_initiator",
        "SELECT coalesce(initiator, '') FROM uploads WHERE upload_id = $1 AND bucket_id = $2", 2, p);
    if (!res)
        return -1;
    JSON_AUTO json_t *owner = json_pack("{s:s}", "owner", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    return s3_access_check(r, &r->row, r->op->name, r->key, NULL, owner, e);
}

void s3_upload_completed(s3_req_t *r, const char *upload_id, const os_meta_t *m, const char *xml)
{
    verr_t e = {0};
    db_t *db = s3_db(r->os, &e);
    JSON_AUTO json_t *j = json_pack("{s:s, s:s, s:s}", "etag", m->etag, "vid", m->version_id, "xml", xml);
    char *text = json_dumps(j, JSON_COMPACT);
    const char *p[] = {upload_id, text};
    PG_AUTO PGresult *res = db ? db_prepared(db, &e, "upload_result",
        "UPDATE uploads SET result = $2::jsonb WHERE upload_id = $1", 2, p) : NULL;
    if (!res)   /* only a repeated completion would notice: it gets NoSuchUpload */
        log_warn("upload %s: completion not recorded: %s", upload_id, e.message);
    free(text);
}

int s3_upload_repeat(s3_req_t *r, const char *upload_id, http_resp_t *resp)
{
    verr_t e = {0};
    db_t *db = s3_db(r->os, &e);
    const char *p[] = {upload_id ? upload_id : "", r->bucket_id, r->key};
    PG_AUTO PGresult *res = db ? db_prepared(db, &e, "upload_repeat",
        "SELECT result FROM uploads WHERE upload_id = $1 AND bucket_id = $2 AND key = $3 AND result IS NOT NULL",
        3, p) : NULL;
    if (!res || !PQntuples(res))
        return 0;
    JSON_AUTO json_t *done = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    os_meta_t m = {0};
    int same = done && os_head_version(r->os->backend, r->bucket_id, r->key, NULL, &m, &e) == 0 &&
               !m.delete_marker && !strcmp(m.version_id, json_str(done, "vid", "")) &&
               !strcmp(m.etag, json_str(done, "etag", ""));
    os_meta_clear(&m);
    if (!same)
        return 0;
    const char *xml = json_str(done, "xml", "");
    s3_xml_reply(resp, 200, xstrdup(xml), strlen(xml));
    if (strcmp(json_str(done, "vid", "null"), "null"))
        http_resp_header(resp, "x-amz-version-id", json_str(done, "vid", ""));
    return 1;
}

void s3_upload_forget(s3_req_t *r, const char *upload_id)
{
    verr_t e = {0};
    db_t *db = s3_db(r->os, &e);
    const char *p[] = {upload_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, &e, "upload_forget", "DELETE FROM uploads WHERE upload_id = $1", 1,
                                             p) : NULL;
    (void)res;   /* a record left behind goes at s3_uploads_expire */
}

void s3_uploads_expire(db_t *db, int max_age_s)
{
    char age[32];
    snprintf(age, sizeof age, "%d", max_age_s);
    const char *p[] = {age};
    verr_t e = {0};
    PG_AUTO PGresult *res = db_query(db, &e,
        "DELETE FROM uploads WHERE created_at < now() - make_interval(secs => $1::int)", 1, p);
    if (!res)
        log_warn("forgetting old multipart upload records: %s", e.message);
}

void s3_upload_parties(s3_req_t *r, const char *upload_id, xml_t *x)
{
    verr_t e = {0};
    db_t *db = s3_db(r->os, &e);
    const char *p[] = {upload_id ? upload_id : "", r->bucket_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, &e, "upload_parties",
        "SELECT coalesce(initiator, ''), initiator_arn FROM uploads WHERE upload_id = $1 AND bucket_id = $2", 2, p)
                               : NULL;
    int got = res && PQntuples(res);
    s3_upload_parties_xml(r, x, got ? PQgetvalue(res, 0, 0) : NULL,
                          got && !PQgetisnull(res, 0, 1) ? PQgetvalue(res, 0, 1) : NULL);
}

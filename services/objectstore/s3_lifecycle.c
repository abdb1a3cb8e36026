/* s3_lifecycle.c - Put/Get/DeleteBucketLifecycleConfiguration (and the older
 * PutBucketLifecycle, which sends the same document to the same URL): the rules are
 * checked and kept as JSON in the bucket row (lifecycle.h); the expiration pass
 * (lifecycle_pass.c) acts on them. A PUT replaces the whole configuration in one
 * statement. */
#include <stdlib.h>

#include "jsonutil.h"
#include "lifecycle.h"
#include "objectstore.h"

void s3_put_bucket_lifecycle(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    JSON_AUTO json_t *rules = NULL;
    if (lc_parse(r->body, r->body_len, &rules, e) < 0)
        return;
    s3_bucket_set_json(r, "lifecycle", rules, 200, resp, e);
}

void s3_get_bucket_lifecycle(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    db_t *db = s3_db(r->os, e);
    const char *p[] = {r->bucket_id};
    PG_AUTO PGresult *res = db ? db_prepared(db, e, "bucket_lifecycle", "SELECT lifecycle FROM buckets WHERE id = $1",
                                             1, p)
                               : NULL;
    if (!res)
        return;
    JSON_AUTO json_t *rules = PQntuples(res) && !PQgetisnull(res, 0, 0) ? json_loads(PQgetvalue(res, 0, 0), 0, NULL)
                                                                        : NULL;
    if (!json_array_size(rules)) {
        verr_set(e, 404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist");
        return;
    }
    size_t len;
    char *doc = lc_to_xml(rules, &len);
    s3_xml_reply(resp, 200, doc, len);
}

void s3_delete_bucket_lifecycle(s3_req_t *r, http_resp_t *resp, verr_t *e)
{
    s3_bucket_set_json(r, "lifecycle", NULL, 204, resp, e);
}

/* cleanup.c - what the image service leaves in the object store and no longer needs.
 *
 * ImportImage and CopyImage store an image's bytes in the operator's bucket (image.bucket);
 * nobody else refers to them, so when the image is deregistered they can go, once no active
 * CopyImage task still has to read them (CopyImage locks the source row while it records
 * its task, so a deregistration cannot slip between its check and its task). Images
 * registered from a tenant's object keep it: the object is the tenant's. The reconcile
 * pass deletes a few per run through DELETE grants; a crash between the delete and the
 * mark only repeats a delete of nothing, which S3 answers 204 as well.
 *
 * A task uploading a large image records each multipart upload it creates (pipeline.c).
 * When the task is no longer run by anybody (it ended, or its worker died and the lease
 * ran out), the reconcile pass aborts those uploads through PUT grants, so their parts do
 * not wait a week for the object store's stale limit. */
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "jsonutil.h"
#include "log.h"
#include "transfer.h"

void image_collect_deregistered(service_t *svc)
{
    if (!svc->db)
        return;
    verr_t e;
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s/", config_str(svc->cfg, "image.bucket", "virga-images"));
    const char *p[] = {prefix};
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "img_to_collect",
        "SELECT id, location FROM images WHERE state = 'deregistered' AND NOT bytes_deleted "
        "AND starts_with(location, $1) AND NOT EXISTS (SELECT 1 FROM image_tasks t WHERE t.kind = 'copy' "
        "AND t.status = 'active' AND t.source->>'image_id' = images.id) ORDER BY id LIMIT 20", 1, p);
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *loc = PQgetvalue(r, i, 1);
        json_t *g = NULL;
        int gone = image_grant(svc, NULL, loc, "DELETE", &g, &e) == 0 || !strcmp(e.code, "NoSuchBucket");
        if (gone && g) {
            transfer_opts_t o = {.timeout_s = 60};
            gone = transfer_delete(json_str(g, "url", ""), &o, &e) == 0;
        }
        json_decref(g);
        if (!gone) {
            log_warn("deleting the bytes of deregistered image %s (%s): %s", id, loc, e.message);
            continue;
        }
        const char *q[] = {id};
        PGresult *u = db_prepared(svc->db, &e, "img_collected", "UPDATE images SET bytes_deleted = true WHERE id = $1", 1, q);
        if (u) {
            log_info("deleted the stored bytes of deregistered image %s (%s)", id, loc);
            PQclear(u);
        }
    }
}

/* Abort the uploads recorded in a task (uploads: their JSON text as read); clear the list
 * once all are gone, only if nobody added one meanwhile (a new attempt's upload is kept). */
static void abort_uploads(service_t *svc, db_t *db, const char *id, const char *text)
{
    verr_t e;
    json_t *ups = json_loads(text, 0, NULL);
    size_t k;
    json_t *u;
    int all = 1;
    json_array_foreach(ups, k, u) {
        const char *loc = json_str(u, "location", ""), *upload = json_str(u, "upload_id", "");
        json_t *g = NULL;
        int gone = image_grant(svc, NULL, loc, "PUT", &g, &e) == 0 || !strcmp(e.code, "NoSuchBucket");
        if (gone && g) {
            transfer_opts_t o = {.timeout_s = 60};
            gone = transfer_abort_multipart(json_str(g, "url", ""), upload, &o, &e) == 0;
        }
        json_decref(g);
        if (gone)
            log_info("task %s: aborted its abandoned upload %s of %s", id, upload, loc);
        else
            log_warn("task %s: aborting its upload %s of %s: %s", id, upload, loc, e.message);
        all &= gone;
    }
    json_decref(ups);
    if (!all)
        return;
    const char *q[] = {id, text};
    PGresult *c = db_prepared(db, &e, "task_uploads_done",
                              "UPDATE image_tasks SET uploads = '[]' WHERE id = $1 AND uploads = $2::jsonb", 2, q);
    if (c)
        PQclear(c);
}

void image_abort_task_uploads(service_t *svc, db_t *db, const char *id)
{
    verr_t e;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, &e, "task_uploads",
                                      "SELECT uploads::text FROM image_tasks WHERE id = $1 AND uploads <> '[]'", 1, p);
    if (r && PQntuples(r) == 1)
        abort_uploads(svc, db, id, PQgetvalue(r, 0, 0));
}

void image_abort_abandoned_uploads(service_t *svc)
{
    if (!svc->db)
        return;
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "task_abandoned_uploads",
        "SELECT id, uploads::text FROM image_tasks WHERE uploads <> '[]' AND "
        "(status <> 'active' OR lease_until IS NULL OR lease_until < now()) ORDER BY updated_at LIMIT 20", 0, NULL);
    for (int i = 0; r && i < PQntuples(r); i++)
        abort_uploads(svc, svc->db, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
}

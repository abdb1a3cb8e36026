/* cleanup.c - deleting the stored bytes of deregistered images.
 *
 * ImportImage and CopyImage store an image's bytes in the operator's bucket (image.bucket);
 * nobody else refers to them, so when the image is deregistered they can go, once no active
 * CopyImage task still has to read them (CopyImage locks the source row while it records
 * its task, so a deregistration cannot slip between its check and its task). Images
 * registered from a tenant's object keep it: the object is the tenant's. The reconcile
 * pass deletes a few per run through DELETE grants; a crash between the delete and the
 * mark only repeats a delete of nothing, which S3 answers 204 as well. */
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

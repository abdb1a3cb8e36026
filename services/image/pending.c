/* pending.c - how a new image comes to be: its images row `pending` and the task that will
 * make it available, committed together, so a crash leaves either nothing or an image a
 * worker will finish (the task reclaimed after its lease). RegisterImage (registry.c),
 * CreateImage (create.c) and CopyImage (copy.c) insert different columns; what follows the
 * INSERT is the same for all three and lives here. */
#include <string.h>

#include "image.h"

int image_insert_pending_row(db_t *db, const char *stmt, const char *sql, int nparams, const char *const *params,
                             const char *name, verr_t *e)
{
    PG_AUTO PGresult *r = db_prepared(db, e, stmt, sql, nparams, params);
    if (r)
        return 0;
    /* the unique index on (account, name) of live images: the name is taken */
    int taken = !strcmp(db_last_sqlstate(db), "23505");
    db_rollback(db);
    if (taken)
        verr_set(e, 400, "InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI of this account", name);
    return -1;
}

int image_commit_pending(service_t *svc, db_t *db, const image_task_row_t *t, json_t **reply, verr_t *e)
{
    if (image_task_insert(db, t->image_id, t->kind, t->account, t->image_id, t->source, t->params, t->client_token, e) < 0 ||
        db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    image_workers_wake(svc);
    *reply = json_pack("{s:s}", "imageId", t->image_id);
    return 0;
}

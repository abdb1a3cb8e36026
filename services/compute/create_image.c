/* create_image.c - compute's part of CreateImage (docs/compute.md, "CreateImage").
 *
 * The gateway asks compute.CreateImage first: the instance must be the caller's, running
 * or stopped, and on a driver that can export it; the answer is what the new image will
 * be (its disk format, kernel and ramdisk). The gateway then asks the image service to
 * make the pending image and its task (image.create_from_instance). That task, on an image
 * worker thread, asks compute.image_export again and again (with a fresh PUT grant each
 * time) until the export is done or failed; the export is a row here, pulled by the
 * instance's host agent (compute.host_exports) and finished by it (compute.export_done).
 * Nothing waits on a bus worker: every handler here answers from compute's own tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"

/* Which drivers can export an instance, and what they write. */
static const struct {
    const char *driver, *format;
} exporters[] = {
    {"container", "tar.gz"},
    {"qemu", "qcow2"},
};

static const char *export_format(const char *driver)
{
    for (size_t i = 0; i < ARRAY_LEN(exporters); i++)
        if (!strcmp(exporters[i].driver, driver))
            return exporters[i].format;
    return NULL;
}

int compute_create_image(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account, *id = json_str(body, "InstanceId", NULL);
    if (instances_scope(ctx, &account, e) < 0)
        return -1;
    if (!id || !ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id ? id : "");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ci_instance",
        "SELECT state, driver, prepared, kernel_id, ramdisk_id, image_id, image_kind, account_id FROM instances "
        "WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    const char *state = PQgetvalue(r, 0, 0), *driver = PQgetvalue(r, 0, 1);
    if ((strcmp(state, "running") && strcmp(state, "stopped")) || strcmp(PQgetvalue(r, 0, 2), "t"))
        return verr_set(e, 400, "IncorrectInstanceState",
                        "Instance '%s' is not in a state from which it can be imaged (it is %s).", id, state);
    const char *format = export_format(driver);
    if (!format)
        return verr_set(e, 400, "UnsupportedOperation",
                        "Instance '%s' runs on the %s driver, whose instances cannot be imaged%s.", id, driver,
                        !strcmp(driver, "sim") ? " (simulated: there is no disk)" : "");
    *reply = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "instance_id", id, "account_id", PQgetvalue(r, 0, 7),
                       "driver", driver, "disk_format", format, "source_image_id", PQgetvalue(r, 0, 5), "image_kind",
                       PQgetvalue(r, 0, 6));
    if (!PQgetisnull(r, 0, 3) && *PQgetvalue(r, 0, 3))
        json_object_set_new(*reply, "kernel_id", json_string(PQgetvalue(r, 0, 3)));
    if (!PQgetisnull(r, 0, 4) && *PQgetvalue(r, 0, 4))
        json_object_set_new(*reply, "ramdisk_id", json_string(PQgetvalue(r, 0, 4)));
    return 0;
}

static json_t *export_answer(PGresult *r)
{
    json_t *a = json_pack("{s:s, s:s, s:I, s:s}", "state", PQgetvalue(r, 0, 0), "sha256", PQgetvalue(r, 0, 1), "size",
                          (json_int_t)atoll(PQgetvalue(r, 0, 2)), "error", PQgetvalue(r, 0, 3));
    return a;
}

/* image.create_from_instance's task: {image_id, instance_id, account_id, url, no_reboot}
 * -> {state, sha256, size, error}. The first call records the export (the instance must
 * still be there and imageable); later ones renew the URL of a pending export and answer
 * how it stands. */
int compute_image_export(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *image = json_str(body, "image_id", ""), *inst = json_str(body, "instance_id", "");
    const char *account = json_str(body, "account_id", ""), *url = json_str(body, "url", "");
    if (!ids_valid("ami", image) || !ids_valid("i", inst) || !*url)
        return verr_set(e, 400, "InvalidParameterValue", "image_id, instance_id and url are required");
    db_t *db = service_db(ctx);
    const char *p[] = {image, url};
    PG_AUTO PGresult *u = db_prepared(db, e, "ie_renew",
        "UPDATE image_exports SET url = CASE WHEN state = 'pending' THEN $2 ELSE url END, updated_at = now() "
        "WHERE image_id = $1 RETURNING state, sha256, size, error, host_id, state = 'pending'", 2, p);
    if (!u)
        return -1;
    if (PQntuples(u)) {
        if (!strcmp(PQgetvalue(u, 0, 5), "t"))
            hosts_notify(service_of(ctx), PQgetvalue(u, 0, 4), 0);
        *reply = export_answer(u);
        return 0;
    }
    const char *q[] = {inst, account};
    PG_AUTO PGresult *r = db_prepared(db, e, "ie_instance",
        "SELECT state, driver, host_id, prepared FROM instances WHERE id = $1 AND account_id = $2", 2, q);
    if (!r)
        return -1;
    const char *state = PQntuples(r) ? PQgetvalue(r, 0, 0) : "terminated";
    const char *format = PQntuples(r) ? export_format(PQgetvalue(r, 0, 1)) : NULL;
    if ((strcmp(state, "running") && strcmp(state, "stopped")) || !format || PQgetisnull(r, 0, 2)) {
        *reply = json_pack("{s:s, s:s, s:I, s:s+}", "state", "failed", "sha256", "", "size", (json_int_t)0, "error",
                           "IncorrectInstanceState: the instance is ", state);
        return 0;
    }
    const char *ip[] = {image, account, inst, PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 1), format, url,
                        json_flag(body, "no_reboot") ? "t" : "f"};
    PG_AUTO PGresult *w = db_prepared(db, e, "ie_insert",
        "INSERT INTO image_exports (image_id, account_id, instance_id, host_id, driver, format, url, no_reboot) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::boolean) ON CONFLICT (image_id) DO UPDATE SET updated_at = now() "
        "RETURNING state, sha256, size, error", 8, ip);
    if (!w)
        return -1;
    log_info("export of %s as %s queued on host %s", inst, image, PQgetvalue(r, 0, 2));
    hosts_notify(service_of(ctx), PQgetvalue(r, 0, 2), 0);
    *reply = export_answer(w);
    return 0;
}

/* The agent: {} -> {exports: [{image_id, instance_id, driver, format, url}]}, its host's
 * pending ones. */
int compute_host_exports(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    const char *host = sender_host(ctx, e);
    if (!host)
        return -1;
    const char *p[] = {host};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "he_list",
        "SELECT image_id, instance_id, driver, format, url, no_reboot FROM image_exports "
        "WHERE host_id = $1 AND state = 'pending' ORDER BY created_at LIMIT 100", 1, p);
    if (!r)
        return -1;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "image_id", PQgetvalue(r, i, 0),
                                              "instance_id", PQgetvalue(r, i, 1), "driver", PQgetvalue(r, i, 2),
                                              "format", PQgetvalue(r, i, 3), "url", PQgetvalue(r, i, 4), "no_reboot",
                                              !strcmp(PQgetvalue(r, i, 5), "t")));
    *reply = json_pack("{s:o}", "exports", list);
    return 0;
}

/* The agent: {image_id, sha256, size} or {image_id, error} -> {}. Only for its own host's
 * pending exports; a second report of a finished one changes nothing. */
int compute_export_done(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *host = sender_host(ctx, e);
    if (!host)
        return -1;
    const char *error = json_str(body, "error", ""), *sha = json_str(body, "sha256", "");
    if (!*error && strlen(sha) != 64)
        return verr_set(e, 400, "InvalidParameterValue", "sha256 or error is required");
    char size[32];
    snprintf(size, sizeof size, "%lld", (long long)json_int(body, "size", 0));
    const char *p[] = {json_str(body, "image_id", ""), host, *error ? "failed" : "done", sha, size, error};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ed_update",
        "UPDATE image_exports SET state = $3, sha256 = $4, size = $5::bigint, error = left($6, 500), updated_at = now() "
        "WHERE image_id = $1 AND host_id = $2 AND state = 'pending'", 6, p);
    if (!r)
        return -1;
    log_info("export %s on %s: %s %s", p[0], host, p[2], error);
    *reply = json_object();
    return 0;
}

/* Reconcile: forget exports a day after they ended (the image service's task stops asking
 * once it has its answer, at most image.create_timeout_s after it began), and pending
 * ones nobody has asked about for two days (their image has failed by then). */
void image_exports_purge(service_t *svc)
{
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "ie_purge",
        "DELETE FROM image_exports WHERE (state <> 'pending' AND updated_at < now() - interval '1 day') "
        "OR updated_at < now() - interval '2 days'", 0, NULL);
    if (!r)
        log_warn("forgetting old exports: %s", e.message);
}
